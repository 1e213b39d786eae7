//! PATCH /v1/me — changes the caller's name or phone; answers the profile as it now is.

use shared::App;
use shared::auth::service::{self, UpdateProfileRequest};
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let input: UpdateProfileRequest = http::json_body(&req)?;
    let profile = service::update_profile(app, &caller, input).await?;
    http::json(StatusCode::OK, &profile)
}
