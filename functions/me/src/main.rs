//! GET /v1/me — the caller's profile.

use shared::App;
use shared::auth::{self, Role, service};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let profile = service::profile(app, &caller).await?;
    http::json(StatusCode::OK, &profile)
}
