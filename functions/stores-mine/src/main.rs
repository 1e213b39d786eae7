//! GET /v1/me/stores — the stores the caller may run: those they own and those whose staff they are.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::stores::places;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let stores = places::mine(app, &caller).await?;
    http::json(
        StatusCode::OK,
        &shared::serde_json::json!({ "stores": stores }),
    )
}
