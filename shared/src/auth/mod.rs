//! Who the caller is, and what they may do.
//!
//! Every authenticated route starts with [`authorize`]: it verifies the bearer token and checks the
//! caller's role in one call, so no route can forget either half.

pub mod lockout;
pub mod password;
pub mod service;
pub mod sessions;
pub mod tokens;
pub mod users;

use lambda_http::Request;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::ApiError;
use crate::http::bearer_token;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Customer,
    Owner,
    /// Accounts that joining a store's staff used to convert; no longer given (working at a store
    /// is a `stores::staff` fact, not a role). They order and pay as customers do.
    Staff,
    Admin,
}

impl Role {
    /// Roles a person may choose for themselves at sign-up. ADMIN is granted by an operator.
    pub fn self_assignable(self) -> bool {
        matches!(self, Role::Customer | Role::Owner)
    }

    pub const ANY: &'static [Role] = &[Role::Customer, Role::Owner, Role::Staff, Role::Admin];
    /// Who orders and pays: customers, and the accounts once made STAFF by joining a store.
    pub const BUYERS: &'static [Role] = &[Role::Customer, Role::Staff];
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub role: Role,
    pub session_id: String,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Verifies the request's bearer token and requires one of `roles`: 401 without a valid token, 403
/// with a valid token of another role. Object-level checks (is this the caller's store, order, …) are
/// the domain's, made on the loaded object.
pub async fn authorize(app: &App, req: &Request, roles: &[Role]) -> Result<Caller, ApiError> {
    let token = bearer_token(req).ok_or_else(|| {
        ApiError::unauthorized(
            "UNAUTHENTICATED",
            "send an access token as `Authorization: Bearer …`",
        )
    })?;
    let caller = verify(app, token).await?;
    require_role(&caller, roles)?;
    Ok(caller)
}

/// The caller an access token names, once its signature, issuer, audience and expiry check out.
pub async fn verify(app: &App, token: &str) -> Result<Caller, ApiError> {
    let claims = app.tokens().verify(token).await?;
    let caller = Caller {
        user_id: claims.sub,
        role: claims.role,
        session_id: claims.sid,
    };
    crate::telemetry::set_user(&caller.user_id);
    Ok(caller)
}

pub fn require_role(caller: &Caller, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&caller.role) {
        Ok(())
    } else {
        Err(ApiError::forbidden("your role may not do this"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_serialise_as_screaming_snake_case() {
        assert_eq!(serde_json::to_string(&Role::Owner).unwrap(), "\"OWNER\"");
        assert_eq!(
            serde_json::from_str::<Role>("\"STAFF\"").unwrap(),
            Role::Staff
        );
        assert!(serde_json::from_str::<Role>("\"ROOT\"").is_err());
    }

    #[test]
    fn only_customers_and_owners_sign_themselves_up() {
        assert!(Role::Customer.self_assignable());
        assert!(Role::Owner.self_assignable());
        assert!(!Role::Staff.self_assignable());
        assert!(!Role::Admin.self_assignable());
    }

    #[test]
    fn a_role_outside_the_list_is_forbidden() {
        let caller = Caller {
            user_id: "u".into(),
            role: Role::Customer,
            session_id: "s".into(),
        };
        assert!(require_role(&caller, Role::ANY).is_ok());
        let err = require_role(&caller, &[Role::Owner]).unwrap_err();
        assert_eq!(err.status.as_u16(), 403);
    }
}
