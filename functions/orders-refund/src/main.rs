//! POST /v1/orders/{orderId}/refunds — the store's owner refunds part of a paid order; the
//! `Idempotency-Key` header names the refund, so a retry never refunds twice.

use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request};
use shared::payments::refunds::{self, RefundRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let order_id = http::path_param(&req, "orderId")?;
    let key = http::idempotency_key(&req)?;
    let request: RefundRequest = http::json_body(&req)?;
    let (status, refund) = refunds::partial(app, &caller, &order_id, &key, request).await?;
    http::json(status, &refund)
}
