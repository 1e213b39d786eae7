//! What every event consumer shares: partial batch failures, and effects made once where they are
//! records, as Powertools' batch and idempotency utilities give other languages.
//!
//! Both consumers read the table's stream: events are taken in order and the first that fails is
//! named in the [`DynamoDbEventResponse`]: Lambda retries from it, so nothing after it is taken
//! before it, and nothing before it is taken again.
//!
//! Streams deliver at least once (a batch whose invocation crashed or timed out comes again
//! whole); what a consumer records must still happen once, and costs only what that needs:
//!
//! - [`Effect::Append`]: one item keyed by the event itself (an audit record), created only where
//!   it does not exist, so a repeat fails its condition and is a duplicate — idempotent by
//!   construction. Writes that would count twice (report counters) go in one transaction with it:
//!   the appended item is their proof of a first delivery, so they need no record of their own.
//!   The counting events of a batch share one transaction, their counters merged
//!   ([`process_stream`]).
//!
//! Effects outside DynamoDB (a WebSocket push) cannot share a transaction, and a record that
//! kept them from repeating (looked up before, written after) would cost a read and a write unit
//! per event for what its receivers can do themselves: [`process_stream_outside`] acts at least
//! once. A push carries its event id and its order's version, so a receiver drops a repeat (the
//! order board moves an order only on a newer version). A push repeats only when its consumer
//! crashed or timed out after acting: the batch comes again from its start.

use std::future::Future;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::app::App;
use crate::counters::{CounterUpdate, merged};
use crate::error::ApiError;
use crate::events::Event;
use crate::storage::{Db, Item, StorageError};
use crate::telemetry::count;

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

/// Handles the events of a stream batch with `handler`, whose effect is outside DynamoDB, in order
/// and at least once (see the module's documentation); the response names the first that failed
/// (Lambda retries the batch from there).
pub async fn process_stream_outside<H, F>(
    consumer: &str,
    batch: StreamEvent,
    handler: H,
) -> DynamoDbEventResponse
where
    H: Fn(Event) -> F,
    F: Future<Output = Result<(), ApiError>>,
{
    let events = crate::events::stream::events_in(batch);
    count("BatchSize", events.len() as f64);
    for streamed in events {
        if let Err(err) = handler(streamed.event).await {
            return retried_from(consumer, streamed.sequence_number, &err);
        }
        tally(Handled::Processed, 1);
    }
    DynamoDbEventResponse::default()
}

/// The response that has Lambda retry a stream batch from `sequence_number`, whose event failed
/// with `err` (logged and counted).
fn retried_from(consumer: &str, sequence_number: String, err: &ApiError) -> DynamoDbEventResponse {
    tracing::warn!(consumer, sequence_number = %sequence_number, code = err.code, error = %err, "event failed; the stream retries from it");
    count("MessagesFailed", 1.0);
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(sequence_number);
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
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
    match failed {
        Some((sequence_number, err)) => retried_from(consumer, sequence_number, &err),
        None => DynamoDbEventResponse::default(),
    }
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

    /// A stream batch of new outbox items (`user.signed_up` events), one per id, numbered from 0.
    fn batch(ids: &[&str]) -> StreamEvent {
        use crate::events::stream::fixtures::{event_image, record};
        let records: Vec<serde_json::Value> = ids
            .iter()
            .enumerate()
            .map(|(seq, id)| {
                record(
                    "INSERT",
                    &seq.to_string(),
                    event_image(id, "user.signed_up"),
                )
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    #[tokio::test]
    async fn an_effect_outside_stops_at_its_first_failure_and_names_it() {
        let handled = std::sync::Mutex::new(Vec::new());
        let response = process_stream_outside("test", batch(&["a", "b", "c"]), |event| {
            handled.lock().unwrap().push(event.event_id.clone());
            async move {
                match event.event_id.as_str() {
                    "b" => Err(ApiError::unavailable()),
                    _ => Ok(()),
                }
            }
        })
        .await;
        // Nothing after the failure is taken before it; the retry starts at it.
        assert_eq!(*handled.lock().unwrap(), ["a", "b"]);
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(failed, [Some("1".to_owned())]);

        let response =
            process_stream_outside("test", batch(&["a", "c"]), |_| async { Ok(()) }).await;
        assert!(response.batch_item_failures.is_empty());
    }
}
