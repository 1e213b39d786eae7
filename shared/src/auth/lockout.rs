//! Sign-in throttling per account: after [`MAX_FAILURES`] failed sign-ins within [`WINDOW_SECONDS`]
//! of the first, sign-in is refused (429 with `Retry-After`) until that window ends.
//!
//! The counter is a DynamoDB item with a TTL; TTL deletion is lazy (it can lag by hours), so expiry
//! is decided by the stored window start, never by the item's presence.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::storage::{Db, StorageError, key, n, s};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW_SECONDS: i64 = 15 * 60;
const SK: &str = "LOCKOUT";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockoutRecord {
    pub failures: u32,
    pub window_start: i64,
}

impl LockoutRecord {
    /// Seconds until sign-in is allowed again, if it is refused now.
    pub fn locked_for(&self, now: i64) -> Option<u64> {
        let window_end = self.window_start + WINDOW_SECONDS;
        (self.failures >= MAX_FAILURES && now < window_end).then(|| (window_end - now) as u64)
    }
}

fn pk(email_key: &str) -> String {
    format!("LOCKOUT#{email_key}")
}

/// 429 `TOO_MANY_REQUESTS` if the account is locked now.
pub async fn check(db: &Db, email_key: &str, now: i64) -> Result<(), ApiError> {
    if let Some(record) = db.get::<LockoutRecord>(pk(email_key), SK).await?
        && let Some(seconds) = record.locked_for(now)
    {
        return Err(ApiError::too_many_requests(
            "too many failed sign-ins; try again later",
            seconds,
        ));
    }
    Ok(())
}

/// Counts one failed sign-in and returns the failures in the current window.
pub async fn record_failure(db: &Db, email_key: &str, now: i64) -> Result<u32, StorageError> {
    let cutoff = now - WINDOW_SECONDS;
    for _ in 0..3 {
        // The common case: a window is open, count into it.
        let counted = db
            .client()
            .update_item()
            .table_name(db.table())
            .set_key(Some(key(pk(email_key), SK)))
            .update_expression("ADD failures :one")
            .condition_expression("windowStart > :cutoff")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cutoff", n(cutoff))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match counted {
            Ok(out) => {
                let failures = out
                    .attributes
                    .and_then(|a| match a.get("failures") {
                        Some(AttributeValue::N(v)) => v.parse().ok(),
                        _ => None,
                    })
                    .unwrap_or(MAX_FAILURES);
                return Ok(failures);
            }
            Err(err) => match StorageError::from_sdk(err) {
                StorageError::ConditionFailed => {}
                other => return Err(other),
            },
        }
        // No open window: start one, unless another request just did (then count into theirs).
        let started = db
            .client()
            .put_item()
            .table_name(db.table())
            .item("PK", s(pk(email_key)))
            .item("SK", s(SK))
            .item("failures", n(1))
            .item("windowStart", n(now))
            .item("expiresAt", n(now + WINDOW_SECONDS))
            .condition_expression("attribute_not_exists(PK) OR windowStart <= :cutoff")
            .expression_attribute_values(":cutoff", n(cutoff))
            .send()
            .await;
        match started {
            Ok(_) => return Ok(1),
            Err(err) => match StorageError::from_sdk(err) {
                StorageError::ConditionFailed => continue,
                other => return Err(other),
            },
        }
    }
    Err(StorageError::Backend(
        "failed sign-in counter kept changing under contention".into(),
    ))
}

/// Forgets failures after a successful sign-in.
pub async fn clear(db: &Db, email_key: &str) -> Result<(), StorageError> {
    db.client()
        .delete_item()
        .table_name(db.table())
        .set_key(Some(key(pk(email_key), SK)))
        .send()
        .await
        .map_err(StorageError::from_sdk)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_failures_until_the_window_ends() {
        let record = |failures| LockoutRecord {
            failures,
            window_start: 1_000,
        };
        assert_eq!(record(4).locked_for(1_001), None);
        assert_eq!(record(5).locked_for(1_000), Some(900));
        assert_eq!(record(5).locked_for(1_899), Some(1));
        assert_eq!(record(5).locked_for(1_900), None);
        assert_eq!(record(9).locked_for(1_500), Some(400));
    }
}
