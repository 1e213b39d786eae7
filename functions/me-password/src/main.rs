//! POST /v1/me/password — changes the caller's password; every earlier session ends, and the
//! answer is a new one's tokens.

use shared::App;
use shared::auth::service::{self, ChangePasswordRequest};
use shared::auth::{self, Role};
use shared::http::{self, HttpResult, RequestMeta};
use shared::lambda_http::{Error, Request, http::StatusCode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let input: ChangePasswordRequest = http::json_body(&req)?;
    let tokens = service::change_password(app, &caller, input, &RequestMeta::of(&req)).await?;
    http::json(StatusCode::OK, &tokens)
}
