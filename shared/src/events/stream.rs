//! Reading events off the table's stream, for every consumer of it (the publisher, the audit
//! trail): an order's move is read off the order's own record ([`Event::of_order`]); other events
//! off their outbox items. Records are kept in stream order, each with its sequence number, so a
//! consumer can name the first it could not take and Lambda retries from there.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;

use super::{ENTITY, Event, OutboxItem};
use crate::orders::{ORDER_SK, OrderRecord};
use crate::telemetry::count;

/// An event of a stream record: as consumers read it, and as the queues carry it (an outbox item's
/// JSON as written, so fields a newer writer added travel on).
pub struct Streamed {
    pub sequence_number: String,
    pub event: Event,
    pub body: String,
}

/// The events of a stream batch, in order: the moves of orders and the new outbox items. Other
/// records (sessions, an order's change that is no move, updates and removals of event items) are
/// not events; the templates' filters keep most of them away, and this keeps the rest.
pub fn events_in(batch: StreamEvent) -> Vec<Streamed> {
    batch
        .records
        .into_iter()
        .filter_map(|record| {
            let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
            let text = |name: &str| match record.change.new_image.get(name) {
                Some(serde_dynamo::AttributeValue::S(value)) => Some(value.as_str()),
                _ => None,
            };
            let (event, body) = if text("SK") == Some(ORDER_SK) {
                order_move(
                    &record.event_name,
                    record.change.old_image,
                    record.change.new_image,
                )
            } else if record.event_name == "INSERT" && text("entity") == Some(ENTITY) {
                outbox_event(record.change.new_image)
            } else {
                None
            }?;
            Some(Streamed {
                sequence_number,
                event,
                body,
            })
        })
        .collect()
}

/// The event of an order's stream record, if the record is a move (placed, or a new version).
fn order_move(
    name: &str,
    old: serde_dynamo::Item,
    new: serde_dynamo::Item,
) -> Option<(Event, String)> {
    let version = |image: &serde_dynamo::Item| match image.get("version") {
        Some(serde_dynamo::AttributeValue::N(v)) => v.parse::<u64>().ok(),
        _ => None,
    };
    let moved = match name {
        "INSERT" => true,
        "MODIFY" => version(&old) < version(&new),
        _ => false,
    };
    if !moved {
        return None;
    }
    let order: OrderRecord = match serde_dynamo::from_item(new) {
        Ok(order) => order,
        Err(err) => {
            // Retrying cannot make it readable; holding the shard for it would stop every later
            // event. Said loudly: the move's event is lost unless it is replayed.
            tracing::error!(error = %err, "unreadable order record; its event skipped");
            count("EventsMalformed", 1.0);
            return None;
        }
    };
    let event = Event::of_order(&order)?;
    let body = serde_json::to_string(&event).ok()?;
    Some((event, body))
}

fn outbox_event(image: serde_dynamo::Item) -> Option<(Event, String)> {
    let item: OutboxItem = match serde_dynamo::from_item(image) {
        Ok(item) => item,
        Err(err) => {
            // As above: retrying cannot make it readable.
            tracing::error!(error = %err, "unreadable event item; skipped");
            count("EventsMalformed", 1.0);
            return None;
        }
    };
    match serde_json::from_str::<Event>(&item.body) {
        Ok(event) => Some((event, item.body)),
        Err(err) => {
            // Retrying cannot make it readable (a type this build does not know, say); holding the
            // shard for it would stop every later event.
            tracing::error!(event_id = %item.event_id, event_type = %item.event_type, error = %err, "unreadable event; skipped");
            count("EventsMalformed", 1.0);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;
    use crate::orders::LastMove;
    use crate::orders::status::{Actor, Status};

    fn record(name: &str, seq: &str, image: serde_json::Value) -> serde_json::Value {
        changed(name, seq, serde_json::Value::Null, image)
    }

    fn changed(
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

    fn event_image(id: &str, kind: &str) -> serde_json::Value {
        serde_json::json!({
            "PK": {"S": format!("EVENT#{id}")}, "SK": {"S": "EVENT"}, "entity": {"S": "EVENT"},
            "eventType": {"S": kind}, "eventId": {"S": id}, "body": {"S": body(id, kind)}, "expiresAt": {"N": "1"}
        })
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
        });
        let item: serde_dynamo::Item = serde_dynamo::to_item(&order).unwrap();
        serde_json::to_value(item).unwrap()
    }

    #[test]
    fn moves_of_orders_and_new_event_items_are_sent() {
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
            ]
        );
        let accepted: Event = serde_json::from_str(&pending[1].body).unwrap();
        assert_eq!(accepted, pending[1].event);
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
