//! Sales reports, fed by order events: per store and business day — the day in the store's time
//! zone — the paid orders and gross sales, refunds, lost sales (rejected, canceled, expired), orders
//! by hour, and per item the count and revenue.
//!
//! Counters are DynamoDB `ADD`s committed in one transaction with the event's audit record
//! ([`crate::recording`]), which only a first delivery can create: an event counts once however
//! often the stream delivers it. Items: `REPORT#<storeId>#<yyyy-mm-dd>` / `DAY` and
//! `… / ITEM#<itemId>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::counters::CounterUpdate;
use crate::error::ApiError;
use crate::events::{Event, EventType};
use crate::storage::{StorageError, from_item, s};
use crate::stores;

/// The longest range `top-items` sums over.
pub const MAX_RANGE_DAYS: i64 = 92;
pub const MAX_TOP_ITEMS: u32 = 50;

fn report_pk(store_id: &str, date: jiff::civil::Date) -> String {
    format!("REPORT#{store_id}#{date}")
}

/// The business day and hour of `at` in `zone`.
pub fn business_hour(at: jiff::Timestamp, zone: &str) -> Result<(jiff::civil::Date, i8), ApiError> {
    let zoned = at
        .in_tz(zone)
        .map_err(|_| ApiError::internal(format!("unknown time zone {zone}")))?;
    Ok((zoned.date(), zoned.hour()))
}

/// The counter updates one event makes, or none.
pub async fn counter_updates(app: &App, event: &Event) -> Result<Vec<CounterUpdate>, ApiError> {
    let Some(order) = &event.order else {
        return Ok(Vec::new());
    };
    let lost = match event.kind {
        EventType::OrderRejected => Some("Rejected"),
        EventType::OrderCanceled => Some("Canceled"),
        EventType::OrderExpired => Some("Expired"),
        _ => None,
    };
    if !matches!(event.kind, EventType::OrderPaid | EventType::OrderRefunded) && lost.is_none() {
        return Ok(Vec::new());
    }
    // Stores are never deleted, so this is an event made by hand (a sample, a replay into another
    // table): its counters could never be read (reports answer only a store's owner), and failing
    // would hold up the stream's audit trail and counters behind it until the record expired.
    let Some(store) = stores::find(&app.db, &order.store_id).await? else {
        tracing::warn!(store = %order.store_id, event = %event.event_id, "an event of a store that does not exist is not counted");
        return Ok(Vec::new());
    };
    let at: jiff::Timestamp = event
        .at
        .parse()
        .map_err(|_| ApiError::validation("at", "not an RFC 3339 time"))?;
    let (date, hour) = business_hour(at, &store.settings.time_zone)?;
    let pk = report_pk(&order.store_id, date);
    let day = CounterUpdate::new(&pk, "DAY")
        .set("storeId", s(&order.store_id))
        .set("date", s(date.to_string()));
    let updates = match (event.kind, lost) {
        (EventType::OrderPaid, _) => {
            let mut updates = vec![
                day.add("orders", 1)
                    .add("grossSales", order.total)
                    .add(format!("hour{hour:02}"), 1),
            ];
            // One update per item, however many lines carry it.
            let mut items: BTreeMap<&str, (&str, i64, i64)> = BTreeMap::new();
            for line in &order.lines {
                let entry = items.entry(&line.item_id).or_insert((&line.name, 0, 0));
                entry.1 += i64::from(line.quantity);
                entry.2 += line.amount;
            }
            for (item_id, (name, count, revenue)) in items {
                updates.push(
                    CounterUpdate::new(&pk, format!("ITEM#{item_id}"))
                        .set("itemId", s(item_id))
                        .set("name", s(name))
                        .add("count", count)
                        .add("revenue", revenue),
                );
            }
            updates
        }
        (EventType::OrderRefunded, _) => {
            let amount = order.refund.as_ref().map(|r| r.amount).unwrap_or(0);
            vec![day.add("refunds", amount).add("refundCount", 1)]
        }
        (_, Some(kind)) => vec![
            day.add(format!("lost{kind}Orders"), 1)
                .add(format!("lost{kind}Sales"), order.total),
        ],
        _ => Vec::new(),
    };
    Ok(updates)
}

/// `REPORT#…` / `DAY`, as stored: counters by attribute name; a counter never added to is zero.
#[derive(Debug, Clone, Default)]
struct DayRecord(crate::storage::Item);

impl DayRecord {
    fn get(&self, name: &str) -> i64 {
        self.0
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn count(&self, name: &str) -> u64 {
        u64::try_from(self.get(name)).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemRecord {
    item_id: String,
    name: String,
    count: u64,
    revenue: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Lost {
    pub orders: u64,
    pub amount: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LostSales {
    pub rejected: Lost,
    pub canceled: Lost,
    pub expired: Lost,
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemSales {
    pub item_id: String,
    pub name: String,
    pub count: u64,
    pub revenue: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DailyReport {
    pub store_id: String,
    pub date: String,
    pub time_zone: String,
    pub orders: u64,
    pub gross_sales: i64,
    pub refunds: i64,
    pub refund_count: u64,
    pub net_sales: i64,
    pub lost_sales: LostSales,
    /// Paid orders per hour of the business day, 0–23.
    pub orders_by_hour: Vec<u64>,
    /// By revenue, highest first.
    pub items: Vec<ItemSales>,
}

/// A `YYYY-MM-DD` date ([`stores::hours::calendar_date`]), refused naming `field`.
pub fn parse_date(field: &'static str, value: &str) -> Result<jiff::civil::Date, ApiError> {
    stores::hours::calendar_date(value)
        .ok_or_else(|| ApiError::validation(field, "a date as YYYY-MM-DD"))
}

/// `GET /v1/stores/{storeId}/reports/daily?date=…` (the caller is checked by the route).
pub async fn daily(
    app: &App,
    store_id: &str,
    date: jiff::civil::Date,
) -> Result<DailyReport, ApiError> {
    let store = stores::find(&app.db, store_id)
        .await?
        .ok_or_else(|| ApiError::not_found("STORE_NOT_FOUND", "no such store"))?;
    let (day, items) = read_day(app, store_id, date, false).await?;
    let orders_by_hour = (0..24).map(|h| day.count(&format!("hour{h:02}"))).collect();
    let lost = |kind: &str| Lost {
        orders: day.count(&format!("lost{kind}Orders")),
        amount: day.get(&format!("lost{kind}Sales")),
    };
    let (rejected, canceled, expired) = (lost("Rejected"), lost("Canceled"), lost("Expired"));
    let lost = LostSales {
        total: rejected.amount + canceled.amount + expired.amount,
        rejected,
        canceled,
        expired,
    };
    let (gross_sales, refunds) = (day.get("grossSales"), day.get("refunds"));
    Ok(DailyReport {
        store_id: store_id.to_owned(),
        date: date.to_string(),
        time_zone: store.settings.time_zone,
        orders: day.count("orders"),
        gross_sales,
        refunds,
        refund_count: day.count("refundCount"),
        net_sales: gross_sales - refunds,
        lost_sales: lost,
        orders_by_hour,
        items: ranked(items),
    })
}

/// The day's counters and item rows (`items_only`: just the items).
async fn read_day(
    app: &App,
    store_id: &str,
    date: jiff::civil::Date,
    items_only: bool,
) -> Result<(DayRecord, Vec<ItemSales>), ApiError> {
    let db = &app.db;
    let mut query = db
        .client()
        .query()
        .table_name(db.table())
        .expression_attribute_values(":pk", s(report_pk(store_id, date)));
    query = if items_only {
        query
            .key_condition_expression("PK = :pk AND begins_with(SK, :item)")
            .expression_attribute_values(":item", s("ITEM#"))
    } else {
        query.key_condition_expression("PK = :pk")
    };
    let mut pages = query.into_paginator().send();
    let (mut day, mut items) = (DayRecord::default(), Vec::new());
    while let Some(page) = pages.next().await {
        for item in page
            .map_err(StorageError::from_sdk)?
            .items
            .unwrap_or_default()
        {
            let is_day = item
                .get("SK")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk == "DAY");
            if is_day {
                day = DayRecord(item);
            } else {
                let row: ItemRecord = from_item(item)?;
                items.push(ItemSales {
                    item_id: row.item_id,
                    name: row.name,
                    count: row.count,
                    revenue: row.revenue,
                });
            }
        }
    }
    Ok((day, items))
}

/// By revenue, then count, then id: a stable order for equal sellers.
fn ranked(mut items: Vec<ItemSales>) -> Vec<ItemSales> {
    items.sort_by(|a, b| {
        b.revenue
            .cmp(&a.revenue)
            .then(b.count.cmp(&a.count))
            .then(a.item_id.cmp(&b.item_id))
    });
    items
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopItems {
    pub store_id: String,
    pub from: String,
    pub to: String,
    pub items: Vec<ItemSales>,
}

/// `GET /v1/stores/{storeId}/reports/top-items?from=…&to=…&limit=…`: the best sellers of a range of
/// business days (inclusive, at most [`MAX_RANGE_DAYS`]).
pub async fn top_items(
    app: &App,
    store_id: &str,
    from: jiff::civil::Date,
    to: jiff::civil::Date,
    limit: Option<u32>,
) -> Result<TopItems, ApiError> {
    let limit = crate::paging::limit(limit, 10, MAX_TOP_ITEMS)? as usize;
    let days = (to - from).get_days();
    if days < 0 {
        return Err(ApiError::validation("to", "on or after `from`"));
    }
    if i64::from(days) >= MAX_RANGE_DAYS {
        return Err(ApiError::validation(
            "to",
            format!("at most {MAX_RANGE_DAYS} days after `from`"),
        ));
    }
    let mut totals: BTreeMap<String, ItemSales> = BTreeMap::new();
    let mut date = from;
    while date <= to {
        let (_, items) = read_day(app, store_id, date, true).await?;
        for item in items {
            let total = totals.entry(item.item_id.clone()).or_insert(ItemSales {
                count: 0,
                revenue: 0,
                ..item.clone()
            });
            total.count += item.count;
            total.revenue += item.revenue;
            total.name = item.name;
        }
        date = date.tomorrow().map_err(ApiError::internal)?;
    }
    let mut items = ranked(totals.into_values().collect());
    items.truncate(limit);
    Ok(TopItems {
        store_id: store_id.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        items,
    })
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    pub month: String,
    pub url: String,
    pub expires_at: String,
    pub rows: usize,
}

/// How long an export's download link works.
pub const EXPORT_LINK_SECONDS: u64 = 15 * 60;

/// `POST /v1/stores/{storeId}/reports/export?month=…`: the month's daily figures as CSV in the
/// reports bucket, and a link to download it.
pub async fn export(
    app: &App,
    bucket: &str,
    store_id: &str,
    month: &str,
) -> Result<Export, ApiError> {
    let first = crate::audit::parse_month(month)?;
    let mut csv = String::from(
        "date,orders,gross_sales,refunds,net_sales,lost_rejected,lost_canceled,lost_expired,lost_sales\n",
    );
    let mut rows = 0;
    let mut date = first;
    while date.month() == first.month() {
        let report = daily(app, store_id, date).await?;
        let lost = &report.lost_sales;
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            report.date,
            report.orders,
            report.gross_sales,
            report.refunds,
            report.net_sales,
            lost.rejected.amount,
            lost.canceled.amount,
            lost.expired.amount,
            lost.total
        ));
        rows += 1;
        date = date.tomorrow().map_err(ApiError::internal)?;
    }
    let key = format!(
        "exports/{store_id}/sales-{month}-{}.csv",
        uuid::Uuid::new_v4().simple()
    );
    let s3 = app.images().client();
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("text/csv; charset=utf-8")
        .content_disposition(format!("attachment; filename=\"sales-{month}.csv\""))
        .body(csv.into_bytes().into())
        .send()
        .await
        .map_err(|e| ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let presigning = aws_sdk_s3::presigning::PresigningConfig::expires_in(
        std::time::Duration::from_secs(EXPORT_LINK_SECONDS),
    )
    .map_err(ApiError::internal)?;
    let request = s3
        .get_object()
        .bucket(bucket)
        .key(&key)
        .presigned(presigning)
        .await
        .map_err(|e| ApiError::internal(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let expires_at =
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(EXPORT_LINK_SECONDS as i64);
    Ok(Export {
        month: month.to_owned(),
        url: request.uri().to_owned(),
        expires_at: expires_at.to_string(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_taken_only_as_yyyy_mm_dd() {
        let date = parse_date("date", "2026-01-07").unwrap();
        assert_eq!(date, jiff::civil::date(2026, 1, 7));
        for refused in [
            "2026-1-7",
            "2026-01-7",
            "2026-02-30",
            "",
            " 2026-01-07",
            " 026-01-07",
            "+026-01-07",
            "+002026-01-07",
            "20260107",
            "2026/01/07",
        ] {
            let err = parse_date("date", refused).unwrap_err();
            assert_eq!(err.code, "VALIDATION_FAILED", "{refused:?}");
        }
    }

    #[test]
    fn the_business_day_turns_at_midnight_in_the_store_zone() {
        let before: jiff::Timestamp = "2026-11-25T14:59:59Z".parse().unwrap();
        let after: jiff::Timestamp = "2026-11-25T15:00:00Z".parse().unwrap();
        let seoul = "Asia/Seoul";
        assert_eq!(
            business_hour(before, seoul).unwrap(),
            (jiff::civil::date(2026, 11, 25), 23)
        );
        assert_eq!(
            business_hour(after, seoul).unwrap(),
            (jiff::civil::date(2026, 11, 26), 0)
        );
        assert!(business_hour(after, "Mars/Olympus").is_err());
    }

    #[test]
    fn ranking_is_by_revenue_then_count_then_id() {
        let item = |id: &str, count, revenue| ItemSales {
            item_id: id.into(),
            name: id.into(),
            count,
            revenue,
        };
        let ranked = ranked(vec![
            item("b", 1, 500),
            item("a", 1, 500),
            item("c", 3, 500),
            item("d", 1, 900),
        ]);
        let ids: Vec<&str> = ranked.iter().map(|i| i.item_id.as_str()).collect();
        assert_eq!(ids, vec!["d", "c", "a", "b"]);
    }
}
