//! Configuration, read once from the environment at cold start. `template.yaml` sets every variable;
//! a missing one fails the init phase with its name, never a request.

use std::env;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub jwt: JwtConfig,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    /// KMS key that signs new access tokens.
    pub signing_key_id: String,
    /// Keys whose tokens are accepted: the signing key, plus the previous one while a rotation drains.
    /// A token's `kid` outside this list is refused before any key is fetched.
    pub trusted_key_ids: Vec<String>,
}

fn required(name: &'static str) -> Result<String, ConfigError> {
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
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            jwt: JwtConfig {
                issuer: required("JWT_ISSUER")?,
                audience: required("JWT_AUDIENCE")?,
                signing_key_id,
                trusted_key_ids,
            },
        })
    }
}
