//! A stand-in for Toss Payments' API (https://api.tosspayments.com), for `make dev` and the tests:
//! the same paths, fields, statuses and error codes, Basic auth with a `test_sk_` secret key, and
//! `Idempotency-Key` honoured as Toss does (a repeated key returns the first response, the request is
//! not executed again; a repeat while the first still runs is told `IDEMPOTENT_REQUEST_PROCESSING`).
//!
//! What real Toss does, it does:
//! - A payment key belongs to one order and amount (the widget's session): confirming it for another
//!   order is `NOT_FOUND_PAYMENT_SESSION`. Sessions come from `POST /__sessions` (as the widget would
//!   make them), or are made on a first confirm of an unknown key, for that order.
//! - Card payments become DONE on confirm; virtual accounts (`"method": "VIRTUAL_ACCOUNT"` sessions)
//!   become WAITING_FOR_DEPOSIT, then DONE on `POST /__deposit {"orderId"}`; `POST /__expire
//!   {"paymentKey"}` expires a payment not yet done (EXPIRED).
//! - Cancels (full or `cancelAmount`), refused past the balance; a second payment of one order is
//!   `DUPLICATED_ORDER_ID`, a repeated one `ALREADY_PROCESSED_PAYMENT`.
//! - Webhooks: every status change is sent as `PAYMENT_STATUS_CHANGED` (and a deposit as
//!   `DEPOSIT_CALLBACK` with the payment's secret) to the `webhookUrl` it is given, with the
//!   `tosspayments-webhook-transmission-id` and `…-retried-count` headers, retried on anything but a
//!   2xx after 1, 4, 16, 64, 256, 1024 and 4096 units (Toss's units are minutes; here a second, or
//!   `webhookRetryUnitMs`), and delivered twice with probability `duplicateWebhooks`.
//!
//! Faults, through `POST /__control` (each field optional):
//! `{"confirm" | "cancel" | "get": MODE, "delayMs": 3000, "faults": [{"orderId", "call", "mode",
//! "times", "delayMs"}], "clearFaults": true, "webhookUrl": URL, "webhooks": bool,
//! "duplicateWebhooks": 0.0–1.0, "webhookDelayMs": N, "webhookRetryUnitMs": N}`. A MODE is `normal`;
//! `slow` (answers after the delay); `ambiguous` (executes, answers only after the delay, so a
//! client with a shorter time-out cannot know it succeeded); `drop` (does not execute, answers 500
//! after the delay: the payment stays IN_PROGRESS); `fail` (500 `PROVIDER_ERROR` at once, not
//! executed); `reject` (a refusal: `REJECT_CARD_PAYMENT` for a confirm, which aborts the session;
//! `NOT_CANCELABLE_PAYMENT` for a cancel); `reject-late` (a cancel's refusal, after the delay).
//! Faults for one order (`faults`) apply `times` times before the global mode of the call.
//! `GET /__stats` counts executed confirms and cancels; `GET /__ledger` lists every payment, every
//! executed cancel (with whether its amount was given) and the webhook deliveries.
//!
//!     toss-standin [--port N]     (prints "Toss stand-in on http://127.0.0.1:N" when ready)

use std::collections::{HashMap, HashSet};
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

/// Toss's retry schedule, in units (minutes at Toss).
const RETRY_UNITS: [u64; 7] = [1, 4, 16, 64, 256, 1024, 4096];

#[derive(Debug, Clone)]
struct Fault {
    order_id: String,
    call: String,
    mode: String,
    times: u64,
    delay_ms: Option<u64>,
}

#[derive(Default)]
struct State {
    /// Every payment, sessions not yet confirmed included, by paymentKey.
    payments: HashMap<String, Value>,
    /// The payment keys of each order, oldest first.
    by_order: HashMap<String, Vec<String>>,
    /// First responses by (Idempotency-Key, path).
    replays: HashMap<(String, String), (StatusCode, Value)>,
    /// Requests still running, by (Idempotency-Key, path): a repeat meanwhile is told so.
    processing: HashSet<(String, String)>,
    confirm_mode: String,
    cancel_mode: String,
    get_mode: String,
    delay_ms: u64,
    faults: Vec<Fault>,
    confirms_executed: u64,
    cancels_executed: u64,
    /// Payments looked up by order (`GET /v1/payments/orders/{orderId}`).
    lookups_by_order: u64,
    /// Executed confirms per order.
    confirms_by_order: HashMap<String, u64>,
    /// Every executed cancel: paymentKey, orderId, amount, whether the amount was given.
    cancel_log: Vec<Value>,
    webhook_url: Option<String>,
    webhooks: bool,
    duplicate_webhooks: f64,
    webhook_delay_ms: u64,
    webhook_retry_unit_ms: u64,
    /// Every delivery attempt: transmission id, event type, order, retried count, answer.
    deliveries: Vec<Value>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

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

/// A chance in [0, 1).
fn chance() -> f64 {
    (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1_000_000.0
}

impl State {
    /// The payment Toss reports for an order: the one that went through, else the latest session.
    fn of_order(&self, order_id: &str) -> Option<&Value> {
        let keys = self.by_order.get(order_id)?;
        let executed = keys.iter().rev().find(|k| {
            matches!(
                self.payments[*k]["status"].as_str(),
                Some("DONE" | "CANCELED" | "PARTIAL_CANCELED" | "WAITING_FOR_DEPOSIT")
            )
        });
        executed
            .or_else(|| keys.last())
            .and_then(|k| self.payments.get(k))
    }

    /// A session as the payment widget makes it: the key is this order's, for this amount.
    fn open_session(&mut self, payment_key: &str, order_id: &str, amount: i64, method: &str) {
        if self.payments.contains_key(payment_key) {
            return;
        }
        let virtual_account = method == "VIRTUAL_ACCOUNT";
        let payment = json!({
            "mId": "tosspayments",
            "version": "2022-11-16",
            "paymentKey": payment_key,
            "orderId": order_id,
            "orderName": "주문",
            "status": "IN_PROGRESS",
            "method": if virtual_account { "가상계좌" } else { "카드" },
            "currency": "KRW",
            "totalAmount": amount,
            "balanceAmount": amount,
            "requestedAt": now(),
            "approvedAt": null,
            "lastTransactionKey": null,
            "cancels": [],
            "isPartialCancelable": true,
            "virtualAccount": null,
            "secret": null,
            "failure": null,
        });
        self.payments.insert(payment_key.to_owned(), payment);
        self.by_order
            .entry(order_id.to_owned())
            .or_default()
            .push(payment_key.to_owned());
    }

    /// The fault that applies to this call of this order: a scripted one first, then the global mode.
    fn fault(&mut self, call: &str, order_id: Option<&str>) -> (String, u64) {
        if let Some(order_id) = order_id
            && let Some(fault) = self
                .faults
                .iter_mut()
                .find(|f| f.order_id == order_id && f.call == call && f.times > 0)
        {
            fault.times -= 1;
            return (fault.mode.clone(), fault.delay_ms.unwrap_or(self.delay_ms));
        }
        let mode = match call {
            "confirm" => &self.confirm_mode,
            "cancel" => &self.cancel_mode,
            _ => &self.get_mode,
        };
        (mode.clone(), self.delay_ms)
    }
}

fn confirm(state: &mut State, body: &Value) -> ((StatusCode, Value), Vec<Value>) {
    let (Some(payment_key), Some(order_id), Some(amount)) = (
        body["paymentKey"].as_str(),
        body["orderId"].as_str(),
        body["amount"].as_i64(),
    ) else {
        let refusal = error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "paymentKey, orderId and amount are required",
        );
        return (refusal, vec![]);
    };
    if amount < 100 {
        let refusal = error(
            StatusCode::BAD_REQUEST,
            "BELOW_MINIMUM_AMOUNT",
            "card payments are at least 100 KRW",
        );
        return (refusal, vec![]);
    }
    state.open_session(payment_key, order_id, amount, "CARD");
    let session = &state.payments[payment_key];
    if session["orderId"] != order_id {
        let refusal = error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND_PAYMENT_SESSION",
            "no payment session for this orderId and paymentKey",
        );
        return (refusal, vec![]);
    }
    if session["totalAmount"] != amount {
        let refusal = error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "the amount differs from the payment's",
        );
        return (refusal, vec![]);
    }
    match session["status"].as_str() {
        Some("DONE" | "WAITING_FOR_DEPOSIT" | "CANCELED" | "PARTIAL_CANCELED") => {
            let refusal = error(
                StatusCode::BAD_REQUEST,
                "ALREADY_PROCESSED_PAYMENT",
                "the payment was already processed",
            );
            return (refusal, vec![]);
        }
        Some("ABORTED" | "EXPIRED") => {
            let refusal = error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND_PAYMENT_SESSION",
                "the payment session expired",
            );
            return (refusal, vec![]);
        }
        _ => {}
    }
    if state.of_order(order_id).is_some_and(|p| {
        p["paymentKey"] != payment_key
            && matches!(
                p["status"].as_str(),
                Some("DONE" | "CANCELED" | "PARTIAL_CANCELED" | "WAITING_FOR_DEPOSIT")
            )
    }) {
        let refusal = error(
            StatusCode::BAD_REQUEST,
            "DUPLICATED_ORDER_ID",
            "the orderId was already paid",
        );
        return (refusal, vec![]);
    }
    state.confirms_executed += 1;
    *state
        .confirms_by_order
        .entry(order_id.to_owned())
        .or_default() += 1;
    let approved = now();
    let payment = state.payments.get_mut(payment_key).expect("the session");
    let virtual_account = payment["method"] == "가상계좌";
    payment["requestedAt"] = json!(approved);
    payment["lastTransactionKey"] = json!(uuid::Uuid::new_v4().simple().to_string());
    payment["secret"] = json!(format!("ps_{}", uuid::Uuid::new_v4().simple()));
    if virtual_account {
        let due = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
        payment["status"] = json!("WAITING_FOR_DEPOSIT");
        payment["virtualAccount"] = json!({
            "accountType": "일반",
            "accountNumber": format!("X{:013}", uuid::Uuid::new_v4().as_u128() % 10_000_000_000_000),
            "bankCode": "20",
            "customerName": "고객",
            "dueDate": due.to_string(),
            "expired": false,
            "settlementStatus": "INCOMPLETED",
            "refundStatus": "NONE",
            "refundReceiveAccount": null,
        });
    } else {
        payment["status"] = json!("DONE");
        payment["approvedAt"] = json!(approved);
    }
    let changed = payment.clone();
    (
        (StatusCode::OK, changed.clone()),
        vec![status_changed(&changed)],
    )
}

fn cancel(state: &mut State, payment_key: &str, body: &Value) -> ((StatusCode, Value), Vec<Value>) {
    let Some(reason) = body["cancelReason"].as_str() else {
        let refusal = error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "cancelReason is required",
        );
        return (refusal, vec![]);
    };
    let Some(payment) = state.payments.get_mut(payment_key) else {
        let refusal = error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND_PAYMENT",
            "no such payment",
        );
        return (refusal, vec![]);
    };
    match payment["status"].as_str() {
        Some("DONE" | "PARTIAL_CANCELED" | "WAITING_FOR_DEPOSIT") => {}
        Some("CANCELED") => {
            let refusal = error(
                StatusCode::BAD_REQUEST,
                "ALREADY_CANCELED_PAYMENT",
                "the payment was already canceled",
            );
            return (refusal, vec![]);
        }
        _ => {
            let refusal = error(
                StatusCode::FORBIDDEN,
                "NOT_CANCELABLE_PAYMENT",
                "the payment cannot be canceled",
            );
            return (refusal, vec![]);
        }
    }
    let balance = payment["balanceAmount"].as_i64().unwrap_or(0);
    let given = body["cancelAmount"].as_i64();
    let amount = given.unwrap_or(balance);
    if amount <= 0 || amount > balance {
        let refusal = error(
            StatusCode::BAD_REQUEST,
            "NOT_CANCELABLE_AMOUNT",
            "the amount exceeds what can be canceled",
        );
        return (refusal, vec![]);
    }
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
    let changed = payment.clone();
    state.cancels_executed += 1;
    state.cancel_log.push(json!({
        "paymentKey": payment_key,
        "orderId": changed["orderId"],
        "amount": amount,
        "amountGiven": given.is_some(),
        "at": now(),
    }));
    (
        (StatusCode::OK, changed.clone()),
        vec![status_changed(&changed)],
    )
}

fn status_changed(payment: &Value) -> Value {
    json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": now(), "data": payment})
}

/// The order of the payment a request is about, for the faults of one order.
fn order_of(state: &State, parts: &[&str], body: &Value) -> Option<String> {
    match parts {
        ["v1", "payments", "confirm"] => body["orderId"].as_str().map(String::from),
        ["v1", "payments", "orders", order_id] => Some((*order_id).to_owned()),
        ["v1", "payments", key, ..] => state
            .payments
            .get(&percent_decode(key))
            .and_then(|p| p["orderId"].as_str())
            .map(String::from),
        _ => None,
    }
}

fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Sends each event to the webhook URL, as Toss does: retried until a 2xx, sometimes twice.
fn notify(state: &Shared, events: Vec<Value>) {
    let (url, enabled, duplicate, delay, unit) = {
        let s = lock(state);
        (
            s.webhook_url.clone(),
            s.webhooks,
            s.duplicate_webhooks,
            s.webhook_delay_ms,
            s.webhook_retry_unit_ms,
        )
    };
    let Some(url) = url.filter(|_| enabled) else {
        return;
    };
    for event in events {
        let copies = if chance() < duplicate { 2 } else { 1 };
        let transmission = uuid::Uuid::new_v4().simple().to_string();
        for _ in 0..copies {
            let (state, url, event, transmission) = (
                state.clone(),
                url.clone(),
                event.clone(),
                transmission.clone(),
            );
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                deliver(&state, &url, &event, &transmission, unit).await;
            });
        }
    }
}

async fn deliver(state: &Shared, url: &str, event: &Value, transmission: &str, unit_ms: u64) {
    let client = reqwest::Client::new();
    for retried in 0..=RETRY_UNITS.len() {
        if retried > 0 {
            tokio::time::sleep(Duration::from_millis(RETRY_UNITS[retried - 1] * unit_ms)).await;
        }
        let answer = client
            .post(url)
            .header("tosspayments-webhook-transmission-id", transmission)
            .header("tosspayments-webhook-transmission-time", now())
            .header("tosspayments-webhook-retried-count", retried.to_string())
            .json(event)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let status = answer.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
        lock(state).deliveries.push(json!({
            "transmissionId": transmission,
            "eventType": event["eventType"],
            "orderId": event["data"]["orderId"],
            "retriedCount": retried,
            "status": status,
        }));
        if (200..300).contains(&status) {
            return;
        }
    }
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
    if !is_api {
        let (status, answer) = control(&state, &method, &parts, &body);
        return Ok(reply(status, &answer));
    }

    if let Some(key) = &key {
        let s = lock(&state);
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

    let call = match parts.as_slice() {
        ["v1", "payments", "confirm"] => "confirm",
        ["v1", "payments", _, "cancel"] => "cancel",
        _ => "get",
    };
    let (mode, delay) = {
        let mut s = lock(&state);
        if call == "confirm"
            && let (Some(k), Some(o), Some(a)) = (
                body["paymentKey"].as_str(),
                body["orderId"].as_str(),
                body["amount"].as_i64(),
            )
        {
            // The customer authorised it in the widget before our confirm arrived.
            s.open_session(k, o, a, "CARD");
        }
        let order = order_of(&s, &parts, &body);
        let (mode, delay) = s.fault(call, order.as_deref());
        (mode, Duration::from_millis(delay))
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
        "drop" => {
            tokio::time::sleep(delay).await;
            let (status, body) = error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "FAILED_INTERNAL_SYSTEM_PROCESSING",
                "the request was not processed",
            );
            return Ok(reply(status, &body));
        }
        "reject" if call == "confirm" => {
            if let Some(k) = body["paymentKey"].as_str()
                && let Some(session) = lock(&state).payments.get_mut(k)
                && session["status"] == "IN_PROGRESS"
            {
                session["status"] = json!("ABORTED");
            }
            let (status, body) = error(
                StatusCode::FORBIDDEN,
                "REJECT_CARD_PAYMENT",
                "the card was declined",
            );
            return Ok(reply(status, &body));
        }
        "reject" | "reject-late" if call == "cancel" => {
            if mode == "reject-late" {
                tokio::time::sleep(delay).await;
            }
            let (status, body) = error(
                StatusCode::FORBIDDEN,
                "NOT_CANCELABLE_PAYMENT",
                "the payment cannot be canceled now",
            );
            return Ok(reply(status, &body));
        }
        "slow" => tokio::time::sleep(delay).await,
        _ => {}
    }

    let ((status, response), events) = {
        let mut s = lock(&state);
        let s = &mut *s;
        match (&method, parts.as_slice()) {
            (&Method::POST, ["v1", "payments", "confirm"]) => confirm(s, &body),
            (&Method::POST, ["v1", "payments", payment_key, "cancel"]) => {
                cancel(s, &percent_decode(payment_key), &body)
            }
            (&Method::GET, ["v1", "payments", "orders", order_id]) => {
                s.lookups_by_order += 1;
                let found = match s.of_order(&percent_decode(order_id)) {
                    Some(p) => (StatusCode::OK, p.clone()),
                    None => error(
                        StatusCode::NOT_FOUND,
                        "NOT_FOUND_PAYMENT",
                        "no such payment",
                    ),
                };
                (found, vec![])
            }
            (&Method::GET, ["v1", "payments", payment_key]) => {
                let found = match s.payments.get(&percent_decode(payment_key)) {
                    Some(p) => (StatusCode::OK, p.clone()),
                    None => error(
                        StatusCode::NOT_FOUND,
                        "NOT_FOUND_PAYMENT",
                        "no such payment",
                    ),
                };
                (found, vec![])
            }
            _ => (
                error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such API"),
                vec![],
            ),
        }
    };
    notify(&state, events);
    let id = key.map(|key| (key, path));
    if let Some(id) = &id {
        let mut s = lock(&state);
        s.replays.insert(id.clone(), (status, response.clone()));
        if mode == "ambiguous" {
            s.processing.insert(id.clone());
        }
    }
    if mode == "ambiguous" {
        // Executed; the answer comes too late for the caller to know, and until it is sent a repeat
        // of the request is told it is still being processed. (The processing ends on its own, as
        // at Toss, even when the caller hangs up before the answer.)
        if let Some(id) = id {
            let state = state.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                lock(&state).processing.remove(&id);
            });
        }
        tokio::time::sleep(delay).await;
    }
    Ok(reply(status, &response))
}

/// The stand-in's own controls (not Toss's API).
fn control(state: &Shared, method: &Method, parts: &[&str], body: &Value) -> (StatusCode, Value) {
    let mut guard = lock(state);
    let s = &mut *guard;
    match (method, parts) {
        (&Method::POST, ["__control"]) => {
            for (field, mode) in [
                ("confirm", &mut s.confirm_mode),
                ("cancel", &mut s.cancel_mode),
                ("get", &mut s.get_mode),
            ] {
                if let Some(m) = body[field].as_str() {
                    *mode = m.to_owned();
                }
            }
            if let Some(d) = body["delayMs"].as_u64() {
                s.delay_ms = d;
            }
            if body["clearFaults"] == true {
                s.faults.clear();
            }
            for fault in body["faults"].as_array().into_iter().flatten() {
                s.faults.push(Fault {
                    order_id: fault["orderId"].as_str().unwrap_or_default().to_owned(),
                    call: fault["call"].as_str().unwrap_or("confirm").to_owned(),
                    mode: fault["mode"].as_str().unwrap_or("normal").to_owned(),
                    times: fault["times"].as_u64().unwrap_or(1),
                    delay_ms: fault["delayMs"].as_u64(),
                });
            }
            if let Some(url) = body["webhookUrl"].as_str() {
                s.webhook_url = Some(url.to_owned());
            }
            if let Some(on) = body["webhooks"].as_bool() {
                s.webhooks = on;
            }
            if let Some(p) = body["duplicateWebhooks"].as_f64() {
                s.duplicate_webhooks = p;
            }
            if let Some(d) = body["webhookDelayMs"].as_u64() {
                s.webhook_delay_ms = d;
            }
            if let Some(u) = body["webhookRetryUnitMs"].as_u64() {
                s.webhook_retry_unit_ms = u;
            }
            (
                StatusCode::OK,
                json!({"confirm": s.confirm_mode, "cancel": s.cancel_mode, "get": s.get_mode,
                    "delayMs": s.delay_ms, "faults": s.faults.len(), "webhookUrl": s.webhook_url,
                    "webhooks": s.webhooks, "duplicateWebhooks": s.duplicate_webhooks}),
            )
        }
        (&Method::POST, ["__sessions"]) => {
            let (Some(key), Some(order), Some(amount)) = (
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
            let method = body["method"].as_str().unwrap_or("CARD");
            s.open_session(key, order, amount, method);
            (StatusCode::CREATED, s.payments[key].clone())
        }
        (&Method::POST, ["__deposit"]) => {
            let order = body["orderId"].as_str().unwrap_or_default();
            let Some(key) = s
                .of_order(order)
                .filter(|p| p["status"] == "WAITING_FOR_DEPOSIT")
                .and_then(|p| p["paymentKey"].as_str())
                .map(String::from)
            else {
                return error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND_PAYMENT",
                    "no virtual account waits for a deposit",
                );
            };
            let payment = s.payments.get_mut(&key).expect("the payment");
            payment["status"] = json!("DONE");
            payment["approvedAt"] = json!(now());
            let transaction = uuid::Uuid::new_v4().simple().to_string();
            payment["lastTransactionKey"] = json!(transaction);
            let deposited = payment.clone();
            drop(guard);
            let callback = json!({"eventType": "DEPOSIT_CALLBACK", "createdAt": now(), "data": {
                "createdAt": now(), "secret": deposited["secret"], "status": "DONE",
                "transactionKey": transaction, "orderId": deposited["orderId"]}});
            notify(state, vec![callback, status_changed(&deposited)]);
            (StatusCode::OK, deposited)
        }
        (&Method::POST, ["__expire"]) => {
            let key = body["paymentKey"].as_str().unwrap_or_default();
            let Some(payment) = s.payments.get_mut(key).filter(|p| {
                matches!(
                    p["status"].as_str(),
                    Some("READY" | "IN_PROGRESS" | "WAITING_FOR_DEPOSIT")
                )
            }) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND_PAYMENT",
                    "no payment that can expire",
                );
            };
            payment["status"] = json!("EXPIRED");
            let expired = payment.clone();
            drop(guard);
            notify(state, vec![status_changed(&expired)]);
            (StatusCode::OK, expired)
        }
        (&Method::GET, ["__stats"]) => (
            StatusCode::OK,
            json!({"confirmsExecuted": s.confirms_executed, "cancelsExecuted": s.cancels_executed,
                "confirmsByOrder": s.confirms_by_order, "lookupsByOrder": s.lookups_by_order}),
        ),
        (&Method::GET, ["__ledger"]) => {
            let mut payments: Vec<&Value> = s.payments.values().collect();
            payments.sort_by_key(|p| p["paymentKey"].as_str().unwrap_or_default().to_owned());
            (
                StatusCode::OK,
                json!({"payments": payments, "cancels": s.cancel_log,
                    "confirmsByOrder": s.confirms_by_order, "deliveries": s.deliveries}),
            )
        }
        _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such control"),
    }
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
        get_mode: "normal".into(),
        delay_ms: 3_000,
        webhooks: true,
        webhook_retry_unit_ms: 1_000,
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
