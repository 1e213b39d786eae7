//! How long the current piece of work may still run.
//!
//! Lambda stops an invocation at its deadline, mid-call if need be. Work that must be finished by
//! recording what happened (a Toss call's answer) is therefore given only the time that is left, less
//! a reserve for the recording; and work done under a lease is bounded by the lease, so that the lease
//! always outlives it. The entry points ([`crate::http`], [`crate::job`]) set the invocation's
//! deadline; [`within`] narrows it for a part of the work.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The instant of a deadline given, as Lambda gives it, in milliseconds since the Unix epoch.
pub fn from_epoch_millis(millis: u64) -> Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let left = u128::from(millis).saturating_sub(now);
    Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX))
}

/// Runs `future` with `deadline`, or with the current deadline where that is earlier.
pub async fn within<F: Future>(deadline: Instant, future: F) -> F::Output {
    let deadline = current().map_or(deadline, |current| current.min(deadline));
    DEADLINE.scope(deadline, future).await
}

/// Runs `future` under an invocation's deadline, when the runtime gave one.
pub async fn invocation<F: Future>(deadline: Option<Instant>, future: F) -> F::Output {
    match deadline {
        Some(deadline) => within(deadline, future).await,
        None => future.await,
    }
}

/// The deadline of the current work, if it has one (tools and unit tests run without).
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// The time left before the deadline; `None` without one.
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_earlier_deadline_wins() {
        assert_eq!(remaining(), None, "no deadline outside a scope");
        let soon = Instant::now() + Duration::from_secs(5);
        let later = soon + Duration::from_secs(60);
        within(soon, async {
            assert_eq!(current(), Some(soon));
            within(later, async { assert_eq!(current(), Some(soon)) }).await;
            let sooner = soon - Duration::from_secs(1);
            within(sooner, async { assert_eq!(current(), Some(sooner)) }).await;
            assert!(remaining().is_some_and(|r| r <= Duration::from_secs(5)));
        })
        .await;
    }

    #[test]
    fn epoch_deadlines_in_the_past_are_now() {
        let past = from_epoch_millis(0);
        assert!(past <= Instant::now());
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ahead = from_epoch_millis(now_ms + 10_000).saturating_duration_since(Instant::now());
        assert!(ahead > Duration::from_secs(9) && ahead <= Duration::from_secs(10));
    }
}
