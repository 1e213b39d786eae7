//! Configuration, read once from the environment at cold start. `template.yaml` sets every variable;
//! a missing one fails the init phase with its name, never a request.

use std::env;
use std::time::Duration;

use crate::crypto::CachePolicy;
use crate::limits::Limits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {0} is not a positive integer")]
    NotANumber(&'static str),
    #[error("environment variable {0}: {1}")]
    Invalid(&'static str, String),
}

pub(crate) fn number(name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(ConfigError::NotANumber(name)),
        Err(_) => Ok(default),
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// Per-client rate limits (`RATE_LIMITS` overrides the defaults).
    pub limits: Limits,
    pub jwt: JwtConfig,
    /// The symmetric KMS key that wraps the data keys of field encryption.
    pub data_key_id: String,
    pub data_key_cache: CachePolicy,
    /// The HMAC key in KMS that derives the key of listings' cursors (`crypto::cursors`).
    pub cursor_key_id: String,
    /// How long a warm instance serves a menu it read (`MENU_CACHE_SECONDS`, default 5).
    pub menu_cache_ttl: Duration,
    /// The private bucket of menu images.
    pub images_bucket: String,
    /// How long an order waits for payment (`PAYMENT_WINDOW_SECONDS`, default 1800).
    pub payment_window_seconds: i64,
    /// Toss Payments: where, with which secret key (absent: payments are unavailable), how patiently.
    pub toss: Option<TossConfig>,
    /// The WebSocket API's management endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`),
    /// where pushes are posted; absent in functions that push nothing.
    pub websocket_endpoint: Option<String>,
    /// Where monthly audit archives go (`AUDIT_ARCHIVE_BUCKET`), for the function that writes them.
    pub audit_archive_bucket: Option<String>,
    /// How long an audit record stays in the table, where the audit listings read it
    /// (`AUDIT_DAYS_IN_TABLE`, default 400): the monthly archive keeps it for its full term.
    pub audit_days_in_table: i64,
    /// Where report exports go (`REPORTS_BUCKET`), for the function that writes them.
    pub reports_bucket: Option<String>,
}

#[derive(Clone)]
pub struct TossConfig {
    pub api_base: String,
    pub secret_key: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for TossConfig {
    // The secret key is never printed, not even in a debug dump of the configuration.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TossConfig")
            .field("api_base", &self.api_base)
            .field("secret_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The audit trail stays in the table at least long enough for a month's archive to be retried
/// for two months, and at most for the longest term a record is kept (five years and two days).
pub const AUDIT_DAYS_IN_TABLE: std::ops::RangeInclusive<u64> = 90..=1827;

/// The longest an access token may last: a signing key verifies two hours past its rotation.
pub const MAX_ACCESS_TOKEN_SECONDS: u64 = 3600;

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    /// KMS key that signs new access tokens.
    pub signing_key_id: String,
    /// Keys whose tokens are accepted: the signing key, plus the previous one while a rotation drains.
    /// A token's `kid` outside this list is refused before any key is fetched.
    pub trusted_key_ids: Vec<String>,
    /// How long an access token lasts (`ACCESS_TOKEN_SECONDS`, default 900, at most an hour).
    pub access_token_seconds: i64,
}

pub(crate) fn optional(name: &'static str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub(crate) fn required(name: &'static str) -> Result<String, ConfigError> {
    env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let signing_key_id = required("JWT_SIGNING_KEY_ID")?;
        let mut trusted_key_ids = vec![signing_key_id.clone()];
        if let Ok(previous) = env::var("JWT_PREVIOUS_KEY_IDS") {
            trusted_key_ids.extend(
                previous
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        let defaults = CachePolicy::default();
        Ok(Self {
            data_key_id: required("DATA_KEY_ID")?,
            data_key_cache: CachePolicy {
                max_age: Duration::from_secs(number(
                    "DATA_KEY_MAX_AGE_SECONDS",
                    defaults.max_age.as_secs(),
                )?),
                max_uses: number("DATA_KEY_MAX_USES", defaults.max_uses)?,
                max_entries: defaults.max_entries,
            },
            cursor_key_id: required("CURSOR_KEY_ID")?,
            menu_cache_ttl: Duration::from_secs(number("MENU_CACHE_SECONDS", 5)?),
            images_bucket: required("IMAGES_BUCKET")?,
            payment_window_seconds: number("PAYMENT_WINDOW_SECONDS", 1800)? as i64,
            toss: match env::var("TOSS_SECRET_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty())
            {
                Some(secret_key) => Some(TossConfig {
                    api_base: env::var("TOSS_API_BASE")
                        .ok()
                        .filter(|b| !b.is_empty())
                        .unwrap_or_else(|| "https://api.tosspayments.com".to_owned()),
                    secret_key,
                    timeout: Duration::from_millis(number("TOSS_TIMEOUT_MS", 10_000)?),
                }),
                None => None,
            },
            websocket_endpoint: optional("WEBSOCKET_ENDPOINT"),
            audit_archive_bucket: optional("AUDIT_ARCHIVE_BUCKET"),
            audit_days_in_table: match number("AUDIT_DAYS_IN_TABLE", 400)? {
                days if AUDIT_DAYS_IN_TABLE.contains(&days) => days as i64,
                _ => {
                    return Err(ConfigError::Invalid(
                        "AUDIT_DAYS_IN_TABLE",
                        "between 90 and 1827".into(),
                    ));
                }
            },
            reports_bucket: optional("REPORTS_BUCKET"),
            table_name: required("TABLE_NAME")?,
            limits: Limits::parse(&env::var("RATE_LIMITS").unwrap_or_default())
                .map_err(|why| ConfigError::Invalid("RATE_LIMITS", why))?,
            jwt: JwtConfig {
                issuer: required("JWT_ISSUER")?,
                audience: required("JWT_AUDIENCE")?,
                signing_key_id,
                trusted_key_ids,
                access_token_seconds: match number("ACCESS_TOKEN_SECONDS", 900)? {
                    seconds @ 10..=MAX_ACCESS_TOKEN_SECONDS => seconds as i64,
                    _ => {
                        return Err(ConfigError::Invalid(
                            "ACCESS_TOKEN_SECONDS",
                            "between 10 and 3600".into(),
                        ));
                    }
                },
            },
        })
    }
}
