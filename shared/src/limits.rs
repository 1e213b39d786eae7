//! Per-client rate limits, where abuse costs us or a user: sign-in per source address (password
//! spraying across accounts), sign-up per source (argon2 time, junk accounts), order creation per
//! customer, store openings per owner, Toss lookups per order from the unauthenticated webhook,
//! WebSocket connects per user.
//! Each answers 429 `TOO_MANY_REQUESTS` with `Retry-After` and changes nothing.
//!
//! A limit is a fixed-window counter in the table — `RATE#<limit>#<key>` / `W#<window start>`,
//! counted and refused by one conditional `UpdateItem` (so concurrency cannot exceed it) and
//! removed by TTL. A count carries a token of its own, so the SDK's retry of a count whose answer
//! was lost is known for the count already made. API Gateway's HTTP APIs cannot carry a WAF web
//! ACL (only REST APIs, CloudFront and load balancers can), so the per-client limits live here,
//! next to the stage throttle that protects the whole API. Operators tune them without a build: `RATE_LIMITS` (the template's
//! `RateLimits`) overrides any of them, as `name=max/seconds,…`.

use crate::app::App;
use crate::error::ApiError;
use crate::storage::{StorageError, key, n, s, update_once, write_token};

/// What is limited, and by what key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Sign-ins from one source address (each account also locks after five failed checks).
    SignInPerSource,
    /// Accounts made from one source address.
    SignUpPerSource,
    /// Orders placed by one customer.
    OrdersPerCustomer,
    /// Stores opened by one owner (anyone may sign up as one).
    StoresPerOwner,
    /// Toss lookups one order's webhooks may cause.
    WebhooksPerOrder,
    /// WebSocket connections one user opens.
    ConnectsPerUser,
}

/// At most `max` within each `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub max: u32,
    pub window_seconds: i64,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::SignInPerSource,
        Limit::SignUpPerSource,
        Limit::OrdersPerCustomer,
        Limit::StoresPerOwner,
        Limit::WebhooksPerOrder,
        Limit::ConnectsPerUser,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Limit::SignInPerSource => "sign-in-per-source",
            Limit::SignUpPerSource => "sign-up-per-source",
            Limit::OrdersPerCustomer => "orders-per-customer",
            Limit::StoresPerOwner => "stores-per-owner",
            Limit::WebhooksPerOrder => "webhooks-per-order",
            Limit::ConnectsPerUser => "connects-per-user",
        }
    }

    /// Generous for people (mobile carriers put many behind one address), tight for scripts.
    pub fn default_rule(self) -> Rule {
        let rule = |max, window_seconds| Rule {
            max,
            window_seconds,
        };
        match self {
            Limit::SignInPerSource => rule(100, 60),
            Limit::SignUpPerSource => rule(50, 3600),
            Limit::OrdersPerCustomer => rule(30, 600),
            Limit::StoresPerOwner => rule(20, 86_400),
            Limit::WebhooksPerOrder => rule(20, 60),
            Limit::ConnectsPerUser => rule(60, 60),
        }
    }
}

/// The rules in force: the defaults, with `RATE_LIMITS`' overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    rules: [Rule; 6],
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rules: Limit::ALL.map(Limit::default_rule),
        }
    }
}

impl Limits {
    /// `name=max/seconds,…`; empty means the defaults. A wrong name or number is an error (init
    /// fails with it), never a silently ignored limit.
    pub fn parse(overrides: &str) -> Result<Self, String> {
        let mut limits = Limits::default();
        for entry in overrides
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let parsed = entry.split_once('=').and_then(|(name, rule)| {
                let limit = Limit::ALL.into_iter().find(|l| l.name() == name.trim())?;
                let (max, seconds) = rule.trim().split_once('/')?;
                let rule = Rule {
                    max: max.parse().ok().filter(|m| *m > 0)?,
                    window_seconds: seconds.parse().ok().filter(|s| *s > 0)?,
                };
                Some((limit, rule))
            });
            let Some((limit, rule)) = parsed else {
                return Err(format!(
                    "`{entry}`: expected <limit>=<max>/<seconds> with a limit among {}",
                    Limit::ALL.map(Limit::name).join(", ")
                ));
            };
            limits.rules[limit as usize] = rule;
        }
        Ok(limits)
    }

    pub fn rule(&self, limit: Limit) -> Rule {
        self.rules[limit as usize]
    }

    /// Overrides no test or benchmark reaches, for every limit: one load generator on one address
    /// stands for many clients (the counters are still written).
    pub fn lifted() -> String {
        Limit::ALL
            .map(|limit| format!("{}=1000000/60", limit.name()))
            .join(",")
    }
}

/// Counts one use of `limit` by `key`, or refuses it with 429 once the window's allowance is spent.
pub async fn take(app: &App, limit: Limit, key_of_client: &str) -> Result<(), ApiError> {
    take_for(app, limit, key_of_client, &write_token()).await
}

/// [`take`] for a request that names what it makes (an order's id, which its `Idempotency-Key`
/// names): the count carries that name, so a second count for the same thing while it is still the
/// window's last is known for the first. Two sends of one order that both arrive before it is
/// written take one of the customer's allowance, not two.
pub async fn take_for(
    app: &App,
    limit: Limit,
    key_of_client: &str,
    token: &str,
) -> Result<(), ApiError> {
    let Rule {
        max,
        window_seconds,
    } = app.config.limits.rule(limit);
    let now = jiff::Timestamp::now().as_second();
    let window_start = now - now.rem_euclid(window_seconds);
    let window_end = window_start + window_seconds;
    let db = &app.db;
    // The count carries a token of its own (`last`): when its answer is lost and the SDK sends it
    // again, the repeat meets that token and is known for the count already made — neither counted
    // twice nor refused as one too many.
    let count = db
        .client()
        .update_item()
        .table_name(db.table())
        .set_key(Some(key(
            format!("RATE#{}#{key_of_client}", limit.name()),
            format!("W#{window_start}"),
        )))
        .update_expression(
            "ADD #count :one SET expiresAt = if_not_exists(expiresAt, :expires), #last = :token",
        )
        .condition_expression(
            "(attribute_not_exists(#count) OR #count < :max) \
             AND (attribute_not_exists(#last) OR #last <> :token)",
        )
        .expression_attribute_names("#count", "count")
        .expression_attribute_names("#last", "last")
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":max", n(max))
        .expression_attribute_values(":token", s(token))
        // Kept a minute past its window; TTL removes it.
        .expression_attribute_values(":expires", n(window_end + 60));
    match update_once(count, "last", token).await {
        Ok(()) => Ok(()),
        Err(StorageError::ConditionFailed) => {
            crate::telemetry::count("RateLimited", 1.0);
            Err(ApiError::too_many_requests(
                format!("too many requests ({}); try again later", limit.name()),
                (window_end - now).max(1) as u64,
            ))
        }
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_name() {
        let limits = Limits::parse("orders-per-customer=2/600, sign-in-per-source=3/60").unwrap();
        assert_eq!(
            limits.rule(Limit::OrdersPerCustomer),
            Rule {
                max: 2,
                window_seconds: 600
            }
        );
        assert_eq!(limits.rule(Limit::SignInPerSource).max, 3);
        assert_eq!(
            limits.rule(Limit::ConnectsPerUser),
            Limit::ConnectsPerUser.default_rule()
        );
        assert_eq!(Limits::parse("").unwrap(), Limits::default());
    }

    #[test]
    fn every_limit_has_its_own_rule_and_lifted_names_them_all() {
        for (i, limit) in Limit::ALL.into_iter().enumerate() {
            assert_eq!(limit as usize, i, "ALL is in declaration order");
        }
        let lifted = Limits::parse(&Limits::lifted()).unwrap();
        for limit in Limit::ALL {
            assert_eq!(lifted.rule(limit).max, 1_000_000, "{}", limit.name());
        }
    }

    #[test]
    fn wrong_overrides_are_errors_not_ignored() {
        for wrong in [
            "orders=2/600",
            "orders-per-customer=2",
            "orders-per-customer=0/600",
            "orders-per-customer=2/-1",
            "orders-per-customer",
        ] {
            assert!(Limits::parse(wrong).is_err(), "{wrong}");
        }
    }
}
