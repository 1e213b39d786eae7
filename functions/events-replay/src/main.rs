//! Invoked by an operator (never through the API): records again the events of a time range, or of
//! the windows the stream's dead-letter queue holds — for events whose stream records expired before
//! the recorder took them. A recording is keyed by its event, so replaying too much is harmless.
//!
//!     {"from": "2026-11-29T10:00:00Z", "to": "2026-11-29T11:00:00Z"}   or   {"fromDeadLetters": true}

use shared::lambda_http::Error;
use shared::replay::{self, ReplayRequest, Replayed};
use shared::{ApiError, App, job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, request: ReplayRequest) -> Result<Replayed, ApiError> {
    replay::replay(app, request).await
}
