//! The one settlement function: what Toss said about an order's payment, applied to the order and
//! its payment record as they are now.
//!
//! Every path that learns something from Toss — a confirm and its retries, a webhook, the reconciler
//! — calls [`settle`] with its [`Evidence`]. It reads the order and the payment record, [`decide`]s
//! (a pure function of the three), and writes the decision only if neither changed since it read
//! them: the order by its status and version, the record by its version. A write that loses is
//! decided again on what won. So the order is PAID only in the transaction that records the payment
//! DONE; "already paid by this payment" is success, not a reason to refund; a late, stale answer
//! cannot overwrite a settled record; and money Toss holds for an order that can no longer take it
//! (expired or cancelled unpaid) is given back — never for an order that is live.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use lambda_http::http::StatusCode;

use super::toss::{Payment, TossError};
use super::{PaymentRecord, PaymentState, digest, key_location};
use crate::app::App;
use crate::error::ApiError;
use crate::orders::status::{Actor, Status};
use crate::orders::{self, Extra, OrderRecord};
use crate::storage::{Db, StorageError, n, to_item};

/// Decisions lost to a concurrent writer are retaken this many times before giving up (503).
const ROUNDS: usize = 6;

/// What a path learned about the order's payment.
#[derive(Debug, Clone)]
pub enum Evidence {
    /// Toss's own record of a payment, as it answered a confirm, a look-up or a cancel. Believed only
    /// for the order it names, at the order's amount.
    Toss(Payment),
    /// Toss definitively did not run a confirm of the key with this digest (it refused it), or we
    /// withdrew it before asking.
    Refused { key_digest: String, code: String },
    /// A confirm of the key with this digest got no definite answer.
    NoAnswer { key_digest: String },
    /// Toss has no payment at all for the order.
    NoPayment,
}

/// Where the order's payment stands after [`settle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The order is paid by this payment (now, or before).
    Paid,
    /// A virtual account waits for the customer's deposit.
    AwaitingDeposit,
    /// Toss did not take the payment: its code, or ours.
    Failed(String),
    /// Not known yet; the reconciler settles it.
    Pending,
    /// Toss took money the order could no longer take; it went back in full.
    Voided,
    /// … and is going back (a cancel is owed; the reconciler repeats it).
    Voiding,
    /// Toss's account does not fit this order (another order's payment, another amount, a second
    /// payment): nothing was changed, and an error was logged.
    Ignored(&'static str),
}

/// The outcome, the order as it now is, and whether this call changed anything.
#[derive(Debug, Clone)]
pub struct Settled {
    pub outcome: Outcome,
    pub order: OrderRecord,
    pub changed: bool,
}

/// What to do, decided from the order, its payment record and the evidence.
#[derive(Debug, Clone)]
pub(crate) enum Decision {
    /// Write nothing.
    Keep(Outcome),
    /// Write this record (fenced on the version read).
    Record(Box<PaymentRecord>, Outcome),
    /// Mark the order PAID and record this payment DONE, in one transaction.
    Pay(Payment),
    /// Record the virtual account Toss issued.
    Await(Payment),
    /// Give back what Toss holds of this payment: record VOIDING, then cancel it at Toss.
    Void(Payment),
}

impl Decision {
    fn record(record: PaymentRecord, outcome: Outcome) -> Self {
        Self::Record(Box::new(record), outcome)
    }

    /// Whether carrying it out starts with a write fenced on what it was decided on (`record`, as
    /// read): all but keeping, and giving back a payment already recorded VOIDING.
    fn writes_first(&self, record: Option<&PaymentRecord>) -> bool {
        match self {
            Decision::Keep(_) => false,
            Decision::Record(..) | Decision::Pay(_) | Decision::Await(_) => true,
            Decision::Void(payment) => record
                .filter(|r| r.is_key(&payment.payment_key))
                .is_none_or(|r| r.state != PaymentState::Voiding),
        }
    }
}

/// What a record as it stands means to a caller.
fn outcome_of(record: Option<&PaymentRecord>) -> Outcome {
    match record.map(|r| r.state) {
        Some(PaymentState::Done | PaymentState::Canceled) => Outcome::Paid,
        Some(PaymentState::AwaitingDeposit) => Outcome::AwaitingDeposit,
        Some(PaymentState::Voided) => Outcome::Voided,
        Some(PaymentState::Voiding) => Outcome::Voiding,
        Some(PaymentState::Pending | PaymentState::Unknown) => Outcome::Pending,
        Some(PaymentState::Failed) => Outcome::Failed(
            record
                .and_then(|r| r.failure_code.clone())
                .unwrap_or_else(|| "PAYMENT_FAILED".into()),
        ),
        None => Outcome::Failed("NO_PAYMENT".into()),
    }
}

fn with(record: &PaymentRecord, state: PaymentState, failure: Option<&str>) -> PaymentRecord {
    let mut next = record.clone();
    next.state = state;
    next.version = record.version + 1;
    next.locked_until = 0;
    next.failure_code = failure.map(String::from);
    next
}

/// The decision: a pure function of what was read and what Toss said, at `now` (epoch seconds).
pub(crate) fn decide(
    order: &OrderRecord,
    record: Option<&PaymentRecord>,
    evidence: &Evidence,
    now: i64,
) -> Decision {
    use PaymentState as S;
    let state = record.map(|r| r.state);
    let attempt_of = |key_digest: &str| record.filter(|r| r.payment_key_digest == key_digest);
    match evidence {
        Evidence::Refused { key_digest, code } => match attempt_of(key_digest) {
            Some(r) if matches!(r.state, S::Pending | S::Unknown) => Decision::record(
                with(r, S::Failed, Some(code)),
                Outcome::Failed(code.clone()),
            ),
            _ => Decision::Keep(outcome_of(record)),
        },
        Evidence::NoAnswer { key_digest } => match attempt_of(key_digest) {
            Some(r) if r.state == S::Pending => {
                Decision::record(with(r, S::Unknown, None), Outcome::Pending)
            }
            _ => Decision::Keep(outcome_of(record)),
        },
        Evidence::NoPayment => match record {
            // Nothing ran at Toss, and no confirm of ours is still under way.
            Some(r) if matches!(r.state, S::Pending | S::Unknown) && !r.leased_at(now) => {
                Decision::record(
                    with(r, S::Failed, Some("NOT_EXECUTED")),
                    Outcome::Failed("NOT_EXECUTED".into()),
                )
            }
            _ => Decision::Keep(outcome_of(record)),
        },
        Evidence::Toss(payment) => {
            if payment.order_id != order.order_id() {
                return Decision::Keep(Outcome::Ignored("another order's payment"));
            }
            if payment.total_amount != order.total {
                return Decision::Keep(Outcome::Ignored("an amount other than the order's"));
            }
            let this = record.filter(|r| r.is_key(&payment.payment_key));
            if let Some(r) = this.filter(|r| r.state == S::Voiding) {
                // Once giving it back is decided, it is finished: a cancel of it may be on its way to
                // Toss, so the payment can never pay the order any more.
                return match payment.status.as_str() {
                    "DONE" | "PARTIAL_CANCELED" | "WAITING_FOR_DEPOSIT" => {
                        Decision::Void(payment.clone())
                    }
                    "CANCELED" | "ABORTED" | "EXPIRED" => {
                        let mut voided = toss_view(r, payment);
                        voided.state = S::Voided;
                        Decision::record(voided, Outcome::Voided)
                    }
                    _ => Decision::Keep(Outcome::Voiding),
                };
            }
            let settled_by_this = this.is_some_and(|r| matches!(r.state, S::Done | S::Canceled));
            match payment.status.as_str() {
                "DONE" | "PARTIAL_CANCELED" if settled_by_this => match this {
                    // Paid by this payment: only Toss's account of its cancellations may be news.
                    Some(r) if payment.balance_amount < r.balance_amount.unwrap_or(r.amount) => {
                        Decision::record(toss_view(r, payment), Outcome::Paid)
                    }
                    _ => Decision::Keep(Outcome::Paid),
                },
                "DONE" | "PARTIAL_CANCELED" => {
                    if matches!(state, Some(S::Done | S::Canceled)) {
                        // Toss holds a second payment for one order: it cannot, by its own rules.
                        return Decision::Keep(Outcome::Ignored("a second payment of the order"));
                    }
                    if this.is_some_and(|r| r.state == S::Voided) {
                        return Decision::Keep(Outcome::Voided);
                    }
                    if payment.status == "DONE" && order.status == Status::PendingPayment {
                        return Decision::Pay(payment.clone());
                    }
                    if order.status.is_paid_and_standing() {
                        // Paid otherwise (never by our settlement): leave it to a person.
                        return Decision::Keep(Outcome::Ignored("the order is paid otherwise"));
                    }
                    Decision::Void(payment.clone())
                }
                "WAITING_FOR_DEPOSIT" => {
                    if this.is_some_and(|r| r.state == S::AwaitingDeposit) {
                        // Nobody deposits into an order that has run out of time: close the account.
                        return if order.status != Status::PendingPayment || order.payment_due < now
                        {
                            Decision::Void(payment.clone())
                        } else {
                            Decision::Keep(Outcome::AwaitingDeposit)
                        };
                    }
                    if matches!(state, Some(S::Done | S::Canceled | S::Voiding)) {
                        return Decision::Keep(Outcome::Ignored("another payment holds the order"));
                    }
                    if order.status == Status::PendingPayment {
                        Decision::Await(payment.clone())
                    } else {
                        Decision::Void(payment.clone())
                    }
                }
                "CANCELED" => match this {
                    Some(r) if matches!(r.state, S::Done | S::Canceled) => {
                        if payment.balance_amount < r.balance_amount.unwrap_or(r.amount) {
                            Decision::record(toss_view(r, payment), Outcome::Paid)
                        } else {
                            Decision::Keep(Outcome::Paid)
                        }
                    }
                    Some(r) if matches!(r.state, S::Pending | S::Unknown | S::AwaitingDeposit) => {
                        Decision::record(
                            with(r, S::Failed, Some("CANCELED")),
                            Outcome::Failed("CANCELED".into()),
                        )
                    }
                    _ => Decision::Keep(outcome_of(record)),
                },
                "ABORTED" | "EXPIRED" => match this {
                    Some(r) if matches!(r.state, S::Pending | S::Unknown | S::AwaitingDeposit) => {
                        Decision::record(
                            with(r, S::Failed, Some(&payment.status)),
                            Outcome::Failed(payment.status.clone()),
                        )
                    }
                    _ => Decision::Keep(outcome_of(record)),
                },
                // READY, IN_PROGRESS: the customer authorised it; no confirm of ours ran yet.
                _ => Decision::Keep(outcome_of(record)),
            }
        }
    }
}

/// `record` with Toss's account of the payment's cancellations.
fn toss_view(record: &PaymentRecord, payment: &Payment) -> PaymentRecord {
    let mut next = record.clone();
    next.version = record.version + 1;
    next.balance_amount = Some(payment.balance_amount);
    next.cancels = payment.cancels.clone().unwrap_or_default();
    if next.state == PaymentState::Done && payment.balance_amount == 0 {
        next.state = PaymentState::Canceled;
    }
    next
}

/// A put of `record` that succeeds only over the version it was decided on (`seen`; `None`: there
/// was no record).
pub(crate) fn fenced_put(
    db: &Db,
    record: &PaymentRecord,
    seen: Option<u64>,
) -> Result<Put, ApiError> {
    let mut put = Put::builder()
        .table_name(db.table())
        .set_item(Some(to_item(record)?));
    put = match seen {
        None => put.condition_expression("attribute_not_exists(PK)"),
        // Written before versions existed.
        Some(0) => {
            put.condition_expression("attribute_exists(PK) AND attribute_not_exists(version)")
        }
        Some(version) => put
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", n(version)),
    };
    put.build().map_err(ApiError::internal)
}

/// Writes `record` over version `seen`; `Ok(false)` when someone else wrote first.
pub(crate) async fn write(
    db: &Db,
    record: &PaymentRecord,
    seen: Option<u64>,
) -> Result<bool, ApiError> {
    let put = fenced_put(db, record, seen)?;
    let sent = db
        .client()
        .put_item()
        .table_name(put.table_name())
        .set_item(Some(put.item().clone()))
        .set_condition_expression(put.condition_expression().map(String::from))
        .set_expression_attribute_values(put.expression_attribute_values().cloned())
        .send()
        .await
        .map_err(StorageError::from_sdk);
    match sent {
        Ok(_) => Ok(true),
        Err(StorageError::ConditionFailed) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// `base` (the record read, or a new one) made the record of Toss's `payment` in `state`: its key
/// and secret sealed, its version one past the one read.
async fn adopt(
    app: &App,
    order: &OrderRecord,
    base: Option<&PaymentRecord>,
    payment: &Payment,
    state: PaymentState,
) -> Result<PaymentRecord, ApiError> {
    let db = &app.db;
    let pk = super::payment_pk(order.order_id());
    let mut record = match base {
        Some(base) => base.clone(),
        None => {
            // Toss has a payment we hold no record of (written before records existed): take it.
            super::intent(
                app,
                order.order_id(),
                order.total,
                &payment.payment_key,
                0,
                None,
            )
            .await?
        }
    };
    if !record.is_key(&payment.payment_key) {
        // Toss's payment for this order is not the one on record (an earlier attempt, whose record a
        // later one replaced): the order's payment is Toss's, and only its key may ever be cancelled.
        tracing::warn!(order_id = %order.order_id(), "settling the payment Toss holds for the order, not the one on record");
        record.payment_key = app
            .crypto()
            .seal_str(&key_location(db, &pk, "paymentKey"), &payment.payment_key)
            .await?;
        record.payment_key_digest = digest(&payment.payment_key);
        record.idempotency_key =
            super::confirm_idempotency_key(order.order_id(), &payment.payment_key);
    }
    if let Some(secret) = &payment.secret {
        record.secret = Some(
            app.crypto()
                .seal_str(&key_location(db, &pk, "secret"), secret)
                .await?,
        );
    }
    record.state = state;
    record.version = base.map_or(1, |b| b.version + 1);
    record.amount = order.total;
    record.locked_until = 0;
    record.failure_code = None;
    record.method = payment.method.clone();
    record.approved_at = payment.approved_at.clone();
    record.balance_amount = Some(payment.balance_amount);
    record.cancels = payment.cancels.clone().unwrap_or_default();
    if state == PaymentState::Done {
        // Always present on a paid record: refund reservations compare against it.
        record.refunded_amount = Some(0);
    }
    Ok(record)
}

/// Applies `evidence` to the order's payment; see the module's description.
pub async fn settle(app: &App, order_id: &str, evidence: Evidence) -> Result<Settled, ApiError> {
    settle_from(app, order_id, None, evidence).await
}

/// [`settle`], with its first decision taken on `known` — an unpaid order and the PENDING record of
/// a confirm's lease, as the confirm last read and wrote them — instead of on a fresh read: two
/// reads fewer for every confirm. While that record stands, the order cannot leave
/// PENDING_PAYMENT without the record changing (cancelling and expiring need it settled as not
/// taken; paying writes it), so a decision's write, fenced on the record's version, succeeds only
/// if `known` is what a read would have returned. A decision that writes nothing first proves
/// nothing: it is taken again on a fresh read.
pub(crate) async fn settle_known(
    app: &App,
    known: (OrderRecord, PaymentRecord),
    evidence: Evidence,
) -> Result<Settled, ApiError> {
    let order_id = known.0.order_id().to_owned();
    settle_from(app, &order_id, Some(known), evidence).await
}

async fn settle_from(
    app: &App,
    order_id: &str,
    known: Option<(OrderRecord, PaymentRecord)>,
    evidence: Evidence,
) -> Result<Settled, ApiError> {
    let db = &app.db;
    let mut evidence = evidence;
    let mut changed = false;
    let mut known = known.filter(|(order, record)| {
        order.order_id() == order_id
            && order.status == Status::PendingPayment
            && record.state == PaymentState::Pending
    });
    for _ in 0..ROUNDS {
        let (order, record, assumed) = match known.take() {
            Some((order, record)) => (order, Some(record), true),
            None => match super::find_with_order(db, order_id).await? {
                (Some(order), record) => (order, record, false),
                (None, _) => return Err(ApiError::not_found("ORDER_NOT_FOUND", "no such order")),
            },
        };
        let seen = record.as_ref().map(|r| r.version);
        let now = jiff::Timestamp::now();
        let decision = decide(&order, record.as_ref(), &evidence, now.as_second());
        let writes_first = decision.writes_first(record.as_ref());
        if assumed && !writes_first {
            continue;
        }
        let settled = |outcome, order, changed| {
            Ok(Settled {
                outcome,
                order,
                changed,
            })
        };
        match decision {
            Decision::Keep(outcome) => {
                if let Outcome::Ignored(why) = outcome {
                    tracing::error!(
                        order_id,
                        why,
                        "Toss's account does not fit the order; nothing changed"
                    );
                    crate::telemetry::count("PaymentMismatches", 1.0);
                }
                return settled(outcome, order, changed);
            }
            Decision::Record(next, outcome) => {
                if write(db, &next.stamped(now), seen).await? {
                    return settled(outcome, order, true);
                }
            }
            Decision::Await(payment) => {
                let next = adopt(
                    app,
                    &order,
                    record.as_ref(),
                    &payment,
                    PaymentState::AwaitingDeposit,
                )
                .await?
                .stamped(now);
                if write(db, &next, seen).await? {
                    return settled(Outcome::AwaitingDeposit, order, true);
                }
            }
            Decision::Pay(payment) => {
                let done = adopt(app, &order, record.as_ref(), &payment, PaymentState::Done)
                    .await?
                    .stamped(now);
                let (mut actions, moved) = orders::transition_actions(
                    db,
                    &order,
                    Status::Paid,
                    Actor::System,
                    None,
                    Extra::default(),
                )?;
                actions.push(
                    TransactWriteItem::builder()
                        .put(fenced_put(db, &done, seen)?)
                        .build(),
                );
                match db.transact(actions).await {
                    Ok(()) => {
                        crate::telemetry::count("OrdersPaid", 1.0);
                        return settled(Outcome::Paid, moved, true);
                    }
                    // The order or the record moved meanwhile: decide again on what they are now.
                    Err(StorageError::TransactionCanceled(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Decision::Void(payment) => {
                // Unless it is recorded VOIDING already, record that first.
                if writes_first {
                    let voiding = adopt(
                        app,
                        &order,
                        record.as_ref(),
                        &payment,
                        PaymentState::Voiding,
                    )
                    .await?
                    .stamped(now);
                    if !write(db, &voiding, seen).await? {
                        continue;
                    }
                    changed = true;
                    tracing::warn!(
                        order_id,
                        status = order.status.name(),
                        "Toss holds money for an order that cannot take it; giving it back"
                    );
                }
                match void(app, &payment).await {
                    Ok(answer) => evidence = Evidence::Toss(answer),
                    Err(err) => {
                        tracing::warn!(order_id, error = %err, "void not done yet; the reconciler repeats it");
                        return settled(Outcome::Voiding, order, changed);
                    }
                }
            }
        }
    }
    tracing::warn!(order_id, "settlement kept losing to concurrent writers");
    Err(ApiError {
        retry_after: Some(1),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "PAYMENT_BUSY",
            "the payment is being changed by another request; try again".to_owned(),
        )
    })
}

/// Cancels all of `payment` that is left, under an idempotency key of its own (every repeat is the
/// same request to Toss); Toss's account of it afterwards.
async fn void(app: &App, payment: &Payment) -> Result<Payment, TossError> {
    let client = super::toss(app).map_err(|e| TossError::Ambiguous(e.to_string()))?;
    let key = format!("os-void-{}", &digest(&payment.payment_key)[..40]);
    let answer = if payment.status == "WAITING_FOR_DEPOSIT" || payment.balance_amount > 0 {
        client
            .cancel(
                &key,
                &payment.payment_key,
                "order no longer payable",
                payment.balance_amount,
            )
            .await
    } else {
        Ok(payment.clone())
    };
    match answer {
        Ok(answer) => Ok(answer),
        // Cancelled already (an earlier attempt whose answer was lost): Toss's account says so.
        Err(TossError::Refused { code, .. }) if code == "ALREADY_CANCELED_PAYMENT" => client
            .by_key(&payment.payment_key)
            .await?
            .ok_or_else(|| TossError::Ambiguous("the payment vanished".into())),
        Err(err) => {
            crate::telemetry::count("VoidsFailed", 1.0);
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Sealed;
    use crate::payments::PAYMENT_SK;
    use PaymentState as S;

    const NOW: i64 = 1_800_000_000;

    fn order(status: Status) -> OrderRecord {
        OrderRecord {
            payment_due: NOW + 600,
            ..OrderRecord::example(status)
        }
    }

    fn record(state: S, key: &str) -> PaymentRecord {
        PaymentRecord {
            pk: "PAYMENT#o1".into(),
            sk: PAYMENT_SK.into(),
            order_id: "o1".into(),
            state,
            version: 7,
            amount: 9000,
            payment_key: Sealed::from_stored("enc1:eA==").unwrap(),
            payment_key_digest: digest(key),
            idempotency_key: "os-x".into(),
            locked_until: 0,
            method: None,
            approved_at: None,
            balance_amount: (state == S::Done).then_some(9000),
            secret: None,
            failure_code: None,
            refunded_amount: None,
            refund_count: None,
            cancels: Vec::new(),
            updated_at: String::new(),
            gsi3pk: None,
            gsi3sk: None,
        }
    }

    fn toss(status: &str, key: &str) -> Evidence {
        Evidence::Toss(Payment {
            payment_key: key.into(),
            order_id: "o1".into(),
            status: status.into(),
            method: Some("카드".into()),
            total_amount: 9000,
            balance_amount: if status == "CANCELED" { 0 } else { 9000 },
            approved_at: None,
            cancels: None,
            secret: None,
        })
    }

    fn kind(decision: &Decision) -> String {
        match decision {
            Decision::Keep(outcome) => format!("keep {outcome:?}"),
            Decision::Record(record, outcome) => {
                assert_eq!(
                    record.version, 8,
                    "every write is one version past the one read"
                );
                format!("record {} {outcome:?}", record.state.name())
            }
            Decision::Pay(_) => "pay".into(),
            Decision::Await(_) => "await".into(),
            Decision::Void(_) => "void".into(),
        }
    }

    fn decided(status: Status, record: Option<PaymentRecord>, evidence: Evidence) -> String {
        kind(&decide(&order(status), record.as_ref(), &evidence, NOW))
    }

    #[test]
    fn a_done_payment_pays_a_payable_order_whatever_the_record_said() {
        for state in [S::Pending, S::Unknown, S::Failed, S::AwaitingDeposit] {
            assert_eq!(
                decided(
                    Status::PendingPayment,
                    Some(record(state, "k1")),
                    toss("DONE", "k1")
                ),
                "pay",
                "{state:?}"
            );
        }
        // The record is another attempt's: Toss's payment for this order is the one that counts.
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(record(S::Failed, "k2")),
                toss("DONE", "k1")
            ),
            "pay"
        );
    }

    #[test]
    fn on_a_confirms_own_knowledge_only_a_decision_that_writes_first_is_taken() {
        // `settle_known` decides its first round on the confirm's unpaid order and PENDING record:
        // such a decision counts only through a write fenced on that record, so any other must be
        // taken again on a fresh read.
        let unpaid = order(Status::PendingPayment);
        let pending = PaymentRecord {
            locked_until: NOW + 60,
            ..record(S::Pending, "k1")
        };
        let mut elsewhere = toss("DONE", "k1");
        if let Evidence::Toss(payment) = &mut elsewhere {
            payment.order_id = "o2".into();
        }
        let evidence = [
            toss("DONE", "k1"),
            toss("WAITING_FOR_DEPOSIT", "k1"),
            toss("CANCELED", "k1"),
            toss("ABORTED", "k1"),
            toss("IN_PROGRESS", "k1"),
            toss("DONE", "k2"),
            elsewhere,
            Evidence::Refused {
                key_digest: digest("k1"),
                code: "REJECT_CARD_PAYMENT".into(),
            },
            Evidence::NoAnswer {
                key_digest: digest("k1"),
            },
            Evidence::NoPayment,
        ];
        let mut kept = 0;
        for evidence in &evidence {
            let decision = decide(&unpaid, Some(&pending), evidence, NOW);
            let keeps = matches!(decision, Decision::Keep(_));
            kept += usize::from(keeps);
            assert_eq!(
                decision.writes_first(Some(&pending)),
                !keeps,
                "{evidence:?}"
            );
        }
        // (Toss still running it, another order's payment, and a lease still held keep.)
        assert_eq!(kept, 3);
        // Giving back a payment already recorded VOIDING starts at Toss, not with a write.
        for (held, writes) in [(record(S::Voiding, "k1"), false), (pending, true)] {
            let decision = decide(
                &order(Status::Canceled),
                Some(&held),
                &toss("DONE", "k1"),
                NOW,
            );
            assert_eq!(kind(&decision), "void");
            assert_eq!(
                decision.writes_first(Some(&held)),
                writes,
                "{:?}",
                held.state
            );
        }
    }

    #[test]
    fn paid_by_this_payment_is_success_never_a_refund() {
        // The headline bug: the webhook settled it, then the reconciler cancelled it.
        for status in [
            Status::Paid,
            Status::Accepted,
            Status::Completed,
            Status::Rejected,
        ] {
            assert_eq!(
                decided(status, Some(record(S::Done, "k1")), toss("DONE", "k1")),
                "keep Paid"
            );
        }
    }

    #[test]
    fn money_for_an_order_that_cannot_take_it_goes_back_but_never_for_a_live_order() {
        for status in [Status::Expired, Status::Canceled] {
            for state in [S::Pending, S::Unknown, S::Failed] {
                assert_eq!(
                    decided(status, Some(record(state, "k1")), toss("DONE", "k1")),
                    "void"
                );
            }
        }
        for status in [Status::Paid, Status::Accepted, Status::Ready] {
            assert_eq!(
                decided(status, Some(record(S::Unknown, "k1")), toss("DONE", "k1")),
                "keep Ignored(\"the order is paid otherwise\")"
            );
        }
        // A second DONE payment for a paid order is not ours to touch.
        assert!(
            decided(
                Status::Paid,
                Some(record(S::Done, "k1")),
                toss("DONE", "k2")
            )
            .starts_with("keep Ignored")
        );
        // Once voided, more news of it changes nothing.
        assert_eq!(
            decided(
                Status::Expired,
                Some(record(S::Voided, "k1")),
                toss("DONE", "k1")
            ),
            "keep Voided"
        );
        assert_eq!(
            decided(
                Status::Expired,
                Some(record(S::Voiding, "k1")),
                toss("CANCELED", "k1")
            ),
            "record VOIDED Voided"
        );
        // A void once begun is finished, even if the order could take the money now (a deposit
        // that came after an overdue account was being closed): its cancel may be on its way.
        for status in ["DONE", "WAITING_FOR_DEPOSIT"] {
            assert_eq!(
                decided(
                    Status::PendingPayment,
                    Some(record(S::Voiding, "k1")),
                    toss(status, "k1")
                ),
                "void"
            );
        }
    }

    #[test]
    fn toss_is_believed_only_for_this_order_at_its_amount() {
        let Evidence::Toss(mut other_order) = toss("DONE", "k1") else {
            unreachable!()
        };
        other_order.order_id = "o2".into();
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(record(S::Unknown, "k1")),
                Evidence::Toss(other_order)
            ),
            "keep Ignored(\"another order's payment\")"
        );
        let Evidence::Toss(mut cheap) = toss("DONE", "k1") else {
            unreachable!()
        };
        cheap.total_amount = 100;
        assert!(
            decided(
                Status::PendingPayment,
                Some(record(S::Unknown, "k1")),
                Evidence::Toss(cheap)
            )
            .starts_with("keep Ignored")
        );
    }

    #[test]
    fn a_late_answer_cannot_undo_a_settled_payment() {
        let done = Some(record(S::Done, "k1"));
        let no_answer = Evidence::NoAnswer {
            key_digest: digest("k1"),
        };
        assert_eq!(
            decided(Status::Paid, done.clone(), no_answer.clone()),
            "keep Paid"
        );
        let refusal = Evidence::Refused {
            key_digest: digest("k1"),
            code: "REJECT_CARD_PAYMENT".into(),
        };
        assert_eq!(decided(Status::Paid, done.clone(), refusal), "keep Paid");
        assert_eq!(
            decided(Status::Paid, done, Evidence::NoPayment),
            "keep Paid"
        );
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(record(S::Pending, "k1")),
                no_answer.clone()
            ),
            "record UNKNOWN Pending"
        );
        // An answer about another attempt's key changes nothing of this one.
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(record(S::Pending, "k2")),
                no_answer
            ),
            "keep Pending"
        );
    }

    #[test]
    fn nothing_at_toss_fails_a_confirm_only_once_no_one_holds_it() {
        let mut held = record(S::Pending, "k1");
        held.locked_until = NOW + 10;
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(held.clone()),
                Evidence::NoPayment
            ),
            "keep Pending"
        );
        held.locked_until = NOW - 1;
        assert_eq!(
            decided(Status::PendingPayment, Some(held), Evidence::NoPayment),
            "record FAILED Failed(\"NOT_EXECUTED\")"
        );
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(record(S::Unknown, "k1")),
                Evidence::NoPayment
            ),
            "record FAILED Failed(\"NOT_EXECUTED\")"
        );
    }

    #[test]
    fn virtual_accounts_wait_for_the_deposit_then_close_with_the_order() {
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(record(S::Pending, "k1")),
                toss("WAITING_FOR_DEPOSIT", "k1")
            ),
            "await"
        );
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(record(S::AwaitingDeposit, "k1")),
                toss("WAITING_FOR_DEPOSIT", "k1")
            ),
            "keep AwaitingDeposit"
        );
        let mut overdue = order(Status::PendingPayment);
        overdue.payment_due = NOW - 1;
        let waiting = record(S::AwaitingDeposit, "k1");
        assert_eq!(
            kind(&decide(
                &overdue,
                Some(&waiting),
                &toss("WAITING_FOR_DEPOSIT", "k1"),
                NOW
            )),
            "void"
        );
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(record(S::AwaitingDeposit, "k1")),
                toss("DONE", "k1")
            ),
            "pay"
        );
        assert_eq!(
            decided(
                Status::PendingPayment,
                Some(record(S::AwaitingDeposit, "k1")),
                toss("EXPIRED", "k1")
            ),
            "record FAILED Failed(\"EXPIRED\")"
        );
    }

    #[test]
    fn cancellations_at_toss_only_ever_lower_the_balance_on_record() {
        let mut paid = record(S::Done, "k1");
        paid.balance_amount = Some(6000);
        paid.refunded_amount = Some(3000);
        // A stale account (before the refund) is not written back.
        assert_eq!(
            decided(Status::Paid, Some(paid.clone()), toss("DONE", "k1")),
            "keep Paid"
        );
        let fresh = decide(
            &order(Status::Rejected),
            Some(&paid),
            &toss("CANCELED", "k1"),
            NOW,
        );
        match fresh {
            Decision::Record(next, Outcome::Paid) => {
                assert_eq!(next.state, S::Canceled);
                assert_eq!(next.balance_amount, Some(0));
                assert_eq!(next.refunded_amount, Some(3000), "reservations are kept");
            }
            other => panic!("{other:?}"),
        }
    }
}
