//! PATCH /v1/stores/{storeId} — the owner changes the store's settings.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::stores::{self, PatchStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let patch: PatchStore = http::json_body(&req)?;
    let store = stores::patch(app, &caller, &store_id, patch).await?;
    http::json(StatusCode::OK, &store)
}
