//! The sealed-value format, version 1. Self-describing: everything needed to open a value, except the
//! KMS key and the value's location, travels with it.
//!
//! ```text
//! version  u8      = 1
//! keyTime  u64 BE  when the data key was made (epoch milliseconds): what re-encryption selects on
//! wrapLen  u16 BE
//! wrapped  [wrapLen]   the data key, encrypted by KMS (a CiphertextBlob)
//! nonce    [12]        random, per value
//! body     [..]        AES-256-GCM ciphertext followed by its 16-byte tag
//! ```
//!
//! Stored as text: `enc1:` followed by the standard base64 of those bytes.

use super::CryptoError;

pub const VERSION: u8 = 1;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
const FIXED_HEADER: usize = 1 + 8 + 2;

#[derive(Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    pub key_time: u64,
    pub wrapped: &'a [u8],
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext and tag.
    pub body: &'a [u8],
    /// Version, key time and wrapped key: authenticated along with the location.
    pub header: &'a [u8],
}

pub fn encode(
    key_time: u64,
    wrapped: &[u8],
    nonce: &[u8; NONCE_LEN],
    body: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    // KMS ciphertext blobs are a few hundred bytes; anything that does not fit is not one.
    let wrap_len = u16::try_from(wrapped.len()).map_err(|_| CryptoError::Malformed)?;
    let mut out = Vec::with_capacity(FIXED_HEADER + wrapped.len() + NONCE_LEN + body.len());
    out.push(VERSION);
    out.extend_from_slice(&key_time.to_be_bytes());
    out.extend_from_slice(&wrap_len.to_be_bytes());
    out.extend_from_slice(wrapped);
    out.extend_from_slice(nonce);
    out.extend_from_slice(body);
    Ok(out)
}

/// The header that [`encode`] would write, for use as associated data before the body exists.
pub fn header(key_time: u64, wrapped: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut out = encode(key_time, wrapped, &[0; NONCE_LEN], &[])?;
    out.truncate(FIXED_HEADER + wrapped.len());
    Ok(out)
}

pub fn parse(bytes: &[u8]) -> Result<Parts<'_>, CryptoError> {
    let (&version, rest) = bytes.split_first().ok_or(CryptoError::Malformed)?;
    if version != VERSION {
        return Err(CryptoError::Malformed);
    }
    let (time, rest) = rest
        .split_first_chunk::<8>()
        .ok_or(CryptoError::Malformed)?;
    let (len, rest) = rest
        .split_first_chunk::<2>()
        .ok_or(CryptoError::Malformed)?;
    let wrap_len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < wrap_len + NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (wrapped, rest) = rest.split_at(wrap_len);
    let (nonce, body) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(CryptoError::Malformed)?;
    Ok(Parts {
        key_time: u64::from_be_bytes(*time),
        wrapped,
        nonce: *nonce,
        body,
        header: &bytes[..FIXED_HEADER + wrap_len],
    })
}

/// Associated data binding a value to its table, item and attribute, and to its own header. Each part
/// is length-prefixed, so no two different locations produce the same bytes.
pub fn associated_data(table: &str, pk: &str, sk: &str, field: &str, header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + header.len());
    for part in [
        b"ordersync/field/v1".as_slice(),
        table.as_bytes(),
        pk.as_bytes(),
        sk.as_bytes(),
        field.as_bytes(),
        header,
    ] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_parse_round_trip() {
        let wrapped = vec![7u8; 150];
        let nonce = [9u8; NONCE_LEN];
        let body = vec![1u8; 40];
        let bytes = encode(1_800_000_000_000, &wrapped, &nonce, &body).unwrap();
        let parts = parse(&bytes).unwrap();
        assert_eq!(parts.key_time, 1_800_000_000_000);
        assert_eq!(parts.wrapped, &wrapped[..]);
        assert_eq!(parts.nonce, nonce);
        assert_eq!(parts.body, &body[..]);
        assert_eq!(
            parts.header,
            &header(1_800_000_000_000, &wrapped).unwrap()[..]
        );
        assert!(matches!(
            encode(1, &vec![0; 70_000], &nonce, &body),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn truncated_or_unknown_versions_are_malformed() {
        let bytes = encode(1, &[1, 2, 3], &[0; NONCE_LEN], &[0; TAG_LEN]).unwrap();
        assert!(parse(&bytes).is_ok());
        for cut in 0..bytes.len() {
            assert!(
                matches!(parse(&bytes[..cut]), Err(CryptoError::Malformed)),
                "{cut}"
            );
        }
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(parse(&v2).is_err());
    }

    #[test]
    fn locations_never_share_associated_data() {
        let a = associated_data("t", "USER#1", "PROFILE", "email", b"h");
        assert_ne!(a, associated_data("t", "USER#2", "PROFILE", "email", b"h"));
        assert_ne!(a, associated_data("t", "USER#1", "PROFILE", "name", b"h"));
        assert_ne!(a, associated_data("t2", "USER#1", "PROFILE", "email", b"h"));
        // Moving a boundary between parts changes the bytes too.
        assert_ne!(
            associated_data("t", "ab", "c", "f", b""),
            associated_data("t", "a", "bc", "f", b"")
        );
    }
}
