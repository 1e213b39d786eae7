//! The recording consumer (the table's stream): every event becomes its append-only audit record
//! and, when it changes a day's sales, the store's report counters, once (shared::recording). It
//! reads the stream itself, beside the notifier, rather than queues of its own: the stream's reads
//! are free, a queue's three requests per event are not.

use shared::aws_lambda_events::event::dynamodb::Event as StreamEvent;
use shared::aws_lambda_events::event::streams::DynamoDbEventResponse;
use shared::consumer;
use shared::lambda_http::Error;
use shared::{ApiError, App, job, recording};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, batch: StreamEvent) -> Result<DynamoDbEventResponse, ApiError> {
    Ok(
        consumer::process_stream(app, "record", batch, |event| async move {
            recording::effect(app, &event).await
        })
        .await,
    )
}
