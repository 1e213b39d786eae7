//! Payments with Toss: an order is paid exactly once.
//!
//! - The amount is checked against the order before Toss is called.
//! - Each payment (order × Toss payment session) has one `Idempotency-Key`, derived from both, so every
//!   retry — ours, the customer's, the reconciler's — is the same request to Toss, which runs it once.
//! - A payment record (`PAYMENT#<orderId>`) holds a short lease: concurrent confirms of one order
//!   make one call; the others are told to wait.
//! - An answer that is not definite (time-out, 5xx) leaves the payment `UNKNOWN`; it is settled by
//!   asking Toss (by order id) on the next confirm and by the every-minute reconciler — never by
//!   charging again.
//! - `DONE` marks the order PAID and stores the payment (its key and secret sealed) in one
//!   transaction; if the order can no longer be paid (expired meanwhile), the payment is cancelled.

pub mod refunds;
pub mod toss;
pub mod webhooks;

use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::toss::{Payment, TossClient, TossError};
use crate::app::App;
use crate::auth::Caller;
use crate::crypto::{Location, Sealed};
use crate::error::ApiError;
use crate::orders::status::{Actor, Status};
use crate::orders::{self, Extra, OrderRecord, OrderView};
use crate::storage::{Db, StorageError, key, n, s};

pub const PAYMENT_SK: &str = "PAYMENT";
const LEASE_SECONDS: i64 = 20;
const UNKNOWN_SHARDS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentState {
    /// Being confirmed, or never confirmed.
    Pending,
    /// Confirm sent, answer not definite: ask Toss before anything else.
    Unknown,
    Done,
    Failed,
    Canceled,
}

/// `PAYMENT#<orderId>` / `PAYMENT`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub order_id: String,
    pub state: PaymentState,
    pub amount: i64,
    pub payment_key: Sealed,
    /// sha256 of the payment key: compares a presented key without opening the sealed one.
    pub payment_key_digest: String,
    pub idempotency_key: String,
    pub locked_until: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Sealed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    /// The total of refunds made or reserved (never more than `amount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_amount: Option<i64>,
    /// Toss's record of cancellations.
    #[serde(default)]
    pub cancels: Vec<toss::Cancel>,
    pub updated_at: String,
    /// Unsettled payments, sharded (sparse): `PAYUNKNOWN#<n>` / `<updatedAt>#<orderId>`.
    #[serde(rename = "GSI3PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(rename = "GSI3SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
}

/// `POST /v1/payments/confirm`: what Toss's success redirect gave the customer's app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfirmRequest {
    pub order_id: String,
    pub payment_key: String,
    pub amount: i64,
}

pub(crate) fn payment_pk(order_id: &str) -> String {
    format!("PAYMENT#{order_id}")
}

fn digest(value: &str) -> String {
    format!("{:x}", Sha256::digest(value.as_bytes()))
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message.into())
}

pub(crate) fn toss(app: &App) -> Result<&TossClient, ApiError> {
    app.toss.as_ref().ok_or_else(|| {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "PAYMENTS_UNAVAILABLE",
            "payments are not configured",
        )
    })
}

fn pending() -> ApiError {
    ApiError {
        retry_after: Some(5),
        ..refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "PAYMENT_PENDING",
            "the payment's outcome is not known yet; ask again shortly — you will not be charged twice",
        )
    }
}

pub async fn find(db: &Db, order_id: &str) -> Result<Option<PaymentRecord>, StorageError> {
    db.get(payment_pk(order_id), PAYMENT_SK).await
}

/// Takes the payment's lease (creating the record on the first attempt). `None`: someone else holds it.
async fn lease(
    app: &App,
    order: &OrderRecord,
    payment_key: &str,
) -> Result<Option<PaymentRecord>, ApiError> {
    let db = &app.db;
    let now = jiff::Timestamp::now();
    let pk = payment_pk(&order.order_id);
    let key_digest = digest(payment_key);
    let fresh = PaymentRecord {
        pk: pk.clone(),
        sk: PAYMENT_SK.to_owned(),
        order_id: order.order_id.clone(),
        state: PaymentState::Pending,
        amount: order.total,
        payment_key: app
            .crypto
            .seal_str(
                &Location {
                    table: db.table(),
                    pk: &pk,
                    sk: PAYMENT_SK,
                    field: "paymentKey",
                },
                payment_key,
            )
            .await?,
        payment_key_digest: key_digest.clone(),
        // One key per (order, Toss payment): every retry is the same request to Toss.
        idempotency_key: format!(
            "os-{}",
            &digest(&format!("{}\n{payment_key}", order.order_id))[..40]
        ),
        locked_until: now.as_second() + LEASE_SECONDS,
        method: None,
        approved_at: None,
        balance_amount: None,
        secret: None,
        failure_code: None,
        refunded_amount: None,
        cancels: Vec::new(),
        updated_at: now.to_string(),
        gsi3pk: None,
        gsi3sk: None,
    };
    match db.put_if_absent(&fresh).await {
        Ok(()) => return Ok(Some(fresh)),
        Err(StorageError::ConditionFailed) => {}
        Err(err) => return Err(err.into()),
    }
    let existing = find(db, &order.order_id)
        .await?
        .ok_or_else(|| ApiError::internal("payment vanished"))?;
    if existing.payment_key_digest != key_digest && existing.state != PaymentState::Failed {
        return Err(refused(
            StatusCode::CONFLICT,
            "PAYMENT_IN_PROGRESS",
            "another payment of this order is being settled",
        ));
    }
    // A failed payment may be retried with a new Toss payment: the record becomes that payment's.
    let replacement = (existing.payment_key_digest != key_digest).then_some(&fresh);
    let mut update = db
        .client()
        .update_item()
        .table_name(db.table())
        .set_key(Some(key(&pk, PAYMENT_SK)))
        .condition_expression("lockedUntil < :now AND #state <> :done AND #state <> :canceled")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":now", n(now.as_second()))
        .expression_attribute_values(":until", n(now.as_second() + LEASE_SECONDS))
        .expression_attribute_values(":done", s("DONE"))
        .expression_attribute_values(":canceled", s("CANCELED"));
    let mut expression = "SET lockedUntil = :until".to_owned();
    if let Some(new) = replacement {
        expression.push_str(
            ", paymentKey = :pk, paymentKeyDigest = :pkd, idempotencyKey = :ik, #state = :pending",
        );
        update = update
            .expression_attribute_values(":pk", s(new.payment_key.as_str()))
            .expression_attribute_values(":pkd", s(&new.payment_key_digest))
            .expression_attribute_values(":ik", s(&new.idempotency_key))
            .expression_attribute_values(":pending", s("PENDING"));
    }
    // A plain conditional write: the lease is one item.
    match update
        .update_expression(expression)
        .send()
        .await
        .map_err(StorageError::from_sdk)
    {
        Ok(_) => Ok(find(db, &order.order_id).await?),
        Err(StorageError::ConditionFailed) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Saves the record's new state and releases the lease.
async fn save(db: &Db, record: &PaymentRecord) -> Result<(), ApiError> {
    let mut record = record.clone();
    record.locked_until = 0;
    record.updated_at = jiff::Timestamp::now().to_string();
    db.put(&record).await?;
    Ok(())
}

/// Confirms the customer's payment of their order; the order as it now is.
pub async fn confirm(
    app: &App,
    caller: &Caller,
    request: ConfirmRequest,
) -> Result<OrderView, ApiError> {
    let client = toss(app)?;
    if request.payment_key.is_empty()
        || request.payment_key.len() > 200
        || !request.payment_key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::validation("paymentKey", "not a Toss payment key"));
    }
    let order = orders::find(&app.db, &request.order_id)
        .await?
        .filter(|o| o.customer_id == caller.user_id)
        .ok_or_else(|| ApiError::not_found("ORDER_NOT_FOUND", "no such order"))?;
    if order.status == Status::Paid
        && let Some(payment) = find(&app.db, &order.order_id).await?
        && payment.payment_key_digest == digest(&request.payment_key)
    {
        // A retried confirm of the payment that paid the order: the same success. (The order is
        // PAID only in the transaction that recorded this payment as DONE.)
        return order.view(app).await;
    }
    if order.status != Status::PendingPayment {
        return Err(refused(
            StatusCode::CONFLICT,
            "ORDER_NOT_PAYABLE",
            format!("the order is {}", order.status.name()),
        ));
    }
    if request.amount != order.total {
        return Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "AMOUNT_MISMATCH",
            "amount: differs from the order's total",
        ));
    }
    let Some(mut record) = lease(app, &order, &request.payment_key).await? else {
        return Err(ApiError {
            retry_after: Some(1),
            ..refused(
                StatusCode::CONFLICT,
                "PAYMENT_IN_PROGRESS",
                "this payment is being confirmed",
            )
        });
    };
    // An earlier attempt may have gone through: ask before asking again.
    if record.state == PaymentState::Unknown {
        match client.by_order(&order.order_id).await {
            Ok(Some(payment)) if payment.status == "DONE" => {
                return settle(app, &order, record, payment).await;
            }
            Ok(_) => {}
            Err(err) => {
                save(&app.db, &record).await?;
                tracing::warn!(order_id = %order.order_id, error = %err, "payment still unknown");
                return Err(pending());
            }
        }
    }
    match client
        .confirm(
            &record.idempotency_key,
            &request.payment_key,
            &order.order_id,
            order.total,
        )
        .await
    {
        Ok(payment) if payment.status == "DONE" && payment.total_amount == order.total => {
            settle(app, &order, record, payment).await
        }
        Ok(payment) => {
            record.state = PaymentState::Failed;
            record.failure_code = Some(format!("UNEXPECTED_{}", payment.status));
            save(&app.db, &record).await?;
            Err(refused(
                StatusCode::BAD_GATEWAY,
                "PAYMENT_FAILED",
                "the payment was not completed",
            ))
        }
        Err(TossError::Refused { code, .. }) if code == "ALREADY_PROCESSED_PAYMENT" => {
            match client.by_order(&order.order_id).await {
                Ok(Some(payment)) if payment.status == "DONE" => {
                    settle(app, &order, record, payment).await
                }
                _ => {
                    mark_unknown(&app.db, &mut record).await?;
                    Err(pending())
                }
            }
        }
        Err(TossError::Refused { code, message, .. }) => {
            let ours = toss::refusal_code(&code);
            crate::telemetry::payment_failure(ours);
            tracing::info!(order_id = %order.order_id, toss_code = %code, code = ours, "payment refused");
            record.state = PaymentState::Failed;
            record.failure_code = Some(code);
            save(&app.db, &record).await?;
            let status = if ours == "PAYMENTS_MISCONFIGURED" {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let shown = if ours == "PAYMENTS_MISCONFIGURED" {
                "payments are unavailable".to_owned()
            } else {
                message
            };
            Err(refused(status, ours, shown))
        }
        Err(TossError::Ambiguous(reason)) => {
            tracing::warn!(order_id = %order.order_id, %reason, "payment outcome unknown");
            crate::telemetry::payment_failure("PAYMENT_PENDING");
            mark_unknown(&app.db, &mut record).await?;
            Err(pending())
        }
    }
}

async fn mark_unknown(db: &Db, record: &mut PaymentRecord) -> Result<(), ApiError> {
    record.state = PaymentState::Unknown;
    let shard = record.order_id.bytes().map(u32::from).sum::<u32>() % UNKNOWN_SHARDS;
    record.gsi3pk = Some(format!("PAYUNKNOWN#{shard}"));
    record.gsi3sk = Some(format!("{}#{}", jiff::Timestamp::now(), record.order_id));
    save(db, record).await
}

/// Toss says the payment is DONE: the order becomes PAID with its payment recorded, in one
/// transaction. An order that can no longer be paid gets its money back.
pub(crate) async fn settle(
    app: &App,
    order: &OrderRecord,
    mut record: PaymentRecord,
    payment: Payment,
) -> Result<OrderView, ApiError> {
    let db = &app.db;
    record.state = PaymentState::Done;
    record.method = payment.method.clone();
    record.approved_at = payment.approved_at.clone();
    record.balance_amount = Some(payment.balance_amount);
    record.failure_code = None;
    record.gsi3pk = None;
    record.gsi3sk = None;
    record.locked_until = 0;
    record.updated_at = jiff::Timestamp::now().to_string();
    if let Some(secret) = &payment.secret {
        let at = Location {
            table: db.table(),
            pk: &record.pk,
            sk: PAYMENT_SK,
            field: "secret",
        };
        record.secret = Some(app.crypto.seal_str(&at, secret).await?);
    }
    let current = orders::find(db, &order.order_id)
        .await?
        .unwrap_or_else(|| order.clone());
    if current.status != Status::PendingPayment {
        // Paid by Toss, but the order expired or was cancelled meanwhile: refund it all.
        let client = toss(app)?;
        let payment_key = app
            .crypto
            .open_str(
                &Location {
                    table: db.table(),
                    pk: &record.pk,
                    sk: PAYMENT_SK,
                    field: "paymentKey",
                },
                &record.payment_key,
            )
            .await?;
        let refund_key = format!("{}-void", record.idempotency_key);
        match client
            .cancel(&refund_key, &payment_key, "order no longer payable", None)
            .await
        {
            Ok(_) => {
                record.state = PaymentState::Canceled;
                record.balance_amount = Some(0);
                save(db, &record).await?;
                return Err(refused(
                    StatusCode::CONFLICT,
                    "ORDER_NOT_PAYABLE",
                    format!(
                        "the order is {}; the payment was refunded",
                        current.status.name()
                    ),
                ));
            }
            Err(err) => {
                tracing::error!(order_id = %order.order_id, error = %err, "refund of an unpayable order failed");
                mark_unknown(db, &mut record).await?;
                return Err(pending());
            }
        }
    }
    let (mut actions, moved) = orders::transition_actions(
        db,
        &current,
        Status::Paid,
        Actor::System,
        None,
        Extra::default(),
    )?;
    actions.push(db.put_action(&record, None)?);
    orders::commit_transition(db, &current, actions).await?;
    crate::telemetry::count("OrdersPaid", 1.0);
    moved.view(app).await
}

/// Settles every UNKNOWN payment and every PENDING refund by asking Toss; returns how many.
pub async fn reconcile(app: &App) -> Result<u64, ApiError> {
    let client = toss(app)?;
    let db = &app.db;
    let mut settled = 0;
    let shards = (0..UNKNOWN_SHARDS).map(|shard| format!("PAYUNKNOWN#{shard}"));
    for (pk, _) in db.keys_in("GSI3", shards, None).await? {
        let Some(order_id) = pk.strip_prefix("PAYMENT#") else {
            continue;
        };
        let Some(order) = orders::find(db, order_id).await? else {
            continue;
        };
        let Some(record) = find(db, order_id).await? else {
            continue;
        };
        if record.state != PaymentState::Unknown {
            continue;
        }
        match client.by_order(order_id).await {
            Ok(Some(payment)) if payment.status == "DONE" => {
                match settle(app, &order, record, payment).await {
                    Ok(_) => settled += 1,
                    Err(err) => {
                        tracing::info!(order_id, code = err.code, "reconciled payment not applied")
                    }
                }
            }
            Ok(None) => {
                // Toss never ran it: the customer may confirm again.
                let mut record = record;
                record.state = PaymentState::Failed;
                record.failure_code = Some("NOT_EXECUTED".into());
                record.gsi3pk = None;
                record.gsi3sk = None;
                save(db, &record).await?;
                settled += 1;
            }
            Ok(Some(_)) | Err(_) => {}
        }
    }
    Ok(settled + refunds::reconcile(app).await?)
}
