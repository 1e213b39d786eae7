//! Sign-up, sign-in, refresh, sign-out and the caller's profile: the rules behind the auth routes.

use aws_sdk_dynamodb::types::{Delete, ReturnValue, TransactWriteItem, Update};
use lambda_http::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::sessions::{self, RefreshToken, SESSION_SK, SessionRecord};
use super::users::{self, EmailRecord, PROFILE_SK, Profile, UserRecord};
use super::{Caller, Role, lockout, password};
use crate::app::App;
use crate::crypto::blind_index;
use crate::error::ApiError;
use crate::events::{self, Ending, Event, EventType, OutboxItem, SessionEnd, SignIn};
use crate::http::RequestMeta;
use crate::limits::{self, Limit};
use crate::storage::{self, Db, Once, StorageError, from_item, key, n, s};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
    pub name: String,
    pub role: Role,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `DELETE /v1/me`: the account's password, asked again before it is closed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloseAccountRequest {
    pub password: String,
}

/// `PATCH /v1/me`: the fields sent change, the others stay. A phone sent as `""` is removed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProfileRequest {
    #[serde(default, deserialize_with = "crate::http::present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub phone: Option<String>,
}

/// `POST /v1/me/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("INVALID_CREDENTIALS", "the e-mail or password is wrong")
}

fn invalid_refresh_token() -> ApiError {
    ApiError::unauthorized(
        "INVALID_REFRESH_TOKEN",
        "the refresh token is unknown or expired; sign in again",
    )
}

pub async fn signup(
    app: &App,
    input: SignupRequest,
    meta: &RequestMeta,
) -> Result<Profile, ApiError> {
    if !input.role.self_assignable() {
        return Err(ApiError::validation("role", "must be CUSTOMER or OWNER"));
    }
    let email = users::validate_email(&input.email)?;
    let name = users::validate_name(&input.name)?;
    let phone = input
        .phone
        .as_deref()
        .map(users::validate_phone)
        .transpose()?;
    password::check_strength(&input.password)?;
    if let Some(source) = &meta.source_ip {
        limits::take(app, Limit::SignUpPerSource, source).await?;
    }

    let index = app.blind_index().await?;
    let email_key = users::email_key(index, &email);

    let user_id = uuid::Uuid::new_v4().to_string();
    let pk = users::user_pk(&user_id);
    let table = app.db.table();
    let user = UserRecord {
        email: app
            .crypto()
            .seal_str(&UserRecord::location(table, &pk, "email"), &email)
            .await?,
        name: app
            .crypto()
            .seal_str(&UserRecord::location(table, &pk, "name"), &name)
            .await?,
        phone: match &phone {
            Some(phone) => Some(
                app.crypto()
                    .seal_str(&UserRecord::location(table, &pk, "phone"), phone)
                    .await?,
            ),
            None => None,
        },
        phone_index: phone
            .as_deref()
            .map(|p| index.of(blind_index::Kind::Phone, p)),
        pk,
        sk: PROFILE_SK.to_owned(),
        user_id: user_id.clone(),
        role: input.role,
        password_hash: password::hash(&input.password)?,
        created_at: jiff::Timestamp::now().to_string(),
        sessions_from: None,
    };
    let profile = Profile {
        user_id: user_id.clone(),
        email,
        name,
        phone,
        role: user.role,
        created_at: user.created_at.clone(),
    };
    let email_record = EmailRecord {
        pk: email_key,
        sk: users::EMAIL_SK.to_owned(),
        user_id: user_id.clone(),
    };
    let event = holder_event(EventType::UserSignedUp, &user_id, meta);
    let db = &app.db;
    match db
        .transact(vec![
            db.put_new(&email_record)?,
            db.put_new(&user)?,
            events::record(db, &event)?,
        ])
        .await
    {
        Ok(()) => Ok(profile),
        Err(err) if err.condition_failed_at(0) => Err(ApiError::conflict(
            "EMAIL_TAKEN",
            "an account with this e-mail address exists",
        )),
        Err(err) => Err(err.into()),
    }
}

pub async fn login(
    app: &App,
    input: LoginRequest,
    meta: &RequestMeta,
) -> Result<TokenPair, ApiError> {
    let db = &app.db;
    // Addresses appear only as their blind index: in keys, in the lockout counter, in audit records.
    let index = app.blind_index().await?;
    let email_key = users::email_key(index, &input.email);
    let now = jiff::Timestamp::now();

    // The source's limit, then the attempt's count, beside the account's read: two waits on the
    // table, not four. The count stays behind the limit (a source over its limit cannot spend an
    // account's attempts); the read, which changes nothing, is made even for a refused attempt.
    let counted = async {
        if let Some(source) = &meta.source_ip {
            limits::take(app, Limit::SignInPerSource, source).await?;
        }
        // The attempt is counted before the password is checked: concurrency cannot buy guesses.
        match lockout::take_attempt(db, &email_key, now.as_second()).await {
            Err(refused) if refused.status == StatusCode::TOO_MANY_REQUESTS => {
                let event = Event::user(EventType::UserSignInLocked, None, email_key.clone(), meta);
                db.put(&OutboxItem::of(&event)?).await?;
                Err(refused)
            }
            counted => counted,
        }
    };
    let (counted, user) = tokio::join!(counted, users::find_by_email_key(db, &email_key));
    counted?;
    let user = user?;
    let verified = match &user {
        Some(user) if password::verify(&input.password, &user.password_hash) => Some(user),
        Some(_) => None,
        None => {
            password::verify_nothing(&input.password);
            None
        }
    };
    let Some(user) = verified else {
        let (actor, subject) = match &user {
            Some(u) => (None, users::user_pk(&u.user_id)),
            None => (None, email_key.clone()),
        };
        let event = Event::user(EventType::UserSignInFailed, actor, subject, meta);
        db.put(&OutboxItem::of(&event)?).await?;
        return Err(invalid_credentials());
    };
    lockout::clear(db, &email_key).await?;

    // One write: the session's creation is the sign-in's event (`Event::of_session`), and it
    // keeps the generation of the one refresh token it accepts.
    let session = sessions::new_session(&user.user_id, now, SignIn::of(meta));
    db.put_if_absent(&session).await?;
    let refresh_token = RefreshToken::first(&session).to_text(index.refresh_token_key());
    token_pair(app, user, &session.session_id, refresh_token).await
}

pub async fn refresh(
    app: &App,
    input: RefreshRequest,
    meta: &RequestMeta,
) -> Result<TokenPair, ApiError> {
    let db = &app.db;
    let now = jiff::Timestamp::now();
    let key = app.blind_index().await?.refresh_token_key();
    let Some(presented) = RefreshToken::from_text(&input.refresh_token, key) else {
        return Err(invalid_refresh_token());
    };
    let session = match spend(db, &presented, now.as_second()).await? {
        Spent::Made(session) => session,
        Spent::Refused(None) => return Err(invalid_refresh_token()),
        Spent::Refused(Some(session)) if session.revoked_at.is_some() => {
            return Err(ApiError::unauthorized(
                "SESSION_REVOKED",
                "this session has ended; sign in again",
            ));
        }
        Spent::Refused(Some(session)) if session.expires_at <= now.as_second() => {
            return Err(invalid_refresh_token());
        }
        // Only our key makes a token, so one of an earlier generation was handed out and spent:
        // presented again — or spent by another request at the same moment — it was copied.
        Spent::Refused(Some(session))
            if session
                .refresh_generation
                .is_some_and(|accepted| accepted > presented.generation) =>
        {
            return Err(reuse_detected(db, &session, meta).await);
        }
        Spent::Refused(Some(_)) => return Err(invalid_refresh_token()),
    };
    let Some(user) = users::find_by_id(db, &session.user_id).await? else {
        return Err(invalid_refresh_token());
    };
    if !user.keeps_session_of(&session.created_at) {
        return Err(ApiError::unauthorized(
            "SESSION_REVOKED",
            "the password was changed after this session began; sign in again",
        ));
    }
    let refresh_token = presented.successor().to_text(key);
    token_pair(app, &user, &session.session_id, refresh_token).await
}

/// What spending a refresh token met.
enum Spent {
    /// The session, moved on to the token's successor.
    Made(SessionRecord),
    /// The session as it stood when it refused the token (`None`: no such session).
    Refused(Option<SessionRecord>),
}

/// Spends `token`: one conditional write moves its session on to the successor's generation, if
/// the session accepts this one and is neither revoked nor expired. The write carries a token of
/// its own, so that the SDK's retry of a send whose answer was lost finds it made, not refused (a
/// refusal here ends the session as a reuse).
async fn spend(db: &Db, token: &RefreshToken, now: i64) -> Result<Spent, StorageError> {
    let write = storage::write_token();
    let update = db
        .client()
        .update_item()
        .table_name(db.table())
        .set_key(Some(key(
            sessions::session_pk(&token.session_id),
            SESSION_SK,
        )))
        .update_expression("SET refreshGeneration = :next, refreshWrite = :write")
        .condition_expression(
            "refreshGeneration = :generation AND attribute_not_exists(revokedAt) AND expiresAt > :now",
        )
        .expression_attribute_values(":generation", n(token.generation))
        .expression_attribute_values(":next", n(token.successor().generation))
        .expression_attribute_values(":write", s(write.as_str()))
        .expression_attribute_values(":now", n(now))
        .return_values(ReturnValue::AllNew);
    Ok(
        match storage::update_once_telling(update, "refreshWrite", &write).await? {
            Once::Made(session) => Spent::Made(from_item(session)?),
            Once::Refused(None) => Spent::Refused(None),
            Once::Refused(Some(session)) => Spent::Refused(Some(from_item(session)?)),
        },
    )
}

/// A fresh access token for `user`, sent with the session's current refresh token.
async fn token_pair(
    app: &App,
    user: &UserRecord,
    session_id: &str,
    refresh_token: String,
) -> Result<TokenPair, ApiError> {
    Ok(TokenPair {
        access_token: app
            .tokens()
            .issue(&user.user_id, user.role, session_id)
            .await?,
        refresh_token,
        token_type: "Bearer".to_owned(),
        expires_in: app.tokens().access_token_seconds(),
    })
}

/// A spent refresh token came back: end its whole session and say so.
async fn reuse_detected(db: &Db, session: &SessionRecord, meta: &RequestMeta) -> ApiError {
    tracing::warn!(session_id = %session.session_id, "refresh token reuse; revoking the session");
    let end = SessionEnd::of(Ending::RefreshReused, meta);
    match end_session(db, &session.session_id, &end).await {
        Ok(()) => ApiError::unauthorized(
            "REFRESH_TOKEN_REUSED",
            "this refresh token was already used; the session has been ended, sign in again",
        ),
        Err(err) => err,
    }
}

/// Revokes a session, stamped with how it ended: that one write is the ending's event
/// (`Event::of_session_end`, read off its stream record). A session ends once: ending an ended
/// (or unknown) session writes nothing, so a retried sign-out records no second event.
async fn end_session(db: &Db, session_id: &str, end: &SessionEnd) -> Result<(), ApiError> {
    let result = db
        .client()
        .update_item()
        .table_name(db.table())
        .set_key(Some(key(sessions::session_pk(session_id), SESSION_SK)))
        .update_expression("SET revokedAt = :now, ended = :ended")
        .condition_expression("attribute_exists(PK) AND attribute_not_exists(revokedAt)")
        .expression_attribute_values(":now", s(jiff::Timestamp::now().to_string()))
        .expression_attribute_values(
            ":ended",
            serde_dynamo::to_attribute_value(end).map_err(ApiError::internal)?,
        )
        .send()
        .await;
    match result.map_err(StorageError::from_sdk) {
        Ok(_) | Err(StorageError::ConditionFailed) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Ends the caller's session: its refresh tokens stop working at once. Access tokens already issued
/// run out within their 15 minutes.
pub async fn logout(app: &App, caller: &Caller, meta: &RequestMeta) -> Result<(), ApiError> {
    let end = SessionEnd::of(Ending::SignedOut, meta);
    end_session(&app.db, &caller.session_id, &end).await
}

pub async fn profile(app: &App, caller: &Caller) -> Result<Profile, ApiError> {
    account(app, caller).await?.profile(app).await
}

/// Changes the caller's name or phone (sealed, as at sign-up; the phone's blind index with it), and
/// answers the profile as it now is. Nothing else of an account is the holder's to set here: the
/// address is its sign-in's key, the role an operator's.
pub async fn update_profile(
    app: &App,
    caller: &Caller,
    input: UpdateProfileRequest,
) -> Result<Profile, ApiError> {
    if input.name.is_none() && input.phone.is_none() {
        return Err(ApiError::validation("body", "name or phone, or both"));
    }
    let name = input
        .name
        .as_deref()
        .map(users::validate_name)
        .transpose()?;
    // `Some(None)`: the phone removed.
    let phone = match input.phone.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(phone) => Some(Some(users::validate_phone(phone)?)),
    };
    let db = &app.db;
    let pk = users::user_pk(&caller.user_id);
    let sealed = |value: crate::crypto::Sealed| {
        serde_dynamo::to_attribute_value::<_, aws_sdk_dynamodb::types::AttributeValue>(value)
            .map_err(ApiError::internal)
    };
    let (mut set, mut remove) = (Vec::new(), Vec::new());
    let mut update = db
        .client()
        .update_item()
        .table_name(db.table())
        .set_key(Some(key(&pk, PROFILE_SK)))
        .condition_expression("attribute_exists(PK)")
        .return_values(ReturnValue::AllNew);
    if let Some(name) = &name {
        let at = UserRecord::location(db.table(), &pk, "name");
        set.push("#name = :name");
        update = update
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", sealed(app.crypto().seal_str(&at, name).await?)?);
    }
    match &phone {
        None => {}
        Some(None) => remove.extend(["phone", "phoneIndex"]),
        Some(Some(phone)) => {
            let at = UserRecord::location(db.table(), &pk, "phone");
            let index = app.blind_index().await?.of(blind_index::Kind::Phone, phone);
            set.extend(["phone = :phone", "phoneIndex = :phoneIndex"]);
            update = update
                .expression_attribute_values(
                    ":phone",
                    sealed(app.crypto().seal_str(&at, phone).await?)?,
                )
                .expression_attribute_values(":phoneIndex", s(index));
        }
    }
    let mut expression = String::new();
    if !set.is_empty() {
        expression = format!("SET {}", set.join(", "));
    }
    if !remove.is_empty() {
        expression = format!("{expression} REMOVE {}", remove.join(", "));
    }
    let updated = update
        .update_expression(expression.trim())
        .send()
        .await
        .map_err(StorageError::from_sdk);
    match updated {
        Ok(out) => {
            let user: UserRecord = from_item(out.attributes.unwrap_or_default())?;
            user.profile(app).await
        }
        Err(StorageError::ConditionFailed) => Err(account_gone()),
        Err(err) => Err(err.into()),
    }
}

/// The caller's account, or 404 `USER_NOT_FOUND` when it has been closed.
pub async fn account(app: &App, caller: &Caller) -> Result<UserRecord, ApiError> {
    users::find_by_id(&app.db, &caller.user_id)
        .await?
        .ok_or_else(account_gone)
}

/// Checks `password` against `user`'s, as a sign-in does and on the same attempt counter (a stolen
/// access token buys no guesses of its own): 429 once the window's attempts are spent, 403
/// `WRONG_PASSWORD` (recorded as a failed sign-in) when it is not the password. The address's
/// key, on success: what the account's e-mail claim is keyed by.
pub async fn check_password(
    app: &App,
    user: &UserRecord,
    password: &str,
    meta: &RequestMeta,
) -> Result<String, ApiError> {
    let db = &app.db;
    let email = app
        .crypto()
        .open_str(
            &UserRecord::location(db.table(), &user.pk, "email"),
            &user.email,
        )
        .await?;
    let email_key = users::email_key(app.blind_index().await?, &email);
    lockout::take_attempt(db, &email_key, jiff::Timestamp::now().as_second()).await?;
    if !password::verify(password, &user.password_hash) {
        let event = Event::user(
            EventType::UserSignInFailed,
            None,
            users::user_pk(&user.user_id),
            meta,
        );
        db.put(&OutboxItem::of(&event)?).await?;
        return Err(wrong_password());
    }
    lockout::clear(db, &email_key).await?;
    Ok(email_key)
}

/// Changes the caller's password: the current one checked as a sign-in checks it (after the new
/// one is checked as a sign-up checks it, so that a request that cannot succeed spends no attempt),
/// the new one's hash written with the `user.password_changed` event. Every session that began
/// before ends at its next refresh (`sessionsFrom`), the caller's own too: the answer is a new
/// session's tokens. Access tokens already issued run out within their 15 minutes.
pub async fn change_password(
    app: &App,
    caller: &Caller,
    input: ChangePasswordRequest,
    meta: &RequestMeta,
) -> Result<TokenPair, ApiError> {
    let user = account(app, caller).await?;
    password::check_strength(&input.new_password)?;
    if input.new_password == input.current_password {
        return Err(ApiError::validation(
            "newPassword",
            "is the current password",
        ));
    }
    check_password(app, &user, &input.current_password, meta).await?;
    let db = &app.db;
    let now = jiff::Timestamp::now();
    // Conditional on the hash just checked: of two changes at once, the second finds the password
    // no longer the one it was given.
    let update = Update::builder()
        .table_name(db.table())
        .set_key(Some(key(&user.pk, PROFILE_SK)))
        .update_expression("SET passwordHash = :new, sessionsFrom = :now")
        .condition_expression("passwordHash = :checked")
        .expression_attribute_values(":new", s(password::hash(&input.new_password)?))
        .expression_attribute_values(":now", s(now.to_string()))
        .expression_attribute_values(":checked", s(&user.password_hash))
        .build()
        .map_err(ApiError::internal)?;
    let event = holder_event(EventType::UserPasswordChanged, &user.user_id, meta);
    match db
        .transact(vec![
            TransactWriteItem::builder().update(update).build(),
            events::record(db, &event)?,
        ])
        .await
    {
        Ok(()) => {}
        Err(err) if err.condition_failed_at(0) => return Err(wrong_password()),
        Err(err) => return Err(err.into()),
    }
    // A session from the change's own instant on: the only one the account keeps.
    let session = sessions::new_session(&user.user_id, now, SignIn::of(meta));
    db.put_if_absent(&session).await?;
    let key = app.blind_index().await?.refresh_token_key();
    let refresh_token = RefreshToken::first(&session).to_text(key);
    token_pair(app, &user, &session.session_id, refresh_token).await
}

fn account_gone() -> ApiError {
    ApiError::not_found("USER_NOT_FOUND", "the account no longer exists")
}

/// An event its holder made of their own account (signed up, changed the password, closed it).
fn holder_event(kind: EventType, user_id: &str, meta: &RequestMeta) -> Event {
    Event::user(kind, Some(user_id), users::user_pk(user_id), meta)
}

fn wrong_password() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "WRONG_PASSWORD",
        "the password is wrong; the account is as it was",
    )
}

/// Deletes `user`'s account: its profile (the sealed address, name and phone, the password's hash)
/// and its address's claim, which lets the address sign up again, with the `user.deleted` event,
/// in one transaction. What the law keeps stays: the account's orders and payments (five years,
/// under its id), and the audit trail's records of its sign-ins. Its sessions end at their next
/// refresh, which finds no account; access tokens already issued run out within their 15 minutes.
pub async fn delete_account(
    app: &App,
    user: &UserRecord,
    email_key: &str,
    meta: &RequestMeta,
) -> Result<(), ApiError> {
    let db = &app.db;
    let profile = Delete::builder()
        .table_name(db.table())
        .set_key(Some(key(&user.pk, PROFILE_SK)))
        .condition_expression("attribute_exists(PK)")
        .build()
        .map_err(ApiError::internal)?;
    // Only this account's claim (an address another account holds is not ours to free), and none
    // at all is no reason to keep the account.
    let claim = Delete::builder()
        .table_name(db.table())
        .set_key(Some(key(email_key, users::EMAIL_SK)))
        .condition_expression("attribute_not_exists(PK) OR userId = :user")
        .expression_attribute_values(":user", s(&user.user_id))
        .build()
        .map_err(ApiError::internal)?;
    let event = holder_event(EventType::UserDeleted, &user.user_id, meta);
    match db
        .transact(vec![
            TransactWriteItem::builder().delete(profile).build(),
            TransactWriteItem::builder().delete(claim).build(),
            events::record(db, &event)?,
        ])
        .await
    {
        Ok(()) => Ok(()),
        // Closed meanwhile, by a twin of this request.
        Err(err) if err.condition_failed_at(0) => Err(account_gone()),
        Err(err) => Err(err.into()),
    }
}
