//! POST /v1/me/invitations/{storeId}/accept — the caller joins the store's staff.
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
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let joined = staff::accept(app, &caller, &store_id).await?;
    http::json(StatusCode::OK, &joined)
}
