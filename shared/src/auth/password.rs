//! Password rules and hashing: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane).

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::error::ApiError;

pub const MIN_CHARS: usize = 10;
/// Long enough for any passphrase; short enough that hashing cannot be used to burn our CPU.
pub const MAX_CHARS: usize = 128;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

fn hasher() -> Argon2<'static> {
    // m = 19456 KiB, t = 2, p = 1: OWASP Password Storage Cheat Sheet's first argon2id option.
    // (Valid constants: the fallback, argon2's own defaults, is the same algorithm and never used.)
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Refuses passwords that are too short, too long, common, or one repeated character: 422
/// `WEAK_PASSWORD`.
pub fn check_strength(password: &str) -> Result<(), ApiError> {
    let weak = |message: &'static str| {
        ApiError::new(
            lambda_http::http::StatusCode::UNPROCESSABLE_ENTITY,
            "WEAK_PASSWORD",
            message,
        )
    };
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(weak("password: use at least 10 characters"));
    }
    if chars > MAX_CHARS {
        return Err(weak("password: use at most 128 characters"));
    }
    let mut distinct = password.chars();
    let first = distinct.next();
    if distinct.all(|c| Some(c) == first) || COMMON.contains(password.to_lowercase().as_str()) {
        return Err(weak(
            "password: this password is too common; choose another",
        ));
    }
    Ok(())
}

/// A PHC-format argon2id hash with a fresh random salt.
pub fn hash(password: &str) -> Result<String, ApiError> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Constant-time check of `password` against a stored PHC hash. The parameters come from the hash, so
/// hashes made with older parameters still verify. Over-long input is refused without hashing it:
/// it cannot be a password we accepted.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.chars().count() > MAX_CHARS {
        return false;
    }
    hasher()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// Spends the time of one verification, for sign-ins to unknown accounts: the response time must not
/// tell an attacker which e-mail addresses have accounts.
pub fn verify_nothing(password: &str) {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash("correct horse battery staple").unwrap_or_default());
    let _ = verify(password, &DUMMY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("a long enough secret").unwrap();
        let b = hash("a long enough secret").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_ne!(a, b);
        assert!(verify("a long enough secret", &a));
        assert!(!verify("a long enough secreT", &a));
        assert!(!verify("a long enough secret", "not a hash"));
        // Longer than any password accepted: refused, not hashed.
        let long = "x".repeat(MAX_CHARS + 1);
        assert!(!verify(&long, &hash(&long).unwrap()));
    }

    #[test]
    fn weak_passwords_are_refused() {
        for weak in [
            "short",
            "123456789",
            "Password123",
            "QWERTYUIOP",
            "zzzzzzzzzzzz",
        ] {
            let err = check_strength(weak).unwrap_err();
            assert_eq!(
                (err.status.as_u16(), err.code),
                (422, "WEAK_PASSWORD"),
                "{weak}"
            );
        }
        assert!(check_strength(&"x".repeat(129)).is_err());
        assert!(check_strength("kimchi-jjigae at 7pm").is_ok());
        // Length counts characters, not bytes.
        assert!(check_strength("비밀번호는길어야").is_err());
        assert!(check_strength("비밀번호는길어야합니다").is_ok());
    }
}
