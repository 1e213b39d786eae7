//! The publisher (DynamoDB stream): each event — an order's move, a new outbox item — goes to the SQS
//! queues subscribed to its type; a batch that fails part-way is retried from the first record not
//! sent.

use shared::aws_lambda_events::event::dynamodb::Event as StreamEvent;
use shared::aws_lambda_events::event::streams::DynamoDbEventResponse;
use shared::events::publish::Publisher;
use shared::lambda_http::Error;
use shared::{ApiError, App, job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve_with(
        |app: &'static App| Ok(Publisher::from_env(app.sqs().clone())?),
        handler,
    )
    .await
}

async fn handler(
    _app: &'static App,
    publisher: &'static Publisher,
    batch: StreamEvent,
) -> Result<DynamoDbEventResponse, ApiError> {
    Ok(publisher.publish(batch).await)
}
