//! Payments with Toss: an order is paid exactly once, and money Toss holds for an order that cannot
//! take it goes back. docs/PAYMENTS.md states the ledger's invariant and how every path keeps it.
//!
//! - [`confirm`]: the customer's confirm. Its intent is recorded (and the payment put where the
//!   reconciler looks) before Toss is called, so a crash at any point is settled later.
//! - [`ledger`]: the one settlement function. Every path that learns something from Toss — confirm,
//!   its retries, webhooks, the reconciler — hands it to [`ledger::settle`], which decides on the order
//!   and payment as they are now and writes only if neither changed meanwhile (a version fence).
//! - [`lifecycle`]: the order moves that touch money (reject and cancel refund; unpaid orders are
//!   cancelled or expired only when no payment of theirs may have gone through).
//! - [`refunds`], [`webhooks`], [`reconcile`], and the Toss client, [`toss`].

pub mod confirm;
pub mod ledger;
pub mod lifecycle;
pub mod reconcile;
pub mod refunds;
pub mod toss;
pub mod webhooks;

use std::time::Duration;

use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use self::confirm::{ConfirmRequest, Confirmed, confirm};
pub use self::reconcile::reconcile;
use self::toss::TossClient;
use crate::app::App;
use crate::crypto::{Location, Sealed};
use crate::error::ApiError;
use crate::orders::{self, OrderRecord};
use crate::storage::{Db, StorageError};

pub const PAYMENT_SK: &str = "PAYMENT";
/// Open payments (see [`PaymentState::is_open`]) are spread over this many index partitions: each
/// paid order's payment enters and leaves one (2 WCU), 625 WCU/s per partition at 10,000 orders/s.
pub const OPEN_SHARDS: u32 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentState {
    /// A confirm is recorded as intended and may be under way (its lease says until when).
    Pending,
    /// A confirm got no definite answer, or its process died: ask Toss before anything else.
    Unknown,
    /// A virtual account was issued; the order is paid when the customer deposits.
    AwaitingDeposit,
    /// Toss holds the payment and the order is paid by it.
    Done,
    /// Toss did not take this payment. Evidence that it did (a DONE) still settles it.
    Failed,
    /// Toss holds money for an order that cannot take it any more: it is being given back.
    Voiding,
    /// Given back in full; the order was never paid by it.
    Voided,
    /// Paid, then refunded in full.
    Canceled,
}

impl PaymentState {
    /// Whether the reconciler must still settle it.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Unknown | Self::AwaitingDeposit | Self::Voiding
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Unknown => "UNKNOWN",
            Self::AwaitingDeposit => "AWAITING_DEPOSIT",
            Self::Done => "DONE",
            Self::Failed => "FAILED",
            Self::Voiding => "VOIDING",
            Self::Voided => "VOIDED",
            Self::Canceled => "CANCELED",
        }
    }
}

/// `PAYMENT#<orderId>` / `PAYMENT`: the order's payment, one Toss payment at a time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub order_id: String,
    pub state: PaymentState,
    /// Grows by one with every write; every write is conditional on the version it read, so a late
    /// writer can never overrule a later decision.
    #[serde(default)]
    pub version: u64,
    pub amount: i64,
    /// Binary, as all sealed values here: base64's third would put a paid record past a kilobyte,
    /// which its transaction bills twice (docs/COST.md).
    #[serde(with = "crate::crypto::binary")]
    pub payment_key: Sealed,
    /// sha256 of the payment key: compares a presented key without opening the sealed one.
    pub payment_key_digest: String,
    pub idempotency_key: String,
    /// Epoch seconds until which a confirm holds the payment (PENDING only).
    pub locked_until: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    /// What Toss last said is left of the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_amount: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::crypto::binary::option"
    )]
    pub secret: Option<Sealed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    /// The total of refunds made or reserved (never more than `amount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_amount: Option<i64>,
    /// Refunds reserved so far, refused ones included: an owner's partial refunds stop at
    /// [`refunds::MAX_PARTIAL_REFUNDS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_count: Option<u32>,
    /// Toss's record of cancellations.
    #[serde(default)]
    pub cancels: Vec<toss::Cancel>,
    pub updated_at: String,
    /// Open payments, sharded (sparse): `PAYOPEN#<n>` / `<updatedAt>#<orderId>`.
    #[serde(rename = "GSI3PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(rename = "GSI3SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
}

impl PaymentRecord {
    /// What is left to refund.
    pub fn refundable(&self) -> i64 {
        self.amount - self.refunded_amount.unwrap_or(0)
    }

    /// Whether a confirm holds the payment at `now` (epoch seconds).
    pub fn leased_at(&self, now: i64) -> bool {
        self.state == PaymentState::Pending && self.locked_until > now
    }

    pub fn is_key(&self, payment_key: &str) -> bool {
        self.payment_key_digest == digest(payment_key)
    }

    /// Sets the open-payment index keys from the state, and the time of this change.
    fn stamped(mut self, now: jiff::Timestamp) -> Self {
        self.updated_at = crate::storage::stamp(now);
        if self.state.is_open() {
            self.gsi3pk = Some(format!("PAYOPEN#{}", shard(&self.order_id)));
            self.gsi3sk = Some(format!("{}#{}", self.updated_at, self.order_id));
        } else {
            self.gsi3pk = None;
            self.gsi3sk = None;
        }
        self
    }
}

pub(crate) fn payment_pk(order_id: &str) -> String {
    format!("PAYMENT#{order_id}")
}

fn shard(order_id: &str) -> u32 {
    crate::storage::shard(order_id, OPEN_SHARDS)
}

pub(crate) fn open_partitions() -> impl Iterator<Item = String> {
    (0..OPEN_SHARDS).map(|shard| format!("PAYOPEN#{shard}"))
}

pub(crate) fn digest(value: &str) -> String {
    format!("{:x}", Sha256::digest(value.as_bytes()))
}

/// One key per (order, Toss payment): every retry of a confirm is the same request to Toss.
fn confirm_idempotency_key(order_id: &str, payment_key: &str) -> String {
    format!(
        "os-{}",
        &digest(&format!("{order_id}\n{payment_key}"))[..40]
    )
}

/// Whether `value` may be an id we send to Toss in a path (an order id or a payment key).
pub fn is_toss_id(value: &str) -> bool {
    (1..=200).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message.into())
}

pub(crate) fn toss(app: &App) -> Result<&TossClient, ApiError> {
    app.toss()?.ok_or_else(|| {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "PAYMENTS_UNAVAILABLE",
            "payments are not configured",
        )
    })
}

/// How long a confirm holds a payment: one Toss call at its slowest, the time to record its answer,
/// and a second of slack. The work under the lease is bounded by it ([`crate::deadline`]), so a
/// lease never ends while its holder still works; a holder that dies leaves it to expire.
pub fn lease_duration(client: &TossClient) -> Duration {
    client.worst_case() + toss::RECORD_RESERVE + Duration::from_secs(1)
}

pub async fn find(db: &Db, order_id: &str) -> Result<Option<PaymentRecord>, StorageError> {
    db.get(payment_pk(order_id), PAYMENT_SK).await
}

/// The order and its payment record, both strongly consistent, in one round trip.
pub(crate) async fn find_with_order(
    db: &Db,
    order_id: &str,
) -> Result<(Option<OrderRecord>, Option<PaymentRecord>), StorageError> {
    db.get_two(
        (orders::order_pk(order_id), orders::ORDER_SK.to_owned()),
        (payment_pk(order_id), PAYMENT_SK.to_owned()),
    )
    .await
}

fn key_location<'a>(db: &'a Db, pk: &'a str, field: &'static str) -> Location<'a> {
    Location {
        table: db.table(),
        pk,
        sk: PAYMENT_SK,
        field,
    }
}

/// The payment key, opened.
pub(crate) async fn open_key(app: &App, record: &PaymentRecord) -> Result<String, ApiError> {
    let at = key_location(&app.db, &record.pk, "paymentKey");
    Ok(app.crypto().open_str(&at, &record.payment_key).await?)
}

/// A new record for a confirm of `payment_key`, holding the payment until `locked_until`; its
/// version follows `previous` (the record it replaces, if any).
async fn intent(
    app: &App,
    order_id: &str,
    amount: i64,
    payment_key: &str,
    locked_until: i64,
    previous: Option<&PaymentRecord>,
) -> Result<PaymentRecord, ApiError> {
    let pk = payment_pk(order_id);
    let sealed = app
        .crypto()
        .seal_str(&key_location(&app.db, &pk, "paymentKey"), payment_key)
        .await?;
    let record = PaymentRecord {
        pk: pk.clone(),
        sk: PAYMENT_SK.to_owned(),
        order_id: order_id.to_owned(),
        state: PaymentState::Pending,
        version: previous.map_or(1, |p| p.version + 1),
        amount,
        payment_key: sealed,
        payment_key_digest: digest(payment_key),
        idempotency_key: confirm_idempotency_key(order_id, payment_key),
        locked_until,
        method: None,
        approved_at: None,
        balance_amount: None,
        secret: None,
        failure_code: None,
        refunded_amount: None,
        refund_count: None,
        cancels: Vec::new(),
        updated_at: String::new(),
        gsi3pk: None,
        gsi3sk: None,
    };
    Ok(record.stamped(jiff::Timestamp::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_go_to_toss() {
        assert!(is_toss_id("tpk_5zJ4xY7m0kODnyRpQWGrN2xq-GlNvL"));
        assert!(is_toss_id("ord_0123456789abcdef"));
        for hostile in [
            "",
            "..",
            "../confirm",
            "a/b",
            "a.b",
            "a b",
            "키",
            "a?b",
            "a%2e",
        ] {
            assert!(!is_toss_id(hostile), "{hostile:?}");
        }
        assert!(!is_toss_id(&"k".repeat(201)));
    }

    #[test]
    fn open_payments_are_indexed_and_settled_ones_are_not() {
        let open = [
            PaymentState::Pending,
            PaymentState::Unknown,
            PaymentState::AwaitingDeposit,
            PaymentState::Voiding,
        ];
        for state in [
            PaymentState::Pending,
            PaymentState::Unknown,
            PaymentState::AwaitingDeposit,
            PaymentState::Done,
            PaymentState::Failed,
            PaymentState::Voiding,
            PaymentState::Voided,
            PaymentState::Canceled,
        ] {
            assert_eq!(state.is_open(), open.contains(&state), "{state:?}");
            let name = serde_json::to_value(state).unwrap();
            assert_eq!(name, state.name(), "the stored name is the documented one");
        }
    }
}
