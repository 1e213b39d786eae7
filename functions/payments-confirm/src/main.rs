//! POST /v1/payments/confirm — the customer's app, back from Toss's payment widget, confirms the
//! payment of their order: checked against the order, confirmed with Toss once, the order PAID.

use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::payments::{self, ConfirmRequest, Confirmed};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::BUYERS).await?;
    let request: ConfirmRequest = http::json_body(&req)?;
    match payments::confirm(app, &caller, request).await? {
        Confirmed::Paid(order) => http::json(StatusCode::OK, &order),
        // A virtual account: paid when the customer deposits.
        Confirmed::AwaitingDeposit(order) => http::json(StatusCode::ACCEPTED, &order),
    }
}
