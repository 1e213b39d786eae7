//! DELETE /v1/me — closes the caller's account, once they give its password again.

use shared::auth::service::CloseAccountRequest;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult, RequestMeta};
use shared::lambda_http::{Error, Request};
use shared::{App, accounts};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let input: CloseAccountRequest = http::json_body(&req)?;
    accounts::close(app, &caller, input, &RequestMeta::of(&req)).await?;
    http::no_content()
}
