//! Issue #20's ladder for the order create: its function built up rung by rung, as
//! `status-ladder` builds the status move's, so the bench can say where an order create's CPU
//! goes. `RUNG` (in its environment) picks how far it goes; each rung answers an order create's
//! event with everything the rungs below it do, and then:
//!
//! - `auth`: the caller's token checked, the `Idempotency-Key` and the body read (`{}`);
//! - `limit`: the customer's order limit taken (`limits::take`: one `UpdateItem`), `{}`;
//! - `claim`: the idempotency key claimed (`idempotency::begin`: the body hashed, one conditional
//!   `PutItem`), left claimed, `{}`;
//! - `read`: the store and its menu read as the create reads them (one `BatchGetItem`, both items
//!   turned into ours), the order priced, `{}`;
//! - `count`: the store's board counted (`orders::listing::count_active`: one `Query`, `COUNT`),
//!   `{}`;
//! - `create` (the default): `orders-create`'s handler itself — all of the above, then the order
//!   built (its contact sealed, its view), written with the claim's answer in one transaction, and
//!   answered.
//!
//! The bench gives every rung the same kind of event, each with an idempotency key of its own, so
//! the difference between two rungs is the CPU of what the upper one adds.

use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::idempotency::{self, Begin};
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::limits::{self, Limit};
use shared::menus::{MENU_SK, MenuRecord};
use shared::orders::{self, CreateOrder};
use shared::stores::{STORE_SK, StoreRecord, store_pk};
use shared::{ApiError, App};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    match std::env::var("RUNG").as_deref() {
        Ok(rung @ ("auth" | "limit" | "claim" | "read" | "count")) => {
            let top = Rung::ALL.iter().position(|r| r.name() == rung).unwrap_or(0);
            TOP.get_or_init(|| Rung::ALL[top]);
            http::serve(up_to).await
        }
        _ => http::serve(handler).await,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rung {
    Auth,
    Limit,
    Claim,
    Read,
    Count,
}

impl Rung {
    const ALL: [Rung; 5] = [
        Rung::Auth,
        Rung::Limit,
        Rung::Claim,
        Rung::Read,
        Rung::Count,
    ];

    fn name(self) -> &'static str {
        match self {
            Rung::Auth => "auth",
            Rung::Limit => "limit",
            Rung::Claim => "claim",
            Rung::Read => "read",
            Rung::Count => "count",
        }
    }
}

/// The rung this instance goes up to.
static TOP: std::sync::OnceLock<Rung> = std::sync::OnceLock::new();

/// Every rung up to [`TOP`], each as the create makes it, answered with `{}`.
async fn up_to(app: &'static App, req: Request) -> HttpResult {
    let top = *TOP.get().unwrap_or(&Rung::Auth);
    let caller = auth::authorize(app, &req, Role::BUYERS).await?;
    let key = http::idempotency_key(&req)?;
    let input: CreateOrder = http::json_body(&req)?;
    if top >= Rung::Limit {
        limits::take(app, Limit::OrdersPerCustomer, &caller.user_id).await?;
    }
    if top >= Rung::Claim {
        let scope = format!("orders.create#{}", caller.user_id);
        let hash = idempotency::request_hash(req.body().as_ref());
        if let Begin::Replay { .. } = idempotency::begin(app, &scope, &key, hash).await? {
            return Err(ApiError::internal("a ladder event was replayed"));
        }
    }
    if top >= Rung::Read {
        let pk = store_pk(&input.store_id);
        let (store, menu) = app
            .db
            .get_two::<StoreRecord, MenuRecord>(
                (pk.clone(), STORE_SK.to_owned()),
                (pk, MENU_SK.to_owned()),
            )
            .await?;
        let (store, menu) = store
            .zip(menu)
            .ok_or_else(|| ApiError::internal("the bench's store or its menu is missing"))?;
        orders::pricing::price(&menu.menu, &input.items)?;
        if top >= Rung::Count {
            orders::listing::count_active(&app.db, &store.store_id).await?;
        }
    }
    http::json(StatusCode::OK, &serde_json::json!({}))
}

/// `functions/orders-create`'s handler, as it is there.
async fn handler(app: &'static App, req: Request) -> HttpResult {
    let caller = auth::authorize(app, &req, Role::BUYERS).await?;
    let key = http::idempotency_key(&req)?;
    let input: CreateOrder = http::json_body(&req)?;
    let (status, body) =
        orders::create_idempotent(app, &caller, &key, req.body().as_ref(), input).await?;
    http::raw_json(status, body)
}
