//! The audit consumer (the table's stream): every event becomes an append-only audit record, once.
//! It reads the stream itself, beside the publisher, rather than a queue of its own: the stream's
//! reads are free, a queue's three requests per event are not.

use shared::aws_lambda_events::event::dynamodb::Event as StreamEvent;
use shared::aws_lambda_events::event::streams::DynamoDbEventResponse;
use shared::consumer::{self, Effect};
use shared::lambda_http::Error;
use shared::{ApiError, App, audit, job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, batch: StreamEvent) -> Result<DynamoDbEventResponse, ApiError> {
    Ok(
        consumer::process_stream(app, "audit", batch, |event| async move {
            Ok(Effect::Append(audit::record_item(&event)?))
        })
        .await,
    )
}
