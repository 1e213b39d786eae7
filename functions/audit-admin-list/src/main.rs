//! GET /v1/admin/audit?month=YYYY-MM — one month of the whole audit trail (this month by default),
//! newest first, paged. For admins.

use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::{App, audit};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    http::serve(handler).await
}

async fn handler(app: &'static App, req: Request) -> HttpResult {
    auth::authorize(app, &req, &[Role::Admin]).await?;
    let month = http::query_param(&req, "month")
        .unwrap_or_else(|| audit::month_of(shared::jiff::Timestamp::now()));
    let page = audit::for_month(
        app,
        &month,
        http::query_limit(&req)?,
        http::query_param(&req, "cursor").as_deref(),
    )
    .await?;
    http::json(StatusCode::OK, &page)
}
