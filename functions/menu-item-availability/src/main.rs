//! PATCH /v1/stores/{storeId}/menu/items/{itemId}/availability — the owner or staff mark an item sold out or back.
use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::menus::{self, AvailabilityInput, Saved};
use shared::stores::Access;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    // Staff are checked against the store itself: a customer just made staff still holds a
    // CUSTOMER token until their next refresh.
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let id = http::path_param(&req, "itemId")?;
    let input: AvailabilityInput = http::json_body(&req)?;
    let (item, menu) = menus::update(app, &caller, &store_id, Access::Member, |menu| {
        menus::set_availability(menu, &id, input.available)
    })
    .await?;
    let saved = Saved {
        menu_version: menu.version,
        entity: item,
    };
    http::json(StatusCode::OK, &saved)
}
