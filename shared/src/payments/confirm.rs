//! `POST /v1/payments/confirm`: the customer's app, back from Toss's payment widget, confirms the
//! payment of their order.
//!
//! The amount is checked against the order before Toss hears of it. Then the intent is recorded: the
//! payment record becomes PENDING for this key, held by a lease, and is put where the reconciler
//! looks — before Toss is called, so that a process dying at any later point leaves a record the
//! reconciler settles. The lease lasts longer than the work under it may ([`super::lease_duration`],
//! [`crate::deadline`]); concurrent confirms are told to wait. Whatever Toss answers goes to
//! [`ledger::settle_known`]: the settlement, first decided on the record this confirm wrote and the
//! order it read after.

use std::time::Instant;

use lambda_http::http::StatusCode;
use serde::Deserialize;

use super::ledger::{self, Evidence, Outcome, Settled};
use super::toss::{self, TossError};
use super::{PaymentRecord, PaymentState, digest, refused};
use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::orders::status::Status;
use crate::orders::{self, OrderRecord, OrderView};

/// What Toss's success redirect gave the customer's app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfirmRequest {
    pub order_id: String,
    pub payment_key: String,
    pub amount: i64,
}

/// A confirm's success.
#[derive(Debug)]
pub enum Confirmed {
    /// The order is paid (200).
    Paid(OrderView),
    /// A virtual account was issued; the order is paid when the customer deposits (202).
    AwaitingDeposit(OrderView),
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

fn in_progress(retry_after: u64) -> ApiError {
    ApiError {
        retry_after: Some(retry_after),
        ..refused(
            StatusCode::CONFLICT,
            "PAYMENT_IN_PROGRESS",
            "a payment of this order is being confirmed; ask again shortly",
        )
    }
}

fn not_payable(order: &OrderRecord, why: &str) -> ApiError {
    refused(
        StatusCode::CONFLICT,
        "ORDER_NOT_PAYABLE",
        format!("the order is {}{why}", order.status.name()),
    )
}

/// Confirms the customer's payment of their order.
pub async fn confirm(
    app: &App,
    caller: &Caller,
    request: ConfirmRequest,
) -> Result<Confirmed, ApiError> {
    let client = super::toss(app)?;
    if !super::is_toss_id(&request.payment_key) {
        return Err(ApiError::validation(
            "paymentKey",
            "not a Toss payment key (1 to 200 letters, digits, '-' or '_')",
        ));
    }
    let not_found = || ApiError::not_found("ORDER_NOT_FOUND", "no such order");
    if !super::is_toss_id(&request.order_id) {
        return Err(not_found());
    }
    // The order and its payment record, in one round trip.
    let (order, record) = super::find_with_order(&app.db, &request.order_id).await?;
    let order = order
        .filter(|o| o.customer_id() == caller.user_id)
        .ok_or_else(not_found)?;
    // A retried confirm of a payment already settled: the same answer again.
    if let Some(settled) = record
        .as_ref()
        .and_then(|r| AlreadySettled::of(r, &request.payment_key))
    {
        return settled.answer(app, &order).await;
    }
    if order.status != Status::PendingPayment {
        return Err(not_payable(&order, ""));
    }
    if request.amount != order.total {
        return Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "AMOUNT_MISMATCH",
            "amount: differs from the order's total",
        ));
    }
    let lease = match begin(app, &order, &request.payment_key, record).await? {
        Begun::Leased(lease) => *lease,
        // A concurrent confirm of this key settled it after this one read the order: its answer,
        // on the order as it is now.
        Begun::Settled(settled) => {
            let now = orders::find(&app.db, order.order_id())
                .await?
                .ok_or_else(not_found)?;
            return settled.answer(app, &now).await;
        }
    };
    let settled = crate::deadline::within(
        lease.ends,
        attempt(app, client, &request.payment_key, lease),
    )
    .await?;
    answer(app, settled).await
}

/// How a payment of this key that is settled already answers its confirm.
#[derive(Debug, Clone, Copy)]
enum AlreadySettled {
    Paid,
    AwaitingDeposit,
}

impl AlreadySettled {
    fn of(record: &PaymentRecord, payment_key: &str) -> Option<Self> {
        if !record.is_key(payment_key) {
            return None;
        }
        match record.state {
            PaymentState::Done | PaymentState::Canceled => Some(Self::Paid),
            PaymentState::AwaitingDeposit => Some(Self::AwaitingDeposit),
            _ => None,
        }
    }

    fn outcome(self) -> Outcome {
        match self {
            Self::Paid => Outcome::Paid,
            Self::AwaitingDeposit => Outcome::AwaitingDeposit,
        }
    }

    async fn answer(self, app: &App, order: &OrderRecord) -> Result<Confirmed, ApiError> {
        let view = order.view(app).await?;
        Ok(match self {
            Self::Paid => Confirmed::Paid(view),
            Self::AwaitingDeposit => Confirmed::AwaitingDeposit(view),
        })
    }
}

/// What [`begin`] came to.
enum Begun {
    /// This confirm holds the payment.
    Leased(Box<Lease>),
    /// Another confirm of the same key settled it meanwhile.
    Settled(AlreadySettled),
}

/// A confirm's hold on the payment.
struct Lease {
    /// The record as written.
    record: PaymentRecord,
    /// When the work under it must be done by.
    ends: Instant,
    /// An earlier confirm of this key may have reached Toss: ask before confirming again.
    asked_before: bool,
}

/// Records the intent to confirm `payment_key` and takes the lease. Refused (409) while another
/// confirm holds it or another payment of the order is open.
async fn begin(
    app: &App,
    order: &OrderRecord,
    payment_key: &str,
    mut record: Option<PaymentRecord>,
) -> Result<Begun, ApiError> {
    let client = super::toss(app)?;
    let length = super::lease_duration(client);
    for _ in 0..3 {
        // Read again after a lost write: a confirm of this key that raced this one settled it.
        if let Some(settled) = record
            .as_ref()
            .and_then(|r| AlreadySettled::of(r, payment_key))
        {
            return Ok(Begun::Settled(settled));
        }
        let now = jiff::Timestamp::now();
        let ends = Instant::now() + length;
        let locked_until = now.as_second() + length.as_secs() as i64 + 1;
        let seen = record.as_ref().map(|r| r.version);
        let (next, asked_before) = match &record {
            None => (
                super::intent(
                    app,
                    order.order_id(),
                    order.total,
                    payment_key,
                    locked_until,
                    None,
                )
                .await?,
                false,
            ),
            Some(r) => match r.state {
                // A new attempt, with a new card or the same one again.
                PaymentState::Failed | PaymentState::Voided => (
                    super::intent(
                        app,
                        order.order_id(),
                        order.total,
                        payment_key,
                        locked_until,
                        Some(r),
                    )
                    .await?,
                    false,
                ),
                PaymentState::Pending | PaymentState::Unknown
                    if r.is_key(payment_key) && !r.leased_at(now.as_second()) =>
                {
                    let mut next = r.clone();
                    next.state = PaymentState::Pending;
                    next.version = r.version + 1;
                    next.locked_until = locked_until;
                    (next.stamped(now), true)
                }
                PaymentState::Pending => {
                    let left = (r.locked_until - now.as_second()).clamp(1, 60);
                    return Err(in_progress(left as u64));
                }
                PaymentState::Voiding => {
                    return Err(not_payable(order, "; a payment of it is being refunded"));
                }
                PaymentState::Done | PaymentState::Canceled => {
                    return Err(not_payable(order, "; it was paid with another payment"));
                }
                PaymentState::Unknown | PaymentState::AwaitingDeposit => {
                    return Err(in_progress(5));
                }
            },
        };
        if ledger::write(&app.db, &next, seen).await? {
            return Ok(Begun::Leased(Box::new(Lease {
                record: next,
                ends,
                asked_before,
            })));
        }
        record = super::find(&app.db, order.order_id()).await?;
    }
    Err(in_progress(1))
}

/// The confirm itself, under the lease; what became of the payment.
async fn attempt(
    app: &App,
    client: &toss::TossClient,
    payment_key: &str,
    lease: Lease,
) -> Result<Settled, ApiError> {
    let Lease {
        record,
        asked_before,
        ..
    } = lease;
    let order_id = &record.order_id.clone();
    let key_digest = digest(payment_key);
    // The order may have stopped being payable while the intent was written (expired, cancelled):
    // then Toss is not asked at all. (Expiry and cancellation check the record in their own
    // transaction, so one of the two always sees the other.)
    let now = orders::find(&app.db, order_id).await?;
    let Some(order) = now.filter(|o| o.status == Status::PendingPayment) else {
        return ledger::settle(
            app,
            order_id,
            Evidence::Refused {
                key_digest,
                code: "ORDER_NOT_PAYABLE".into(),
            },
        )
        .await;
    };
    let total = order.total;
    // What this confirm knows of the two, for its settlement's first decision.
    let known = (order, record);
    if asked_before {
        match client.by_order(order_id).await {
            Ok(Some(payment)) if !matches!(payment.status.as_str(), "READY" | "IN_PROGRESS") => {
                return ledger::settle_known(app, known, Evidence::Toss(payment)).await;
            }
            // Toss never ran it: confirm it now.
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(order_id, error = %err, "payment still unknown");
                return ledger::settle_known(app, known, Evidence::NoAnswer { key_digest }).await;
            }
        }
    }
    let answer = client
        .confirm(
            &super::confirm_idempotency_key(order_id, payment_key),
            payment_key,
            order_id,
            total,
        )
        .await;
    let evidence = match answer {
        Ok(payment) => Evidence::Toss(payment),
        // Toss ran a confirm of this order before (ours, whose answer was lost, or one with another
        // key): its own record of the order's payment settles it.
        Err(TossError::Refused { code, .. })
            if code == "ALREADY_PROCESSED_PAYMENT" || code == "DUPLICATED_ORDER_ID" =>
        {
            match client.by_order(order_id).await {
                Ok(Some(payment)) => Evidence::Toss(payment),
                _ => Evidence::NoAnswer { key_digest },
            }
        }
        Err(TossError::Refused { code, .. }) => {
            tracing::info!(order_id, toss_code = %code, "payment refused");
            Evidence::Refused { key_digest, code }
        }
        Err(TossError::Ambiguous(reason)) => {
            tracing::warn!(order_id, %reason, "payment outcome unknown");
            Evidence::NoAnswer { key_digest }
        }
    };
    let settled = ledger::settle_known(app, known, evidence).await?;
    if let Outcome::Ignored(_) = settled.outcome {
        // Toss answered about something else: ask it about this order later.
        return ledger::settle(
            app,
            order_id,
            Evidence::NoAnswer {
                key_digest: digest(payment_key),
            },
        )
        .await;
    }
    Ok(settled)
}

/// What the customer's app is told of a settled confirm.
async fn answer(app: &App, settled: Settled) -> Result<Confirmed, ApiError> {
    let order = &settled.order;
    match settled.outcome {
        Outcome::Paid => Ok(Confirmed::Paid(order.view(app).await?)),
        Outcome::AwaitingDeposit => Ok(Confirmed::AwaitingDeposit(order.view(app).await?)),
        Outcome::Pending | Outcome::Ignored(_) => {
            crate::telemetry::payment_failure("PAYMENT_PENDING");
            Err(pending())
        }
        Outcome::Voided => Err(not_payable(order, "; the payment was refunded")),
        Outcome::Voiding => Err(not_payable(order, "; the payment is being refunded")),
        Outcome::Failed(code) if code == "ORDER_NOT_PAYABLE" => Err(not_payable(order, "")),
        Outcome::Failed(code) => {
            let ours = toss::refusal_code(&code);
            crate::telemetry::payment_failure(ours);
            let status = if ours == "PAYMENTS_MISCONFIGURED" {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Err(refused(status, ours, refusal_message(ours)))
        }
    }
}

fn refusal_message(code: &str) -> &'static str {
    match code {
        "CARD_REJECTED" => "the card was declined; try another card",
        "AMOUNT_TOO_SMALL" => "the amount is below what the payment method accepts",
        "PAYMENT_SESSION_EXPIRED" => {
            "the payment session expired or belongs to another order; pay again"
        }
        "PAYMENTS_MISCONFIGURED" => "payments are unavailable",
        _ => "the payment was not completed",
    }
}

/// The reconciler's confirm of a payment Toss never ran (the customer authorised it, our confirm
/// never arrived): the same request the customer sent, under the same idempotency key.
pub(crate) async fn resume(app: &App, record: &PaymentRecord) -> Result<Settled, ApiError> {
    let client = super::toss(app)?;
    let order = orders::find(&app.db, &record.order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("ORDER_NOT_FOUND", "no such order"))?;
    let payment_key = super::open_key(app, record).await?;
    let lease = match begin(app, &order, &payment_key, Some(record.clone())).await? {
        Begun::Leased(lease) => *lease,
        // The customer's own confirm settled it meanwhile.
        Begun::Settled(settled) => {
            let order = orders::find(&app.db, &record.order_id)
                .await?
                .ok_or_else(|| ApiError::not_found("ORDER_NOT_FOUND", "no such order"))?;
            return Ok(Settled {
                outcome: settled.outcome(),
                order,
                changed: false,
            });
        }
    };
    debug_assert_eq!(lease.record.state, PaymentState::Pending);
    // The reconciler asked Toss already: it has no payment of the order.
    let lease = Lease {
        asked_before: false,
        ..lease
    };
    crate::deadline::within(lease.ends, attempt(app, client, &payment_key, lease)).await
}
