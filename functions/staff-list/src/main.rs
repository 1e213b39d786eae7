//! GET /v1/stores/{storeId}/staff — the store's staff and open invitations, with names (its owner).
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::stores::staff;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    http::json(StatusCode::OK, &staff::list(app, &caller, &store_id).await?)
}
