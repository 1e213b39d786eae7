//! Every minute (a schedule): open payments and pending refunds are settled by asking Toss; those
//! open too long are counted for the alarms. Runs never overlap.

use shared::lambda_http::Error;
use shared::payments::{self, reconcile::Report};
use shared::serde_json::Value;
use shared::{ApiError, App, job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, _schedule: Value) -> Result<Report, ApiError> {
    payments::reconcile(app).await
}
