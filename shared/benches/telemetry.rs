//! The end of every request: its line (log fields and EMF metrics), built and written (to a sink
//! here); and the span the Lambda runtime wraps every invocation in.
//!
//!     cargo bench -p shared --bench telemetry

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use shared::crypto::CacheStats;
use shared::telemetry::{Fields, Invocation, Recorded, lines};

const ITERATIONS: u32 = 200_000;

fn main() {
    let request = Invocation::Request;
    let cases = [
        ("a menu read", request, Recorded::default()),
        (
            "a paid order",
            request,
            Recorded {
                counts: BTreeMap::from([("OrdersPaid", 1.0), ("Sales", 12_500.0)]),
                ..Recorded::default()
            },
        ),
        (
            "a refused payment",
            request,
            Recorded {
                payment_failures: vec!["REJECT_CARD_PAYMENT"],
                ..Recorded::default()
            },
        ),
        (
            "a job",
            Invocation::Job,
            Recorded {
                counts: BTreeMap::from([("PushesDelivered", 2.0), ("MessagesProcessed", 2.0)]),
                ..Recorded::default()
            },
        ),
    ];
    println!("The lines of one request, {ITERATIONS} times each (µs per request, mean)");
    let fields = Fields {
        message: "request",
        request_id: "Ab1cDEFghIJKlmN=",
        lambda_request_id: "0c6d5a8e-51a4-4a5b-9d0a-6d8cbd1e7f3a",
        trace_id: "Root=1-6751b2c3-0123456789abcdef01234567",
        cold_start: false,
        status: 200,
        user_id: None,
        code: None,
    };
    let mut sink = Vec::with_capacity(4096);
    for (name, invocation, recorded) in &cases {
        let start = Instant::now();
        for _ in 0..ITERATIONS {
            sink.clear();
            let lines = lines(
                "INFO",
                black_box(&fields),
                *invocation,
                1.25,
                CacheStats::default(),
                black_box(recorded),
            );
            sink.write_all(lines.as_bytes()).expect("sink");
            black_box(&sink);
        }
        let micros = start.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS);
        println!("{name:>20} {micros:>8.2} µs  ({} bytes)", sink.len());
    }
    runtime_span();
}

/// The span `lambda_runtime::run` (and `lambda_http::run`) wraps every invocation in, through the
/// functions' subscriber at its default level: made, entered and left once per poll of the
/// handler's future (a few polls per AWS call), closed.
fn runtime_span() {
    use shared::lambda_http::lambda_runtime::{Context, layers::trace::request_span};
    let subscriber = functions_subscriber();
    let mut context = Context::default();
    context.request_id = "0c6d5a8e-51a4-4a5b-9d0a-6d8cbd1e7f3a".to_owned();
    context.xray_trace_id = Some("Root=1-6751b2c3-0123456789abcdef01234567".to_owned());
    tracing::subscriber::with_default(subscriber, || {
        for polls in [1, 10] {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                let span = request_span(black_box(&context));
                for _ in 0..polls {
                    let _entered = span.enter();
                    black_box(&span);
                }
            }
            let micros = start.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS);
            println!(
                "{:>20} {micros:>8.2} µs",
                format!("runtime span, {polls} polls")
            );
        }
    });
}

/// The functions' log subscriber at its default level (INFO), writing to a sink.
fn functions_subscriber() -> impl tracing::Subscriber + Send + Sync + 'static {
    shared::telemetry::subscriber(
        std::io::sink,
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
    )
}
