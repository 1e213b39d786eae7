//! Issue #20's ladder: the status move's function built up rung by rung, so the bench can say which
//! part of a move's CPU is whose. `RUNG` (in its environment) picks how far it goes; each rung
//! answers a status move's event with everything the rungs below it do, and then:
//!
//! - `lambda-http`: `lambda_http`'s own runtime alone (`lambda_http::run`): the API Gateway event
//!   in, a fixed `{}` out. `serve` no longer runs on it; this rung shows what it would cost;
//! - `serve`: our request wrapper (`shared::http::serve`: the event read as the HTTP API's, the
//!   configuration, telemetry, the request's log line, the deadline), still answering `{}`;
//! - `auth`: the caller's token checked, the path and the body read (`{}`);
//! - `fetch`: the order's item fetched as the SDK returns it (a strongly consistent `GetItem`, its
//!   attributes not turned into our types), `{}`;
//! - `fetch-plain`: `fetch` with a client of our SDK configuration but without the call-counting
//!   interceptor the functions' clients carry, as `sdk-floor`'s is (`{}`);
//! - `read`: the order read as `orders::find` reads it (the same `GetItem`, the item turned into an
//!   `OrderRecord`), `{}`;
//! - `plan`: the move planned (`orders::plan_move`: the order read, the access checked — the
//!   store's owner, read once per instance, and a staff member's place — the move checked and
//!   built), not written (`{}`);
//! - `commit`: the move written (`orders::commit_move`: one conditional update), not answered (`{}`);
//! - `move` (the default): `orders-status`'s handler itself: the order answered as well (its
//!   contact opened, its view serialized).
//!
//! The bench gives every rung the same events (one order's move each), so the difference between
//! two rungs is the CPU of what the upper one adds.

use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::lambda_http::{self, Body, Error, Request, Response, http::StatusCode, service_fn};
use shared::orders::{self, MoveRequest};
use shared::payments::lifecycle;
use shared::storage;
use shared::{ApiError, App};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    match std::env::var("RUNG").as_deref() {
        Ok("lambda-http") => {
            lambda_http::run(service_fn(|_: Request| async {
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .map_err(Error::from)
            }))
            .await
        }
        Ok("serve") => {
            http::serve(|_, _| async { http::json(StatusCode::OK, &serde_json::json!({})) }).await
        }
        Ok("auth") => http::serve(auth_only).await,
        Ok("fetch") => http::serve(fetch_only).await,
        Ok("fetch-plain") => {
            let plain = aws_sdk_dynamodb::Client::new(&shared::aws::sdk_config()?);
            PLAIN.get_or_init(|| plain);
            http::serve(fetch_plain).await
        }
        Ok("read") => http::serve(read_only).await,
        Ok("plan") => http::serve(plan_only).await,
        Ok("commit") => http::serve(commit_only).await,
        _ => http::serve(handler).await,
    }
}

async fn auth_only(app: &'static App, req: Request) -> HttpResult {
    auth::authorize(app, &req, Role::ANY).await?;
    http::path_param(&req, "orderId")?;
    let _: MoveRequest = http::json_body(&req)?;
    http::json(StatusCode::OK, &serde_json::json!({}))
}

/// The id of the order the request names, once the rungs below have run.
async fn authorized(app: &'static App, req: &Request) -> Result<String, ApiError> {
    auth::authorize(app, req, Role::ANY).await?;
    let order_id = http::path_param(req, "orderId")?;
    let _: MoveRequest = http::json_body(req)?;
    Ok(order_id)
}

/// `fetch-plain`'s client.
static PLAIN: std::sync::OnceLock<aws_sdk_dynamodb::Client> = std::sync::OnceLock::new();

async fn fetch_only(app: &'static App, req: Request) -> HttpResult {
    fetch_with(app, &req, app.db.client()).await
}

async fn fetch_plain(app: &'static App, req: Request) -> HttpResult {
    let client = PLAIN
        .get()
        .ok_or_else(|| ApiError::internal("no plain client"))?;
    fetch_with(app, &req, client).await
}

async fn fetch_with(
    app: &'static App,
    req: &Request,
    client: &aws_sdk_dynamodb::Client,
) -> HttpResult {
    let order_id = authorized(app, req).await?;
    client
        .get_item()
        .table_name(app.db.table())
        .set_key(Some(storage::key(
            orders::order_pk(&order_id),
            orders::ORDER_SK,
        )))
        .consistent_read(true)
        .send()
        .await
        .map_err(ApiError::internal)?
        .item
        .ok_or_else(|| ApiError::not_found("ORDER_NOT_FOUND", "no such order"))?;
    http::json(StatusCode::OK, &serde_json::json!({}))
}

async fn read_only(app: &'static App, req: Request) -> HttpResult {
    let order_id = authorized(app, &req).await?;
    orders::find(&app.db, &order_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found("ORDER_NOT_FOUND", "no such order"))?;
    http::json(StatusCode::OK, &serde_json::json!({}))
}

/// The move the request asks for, planned as `move_order` plans it.
async fn planned(app: &'static App, req: &Request) -> Result<orders::PlannedMove, ApiError> {
    let caller = auth::authorize(app, req, Role::ANY).await?;
    let order_id = http::path_param(req, "orderId")?;
    let request: MoveRequest = http::json_body(req)?;
    orders::plan_move(app, &caller, &order_id, request).await
}

async fn plan_only(app: &'static App, req: Request) -> HttpResult {
    planned(app, &req).await?;
    http::json(StatusCode::OK, &serde_json::json!({}))
}

async fn commit_only(app: &'static App, req: Request) -> HttpResult {
    let planned = planned(app, &req).await?;
    orders::commit_move(&app.db, &planned.moved, planned.actions)
        .await
        .map_err(ApiError::from)?;
    http::json(StatusCode::OK, &serde_json::json!({}))
}

/// `functions/orders-status`'s handler, as it is there.
async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::ANY).await?;
    let order_id = http::path_param(&req, "orderId")?;
    let request: MoveRequest = http::json_body(&req)?;
    let order = lifecycle::move_order(app, &caller, &order_id, request).await?;
    http::json(StatusCode::OK, &order)
}
