//! Refunds: in full when a paid order is rejected or cancelled, in part when the owner asks.
//!
//! A refund is first *reserved* — the payment's refunded total grows by the amount, on the condition
//! that it stays within what was paid, and a `PENDING` refund record is written, in one transaction
//! (with the order's move, for a rejection or cancellation). Only then is Toss asked to cancel, with
//! the refund's own idempotency key. A definite refusal releases the reservation; an answer not
//! given in time leaves the refund `PENDING` for the reconciler, which repeats the same request —
//! Toss runs it once. The balance can never go below zero, whatever runs concurrently.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::toss::TossError;
use super::{PAYMENT_SK, PaymentRecord, PaymentState, payment_pk};
use crate::app::App;
use crate::auth::Caller;
use crate::crypto::Location;
use crate::error::ApiError;
use crate::events::{self, Event};
use crate::orders::status::Status;
use crate::orders::{self, OrderRecord};
use crate::storage::{key, n, s};
use crate::stores::{self, Access};

const PENDING_SHARDS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    Pending,
    Done,
    Failed,
}

/// `PAYMENT#<orderId>` / `REFUND#<refundId>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub refund_id: String,
    pub order_id: String,
    pub amount: i64,
    pub reason: String,
    pub state: RefundState,
    pub idempotency_key: String,
    /// Cancel everything that is left (a rejection or cancellation) rather than `amount`.
    pub full: bool,
    pub requested_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    #[serde(rename = "GSI3PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(rename = "GSI3SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
}

/// `POST /v1/orders/{orderId}/refunds`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefundRequest {
    pub amount: i64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundView {
    pub refund_id: String,
    pub order_id: String,
    pub amount: i64,
    pub reason: String,
    pub state: RefundState,
    pub created_at: String,
    /// What is left of the payment after this refund.
    pub balance_amount: i64,
}

fn refund_sk(refund_id: &str) -> String {
    format!("REFUND#{refund_id}")
}

fn shard(order_id: &str) -> u32 {
    order_id.bytes().map(u32::from).sum::<u32>() % PENDING_SHARDS
}

/// The actions that reserve `amount` (everything left, when `full`) of the order's payment and record
/// the refund as PENDING. `None` when there is nothing to refund.
pub async fn reserve_actions(
    app: &App,
    order: &OrderRecord,
    refund_id: &str,
    amount: Option<i64>,
    reason: &str,
    requested_by: &str,
) -> Result<Option<(Vec<TransactWriteItem>, RefundRecord)>, ApiError> {
    let db = &app.db;
    let Some(payment) = super::find(db, &order.order_id).await? else {
        return Ok(None);
    };
    if payment.state != PaymentState::Done {
        return Ok(None);
    }
    let refunded = payment.refunded_amount.unwrap_or(0);
    let left = payment.amount - refunded;
    let amount = amount.unwrap_or(left);
    if amount <= 0 {
        return Ok(None);
    }
    let now = jiff::Timestamp::now().to_string();
    let refund = RefundRecord {
        pk: payment_pk(&order.order_id),
        sk: refund_sk(refund_id),
        refund_id: refund_id.to_owned(),
        order_id: order.order_id.clone(),
        amount,
        reason: reason.to_owned(),
        state: RefundState::Pending,
        idempotency_key: format!(
            "os-refund-{}",
            &format!(
                "{:x}",
                Sha256::digest(format!("{}\n{refund_id}", order.order_id))
            )[..40]
        ),
        full: amount == left,
        requested_by: requested_by.to_owned(),
        created_at: now.clone(),
        transaction_key: None,
        failure_code: None,
        gsi3pk: Some(format!("REFUNDPENDING#{}", shard(&order.order_id))),
        gsi3sk: Some(format!("{now}#{}#{refund_id}", order.order_id)),
    };
    // The refunded total may only grow up to what was paid: never a negative balance.
    let reserve = Update::builder()
        .table_name(db.table())
        .set_key(Some(key(payment_pk(&order.order_id), PAYMENT_SK)))
        .update_expression("SET refundedAmount = if_not_exists(refundedAmount, :zero) + :amount")
        .condition_expression(
            "#state = :done AND (attribute_not_exists(refundedAmount) OR refundedAmount <= :limit)",
        )
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":amount", n(amount))
        .expression_attribute_values(":done", s("DONE"))
        .expression_attribute_values(":limit", n(payment.amount - amount))
        .build()
        .map_err(ApiError::internal)?;
    let actions = vec![
        TransactWriteItem::builder().update(reserve).build(),
        db.put_new(&refund)?,
    ];
    Ok(Some((actions, refund)))
}

/// Asks Toss to cancel what `refund` reserved, and records the outcome.
pub async fn execute(app: &App, mut refund: RefundRecord) -> Result<RefundRecord, ApiError> {
    let db = &app.db;
    let client = super::toss(app)?;
    let payment = super::find(db, &refund.order_id)
        .await?
        .ok_or_else(|| ApiError::internal("refund without a payment"))?;
    let at = Location {
        table: db.table(),
        pk: &payment.pk,
        sk: PAYMENT_SK,
        field: "paymentKey",
    };
    let payment_key = app.crypto.open_str(&at, &payment.payment_key).await?;
    let amount = (!refund.full).then_some(refund.amount);
    match client
        .cancel(
            &refund.idempotency_key,
            &payment_key,
            &refund.reason,
            amount,
        )
        .await
    {
        Ok(toss_payment) => {
            refund.state = RefundState::Done;
            refund.transaction_key = toss_payment
                .cancels
                .as_ref()
                .and_then(|c| c.last())
                .map(|c| c.transaction_key.clone());
            refund.gsi3pk = None;
            refund.gsi3sk = None;
            let mut record = payment.clone();
            record.balance_amount = Some(toss_payment.balance_amount);
            record.cancels = toss_payment.cancels.unwrap_or_default();
            if toss_payment.balance_amount == 0 {
                record.state = PaymentState::Canceled;
            }
            record.updated_at = jiff::Timestamp::now().to_string();
            // The payment keeps the refunded total the reservations made; only Toss's view is copied.
            let update = Update::builder()
                .table_name(db.table())
                .set_key(Some(key(&record.pk, PAYMENT_SK)))
                .update_expression("SET balanceAmount = :balance, cancels = :cancels, #state = :state, updatedAt = :now")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":balance", n(toss_payment.balance_amount))
                .expression_attribute_values(
                    ":cancels",
                    serde_dynamo::to_attribute_value(&record.cancels).map_err(ApiError::internal)?,
                )
                .expression_attribute_values(":state", s(if record.state == PaymentState::Canceled { "CANCELED" } else { "DONE" }))
                .expression_attribute_values(":now", s(&record.updated_at))
                .build()
                .map_err(ApiError::internal)?;
            let mut actions = vec![
                TransactWriteItem::builder().update(update).build(),
                db.put_action(&refund, None)?,
            ];
            if let Some(order) = orders::find(db, &refund.order_id).await? {
                let refunded = Event::order_refunded(
                    &order,
                    &refund.refund_id,
                    refund.amount,
                    &refund.requested_by,
                );
                actions.push(events::record(db, &refunded)?);
            }
            db.transact(actions).await?;
            Ok(refund)
        }
        Err(TossError::Refused { code, .. }) => {
            tracing::warn!(order_id = %refund.order_id, toss_code = %code, "refund refused");
            refund.state = RefundState::Failed;
            refund.failure_code = Some(code);
            refund.gsi3pk = None;
            refund.gsi3sk = None;
            let release = Update::builder()
                .table_name(db.table())
                .set_key(Some(key(&payment.pk, PAYMENT_SK)))
                .update_expression("SET refundedAmount = refundedAmount - :amount")
                .expression_attribute_values(":amount", n(refund.amount))
                .build()
                .map_err(ApiError::internal)?;
            db.transact(vec![
                TransactWriteItem::builder().update(release).build(),
                db.put_action(&refund, None)?,
            ])
            .await?;
            Ok(refund)
        }
        Err(TossError::Ambiguous(reason)) => {
            tracing::warn!(order_id = %refund.order_id, %reason, "refund outcome unknown; the reconciler retries");
            Ok(refund)
        }
    }
}

fn view(refund: &RefundRecord, payment_amount: i64, refunded: i64) -> RefundView {
    RefundView {
        refund_id: refund.refund_id.clone(),
        order_id: refund.order_id.clone(),
        amount: refund.amount,
        reason: refund.reason.clone(),
        state: refund.state,
        created_at: refund.created_at.clone(),
        balance_amount: payment_amount - refunded,
    }
}

/// `POST /v1/orders/{orderId}/refunds`: the store's owner refunds part of a paid order. The
/// `Idempotency-Key` names the refund: repeating it returns that refund, never a second one.
pub async fn partial(
    app: &App,
    caller: &Caller,
    order_id: &str,
    idempotency_key: &str,
    request: RefundRequest,
) -> Result<(StatusCode, RefundView), ApiError> {
    crate::idempotency::validate_key(idempotency_key)?;
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::validation("reason", "use 1 to 200 characters"));
    }
    if request.amount <= 0 {
        return Err(ApiError::validation("amount", "a positive amount in KRW"));
    }
    let order = orders::find(&app.db, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("ORDER_NOT_FOUND", "no such order"))?;
    match stores::load_for(app, &order.store_id, caller, Access::Owner).await {
        Ok(_) => {}
        Err(err) if err.status == StatusCode::FORBIDDEN => {
            return Err(ApiError::not_found("ORDER_NOT_FOUND", "no such order"));
        }
        Err(err) => return Err(err),
    }
    let refund_id = format!(
        "{:x}",
        Sha256::digest(format!("{}\n{idempotency_key}", caller.user_id))
    )[..24]
        .to_owned();
    if let Some(existing) = app
        .db
        .get::<RefundRecord>(payment_pk(order_id), refund_sk(&refund_id))
        .await?
    {
        if existing.amount != request.amount || existing.reason != reason {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used for a different refund".to_owned(),
            ));
        }
        let payment = super::find(&app.db, order_id).await?;
        let (amount, refunded) = payment
            .map(|p| (p.amount, p.refunded_amount.unwrap_or(0)))
            .unwrap_or((0, 0));
        return Ok((StatusCode::OK, view(&existing, amount, refunded)));
    }
    if !matches!(
        order.status,
        Status::Paid | Status::Accepted | Status::Preparing | Status::Ready | Status::Completed
    ) {
        return Err(ApiError::conflict(
            "NOT_REFUNDABLE",
            "only paid orders are refunded",
        ));
    }
    let Some((actions, refund)) = reserve_actions(
        app,
        &order,
        &refund_id,
        Some(request.amount),
        reason,
        &caller.user_id,
    )
    .await?
    else {
        return Err(ApiError::conflict(
            "NOT_REFUNDABLE",
            "the order has no settled payment",
        ));
    };
    match app.db.transact(actions).await {
        Ok(()) => {}
        Err(err) if err.condition_failed_at(0) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "REFUND_EXCEEDS_BALANCE",
                "amount: more than is left of the payment".to_owned(),
            ));
        }
        Err(err) if err.condition_failed_at(1) => {
            return Err(ApiError::conflict(
                "REFUND_IN_PROGRESS",
                "this refund is being made; retry",
            ));
        }
        Err(err) => return Err(err.into()),
    }
    let refund = execute(app, refund).await?;
    let payment = super::find(&app.db, order_id)
        .await?
        .ok_or_else(|| ApiError::internal("payment vanished"))?;
    let status = match refund.state {
        RefundState::Done => StatusCode::CREATED,
        RefundState::Pending => StatusCode::ACCEPTED,
        RefundState::Failed => {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "REFUND_FAILED",
                format!(
                    "Toss refused the refund ({})",
                    refund.failure_code.unwrap_or_default()
                ),
            ));
        }
    };
    Ok((
        status,
        view(
            &refund,
            payment.amount,
            payment.refunded_amount.unwrap_or(0),
        ),
    ))
}

/// Retries PENDING refunds (their Toss answer never came); returns how many settled.
pub async fn reconcile(app: &App) -> Result<u64, ApiError> {
    let db = &app.db;
    let mut settled = 0;
    let shards = (0..PENDING_SHARDS).map(|shard| format!("REFUNDPENDING#{shard}"));
    for (pk, sk) in db.keys_in("GSI3", shards, None).await? {
        let Some(refund) = db.get::<RefundRecord>(&pk, &sk).await? else {
            continue;
        };
        if refund.state == RefundState::Pending
            && execute(app, refund).await?.state != RefundState::Pending
        {
            settled += 1;
        }
    }
    Ok(settled)
}

impl PaymentRecord {
    /// What is left to refund.
    pub fn refundable(&self) -> i64 {
        self.amount - self.refunded_amount.unwrap_or(0)
    }
}
