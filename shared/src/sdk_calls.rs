//! Counting AWS calls: an SDK interceptor that tallies every operation a client executes, by
//! `Service.Operation`. Tests use it to prove call budgets (one KMS call per thousand encryptions);
//! benchmarks use it to price a request. (The operation's metadata is in the config bag from
//! serialization on, not yet at `read_before_execution`.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_kms::config::{ConfigBag, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// Emits a span (see `telemetry::span`) for every AWS call a client makes, with its duration, the
/// size of its request and, for DynamoDB transactions, how many items it writes — what a benchmark
/// needs to price the call.
#[derive(Debug, Clone, Default)]
pub struct SpanRecorder;

#[derive(Debug, Clone)]
struct CallStarted(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for CallStarted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

#[derive(Debug, Clone, Copy)]
struct CallShape {
    request_bytes: usize,
    items: usize,
}

impl aws_smithy_types::config_bag::Storable for CallShape {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl Intercept for SpanRecorder {
    fn name(&self) -> &'static str {
        "SpanRecorder"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !crate::telemetry::spans_enabled() {
            return Ok(());
        }
        cfg.interceptor_state()
            .store_put(CallStarted(std::time::Instant::now()));
        let items = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput>()
            .map(|input| input.transact_items().len())
            .unwrap_or(1);
        cfg.interceptor_state().store_put(CallShape {
            request_bytes: 0,
            items,
        });
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !crate::telemetry::spans_enabled() {
            return Ok(());
        }
        let request_bytes = context
            .request()
            .body()
            .bytes()
            .map(<[u8]>::len)
            .unwrap_or(0);
        if let Some(shape) = cfg.load::<CallShape>().copied() {
            cfg.interceptor_state().store_put(CallShape {
                request_bytes,
                ..shape
            });
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Every AWS call passes here: describe it only where the line will be shown.
        if !crate::telemetry::spans_enabled() {
            return Ok(());
        }
        if let (Some(started), Some(meta)) = (cfg.load::<CallStarted>(), cfg.load::<Metadata>()) {
            let ok = context.output_or_error().is_some_and(|r| r.is_ok());
            let name = format!("{}.{}", meta.service().to_lowercase(), meta.name());
            let shape = cfg.load::<CallShape>().copied().unwrap_or(CallShape {
                request_bytes: 0,
                items: 1,
            });
            crate::telemetry::span_sized(
                "aws",
                &name,
                started.0.elapsed(),
                ok,
                shape.request_bytes,
                shape.items,
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls so far, by `Service.Operation` (e.g. `kms.GenerateDataKey`).
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn get(&self, operation: &str) -> u64 {
        self.snapshot().get(operation).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let key = format!("{}.{}", meta.service().to_lowercase(), meta.name());
            *self
                .counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_default() += 1;
        }
        Ok(())
    }
}
