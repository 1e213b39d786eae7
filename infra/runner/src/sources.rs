//! Event sources other than HTTP, emulated by polling the local stack: what AWS would push to a
//! function, the runner fetches and delivers with the event shape AWS uses.
//!
//! - S3 (`ObjectCreated`): the bucket is listed every [`POLL`]; each new object (by key and ETag) is
//!   delivered once, as S3 delivers notifications, with up to two retries as for asynchronous invokes.
//! - Schedules (`rate(…)`): the function gets EventBridge's scheduled event at that rate; with
//!   `--schedule-interval S`, a minute of it lasts S seconds (tests wait seconds, not minutes).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use crate::lambda::{Function, Outcome, Runtime};

const POLL: Duration = Duration::from_millis(200);

pub fn start(
    runtime: &Arc<Runtime>,
    sdk: &aws_config::SdkConfig,
    region: &str,
    schedule_interval: Option<Duration>,
) {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    for function in &runtime.functions {
        for source in &function.spec.sources {
            if source["type"] == "S3"
                && let Some(bucket) = source["Bucket"].as_str()
            {
                tokio::spawn(poll_bucket(
                    runtime.clone(),
                    function.clone(),
                    s3.clone(),
                    bucket.to_owned(),
                    region.to_owned(),
                ));
            }
            if source["type"] == "Schedule" {
                let rate = source["Schedule"]
                    .as_str()
                    .and_then(parse_rate)
                    .unwrap_or(Duration::from_secs(60));
                // `--schedule-interval S`: a minute lasts S seconds, so every-minute jobs run every S
                // seconds and a daily one every 1,440 × S.
                let every = match schedule_interval {
                    Some(minute) => minute.mul_f64(rate.as_secs_f64() / 60.0),
                    None => rate,
                };
                tokio::spawn(tick(
                    runtime.clone(),
                    function.clone(),
                    every,
                    region.to_owned(),
                ));
            }
        }
    }
}

async fn poll_bucket(
    runtime: Arc<Runtime>,
    function: Arc<Function>,
    s3: aws_sdk_s3::Client,
    bucket: String,
    region: String,
) {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    loop {
        tokio::time::sleep(POLL).await;
        let mut created = Vec::new();
        let mut pages = s3.list_objects_v2().bucket(&bucket).into_paginator().send();
        while let Some(Ok(page)) = pages.next().await {
            for object in page.contents() {
                let (Some(key), Some(etag)) = (object.key(), object.e_tag()) else {
                    continue;
                };
                if seen.insert((key.to_owned(), etag.to_owned())) {
                    created.push((key.to_owned(), etag.to_owned(), object.size().unwrap_or(0)));
                }
            }
        }
        for (key, etag, size) in created {
            let event = json!({"Records": [{
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": jiff::Timestamp::now().to_string(),
                "eventName": "ObjectCreated:Post",
                "userIdentity": {"principalId": "AWS:LOCALRUNNER"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": uuid::Uuid::new_v4().simple().to_string()[..16].to_uppercase(),
                    "x-amz-id-2": uuid::Uuid::new_v4().to_string(),
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "local-runner",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "LOCALRUNNER"},
                        "arn": format!("arn:aws:s3:::{bucket}"),
                    },
                    "object": {
                        "key": form_encode(&key),
                        "size": size,
                        "eTag": etag.trim_matches('"'),
                        "sequencer": format!("{:016X}", jiff::Timestamp::now().as_nanosecond()),
                    },
                },
            }]});
            for attempt in 1..=3 {
                let outcome = runtime
                    .invoke_event(&function, Bytes::from(event.to_string()))
                    .await;
                match outcome {
                    Outcome::Response(_) => break,
                    Outcome::Failed(reason) => {
                        eprintln!(
                            "[{}] s3://{bucket}/{key} attempt {attempt}: {reason}",
                            function.spec.name
                        )
                    }
                    Outcome::TimedOut => {
                        eprintln!(
                            "[{}] s3://{bucket}/{key} attempt {attempt}: timed out",
                            function.spec.name
                        )
                    }
                }
            }
        }
    }
}

/// `rate(5 minutes)` → 5 minutes. (`cron(…)` schedules fall back to every minute.)
fn parse_rate(expression: &str) -> Option<Duration> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (value, unit) = inner.trim().split_once(' ')?;
    let value: u64 = value.parse().ok()?;
    let seconds = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(value * seconds))
}

async fn tick(runtime: Arc<Runtime>, function: Arc<Function>, every: Duration, region: String) {
    let mut interval = tokio::time::interval(every);
    interval.tick().await;
    loop {
        interval.tick().await;
        let event = json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": region,
            "resources": [format!("arn:aws:events:{region}:123456789012:rule/{}", function.spec.name)],
            "detail": {},
        });
        let outcome = runtime
            .invoke_event(&function, Bytes::from(event.to_string()))
            .await;
        if let Outcome::Failed(reason) = outcome {
            eprintln!("[{}] scheduled run failed: {reason}", function.spec.name);
        }
    }
}

/// S3 notifications carry keys form-encoded.
fn form_encode(key: &str) -> String {
    form_urlencoded::byte_serialize(key.as_bytes())
        .collect::<String>()
        .replace("%2F", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_rate("rate(5 minutes)"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
    }
}
