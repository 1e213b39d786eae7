//! POST /v1/orders/{orderId}/status — moves an order: the store accepts, prepares, readies,
//! completes or rejects it; the customer cancels it before acceptance. A paid order rejected or
//! cancelled is refunded in full.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::orders::MoveRequest;
use shared::payments::lifecycle;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let order_id = http::path_param(&req, "orderId")?;
    let request: MoveRequest = http::json_body(&req)?;
    let order = lifecycle::move_order(app, &caller, &order_id, request).await?;
    http::json(StatusCode::OK, &order)
}
