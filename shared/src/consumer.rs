//! What every event consumer shares: partial batch failures and exactly-once effects, as Powertools'
//! batch and idempotency utilities give other languages.
//!
//! From SQS ([`process_outside`]), each message of a batch is handled on its own. A message that
//! fails — it cannot be read, or its handler errs — is named in the [`SqsBatchResponse`], so SQS
//! redelivers only it; after the queue's `maxReceiveCount` receives it goes to the dead-letter queue
//! instead of blocking the rest. From the table's stream ([`process_stream`]), events are taken in
//! order and the first that fails is named: Lambda retries from it, so nothing after it is taken
//! before it.
//!
//! SQS and streams deliver at least once, and the publisher may publish an event again; what a
//! consumer does must still happen once in effect, and costs only what that effect needs:
//!
//! - [`Effect::Append`]: one item keyed by the event itself (an audit record), created only where
//!   it does not exist, so a repeat fails its condition and is a duplicate — idempotent by
//!   construction. Writes that would count twice (report counters) go in one transaction with it:
//!   the appended item is their proof of a first delivery, so they need no record of their own.
//!
//! Effects outside DynamoDB (a WebSocket push) cannot share a transaction: [`process_outside`]
//! looks for the event's processed record (`PROCESSED#<consumer>#<eventId>`, kept with a TTL well
//! past the queue's retention) before acting and writes it after, with a plain conditional put, and
//! only when something was done. A crash between the act and the record repeats the act; each push
//! carries its event id so that a receiver can tell.

use std::future::Future;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::TransactWriteItem;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::ApiError;
use crate::events::Event;
use crate::storage::{Db, Item, StorageError};
use crate::telemetry::count;

/// Longer than any queue keeps a message (at most 14 days), so no redelivery outlives its record.
const PROCESSED_RETENTION_SECONDS: i64 = 15 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProcessedRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    consumer: String,
    event_id: String,
    processed_at: String,
    expires_at: i64,
}

impl ProcessedRecord {
    fn new(consumer: &str, event_id: String) -> Self {
        let now = jiff::Timestamp::now();
        Self {
            pk: processed_pk(consumer, &event_id),
            sk: PROCESSED_SK.to_owned(),
            consumer: consumer.to_owned(),
            event_id,
            processed_at: now.to_string(),
            expires_at: now.as_second() + PROCESSED_RETENTION_SECONDS,
        }
    }
}

fn parse(message: SqsMessage) -> Result<Event, ApiError> {
    let body = message.body.unwrap_or_default();
    serde_json::from_str(&body).map_err(|err| {
        ApiError::new(
            lambda_http::http::StatusCode::UNPROCESSABLE_ENTITY,
            "MALFORMED_EVENT",
            format!("not an event: {err}"),
        )
    })
}

fn processed_pk(consumer: &str, event_id: &str) -> String {
    format!("PROCESSED#{consumer}#{event_id}")
}

const PROCESSED_SK: &str = "PROCESSED";

/// How one message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Processed,
    /// Seen before: nothing done.
    Duplicate,
}

/// What handling one event leaves to be written (see the module's documentation).
#[derive(Debug)]
pub enum Effect {
    /// An item whose key is the event's, written only where absent, and the writes that must be
    /// made once, committed with it.
    Append {
        record: Item,
        with: Vec<TransactWriteItem>,
    },
}

/// Handles every message of `batch` with `handler`, whose effect is outside DynamoDB: an event
/// already recorded for `consumer` is skipped; one the handler acted on (it returns `true`) is
/// recorded after. Reports the messages that failed.
pub async fn process_outside<H, F>(
    app: &App,
    consumer: &str,
    batch: SqsEvent,
    handler: H,
) -> SqsBatchResponse
where
    H: Fn(Event) -> F,
    F: Future<Output = Result<bool, ApiError>>,
{
    each_message(consumer, batch, |message| async {
        let event = parse(message)?;
        let pk = processed_pk(consumer, &event.event_id);
        // Strongly consistent: a record written by the delivery before a crash is seen.
        if app
            .db
            .get::<ProcessedRecord>(pk.as_str(), PROCESSED_SK)
            .await?
            .is_some()
        {
            return Ok(Handled::Duplicate);
        }
        let event_id = event.event_id.clone();
        if handler(event).await? {
            match app
                .db
                .put_if_absent(&ProcessedRecord::new(consumer, event_id))
                .await
            {
                Ok(()) | Err(StorageError::ConditionFailed) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(Handled::Processed)
    })
    .await
}

async fn each_message<M, F>(consumer: &str, batch: SqsEvent, per_message: M) -> SqsBatchResponse
where
    M: Fn(SqsMessage) -> F,
    F: Future<Output = Result<Handled, ApiError>>,
{
    let mut response = SqsBatchResponse::default();
    count("BatchSize", batch.records.len() as f64);
    for message in batch.records {
        let id = message.message_id.clone().unwrap_or_default();
        match per_message(message).await {
            Ok(Handled::Processed) => count("MessagesProcessed", 1.0),
            Ok(Handled::Duplicate) => count("MessagesDuplicate", 1.0),
            Err(err) => {
                tracing::warn!(consumer, message_id = %id, code = err.code, error = %err, "message failed; SQS will redeliver it");
                count("MessagesFailed", 1.0);
                response.add_failure(id);
            }
        }
    }
    response
}

/// Handles the events of a stream batch with `handler`, in order, once in effect per event id for
/// `consumer`; the response names the first that failed (Lambda retries the batch from there).
pub async fn process_stream<H, F>(
    app: &App,
    consumer: &str,
    batch: StreamEvent,
    handler: H,
) -> DynamoDbEventResponse
where
    H: Fn(Event) -> F,
    F: Future<Output = Result<Effect, ApiError>>,
{
    let events = crate::events::stream::events_in(batch);
    count("BatchSize", events.len() as f64);
    let mut response = DynamoDbEventResponse::default();
    for streamed in events {
        let made = match handler(streamed.event).await {
            Ok(effect) => make(&app.db, effect).await,
            Err(err) => Err(err),
        };
        match made {
            Ok(Handled::Processed) => count("MessagesProcessed", 1.0),
            Ok(Handled::Duplicate) => count("MessagesDuplicate", 1.0),
            Err(err) => {
                tracing::warn!(consumer, sequence_number = %streamed.sequence_number, code = err.code, error = %err, "event failed; the stream retries from it");
                count("MessagesFailed", 1.0);
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(streamed.sequence_number);
                response.batch_item_failures.push(failure);
                break;
            }
        }
    }
    response
}

/// Makes `effect` once: [`Handled::Duplicate`] when its record was appended before.
pub async fn make(db: &Db, effect: Effect) -> Result<Handled, ApiError> {
    match effect {
        Effect::Append { record, with } if with.is_empty() => {
            match db.put_item_if_absent(record).await {
                Ok(()) => Ok(Handled::Processed),
                Err(StorageError::ConditionFailed) => Ok(Handled::Duplicate),
                Err(err) => Err(err.into()),
            }
        }
        Effect::Append { record, mut with } => {
            with.insert(0, db.put_new_item(record)?);
            match db.transact(with).await {
                Ok(()) => Ok(Handled::Processed),
                // Another delivery of the same event got there first; its effects stand, ours
                // were not made.
                Err(err) if err.condition_failed_at(0) => Ok(Handled::Duplicate),
                Err(err) => Err(err.into()),
            }
        }
    }
}
