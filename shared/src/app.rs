//! Everything a function builds once per process and reuses across invocations: configuration,
//! AWS clients, caches.

use aws_smithy_types::retry::RetryConfig;
use std::sync::OnceLock;

use tokio::sync::OnceCell;

use crate::auth::tokens::TokenService;
use crate::config::Config;
use crate::crypto::blind_index::{self, BlindIndex};
use crate::crypto::cursors::{self, CursorKey};
use crate::crypto::kms::KmsKeySource;
use crate::crypto::{CacheStats, Envelope};
use crate::error::ApiError;
use crate::images::Images;
use crate::menus::MenuCache;
use crate::payments::toss::TossClient;
use crate::storage::Db;
use crate::stores::owners::Owners;

/// Field encryption as the functions use it: KMS data keys behind the per-instance cache.
pub type Crypto = Envelope<KmsKeySource>;

/// What a function reuses across invocations. Only the configuration, the table and the two caches
/// (menus, store owners; both start empty) are made in the init phase; every other client is made
/// on its first use, so a function builds (and links) only the clients its requests reach: the menu
/// read never builds KMS's, nor Toss's, whose trust store of ~150 roots took a share of every
/// function's cold start.
pub struct App {
    pub config: Config,
    pub db: Db,
    pub menus: MenuCache,
    /// Each store's owner, once read (it never changes): access checks read it once per instance.
    pub store_owners: Owners,
    sdk: aws_types::SdkConfig,
    kms: OnceLock<aws_sdk_kms::Client>,
    tokens: OnceLock<TokenService>,
    crypto: OnceLock<Crypto>,
    images: OnceLock<Images>,
    toss: OnceLock<Result<TossClient, String>>,
    blind_index: OnceCell<BlindIndex>,
    cursor_key: OnceCell<CursorKey>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    connections: OnceLock<Option<aws_sdk_apigatewaymanagement::Client>>,
}

impl App {
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let config = Config::from_env()?;
        let sdk = crate::aws::sdk_config()?;
        let db = Db::new(
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .interceptor(crate::sdk_calls::SpanRecorder)
                    .build(),
            ),
            &config.table_name,
        );
        Ok(Self {
            menus: MenuCache::new(config.menu_cache_ttl),
            store_owners: Owners::default(),
            config,
            db,
            sdk,
            kms: OnceLock::new(),
            tokens: OnceLock::new(),
            crypto: OnceLock::new(),
            images: OnceLock::new(),
            toss: OnceLock::new(),
            blind_index: OnceCell::new(),
            cursor_key: OnceCell::new(),
            sqs: OnceLock::new(),
            connections: OnceLock::new(),
        })
    }

    fn kms(&self) -> &aws_sdk_kms::Client {
        self.kms.get_or_init(|| {
            // KMS throttles per account; the standard retry mode backs off exponentially with jitter.
            aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&self.sdk)
                    .retry_config(RetryConfig::standard().with_max_attempts(5))
                    .interceptor(crate::sdk_calls::SpanRecorder)
                    .build(),
            )
        })
    }

    fn data_keys(&self) -> KmsKeySource {
        KmsKeySource::new(self.kms().clone(), &self.config.data_key_id)
    }

    /// Access tokens: issued and verified with keys KMS holds.
    pub fn tokens(&self) -> &TokenService {
        self.tokens.get_or_init(|| {
            TokenService::new(
                self.kms().clone(),
                self.db.clone(),
                Envelope::new(self.data_keys(), self.config.data_key_cache),
                self.config.jwt.clone(),
            )
        })
    }

    /// Field encryption (personal and payment data).
    pub fn crypto(&self) -> &Crypto {
        self.crypto
            .get_or_init(|| Envelope::new(self.data_keys(), self.config.data_key_cache))
    }

    /// The data-key cache's hits and misses so far (none before field encryption's first use).
    pub fn crypto_stats(&self) -> CacheStats {
        self.crypto
            .get()
            .map(Crypto::cache_stats)
            .unwrap_or_default()
    }

    /// Menu images, exports and archives in S3.
    pub fn images(&self) -> &Images {
        self.images
            .get_or_init(|| Images::new(&self.sdk, self.config.images_bucket.clone()))
    }

    /// Toss Payments' client; `None` where no Toss secret key is configured.
    pub fn toss(&self) -> Result<Option<&TossClient>, ApiError> {
        let Some(toss) = &self.config.toss else {
            return Ok(None);
        };
        match self.toss.get_or_init(|| {
            TossClient::new(&toss.api_base, &toss.secret_key, toss.timeout)
                .map_err(|err| err.to_string())
        }) {
            Ok(client) => Ok(Some(client)),
            Err(reason) => Err(ApiError::internal(format!(
                "the Toss client could not be built: {reason}"
            ))),
        }
    }

    /// The SQS client (the outbox's publisher sends with it).
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.sqs.get_or_init(|| {
            aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&self.sdk)
                    .interceptor(crate::sdk_calls::SpanRecorder)
                    .build(),
            )
        })
    }

    /// Posts to WebSocket connections; present where `WEBSOCKET_ENDPOINT` is set.
    pub fn connections(&self) -> Option<&aws_sdk_apigatewaymanagement::Client> {
        self.connections
            .get_or_init(|| {
                self.config.websocket_endpoint.as_ref().map(|endpoint| {
                    aws_sdk_apigatewaymanagement::Client::from_conf(
                        aws_sdk_apigatewaymanagement::config::Builder::from(&self.sdk)
                            .endpoint_url(endpoint)
                            .interceptor(crate::sdk_calls::SpanRecorder)
                            .build(),
                    )
                })
            })
            .as_ref()
    }

    /// A field-encryption service with an empty key cache: every value it seals gets a data key
    /// made from now on (what re-encryption needs).
    pub fn fresh_crypto(&self) -> Crypto {
        Envelope::new(self.crypto().source().clone(), self.config.data_key_cache)
    }

    /// The blind index, its secret unwrapped on first use in this instance.
    pub async fn blind_index(&self) -> Result<&BlindIndex, ApiError> {
        self.blind_index
            .get_or_try_init(|| blind_index::load(&self.db, self.crypto().source()))
            .await
    }

    /// The key of listings' cursors, derived by KMS on first use in this instance.
    pub async fn cursor_key(&self) -> Result<&CursorKey, ApiError> {
        self.cursor_key
            .get_or_try_init(|| async {
                let secret = crate::crypto::kms::derive_secret(
                    self.kms(),
                    &self.config.cursor_key_id,
                    cursors::LABEL,
                )
                .await?;
                Ok(CursorKey::from_secret(&secret)?)
            })
            .await
    }
}
