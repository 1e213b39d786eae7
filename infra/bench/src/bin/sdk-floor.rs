//! The AWS SDK's floor: CPU per DynamoDB call of the kinds our functions make, with the same SDK
//! configuration (`shared::aws::sdk_config`), the same build profile and a current-thread runtime,
//! through the same keep-alive front to the same emulator. What a request costs beyond these calls
//! (and beyond the runtime's per-event floor, the hello-world's) is our own code (issue #20).
//!
//! Reads the functions' environment (`AWS_ENDPOINT_URL`, region, credentials, `TABLE_NAME`); takes
//! the number of calls per kind as its one argument; prints one JSON object: µs of CPU per call.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use serde_json::json;

/// An item of about the size of an order item (sealed fields and all): ~1.8 KB.
fn item(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("PK".to_owned(), AttributeValue::S(pk.to_owned())),
        ("SK".to_owned(), AttributeValue::S(sk.to_owned())),
        ("body".to_owned(), AttributeValue::S("x".repeat(1_800))),
        ("version".to_owned(), AttributeValue::N("1".to_owned())),
    ])
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

/// Runs `call` `n` times after a warm-up; µs of CPU per call.
async fn per_call<F, Fut>(n: usize, mut call: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..10 {
        call(usize::MAX - i).await;
    }
    let before = cpu_ns();
    for i in 0..n {
        call(i).await;
    }
    (cpu_ns() - before) as f64 / n.max(1) as f64 / 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let table = std::env::var("TABLE_NAME")?;
    let client = Client::new(&shared::aws::sdk_config()?);
    let started = Instant::now();
    let partition = format!("CALIBRATION#{}", uuid::Uuid::new_v4().simple());
    for i in 0..20 {
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item(&partition, &format!("ITEM#{i:02}"))))
            .send()
            .await?;
    }

    let get = per_call(n, |_| async {
        client
            .get_item()
            .table_name(&table)
            .key("PK", AttributeValue::S(partition.clone()))
            .key("SK", AttributeValue::S("ITEM#00".into()))
            .send()
            .await
            .expect("GetItem");
    })
    .await;
    let put = per_call(n, |i| {
        let item = item(&partition, &format!("PUT#{i}"));
        let client = &client;
        let table = &table;
        async move {
            client
                .put_item()
                .table_name(table)
                .set_item(Some(item))
                .send()
                .await
                .expect("PutItem");
        }
    })
    .await;
    // Two items in one batch, as order create (the store and its menu) and payment confirm (the
    // order and its payment) read.
    let batch_get = per_call(n, |_| async {
        let keys = ["ITEM#00", "ITEM#01"].map(|sk| {
            HashMap::from([
                ("PK".to_owned(), AttributeValue::S(partition.clone())),
                ("SK".to_owned(), AttributeValue::S(sk.to_owned())),
            ])
        });
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys.to_vec()))
            .consistent_read(true)
            .build()
            .expect("keys");
        client
            .batch_get_item()
            .request_items(&table, request)
            .send()
            .await
            .expect("BatchGetItem");
    })
    .await;
    let query = per_call(n, |_| async {
        client
            .query()
            .table_name(&table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :item)")
            .expression_attribute_values(":pk", AttributeValue::S(partition.clone()))
            .expression_attribute_values(":item", AttributeValue::S("ITEM#".into()))
            .limit(20)
            .send()
            .await
            .expect("Query");
    })
    .await;
    // Three puts in one transaction, as an order's move writes.
    let transact = per_call(n, |i| {
        let puts: Vec<TransactWriteItem> = (0..3)
            .map(|k| {
                let put = Put::builder()
                    .table_name(&table)
                    .set_item(Some(item(&partition, &format!("TX#{i}#{k}"))))
                    .build()
                    .expect("a put");
                TransactWriteItem::builder().put(put).build()
            })
            .collect();
        let client = &client;
        async move {
            client
                .transact_write_items()
                .set_transact_items(Some(puts))
                .send()
                .await
                .expect("TransactWriteItems");
        }
    })
    .await;

    println!(
        "{}",
        json!({
            "calls": n,
            "GetItem": get,
            "BatchGetItem": batch_get,
            "PutItem": put,
            "Query": query,
            "TransactWriteItems": transact,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}
