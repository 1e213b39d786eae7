//! The reconciler (every minute): every open payment and every PENDING refund is settled by asking
//! Toss, and nothing is left open for ever without an alarm.
//!
//! - An open payment whose confirm no longer holds it is looked up at Toss and settled
//!   ([`ledger::settle`]). A payment the customer authorised but whose confirm never reached Toss
//!   (Toss shows it IN_PROGRESS) is confirmed now, as the customer asked — the same request, under
//!   the same idempotency key. Toss having no payment at all fails it; a void owed is repeated.
//! - Refunds still PENDING are repeated ([`refunds::reconcile`]).
//! - One item's error is logged and counted, never the end of the run; payments and refunds each get
//!   half of the run's time, so neither starves the other.
//! - How many payments and refunds have stayed open too long is published each run (alarmed).
//!
//! Runs never overlap: the job holds a lease ([`crate::job::exclusive`]).

use std::time::{Duration, Instant};

use serde::Serialize;

use super::ledger::{self, Evidence, Outcome};
use super::{PaymentRecord, PaymentState, refunds};
use crate::app::App;
use crate::error::ApiError;

/// An open payment or a pending refund older than this is stuck (the alarms count them).
pub const STUCK_AFTER_SECONDS: i64 = 15 * 60;

/// What a run did.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Payments settled (paid, failed, voided or awaiting a deposit).
    pub payments: u64,
    pub refunds: u64,
    pub errors: u64,
    /// Open payments and pending refunds older than [`STUCK_AFTER_SECONDS`].
    pub stuck_payments: u64,
    pub stuck_refunds: u64,
    /// False when another run held the job: this one did nothing.
    pub ran: bool,
}

/// One run of the reconciler.
pub async fn reconcile(app: &App) -> Result<Report, ApiError> {
    super::toss(app)?;
    let run = crate::job::exclusive(&app.db, "payments-reconcile", async {
        let mut report = Report {
            ran: true,
            ..Report::default()
        };
        let half = crate::deadline::remaining().map(|left| left / 2);
        let until =
            |share: Option<Duration>| Instant::now() + share.unwrap_or(Duration::from_secs(3600));
        crate::deadline::within(until(half), payments(app, &mut report)).await?;
        let settle_after = super::lease_duration(super::toss(app)?).as_secs() as i64 + 1;
        let refunds = refunds::reconcile(app, settle_after).await?;
        report.refunds = refunds.settled;
        report.stuck_refunds = refunds.stuck;
        crate::telemetry::count("PaymentsStuck", report.stuck_payments as f64);
        crate::telemetry::count("RefundsStuck", report.stuck_refunds as f64);
        if report.stuck_payments + report.stuck_refunds > 0 {
            tracing::error!(
                payments = report.stuck_payments,
                refunds = report.stuck_refunds,
                "payments or refunds open too long"
            );
        }
        Ok(report)
    })
    .await?;
    Ok(run.unwrap_or_default())
}

async fn payments(app: &App, report: &mut Report) -> Result<(), ApiError> {
    let db = &app.db;
    let now = jiff::Timestamp::now().as_second();
    let budget = super::lease_duration(super::toss(app)?);
    for (pk, _) in db.keys_in("GSI3", super::open_partitions(), None).await? {
        let Some(order_id) = pk.strip_prefix("PAYMENT#") else {
            continue;
        };
        if crate::deadline::remaining().is_some_and(|left| left < budget) {
            // Not enough time to settle one more: the next run goes on.
            crate::telemetry::count("ReconcileOutOfTime", 1.0);
            break;
        }
        match payment(app, order_id, now).await {
            Ok(Some(record)) => {
                let since = record
                    .updated_at
                    .parse::<jiff::Timestamp>()
                    .map_or(0, |t| t.as_second());
                // A virtual account waits for its deposit until the order is due, then is closed.
                let waiting = record.state == PaymentState::AwaitingDeposit;
                if !waiting && since + STUCK_AFTER_SECONDS < now {
                    report.stuck_payments += 1;
                }
            }
            Ok(None) => report.payments += 1,
            Err(err) => {
                tracing::warn!(order_id, code = err.code, error = %err, "payment not settled");
                crate::telemetry::count("ReconcileErrors", 1.0);
                report.errors += 1;
            }
        }
    }
    Ok(())
}

/// Settles one open payment; the record when it stays open (`None`: settled).
async fn payment(app: &App, order_id: &str, now: i64) -> Result<Option<PaymentRecord>, ApiError> {
    let Some(record) = super::find(&app.db, order_id).await? else {
        return Ok(None);
    };
    if !record.state.is_open() {
        return Ok(None);
    }
    if record.leased_at(now) {
        // Its confirm is at work.
        return Ok(Some(record));
    }
    let client = super::toss(app)?;
    let evidence = match client.by_order(order_id).await {
        Ok(Some(payment)) => {
            let never_ran = matches!(payment.status.as_str(), "READY" | "IN_PROGRESS");
            if never_ran
                && record.is_key(&payment.payment_key)
                && matches!(record.state, PaymentState::Pending | PaymentState::Unknown)
            {
                let settled = super::confirm::resume(app, &record).await?;
                return still_open(app, order_id, &settled.outcome).await;
            }
            Evidence::Toss(payment)
        }
        Ok(None) => Evidence::NoPayment,
        Err(err) => {
            tracing::warn!(order_id, error = %err, "Toss unreachable; the next run asks again");
            return Ok(Some(record));
        }
    };
    let settled = ledger::settle(app, order_id, evidence).await?;
    still_open(app, order_id, &settled.outcome).await
}

async fn still_open(
    app: &App,
    order_id: &str,
    outcome: &Outcome,
) -> Result<Option<PaymentRecord>, ApiError> {
    if matches!(
        outcome,
        Outcome::Pending | Outcome::Voiding | Outcome::AwaitingDeposit | Outcome::Ignored(_)
    ) {
        return Ok(super::find(&app.db, order_id)
            .await?
            .filter(|r| r.state.is_open()));
    }
    Ok(None)
}
