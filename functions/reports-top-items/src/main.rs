//! GET /v1/stores/{storeId}/reports/top-items?from=…&to=…&limit=… — the best sellers of a range of
//! business days. For the store's owner and staff.

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
    let date = |name: &'static str| {
        let value = http::query_param(&req, name)
            .ok_or_else(|| ApiError::validation(name, "required, as YYYY-MM-DD"))?;
        reports::parse_date(name, &value)
    };
    let top = reports::top_items(
        app,
        &store_id,
        date("from")?,
        date("to")?,
        http::query_limit(&req)?,
    )
    .await?;
    http::json(StatusCode::OK, &top)
}
