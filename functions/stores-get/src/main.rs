//! GET /v1/stores/{storeId} — a store, and whether it is open now (public).
use shared::App;
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::stores;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    let store_id = http::path_param(&req, "storeId")?;
    http::json(StatusCode::OK, &stores::get(app, &store_id).await?)
}
