//! Every minute (a schedule): orders still unpaid past their payment window become EXPIRED, unless a
//! payment of theirs may have gone through (it is settled first). Runs never overlap.

use shared::lambda_http::Error;
use shared::payments::lifecycle;
use shared::serde_json::Value;
use shared::{ApiError, App, job};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    job::serve(handler).await
}

async fn handler(app: &'static App, _schedule: Value) -> Result<Option<u64>, ApiError> {
    job::exclusive(&app.db, "orders-expire", lifecycle::expire_due(app)).await
}
