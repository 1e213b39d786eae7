//! Reading events off the table's stream, for both its readers (the notifier, the audit
//! trail): an order's move is read off the order's own record ([`Event::of_order`]), a sign-in off
//! its new session's ([`Event::of_session`]); other events off their outbox items. Records are kept in stream order, each with its sequence number, so a
//! consumer can name the first it could not take and Lambda retries from there.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;

use super::{ENTITY, Event, OutboxItem, SESSION_SK};
use crate::orders::ORDER_SK;
use crate::telemetry::count;

/// An event of a stream record, with the record's sequence number.
pub struct Streamed {
    pub sequence_number: String,
    pub event: Event,
}

/// The events of a stream batch, in order: the moves of orders, new sessions and new outbox items.
/// Other records (an order's change that is no move, a session's revocation, updates and removals
/// of event items) are not events; the templates' filters keep most of them away, and this keeps the rest.
pub fn events_in(batch: StreamEvent) -> Vec<Streamed> {
    batch
        .records
        .into_iter()
        .filter_map(|record| {
            let change = record.change;
            let fresh = if text(&change.new_image, "SK") == Some(ORDER_SK) {
                // Placed, or a new version (a re-sealed field is no move).
                match record.event_name.as_str() {
                    "INSERT" => true,
                    "MODIFY" => version(&change.old_image) < version(&change.new_image),
                    _ => false,
                }
            } else {
                record.event_name == "INSERT"
            };
            if !fresh {
                return None;
            }
            let event = told_by(change.new_image)?;
            Some(Streamed {
                sequence_number: change.sequence_number.unwrap_or_default(),
                event,
            })
        })
        .collect()
}

/// The event an item tells of: an outbox item's event, an
/// order's latest move ([`Event::of_order`]) or a session's sign-in ([`Event::of_session`]). `None` for any other item, and for one that cannot be
/// read — logged and counted, as retrying cannot make it readable and holding the shard for it would
/// stop every later event: its event is lost unless it is replayed once fixed. For the stream's
/// images and for items read from the table alike (the replay).
pub fn told_by(item: impl Into<serde_dynamo::Item>) -> Option<Event> {
    let item = item.into();
    if text(&item, "SK") == Some(ORDER_SK) {
        derived(item, "order record", Event::of_order)
    } else if text(&item, "SK") == Some(SESSION_SK) {
        derived(item, "session record", Event::of_session)
    } else if text(&item, "entity") == Some(ENTITY) {
        let outbox: OutboxItem = serde_dynamo::from_item(item)
            .inspect_err(|err| unreadable("event item", err))
            .ok()?;
        // A type this build does not know is unreadable too.
        serde_json::from_str(&outbox.body)
            .inspect_err(|err| unreadable("event", err))
            .ok()
    } else {
        None
    }
}

/// The event `tell` reads off an item that is a `T` (an order, a session).
fn derived<T: serde::de::DeserializeOwned>(
    item: serde_dynamo::Item,
    what: &str,
    tell: impl FnOnce(&T) -> Option<Event>,
) -> Option<Event> {
    let record: T = serde_dynamo::from_item(item)
        .inspect_err(|err| unreadable(what, err))
        .ok()?;
    tell(&record)
}

fn unreadable(what: &str, err: &dyn std::fmt::Display) {
    tracing::error!(error = %err, "unreadable {what}; its event skipped");
    count("EventsMalformed", 1.0);
}

fn text<'a>(item: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(serde_dynamo::AttributeValue::S(value)) => Some(value.as_str()),
        _ => None,
    }
}

fn version(image: &serde_dynamo::Item) -> Option<u64> {
    match image.get("version") {
        Some(serde_dynamo::AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// Stream records for tests, as Lambda delivers them.
#[cfg(test)]
pub(crate) mod fixtures {
    /// A record of `image` (`INSERT`, `MODIFY`, `REMOVE`) with no old image.
    pub fn record(name: &str, seq: &str, image: serde_json::Value) -> serde_json::Value {
        changed(name, seq, serde_json::Value::Null, image)
    }

    /// A record of a change from `old` (none when null) to `new`.
    pub fn changed(
        name: &str,
        seq: &str,
        old: serde_json::Value,
        new: serde_json::Value,
    ) -> serde_json::Value {
        let mut change = serde_json::json!({
            "SequenceNumber": seq, "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES",
            "ApproximateCreationDateTime": 1_700_000_000.0,
            "Keys": {"PK": new["PK"].clone(), "SK": new["SK"].clone()}, "NewImage": new
        });
        if !old.is_null() {
            change["OldImage"] = old;
        }
        serde_json::json!({
            "eventID": seq, "eventName": name, "eventSource": "aws:dynamodb",
            "awsRegion": "ap-northeast-2", "dynamodb": change
        })
    }

    /// An event's JSON as an outbox item holds it (an unknown type makes it unreadable).
    fn body(id: &str, kind: &str) -> String {
        serde_json::json!({"eventId": id, "type": kind, "version": 1, "at": "2026-12-03T10:00:00Z",
            "actor": {"kind": "USER", "id": "u1"}})
        .to_string()
    }

    /// A new outbox item of event `id`, of type `kind`, about order `order_id`.
    pub fn order_event_image(id: &str, kind: &str, order_id: &str) -> serde_json::Value {
        let mut body: serde_json::Value = serde_json::from_str(&body(id, kind)).unwrap();
        body["order"] = serde_json::json!({"orderId": order_id, "storeId": "s1",
            "customerId": "u1", "status": "PAID", "orderVersion": 2, "total": 4500,
            "orderName": "Latte", "createdAt": "2026-12-03T10:00:00Z", "lines": []});
        let mut image = event_image(id, kind);
        image["body"] = serde_json::json!({"S": body.to_string()});
        image
    }

    /// A new outbox item of event `id`, of type `kind`.
    pub fn event_image(id: &str, kind: &str) -> serde_json::Value {
        serde_json::json!({
            "PK": {"S": format!("EVENT#{id}")}, "SK": {"S": "EVENT"}, "entity": {"S": "EVENT"},
            "eventType": {"S": kind}, "eventId": {"S": id}, "body": {"S": body(id, kind)}, "expiresAt": {"N": "1"}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{changed, event_image, record};
    use super::*;
    use crate::events::EventType;
    use crate::orders::status::{Actor, Status};
    use crate::orders::{LastMove, OrderRecord};

    /// A session's item, stamped with its sign-in unless made before sign-ins were kept.
    fn session_image(id: &str, stamped: bool) -> serde_json::Value {
        let mut image = serde_json::json!({
            "PK": {"S": format!("SESSION#{id}")}, "SK": {"S": "SESSION"}, "sessionId": {"S": id},
            "userId": {"S": "u1"}, "createdAt": {"S": "2026-12-03T10:01:00Z"}, "expiresAt": {"N": "1"}
        });
        if stamped {
            image["signedIn"] = serde_json::json!({"M": {"requestId": {"S": "req-2"},
                "sourceIp": {"S": "203.0.113.7"}}});
        }
        image
    }

    /// The order item's image at `version` in `status`, stamped by the move that made `stamped`.
    fn order_image(status: Status, version: u64, stamped: u64) -> serde_json::Value {
        let mut order = OrderRecord::example(status);
        order.version = version;
        order.last_move = Some(LastMove {
            version: stamped,
            from: Some(Status::Paid),
            by: Actor::Store,
            by_id: Some("u1".into()),
            request_id: Some("req-1".into()),
            device: None,
        });
        let item: serde_dynamo::Item = serde_dynamo::to_item(&order).unwrap();
        serde_json::to_value(item).unwrap()
    }

    #[test]
    fn moves_of_orders_new_sessions_and_new_event_items_are_sent() {
        let accepted = order_image(Status::Accepted, 3, 3);
        let paid = order_image(Status::Paid, 2, 2);
        let batch = serde_json::json!({"Records": [
            record("INSERT", "1", order_image(Status::PendingPayment, 1, 1)),
            changed("MODIFY", "2", paid.clone(), accepted.clone()),
            // The same version re-sealed: no move.
            changed("MODIFY", "3", accepted.clone(), accepted.clone()),
            // Moved by a writer that did not stamp it: its stamp is an older version's.
            changed("MODIFY", "4", accepted, order_image(Status::Preparing, 4, 3)),
            record("REMOVE", "5", paid),
            record("INSERT", "6", event_image("e1", "order.refunded")),
            record("MODIFY", "7", event_image("e1", "order.refunded")),
            record("INSERT", "8", event_image("e2", "order.teleported")),
            record("INSERT", "9", event_image("e3", "user.signed_in")),
            record("INSERT", "10", serde_json::json!({"PK": {"S": "EVENT#e4"}, "SK": {"S": "EVENT"},
                "entity": {"S": "EVENT"}, "eventType": {"N": "7"}})),
            record("INSERT", "11", serde_json::json!({"PK": {"S": "ORDER#x"}, "SK": {"S": "ORDER"}})),
            record("INSERT", "12", session_image("s1", true)),
            // Revoked (signed out): no sign-in.
            changed("MODIFY", "13", session_image("s1", true), session_image("s1", true)),
            // Made before sessions were stamped: its sign-in was an outbox item.
            record("INSERT", "14", session_image("s0", false)),
            record("INSERT", "15", serde_json::json!({"PK": {"S": "SESSION#s2"}, "SK": {"S": "SESSION"}})),
        ]});
        let event: StreamEvent = serde_json::from_value(batch).unwrap();
        let pending = events_in(event);
        let seen: Vec<(&str, EventType, &str)> = pending
            .iter()
            .map(|p| {
                (
                    p.sequence_number.as_str(),
                    p.event.kind,
                    p.event.event_id.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("1", EventType::OrderPlaced, "o1.v1"),
                ("2", EventType::OrderAccepted, "o1.v3"),
                ("6", EventType::OrderRefunded, "e1"),
                ("9", EventType::UserSignedIn, "e3"),
                ("12", EventType::UserSignedIn, "s1.signed_in"),
            ]
        );
        let signed_in = pending[4].event.clone();
        assert_eq!(signed_in.at, "2026-12-03T10:01:00Z");
        assert_eq!(signed_in.actor.id.as_deref(), Some("u1"));
        assert_eq!(signed_in.request_id.as_deref(), Some("req-2"));
        let user = signed_in.user.unwrap();
        assert_eq!(user.subject, "USER#u1");
        assert_eq!(user.source_ip.as_deref(), Some("203.0.113.7"));
        let accepted = pending[1].event.clone();
        assert_eq!(accepted.at, "2026-12-03T10:05:00Z");
        assert_eq!(accepted.actor.kind, super::super::ActorKind::Store);
        assert_eq!(accepted.actor.id.as_deref(), Some("u1"));
        assert_eq!(accepted.request_id.as_deref(), Some("req-1"));
        let facts = accepted.order.unwrap();
        assert_eq!(
            (facts.from, facts.status),
            (Some(Status::Paid), Status::Accepted)
        );
        assert_eq!(facts.order_version, 3);
    }
}
