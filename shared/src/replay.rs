//! Replaying events whose stream records expired before their readers took them (DynamoDB streams
//! keep records 24 hours; outbox items live two days; an order keeps its latest move).
//!
//! An operator invokes `events-replay` with a time range (`{"from": …, "to": …}`), or with
//! `{"fromDeadLetters": true}`: then each message of the stream's dead-letter queue — Lambda's record
//! of a batch it gave up on, with the arrival times of its first and last records — names a window,
//! and is deleted once its window was sent again. The outbox items whose event happened in a window,
//! the sessions made or ended in it (their sign-ins and sign-outs) and the latest move of every order moved in it, are read
//! from the table and recorded as the stream's recorder records them (the audit record and the
//! sales it counts, once: [`crate::recording`]); a recording is keyed by its event, so a replay of
//! events that did arrive changes nothing. They are not pushed again: a push tells a board or a
//! phone what changed as it changed, and one that missed it lists the orders when it comes back.
//!
//! An order carries its latest move only: of an order that moved again within a lost window, the
//! earlier moves are not replayed (boards and customers get the state they need; the audit trail
//! misses those moves). Lost windows are what `EventsIteratorAgeAlarm` and `RecordIteratorAgeAlarm`
//! exist to prevent: they fire when a reader has been five minutes behind for five minutes, a day
//! before the stream drops anything.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::consumer;
use crate::error::ApiError;
use crate::events::{ENTITY, Event, SESSION_SK, stream};
use crate::orders::ORDER_SK;
use crate::recording;
use crate::storage::StorageError;

/// Records of a batch arrive around the times Lambda gives; events are replayed a minute either side.
const MARGIN_SECONDS: i64 = 60;

/// What to replay.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    pub from: Option<jiff::Timestamp>,
    #[serde(default)]
    pub to: Option<jiff::Timestamp>,
    /// The windows of the stream's dead-letter queue (`EVENTS_STREAM_DLQ_URL`).
    #[serde(default)]
    pub from_dead_letters: bool,
}

/// What a replay did.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    pub windows: u64,
    pub events: u64,
    pub dead_letters_cleared: u64,
}

/// A window of Lambda's record of a stream batch it gave up on (its `DDBStreamBatchInfo`).
fn dead_letter_window(body: &str) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    let record: serde_json::Value = serde_json::from_str(body).ok()?;
    let info = &record["DDBStreamBatchInfo"];
    let first = info["approximateArrivalOfFirstRecord"]
        .as_str()?
        .parse()
        .ok()?;
    let last = info["approximateArrivalOfLastRecord"]
        .as_str()?
        .parse()
        .ok()?;
    Some((first, last))
}

fn widened(window: (jiff::Timestamp, jiff::Timestamp)) -> (jiff::Timestamp, jiff::Timestamp) {
    let margin = jiff::SignedDuration::from_secs(MARGIN_SECONDS);
    (window.0 - margin, window.1 + margin)
}

/// Replays what `request` names.
pub async fn replay(app: &App, request: ReplayRequest) -> Result<Replayed, ApiError> {
    let mut done = Replayed::default();
    if request.from_dead_letters {
        let queue = crate::config::optional("EVENTS_STREAM_DLQ_URL")
            .ok_or_else(|| ApiError::internal("EVENTS_STREAM_DLQ_URL is not set"))?;
        loop {
            let received = app
                .sqs()
                .receive_message()
                .queue_url(&queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| ApiError::internal(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for message in messages {
                let Some(window) = message.body().and_then(dead_letter_window) else {
                    tracing::warn!(message_id = ?message.message_id(), "not a stream batch record; left in the queue");
                    continue;
                };
                done.windows += 1;
                done.events += window_replay(app, widened(window)).await?;
                if let Some(handle) = message.receipt_handle() {
                    app.sqs()
                        .delete_message()
                        .queue_url(&queue)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .map_err(|e| {
                            ApiError::internal(aws_sdk_sqs::error::DisplayErrorContext(e))
                        })?;
                    done.dead_letters_cleared += 1;
                }
            }
        }
    }
    if let (Some(from), Some(to)) = (request.from, request.to) {
        if to < from {
            return Err(ApiError::validation("to", "before from"));
        }
        done.windows += 1;
        done.events += window_replay(app, (from, to)).await?;
    } else if !request.from_dead_letters {
        return Err(ApiError::validation(
            "from",
            "give from and to, or fromDeadLetters",
        ));
    }
    Ok(done)
}

/// Records every event that happened in `window` and the table still tells of, oldest first, where
/// it was not recorded yet; how many it found.
async fn window_replay(
    app: &App,
    window: (jiff::Timestamp, jiff::Timestamp),
) -> Result<u64, ApiError> {
    let db = &app.db;
    let mut events: Vec<(jiff::Timestamp, Event)> = Vec::new();
    let mut start = None;
    loop {
        let page = db
            .client()
            .scan()
            .table_name(db.table())
            .filter_expression("entity = :event OR SK = :order OR SK = :session")
            .expression_attribute_values(":event", AttributeValue::S(ENTITY.to_owned()))
            .expression_attribute_values(":order", AttributeValue::S(ORDER_SK.to_owned()))
            .expression_attribute_values(":session", AttributeValue::S(SESSION_SK.to_owned()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(StorageError::from_sdk)?;
        for event in page
            .items
            .unwrap_or_default()
            .into_iter()
            .flat_map(stream::all_told_by)
        {
            let Ok(at) = event.at.parse::<jiff::Timestamp>() else {
                continue;
            };
            if at >= window.0 && at <= window.1 {
                events.push((at, event));
            }
        }
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    events.sort_by_key(|(at, _)| *at);
    for (_, event) in &events {
        consumer::make(db, recording::effect(app, event).await?).await?;
    }
    crate::telemetry::count("EventsReplayed", events.len() as f64);
    Ok(events.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_names_its_batch_window() {
        let body = r#"{"requestContext": {"condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {"shardId": "shardId-1", "startSequenceNumber": "1",
            "endSequenceNumber": "9", "approximateArrivalOfFirstRecord": "2026-11-29T10:00:00Z",
            "approximateArrivalOfLastRecord": "2026-11-29T10:05:00Z", "batchSize": 9,
            "streamArn": "arn:aws:dynamodb:ap-northeast-2:1:table/t/stream/x"}}"#;
        let (first, last) = dead_letter_window(body).unwrap();
        assert_eq!(first.to_string(), "2026-11-29T10:00:00Z");
        let (from, to) = widened((first, last));
        assert_eq!(from.to_string(), "2026-11-29T09:59:00Z");
        assert_eq!(to.to_string(), "2026-11-29T10:06:00Z");
        assert!(dead_letter_window("{}").is_none());
    }
}
