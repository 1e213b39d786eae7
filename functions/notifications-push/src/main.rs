//! The notifier (DynamoDB stream): pushes each order event to the WebSocket connections allowed to
//! see it — the store's staff, the order's customer — in stream order. A push that could not be made
//! holds back the ones after it, and the stream retries from it. A push is made at least once: it
//! carries its event id and its order's version, by which a receiver drops a repeat
//! (`shared::consumer`).

use shared::aws_lambda_events::event::dynamodb::Event as StreamEvent;
use shared::aws_lambda_events::event::streams::DynamoDbEventResponse;
use shared::consumer;
use shared::lambda_http::Error;
use shared::{ApiError, App, job, realtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, batch: StreamEvent) -> Result<DynamoDbEventResponse, ApiError> {
    Ok(
        consumer::process_stream_outside("notifications", batch, |event| async move {
            realtime::push(app, &event).await.map(drop)
        })
        .await,
    )
}
