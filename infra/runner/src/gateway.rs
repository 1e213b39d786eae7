//! What API Gateway's HTTP API does in front of the functions: match a route of template.yaml, turn the
//! request into a payload-format-2.0 event, and turn the function's answer back into HTTP.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::cors::Cors;
use crate::lambda::{Function, Outcome, Runtime, plain};

/// API Gateway's own limit on request payloads.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

pub struct Route {
    method: String,
    path: String,
    segments: Vec<Segment>,
    function: Arc<Function>,
}

enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Route {
    pub fn new(method: &str, path: &str, function: Arc<Function>) -> Self {
        let segments = path
            .trim_start_matches('/')
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_owned()),
                        None => Segment::Param(name.to_owned()),
                    },
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            segments,
            function,
        }
    }

    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    fn matches(&self, method: &str, path: &str) -> Option<BTreeMap<String, String>> {
        if self.method != "ANY" && self.method != method {
            return None;
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut params = BTreeMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = parts.get(i).filter(|p| !p.is_empty())?;
                    params.insert(name.clone(), percent_decode(value));
                }
                Segment::Greedy(name) => {
                    let rest = parts.get(i..).filter(|r| !r.is_empty())?.join("/");
                    params.insert(name.clone(), percent_decode(&rest));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }
}

pub struct Gateway {
    routes: Vec<Route>,
    runtime: Arc<Runtime>,
    web: Option<crate::web::WebApp>,
    cors: Option<Cors>,
}

impl Gateway {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        let mut routes: Vec<Route> = runtime
            .functions
            .iter()
            .flat_map(|f| {
                f.spec
                    .routes
                    .iter()
                    .map(|r| Route::new(&r.method, &r.path, f.clone()))
            })
            .collect();
        // API Gateway prefers the most specific route: more literal segments first.
        routes.sort_by_key(|r| std::cmp::Reverse(r.literal_count()));
        Self {
            routes,
            runtime,
            web: None,
            cors: None,
        }
    }

    /// Also serves the web app under `/app/` (not an API route: CloudFront serves it deployed).
    pub fn with_web(mut self, web: crate::web::WebApp) -> Self {
        self.web = Some(web);
        self
    }

    /// Answers preflights and sets CORS headers as the HTTP API's `CorsConfiguration` says.
    pub fn with_cors(mut self, cors: Option<Cors>) -> Self {
        self.cors = cors;
        self
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        if let Some(web) = &self.web
            && method == "GET"
            && crate::web::WebApp::serves(&path)
        {
            return Ok(web.answer(&path).await);
        }
        if let Some(preflight) = self
            .cors
            .as_ref()
            .and_then(|cors| cors.preflight(&method, req.headers()))
        {
            return Ok(preflight);
        }
        let origin = req.headers().get("origin").cloned();
        let Some((route, params)) = self
            .routes
            .iter()
            .find_map(|r| r.matches(&method, &path).map(|p| (r, p)))
        else {
            return Ok(gateway_error(StatusCode::NOT_FOUND, "Not Found"));
        };
        crate::meter::api_request();
        let request_id = uuid::Uuid::new_v4().to_string();
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_PAYLOAD).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return Ok(gateway_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request Entity Too Large",
                ));
            }
        };
        let event = build_event(route, &parts, &params, &body, peer, &request_id);
        let trace_id = format!(
            "Root=1-{:08x}-{};Parent={};Sampled=1",
            jiff::Timestamp::now().as_second(),
            &uuid::Uuid::new_v4().simple().to_string()[..24],
            &uuid::Uuid::new_v4().simple().to_string()[..16],
        );
        let outcome = self
            .runtime
            .invoke(
                &route.function,
                Bytes::from(event.to_string()),
                request_id.clone(),
                trace_id,
            )
            .await;
        let mut response = match outcome {
            Outcome::Response(payload) => to_http(&payload),
            Outcome::Failed(reason) => {
                eprintln!("[{}] {request_id}: {reason}", route.route_key());
                gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Outcome::TimedOut => {
                gateway_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            }
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("apigw-requestid", value);
        }
        if let Some(cors) = &self.cors {
            cors.decorate(origin.as_ref(), response.headers_mut());
        }
        Ok(response)
    }
}

/// The event API Gateway sends for payload format 2.0.
fn build_event(
    route: &Route,
    parts: &hyper::http::request::Parts,
    path_params: &BTreeMap<String, String>,
    body: &Bytes,
    peer: SocketAddr,
    request_id: &str,
) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == hyper::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    // Repeated keys are joined with commas, as API Gateway does for payload 2.0.
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        query
            .entry(k)
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&v);
            })
            .or_insert(v);
    }
    let content_type = headers
        .get("content-type")
        .map(String::as_str)
        .unwrap_or("");
    let text = is_text(content_type)
        .then(|| std::str::from_utf8(body).ok())
        .flatten();
    let (body_value, is_base64) = match (body.is_empty(), text) {
        (true, _) => (Value::Null, false),
        (false, Some(text)) => (Value::String(text.to_owned()), false),
        (false, None) => (Value::String(STANDARD.encode(body)), true),
    };
    let now = jiff::Timestamp::now();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.route_key(),
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or("localhost"),
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route.route_key(),
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.as_millisecond(),
        },
        "isBase64Encoded": is_base64,
    });
    let object = event.as_object_mut().expect("event is an object");
    if !cookies.is_empty() {
        object.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        object.insert("queryStringParameters".into(), json!(query));
    }
    if !path_params.is_empty() {
        object.insert("pathParameters".into(), json!(path_params));
    }
    if !body_value.is_null() {
        object.insert("body".into(), body_value);
    }
    event
}

fn is_text(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence.starts_with("text/")
        || essence.ends_with("json")
        || essence.ends_with("xml")
        || essence == "application/x-www-form-urlencoded"
}

/// Turns a payload-2.0 function response into HTTP.
fn to_http(payload: &[u8]) -> Response<Full<Bytes>> {
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    // A function may return any JSON document without `statusCode`: API Gateway sends it as a 200.
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        let mut response = plain(StatusCode::OK, &value.to_string());
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        return response;
    };
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match object.get("body").and_then(Value::as_str) {
        Some(b) if object.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            STANDARD.decode(b).unwrap_or_default()
        }
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(map) = object.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                headers.append(name, value);
            }
        }
    }
    if let Some(map) = object.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in map {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            if headers.contains_key(&name) {
                continue;
            }
            for value in values
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
    for cookie in object
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(Ok(value)) = cookie.as_str().map(HeaderValue::from_str) {
            headers.append(hyper::header::SET_COOKIE, value);
        }
    }
    response
}

/// API Gateway's own error responses: `{"message": "..."}`.
fn gateway_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = plain(status, &json!({ "message": message }).to_string());
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// Path segments are percent-decoded; `+` stays `+` (it means a space only in query strings).
fn percent_decode(input: &str) -> String {
    percent_encoding::percent_decode_str(input)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::FunctionSpec;

    fn function() -> Arc<Function> {
        let spec = FunctionSpec {
            name: "F".into(),
            binary: "f".into(),
            memory: 128,
            timeout: 3,
            env: Default::default(),
            routes: vec![],
            websocket: vec![],
            sources: vec![],
            grants: vec![],
            tracing: None,
            logging: Default::default(),
        };
        Runtime::new(vec![spec], "/nonexistent".into(), vec![]).functions[0].clone()
    }

    #[test]
    fn routes_match_literals_parameters_and_greedy_tails() {
        let f = function();
        let item = Route::new("GET", "/v1/stores/{storeId}/items/{itemId}", f.clone());
        let params = item.matches("GET", "/v1/stores/s%201/items/i2").unwrap();
        assert_eq!(params["storeId"], "s 1");
        assert_eq!(params["itemId"], "i2");
        assert!(item.matches("POST", "/v1/stores/s1/items/i2").is_none());
        assert!(item.matches("GET", "/v1/stores/s1/items").is_none());
        assert!(item.matches("GET", "/v1/stores//items/i2").is_none());
        assert!(item.matches("GET", "/v1/stores/s1/items/i2/x").is_none());

        let greedy = Route::new("ANY", "/files/{path+}", f);
        assert_eq!(
            greedy.matches("PUT", "/files/a/b.png").unwrap()["path"],
            "a/b.png"
        );
        assert!(greedy.matches("PUT", "/files").is_none());
    }

    fn parts(uri: &str, headers: &[(&str, &str)]) -> hyper::http::request::Parts {
        let mut builder = Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn events_follow_payload_format_2() {
        let route = Route::new("POST", "/v1/things/{id}", function());
        let parts = parts(
            "/v1/things/7?tag=a&tag=b&q=x%20y",
            &[
                ("content-type", "application/json"),
                ("cookie", "a=1; b=2"),
                ("x-multi", "1"),
                ("x-multi", "2"),
            ],
        );
        let params = route.matches("POST", "/v1/things/7").unwrap();
        let peer: SocketAddr = "127.0.0.9:5000".parse().unwrap();
        let event = build_event(
            &route,
            &parts,
            &params,
            &Bytes::from("{\"a\":1}"),
            peer,
            "rid",
        );
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "POST /v1/things/{id}");
        assert_eq!(event["rawPath"], "/v1/things/7");
        assert_eq!(event["rawQueryString"], "tag=a&tag=b&q=x%20y");
        assert_eq!(
            event["queryStringParameters"],
            json!({"tag": "a,b", "q": "x y"})
        );
        assert_eq!(event["pathParameters"], json!({"id": "7"}));
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["headers"]["x-multi"], "1,2");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["body"], "{\"a\":1}");
        assert_eq!(event["isBase64Encoded"], false);
        assert_eq!(event["requestContext"]["requestId"], "rid");
        assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.9");
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
    }

    #[test]
    fn binary_bodies_are_base64_encoded() {
        let route = Route::new("POST", "/upload", function());
        let parts = parts("/upload", &[("content-type", "image/png")]);
        let body = Bytes::from_static(&[0x89, b'P', b'N', b'G', 0, 0xff]);
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let event = build_event(&route, &parts, &BTreeMap::new(), &body, peer, "rid");
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(
            STANDARD.decode(event["body"].as_str().unwrap()).unwrap(),
            body
        );
    }

    #[tokio::test]
    async fn responses_become_http() {
        let payload = json!({
            "statusCode": 201,
            "headers": {"content-type": "application/json"},
            "multiValueHeaders": {"x-a": ["1", "2"]},
            "cookies": ["s=1; HttpOnly"],
            "body": STANDARD.encode("hello"),
            "isBase64Encoded": true,
        });
        let response = to_http(payload.to_string().as_bytes());
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(response.headers()["set-cookie"], "s=1; HttpOnly");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello");

        let broken = to_http(b"not json");
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
