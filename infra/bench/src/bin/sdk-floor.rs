//! The AWS SDK's floor: CPU per DynamoDB call of the kinds our functions make, with the same SDK
//! configuration (`shared::aws::sdk_config`), the same build profile and a current-thread runtime,
//! through the same keep-alive front to the same emulator; and a Toss confirm's, with our Toss client
//! (`shared::payments::toss`) and its HTTP connector, to the same stand-in. What a request costs
//! beyond these calls (and beyond the runtime's per-event floor, the hello-world's) is our own code
//! (issue #20).
//!
//! Reads the functions' environment (`AWS_ENDPOINT_URL`, region, credentials, `TABLE_NAME`,
//! `TOSS_API_BASE` and `TOSS_SECRET_KEY`; without the last two it makes no Toss calls), and with
//! `FLOOR_ITEM_PK`/`FLOOR_ITEM_SK` reads and writes items shaped like that one. Two ways to run it:
//! - alone, with the number of calls per kind as its one argument: the calls back to back, then one
//!   JSON object on stdout, µs of CPU per call;
//! - under a Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API` set): a function that makes, for each
//!   event, the calls it names (`{"GetItem": 2, "PutItem": 1}`) and answers `{}`. The bench gives it
//!   an operation's calls and times it as it times the operation's function: the same calls with a
//!   function's runtime, its waits between events and nothing of ours.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, Select, TransactWriteItem};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use shared::payments::toss::TossClient;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The items the calls read and write, in a partition of their own; the Toss payment it confirms.
struct Calibration {
    client: Client,
    table: String,
    partition: String,
    /// Every item's attributes but its key.
    shape: HashMap<String, AttributeValue>,
    toss: Option<TossClient>,
}

/// An item of about the size of an order item (sealed fields and all), ~1.8 KB, in four
/// attributes: the SDK's work per byte, not per attribute.
fn plain_shape() -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("body".to_owned(), AttributeValue::S("x".repeat(1_800))),
        ("version".to_owned(), AttributeValue::N("1".to_owned())),
    ])
}

/// With `FLOOR_ITEM_PK` and `FLOOR_ITEM_SK` (an order's key, say): that item's own attributes,
/// read once, so that every call reads and writes items of its shape — its nested maps and lists,
/// its sealed fields — as the functions' calls do. Its key and index keys are left out: the copies
/// stay in the calibration's partition and in no listing.
async fn shape_of(
    client: &Client,
    table: &str,
) -> Result<Option<HashMap<String, AttributeValue>>, Error> {
    let (Ok(pk), Ok(sk)) = (
        std::env::var("FLOOR_ITEM_PK"),
        std::env::var("FLOOR_ITEM_SK"),
    ) else {
        return Ok(None);
    };
    let read = client
        .get_item()
        .table_name(table)
        .key("PK", AttributeValue::S(pk.clone()))
        .key("SK", AttributeValue::S(sk.clone()))
        .consistent_read(true)
        .send()
        .await?;
    let mut shape = read
        .item
        .ok_or_else(|| format!("no item {pk} / {sk} to take the floor's shape from"))?;
    shape.retain(|name, _| name != "PK" && name != "SK" && !name.starts_with("GSI"));
    Ok(Some(shape))
}

impl Calibration {
    /// The table's client and twenty items to read; the Toss client, its payment confirmed once.
    async fn new() -> Result<Calibration, Error> {
        let toss = match (
            std::env::var("TOSS_API_BASE"),
            std::env::var("TOSS_SECRET_KEY"),
        ) {
            (Ok(base), Ok(secret)) => {
                Some(TossClient::new(&base, &secret, Duration::from_secs(10))?)
            }
            _ => None,
        };
        let client = Client::new(&shared::aws::sdk_config()?);
        let table = std::env::var("TABLE_NAME")?;
        let shape = shape_of(&client, &table).await?.unwrap_or_else(plain_shape);
        let calibration = Calibration {
            client,
            table,
            partition: format!("CALIBRATION#{}", uuid::Uuid::new_v4().simple()),
            shape,
            toss,
        };
        for i in 0..20 {
            calibration.put(&format!("ITEM#{i:02}")).await?;
        }
        if calibration.toss.is_some() {
            calibration.toss_confirm().await?;
        }
        Ok(calibration)
    }

    fn item(&self, sk: &str) -> HashMap<String, AttributeValue> {
        let mut item = self.shape.clone();
        item.extend(self.key(sk));
        if sk.starts_with("ITEM#") {
            // On the calibration's own board in GSI1, which its `Query` counts.
            item.insert("GSI1PK".to_owned(), AttributeValue::S(self.board()));
            item.insert("GSI1SK".to_owned(), AttributeValue::S(sk.to_owned()));
        }
        item
    }

    /// The calibration's board: its twenty items' partition in GSI1.
    fn board(&self) -> String {
        format!("{}#BOARD", self.partition)
    }

    fn key(&self, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("PK".to_owned(), AttributeValue::S(self.partition.clone())),
            ("SK".to_owned(), AttributeValue::S(sk.to_owned())),
        ])
    }

    async fn get(&self) -> Result<(), Error> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key("ITEM#00")))
            .send()
            .await?;
        Ok(())
    }

    /// Two items in one batch, as order create (the store and its menu) and payment confirm (the
    /// order and its payment) read.
    async fn batch_get(&self) -> Result<(), Error> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(vec![self.key("ITEM#00"), self.key("ITEM#01")]))
            .consistent_read(true)
            .build()?;
        self.client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await?;
        Ok(())
    }

    async fn put(&self, sk: &str) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(sk)))
            .send()
            .await?;
        Ok(())
    }

    /// Counts twenty items on an index, as an order create counts its store's board in GSI1
    /// (`orders::count_active`, the one `Query` of the measured operations): the items are read,
    /// not returned. (The emulator answers a query in time that grows with the whole table, on an
    /// index or not, and a longer wait costs the waiting process CPU: docs/PERFORMANCE.md.)
    async fn query(&self) -> Result<(), Error> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :board")
            .expression_attribute_values(":board", AttributeValue::S(self.board()))
            .select(Select::Count)
            .send()
            .await?;
        Ok(())
    }

    /// Three puts in one transaction, as an order's move wrote.
    async fn transact(&self, i: usize) -> Result<(), Error> {
        let puts = (0..3)
            .map(|k| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(self.item(&format!("TX#{i}#{k}"))))
                    .build()?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect::<Result<Vec<_>, Error>>()?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(puts))
            .send()
            .await?;
        Ok(())
    }

    /// A confirm of the calibration's payment, the request a payment confirm sends. Toss answers a
    /// repeat under the same idempotency key with its first answer, without running it again: the
    /// same request and answer for our client, and no new payment (nor webhook) each time.
    async fn toss_confirm(&self) -> Result<(), Error> {
        let toss = self.toss.as_ref().ok_or("no Toss configured")?;
        let id = self.partition.trim_start_matches("CALIBRATION#");
        toss.confirm(
            &format!("os-floor-{id}"),
            &format!("tpk_floor_{id}"),
            &format!("ord_floor_{id}"),
            15_000,
        )
        .await?;
        Ok(())
    }

    /// One call of `kind`; `i` tells writes apart.
    async fn call(&self, kind: &str, i: usize) -> Result<(), Error> {
        match kind {
            "GetItem" => self.get().await,
            "BatchGetItem" => self.batch_get().await,
            "PutItem" => self.put(&format!("PUT#{i}")).await,
            "Query" => self.query().await,
            "TransactWriteItems" => self.transact(i).await,
            "TossConfirm" => self.toss_confirm().await,
            other => Err(format!("no such call: {other}").into()),
        }
    }
}

/// User + system CPU time of this process, in ns.
fn cpu_ns() -> u64 {
    // SAFETY: getrusage writes into the struct it is given and has no other preconditions.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

const KINDS: [&str; 6] = [
    "GetItem",
    "BatchGetItem",
    "PutItem",
    "Query",
    "TransactWriteItems",
    "TossConfirm",
];

/// Each kind `n` times back to back after ten warm-up calls: µs of CPU per call.
async fn back_to_back(calibration: &Calibration, n: usize) -> Result<Value, Error> {
    let started = Instant::now();
    let mut floor = serde_json::Map::new();
    for kind in KINDS {
        if kind == "TossConfirm" && calibration.toss.is_none() {
            continue;
        }
        for i in 0..10 {
            calibration.call(kind, usize::MAX - i).await?;
        }
        let before = cpu_ns();
        for i in 0..n {
            calibration.call(kind, i).await?;
        }
        let micros = (cpu_ns() - before) as f64 / n.max(1) as f64 / 1e3;
        floor.insert(kind.to_owned(), json!(micros));
    }
    floor.insert("calls".into(), json!(n));
    floor.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
    Ok(Value::Object(floor))
}

/// The calls an event names, in the order of `KINDS`.
async fn as_a_function(calibration: &'static Calibration) -> Result<(), Error> {
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let counter = &counter;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<BTreeMap<String, usize>>| async move {
            // Writes go to twenty keys over and over: the partition does not grow.
            let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 20;
            for kind in KINDS {
                for _ in 0..event.payload.get(kind).copied().unwrap_or(0) {
                    calibration.call(kind, i).await?;
                }
            }
            // As a function's line would (`make bench` counts the floor's allocations so).
            if let Some(heap) = shared::heap::since_last_report() {
                shared::telemetry::write_lines(&format!("{}\n", json!({ "heap": heap })));
            }
            Ok::<_, Error>(json!({}))
        },
    ))
    .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let calibration = Calibration::new().await?;
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return as_a_function(Box::leak(Box::new(calibration))).await;
    }
    let n = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    println!("{}", back_to_back(&calibration, n).await?);
    Ok(())
}
