//! POST /v1/auth/login — exchanges e-mail and password for an access and a refresh token.

use shared::App;
use shared::auth::service::{self, LoginRequest};
use shared::http::{self, HttpResult, RequestMeta};
use shared::lambda_http::{Error, Request, http::StatusCode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let input: LoginRequest = http::json_body(&req)?;
    let tokens = service::login(app, input, &RequestMeta::of(&req)).await?;
    http::json(StatusCode::OK, &tokens)
}
