//! The entry point of functions that are invoked directly (by an operator, a schedule or a workflow)
//! rather than through the HTTP API: JSON in, JSON out, built once per process like [`crate::http`].

use std::future::Future;

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::error::ApiError;
use crate::storage::{Db, StorageError, key, n, s, update_once};

/// A run without a deadline (a tool, a test) holds its job this long at most.
const UNBOUNDED_RUN_SECONDS: i64 = 15 * 60;

/// Runs `work` unless another run of `job` is under way; `None` when it was (nothing was done).
///
/// Schedules can start a run while the last one still works (EventBridge does not wait). The run
/// takes the job's lease (`JOB#<job>` / `LEASE`) until its invocation's deadline plus a few seconds —
/// Lambda has stopped it by then, so a lease can only lapse once its holder is gone — and gives it
/// back when done.
pub async fn exclusive<T, F>(db: &Db, job: &str, work: F) -> Result<Option<T>, ApiError>
where
    F: Future<Output = Result<T, ApiError>>,
{
    let now = jiff::Timestamp::now().as_second();
    let until = match crate::deadline::remaining() {
        Some(left) => now + left.as_secs() as i64 + 5,
        None => now + UNBOUNDED_RUN_SECONDS,
    };
    let holder = uuid::Uuid::new_v4().simple().to_string();
    let pk = format!("JOB#{job}");
    let take = db
        .client()
        .update_item()
        .table_name(db.table())
        .set_key(Some(key(&pk, "LEASE")))
        .update_expression("SET lockedUntil = :until, holder = :holder")
        .condition_expression("attribute_not_exists(lockedUntil) OR lockedUntil < :now")
        .expression_attribute_values(":until", n(until))
        .expression_attribute_values(":holder", s(&holder))
        .expression_attribute_values(":now", n(now));
    // The holder is the write's token: a lease this run took, whose answer was lost, is met by the
    // SDK's retry (it is held, so refused) and known for this run's own.
    match update_once(take, "holder", &holder).await {
        Ok(()) => {}
        Err(StorageError::ConditionFailed) => {
            tracing::info!(
                job,
                "the previous run still holds the job; this one does nothing"
            );
            crate::telemetry::count("JobRunsSkipped", 1.0);
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    }
    let result = work.await;
    let released = db
        .client()
        .update_item()
        .table_name(db.table())
        .set_key(Some(key(&pk, "LEASE")))
        .update_expression("SET lockedUntil = :zero")
        .condition_expression("holder = :holder")
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":holder", s(&holder))
        .send()
        .await;
    if let Err(err) = released {
        // It lapses at its deadline anyway.
        tracing::warn!(job, error = %StorageError::from_sdk(err), "job lease not released");
    }
    result.map(Some)
}

pub async fn serve<E, R, H, F>(handler: H) -> Result<(), lambda_runtime::Error>
where
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    H: Fn(&'static App, E) -> F + Sync,
    F: Future<Output = Result<R, ApiError>> + Send + 'static,
{
    serve_with(
        |_| Ok(()),
        move |app, _: &'static (), event| handler(app, event),
    )
    .await
}

/// [`serve`], with more built once per process by `init` (a client or a configuration only this
/// function needs) and handed to every invocation.
pub async fn serve_with<S, I, E, R, H, F>(init: I, handler: H) -> Result<(), lambda_runtime::Error>
where
    S: Sync + 'static,
    I: FnOnce(&'static App) -> Result<S, lambda_runtime::Error>,
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    H: Fn(&'static App, &'static S, E) -> F + Sync,
    F: Future<Output = Result<R, ApiError>> + Send + 'static,
{
    crate::telemetry::init();
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    let state: &'static S = Box::leak(Box::new(init(app)?));
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<E>| async move {
        let started = std::time::Instant::now();
        let cold_start = crate::telemetry::take_cold_start();
        let request_id = event.context.request_id.clone();
        let trace_id = event.context.xray_trace_id.clone().unwrap_or_default();
        let kms_before = app.crypto_stats();
        let function = crate::telemetry::function_name();
        // Boxed: the handler's future is deep, and the scope around it would nest it deeper still.
        let deadline = crate::deadline::from_epoch_millis(event.context.deadline);
        let work = Box::pin(crate::deadline::within(
            deadline,
            handler(app, state, event.payload),
        ));
        let (result, recorded) = crate::telemetry::scoped(&trace_id, async {
            crate::telemetry::set_request_id(&request_id);
            work.await
        })
        .await;
        crate::telemetry::span_in(
            &trace_id,
            "handler",
            function,
            started.elapsed(),
            result.is_ok(),
        );
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let failed = result.as_ref().err().map(|err| err.code);
        let (level, message, status) = match failed {
            None => ("INFO", "job", 200),
            Some(_) => ("WARN", "job failed", 500),
        };
        let fields = crate::telemetry::Fields {
            message,
            request_id: &request_id,
            lambda_request_id: "",
            trace_id: &trace_id,
            cold_start,
            status,
            user_id: None,
            code: failed,
        };
        crate::telemetry::write_lines(&crate::telemetry::lines(
            level,
            &fields,
            crate::telemetry::Invocation::Job,
            latency_ms,
            app.crypto_stats().since(kms_before),
            &recorded,
        ));
        result.map_err(|err| lambda_runtime::Error::from(err.to_string()))
    }))
    .await
}
