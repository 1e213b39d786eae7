//! POST /v1/auth/signup — creates a CUSTOMER or OWNER account.

use shared::App;
use shared::auth::service::{self, SignupRequest};
use shared::http::{self, HttpResult, RequestMeta};
use shared::lambda_http::{Error, Request, http::StatusCode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let input: SignupRequest = http::json_body(&req)?;
    let profile = service::signup(app, input, &RequestMeta::of(&req)).await?;
    http::json(StatusCode::CREATED, &profile)
}
