//! GET /v1/stores/{storeId}/reports/daily?date=YYYY-MM-DD — one business day's sales. For the
//! store's owner and staff.

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
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let store_id = http::path_param(&req, "storeId")?;
    stores::load_for(app, &store_id, &caller, Access::Member).await?;
    let date = http::query_param(&req, "date")
        .ok_or_else(|| ApiError::validation("date", "required, as YYYY-MM-DD"))?;
    let report = reports::daily(app, &store_id, reports::parse_date("date", &date)?).await?;
    http::json(StatusCode::OK, &report)
}
