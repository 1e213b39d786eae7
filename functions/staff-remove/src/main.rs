//! DELETE /v1/stores/{storeId}/staff/{userId} — the owner ends a user's work at the store (or their
//! invitation), or a user leaves it.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request};
use shared::stores::staff;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let user_id = http::path_param(&req, "userId")?;
    staff::remove(app, &caller, &store_id, &user_id).await?;
    http::no_content()
}
