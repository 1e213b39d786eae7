//! The publisher: the table's stream in, SQS out.
//!
//! Events come from two kinds of stream record: an order's move (the order item, stamped with who
//! moved it: [`Event::of_order`]) and a new outbox item. Each becomes one message on every queue subscribed to its type, sent in batches of
//! ten, with the event's type and id as message attributes (consumers deduplicate on the id). Records
//! are taken in stream order; on a failure the publisher names the first record not fully sent, and
//! Lambda retries the batch from there — earlier records are never held back, later ones never
//! skipped. A record sent to some queues before a failure may reach them twice: consumers are
//! idempotent, so that costs a lookup, not a duplicate.

use std::env;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::{ENTITY, Event, EventType, OutboxItem, Queue};
use crate::config::ConfigError;
use crate::orders::{ORDER_SK, OrderRecord};
use crate::telemetry::count;

/// SQS takes at most ten messages per batch.
const SQS_BATCH: usize = 10;

pub struct Publisher {
    sqs: aws_sdk_sqs::Client,
    queues: Vec<(Queue, String)>,
}

/// An event on its way to the queues: its type, its id and its JSON.
pub struct Outgoing {
    kind: EventType,
    event_id: String,
    body: String,
}

impl Outgoing {
    pub fn of_event(event: &Event) -> Option<Self> {
        Some(Self {
            kind: event.kind,
            event_id: event.event_id.clone(),
            body: serde_json::to_string(event).ok()?,
        })
    }

    /// `None` for a type this build does not know.
    pub fn of_outbox(item: OutboxItem) -> Option<Self> {
        let kind =
            serde_json::from_value::<EventType>(serde_json::Value::String(item.event_type.clone()))
                .ok()?;
        Some(Self {
            kind,
            event_id: item.event_id,
            body: item.body,
        })
    }
}

/// A stream record that carries a new event.
struct Pending {
    sequence_number: String,
    event: Outgoing,
}

impl Publisher {
    /// The queues' URLs from `NOTIFICATIONS_QUEUE_URL`, `AUDIT_QUEUE_URL`, `ANALYTICS_QUEUE_URL`.
    pub fn from_env(sqs: aws_sdk_sqs::Client) -> Result<Self, ConfigError> {
        let url = |name: &'static str| {
            env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        Ok(Self {
            sqs,
            queues: vec![
                (Queue::Notifications, url("NOTIFICATIONS_QUEUE_URL")?),
                (Queue::Audit, url("AUDIT_QUEUE_URL")?),
                (Queue::Analytics, url("ANALYTICS_QUEUE_URL")?),
            ],
        })
    }

    pub async fn publish(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let pending = new_events(event);
        count("EventsReceived", pending.len() as f64);
        let mut response = DynamoDbEventResponse::default();
        for chunk in pending.chunks(SQS_BATCH) {
            if let Some(failed) = self.send(chunk).await {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(chunk[failed].sequence_number.clone());
                response.batch_item_failures.push(failure);
                count("PublishFailures", 1.0);
                return response;
            }
            count("EventsPublished", chunk.len() as f64);
        }
        response
    }

    /// Sends `events` again, in order, to the queues subscribed to their types (a replay: consumers
    /// take an event once, so a repeat costs a lookup); how many were sent before a failure, if any.
    pub async fn resend(&self, events: Vec<Outgoing>) -> Result<u64, (u64, String)> {
        let pending: Vec<Pending> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Pending {
                sequence_number: i.to_string(),
                event,
            })
            .collect();
        let mut sent = 0;
        for chunk in pending.chunks(SQS_BATCH) {
            if let Some(failed) = self.send(chunk).await {
                return Err((sent + failed as u64, "SQS refused a batch".into()));
            }
            sent += chunk.len() as u64;
        }
        count("EventsReplayed", sent as f64);
        Ok(sent)
    }

    /// Sends `chunk` to every subscribed queue; the index of the first record not sent everywhere.
    async fn send(&self, chunk: &[Pending]) -> Option<usize> {
        let mut first_failed: Option<usize> = None;
        for (queue, url) in &self.queues {
            let entries: Vec<SendMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter(|(_, p)| p.event.kind.goes_to(*queue))
                .filter_map(|(i, p)| entry(i, &p.event))
                .collect();
            if entries.is_empty() {
                continue;
            }
            let first = entries
                .first()
                .and_then(|e| e.id().parse::<usize>().ok())
                .unwrap_or(0);
            let failed = match self
                .sqs
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => out
                    .failed()
                    .iter()
                    .filter_map(|f| {
                        tracing::warn!(queue = ?queue, code = f.code(), "event not accepted by SQS");
                        f.id().parse::<usize>().ok()
                    })
                    .min(),
                Err(err) => {
                    tracing::warn!(queue = ?queue, error = %aws_sdk_sqs::error::DisplayErrorContext(&err), "SQS batch send failed");
                    Some(first)
                }
            };
            if let Some(index) = failed {
                first_failed = Some(first_failed.map_or(index, |f| f.min(index)));
            }
        }
        first_failed
    }
}

fn entry(index: usize, event: &Outgoing) -> Option<SendMessageBatchRequestEntry> {
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .ok()
    };
    SendMessageBatchRequestEntry::builder()
        .id(index.to_string())
        .message_body(&event.body)
        .message_attributes("eventType", attribute(event.kind.name())?)
        .message_attributes("eventId", attribute(&event.event_id)?)
        .build()
        .ok()
}

/// The events of a stream batch, in order: the moves of orders and the new outbox items. Other
/// records (sessions, an order's change that is no move, updates and removals of event items) are
/// not events; the template's filter keeps most of them away, and this keeps the rest.
fn new_events(event: StreamEvent) -> Vec<Pending> {
    event
        .records
        .into_iter()
        .filter_map(|record| {
            let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
            let text = |name: &str| match record.change.new_image.get(name) {
                Some(serde_dynamo::AttributeValue::S(value)) => Some(value.as_str()),
                _ => None,
            };
            let event = if text("SK") == Some(ORDER_SK) {
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
            Some(Pending {
                sequence_number,
                event,
            })
        })
        .collect()
}

/// The event of an order's stream record, if the record is a move (placed, or a new version).
fn order_move(name: &str, old: serde_dynamo::Item, new: serde_dynamo::Item) -> Option<Outgoing> {
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
    Outgoing::of_event(&Event::of_order(&order)?)
}

fn outbox_event(image: serde_dynamo::Item) -> Option<Outgoing> {
    let item: OutboxItem = match serde_dynamo::from_item(image) {
        Ok(item) => item,
        Err(err) => {
            // As above: retrying cannot make it readable.
            tracing::error!(error = %err, "unreadable event item; skipped");
            count("EventsMalformed", 1.0);
            return None;
        }
    };
    let (event_id, event_type) = (item.event_id.clone(), item.event_type.clone());
    let outgoing = Outgoing::of_outbox(item);
    if outgoing.is_none() {
        // Retrying cannot make it sendable; holding the shard for it would stop every later event.
        tracing::error!(%event_id, %event_type, "unknown event type; skipped");
        count("EventsMalformed", 1.0);
    }
    outgoing
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn event_image(id: &str, kind: &str) -> serde_json::Value {
        serde_json::json!({
            "PK": {"S": format!("EVENT#{id}")}, "SK": {"S": "EVENT"}, "entity": {"S": "EVENT"},
            "eventType": {"S": kind}, "eventId": {"S": id}, "body": {"S": "{}"}, "expiresAt": {"N": "1"}
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
        let pending = new_events(event);
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
        let accepted: Event = serde_json::from_str(&pending[1].event.body).unwrap();
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
