//! Issue #20's ladder for the order create: its function built up rung by rung, as
//! `status-ladder` builds the status move's, so the bench can say where an order create's CPU
//! goes. `RUNG` (in its environment) picks how far it goes; each rung answers an order create's
//! event with everything the rungs below it do, and then:
//!
//! - `auth`: the caller's token checked, the `Idempotency-Key` and the body read (`{}`);
//! - `read`: the store, its menu and the order the key names read as the create reads them (one
//!   `BatchGetItem` of three keys, the store and the menu turned into ours), the body digested, the
//!   order priced, `{}`;
//! - `limit`: the customer's order limit taken (`limits::take`: one `UpdateItem`), `{}`;
//! - `count`: the store's board counted (`orders::listing::count_active`: one `Query`, `COUNT`),
//!   `{}`;
//! - `create` (the default): `orders-create`'s handler itself — all of the above, then the order
//!   built (its contact sealed), put where no order has its id (one conditional `PutItem`), and
//!   answered with its view.
//!
//! The bench gives every rung the same kind of event, each with an idempotency key of its own, so
//! the difference between two rungs is the CPU of what the upper one adds.

use shared::auth::{self, Role};
use shared::http::{self, HttpResult};
use shared::idempotency::RequestDigest;
use shared::lambda_http::{Error, Request, http::StatusCode};
use shared::limits::{self, Limit};
use shared::menus::{MENU_SK, MenuRecord};
use shared::orders::{self, CreateOrder, ORDER_SK};
use shared::stores::{STORE_SK, StoreRecord, store_pk};
use shared::{ApiError, App};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    match std::env::var("RUNG").as_deref() {
        Ok(rung @ ("auth" | "read" | "limit" | "count")) => {
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
    Read,
    Limit,
    Count,
}

impl Rung {
    const ALL: [Rung; 4] = [Rung::Auth, Rung::Read, Rung::Limit, Rung::Count];

    fn name(self) -> &'static str {
        match self {
            Rung::Auth => "auth",
            Rung::Read => "read",
            Rung::Limit => "limit",
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
    if top >= Rung::Read {
        std::hint::black_box(RequestDigest::of(req.body().as_ref()));
        let pk = store_pk(&input.store_id);
        let [store, menu, placed] = app
            .db
            .get_each([
                (pk.clone(), STORE_SK.to_owned()),
                (pk, MENU_SK.to_owned()),
                (
                    orders::order_pk(&orders::order_id_for(&caller.user_id, &key)),
                    ORDER_SK.to_owned(),
                ),
            ])
            .await?;
        if placed.is_some() {
            return Err(ApiError::internal("a ladder event was replayed"));
        }
        let (store, menu) = store
            .zip(menu)
            .ok_or_else(|| ApiError::internal("the bench's store or its menu is missing"))?;
        let store: StoreRecord = shared::storage::from_item(store)?;
        let menu: MenuRecord = shared::storage::from_item(menu)?;
        if top >= Rung::Limit {
            limits::take(app, Limit::OrdersPerCustomer, &caller.user_id).await?;
        }
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
