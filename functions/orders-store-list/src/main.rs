//! GET /v1/stores/{storeId}/orders — the store's orders, newest first: its active board by default,
//! or `status=PENDING|CLOSED|<status>`, `since=<instant>`; paged. For the store's owner and staff.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::orders::listing::{self, StoreListing};
use shared::stores::{self, Access};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let store_id = http::path_param(&req, "storeId")?;
    stores::load_for(app, &store_id, &caller, Access::Member).await?;
    let listing = StoreListing {
        status: http::query_param(&req, "status"),
        since: http::query_parsed(
            &req,
            "since",
            "a time as RFC 3339, e.g. 2026-12-07T09:00:00Z",
        )?,
        limit: http::query_limit(&req)?,
        cursor: http::query_param(&req, "cursor"),
    };
    let orders = listing::for_store(app, &store_id, &listing).await?;
    http::json(StatusCode::OK, &orders)
}
