//! Order listings: a store's board and a customer's history, newest first, each one query on a lean
//! index (keys only, for orders) and one batch read of the orders, paged with opaque cursors.
//!
//! Cursors are sealed per listing (see [`crate::paging`]).

use aws_sdk_dynamodb::types::Select;
use serde::{Deserialize, Serialize};

use super::status::{Bucket, Status};
use super::{OrderRecord, OrderView};
use crate::app::App;
use crate::error::ApiError;
use crate::paging;
use crate::storage::{Db, StorageError, from_item, s};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub orders: Vec<OrderView>,
    /// Present while there are more: pass it back as `cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Orders on the store's board (paid, not yet ready) right now.
pub async fn count_active(db: &Db, store_id: &str) -> Result<u64, StorageError> {
    let mut count = 0u64;
    let mut start = None;
    loop {
        let page = db
            .client()
            .query()
            .table_name(db.table())
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :board")
            .expression_attribute_values(":board", s(format!("STORE#{store_id}#ACTIVE")))
            .select(Select::Count)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(StorageError::from_sdk)?;
        count += u64::try_from(page.count).unwrap_or(0);
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(count),
        }
    }
}

struct Query<'a> {
    index: &'static str,
    partition: (&'static str, String),
    sort: Option<(&'static str, String)>,
    status: Option<Status>,
    scope: &'a str,
}

async fn run(app: &App, query: Query<'_>, page: &PageRequest) -> Result<Page, ApiError> {
    let limit = paging::limit(page.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let start = paging::open_cursor(app, query.scope, page.cursor.as_deref()).await?;
    let (pk_name, pk_value) = &query.partition;
    let mut condition = format!("{pk_name} = :pk");
    let mut request = app
        .db
        .client()
        .query()
        .table_name(app.db.table())
        .index_name(query.index)
        .scan_index_forward(false)
        .limit(limit)
        .set_exclusive_start_key(start)
        .expression_attribute_values(":pk", s(pk_value));
    if let Some((sk_name, since)) = &query.sort {
        condition.push_str(&format!(" AND {sk_name} >= :since"));
        request = request.expression_attribute_values(":since", s(since));
    }
    let out = request
        .key_condition_expression(condition)
        .send()
        .await
        .map_err(StorageError::from_sdk)?;
    // The indexes hold keys, not orders: the orders are read from the table, newest state, in the
    // index's order. One status is picked out of its bucket here, not by a filter on the index: an
    // index that held the status would be rewritten by every move within the board (a write unit
    // each), where the filter costs only a listing's reads. As with a filter, a page may hold
    // fewer orders than its limit and still have a cursor.
    let keys = out
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|entry| {
            entry
                .into_iter()
                .filter(|(name, _)| name == "PK" || name == "SK")
                .collect()
        })
        .collect();
    let mut orders = Vec::new();
    for item in app.db.get_many(keys).await? {
        let order: OrderRecord = from_item(item)?;
        if query.status.is_none_or(|wanted| order.status == wanted) {
            orders.push(order.view(app).await?);
        }
    }
    Ok(Page {
        orders,
        next_cursor: paging::seal_cursor(app, query.scope, out.last_evaluated_key).await?,
    })
}

/// `GET /v1/me/orders`: the caller's orders, newest first.
pub async fn for_customer(
    app: &App,
    customer_id: &str,
    page: &PageRequest,
) -> Result<Page, ApiError> {
    let scope = format!("LIST#CUSTOMER#{customer_id}");
    let query = Query {
        index: "GSI2",
        partition: ("GSI2PK", format!("CUSTOMER#{customer_id}")),
        sort: None,
        status: None,
        scope: &scope,
    };
    run(app, query, page).await
}

/// `GET /v1/stores/{storeId}/orders`: the board (`ACTIVE`, the default), pending or closed orders,
/// or one status; optionally only those created since an instant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StoreListing {
    pub status: Option<String>,
    pub since: Option<jiff::Timestamp>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub async fn for_store(
    app: &App,
    store_id: &str,
    listing: &StoreListing,
) -> Result<Page, ApiError> {
    let wanted = listing.status.as_deref().unwrap_or("ACTIVE");
    let (bucket, status) = match wanted {
        "ACTIVE" => (Bucket::Active, None),
        "PENDING" => (Bucket::Pending, None),
        "CLOSED" => (Bucket::Closed, None),
        other => {
            let status: Status = serde_json::from_value(serde_json::Value::String(
                other.to_owned(),
            ))
            .map_err(|_| {
                ApiError::validation("status", "ACTIVE, PENDING, CLOSED or an order status")
            })?;
            (status.bucket(), Some(status))
        }
    };
    let scope = format!(
        "LIST#STORE#{store_id}#{wanted}#{}",
        listing.since.map(|t| t.to_string()).unwrap_or_default()
    );
    let query = Query {
        index: "GSI1",
        partition: ("GSI1PK", format!("STORE#{store_id}#{}", bucket.name())),
        sort: listing.since.map(|t| ("GSI1SK", t.to_string())),
        status,
        scope: &scope,
    };
    let page = PageRequest {
        limit: listing.limit,
        cursor: listing.cursor.clone(),
    };
    run(app, query, &page).await
}
