//! PUT /v1/stores/{storeId}/menu/items/{itemId} — the owner creates or replaces an item.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request};
use shared::menus::{self, ItemInput, Saved};
use shared::stores::Access;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let id = http::path_param(&req, "itemId")?;
    let input: ItemInput = http::json_body(&req)?;
    let ((item, done), menu) = menus::update(app, &caller, &store_id, Access::Owner, |menu| {
        menus::put_item(menu, &id, input.clone())
    })
    .await?;
    let saved = Saved {
        menu_version: menu.version,
        entity: item,
    };
    http::json(done.status(), &saved)
}
