//! POST /v1/stores — an OWNER opens a store; they own it.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::stores::{self, CreateStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let input: CreateStore = http::json_body(&req)?;
    let store = stores::create(app, &caller, input).await?;
    http::json(StatusCode::CREATED, &store)
}
