//! DELETE /v1/stores/{storeId}/menu/categories/{categoryId} — the owner deletes an empty category.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request};
use shared::menus;
use shared::stores::Access;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let id = http::path_param(&req, "categoryId")?;
    menus::update(app, &caller, &store_id, Access::Owner, |menu| {
        menus::delete_category(menu, &id)
    })
    .await?;
    http::no_content()
}
