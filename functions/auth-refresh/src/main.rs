//! POST /v1/auth/refresh — spends a refresh token for a new token pair.

use shared::App;
use shared::auth::service::{self, RefreshRequest};
use shared::http::{self, HttpResult, RequestMeta};
use shared::lambda_http::{Error, Request, http::StatusCode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let input: RefreshRequest = http::json_body(&req)?;
    let tokens = service::refresh(app, input, &RequestMeta::of(&req)).await?;
    http::json(StatusCode::OK, &tokens)
}
