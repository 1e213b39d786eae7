//! Data keys from AWS KMS: `GenerateDataKey` (AES_256) and `Decrypt`, both under the value's
//! encryption context; and secrets derived by an HMAC key that never leaves KMS (`GenerateMac`).
//! Throttling and transient failures are retried with exponential backoff by the SDK's standard
//! retry mode (configured where the client is built, see `App`).

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, MacAlgorithmSpec};
use zeroize::Zeroizing;

use super::{CryptoError, KeyBytes, KeyContext, KeySource};

#[derive(Clone)]
pub struct KmsKeySource {
    client: Client,
    key_id: String,
}

impl KmsKeySource {
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }
}

fn classify<E, R>(err: SdkError<E, R>) -> CryptoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let detail = aws_sdk_kms::error::DisplayErrorContext(&err).to_string();
    match code.as_deref() {
        // A wrapped key presented under another context, or corrupted.
        Some("InvalidCiphertextException" | "IncorrectKeyException") => CryptoError::Integrity,
        Some(
            "AccessDeniedException"
            | "DisabledException"
            | "KMSInvalidStateException"
            | "NotFoundException"
            | "KeyUnavailableException"
            | "InvalidKeyUsageException",
        ) => CryptoError::KeyDenied(detail),
        // Throttling that outlasted the retries, time-outs, connection failures.
        _ => CryptoError::KeyUnavailable(detail),
    }
}

fn key_bytes(blob: Option<Blob>) -> Result<KeyBytes, CryptoError> {
    let blob = blob.ok_or(CryptoError::Malformed)?;
    let bytes: &[u8] = blob.as_ref();
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != key.len() {
        return Err(CryptoError::Malformed);
    }
    key.copy_from_slice(bytes);
    // The SDK's own buffer cannot be wiped from here; it is dropped at once.
    drop(blob);
    Ok(key)
}

impl KeySource for KmsKeySource {
    async fn generate(&self, context: &KeyContext) -> Result<(KeyBytes, Vec<u8>), CryptoError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context.to_map().into_iter().collect()))
            .send()
            .await
            .map_err(classify)?;
        let wrapped = out
            .ciphertext_blob
            .clone()
            .ok_or(CryptoError::Malformed)?
            .into_inner();
        Ok((key_bytes(out.plaintext)?, wrapped))
    }

    async fn unwrap(&self, wrapped: &[u8], context: &KeyContext) -> Result<KeyBytes, CryptoError> {
        let out = self
            .client
            .decrypt()
            // Pinning the key id: a blob made under any other key is refused by KMS.
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(context.to_map().into_iter().collect()))
            .send()
            .await
            .map_err(classify)?;
        key_bytes(out.plaintext)
    }
}

/// The secret an HMAC key in KMS (`HMAC_256`) derives under `label`: HMAC-SHA256 of the label, the
/// same in every instance and never stored. Whoever may call `GenerateMac` with the key may derive
/// it; the key itself cannot be exported.
pub async fn derive_secret(
    client: &Client,
    key_id: &str,
    label: &[u8],
) -> Result<KeyBytes, CryptoError> {
    let out = client
        .generate_mac()
        .key_id(key_id)
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .message(Blob::new(label))
        .send()
        .await
        .map_err(classify)?;
    key_bytes(out.mac)
}
