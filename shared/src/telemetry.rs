//! Logs and metrics, as CloudWatch takes them from a Lambda's stdout.
//!
//! - Logs: one JSON object per line through `tracing`; the level from `RUST_LOG`, never beyond
//!   [`MOST_VERBOSE`]. Never personal data, tokens or keys.
//! - Every request (and job) ends with one line, [`lines`], whatever the level: a CloudWatch
//!   Embedded Metric Format document (`{"_aws": …}`) that is also the request's log line. Its
//!   `fields` trace it (API Gateway's and Lambda's request ids, the X-Ray trace id, status, the
//!   caller's user id); `Function` and `Latency` are its dimension and metric. Each API route is a
//!   function of its own, so the function names the route: a line carries no `Route`. A request
//!   counts its status class, a job only `Status5xx` when it failed; a cold start is the
//!   `ColdStart` metric, not a field beside it. One namespace (`OrderSync`), bounded dimensions
//!   (function, our own error codes). Domain code counts what happened ([`count`],
//!   [`payment_failure`]) into the current request's scope; the scope is flushed once, at the end
//!   of the request. One line rather than a log line and a metrics line: every line is a log event
//!   CloudWatch bills by its bytes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::crypto::CacheStats;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub const NAMESPACE: &str = "OrderSync";

/// The most verbose logs get, whatever `RUST_LOG` asks: at TRACE the Lambda runtime logs every raw
/// event (passwords, refresh tokens, the `Authorization` header) and the AWS SDK every request and
/// response body (KMS's plaintext data keys among them).
pub const MOST_VERBOSE: LevelFilter = LevelFilter::DEBUG;

/// The levels `RUST_LOG` names: a default level and `target=level` pairs (`info,spans=debug`);
/// unset or unreadable, INFO. (`tracing-subscriber`'s `EnvFilter` also reads span and field
/// filters, with a regular-expression engine in every binary; a function's logs need levels.)
fn levels(rust_log: Option<&str>) -> Targets {
    rust_log
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// The most verbose level `levels` asks for anywhere.
fn most_verbose_in(levels: &Targets) -> LevelFilter {
    levels
        .iter()
        .map(|(_, level)| level)
        .chain(levels.default_level())
        .max()
        .unwrap_or(LevelFilter::INFO)
}

/// Whether `levels` asks for more than [`MOST_VERBOSE`] anywhere.
fn beyond_most_verbose(levels: &Targets) -> bool {
    most_verbose_in(levels) > MOST_VERBOSE
}

/// The most verbose level `levels` asks for anywhere, capped at [`MOST_VERBOSE`]: the subscriber's
/// maximum, so that `tracing`'s global level stays at what was asked (INFO by default) and the
/// dependencies' debug events and spans stop at its first, static check.
fn most_verbose_asked(levels: &Targets) -> LevelFilter {
    most_verbose_in(levels).min(MOST_VERBOSE)
}

/// The functions' log subscriber: one JSON object per line, without time or target, writing to
/// `writer`, at the levels `levels` names (capped at [`MOST_VERBOSE`]).
pub fn subscriber<W>(writer: W, levels: Targets) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_writer(writer)
        .with_max_level(most_verbose_asked(&levels))
        .finish()
        .with(levels)
}

pub fn init() {
    let filter = levels(std::env::var("RUST_LOG").ok().as_deref());
    let capped = beyond_most_verbose(&filter);
    // `try_init`: a second call (tests, a consumer that also serves HTTP) keeps the first subscriber.
    let installed = subscriber(std::io::stdout, filter).try_init();
    if capped && installed.is_ok() {
        tracing::warn!(
            "RUST_LOG asks for TRACE, which would log raw events and AWS bodies; capped at DEBUG"
        );
    }
}

static COLD: AtomicBool = AtomicBool::new(true);

/// True for the first invocation of this instance only.
pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

pub fn function_name() -> &'static str {
    static NAME: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into())
    });
    &NAME
}

/// What one request recorded.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The X-Ray trace id the request runs under, for its spans.
    pub trace_id: String,
    /// API Gateway's request id (HTTP), or Lambda's (other invocations).
    pub request_id: String,
    pub user_id: Option<String>,
    pub counts: BTreeMap<&'static str, f64>,
    pub payment_failures: Vec<&'static str>,
}

#[derive(Debug, Default)]
pub struct Scope(Mutex<Recorded>);

tokio::task_local! {
    static SCOPE: Scope;
}

/// X-Ray's trace header's `Root=…` alone: what finds the trace (its `Parent` and `Sampled` are for
/// propagating it, which no line or event of ours does).
pub fn trace_root(header: &str) -> &str {
    header.split(';').next().unwrap_or_default()
}

/// Runs `future` with a fresh recording scope under `trace_id` (its root: the request's line, its
/// spans and its events all name the same); returns its output and what it recorded.
pub async fn scoped<F: std::future::Future>(trace_id: &str, future: F) -> (F::Output, Recorded) {
    let scope = Scope(Mutex::new(Recorded {
        trace_id: trace_root(trace_id).to_owned(),
        ..Recorded::default()
    }));
    SCOPE
        .scope(scope, async move {
            let output = future.await;
            let recorded = SCOPE
                .try_with(|s| std::mem::take(&mut *s.0.lock().unwrap_or_else(|e| e.into_inner())))
                .unwrap_or_default();
            (output, recorded)
        })
        .await
}

fn with_scope(f: impl FnOnce(&mut Recorded)) {
    let _ = SCOPE.try_with(|s| f(&mut s.0.lock().unwrap_or_else(|e| e.into_inner())));
}

/// A finished span of work — the handler, an AWS call, a Toss call — as one debug line under the
/// target `spans` (`RUST_LOG=info,spans=debug` shows them; `local-runner --trace` sets that).
pub fn span(kind: &'static str, name: &str, duration: std::time::Duration, ok: bool) {
    span_in(&current_trace_id(), kind, name, duration, ok);
}

/// Whether span lines are shown at all: callers skip the work of describing a span when not.
pub fn spans_enabled() -> bool {
    tracing::enabled!(target: "spans", tracing::Level::DEBUG)
}

fn current_trace_id() -> String {
    let mut trace_id = String::new();
    with_scope(|r| trace_id = r.trace_id.clone());
    trace_id
}

/// [`span`] under an explicit trace id (outside a request's scope).
pub fn span_in(
    trace_id: &str,
    kind: &'static str,
    name: &str,
    duration: std::time::Duration,
    ok: bool,
) {
    tracing::debug!(
        target: "spans",
        kind,
        span = name,
        duration_ms = duration.as_secs_f64() * 1e3,
        ok,
        trace_id = %trace_root(trace_id),
        "span"
    );
}

/// Names the request being served, for the events it records.
pub fn set_request_id(request_id: &str) {
    with_scope(|r| r.request_id = request_id.to_owned());
}

/// The current request's id and trace id (empty outside a request).
pub fn current_ids() -> (String, String) {
    let mut ids = (String::new(), String::new());
    with_scope(|r| ids = (r.request_id.clone(), r.trace_id.clone()));
    ids
}

/// [`span`] of an AWS call, with its request size and the items it writes (benchmarks price calls
/// from them).
pub fn span_sized(
    kind: &'static str,
    name: &str,
    duration: std::time::Duration,
    ok: bool,
    request_bytes: usize,
    items: usize,
) {
    let trace_id = current_trace_id();
    tracing::debug!(
        target: "spans",
        kind,
        span = name,
        duration_ms = duration.as_secs_f64() * 1e3,
        ok,
        request_bytes,
        items,
        trace_id = %trace_id,
        "span"
    );
}

/// The authenticated caller, for the request's log line.
pub fn set_user(user_id: &str) {
    with_scope(|r| r.user_id = Some(user_id.to_owned()));
}

/// Adds to a business counter (`OrdersCreated`, `OrdersPaid`, …) of the current request.
pub fn count(metric: &'static str, value: f64) {
    with_scope(|r| *r.counts.entry(metric).or_default() += value);
}

/// A payment that failed, by our stable code.
pub fn payment_failure(code: &'static str) {
    with_scope(|r| r.payment_failures.push(code));
}

/// One metric an EMF directive declares. A count declares no unit (CloudWatch's `None`: the
/// alarms name none, and `"Unit":"Count"` was 15 bytes of every count in every line).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metric<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'static str>,
}

/// The metrics one set of dimensions carries: CloudWatch reads the document's values by these names.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    namespace: &'static str,
    dimensions: &'a [&'a [&'a str]],
    metrics: Vec<Metric<'a>>,
}

impl<'a> Directive<'a> {
    fn new(dimensions: &'a [&'a [&'a str]], metrics: Vec<Metric<'a>>) -> Self {
        Self {
            namespace: NAMESPACE,
            dimensions,
            metrics,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    timestamp: i64,
    cloud_watch_metrics: Vec<Directive<'a>>,
}

/// What a request's or a job's line says beside its metrics: what traces it. Under `fields`, as in
/// every other log line.
#[derive(Debug, Serialize)]
pub struct Fields<'a> {
    /// `request`, `job` or `job failed`.
    pub message: &'static str,
    /// API Gateway's request id (HTTP), or Lambda's (other invocations).
    pub request_id: &'a str,
    /// Lambda's, for a request (a job's `request_id` is Lambda's already: left empty, not printed).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub lambda_request_id: &'a str,
    /// X-Ray's trace header; the line carries its `Root=…` alone, which is what finds the trace
    /// (its `Parent` and `Sampled` are for propagating it, which the line does not do).
    #[serde(serialize_with = "root_only")]
    pub trace_id: &'a str,
    /// Carried as the line's `ColdStart` metric (present, 1, only when cold), not as a field too.
    #[serde(skip)]
    pub cold_start: bool,
    /// The answer's HTTP status; a job's is 200, or 500 when it failed.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    /// A failed job's error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
}

fn root_only<S: serde::Serializer>(header: &&str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(trace_root(header))
}

/// A request's one line: its log fields and its metrics, as an EMF document. Typed and borrowed,
/// not built as a `serde_json::Value`: it is written at the end of every request
/// (docs/PERFORMANCE.md). Only the metrics with something to count are declared and carried: a
/// metric a line leaves out counts 0 in a sum, and every declaration costs its bytes in every line
/// (docs/COST.md).
#[derive(Serialize)]
struct RequestDocument<'a> {
    #[serde(rename = "_aws")]
    aws: Metadata<'a>,
    level: &'static str,
    fields: &'a Fields<'a>,
    #[serde(rename = "Function")]
    function: &'a str,
    /// Milliseconds, to the microsecond. Its sample count is the function's requests (or runs).
    #[serde(rename = "Latency")]
    latency: f64,
    #[serde(flatten)]
    values: &'a BTreeMap<&'a str, f64>,
    /// The allocations since the previous line, where asked for (`make bench`; never on AWS).
    #[serde(skip_serializing_if = "Option::is_none")]
    heap: Option<crate::heap::Counts>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PaymentFailureDocument<'a> {
    #[serde(rename = "_aws")]
    aws: Metadata<'a>,
    function: &'a str,
    code: &'a str,
    payment_failures: u8,
}

/// What a line is of: a request, which counts its status class, or a job (a stream reader's
/// batch, a socket's `$connect`, a scheduled sweep), which counts only its failures (its runs are
/// its latency's sample count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    Request,
    Job,
}

/// The lines of one finished request or job: the request's own (its fields, and its metrics by
/// function), then one per payment failure, by code. Only what the line has to count is declared
/// and carried: a warm request that sealed nothing declares its latency and its status class.
pub fn lines(
    level: &'static str,
    fields: &Fields<'_>,
    invocation: Invocation,
    latency_ms: f64,
    kms_cache: CacheStats,
    recorded: &Recorded,
) -> String {
    let timestamp = jiff::Timestamp::now().as_millisecond();
    let function = function_name();
    let mut values: BTreeMap<&str, f64> = BTreeMap::new();
    let mut metrics = vec![Metric {
        name: "Latency",
        unit: Some("Milliseconds"),
    }];
    let mut counted = |name: &'static str, value: f64| {
        if value != 0.0 {
            values.insert(name, value);
            metrics.push(Metric { name, unit: None });
        }
    };
    // A 304 (a menu the client has) counts in none of the three.
    let class = match fields.status / 100 {
        2 if invocation == Invocation::Request => Some("Status2xx"),
        4 => Some("Status4xx"),
        5 => Some("Status5xx"),
        _ => None,
    };
    if let Some(class) = class {
        counted(class, 1.0);
    }
    counted("ColdStart", f64::from(u8::from(fields.cold_start)));
    // A miss is a KMS call; a hit is a request that sealed or opened a value, which its function
    // says already.
    counted("KmsDataKeyCacheMisses", kms_cache.misses as f64);
    for (name, value) in &recorded.counts {
        counted(name, *value);
    }
    let directives = vec![Directive::new(&[&["Function"]], metrics)];
    let request = RequestDocument {
        aws: Metadata {
            timestamp,
            cloud_watch_metrics: directives,
        },
        level,
        fields,
        function,
        latency: (latency_ms * 1000.0).round() / 1000.0,
        values: &values,
        heap: crate::heap::since_last_report(),
    };
    let mut lines = Vec::with_capacity(1024);
    // Serializing borrowed strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut lines, &request);
    lines.push(b'\n');
    for code in &recorded.payment_failures {
        let failure = PaymentFailureDocument {
            aws: Metadata {
                timestamp,
                // By code, to see why; by function alone, for the alarm.
                cloud_watch_metrics: vec![Directive::new(
                    &[&["Function", "Code"], &["Function"]],
                    vec![Metric {
                        name: "PaymentFailures",
                        unit: None,
                    }],
                )],
            },
            function,
            code,
            payment_failures: 1,
        };
        let _ = serde_json::to_writer(&mut lines, &failure);
        lines.push(b'\n');
    }
    String::from_utf8(lines).unwrap_or_default()
}

/// Writes a request's [`lines`] to stdout, where CloudWatch takes them: in one write, and without
/// the panic `println!` would raise on a closed stdout.
pub fn write_lines(lines: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(lines.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_names_a_default_level_and_levels_by_target() {
        let board = levels(Some("info,spans=debug"));
        assert!(board.would_enable("spans", &Level::DEBUG));
        assert!(!board.would_enable("shared::orders", &Level::DEBUG));
        assert!(board.would_enable("shared::orders", &Level::INFO));
        assert!(!beyond_most_verbose(&board));
        // Unset, or unreadable: INFO.
        for unread in [None, Some("info,[span{field}]=debug")] {
            let default = levels(unread);
            assert!(default.would_enable("shared", &Level::INFO), "{unread:?}");
            assert!(!default.would_enable("shared", &Level::DEBUG), "{unread:?}");
        }
        // The subscriber's maximum is what was asked, not DEBUG everywhere.
        assert_eq!(most_verbose_asked(&levels(None)), LevelFilter::INFO);
        assert_eq!(most_verbose_asked(&board), LevelFilter::DEBUG);
        assert_eq!(most_verbose_asked(&levels(Some("warn"))), LevelFilter::WARN);
        assert_eq!(
            most_verbose_asked(&levels(Some("trace"))),
            LevelFilter::DEBUG
        );
        // Asking for TRACE anywhere is capped (and said so at start).
        assert!(beyond_most_verbose(&levels(Some("trace"))));
        assert!(beyond_most_verbose(&levels(Some(
            "info,aws_smithy_runtime=trace"
        ))));
    }

    #[tokio::test]
    async fn counts_are_scoped_to_their_request() {
        let ((), recorded) = scoped("Root=1-abc;Parent=d7a9198acd004f47;Sampled=1", async {
            set_user("u1");
            count("OrdersCreated", 1.0);
            count("OrdersCreated", 1.0);
            payment_failure("CARD_REJECTED");
        })
        .await;
        assert_eq!(recorded.user_id.as_deref(), Some("u1"));
        assert_eq!(recorded.trace_id, "Root=1-abc");
        assert_eq!(recorded.counts["OrdersCreated"], 2.0);
        // Outside a scope, recording is a no-op rather than a panic.
        count("Stray", 1.0);
        let ((), empty) = scoped("", async {}).await;
        assert!(empty.counts.is_empty());
    }

    /// The documents of a request's lines.
    fn parse(text: String) -> Vec<serde_json::Value> {
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn a_requests_line_declares_every_value_it_carries_and_nothing_it_does_not() {
        let recorded = Recorded {
            counts: BTreeMap::from([("OrdersPaid", 1.0)]),
            payment_failures: vec!["CARD_REJECTED"],
            ..Recorded::default()
        };
        let fields = Fields {
            message: "request",
            request_id: "req-1",
            lambda_request_id: "lam-1",
            trace_id: "Root=1-abc;Parent=d7a9198acd004f47;Sampled=1",
            cold_start: true,
            status: 422,
            user_id: Some("u-1"),
            code: None,
        };
        let stats = CacheStats { hits: 3, misses: 1 };
        let docs = parse(lines(
            "INFO",
            &fields,
            Invocation::Request,
            12.500_400_000_000_2,
            stats,
            &recorded,
        ));
        assert_eq!(docs.len(), 2);
        for doc in &docs {
            let mut declared = std::collections::BTreeSet::new();
            for d in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
                assert_eq!(d["Namespace"], NAMESPACE);
                for m in d["Metrics"].as_array().unwrap() {
                    let name = m["Name"].as_str().unwrap();
                    assert!(doc[name].is_number(), "{m}");
                    declared.insert(name.to_owned());
                }
                for set in d["Dimensions"].as_array().unwrap() {
                    for dim in set.as_array().unwrap() {
                        assert!(doc[dim.as_str().unwrap()].is_string(), "{dim}");
                    }
                }
            }
            // Every number at the top is a declared metric: nothing is carried for nothing.
            for (key, value) in doc.as_object().unwrap() {
                if value.is_number() {
                    assert!(declared.contains(key), "{key} undeclared");
                }
            }
        }
        let line = &docs[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "request");
        assert_eq!(line["fields"]["trace_id"], "Root=1-abc");
        assert_eq!(line["fields"]["user_id"], "u-1");
        assert_eq!(line["fields"]["status"], 422);
        assert_eq!(line["Latency"], 12.5);
        assert_eq!(line["Status4xx"], 1.0);
        assert_eq!(line["OrdersPaid"], 1.0);
        assert_eq!(line["ColdStart"], 1.0);
        assert_eq!(line["KmsDataKeyCacheMisses"], 1.0);
        // The function names the route; a cold start is a metric, not a field too; a count has no
        // unit; a cache hit is not counted; nothing to count is not declared.
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"],
            serde_json::json!([{"Namespace": NAMESPACE, "Dimensions": [["Function"]],
                "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Status4xx"},
                    {"Name": "ColdStart"}, {"Name": "KmsDataKeyCacheMisses"},
                    {"Name": "OrdersPaid"}]}])
        );
        for absent in ["Route", "KmsDataKeyCacheHits", "Status2xx"] {
            assert!(line.get(absent).is_none(), "{absent}");
        }
        assert!(line["fields"].get("cold_start").is_none());
        assert_eq!(docs[1]["Code"], "CARD_REJECTED");
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            serde_json::json!([{"Name": "PaymentFailures"}])
        );

        // A warm 304 with nothing counted: latency alone (its sample count is the requests).
        let quiet = Fields {
            cold_start: false,
            status: 304,
            ..fields
        };
        let none = CacheStats { hits: 0, misses: 0 };
        let docs = parse(lines(
            "INFO",
            &quiet,
            Invocation::Request,
            1.0,
            none,
            &Recorded::default(),
        ));
        assert_eq!(docs.len(), 1);
        let directives = docs[0]["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        assert_eq!(
            directives[0]["Metrics"],
            serde_json::json!([{"Name": "Latency", "Unit": "Milliseconds"}])
        );
    }

    #[test]
    fn a_jobs_line_has_its_metrics_by_function_alone_and_counts_only_failures() {
        let recorded = Recorded {
            counts: BTreeMap::from([("PushesDelivered", 2.0)]),
            ..Recorded::default()
        };
        let fields = |status, code| Fields {
            message: if status == 200 { "job" } else { "job failed" },
            request_id: "lambda-1",
            lambda_request_id: "",
            trace_id: "",
            cold_start: false,
            status,
            user_id: None,
            code,
        };
        let none = CacheStats { hits: 0, misses: 0 };
        let ok = parse(lines(
            "INFO",
            &fields(200, None),
            Invocation::Job,
            3.25,
            none,
            &recorded,
        ));
        assert_eq!(ok.len(), 1);
        let line = &ok[0];
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"],
            serde_json::json!([{"Namespace": NAMESPACE, "Dimensions": [["Function"]],
                "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "PushesDelivered"}]}])
        );
        assert!(line.get("Status2xx").is_none());
        assert_eq!(line["Latency"], 3.25);
        assert_eq!(line["PushesDelivered"], 2.0);

        let failed = parse(lines(
            "WARN",
            &fields(500, Some("DEPENDENCY_FAILED")),
            Invocation::Job,
            3.25,
            none,
            &Recorded::default(),
        ));
        let line = &failed[0];
        assert_eq!(line["Status5xx"], 1.0);
        assert_eq!(line["fields"]["code"], "DEPENDENCY_FAILED");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            serde_json::json!([{"Name": "Latency", "Unit": "Milliseconds"},
                {"Name": "Status5xx"}])
        );
    }
}
