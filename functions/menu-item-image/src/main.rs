//! POST /v1/stores/{storeId}/menu/items/{itemId}/image — the owner gets a presigned upload form for
//! the item's next image (JPEG, PNG or WebP, at most 5 MiB; S3 enforces both).

use shared::App;
use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::images::UploadRequest;
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::menus::image;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, &[Role::Owner, Role::Admin]).await?;
    let store_id = http::path_param(&req, "storeId")?;
    let item_id = http::path_param(&req, "itemId")?;
    let input: UploadRequest = http::json_body(&req)?;
    let form = image::request_upload(app, &caller, &store_id, &item_id, input).await?;
    http::json(StatusCode::CREATED, &form)
}
