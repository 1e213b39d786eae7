//! POST /v1/orders — a customer places an order, priced by the server; the `Idempotency-Key`
//! header makes retries safe.
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request};
use shared::orders::{self, CreateOrder};
use shared::{ApiError, App};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Customer]).await?;
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request("IDEMPOTENCY_KEY_REQUIRED", "send an Idempotency-Key header")
        })?
        .to_owned();
    let input: CreateOrder = http::json_body(&req)?;
    let (status, body) =
        orders::create_idempotent(app, &caller, &key, req.body().as_ref(), input).await?;
    http::raw_json(status, body)
}
