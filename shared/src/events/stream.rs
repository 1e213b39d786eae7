//! Reading events off the table's stream, for both its readers (the notifier, the audit
//! trail): an order's move is read off the order's own record ([`Event::of_order`]), a sign-in off
//! its new session's ([`Event::of_session`]), a session's end off the change that revoked it
//! ([`Event::of_session_end`]); other events off their outbox items. Records are kept in stream order, each with its sequence number, so a
//! consumer can name the first it could not take and Lambda retries from there.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;

use super::{ENTITY, Event, OutboxItem, SESSION_SK, SessionImage};
use crate::orders::ORDER_SK;
use crate::telemetry::count;

/// An event of a stream record, with the record's sequence number.
pub struct Streamed {
    pub sequence_number: String,
    pub event: Event,
}

/// The events of a stream batch, in order: the moves of orders, new sessions, ended sessions and
/// new outbox items. Other records (an order's change that is no move, a session's refresh,
/// updates and removals of event items) are not events; the templates' filters keep most of them
/// away, and this keeps the rest.
pub fn events_in(batch: StreamEvent) -> Vec<Streamed> {
    batch
        .records
        .into_iter()
        .filter_map(|record| {
            let change = record.change;
            let name = record.event_name.as_str();
            let event = match text(&change.new_image, "SK") {
                // Placed, or a new version (a re-sealed field is no move).
                Some(ORDER_SK)
                    if name == "INSERT"
                        || (name == "MODIFY"
                            && version(&change.old_image) < version(&change.new_image)) =>
                {
                    told_by(change.new_image)
                }
                Some(SESSION_SK) if name == "INSERT" => told_by(change.new_image),
                // Its end: the one change that revokes it.
                Some(SESSION_SK)
                    if name == "MODIFY"
                        && !change.old_image.contains_key("revokedAt")
                        && change.new_image.contains_key("revokedAt") =>
                {
                    derived(change.new_image, "session record", Event::of_session_end)
                }
                Some(ORDER_SK | SESSION_SK) => None,
                _ if name == "INSERT" => told_by(change.new_image),
                _ => None,
            }?;
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

/// Every event an item read from the table tells of (the replay): as [`told_by`], and a session's
/// end beside its sign-in.
pub fn all_told_by(item: impl Into<serde_dynamo::Item>) -> Vec<Event> {
    let item = item.into();
    if text(&item, "SK") != Some(SESSION_SK) {
        return told_by(item).into_iter().collect();
    }
    // One reading of the session for both (an unreadable one is logged and counted once).
    derived(item, "session record", |session: &SessionImage| {
        Some([Event::of_session(session), Event::of_session_end(session)])
    })
    .into_iter()
    .flatten()
    .flatten()
    .collect()
}

/// What `tell` reads off an item that is a `T` (an order, a session): its event.
fn derived<T: serde::de::DeserializeOwned, R>(
    item: serde_dynamo::Item,
    what: &str,
    tell: impl FnOnce(&T) -> Option<R>,
) -> Option<R> {
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

    /// A session's item revoked at 10:09, ended as `how` says.
    fn ended_image(id: &str, how: &str) -> serde_json::Value {
        let mut image = session_image(id, true);
        image["revokedAt"] = serde_json::json!({"S": "2026-12-03T10:09:00Z"});
        image["ended"] = serde_json::json!({"M": {"how": {"S": how},
            "requestId": {"S": "req-3"}, "sourceIp": {"S": "203.0.113.9"}}});
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
    fn moves_of_orders_new_and_ended_sessions_and_new_event_items_are_sent() {
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
            // Refreshed: no event.
            changed("MODIFY", "13", session_image("s1", true), session_image("s1", true)),
            // Made before sessions were stamped: its sign-in was an outbox item.
            record("INSERT", "14", session_image("s0", false)),
            record("INSERT", "15", serde_json::json!({"PK": {"S": "SESSION#s2"}, "SK": {"S": "SESSION"}})),
            // Signed out: its end, once; a later change of the ended session is none.
            changed("MODIFY", "16", session_image("s1", true), ended_image("s1", "SIGNED_OUT")),
            changed("MODIFY", "17", ended_image("s1", "SIGNED_OUT"), ended_image("s1", "SIGNED_OUT")),
            changed("MODIFY", "18", session_image("s3", true), ended_image("s3", "REFRESH_REUSED")),
            // Revoked before endings were kept (its event was an outbox item): none.
            changed("MODIFY", "19", session_image("s4", true), {
                let mut old = session_image("s4", true);
                old["revokedAt"] = serde_json::json!({"S": "2026-12-03T10:09:00Z"});
                old
            }),
            record("REMOVE", "20", ended_image("s1", "SIGNED_OUT")),
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
                ("16", EventType::UserSignedOut, "s1.signed_out"),
                ("18", EventType::UserRefreshReused, "s3.refresh_reused"),
            ]
        );
        let signed_out = pending[5].event.clone();
        assert_eq!(signed_out.at, "2026-12-03T10:09:00Z");
        assert_eq!(signed_out.request_id.as_deref(), Some("req-3"));
        assert_eq!(
            signed_out.user.unwrap().source_ip.as_deref(),
            Some("203.0.113.9")
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

    #[test]
    fn an_ended_session_read_from_the_table_tells_of_its_sign_in_and_its_end() {
        let item: serde_dynamo::Item = serde_json::from_value(serde_json::json!({
            "PK": {"S": "SESSION#s1"}, "SK": {"S": "SESSION"}, "sessionId": {"S": "s1"},
            "userId": {"S": "u1"}, "createdAt": {"S": "2026-12-03T10:01:00Z"}, "expiresAt": {"N": "1"},
            "signedIn": {"M": {}}, "revokedAt": {"S": "2026-12-03T10:09:00Z"},
            "ended": {"M": {"how": {"S": "SIGNED_OUT"}}}
        }))
        .unwrap();
        let kinds: Vec<EventType> = all_told_by(item).into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![EventType::UserSignedIn, EventType::UserSignedOut]
        );
    }
}
