//! Order listings: a store's board and a customer's history, newest first, each one query on an
//! index, paged with opaque cursors.
//!
//! A cursor is the query's last key sealed with the field-encryption envelope (`crate::crypto`) at a
//! location named after the listing (the store and status, or the customer): a client can neither
//! read it, forge it, nor replay it against another listing.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use serde::{Deserialize, Serialize};

use super::status::{Bucket, Status};
use super::{OrderRecord, OrderView};
use crate::app::App;
use crate::crypto::{Location, Sealed};
use crate::error::ApiError;
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

fn limit_of(request: &PageRequest) -> Result<i32, ApiError> {
    match request.limit.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => Ok(limit as i32),
        _ => Err(ApiError::validation("limit", "between 1 and 100")),
    }
}

fn cursor_location<'a>(db: &'a Db, scope: &'a str) -> Location<'a> {
    Location {
        table: db.table(),
        pk: scope,
        sk: "CURSOR",
        field: "cursor",
    }
}

fn invalid_cursor() -> ApiError {
    ApiError::validation("cursor", "not a cursor of this listing")
}

async fn open_cursor(
    app: &App,
    scope: &str,
    cursor: Option<&str>,
) -> Result<Option<HashMap<String, AttributeValue>>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let sealed =
        Sealed::from_stored(&format!("{}{cursor}", Sealed::PREFIX)).ok_or_else(invalid_cursor)?;
    let json = app
        .crypto
        .open(&cursor_location(&app.db, scope), &sealed)
        .await
        .map_err(|_| invalid_cursor())?;
    let key: HashMap<String, String> =
        serde_json::from_slice(&json).map_err(|_| invalid_cursor())?;
    Ok(Some(
        key.into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect(),
    ))
}

async fn seal_cursor(
    app: &App,
    scope: &str,
    key: Option<HashMap<String, AttributeValue>>,
) -> Result<Option<String>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    let plain: HashMap<String, String> = key
        .into_iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s.clone())))
        .collect();
    let json = serde_json::to_vec(&plain).map_err(ApiError::internal)?;
    let sealed = app
        .crypto
        .seal(&cursor_location(&app.db, scope), &json)
        .await?;
    Ok(sealed.as_str().strip_prefix(Sealed::PREFIX).map(|c| {
        // URL-safe, so it travels in a query string untouched.
        c.replace('+', "-").replace('/', "_")
    }))
}

fn unmangle(cursor: &str) -> String {
    cursor.replace('-', "+").replace('_', "/")
}

struct Query<'a> {
    index: &'static str,
    partition: (&'static str, String),
    sort: Option<(&'static str, String)>,
    status: Option<Status>,
    scope: &'a str,
}

async fn run(app: &App, query: Query<'_>, page: &PageRequest) -> Result<Page, ApiError> {
    let limit = limit_of(page)?;
    let cursor = page.cursor.as_deref().map(unmangle);
    let start = open_cursor(app, query.scope, cursor.as_deref()).await?;
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
    if let Some(status) = query.status {
        request = request
            .filter_expression("#status = :status")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.name()));
    }
    let out = request
        .key_condition_expression(condition)
        .send()
        .await
        .map_err(StorageError::from_sdk)?;
    let mut orders = Vec::new();
    for item in out.items.unwrap_or_default() {
        let order: OrderRecord = from_item(item)?;
        orders.push(order.view(app).await?);
    }
    Ok(Page {
        orders,
        next_cursor: seal_cursor(app, query.scope, out.last_evaluated_key).await?,
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
