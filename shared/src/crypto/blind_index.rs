//! Blind indexes: how an encrypted field is still looked up by value. The index of a value is
//! HMAC-SHA256 under a secret key, over the value's normalised form and its kind — equal values find
//! each other, and the table alone reveals nothing about them.
//!
//! The secret is a KMS data key stored wrapped in the table (`CONFIG#BLIND_INDEX` / `v1`): made on
//! first use, unwrapped once per cold start, never in plaintext at rest or in configuration.
//!
//! The same secret keys refresh tokens' MACs (`auth::sessions`) through a key derived from it under
//! a label of its own, so a sign-in unwraps one secret, not two.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use super::{CryptoError, KeyContext, KeySource};
use crate::error::ApiError;
use crate::storage::{Db, StorageError};

const PK: &str = "CONFIG#BLIND_INDEX";
const SK: &str = "v1";
/// Prefix of every index value: a new secret (v2) can index alongside during a migration.
const VERSION: &str = "bi1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Email,
    Phone,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
        }
    }
}

pub struct BlindIndex {
    key: hmac::Key,
    refresh_tokens: hmac::Key,
}

/// The label the refresh tokens' key is derived under. Index values are MACs over a kind's label,
/// a zero byte and a value; this label has no zero byte, so no index value is ever the derived key.
const REFRESH_TOKENS: &[u8] = b"ordersync refresh-token key v1";

impl BlindIndex {
    pub fn from_secret(secret: &[u8]) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        // HMAC as a key-derivation function (HKDF's expand step, one block): the derived key says
        // nothing of the secret, and the two uses' MACs nothing of each other.
        let derived = hmac::sign(&key, REFRESH_TOKENS);
        Self {
            refresh_tokens: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            key,
        }
    }

    /// The key refresh tokens are MACed under (`auth::sessions::RefreshToken`).
    pub fn refresh_token_key(&self) -> &hmac::Key {
        &self.refresh_tokens
    }

    /// The index of an already-normalised value.
    pub fn of(&self, kind: Kind, normalized: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(kind.label().as_bytes());
        ctx.update(&[0]);
        ctx.update(normalized.as_bytes());
        format!("{VERSION}:{}", URL_SAFE_NO_PAD.encode(ctx.sign()))
    }

    pub fn email(&self, email: &str) -> String {
        self.of(Kind::Email, &normalize_email(email))
    }

    /// The index of a phone number, or `None` if it is not one.
    pub fn phone(&self, phone: &str) -> Option<String> {
        normalize_phone(phone).map(|p| self.of(Kind::Phone, &p))
    }
}

/// Trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Digits only, Korean numbers in their domestic form: `+82 10-1234-5678`, `010 1234 5678` and
/// `(010)1234.5678` are all `01012345678`. Other international numbers keep their `+` and country
/// code. `None` if what remains is not 8 to 15 digits.
pub fn normalize_phone(phone: &str) -> Option<String> {
    let trimmed = phone.trim();
    let international = trimmed.starts_with('+');
    let mut digits: String = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '+' => {}
            _ => return None,
        }
    }
    let normalized = match (international, digits.strip_prefix("82")) {
        (true, Some(national)) => format!("0{}", national.trim_start_matches('0')),
        (true, None) => format!("+{digits}"),
        (false, _) => digits,
    };
    let count = normalized.chars().filter(char::is_ascii_digit).count();
    (8..=15).contains(&count).then_some(normalized)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    wrapped_secret: String,
    created_at: String,
}

fn secret_context(db: &Db) -> KeyContext {
    KeyContext::new(db.table(), "blind-index-secret")
}

/// Loads the index secret, creating it on first use. Racing first uses agree on one secret: the
/// conditional write lets one win and the others read what it wrote.
pub async fn load(db: &Db, keys: &impl KeySource) -> Result<BlindIndex, ApiError> {
    let context = secret_context(db);
    for _ in 0..2 {
        if let Some(record) = db.get::<SecretRecord>(PK, SK).await? {
            let wrapped = STANDARD
                .decode(&record.wrapped_secret)
                .map_err(|_| CryptoError::Malformed)?;
            let secret = keys.unwrap(&wrapped, &context).await?;
            return Ok(BlindIndex::from_secret(secret.as_ref()));
        }
        let (secret, wrapped) = keys.generate(&context).await?;
        let record = SecretRecord {
            pk: PK.into(),
            sk: SK.into(),
            wrapped_secret: STANDARD.encode(&wrapped),
            created_at: jiff::Timestamp::now().to_string(),
        };
        match db.put_if_absent(&record).await {
            Ok(()) => return Ok(BlindIndex::from_secret(secret.as_ref())),
            Err(StorageError::ConditionFailed) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::internal(
        "the blind index secret could not be loaded",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_index_equally_after_normalisation() {
        let index = BlindIndex::from_secret(&[7; 32]);
        assert_eq!(
            index.email(" Kim@Example.COM "),
            index.email("kim@example.com")
        );
        assert_ne!(
            index.email("kim@example.com"),
            index.email("lee@example.com")
        );
        let value = index.email("kim@example.com");
        assert!(value.starts_with("bi1:") && !value.contains("kim"));
        // Another secret, another index.
        assert_ne!(
            BlindIndex::from_secret(&[8; 32]).email("kim@example.com"),
            value
        );
    }

    #[test]
    fn kinds_are_separate_namespaces() {
        let index = BlindIndex::from_secret(&[7; 32]);
        assert_ne!(
            index.of(Kind::Email, "01012345678"),
            index.of(Kind::Phone, "01012345678")
        );
    }

    #[test]
    fn phone_numbers_are_normalised() {
        for same in [
            "010-1234-5678",
            "+82 10-1234-5678",
            "(010) 1234.5678",
            "+82 010 1234 5678",
            "01012345678",
        ] {
            assert_eq!(
                normalize_phone(same).as_deref(),
                Some("01012345678"),
                "{same}"
            );
        }
        assert_eq!(
            normalize_phone("+1 (415) 555-0100").as_deref(),
            Some("+14155550100")
        );
        for bad in ["", "1234", "010-1234-567x", "+82", "1234567890123456"] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
        let index = BlindIndex::from_secret(&[1; 32]);
        assert_eq!(
            index.phone("+82 10-1234-5678"),
            index.phone("010-1234-5678")
        );
    }
}
