//! The key that seals listings' cursors: AES-256-GCM-SIV under a secret KMS derives once per
//! instance (`kms::derive_secret`), the same in every instance.
//!
//! Cursors were sealed with field encryption's envelope, whose wrapped data key travels inside the
//! value: opening a cursor made by another instance cost a KMS `Decrypt`, and so did every forged
//! one — a caller could spend the account's KMS request rate, which cold instances need to open
//! personal data. Under one derived key, a cursor is opened (or refused) in memory.
//!
//! SIV, because the nonces are random and one key seals every cursor a deployment ever issues: a
//! repeated nonce would reveal only that two cursors are equal.

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::CryptoError;

/// What the secret is derived under: a new label is a new key, and every cursor before it void.
pub const LABEL: &[u8] = b"ordersync listing cursors v1";
/// The first byte of every cursor: the format.
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Longer than any cursor we make (a listing's last key is ~200 bytes): refused before decoding.
const MAX_CURSOR_CHARS: usize = 1024;

pub struct CursorKey(RandomizedNonceKey);

impl CursorKey {
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, CryptoError> {
        RandomizedNonceKey::new(&AES_256_GCM_SIV, secret)
            .map(Self)
            .map_err(|_| CryptoError::Malformed)
    }

    /// `plain`, sealed for the listing `scope` (bound as associated data), as URL-safe text.
    pub fn seal(&self, scope: &str, plain: &[u8]) -> Result<String, CryptoError> {
        let mut sealed = plain.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(scope.as_bytes()), &mut sealed)
            .map_err(|_| CryptoError::Malformed)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// What `cursor` holds, if this key sealed it for `scope`; `None` for anything else.
    pub fn open(&self, scope: &str, cursor: &str) -> Option<Vec<u8>> {
        if cursor.len() > MAX_CURSOR_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(scope.as_bytes()), &mut sealed)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> CursorKey {
        CursorKey::from_secret(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_cursor_opens_only_under_its_key_and_its_listing() {
        let plain = br#"{"PK":"ORDER#ord_1","SK":"ORDER"}"#;
        let cursor = key(1).seal("LIST#CUSTOMER#u1", plain).unwrap();
        // Another instance derives the same secret, and its key opens what this one sealed.
        assert_eq!(key(1).open("LIST#CUSTOMER#u1", &cursor).unwrap(), plain);
        assert_eq!(key(1).open("LIST#CUSTOMER#u2", &cursor), None);
        assert_eq!(key(2).open("LIST#CUSTOMER#u1", &cursor), None);
        // URL-safe as it is: it travels in a query string untouched.
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn two_cursors_of_one_position_differ_and_a_changed_one_is_refused() {
        let (k, scope) = (key(1), "s");
        let (a, b) = (k.seal(scope, b"x").unwrap(), k.seal(scope, b"x").unwrap());
        assert_ne!(a, b);
        let mut bytes = URL_SAFE_NO_PAD.decode(&a).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert_eq!(
                k.open(scope, &URL_SAFE_NO_PAD.encode(&bytes)),
                None,
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        assert_eq!(
            k.open(scope, &URL_SAFE_NO_PAD.encode(&bytes)).unwrap(),
            b"x"
        );
    }

    #[test]
    fn what_is_not_a_cursor_is_refused_without_a_panic() {
        let k = key(1);
        let long = "A".repeat(MAX_CURSOR_CHARS + 1);
        for garbage in ["", "%%%", "AQ", "eyJQSyI6IngifQ", &long] {
            assert_eq!(k.open("s", garbage), None, "{garbage}");
        }
        // The envelope's cursors, issued before this key: refused, the client starts again.
        assert_eq!(k.open("s", &"A".repeat(400)), None);
    }
}
