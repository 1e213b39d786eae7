//! The outbox's publisher: the table's stream in, SQS out.
//!
//! Each new event item becomes one message on every queue subscribed to its type, sent in batches of
//! ten, with the event's type and id as message attributes (consumers deduplicate on the id). Records
//! are taken in stream order; on a failure the publisher names the first record not fully sent, and
//! Lambda retries the batch from there — earlier records are never held back, later ones never
//! skipped. A record sent to some queues before a failure may reach them twice: consumers are
//! idempotent, so that costs a lookup, not a duplicate.

use std::env;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::{ENTITY, EventType, OutboxItem, Queue};
use crate::config::ConfigError;
use crate::telemetry::count;

/// SQS takes at most ten messages per batch.
const SQS_BATCH: usize = 10;

pub struct Publisher {
    sqs: aws_sdk_sqs::Client,
    queues: Vec<(Queue, String)>,
}

/// A stream record that carries a new event.
struct Pending {
    sequence_number: String,
    kind: EventType,
    item: OutboxItem,
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

    /// Sends `items` again, in order, to the queues subscribed to their types (a replay: consumers
    /// take an event once, so a repeat costs a lookup); how many were sent before a failure, if any.
    pub async fn resend(&self, items: Vec<OutboxItem>) -> Result<u64, (u64, String)> {
        let pending: Vec<Pending> = items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let kind = serde_json::from_value::<EventType>(serde_json::Value::String(
                    item.event_type.clone(),
                ))
                .ok()?;
                Some(Pending {
                    sequence_number: i.to_string(),
                    kind,
                    item,
                })
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
                .filter(|(_, p)| p.kind.goes_to(*queue))
                .filter_map(|(i, p)| entry(i, &p.item))
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

fn entry(index: usize, item: &OutboxItem) -> Option<SendMessageBatchRequestEntry> {
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .ok()
    };
    SendMessageBatchRequestEntry::builder()
        .id(index.to_string())
        .message_body(&item.body)
        .message_attributes("eventType", attribute(&item.event_type)?)
        .message_attributes("eventId", attribute(&item.event_id)?)
        .build()
        .ok()
}

/// The new event items of a stream batch, in order. Other records (orders, sessions, updates and
/// removals of event items) are not events to send; the template's filter keeps most of them away,
/// and this keeps the rest.
fn new_events(event: StreamEvent) -> Vec<Pending> {
    event
        .records
        .into_iter()
        .filter(|r| r.event_name == "INSERT")
        .filter_map(|record| {
            let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
            let is_event = matches!(
                record.change.new_image.get("entity"),
                Some(serde_dynamo::AttributeValue::S(entity)) if entity == ENTITY
            );
            if !is_event {
                return None;
            }
            let item: OutboxItem = match serde_dynamo::from_item(record.change.new_image) {
                Ok(item) => item,
                Err(err) => {
                    // Retrying cannot make it readable; holding the shard for it would stop every
                    // later event. Said loudly: an event is lost unless it is replayed.
                    tracing::error!(%sequence_number, error = %err, "unreadable event item; skipped");
                    count("EventsMalformed", 1.0);
                    return None;
                }
            };
            match serde_json::from_value::<EventType>(serde_json::Value::String(
                item.event_type.clone(),
            )) {
                Ok(kind) => Some(Pending {
                    sequence_number,
                    kind,
                    item,
                }),
                Err(_) => {
                    // Retrying cannot make it sendable; holding the shard for it would stop every
                    // later event.
                    tracing::error!(event_id = %item.event_id, event_type = %item.event_type, "unknown event type; skipped");
                    count("EventsMalformed", 1.0);
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, seq: &str, image: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "eventID": seq, "eventName": name, "eventSource": "aws:dynamodb", "awsRegion": "ap-northeast-2",
            "dynamodb": {"SequenceNumber": seq, "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES",
                         "ApproximateCreationDateTime": 1_700_000_000.0,
                         "Keys": {"PK": image["PK"].clone(), "SK": image["SK"].clone()}, "NewImage": image}
        })
    }

    fn event_image(id: &str, kind: &str) -> serde_json::Value {
        serde_json::json!({
            "PK": {"S": format!("EVENT#{id}")}, "SK": {"S": "EVENT"}, "entity": {"S": "EVENT"},
            "eventType": {"S": kind}, "eventId": {"S": id}, "body": {"S": "{}"}, "expiresAt": {"N": "1"}
        })
    }

    #[test]
    fn only_new_event_items_are_sent() {
        let order = serde_json::json!({"PK": {"S": "ORDER#1"}, "SK": {"S": "ORDER"}, "status": {"S": "PAID"}});
        let batch = serde_json::json!({"Records": [
            record("INSERT", "1", order),
            record("INSERT", "2", event_image("e1", "order.paid")),
            record("MODIFY", "3", event_image("e1", "order.paid")),
            record("INSERT", "4", event_image("e2", "order.teleported")),
            record("INSERT", "5", event_image("e3", "user.signed_in")),
            record("INSERT", "6", serde_json::json!({"PK": {"S": "EVENT#e4"}, "SK": {"S": "EVENT"},
                "entity": {"S": "EVENT"}, "eventType": {"N": "7"}})),
        ]});
        let event: StreamEvent = serde_json::from_value(batch).unwrap();
        let pending = new_events(event);
        let seen: Vec<(&str, EventType)> = pending
            .iter()
            .map(|p| (p.sequence_number.as_str(), p.kind))
            .collect();
        assert_eq!(
            seen,
            vec![("2", EventType::OrderPaid), ("5", EventType::UserSignedIn)]
        );
    }
}
