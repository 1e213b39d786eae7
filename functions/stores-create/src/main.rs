//! POST /v1/stores — an OWNER opens a store; they own it. An optional `Idempotency-Key` makes a
//! retry open no second store.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::stores::{self, Opening};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let key = http::idempotency_key_if_sent(&req)?;
    let opening = Opening {
        input: http::json_body(&req)?,
        idempotency: key.as_deref().map(|key| (key, req.body().as_ref())),
    };
    let store = stores::create(app, &caller, opening).await?;
    http::json(StatusCode::CREATED, &store)
}
