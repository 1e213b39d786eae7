//! Stores: their settings, whether they are open, who owns them and who works there.
//!
//! Object-level authorization lives here, once: [`load_for`] answers 404 for a store that does not
//! exist and 403 for a caller who is neither its owner, its staff (where staff may act), nor an admin.

pub mod hours;
pub mod owners;
pub mod places;
pub mod staff;

use serde::{Deserialize, Serialize};

use self::hours::{ClosedReason, DateException, OpenStatus, Schedule, WeeklyHours};
pub use self::staff::{is_staff, staff_key};
use crate::app::App;
use crate::auth::Caller;
use crate::auth::users::user_pk;
use crate::crypto::blind_index::normalize_phone;
use crate::error::ApiError;
use crate::idempotency::{self, RequestDigest};
use crate::storage::{Db, StorageError, s};
use crate::text::{Lines, text};

pub const STORE_SK: &str = "STORE";
pub const DEFAULT_TIME_ZONE: &str = "Asia/Seoul";
/// Upper bound of any amount a store sets (KRW).
pub const MAX_AMOUNT: i64 = 10_000_000;

pub fn store_pk(store_id: &str) -> String {
    format!("STORE#{store_id}")
}

/// `USER#<ownerId>` / `OWNS#<storeId>`: the owner's side of a store, written with it, so that
/// `GET /v1/me/stores` finds the stores a user owns without scanning stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnsRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub store_id: String,
}

pub const OWNS_PREFIX: &str = "OWNS#";

/// The ids after `prefix` of the sort keys under `USER#<userId>` that begin with it (a user's side
/// of their stores: `OWNS#`, `STAFF_AT#`, `INVITED#`): the first `at_most`, or every one, page
/// after page; strongly consistent when what was just written must be seen.
pub(crate) async fn user_side_ids(
    db: &Db,
    user_id: &str,
    prefix: &str,
    at_most: Option<i32>,
    consistent: bool,
) -> Result<Vec<String>, StorageError> {
    let mut pages = db
        .client()
        .query()
        .table_name(db.table())
        .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
        .expression_attribute_values(":pk", s(user_pk(user_id)))
        .expression_attribute_values(":prefix", s(prefix))
        .projection_expression("SK")
        .set_limit(at_most)
        .consistent_read(consistent)
        .into_paginator()
        .send();
    let mut ids = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(StorageError::from_sdk)?;
        ids.extend(
            page.items
                .unwrap_or_default()
                .iter()
                .filter_map(|item| item.get("SK")?.as_s().ok()?.strip_prefix(prefix))
                .map(str::to_owned),
        );
        if at_most.is_some_and(|n| ids.len() >= n as usize) {
            break;
        }
    }
    Ok(ids)
}

/// `STORE#<storeId>` / `STORE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub store_id: String,
    pub owner_id: String,
    #[serde(flatten)]
    pub settings: StoreSettings,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped by every change; changes are conditional on it.
    pub version: u64,
    /// The request that opened it, when it came with an `Idempotency-Key` (which then names the
    /// store: [`store_id_for`]); a retry with another body is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestDigest>,
}

/// What an owner sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreSettings {
    pub name: String,
    pub phone: String,
    pub address: String,
    pub time_zone: String,
    pub weekly_hours: WeeklyHours,
    pub exceptions: Vec<DateException>,
    /// The open/closed switch: off, no orders whatever the hours say.
    pub accepting_orders: bool,
    pub prep_minutes: u32,
    /// KRW; orders below it are refused.
    pub min_order_amount: i64,
    /// Orders waiting (paid, not yet ready) at most; more are refused.
    pub max_queued_orders: u32,
}

/// `POST /v1/stores`. Everything but name, phone and address has a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateStore {
    pub name: String,
    pub phone: String,
    pub address: String,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub weekly_hours: WeeklyHours,
    #[serde(default)]
    pub exceptions: Vec<DateException>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub accepting_orders: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub prep_minutes: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub min_order_amount: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub max_queued_orders: Option<u32>,
}

/// `PATCH /v1/stores/{storeId}`: any subset of the settings, nothing else (owner, ids and version
/// are not the client's to set).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchStore {
    #[serde(default, deserialize_with = "crate::http::present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub address: Option<String>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub time_zone: Option<String>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub weekly_hours: Option<hours::WeeklyHoursPatch>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub exceptions: Option<Vec<DateException>>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub accepting_orders: Option<bool>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub prep_minutes: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub min_order_amount: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::present")]
    pub max_queued_orders: Option<u32>,
}

/// What clients see of a store.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreView {
    pub store_id: String,
    pub owner_id: String,
    #[serde(flatten)]
    pub settings: StoreSettings,
    pub status: OpenStatus,
    pub updated_at: String,
}

impl StoreRecord {
    pub fn status_at(&self, now: jiff::Timestamp) -> OpenStatus {
        // The zone was validated on the way in; a zone that has since vanished from the database
        // reads as UTC rather than failing the request.
        let zone =
            jiff::tz::TimeZone::get(&self.settings.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let schedule = Schedule {
            weekly: &self.settings.weekly_hours,
            exceptions: &self.settings.exceptions,
            accepting_orders: self.settings.accepting_orders,
        };
        schedule.status_at(&now.to_zoned(zone))
    }

    pub fn view(&self) -> StoreView {
        StoreView {
            store_id: self.store_id.clone(),
            owner_id: self.owner_id.clone(),
            settings: self.settings.clone(),
            status: self.status_at(jiff::Timestamp::now()),
            updated_at: self.updated_at.clone(),
        }
    }
}

impl StoreSettings {
    /// Why the store takes no orders, in words for the customer (`status`: [`StoreRecord::status_at`]'s,
    /// closed). The store's own `status.reason` is the code; this is the sentence.
    pub fn why_closed(&self, status: OpenStatus) -> &'static str {
        match status.reason {
            Some(ClosedReason::ClosedByStore) => "it has switched ordering off",
            Some(ClosedReason::ClosedToday) => "it is closed today",
            // A new store has none until its owner sets them.
            _ if self.weekly_hours == WeeklyHours::default() && self.exceptions.is_empty() => {
                "it has no opening hours set"
            }
            _ => "it is outside its opening hours",
        }
    }

    /// Checks and normalises every setting; errors name the field.
    fn validated(mut self) -> Result<Self, ApiError> {
        self.name = text("name", &self.name, 1..=100, Lines::One)?;
        self.address = text("address", &self.address, 1..=300, Lines::One)?;
        self.phone = normalize_phone(&self.phone)
            .ok_or_else(|| ApiError::validation("phone", "not a phone number"))?;
        // Kept as the time zone database spells it (`asia/seoul` is found, and stored `Asia/Seoul`).
        self.time_zone = jiff::tz::TimeZone::get(&self.time_zone)
            .ok()
            .and_then(|zone| zone.iana_name().map(str::to_owned))
            .ok_or_else(|| {
                ApiError::validation("timeZone", "not an IANA time zone, e.g. Asia/Seoul")
            })?;
        hours::validate(&self.weekly_hours, &self.exceptions)?;
        if !(1..=240).contains(&self.prep_minutes) {
            return Err(ApiError::validation("prepMinutes", "between 1 and 240"));
        }
        if !(0..=MAX_AMOUNT).contains(&self.min_order_amount) {
            return Err(ApiError::validation(
                "minOrderAmount",
                "between 0 and 10,000,000 KRW",
            ));
        }
        if !(1..=500).contains(&self.max_queued_orders) {
            return Err(ApiError::validation("maxQueuedOrders", "between 1 and 500"));
        }
        Ok(self)
    }

    /// The settings after `patch`, checked: all of them, and the hours it sends for overlaps.
    fn patched_checked(self, patch: PatchStore) -> Result<Self, ApiError> {
        let days_sent = patch
            .weekly_hours
            .as_ref()
            .map(hours::WeeklyHoursPatch::days_sent);
        let exceptions_sent = patch.exceptions.is_some();
        let patched = self.patched(patch);
        hours::check_new(
            days_sent.map(|sent| (&patched.weekly_hours, sent)),
            exceptions_sent.then_some(patched.exceptions.as_slice()),
        )?;
        patched.validated()
    }

    fn patched(mut self, patch: PatchStore) -> Self {
        let PatchStore {
            name,
            phone,
            address,
            time_zone,
            weekly_hours,
            exceptions,
            accepting_orders,
            prep_minutes,
            min_order_amount,
            max_queued_orders,
        } = patch;
        self.name = name.unwrap_or(self.name);
        self.phone = phone.unwrap_or(self.phone);
        self.address = address.unwrap_or(self.address);
        self.time_zone = time_zone.unwrap_or(self.time_zone);
        if let Some(days) = weekly_hours {
            self.weekly_hours = days.applied_to(self.weekly_hours);
        }
        self.exceptions = exceptions.unwrap_or(self.exceptions);
        self.accepting_orders = accepting_orders.unwrap_or(self.accepting_orders);
        self.prep_minutes = prep_minutes.unwrap_or(self.prep_minutes);
        self.min_order_amount = min_order_amount.unwrap_or(self.min_order_amount);
        self.max_queued_orders = max_queued_orders.unwrap_or(self.max_queued_orders);
        self
    }
}

/// Who may act on a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Its owner (or an admin): settings, prices, staff.
    Owner,
    /// Its owner, its staff, or an admin: availability, the order queue.
    Member,
}

pub async fn find(db: &Db, store_id: &str) -> Result<Option<StoreRecord>, StorageError> {
    db.get(store_pk(store_id), STORE_SK).await
}

fn not_found() -> ApiError {
    ApiError::not_found("STORE_NOT_FOUND", "no such store")
}

/// How a caller may act on a store, the first that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Admin,
    Owner,
    Staff,
}

/// What an access check reads of a store: its owner, not its settings, hours and exceptions.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoreOwner {
    owner_id: String,
}

/// How `caller` stands towards a store owned by `owner_id`, for `access`; 403 if not at all.
async fn standing(
    app: &App,
    store_id: &str,
    owner_id: &str,
    caller: &Caller,
    access: Access,
) -> Result<Standing, ApiError> {
    if caller.is_admin() {
        Ok(Standing::Admin)
    } else if caller.user_id == owner_id {
        Ok(Standing::Owner)
    } else if access == Access::Member && is_staff(&app.db, store_id, &caller.user_id).await? {
        Ok(Standing::Staff)
    } else {
        Err(ApiError::forbidden("this store is not yours"))
    }
}

/// The store, if `caller` may act on it with `access`: 404 if there is none, 403 if not theirs.
pub async fn load_for(
    app: &App,
    store_id: &str,
    caller: &Caller,
    access: Access,
) -> Result<StoreRecord, ApiError> {
    let store = find(&app.db, store_id).await?.ok_or_else(not_found)?;
    app.store_owners.remember(store_id, &store.owner_id);
    standing(app, store_id, &store.owner_id, caller, access).await?;
    Ok(store)
}

/// [`load_for`]'s check alone, for callers that do not need the store: it needs only the store's
/// owner, which the instance remembers once read ([`owners`]: it never changes), so an owner's or
/// an admin's check reads nothing after the first, and a staff member's reads their staff record.
pub async fn check_access(
    app: &App,
    store_id: &str,
    caller: &Caller,
    access: Access,
) -> Result<Standing, ApiError> {
    let owner_id = match app.store_owners.get(store_id) {
        Some(owner_id) => owner_id,
        None => {
            let store: StoreOwner = app
                .db
                .get_projected(store_pk(store_id), STORE_SK, "ownerId")
                .await?
                .ok_or_else(not_found)?;
            app.store_owners.remember(store_id, &store.owner_id);
            store.owner_id
        }
    };
    standing(app, store_id, &owner_id, caller, access).await
}

pub async fn get(app: &App, store_id: &str) -> Result<StoreView, ApiError> {
    Ok(find(&app.db, store_id).await?.ok_or_else(not_found)?.view())
}

/// The id of the store an owner's `Idempotency-Key` opens ([`crate::idempotency`]): a retry meets
/// the store it opened, however long after.
pub fn store_id_for(owner_id: &str, idempotency_key: &str) -> String {
    idempotency::id_for(&["stores.create", owner_id, idempotency_key], 32)
}

/// A `POST /v1/stores` request: its settings, and the `Idempotency-Key` it came with, if any.
pub struct Opening<'a> {
    pub input: CreateStore,
    /// The key and the raw body it was sent with.
    pub idempotency: Option<(&'a str, &'a [u8])>,
}

/// `POST /v1/stores`. With an `Idempotency-Key`, the key names the store: a request sent again
/// (its answer lost, say) is answered with the store it opened, as it stands, and opens no second
/// one; the same key with another body is refused. Without one, every request opens a store.
pub async fn create(
    app: &App,
    caller: &Caller,
    opening: Opening<'_>,
) -> Result<StoreView, ApiError> {
    let (store_id, request) = match opening.idempotency {
        Some((key, body)) => {
            idempotency::validate_key(key)?;
            let store_id = store_id_for(&caller.user_id, key);
            let request = RequestDigest::of(body);
            if let Some(opened) = find(&app.db, &store_id).await? {
                return again(opened, request);
            }
            (store_id, Some(request))
        }
        None => (uuid::Uuid::new_v4().simple().to_string(), None),
    };
    let input = opening.input;
    let settings = StoreSettings {
        name: input.name,
        phone: input.phone,
        address: input.address,
        time_zone: input
            .time_zone
            .unwrap_or_else(|| DEFAULT_TIME_ZONE.to_owned()),
        weekly_hours: input.weekly_hours,
        exceptions: input.exceptions,
        accepting_orders: input.accepting_orders.unwrap_or(true),
        prep_minutes: input.prep_minutes.unwrap_or(15),
        min_order_amount: input.min_order_amount.unwrap_or(0),
        max_queued_orders: input.max_queued_orders.unwrap_or(30),
    };
    hours::check_new(
        Some((&settings.weekly_hours, hours::EVERY_DAY)),
        Some(&settings.exceptions),
    )?;
    let settings = settings.validated()?;
    // Counted only for a store about to be opened (a retry of one opened is answered above), and
    // under its id: twins under one key that both got here count once.
    crate::limits::take_for(
        app,
        crate::limits::Limit::StoresPerOwner,
        &caller.user_id,
        &store_id,
    )
    .await?;
    let now = jiff::Timestamp::now().to_string();
    let store = StoreRecord {
        pk: store_pk(&store_id),
        sk: STORE_SK.to_owned(),
        store_id: store_id.clone(),
        owner_id: caller.user_id.clone(),
        settings,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
        request,
    };
    let db = &app.db;
    let owns = OwnsRecord {
        pk: crate::auth::users::user_pk(&caller.user_id),
        sk: format!("{OWNS_PREFIX}{store_id}"),
        store_id: store_id.clone(),
    };
    let opened = db
        .transact(vec![
            db.put_new(&store)?,
            db.put_new(&crate::menus::MenuRecord::empty(&store_id))?,
            db.put_new(&owns)?,
        ])
        .await;
    match (opened, request) {
        (Ok(()), _) => Ok(store.view()),
        // A request with this key got there first, or is writing it now.
        (Err(err @ StorageError::TransactionCanceled(_)), Some(request)) => {
            match find(db, &store_id).await? {
                Some(opened) => again(opened, request),
                None => Err(err.into()),
            }
        }
        (Err(err), _) => Err(err.into()),
    }
}

/// The answer to a key used before: its store as it stands, if this is the request that opened it.
fn again(opened: StoreRecord, request: RequestDigest) -> Result<StoreView, ApiError> {
    request.check_same(opened.request)?;
    Ok(opened.view())
}

pub async fn patch(
    app: &App,
    caller: &Caller,
    store_id: &str,
    patch: PatchStore,
) -> Result<StoreView, ApiError> {
    let store = load_for(app, store_id, caller, Access::Owner).await?;
    let updated = StoreRecord {
        settings: store.settings.clone().patched_checked(patch)?,
        updated_at: jiff::Timestamp::now().to_string(),
        version: store.version + 1,
        ..store.clone()
    };
    match app.db.put_if_version(&updated, store.version).await {
        Ok(()) => Ok(updated.view()),
        Err(StorageError::ConditionFailed) => Err(ApiError::conflict(
            "STORE_CHANGED",
            "the store changed while you edited it; reload and retry",
        )),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> StoreSettings {
        StoreSettings {
            name: " 김밥천국 ".into(),
            phone: "02-123-4567".into(),
            address: "서울 종로구 1".into(),
            time_zone: DEFAULT_TIME_ZONE.into(),
            weekly_hours: WeeklyHours::default(),
            exceptions: vec![],
            accepting_orders: true,
            prep_minutes: 15,
            min_order_amount: 0,
            max_queued_orders: 30,
        }
    }

    #[test]
    fn settings_are_normalised_and_checked_field_by_field() {
        let ok = settings().validated().unwrap();
        assert_eq!(ok.name, "김밥천국");
        assert_eq!(ok.phone, "021234567");
        let lower = StoreSettings {
            time_zone: "asia/seoul".into(),
            ..settings()
        };
        assert_eq!(lower.validated().unwrap().time_zone, "Asia/Seoul");
        type Breaker = fn(&mut StoreSettings);
        let cases: [(Breaker, &str); 6] = [
            (|s| s.name = " ".into(), "name"),
            (|s| s.phone = "call us".into(), "phone"),
            (|s| s.time_zone = "Mars/Olympus".into(), "timeZone"),
            (|s| s.prep_minutes = 0, "prepMinutes"),
            (|s| s.min_order_amount = -1, "minOrderAmount"),
            (|s| s.max_queued_orders = 0, "maxQueuedOrders"),
        ];
        for (break_it, field) in cases {
            let mut s = settings();
            break_it(&mut s);
            let err = s.validated().unwrap_err();
            assert_eq!(err.status.as_u16(), 422);
            assert!(err.message.starts_with(field), "{field}: {}", err.message);
        }
    }

    #[test]
    fn hours_saved_overlapping_do_not_hold_back_another_change() {
        let t = |h| jiff::civil::time(h, 0, 0, 0);
        let overlapping = WeeklyHours {
            mon: vec![
                hours::Interval {
                    open: t(9),
                    close: t(14),
                },
                hours::Interval {
                    open: t(12),
                    close: t(18),
                },
            ],
            ..WeeklyHours::default()
        };
        let saved = StoreSettings {
            weekly_hours: overlapping.clone(),
            ..settings()
        };
        let closed = saved
            .clone()
            .patched_checked(PatchStore {
                accepting_orders: Some(false),
                ..Default::default()
            })
            .unwrap();
        assert!(!closed.accepting_orders);
        let err = saved
            .patched_checked(PatchStore {
                weekly_hours: Some(hours::WeeklyHoursPatch {
                    mon: Some(overlapping.mon),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            err.message.starts_with("weeklyHours.mon[1]: overlaps"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_closed_store_says_why_in_words() {
        let closed = |reason| OpenStatus {
            open: false,
            reason: Some(reason),
        };
        let t = |h| jiff::civil::time(h, 0, 0, 0);
        let with_hours = StoreSettings {
            weekly_hours: WeeklyHours {
                mon: vec![hours::Interval {
                    open: t(9),
                    close: t(18),
                }],
                ..WeeklyHours::default()
            },
            ..settings()
        };
        for (s, reason, words) in [
            (
                settings(),
                ClosedReason::ClosedByStore,
                "it has switched ordering off",
            ),
            (settings(), ClosedReason::ClosedToday, "it is closed today"),
            (
                settings(),
                ClosedReason::OutsideHours,
                "it has no opening hours set",
            ),
            (
                with_hours,
                ClosedReason::OutsideHours,
                "it is outside its opening hours",
            ),
        ] {
            assert_eq!(s.why_closed(closed(reason)), words);
        }
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let patched = settings().patched(PatchStore {
            accepting_orders: Some(false),
            prep_minutes: Some(25),
            ..Default::default()
        });
        assert!(!patched.accepting_orders);
        assert_eq!(patched.prep_minutes, 25);
        assert_eq!(patched.name, settings().name);
    }

    #[test]
    fn a_patch_of_some_days_keeps_the_others_and_is_checked_against_them() {
        let t = |h| jiff::civil::time(h, 0, 0, 0);
        let iv = |open, close| hours::Interval {
            open: t(open),
            close: t(close),
        };
        let saved = StoreSettings {
            weekly_hours: WeeklyHours {
                mon: vec![iv(9, 18)],
                tue: vec![iv(9, 18)],
                fri: vec![iv(18, 2)],
                ..WeeklyHours::default()
            },
            ..settings()
        };
        let patched = saved
            .clone()
            .patched_checked(PatchStore {
                weekly_hours: Some(hours::WeeklyHoursPatch {
                    tue: Some(vec![]),
                    wed: Some(vec![iv(10, 20)]),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            patched.weekly_hours,
            WeeklyHours {
                mon: vec![iv(9, 18)],
                wed: vec![iv(10, 20)],
                fri: vec![iv(18, 2)],
                ..WeeklyHours::default()
            }
        );
        // Saturday alone, against the Friday night it keeps.
        let err = saved
            .patched_checked(PatchStore {
                weekly_hours: Some(hours::WeeklyHoursPatch {
                    sat: Some(vec![iv(1, 10)]),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            err.message,
            "weeklyHours.sat[0]: overlaps fri's interval 18:00–02:00, which runs past midnight"
        );
    }
}
