//! Idempotent requests. A client's `Idempotency-Key` names what its request makes: the new thing's
//! id is derived from the caller and the key (an order's: `orders::order_id_for`; a refund's:
//! `payments::refunds`; a store's: `stores::store_id_for`), so running a request again is making
//! an item that exists already. One conditional write refuses it, DynamoDB returns the standing
//! item with the refusal (a store, opened by a transaction, is read again), and the request is
//! answered with that. Nothing is written beside the thing itself: no record of the request, no
//! claim before the work, nothing that expires. The same key with another body is refused (422
//! `IDEMPOTENCY_KEY_REUSED`): the thing keeps the [`RequestDigest`] of the request that made it.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub fn validate_key(key: &str) -> Result<(), ApiError> {
    let ok = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if ok { Ok(()) } else { Err(invalid_key()) }
}

/// 400 `IDEMPOTENCY_KEY_INVALID`: a key sent, but not one [`validate_key`] takes.
pub fn invalid_key() -> ApiError {
    ApiError::bad_request(
        "IDEMPOTENCY_KEY_INVALID",
        "Idempotency-Key: 1 to 255 visible ASCII characters",
    )
}

/// The id a key names: the first `digits` hex digits of the SHA-256 of `parts` (the caller, the
/// key, and what scopes them) joined by newlines.
pub fn id_for(parts: &[&str], digits: usize) -> String {
    let mut id = format!("{:x}", Sha256::digest(parts.join("\n")));
    id.truncate(digits);
    id
}

/// A request's body, compared: the first 12 bytes of the SHA-256 of its JSON document in canonical
/// form (keys sorted, no whitespace), so formatting does not count as a different body. It only
/// tells a client's mistake (a key used again for another order) from a retry, which 96 bits do
/// with room to spare; stored as 12 bytes of binary, as an order must stay under a kilobyte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDigest([u8; 12]);

impl RequestDigest {
    pub fn of(body: &[u8]) -> Self {
        let canonical = serde_json::from_slice::<serde_json::Value>(body)
            .map(|v| v.to_string().into_bytes())
            .unwrap_or_else(|_| body.to_vec());
        let digest = Sha256::digest(&canonical);
        let mut first = [0; 12];
        first.copy_from_slice(&digest[..12]);
        Self(first)
    }

    /// Refuses a request that reuses the key of one whose digest was `made_by` (`None`: a thing
    /// made before digests were kept, under a key that cannot be a client's).
    pub fn check_same(self, made_by: Option<Self>) -> Result<(), ApiError> {
        if made_by == Some(self) {
            Ok(())
        } else {
            Err(ApiError::new(
                lambda_http::http::StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with a different request",
            ))
        }
    }
}

impl Serialize for RequestDigest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for RequestDigest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;

        impl Visitor<'_> for Bytes {
            type Value = RequestDigest;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("12 bytes")
            }

            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<RequestDigest, E> {
                <[u8; 12]>::try_from(bytes)
                    .map(RequestDigest)
                    .map_err(|_| E::invalid_length(bytes.len(), &self))
            }
        }

        deserializer.deserialize_bytes(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ids_keys_name_never_change() {
        // Orders and refunds already stored carry these: a retry must meet them after any deploy.
        assert_eq!(
            crate::orders::order_id_for("c1", "key-1"),
            "ord_e320551728eb5a82ee6170e4caf71068"
        );
        assert_eq!(id_for(&["c1", "key-1"], 24), "d60b3f9794584179acf3e831");
        assert_eq!(
            crate::stores::store_id_for("o1", "key-1"),
            "ed697567be778e0a15643fc7881b3eac"
        );
    }

    #[test]
    fn formatting_does_not_change_the_digest_but_content_does() {
        let a = RequestDigest::of(br#"{"b": 1, "a": [1, 2]}"#);
        assert_eq!(a, RequestDigest::of(br#"{"a":[1,2],"b":1}"#));
        assert_ne!(a, RequestDigest::of(br#"{"a":[2,1],"b":1}"#));
        assert!(a.check_same(Some(a)).is_ok());
        let other = RequestDigest::of(b"{}");
        assert_eq!(
            a.check_same(Some(other)).unwrap_err().code,
            "IDEMPOTENCY_KEY_REUSED"
        );
        assert!(a.check_same(None).is_err());
    }

    #[test]
    fn a_digest_is_stored_as_twelve_bytes_of_binary() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Made {
            digest: RequestDigest,
        }
        let made = Made {
            digest: RequestDigest::of(b"{}"),
        };
        let item = crate::storage::to_item(&made).unwrap();
        assert!(matches!(
            &item["digest"],
            aws_sdk_dynamodb::types::AttributeValue::B(b) if b.as_ref().len() == 12
        ));
        assert_eq!(crate::storage::from_item::<Made>(item).unwrap(), made);
        let short = std::collections::HashMap::from([(
            "digest".to_owned(),
            aws_sdk_dynamodb::types::AttributeValue::B(vec![1; 16].into()),
        )]);
        assert!(crate::storage::from_item::<Made>(short).is_err());
    }

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(validate_key("3f6a1c0e-9b7d-4e2a-8c55-0d1e2f3a4b5c").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("has space").is_err());
        assert!(validate_key(&"k".repeat(256)).is_err());
        assert_eq!(
            validate_key("키").unwrap_err().code,
            "IDEMPOTENCY_KEY_INVALID"
        );
    }
}
