//! GET /v1/me/orders — the caller's orders, newest first, paged.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::orders::listing::{self, PageRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let page = PageRequest {
        limit: http::query_limit(&req)?,
        cursor: http::query_param(&req, "cursor"),
    };
    let orders = listing::for_customer(app, &caller.user_id, &page).await?;
    http::json(StatusCode::OK, &orders)
}
