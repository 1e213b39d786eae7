//! Toss's webhooks. Toss signs none of the payment events, so none is believed: a
//! `PAYMENT_STATUS_CHANGED` only makes us fetch the payment from Toss and act on Toss's answer (one
//! that says `DONE` of the payment that paid the order would change nothing, and is not looked
//! up); a
//! `DEPOSIT_CALLBACK` must carry the `secret` Toss gave us at confirmation. Deliveries are
//! deduplicated on the transmission id (all but a `DONE` of the payment that paid the order, which
//! is answered first and recorded nowhere), processing is idempotent, and the answer is 200 once the
//! delivery is durably handled (also when it is ignored as forged) — 5xx only for transient failures,
//! so that Toss retries exactly those.

use serde::{Deserialize, Serialize};

use super::ledger::{self, Evidence, Outcome as Settlement};
use super::{PAYMENT_SK, PaymentState, find, toss};
use crate::app::App;
use crate::crypto::Location;
use crate::error::ApiError;
use crate::limits::{self, Limit};
use crate::orders;
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
    // Toss's "done" of the very payment that paid the order, sent after every card payment,
    // changes nothing however often it comes: answered before the deduplication's read and
    // without a record of its delivery (a read, where the two cost a read and a write more).
    if webhook.event_type == "PAYMENT_STATUS_CHANGED" && paid_by(app, &webhook.data).await? {
        return Ok(outcome(PAID_BY_IT));
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

/// Acts on Toss's own account of the payment, whatever the webhook said: it goes to the settlement
/// like every other answer from Toss.
async fn payment_status_changed(app: &App, data: &serde_json::Value) -> Result<Outcome, ApiError> {
    let Some(order_id) = data["orderId"].as_str().filter(|id| super::is_toss_id(id)) else {
        return Ok(outcome("ignored: no orderId"));
    };
    // (`receive` answered "done" of the payment that paid the order already: `paid_by`.)
    if orders::find(&app.db, order_id).await?.is_none() {
        return Ok(outcome("ignored: no such order"));
    }
    // Each delivery costs a Toss lookup: an order's deliveries are bounded (Toss retries a 429).
    limits::take(app, Limit::WebhooksPerOrder, order_id).await?;
    let client = toss(app)?;
    let payment = match client.by_order(order_id).await {
        Ok(Some(payment)) => payment,
        Ok(None) => return Ok(outcome("ignored: Toss has no such payment")),
        Err(err) => {
            tracing::warn!(order_id, error = %err, "webhook: Toss unreachable");
            return Err(ApiError::unavailable());
        }
    };
    let status = payment.status.clone();
    let settled = match ledger::settle(app, order_id, Evidence::Toss(payment)).await {
        Ok(settled) => settled,
        Err(err) if err.status.is_client_error() => {
            return Ok(outcome(&format!("not applied: {}", err.code)));
        }
        Err(err) => return Err(err),
    };
    Ok(outcome(&match (&settled.outcome, settled.changed) {
        (Settlement::Paid, true) if status == "DONE" => "order paid".to_owned(),
        (Settlement::Paid, true) => "cancellations recorded".to_owned(),
        (Settlement::AwaitingDeposit, true) => "waiting for the deposit".to_owned(),
        (Settlement::Failed(code), true) => format!("payment failed: {code}"),
        (Settlement::Voided, true) => "refunded: the order could not take it".to_owned(),
        (Settlement::Voiding, _) => "being refunded: the order cannot take it".to_owned(),
        (Settlement::Ignored(why), _) => format!("ignored: {why}"),
        _ => "nothing to do".to_owned(),
    }))
}

const PAID_BY_IT: &str = "nothing to do: this payment paid the order";

/// Whether `data` says "done" of the very payment that paid its order: that tells nothing, true or
/// forged — no lookup, and none of the lookups' budget (every card payment's own webhook is one).
/// "Done" of any other payment is looked up: Toss takes one payment per order id, and a second
/// would be a mismatch to raise.
async fn paid_by(app: &App, data: &serde_json::Value) -> Result<bool, ApiError> {
    let (Some(order_id), Some(claimed)) = (
        data["orderId"].as_str().filter(|id| super::is_toss_id(id)),
        data["paymentKey"].as_str(),
    ) else {
        return Ok(false);
    };
    if data["status"] != "DONE" {
        return Ok(false);
    }
    Ok(find(&app.db, order_id).await?.is_some_and(|paid| {
        paid.is_key(claimed) && matches!(paid.state, PaymentState::Done | PaymentState::Canceled)
    }))
}

/// Virtual-account deposits: believed only with the secret Toss gave us for that payment.
async fn deposit_callback(app: &App, data: &serde_json::Value) -> Result<Outcome, ApiError> {
    let (Some(order_id), Some(secret)) = (
        data["orderId"].as_str().filter(|id| super::is_toss_id(id)),
        data["secret"].as_str(),
    ) else {
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
    let ours = app.crypto().open_str(&at, sealed).await?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(ours.as_bytes(), secret.as_bytes())
        .is_err()
    {
        tracing::warn!(order_id, "webhook: deposit callback with a wrong secret");
        return Ok(outcome("ignored: wrong secret"));
    }
    // Genuine: act on Toss's account of the payment, as for a status change.
    payment_status_changed(app, data).await
}
