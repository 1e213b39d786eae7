//! Field-level envelope encryption of personal and payment data.
//!
//! Each value is sealed with AES-256-GCM under a data key that KMS made (`GenerateDataKey`) and
//! wrapped; the wrapped key travels inside the sealed value ([`format`]). A value is bound to where it
//! lives twice over:
//!
//! - the KMS encryption context of its data key names the table and the attribute, so KMS itself
//!   refuses to unwrap a key for another attribute;
//! - the GCM associated data names the table, the item (`PK`, `SK`) and the attribute, so a value
//!   copied to another item or attribute fails authentication.
//!
//! The item is not in the KMS context on purpose: a data key seals thousands of values across items
//! (see [`cache`]), and one KMS call per item is exactly what the cache exists to avoid.

pub mod blind_index;
pub mod cache;
pub mod cursors;
pub mod format;
pub mod kms;
pub mod reencrypt;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ApiError;
pub use cache::{CachePolicy, CacheStats};
use cache::{CachedKey, KeyCache};

pub type KeyBytes = Zeroizing<[u8; 32]>;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed value is malformed")]
    Malformed,
    /// Tampered, truncated, or opened at another location than it was sealed for.
    #[error("sealed value failed authentication")]
    Integrity,
    /// KMS refused: key disabled or deleted, access denied.
    #[error("KMS refused the key operation: {0}")]
    KeyDenied(String),
    /// KMS could not be reached or kept throttling after retries.
    #[error("KMS is unavailable: {0}")]
    KeyUnavailable(String),
}

impl CryptoError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "SEALED_VALUE_MALFORMED",
            Self::Integrity => "SEALED_VALUE_INTEGRITY",
            Self::KeyDenied(_) => "KMS_DENIED",
            Self::KeyUnavailable(_) => "KMS_UNAVAILABLE",
        }
    }
}

impl From<CryptoError> for ApiError {
    fn from(err: CryptoError) -> Self {
        // The client learns only that something failed on our side; the log says what.
        tracing::error!(crypto_error = err.code(), error = %err, "encryption failure");
        match err {
            CryptoError::KeyUnavailable(_) => ApiError::unavailable(),
            _ => ApiError::new(
                lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "an unexpected error occurred",
            ),
        }
    }
}

/// The KMS encryption context of a data key: which table and attribute its values belong to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyContext {
    pub table: String,
    pub field: String,
}

impl KeyContext {
    pub fn new(table: impl Into<String>, field: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            field: field.into(),
        }
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app".to_owned(), "ordersync".to_owned()),
            ("table".to_owned(), self.table.clone()),
            ("field".to_owned(), self.field.clone()),
        ])
    }
}

/// Where a value lives: a table, an item, an attribute.
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    pub table: &'a str,
    pub pk: &'a str,
    pub sk: &'a str,
    pub field: &'a str,
}

impl Location<'_> {
    fn key_context(&self) -> KeyContext {
        KeyContext::new(self.table, self.field)
    }
}

/// A sealed value as stored: `enc1:<base64>`. Its type keeps ciphertext and plaintext apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl Sealed {
    pub const PREFIX: &'static str = "enc1:";

    /// Recognises a stored string as a sealed value.
    pub fn from_stored(value: &str) -> Option<Self> {
        value
            .starts_with(Self::PREFIX)
            .then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, CryptoError> {
        let encoded = self
            .0
            .strip_prefix(Self::PREFIX)
            .ok_or(CryptoError::Malformed)?;
        STANDARD.decode(encoded).map_err(|_| CryptoError::Malformed)
    }

    /// When the data key of this value was made (epoch milliseconds).
    pub fn key_time(&self) -> Result<u64, CryptoError> {
        Ok(format::parse(&self.bytes()?)?.key_time)
    }

    /// Recognises a stored binary value as a sealed value (see [`binary`]).
    pub fn from_binary(bytes: &[u8]) -> Option<Self> {
        format::parse(bytes)
            .is_ok()
            .then(|| Self(format!("{}{}", Self::PREFIX, STANDARD.encode(bytes))))
    }

    /// The value's bytes, as [`binary`] stores them.
    pub fn to_binary(&self) -> Result<Vec<u8>, CryptoError> {
        self.bytes()
    }
}

/// A sealed attribute stored as DynamoDB binary (`B`) rather than `enc1:` text: the same bytes
/// without base64's third, which on an item near a kilobyte's edge is the difference between one
/// write unit and two. `#[serde(with = "crate::crypto::binary")]` on a [`Sealed`] field; a value
/// stored as text still reads.
pub mod binary {
    use serde::de::{self, Deserializer, Visitor};
    use serde::{Serializer, ser};

    use super::Sealed;

    pub fn serialize<S: Serializer>(sealed: &Sealed, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = sealed
            .to_binary()
            .map_err(|_| ser::Error::custom("a malformed sealed value"))?;
        serializer.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Sealed, D::Error> {
        deserializer.deserialize_any(SealedVisitor)
    }

    /// The same for an optional value: `#[serde(default, skip_serializing_if = "Option::is_none",
    /// with = "crate::crypto::binary::option")]`.
    pub mod option {
        use serde::{Deserializer, Serializer};

        use super::Sealed;

        pub fn serialize<S: Serializer>(
            sealed: &Option<Sealed>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match sealed {
                Some(sealed) => super::serialize(sealed, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Sealed>, D::Error> {
            super::deserialize(deserializer).map(Some)
        }
    }

    struct SealedVisitor;

    impl Visitor<'_> for SealedVisitor {
        type Value = Sealed;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a sealed value (binary, or enc1: text)")
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Sealed, E> {
            Sealed::from_binary(bytes).ok_or_else(|| E::custom("a malformed sealed value"))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Sealed, E> {
            Sealed::from_stored(text).ok_or_else(|| E::custom("a malformed sealed value"))
        }
    }
}

/// Where data keys come from: KMS in production ([`kms::KmsKeySource`]).
pub trait KeySource: Send + Sync + 'static {
    /// A new data key for `context`: its plaintext and its wrapped form.
    fn generate(
        &self,
        context: &KeyContext,
    ) -> impl Future<Output = Result<(KeyBytes, Vec<u8>), CryptoError>> + Send;

    /// The plaintext of a wrapped data key; fails if `context` is not the one it was made for.
    fn unwrap(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> impl Future<Output = Result<KeyBytes, CryptoError>> + Send;
}

/// Seals and opens values, with a data-key cache in front of the key source.
pub struct Envelope<S> {
    source: S,
    cache: KeyCache,
}

impl<S: KeySource> Envelope<S> {
    pub fn new(source: S, policy: CachePolicy) -> Self {
        Self {
            source,
            cache: KeyCache::new(policy),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    async fn encrypting_key(&self, context: &KeyContext) -> Result<Arc<CachedKey>, CryptoError> {
        if let Some(key) = self.cache.encrypting_key(context) {
            return Ok(key);
        }
        let (plaintext, wrapped) = self.source.generate(context).await?;
        let key_time = jiff::Timestamp::now().as_millisecond().max(0) as u64;
        let key = CachedKey::new(plaintext, wrapped, key_time);
        self.cache.insert_encrypting(context, key.clone());
        Ok(key)
    }

    async fn decrypting_key(
        &self,
        wrapped: &[u8],
        key_time: u64,
        context: &KeyContext,
    ) -> Result<Arc<CachedKey>, CryptoError> {
        if let Some(key) = self.cache.decrypting_key(wrapped, context) {
            return Ok(key);
        }
        let plaintext = self.source.unwrap(wrapped, context).await?;
        let key = CachedKey::new(plaintext, wrapped.to_vec(), key_time);
        self.cache.insert_decrypting(context, key.clone());
        Ok(key)
    }

    pub async fn seal(&self, at: &Location<'_>, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let key = self.encrypting_key(&at.key_context()).await?;
        let header = format::header(key.key_time, &key.wrapped)?;
        let aad = format::associated_data(at.table, at.pk, at.sk, at.field, &header);
        let cipher = RandomizedNonceKey::new(&AES_256_GCM, key.plaintext.as_ref())
            .map_err(|_| CryptoError::Malformed)?;
        let mut body = plaintext.to_vec();
        let nonce = cipher
            .seal_in_place_append_tag(Aad::from(&aad), &mut body)
            .map_err(|_| CryptoError::Integrity)?;
        let bytes = format::encode(key.key_time, &key.wrapped, nonce.as_ref(), &body)?;
        Ok(Sealed(format!(
            "{}{}",
            Sealed::PREFIX,
            STANDARD.encode(bytes)
        )))
    }

    pub async fn open(
        &self,
        at: &Location<'_>,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let bytes = sealed.bytes()?;
        let parts = format::parse(&bytes)?;
        let key = self
            .decrypting_key(parts.wrapped, parts.key_time, &at.key_context())
            .await?;
        let aad = format::associated_data(at.table, at.pk, at.sk, at.field, parts.header);
        let cipher = RandomizedNonceKey::new(&AES_256_GCM, key.plaintext.as_ref())
            .map_err(|_| CryptoError::Malformed)?;
        let mut body = Zeroizing::new(parts.body.to_vec());
        let plaintext_len = cipher
            .open_in_place(Nonce::from(&parts.nonce), Aad::from(&aad), &mut body)
            .map_err(|_| CryptoError::Integrity)?
            .len();
        body.truncate(plaintext_len);
        Ok(body)
    }

    pub async fn seal_str(
        &self,
        at: &Location<'_>,
        plaintext: &str,
    ) -> Result<Sealed, CryptoError> {
        self.seal(at, plaintext.as_bytes()).await
    }

    pub async fn open_str(
        &self,
        at: &Location<'_>,
        sealed: &Sealed,
    ) -> Result<String, CryptoError> {
        let bytes = self.open(at, sealed).await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CryptoError::Malformed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A key source that wraps keys by XOR with a secret and tags them with their context, counting
    /// its calls: the cache and format logic without KMS.
    #[derive(Default)]
    pub struct LocalKeys {
        pub generated: AtomicU64,
        pub unwrapped: AtomicU64,
    }

    fn tag(context: &KeyContext) -> Vec<u8> {
        format!("{}/{}", context.table, context.field).into_bytes()
    }

    impl KeySource for LocalKeys {
        async fn generate(&self, context: &KeyContext) -> Result<(KeyBytes, Vec<u8>), CryptoError> {
            self.generated.fetch_add(1, Ordering::SeqCst);
            let mut key = Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(key.as_mut()).unwrap();
            let mut wrapped: Vec<u8> = key.iter().map(|b| b ^ 0x5a).collect();
            wrapped.extend(tag(context));
            Ok((key, wrapped))
        }

        async fn unwrap(
            &self,
            wrapped: &[u8],
            context: &KeyContext,
        ) -> Result<KeyBytes, CryptoError> {
            self.unwrapped.fetch_add(1, Ordering::SeqCst);
            if wrapped.len() < 32 || wrapped[32..] != tag(context) {
                return Err(CryptoError::Integrity);
            }
            let mut key = Zeroizing::new([0u8; 32]);
            for (k, w) in key.iter_mut().zip(wrapped) {
                *k = w ^ 0x5a;
            }
            Ok(key)
        }
    }

    fn at<'a>(pk: &'a str, field: &'a str) -> Location<'a> {
        Location {
            table: "ordersync-test",
            pk,
            sk: "PROFILE",
            field,
        }
    }

    fn envelope() -> Envelope<LocalKeys> {
        Envelope::new(LocalKeys::default(), CachePolicy::default())
    }

    #[tokio::test]
    async fn values_round_trip_and_never_repeat() {
        let env = envelope();
        for value in ["", "kim@example.com", &"가".repeat(300)] {
            let a = env.seal_str(&at("USER#1", "email"), value).await.unwrap();
            let b = env.seal_str(&at("USER#1", "email"), value).await.unwrap();
            assert!(a.as_str().starts_with("enc1:"));
            assert_ne!(a, b, "fresh nonce per value");
            assert!(!a.as_str().contains(value) || value.is_empty());
            assert_eq!(
                env.open_str(&at("USER#1", "email"), &a).await.unwrap(),
                value
            );
        }
    }

    #[tokio::test]
    async fn a_value_moved_to_another_item_or_field_does_not_open() {
        let env = envelope();
        let sealed = env
            .seal_str(&at("USER#1", "email"), "kim@example.com")
            .await
            .unwrap();
        let other_item = env.open(&at("USER#2", "email"), &sealed).await;
        assert!(matches!(other_item, Err(CryptoError::Integrity)));
        let other_field = env.open(&at("USER#1", "name"), &sealed).await;
        assert!(matches!(other_field, Err(CryptoError::Integrity)));
        let other_table = env
            .open(
                &Location {
                    table: "elsewhere",
                    ..at("USER#1", "email")
                },
                &sealed,
            )
            .await;
        assert!(matches!(other_table, Err(CryptoError::Integrity)));
    }

    #[tokio::test]
    async fn any_flipped_bit_is_detected() {
        let env = envelope();
        let sealed = env
            .seal_str(&at("USER#1", "email"), "kim@example.com")
            .await
            .unwrap();
        let bytes = sealed.bytes().unwrap();
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            let forged = Sealed(format!("enc1:{}", STANDARD.encode(&tampered)));
            assert!(
                env.open(&at("USER#1", "email"), &forged).await.is_err(),
                "byte {i}"
            );
        }
        assert!(matches!(
            env.open(&at("USER#1", "email"), &Sealed("enc1:!!".into()))
                .await,
            Err(CryptoError::Malformed)
        ));
    }

    #[tokio::test]
    async fn a_binary_attribute_stores_the_bytes_and_reads_text_too() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Record {
            #[serde(with = "super::binary")]
            contact: Sealed,
        }
        let env = envelope();
        let sealed = env.seal_str(&at("ORDER#1", "contact"), "x").await.unwrap();
        let record = Record {
            contact: sealed.clone(),
        };
        let item = crate::storage::to_item(&record).unwrap();
        let stored = item["contact"].as_b().expect("stored as binary");
        assert_eq!(stored.as_ref(), sealed.bytes().unwrap());
        // base64's third is gone.
        assert!(stored.as_ref().len() * 4 / 3 <= sealed.as_str().len() - Sealed::PREFIX.len());
        assert_eq!(crate::storage::from_item::<Record>(item).unwrap(), record);

        let text = HashMap::from([(
            "contact".to_owned(),
            AttributeValue::S(sealed.as_str().into()),
        )]);
        assert_eq!(crate::storage::from_item::<Record>(text).unwrap(), record);
        for junk in [
            AttributeValue::B(vec![1, 2, 3].into()),
            AttributeValue::S("plain".into()),
            AttributeValue::N("1".into()),
        ] {
            let item = HashMap::from([("contact".to_owned(), junk)]);
            assert!(crate::storage::from_item::<Record>(item).is_err());
        }
    }

    #[tokio::test]
    async fn an_optional_binary_attribute_is_absent_or_binary() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Record {
            #[serde(
                default,
                skip_serializing_if = "Option::is_none",
                with = "super::binary::option"
            )]
            secret: Option<Sealed>,
        }
        let sealed = envelope()
            .seal_str(&at("PAYMENT#1", "secret"), "x")
            .await
            .unwrap();
        let some = Record {
            secret: Some(sealed.clone()),
        };
        let item = crate::storage::to_item(&some).unwrap();
        assert_eq!(
            item["secret"].as_b().expect("stored as binary").as_ref(),
            sealed.bytes().unwrap()
        );
        assert_eq!(crate::storage::from_item::<Record>(item).unwrap(), some);
        let text = HashMap::from([(
            "secret".to_owned(),
            AttributeValue::S(sealed.as_str().into()),
        )]);
        assert_eq!(crate::storage::from_item::<Record>(text).unwrap(), some);

        let none = Record { secret: None };
        let item = crate::storage::to_item(&none).unwrap();
        assert!(!item.contains_key("secret"));
        assert_eq!(crate::storage::from_item::<Record>(item).unwrap(), none);
    }

    #[tokio::test]
    async fn one_data_key_serves_a_thousand_values() {
        let env = envelope();
        let mut sealed = Vec::new();
        for i in 0..1000 {
            let pk = format!("USER#{i}");
            sealed.push((
                pk.clone(),
                env.seal_str(&at(&pk, "email"), "x@example.com")
                    .await
                    .unwrap(),
            ));
        }
        for (pk, value) in &sealed {
            env.open_str(&at(pk, "email"), value).await.unwrap();
        }
        assert_eq!(env.source().generated.load(Ordering::SeqCst), 1);
        // The sealing instance already holds the key: reading back costs no unwrap at all.
        assert_eq!(env.source().unwrapped.load(Ordering::SeqCst), 0);

        // Another instance (a cold one) unwraps once, then serves from its cache.
        let reader = Envelope::new(LocalKeys::default(), CachePolicy::default());
        for (pk, value) in &sealed {
            reader.open_str(&at(pk, "email"), value).await.unwrap();
        }
        assert_eq!(reader.source().unwrapped.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_use_bound_rotates_data_keys() {
        let env = Envelope::new(
            LocalKeys::default(),
            CachePolicy {
                max_uses: 10,
                ..CachePolicy::default()
            },
        );
        for i in 0..25 {
            env.seal_str(&at(&format!("USER#{i}"), "email"), "x")
                .await
                .unwrap();
        }
        assert_eq!(env.source().generated.load(Ordering::SeqCst), 3);
    }
}
