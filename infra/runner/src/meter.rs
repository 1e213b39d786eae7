//! The cost meter: what the local stack's traffic would be billed on AWS, counted as it happens.
//!
//! Off until `POST /__local/meter {"on": true}` (which also clears it); `GET /__local/meter` reads
//! it. While on, it counts:
//!
//! - **DynamoDB**, by DynamoDB's billing rules: a write is billed on the larger of the item before and
//!   after it (1 unit per KB, rounded up), twice in a transaction (a condition check too); each global
//!   secondary index the item enters, leaves or changes in is a write of its projection (entry size:
//!   the projected attributes plus 100 bytes); a strongly consistent read is 1 unit per 4 KB, an
//!   eventually consistent one half, a transactional one twice; a query or scan is billed on the
//!   items it read, together. The front reads each written item before and after the write to know
//!   both sizes. Units are kept by operation and by item kind (`PK prefix/SK prefix`).
//! - **Lambda**: invocations and GB-seconds by function (the invocation's wall time, as Lambda bills
//!   it, at the function's memory).
//! - **API Gateway**: HTTP API requests; WebSocket messages sent and connection-minutes.
//! - **SQS**: requests, a batch counted per 64 KB of payload (the pollers' receives and deletes too);
//!   **KMS** and **S3** calls by operation.
//! - **CloudWatch Logs**: the bytes of every line a function writes (stdout and stderr: each is a
//!   log event), and of the lines Lambda itself writes around each invocation, as its
//!   `LoggingConfig` has them ([`platform_log_bytes`]). **X-Ray**: the traces its sampling would
//!   record, for functions with active tracing ([`XRAY_SAMPLED`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::Value;

static ON: AtomicBool = AtomicBool::new(false);
static COUNTS: Mutex<Option<Counts>> = Mutex::new(None);
static TABLE_CLASSES: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

/// The template's table classes, for every reading to carry (its prices depend on them).
pub fn table_classes(classes: BTreeMap<String, String>) {
    *TABLE_CLASSES.lock().unwrap_or_else(|e| e.into_inner()) = classes;
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Units {
    pub calls: u64,
    pub write_units: f64,
    pub read_units: f64,
    /// Write units of global secondary indexes (in `write_units` too).
    pub index_write_units: f64,
    /// Items written (for kinds).
    pub items: u64,
    /// Bytes of the items written, after the write.
    pub bytes: u64,
    /// The partitions the units landed on: (`table` or `table/index`, partition key value, units).
    #[serde(skip)]
    pub partitions: Vec<(String, String, f64)>,
}

impl Units {
    /// A read's units, landed on `partition` (its key value) of `place` (`table` or `table/index`)
    /// when the read names one.
    pub fn read(read_units: f64, place: &str, partition: Option<&str>) -> Self {
        Units {
            read_units,
            partitions: partition
                .map(|pk| vec![(place.to_owned(), pk.to_owned(), read_units)])
                .unwrap_or_default(),
            ..Units::default()
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invocations {
    pub invocations: u64,
    pub gb_seconds: f64,
    pub memory_mb: u32,
}

/// A function's log, by the lines it wrote and the lines Lambda wrote around its invocations.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Logs {
    pub lines: u64,
    pub bytes: u64,
    pub platform_bytes: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub dynamodb_by_operation: BTreeMap<String, Units>,
    pub dynamodb_by_kind: BTreeMap<String, Units>,
    pub lambda: BTreeMap<String, Invocations>,
    pub api_requests: u64,
    pub websocket_messages: u64,
    pub websocket_connection_minutes: f64,
    pub sqs_requests: BTreeMap<String, u64>,
    pub kms_requests: BTreeMap<String, u64>,
    pub s3_requests: BTreeMap<String, u64>,
    /// Write and read units by partition: `table|PK value` or `table/index|index PK value`.
    pub write_units_by_partition: BTreeMap<String, f64>,
    pub read_units_by_partition: BTreeMap<String, f64>,
    /// Every AWS call, by calling function and `service.Operation` (what a benchmark counts per
    /// request, without the functions' own span lines).
    pub aws_calls_by_function: BTreeMap<String, BTreeMap<String, u64>>,
    pub logs: BTreeMap<String, Logs>,
    /// The traces X-Ray would record: each invocation of an actively traced function, sampled.
    pub xray_traces: f64,
    /// The items the metered calls created and left in the table, by `table|key`: what they add
    /// to DynamoDB's storage bill, for as long as they stay.
    pub at_rest: BTreeMap<String, AtRest>,
    /// Each table's class, as the template gives it.
    pub table_classes: BTreeMap<String, String>,
}

/// An item at rest, as DynamoDB bills its storage: its bytes and 100 bytes of overhead, and each
/// of its global secondary index entries (projection, keys, 100 bytes).
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AtRest {
    pub kind: String,
    pub bytes: u64,
    pub index_bytes: u64,
    /// When TTL removes it (epoch seconds); none: kept.
    pub expires_at: Option<i64>,
}

/// What a write left at `key`: `Some` the item as it now is, `None` when it was deleted. Only items
/// a metered call created are kept: an item that was there before (a store's day counter, a
/// session) is not what the metered calls added.
pub fn at_rest(key: String, created: bool, item: Option<AtRest>) {
    with(|c| match item {
        None => {
            c.at_rest.remove(&key);
        }
        Some(item) if created || c.at_rest.contains_key(&key) => {
            c.at_rest.insert(key, item);
        }
        Some(_) => {}
    });
}

/// A function's `LoggingConfig`, as the template gives it.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Logging {
    /// `Text` (Lambda's default) or `JSON`.
    pub log_format: Option<String>,
    /// With `JSON`: `DEBUG`, `INFO` (the default) or `WARN`.
    pub system_log_level: Option<String>,
}

/// The share of an actively traced function's invocations X-Ray records: Lambda's sampling rule
/// takes the first request each second and 5 % of the rest, so 5 % at any volume worth pricing.
pub const XRAY_SAMPLED: f64 = 0.05;

/// The bytes Lambda writes to a function's log around one invocation (its system log), from
/// lines as Lambda prints them. Text: `START`, `END` and `REPORT` (X-Ray's ids after it when the
/// invocation is sampled: counted at [`XRAY_SAMPLED`]). JSON: `platform.start` and
/// `platform.report` at system level INFO or DEBUG, nothing at WARN. Left out: the init duration
/// in a cold start's report (~25 bytes once per instance).
pub fn platform_log_bytes(logging: &Logging, traced: bool) -> u64 {
    const ID: &str = "8f5a2c1e-0c4f-4b6e-9c1d-2f1c7e8b9a10";
    const TRACE: &str = "1-6751a2b3-4c5d6e7f8091a2b3c4d5e6f7";
    const SEGMENT: &str = "0a1b2c3d4e5f6a7b";
    let json = logging
        .log_format
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let sampled = |bytes: usize| {
        if traced {
            bytes as f64 * XRAY_SAMPLED
        } else {
            0.0
        }
    };
    let bytes = if !json {
        let lines = format!(
            "START RequestId: {ID} Version: $LATEST\n\
             END RequestId: {ID}\n\
             REPORT RequestId: {ID}\tDuration: 12.34 ms\tBilled Duration: 13 ms\t\
             Memory Size: 128 MB\tMax Memory Used: 20 MB\t\n"
        );
        let xray = format!("XRAY TraceId: {TRACE}\tSegmentId: {SEGMENT}\tSampled: true\t\n");
        lines.len() as f64 + sampled(xray.len())
    } else if logging
        .system_log_level
        .as_deref()
        .is_some_and(|l| l.eq_ignore_ascii_case("warn"))
    {
        0.0
    } else {
        let lines = format!(
            "{{\"time\":\"2026-12-05T11:30:00.000Z\",\"type\":\"platform.start\",\
             \"record\":{{\"requestId\":\"{ID}\",\"version\":\"$LATEST\"}}}}\n\
             {{\"time\":\"2026-12-05T11:30:00.013Z\",\"type\":\"platform.report\",\
             \"record\":{{\"requestId\":\"{ID}\",\"metrics\":{{\"durationMs\":12.34,\
             \"billedDurationMs\":13,\"memorySizeMB\":128,\"maxMemoryUsedMB\":20}},\
             \"status\":\"success\"}}}}\n"
        );
        // In both records when sampled.
        let xray = format!(
            ",\"tracing\":{{\"spanId\":\"{SEGMENT}\",\"type\":\"X-Amzn-Trace-Id\",\
             \"value\":\"Root={TRACE};Parent={SEGMENT};Sampled=1\"}}"
        );
        lines.len() as f64 + sampled(2 * xray.len())
    };
    bytes.round() as u64
}

pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Turns the meter on (cleared) or off.
pub fn switch(on: bool) {
    *COUNTS.lock().unwrap_or_else(|e| e.into_inner()) = Some(Counts::default());
    ON.store(on, Ordering::Relaxed);
}

pub fn read() -> Counts {
    let mut counts = COUNTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default();
    counts.table_classes = TABLE_CLASSES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    counts
}

fn with(f: impl FnOnce(&mut Counts)) {
    if !on() {
        return;
    }
    let mut counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    f(counts.get_or_insert_with(Counts::default));
}

/// One invocation of `function`, `seconds` long; Lambda's own log lines around it
/// ([`platform_log_bytes`]) and its X-Ray trace when the function is actively traced.
pub fn invocation(function: &str, memory_mb: u32, seconds: f64, logging: &Logging, traced: bool) {
    with(|c| {
        let entry = c.lambda.entry(function.to_owned()).or_default();
        entry.invocations += 1;
        entry.memory_mb = memory_mb;
        entry.gb_seconds += f64::from(memory_mb) / 1024.0 * seconds;
        c.logs
            .entry(function.to_owned())
            .or_default()
            .platform_bytes += platform_log_bytes(logging, traced);
        if traced {
            c.xray_traces += XRAY_SAMPLED;
        }
    });
}

/// One line `function` wrote (without its newline): one log event, billed by its bytes with the
/// newline.
pub fn log_line(function: &str, line: &str) {
    let bytes = billed_bytes(line) + 1;
    with(|c| {
        let entry = c.logs.entry(function.to_owned()).or_default();
        entry.lines += 1;
        entry.bytes += bytes as u64;
    });
}

/// A line's bytes as CloudWatch would take them on AWS: without the allocation counts that only
/// `make bench` asks for (`ORDERSYNC_COUNT_ALLOCATIONS`), so that counting does not move the bill.
fn billed_bytes(line: &str) -> usize {
    const FIELD: &str = ",\"heap\":{";
    let Some(start) = line.find(FIELD) else {
        return line.len();
    };
    match line[start + FIELD.len()..].find('}') {
        Some(end) => line.len() - (FIELD.len() + end + 1),
        None => line.len(),
    }
}

pub fn api_request() {
    with(|c| c.api_requests += 1);
}

pub fn websocket_message() {
    with(|c| c.websocket_messages += 1);
}

pub fn websocket_connection(minutes: f64) {
    with(|c| c.websocket_connection_minutes += minutes);
}

/// An SQS request carrying `payload` bytes: one billed request per 64 KB.
pub fn sqs(operation: &str, payload: usize) {
    with(|c| {
        *c.sqs_requests.entry(operation.to_owned()).or_default() +=
            payload.div_ceil(65_536).max(1) as u64
    });
}

/// One AWS call that `function` made (any service, billed or not).
pub fn aws_call(function: &str, service: &str, operation: &str) {
    with(|c| {
        *c.aws_calls_by_function
            .entry(function.to_owned())
            .or_default()
            .entry(format!("{service}.{operation}"))
            .or_default() += 1
    });
}

pub fn call(service: &str, operation: &str) {
    with(|c| {
        let map = match service {
            "kms" => &mut c.kms_requests,
            "s3" => &mut c.s3_requests,
            _ => return,
        };
        *map.entry(operation.to_owned()).or_default() += 1;
    });
}

/// DynamoDB units of one call, by item kind.
#[derive(Debug, Default)]
pub struct Billed {
    pub by_kind: Vec<(String, Units)>,
}

pub fn dynamodb(operation: &str, billed: Billed) {
    with(|c| {
        let op = c
            .dynamodb_by_operation
            .entry(operation.to_owned())
            .or_default();
        op.calls += 1;
        for (kind, units) in billed.by_kind {
            for (place, key, amount) in &units.partitions {
                let map = if units.read_units > 0.0 {
                    &mut c.read_units_by_partition
                } else {
                    &mut c.write_units_by_partition
                };
                *map.entry(format!("{place}|{key}")).or_default() += amount;
            }
            op.write_units += units.write_units;
            op.read_units += units.read_units;
            op.index_write_units += units.index_write_units;
            let k = c.dynamodb_by_kind.entry(kind).or_default();
            k.calls += 1;
            k.write_units += units.write_units;
            k.read_units += units.read_units;
            k.index_write_units += units.index_write_units;
            k.items += units.items;
            k.bytes += units.bytes;
        }
    });
}

// ------------------------------------------------------------------ DynamoDB's sizes and units

/// The size DynamoDB gives an attribute value (in its JSON wire form).
fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner
            .as_str()
            .map_or(0, |s| s.len() + sealed_text_shortfall(s)),
        "N" => number_size(inner.as_str().unwrap_or("0")),
        "B" => inner.as_str().map_or(0, |b| {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default();
            bytes.len() + sealed_shortfall(&bytes)
        }),
        "BOOL" | "NULL" => 1,
        "SS" => inner.as_array().map_or(0, |a| {
            a.iter().filter_map(Value::as_str).map(str::len).sum()
        }),
        "NS" => inner.as_array().map_or(0, |a| {
            a.iter().filter_map(Value::as_str).map(number_size).sum()
        }),
        "BS" => inner.as_array().map_or(0, |a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|b| b.len() * 3 / 4)
                .sum()
        }),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |a| a.iter().map(|v| 1 + value_size(v)).sum::<usize>())
        }
        "M" => {
            3 + inner.as_object().map_or(0, |m| {
                m.iter()
                    .map(|(k, v)| 1 + k.len() + value_size(v))
                    .sum::<usize>()
            })
        }
        _ => 0,
    }
}

/// What AWS KMS's wrapped data key (a `CiphertextBlob` of 184 bytes for an AES-256 key under a
/// symmetric KMS key) adds to a sealed value (shared::crypto::format, stored as binary) over the
/// emulator's shorter blob: sealed values are sized as they would be on AWS, or items near a
/// kilobyte's edge would be billed a unit less here than there. A binary value that does not begin
/// as a sealed one does (version 1, key time, the wrapped key's length) is taken as it is.
fn sealed_shortfall(bytes: &[u8]) -> usize {
    const AWS_WRAPPED_KEY: usize = 184;
    // Version (1), key time (8), then the wrapped key's length (2).
    match bytes {
        [1, _, _, _, _, _, _, _, _, hi, lo, rest @ ..] => {
            let wrapped = usize::from(u16::from_be_bytes([*hi, *lo]));
            if rest.len() >= wrapped + 12 + 16 {
                AWS_WRAPPED_KEY.saturating_sub(wrapped)
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// [`sealed_shortfall`] of a sealed value stored as text: `enc1:` and base64, four characters per
/// three bytes.
fn sealed_text_shortfall(value: &str) -> usize {
    use base64::Engine;
    let Some(encoded) = value.strip_prefix("enc1:") else {
        return 0;
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_default();
    sealed_shortfall(&bytes).div_ceil(3) * 4
}

/// A number: about one byte per two significant digits, plus one.
fn number_size(number: &str) -> usize {
    let digits = number
        .trim_start_matches('-')
        .replace('.', "")
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len();
    digits.div_ceil(2) + 1
}

pub fn item_size(item: &serde_json::Map<String, Value>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// One key's read in a `BatchGetItem`.
pub struct BatchRead {
    pub table: String,
    pub key: serde_json::Map<String, Value>,
    pub units: f64,
}

/// A `BatchGetItem`'s reads, key by key, so that each is counted for its own item kind and
/// partition (a batch reads a store and its menu, an order and its payment): each item on its own,
/// rounded up to 4 KB (not the batch's bytes together), a key asked for and not found as a read of
/// nothing (as `GetItem` is billed), strongly consistent where the table's `RequestItems` entry asks
/// for it. Keys left unprocessed are not read (the caller asks again, billed then).
pub fn batch_reads(request: &Value, response: &Value) -> Vec<BatchRead> {
    let mut reads = Vec::new();
    for (table, asked) in request["RequestItems"].as_object().into_iter().flatten() {
        let consistent = asked["ConsistentRead"] == true;
        let unprocessed = response["UnprocessedKeys"][table]["Keys"].as_array();
        let found = response["Responses"][table].as_array();
        let keys = asked["Keys"].as_array().into_iter().flatten();
        for key in keys.filter_map(Value::as_object) {
            let is_key = |item: &Value| {
                item.as_object()
                    .is_some_and(|item| key.iter().all(|(name, v)| item.get(name) == Some(v)))
            };
            if unprocessed.is_some_and(|keys| keys.iter().any(is_key)) {
                continue;
            }
            let item = found.and_then(|items| items.iter().find(|item| is_key(item)));
            let bytes = item.and_then(Value::as_object).map_or(0, item_size);
            reads.push(BatchRead {
                table: table.clone(),
                key: key.clone(),
                units: read_units(bytes, consistent),
            });
        }
    }
    reads
}

/// A global secondary index, as DescribeTable gives it.
#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub keys: Vec<String>,
    /// `None`: ALL; otherwise the projected non-key attributes (empty: KEYS_ONLY).
    pub projected: Option<Vec<String>>,
}

/// The table's keys and indexes.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub table: String,
    pub keys: Vec<String>,
    pub indexes: Vec<Index>,
}

impl Schema {
    pub fn from_description(table: &Value) -> Self {
        let keys = |schema: &Value| -> Vec<String> {
            schema
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k["AttributeName"].as_str().map(String::from))
                .collect()
        };
        Self {
            table: table["TableName"].as_str().unwrap_or_default().to_owned(),
            keys: keys(&table["KeySchema"]),
            indexes: table["GlobalSecondaryIndexes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| Index {
                    name: i["IndexName"].as_str().unwrap_or_default().to_owned(),
                    keys: keys(&i["KeySchema"]),
                    projected: match i["Projection"]["ProjectionType"].as_str() {
                        Some("ALL") => None,
                        Some("INCLUDE") => Some(
                            i["Projection"]["NonKeyAttributes"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|a| a.as_str().map(String::from))
                                .collect(),
                        ),
                        _ => Some(Vec::new()),
                    },
                })
                .collect(),
        }
    }

    /// The size of `item`'s entry in `index` (`None`: the item is not in it).
    fn entry_size(&self, index: &Index, item: &serde_json::Map<String, Value>) -> Option<usize> {
        if !index.keys.iter().all(|k| item.contains_key(k)) {
            return None;
        }
        let size = match &index.projected {
            None => item_size(item),
            Some(extra) => item
                .iter()
                .filter(|(name, _)| {
                    index.keys.contains(name) || self.keys.contains(name) || extra.contains(name)
                })
                .map(|(name, value)| name.len() + value_size(value))
                .sum(),
        };
        Some(size + 100)
    }

    fn entry<'a>(
        &self,
        index: &Index,
        item: &'a serde_json::Map<String, Value>,
    ) -> Vec<(&'a String, &'a Value)> {
        item.iter()
            .filter(|(name, _)| match &index.projected {
                None => true,
                Some(extra) => {
                    index.keys.contains(name) || self.keys.contains(name) || extra.contains(name)
                }
            })
            .collect()
    }

    /// `item` at rest (see [`AtRest`]), of `kind`.
    pub fn at_rest(&self, kind: String, item: &serde_json::Map<String, Value>) -> AtRest {
        AtRest {
            kind,
            bytes: (item_size(item) + 100) as u64,
            index_bytes: self
                .indexes
                .iter()
                .filter_map(|index| self.entry_size(index, item))
                .sum::<usize>() as u64,
            expires_at: item
                .get("expiresAt")
                .and_then(|v| v["N"].as_str())
                .and_then(|n| n.parse().ok()),
        }
    }

    /// The units of one item's write, from its image before and after (`None`: absent).
    pub fn write(
        &self,
        before: Option<&serde_json::Map<String, Value>>,
        after: Option<&serde_json::Map<String, Value>>,
        transactional: bool,
    ) -> Units {
        let size = before
            .map(item_size)
            .unwrap_or(0)
            .max(after.map(item_size).unwrap_or(0));
        let mut units = Units {
            items: 1,
            bytes: after.map(item_size).unwrap_or(0) as u64,
            write_units: write_units(size) * if transactional { 2.0 } else { 1.0 },
            ..Units::default()
        };
        let image = after.or(before);
        if let Some(pk) = image.and_then(|i| self.partition(&self.keys, i)) {
            units
                .partitions
                .push((self.table.clone(), pk, units.write_units));
        }
        for index in &self.indexes {
            let old = before.and_then(|b| self.entry_size(index, b));
            let new = after.and_then(|a| self.entry_size(index, a));
            let keys_of = |item: Option<&serde_json::Map<String, Value>>| {
                item.map(|i| {
                    index
                        .keys
                        .iter()
                        .map(|k| i.get(k).cloned())
                        .collect::<Vec<_>>()
                })
            };
            let cost = match (old, new) {
                (None, None) => 0.0,
                (None, Some(n)) => write_units(n),
                (Some(o), None) => write_units(o),
                (Some(o), Some(n)) if keys_of(before) != keys_of(after) => {
                    write_units(o) + write_units(n)
                }
                (Some(_), Some(n)) => {
                    let (b, a) = (
                        before.unwrap_or(&Default::default()).clone(),
                        after.unwrap_or(&Default::default()).clone(),
                    );
                    if self.entry(index, &b) == self.entry(index, &a) {
                        0.0
                    } else {
                        write_units(n)
                    }
                }
            };
            units.index_write_units += cost;
            units.write_units += cost;
            if cost > 0.0 {
                // Charged to the partition the entry is in now (or was in, when it left).
                let pk = after
                    .and_then(|a| self.partition(&index.keys, a))
                    .or_else(|| before.and_then(|b| self.partition(&index.keys, b)));
                if let Some(pk) = pk {
                    units
                        .partitions
                        .push((format!("{}/{}", self.table, index.name), pk, cost));
                }
            }
        }
        units
    }

    /// The partition key value of `item` under `keys` (the hash key first).
    fn partition(&self, keys: &[String], item: &serde_json::Map<String, Value>) -> Option<String> {
        let value = item.get(keys.first()?)?;
        value["S"]
            .as_str()
            .map(String::from)
            .or_else(|| value["N"].as_str().map(String::from))
    }
}

/// `PK prefix/SK prefix` of an item (or key): what kind of item it is.
pub fn kind(item: &serde_json::Map<String, Value>) -> String {
    let prefix = |name: &str| {
        item.get(name)
            .and_then(|v| v["S"].as_str())
            .map(|s| {
                let head = s.split('#').next().unwrap_or_default();
                if head.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                    head.to_owned()
                } else {
                    "*".to_owned()
                }
            })
            .unwrap_or_else(|| "?".to_owned())
    };
    format!("{}/{}", prefix("PK"), prefix("SK"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_benchs_allocation_counts_are_not_billed() {
        let plain = r#"{"level":"INFO","Latency":1.5}"#;
        let counted = r#"{"level":"INFO","Latency":1.5,"heap":{"allocations":153,"frees":150}}"#;
        assert_eq!(billed_bytes(plain), plain.len());
        assert_eq!(billed_bytes(counted), plain.len());
        let cut = r#"{"level":"INFO","heap":{"allocations":1"#;
        assert_eq!(billed_bytes(cut), cut.len());
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        let item = map(
            json!({"PK": {"S": "ORDER#1"}, "n": {"N": "12345"}, "ok": {"BOOL": true},
            "l": {"L": [{"S": "ab"}]}}),
        );
        // PK 2+7, n 1+4, ok 2+1, l 1+(3+1+2)
        assert_eq!(item_size(&item), 9 + 5 + 3 + 7);
        assert_eq!(number_size("-0.0012300"), 3);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(5000, false), 1.0);
    }

    #[test]
    fn a_batch_read_bills_each_item_and_each_key_not_found() {
        let small = json!({"PK": {"S": "A"}, "SK": {"S": "1"}});
        let big = json!({"PK": {"S": "B"}, "SK": {"S": "1"}, "x": {"S": "x".repeat(5000)}});
        let request = |consistent: bool| {
            json!({"RequestItems": {"t": {"ConsistentRead": consistent,
                "Keys": [{"PK": {"S": "A"}}, {"PK": {"S": "B"}}, {"PK": {"S": "C"}}, {"PK": {"S": "D"}}]}}})
        };
        let response = json!({"Responses": {"t": [small, big]},
            "UnprocessedKeys": {"t": {"Keys": [{"PK": {"S": "D"}}]}}});
        let units = |consistent| {
            batch_reads(&request(consistent), &response)
                .iter()
                .map(|read| read.units)
                .sum::<f64>()
        };
        // 1 (small) + 2 (over 4 KB) + 1 (C, not found); D unprocessed.
        assert_eq!(units(true), 4.0);
        assert_eq!(units(false), 2.0);
        // Key by key, whatever order the items came back in.
        let response = json!({"Responses": {"t": [big, small]},
            "UnprocessedKeys": {"t": {"Keys": [{"PK": {"S": "D"}}]}}});
        let reads: Vec<(String, f64)> = batch_reads(&request(true), &response)
            .into_iter()
            .map(|read| (read.key["PK"]["S"].as_str().unwrap().to_owned(), read.units))
            .collect();
        assert_eq!(
            reads,
            [("A".into(), 1.0), ("B".into(), 2.0), ("C".into(), 1.0)]
        );
    }

    #[test]
    fn sealed_values_are_sized_with_awss_wrapped_key() {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        let sealed = |wrapped: usize| {
            let mut bytes = vec![1u8];
            bytes.extend_from_slice(&7u64.to_be_bytes());
            bytes.extend_from_slice(&(wrapped as u16).to_be_bytes());
            bytes.extend(std::iter::repeat_n(0u8, wrapped + 12 + 20));
            bytes
        };
        let text = |bytes: Vec<u8>| format!("enc1:{}", STANDARD.encode(bytes));
        assert_eq!(sealed_text_shortfall(&text(sealed(184))), 0);
        assert_eq!(sealed_text_shortfall(&text(sealed(94))), 120);
        assert_eq!(sealed_text_shortfall("enc1:"), 0);
        assert_eq!(sealed_text_shortfall("plain text"), 0);
        let short = json!({"S": text(sealed(94))});
        assert_eq!(value_size(&short), text(sealed(184)).len());

        assert_eq!(sealed_shortfall(&sealed(184)), 0);
        assert_eq!(sealed_shortfall(&sealed(94)), 90);
        // Not a whole sealed value: taken as it is.
        assert_eq!(sealed_shortfall(&sealed(94)[..100]), 0);
        assert_eq!(sealed_shortfall(b"plain bytes"), 0);
        let short = json!({"B": STANDARD.encode(sealed(94))});
        assert_eq!(value_size(&short), sealed(184).len());
    }

    #[test]
    fn writes_count_the_larger_image_twice_in_a_transaction_and_each_index() {
        let schema = Schema {
            keys: vec!["PK".into(), "SK".into()],
            table: "t".into(),
            indexes: vec![
                Index {
                    name: "GSI1".into(),
                    keys: vec!["G1PK".into(), "G1SK".into()],
                    projected: None,
                },
                Index {
                    name: "GSI3".into(),
                    keys: vec!["G3PK".into(), "G3SK".into()],
                    projected: Some(vec![]),
                },
            ],
        };
        let before = map(json!({"PK": {"S": "ORDER#1"}, "SK": {"S": "ORDER"},
            "G1PK": {"S": "a"}, "G1SK": {"S": "1"}, "G3PK": {"S": "P"}, "G3SK": {"S": "1"},
            "big": {"S": "x".repeat(1500)}}));
        let mut after = before.clone();
        after.remove("G3PK");
        after.remove("G3SK");
        after.insert("status".into(), json!({"S": "PAID"}));
        let units = schema.write(Some(&before), Some(&after), true);
        // base: 2 KB × 2; GSI1 (ALL, changed): 2; GSI3 (left it): 1
        assert_eq!(units.write_units, 4.0 + 2.0 + 1.0);
        assert_eq!(units.index_write_units, 3.0);
        let places: Vec<(&str, &str)> = units
            .partitions
            .iter()
            .map(|(place, key, _)| (place.as_str(), key.as_str()))
            .collect();
        assert_eq!(places, [("t", "ORDER#1"), ("t/GSI1", "a"), ("t/GSI3", "P")]);
        assert_eq!(kind(&after), "ORDER/ORDER");

        // At rest: the item and 100 bytes; its GSI1 entry (ALL: the item again) and 100 bytes;
        // no GSI3 entry (it left); kept (no `expiresAt`).
        let stored = schema.at_rest(kind(&after), &after);
        let size = item_size(&after) as u64;
        assert_eq!(
            (stored.bytes, stored.index_bytes, stored.expires_at),
            (size + 100, size + 100, None)
        );
        // A keys-only entry is its keys and the table's, and 100 bytes; TTL is read off the item.
        let mut pending = before.clone();
        pending.remove("G1PK");
        pending.insert("expiresAt".into(), json!({"N": "1800000000"}));
        let stored = schema.at_rest(kind(&pending), &pending);
        let keys = ["PK", "SK", "G3PK", "G3SK"]
            .iter()
            .map(|k| k.len() + value_size(&pending[*k]))
            .sum::<usize>() as u64;
        assert_eq!(
            (stored.index_bytes, stored.expires_at),
            (keys + 100, Some(1_800_000_000))
        );
    }

    #[test]
    fn lambdas_own_lines_follow_the_logging_config() {
        let text = Logging::default();
        let json = |level: Option<&str>| Logging {
            log_format: Some("JSON".into()),
            system_log_level: level.map(str::to_owned),
        };
        // START, END and REPORT, as Lambda prints them in its default text format.
        let plain = platform_log_bytes(&text, false);
        assert!((250..300).contains(&plain), "{plain}");
        // Sampled 1 in 20, a traced invocation's report carries X-Ray's ids (93 bytes).
        assert_eq!(platform_log_bytes(&text, true) - plain, 5);
        assert!((300..400).contains(&platform_log_bytes(&json(None), false)));
        assert_eq!(
            platform_log_bytes(&json(Some("INFO")), false),
            platform_log_bytes(&json(None), false)
        );
        assert_eq!(platform_log_bytes(&json(Some("WARN")), true), 0);
    }
}
