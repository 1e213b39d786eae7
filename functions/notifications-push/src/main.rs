//! The notifications consumer (SQS): pushes each order event to the WebSocket connections allowed to
//! see it — the store's staff, the order's customer. Failed messages are reported one by one; an
//! event pushed before is not pushed again.

use shared::aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shared::consumer;
use shared::lambda_http::Error;
use shared::{ApiError, App, job, realtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, batch: SqsEvent) -> Result<SqsBatchResponse, ApiError> {
    Ok(
        consumer::process_outside(app, "notifications", batch, |event| async move {
            // Recorded only when something reached a connection: nothing else could repeat.
            Ok(realtime::push(app, &event).await?.delivered > 0)
        })
        .await,
    )
}
