//! The SDK configuration every AWS client is built from, read from the environment Lambda provides.
//!
//! aws-config's loader looks for the same values through chains of providers (profile files,
//! web identity through STS, container and instance metadata) that a function never needs: they
//! cost start-up time and binary size. Here nothing is probed; a missing variable fails the init
//! phase with its name.

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_types::SdkConfig;
use aws_types::region::Region;

use std::time::Duration;

use aws_smithy_types::timeout::TimeoutConfig;

use crate::config::{ConfigError, optional, required};

/// How long one attempt of an AWS call may take (`AWS_ATTEMPT_TIMEOUT_MS`, default 2 s), and the
/// whole call with its retries (`AWS_OPERATION_TIMEOUT_MS`, default 6 s). Without them only the
/// Lambda timeout bounds a call that stalls; DynamoDB, KMS and SQS answer in milliseconds.
pub fn timeouts() -> Result<TimeoutConfig, ConfigError> {
    let millis = |name, default| crate::config::number(name, default).map(Duration::from_millis);
    Ok(TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(millis("AWS_ATTEMPT_TIMEOUT_MS", 2_000)?)
        .operation_timeout(millis("AWS_OPERATION_TIMEOUT_MS", 6_000)?)
        .build())
}

/// Region and credentials as Lambda sets them (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), and `AWS_ENDPOINT_URL` where one is set (the local
/// emulator); the time-outs of [`timeouts`]. Retries and the identity cache are the clients' defaults
/// for the latest behaviour version.
pub fn sdk_config() -> Result<SdkConfig, lambda_http::Error> {
    let credentials = Credentials::new(
        required("AWS_ACCESS_KEY_ID")?,
        required("AWS_SECRET_ACCESS_KEY")?,
        optional("AWS_SESSION_TOKEN"),
        None,
        "environment",
    );
    let region = required("AWS_REGION").or_else(|_| required("AWS_DEFAULT_REGION"))?;
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .timeout_config(timeouts()?)
        .http_client(crate::tls::aws_http_client()?);
    if let Some(endpoint) = optional("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
}
