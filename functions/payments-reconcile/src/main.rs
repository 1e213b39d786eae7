//! Every minute (a schedule): payments whose outcome is unknown are settled by asking Toss.

use shared::lambda_http::Error;
use shared::serde_json::Value;
use shared::{ApiError, App, job, payments};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, _schedule: Value) -> Result<u64, ApiError> {
    payments::reconcile(app).await
}
