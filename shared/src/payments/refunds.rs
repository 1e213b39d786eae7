//! Refunds: in full when a paid order is rejected or cancelled, in part when the owner asks.
//!
//! A refund is first *reserved* — the payment's refunded total grows by the amount, on the condition
//! that it stays within what was paid, and a `PENDING` refund record is written, in one transaction
//! (with the order's move, for a rejection or cancellation). Only then is Toss asked to cancel, with
//! the refund's own idempotency key and always with its amount (without one, Toss would cancel all
//! that is left, other refunds still pending included). An answer not given in time leaves the refund
//! `PENDING` for the reconciler, which repeats the same request — Toss runs it once. A definite
//! refusal releases an owner's partial refund (they are told) while the order stands paid; a refund
//! owed to the customer is not dropped: it stays `PENDING`, is retried with backoff, and counts in an
//! alarmed metric until Toss takes it. Owed are a rejection's or cancellation's, which reserves all
//! that is left (and holds only over the refunded total it read), and an owner's refund the order
//! was rejected or cancelled beside: that full refund left its amount to it. The outcome is written
//! only over a `PENDING` refund, so concurrent executions record it, and its event, once. The balance can never go below zero,
//! whatever runs concurrently.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::toss::TossError;
use super::{PAYMENT_SK, PaymentRecord, PaymentState, payment_pk};
use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::events::{self, Event};
use crate::orders::status::Status;
use crate::orders::{self, OrderRecord};
use crate::storage::{StorageError, key, n, s};
use crate::stores::{self, Access};

/// Pending refunds are spread over this many index partitions.
pub const PENDING_SHARDS: u32 = 8;

/// An owner's partial refunds of one order, refused ones included, at most. Each refund rewrites
/// the payment with Toss's list of its cancellations, and lists them all: without a bound, enough
/// small refunds would take the payment past DynamoDB's 400 KB item limit, where no refund — not
/// even the full one a rejection owes the customer — could be recorded. A rejection's or a
/// cancellation's full refund is never refused by it.
pub const MAX_PARTIAL_REFUNDS: u32 = 20;

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
    /// Owed to the customer, never dropped on a refusal: a rejection's or cancellation's (all that was
    /// left when it was reserved), or an owner's refund whose order was rejected or cancelled before
    /// Toss took it.
    pub full: bool,
    pub requested_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    /// Toss refusals so far (only refunds owed to the customer are retried after one).
    #[serde(default)]
    pub attempts: u32,
    /// Epoch seconds before which the reconciler leaves it alone.
    #[serde(default)]
    pub next_attempt_at: i64,
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
    crate::storage::shard(order_id, PENDING_SHARDS)
}

fn exceeds_balance() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "REFUND_EXCEEDS_BALANCE",
        "amount: more than is left of the payment".to_owned(),
    )
}

/// 422 `REFUND_LIMIT_REACHED`: [`MAX_PARTIAL_REFUNDS`] made already.
fn limit_reached() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "REFUND_LIMIT_REACHED",
        format!(
            "an order takes at most {MAX_PARTIAL_REFUNDS} partial refunds; rejecting or cancelling \
             it refunds all that is left"
        ),
    )
}

/// Why a reservation read as possible was refused by its condition: the payment as it stands now.
fn refused_reservation(payment: Option<&PaymentRecord>, amount: i64) -> ApiError {
    match payment {
        Some(p)
            if p.refundable() >= amount && p.refund_count.unwrap_or(0) >= MAX_PARTIAL_REFUNDS =>
        {
            limit_reached()
        }
        _ => exceeds_balance(),
    }
}

/// How long an owed refund that Toss refused waits before the next attempt: doubling from five
/// seconds, at most an hour.
fn backoff_seconds(attempts: u32) -> i64 {
    5_i64.saturating_mul(1 << attempts.min(10)).min(3600)
}

/// The actions that reserve `amount` (everything left, when `None`) of the order's payment and record
/// the refund as PENDING. `None` when there is nothing to refund; 422 `REFUND_EXCEEDS_BALANCE` when
/// `amount` is more than is left.
pub async fn reserve_actions(
    app: &App,
    order: &OrderRecord,
    refund_id: &str,
    amount: Option<i64>,
    reason: &str,
    requested_by: &str,
) -> Result<Option<(Vec<TransactWriteItem>, RefundRecord)>, ApiError> {
    let db = &app.db;
    let Some(payment) = super::find(db, order.order_id()).await? else {
        return Ok(None);
    };
    if payment.state != PaymentState::Done {
        return Ok(None);
    }
    let left = payment.refundable();
    let full = amount.is_none();
    let amount = amount.unwrap_or(left);
    if amount > left {
        return Err(exceeds_balance());
    }
    if amount <= 0 {
        return Ok(None);
    }
    if !full && payment.refund_count.unwrap_or(0) >= MAX_PARTIAL_REFUNDS {
        return Err(limit_reached());
    }
    let now = jiff::Timestamp::now().to_string();
    let refund = RefundRecord {
        pk: payment_pk(order.order_id()),
        sk: refund_sk(refund_id),
        refund_id: refund_id.to_owned(),
        order_id: order.order_id().to_owned(),
        amount,
        reason: reason.to_owned(),
        state: RefundState::Pending,
        idempotency_key: format!(
            "os-refund-{}",
            &format!(
                "{:x}",
                Sha256::digest(format!("{}\n{refund_id}", order.order_id()))
            )[..40]
        ),
        full,
        requested_by: requested_by.to_owned(),
        created_at: now.clone(),
        transaction_key: None,
        failure_code: None,
        attempts: 0,
        next_attempt_at: 0,
        gsi3pk: Some(format!("REFUNDPENDING#{}", shard(order.order_id()))),
        gsi3sk: Some(format!("{now}#{}#{refund_id}", order.order_id())),
    };
    // The refunded total may only grow up to what was paid: never a negative balance. (A paid record
    // always has `refundedAmount`; one without it was read above, so `amount` is within what was
    // paid.) A full refund is all that was left as read: it holds only over the refunded total it
    // read, so an owner's refund released meanwhile (Toss refused it) is not left behind at Toss.
    // The version moves too, so no settlement decided on the record before this write lands.
    let reserve = Update::builder()
        .table_name(db.table())
        .set_key(Some(key(payment_pk(order.order_id()), PAYMENT_SK)))
        .update_expression(
            "SET refundedAmount = if_not_exists(refundedAmount, :zero) + :amount, \
             refundCount = if_not_exists(refundCount, :zero) + :one, \
             version = if_not_exists(version, :zero) + :one",
        )
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":amount", n(amount))
        .expression_attribute_values(":done", s("DONE"));
    let reserve = match (full, payment.refunded_amount) {
        (true, Some(seen)) => reserve
            .condition_expression("#state = :done AND refundedAmount = :seen")
            .expression_attribute_values(":seen", n(seen)),
        (true, None) => {
            reserve.condition_expression("#state = :done AND attribute_not_exists(refundedAmount)")
        }
        (false, _) => reserve
            .condition_expression(
                "#state = :done AND (attribute_not_exists(refundedAmount) OR refundedAmount <= :limit) \
                 AND (attribute_not_exists(refundCount) OR refundCount < :most)",
            )
            .expression_attribute_values(":limit", n(payment.amount - amount))
            .expression_attribute_values(":most", n(MAX_PARTIAL_REFUNDS)),
    }
    .build()
    .map_err(ApiError::internal)?;
    let actions = vec![
        TransactWriteItem::builder().update(reserve).build(),
        db.put_new(&refund)?,
    ];
    Ok(Some((actions, refund)))
}

/// Asks Toss to cancel what `refund` reserved, and records the outcome (once, over the PENDING refund).
pub async fn execute(app: &App, refund: RefundRecord) -> Result<RefundRecord, ApiError> {
    let db = &app.db;
    let client = super::toss(app)?;
    let payment = super::find(db, &refund.order_id)
        .await?
        .ok_or_else(|| ApiError::internal("refund without a payment"))?;
    let payment_key = super::open_key(app, &payment).await?;
    let answer = client
        .cancel(
            &refund.idempotency_key,
            &payment_key,
            &refund.reason,
            refund.amount,
        )
        .await;
    match answer {
        Ok(toss_payment) => record_done(app, refund, &payment, toss_payment).await,
        Err(TossError::Refused { code, .. }) if refund.full => owe(db, &refund, code).await,
        Err(TossError::Refused { code, .. }) => {
            let mut failed = refund.clone();
            failed.state = RefundState::Failed;
            failed.failure_code = Some(code.clone());
            failed.gsi3pk = None;
            failed.gsi3sk = None;
            let release = Update::builder()
                .table_name(db.table())
                .set_key(Some(key(&payment.pk, PAYMENT_SK)))
                .update_expression(
                    "SET refundedAmount = refundedAmount - :amount, version = version + :one",
                )
                .expression_attribute_values(":amount", n(refund.amount))
                .expression_attribute_values(":one", n(1))
                .build()
                .map_err(ApiError::internal)?;
            let actions = over_pending(
                db,
                vec![
                    TransactWriteItem::builder().update(release).build(),
                    still_paid_and_standing(db, &refund.order_id)?,
                ],
                &failed,
                refund.attempts,
            )?;
            match db.transact(actions).await {
                Ok(()) => {
                    tracing::warn!(order_id = %refund.order_id, toss_code = %code, "refund refused");
                    crate::telemetry::count("RefundsRefused", 1.0);
                    Ok(failed)
                }
                // Rejected or cancelled since it was reserved: the full refund took what was left
                // beside this one, so what this one holds is owed to the customer too.
                Err(err) if err.condition_failed_at(2) => owe(db, &refund, code).await,
                Err(err) => as_recorded(db, &refund, err).await,
            }
        }
        Err(TossError::Ambiguous(reason)) => {
            tracing::warn!(order_id = %refund.order_id, %reason, "refund outcome unknown; the reconciler retries");
            Ok(refund)
        }
    }
}

/// Toss cancelled it: the refund DONE, the payment's account of its cancellations updated (never to
/// an older one), and the event — in one transaction over the PENDING refund.
async fn record_done(
    app: &App,
    mut refund: RefundRecord,
    payment: &PaymentRecord,
    toss_payment: super::toss::Payment,
) -> Result<RefundRecord, ApiError> {
    let db = &app.db;
    refund.state = RefundState::Done;
    refund.transaction_key = toss_payment
        .cancels
        .as_ref()
        .and_then(|c| c.last())
        .map(|c| c.transaction_key.clone());
    refund.failure_code = None;
    refund.gsi3pk = None;
    refund.gsi3sk = None;
    let cancels = toss_payment.cancels.clone().unwrap_or_default();
    let state = if toss_payment.balance_amount == 0 {
        PaymentState::Canceled
    } else {
        PaymentState::Done
    };
    // Refunds complete in any order; only a lower balance is news.
    let update = Update::builder()
        .table_name(db.table())
        .set_key(Some(key(&payment.pk, PAYMENT_SK)))
        .update_expression(
            "SET balanceAmount = :balance, cancels = :cancels, #state = :state, updatedAt = :now, \
             version = version + :one",
        )
        .condition_expression("attribute_not_exists(balanceAmount) OR balanceAmount > :balance")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":balance", n(toss_payment.balance_amount))
        .expression_attribute_values(
            ":cancels",
            serde_dynamo::to_attribute_value(&cancels).map_err(ApiError::internal)?,
        )
        .expression_attribute_values(":state", s(state.name()))
        .expression_attribute_values(":now", s(jiff::Timestamp::now().to_string()))
        .expression_attribute_values(":one", n(1))
        .build()
        .map_err(ApiError::internal)?;
    let mut actions = Vec::new();
    if let Some(order) = orders::find(db, &refund.order_id).await? {
        let refunded = Event::order_refunded(
            &order,
            &refund.refund_id,
            refund.amount,
            &refund.requested_by,
        );
        actions.push(events::record(db, &refunded)?);
    }
    let written = write_if_pending(db, actions, &refund, refund.attempts).await?;
    if written.state == RefundState::Done {
        // The payment's account: separately, as a later refund's answer may already be on it.
        match db
            .transact(vec![TransactWriteItem::builder().update(update).build()])
            .await
        {
            Ok(()) | Err(StorageError::TransactionCanceled(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(written)
}

/// Toss refused a refund owed to the customer: it stays PENDING and is retried with backoff; the
/// metric is alarmed. Never dropped.
async fn owe(
    db: &crate::storage::Db,
    refund: &RefundRecord,
    code: String,
) -> Result<RefundRecord, ApiError> {
    tracing::error!(order_id = %refund.order_id, toss_code = %code, attempts = refund.attempts + 1, "Toss refused a refund owed to the customer; retrying later");
    crate::telemetry::count("RefundsRefused", 1.0);
    let mut next = refund.clone();
    next.full = true;
    next.attempts = refund.attempts + 1;
    next.failure_code = Some(code);
    next.next_attempt_at = jiff::Timestamp::now().as_second() + backoff_seconds(refund.attempts);
    write_if_pending(db, vec![], &next, refund.attempts).await
}

/// A transaction item that holds only while the order is paid and neither rejected nor cancelled.
fn still_paid_and_standing(
    db: &crate::storage::Db,
    order_id: &str,
) -> Result<TransactWriteItem, ApiError> {
    let standing: HashMap<String, AttributeValue> = Status::PAID_AND_STANDING
        .iter()
        .enumerate()
        .map(|(i, status)| (format!(":s{i}"), s(status.name())))
        .collect();
    let names: Vec<&str> = standing.keys().map(String::as_str).collect();
    let condition = format!("#status IN ({})", names.join(", "));
    let check = ConditionCheck::builder()
        .table_name(db.table())
        .set_key(Some(key(orders::order_pk(order_id), orders::ORDER_SK)))
        .condition_expression(condition)
        .expression_attribute_names("#status", "status")
        .set_expression_attribute_values(Some(standing))
        .build()
        .map_err(ApiError::internal)?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// Writes `refund` (with `actions`) if the stored refund is still PENDING at the attempts it was read
/// with; otherwise returns the refund as someone else recorded it.
async fn write_if_pending(
    db: &crate::storage::Db,
    actions: Vec<TransactWriteItem>,
    refund: &RefundRecord,
    seen_attempts: u32,
) -> Result<RefundRecord, ApiError> {
    match db
        .transact(over_pending(db, actions, refund, seen_attempts)?)
        .await
    {
        Ok(()) => Ok(refund.clone()),
        Err(err) => as_recorded(db, refund, err).await,
    }
}

/// `actions`, after a put of `refund` that holds only over the stored refund still PENDING at the
/// attempts it was read with.
fn over_pending(
    db: &crate::storage::Db,
    mut actions: Vec<TransactWriteItem>,
    refund: &RefundRecord,
    seen_attempts: u32,
) -> Result<Vec<TransactWriteItem>, ApiError> {
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(db.table())
        .set_item(Some(crate::storage::to_item(refund)?))
        .condition_expression(
            "#state = :pending AND (attribute_not_exists(attempts) OR attempts = :attempts)",
        )
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":pending", s("PENDING"))
        .expression_attribute_values(":attempts", n(seen_attempts))
        .build()
        .map_err(ApiError::internal)?;
    actions.insert(0, TransactWriteItem::builder().put(put).build());
    Ok(actions)
}

/// After a write [`over_pending`] failed: the refund as someone else recorded it when it was no
/// longer PENDING at those attempts; otherwise the error.
async fn as_recorded(
    db: &crate::storage::Db,
    refund: &RefundRecord,
    err: StorageError,
) -> Result<RefundRecord, ApiError> {
    if !err.condition_failed_at(0) {
        return Err(err.into());
    }
    db.get::<RefundRecord>(&refund.pk, &refund.sk)
        .await?
        .ok_or_else(|| ApiError::internal("refund vanished"))
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

/// `GET /v1/orders/{orderId}/refunds`: what an order's payment took and what went back of it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRefunds {
    pub order_id: String,
    /// KRW Toss took for the order: 0 while it is unpaid, and for a payment given back because the
    /// order could not take it.
    pub paid_amount: i64,
    /// KRW given back: the refunds Toss made.
    pub refunded_amount: i64,
    /// KRW that can still be refunded: paid, less the refunds made and those under way.
    pub balance_amount: i64,
    /// Every refund, oldest first: at most [`MAX_PARTIAL_REFUNDS`] and a rejection's or
    /// cancellation's.
    pub refunds: Vec<RefundEntry>,
}

/// One refund in [`OrderRefunds`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundEntry {
    pub refund_id: String,
    pub amount: i64,
    pub reason: String,
    pub state: RefundState,
    pub created_at: String,
}

impl OrderRefunds {
    fn of(order_id: &str, payment: Option<&PaymentRecord>, mut refunds: Vec<RefundRecord>) -> Self {
        let paid =
            payment.filter(|p| matches!(p.state, PaymentState::Done | PaymentState::Canceled));
        refunds.sort_by(|a, b| (&a.created_at, &a.refund_id).cmp(&(&b.created_at, &b.refund_id)));
        Self {
            order_id: order_id.to_owned(),
            paid_amount: paid.map_or(0, |p| p.amount),
            refunded_amount: refunds
                .iter()
                .filter(|r| r.state == RefundState::Done)
                .map(|r| r.amount)
                .sum(),
            balance_amount: paid.map_or(0, PaymentRecord::refundable),
            refunds: refunds
                .into_iter()
                .map(|r| RefundEntry {
                    refund_id: r.refund_id,
                    amount: r.amount,
                    reason: r.reason,
                    state: r.state,
                    created_at: r.created_at,
                })
                .collect(),
        }
    }
}

/// `GET /v1/orders/{orderId}/refunds`, for the order's customer and its store's owner and staff
/// (404 for anyone else, as the order itself): the payment and its refunds, which share one
/// partition, in one strongly consistent query (a refund just made is listed).
pub async fn list(app: &App, caller: &Caller, order_id: &str) -> Result<OrderRefunds, ApiError> {
    orders::load_for(app, caller, order_id).await?;
    let db = &app.db;
    let (mut payment, mut refunds) = (None, Vec::new());
    let mut start = None;
    loop {
        let page = db
            .client()
            .query()
            .table_name(db.table())
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(payment_pk(order_id)))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(StorageError::from_sdk)?;
        for item in page.items.unwrap_or_default() {
            match item
                .get("SK")
                .and_then(|sk| sk.as_s().ok())
                .map(String::as_str)
            {
                Some(PAYMENT_SK) => payment = Some(crate::storage::from_item(item)?),
                Some(sk) if sk.starts_with("REFUND#") => {
                    refunds.push(crate::storage::from_item(item)?);
                }
                _ => {}
            }
        }
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    Ok(OrderRefunds::of(order_id, payment.as_ref(), refunds))
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
    let reason = crate::text::text("reason", &request.reason, 1..=200, crate::text::Lines::One)?;
    let reason = reason.as_str();
    if request.amount <= 0 {
        return Err(ApiError::validation("amount", "a positive amount in KRW"));
    }
    let order = orders::find(&app.db, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("ORDER_NOT_FOUND", "no such order"))?;
    match stores::check_access(app, &order.store_id, caller, Access::Owner).await {
        Ok(_) => {}
        Err(err) if err.status == StatusCode::FORBIDDEN => {
            return Err(ApiError::not_found("ORDER_NOT_FOUND", "no such order"));
        }
        Err(err) => return Err(err),
    }
    let refund_id = crate::idempotency::id_for(&[&caller.user_id, idempotency_key], 24);
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
    if !order.status.is_paid_and_standing() {
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
            let payment = super::find(&app.db, order_id).await?;
            return Err(refused_reservation(payment.as_ref(), request.amount));
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

/// Retries PENDING refunds (their Toss answer never came, or Toss refused one owed to the customer);
/// how many settled. A refund younger than `settle_after` seconds is left to the request that made
/// it; one refund's error is logged and counted, never the end of the run.
pub async fn reconcile(app: &App, settle_after: i64) -> Result<Reconciled, ApiError> {
    let db = &app.db;
    let mut settled = 0;
    let mut stuck = 0;
    let shards = (0..PENDING_SHARDS).map(|shard| format!("REFUNDPENDING#{shard}"));
    let now = jiff::Timestamp::now();
    for (pk, sk) in db.keys_in("GSI3", shards, None).await? {
        if crate::deadline::remaining().is_some_and(|left| left < super::toss::RECORD_RESERVE * 2) {
            crate::telemetry::count("ReconcileOutOfTime", 1.0);
            break;
        }
        let refund = match db.get::<RefundRecord>(&pk, &sk).await {
            Ok(Some(refund)) => refund,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(%pk, %sk, error = %err, "refund unreadable");
                crate::telemetry::count("ReconcileErrors", 1.0);
                continue;
            }
        };
        let created = refund
            .created_at
            .parse::<jiff::Timestamp>()
            .map_or(0, |t| t.as_second());
        if refund.state != RefundState::Pending {
            continue;
        }
        if created + settle_after > now.as_second() || refund.next_attempt_at > now.as_second() {
            stuck += u64::from(refund.attempts > 0);
            continue;
        }
        match execute(app, refund).await {
            Ok(done) if done.state != RefundState::Pending => settled += 1,
            Ok(left) => {
                let old = created + super::reconcile::STUCK_AFTER_SECONDS < now.as_second();
                stuck += u64::from(left.attempts > 0 || old);
            }
            Err(err) => {
                tracing::warn!(%pk, code = err.code, error = %err, "refund not settled");
                crate::telemetry::count("ReconcileErrors", 1.0);
                stuck += 1;
            }
        }
    }
    Ok(Reconciled { settled, stuck })
}

/// What a pass over the pending refunds did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reconciled {
    pub settled: u64,
    /// Still pending after this pass though refused by Toss before, or older than
    /// [`super::reconcile::STUCK_AFTER_SECONDS`]: what the refunds alarm watches.
    pub stuck: u64,
}
