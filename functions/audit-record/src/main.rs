//! The audit consumer (SQS): every event becomes an append-only audit record, once.

use shared::aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::consumer::{self, Effect};
use shared::lambda_http::Error;
use shared::{ApiError, App, audit, job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, batch: SqsEvent) -> Result<SqsBatchResponse, ApiError> {
    Ok(consumer::process(app, "audit", batch, |event| async move {
        Ok(Effect::Append(audit::record_item(&event)?))
    })
    .await)
}
