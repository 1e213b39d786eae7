//! Orders: priced by the server, created exactly once per idempotency key, moved through their life
//! by conditional writes, listed newest-first from indexes.

pub mod listing;
pub mod pricing;
pub mod status;

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use self::pricing::{Line, LineRequest};
use self::status::{Actor, RejectReason, Status};
use crate::app::App;
use crate::auth::Caller;
use crate::crypto::blind_index::normalize_phone;
use crate::crypto::{CryptoError, Location, Sealed};
use crate::error::ApiError;
use crate::idempotency::{self, RequestDigest};
use crate::limits::{self, Limit};
use crate::storage::{Db, StorageError, key, n, s};
use crate::stores::{self, Access};
use crate::text::{Lines, text};

pub const ORDER_SK: &str = "ORDER";
/// Pending orders are spread over this many index partitions, so the expiry index never has a hot
/// key however many orders are created per second: each order enters and leaves one (2 WCU), 625
/// WCU/s per partition at 10,000 orders/s (docs/COST.md, capacity).
pub const PENDING_SHARDS: u32 = 32;

/// The least an order may come to: Toss takes no card payment under 100 KRW (a transfer, 200), so
/// a smaller order could never be paid — it would wait out its payment time unseen by the store.
pub const PAYABLE_MINIMUM: i64 = 100;

pub fn order_pk(order_id: &str) -> String {
    format!("ORDER#{order_id}")
}

const CUSTOMER_PREFIX: &str = "CUSTOMER#";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum FulfilmentRequest {
    Pickup,
    Delivery { address: String },
}

/// `POST /v1/orders`. No prices, totals or statuses: the server computes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateOrder {
    pub store_id: String,
    pub items: Vec<LineRequest>,
    pub fulfilment: FulfilmentRequest,
    pub phone: String,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Fulfilment {
    Pickup,
    Delivery,
}

/// `ORDER#<orderId>` / `ORDER`, with the keys of its three indexes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    // The order's and the customer's ids and its creation time are read off the keys
    // (`order_id()`, `customer_id()`, `created_at()`): stored twice, they were 123 bytes of an item
    // that must stay under a kilobyte.
    pub store_id: String,
    pub status: Status,
    pub version: u64,
    pub lines: Vec<Line>,
    pub total: i64,
    // Its name ("카페라떼 외 1건") is made from its lines when shown (`order_name()`), not stored:
    // 20-odd bytes of an item that must stay under a kilobyte.
    pub menu_version: u64,
    pub fulfilment: Fulfilment,
    /// The customer's phone, the delivery address and the note ([`Contact`]), sealed together.
    #[serde(with = "crate::crypto::binary")]
    pub contact: Sealed,
    pub updated_at: String,
    /// Epoch seconds after which an unpaid order expires.
    pub payment_due: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<RejectReason>,
    /// Store board: `STORE#<storeId>#<bucket>` / `<createdAt>`. An index's sort key need not be
    /// unique (a page's cursor carries the table key too), so the order id is not repeated here: it
    /// took two index keys past a kilobyte, which doubles the price of every move.
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    /// The customer's orders: `CUSTOMER#<userId>` / `<createdAt>` (written once, when the order is
    /// placed).
    #[serde(rename = "GSI2PK")]
    pub gsi2pk: String,
    #[serde(rename = "GSI2SK")]
    pub gsi2sk: String,
    /// Unpaid orders by due time, sharded: `PENDING#<n>` / `<paymentDue>#<orderId>`. Removed once the
    /// order leaves PENDING_PAYMENT (a sparse index).
    #[serde(rename = "GSI3PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(rename = "GSI3SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
    /// Who made the latest move, and from where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_move: Option<LastMove>,
    /// The digest of the request that placed it, against which a request with its
    /// `Idempotency-Key` (which names the order: [`order_id_for`]) is checked. `None` in orders
    /// from before 2026-12-06, whose ids were random.
    #[serde(
        rename = "requestHash",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request: Option<RequestDigest>,
}

/// What an order keeps of its customer, sealed as one value: one data key, one wrapped key (184
/// of a sealed value's bytes on AWS), stored as binary. Sealed one by one as text, a delivery's
/// three values were ~1,120 bytes and took the order past a kilobyte, which doubles every write.
/// The names are short: they are sealed with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Contact {
    #[serde(rename = "p")]
    phone: String,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// The attribute [`Contact`] is sealed for (its data key's context and associated data).
const CONTACT: &str = "contact";

/// Who made an order's latest move and from which request: what the move's event says beyond the
/// order itself. The order item carries it, so the table's stream record of the move *is* the event
/// (`events::stream` derives it): a move is one conditional write, with no outbox item beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastMove {
    /// The version the move made; a stamp left from an earlier version tells of no change.
    pub version: u64,
    /// The status before (`None` when the order was placed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Status>,
    pub by: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_id: Option<String>,
    /// The request that made it: its log line carries the trace id (not kept here: a hundred bytes
    /// on every order, and the request id finds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The board that made it, when it named itself: the move's pushes skip its connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
}

/// A client's name for itself (a board's page): 1 to [`Device::MAX_LEN`] of `A–Z a–z 0–9 - _`, of
/// the client's own choosing (random: 8 characters, 48 bits, tell a store's boards apart). A move
/// that names it is not pushed to the connections opened under it (`?device=`): the move's answer
/// told that client already, and each push is paid for. Naming another client's device only keeps
/// that one push from it, and a device is never shown to anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Device(String);

impl Device {
    /// Every byte is stored on each move that names it, and a byte more can take an order past a
    /// kilobyte (twice the write units).
    pub const MAX_LEN: usize = 32;
}

impl TryFrom<String> for Device {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if (1..=Self::MAX_LEN).contains(&value.len()) && value.chars().all(allowed) {
            Ok(Self(value))
        } else {
            Err(format!(
                "a device is 1 to {} of A-Z a-z 0-9 - _",
                Self::MAX_LEN
            ))
        }
    }
}

impl From<Device> for String {
    fn from(device: Device) -> String {
        device.0
    }
}

impl LastMove {
    /// The move to `version` from `from`, by `by`, in the request being served.
    pub fn new(version: u64, from: Option<Status>, by: Actor, by_id: Option<&str>) -> Self {
        let (request_id, _) = crate::telemetry::current_ids();
        Self {
            version,
            from,
            by,
            by_id: by_id.map(String::from),
            request_id: (!request_id.is_empty()).then_some(request_id),
            device: None,
        }
    }
}

/// What a client sees of an order (personal fields opened for those allowed to read it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub store_id: String,
    pub customer_id: String,
    pub status: Status,
    pub version: u64,
    pub lines: Vec<Line>,
    pub total: i64,
    pub order_name: String,
    pub menu_version: u64,
    pub fulfilment: Fulfilment,
    pub phone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub payment_due_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<RejectReason>,
}

fn board_pk(store_id: &str, status: Status) -> String {
    format!("STORE#{store_id}#{}", status.bucket().name())
}

fn shard_of(order_id: &str) -> u32 {
    crate::storage::shard(order_id, PENDING_SHARDS)
}

fn location<'a>(table: &'a str, pk: &'a str, field: &'a str) -> Location<'a> {
    Location {
        table,
        pk,
        sk: ORDER_SK,
        field,
    }
}

impl OrderRecord {
    /// What Toss and the store call the order: its first item's name, and how many more.
    pub fn order_name(&self) -> String {
        pricing::order_name(&self.lines)
    }

    /// The order's id, from its key (`ORDER#<orderId>`).
    pub fn order_id(&self) -> &str {
        self.pk.strip_prefix("ORDER#").unwrap_or_default()
    }

    /// The customer's id, from their listing's key (`CUSTOMER#<userId>`).
    pub fn customer_id(&self) -> &str {
        self.gsi2pk
            .strip_prefix(CUSTOMER_PREFIX)
            .unwrap_or_default()
    }

    /// When the order was placed, from its listing's sort key (an order placed before the key was
    /// the time alone carries `#<orderId>` after it).
    pub fn created_at(&self) -> &str {
        self.gsi2sk.split('#').next().unwrap_or_default()
    }

    pub async fn view(&self, app: &App) -> Result<OrderView, ApiError> {
        let at = location(app.db.table(), &self.pk, CONTACT);
        let opened = app.crypto().open(&at, &self.contact).await?;
        let Contact {
            phone,
            address,
            note,
        } = serde_json::from_slice(&opened).map_err(|_| CryptoError::Malformed)?;
        Ok(OrderView {
            order_id: self.order_id().to_owned(),
            store_id: self.store_id.clone(),
            customer_id: self.customer_id().to_owned(),
            status: self.status,
            version: self.version,
            lines: self.lines.clone(),
            total: self.total,
            order_name: self.order_name(),
            menu_version: self.menu_version,
            fulfilment: self.fulfilment,
            phone,
            address,
            note,
            created_at: self.created_at().to_owned(),
            updated_at: self.updated_at.clone(),
            payment_due_at: jiff::Timestamp::from_second(self.payment_due)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            eta_at: self.eta_at.clone(),
            reject_reason: self.reject_reason,
        })
    }
}

#[cfg(test)]
impl OrderRecord {
    /// An order for unit tests: `o1` of store `s1` and customer `c1`, at version 3, without lines or a stamp.
    pub fn example(status: Status) -> Self {
        Self {
            pk: order_pk("o1"),
            sk: ORDER_SK.into(),
            store_id: "s1".into(),
            status,
            version: 3,
            lines: Vec::new(),
            total: 9000,
            menu_version: 1,
            fulfilment: Fulfilment::Pickup,
            contact: crate::crypto::format::encode(1, &[0; 4], &[0; 12], &[0; 16])
                .ok()
                .and_then(|bytes| Sealed::from_binary(&bytes))
                .expect("a sealed value"),
            updated_at: "2026-12-03T10:05:00Z".into(),
            payment_due: 0,
            eta_at: None,
            reject_reason: None,
            gsi1pk: String::new(),
            gsi1sk: "2026-12-03T10:00:00.000Z".into(),
            gsi2pk: format!("{CUSTOMER_PREFIX}c1"),
            gsi2sk: "2026-12-03T10:00:00.000Z".into(),
            gsi3pk: None,
            gsi3sk: None,
            last_move: None,
            request: None,
        }
    }
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message.into())
}

/// The id of the order a customer's `Idempotency-Key` places: the key names its order
/// ([`crate::idempotency`]), so a retry meets the order it made, however long after.
pub fn order_id_for(customer_id: &str, idempotency_key: &str) -> String {
    let id = idempotency::id_for(&["orders.create", customer_id, idempotency_key], 32);
    format!("ord_{id}")
}

/// `POST /v1/orders` with its `Idempotency-Key`: the response to send (status, JSON body). A key
/// used before with this body is answered with the order it placed, as it stands, whatever the
/// store, its menu or the customer's limit say now; with another body it is refused.
pub async fn create_idempotent(
    app: &App,
    caller: &Caller,
    idempotency_key: &str,
    raw_body: &[u8],
    input: CreateOrder,
) -> Result<(StatusCode, String), ApiError> {
    idempotency::validate_key(idempotency_key)?;
    // Checked before a key is built from it, as a path's id is.
    crate::http::validate_id("storeId", &input.store_id)?;
    let request = RequestDigest::of(raw_body);
    let order_id = order_id_for(&caller.user_id, idempotency_key);
    // The store, its menu and the order this key names, in one round trip. Prices come from the
    // menu as stored, never from a cache.
    let store_pk = stores::store_pk(&input.store_id);
    let [store, menu, placed] = app
        .db
        .get_each([
            (store_pk.clone(), stores::STORE_SK.to_owned()),
            (store_pk, crate::menus::MENU_SK.to_owned()),
            (order_pk(&order_id), ORDER_SK.to_owned()),
        ])
        .await?;
    if let Some(placed) = placed {
        return again(app, crate::storage::from_item(placed)?, request).await;
    }
    // The customer's limit and the board's count side by side: one wait on the table, not two.
    // The count is read even when the limit refuses (half a read unit), and is checked only after
    // the order itself (a bad order is told so, not that the store is busy).
    let (taken, queued) = tokio::join!(
        limits::take_for(app, Limit::OrdersPerCustomer, &caller.user_id, &order_id),
        listing::count_active(&app.db, &input.store_id),
    );
    taken?;
    let order = create(
        app,
        caller,
        input,
        Placing {
            order_id,
            request,
            store: store.map(crate::storage::from_item).transpose()?,
            menu: menu.map(crate::storage::from_item).transpose()?,
            queued,
        },
    )
    .await?;
    // Made here, or by a request with this key that got there first (or by this one, whose first
    // answer was lost: `Db::put_or_standing`).
    match app.db.put_if_absent_or_standing(&order).await? {
        None => {
            crate::telemetry::count("OrdersCreated", 1.0);
            let body =
                serde_json::to_string(&order.view(app).await?).map_err(ApiError::internal)?;
            Ok((StatusCode::CREATED, body))
        }
        Some(standing) => again(app, crate::storage::from_item(standing)?, request).await,
    }
}

/// The answer to a key used before: its order as it stands, if this is the request that placed it.
async fn again(
    app: &App,
    placed: OrderRecord,
    request: RequestDigest,
) -> Result<(StatusCode, String), ApiError> {
    request.check_same(placed.request)?;
    let body = serde_json::to_string(&placed.view(app).await?).map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, body))
}

/// What an order create has read before it builds the order.
struct Placing {
    order_id: String,
    request: RequestDigest,
    store: Option<stores::StoreRecord>,
    menu: Option<crate::menus::MenuRecord>,
    /// The orders on the store's board when the request came.
    queued: Result<u64, StorageError>,
}

/// The order `input` asks for, checked against its store and priced from its menu.
async fn create(
    app: &App,
    caller: &Caller,
    input: CreateOrder,
    placing: Placing,
) -> Result<OrderRecord, ApiError> {
    let Placing {
        order_id,
        request,
        store,
        menu,
        queued,
    } = placing;
    let store = store.ok_or_else(|| {
        refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "STORE_NOT_FOUND",
            "storeId: no such store",
        )
    })?;
    let phone = normalize_phone(&input.phone)
        .ok_or_else(|| ApiError::validation("phone", "not a phone number"))?;
    let (fulfilment, address) = match input.fulfilment {
        FulfilmentRequest::Pickup => (Fulfilment::Pickup, None),
        // The store reads (and prints) both as the customer typed them, lines and all.
        FulfilmentRequest::Delivery { address } => (
            Fulfilment::Delivery,
            Some(text("fulfilment.address", &address, 1..=300, Lines::Many)?),
        ),
    };
    let note = input
        .note
        .map(|n| text("note", &n, 0..=500, Lines::Many))
        .transpose()?
        .filter(|n| !n.is_empty());

    let now = jiff::Timestamp::now();
    let status = store.status_at(now);
    if !status.open {
        return Err(refused(
            StatusCode::CONFLICT,
            "STORE_CLOSED",
            format!(
                "the store is not taking orders: {}",
                store.settings.why_closed(status)
            ),
        ));
    }
    let menu = menu.ok_or_else(|| ApiError::internal("store without a menu"))?;
    let (lines, total) = pricing::price(&menu.menu, &input.items)?;
    if total < store.settings.min_order_amount {
        return Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "BELOW_MINIMUM_AMOUNT",
            format!(
                "the store's minimum order is {} KRW",
                store.settings.min_order_amount
            ),
        ));
    }
    if total < PAYABLE_MINIMUM {
        return Err(refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "BELOW_MINIMUM_AMOUNT",
            format!("an order is paid by card: at least {PAYABLE_MINIMUM} KRW"),
        ));
    }
    if queued? >= u64::from(store.settings.max_queued_orders) {
        return Err(ApiError {
            retry_after: Some(60),
            ..refused(
                StatusCode::CONFLICT,
                "QUEUE_FULL",
                "the store has too many orders waiting; try again soon",
            )
        });
    }

    let pk = order_pk(&order_id);
    let contact = Zeroizing::new(
        serde_json::to_vec(&Contact {
            phone,
            address,
            note,
        })
        .map_err(ApiError::internal)?,
    );
    let contact = app
        .crypto()
        .seal(&location(app.db.table(), &pk, CONTACT), &contact)
        .await?;
    let created_at = crate::storage::stamp(now);
    let payment_due = now.as_second() + app.config.payment_window_seconds;
    let order = OrderRecord {
        contact,
        pk: pk.clone(),
        sk: ORDER_SK.to_owned(),
        store_id: store.store_id.clone(),
        status: Status::PendingPayment,
        version: 1,
        lines,
        total,
        menu_version: menu.version,
        fulfilment,
        updated_at: created_at.clone(),
        payment_due,
        eta_at: None,
        reject_reason: None,
        gsi1pk: board_pk(&store.store_id, Status::PendingPayment),
        gsi1sk: created_at.clone(),
        gsi2pk: format!("{CUSTOMER_PREFIX}{}", caller.user_id),
        gsi2sk: created_at.clone(),
        gsi3pk: Some(format!("PENDING#{}", shard_of(&order_id))),
        gsi3sk: Some(format!("{payment_due:012}#{order_id}")),
        last_move: Some(LastMove::new(
            1,
            None,
            Actor::Customer,
            Some(&caller.user_id),
        )),
        request: Some(request),
    };
    Ok(order)
}

pub async fn find(db: &Db, order_id: &str) -> Result<Option<OrderRecord>, StorageError> {
    db.get(order_pk(order_id), ORDER_SK).await
}

fn not_found() -> ApiError {
    ApiError::not_found("ORDER_NOT_FOUND", "no such order")
}

/// The order if `caller` may see it — its customer, its store's owner or staff, an admin — and the
/// role they see it in. Anyone else is told it does not exist.
pub async fn load_for(
    app: &App,
    caller: &Caller,
    order_id: &str,
) -> Result<(OrderRecord, Actor), ApiError> {
    let order = find(&app.db, order_id).await?.ok_or_else(not_found)?;
    if order.customer_id() == caller.user_id {
        return Ok((order, Actor::Customer));
    }
    match stores::check_access(app, &order.store_id, caller, Access::Member).await {
        Ok(_) => Ok((order, Actor::Store)),
        Err(err) if err.status == StatusCode::FORBIDDEN => Err(not_found()),
        Err(err) => Err(err),
    }
}

/// `POST /v1/orders/{orderId}/status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MoveRequest {
    pub to: Status,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub eta_minutes: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub reason: Option<RejectReason>,
    /// The board making the move (see [`Device`]).
    #[serde(default, deserialize_with = "crate::http::present")]
    pub device: Option<Device>,
}

impl MoveRequest {
    /// What the move sets besides the status, from the request alone: `etaMinutes` (1–240) comes
    /// with an acceptance and only then, `reason` with a rejection and only then. Checked before
    /// the order is read, so such a request is refused with 422 whatever state the order is in,
    /// as the document's schema refuses it.
    fn extra(self) -> Result<Extra, ApiError> {
        let eta_at = match (self.to, self.eta_minutes) {
            (Status::Accepted, Some(minutes @ 1..=240)) => {
                let eta = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(minutes.into());
                Some(crate::storage::stamp(eta))
            }
            (Status::Accepted, _) => {
                return Err(ApiError::validation(
                    "etaMinutes",
                    "between 1 and 240 when accepting",
                ));
            }
            (_, Some(_)) => return Err(ApiError::validation("etaMinutes", "only when accepting")),
            (_, None) => None,
        };
        let reason = match (self.to, self.reason) {
            (Status::Rejected, None) => {
                return Err(ApiError::validation("reason", "required when rejecting"));
            }
            (Status::Rejected, reason) => reason,
            (_, Some(_)) => return Err(ApiError::validation("reason", "only when rejecting")),
            (_, None) => None,
        };
        Ok(Extra {
            eta_at,
            reason,
            device: self.device,
        })
    }
}

/// A person's move of an order, checked and built but not yet committed: the caller adds what the
/// move owes (a refund, a payment check; see `payments::lifecycle`) and commits it.
pub struct PlannedMove {
    /// The order as read.
    pub order: OrderRecord,
    pub actor: Actor,
    /// The move's actions: the conditional update first (see [`commit_move`]).
    pub actions: Vec<TransactWriteItem>,
    /// The order as it will be.
    pub moved: OrderRecord,
}

/// Checks that `caller` may make the move `request` asks for, and builds it.
pub async fn plan_move(
    app: &App,
    caller: &Caller,
    order_id: &str,
    request: MoveRequest,
) -> Result<PlannedMove, ApiError> {
    let to = request.to;
    let extra = request.extra()?;
    let (order, actor) = load_for(app, caller, order_id).await?;
    if order.status == to {
        // Made already: by this move, sent again after its answer was lost, or by another board.
        return Err(refused(
            StatusCode::CONFLICT,
            "ORDER_STATUS_CHANGED",
            format!("the order is already {}", to.name()),
        ));
    }
    if !order.status.may_move(to, actor) {
        return Err(refused(
            StatusCode::CONFLICT,
            "TRANSITION_NOT_ALLOWED",
            status::refused_move(order.status, to, actor),
        ));
    }
    let (actions, moved) =
        transition_actions(&app.db, &order, to, actor, Some(&caller.user_id), extra)?;
    Ok(PlannedMove {
        order,
        actor,
        actions,
        moved,
    })
}

/// What a move sets besides the status.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub eta_at: Option<String>,
    pub reason: Option<RejectReason>,
    /// The board making the move, stamped on it (not an order's field).
    pub device: Option<Device>,
}

/// Moves `order` (as read) to `to`: one conditional update on the status and version read, which
/// also records who moved it (its stream record is the move's event; the audit keeps each move, who
/// made it and when). A concurrent move makes it fail with 409 `ORDER_STATUS_CHANGED`, naming the
/// status the order has now.
pub async fn transition(
    db: &Db,
    order: &OrderRecord,
    to: Status,
    actor: Actor,
    actor_id: Option<&str>,
    extra: Extra,
) -> Result<OrderRecord, ApiError> {
    let (actions, moved) = transition_actions(db, order, to, actor, actor_id, extra)?;
    match commit_move(db, &moved, actions).await {
        Ok(()) => Ok(moved),
        Err(err) if err.condition_failed_at(0) => Err(status_changed(db, order.order_id()).await),
        Err(err) => Err(err.into()),
    }
}

/// Commits a move's actions (the update of [`transition_actions`] first, any others after). The
/// update alone is a plain conditional write; with others, one transaction. A lone update whose
/// condition fails may have been the SDK's retry of itself after a lost answer: the order is read
/// again, and if it already is what this move made, the move succeeded. Otherwise the error says
/// which action failed, as a canceled transaction's does (`condition_failed_at(0)`: the order moved).
pub async fn commit_move(
    db: &Db,
    moved: &OrderRecord,
    mut actions: Vec<TransactWriteItem>,
) -> Result<(), StorageError> {
    if actions.len() > 1 {
        return db.transact(actions).await;
    }
    let update = actions
        .pop()
        .and_then(|a| a.update)
        .ok_or_else(|| StorageError::Backend("a move without its update".into()))?;
    match db.update(update).await {
        Err(StorageError::ConditionFailed) => {
            let landed = find(db, moved.order_id()).await?.is_some_and(|now| {
                now.version == moved.version && now.updated_at == moved.updated_at
            });
            if landed {
                Ok(())
            } else {
                Err(StorageError::TransactionCanceled(vec![Some(
                    "ConditionalCheckFailed".into(),
                )]))
            }
        }
        other => other,
    }
}

/// 409 `ORDER_STATUS_CHANGED`, naming the status the order has now: a move lost a race.
pub async fn status_changed(db: &Db, order_id: &str) -> ApiError {
    let current = match find(db, order_id).await {
        Ok(found) => found.map(|o| o.status.name()).unwrap_or("GONE"),
        Err(err) => return err.into(),
    };
    refused(
        StatusCode::CONFLICT,
        "ORDER_STATUS_CHANGED",
        format!("the order changed meanwhile; it is now {current}"),
    )
}

/// The action of a move (the conditional update, stamped with who made it) and the order as it will
/// be, for callers that commit more in the same transaction (payments). Commit with [`commit_move`].
pub fn transition_actions(
    db: &Db,
    order: &OrderRecord,
    to: Status,
    actor: Actor,
    actor_id: Option<&str>,
    extra: Extra,
) -> Result<(Vec<TransactWriteItem>, OrderRecord), ApiError> {
    let now = crate::storage::stamp(jiff::Timestamp::now());
    let version = order.version + 1;
    let stamp = LastMove {
        device: extra.device.clone(),
        ..LastMove::new(version, Some(order.status), actor, actor_id)
    };
    let stamped = serde_dynamo::to_attribute_value(&stamp).map_err(ApiError::internal)?;
    let mut sets = vec![
        "#status = :to",
        "version = :version",
        "updatedAt = :now",
        "GSI1PK = :board",
        "lastMove = :move",
    ];
    let mut update = Update::builder()
        .table_name(db.table())
        .set_key(Some(key(&order.pk, ORDER_SK)))
        .condition_expression("#status = :from AND version = :seen")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":to", s(to.name()))
        .expression_attribute_values(":from", s(order.status.name()))
        .expression_attribute_values(":seen", n(order.version))
        .expression_attribute_values(":version", n(version))
        .expression_attribute_values(":now", s(&now))
        .expression_attribute_values(":board", s(board_pk(&order.store_id, to)))
        .expression_attribute_values(":move", stamped);
    if let Some(eta) = &extra.eta_at {
        sets.push("etaAt = :eta");
        update = update.expression_attribute_values(":eta", s(eta));
    }
    if let Some(reason) = extra.reason {
        sets.push("rejectReason = :reason");
        let reason = serde_json::to_value(reason).map_err(ApiError::internal)?;
        update =
            update.expression_attribute_values(":reason", s(reason.as_str().unwrap_or("OTHER")));
    }
    let mut expression = format!("SET {}", sets.join(", "));
    if order.status == Status::PendingPayment && to != Status::PendingPayment {
        // Leaves the sparse index of unpaid orders.
        expression.push_str(" REMOVE GSI3PK, GSI3SK");
    }
    let update = update
        .update_expression(expression)
        .build()
        .map_err(ApiError::internal)?;
    let mut moved = order.clone();
    moved.status = to;
    moved.version = version;
    moved.updated_at = now;
    moved.gsi1pk = board_pk(&order.store_id, to);
    if extra.eta_at.is_some() {
        moved.eta_at = extra.eta_at;
    }
    if extra.reason.is_some() {
        moved.reject_reason = extra.reason;
    }
    if to != Status::PendingPayment {
        moved.gsi3pk = None;
        moved.gsi3sk = None;
    }
    moved.last_move = Some(stamp);
    Ok((
        vec![TransactWriteItem::builder().update(update).build()],
        moved,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra(body: serde_json::Value) -> Result<Extra, (String, String)> {
        let request: MoveRequest = serde_json::from_value(body).unwrap();
        request.extra().map_err(|err| {
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
            (err.code.to_owned(), err.message.into_owned())
        })
    }

    #[test]
    fn an_acceptance_has_an_eta_and_a_rejection_a_reason_and_nothing_else_has_either() {
        let accepted = extra(serde_json::json!({"to": "ACCEPTED", "etaMinutes": 240})).unwrap();
        assert!(accepted.eta_at.is_some() && accepted.reason.is_none());
        let rejected = extra(serde_json::json!({"to": "REJECTED", "reason": "TOO_BUSY"})).unwrap();
        assert_eq!(rejected.reason, Some(RejectReason::TooBusy));
        assert!(rejected.eta_at.is_none());
        let ready = extra(serde_json::json!({"to": "READY", "device": "counter"})).unwrap();
        assert!(ready.eta_at.is_none() && ready.reason.is_none());
        assert_eq!(ready.device.map(String::from).as_deref(), Some("counter"));

        for (body, message) in [
            (
                serde_json::json!({"to": "ACCEPTED"}),
                "etaMinutes: between 1 and 240 when accepting",
            ),
            (
                serde_json::json!({"to": "ACCEPTED", "etaMinutes": 0}),
                "etaMinutes: between 1 and 240 when accepting",
            ),
            (
                serde_json::json!({"to": "ACCEPTED", "etaMinutes": 241}),
                "etaMinutes: between 1 and 240 when accepting",
            ),
            (
                serde_json::json!({"to": "ACCEPTED", "etaMinutes": 10, "reason": "OTHER"}),
                "reason: only when rejecting",
            ),
            (
                serde_json::json!({"to": "REJECTED"}),
                "reason: required when rejecting",
            ),
            (
                serde_json::json!({"to": "REJECTED", "reason": "OTHER", "etaMinutes": 10}),
                "etaMinutes: only when accepting",
            ),
            (
                serde_json::json!({"to": "PREPARING", "etaMinutes": 10}),
                "etaMinutes: only when accepting",
            ),
            (
                serde_json::json!({"to": "CANCELED", "reason": "OTHER"}),
                "reason: only when rejecting",
            ),
        ] {
            assert_eq!(
                extra(body.clone()).err(),
                Some(("VALIDATION_FAILED".to_owned(), message.to_owned())),
                "{body}"
            );
        }
    }
}
