//! Paging of listings: page-size limits and opaque cursors.
//!
//! A cursor is a query's last key sealed under the cursors' key (`crate::crypto::cursors`) for the
//! listing that issued it (the store and status, the customer, the audit month): a client can
//! neither read it, forge it, nor replay it against another listing, and refusing one calls nothing
//! (once the instance has derived the key).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::app::App;
use crate::error::ApiError;

/// `requested`, or `default`, if within 1..=`max`.
pub fn limit(requested: Option<u32>, default: u32, max: u32) -> Result<i32, ApiError> {
    match requested.unwrap_or(default) {
        limit if (1..=max).contains(&limit) => Ok(limit as i32),
        _ => Err(ApiError::validation(
            "limit",
            format!("between 1 and {max}"),
        )),
    }
}

fn invalid_cursor() -> ApiError {
    ApiError::validation("cursor", "not a cursor of this listing")
}

/// The start key a cursor stands for (`None`: the first page).
pub async fn open_cursor(
    app: &App,
    scope: &str,
    cursor: Option<&str>,
) -> Result<Option<HashMap<String, AttributeValue>>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let json = app
        .cursor_key()
        .await?
        .open(scope, cursor)
        .ok_or_else(invalid_cursor)?;
    let key: HashMap<String, String> =
        serde_json::from_slice(&json).map_err(|_| invalid_cursor())?;
    Ok(Some(
        key.into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect(),
    ))
}

/// The cursor of the page after the one that ended at `key` (`None`: that was the last page).
pub async fn seal_cursor(
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
    Ok(Some(app.cursor_key().await?.seal(scope, &json)?))
}
