//! Invoked by an operator (never through the API): sends again the events of a time range, or of
//! the windows the stream's dead-letter queue holds — for events whose stream records expired before
//! the publisher sent them. Consumers take each event once, so replaying too much is harmless.
//!
//!     {"from": "2026-11-29T10:00:00Z", "to": "2026-11-29T11:00:00Z"}   or   {"fromDeadLetters": true}

use shared::events::publish::Publisher;
use shared::lambda_http::Error;
use shared::replay::{self, ReplayRequest, Replayed};
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
    app: &'static App,
    publisher: &'static Publisher,
    request: ReplayRequest,
) -> Result<Replayed, ApiError> {
    replay::replay(app, publisher, request).await
}
