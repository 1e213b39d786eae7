//! GET /v1/orders/{orderId}/refunds — what an order's payment took and what went back of it, for
//! its customer and its store's owner and staff.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::payments::refunds;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let order_id = http::path_param(&req, "orderId")?;
    let listed = refunds::list(app, &caller, &order_id).await?;
    http::json(StatusCode::OK, &listed)
}
