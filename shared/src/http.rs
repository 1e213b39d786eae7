//! What every HTTP function shares: the Lambda entry point, JSON bodies in and out, and the error body.
//!
//! A route's `main` is one line:
//!
//! ```ignore
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), lambda_http::Error> {
//!     shared::http::serve(handler).await
//! }
//! ```

use std::future::Future;
use std::time::Instant;

use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{Body, LambdaEvent, Request, RequestExt, Response, service_fn};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::app::App;
use crate::error::ApiError;

mod body;

pub use body::{json_body, present};

/// Largest request body accepted; API Gateway allows 10 MB, our JSON documents need far less.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub type HttpResult = Result<Response<Body>, ApiError>;

/// Who sent a request, as API Gateway saw it: kept with audit records and quoted in errors.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: String,
    pub source_ip: Option<String>,
    pub route: String,
}

impl RequestMeta {
    pub fn of(req: &Request) -> Self {
        match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => Self {
                request_id: ctx.request_id.clone().unwrap_or_default(),
                source_ip: ctx.http.source_ip.clone(),
                route: ctx.route_key.clone().unwrap_or_default(),
            },
            _ => Self {
                request_id: req
                    .lambda_context_ref()
                    .map(|c| c.request_id.clone())
                    .unwrap_or_default(),
                ..Self::default()
            },
        }
    }
}

/// Builds the process-wide [`App`] once (the init phase), then serves events with `handler` until the
/// runtime stops. Errors become the standard error body; oversized bodies are refused before the
/// handler runs.
///
/// The events are the HTTP API's (payload format 2.0), our only origin. `lambda_http::run` would
/// serve them too, but it tries each origin's event shape in turn and passes every response body
/// through a charset decoder (`encoding_rs`, ~0.17 MB of every binary): here the event is read as
/// what it is, and the response shaped by [`api_gateway_response`].
pub async fn serve<H, F>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(&'static App, Request) -> F + Sync,
    F: Future<Output = HttpResult> + Send + 'static,
{
    crate::telemetry::init();
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    let handler = &handler;
    lambda_http::lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            let req = Request::from(LambdaRequest::ApiGatewayV2(http_event(&event.payload)?))
                .with_lambda_context(event.context);
            let response = handle(app, req, handler).await;
            Ok::<_, lambda_http::Error>(api_gateway_response(response))
        },
    ))
    .await
}

/// The HTTP API's event, read from the runtime's bytes as they are. The runtime reads every event
/// through `serde_path_to_error`, which copies each key it passes to name the field a failure is
/// at (about 50 allocations an event, the headers' names among them: `make bench` counts them);
/// here it reads the event as one raw value, and the path is worked out only for an event that
/// does not parse.
fn http_event(raw: &RawValue) -> Result<ApiGatewayV2httpRequest, lambda_http::Error> {
    serde_json::from_str(raw.get()).map_err(|_| {
        let mut event = serde_json::Deserializer::from_str(raw.get());
        let failure = serde_path_to_error::deserialize::<_, ApiGatewayV2httpRequest>(&mut event)
            .err()
            .map(|err| format!("[{}] {}", err.path(), err.inner()))
            .unwrap_or_default();
        format!("not an HTTP API event (payload format 2.0): {failure}").into()
    })
}

/// `response` as the HTTP API takes it back: a binary body base64-encoded, `Set-Cookie` headers
/// moved to `cookies` (the format has no repeated headers).
fn api_gateway_response(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut headers = parts.headers;
    let cookies = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_owned)
        .collect();
    headers.remove(header::SET_COOKIE);
    let mut shaped = ApiGatewayV2httpResponse::default();
    shaped.status_code = i64::from(parts.status.as_u16());
    shaped.is_base64_encoded = matches!(body, Body::Binary(_));
    shaped.body = match body {
        Body::Empty => None,
        body => Some(body),
    };
    shaped.headers = headers;
    shaped.cookies = cookies;
    shaped
}

async fn handle<H, F>(app: &'static App, req: Request, handler: &H) -> Response<Body>
where
    H: Fn(&'static App, Request) -> F + Sync,
    F: Future<Output = HttpResult>,
{
    let started = Instant::now();
    let cold_start = crate::telemetry::take_cold_start();
    let meta = RequestMeta::of(&req);
    let (lambda_request_id, trace_id) = req
        .lambda_context_ref()
        .map(|c| {
            (
                c.request_id.clone(),
                c.xray_trace_id.clone().unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    let deadline = req
        .lambda_context_ref()
        .map(|c| crate::deadline::from_epoch_millis(c.deadline));
    let kms_before = app.crypto_stats();
    let work = crate::deadline::invocation(deadline, async {
        crate::telemetry::set_request_id(&meta.request_id);
        if req.body().len() > MAX_BODY_BYTES {
            Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
            ))
        } else {
            // Boxed: keeps the nesting of futures (and compile-time layout depth) shallow.
            let result = Box::pin(handler(app, req)).await;
            crate::telemetry::span("handler", &meta.route, started.elapsed(), result.is_ok());
            result
        }
    });
    let (result, recorded) = crate::telemetry::scoped(&trace_id, work).await;
    let response = result.unwrap_or_else(|err| error_response(&err, &meta.request_id));
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    let status = response.status().as_u16();
    let fields = crate::telemetry::Fields {
        message: "request",
        request_id: &meta.request_id,
        lambda_request_id: &lambda_request_id,
        trace_id: &trace_id,
        cold_start,
        status,
        user_id: recorded.user_id.as_deref(),
        code: None,
    };
    crate::telemetry::write_lines(&crate::telemetry::lines(
        "INFO",
        &fields,
        crate::telemetry::Invocation::Request,
        latency_ms,
        app.crypto_stats().since(kms_before),
        &recorded,
    ));
    response
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> HttpResult {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Text(body))
        .map_err(ApiError::internal)
}

pub fn no_content() -> HttpResult {
    empty(StatusCode::NO_CONTENT)
}

pub fn error_response(err: &ApiError, request_id: &str) -> Response<Body> {
    if err.status.is_server_error() {
        tracing::warn!(
            code = err.code,
            status = err.status.as_u16(),
            "request failed"
        );
    }
    let mut response = Response::new(Body::Text(err.body(request_id).to_string()));
    *response.status_mut() = err.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(seconds) = err.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A path parameter of the route (`{storeId}`). API Gateway only routes requests that have it, so
/// its absence means a route/template mismatch: 404 rather than a panic.
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    let value = req
        .path_parameters_ref()
        .and_then(|params| params.first(name))
        .ok_or_else(|| {
            ApiError::not_found("NOT_FOUND", format!("missing path parameter {name}"))
        })?;
    // Checked before any key is built from it: an id past DynamoDB's key limit would be a 500.
    validate_id(name, value)?;
    Ok(value.to_owned())
}

/// What every id in a path is: the ids we make (`ord_…`, UUIDs) and those a client chooses (menu
/// entries) alike.
const ID_RULE: &str = "use 1 to 64 letters, digits, '-' or '_'";

/// An id the client sent (in a path, a body or a query), checked before a key is built from it:
/// 422 naming `field` when it is not one.
pub fn validate_id(field: &str, id: &str) -> Result<(), ApiError> {
    if is_id(id) {
        Ok(())
    } else {
        Err(ApiError::validation(field, ID_RULE))
    }
}

fn is_id(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `Idempotency-Key` header of the operations that must never run twice (an order, a refund);
/// its format is checked where it names what the request makes (`idempotency::validate_key`).
pub fn idempotency_key(req: &Request) -> Result<String, ApiError> {
    idempotency_key_if_sent(req)?.ok_or_else(|| {
        ApiError::bad_request("IDEMPOTENCY_KEY_REQUIRED", "send an Idempotency-Key header")
    })
}

/// The `Idempotency-Key` header where it is optional (opening a store): `None` if not sent.
pub fn idempotency_key_if_sent(req: &Request) -> Result<Option<String>, ApiError> {
    // Sent, but with bytes beyond visible ASCII (`한글키`, say): invalid, not missing.
    req.headers()
        .get("idempotency-key")
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| crate::idempotency::invalid_key())
        })
        .transpose()
}

/// Whether an `If-None-Match` header value matches `etag`.
pub fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// A cacheable JSON document under a validator: 304 with no body when the client's
/// `If-None-Match` names `etag`, else 200 with it. Clients and caches must revalidate every time
/// (`no-cache`): a 304 costs one small request, and no copy outlives a change.
pub fn with_etag(req: &Request, etag: &str, body: &str) -> HttpResult {
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches_etag(v, etag));
    let builder = Response::builder()
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, "no-cache");
    let response = if unchanged {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::Empty)
    } else {
        builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::Text(body.to_owned()))
    };
    response.map_err(ApiError::internal)
}

/// The first value of a query-string parameter.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_owned)
}

/// A query-string parameter parsed as `T`; 422 naming it, and saying what it should be
/// (`expected`), if it does not parse.
pub fn query_parsed<T: std::str::FromStr>(
    req: &Request,
    name: &str,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    query_param(req, name)
        .map(|v| v.parse().map_err(|_| ApiError::validation(name, expected)))
        .transpose()
}

/// A listing's `limit`, parsed (its range is the listing's: `paging::limit`).
pub fn query_limit(req: &Request) -> Result<Option<u32>, ApiError> {
    query_parsed(req, "limit", "a whole number of items, e.g. 20")
}

/// A JSON body prepared elsewhere (a replayed response), sent as is.
pub fn raw_json(status: StatusCode, body: String) -> HttpResult {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Text(body))
        .map_err(ApiError::internal)
}

/// A response with no body and the given status.
pub fn empty(status: StatusCode) -> HttpResult {
    Response::builder()
        .status(status)
        .body(Body::Empty)
        .map_err(ApiError::internal)
}

/// The bearer token of the `Authorization` header, if there is one.
pub fn bearer_token(req: &Request) -> Option<&str> {
    bearer(req.headers().get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// The token of an `Authorization` header's value, if its scheme is Bearer (in any case: RFC 9110
/// makes the scheme case-insensitive).
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::body::tests::request;
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn ids_are_short_and_url_safe() {
        for id in [
            "ord_0192",
            "3f2a6c1e-0b7d-4c1e-9a55-2b8c7d9e0f11",
            "a",
            &"x".repeat(64),
        ] {
            assert!(is_id(id), "{id}");
        }
        for id in ["", &"x".repeat(65), "a/b", "a%2Fb", "..", "a b", "주문"] {
            assert!(!is_id(id), "{id}");
        }
    }

    /// An HTTP API event as the runtime hands it over: a raw value, through `serde_path_to_error`.
    fn runtime_reads(event: &str) -> Box<RawValue> {
        let mut json = serde_json::Deserializer::from_str(event);
        serde_path_to_error::deserialize(&mut json).unwrap()
    }

    #[test]
    fn the_http_apis_events_read_as_the_runtime_read_them() {
        for sample in ["orders-create", "menu-get", "orders-status"] {
            let path = format!("{}/../events/{sample}.json", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let ours = http_event(&runtime_reads(&text)).unwrap();
            let typed: ApiGatewayV2httpRequest = {
                let mut json = serde_json::Deserializer::from_str(&text);
                serde_path_to_error::deserialize(&mut json).unwrap()
            };
            assert_eq!(
                serde_json::to_value(&ours).unwrap(),
                serde_json::to_value(&typed).unwrap(),
                "{sample}"
            );
            assert!(
                ours.raw_path
                    .as_deref()
                    .is_some_and(|p| p.starts_with("/v1/"))
            );
            assert!(!ours.headers.is_empty(), "{sample}");
        }
    }

    #[test]
    fn an_event_that_is_not_the_http_apis_is_an_error_naming_where() {
        let raw = runtime_reads(r#"{"version": "2.0", "requestContext": {"http": {"method": 7}}}"#);
        let err = http_event(&raw).unwrap_err().to_string();
        assert!(err.contains("requestContext.http.method"), "{err}");
    }

    /// What API Gateway reads back, as the runtime sends it.
    fn wire(response: Response<Body>) -> serde_json::Value {
        serde_json::to_value(api_gateway_response(response)).unwrap()
    }

    #[test]
    fn responses_reach_the_http_api_as_its_payload_format_2_says() {
        let json = json(
            StatusCode::CREATED,
            &serde_json::json!({"orderId": "주문-1"}),
        )
        .unwrap();
        let sent = wire(json);
        assert_eq!(sent["statusCode"], 201);
        assert_eq!(sent["isBase64Encoded"], false);
        assert_eq!(sent["headers"]["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_str(sent["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"orderId": "주문-1"}));

        let bytes = Response::builder()
            .header("content-type", "text/csv")
            .header("set-cookie", "a=1; Secure")
            .header("set-cookie", "b=2; Secure")
            .body(Body::Binary(vec![0xEF, 0xBB, 0xBF, b'x', 0xFF]))
            .unwrap();
        let sent = wire(bytes);
        assert_eq!(sent["isBase64Encoded"], true);
        assert_eq!(
            sent["body"],
            STANDARD.encode([0xEF, 0xBB, 0xBF, b'x', 0xFF])
        );
        assert_eq!(
            sent["cookies"],
            serde_json::json!(["a=1; Secure", "b=2; Secure"])
        );
        assert!(sent["headers"].get("set-cookie").is_none(), "{sent}");

        let empty = Response::builder().status(204).body(Body::Empty).unwrap();
        let sent = wire(empty);
        assert_eq!(sent["statusCode"], 204);
        assert!(
            sent.get("body").is_none_or(serde_json::Value::is_null),
            "{sent}"
        );
    }

    #[test]
    fn idempotency_key_is_required() {
        let mut req = request(Some("application/json"), "{}");
        let err = idempotency_key(&req).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code),
            (400, "IDEMPOTENCY_KEY_REQUIRED")
        );
        req.headers_mut()
            .insert("idempotency-key", HeaderValue::from_static("order-1"));
        assert_eq!(idempotency_key(&req).unwrap(), "order-1");
        // Sent, but not text a key can be: invalid, not missing.
        req.headers_mut().insert(
            "idempotency-key",
            HeaderValue::from_bytes("한글키".as_bytes()).unwrap(),
        );
        let err = idempotency_key(&req).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code),
            (400, "IDEMPOTENCY_KEY_INVALID")
        );
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let req = lambda_http::http::Request::builder()
            .header("authorization", "bearer abc.def")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(bearer_token(&req), Some("abc.def"));
        let basic = lambda_http::http::Request::builder()
            .header("authorization", "Basic abc")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(bearer_token(&basic), None);
        for value in ["Bearer abc.def", "BEARER abc.def", "bearer  abc.def "] {
            assert_eq!(bearer(value), Some("abc.def"), "{value}");
        }
        for value in ["Bearer", "Bearer ", "Bearerabc.def", "Token abc.def"] {
            assert_eq!(bearer(value), None, "{value}");
        }
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        assert!(matches_etag("\"s.3\"", "\"s.3\""));
        assert!(matches_etag("\"s.2\", W/\"s.3\"", "\"s.3\""));
        assert!(matches_etag("*", "\"s.3\""));
        assert!(!matches_etag("\"s.2\"", "\"s.3\""));
    }

    #[test]
    fn error_responses_carry_retry_after() {
        let response = error_response(&ApiError::too_many_requests("wait", 42), "r1");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
    }
}
