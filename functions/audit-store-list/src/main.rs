//! GET /v1/stores/{storeId}/audit — the store's audit trail, newest first, paged. For its owner.

use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::stores::{self, Access};
use shared::{App, audit};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    stores::load_for(app, &store_id, &caller, Access::Owner).await?;
    let page = audit::for_store(
        app,
        &store_id,
        http::query_limit(&req)?,
        http::query_param(&req, "cursor").as_deref(),
    )
    .await?;
    http::json(StatusCode::OK, &page)
}
