//! What every event consumer shares: partial batch failures, and effects made once where they are
//! records, as Powertools' batch and idempotency utilities give other languages.
//!
//! From SQS ([`process_outside`]), each message of a batch is handled on its own. A message that
//! fails — it cannot be read, or its handler errs — is named in the [`SqsBatchResponse`], so SQS
//! redelivers only it; after the queue's `maxReceiveCount` receives it goes to the dead-letter queue
//! instead of blocking the rest. From the table's stream ([`process_stream`]), events are taken in
//! order and the first that fails is named: Lambda retries from it, so nothing after it is taken
//! before it.
//!
//! SQS and streams deliver at least once, and the publisher may publish an event again; what a
//! consumer records must still happen once, and costs only what that needs:
//!
//! - [`Effect::Append`]: one item keyed by the event itself (an audit record), created only where
//!   it does not exist, so a repeat fails its condition and is a duplicate — idempotent by
//!   construction. Writes that would count twice (report counters) go in one transaction with it:
//!   the appended item is their proof of a first delivery, so they need no record of their own.
//!   From a stream, the counting events of a batch share one transaction, their counters merged.
//!
//! Effects outside DynamoDB (a WebSocket push) cannot share a transaction, and a record that
//! kept them from repeating (looked up before, written after) would cost a read and a write unit
//! per event for what its receivers can do themselves: [`process_outside`] acts at least once. A
//! push carries its event id and its order's version, so a receiver drops a repeat (the order board
//! moves an order only on a newer version). A push repeats only when its consumer crashed or timed
//! out after acting, SQS delivered its message twice, or the publisher sent its event again (a
//! stream batch retried from its first unsent event); each message SQS delivers again is counted
//! (`MessagesRedelivered`).

use std::future::Future;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::app::App;
use crate::counters::{CounterUpdate, merged};
use crate::error::ApiError;
use crate::events::Event;
use crate::storage::{Db, Item, StorageError};
use crate::telemetry::count;

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
        with: Vec<CounterUpdate>,
    },
}

/// Handles every message of `batch` with `handler`, whose effect is outside DynamoDB, at least
/// once (see the module's documentation). Reports the messages that failed.
pub async fn process_outside<H, F>(consumer: &str, batch: SqsEvent, handler: H) -> SqsBatchResponse
where
    H: Fn(Event) -> F,
    F: Future<Output = Result<(), ApiError>>,
{
    each_message(consumer, batch, |message| async {
        if redelivered(&message) {
            count("MessagesRedelivered", 1.0);
        }
        handler(parse(message)?).await?;
        Ok(Handled::Processed)
    })
    .await
}

/// Whether SQS has delivered `message` before (Lambda passes its `ApproximateReceiveCount`).
fn redelivered(message: &SqsMessage) -> bool {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n > 1)
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
///
/// The events whose effects carry counters are held and made together, in one transaction with
/// their counters merged ([`Held`]): a batch that pays ten orders of one store writes its day's
/// counters once. An effect without counters is made at once; if a held event then fails, the
/// retry from it makes the later ones again, which their own conditions turn into duplicates.
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
    let mut held = Held::default();
    let mut failed: Option<(String, ApiError)> = None;
    for streamed in events {
        let sequence_number = streamed.sequence_number;
        let made = match handler(streamed.event).await {
            Ok(Effect::Append { record, with }) if !with.is_empty() => {
                if !held.has_room_for(&record, &with)
                    && let Err(failure) = held.make(&app.db).await
                {
                    failed = Some(failure);
                    break;
                }
                held.hold(sequence_number, record, with);
                continue;
            }
            Ok(effect) => make(&app.db, effect).await,
            Err(err) => Err(err),
        };
        match made {
            Ok(handled) => tally(handled, 1),
            Err(err) => {
                // What was held came earlier in the stream: made first, or failed first (then
                // the retry from it comes back to this one, which is logged here all the same).
                failed = Some(match held.make(&app.db).await {
                    Ok(()) => (sequence_number, err),
                    Err(earlier) => {
                        tracing::warn!(consumer, sequence_number = %sequence_number, code = err.code, error = %err, "a later event of the batch failed too");
                        earlier
                    }
                });
                break;
            }
        }
    }
    if failed.is_none() {
        failed = held.make(&app.db).await.err();
    }
    let mut response = DynamoDbEventResponse::default();
    if let Some((sequence_number, err)) = failed {
        tracing::warn!(consumer, sequence_number = %sequence_number, code = err.code, error = %err, "event failed; the stream retries from it");
        count("MessagesFailed", 1.0);
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    response
}

fn tally(handled: Handled, events: usize) {
    match handled {
        Handled::Processed => count("MessagesProcessed", events as f64),
        Handled::Duplicate => count("MessagesDuplicate", events as f64),
    }
}

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// Events of a stream batch whose effects carry counters, held to be made in one transaction: each
/// event's appended record (created only where absent, as alone) and the counters of them all,
/// merged by item.
#[derive(Default)]
struct Held {
    events: Vec<(String, Item, Vec<CounterUpdate>)>,
}

impl Held {
    /// Whether one more event fits one transaction with these (counting each counter update as an
    /// item of its own, before merging), and its record is not among them already.
    fn has_room_for(&self, record: &Item, with: &[CounterUpdate]) -> bool {
        let items: usize = self.events.iter().map(|(_, _, w)| 1 + w.len()).sum();
        let key = |item: &Item| (item.get("PK").cloned(), item.get("SK").cloned());
        items + 1 + with.len() <= MAX_TRANSACTION_ITEMS
            && self
                .events
                .iter()
                .all(|(_, held, _)| key(held) != key(record))
    }

    fn hold(&mut self, sequence_number: String, record: Item, with: Vec<CounterUpdate>) {
        self.events.push((sequence_number, record, with));
    }

    /// Makes the held events' effects and empties the hold; on failure, the first event that was not
    /// made and why. A transaction that fails because one of the records exists (a batch delivered
    /// again) is retried event by event, so that each is made once or found made.
    async fn make(&mut self, db: &Db) -> Result<(), (String, ApiError)> {
        let events = std::mem::take(&mut self.events);
        if events.len() > 1 {
            let actions = appended_with_counters(
                db,
                events.iter().map(|(_, record, _)| record.clone()),
                &merged(events.iter().flat_map(|(_, _, with)| with.iter().cloned())),
            )
            .map_err(|err| (events[0].0.clone(), err.into()))?;
            match db.transact(actions).await {
                Ok(()) => {
                    tally(Handled::Processed, events.len());
                    return Ok(());
                }
                Err(err) if (0..events.len()).any(|i| err.condition_failed_at(i)) => {}
                Err(err) => return Err((events[0].0.clone(), err.into())),
            }
        }
        for (sequence_number, record, with) in events {
            match make(db, Effect::Append { record, with }).await {
                Ok(handled) => tally(handled, 1),
                Err(err) => return Err((sequence_number, err)),
            }
        }
        Ok(())
    }
}

/// One transaction's items: each record put only where absent (first, so a refused condition's
/// index is the record's), then the counter updates.
fn appended_with_counters(
    db: &Db,
    records: impl IntoIterator<Item = Item>,
    counters: &[CounterUpdate],
) -> Result<Vec<TransactWriteItem>, StorageError> {
    let mut actions = records
        .into_iter()
        .map(|record| db.put_new_item(record))
        .collect::<Result<Vec<_>, _>>()?;
    for update in counters {
        actions.push(update.action(db.table())?);
    }
    Ok(actions)
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
        Effect::Append { record, with } => {
            match db
                .transact(appended_with_counters(db, [record], &with)?)
                .await
            {
                Ok(()) => Ok(Handled::Processed),
                // Another delivery of the same event got there first; its effects stand, ours
                // were not made.
                Err(err) if err.condition_failed_at(0) => Ok(Handled::Duplicate),
                Err(err) => Err(err.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_redelivered_from_its_second_receive() {
        let mut message = SqsMessage::default();
        assert!(!redelivered(&message), "no count: Lambda always sends one");
        for (receives, again) in [("1", false), ("2", true), ("17", true), ("many", false)] {
            message
                .attributes
                .insert("ApproximateReceiveCount".to_owned(), receives.to_owned());
            assert_eq!(redelivered(&message), again, "{receives}");
        }
    }
}
