//! Closing an account (`DELETE /v1/me`): what of a person goes when they leave, and what the law
//! keeps. Above `auth` and `stores`, which each know their half.
//!
//! The holder proves it is them again (the password, on the sign-in's attempt counter); an account
//! that owns a store is refused, since no route closes or hands over a store, and its orders and
//! sales are kept under its owner. Their places on stores' staff and their invitations go first,
//! then, in one transaction, the profile (the sealed address, name and phone, the password's hash)
//! and the address's claim, with the `user.deleted` event. The account's orders and payments stay
//! five years under its id (전자상거래법 §6), and the audit trail's records of its sign-ins their
//! year; nothing else names the person.

use crate::app::App;
use crate::auth::Caller;
use crate::auth::service::{self, CloseAccountRequest};
use crate::error::ApiError;
use crate::http::RequestMeta;
use crate::stores::{places, staff};

pub async fn close(
    app: &App,
    caller: &Caller,
    input: CloseAccountRequest,
    meta: &RequestMeta,
) -> Result<(), ApiError> {
    let user = service::account(app, caller).await?;
    // Before the password: the refusal spends no attempt, and tells the holder nothing new.
    if places::owns_any(&app.db, &user.user_id).await? {
        return Err(ApiError::conflict(
            "STORE_OWNER",
            "an account that owns a store cannot be closed: its stores' orders and sales are kept under it",
        ));
    }
    let email_key = service::check_password(app, &user, &input.password, meta).await?;
    staff::leave_everywhere(app, &user.user_id).await?;
    service::delete_account(app, &user, &email_key, meta).await
}
