//! SQS event sources, as Lambda's event source mapping runs them: the queue is long-polled, each batch
//! is delivered as an `SqsEvent`, and the function's `batchItemFailures` decide what happens to each
//! message — the others are deleted, the failed ones stay on the queue to be received again (and, past
//! the queue's `maxReceiveCount`, moved to its dead-letter queue by SQS itself).
//!
//! One difference, for speed: a failed message becomes visible again after [`RETRY_DELAY`], where on
//! AWS it waits out the queue's visibility timeout.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::lambda::{Function, Outcome, Runtime};

pub const RETRY_DELAY: Duration = Duration::from_secs(1);

pub fn start(runtime: &Arc<Runtime>, sqs: &aws_sdk_sqs::Client, region: &str) {
    for function in &runtime.functions {
        for source in &function.spec.sources {
            if source["type"] == "SQS"
                && let Some(arn) = source["Queue"].as_str()
            {
                let batch_size = source["BatchSize"].as_i64().unwrap_or(10).clamp(1, 10) as i32;
                let reports_failures = source["FunctionResponseTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures"));
                tokio::spawn(poll(
                    runtime.clone(),
                    function.clone(),
                    sqs.clone(),
                    Source {
                        arn: arn.to_owned(),
                        region: region.to_owned(),
                        batch_size,
                        reports_failures,
                    },
                ));
            }
        }
    }
}

struct Source {
    arn: String,
    region: String,
    batch_size: i32,
    reports_failures: bool,
}

async fn poll(
    runtime: Arc<Runtime>,
    function: Arc<Function>,
    sqs: aws_sdk_sqs::Client,
    source: Source,
) {
    let name = source.arn.rsplit(':').next().unwrap_or_default().to_owned();
    let url = loop {
        match sqs.get_queue_url().queue_name(&name).send().await {
            Ok(out) => break out.queue_url.unwrap_or_default(),
            Err(err) => {
                eprintln!("[{}] queue {name}: {err}", function.spec.name);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(source.batch_size)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(err) => {
                eprintln!("[{}] receive from {name}: {err}", function.spec.name);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        // Lambda's poller receives the batch (idle long polls are a flat cost, not an order's).
        crate::meter::sqs("ReceiveMessage", 0);
        let records: Vec<Value> = messages.iter().map(|m| record(m, &source)).collect();
        let outcome = runtime
            .invoke_event(
                &function,
                Bytes::from(json!({ "Records": records }).to_string()),
            )
            .await;
        let all: HashSet<String> = messages
            .iter()
            .filter_map(|m| m.message_id.clone())
            .collect();
        let failed: HashSet<String> = match outcome {
            Outcome::Response(body) if source.reports_failures => failures(&body, &all),
            Outcome::Response(_) => HashSet::new(),
            Outcome::Failed(reason) => {
                eprintln!(
                    "[{}] batch from {name} failed: {reason}",
                    function.spec.name
                );
                all.clone()
            }
            Outcome::TimedOut => all.clone(),
        };
        settle(&sqs, &url, &messages, &failed).await;
    }
}

/// The message ids the function reported as failed. An answer that names a message not in the batch,
/// or cannot be read, fails the whole batch, as on Lambda.
fn failures(body: &[u8], all: &HashSet<String>) -> HashSet<String> {
    let Ok(response) = serde_json::from_slice::<Value>(body) else {
        return all.clone();
    };
    let Some(items) = response["batchItemFailures"].as_array() else {
        return HashSet::new();
    };
    let mut failed = HashSet::new();
    for item in items {
        match item["itemIdentifier"].as_str() {
            Some(id) if all.contains(id) => {
                failed.insert(id.to_owned());
            }
            _ => return all.clone(),
        }
    }
    failed
}

/// Deletes what succeeded; makes what failed visible again soon.
async fn settle(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[aws_sdk_sqs::types::Message],
    failed: &HashSet<String>,
) {
    let mut done = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let (Some(id), Some(handle)) = (&message.message_id, &message.receipt_handle) else {
            continue;
        };
        if failed.contains(id) {
            let _ = sqs
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(handle)
                .visibility_timeout(RETRY_DELAY.as_secs() as i32)
                .send()
                .await;
        } else if let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .receipt_handle(handle)
            .build()
        {
            done.push(entry);
        }
    }
    if !done.is_empty() {
        crate::meter::sqs("DeleteMessageBatch", 0);
        let _ = sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(done))
            .send()
            .await;
    }
}

/// One message as Lambda's SQS event carries it.
fn record(message: &aws_sdk_sqs::types::Message, source: &Source) -> Value {
    let attributes: HashMap<String, String> = message
        .attributes
        .as_ref()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let message_attributes: serde_json::Map<String, Value> = message
        .message_attributes
        .as_ref()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({
                            "stringValue": v.string_value,
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": v.data_type,
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": source.arn,
        "awsRegion": source.region,
    })
}
