//! PUT /v1/stores/{storeId}/menu/option-groups/{groupId} — the owner creates or replaces an option group.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request};
use shared::menus::{self, OptionGroupInput, Saved};
use shared::stores::Access;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let input: OptionGroupInput = http::json_body(&req)?;
    let group = input.into_group(&http::path_param(&req, "groupId")?)?;
    let (done, menu) = menus::update(app, &caller, &store_id, Access::Owner, |menu| {
        Ok(menus::put_option_group(menu, group.clone()))
    })
    .await?;
    let saved = Saved {
        menu_version: menu.version,
        entity: group,
    };
    http::json(done.status(), &saved)
}
