//! GET /v1/me/invitations — the stores that invited the caller to their staff.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::stores::staff;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let invitations = staff::invitations(app, &caller).await?;
    http::json(
        StatusCode::OK,
        &shared::serde_json::json!({ "invitations": invitations }),
    )
}
