//! POST /v1/stores/{storeId}/reports/export?month=YYYY-MM — the month's daily sales as CSV, with a
//! download link valid for 15 minutes. For the store's owner.

use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::stores::{self, Access};
use shared::{ApiError, App, reports};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    stores::load_for(app, &store_id, &caller, Access::Owner).await?;
    let month = http::query_param(&req, "month")
        .ok_or_else(|| ApiError::validation("month", "required, as YYYY-MM"))?;
    let bucket = app
        .config
        .reports_bucket
        .as_deref()
        .ok_or_else(|| ApiError::internal("REPORTS_BUCKET is not set"))?;
    let export = reports::export(app, bucket, &store_id, &month).await?;
    http::json(StatusCode::CREATED, &export)
}
