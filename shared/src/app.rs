//! Everything a function builds once per process, in the init phase, and reuses across invocations:
//! configuration, AWS clients, caches.

use aws_config::BehaviorVersion;

use crate::auth::tokens::TokenService;
use crate::config::Config;
use crate::storage::Db;

pub struct App {
    pub config: Config,
    pub db: Db,
    pub tokens: TokenService,
}

impl App {
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let config = Config::from_env()?;
        // Region, credentials and (locally) AWS_ENDPOINT_URL come from the environment Lambda provides.
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let db = Db::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table_name);
        let tokens = TokenService::new(aws_sdk_kms::Client::new(&sdk), config.jwt.clone());
        Ok(Self { config, db, tokens })
    }
}
