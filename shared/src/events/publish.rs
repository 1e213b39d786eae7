//! The publisher: the table's stream in, SQS out.
//!
//! Each event of the stream ([`super::stream`]: an order's move, a new outbox item) becomes one
//! message on every queue subscribed to its type, sent in batches of ten, with the event's type and
//! id as message attributes (consumers deduplicate on the id). Records are taken in stream order;
//! on a failure the publisher names the first record not fully sent, and Lambda retries the batch
//! from there — earlier records are never held back, later ones never skipped. A record sent to
//! some queues before a failure may reach them twice: consumers are idempotent, so that costs a
//! lookup, not a duplicate.

use std::env;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::stream;
use super::{Event, EventType, Queue};
use crate::config::ConfigError;
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

impl From<(Event, String)> for Outgoing {
    /// An event and its JSON ([`stream::told_by`]): an outbox item's is sent as written.
    fn from((event, body): (Event, String)) -> Self {
        Self {
            kind: event.kind,
            event_id: event.event_id,
            body,
        }
    }
}

/// A stream record that carries a new event.
struct Pending {
    sequence_number: String,
    event: Outgoing,
}

impl Publisher {
    /// The queues' URLs from `NOTIFICATIONS_QUEUE_URL`.
    pub fn from_env(sqs: aws_sdk_sqs::Client) -> Result<Self, ConfigError> {
        let url = |name: &'static str| {
            env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        Ok(Self {
            sqs,
            queues: vec![(Queue::Notifications, url("NOTIFICATIONS_QUEUE_URL")?)],
        })
    }

    pub async fn publish(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let pending: Vec<Pending> = stream::events_in(event)
            .into_iter()
            .map(|streamed| Pending {
                sequence_number: streamed.sequence_number,
                event: (streamed.event, streamed.body).into(),
            })
            .collect();
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
