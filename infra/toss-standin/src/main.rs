//! A stand-in for Toss Payments' API (https://api.tosspayments.com), for `make dev` and the tests:
//! the same paths, fields, statuses and error codes, Basic auth with a `test_sk_` secret key, and
//! `Idempotency-Key` honoured as Toss does (a repeated key returns the first response, the request is
//! not executed again).
//!
//! It can be told how to behave, per call type, through `POST /__control`:
//! `{"confirm": "normal" | "slow" | "ambiguous" | "fail" | "reject", "delayMs": 3000}` — `slow`
//! answers after `delayMs`; `ambiguous` executes the request and then answers only after `delayMs`
//! (so a client with a shorter time-out cannot know it succeeded); `fail` answers 500
//! `PROVIDER_ERROR` without executing; `reject` answers 400 `REJECT_CARD_PAYMENT`.
//! `GET /__stats` counts executed confirms and cancels.
//!
//!     toss-standin [--port N]     (prints "Toss stand-in on http://127.0.0.1:N" when ready)

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Default)]
struct State {
    /// Payments by paymentKey.
    payments: HashMap<String, Value>,
    /// paymentKey by orderId.
    by_order: HashMap<String, String>,
    /// First responses by (Idempotency-Key, path).
    replays: HashMap<(String, String), (StatusCode, Value)>,
    /// Requests still running, by (Idempotency-Key, path): a repeat meanwhile is told so.
    processing: std::collections::HashSet<(String, String)>,
    confirm_mode: String,
    cancel_mode: String,
    delay_ms: u64,
    confirms_executed: u64,
    cancels_executed: u64,
}

type Shared = Arc<Mutex<State>>;

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (status, json!({"code": code, "message": message}))
}

fn now() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn authorized(req: &Request<Incoming>) -> bool {
    let Some(value) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let decoded = STANDARD.decode(encoded).unwrap_or_default();
    let text = String::from_utf8_lossy(&decoded);
    // `<secretKey>:` — the secret key and an empty password.
    text.strip_suffix(':')
        .is_some_and(|key| key.starts_with("test_sk_") || key.starts_with("test_gsk_"))
}

fn confirm(state: &mut State, body: &Value) -> (StatusCode, Value) {
    let (Some(payment_key), Some(order_id), Some(amount)) = (
        body["paymentKey"].as_str(),
        body["orderId"].as_str(),
        body["amount"].as_i64(),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "paymentKey, orderId and amount are required",
        );
    };
    if amount < 100 {
        return error(
            StatusCode::BAD_REQUEST,
            "BELOW_MINIMUM_AMOUNT",
            "card payments are at least 100 KRW",
        );
    }
    if let Some(existing) = state.by_order.get(order_id) {
        if existing != payment_key {
            return error(
                StatusCode::BAD_REQUEST,
                "DUPLICATED_ORDER_ID",
                "the orderId was already paid",
            );
        }
        return error(
            StatusCode::BAD_REQUEST,
            "ALREADY_PROCESSED_PAYMENT",
            "the payment was already processed",
        );
    }
    state.confirms_executed += 1;
    let approved = now();
    let payment = json!({
        "mId": "tosspayments",
        "version": "2022-11-16",
        "paymentKey": payment_key,
        "orderId": order_id,
        "orderName": body["orderName"].as_str().unwrap_or("주문"),
        "status": "DONE",
        "method": "카드",
        "currency": "KRW",
        "totalAmount": amount,
        "balanceAmount": amount,
        "requestedAt": approved,
        "approvedAt": approved,
        "lastTransactionKey": uuid::Uuid::new_v4().simple().to_string(),
        "cancels": [],
        "isPartialCancelable": true,
        "secret": format!("ps_{}", uuid::Uuid::new_v4().simple()),
        "failure": null,
    });
    state
        .payments
        .insert(payment_key.to_owned(), payment.clone());
    state
        .by_order
        .insert(order_id.to_owned(), payment_key.to_owned());
    (StatusCode::OK, payment)
}

fn cancel(state: &mut State, payment_key: &str, body: &Value) -> (StatusCode, Value) {
    let Some(reason) = body["cancelReason"].as_str() else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "cancelReason is required",
        );
    };
    let Some(payment) = state.payments.get_mut(payment_key) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND_PAYMENT",
            "no such payment",
        );
    };
    let balance = payment["balanceAmount"].as_i64().unwrap_or(0);
    let amount = body["cancelAmount"].as_i64().unwrap_or(balance);
    if amount <= 0 || amount > balance {
        return error(
            StatusCode::BAD_REQUEST,
            "NOT_CANCELABLE_AMOUNT",
            "the amount exceeds what can be canceled",
        );
    }
    state.cancels_executed += 1;
    let left = balance - amount;
    payment["balanceAmount"] = json!(left);
    payment["status"] = json!(if left == 0 {
        "CANCELED"
    } else {
        "PARTIAL_CANCELED"
    });
    let transaction = uuid::Uuid::new_v4().simple().to_string();
    payment["lastTransactionKey"] = json!(transaction);
    if let Some(cancels) = payment["cancels"].as_array_mut() {
        cancels.push(json!({
            "cancelAmount": amount,
            "cancelReason": reason,
            "canceledAt": now(),
            "transactionKey": transaction,
            "refundableAmount": left,
        }));
    }
    (StatusCode::OK, payment.clone())
}

async fn handle(
    state: Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_api = path.starts_with("/v1/");
    if is_api && !authorized(&req) {
        let (status, body) = error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED_KEY",
            "the API key is not valid",
        );
        return Ok(reply(status, &body));
    }
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();

    if let Some(key) = &key {
        let s = state.lock().expect("state");
        let id = (key.clone(), path.clone());
        if s.processing.contains(&id) {
            let (status, body) = error(
                StatusCode::CONFLICT,
                "IDEMPOTENT_REQUEST_PROCESSING",
                "a request with this Idempotency-Key is being processed",
            );
            return Ok(reply(status, &body));
        }
        if let Some((status, first)) = s.replays.get(&id).cloned() {
            return Ok(reply(status, &first));
        }
    }

    let (mode, delay) = {
        let s = state.lock().expect("state");
        let mode = match parts.as_slice() {
            ["v1", "payments", "confirm"] => s.confirm_mode.clone(),
            ["v1", "payments", _, "cancel"] => s.cancel_mode.clone(),
            _ => "normal".to_owned(),
        };
        (mode, Duration::from_millis(s.delay_ms))
    };
    match mode.as_str() {
        "fail" => {
            let (status, body) = error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "PROVIDER_ERROR",
                "the card company did not answer",
            );
            return Ok(reply(status, &body));
        }
        "reject" => {
            let (status, body) = error(
                StatusCode::FORBIDDEN,
                "REJECT_CARD_PAYMENT",
                "the card was declined",
            );
            return Ok(reply(status, &body));
        }
        "slow" => tokio::time::sleep(delay).await,
        _ => {}
    }

    let (status, response) = {
        let mut s = state.lock().expect("state");
        let s = &mut *s;
        match (&method, parts.as_slice()) {
            (&Method::POST, ["v1", "payments", "confirm"]) => confirm(s, &body),
            (&Method::POST, ["v1", "payments", payment_key, "cancel"]) => {
                cancel(s, payment_key, &body)
            }
            (&Method::GET, ["v1", "payments", "orders", order_id]) => {
                match s.by_order.get(*order_id) {
                    Some(k) => (StatusCode::OK, s.payments[k].clone()),
                    None => error(
                        StatusCode::NOT_FOUND,
                        "NOT_FOUND_PAYMENT",
                        "no such payment",
                    ),
                }
            }
            (&Method::GET, ["v1", "payments", payment_key]) => match s.payments.get(*payment_key) {
                Some(p) => (StatusCode::OK, p.clone()),
                None => error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND_PAYMENT",
                    "no such payment",
                ),
            },
            (&Method::POST, ["__control"]) => {
                if let Some(m) = body["confirm"].as_str() {
                    s.confirm_mode = m.to_owned();
                }
                if let Some(m) = body["cancel"].as_str() {
                    s.cancel_mode = m.to_owned();
                }
                if let Some(d) = body["delayMs"].as_u64() {
                    s.delay_ms = d;
                }
                (
                    StatusCode::OK,
                    json!({"confirm": s.confirm_mode, "cancel": s.cancel_mode, "delayMs": s.delay_ms}),
                )
            }
            (&Method::GET, ["__stats"]) => (
                StatusCode::OK,
                json!({"confirmsExecuted": s.confirms_executed, "cancelsExecuted": s.cancels_executed}),
            ),
            _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such API"),
        }
    };
    let id = key.map(|key| (key, path));
    if let Some(id) = &id {
        let mut s = state.lock().expect("state");
        s.replays.insert(id.clone(), (status, response.clone()));
        if mode == "ambiguous" {
            s.processing.insert(id.clone());
        }
    }
    if mode == "ambiguous" {
        // Executed; the answer comes too late for the caller to know, and until it is sent a repeat
        // of the request is told it is still being processed.
        tokio::time::sleep(delay).await;
        if let Some(id) = &id {
            state.lock().expect("state").processing.remove(id);
        }
    }
    Ok(reply(status, &response))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--port" {
            port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        }
    }
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(err) => {
            eprintln!("toss-standin: cannot listen on 127.0.0.1:{port}: {err}");
            std::process::exit(1);
        }
    };
    let state: Shared = Arc::new(Mutex::new(State {
        confirm_mode: "normal".into(),
        cancel_mode: "normal".into(),
        delay_ms: 3_000,
        ..State::default()
    }));
    match listener.local_addr() {
        Ok(addr) => println!("Toss stand-in on http://{addr}"),
        Err(err) => {
            eprintln!("toss-standin: {err}");
            std::process::exit(1);
        }
    }
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
