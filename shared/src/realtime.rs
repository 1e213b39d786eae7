//! Real-time pushes over API Gateway's WebSocket API.
//!
//! A connection subscribes to one channel when it opens: a store's staff to their store
//! (`?storeId=…`), anyone else to their own orders. One item records it, the channel's member
//! (`WS#<channel>` / `CONN#<connectionId>`), with a TTL of API Gateway's two-hour connection limit.
//! The notifications consumer posts each order event to the channels that may see it; a
//! connection API Gateway no longer knows (410 Gone) is deleted on the spot.
//!
//! Nothing listens for `$disconnect`: a closed connection's member stays until the next push to
//! its channel meets the 410 and deletes it, or its TTL removes it (free). Answering `$disconnect`
//! cost every socket an invocation, a read and two deletes, and a second item to find the member
//! by; the 410 deletes the same member once, and only when its channel hears something.
//!
//! A subscription lasts as long as what entitled it: the session it was opened under (sign-out, a
//! reused refresh token or the session's end stop it) and, for staff, their place on the staff.
//! Both are checked before each push ([`in_good_standing`]), and a connection that lost them is
//! closed and forgotten.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::auth::Caller;
use crate::auth::sessions::{self, SESSION_SK, SessionRecord};
use crate::error::ApiError;
use crate::events::{Event, EventType, OrderFacts};
use crate::orders::Device;
use crate::orders::status::Status;
use crate::storage::{Item, StorageError, item_key, key, s};
use crate::stores::{self, Access};

/// API Gateway closes a WebSocket connection after two hours.
const CONNECTION_SECONDS: i64 = 2 * 3600;

fn channel_pk(channel: &str) -> String {
    format!("WS#{channel}")
}

fn member_sk(connection_id: &str) -> String {
    format!("CONN#{connection_id}")
}

pub fn store_channel(store_id: &str) -> String {
    format!("STORE#{store_id}")
}

pub fn user_channel(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// A subscriber of a channel, with what entitles it to hear the channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    connection_id: String,
    expires_at: i64,
    /// The session the connection was opened under. Absent only on members made before sessions
    /// were checked; those end with their two-hour TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    /// `(store, user)` when the subscriber hears a store as its staff (not its owner or an admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    staff_of: Option<(String, String)>,
    /// The board's name for itself (`?device=`): the moves it makes are not pushed back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<Device>,
}

impl MemberRecord {
    /// The items whose presence (and, for a session, liveness) this subscription rests on.
    fn standing_keys(&self) -> Vec<ItemKey> {
        let mut keys = Vec::with_capacity(2);
        if let Some(session_id) = &self.session_id {
            keys.push((sessions::session_pk(session_id), SESSION_SK.to_owned()));
        }
        if let Some((store_id, user_id)) = &self.staff_of {
            keys.push(stores::staff_key(store_id, user_id));
        }
        keys
    }
}

/// How long one reading of a session or a staff place is believed: a sign-out or a removal stops
/// pushes within this, and a busy board's standing is read once per this, not on every push.
const STANDING_FOR: Duration = Duration::from_secs(10);
/// Past this many remembered readings the memory starts over (one instance, bounded).
const STANDING_MAX_ENTRIES: usize = 10_000;

/// An item's key (`PK`, `SK`).
type ItemKey = (String, String);

/// Readings of standing items: present and alive, and when read.
static STANDING: LazyLock<Mutex<HashMap<ItemKey, (bool, Instant)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn alive(item: Item, now: i64) -> bool {
    match item.get("SK") {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(sk)) if sk == SESSION_SK => {
            crate::storage::from_item::<SessionRecord>(item)
                .is_ok_and(|session| session.revoked_at.is_none() && session.expires_at > now)
        }
        // A staff place is held while its item exists.
        _ => true,
    }
}

/// Which of `members` may still hear their channel: the session alive, the staff place held. What
/// was not read within [`STANDING_FOR`] is read in one strongly consistent `BatchGetItem`.
async fn in_good_standing(app: &App, members: &[MemberRecord]) -> Result<Vec<bool>, ApiError> {
    let now = Instant::now();
    let fresh = |reading: Option<&(bool, Instant)>| {
        reading.is_some_and(|(_, at)| now.duration_since(*at) < STANDING_FOR)
    };
    let mut stale: Vec<ItemKey> = {
        let readings = STANDING.lock().unwrap_or_else(|e| e.into_inner());
        members
            .iter()
            .flat_map(MemberRecord::standing_keys)
            .filter(|k| !fresh(readings.get(k)))
            .collect()
    };
    stale.sort();
    stale.dedup();
    if !stale.is_empty() {
        let epoch = jiff::Timestamp::now().as_second();
        let mut good: HashSet<ItemKey> = HashSet::new();
        for chunk in stale.chunks(100) {
            let keys = chunk.iter().map(|(pk, sk)| key(pk, sk)).collect();
            for item in app.db.get_many(keys).await? {
                if let Some(id) = item_key(&item)
                    && alive(item, epoch)
                {
                    good.insert(id);
                }
            }
        }
        let mut readings = STANDING.lock().unwrap_or_else(|e| e.into_inner());
        if readings.len() + stale.len() > STANDING_MAX_ENTRIES {
            readings.clear();
        }
        for id in stale {
            let held = good.contains(&id);
            readings.insert(id, (held, now));
        }
    }
    let readings = STANDING.lock().unwrap_or_else(|e| e.into_inner());
    Ok(members
        .iter()
        .map(|m| {
            m.standing_keys()
                .iter()
                .all(|k| readings.get(k).is_some_and(|(held, _)| *held))
        })
        .collect())
}

/// `$connect`: subscribes `connection_id` to `store_id`'s channel (its owner, staff or an admin only)
/// or, without a store, to the caller's own orders, as `device` when the client named itself.
/// Returns the channel.
pub async fn connect(
    app: &App,
    caller: &Caller,
    connection_id: &str,
    store_id: Option<&str>,
    device: Option<Device>,
) -> Result<String, ApiError> {
    if connection_id.is_empty() || connection_id.len() > 128 {
        return Err(ApiError::validation("connectionId", "missing or too long"));
    }
    let (channel, staff_of) = match store_id {
        Some(store_id) => {
            let standing = stores::check_access(app, store_id, caller, Access::Member).await?;
            let as_staff = standing == stores::Standing::Staff;
            (
                store_channel(store_id),
                as_staff.then(|| (store_id.to_owned(), caller.user_id.clone())),
            )
        }
        None => (user_channel(&caller.user_id), None),
    };
    let expires_at = jiff::Timestamp::now().as_second() + CONNECTION_SECONDS;
    let member = MemberRecord {
        pk: channel_pk(&channel),
        sk: member_sk(connection_id),
        connection_id: connection_id.to_owned(),
        expires_at,
        session_id: Some(caller.session_id.clone()),
        staff_of,
        device,
    };
    // API Gateway never gives two connections one id: a member of this id under this session is
    // this connection already (a repeated `$connect`, or the SDK's repeat of a put whose answer was
    // lost), and is told as made. Under another session it is refused, not failed.
    if let Some(standing) = app.db.put_if_absent_or_standing(&member).await? {
        let standing: MemberRecord = crate::storage::from_item(standing)?;
        if standing.session_id != member.session_id {
            return Err(ApiError::conflict(
                "CONNECTION_EXISTS",
                "this connection is already open",
            ));
        }
    }
    Ok(channel)
}

/// `$connect` as API Gateway delivers it: the access token from `Authorization: Bearer …` or, for
/// browsers (which cannot set headers on a WebSocket), the `access_token` query parameter; the store
/// from `storeId`, the client's name for itself from `device`. Returns the channel subscribed to.
pub async fn on_connect(
    app: &App,
    request: &ApiGatewayWebsocketProxyRequest,
) -> Result<String, ApiError> {
    let header = request
        .headers
        .get(lambda_http::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::http::bearer);
    let token = header
        .or_else(|| request.query_string_parameters.first("access_token"))
        .ok_or_else(|| {
            ApiError::unauthorized(
                "UNAUTHENTICATED",
                "send an access token as `Authorization: Bearer …` or `?access_token=…`",
            )
        })?;
    let caller = crate::auth::verify(app, token).await?;
    // Checked before the connection is counted: bad input changes nothing. A store's id is checked
    // before a key is built from it, as a path's is: one past DynamoDB's key limit would be a 500.
    let store_id = request.query_string_parameters.first("storeId");
    if let Some(store_id) = store_id {
        crate::http::validate_id("storeId", store_id)?;
    }
    let device = request
        .query_string_parameters
        .first("device")
        .map(|d| Device::try_from(d.to_owned()).map_err(|e| ApiError::validation("device", e)))
        .transpose()?;
    crate::limits::take(app, crate::limits::Limit::ConnectsPerUser, &caller.user_id).await?;
    let connection_id = request
        .request_context
        .connection_id
        .as_deref()
        .unwrap_or_default();
    connect(app, &caller, connection_id, store_id, device).await
}

/// Deletes a connection's member of `channel_pk`.
async fn forget(app: &App, channel_pk: &str, connection_id: &str) -> Result<(), ApiError> {
    app.db.delete(channel_pk, member_sk(connection_id)).await?;
    Ok(())
}

/// The channels that hear `event`: the store hears its orders once paid, every move (its boards
/// keep each other in step); the customer hears what needs them — acceptance (with its ETA), ready,
/// completion, and an order's unhappy ends. Not that it was paid (their own confirm said so) nor
/// that it is being prepared: a push each is paid for on every order, and the order's page shows
/// both.
pub fn audience(event: &Event) -> Vec<String> {
    let Some(order) = &event.order else {
        return Vec::new();
    };
    let mut channels = Vec::new();
    let unpaid_end = matches!(event.kind, EventType::OrderCanceled)
        && order.from == Some(Status::PendingPayment);
    if !matches!(event.kind, EventType::OrderPlaced | EventType::OrderExpired) && !unpaid_end {
        channels.push(store_channel(&order.store_id));
    }
    if !matches!(
        event.kind,
        EventType::OrderPlaced | EventType::OrderPaid | EventType::OrderPreparing
    ) {
        channels.push(user_channel(&order.customer_id));
    }
    channels
}

/// What a subscriber receives: the event's type and id (to tell a repeat), and the order's public
/// facts. Never personal data.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Push<'a> {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub event_id: &'a str,
    pub at: &'a str,
    pub order: &'a OrderFacts,
}

/// What became of one event's pushes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    pub delivered: u64,
    /// Connections API Gateway no longer knows (410): forgotten.
    pub gone: u64,
    /// Posts that failed after the SDK's retries.
    pub failed: u64,
    /// Connections whose session ended or whose staff place was lost: closed, not posted to.
    pub ended: u64,
}

/// Posts `event` to every connection of its audience, [`POSTS_AT_ONCE`] at a time, each on its own:
/// a connection that fails (after the SDK's retries) is logged and counted, and the others still
/// get theirs — a client that missed one catches up from its order listing. The push fails as a
/// whole only when nothing could be delivered at all (the Management API is down), so that the
/// stream retries it for everyone.
pub async fn push(app: &App, event: &Event) -> Result<Pushed, ApiError> {
    use futures::StreamExt;

    let Some(order) = &event.order else {
        return Ok(Pushed::default());
    };
    let client = app.connections().ok_or_else(|| {
        ApiError::internal("WEBSOCKET_ENDPOINT is not set: no WebSocket API to post to")
    })?;
    let message = serde_json::to_vec(&Push {
        kind: event.kind,
        event_id: &event.event_id,
        at: &event.at,
        order,
    })
    .map_err(ApiError::internal)?;
    let mut subscribers = Vec::new();
    for channel in audience(event) {
        subscribers.extend(members(app, &channel).await?);
    }
    // The board that made the move has its answer; a push each is paid for.
    subscribers.retain(|m| !made_it(m, event));
    let standing = in_good_standing(app, &subscribers).await?;
    let outcomes: Vec<Posted> = futures::stream::iter(subscribers.into_iter().zip(standing))
        .map(|(member, good)| post(app, client, member, good, &message, &event.event_id))
        .buffer_unordered(POSTS_AT_ONCE)
        .collect()
        .await;
    let mut pushed = Pushed::default();
    let mut last_error = String::new();
    for outcome in outcomes {
        match outcome {
            Posted::Delivered => pushed.delivered += 1,
            Posted::Gone => pushed.gone += 1,
            Posted::Ended => pushed.ended += 1,
            Posted::Failed(error) => {
                pushed.failed += 1;
                last_error = error;
            }
        }
    }
    crate::telemetry::count("PushesDelivered", pushed.delivered as f64);
    crate::telemetry::count("PushesFailed", pushed.failed as f64);
    crate::telemetry::count("SubscriptionsEnded", pushed.ended as f64);
    if pushed.failed > 0 && pushed.delivered == 0 && pushed.gone == 0 {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "PUSH_FAILED",
            format!("no connection could be posted to: {last_error}"),
        ));
    }
    Ok(pushed)
}

/// Whether `member` is the board that made `event` (both named the same device).
fn made_it(member: &MemberRecord, event: &Event) -> bool {
    member.device.is_some() && member.device == event.device
}

/// Connections posted to at once: a closed connection's member is found out by its post (410),
/// which must not hold up the live ones behind it.
const POSTS_AT_ONCE: usize = 8;

/// What became of one connection's post.
enum Posted {
    Delivered,
    /// API Gateway no longer knows the connection (410): forgotten.
    Gone,
    /// Its session or staff place ended: closed and forgotten, not posted to.
    Ended,
    /// The post failed after the SDK's retries.
    Failed(String),
}

async fn post(
    app: &App,
    client: &aws_sdk_apigatewaymanagement::Client,
    member: MemberRecord,
    good: bool,
    message: &[u8],
    event_id: &str,
) -> Posted {
    let connection_id = member.connection_id;
    if !good {
        end(app, client, &member.pk, &connection_id).await;
        return Posted::Ended;
    }
    let posted = client
        .post_to_connection()
        .connection_id(&connection_id)
        .data(Blob::new(message))
        .send()
        .await;
    match posted {
        Ok(_) => Posted::Delivered,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_gone_exception()) =>
        {
            if let Err(err) = forget(app, &member.pk, &connection_id).await {
                // Its TTL removes it anyway.
                tracing::warn!(%connection_id, code = err.code, "a gone connection was not forgotten");
            }
            Posted::Gone
        }
        Err(err) => {
            let error = aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err).to_string();
            tracing::warn!(%connection_id, %event_id, %error, "push failed");
            Posted::Failed(error)
        }
    }
}

/// Closes a connection that lost its standing (the client sees the socket close and may sign in
/// again) and forgets it.
async fn end(
    app: &App,
    client: &aws_sdk_apigatewaymanagement::Client,
    channel_pk: &str,
    connection_id: &str,
) {
    let closed = client
        .delete_connection()
        .connection_id(connection_id)
        .send()
        .await;
    // Closed already (410) is what was wanted.
    if let Err(err) = closed
        && !err
            .as_service_error()
            .is_some_and(|e| e.is_gone_exception())
    {
        // Forgotten anyway: nothing is posted to it again.
        tracing::warn!(%connection_id, error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err), "an ended connection was not closed");
    }
    if let Err(err) = forget(app, channel_pk, connection_id).await {
        tracing::warn!(%connection_id, code = err.code, "an ended connection was not forgotten");
    }
}

/// The live members of `channel` (TTL deletes lag, so expired members are left out here).
async fn members(app: &App, channel: &str) -> Result<Vec<MemberRecord>, ApiError> {
    let db = &app.db;
    let now = jiff::Timestamp::now().as_second();
    let mut connections = Vec::new();
    let mut pages = db
        .client()
        .query()
        .table_name(db.table())
        .key_condition_expression("PK = :pk")
        .filter_expression("expiresAt > :now")
        .expression_attribute_values(":pk", s(channel_pk(channel)))
        .expression_attribute_values(":now", crate::storage::n(now))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(StorageError::from_sdk)?;
        for item in page.items.unwrap_or_default() {
            connections.push(crate::storage::from_item::<MemberRecord>(item)?);
        }
    }
    Ok(connections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ActorKind, EventActor};

    fn event(kind: EventType, from: Option<Status>) -> Event {
        Event {
            event_id: "e".into(),
            kind,
            version: 1,
            at: "2026-01-01T00:00:00Z".into(),
            actor: EventActor {
                kind: ActorKind::System,
                id: None,
            },
            request_id: None,
            trace_id: None,
            order: Some(OrderFacts {
                order_id: "o".into(),
                store_id: "s1".into(),
                customer_id: "c1".into(),
                from,
                status: Status::Paid,
                order_version: 2,
                total: 1000,
                order_name: "x".into(),
                created_at: "2026-01-01T00:00:00Z".into(),
                lines: vec![],
                eta_at: None,
                reason: None,
                refund: None,
            }),
            user: None,
            device: None,
        }
    }

    #[test]
    fn the_store_hears_of_orders_once_paid() {
        let paid = event(EventType::OrderPaid, Some(Status::PendingPayment));
        assert_eq!(audience(&paid), vec!["STORE#s1"]);
        let preparing = event(EventType::OrderPreparing, Some(Status::Accepted));
        assert_eq!(audience(&preparing), vec!["STORE#s1"]);
        for kind in [
            EventType::OrderAccepted,
            EventType::OrderReady,
            EventType::OrderCompleted,
        ] {
            assert_eq!(audience(&event(kind, None)), vec!["STORE#s1", "USER#c1"]);
        }
        let placed = event(EventType::OrderPlaced, None);
        assert!(audience(&placed).is_empty());
        let expired = event(EventType::OrderExpired, Some(Status::PendingPayment));
        assert_eq!(audience(&expired), vec!["USER#c1"]);
        let abandoned = event(EventType::OrderCanceled, Some(Status::PendingPayment));
        assert_eq!(audience(&abandoned), vec!["USER#c1"]);
        let canceled = event(EventType::OrderCanceled, Some(Status::Paid));
        assert_eq!(audience(&canceled), vec!["STORE#s1", "USER#c1"]);
    }

    #[test]
    fn a_board_is_not_pushed_the_move_it_made() {
        let board = |device: Option<&str>| MemberRecord {
            pk: "WS#STORE#s1".into(),
            sk: "CONN#c".into(),
            connection_id: "c".into(),
            expires_at: 0,
            session_id: None,
            staff_of: None,
            device: device.map(|d| Device::try_from(d.to_owned()).unwrap()),
        };
        let mut moved = event(EventType::OrderAccepted, Some(Status::Paid));
        moved.device = Some(Device::try_from("tab-a".to_owned()).unwrap());
        assert!(made_it(&board(Some("tab-a")), &moved));
        assert!(!made_it(&board(Some("tab-b")), &moved));
        assert!(!made_it(&board(None), &moved));
        // A move that names no board is everyone's, a board that named none hears everything.
        moved.device = None;
        assert!(!made_it(&board(Some("tab-a")), &moved));
        assert!(!made_it(&board(None), &moved));
    }

    #[test]
    fn a_device_is_a_short_plain_name() {
        for good in ["a", "Zx9-_q", &"d".repeat(Device::MAX_LEN)] {
            assert!(Device::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in ["", "tab a", "tab/a", "탭", &"d".repeat(Device::MAX_LEN + 1)] {
            assert!(Device::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn sign_in_events_reach_no_one() {
        let mut e = event(EventType::UserSignedIn, None);
        e.order = None;
        assert!(audience(&e).is_empty());
    }
}
