//! POST /v1/auth/logout — ends the caller's session.

use shared::App;
use shared::auth::{self, Role, service};
use shared::http::{self, HttpResult, RequestMeta};
use shared::lambda_http::{Error, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    service::logout(app, &caller, &RequestMeta::of(&req)).await?;
    http::no_content()
}
