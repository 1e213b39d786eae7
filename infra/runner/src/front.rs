//! The front of the AWS emulator: every function's AWS calls pass through here, and AWS's failures
//! can be switched on.
//!
//! - **Keep-alive.** moto's server closes the connection after every response, where DynamoDB, KMS
//!   and SQS keep connections open. The functions talk to this front instead; their connections stay
//!   open, and each request is forwarded to the emulator.
//! - **A fault switchboard.** `POST /__local/faults/aws` (at the WebSocket API's address) sets rules;
//!   each AWS call is matched against them in order and the first that applies decides its fate:
//!
//!   ```json
//!   {"rules": [{"service": "dynamodb", "operation": "TransactWriteItems",
//!               "function": "OrdersCreateFunction", "contains": "ORDER#",
//!               "fault": "throttle", "probability": 0.5, "times": 3, "delayMs": 800}],
//!    "seed": 7}
//!   ```
//!
//!   `service` is the signing name (`dynamodb`, `kms`, `sqs`, `s3`), `operation` the API's (from
//!   `X-Amz-Target`; for S3 `GetObject`, `PutObject`, `HeadObject`, `DeleteObject`, `ListObjectsV2`),
//!   `function` the calling function's logical id, `contains` a string the request body must contain
//!   (a key prefix); each is optional. Faults: `throttle` (400 `ThrottlingException`, 503 `SlowDown`
//!   for S3), `error` (500), `conflict` (a transaction cancelled for `TransactionConflict`; a single
//!   write's `TransactionConflictException`), `latency` (`delayMs` added), `timeout` (no answer; the
//!   caller's time-out decides), `reset` (the connection dropped, nothing done), `lost` (done, then
//!   the connection dropped before the answer), `pad` (answered no sooner than `delayMs` after the
//!   call came: every call waits as long, however fast the emulator was — `make bench --pad-ms`).
//!   `probability` (default 1) and `times` (default unlimited) bound a rule. `{"rules": []}` clears
//!   them; `GET /__local/faults/aws` lists them with how often each fired.
//!
//! Each function gets a front of its own (its own port), which is how a rule knows the caller.
//!
//! - **DynamoDB's key limits.** A call naming a key over DynamoDB's size limits is refused with the
//!   `ValidationException` DynamoDB sends (`key_limits.rs`); the emulator answers reads of such keys
//!   as if the item were missing.
//! - **The template's grants.** A function's call that its policy statements do not allow — a
//!   DynamoDB, SQS, S3 or KMS action, on the table, index, queue, object or key it names, or a post
//!   to (or a close of) a WebSocket connection — is refused with `AccessDenied`, as IAM refuses it
//!   in AWS (see `iam.rs`). The functions reach the WebSocket API's Management API through their
//!   front too (`WEBSOCKET_ENDPOINT` is `<front>/<api id>/<stage>`, as AWS's is
//!   `https://<api id>.execute-api.<region>.amazonaws.com/<stage>`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::dynamodb_items::{self, Named};
use crate::iam::{self, AwsRequest, Grant};
use crate::key_limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    Throttle,
    Error,
    Conflict,
    Latency,
    Timeout,
    Reset,
    Lost,
    /// Answered no sooner than `delayMs` after the call came: every call waits as long.
    Pad,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contains: Option<String>,
    fault: Fault,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probability: Option<f64>,
    /// How many more times it may fire (`None`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u64>,
    /// How many times it fired.
    #[serde(default)]
    fired: u64,
}

#[derive(Deserialize)]
struct RuleSet {
    rules: Vec<Rule>,
    #[serde(default)]
    seed: Option<u64>,
}

struct Switchboard {
    rules: Vec<Rule>,
    rng: StdRng,
}

/// The partition key value a query names: the value compared with `=` first in its key condition.
fn query_partition(request: &Value) -> Option<String> {
    let condition = request["KeyConditionExpression"].as_str()?;
    let name = condition.split('=').nth(1)?.split_whitespace().next()?;
    request["ExpressionAttributeValues"][name]["S"]
        .as_str()
        .map(String::from)
}

/// An item a write names, with its image before the write.
struct Written {
    table: String,
    key: serde_json::Map<String, Value>,
    transactional: bool,
    check: bool,
    before: Option<serde_json::Map<String, Value>>,
}

/// The AWS call a request is.
struct Call {
    service: String,
    operation: String,
    /// The region it is signed for.
    region: String,
    /// The request's method and path (an S3 request's `/<bucket>/<key>`, a Management API
    /// request's `/<api id>/<stage>/@connections/<id>`).
    method: String,
    path: String,
}

pub struct Front {
    client: reqwest::Client,
    /// The emulator's base URL, without a trailing slash.
    upstream: String,
    /// The runner's WebSocket API (`http://127.0.0.1:<port>`), whose Management API the
    /// functions reach through here.
    websocket: String,
    switchboard: Mutex<Switchboard>,
    /// Tables' keys and indexes, for the cost meter, by table name.
    schemas: tokio::sync::Mutex<HashMap<String, crate::meter::Schema>>,
    /// Each function's grants, by logical id (the tools' front has none and is not checked).
    grants: HashMap<String, Vec<Grant>>,
    /// `LOCAL_GRANTS=audit`: refusals are logged, not answered (see `iam.rs`).
    grants_audit: bool,
}

type Answer = Result<Response<Full<Bytes>>, std::io::Error>;

impl Front {
    pub fn new(upstream: &str, websocket: &str, grants: HashMap<String, Vec<Grant>>) -> Arc<Self> {
        Arc::new(Self {
            client: reqwest::Client::new(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            websocket: websocket.trim_end_matches('/').to_owned(),
            switchboard: Mutex::new(Switchboard {
                rules: Vec::new(),
                rng: StdRng::from_os_rng(),
            }),
            schemas: tokio::sync::Mutex::new(HashMap::new()),
            grants,
            grants_audit: iam::audit_only(),
        })
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Switchboard> {
        self.switchboard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `POST /__local/faults/aws`: replaces the rules.
    pub fn set_rules(&self, body: &[u8]) -> Result<usize, String> {
        let set: RuleSet = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let mut board = self.board();
        board.rules = set.rules;
        if let Some(seed) = set.seed {
            board.rng = StdRng::seed_from_u64(seed);
        }
        Ok(board.rules.len())
    }

    /// `GET /__local/faults/aws`: the rules, with how often each fired.
    pub fn rules(&self) -> Value {
        json!({"rules": self.board().rules})
    }

    /// The fault for this call, if a rule fires (and is used up by one).
    fn fault(&self, function: &str, call: &Call, body: &[u8]) -> Option<(Fault, Duration)> {
        let mut board = self.board();
        let Switchboard { rules, rng } = &mut *board;
        for rule in rules.iter_mut() {
            let applies = rule.times != Some(0)
                && rule.service.as_deref().is_none_or(|s| s == call.service)
                && rule
                    .operation
                    .as_deref()
                    .is_none_or(|o| o == call.operation)
                && rule.function.as_deref().is_none_or(|f| f == function)
                && rule
                    .contains
                    .as_deref()
                    .is_none_or(|needle| String::from_utf8_lossy(body).contains(needle));
            if !applies {
                continue;
            }
            if rng.random::<f64>() >= rule.probability.unwrap_or(1.0) {
                continue;
            }
            if let Some(times) = &mut rule.times {
                *times -= 1;
            }
            rule.fired += 1;
            return Some((
                rule.fault,
                Duration::from_millis(rule.delay_ms.unwrap_or(0)),
            ));
        }
        None
    }

    /// Serves one AWS call of `function`.
    pub async fn serve(self: Arc<Self>, function: Arc<str>, req: Request<Incoming>) -> Answer {
        let came = std::time::Instant::now();
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let call = identify(&parts);
        crate::meter::aws_call(&function, &call.service, &call.operation);
        if let Some(refused) = self.authorize(&function, &call, &body) {
            return Ok(refused);
        }
        let authorization = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // A DynamoDB call's request, read once for its key limits and the meter.
        let dynamodb = (call.service == "dynamodb")
            .then(|| serde_json::from_slice::<Value>(&body).ok())
            .flatten();
        if let Some(request) = &dynamodb
            && let Some(refused) = self
                .oversized_key(&function, &call.operation, request, &authorization)
                .await
        {
            return Ok(refused);
        }
        let fault = self.fault(&function, &call, &body);
        if let Some((fault, delay)) = fault {
            eprintln!(
                "[front] {function}: {} {} ← {fault:?}",
                call.service, call.operation
            );
            match fault {
                Fault::Latency => tokio::time::sleep(delay).await,
                Fault::Timeout => {
                    // No answer: the caller's time-out ends it.
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    return Err(dropped());
                }
                Fault::Reset => return Err(dropped()),
                Fault::Throttle | Fault::Error | Fault::Conflict => {
                    return Ok(refusal(fault, &call, &body));
                }
                Fault::Lost | Fault::Pad => {}
            }
        }
        let metered = crate::meter::on();
        let before = match &dynamodb {
            Some(request) if metered => self.images(&call.operation, request, &authorization).await,
            _ => Vec::new(),
        };
        let (answer, answered) = self.forward(&call, parts, body.clone()).await;
        if metered {
            self.meter(
                &call,
                &body,
                answer.status(),
                &answered,
                before,
                &authorization,
            )
            .await;
        }
        if matches!(fault, Some((Fault::Lost, _))) {
            return Err(dropped());
        }
        if let Some((Fault::Pad, until)) = fault {
            tokio::time::sleep(until.saturating_sub(came.elapsed())).await;
        }
        Ok(answer)
    }

    /// IAM's decision on a call: `None` when the function's grants allow it.
    fn authorize(&self, function: &str, call: &Call, body: &[u8]) -> Option<Response<Full<Bytes>>> {
        let grants = self.grants.get(function)?;
        if call.service.is_empty() {
            // Not signed as a call (a presigned POST policy's upload): see `identify`.
            return None;
        }
        let request = AwsRequest::new(
            &call.service,
            &call.operation,
            &call.region,
            (&call.method, &call.path),
            body,
        );
        let audit = self.grants_audit;
        if audit && matches!(call.operation.as_str(), "GenerateDataKey" | "Decrypt") {
            eprintln!(
                "[front] kms-use {function} {} field={}",
                call.operation,
                request.field()
            );
        }
        let refused = iam::refused(grants, &request);
        let need = refused.first()?;
        eprintln!(
            "[front] {function}: {} {} ({} on {}{}) ← refused by its grants{}",
            call.service,
            call.operation,
            need.action,
            need.resource,
            if call.service == "kms" {
                format!(", field={}", request.field())
            } else {
                String::new()
            },
            if audit { " (audit only)" } else { "" }
        );
        if audit {
            return None;
        }
        let message = format!(
            "User: arn:aws:sts::123456789012:assumed-role/{function}Role/{function} is not \
             authorized to perform: {} on resource: {} because no identity-based policy \
             allows the {} action",
            need.action, need.resource, need.action
        );
        Some(if call.service == "s3" {
            respond(
                StatusCode::FORBIDDEN,
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>\
                     <Message>{message}</Message><RequestId>local</RequestId></Error>"
                ),
            )
        } else {
            json_error(
                StatusCode::BAD_REQUEST,
                // DynamoDB and SQS speak JSON 1.0, KMS 1.1.
                call.service != "kms",
                &json!({"__type": "AccessDeniedException", "message": message}),
            )
        })
    }

    /// DynamoDB's refusal of a call that names a key over its size limits, which the emulator
    /// leaves out of reads (`key_limits`).
    async fn oversized_key(
        &self,
        function: &str,
        operation: &str,
        request: &Value,
        authorization: &str,
    ) -> Option<Response<Full<Bytes>>> {
        let mut schemas = HashMap::new();
        for table in key_limits::tables(operation, request) {
            if let std::collections::hash_map::Entry::Vacant(entry) = schemas.entry(table) {
                let schema = self.schema(entry.key(), authorization).await;
                entry.insert(schema);
            }
        }
        let said = key_limits::refusal(operation, request, |table| {
            let keys = &schemas.get(table)?.keys;
            Some(key_limits::TableKeys {
                partition: keys.first()?,
                sort: keys.get(1).map(String::as_str),
            })
        })?;
        eprintln!("[front] {function}: dynamodb {operation} ← refused as DynamoDB would: {said}");
        Some(json_error(
            StatusCode::BAD_REQUEST,
            true,
            &json!({"__type": "com.amazon.coral.validate#ValidationException", "message": said}),
        ))
    }

    /// A DynamoDB call of the front's own (for the meter), straight to the emulator.
    async fn dynamodb(&self, operation: &str, body: Value, authorization: &str) -> Option<Value> {
        let answer = self
            .client
            .post(format!("{}/", self.upstream))
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
            .header("authorization", authorization)
            .body(body.to_string())
            .send()
            .await
            .ok()?;
        if !answer.status().is_success() {
            return None;
        }
        answer.json().await.ok()
    }

    async fn schema(&self, table: &str, authorization: &str) -> crate::meter::Schema {
        if let Some(schema) = self.schemas.lock().await.get(table) {
            return schema.clone();
        }
        let described = self
            .dynamodb("DescribeTable", json!({"TableName": table}), authorization)
            .await
            .unwrap_or_default();
        let schema = crate::meter::Schema::from_description(&described["Table"]);
        self.schemas
            .lock()
            .await
            .insert(table.to_owned(), schema.clone());
        schema
    }

    /// The items a write names — (table, key, transactional, a condition check) — with their
    /// images as they are now.
    async fn images(&self, operation: &str, request: &Value, authorization: &str) -> Vec<Written> {
        let mut images = Vec::new();
        let written = dynamodb_items::named(operation, request)
            .into_iter()
            .filter(|named| !named.read);
        for Named {
            table,
            key: item,
            transactional,
            check,
            ..
        } in written
        {
            let table = table.to_owned();
            let schema = self.schema(&table, authorization).await;
            let key: serde_json::Map<String, Value> = schema
                .keys
                .iter()
                .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            let before = self.get(&table, &key, authorization).await;
            images.push(Written {
                table,
                key,
                transactional,
                check,
                before,
            });
        }
        images
    }

    async fn get(
        &self,
        table: &str,
        key: &serde_json::Map<String, Value>,
        authorization: &str,
    ) -> Option<serde_json::Map<String, Value>> {
        let got = self
            .dynamodb(
                "GetItem",
                json!({"TableName": table, "Key": key, "ConsistentRead": true}),
                authorization,
            )
            .await?;
        got["Item"].as_object().cloned()
    }

    /// Counts what a call would be billed.
    async fn meter(
        &self,
        call: &Call,
        body: &[u8],
        status: StatusCode,
        answered: &[u8],
        before: Vec<Written>,
        authorization: &str,
    ) {
        use crate::meter;
        match call.service.as_str() {
            "sqs" => return meter::sqs(&call.operation, body.len()),
            "kms" | "s3" => return meter::call(&call.service, &call.operation),
            "dynamodb" => {}
            _ => return,
        }
        let ok = status.is_success();
        let mut billed = meter::Billed::default();
        if !before.is_empty() {
            for written in before {
                let schema = self.schema(&written.table, authorization).await;
                let after = if ok {
                    self.get(&written.table, &written.key, authorization).await
                } else {
                    written.before.clone()
                };
                let kind = meter::kind(
                    after
                        .as_ref()
                        .or(written.before.as_ref())
                        .unwrap_or(&written.key),
                );
                let units = if written.check || !ok {
                    // A condition check, or a write refused by its condition: the item's size, no index.
                    let size = written.before.as_ref().map(meter::item_size).unwrap_or(0);
                    meter::Units {
                        items: 0,
                        write_units: size.div_ceil(1024).max(1) as f64
                            * if written.transactional { 2.0 } else { 1.0 },
                        ..meter::Units::default()
                    }
                } else {
                    let key = format!("{}|{}", written.table, Value::Object(written.key.clone()));
                    let stored = after.as_ref().map(|a| schema.at_rest(kind.clone(), a));
                    meter::at_rest(key, written.before.is_none(), stored);
                    schema.write(
                        written.before.as_ref(),
                        after.as_ref(),
                        written.transactional,
                    )
                };
                billed.by_kind.push((kind, units));
            }
        } else if ok && call.operation == "BatchGetItem" {
            // Each key for its own kind and partition.
            let request: Value = serde_json::from_slice(body).unwrap_or_default();
            let response: Value = serde_json::from_slice(answered).unwrap_or_default();
            for read in meter::batch_reads(&request, &response) {
                let partition = read.key.get("PK").and_then(|pk| pk["S"].as_str());
                let units = meter::Units::read(read.units, &read.table, partition);
                billed.by_kind.push((meter::kind(&read.key), units));
            }
        } else if ok {
            // Reads: billed on what was read.
            let request: Value = serde_json::from_slice(body).unwrap_or_default();
            let consistent = request["ConsistentRead"] == true;
            let response: Value = serde_json::from_slice(answered).unwrap_or_default();
            let mut items: Vec<serde_json::Map<String, Value>> = Vec::new();
            let mut factor = 1.0;
            match call.operation.as_str() {
                "GetItem" => items.extend(response["Item"].as_object().cloned()),
                "Query" | "Scan" => {
                    items.extend(
                        response["Items"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|i| i.as_object().cloned()),
                    );
                    // A filter drops items after they were read (and billed).
                    let (count, scanned) = (
                        response["Count"].as_f64().unwrap_or(0.0),
                        response["ScannedCount"].as_f64().unwrap_or(0.0),
                    );
                    if count > 0.0 && scanned > count {
                        factor = scanned / count;
                    }
                }
                "TransactGetItems" => {
                    factor = 2.0;
                    items.extend(
                        response["Responses"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|r| r["Item"].as_object().cloned()),
                    );
                }
                _ => return,
            }
            let bytes: usize = items.iter().map(meter::item_size).sum();
            // A GetItem is of its key's kind, found or not, projected or whole.
            let kind = match request["Key"].as_object() {
                Some(key) if call.operation == "GetItem" => meter::kind(key),
                _ => items
                    .first()
                    .map(meter::kind)
                    .unwrap_or_else(|| "(nothing returned)".into()),
            };
            let read_units = meter::read_units(
                (bytes as f64 * factor) as usize,
                consistent || call.operation == "TransactGetItems",
            );
            let table = request["TableName"].as_str().unwrap_or_default();
            let place = match request["IndexName"].as_str() {
                Some(index) => format!("{table}/{index}"),
                None => table.to_owned(),
            };
            let partition = match call.operation.as_str() {
                "GetItem" => request["Key"]["PK"]["S"].as_str().map(String::from),
                "Query" => query_partition(&request),
                _ => None,
            };
            let units = meter::Units::read(read_units, &place, partition.as_deref());
            billed.by_kind.push((kind, units));
        }
        meter::dynamodb(&call.operation, billed);
    }

    /// The emulator's answer, and its body (for the meter).
    async fn forward(
        &self,
        call: &Call,
        parts: hyper::http::request::Parts,
        body: Bytes,
    ) -> (Response<Full<Bytes>>, Bytes) {
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = if call.service == "execute-api" {
            // `/<api id>/<stage>/@connections/<id>`: the runner's WebSocket API serves the stage's
            // Management API.
            let under_api = target
                .trim_start_matches('/')
                .split_once('/')
                .map_or("", |(_, rest)| rest);
            format!("{}/{under_api}", self.websocket)
        } else {
            format!("{}{target}", self.upstream)
        };
        let mut request = self.client.request(parts.method, url).body(body);
        for (name, value) in &parts.headers {
            if ![HOST, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING].contains(name) {
                request = request.header(name, value);
            }
        }
        let Ok(upstream) = request.send().await else {
            return (status_only(StatusCode::BAD_GATEWAY), Bytes::new());
        };
        let mut response = Response::builder().status(upstream.status());
        for (name, value) in upstream.headers() {
            if ![CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING].contains(name) {
                response = response.header(name, value);
            }
        }
        let body = upstream.bytes().await.unwrap_or_default();
        let answer = response
            .body(Full::new(body.clone()))
            .unwrap_or_else(|_| status_only(StatusCode::BAD_GATEWAY));
        (answer, body)
    }
}

fn dropped() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "fault: connection dropped",
    )
}

/// The service (from the signature's credential scope) and operation of a request.
fn identify(parts: &hyper::http::request::Parts) -> Call {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    // `AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, …`, or a
    // presigned URL's `X-Amz-Credential=<key>/<date>/<region>/<service>/aws4_request` (which IAM
    // decides on the signer's grants). A browser's upload by a presigned POST policy carries its
    // credential in the form: no service is named, and nothing is checked.
    let authorization = header("authorization");
    let presigned = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .find(|(name, _)| name.eq_ignore_ascii_case("X-Amz-Credential"))
        .map(|(_, credential)| credential.into_owned());
    let scope = match authorization.split("Credential=").nth(1) {
        Some(scope) => scope,
        None => presigned.as_deref().unwrap_or_default(),
    };
    let scope_part = |n: usize| scope.split('/').nth(n).unwrap_or_default().to_owned();
    let (region, service) = (scope_part(2), scope_part(3));
    let target = header("x-amz-target");
    let operation = match target.rsplit_once('.') {
        Some((_, operation)) => operation.to_owned(),
        None if service == "s3" => {
            let path = parts.uri.path().trim_matches('/');
            let object = path.contains('/');
            match (parts.method.as_str(), object) {
                ("GET", true) => "GetObject",
                ("GET", false) => "ListObjectsV2",
                ("PUT", true) => "PutObject",
                ("HEAD", true) => "HeadObject",
                ("DELETE", true) => "DeleteObject",
                _ => "Other",
            }
            .to_owned()
        }
        None if service == "execute-api" => match parts.method.as_str() {
            "POST" => "PostToConnection",
            "DELETE" => "DeleteConnection",
            "GET" => "GetConnection",
            _ => "Other",
        }
        .to_owned(),
        None => String::new(),
    };
    Call {
        service,
        operation,
        region,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
    }
}

/// The error AWS answers with, in the service's own protocol.
fn refusal(fault: Fault, call: &Call, body: &[u8]) -> Response<Full<Bytes>> {
    if call.service == "s3" {
        let (status, code) = match fault {
            Fault::Throttle => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        };
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
             <Message>injected by the local runner</Message><RequestId>local</RequestId></Error>"
        );
        return respond(status, "application/xml", xml);
    }
    let dynamodb = call.service == "dynamodb";
    let namespaced = |code: &str| {
        if dynamodb {
            format!("com.amazonaws.dynamodb.v20120810#{code}")
        } else {
            code.to_owned()
        }
    };
    let (status, error) = match fault {
        Fault::Throttle => (
            StatusCode::BAD_REQUEST,
            json!({"__type": namespaced("ThrottlingException"),
                "message": "Rate of requests exceeds the allowed throughput."}),
        ),
        Fault::Conflict if dynamodb && call.operation == "TransactWriteItems" => {
            let items = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
                .unwrap_or(1);
            let reasons: Vec<Value> = (0..items)
                .map(|i| {
                    if i == 0 {
                        json!({"Code": "TransactionConflict",
                            "Message": "Transaction is ongoing for the item"})
                    } else {
                        json!({"Code": "None"})
                    }
                })
                .collect();
            (
                StatusCode::BAD_REQUEST,
                json!({"__type": namespaced("TransactionCanceledException"),
                    "message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
                    "CancellationReasons": reasons}),
            )
        }
        Fault::Conflict => (
            StatusCode::BAD_REQUEST,
            json!({"__type": namespaced("TransactionConflictException"),
                "message": "Transaction is ongoing for the item"}),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"__type": namespaced(match call.service.as_str() {
                "kms" => "KMSInternalException",
                "sqs" => "InternalError",
                _ => "InternalServerError",
            }), "message": "injected by the local runner"}),
        ),
    };
    json_error(status, dynamodb, &error)
}

/// An AWS JSON-protocol error (`{"__type", "message"}`), with its `x-amzn-errortype` header.
fn json_error(status: StatusCode, dynamodb: bool, error: &Value) -> Response<Full<Bytes>> {
    let content_type = if dynamodb {
        "application/x-amz-json-1.0"
    } else {
        "application/x-amz-json-1.1"
    };
    let mut response = respond(status, content_type, error.to_string());
    if let Some(code) = error["__type"].as_str().and_then(|t| t.rsplit('#').next())
        && let Ok(value) = code.parse()
    {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response.headers_mut().insert(
        "x-amzn-requestid",
        hyper::header::HeaderValue::from_static("local"),
    );
    response
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Serves `function`'s front on `listener` (keep-alive connections; a fault may drop one).
pub async fn listen(front: Arc<Front>, function: Arc<str>, listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (front, function) = (front.clone(), function.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| front.clone().serve(function.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds a front for each of `functions` (and one for tools, `"local"`); their URLs by function.
pub async fn bind_all(
    front: &Arc<Front>,
    functions: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, String>, String> {
    let mut urls = HashMap::new();
    for function in functions.into_iter().chain(["local".to_owned()]) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot open a front port: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        urls.insert(function.clone(), format!("http://{addr}"));
        tokio::spawn(listen(front.clone(), Arc::from(function), listener));
    }
    Ok(urls)
}
