//! Menu images: browsers upload straight to a private S3 bucket with a presigned POST whose policy
//! makes S3 itself enforce the limits (type, size, key); a check that runs on every created object
//! sniffs the content and deletes anything that is not what it claims — the backstop where a policy
//! condition is not enforced (moto's S3 does not enforce them). Reads go through presigned GETs.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;
/// How long an upload form stays usable.
const UPLOAD_SECONDS: i64 = 10 * 60;
/// Image URLs are signed for windows of this length, valid for two windows: a menu fetched at any
/// moment carries URLs good for at least one more window, and re-renders within a window are
/// byte-identical (so ETags stay meaningful).
pub const URL_WINDOW_SECONDS: i64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/webp")]
    Webp,
}

impl ImageType {
    pub fn mime(self) -> &'static str {
        match self {
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
            ImageType::Webp => "image/webp",
        }
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime.split(';').next().unwrap_or("").trim() {
            "image/jpeg" => Some(ImageType::Jpeg),
            "image/png" => Some(ImageType::Png),
            "image/webp" => Some(ImageType::Webp),
            _ => None,
        }
    }

    /// What the first bytes of a file say it is.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        match head {
            [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some(ImageType::Png),
            [0xff, 0xd8, 0xff, ..] => Some(ImageType::Jpeg),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(ImageType::Webp),
            _ => None,
        }
    }
}

/// `POST …/items/{itemId}/image`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UploadRequest {
    pub content_type: ImageType,
}

/// A browser form upload: POST `fields` and then the file (as the last field, `file`) to `url`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadForm {
    pub url: String,
    pub fields: Vec<(String, String)>,
    pub key: String,
    pub max_bytes: u64,
    pub expires_at: String,
}

/// Where a store's item images live: `stores/<storeId>/items/<itemId>/<uuid>`.
pub fn image_key(store_id: &str, item_id: &str) -> String {
    format!(
        "stores/{store_id}/items/{item_id}/{}",
        uuid::Uuid::new_v4().simple()
    )
}

/// The store and item an image key belongs to.
pub fn parse_key(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("stores"), Some(store), Some("items"), Some(item), Some(name), None)
            if !store.is_empty() && !item.is_empty() && !name.is_empty() =>
        {
            Some((store, item))
        }
        _ => None,
    }
}

/// S3 access for images: the bucket, how browsers reach it, and (made on first use) the client.
pub struct Images {
    pub bucket: String,
    sdk: aws_types::SdkConfig,
    client: OnceLock<aws_sdk_s3::Client>,
    /// Path-style base URL where one is configured (the local emulator); else virtual-hosted S3.
    endpoint: Option<String>,
}

impl Images {
    pub fn new(sdk: &aws_types::SdkConfig, bucket: String) -> Self {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok();
        Self {
            bucket,
            sdk: sdk.clone(),
            client: OnceLock::new(),
            endpoint,
        }
    }

    /// The S3 client, built on first use: the menu read only signs URLs, and so neither builds nor
    /// links it (with its checksum tables, ~1 MB of the binary; docs/PERFORMANCE.md).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        self.client.get_or_init(|| {
            // Objects (images, exports, archives) take longer than an item: S3 gets more time.
            let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build();
            let config = aws_sdk_s3::config::Builder::from(&self.sdk)
                .timeout_config(timeouts)
                .force_path_style(self.endpoint.is_some())
                .interceptor(crate::sdk_calls::SpanRecorder)
                .build();
            aws_sdk_s3::Client::from_conf(config)
        })
    }

    async fn credentials(&self, purpose: &str) -> Result<Credentials, ApiError> {
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| ApiError::internal(format!("no AWS credentials to sign {purpose}")))?;
        provider
            .provide_credentials()
            .await
            .map_err(ApiError::internal)
    }

    fn region(&self) -> &str {
        self.sdk
            .region()
            .map_or("us-east-1", |region| region.as_ref())
    }

    fn bucket_url(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{}/{}", endpoint.trim_end_matches('/'), self.bucket),
            None => format!("https://{}.s3.{}.amazonaws.com", self.bucket, self.region()),
        }
    }

    /// A presigned POST (SigV4) for one image of `content_type` at `key`.
    pub async fn upload_form(
        &self,
        key: &str,
        content_type: ImageType,
    ) -> Result<UploadForm, ApiError> {
        let credentials = self.credentials("an upload").await?;
        let now = jiff::Timestamp::now();
        let expires = now + jiff::SignedDuration::from_secs(UPLOAD_SECONDS);
        let date = now.strftime("%Y%m%d").to_string();
        let amz_date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let credential = format!(
            "{}/{date}/{}/s3/aws4_request",
            credentials.access_key_id(),
            self.region()
        );
        let mut fields = vec![
            ("key".to_owned(), key.to_owned()),
            ("Content-Type".to_owned(), content_type.mime().to_owned()),
            ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            ("x-amz-credential".to_owned(), credential),
            ("x-amz-date".to_owned(), amz_date),
        ];
        if let Some(token) = credentials.session_token() {
            fields.push(("x-amz-security-token".to_owned(), token.to_owned()));
        }
        let mut conditions = vec![
            serde_json::json!({"bucket": self.bucket}),
            serde_json::json!(["content-length-range", 1, MAX_IMAGE_BYTES]),
        ];
        conditions.extend(fields.iter().map(|(k, v)| serde_json::json!({ k: v })));
        let policy = serde_json::json!({
            "expiration": expires.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
            "conditions": conditions,
        });
        let policy = STANDARD.encode(policy.to_string());
        let signing_key = aws_sigv4::sign::v4::generate_signing_key(
            credentials.secret_access_key(),
            SystemTime::from(now),
            self.region(),
            "s3",
        );
        let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, policy.as_bytes());
        fields.push(("policy".to_owned(), policy));
        fields.push(("x-amz-signature".to_owned(), signature));
        Ok(UploadForm {
            url: self.bucket_url(),
            fields,
            key: key.to_owned(),
            max_bytes: MAX_IMAGE_BYTES,
            expires_at: expires.to_string(),
        })
    }

    /// A GET URL for `key`, signed at the start of the current window (see [`URL_WINDOW_SECONDS`]).
    pub async fn read_url(&self, key: &str, window: i64) -> Result<String, ApiError> {
        let start = jiff::Timestamp::from_second(window * URL_WINDOW_SECONDS)
            .map_err(ApiError::internal)?;
        let credentials = self.credentials("an image URL").await?;
        let url = format!(
            "{}/{}?x-id=GetObject",
            self.bucket_url(),
            utf8_percent_encode(key, KEY_ENCODED)
        );
        presign_get(
            &url,
            credentials,
            self.region(),
            SystemTime::from(start),
            Duration::from_secs(2 * URL_WINDOW_SECONDS as u64),
        )
        .map_err(ApiError::internal)
    }
}

/// What an object key's path escapes: all but RFC 3986's unreserved characters and `/` (S3's own
/// encoding of a greedy key label).
const KEY_ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Signs a GET of `url` for S3 the way the SDK's presigner does (SigV4 in the query string, the
/// payload unsigned, the path as sent), without building an S3 client to do it.
fn presign_get(
    url: &str,
    credentials: Credentials,
    region: &str,
    at: SystemTime,
    valid_for: Duration,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    use aws_sigv4::http_request::{
        PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(valid_for);
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(at)
        .settings(settings)
        .build()?
        .into();
    let signable = SignableRequest::new(
        "GET",
        url,
        std::iter::empty(),
        SignableBody::UnsignedPayload,
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut request = lambda_http::http::Request::get(url).body(())?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// The signing window a moment falls in.
pub fn window_of(now: jiff::Timestamp) -> i64 {
    now.as_second().div_euclid(URL_WINDOW_SECONDS)
}

/// The object key of an S3 event record, which S3 sends form-encoded (`+` for a space).
pub fn event_key(raw: &str) -> String {
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Why an uploaded object was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Empty,
    TooLarge,
    NotAnImage,
    TypeMismatch,
    NotOurKey,
    ItemGone,
}

/// The verdict on an uploaded object from its size, declared type and first bytes.
pub fn judge(size: u64, declared: Option<&str>, head: &[u8]) -> Result<ImageType, Rejection> {
    if size == 0 {
        return Err(Rejection::Empty);
    }
    if size > MAX_IMAGE_BYTES {
        return Err(Rejection::TooLarge);
    }
    let actual = ImageType::sniff(head).ok_or(Rejection::NotAnImage)?;
    if declared.and_then(ImageType::from_mime) != Some(actual) {
        return Err(Rejection::TypeMismatch);
    }
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    const JPEG: &[u8] = &[0xff, 0xd8, 0xff, 0xe0, 0, 16, b'J', b'F', b'I', b'F', 0, 1];
    const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 ";

    #[test]
    fn content_decides_not_the_label() {
        assert_eq!(judge(100, Some("image/png"), PNG), Ok(ImageType::Png));
        assert_eq!(judge(100, Some("image/jpeg"), JPEG), Ok(ImageType::Jpeg));
        assert_eq!(judge(100, Some("image/webp"), WEBP), Ok(ImageType::Webp));
        assert_eq!(
            judge(100, Some("image/png"), JPEG),
            Err(Rejection::TypeMismatch)
        );
        assert_eq!(
            judge(100, Some("image/png"), b"<svg onload=alert(1)>"),
            Err(Rejection::NotAnImage)
        );
        assert_eq!(judge(100, None, PNG), Err(Rejection::TypeMismatch));
        assert_eq!(judge(0, Some("image/png"), b""), Err(Rejection::Empty));
        assert_eq!(
            judge(MAX_IMAGE_BYTES + 1, Some("image/png"), PNG),
            Err(Rejection::TooLarge)
        );
        assert_eq!(
            judge(MAX_IMAGE_BYTES, Some("image/png"), PNG),
            Ok(ImageType::Png)
        );
    }

    #[test]
    fn keys_name_their_store_and_item() {
        let key = image_key("s1", "kimbap");
        assert_eq!(parse_key(&key), Some(("s1", "kimbap")));
        assert_ne!(key, image_key("s1", "kimbap"));
        for bad in [
            "stores/s1/items/kimbap",
            "x/s1/items/k/f",
            "stores//items/k/f",
            "stores/s/items/k/f/g",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn event_keys_are_decoded() {
        assert_eq!(
            event_key("stores/s1/items/k/a+b%2Bc"),
            "stores/s1/items/k/a b+c"
        );
    }

    fn images(endpoint: Option<&str>) -> Images {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI",
            Some("TOKEN".into()),
            None,
            "test",
        );
        let sdk = aws_types::SdkConfig::builder()
            .region(aws_types::region::Region::new("ap-northeast-2"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .behavior_version(
                aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest(),
            )
            .build();
        Images {
            bucket: "ordersync-images".into(),
            client: OnceLock::new(),
            endpoint: endpoint.map(str::to_owned),
            sdk,
        }
    }

    /// The SDK's own presigner, for the same object, moment and window.
    async fn sdk_url(images: &Images, key: &str, window: i64) -> String {
        let mut config = aws_sdk_s3::config::Builder::from(&images.sdk)
            .force_path_style(images.endpoint.is_some());
        if let Some(endpoint) = &images.endpoint {
            config = config.endpoint_url(endpoint);
        }
        let presigning = aws_sdk_s3::presigning::PresigningConfig::builder()
            .start_time(SystemTime::from(
                jiff::Timestamp::from_second(window * URL_WINDOW_SECONDS).unwrap(),
            ))
            .expires_in(Duration::from_secs(2 * URL_WINDOW_SECONDS as u64))
            .build()
            .unwrap();
        aws_sdk_s3::Client::from_conf(config.build())
            .get_object()
            .bucket(&images.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .unwrap()
            .uri()
            .to_owned()
    }

    #[tokio::test]
    async fn image_urls_are_signed_as_the_sdk_signs_them() {
        let window = 493_000;
        for endpoint in [None, Some("http://127.0.0.1:4566")] {
            let images = images(endpoint);
            for key in [
                "stores/s1/items/kimbap/0f8c2d",
                "stores/s 1/items/김밥+라면/a~b_c.d-e(1)",
            ] {
                let ours = images.read_url(key, window).await.unwrap();
                assert_eq!(
                    ours,
                    sdk_url(&images, key, window).await,
                    "{endpoint:?} {key}"
                );
            }
        }
    }

    #[test]
    fn windows_are_hour_aligned() {
        let t = jiff::Timestamp::from_second(7_200 + 59).unwrap();
        assert_eq!(window_of(t), 2);
        assert_eq!(window_of(jiff::Timestamp::from_second(7_199).unwrap()), 1);
    }
}
