//! The WebSocket API and its Management API, as API Gateway serves them.
//!
//! - A client connects with a WebSocket upgrade (`ws://127.0.0.1:PORT/?storeId=…`); the runner invokes
//!   the `$connect` function with API Gateway's event and completes the handshake only on a 200
//!   answer. When the socket closes, `$disconnect` is invoked.
//! - Functions post to connections through the Management API at the same address (through their
//!   front, which checks their grants: `front.rs`): `POST /{stage}/@connections/{id}` sends the
//!   body to that client, `DELETE` closes it, `GET` describes it; an unknown connection answers 410
//!   `GoneException`, as API Gateway does.
//! - `POST /__local/functions/{name}/stop` and `…/start` (`name`: the template's logical id or the
//!   binary's name) take a function down and bring it back (its instances are killed; invocations
//!   fail meanwhile), for testing what a crash does;
//!   `POST /__local/functions/{name}/invoke` invokes it with the request's body, as
//!   `aws lambda invoke` would, and answers with its result (502 with the error if it failed).
//! - `GET /__local/functions/{name}/lane?pk={partition key}&sk={sort key}` tells which of the
//!   function's stream lanes (`ParallelizationFactor`) an item's records take: records wait only
//!   on a failure in their own lane (`streams.rs`).
//! - `POST /__local/faults` with `{"refuse": [..], "hang": [..], "gone": [..]}` makes posts whose
//!   connection id or body contains one of the strings fail: `refuse` at once with a 500, `hang` only
//!   once the faults are replaced (and then with a 500, undelivered) — a poster that dies meanwhile
//!   has delivered nothing — and `gone` with API Gateway's 410.
//! - `POST /__local/faults/aws` sets the AWS fault switchboard (see `front.rs`); `GET` lists it.
//! - `GET /__local/connections` lists the open connections, oldest first.
//! - `POST /__local/meter {"on": true}` clears and starts the cost meter (`meter.rs`); `GET` reads it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::lambda::{Function, Outcome, Runtime, body_bytes, plain};

/// What the Management API can do to a live connection.
enum Command {
    Send(Bytes),
    Close,
}

struct Connection {
    commands: mpsc::UnboundedSender<Command>,
    connected_at: jiff::Timestamp,
    source_ip: String,
}

pub struct WebSocketApi {
    runtime: Arc<Runtime>,
    connect: Option<Arc<Function>>,
    disconnect: Option<Arc<Function>>,
    connections: Mutex<HashMap<String, Connection>>,
    stage: String,
    faults: Mutex<Faults>,
    /// The AWS emulator's front, whose fault switchboard is set here.
    front: Arc<crate::front::Front>,
}

/// Faults of the Management API's posts, each a list of strings matched against the connection id
/// and the body posted.
#[derive(Debug, Default, Clone, serde::Deserialize)]
struct Faults {
    /// Answered 500 at once, undelivered.
    #[serde(default)]
    refuse: Vec<String>,
    /// Held until the faults are replaced, then answered 500, undelivered.
    #[serde(default)]
    hang: Vec<String>,
    /// Answered 410 `GoneException`, as for a connection API Gateway no longer knows.
    #[serde(default)]
    gone: Vec<String>,
}

impl Faults {
    fn matching(list: &[String], id: &str, body: &[u8]) -> bool {
        let text = String::from_utf8_lossy(body);
        list.iter()
            .any(|needle| id.contains(needle.as_str()) || text.contains(needle.as_str()))
    }
}

impl WebSocketApi {
    pub fn new(runtime: Arc<Runtime>, stage: String, front: Arc<crate::front::Front>) -> Arc<Self> {
        let route = |key: &str| {
            runtime
                .functions
                .iter()
                .find(|f| f.spec.websocket.iter().any(|r| r == key))
                .cloned()
        };
        Arc::new(Self {
            connect: route("$connect"),
            disconnect: route("$disconnect"),
            runtime,
            connections: Mutex::new(HashMap::new()),
            stage,
            faults: Mutex::new(Faults::default()),
            front,
        })
    }

    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let api = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| api.clone().handle(req, peer));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_owned();
        if req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
        {
            return Ok(self.upgrade(req, peer).await);
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        // The Management API sits under the stage on AWS (`/dev/@connections/…`); either works here.
        let management = match segments.as_slice() {
            ["@connections", id] | [_, "@connections", id] => Some(decode(id)),
            _ => None,
        };
        let method = req.method().clone();
        if let Some(id) = management {
            let body = body_bytes(req).await;
            return Ok(self.manage(&method, &id, body).await);
        }
        Ok(match (method, segments.as_slice()) {
            (Method::POST, ["__local", "functions", name, "invoke"]) => {
                let name = name.to_string();
                let body = body_bytes(req).await;
                self.invoke(&name, body).await
            }
            (Method::POST, ["__local", "functions", name, action]) => {
                self.control(name, action).await
            }
            (Method::GET, ["__local", "functions", name, "lane"]) => {
                let query = req.uri().query().unwrap_or_default().to_owned();
                let param = |name: &str| {
                    form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                };
                match (self.function(name), param("pk"), param("sk")) {
                    (None, _, _) => plain(StatusCode::NOT_FOUND, "no such function"),
                    (_, None, _) | (_, _, None) => plain(
                        StatusCode::BAD_REQUEST,
                        "?pk=&sk= are the item's partition and sort key",
                    ),
                    (Some(function), Some(pk), Some(sk)) => {
                        match crate::streams::lane_of_key(function, &pk, &sk) {
                            Some(lane) => json_response(StatusCode::OK, &json!({"lane": lane})),
                            None => plain(StatusCode::NOT_FOUND, "the function reads no stream"),
                        }
                    }
                }
            }
            (Method::POST, ["__local", "faults", "aws"]) => {
                let body = body_bytes(req).await;
                match self.front.set_rules(&body) {
                    Ok(n) => plain(StatusCode::OK, &format!("{n} rules set")),
                    Err(err) => plain(StatusCode::BAD_REQUEST, &err),
                }
            }
            (Method::POST, ["__local", "meter"]) => {
                let body = body_bytes(req).await;
                let on = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|b| b["on"].as_bool())
                    .unwrap_or(true);
                crate::meter::switch(on);
                plain(StatusCode::OK, if on { "metering" } else { "off" })
            }
            (Method::GET, ["__local", "meter"]) => json_response(
                StatusCode::OK,
                &serde_json::to_value(crate::meter::read()).unwrap_or_default(),
            ),
            (Method::GET, ["__local", "connections"]) => {
                let connections = self.connections.lock().await;
                let mut listed: Vec<Value> = connections
                    .iter()
                    .map(|(id, c)| {
                        json!({"connectionId": id, "connectedAt": c.connected_at.to_string(),
                            "sourceIp": c.source_ip})
                    })
                    .collect();
                listed.sort_by_key(|c| c["connectedAt"].as_str().unwrap_or_default().to_owned());
                json_response(StatusCode::OK, &json!({"connections": listed}))
            }
            (Method::GET, ["__local", "faults", "aws"]) => {
                json_response(StatusCode::OK, &self.front.rules())
            }
            (Method::POST, ["__local", "faults"]) => {
                let body = body_bytes(req).await;
                match serde_json::from_slice::<Faults>(&body) {
                    Ok(faults) => {
                        *self.faults.lock().await = faults;
                        plain(StatusCode::OK, "faults set")
                    }
                    Err(err) => plain(StatusCode::BAD_REQUEST, &err.to_string()),
                }
            }
            _ => plain(
                StatusCode::NOT_FOUND,
                "not a WebSocket or Management API path",
            ),
        })
    }

    async fn manage(&self, method: &Method, id: &str, body: Bytes) -> Response<Full<Bytes>> {
        if *method == Method::POST && Faults::matching(&self.faults.lock().await.refuse, id, &body)
        {
            return internal_error();
        }
        if *method == Method::POST && Faults::matching(&self.faults.lock().await.gone, id, &body) {
            return gone();
        }
        if *method == Method::POST {
            let mut hung = false;
            while Faults::matching(&self.faults.lock().await.hang, id, &body) {
                hung = true;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            if hung {
                return internal_error();
            }
        }
        let connections = self.connections.lock().await;
        let Some(connection) = connections.get(id) else {
            return gone();
        };
        match *method {
            Method::POST => {
                if connection.commands.send(Command::Send(body)).is_err() {
                    return gone();
                }
                crate::meter::websocket_message();
                plain(StatusCode::OK, "")
            }
            Method::DELETE => {
                let _ = connection.commands.send(Command::Close);
                plain(StatusCode::NO_CONTENT, "")
            }
            Method::GET => json_response(
                StatusCode::OK,
                &json!({
                    "connectedAt": connection.connected_at.to_string(),
                    "lastActiveAt": connection.connected_at.to_string(),
                    "identity": {"sourceIp": connection.source_ip, "userAgent": ""},
                }),
            ),
            _ => plain(StatusCode::METHOD_NOT_ALLOWED, ""),
        }
    }

    /// A function by its template logical id (`OrdersStatusFunction`) or its binary (`orders-status`).
    fn function(&self, name: &str) -> Option<&Arc<Function>> {
        self.runtime
            .functions
            .iter()
            .find(|f| f.spec.name == name || f.spec.binary == name)
    }

    async fn invoke(&self, name: &str, payload: Bytes) -> Response<Full<Bytes>> {
        let Some(function) = self.function(name) else {
            return plain(StatusCode::NOT_FOUND, "no such function");
        };
        let outcome = self.runtime.invoke_event(function, payload).await;
        match outcome {
            Outcome::Response(body) => {
                let mut response = Response::new(Full::new(body));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                response
            }
            Outcome::Failed(reason) => plain(StatusCode::BAD_GATEWAY, &reason),
            Outcome::TimedOut => plain(StatusCode::GATEWAY_TIMEOUT, "timed out"),
        }
    }

    async fn control(&self, name: &str, action: &str) -> Response<Full<Bytes>> {
        let Some(function) = self.function(name) else {
            return plain(StatusCode::NOT_FOUND, "no such function");
        };
        match action {
            "stop" => {
                function.stop().await;
                plain(StatusCode::OK, "stopped")
            }
            "start" => {
                function.start();
                plain(StatusCode::OK, "started")
            }
            _ => plain(StatusCode::NOT_FOUND, "stop or start"),
        }
    }

    async fn upgrade(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
            return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
        };
        let Some(connect) = self.connect.clone() else {
            return plain(StatusCode::NOT_FOUND, "the template has no $connect route");
        };
        let connection_id = new_connection_id();
        let event = self.event(&req, "$connect", "CONNECT", &connection_id, peer);
        let outcome = self
            .runtime
            .invoke_event(&connect, Bytes::from(event.to_string()))
            .await;
        let answer: Value = match outcome {
            Outcome::Response(body) => serde_json::from_slice(&body).unwrap_or(Value::Null),
            Outcome::Failed(_) | Outcome::TimedOut => {
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "$connect failed");
            }
        };
        let status = answer["statusCode"].as_u64().unwrap_or(500) as u16;
        if status != 200 {
            let mut response = Response::new(Full::new(Bytes::from(
                answer["body"].as_str().unwrap_or_default().to_owned(),
            )));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return response;
        }

        let (commands, mut pending) = mpsc::unbounded_channel();
        self.connections.lock().await.insert(
            connection_id.clone(),
            Connection {
                commands,
                connected_at: jiff::Timestamp::now(),
                source_ip: peer.ip().to_string(),
            },
        );
        let api = self.clone();
        let upgraded = hyper::upgrade::on(req);
        tokio::spawn(async move {
            let (status, reason) = match upgraded.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        None,
                    )
                    .await;
                    let (mut outgoing, mut incoming) = socket.split();
                    loop {
                        tokio::select! {
                            command = pending.recv() => match command {
                                Some(Command::Send(data)) => {
                                    let text = String::from_utf8_lossy(&data).into_owned();
                                    if outgoing.send(Message::text(text)).await.is_err() {
                                        break (1006, "Connection lost");
                                    }
                                }
                                Some(Command::Close) | None => {
                                    let _ = outgoing.send(Message::Close(None)).await;
                                    break (1000, "Closed by the server");
                                }
                            },
                            frame = incoming.next() => match frame {
                                // Clients only listen; what they send has no route.
                                Some(Ok(Message::Close(_))) | None => break (1000, "Client closed"),
                                Some(Ok(_)) => {}
                                Some(Err(_)) => break (1006, "Connection lost"),
                            },
                        }
                    }
                }
                Err(_) => (1006, "Upgrade failed"),
            };
            if let Some(gone) = api.connections.lock().await.remove(&connection_id) {
                let lasted = jiff::Timestamp::now().duration_since(gone.connected_at);
                crate::meter::websocket_connection(lasted.as_secs_f64() / 60.0);
            }
            api.disconnected(&connection_id, peer, status, reason).await;
        });

        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, ""))
    }

    async fn disconnected(&self, connection_id: &str, peer: SocketAddr, status: u16, reason: &str) {
        let Some(function) = self.disconnect.clone() else {
            return;
        };
        let mut event = json!({
            "headers": {},
            "multiValueHeaders": {},
            "isBase64Encoded": false,
            "requestContext": self.context("$disconnect", "DISCONNECT", connection_id, peer),
        });
        event["requestContext"]["disconnectStatusCode"] = json!(status);
        event["requestContext"]["disconnectReason"] = json!(reason);
        let outcome = self
            .runtime
            .invoke_event(&function, Bytes::from(event.to_string()))
            .await;
        if let Outcome::Failed(reason) = outcome {
            eprintln!("[{}] $disconnect failed: {reason}", function.spec.name);
        }
    }

    /// API Gateway's WebSocket event for a route.
    fn event(
        &self,
        req: &Request<Incoming>,
        route: &str,
        kind: &str,
        connection_id: &str,
        peer: SocketAddr,
    ) -> Value {
        let mut headers = serde_json::Map::new();
        let mut multi_headers = serde_json::Map::new();
        for (name, value) in req.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers.insert(name.as_str().to_owned(), json!(value));
            if let Some(values) = multi_headers
                .entry(name.as_str().to_owned())
                .or_insert_with(|| json!([]))
                .as_array_mut()
            {
                values.push(json!(value));
            }
        }
        let mut query = serde_json::Map::new();
        let mut multi_query = serde_json::Map::new();
        if let Some(q) = req.uri().query() {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                query.insert(k.to_string(), json!(v));
                if let Some(values) = multi_query
                    .entry(k.to_string())
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                {
                    values.push(json!(v));
                }
            }
        }
        json!({
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
            "multiValueQueryStringParameters": if multi_query.is_empty() { Value::Null } else { Value::Object(multi_query) },
            "isBase64Encoded": false,
            "requestContext": self.context(route, kind, connection_id, peer),
        })
    }

    fn context(&self, route: &str, kind: &str, connection_id: &str, peer: SocketAddr) -> Value {
        let now = jiff::Timestamp::now();
        json!({
            "routeKey": route,
            "eventType": kind,
            "extendedRequestId": uuid::Uuid::new_v4().simple().to_string(),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": now.as_millisecond(),
            "requestTimeEpoch": now.as_millisecond(),
            "identity": {"sourceIp": peer.ip().to_string()},
            "requestId": uuid::Uuid::new_v4().simple().to_string(),
            "domainName": "127.0.0.1",
            "connectionId": connection_id,
            "apiId": "local",
        })
    }
}

/// API Gateway's ids are 16 characters ending in `=`; the `=` is kept so that a client which forgets
/// to encode the id in a path fails here as on AWS.
fn new_connection_id() -> String {
    format!("{}=", &uuid::Uuid::new_v4().simple().to_string()[..15])
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

fn gone() -> Response<Full<Bytes>> {
    aws_error(StatusCode::GONE, "GoneException", "the connection is gone")
}

fn internal_error() -> Response<Full<Bytes>> {
    aws_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerErrorException",
        "injected fault",
    )
}

/// An error as the Management API answers it: the type in `x-amzn-errortype`, where the SDK looks.
fn aws_error(status: StatusCode, kind: &'static str, message: &str) -> Response<Full<Bytes>> {
    let mut response = json_response(status, &json!({ "message": message }));
    response
        .headers_mut()
        .insert("x-amzn-errortype", header::HeaderValue::from_static(kind));
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
