//! DynamoDB stream event sources, as Lambda's event source mapping runs them: each shard is read in
//! order, records that do not match the mapping's `FilterCriteria` are dropped, and the rest go to
//! the function in batches. A batch is retried until the function takes it (`MaximumRetryAttempts:
//! -1`); with `ReportBatchItemFailures`, from the first record it names. Nothing after a failing record
//! is delivered before it: its lane waits, as on Lambda.
//!
//! `ParallelizationFactor` N splits a shard into N lanes by the record's item (its partition and
//! sort key), as Lambda does ("in-order processing at the item (partition and sort key) level"): an
//! item's records stay in order in their lane, and the lanes' batches run at once, each
//! waiting only on its own failures (until a stuck lane's backlog fills and the shard's reading
//! waits for it). `MaximumBatchingWindowInSeconds` has a lane gather records until its batch is
//! full or the window, counted from the batch's first record, has passed.
//!
//! The stream is read through its JSON API (DynamoDB Streams' wire format is the event's record
//! format), so records reach the function as they left the emulator.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::lambda::{Function, Outcome, Runtime};

const POLL: Duration = Duration::from_millis(100);
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Pages of records a lane may have waiting before the shard's reading waits for it.
const LANE_BACKLOG: usize = 64;

pub fn start(runtime: &Arc<Runtime>, endpoint: &str, region: &str) {
    for function in &runtime.functions {
        for source in &function.spec.sources {
            if source["type"] == "DynamoDB"
                && let Some(arn) = source["Stream"].as_str()
            {
                let api = StreamsApi {
                    http: reqwest::Client::new(),
                    endpoint: endpoint.to_owned(),
                    region: region.to_owned(),
                };
                tokio::spawn(poll(
                    runtime.clone(),
                    function.clone(),
                    api,
                    Mapping {
                        arn: arn.to_owned(),
                        batch_size: source["BatchSize"].as_u64().unwrap_or(100).clamp(1, 1000)
                            as usize,
                        lanes: lanes(source),
                        window: Duration::from_secs(
                            source["MaximumBatchingWindowInSeconds"]
                                .as_u64()
                                .unwrap_or(0)
                                .min(300),
                        ),
                        filters: source["FilterCriteria"]["Filters"]
                            .as_array()
                            .map(|f| {
                                f.iter()
                                    .filter_map(|f| f["Pattern"].as_str())
                                    .filter_map(|p| serde_json::from_str(p).ok())
                                    .collect()
                            })
                            .unwrap_or_default(),
                        reports_failures: source["FunctionResponseTypes"]
                            .as_array()
                            .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures")),
                    },
                ));
            }
        }
    }
}

/// A stream source's `ParallelizationFactor`: 1 to 10 lanes.
fn lanes(source: &Value) -> usize {
    source["ParallelizationFactor"]
        .as_u64()
        .unwrap_or(1)
        .clamp(1, 10) as usize
}

/// The lane of `function`'s stream that an item's records take (`pk`, `sk`), for tests that must
/// know which records wait on which (`GET /__local/functions/{name}/lane?pk=…&sk=…`). `None`
/// when the function reads no stream.
pub fn lane_of_key(function: &Function, pk: &str, sk: &str) -> Option<usize> {
    let source = function
        .spec
        .sources
        .iter()
        .find(|s| s["type"] == "DynamoDB")?;
    Some(lane_of_item(pk, sk, lanes(source)))
}

struct Mapping {
    arn: String,
    batch_size: usize,
    /// `ParallelizationFactor`: batches of a shard at once.
    lanes: usize,
    /// `MaximumBatchingWindowInSeconds`.
    window: Duration,
    filters: Vec<Value>,
    reports_failures: bool,
}

struct StreamsApi {
    http: reqwest::Client,
    endpoint: String,
    region: String,
}

impl StreamsApi {
    async fn call(&self, operation: &str, input: Value) -> Result<Value, String> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "x-amz-target",
                format!("DynamoDBStreams_20120810.{operation}"),
            )
            // The emulator takes the service and region from the credential scope; it checks no
            // signature.
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20260101/{}/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                    self.region
                ),
            )
            .body(input.to_string())
            .send()
            .await
            .map_err(|e| format!("{operation}: {e}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("{operation}: {e}"))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{operation}: {status} {body}"))
        }
    }

    async fn iterator(&self, arn: &str, shard: &str) -> Result<String, String> {
        let out = self
            .call(
                "GetShardIterator",
                json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
            )
            .await?;
        out["ShardIterator"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| "no shard iterator".to_owned())
    }
}

async fn poll(runtime: Arc<Runtime>, function: Arc<Function>, api: StreamsApi, mapping: Mapping) {
    let name = function.spec.name.clone();
    let mapping = Arc::new(mapping);
    // The local table has one shard.
    let (shard, mut iterator) = loop {
        let started = async {
            let stream = api
                .call("DescribeStream", json!({"StreamArn": mapping.arn}))
                .await?;
            let shard = stream["StreamDescription"]["Shards"][0]["ShardId"]
                .as_str()
                .ok_or("the stream has no shard")?
                .to_owned();
            let iterator = api.iterator(&mapping.arn, &shard).await?;
            Ok::<_, String>((shard, iterator))
        };
        match started.await {
            Ok(found) => break found,
            Err(err) => {
                eprintln!("[{name}] stream {}: {err}", mapping.arn);
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    };
    let lanes: Vec<mpsc::Sender<Vec<Value>>> = (0..mapping.lanes)
        .map(|_| {
            let (pages, taken) = mpsc::channel(LANE_BACKLOG);
            tokio::spawn(lane(
                runtime.clone(),
                function.clone(),
                mapping.clone(),
                taken,
            ));
            pages
        })
        .collect();
    loop {
        let page = match api
            .call(
                "GetRecords",
                json!({"ShardIterator": iterator, "Limit": mapping.batch_size}),
            )
            .await
        {
            Ok(page) => page,
            Err(err) => {
                eprintln!("[{name}] reading the stream: {err}");
                tokio::time::sleep(RETRY_DELAY).await;
                if let Ok(fresh) = api.iterator(&mapping.arn, &shard).await {
                    iterator = fresh;
                }
                continue;
            }
        };
        if let Some(next) = page["NextShardIterator"].as_str() {
            iterator = next.to_owned();
        }
        let records: Vec<Value> = page["Records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|r| normalise(r, &mapping.arn, &api.region))
            .filter(|r| mapping.filters.is_empty() || mapping.filters.iter().any(|p| matches(p, r)))
            .collect();
        if records.is_empty() {
            if page["Records"].as_array().is_none_or(|r| r.is_empty()) {
                tokio::time::sleep(POLL).await;
            }
            continue;
        }
        let mut by_lane = vec![Vec::new(); lanes.len()];
        for record in records {
            by_lane[lane_of(&record, lanes.len())].push(record);
        }
        for (lane, records) in lanes.iter().zip(by_lane) {
            if !records.is_empty() && lane.send(records).await.is_err() {
                return;
            }
        }
    }
}

/// The lane of a record: by its item, so that an item's records stay in order (and no more: two
/// items of one partition key may be taken in either order, as on Lambda).
fn lane_of(record: &Value, lanes: usize) -> usize {
    let keys = &record["dynamodb"]["Keys"];
    let text = |name: &str| keys[name]["S"].as_str().unwrap_or_default();
    lane_of_item(text("PK"), text("SK"), lanes)
}

fn lane_of_item(pk: &str, sk: &str, lanes: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (pk, sk).hash(&mut hasher);
    (hasher.finish() % lanes.max(1) as u64) as usize
}

/// Takes a lane's records in batches, in order.
async fn lane(
    runtime: Arc<Runtime>,
    function: Arc<Function>,
    mapping: Arc<Mapping>,
    mut pages: mpsc::Receiver<Vec<Value>>,
) {
    let mut waiting = VecDeque::new();
    while let Some(batch) =
        next_batch(&mut waiting, &mut pages, mapping.batch_size, mapping.window).await
    {
        deliver(&runtime, &function, &mapping, batch).await;
    }
}

/// The lane's next batch: what is waiting, and what arrives until the batch is full or `window`
/// (from when the batch began) has passed; at most `batch_size` records, the rest left waiting.
/// `None` once the lane is closed and empty.
async fn next_batch(
    waiting: &mut VecDeque<Value>,
    pages: &mut mpsc::Receiver<Vec<Value>>,
    batch_size: usize,
    window: Duration,
) -> Option<Vec<Value>> {
    if waiting.is_empty() {
        waiting.extend(pages.recv().await?);
    }
    let window_ends = tokio::time::Instant::now() + window;
    while waiting.len() < batch_size {
        let page = match pages.try_recv() {
            Ok(page) => Some(page),
            Err(mpsc::error::TryRecvError::Empty) if !window.is_zero() => {
                tokio::time::timeout_at(window_ends, pages.recv())
                    .await
                    .ok()
                    .flatten()
            }
            Err(_) => None,
        };
        match page {
            Some(page) => waiting.extend(page),
            None => break,
        }
    }
    Some(waiting.drain(..waiting.len().min(batch_size)).collect())
}

/// Delivers `records` until the function has taken all of them.
async fn deliver(
    runtime: &Arc<Runtime>,
    function: &Arc<Function>,
    mapping: &Mapping,
    mut records: Vec<Value>,
) {
    loop {
        let outcome = runtime
            .invoke_event(
                function,
                Bytes::from(json!({ "Records": records }).to_string()),
            )
            .await;
        let retry_from = match outcome {
            Outcome::Response(body) if mapping.reports_failures => first_failed(&body, &records),
            Outcome::Response(_) => None,
            Outcome::Failed(reason) => {
                eprintln!(
                    "[{}] stream batch failed ({reason}); retrying",
                    function.spec.name
                );
                Some(0)
            }
            Outcome::TimedOut => Some(0),
        };
        match retry_from {
            None => return,
            Some(index) => {
                records.drain(..index);
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
}

/// The index of the first record the function reported as failed (by sequence number); an answer that
/// cannot be read, or names no record of the batch, fails it all.
fn first_failed(body: &[u8], records: &[Value]) -> Option<usize> {
    let Ok(response) = serde_json::from_slice::<Value>(body) else {
        return Some(0);
    };
    let failures = response["batchItemFailures"].as_array()?;
    if failures.is_empty() {
        return None;
    }
    failures
        .iter()
        .map(|f| {
            let id = f["itemIdentifier"].as_str().unwrap_or_default();
            records
                .iter()
                .position(|r| r["dynamodb"]["SequenceNumber"] == id)
                .unwrap_or(0)
        })
        .min()
}

/// What Lambda adds to a stream record: the source's ARN and region.
fn normalise(mut record: Value, arn: &str, region: &str) -> Value {
    record["eventSourceARN"] = json!(arn);
    record["awsRegion"] = json!(region);
    record
}

/// Lambda's event filtering, for the patterns templates use: every key of the pattern must be in the
/// record, but one whose list holds `{"exists": false}`, which must not; a list matches when the
/// record's value is one of it, starts with a `{"prefix": …}` of it, or is a value at all and the
/// list holds `{"exists": true}`; an object, recursively.
fn matches(pattern: &Value, value: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, sub)| match value.get(key) {
            Some(v) => matches(sub, v),
            None => sub
                .as_array()
                .is_some_and(|allowed| allowed.iter().any(|a| a["exists"] == false)),
        }),
        Value::Array(allowed) => allowed.iter().any(|a| {
            if let Some(prefix) = a["prefix"].as_str() {
                value.as_str().is_some_and(|v| v.starts_with(prefix))
            } else if let Some(exists) = a["exists"].as_bool() {
                // Lambda's `exists` holds of a value, not of an object or a list.
                exists && !value.is_object() && !value.is_array()
            } else {
                a == value
            }
        }),
        other => other == value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_lambda_does() {
        let pattern = json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"entity": {"S": ["EVENT"]}}}});
        let event = json!({"eventName": "INSERT", "dynamodb": {"NewImage": {"entity": {"S": "EVENT"}, "PK": {"S": "x"}}}});
        let order =
            json!({"eventName": "INSERT", "dynamodb": {"NewImage": {"PK": {"S": "ORDER#1"}}}});
        let modified =
            json!({"eventName": "MODIFY", "dynamodb": {"NewImage": {"entity": {"S": "EVENT"}}}});
        assert!(matches(&pattern, &event));
        assert!(!matches(&pattern, &order));
        assert!(!matches(&pattern, &modified));

        let orders =
            json!({"dynamodb": {"NewImage": {"eventType": {"S": [{"prefix": "order."}]}}}});
        let typed = |kind: &str| json!({"dynamodb": {"NewImage": {"eventType": {"S": kind}}}});
        assert!(matches(&orders, &typed("order.refunded")));
        assert!(!matches(&orders, &typed("user.signed_in")));
        assert!(!matches(
            &orders,
            &json!({"dynamodb": {"NewImage": {"eventType": {"N": "1"}}}})
        ));

        let revoked = json!({"dynamodb": {"NewImage": {"revokedAt": {"S": [{"exists": true}]}}}});
        let session = |image: Value| json!({"dynamodb": {"NewImage": image}});
        assert!(matches(
            &revoked,
            &session(json!({"revokedAt": {"S": "2026-12-07T10:00:00Z"}}))
        ));
        assert!(!matches(
            &revoked,
            &session(json!({"refreshGeneration": {"N": "2"}}))
        ));
        assert!(!matches(
            &revoked,
            &session(json!({"revokedAt": {"S": {"nested": 1}}}))
        ));
        let live = json!({"dynamodb": {"NewImage": {"revokedAt": [{"exists": false}]}}});
        assert!(matches(
            &live,
            &session(json!({"refreshGeneration": {"N": "2"}}))
        ));
        assert!(!matches(&live, &session(json!({"revokedAt": {"S": "x"}}))));
    }

    #[test]
    fn a_reported_failure_retries_from_that_record() {
        let records = vec![
            json!({"dynamodb": {"SequenceNumber": "10"}}),
            json!({"dynamodb": {"SequenceNumber": "11"}}),
            json!({"dynamodb": {"SequenceNumber": "12"}}),
        ];
        let body =
            br#"{"batchItemFailures": [{"itemIdentifier": "12"}, {"itemIdentifier": "11"}]}"#;
        assert_eq!(first_failed(body, &records), Some(1));
        assert_eq!(
            first_failed(br#"{"batchItemFailures": []}"#, &records),
            None
        );
        assert_eq!(first_failed(b"not json", &records), Some(0));
    }

    fn records(sequence: std::ops::Range<u64>) -> Vec<Value> {
        sequence
            .map(|n| json!({"dynamodb": {"SequenceNumber": n.to_string()}}))
            .collect()
    }

    fn numbers(batch: &[Value]) -> Vec<u64> {
        batch
            .iter()
            .filter_map(|r| r["dynamodb"]["SequenceNumber"].as_str()?.parse().ok())
            .collect()
    }

    #[tokio::test]
    async fn without_a_window_a_batch_is_what_waits_up_to_its_size() {
        let (pages, mut taken) = mpsc::channel(8);
        let mut waiting = VecDeque::new();
        pages.send(records(0..3)).await.unwrap();
        pages.send(records(3..5)).await.unwrap();
        let batch = next_batch(&mut waiting, &mut taken, 4, Duration::ZERO).await;
        assert_eq!(numbers(&batch.unwrap()), [0, 1, 2, 3]);
        let batch = next_batch(&mut waiting, &mut taken, 4, Duration::ZERO).await;
        assert_eq!(
            numbers(&batch.unwrap()),
            [4],
            "the rest, at once: nothing else waits"
        );
        drop(pages);
        assert!(
            next_batch(&mut waiting, &mut taken, 4, Duration::ZERO)
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_window_gathers_what_arrives_until_the_batch_is_full() {
        let (pages, mut taken) = mpsc::channel(8);
        let mut waiting = VecDeque::new();
        pages.send(records(0..2)).await.unwrap();
        let later = tokio::spawn(async move {
            tokio::task::yield_now().await;
            pages.send(records(2..4)).await.unwrap();
            tokio::task::yield_now().await;
            pages.send(records(4..7)).await.unwrap();
            pages
        });
        // A window no test waits out: the batch ends when it is full.
        let batch = next_batch(&mut waiting, &mut taken, 5, Duration::from_secs(3600)).await;
        assert_eq!(numbers(&batch.unwrap()), [0, 1, 2, 3, 4]);
        let pages = later.await.unwrap();
        // What is left goes when the window passes with nothing more arriving.
        let batch = next_batch(&mut waiting, &mut taken, 5, Duration::from_millis(20)).await;
        assert_eq!(numbers(&batch.unwrap()), [5, 6]);
        drop(pages);
    }

    #[test]
    fn an_items_records_share_a_lane() {
        let keyed =
            |pk: &str, sk: &str| json!({"dynamodb": {"Keys": {"PK": {"S": pk}, "SK": {"S": sk}}}});
        let lanes: std::collections::BTreeSet<usize> = (0..100)
            .map(|n| lane_of(&keyed(&format!("ORDER#{n}"), "ORDER"), 10))
            .collect();
        assert!(lanes.len() > 5, "items spread over the lanes: {lanes:?}");
        // The items of one partition key too: Lambda keeps only an item's records in order.
        let one_key: std::collections::BTreeSet<usize> = (0..100)
            .map(|n| lane_of(&keyed("ORDER#1", &format!("EVENT#{n}")), 10))
            .collect();
        assert!(one_key.len() > 5, "one key's items spread: {one_key:?}");
        for n in 0..100 {
            let pk = format!("ORDER#{n}");
            assert_eq!(
                lane_of(&keyed(&pk, "ORDER"), 10),
                lane_of(&keyed(&pk, "ORDER"), 10)
            );
            // What the runner tells a test of an item is where its records go.
            assert_eq!(
                lane_of(&keyed(&pk, "ORDER"), 10),
                lane_of_item(&pk, "ORDER", 10)
            );
        }
        assert_eq!(lane_of(&keyed("ORDER#1", "ORDER"), 1), 0);
    }
}
