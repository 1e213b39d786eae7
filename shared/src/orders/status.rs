//! The order lifecycle: which moves exist, and who may make each.
//!
//! ```text
//! PENDING_PAYMENT ─pay─▶ PAID ─accept─▶ ACCEPTED ─▶ PREPARING ─▶ READY ─▶ COMPLETED
//!       │                 ├─reject─▶ REJECTED
//!       ├─────────────────┴─cancel (customer, before acceptance)─▶ CANCELED
//!       └─30 minutes unpaid─▶ EXPIRED
//! ```

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    PendingPayment,
    Paid,
    Accepted,
    Preparing,
    Ready,
    Completed,
    Rejected,
    Canceled,
    Expired,
}

/// Who is moving an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Actor {
    Customer,
    Store,
    /// Payments and the expiry sweep.
    System,
}

/// Which listing partition an order is in: the store board shows `Active` orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Pending,
    Active,
    Closed,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Pending => "PENDING",
            Bucket::Active => "ACTIVE",
            Bucket::Closed => "CLOSED",
        }
    }
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::PendingPayment,
        Status::Paid,
        Status::Accepted,
        Status::Preparing,
        Status::Ready,
        Status::Completed,
        Status::Rejected,
        Status::Canceled,
        Status::Expired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::PendingPayment => "PENDING_PAYMENT",
            Status::Paid => "PAID",
            Status::Accepted => "ACCEPTED",
            Status::Preparing => "PREPARING",
            Status::Ready => "READY",
            Status::Completed => "COMPLETED",
            Status::Rejected => "REJECTED",
            Status::Canceled => "CANCELED",
            Status::Expired => "EXPIRED",
        }
    }

    pub fn bucket(self) -> Bucket {
        match self {
            Status::PendingPayment => Bucket::Pending,
            Status::Paid | Status::Accepted | Status::Preparing | Status::Ready => Bucket::Active,
            Status::Completed | Status::Rejected | Status::Canceled | Status::Expired => {
                Bucket::Closed
            }
        }
    }

    /// Paid, and neither rejected nor cancelled since: the statuses in which what Toss holds for the
    /// order is the store's, and an owner may refund part of it.
    pub const PAID_AND_STANDING: [Status; 5] = [
        Status::Paid,
        Status::Accepted,
        Status::Preparing,
        Status::Ready,
        Status::Completed,
    ];

    /// Whether `self` is one of [`Status::PAID_AND_STANDING`].
    pub fn is_paid_and_standing(self) -> bool {
        Self::PAID_AND_STANDING.contains(&self)
    }

    /// Whether `actor` may move an order from `self` to `to`.
    pub fn may_move(self, to: Status, actor: Actor) -> bool {
        use Status::*;
        matches!(
            (self, to, actor),
            (PendingPayment, Paid, Actor::System)
                | (PendingPayment, Expired, Actor::System)
                | (PendingPayment | Paid, Canceled, Actor::Customer)
                | (Paid, Accepted, Actor::Store)
                | (Paid, Rejected, Actor::Store)
                | (Accepted, Preparing, Actor::Store)
                | (Preparing, Ready, Actor::Store)
                | (Ready, Completed, Actor::Store)
        )
    }

    /// Where `actor` may move an order from `self`, in the lifecycle's order.
    pub fn moves_for(self, actor: Actor) -> impl Iterator<Item = Status> {
        Self::ALL
            .into_iter()
            .filter(move |&to| self.may_move(to, actor))
    }
}

impl Actor {
    /// Who the actor is, in a sentence.
    pub fn described(self) -> &'static str {
        match self {
            Actor::Customer => "a customer",
            Actor::Store => "a store",
            Actor::System => "the system",
        }
    }
}

/// Why `actor` may not move an order from `from` to `to`, and where they may move it instead: a
/// client learns the lifecycle from the refusal.
pub fn refused_move(from: Status, to: Status, actor: Actor) -> String {
    let mut said = format!(
        "{} cannot move an order from {} to {}",
        actor.described(),
        from.name(),
        to.name()
    );
    let instead: Vec<&str> = from.moves_for(actor).map(Status::name).collect();
    match instead.as_slice() {
        [] => said.push_str(&format!(
            "; no move from {} is {}'s",
            from.name(),
            actor.described()
        )),
        [one] => said.push_str(&format!("; from {} it may move it to {one}", from.name())),
        [first @ .., last] => said.push_str(&format!(
            "; from {} it may move it to {} or {last}",
            from.name(),
            first.join(", ")
        )),
    }
    said
}

/// Why a store rejects an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    OutOfStock,
    TooBusy,
    StoreClosing,
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn only_the_drawn_moves_exist() {
        let all = Status::ALL;
        let actors = [Actor::Customer, Actor::Store, Actor::System];
        let mut allowed = 0;
        for from in all {
            for to in all {
                for actor in actors {
                    allowed += usize::from(from.may_move(to, actor));
                }
            }
        }
        assert_eq!(allowed, 9);
        assert!(Paid.may_move(Accepted, Actor::Store));
        assert!(
            !Paid.may_move(Accepted, Actor::Customer),
            "customers do not accept orders"
        );
        assert!(
            !Accepted.may_move(Canceled, Actor::Customer),
            "no cancelling after acceptance"
        );
        assert!(
            !PendingPayment.may_move(Paid, Actor::Store),
            "only payments mark orders paid"
        );
        assert!(!Completed.may_move(Ready, Actor::Store), "no going back");
    }

    #[test]
    fn a_refused_move_says_where_the_order_may_go() {
        assert_eq!(
            refused_move(Accepted, Ready, Actor::Store),
            "a store cannot move an order from ACCEPTED to READY; from ACCEPTED it may move it to PREPARING"
        );
        assert_eq!(
            refused_move(Paid, Completed, Actor::Store),
            "a store cannot move an order from PAID to COMPLETED; from PAID it may move it to ACCEPTED or REJECTED"
        );
        assert_eq!(
            refused_move(Accepted, Canceled, Actor::Customer),
            "a customer cannot move an order from ACCEPTED to CANCELED; no move from ACCEPTED is a customer's"
        );
    }

    #[test]
    fn the_board_shows_paid_to_ready() {
        assert_eq!(PendingPayment.bucket(), Bucket::Pending);
        for s in [Paid, Accepted, Preparing, Ready] {
            assert_eq!(s.bucket(), Bucket::Active);
        }
        for s in [Completed, Rejected, Canceled, Expired] {
            assert_eq!(s.bucket(), Bucket::Closed);
        }
    }
}
