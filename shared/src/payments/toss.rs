//! A client for Toss Payments' API: confirm, look up by order or key, cancel. Basic auth with the
//! secret key (never logged), a per-payment `Idempotency-Key` on every write, ids percent-encoded into
//! their path segment, time-outs bounded by the work's deadline ([`crate::deadline`]), retries only
//! where the idempotency key makes them safe, and answers sorted into what the caller can act on.

use std::time::Duration;

use aws_smithy_http_client::Connector;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::error::display::DisplayErrorContext;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Toss's Payment object, the fields we keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub payment_key: String,
    pub order_id: String,
    pub status: String,
    #[serde(default)]
    pub method: Option<String>,
    pub total_amount: i64,
    pub balance_amount: i64,
    #[serde(default)]
    pub approved_at: Option<String>,
    #[serde(default)]
    pub cancels: Option<Vec<Cancel>>,
    /// Compared with deposit callbacks (virtual accounts).
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    pub cancel_amount: i64,
    pub cancel_reason: String,
    pub canceled_at: String,
    pub transaction_key: String,
}

#[derive(Debug, Clone, Deserialize)]
struct TossErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TossError {
    /// Toss answered with a definite refusal: nothing happened.
    #[error("Toss refused: {code}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// No definite answer (time-out, connection lost, 5xx): the request may or may not have run.
    #[error("no definite answer from Toss: {0}")]
    Ambiguous(String),
}

impl TossError {
    pub fn code(&self) -> Option<&str> {
        match self {
            TossError::Refused { code, .. } => Some(code),
            TossError::Ambiguous(_) => None,
        }
    }
}

pub struct TossClient {
    http: Connector,
    base: String,
    authorization: String,
    timeout: Duration,
    attempts: u32,
}

/// Attempts of one call: a retry is safe because every write carries its idempotency key.
pub const ATTEMPTS: u32 = 2;
/// The pause before the second attempt.
const BACKOFF: Duration = Duration::from_millis(200);
/// Kept free of Toss calls at the end of the work's deadline, to record what Toss answered.
pub const RECORD_RESERVE: Duration = Duration::from_secs(2);
/// An attempt that could not wait this long for its answer is not sent.
const SHORTEST_ATTEMPT: Duration = Duration::from_millis(300);

/// The longest one call can take with `attempts` of `timeout` each: what a lease must outlast.
pub fn worst_case(timeout: Duration) -> Duration {
    timeout * ATTEMPTS + BACKOFF * (ATTEMPTS - 1)
}

/// Characters of a path segment sent as they are (RFC 3986's unreserved ones); every other byte is
/// percent-encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `value` as one URL path segment: nothing in it can change the path it is put in. Empty, `.` and
/// `..` are refused outright (URL parsers resolve dot segments, even percent-encoded ones).
pub fn path_segment(value: &str) -> Result<String, TossError> {
    if value.is_empty() || value.bytes().all(|b| b == b'.') {
        return Err(TossError::Refused {
            status: 400,
            code: "INVALID_REQUEST".into(),
            message: "not a path segment".into(),
        });
    }
    Ok(percent_encoding::utf8_percent_encode(value, SEGMENT).to_string())
}

impl TossClient {
    pub fn new(base: &str, secret_key: &str, timeout: Duration) -> Result<Self, crate::tls::Error> {
        Ok(Self {
            http: crate::tls::public_connector(Duration::from_secs(3).min(timeout))?,
            base: base.trim_end_matches('/').to_owned(),
            authorization: format!("Basic {}", STANDARD.encode(format!("{secret_key}:"))),
            timeout,
            attempts: ATTEMPTS,
        })
    }

    /// The longest one call can take (see [`worst_case`]).
    pub fn worst_case(&self) -> Duration {
        worst_case(self.timeout)
    }

    /// How long the next attempt may wait for its answer: the configured time-out, cut to what the
    /// current deadline leaves after [`RECORD_RESERVE`]. `None`: too little is left to try.
    fn attempt_timeout(&self) -> Option<Duration> {
        let timeout = match crate::deadline::remaining() {
            Some(left) => self.timeout.min(left.saturating_sub(RECORD_RESERVE)),
            None => self.timeout,
        };
        (timeout >= SHORTEST_ATTEMPT).then_some(timeout)
    }

    /// Sends `call`, retried as [`ATTEMPTS`] allows. `operation` names it in spans: URLs carry
    /// payment keys, which never reach a log.
    async fn send(
        &self,
        operation: &'static str,
        call: Call<'_>,
    ) -> Result<Option<Payment>, TossError> {
        let mut last = TossError::Ambiguous("not attempted: no time left".into());
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF * attempt).await;
            }
            let Some(timeout) = self.attempt_timeout() else {
                break;
            };
            let started = std::time::Instant::now();
            let answer = tokio::time::timeout(timeout, self.attempt(&call)).await;
            let ok = matches!(&answer, Ok(Ok((status, _))) if status.is_success());
            crate::telemetry::span("toss", operation, started.elapsed(), ok);
            let (status, bytes) = match answer {
                Ok(Ok(answer)) => answer,
                Ok(Err(reason)) => {
                    last = TossError::Ambiguous(reason);
                    continue;
                }
                Err(_) => {
                    last = TossError::Ambiguous(format!("no answer within {timeout:?}"));
                    continue;
                }
            };
            if status.is_success() {
                return serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| TossError::Ambiguous(format!("unreadable payment: {e}")));
            }
            let body: Option<TossErrorBody> = serde_json::from_slice(&bytes).ok();
            if status.as_u16() == 404
                && body.as_ref().is_some_and(|b| b.code == "NOT_FOUND_PAYMENT")
            {
                return Ok(None);
            }
            if status.is_server_error()
                || body
                    .as_ref()
                    .is_some_and(|b| b.code == "IDEMPOTENT_REQUEST_PROCESSING")
            {
                last = TossError::Ambiguous(format!("HTTP {status}"));
                continue;
            }
            let body = body.unwrap_or(TossErrorBody {
                code: "UNKNOWN".into(),
                message: String::new(),
            });
            return Err(TossError::Refused {
                status: status.as_u16(),
                code: body.code,
                message: body.message,
            });
        }
        Err(last)
    }

    /// One attempt: the status and the whole body, or why there is none (never the URL).
    async fn attempt(&self, call: &Call<'_>) -> Result<(StatusCode, Vec<u8>), String> {
        let mut request = HttpRequest::new(SdkBody::from(call.body.clone()));
        request.set_method(call.method).map_err(|e| e.to_string())?;
        request
            .set_uri(call.url)
            .map_err(|_| "not a URL".to_owned())?;
        let headers = request.headers_mut();
        headers.insert("authorization", self.authorization.clone());
        if let Some(key) = call.idempotency_key {
            headers.insert("idempotency-key", key.to_owned());
        }
        if !call.body.is_empty() {
            headers.insert("content-type", "application/json");
        }
        let response = self
            .http
            .call(request)
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        // Always a valid code: the connector parsed it.
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| DisplayErrorContext(e).to_string())?;
        Ok((status, body.to_vec()))
    }

    /// Confirms a payment the customer authorised. Retried under the same idempotency key: Toss runs
    /// it at most once.
    pub async fn confirm(
        &self,
        idempotency_key: &str,
        payment_key: &str,
        order_id: &str,
        amount: i64,
    ) -> Result<Payment, TossError> {
        let body =
            serde_json::json!({"paymentKey": payment_key, "orderId": order_id, "amount": amount});
        let url = format!("{}/v1/payments/confirm", self.base);
        self.send("toss confirm", Call::post(&url, idempotency_key, &body))
            .await?
            .ok_or_else(|| TossError::Ambiguous("confirm answered not found".into()))
    }

    /// The payment of an order, if Toss has one.
    pub async fn by_order(&self, order_id: &str) -> Result<Option<Payment>, TossError> {
        let url = format!(
            "{}/v1/payments/orders/{}",
            self.base,
            path_segment(order_id)?
        );
        self.send("toss get-by-order", Call::get(&url)).await
    }

    /// A payment by its key, if Toss has it.
    pub async fn by_key(&self, payment_key: &str) -> Result<Option<Payment>, TossError> {
        let url = format!("{}/v1/payments/{}", self.base, path_segment(payment_key)?);
        self.send("toss get-by-key", Call::get(&url)).await
    }

    /// Cancels `amount` of a payment. The amount is always sent: without it Toss cancels everything
    /// left, refunds still pending included.
    pub async fn cancel(
        &self,
        idempotency_key: &str,
        payment_key: &str,
        reason: &str,
        amount: i64,
    ) -> Result<Payment, TossError> {
        let body = serde_json::json!({"cancelReason": reason, "cancelAmount": amount});
        let url = format!(
            "{}/v1/payments/{}/cancel",
            self.base,
            path_segment(payment_key)?
        );
        self.send("toss cancel", Call::post(&url, idempotency_key, &body))
            .await?
            .ok_or_else(|| TossError::Refused {
                status: 404,
                code: "NOT_FOUND_PAYMENT".into(),
                message: String::new(),
            })
    }
}

/// One request to Toss, sent anew by each attempt.
struct Call<'a> {
    method: &'static str,
    url: &'a str,
    idempotency_key: Option<&'a str>,
    body: Vec<u8>,
}

impl<'a> Call<'a> {
    fn get(url: &'a str) -> Self {
        Self {
            method: "GET",
            url,
            idempotency_key: None,
            body: Vec::new(),
        }
    }

    /// A write: a JSON body, under the payment's idempotency key.
    fn post(url: &'a str, idempotency_key: &'a str, body: &serde_json::Value) -> Self {
        Self {
            method: "POST",
            url,
            idempotency_key: Some(idempotency_key),
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }
}

/// Our stable code for a Toss refusal of a confirm.
pub fn refusal_code(toss_code: &str) -> &'static str {
    match toss_code {
        "REJECT_CARD_PAYMENT"
        | "REJECT_CARD_COMPANY"
        | "INVALID_CARD_NUMBER"
        | "EXCEED_MAX_DAILY_PAYMENT_COUNT"
        | "EXCEED_MAX_PAYMENT_AMOUNT"
        | "NOT_ENOUGH_BALANCE" => "CARD_REJECTED",
        "BELOW_MINIMUM_AMOUNT" => "AMOUNT_TOO_SMALL",
        "NOT_FOUND_PAYMENT_SESSION" => "PAYMENT_SESSION_EXPIRED",
        "DUPLICATED_ORDER_ID" => "ORDER_ALREADY_PAID",
        "INVALID_API_KEY" | "UNAUTHORIZED_KEY" => "PAYMENTS_MISCONFIGURED",
        _ => "PAYMENT_FAILED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toss_codes_map_to_ours() {
        assert_eq!(refusal_code("REJECT_CARD_PAYMENT"), "CARD_REJECTED");
        assert_eq!(
            refusal_code("NOT_FOUND_PAYMENT_SESSION"),
            "PAYMENT_SESSION_EXPIRED"
        );
        assert_eq!(refusal_code("UNAUTHORIZED_KEY"), "PAYMENTS_MISCONFIGURED");
        assert_eq!(refusal_code("SOMETHING_NEW"), "PAYMENT_FAILED");
    }

    #[test]
    fn path_segments_cannot_leave_their_place_in_the_url() {
        let base = reqwest::Url::parse("https://api.tosspayments.com/v1/payments/").unwrap();
        for refused in ["", ".", "..", "..."] {
            assert!(path_segment(refused).is_err(), "{refused:?}");
        }
        for hostile in [
            "../confirm",
            "%2e%2e",
            ".%2e",
            "%2E%2E/confirm",
            "a/b",
            "a?x=1",
            "a#frag",
            "a\\..\\b",
            "키",
            " ",
        ] {
            let segment = path_segment(hostile).unwrap();
            let url = base.join(&format!("{segment}/cancel")).unwrap();
            assert_eq!(
                url.path_segments().unwrap().collect::<Vec<_>>(),
                ["v1", "payments", segment.as_str(), "cancel"],
                "{hostile:?} became {url}"
            );
            assert!(url.query().is_none() && url.fragment().is_none());
            let decoded = percent_encoding::percent_decode_str(&segment)
                .decode_utf8()
                .unwrap();
            assert_eq!(decoded, hostile, "the segment means the value");
        }
        assert_eq!(
            path_segment("tpk_5zJ4-xY7m0.v2").unwrap(),
            "tpk_5zJ4-xY7m0.v2"
        );
    }

    #[test]
    fn a_lease_outlasts_two_attempts() {
        assert_eq!(
            worst_case(Duration::from_secs(10)),
            Duration::from_millis(20_200)
        );
    }

    #[tokio::test]
    async fn no_attempt_is_made_without_the_time_to_record_its_answer() {
        let client =
            TossClient::new("http://127.0.0.1:9", "test_sk_x", Duration::from_secs(10)).unwrap();
        assert_eq!(client.attempt_timeout(), Some(Duration::from_secs(10)));
        let soon = std::time::Instant::now() + Duration::from_millis(2_100);
        crate::deadline::within(soon, async {
            assert_eq!(client.attempt_timeout(), None);
            let answer = client.by_order("ord_1").await;
            assert!(
                matches!(&answer, Err(TossError::Ambiguous(reason)) if reason.contains("no time left")),
                "{answer:?}"
            );
        })
        .await;
        let later = std::time::Instant::now() + Duration::from_secs(5);
        crate::deadline::within(later, async {
            let timeout = client.attempt_timeout().unwrap();
            assert!(timeout <= Duration::from_secs(3), "{timeout:?}");
        })
        .await;
    }

    /// A stand-in that answers each request it reads with the next of `answers`, and returns what
    /// it was sent (head and body), in order.
    async fn stand_in(
        answers: Vec<(u16, &'static str)>,
    ) -> (String, tokio::task::JoinHandle<Vec<(String, String)>>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut answers = answers.into_iter();
            while let Some((status, body)) = answers.next() {
                let (socket, _) = listener.accept().await.unwrap();
                let mut socket = BufReader::new(socket);
                // A kept-alive connection carries the next requests too.
                let mut answer = Some((status, body));
                while let Some((status, body)) = answer.take().or_else(|| answers.next()) {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if socket.read_line(&mut line).await.unwrap() == 0 {
                            return seen;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .map_or(0, |n| n.trim().parse().unwrap());
                    let mut sent = vec![0; length];
                    socket.read_exact(&mut sent).await.unwrap();
                    seen.push((head, String::from_utf8(sent).unwrap()));
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    socket.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            }
            seen
        });
        (base, served)
    }

    const PAID: &str = r#"{"paymentKey":"tpk_1","orderId":"ord_1","status":"DONE","totalAmount":15000,"balanceAmount":15000}"#;

    #[tokio::test]
    async fn a_confirm_goes_out_as_toss_documents_it_and_is_retried_after_a_5xx() {
        let (base, served) = stand_in(vec![
            (
                500,
                r#"{"code":"FAILED_INTERNAL_SYSTEM_PROCESSING","message":"x"}"#,
            ),
            (200, PAID),
        ])
        .await;
        let client = TossClient::new(&base, "test_sk_abc", Duration::from_secs(5)).unwrap();
        let payment = client
            .confirm("idem-1", "tpk_1", "ord_1", 15000)
            .await
            .unwrap();
        assert_eq!(
            (payment.status.as_str(), payment.total_amount),
            ("DONE", 15000)
        );
        let seen = served.await.unwrap();
        assert_eq!(seen.len(), 2, "one retry: {seen:?}");
        for (head, body) in &seen {
            let head = head.to_ascii_lowercase();
            assert!(
                head.starts_with("post /v1/payments/confirm http/1.1\r\n"),
                "{head}"
            );
            let basic = format!("authorization: basic {}", STANDARD.encode("test_sk_abc:"))
                .to_ascii_lowercase();
            assert!(head.contains(&basic), "{head}");
            assert!(head.contains("idempotency-key: idem-1\r\n"), "{head}");
            assert!(
                head.contains("content-type: application/json\r\n"),
                "{head}"
            );
            let sent: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(
                sent,
                serde_json::json!({"paymentKey": "tpk_1", "orderId": "ord_1", "amount": 15000})
            );
        }
    }

    #[tokio::test]
    async fn lookups_and_refusals_are_sorted_into_what_the_caller_can_act_on() {
        let (base, served) = stand_in(vec![
            (404, r#"{"code":"NOT_FOUND_PAYMENT","message":"none"}"#),
            (200, PAID),
            (
                400,
                r#"{"code":"NOT_CANCELABLE_AMOUNT","message":"too much"}"#,
            ),
        ])
        .await;
        let client = TossClient::new(&base, "test_sk_abc", Duration::from_secs(5)).unwrap();
        assert_eq!(client.by_order("ord 1/..").await, Ok(None));
        let found = client.by_key("tpk_1").await.unwrap().unwrap();
        assert_eq!(found.payment_key, "tpk_1");
        let refused = client.cancel("idem-2", "tpk_1", "sold out", 99_999).await;
        assert!(
            matches!(&refused, Err(TossError::Refused { status: 400, code, .. }) if code == "NOT_CANCELABLE_AMOUNT"),
            "{refused:?}"
        );
        let seen = served.await.unwrap();
        let lines: Vec<&str> = seen
            .iter()
            .map(|(head, _)| head.lines().next().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "GET /v1/payments/orders/ord%201%2F.. HTTP/1.1",
                "GET /v1/payments/tpk_1 HTTP/1.1",
                "POST /v1/payments/tpk_1/cancel HTTP/1.1",
            ]
        );
        assert!(
            seen[0].1.is_empty() && !seen[0].0.to_ascii_lowercase().contains("idempotency-key")
        );
        let cancel: serde_json::Value = serde_json::from_str(&seen[2].1).unwrap();
        assert_eq!(
            cancel,
            serde_json::json!({"cancelReason": "sold out", "cancelAmount": 99_999})
        );
    }

    #[tokio::test]
    async fn no_answer_is_ambiguous_never_a_refusal() {
        let client =
            TossClient::new("http://127.0.0.1:9", "test_sk_abc", Duration::from_secs(1)).unwrap();
        let answer = client.confirm("idem-3", "tpk_1", "ord_1", 100).await;
        assert!(
            matches!(&answer, Err(TossError::Ambiguous(_))),
            "{answer:?}"
        );
    }

    #[test]
    fn the_secret_key_travels_as_basic_auth_with_an_empty_password() {
        let client = TossClient::new(
            "https://api.tosspayments.com/",
            "test_sk_abc",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            client.authorization,
            format!("Basic {}", STANDARD.encode("test_sk_abc:"))
        );
        assert_eq!(client.base, "https://api.tosspayments.com");
    }
}
