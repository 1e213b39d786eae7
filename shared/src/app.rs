//! Everything a function builds once per process, in the init phase, and reuses across invocations:
//! configuration, AWS clients, caches.

use aws_smithy_types::retry::RetryConfig;
use std::sync::OnceLock;

use tokio::sync::OnceCell;

use crate::auth::tokens::TokenService;
use crate::config::Config;
use crate::crypto::Envelope;
use crate::crypto::blind_index::{self, BlindIndex};
use crate::crypto::kms::KmsKeySource;
use crate::error::ApiError;
use crate::images::Images;
use crate::menus::MenuCache;
use crate::payments::toss::TossClient;
use crate::storage::Db;

/// Field encryption as the functions use it: KMS data keys behind the per-instance cache.
pub type Crypto = Envelope<KmsKeySource>;

pub struct App {
    pub config: Config,
    pub db: Db,
    pub tokens: TokenService,
    pub crypto: Crypto,
    pub menus: MenuCache,
    pub images: Images,
    /// Absent where no Toss secret key is configured.
    pub toss: Option<TossClient>,
    blind_index: OnceCell<BlindIndex>,
    /// For the clients only a few functions use, built on first use rather than in every init.
    sdk: aws_types::SdkConfig,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    connections: OnceLock<Option<aws_sdk_apigatewaymanagement::Client>>,
}

impl App {
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let config = Config::from_env()?;
        let sdk = crate::aws::sdk_config()?;
        let spans = crate::sdk_calls::SpanRecorder;
        let db = Db::new(
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&sdk)
                    .interceptor(spans.clone())
                    .build(),
            ),
            &config.table_name,
        );
        // KMS throttles per account; the standard retry mode backs off exponentially with jitter.
        let kms = aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(&sdk)
                .retry_config(RetryConfig::standard().with_max_attempts(5))
                .interceptor(spans)
                .build(),
        );
        let keys = KmsKeySource::new(kms.clone(), &config.data_key_id);
        let tokens = TokenService::new(
            kms,
            db.clone(),
            Envelope::new(keys.clone(), config.data_key_cache),
            config.jwt.clone(),
        );
        let crypto = Envelope::new(keys, config.data_key_cache);
        Ok(Self {
            menus: MenuCache::new(config.menu_cache_ttl),
            images: Images::new(&sdk, config.images_bucket.clone()),
            toss: match &config.toss {
                Some(toss) => Some(TossClient::new(
                    &toss.api_base,
                    &toss.secret_key,
                    toss.timeout,
                )?),
                None => None,
            },
            config,
            db,
            tokens,
            crypto,
            blind_index: OnceCell::new(),
            sdk,
            sqs: OnceLock::new(),
            connections: OnceLock::new(),
        })
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
        Envelope::new(self.crypto.source().clone(), self.config.data_key_cache)
    }

    /// The blind index, its secret unwrapped on first use in this instance.
    pub async fn blind_index(&self) -> Result<&BlindIndex, ApiError> {
        self.blind_index
            .get_or_try_init(|| blind_index::load(&self.db, self.crypto.source()))
            .await
    }
}
