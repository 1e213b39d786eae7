//! What every event consumer shares: partial batch failures, and effects made once where they are
//! records, as Powertools' batch and idempotency utilities give other languages.
//!
//! Both consumers read the table's stream, and the first event that fails is named in the
//! [`DynamoDbEventResponse`]: Lambda retries from it, and nothing before it is taken again. The
//! notifier takes each order's events one at a time (a push must not overtake an earlier one of
//! its order) and different orders' side by side ([`process_stream_outside`]); the recorder's
//! effects are keyed by their events, so it makes them all side by side ([`process_stream`]), and
//! what it made after the failure comes again and is found made.
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

use std::collections::HashMap;
use std::future::Future;

use futures::{StreamExt, stream};

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::app::App;
use crate::counters::{CounterUpdate, merged};
use crate::error::ApiError;
use crate::events::Event;
use crate::events::stream::Streamed;
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

/// Handles the events of a stream batch with `handler`, whose effect is outside DynamoDB, at least
/// once (see the module's documentation): each order's events one after another in the stream's
/// order, different orders' side by side, [`IN_FLIGHT`] at a time (as Lambda's
/// `ParallelizationFactor` does across a shard's batches). The response names the first that
/// failed in the stream's order: everything before it was handled; an order's events after it were
/// not (they must not overtake it), other orders' may have been, and come again.
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
    // One lane per order; an event about no order is a lane of its own.
    let mut lanes: Vec<Vec<(usize, Streamed)>> = Vec::new();
    let mut lane_of_order: HashMap<String, usize> = HashMap::new();
    for (index, streamed) in events.into_iter().enumerate() {
        let lane = match &streamed.event.order {
            Some(order) => *lane_of_order
                .entry(order.order_id.clone())
                .or_insert_with(|| {
                    lanes.push(Vec::new());
                    lanes.len() - 1
                }),
            None => {
                lanes.push(Vec::new());
                lanes.len() - 1
            }
        };
        lanes[lane].push((index, streamed));
    }
    let handler = &handler;
    let failures: Vec<Failure> = stream::iter(lanes)
        .map(|lane| async move {
            for (index, streamed) in lane {
                if let Err(err) = handler(streamed.event).await {
                    return Some((index, streamed.sequence_number, err));
                }
                tally(Handled::Processed, 1);
            }
            None
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|failed| async { failed })
        .collect()
        .await;
    retried_from_first(consumer, failures)
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

/// How much of a batch a consumer has in hand at once: the recorder's events worked out or
/// appended, the notifier's orders pushed. Each event is a round trip or more (~5 ms to DynamoDB,
/// ~20 ms for a push): one at a time, a shard's reader took ~200 events/s at best, fewer than
/// one busy partition's stream can carry.
const IN_FLIGHT: usize = 16;

/// Handles the events of a stream batch with `handler`, once in effect per event id for
/// `consumer`; the response names the first that failed, in the stream's order (Lambda retries
/// the batch from there).
///
/// Effects are worked out and made [`IN_FLIGHT`] at a time: each is keyed by its event and made
/// only where absent, so their order does not matter, only that everything before the event named
/// in the response was made; what was made after it comes again and is found made.
///
/// The events whose effects carry counters are held and made together, one transaction after
/// another, with their counters merged ([`Held`]): a batch that pays ten orders of one store
/// writes its day's counters once, and its transactions never meet each other on a counter
/// (another shard's batch may still meet them: a conflict fails that event, and it is retried).
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
    // Each event's effect, in the stream's order, up to the first that could not be worked out.
    let mut failures: Vec<Failure> = Vec::new();
    let mut plain = Vec::new();
    let mut counting = Vec::new();
    let mut worked = stream::iter(events)
        .map(|streamed| {
            let effect = handler(streamed.event);
            async move { (streamed.sequence_number, effect.await) }
        })
        .buffered(IN_FLIGHT)
        .enumerate();
    while let Some((index, (sequence_number, effect))) = worked.next().await {
        match effect {
            Ok(Effect::Append { record, with }) if with.is_empty() => {
                plain.push((index, sequence_number, record))
            }
            Ok(Effect::Append { record, with }) => {
                counting.push((index, sequence_number, record, with))
            }
            Err(err) => {
                failures.push((index, sequence_number, err));
                break;
            }
        }
    }
    drop(worked);

    let appended = stream::iter(plain)
        .map(|(index, sequence_number, record)| async move {
            let made = make(
                &app.db,
                Effect::Append {
                    record,
                    with: Vec::new(),
                },
            )
            .await;
            (index, sequence_number, made)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>();
    let (appended, counted) = futures::join!(appended, make_counting(&app.db, counting));
    for (index, sequence_number, made) in appended {
        match made {
            Ok(handled) => tally(handled, 1),
            Err(err) => failures.push((index, sequence_number, err)),
        }
    }
    failures.extend(counted.err());
    retried_from_first(consumer, failures)
}

/// The response that has Lambda retry a stream batch from the first of `failures` in the stream's
/// order (everything before it was made), or take it all when there are none.
fn retried_from_first(consumer: &str, mut failures: Vec<Failure>) -> DynamoDbEventResponse {
    failures.sort_by_key(|(index, _, _)| *index);
    let mut failures = failures.into_iter();
    let Some((_, sequence_number, err)) = failures.next() else {
        return DynamoDbEventResponse::default();
    };
    for (_, later, err) in failures {
        tracing::warn!(consumer, sequence_number = %later, code = err.code, error = %err, "a later event of the batch failed too");
    }
    retried_from(consumer, sequence_number, &err)
}

/// An event that was not made: its place in the batch, its sequence number, and why.
type Failure = (usize, String, ApiError);

/// Makes the counting events' effects in as few transactions as fit, one after another; stops at
/// the first that fails.
async fn make_counting(
    db: &Db,
    counting: Vec<(usize, String, Item, Vec<CounterUpdate>)>,
) -> Result<(), Failure> {
    let mut held = Held::default();
    for (index, sequence_number, record, with) in counting {
        if !held.has_room_for(&record, &with) {
            held.make(db).await?;
        }
        held.hold(index, sequence_number, record, with);
    }
    held.make(db).await
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
    events: Vec<(usize, String, Item, Vec<CounterUpdate>)>,
}

impl Held {
    /// Whether one more event fits one transaction with these (counting each counter update as an
    /// item of its own, before merging), and its record is not among them already.
    fn has_room_for(&self, record: &Item, with: &[CounterUpdate]) -> bool {
        let items: usize = self.events.iter().map(|(_, _, _, w)| 1 + w.len()).sum();
        let key = |item: &Item| (item.get("PK").cloned(), item.get("SK").cloned());
        items + 1 + with.len() <= MAX_TRANSACTION_ITEMS
            && self
                .events
                .iter()
                .all(|(_, _, held, _)| key(held) != key(record))
    }

    fn hold(
        &mut self,
        index: usize,
        sequence_number: String,
        record: Item,
        with: Vec<CounterUpdate>,
    ) {
        self.events.push((index, sequence_number, record, with));
    }

    /// Makes the held events' effects and empties the hold; on failure, the first event that was not
    /// made and why. A transaction that fails because one of the records exists (a batch delivered
    /// again) is retried event by event, so that each is made once or found made.
    async fn make(&mut self, db: &Db) -> Result<(), Failure> {
        let events = std::mem::take(&mut self.events);
        let first = |err: ApiError| (events[0].0, events[0].1.clone(), err);
        if events.len() > 1 {
            let actions = appended_with_counters(
                db,
                events.iter().map(|(_, _, record, _)| record.clone()),
                &merged(
                    events
                        .iter()
                        .flat_map(|(_, _, _, with)| with.iter().cloned()),
                ),
            )
            .map_err(|err| first(err.into()))?;
            match db.transact(actions).await {
                Ok(()) => {
                    tally(Handled::Processed, events.len());
                    return Ok(());
                }
                Err(err) if (0..events.len()).any(|i| err.condition_failed_at(i)) => {}
                Err(err) => return Err(first(err.into())),
            }
        }
        for (index, sequence_number, record, with) in events {
            match make(db, Effect::Append { record, with }).await {
                Ok(handled) => tally(handled, 1),
                Err(err) => return Err((index, sequence_number, err)),
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
    async fn an_effect_outside_stops_an_order_at_its_first_failure_and_names_it() {
        use crate::events::stream::fixtures::{order_event_image, record};
        // Order A's first event fails; A's second must wait for it; order B's go on.
        let orders: StreamEvent = serde_json::from_value(serde_json::json!({"Records": [
            record("INSERT", "0", order_event_image("b1", "order.refunded", "B")),
            record("INSERT", "1", order_event_image("a1", "order.refunded", "A")),
            record("INSERT", "2", order_event_image("a2", "order.refunded", "A")),
            record("INSERT", "3", order_event_image("b2", "order.refunded", "B")),
        ]}))
        .unwrap();
        let handled = std::sync::Mutex::new(Vec::new());
        let response = process_stream_outside("test", orders, |event| {
            handled.lock().unwrap().push(event.event_id.clone());
            async move {
                match event.event_id.as_str() {
                    "a1" => Err(ApiError::unavailable()),
                    _ => Ok(()),
                }
            }
        })
        .await;
        let mut handled = handled.into_inner().unwrap();
        handled.sort();
        assert_eq!(handled, ["a1", "b1", "b2"]);
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

    #[test]
    fn effects_made_side_by_side_are_retried_from_the_first_that_failed_in_the_stream() {
        // Failures come back in the order they happened, not the stream's.
        let failures = vec![
            (7, "17".to_owned(), ApiError::unavailable()),
            (2, "12".to_owned(), ApiError::unavailable()),
            (5, "15".to_owned(), ApiError::unavailable()),
        ];
        let named: Vec<_> = retried_from_first("test", failures)
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(named, [Some("12".to_owned())]);
        assert!(
            retried_from_first("test", Vec::new())
                .batch_item_failures
                .is_empty()
        );
    }
}
