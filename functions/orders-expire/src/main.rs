//! Every minute (a schedule): orders still unpaid past their payment window become EXPIRED.

use shared::lambda_http::Error;
use shared::serde_json::Value;
use shared::{ApiError, App, job, orders};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, _schedule: Value) -> Result<u64, ApiError> {
    orders::expire_due(&app.db).await
}
