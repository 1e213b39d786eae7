//! GET /v1/stores/{storeId}/menu — the whole menu, with an ETag (public; `If-None-Match` → 304).
use shared::App;
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request};
use shared::menus;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let store_id = http::path_param(&req, "storeId")?;
    let menu = menus::get_rendered(app, &store_id).await?;
    http::with_etag(&req, &menu.etag, &menu.body)
}
