//! POST /v1/orders — a customer places an order, priced by the server; the `Idempotency-Key`
//! header makes retries safe.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request};
use shared::orders::{self, CreateOrder};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::BUYERS).await?;
    let key = http::idempotency_key(&req)?;
    let input: CreateOrder = http::json_body(&req)?;
    let (status, body) =
        orders::create_idempotent(app, &caller, &key, req.body().as_ref(), input).await?;
    http::raw_json(status, body)
}
