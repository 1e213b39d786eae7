//! Real-time pushes over API Gateway's WebSocket API.
//!
//! A connection subscribes to one channel when it opens: a store's staff to their store
//! (`?storeId=…`), anyone else to their own orders. Two items record it — the connection
//! (`WSCONN#<connectionId>`, naming its channel) and the channel's member (`WS#<channel>` /
//! `CONN#<connectionId>`) — both with a TTL of API Gateway's two-hour connection limit, so a
//! connection whose `$disconnect` never arrived still goes away. The notifications consumer posts each
//! order event to the channels that may see it; a connection API Gateway no longer knows (410 Gone)
//! is deleted on the spot.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::events::{Event, EventType, OrderFacts};
use crate::orders::status::Status;
use crate::storage::{StorageError, key, s};
use crate::stores::{self, Access};

/// API Gateway closes a WebSocket connection after two hours.
const CONNECTION_SECONDS: i64 = 2 * 3600;

const CONNECTION_SK: &str = "CONN";

fn connection_pk(connection_id: &str) -> String {
    format!("WSCONN#{connection_id}")
}

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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    connection_id: String,
    channel: String,
    user_id: String,
    connected_at: String,
    expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    connection_id: String,
    expires_at: i64,
}

/// `$connect`: subscribes `connection_id` to `store_id`'s channel (its owner, staff or an admin only)
/// or, without a store, to the caller's own orders. Returns the channel.
pub async fn connect(
    app: &App,
    caller: &Caller,
    connection_id: &str,
    store_id: Option<&str>,
) -> Result<String, ApiError> {
    if connection_id.is_empty() || connection_id.len() > 128 {
        return Err(ApiError::validation("connectionId", "missing or too long"));
    }
    let channel = match store_id {
        Some(store_id) => {
            stores::load_for(app, store_id, caller, Access::Member).await?;
            store_channel(store_id)
        }
        None => user_channel(&caller.user_id),
    };
    let now = jiff::Timestamp::now();
    let expires_at = now.as_second() + CONNECTION_SECONDS;
    let connection = ConnectionRecord {
        pk: connection_pk(connection_id),
        sk: CONNECTION_SK.to_owned(),
        connection_id: connection_id.to_owned(),
        channel: channel.clone(),
        user_id: caller.user_id.clone(),
        connected_at: now.to_string(),
        expires_at,
    };
    let member = MemberRecord {
        pk: channel_pk(&channel),
        sk: member_sk(connection_id),
        connection_id: connection_id.to_owned(),
        expires_at,
    };
    let db = &app.db;
    db.transact(vec![db.put_new(&connection)?, db.put_new(&member)?])
        .await?;
    Ok(channel)
}

/// `$connect` as API Gateway delivers it: the access token from `Authorization: Bearer …` or, for
/// browsers (which cannot set headers on a WebSocket), the `access_token` query parameter; the store
/// from `storeId`. Returns the channel subscribed to.
pub async fn on_connect(
    app: &App,
    request: &ApiGatewayWebsocketProxyRequest,
) -> Result<String, ApiError> {
    let header = request
        .headers
        .get(lambda_http::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token = header
        .or_else(|| request.query_string_parameters.first("access_token"))
        .ok_or_else(|| {
            ApiError::unauthorized(
                "UNAUTHENTICATED",
                "send an access token as `Authorization: Bearer …` or `?access_token=…`",
            )
        })?;
    let caller = crate::auth::verify(app, token).await?;
    let connection_id = request
        .request_context
        .connection_id
        .as_deref()
        .unwrap_or_default();
    let store_id = request.query_string_parameters.first("storeId");
    connect(app, &caller, connection_id, store_id).await
}

/// `$disconnect`, or a connection found gone: forgets it. Forgetting one already forgotten is fine.
pub async fn disconnect(app: &App, connection_id: &str) -> Result<(), ApiError> {
    let db = &app.db;
    let Some(connection) = db
        .get::<ConnectionRecord>(connection_pk(connection_id), CONNECTION_SK)
        .await?
    else {
        return Ok(());
    };
    let delete = |pk: String, sk: String| -> Result<TransactWriteItem, ApiError> {
        let delete = Delete::builder()
            .table_name(db.table())
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    };
    db.transact(vec![
        delete(connection.pk, connection.sk)?,
        delete(channel_pk(&connection.channel), member_sk(connection_id))?,
    ])
    .await?;
    Ok(())
}

/// The channels that may see `event`: the store sees its orders once paid; the customer sees what
/// happens to their order after placing it.
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
    if event.kind != EventType::OrderPlaced {
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
}

/// Posts `event` to every connection of its audience, each on its own: a connection that fails (after
/// the SDK's retries) is logged and counted, and the others still get theirs — a client that missed
/// one catches up from its order listing. The push fails as a whole only when nothing could be
/// delivered at all (the Management API is down), so that SQS redelivers it to everyone.
pub async fn push(app: &App, event: &Event) -> Result<Pushed, ApiError> {
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
    let mut pushed = Pushed::default();
    let mut last_error = String::new();
    for channel in audience(event) {
        for connection_id in members(app, &channel).await? {
            let posted = client
                .post_to_connection()
                .connection_id(&connection_id)
                .data(Blob::new(message.clone()))
                .send()
                .await;
            match posted {
                Ok(_) => pushed.delivered += 1,
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_gone_exception()) =>
                {
                    pushed.gone += 1;
                    if let Err(err) = disconnect(app, &connection_id).await {
                        // Its TTL removes it anyway.
                        tracing::warn!(%connection_id, code = err.code, "a gone connection was not forgotten");
                    }
                }
                Err(err) => {
                    pushed.failed += 1;
                    last_error =
                        aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err).to_string();
                    tracing::warn!(%connection_id, %channel, event_id = %event.event_id, error = %last_error, "push failed");
                }
            }
        }
    }
    crate::telemetry::count("PushesDelivered", pushed.delivered as f64);
    crate::telemetry::count("PushesFailed", pushed.failed as f64);
    if pushed.failed > 0 && pushed.delivered == 0 && pushed.gone == 0 {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "PUSH_FAILED",
            format!("no connection could be posted to: {last_error}"),
        ));
    }
    Ok(pushed)
}

/// The live connections of `channel` (TTL deletes lag, so expired members are left out here).
async fn members(app: &App, channel: &str) -> Result<Vec<String>, ApiError> {
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
            let member: MemberRecord = crate::storage::from_item(item)?;
            connections.push(member.connection_id);
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
        }
    }

    #[test]
    fn the_store_hears_of_orders_once_paid() {
        let paid = event(EventType::OrderPaid, Some(Status::PendingPayment));
        assert_eq!(audience(&paid), vec!["STORE#s1", "USER#c1"]);
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
    fn sign_in_events_reach_no_one() {
        let mut e = event(EventType::UserSignedIn, None);
        e.order = None;
        assert!(audience(&e).is_empty());
    }
}
