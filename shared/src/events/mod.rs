//! Domain events, and the table's stream they leave through.
//!
//! No API function sends anything anywhere: a change and its event are one write, and the table's
//! stream carries it to its two readers ([`stream`]): the notifier (`notifications-push`: pushes to
//! store boards and customers, [`crate::realtime`]) and the recorder (`events-record`: the audit
//! trail and the sales reports, [`crate::recording`]). A crash between the write and either loses
//! nothing: the stream keeps the record until both have taken it.
//!
//! - An order's move is its own event: the order item carries who moved it and from which request
//!   ([`crate::orders::LastMove`]), and [`Event::of_order`] reads the event off the stream record of
//!   the move — no second item, no transaction.
//! - A sign-in is its session's creation: the session item carries the request's stamp
//!   ([`SignIn`]), and [`Event::of_session`] reads the event off its stream record.
//! - A session's end (a sign-out, or a reused refresh token) is the write that revokes it: it
//!   carries the request's stamp ([`SessionEnd`]), and [`Event::of_session_end`] reads the event
//!   off that change's stream record.
//! - Other events (sign-ups, failed sign-ins, refunds) are outbox items (`EVENT#<eventId>` /
//!   `EVENT`) written with the change they describe.

pub mod stream;

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::orders::status::{Actor, RejectReason, Status};
use crate::orders::{Device, OrderRecord};
use crate::storage::Db;

/// Bumped when a field changes meaning or goes away; consumers read the versions they know.
pub const SCHEMA_VERSION: u32 = 1;

/// Outbox items outlive the stream's 24 hours by a day, then TTL removes them.
const OUTBOX_RETENTION_SECONDS: i64 = 2 * 24 * 3600;

pub const ENTITY: &str = "EVENT";

/// The sort key of a session's item (`auth::sessions`, which imports this module: its test holds
/// the two equal). A session is written once, by a sign-in, so its creation is that sign-in.
pub const SESSION_SK: &str = "SESSION";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "order.placed")]
    OrderPlaced,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.accepted")]
    OrderAccepted,
    #[serde(rename = "order.preparing")]
    OrderPreparing,
    #[serde(rename = "order.ready")]
    OrderReady,
    #[serde(rename = "order.completed")]
    OrderCompleted,
    #[serde(rename = "order.rejected")]
    OrderRejected,
    #[serde(rename = "order.canceled")]
    OrderCanceled,
    #[serde(rename = "order.expired")]
    OrderExpired,
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    #[serde(rename = "user.signed_up")]
    UserSignedUp,
    #[serde(rename = "user.signed_in")]
    UserSignedIn,
    #[serde(rename = "user.sign_in_failed")]
    UserSignInFailed,
    #[serde(rename = "user.sign_in_locked")]
    UserSignInLocked,
    #[serde(rename = "user.refresh_reused")]
    UserRefreshReused,
    #[serde(rename = "user.signed_out")]
    UserSignedOut,
    /// The account's password was changed by its holder (`POST /v1/me/password`).
    #[serde(rename = "user.password_changed")]
    UserPasswordChanged,
    /// The account was closed by its holder (`DELETE /v1/me`).
    #[serde(rename = "user.deleted")]
    UserDeleted,
}

impl EventType {
    /// The event a move to `status` is.
    pub fn of_status(status: Status) -> EventType {
        match status {
            Status::PendingPayment => EventType::OrderPlaced,
            Status::Paid => EventType::OrderPaid,
            Status::Accepted => EventType::OrderAccepted,
            Status::Preparing => EventType::OrderPreparing,
            Status::Ready => EventType::OrderReady,
            Status::Completed => EventType::OrderCompleted,
            Status::Rejected => EventType::OrderRejected,
            Status::Canceled => EventType::OrderCanceled,
            Status::Expired => EventType::OrderExpired,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EventType::OrderPlaced => "order.placed",
            EventType::OrderPaid => "order.paid",
            EventType::OrderAccepted => "order.accepted",
            EventType::OrderPreparing => "order.preparing",
            EventType::OrderReady => "order.ready",
            EventType::OrderCompleted => "order.completed",
            EventType::OrderRejected => "order.rejected",
            EventType::OrderCanceled => "order.canceled",
            EventType::OrderExpired => "order.expired",
            EventType::OrderRefunded => "order.refunded",
            EventType::UserSignedUp => "user.signed_up",
            EventType::UserSignedIn => "user.signed_in",
            EventType::UserSignInFailed => "user.sign_in_failed",
            EventType::UserSignInLocked => "user.sign_in_locked",
            EventType::UserRefreshReused => "user.refresh_reused",
            EventType::UserSignedOut => "user.signed_out",
            EventType::UserPasswordChanged => "user.password_changed",
            EventType::UserDeleted => "user.deleted",
        }
    }

    pub fn is_order(self) -> bool {
        self.name().starts_with("order.")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActorKind {
    Customer,
    Store,
    System,
    /// A person acting on their own account (sign-in, sign-out).
    User,
    /// Someone not signed in (a failed sign-in for an unknown address).
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventActor {
    pub kind: ActorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// One line of an order, as reports need it (no options' detail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineFact {
    pub item_id: String,
    pub name: String,
    pub quantity: u32,
    pub amount: i64,
}

/// What an order event says of its order. Never personal data: no phone, address or note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFacts {
    pub order_id: String,
    pub store_id: String,
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Status>,
    pub status: Status,
    pub order_version: u64,
    pub total: i64,
    pub order_name: String,
    pub created_at: String,
    pub lines: Vec<LineFact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// `order.refunded`: this refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundFacts>,
}

impl OrderFacts {
    fn of(order: &OrderRecord, from: Option<Status>) -> Self {
        Self {
            order_id: order.order_id().to_owned(),
            store_id: order.store_id.clone(),
            customer_id: order.customer_id().to_owned(),
            from,
            status: order.status,
            order_version: order.version,
            total: order.total,
            order_name: order.order_name(),
            created_at: order.created_at().to_owned(),
            lines: order
                .lines
                .iter()
                .map(|l| LineFact {
                    item_id: l.item_id.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    amount: l.line_total,
                })
                .collect(),
            eta_at: order.eta_at.clone(),
            reason: order.reject_reason,
            refund: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundFacts {
    pub refund_id: String,
    pub amount: i64,
}

/// What a sign-in event says: whom it concerns (`USER#<id>`, or `EMAIL#<blind index>` for an address
/// with no account) and where the request came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserFacts {
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub version: u32,
    pub at: String,
    pub actor: EventActor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserFacts>,
    /// The board that made an order's move, when it named itself: the move's pushes skip its
    /// connections (its answer told it). Never pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
}

/// What a session's item keeps of the sign-in that made it, so that its stream record tells the
/// sign-in's event ([`Event::of_session`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
}

impl SignIn {
    pub fn of(meta: &RequestMeta) -> Self {
        let (request_id, _) = crate::telemetry::current_ids();
        Self {
            request_id: nonempty(request_id).or_else(|| nonempty(meta.request_id.clone())),
            source_ip: meta.source_ip.clone(),
        }
    }
}

/// How a session ended before its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Ending {
    /// Its user signed out.
    SignedOut,
    /// A spent refresh token of it came back: someone else may hold its tokens.
    RefreshReused,
}

/// What a session's item keeps of the request that ended it, written with its `revokedAt`, so
/// that the stream record of that change tells the ending's event ([`Event::of_session_end`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEnd {
    pub how: Ending,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
}

impl SessionEnd {
    pub fn of(how: Ending, meta: &RequestMeta) -> Self {
        let SignIn {
            request_id,
            source_ip,
        } = SignIn::of(meta);
        Self {
            how,
            request_id,
            source_ip,
        }
    }
}

/// The fields of a session's item that its events need.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionImage {
    pub session_id: String,
    pub user_id: String,
    pub created_at: String,
    /// Absent from sessions made before sign-ins were read off them (their event was an outbox
    /// item): no event.
    #[serde(default)]
    pub signed_in: Option<SignIn>,
    #[serde(default)]
    pub revoked_at: Option<String>,
    /// Absent from sessions ended before endings were read off them (their event was an outbox
    /// item), and from those never ended: no event.
    #[serde(default)]
    pub ended: Option<SessionEnd>,
}

fn nonempty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

impl Event {
    fn new(event_id: String, kind: EventType, actor: EventActor) -> Self {
        let (request_id, trace_id) = crate::telemetry::current_ids();
        Self {
            event_id,
            kind,
            version: SCHEMA_VERSION,
            at: jiff::Timestamp::now().to_string(),
            actor,
            request_id: nonempty(request_id),
            trace_id: nonempty(trace_id),
            order: None,
            user: None,
            device: None,
        }
    }

    /// The event an order's stream record tells of: its latest move, when the record is that move's
    /// (the order's stamp names its current version; a record of anything else — a re-sealed field,
    /// a refund's bookkeeping — tells of no move). The id is the order's and its version's, so one
    /// move is one event however often the move is retried or its record replayed.
    pub fn of_order(order: &OrderRecord) -> Option<Self> {
        let stamp = order
            .last_move
            .as_ref()
            .filter(|m| m.version == order.version)?;
        let kind = match stamp.by {
            Actor::Customer => ActorKind::Customer,
            Actor::Store => ActorKind::Store,
            Actor::System => ActorKind::System,
        };
        Some(Self {
            event_id: format!("{}.v{}", order.order_id(), order.version),
            kind: EventType::of_status(order.status),
            version: SCHEMA_VERSION,
            at: order.updated_at.clone(),
            actor: EventActor {
                kind,
                id: stamp.by_id.clone(),
            },
            request_id: stamp.request_id.clone(),
            trace_id: None,
            order: Some(OrderFacts::of(order, stamp.from)),
            user: None,
            device: stamp.device.clone(),
        })
    }

    /// The sign-in that made `session`, when the session was stamped with it. The id is the
    /// session's, so one sign-in is one event however often its record is read.
    pub fn of_session(session: &SessionImage) -> Option<Self> {
        let stamp = session.signed_in.as_ref()?;
        Some(Self {
            event_id: format!("{}.signed_in", session.session_id),
            kind: EventType::UserSignedIn,
            version: SCHEMA_VERSION,
            at: session.created_at.clone(),
            actor: EventActor {
                kind: ActorKind::User,
                id: Some(session.user_id.clone()),
            },
            request_id: stamp.request_id.clone(),
            trace_id: None,
            order: None,
            user: Some(UserFacts {
                subject: format!("USER#{}", session.user_id),
                source_ip: stamp.source_ip.clone(),
            }),
            device: None,
        })
    }

    /// The ending of `session` (signed out, or ended by a reused refresh token), when it was
    /// stamped with one. A session ends once, so its id and the ending name the event.
    pub fn of_session_end(session: &SessionImage) -> Option<Self> {
        let end = session.ended.as_ref()?;
        let at = session.revoked_at.clone()?;
        let (kind, suffix, actor) = match end.how {
            Ending::SignedOut => (
                EventType::UserSignedOut,
                "signed_out",
                EventActor {
                    kind: ActorKind::User,
                    id: Some(session.user_id.clone()),
                },
            ),
            // Whoever presented the spent token is not known to be its user.
            Ending::RefreshReused => (
                EventType::UserRefreshReused,
                "refresh_reused",
                EventActor {
                    kind: ActorKind::Anonymous,
                    id: None,
                },
            ),
        };
        Some(Self {
            event_id: format!("{}.{suffix}", session.session_id),
            kind,
            version: SCHEMA_VERSION,
            at,
            actor,
            request_id: end.request_id.clone(),
            trace_id: None,
            order: None,
            user: Some(UserFacts {
                subject: format!("USER#{}", session.user_id),
                source_ip: end.source_ip.clone(),
            }),
            device: None,
        })
    }

    /// Money went back to the customer of `order`. One event per refund, however often its outcome is
    /// recorded.
    pub fn order_refunded(
        order: &OrderRecord,
        refund_id: &str,
        amount: i64,
        requested_by: &str,
    ) -> Self {
        let kind = if requested_by == order.customer_id() {
            ActorKind::Customer
        } else {
            ActorKind::Store
        };
        let mut event = Self::new(
            format!("{}.refund.{refund_id}", order.order_id()),
            EventType::OrderRefunded,
            EventActor {
                kind,
                id: Some(requested_by.to_owned()),
            },
        );
        let mut facts = OrderFacts::of(order, None);
        facts.refund = Some(RefundFacts {
            refund_id: refund_id.to_owned(),
            amount,
        });
        event.order = Some(facts);
        event
    }

    /// A sign-in event about `subject`, by `actor_id` when known.
    pub fn user(
        kind: EventType,
        actor_id: Option<&str>,
        subject: String,
        meta: &RequestMeta,
    ) -> Self {
        let actor = EventActor {
            kind: if actor_id.is_some() {
                ActorKind::User
            } else {
                ActorKind::Anonymous
            },
            id: actor_id.map(String::from),
        };
        let mut event = Self::new(uuid::Uuid::now_v7().to_string(), kind, actor);
        if event.request_id.is_none() && !meta.request_id.is_empty() {
            event.request_id = Some(meta.request_id.clone());
        }
        event.user = Some(UserFacts {
            subject,
            source_ip: meta.source_ip.clone(),
        });
        event
    }
}

/// The outbox item of an event: its JSON, and the type the stream readers' filters match on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub entity: String,
    pub event_type: String,
    pub event_id: String,
    pub body: String,
    pub expires_at: i64,
}

impl OutboxItem {
    pub fn of(event: &Event) -> Result<Self, ApiError> {
        Ok(Self {
            pk: format!("EVENT#{}", event.event_id),
            sk: ENTITY.to_owned(),
            entity: ENTITY.to_owned(),
            event_type: event.kind.name().to_owned(),
            event_id: event.event_id.clone(),
            body: serde_json::to_string(event).map_err(ApiError::internal)?,
            expires_at: jiff::Timestamp::now().as_second() + OUTBOX_RETENTION_SECONDS,
        })
    }
}

/// The action that writes `event` to the outbox, for the transaction of the change it describes.
/// Unconditional: writing the same event again is a modification, which the publisher ignores (it
/// takes new items only), so a retried write never sends an event twice.
pub fn record(db: &Db, event: &Event) -> Result<TransactWriteItem, ApiError> {
    Ok(db.put_action(&OutboxItem::of(event)?, None)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_have_stable_wire_names() {
        for kind in [
            EventType::OrderPaid,
            EventType::OrderRefunded,
            EventType::UserSignInFailed,
        ] {
            let wire = serde_json::to_value(kind).unwrap();
            assert_eq!(wire, kind.name());
            assert_eq!(serde_json::from_value::<EventType>(wire).unwrap(), kind);
        }
        assert!(serde_json::from_str::<EventType>("\"order.teleported\"").is_err());
    }

    #[test]
    fn every_status_has_its_event() {
        assert_eq!(EventType::of_status(Status::Paid), EventType::OrderPaid);
        assert_eq!(
            EventType::of_status(Status::PendingPayment),
            EventType::OrderPlaced
        );
        assert_eq!(
            EventType::of_status(Status::Expired),
            EventType::OrderExpired
        );
    }

    #[test]
    fn sign_in_events_carry_no_address() {
        let meta = RequestMeta {
            request_id: "req-1".into(),
            source_ip: Some("203.0.113.7".into()),
            route: "POST /v1/auth/login".into(),
        };
        let event = Event::user(EventType::UserSignInFailed, None, "EMAIL#abc".into(), &meta);
        assert_eq!(event.actor.kind, ActorKind::Anonymous);
        assert_eq!(event.request_id.as_deref(), Some("req-1"));
        let item = OutboxItem::of(&event).unwrap();
        assert_eq!(item.pk, format!("EVENT#{}", event.event_id));
        assert_eq!(item.event_type, "user.sign_in_failed");
        let back: Event = serde_json::from_str(&item.body).unwrap();
        assert_eq!(back, event);
    }
}
