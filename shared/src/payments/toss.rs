//! A client for Toss Payments' API: confirm, look up by order or key, cancel. Basic auth with the
//! secret key (never logged), a per-payment `Idempotency-Key` on every write, ids percent-encoded into
//! their path segment, time-outs bounded by the work's deadline ([`crate::deadline`]), retries only
//! where the idempotency key makes them safe, and answers sorted into what the caller can act on.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
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
    http: reqwest::Client,
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
    pub fn new(base: &str, secret_key: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .tls_certs_only(crate::tls::public_roots())
            .connect_timeout(Duration::from_secs(3).min(timeout))
            .build()?;
        Ok(Self {
            http,
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

    /// Sends `request` (built anew per attempt). `operation` names it in spans: URLs carry payment
    /// keys, which never reach a log.
    async fn send(
        &self,
        operation: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
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
            let sent = request()
                .header("authorization", &self.authorization)
                .timeout(timeout)
                .send()
                .await;
            let ok = sent.as_ref().is_ok_and(|r| r.status().is_success());
            crate::telemetry::span("toss", operation, started.elapsed(), ok);
            let response = match sent {
                Ok(response) => response,
                Err(err) => {
                    last = TossError::Ambiguous(err.without_url().to_string());
                    continue;
                }
            };
            let status = response.status();
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(err) => {
                    last = TossError::Ambiguous(err.without_url().to_string());
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
        self.send("toss confirm", || {
            self.http
                .post(&url)
                .header("idempotency-key", idempotency_key)
                .json(&body)
        })
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
        self.send("toss get-by-order", || self.http.get(&url)).await
    }

    /// A payment by its key, if Toss has it.
    pub async fn by_key(&self, payment_key: &str) -> Result<Option<Payment>, TossError> {
        let url = format!("{}/v1/payments/{}", self.base, path_segment(payment_key)?);
        self.send("toss get-by-key", || self.http.get(&url)).await
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
        self.send("toss cancel", || {
            self.http
                .post(&url)
                .header("idempotency-key", idempotency_key)
                .json(&body)
        })
        .await?
        .ok_or_else(|| TossError::Refused {
            status: 404,
            code: "NOT_FOUND_PAYMENT".into(),
            message: String::new(),
        })
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
