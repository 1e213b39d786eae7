//! The analytics consumer (SQS): order events become the store's daily sales counters, each event
//! counted once.

use shared::aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::consumer::{self, Effect};
use shared::lambda_http::Error;
use shared::{ApiError, App, job, reports};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, batch: SqsEvent) -> Result<SqsBatchResponse, ApiError> {
    Ok(
        consumer::process(app, "analytics", batch, |event| async move {
            Ok(Effect::Once(reports::record_actions(app, &event).await?))
        })
        .await,
    )
}
