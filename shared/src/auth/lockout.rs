//! Sign-in throttling per account: at most [`MAX_ATTEMPTS`] password checks within
//! [`WINDOW_SECONDS`] of the first that did not end in a successful sign-in; after that, sign-in is
//! refused (429 with `Retry-After`) until that window ends.
//!
//! An attempt is counted *before* its password is checked, by one conditional write that also
//! refuses it when the budget is spent: however many requests arrive at once, at most
//! `MAX_ATTEMPTS` of them get a password checked. (Reading the count first and counting failures
//! afterwards let every concurrent request pass the read: ~200 guesses per window, not 5.) A
//! successful sign-in clears the counter. Each write of an attempt carries the attempt's token, so
//! the SDK's retry of a write whose answer was lost is known for the count already made.
//!
//! The counter is a DynamoDB item with a TTL; TTL deletion is lazy (it can lag by hours), so expiry
//! is decided by the stored window start, never by the item's presence.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::storage::{Db, StorageError, key, n, put_once, s, update_once, write_token};

pub const MAX_ATTEMPTS: u32 = 5;
pub const WINDOW_SECONDS: i64 = 15 * 60;
const SK: &str = "LOCKOUT";
/// Each round is a race lost to another request's write; three in a row is contention worth a 503.
const ROUNDS: usize = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockoutRecord {
    /// Password checks in this window not (yet) followed by a successful sign-in. Items written
    /// before attempts were counted up front hold `failures` instead; they expire within a window.
    #[serde(default)]
    pub attempts: u32,
    pub window_start: i64,
}

impl LockoutRecord {
    /// Seconds until sign-in is allowed again, if it is refused now.
    pub fn locked_for(&self, now: i64) -> Option<u64> {
        let window_end = self.window_start + WINDOW_SECONDS;
        (self.attempts >= MAX_ATTEMPTS && now < window_end).then(|| (window_end - now) as u64)
    }
}

fn pk(email_key: &str) -> String {
    format!("LOCKOUT#{email_key}")
}

fn locked(seconds: u64) -> ApiError {
    ApiError::too_many_requests("too many failed sign-ins; try again later", seconds)
}

/// Counts one password check for `email_key`, or refuses it with 429 `TOO_MANY_REQUESTS` when the
/// window's budget is spent. Call it before checking the password; [`clear`] after a success.
pub async fn take_attempt(db: &Db, email_key: &str, now: i64) -> Result<(), ApiError> {
    let cutoff = now - WINDOW_SECONDS;
    // Each write of this attempt carries its token (`attempt`): when a write's answer is lost and
    // the SDK sends it again, the repeat meets the token and is known for the count already made,
    // not counted a second time (a lost answer would otherwise spend two of the five checks).
    let token = write_token();
    for _ in 0..ROUNDS {
        // The common case (no failure lately: a success deleted the counter) first: start a
        // window with this attempt, unless one is open. One write, where trying the count first
        // cost a failed conditional write (billed too) on every honest sign-in.
        let start = db
            .client()
            .put_item()
            .table_name(db.table())
            .item("PK", s(pk(email_key)))
            .item("SK", s(SK))
            .item("attempts", n(1))
            .item("windowStart", n(now))
            .item("expiresAt", n(now + WINDOW_SECONDS))
            .item("attempt", s(&token))
            .condition_expression("attribute_not_exists(PK) OR windowStart <= :cutoff")
            .expression_attribute_values(":cutoff", n(cutoff));
        match put_once(start, "attempt", &token).await {
            Ok(()) => return Ok(()),
            Err(StorageError::ConditionFailed) => {}
            Err(other) => return Err(other.into()),
        }
        // A window is open with budget left (someone failed lately): count into it.
        let count = db
            .client()
            .update_item()
            .table_name(db.table())
            .set_key(Some(key(pk(email_key), SK)))
            .update_expression("ADD attempts :one SET attempt = :token")
            .condition_expression(
                "windowStart > :cutoff AND (attribute_not_exists(attempts) OR attempts < :max) \
                 AND (attribute_not_exists(attempt) OR attempt <> :token)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cutoff", n(cutoff))
            .expression_attribute_values(":max", n(MAX_ATTEMPTS))
            .expression_attribute_values(":token", s(&token));
        match update_once(count, "attempt", &token).await {
            Ok(()) => return Ok(()),
            Err(StorageError::ConditionFailed) => {}
            Err(other) => return Err(other.into()),
        }
        // A window is open: spent, or it changed between the two writes.
        if let Some(record) = db.get::<LockoutRecord>(pk(email_key), SK).await?
            && let Some(seconds) = record.locked_for(now)
        {
            return Err(locked(seconds));
        }
    }
    Err(ApiError::unavailable())
}

/// Forgets the window's attempts after a successful sign-in.
pub async fn clear(db: &Db, email_key: &str) -> Result<(), StorageError> {
    db.delete(pk(email_key), SK).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_attempts_until_the_window_ends() {
        let record = |attempts| LockoutRecord {
            attempts,
            window_start: 1_000,
        };
        assert_eq!(record(4).locked_for(1_001), None);
        assert_eq!(record(5).locked_for(1_000), Some(900));
        assert_eq!(record(5).locked_for(1_899), Some(1));
        assert_eq!(record(5).locked_for(1_900), None);
        assert_eq!(record(9).locked_for(1_500), Some(400));
    }
}
