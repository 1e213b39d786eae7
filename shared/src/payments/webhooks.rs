//! Toss's webhooks. Toss signs none of the payment events, so none is believed: a
//! `PAYMENT_STATUS_CHANGED` only makes us fetch the payment from Toss and act on Toss's answer; a
//! `DEPOSIT_CALLBACK` must carry the `secret` Toss gave us at confirmation. Deliveries are
//! deduplicated on the transmission id, processing is idempotent, and the answer is 200 once the
//! delivery is durably handled (also when it is ignored as forged) — 5xx only for transient failures,
//! so that Toss retries exactly those.

use serde::{Deserialize, Serialize};

use super::{PAYMENT_SK, PaymentState, find, settle, toss};
use crate::app::App;
use crate::crypto::Location;
use crate::error::ApiError;
use crate::orders::{self, status::Status};
use crate::storage::StorageError;

/// Toss retries for about four days; deliveries are remembered a week.
const REMEMBER_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub event_type: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// `WEBHOOK#<transmissionId>` / `WEBHOOK`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    event_type: String,
    outcome: String,
    received_at: String,
    expires_at: i64,
}

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub outcome: String,
}

fn outcome(text: &str) -> Outcome {
    Outcome {
        outcome: text.to_owned(),
    }
}

pub async fn receive(
    app: &App,
    transmission_id: &str,
    webhook: Webhook,
) -> Result<Outcome, ApiError> {
    if transmission_id.is_empty() || transmission_id.len() > 200 {
        return Err(ApiError::bad_request(
            "TRANSMISSION_ID_REQUIRED",
            "tosspayments-webhook-transmission-id is required",
        ));
    }
    let pk = format!("WEBHOOK#{transmission_id}");
    if let Some(seen) = app.db.get::<DeliveryRecord>(&pk, "WEBHOOK").await? {
        return Ok(outcome(&format!(
            "duplicate of a delivery that was {}",
            seen.outcome
        )));
    }
    let result = match webhook.event_type.as_str() {
        "PAYMENT_STATUS_CHANGED" => payment_status_changed(app, &webhook.data).await?,
        "DEPOSIT_CALLBACK" => deposit_callback(app, &webhook.data).await?,
        _ => outcome("ignored: not an event we act on"),
    };
    let now = jiff::Timestamp::now();
    let record = DeliveryRecord {
        pk,
        sk: "WEBHOOK".into(),
        event_type: webhook.event_type,
        outcome: result.outcome.clone(),
        received_at: now.to_string(),
        expires_at: now.as_second() + REMEMBER_SECONDS,
    };
    match app.db.put_if_absent(&record).await {
        // A concurrent delivery of the same transmission did the same, idempotent work.
        Ok(()) | Err(StorageError::ConditionFailed) => Ok(result),
        Err(err) => Err(err.into()),
    }
}

/// Acts on Toss's own account of the payment, whatever the webhook said.
async fn payment_status_changed(app: &App, data: &serde_json::Value) -> Result<Outcome, ApiError> {
    let Some(order_id) = data["orderId"].as_str() else {
        return Ok(outcome("ignored: no orderId"));
    };
    let client = toss(app)?;
    let payment = match client.by_order(order_id).await {
        Ok(Some(payment)) => payment,
        Ok(None) => return Ok(outcome("ignored: Toss has no such payment")),
        Err(err) => {
            tracing::warn!(order_id, error = %err, "webhook: Toss unreachable");
            return Err(ApiError::unavailable());
        }
    };
    let Some(order) = orders::find(&app.db, order_id).await? else {
        return Ok(outcome("ignored: no such order"));
    };
    let Some(record) = find(&app.db, order_id).await? else {
        return Ok(outcome("ignored: no payment of ours for this order"));
    };
    if payment.total_amount != order.total {
        tracing::error!(
            order_id,
            toss_amount = payment.total_amount,
            total = order.total,
            "webhook: amount differs from the order"
        );
        return Ok(outcome("ignored: amount differs from the order"));
    }
    match payment.status.as_str() {
        "DONE" if order.status == Status::PendingPayment && record.state != PaymentState::Done => {
            match settle(app, &order, record, payment).await {
                Ok(_) => Ok(outcome("order paid")),
                Err(err) if err.status.is_client_error() => {
                    Ok(outcome(&format!("not applied: {}", err.code)))
                }
                Err(err) => Err(err),
            }
        }
        "CANCELED" | "PARTIAL_CANCELED" => {
            let mut record = record;
            record.balance_amount = Some(payment.balance_amount);
            record.cancels = payment.cancels.unwrap_or_default();
            if payment.balance_amount == 0 {
                record.state = PaymentState::Canceled;
            }
            record.updated_at = jiff::Timestamp::now().to_string();
            app.db.put(&record).await?;
            Ok(outcome("cancellations recorded"))
        }
        "ABORTED" | "EXPIRED"
            if matches!(record.state, PaymentState::Pending | PaymentState::Unknown) =>
        {
            let mut record = record;
            record.state = PaymentState::Failed;
            record.failure_code = Some(payment.status.clone());
            record.gsi3pk = None;
            record.gsi3sk = None;
            app.db.put(&record).await?;
            Ok(outcome("payment failed"))
        }
        _ => Ok(outcome("nothing to do")),
    }
}

/// Virtual-account deposits: believed only with the secret Toss gave us for that payment.
async fn deposit_callback(app: &App, data: &serde_json::Value) -> Result<Outcome, ApiError> {
    let (Some(order_id), Some(secret)) = (data["orderId"].as_str(), data["secret"].as_str()) else {
        return Ok(outcome("ignored: no orderId or secret"));
    };
    let Some(record) = find(&app.db, order_id).await? else {
        return Ok(outcome("ignored: no payment of ours for this order"));
    };
    let Some(sealed) = &record.secret else {
        return Ok(outcome("ignored: no secret on record"));
    };
    let at = Location {
        table: app.db.table(),
        pk: &record.pk,
        sk: PAYMENT_SK,
        field: "secret",
    };
    let ours = app.crypto.open_str(&at, sealed).await?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(ours.as_bytes(), secret.as_bytes())
        .is_err()
    {
        tracing::warn!(order_id, "webhook: deposit callback with a wrong secret");
        return Ok(outcome("ignored: wrong secret"));
    }
    // Genuine: act on Toss's account of the payment, as for a status change.
    payment_status_changed(app, data).await
}
