//! What every SQS consumer shares: partial batch failures and exactly-once effects, as Powertools'
//! batch and idempotency utilities give other languages.
//!
//! Each message of a batch is handled on its own. A message that fails — it cannot be read, or its
//! handler errs — is named in the [`SqsBatchResponse`], so SQS redelivers only it; after the queue's
//! `maxReceiveCount` receives it goes to the dead-letter queue instead of blocking the rest.
//!
//! Each event is handled once per consumer. A processed-event record (`PROCESSED#<consumer>#<eventId>`,
//! kept with a TTL well past the queue's retention) is written in the same transaction as the
//! handler's own writes: either both land or neither, so a redelivered event — after a crash, a
//! timeout, a publisher retry — finds its record and is skipped. Effects outside DynamoDB (a push to
//! a WebSocket) happen before that transaction and may repeat after a crash; they carry the event id
//! so that receivers can tell.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::ApiError;
use crate::events::Event;
use crate::storage::Db;
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

/// Handles every message of `batch` with `handler`, once per event id for `consumer`, and reports the
/// messages that failed. The handler returns the writes that make its effect; they are committed
/// together with the processed-event record.
pub async fn process<H, F>(
    app: &App,
    consumer: &str,
    batch: SqsEvent,
    handler: H,
) -> SqsBatchResponse
where
    H: Fn(Event) -> F,
    F: Future<Output = Result<Vec<TransactWriteItem>, ApiError>>,
{
    let mut response = SqsBatchResponse::default();
    count("BatchSize", batch.records.len() as f64);
    for message in batch.records {
        let id = message.message_id.clone().unwrap_or_default();
        match process_one(&app.db, consumer, message, &handler).await {
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

async fn process_one<H, F>(
    db: &Db,
    consumer: &str,
    message: SqsMessage,
    handler: &H,
) -> Result<Handled, ApiError>
where
    H: Fn(Event) -> F,
    F: Future<Output = Result<Vec<TransactWriteItem>, ApiError>>,
{
    let body = message.body.unwrap_or_default();
    let event: Event = serde_json::from_str(&body).map_err(|err| {
        ApiError::new(
            lambda_http::http::StatusCode::UNPROCESSABLE_ENTITY,
            "MALFORMED_EVENT",
            format!("not an event: {err}"),
        )
    })?;
    let pk = processed_pk(consumer, &event.event_id);
    if db
        .get::<ProcessedRecord>(pk.clone(), PROCESSED_SK)
        .await?
        .is_some()
    {
        return Ok(Handled::Duplicate);
    }
    let event_id = event.event_id.clone();
    let mut actions = handler(event).await?;
    let now = jiff::Timestamp::now();
    let record = ProcessedRecord {
        pk,
        sk: PROCESSED_SK.to_owned(),
        consumer: consumer.to_owned(),
        event_id,
        processed_at: now.to_string(),
        expires_at: now.as_second() + PROCESSED_RETENTION_SECONDS,
    };
    let marker = actions.len();
    actions.push(db.put_new(&record)?);
    match db.transact(actions).await {
        Ok(()) => Ok(Handled::Processed),
        // Another delivery of the same event got there first; its effects stand, ours were not made.
        Err(err) if err.condition_failed_at(marker) => Ok(Handled::Duplicate),
        Err(err) => Err(err.into()),
    }
}
