//! PUT /v1/stores/{storeId}/menu/categories/{categoryId} — the owner creates or replaces a category.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request};
use shared::menus::{self, CategoryInput, Saved};
use shared::stores::Access;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let input: CategoryInput = http::json_body(&req)?;
    let category = input.into_category(&http::path_param(&req, "categoryId")?)?;
    let (done, menu) = menus::update(app, &caller, &store_id, Access::Owner, |menu| {
        Ok(menus::put_category(menu, category.clone()))
    })
    .await?;
    let saved = Saved {
        menu_version: menu.version,
        entity: category,
    };
    http::json(done.status(), &saved)
}
