//! The roots of trust for outgoing HTTPS, compiled into the binary.
//!
//! By default the AWS SDK's HTTPS client reads the system's certificate store when it is built: a
//! bundle and, where `SSL_CERT_DIR` is set, hundreds of files, parsed once per client. That was most
//! of every function's cold start (`docs/PERFORMANCE.md`). Mozilla's root program, as the
//! `webpki-root-certs` crate carries it, needs no file at all.
//!
//! Toss is reached through the same HTTP stack as AWS (the SDK's connector: hyper and rustls), so a
//! function links one, not two (`docs/PERFORMANCE.md`, binary sizes).

use std::time::Duration;

use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpClient};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use webpki_root_certs::TLS_SERVER_ROOT_CERTS;

/// AWS endpoints present certificates issued under Amazon Trust Services: the AWS clients trust its
/// roots (and Starfield's, which cross-signs them) and nothing else, which also keeps the store
/// they parse at init small.
const AWS_ROOT_NAMES: [&[u8]; 2] = [
    b"Amazon Root CA",
    b"Starfield Services Root Certificate Authority",
];

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The HTTPS client for every AWS SDK client, trusting the Amazon Trust Services roots.
pub fn aws_http_client() -> Result<SharedHttpClient, Error> {
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context(aws_roots())?)
        .build_https())
}

/// A connector for a third party's API (Toss), trusting Mozilla's roots; plain `http://` too (the
/// local stand-in). It keeps its connections alive between calls.
pub fn public_connector(connect_timeout: Duration) -> Result<Connector, Error> {
    let public_roots = TLS_SERVER_ROOT_CERTS.iter().map(|cert| cert.as_ref());
    Ok(Connector::builder()
        .connector_settings(
            HttpConnectorSettings::builder()
                .connect_timeout(connect_timeout)
                .build(),
        )
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context(public_roots)?)
        .build())
}

/// A TLS context trusting `roots` (DER) and nothing else.
fn context<'a>(roots: impl Iterator<Item = &'a [u8]>) -> Result<TlsContext, Error> {
    let mut store = TrustStore::empty();
    for cert in roots {
        store.add_pem_certificate(pem(cert));
    }
    Ok(TlsContext::builder().with_trust_store(store).build()?)
}

fn aws_roots() -> impl Iterator<Item = &'static [u8]> {
    // A root's subject is spelled out in its DER (and, self-signed, again as its issuer).
    let names = AWS_ROOT_NAMES.map(memchr::memmem::Finder::new);
    TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|cert| cert.as_ref())
        .filter(move |der| names.iter().any(|name| contains(der, name)))
}

/// How far into a root certificate its issuer's name ends, at most: the version, serial number and
/// signature algorithm come before it (the AWS roots' names sit at bytes 89–136). Scanning only this
/// far, not the whole of ~120 certificates, took ~0.1 ms off every cold start (docs/PERFORMANCE.md).
const ISSUER_WITHIN: usize = 320;

/// Whether `name` is in `der`'s first [`ISSUER_WITHIN`] bytes. A vectorised search: a byte-by-byte
/// one over ~150 roots was ~2 % of a function's init CPU (docs/PERFORMANCE.md).
fn contains(der: &[u8], name: &memchr::memmem::Finder<'_>) -> bool {
    name.find(&der[..der.len().min(ISSUER_WITHIN)]).is_some()
}

/// The SDK's trust store takes PEM.
fn pem(der: &[u8]) -> Vec<u8> {
    let body = STANDARD.encode(der);
    let mut pem = String::with_capacity(body.len() + body.len() / 64 + 64);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_clients_trust_the_amazon_trust_services_roots_only() {
        let found: Vec<String> = aws_roots()
            .map(|der| {
                let name = AWS_ROOT_NAMES
                    .iter()
                    .find(|name| contains(der, &memchr::memmem::Finder::new(name)))
                    .expect("matched a name");
                String::from_utf8_lossy(name).into_owned()
            })
            .collect();
        // Amazon Root CA 1–4 and Starfield Services Root Certificate Authority - G2.
        assert_eq!(found.iter().filter(|n| n.starts_with("Amazon")).count(), 4);
        assert_eq!(
            found.iter().filter(|n| n.starts_with("Starfield")).count(),
            1
        );
    }

    #[test]
    fn pem_round_trips_to_the_same_certificate() {
        let der = aws_roots().next().expect("an Amazon root");
        let pem = String::from_utf8(pem(der)).expect("ASCII");
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN CERTIFICATE-----"));
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert!(lines.iter().all(|l| l.len() <= 64));
        let body = lines[1..lines.len() - 1].concat();
        assert_eq!(STANDARD.decode(body).expect("base64"), der);
    }

    /// The SDK parses its trust store when a client first connects (and panics on a bad one): a
    /// refused connection, not a panic, shows the roots were accepted.
    #[tokio::test]
    async fn an_aws_client_with_these_roots_gets_as_far_as_connecting() {
        use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("ap-northeast-2"))
            .credentials_provider(Credentials::new("id", "secret", None, None, "test"))
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .endpoint_url("https://127.0.0.1:9")
            .http_client(aws_http_client().expect("client"))
            .build();
        let err = aws_sdk_dynamodb::Client::from_conf(config)
            .list_tables()
            .send()
            .await
            .expect_err("nothing listens on port 9");
        assert!(
            matches!(err, aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)),
            "{err:?}"
        );
    }

    #[test]
    fn a_public_connector_builds_on_mozillas_roots() {
        assert!(TLS_SERVER_ROOT_CERTS.len() > 100);
        assert!(public_connector(Duration::from_secs(1)).is_ok());
    }
}
