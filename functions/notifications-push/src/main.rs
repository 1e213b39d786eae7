//! The notifications consumer (SQS): pushes each order event to the WebSocket connections allowed to
//! see it — the store's staff, the order's customer. Failed messages are reported one by one. A
//! push is made at least once: it carries its event id and its order's version, by which a receiver
//! drops a repeat (`shared::consumer`).

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
        consumer::process_outside("notifications", batch, |event| async move {
            realtime::push(app, &event).await.map(drop)
        })
        .await,
    )
}
