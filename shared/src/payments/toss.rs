//! A client for Toss Payments' API: confirm, look up by order, cancel. Basic auth with the secret key
//! (never logged), a per-payment `Idempotency-Key` on every write, bounded time-outs, retries only
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
    attempts: u32,
}

impl TossClient {
    pub fn new(base: &str, secret_key: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .tls_certs_only(crate::tls::public_roots())
            .connect_timeout(Duration::from_secs(3).min(timeout))
            .timeout(timeout)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            authorization: format!("Basic {}", STANDARD.encode(format!("{secret_key}:"))),
            attempts: 2,
        })
    }

    /// Sends `request` (built anew per attempt). `operation` names it in spans: URLs carry payment
    /// keys, which never reach a log.
    async fn send(
        &self,
        operation: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Option<Payment>, TossError> {
        let mut last = TossError::Ambiguous("not attempted".into());
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            let started = std::time::Instant::now();
            let sent = request()
                .header("authorization", &self.authorization)
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
        let url = format!("{}/v1/payments/orders/{order_id}", self.base);
        self.send("toss get-by-order", || self.http.get(&url)).await
    }

    /// Cancels `amount` of a payment (all of what is left when `None`).
    pub async fn cancel(
        &self,
        idempotency_key: &str,
        payment_key: &str,
        reason: &str,
        amount: Option<i64>,
    ) -> Result<Payment, TossError> {
        let mut body = serde_json::json!({"cancelReason": reason});
        if let Some(amount) = amount {
            body["cancelAmount"] = amount.into();
        }
        let url = format!("{}/v1/payments/{payment_key}/cancel", self.base);
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
