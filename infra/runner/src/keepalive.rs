//! A keep-alive front for the AWS emulator (`--keep-alive`).
//!
//! moto's server closes the connection after every response, so a function behind it pays a TCP
//! connect and teardown on every AWS call, where DynamoDB, KMS and SQS keep connections open. With
//! `--keep-alive` the functions are pointed here instead: their connections stay open, and each
//! request is forwarded to the emulator (the connection churn moves into this process). The
//! benchmark uses it, so a function's CPU per request is what it spends with connections kept.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};

#[derive(Clone)]
pub struct KeepAlive {
    client: reqwest::Client,
    /// The emulator's base URL, without a trailing slash.
    upstream: String,
}

impl KeepAlive {
    pub fn new(upstream: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            upstream: upstream.trim_end_matches('/').to_owned(),
        }
    }

    pub async fn forward(
        self,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = self
            .client
            .request(parts.method, format!("{}{target}", self.upstream))
            .body(body);
        for (name, value) in &parts.headers {
            if ![HOST, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING].contains(name) {
                request = request.header(name, value);
            }
        }
        let Ok(upstream) = request.send().await else {
            return Ok(status_only(StatusCode::BAD_GATEWAY));
        };
        let mut response = Response::builder().status(upstream.status());
        for (name, value) in upstream.headers() {
            if ![CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING].contains(name) {
                response = response.header(name, value);
            }
        }
        let body = upstream.bytes().await.unwrap_or_default();
        Ok(response
            .body(Full::new(body))
            .unwrap_or_else(|_| status_only(StatusCode::BAD_GATEWAY)))
    }
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
