//! Who works at a store. Staff join by invitation: the owner invites an existing user, the user
//! accepts, and from then on they may run the store's board (its orders and item availability —
//! never its prices, settings or staff). Working at a store is a fact about the user and that store
//! (`STAFF#` items), never their account's role: a customer who works somewhere still orders and
//! pays as before, and leaving (or being removed) leaves the account as it was.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use lambda_http::http;
use serde::{Deserialize, Serialize};

use super::{Access, StoreRecord, check_access, load_for, store_pk, user_side_ids};
use crate::app::App;
use crate::auth::users::{self, UserRecord};
use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::storage::{Db, Item, StorageError, from_item, item_key, key, n, s, stamp};

/// An invitation not accepted within a week lapses.
pub const INVITATION_SECONDS: i64 = 7 * 24 * 3600;

/// `STORE#<storeId>` / `STAFF#<userId>`: the user works at the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user_id: String,
    pub added_by: String,
    pub added_at: String,
}

/// `USER#<userId>` / `STAFF_AT#<storeId>`: the same fact, found from the user's side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffOfRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub store_id: String,
}

/// `USER#<userId>` / `INVITED#<storeId>`: the owner of the store asked the user to join its staff.
/// Kept on the user's side, where the user lists and accepts it; TTL removes it once lapsed. Its
/// GSI1 entry (`INVITED#STORE#<storeId>` / the time it was sent) is where the owner's listing
/// finds it: an index entry rather than a second item, so that every delete of the invitation
/// (its acceptance, a removal, an account's closing, the TTL) takes it off the listing too.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub store_id: String,
    pub store_name: String,
    pub invited_by: String,
    pub invited_at: String,
    pub expires_at: i64,
    /// Absent on invitations sent before 2026-12-08 (they lapse unlisted).
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
}

/// What the user and the owner see of an invitation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationView {
    pub store_id: String,
    pub store_name: String,
    pub invited_at: String,
    pub expires_at: String,
}

/// Where a user stands with a store's staff, as `PUT …/staff/{userId}` and the acceptance answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Standing {
    pub store_id: String,
    pub user_id: String,
    pub status: StaffStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl Standing {
    /// 202 for an invitation sent (nothing changes until it is accepted), 200 for a place held.
    pub fn http_status(&self) -> http::StatusCode {
        match self.status {
            StaffStatus::Invited => http::StatusCode::ACCEPTED,
            StaffStatus::Staff => http::StatusCode::OK,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StaffStatus {
    /// Asked; not yet accepted.
    Invited,
    /// Works at the store.
    Staff,
}

fn staff_sk(user_id: &str) -> String {
    format!("STAFF#{user_id}")
}

/// The sort keys of a user's `STAFF_AT#` items begin so.
pub const STAFF_AT_PREFIX: &str = "STAFF_AT#";

fn staff_at_sk(store_id: &str) -> String {
    format!("{STAFF_AT_PREFIX}{store_id}")
}

/// The sort keys of a user's `INVITED#` items begin so.
const INVITED_PREFIX: &str = "INVITED#";

fn invited_sk(store_id: &str) -> String {
    format!("{INVITED_PREFIX}{store_id}")
}

/// The GSI1 partition of a store's invitations.
fn invitations_of(store_id: &str) -> String {
    format!("INVITED#{}", store_pk(store_id))
}

/// The key of `user_id`'s place on `store_id`'s staff (present while they are staff).
pub fn staff_key(store_id: &str, user_id: &str) -> (String, String) {
    (store_pk(store_id), staff_sk(user_id))
}

pub async fn is_staff(db: &Db, store_id: &str, user_id: &str) -> Result<bool, StorageError> {
    let (pk, sk) = staff_key(store_id, user_id);
    Ok(db.get::<StaffRecord>(pk, sk).await?.is_some())
}

fn epoch_to_string(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `POST /v1/stores/{storeId}/staff`: whom to invite, by the address they sign in with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InviteByEmailRequest {
    pub email: String,
}

fn no_such_user() -> ApiError {
    ApiError::not_found("USER_NOT_FOUND", "no such user")
}

/// The owner invites an existing user to the store's staff (again: the invitation is renewed).
/// Already staff: nothing changes.
pub async fn invite(
    app: &App,
    caller: &Caller,
    store_id: &str,
    user_id: &str,
) -> Result<Standing, ApiError> {
    let store = load_for(app, store_id, caller, Access::Owner).await?;
    let user = users::find_by_id(&app.db, user_id)
        .await?
        .ok_or_else(no_such_user)?;
    invite_user(app, caller, &store, &user, "userId").await
}

/// [`invite`] of the account that signs in with `input.email`: what an owner knows of the person
/// they hire. An address with no account is 404, as a sign-up with a taken one is 409: neither
/// tells more than the other.
pub async fn invite_by_email(
    app: &App,
    caller: &Caller,
    store_id: &str,
    input: InviteByEmailRequest,
) -> Result<Standing, ApiError> {
    let store = load_for(app, store_id, caller, Access::Owner).await?;
    let email = users::validate_email(&input.email)?;
    let index = app.blind_index().await?;
    let user = users::find_by_email_key(&app.db, &users::email_key(index, &email))
        .await?
        .ok_or_else(no_such_user)?;
    invite_user(app, caller, &store, &user, "email").await
}

/// Invites `user` (named in the request by `field`) to `store`'s staff; the caller has been found
/// to be its owner (or an admin).
async fn invite_user(
    app: &App,
    caller: &Caller,
    store: &StoreRecord,
    user: &UserRecord,
    field: &str,
) -> Result<Standing, ApiError> {
    let (store_id, user_id) = (store.store_id.as_str(), user.user_id.as_str());
    if user_id == store.owner_id {
        return Err(ApiError::validation(
            field,
            "the owner is not staff of their own store",
        ));
    }
    if user.role == Role::Admin {
        return Err(ApiError::validation(field, "admins are not store staff"));
    }
    if is_staff(&app.db, store_id, user_id).await? {
        return Ok(Standing {
            store_id: store_id.to_owned(),
            user_id: user_id.to_owned(),
            status: StaffStatus::Staff,
            expires_at: None,
        });
    }
    let now = jiff::Timestamp::now();
    let expires_at = now.as_second() + INVITATION_SECONDS;
    let invited_at = stamp(now);
    app.db
        .put(&InvitationRecord {
            pk: users::user_pk(user_id),
            sk: invited_sk(store_id),
            store_id: store_id.to_owned(),
            store_name: store.settings.name.clone(),
            invited_by: caller.user_id.clone(),
            invited_at: invited_at.clone(),
            expires_at,
            gsi1pk: Some(invitations_of(store_id)),
            gsi1sk: Some(invited_at),
        })
        .await?;
    Ok(Standing {
        store_id: store_id.to_owned(),
        user_id: user_id.to_owned(),
        status: StaffStatus::Invited,
        expires_at: Some(epoch_to_string(expires_at)),
    })
}

/// Who works at a store and whom it has invited, as its owner sees them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffList {
    /// Longest-serving first.
    pub staff: Vec<Member>,
    /// Open ones, newest first.
    pub invitations: Vec<Invitee>,
}

/// A member of the staff. `name` is absent when their account is gone (closed while they were
/// still on the staff): the owner can still remove the place.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub added_at: String,
}

/// A user invited to the staff who has not answered yet. No name: a store learns a person's name
/// when they join it, not from any id or address its owner types in.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitee {
    pub user_id: String,
    pub invited_at: String,
    pub expires_at: String,
}

/// The store's staff, each with their name (the owner's view: an id alone tells them nothing),
/// and its open invitations. Every page of both is read: a store's staff is a handful, and an
/// owner who cannot see everyone with access cannot remove them.
pub async fn list(app: &App, caller: &Caller, store_id: &str) -> Result<StaffList, ApiError> {
    check_access(app, store_id, caller, Access::Owner).await?;
    let db = &app.db;
    let since = stamp(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(INVITATION_SECONDS));
    let query = || db.client().query().table_name(db.table());
    let members = query()
        .key_condition_expression("PK = :pk AND begins_with(SK, :staff)")
        .expression_attribute_values(":pk", s(store_pk(store_id)))
        .expression_attribute_values(":staff", s("STAFF#"))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .try_collect();
    let invited = query()
        .index_name("GSI1")
        .key_condition_expression("GSI1PK = :pk AND GSI1SK > :since")
        .expression_attribute_values(":pk", s(invitations_of(store_id)))
        .expression_attribute_values(":since", s(&since))
        .scan_index_forward(false)
        .into_paginator()
        .items()
        .send()
        .try_collect();
    let (members, invited): (Vec<Item>, Vec<Item>) =
        tokio::try_join!(members, invited).map_err(StorageError::from_sdk)?;
    let mut members: Vec<StaffRecord> = members
        .into_iter()
        .filter_map(|item| from_item(item).ok())
        .collect();
    members.sort_by(|a, b| a.added_at.cmp(&b.added_at));
    // The index holds the invitation's keys and its sort key, the time it was sent.
    let invited: Vec<(String, String)> = invited
        .iter()
        .filter_map(|item| {
            let user_id = item_key(item)?.0.strip_prefix("USER#")?.to_owned();
            match item.get("GSI1SK") {
                Some(AttributeValue::S(at)) => Some((user_id, at.clone())),
                _ => None,
            }
        })
        .collect();
    let ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
    let mut names = names_of(app, &ids).await?;
    Ok(StaffList {
        staff: members
            .into_iter()
            .map(|m| Member {
                name: names.remove(&m.user_id),
                user_id: m.user_id,
                added_at: m.added_at,
            })
            .collect(),
        invitations: invited
            .into_iter()
            .map(|(user_id, invited_at)| Invitee {
                expires_at: invited_at
                    .parse::<jiff::Timestamp>()
                    .map(|at| epoch_to_string(at.as_second() + INVITATION_SECONDS))
                    .unwrap_or_default(),
                user_id,
                invited_at,
            })
            .collect(),
    })
}

/// The names of the accounts with these ids, opened; an id whose account is gone has none.
async fn names_of(app: &App, user_ids: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let mut records = Vec::with_capacity(user_ids.len());
    for chunk in user_ids.chunks(100) {
        let keys = chunk
            .iter()
            .map(|id| key(users::user_pk(id), users::PROFILE_SK))
            .collect();
        records.extend(
            app.db
                .get_many(keys)
                .await?
                .into_iter()
                .filter_map(|item| from_item::<UserRecord>(item).ok()),
        );
    }
    let table = app.db.table();
    let opened = futures::future::try_join_all(records.iter().map(|user| async move {
        let at = UserRecord::location(table, &user.pk, "name");
        let name = app.crypto().open_str(&at, &user.name).await?;
        Ok::<_, ApiError>((user.user_id.clone(), name))
    }))
    .await?;
    Ok(opened.into_iter().collect())
}

/// The caller's invitations that have not lapsed, newest first.
pub async fn invitations(app: &App, caller: &Caller) -> Result<Vec<InvitationView>, ApiError> {
    let db = &app.db;
    let now = jiff::Timestamp::now().as_second();
    let out = db
        .client()
        .query()
        .table_name(db.table())
        .key_condition_expression("PK = :pk AND begins_with(SK, :invited)")
        .expression_attribute_values(":pk", s(users::user_pk(&caller.user_id)))
        .expression_attribute_values(":invited", s("INVITED#"))
        // A user is invited by a handful of stores at most; one page holds them.
        .limit(100)
        .send()
        .await
        .map_err(StorageError::from_sdk)?;
    let mut found: Vec<InvitationRecord> = out
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|item| crate::storage::from_item::<InvitationRecord>(item).ok())
        .filter(|i| i.expires_at > now)
        .collect();
    found.sort_by(|a, b| b.invited_at.cmp(&a.invited_at));
    Ok(found
        .into_iter()
        .map(|i| InvitationView {
            store_id: i.store_id,
            store_name: i.store_name,
            invited_at: i.invited_at,
            expires_at: epoch_to_string(i.expires_at),
        })
        .collect())
}

/// The caller accepts the store's invitation and joins its staff: the invitation is spent and both
/// staff items are written in one transaction. No invitation (or a lapsed one): 404, unless the
/// caller is on the staff already — a retried acceptance whose answer was lost is answered again.
pub async fn accept(app: &App, caller: &Caller, store_id: &str) -> Result<Standing, ApiError> {
    let db = &app.db;
    let now = jiff::Timestamp::now();
    let user_pk = users::user_pk(&caller.user_id);
    let spend = Delete::builder()
        .table_name(db.table())
        .set_key(Some(key(&user_pk, invited_sk(store_id))))
        .condition_expression("attribute_exists(PK) AND expiresAt > :now")
        .expression_attribute_values(":now", n(now.as_second()))
        .build()
        .map_err(ApiError::internal)?;
    let not_invited = || {
        ApiError::not_found(
            "INVITATION_NOT_FOUND",
            "no open invitation from this store; ask its owner to invite you",
        )
    };
    let on_staff = || Standing {
        store_id: store_id.to_owned(),
        user_id: caller.user_id.clone(),
        status: StaffStatus::Staff,
        expires_at: None,
    };
    // Read only when there is no invitation to spend: the acceptance itself costs nothing more.
    let already_staff = || async {
        match db
            .get::<StaffOfRecord>(&user_pk, staff_at_sk(store_id))
            .await?
        {
            Some(_) => Ok(on_staff()),
            None => Err(not_invited()),
        }
    };
    let Some(invitation) = db
        .get::<InvitationRecord>(&user_pk, invited_sk(store_id))
        .await?
        .filter(|i| i.expires_at > now.as_second())
    else {
        return already_staff().await;
    };
    // The spend's condition decides between two acceptances racing for one invitation.
    let written = db
        .transact(vec![
            TransactWriteItem::builder().delete(spend).build(),
            db.put_action(
                &StaffRecord {
                    pk: store_pk(store_id),
                    sk: staff_sk(&caller.user_id),
                    user_id: caller.user_id.clone(),
                    added_by: invitation.invited_by,
                    added_at: now.to_string(),
                },
                None,
            )?,
            db.put_action(
                &StaffOfRecord {
                    pk: user_pk.clone(),
                    sk: staff_at_sk(store_id),
                    store_id: store_id.to_owned(),
                },
                None,
            )?,
        ])
        .await;
    match written {
        Ok(()) => Ok(on_staff()),
        // Spent meanwhile: by a twin of this acceptance, or withdrawn.
        Err(err) if err.condition_failed_at(0) => already_staff().await,
        Err(err) => Err(err.into()),
    }
}

/// Ends the user's work at every store, and every invitation they hold: before their account is
/// closed. Each store is left as [`remove`] leaves it, one store at a time (a retry after a failure
/// finds the rest).
pub async fn leave_everywhere(app: &App, user_id: &str) -> Result<(), ApiError> {
    let db = &app.db;
    // Invitations first: one accepted between the two reads is then found as a place on the
    // staff, and one accepted after them needs the invitation that is deleted. Both read strongly
    // consistent: what was just accepted or sent must be seen.
    let mut stores = user_side_ids(db, user_id, INVITED_PREFIX, None, true).await?;
    for store_id in user_side_ids(db, user_id, STAFF_AT_PREFIX, None, true).await? {
        if !stores.contains(&store_id) {
            stores.push(store_id);
        }
    }
    for store_id in stores {
        leave(db, &store_id, user_id).await?;
    }
    Ok(())
}

/// Ends a user's work at the store, or their invitation: the store's owner (or an admin) removes
/// anyone, and a user may leave. Idempotent; the account is left as it was.
pub async fn remove(
    app: &App,
    caller: &Caller,
    store_id: &str,
    user_id: &str,
) -> Result<(), ApiError> {
    if caller.user_id != user_id {
        load_for(app, store_id, caller, Access::Owner).await?;
    }
    leave(&app.db, store_id, user_id).await
}

/// Both sides of the user's place on the store's staff, and their invitation to it, deleted.
async fn leave(db: &Db, store_id: &str, user_id: &str) -> Result<(), ApiError> {
    db.transact(vec![
        db.delete_action(store_pk(store_id), staff_sk(user_id))?,
        db.delete_action(users::user_pk(user_id), staff_at_sk(store_id))?,
        db.delete_action(users::user_pk(user_id), invited_sk(store_id))?,
    ])
    .await?;
    Ok(())
}
