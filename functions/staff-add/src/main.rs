//! PUT /v1/stores/{storeId}/staff/{userId} — the owner invites an existing user to the store's
//! staff (202); the user joins by accepting. Already staff: 200.
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
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let user_id = http::path_param(&req, "userId")?;
    let standing = staff::invite(app, &caller, &store_id, &user_id).await?;
    http::json(standing.http_status(), &standing)
}
