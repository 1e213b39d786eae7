//! The audit trail: every event becomes an append-only record of who did what to what, and when.
//!
//! Records live in monthly partitions, each month spread over [`MONTH_SHARDS`] keys by a hash of the
//! event id (`AUDIT#<yyyy-mm>#<n>` / `<time>#<eventId>`, by the event's UTC time): every event of
//! every store is audited, so one key per month would take the whole system's write rate, which no
//! DynamoDB partition sustains (1,000 WCU/s). A store's records are also on GSI1
//! (`AUDIT#STORE#<storeId>`), for its owner. They are kept
//! as Korean law asks of each kind — records of orders, payments and refunds five years (전자상거래법
//! §6), sign-in records one year (개인정보 안전성 확보조치 기준 §8; 400 days here) — in the monthly
//! archive: each month is archived to S3 as gzip-compressed JSON Lines, once, a day after it ends,
//! one object for each term ([`Kept`]), which the bucket's lifecycle rules expire at the end of
//! it: a sign-in's address is not kept five years because an order is. The table keeps a record only as long as the listings reach
//! back (`AUDIT_DAYS_IN_TABLE`, 400 days by default): five years of records there cost more than
//! the rest of an order's bill (docs/COST.md, "At rest"). A record written too late for its month's
//! archive keeps its whole term in the table instead.

use std::collections::HashMap;
use std::io::Write;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::ApiError;
use crate::events::{Event, EventActor};
use crate::orders::status::Status;
use crate::paging;
use crate::storage::{Item, StorageError, from_item, s, to_item};

/// Five years and a day for leap years.
pub const COMMERCE_RETENTION_SECONDS: i64 = (5 * 365 + 2) * 24 * 3600;
/// Sign-in records: at least a year; 400 days leaves a margin.
pub const SIGN_IN_RETENTION_SECONDS: i64 = 400 * 24 * 3600;

// What the law asks is the floor: a shorter retention must not compile.
const _: () = assert!(COMMERCE_RETENTION_SECONDS >= 5 * 365 * 24 * 3600);
const _: () = assert!(SIGN_IN_RETENTION_SECONDS >= 365 * 24 * 3600);

const DAY_SECONDS: i64 = 24 * 3600;

/// How long the law keeps a kind of record: in the table when the month's archive will not hold it,
/// and in the archive, whose objects are one per kind so that each expires with its own term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Orders, payments and refunds: five years (전자상거래법 §6).
    Commerce,
    /// Sign-ins, sign-outs and refused sign-ins (접속기록): a year (개인정보 안전성 확보조치 기준 §8).
    Access,
}

impl Kept {
    pub const ALL: [Kept; 2] = [Kept::Commerce, Kept::Access];

    /// The kind's whole term.
    pub const fn seconds(self) -> i64 {
        match self {
            Kept::Commerce => COMMERCE_RETENTION_SECONDS,
            Kept::Access => SIGN_IN_RETENTION_SECONDS,
        }
    }

    /// The archive's prefix for the kind: the bucket's lifecycle rule for it filters on this.
    pub const fn prefix(self) -> &'static str {
        match self {
            Kept::Commerce => "audit/",
            Kept::Access => "access/",
        }
    }

    /// Where a month's records of this kind are archived: date-partitioned, for Athena.
    pub fn archive_key(self, month: &str) -> String {
        let (year, mm) = month.split_at(4);
        let prefix = self.prefix();
        let name = prefix.trim_end_matches('/');
        format!(
            "{prefix}year={year}/month={}/{name}-{month}.jsonl.gz",
            &mm[1..]
        )
    }
}

/// A month is archived once this much of the next has passed, so that events recorded late (a
/// stream's retries, a day at most) are in it.
const ARCHIVED_AFTER_MONTH: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);
/// A record written by this long after its month ended is in the month's archive (half the wait
/// above: room for clocks and for a write still in flight as the archive reads); one written later
/// may not be, and keeps its whole term in the table.
const IN_ARCHIVE_IF_WRITTEN_BY: jiff::SignedDuration = jiff::SignedDuration::from_hours(12);

/// Keys a month's records are spread over: at 10,000 orders/s, each with about 7 audited events of
/// one write unit, 70,000 WCU/s over 128 keys is ~550 WCU/s on each, under a partition's 1,000.
pub const MONTH_SHARDS: u32 = 128;
/// How many of a month's keys one listing queries at a time.
const SHARD_QUERIES_AT_ONCE: usize = 16;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    // The event's id and time are the sort key's (`<time>#<eventId>`), and the store's id is the
    // GSI1 key's: not stored again (records written before 2026-12-07 carry `eventId`, `at` and
    // `storeId` too, which reading ignores).
    /// The event's type: `order.accepted`, `user.signed_in`, …
    pub action: String,
    pub actor: EventActor,
    /// What was acted on: `ORDER#<id>`, `USER#<id>`, `EMAIL#<blind index>`.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Status>,
    /// Money moved by the action (a refund), in KRW.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    pub expires_at: i64,
}

/// What a client sees of a record (no keys).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub event_id: String,
    pub action: String,
    pub actor: EventActor,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    pub at: String,
}

impl AuditRecord {
    /// `event`'s record, written at `written`, staying in the table `days_in_table` days when the
    /// month's archive will hold it (and never longer than its kind's term).
    pub fn of(
        event: &Event,
        written: jiff::Timestamp,
        days_in_table: i64,
    ) -> Result<Self, ApiError> {
        let at: jiff::Timestamp = event
            .at
            .parse()
            .map_err(|_| ApiError::validation("at", "not an RFC 3339 time"))?;
        let sort = format!("{at}#{}", event.event_id);
        let (target, store_id, before, after, amount, kept) = match (&event.order, &event.user) {
            (Some(order), _) => (
                format!("ORDER#{}", order.order_id),
                Some(order.store_id.clone()),
                order.from,
                Some(order.status),
                order.refund.as_ref().map(|r| r.amount),
                Kept::Commerce,
            ),
            (None, Some(user)) => (user.subject.clone(), None, None, None, None, Kept::Access),
            (None, None) => return Err(ApiError::validation("event", "neither order nor user")),
        };
        Ok(Self {
            pk: month_pk(
                &month_of(at),
                crate::storage::shard(&event.event_id, MONTH_SHARDS),
            ),
            gsi1pk: store_id.as_ref().map(|id| format!("AUDIT#STORE#{id}")),
            gsi1sk: store_id.as_ref().map(|_| sort.clone()),
            sk: sort,
            action: event.kind.name().to_owned(),
            actor: event.actor.clone(),
            target,
            before,
            after,
            amount,
            request_id: event.request_id.clone(),
            source_ip: event.user.as_ref().and_then(|u| u.source_ip.clone()),
            expires_at: at.as_second() + term_in_table(at, written, kept.seconds(), days_in_table),
        })
    }

    /// Its kind's term: a record of what was done to an order is kept as commerce; any other (a
    /// user's sign-in, sign-out, refused sign-in, password change, closing) as access.
    pub fn kept(&self) -> Kept {
        if self.target.starts_with("ORDER#") {
            Kept::Commerce
        } else {
            Kept::Access
        }
    }

    /// The event's time and id, from the sort key (`<time>#<eventId>`: a time has no `#`).
    fn time_and_event(&self) -> (&str, &str) {
        self.sk.split_once('#').unwrap_or((&self.sk, ""))
    }

    /// The store's id, from the GSI1 key (`AUDIT#STORE#<storeId>`): only order records have one.
    fn store_id(&self) -> Option<&str> {
        self.gsi1pk
            .as_deref()
            .and_then(|key| key.strip_prefix("AUDIT#STORE#"))
    }

    pub fn view(self) -> AuditView {
        let (at, event_id) = self.time_and_event();
        let (at, event_id) = (at.to_owned(), event_id.to_owned());
        AuditView {
            event_id,
            store_id: self.store_id().map(str::to_owned),
            action: self.action,
            actor: self.actor,
            target: self.target,
            before: self.before,
            after: self.after,
            amount: self.amount,
            request_id: self.request_id,
            source_ip: self.source_ip,
            at,
        }
    }
}

/// Seconds a record of an event at `at`, written at `written`, stays in the table: its kind's whole
/// `retention`, or `days_in_table` days when that is shorter and the month's archive will hold it.
fn term_in_table(
    at: jiff::Timestamp,
    written: jiff::Timestamp,
    retention: i64,
    days_in_table: i64,
) -> i64 {
    let archived = month_end(at.to_zoned(jiff::tz::TimeZone::UTC).date())
        .and_then(|end| end.checked_add(IN_ARCHIVE_IF_WRITTEN_BY).ok())
        .is_some_and(|by| written < by);
    if archived {
        retention.min(days_in_table * DAY_SECONDS)
    } else {
        retention
    }
}

/// The first instant after the UTC month of `day`.
fn month_end(day: jiff::civil::Date) -> Option<jiff::Timestamp> {
    let next = day
        .first_of_month()
        .checked_add(jiff::Span::new().months(1))
        .ok()?;
    Some(next.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp())
}

/// `yyyy-mm` of an instant, in UTC.
pub fn month_of(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m").to_string()
}

fn month_pk(month: &str, shard: u32) -> String {
    format!("AUDIT#{month}#{shard}")
}

/// A `yyyy-mm` month, checked: only as it is written back (a query's `+202-12` is ` 202-12`, which
/// `strptime` takes).
pub fn parse_month(month: &str) -> Result<jiff::civil::Date, ApiError> {
    jiff::civil::Date::strptime("%Y-%m-%d", format!("{month}-01"))
        .ok()
        .filter(|first| month.len() == 7 && first.strftime("%Y-%m").to_string() == month)
        .ok_or_else(|| ApiError::validation("month", "a month as YYYY-MM"))
}

/// The audit consumer's work for one event, written now: its record, to append. The key is the
/// event's, so appending twice is impossible (see [`crate::consumer::Effect::Append`]).
pub fn record_item(event: &Event, days_in_table: i64) -> Result<Item, ApiError> {
    Ok(to_item(&AuditRecord::of(
        event,
        jiff::Timestamp::now(),
        days_in_table,
    )?)?)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub records: Vec<AuditView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A store's trail, newest first (`GET /v1/stores/{storeId}/audit`; the caller is checked by the
/// route).
pub async fn for_store(
    app: &App,
    store_id: &str,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<AuditPage, ApiError> {
    let scope = format!("AUDITLIST#STORE#{store_id}");
    let (records, next_cursor) = page(
        app,
        &scope,
        Some("GSI1"),
        ("GSI1PK", format!("AUDIT#STORE#{store_id}")),
        limit,
        cursor,
    )
    .await?;
    Ok(AuditPage {
        records,
        month: None,
        next_cursor,
    })
}

/// Everything in one month, newest first (`GET /v1/admin/audit?month=…`).
///
/// The month's shards are queried side by side, each from the cursor's position down, and merged:
/// sort keys (`<time>#<eventId>`) are unique and ordered across shards, so the last one shown is
/// the whole cursor.
pub async fn for_month(
    app: &App,
    month: &str,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<AuditPage, ApiError> {
    use futures::{StreamExt, TryStreamExt};

    parse_month(month)?;
    let scope = format!("AUDITLIST#MONTH#{month}");
    let limit = paging::limit(limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let below = paging::open_cursor(app, &scope, cursor)
        .await?
        .map(|key| match key.get("SK") {
            Some(AttributeValue::S(sk)) => Ok(sk.clone()),
            _ => Err(ApiError::validation(
                "cursor",
                "not a cursor of this listing",
            )),
        })
        .transpose()?;
    let shards: Vec<(Vec<AuditRecord>, bool)> = futures::stream::iter(0..MONTH_SHARDS)
        .map(|shard| shard_page(app, month_pk(month, shard), below.as_deref(), limit))
        .buffer_unordered(SHARD_QUERIES_AT_ONCE)
        .try_collect()
        .await?;
    let more = shards.iter().any(|(_, more)| *more);
    let mut records: Vec<AuditRecord> = shards.into_iter().flat_map(|(r, _)| r).collect();
    records.sort_unstable_by(|a, b| b.sk.cmp(&a.sk));
    let more = more || records.len() > limit as usize;
    records.truncate(limit as usize);
    let last = records
        .last()
        .filter(|_| more)
        .map(|r| HashMap::from([("SK".to_owned(), AttributeValue::S(r.sk.clone()))]));
    let next_cursor = paging::seal_cursor(app, &scope, last).await?;
    Ok(AuditPage {
        records: records.into_iter().map(AuditRecord::view).collect(),
        month: Some(month.to_owned()),
        next_cursor,
    })
}

/// Up to `limit` records of one month shard below `below`, newest first, and whether it has more.
async fn shard_page(
    app: &App,
    pk: String,
    below: Option<&str>,
    limit: i32,
) -> Result<(Vec<AuditRecord>, bool), ApiError> {
    let query = app
        .db
        .client()
        .query()
        .table_name(app.db.table())
        .expression_attribute_values(":pk", s(pk))
        .scan_index_forward(false)
        .limit(limit);
    let query = match below {
        Some(below) => query
            .key_condition_expression("PK = :pk AND SK < :below")
            .expression_attribute_values(":below", s(below)),
        None => query.key_condition_expression("PK = :pk"),
    };
    let out = query.send().await.map_err(StorageError::from_sdk)?;
    let records = out
        .items
        .unwrap_or_default()
        .into_iter()
        .map(from_item::<AuditRecord>)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((records, out.last_evaluated_key.is_some()))
}

async fn page(
    app: &App,
    scope: &str,
    index: Option<&str>,
    (key, value): (&str, String),
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<(Vec<AuditView>, Option<String>), ApiError> {
    let limit = paging::limit(limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let start = paging::open_cursor(app, scope, cursor).await?;
    let out = app
        .db
        .client()
        .query()
        .table_name(app.db.table())
        .set_index_name(index.map(String::from))
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", key)
        .expression_attribute_values(":pk", s(value))
        .scan_index_forward(false)
        .limit(limit)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(StorageError::from_sdk)?;
    let records = out
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| from_item::<AuditRecord>(item).map(AuditRecord::view))
        .collect::<Result<Vec<_>, _>>()?;
    let next = paging::seal_cursor(app, scope, out.last_evaluated_key).await?;
    Ok((records, next))
}

/// `ARCHIVE#AUDIT` / `<month>`: the month's archive exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchiveRecord {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    key: String,
    records: u64,
    /// Absent from months archived before 2026-12-07, whose one object holds both kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_records: Option<u64>,
    archived_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Archived {
    pub month: String,
    /// The month's order records (kept five years): where, and how many.
    pub key: String,
    pub records: u64,
    /// The month's sign-in records (kept 400 days); none for a month archived before 2026-12-07,
    /// whose `key` holds both kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_records: Option<u64>,
    /// False when the month had been archived before: nothing was written.
    pub written: bool,
}

/// Archives `month` to `bucket` once: every record of the month, one JSON object a line (oldest
/// first within each of the month's shards, shard after shard: streamed, never held whole),
/// gzip-compressed, in one object for each kind's term ([`Kept::archive_key`]; both written, the
/// second perhaps empty). A month already archived is left as it is.
///
/// A month that is not yet due (see [`month_due`]) is refused: its archive would miss the records
/// still to come, which then leave the table unarchived.
pub async fn archive(app: &App, bucket: &str, month: &str) -> Result<Archived, ApiError> {
    if !is_due(parse_month(month)?, jiff::Timestamp::now()) {
        return Err(ApiError::validation(
            "month",
            "a month archived from the second day of the next (its late events recorded)",
        ));
    }
    let db = &app.db;
    if let Some(done) = db.get::<ArchiveRecord>("ARCHIVE#AUDIT", month).await? {
        return Ok(Archived {
            month: month.to_owned(),
            key: done.key,
            records: done.records,
            access_key: done.access_key,
            access_records: done.access_records,
            written: false,
        });
    }
    let [mut commerce, mut access] = Kept::ALL.map(|kept| MonthArchive::new(kept, month));
    for shard in 0..MONTH_SHARDS {
        let mut pages = db
            .client()
            .query()
            .table_name(db.table())
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(month_pk(month, shard)))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for item in page
                .map_err(StorageError::from_sdk)?
                .items
                .unwrap_or_default()
            {
                let record: AuditRecord = from_item(item)?;
                match record.kept() {
                    Kept::Commerce => commerce.append(record)?,
                    Kept::Access => access.append(record)?,
                }
            }
        }
    }
    let (key, records) = commerce.put(app, bucket).await?;
    let (access_key, access_records) = access.put(app, bucket).await?;
    // Written after the objects: a crash in between rewrites the same objects next time.
    let done = ArchiveRecord {
        pk: "ARCHIVE#AUDIT".to_owned(),
        sk: month.to_owned(),
        key: key.clone(),
        records,
        access_key: Some(access_key.clone()),
        access_records: Some(access_records),
        archived_at: jiff::Timestamp::now().to_string(),
    };
    match db.put_if_absent(&done).await {
        Ok(()) | Err(StorageError::ConditionFailed) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(Archived {
        month: month.to_owned(),
        key,
        records,
        access_key: Some(access_key),
        access_records: Some(access_records),
        written: true,
    })
}

/// One kind's records of a month, compressed as they are read.
struct MonthArchive {
    key: String,
    gzip: flate2::write::GzEncoder<Vec<u8>>,
    records: u64,
}

impl MonthArchive {
    fn new(kept: Kept, month: &str) -> Self {
        Self {
            key: kept.archive_key(month),
            gzip: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()),
            records: 0,
        }
    }

    fn append(&mut self, record: AuditRecord) -> Result<(), ApiError> {
        let line = serde_json::to_string(&record.view()).map_err(ApiError::internal)?;
        writeln!(self.gzip, "{line}").map_err(ApiError::internal)?;
        self.records += 1;
        Ok(())
    }

    /// Puts the object (the same key on a retry: the bucket keeps the last version); its key and
    /// how many records it holds.
    async fn put(self, app: &App, bucket: &str) -> Result<(String, u64), ApiError> {
        let body = self.gzip.finish().map_err(ApiError::internal)?;
        app.images()
            .client()
            .put_object()
            .bucket(bucket)
            .key(&self.key)
            .content_type("application/x-ndjson")
            .content_encoding("gzip")
            .body(body.into())
            .send()
            .await
            .map_err(|e| ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok((self.key, self.records))
    }
}

/// The month a scheduled run archives: the previous one, once a day of the new month has passed for
/// late events.
pub fn month_due(now: jiff::Timestamp) -> Option<String> {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let previous = today.first_of_month().yesterday().ok()?;
    is_due(previous, now).then(|| previous.strftime("%Y-%m").to_string())
}

/// Whether the month of `day` may be archived at `now`: a day after it ended.
fn is_due(day: jiff::civil::Date, now: jiff::Timestamp) -> bool {
    month_end(day)
        .and_then(|end| end.checked_add(ARCHIVED_AFTER_MONTH).ok())
        .is_some_and(|due| now >= due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ActorKind, EventType, OrderFacts, RefundFacts, UserFacts};

    /// A minute after [`order_event`]'s time.
    fn written() -> jiff::Timestamp {
        "2026-11-30T15:31:00Z".parse().unwrap()
    }

    fn order_event(kind: EventType) -> Event {
        Event {
            event_id: "ord_1.v3".into(),
            kind,
            version: 1,
            at: "2026-11-30T15:30:00Z".into(),
            actor: EventActor {
                kind: ActorKind::Store,
                id: Some("u-staff".into()),
            },
            request_id: Some("req-9".into()),
            trace_id: None,
            order: Some(OrderFacts {
                order_id: "ord_1".into(),
                store_id: "st_1".into(),
                customer_id: "u-c".into(),
                from: Some(Status::Paid),
                status: Status::Accepted,
                order_version: 3,
                total: 9000,
                order_name: "Latte".into(),
                created_at: "2026-11-30T15:00:00Z".into(),
                lines: vec![],
                eta_at: None,
                reason: None,
                refund: Some(RefundFacts {
                    refund_id: "r".into(),
                    amount: 1000,
                }),
            }),
            user: None,
            device: None,
        }
    }

    #[test]
    fn order_records_are_kept_five_years_in_their_utc_month_and_on_the_store() {
        let record =
            AuditRecord::of(&order_event(EventType::OrderAccepted), written(), 1827).unwrap();
        assert_eq!(
            record.pk,
            format!(
                "AUDIT#2026-11#{}",
                crate::storage::shard("ord_1.v3", MONTH_SHARDS)
            )
        );
        assert_eq!(record.sk, "2026-11-30T15:30:00Z#ord_1.v3");
        assert_eq!(record.gsi1pk.as_deref(), Some("AUDIT#STORE#st_1"));
        assert_eq!(record.target, "ORDER#ord_1");
        assert_eq!(
            (record.before, record.after),
            (Some(Status::Paid), Some(Status::Accepted))
        );
        assert_eq!(record.amount, Some(1000));
        assert_eq!(record.kept(), Kept::Commerce);
        let at: jiff::Timestamp = "2026-11-30T15:30:00Z".parse().unwrap();
        assert_eq!(
            record.expires_at - at.as_second(),
            COMMERCE_RETENTION_SECONDS
        );
    }

    #[test]
    fn a_record_stores_no_key_again_and_reads_back_whole() {
        let record =
            AuditRecord::of(&order_event(EventType::OrderAccepted), written(), 1827).unwrap();
        let item = crate::storage::to_item(&record).unwrap();
        for repeated in ["eventId", "at", "storeId"] {
            assert!(!item.contains_key(repeated), "{repeated} stored: {item:?}");
        }
        let view = from_item::<AuditRecord>(item).unwrap().view();
        assert_eq!(
            (
                view.event_id.as_str(),
                view.at.as_str(),
                view.store_id.as_deref()
            ),
            ("ord_1.v3", "2026-11-30T15:30:00Z", Some("st_1"))
        );
        // A record written before they were left out reads the same.
        let mut older = crate::storage::to_item(&record).unwrap();
        older.insert("eventId".into(), s("ord_1.v3"));
        older.insert("at".into(), s("2026-11-30T15:30:00Z"));
        older.insert("storeId".into(), s("st_1"));
        let old_view = from_item::<AuditRecord>(older).unwrap().view();
        assert_eq!(
            serde_json::to_value(&old_view).unwrap(),
            serde_json::to_value(&view).unwrap()
        );
        // A sign-in's record has no store.
        let mut event = order_event(EventType::UserSignedIn);
        event.order = None;
        event.user = Some(UserFacts {
            subject: "USER#u1".into(),
            source_ip: None,
        });
        let signed_in = AuditRecord::of(&event, written(), 1827).unwrap().view();
        assert_eq!(signed_in.store_id, None);
    }

    #[test]
    fn sign_in_records_are_kept_at_least_a_year_and_off_the_store() {
        let mut event = order_event(EventType::UserSignedIn);
        event.order = None;
        event.user = Some(UserFacts {
            subject: "USER#u1".into(),
            source_ip: Some("203.0.113.9".into()),
        });
        let record = AuditRecord::of(&event, written(), 1827).unwrap();
        assert_eq!(record.gsi1pk, None);
        assert_eq!(record.target, "USER#u1");
        assert_eq!(record.source_ip.as_deref(), Some("203.0.113.9"));
        // Archived apart from orders, so that its address goes after its own term.
        assert_eq!(record.kept(), Kept::Access);
        let at: jiff::Timestamp = "2026-11-30T15:30:00Z".parse().unwrap();
        assert_eq!(
            record.expires_at - at.as_second(),
            SIGN_IN_RETENTION_SECONDS
        );
    }

    #[test]
    fn records_leave_the_table_after_its_days_unless_written_too_late_for_the_archive() {
        let event = order_event(EventType::OrderAccepted);
        let at: jiff::Timestamp = event.at.parse().unwrap();
        let term = |written: &str, days: i64| {
            let record = AuditRecord::of(&event, written.parse().unwrap(), days).unwrap();
            record.expires_at - at.as_second()
        };
        // Written in the event's month, or on the next's first morning: the month's archive (from
        // the second day) holds it.
        assert_eq!(term("2026-11-30T15:31:00Z", 400), 400 * DAY_SECONDS);
        assert_eq!(term("2026-12-01T11:59:59Z", 90), 90 * DAY_SECONDS);
        // Later (a replayed window, a stream held back): its whole term, in the table.
        assert_eq!(
            term("2026-12-01T12:00:00Z", 400),
            COMMERCE_RETENTION_SECONDS
        );
        assert_eq!(term("2027-03-01T00:00:00Z", 90), COMMERCE_RETENTION_SECONDS);
        // Never past its kind's term: a sign-in's record stays 400 days at most.
        let mut signed_in = order_event(EventType::UserSignedIn);
        signed_in.order = None;
        signed_in.user = Some(UserFacts {
            subject: "USER#u1".into(),
            source_ip: None,
        });
        let record = AuditRecord::of(&signed_in, written(), 1827).unwrap();
        assert_eq!(
            record.expires_at - at.as_second(),
            SIGN_IN_RETENTION_SECONDS
        );
        let record = AuditRecord::of(&signed_in, written(), 90).unwrap();
        assert_eq!(record.expires_at - at.as_second(), 90 * DAY_SECONDS);
    }

    #[test]
    fn a_month_is_archived_only_once_it_is_over() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let november = parse_month("2026-11").unwrap();
        assert!(
            !is_due(november, at("2026-11-20T00:00:00Z")),
            "the month itself"
        );
        assert!(
            !is_due(november, at("2026-12-01T23:59:59Z")),
            "its late events"
        );
        assert!(is_due(november, at("2026-12-02T00:00:00Z")));
        assert!(is_due(november, at("2031-01-01T00:00:00Z")));
        let december = parse_month("2026-12").unwrap();
        assert!(!is_due(december, at("2026-12-31T00:00:00Z")));
        assert!(
            is_due(december, at("2027-01-02T00:00:00Z")),
            "into the next year"
        );
    }

    #[test]
    fn archives_are_date_partitioned_and_due_after_the_month() {
        assert_eq!(
            Kept::Commerce.archive_key("2026-11"),
            "audit/year=2026/month=11/audit-2026-11.jsonl.gz"
        );
        assert_eq!(
            Kept::Access.archive_key("2026-11"),
            "access/year=2026/month=11/access-2026-11.jsonl.gz"
        );
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(month_due(at("2026-12-01T12:00:00Z")), None);
        assert_eq!(
            month_due(at("2026-12-02T00:00:00Z")).as_deref(),
            Some("2026-11")
        );
        assert_eq!(
            month_due(at("2027-01-05T00:00:00Z")).as_deref(),
            Some("2026-12")
        );
        assert!(parse_month("2026-13").is_err());
        assert!(parse_month("2026-1").is_err());
        assert!(parse_month(" 202-12").is_err(), "a query's +202-12");
        assert!(parse_month("+202-12").is_err());
        assert!(parse_month("2026-02").is_ok());
    }
}
