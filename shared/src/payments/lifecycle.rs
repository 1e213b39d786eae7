//! The order moves that touch money.
//!
//! - Rejecting or cancelling a paid order refunds it in full: the refund is reserved in the move's own
//!   transaction, so a crash right after leaves it to the reconciler, never forgotten.
//! - An unpaid order is cancelled or expired only when no payment of it may have gone through: the
//!   move's transaction checks that the payment record is absent or settled as not taken (FAILED,
//!   VOIDED). A confirm records its intent before calling Toss and re-reads the order after, so the
//!   two can never both go ahead; an open payment is settled first (by its confirm or the reconciler)
//!   and the order expires on a later sweep if it was not paid.

use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use lambda_http::http::StatusCode;

use super::{PAYMENT_SK, payment_pk, refunds};
use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::orders::status::{Actor, Status};
use crate::orders::{self, Extra, MoveRequest, OrderView};
use crate::storage::{Db, StorageError, key, s};

/// A transaction item that holds only while no payment of the order may have gone through.
fn no_open_payment(db: &Db, order_id: &str) -> Result<TransactWriteItem, ApiError> {
    let check = ConditionCheck::builder()
        .table_name(db.table())
        .set_key(Some(key(payment_pk(order_id), PAYMENT_SK)))
        .condition_expression("attribute_not_exists(PK) OR #state IN (:failed, :voided)")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":failed", s("FAILED"))
        .expression_attribute_values(":voided", s("VOIDED"))
        .build()
        .map_err(ApiError::internal)?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

fn payment_open() -> ApiError {
    ApiError {
        retry_after: Some(5),
        ..ApiError::new(
            StatusCode::CONFLICT,
            "PAYMENT_IN_PROGRESS",
            "a payment of this order is being settled; ask again shortly".to_owned(),
        )
    }
}

/// `POST /v1/orders/{orderId}/status`: moves an order for a person (customer or store).
pub async fn move_order(
    app: &App,
    caller: &Caller,
    order_id: &str,
    request: MoveRequest,
) -> Result<OrderView, ApiError> {
    // A refund reservation can lose to a concurrent partial refund: plan the move again.
    for _ in 0..3 {
        let planned = orders::plan_move(app, caller, order_id, request.clone()).await?;
        let (order, to) = (&planned.order, planned.moved.status);
        let mut actions = planned.actions;
        let mut refund = None;
        // Where the payment check sits in an unpaid order's move, if it has one.
        let mut guard_at = None;
        if order.status == Status::PendingPayment {
            guard_at = Some(actions.len());
            actions.push(no_open_payment(&app.db, order_id)?);
        } else if order.status == Status::Paid && matches!(to, Status::Rejected | Status::Canceled)
        {
            let reason = match to {
                Status::Rejected => "rejected by the store",
                _ => "canceled by the customer",
            };
            let reserved =
                refunds::reserve_actions(app, order, "full", None, reason, &caller.user_id).await?;
            if let Some((more, reserved)) = reserved {
                actions.extend(more);
                refund = Some(reserved);
            }
        }
        match orders::commit_move(&app.db, &planned.moved, actions).await {
            Ok(()) => {}
            Err(err) if err.condition_failed_at(0) => {
                return Err(orders::status_changed(&app.db, order_id).await);
            }
            Err(err) if guard_at.is_some_and(|at| err.condition_failed_at(at)) => {
                return Err(payment_open());
            }
            // The payment changed between the reservation's read and its write.
            Err(StorageError::TransactionCanceled(_)) if refund.is_some() => continue,
            Err(err) => return Err(err.into()),
        }
        if to == Status::Rejected {
            crate::telemetry::count("OrdersRejected", 1.0);
        }
        if let Some(refund) = refund
            && let Err(err) = refunds::execute(app, refund).await
        {
            // Still PENDING: the reconciler finishes it.
            tracing::warn!(order_id, code = err.code, "full refund deferred");
        }
        return planned.moved.view(app).await;
    }
    Err(ApiError::unavailable())
}

/// Expires unpaid orders past their due time whose payment, if any, was not taken; returns how many.
/// One order's failure is logged and counted, never the end of the sweep.
pub async fn expire_due(app: &App) -> Result<u64, ApiError> {
    let db = &app.db;
    let now = jiff::Timestamp::now().as_second();
    let shards = (0..orders::PENDING_SHARDS).map(|shard| format!("PENDING#{shard}"));
    let due = db
        .keys_in("GSI3", shards, Some(&format!("{now:012}#~")))
        .await?;
    let mut expired = 0;
    for (pk, _) in due {
        let Some(order_id) = pk.strip_prefix("ORDER#") else {
            continue;
        };
        match expire(db, order_id, now).await {
            Ok(true) => expired += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(order_id, code = err.code, error = %err, "expiry failed; the next sweep retries");
                crate::telemetry::count("ExpiryErrors", 1.0);
            }
        }
    }
    Ok(expired)
}

async fn expire(db: &Db, order_id: &str, now: i64) -> Result<bool, ApiError> {
    // The index is eventually consistent: decide on a strongly consistent read.
    let Some(order) = orders::find(db, order_id).await? else {
        return Ok(false);
    };
    if order.status != Status::PendingPayment || order.payment_due > now {
        return Ok(false);
    }
    let (mut actions, _) = orders::transition_actions(
        db,
        &order,
        Status::Expired,
        Actor::System,
        None,
        Extra::default(),
    )?;
    let guard_at = actions.len();
    actions.push(no_open_payment(db, order_id)?);
    match db.transact(actions).await {
        Ok(()) => Ok(true),
        // Paid or cancelled meanwhile.
        Err(err) if err.condition_failed_at(0) => Ok(false),
        Err(err) if err.condition_failed_at(guard_at) => {
            // A payment may have gone through: it is settled first, the order expires later if not.
            crate::telemetry::count("ExpiriesDeferred", 1.0);
            Ok(false)
        }
        Err(err) => Err(err.into()),
    }
}
