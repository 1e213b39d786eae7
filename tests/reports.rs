//! The audit trail and sales reports, fed by real events through the local stack's queues: counted
//! once however often delivered, equal to what was sold, readable only by those allowed.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{Stack, StatusCode};
use serde_json::{Value, json};

fn latte(quantity: u32) -> Value {
    json!({"itemId": "latte", "quantity": quantity, "options": []})
}

fn kimbap(size: &str) -> Value {
    json!({"itemId": "kimbap", "quantity": 1,
           "options": [{"groupId": "size", "valueIds": [size]}, {"groupId": "toppings", "valueIds": []}]})
}

/// A placed order: (id, total, lines as (itemId, quantity, lineTotal)).
async fn place(
    stack: &Stack,
    customer: &str,
    store: &str,
    items: Value,
) -> (String, i64, Vec<(String, u64, i64)>) {
    let reply = stack
        .order(
            customer,
            &json!({"storeId": store, "items": items, "fulfilment": {"type": "PICKUP"}, "phone": "010-1111-2222"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let lines = reply.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["itemId"].as_str().unwrap().to_owned(),
                l["quantity"].as_u64().unwrap(),
                l["lineTotal"].as_i64().unwrap(),
            )
        })
        .collect();
    (
        reply.body["orderId"].as_str().unwrap().to_owned(),
        reply.body["total"].as_i64().unwrap(),
        lines,
    )
}

async fn pay(stack: &Stack, customer: &str, order: &str, total: i64) {
    let reply = stack
        .post(
            "/v1/payments/confirm",
            &json!({"orderId": order, "paymentKey": format!("tpk_{order}"), "amount": total}),
            Some(customer),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

async fn report(stack: &Stack, token: &str, store: &str, date: &str) -> Value {
    let reply = stack
        .get(
            &format!("/v1/stores/{store}/reports/daily?date={date}"),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

/// The report once `ready` holds of it (the consumers run a moment after the API answers).
async fn settled_report(
    stack: &Stack,
    token: &str,
    store: &str,
    date: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = report(stack, token, store, date).await;
        if ready(&body) || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn seoul_today() -> String {
    jiff::Timestamp::now()
        .in_tz("Asia/Seoul")
        .unwrap()
        .date()
        .to_string()
}

/// `events` delivered (again) to the recording consumer, as the table's stream delivers an outbox
/// item.
async fn redeliver(stack: &Stack, events: &[Value]) {
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let keys = json!({"PK": {"S": format!("EVENT#{}", event["eventId"].as_str().unwrap())},
                "SK": {"S": "EVENT"}});
            let mut image = keys.clone();
            image["entity"] = json!({"S": "EVENT"});
            image["eventType"] = json!({"S": event["type"]});
            image["eventId"] = json!({"S": event["eventId"]});
            image["body"] = json!({"S": event.to_string()});
            image["expiresAt"] = json!({"N": "1"});
            json!({"eventID": i.to_string(), "eventName": "INSERT", "eventSource": "aws:dynamodb",
                "awsRegion": "ap-northeast-2",
                "dynamodb": {"SequenceNumber": i.to_string(), "SizeBytes": 1,
                    "StreamViewType": "NEW_AND_OLD_IMAGES", "ApproximateCreationDateTime": 1.7e9,
                    "Keys": keys, "NewImage": image}})
        })
        .collect();
    let answer = stack
        .invoke("EventsRecordFunction", &json!({"Records": records}))
        .await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
}

async fn audit_records(stack: &Stack) -> usize {
    stack
        .scan()
        .await
        .iter()
        .filter(|i| i["PK"].as_s().unwrap().starts_with("AUDIT#"))
        .count()
}

#[tokio::test]
async fn a_day_of_sales_is_what_was_sold_counted_once() {
    let stack = Stack::start();
    e2e::clear_of_seoul_midnight().await;
    let (store, owner, staff, customer) = stack.staffed_store("rep").await;
    let today = seoul_today();

    // The day: three paid orders, one of them rejected (refunded in full), one refunded in part;
    // one order abandoned unpaid.
    let mut truth_items: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let (mut orders, mut gross) = (0, 0);
    let mut paid = Vec::new();
    for items in [
        json!([latte(2)]),
        json!([kimbap("large"), latte(1)]),
        json!([kimbap("regular")]),
    ] {
        let (order, total, lines) = place(&stack, &customer, &store, items).await;
        pay(&stack, &customer, &order, total).await;
        orders += 1;
        gross += total;
        for (item, quantity, amount) in lines {
            let entry = truth_items.entry(item).or_default();
            entry.0 += quantity;
            entry.1 += amount;
        }
        paid.push((order, total));
    }
    // Each order's `order.paid`, read while it is each order's latest move.
    let mut again = stack.events_of("order.paid").await;
    assert_eq!(again.len(), 3);
    let (rejected, rejected_total) = paid[2].clone();
    let moved = stack
        .post(
            &format!("/v1/orders/{rejected}/status"),
            &json!({"to": "REJECTED", "reason": "TOO_BUSY"}),
            Some(&staff),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    let partial = stack
        .send(
            stack
                .http()
                .post(stack.url(&format!("/v1/orders/{}/refunds", paid[0].0)))
                .bearer_auth(&owner)
                .header("idempotency-key", "refund-rep-1")
                .json(&json!({"amount": 1000, "reason": "cold latte"})),
        )
        .await;
    assert_eq!(partial.status, StatusCode::CREATED, "{:?}", partial.body);
    let (abandoned, abandoned_total, _) = place(&stack, &customer, &store, json!([latte(1)])).await;
    let canceled = stack
        .post(
            &format!("/v1/orders/{abandoned}/status"),
            &json!({"to": "CANCELED"}),
            Some(&customer),
        )
        .await;
    assert_eq!(canceled.status, StatusCode::OK, "{:?}", canceled.body);
    let refunds = rejected_total + 1000;

    let day = settled_report(&stack, &staff, &store, &today, |r| {
        r["refundCount"] == 2 && r["lostSales"]["canceled"]["orders"] == 1
    })
    .await;
    let check = |day: &Value| {
        assert_eq!(day["timeZone"], "Asia/Seoul");
        assert_eq!(day["orders"], orders, "{day}");
        assert_eq!(day["grossSales"], gross);
        assert_eq!(day["refunds"], refunds);
        assert_eq!(day["refundCount"], 2);
        assert_eq!(day["netSales"], gross - refunds);
        assert_eq!(
            day["lostSales"]["rejected"],
            json!({"orders": 1, "amount": rejected_total})
        );
        assert_eq!(
            day["lostSales"]["canceled"],
            json!({"orders": 1, "amount": abandoned_total})
        );
        assert_eq!(day["lostSales"]["total"], rejected_total + abandoned_total);
        let by_hour: Vec<u64> = day["ordersByHour"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_u64().unwrap())
            .collect();
        assert_eq!(by_hour.len(), 24);
        assert_eq!(by_hour.iter().sum::<u64>(), orders);
        assert_eq!(day_figures(day).3, truth_items);
    };
    check(&day);

    // Every event of the day delivered again: nothing counts twice, no audit record is appended twice.
    for kind in ["order.refunded", "order.rejected", "order.canceled"] {
        again.extend(stack.events_of(kind).await);
    }
    assert!(again.len() >= 6);
    let audit_before = audit_records(&stack).await;
    redeliver(&stack, &again).await;
    let wanted = format!("\"MessagesDuplicate\":{}", again.len());
    let mut duplicates = 0.0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while duplicates < again.len() as f64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        duplicates = e2e::metric_sum(&stack.logs(), "EventsRecordFunction", "MessagesDuplicate");
    }
    assert!(duplicates >= again.len() as f64, "{wanted}: {duplicates}");
    check(&report(&stack, &staff, &store, &today).await);
    assert_eq!(
        audit_records(&stack).await,
        audit_before,
        "an audit record was appended twice"
    );

    // Top items of the day, ranked by revenue, as the ground truth ranks them.
    let mut ranking: Vec<(String, (u64, i64))> = truth_items.into_iter().collect();
    ranking.sort_by(|a, b| {
        b.1.1
            .cmp(&a.1.1)
            .then(b.1.0.cmp(&a.1.0))
            .then(a.0.cmp(&b.0))
    });
    let top = stack
        .get(
            &format!("/v1/stores/{store}/reports/top-items?from={today}&to={today}&limit=1"),
            Some(&staff),
        )
        .await;
    assert_eq!(top.status, StatusCode::OK, "{:?}", top.body);
    assert_eq!(top.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(top.body["items"][0]["itemId"], ranking[0].0.as_str());
    assert_eq!(top.body["items"][0]["revenue"], ranking[0].1.1);
    let all = stack
        .get(
            &format!("/v1/stores/{store}/reports/top-items?from={today}&to={today}"),
            Some(&owner),
        )
        .await;
    let ids: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["itemId"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ranking.iter().map(|r| r.0.as_str()).collect::<Vec<_>>()
    );

    // Bad ranges are refused; other stores' people see nothing.
    for query in [
        "from=2026-11-02&to=2026-11-01",
        "from=2026-01-01&to=2026-06-01",
        "from=2026-11-01&to=2026-11-02&limit=0",
        "from=yesterday&to=2026-11-01",
        "from=2026-11-1&to=2026-11-02",
    ] {
        let refused = stack
            .get(
                &format!("/v1/stores/{store}/reports/top-items?{query}"),
                Some(&owner),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {:?}",
            refused.body
        );
    }
    let (_, stranger, _) = stack.account("rep-stranger@example.com", "OWNER").await;
    let foreign = stack
        .get(
            &format!("/v1/stores/{store}/reports/daily?date={today}"),
            Some(&stranger),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);

    // The month as CSV, through a short-lived link, for the owner only.
    let month = &today[..7];
    let export_path = format!("/v1/stores/{store}/reports/export?month={month}");
    assert_eq!(
        stack
            .post(&export_path, &json!({}), Some(&staff))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // A month as written, only: `+` is a space in a query, and ` 202-12` is not a month.
    let odd = format!("/v1/stores/{store}/reports/export?month=+202-12");
    let refused = stack.post(&odd, &json!({}), Some(&owner)).await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (422, "VALIDATION_FAILED"),
        "{:?}",
        refused.body
    );
    let export = stack.post(&export_path, &json!({}), Some(&owner)).await;
    assert_eq!(export.status, StatusCode::CREATED, "{:?}", export.body);
    let csv = stack
        .http()
        .get(export.body["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with(&today))
        .expect("today's row");
    assert_eq!(
        row,
        format!(
            "{today},{orders},{gross},{refunds},{},{rejected_total},{abandoned_total},0,{}",
            gross - refunds,
            rejected_total + abandoned_total
        )
    );
}

#[tokio::test]
async fn the_business_day_turns_at_midnight_in_seoul() {
    let stack = Stack::start();
    e2e::clear_of_seoul_midnight().await;
    let (store, owner, _staff, customer) = stack.staffed_store("midnight").await;
    let (order, total, _) = place(&stack, &customer, &store, json!([latte(1)])).await;
    pay(&stack, &customer, &order, total).await;
    let today = seoul_today();
    settled_report(&stack, &owner, &store, &today, |r| r["orders"] == 1).await;

    // The same sale, as if paid a second before and at midnight in Seoul (15:00 UTC), and an order
    // that expired at midnight: new events, so new counts.
    let paid = stack.events_of("order.paid").await.remove(0);
    let at = |event: &Value, id: &str, kind: &str, at: &str| {
        let mut event = event.clone();
        event["eventId"] = json!(id);
        event["type"] = json!(kind);
        event["at"] = json!(at);
        event
    };
    redeliver(
        &stack,
        &[
            at(&paid, "late-1", "order.paid", "2026-10-31T14:59:59Z"),
            at(&paid, "early-1", "order.paid", "2026-10-31T15:00:00Z"),
            at(&paid, "expired-1", "order.expired", "2026-10-31T15:00:01Z"),
        ],
    )
    .await;
    let october = settled_report(&stack, &owner, &store, "2026-10-31", |r| r["orders"] == 1).await;
    assert_eq!(october["orders"], 1);
    assert_eq!(october["ordersByHour"][23], 1);
    let november = settled_report(&stack, &owner, &store, "2026-11-01", |r| {
        r["lostSales"]["expired"]["orders"] == 1
    })
    .await;
    assert_eq!(november["orders"], 1);
    assert_eq!(november["ordersByHour"][0], 1);
    assert_eq!(november["grossSales"], total);
    assert_eq!(
        november["lostSales"]["expired"],
        json!({"orders": 1, "amount": total})
    );
}

#[tokio::test]
async fn the_audit_trail_is_the_owners_and_archived_once_a_month() {
    let stack = Stack::start();
    // The trail is kept by UTC month: a test that starts five minutes or less before the next one
    // waits for it, so that its records and its month are the same.
    let now = jiff::Timestamp::now();
    let next_month = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .first_of_month()
        .and_then(|first| first.start_of_day())
        .unwrap()
        .checked_add(jiff::Span::new().months(1))
        .unwrap()
        .timestamp();
    let left = now.duration_until(next_month);
    if left < jiff::SignedDuration::from_mins(5) {
        tokio::time::sleep((left + jiff::SignedDuration::from_secs(1)).unsigned_abs()).await;
    }
    let (store, owner, staff, customer) = stack.staffed_store("aud").await;
    let (order, total, _) = place(&stack, &customer, &store, json!([latte(1)])).await;
    pay(&stack, &customer, &order, total).await;
    for body in [
        json!({"to": "ACCEPTED", "etaMinutes": 5}),
        json!({"to": "PREPARING"}),
    ] {
        let moved = stack
            .post(&format!("/v1/orders/{order}/status"), &body, Some(&staff))
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    }
    let trail = format!("/v1/stores/{store}/audit");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut records = Vec::new();
    while records.len() < 4 && Instant::now() < deadline {
        records = stack.get(&trail, Some(&owner)).await.body["records"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "order.preparing",
            "order.accepted",
            "order.paid",
            "order.placed"
        ],
        "newest first"
    );
    let accepted = &records[1];
    assert_eq!(accepted["target"], format!("ORDER#{order}"));
    assert_eq!(
        (accepted["before"].as_str(), accepted["after"].as_str()),
        (Some("PAID"), Some("ACCEPTED"))
    );
    assert_eq!(accepted["actor"]["kind"], "STORE");
    assert!(accepted["requestId"].is_string() && accepted["at"].is_string());

    // Paged: two and two, no overlap.
    let first = stack.get(&format!("{trail}?limit=2"), Some(&owner)).await;
    let cursor = first.body["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = stack
        .get(&format!("{trail}?limit=2&cursor={cursor}"), Some(&owner))
        .await;
    let paged: Vec<&Value> = first.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second.body["records"].as_array().unwrap())
        .collect();
    assert_eq!(
        paged
            .iter()
            .map(|r| r["eventId"].clone())
            .collect::<Vec<_>>(),
        records
            .iter()
            .map(|r| r["eventId"].clone())
            .collect::<Vec<_>>()
    );

    // Only the owner (and admins) read it.
    let (_, stranger, _) = stack.account("aud-stranger@example.com", "OWNER").await;
    assert_eq!(
        stack.get(&trail, Some(&stranger)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stack.get(&trail, Some(&staff)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        stack.get("/v1/admin/audit", Some(&owner)).await.status,
        StatusCode::FORBIDDEN
    );
    let admin = stack.admin("aud-admin@example.com").await;
    let month = jiff::Timestamp::now().strftime("%Y-%m").to_string();
    let everything = stack
        .get(
            &format!("/v1/admin/audit?month={month}&limit=200"),
            Some(&admin),
        )
        .await;
    assert_eq!(everything.status, StatusCode::OK, "{:?}", everything.body);
    let all = everything.body["records"].as_array().unwrap();
    assert!(all.iter().any(|r| r["action"] == "user.signed_in"));
    assert!(
        all.iter().all(|r| !r.to_string().contains("@example.com")),
        "no addresses in the trail"
    );
    // The month is spread over many keys; paged, it is the same trail, newest first, no gaps.
    let newest_first: Vec<&str> = all.iter().map(|r| r["at"].as_str().unwrap()).collect();
    assert!(
        newest_first.windows(2).all(|w| w[0] >= w[1]),
        "{newest_first:?}"
    );
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = stack
            .get(
                &format!("/v1/admin/audit?month={month}&limit=3{cursor}"),
                Some(&admin),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        paged.extend(page.body["records"].as_array().unwrap().iter().cloned());
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let ids = |records: &[Value]| -> Vec<String> {
        records
            .iter()
            .map(|r| r["eventId"].as_str().unwrap().to_owned())
            .collect()
    };
    // (Events may still be arriving: the later listing can only have more.)
    let (first_ids, paged_ids) = (ids(all), ids(&paged));
    let unique: std::collections::BTreeSet<&String> = paged_ids.iter().collect();
    assert_eq!(unique.len(), paged_ids.len(), "a record on two pages");
    assert!(
        first_ids.iter().all(|id| unique.contains(id)),
        "pages {paged_ids:?} miss some of {first_ids:?}"
    );
    let paged_at: Vec<&str> = paged.iter().map(|r| r["at"].as_str().unwrap()).collect();
    assert!(paged_at.windows(2).all(|w| w[0] >= w[1]), "{paged_at:?}");
    assert_eq!(
        stack
            .get("/v1/admin/audit?month=2026-13", Some(&admin))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // In the table for the listings: 400 days (the template's `AuditDaysInTable`), not five
    // years; the month's archive keeps them.
    let trail_items: Vec<_> = stack
        .scan()
        .await
        .into_iter()
        .filter(|i| {
            e2e::text_of(i, "PK").starts_with(&format!("AUDIT#{month}#"))
                && e2e::text_of(i, "GSI1PK") == format!("AUDIT#STORE#{store}")
        })
        .collect();
    assert!(trail_items.len() >= 4, "{trail_items:?}");
    for item in &trail_items {
        let at: jiff::Timestamp = e2e::text_of(item, "SK")
            .split_once('#')
            .unwrap()
            .0
            .parse()
            .unwrap();
        let expires: i64 = item["expiresAt"].as_n().unwrap().parse().unwrap();
        assert_eq!(expires - at.as_second(), 400 * 24 * 3600, "{item:?}");
    }

    // A month is archived only once it is over: this one, with records still to come, is refused
    // (an archive of it would miss them, and they would leave the table unarchived).
    let early = stack
        .invoke_failing("AuditArchiveFunction", &json!({"month": month}))
        .await;
    assert!(early.contains("second day of the next"), "{early}");

    // The archive of a month that is over: written once, every record in it, each in the object of
    // its term. This month's records as the recorder wrote them (the store's trail, and everyone's
    // sign-ins), put under a month two months back (the daily schedule, every second here,
    // archives the last one).
    let past = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_month()
        .checked_sub(jiff::Span::new().months(2))
        .unwrap()
        .strftime("%Y-%m")
        .to_string();
    let month_items: Vec<_> = stack
        .scan()
        .await
        .into_iter()
        .filter(|i| e2e::text_of(i, "PK").starts_with(&format!("AUDIT#{month}#")))
        .collect();
    let db = aws_sdk_dynamodb::Client::new(&stack.aws().await);
    let (mut orders_stored, mut access_stored) = (Vec::new(), Vec::new());
    for (n, item) in month_items.iter().enumerate() {
        let mut moved = item.clone();
        let shard = e2e::text_of(item, "PK")
            .rsplit('#')
            .next()
            .unwrap()
            .to_owned();
        let event_id = e2e::audit_event_id(item).to_owned();
        moved.insert(
            "PK".into(),
            AttributeValue::S(format!("AUDIT#{past}#{shard}")),
        );
        let sort = AttributeValue::S(format!(
            "{past}-15T12:{:02}:{:02}Z#{event_id}",
            n / 60,
            n % 60
        ));
        moved.insert("SK".into(), sort.clone());
        if item.contains_key("GSI1SK") {
            moved.insert("GSI1SK".into(), sort);
        }
        db.put_item()
            .table_name(e2e::TABLE)
            .set_item(Some(moved))
            .send()
            .await
            .unwrap();
        if e2e::text_of(item, "target").starts_with("ORDER#") {
            orders_stored.push(event_id);
        } else {
            access_stored.push(event_id);
        }
    }
    assert_eq!(orders_stored.len(), trail_items.len());
    assert!(
        access_stored.len() >= 4,
        "the four sign-ins: {access_stored:?}"
    );
    let archived = stack
        .invoke("AuditArchiveFunction", &json!({"month": past}))
        .await;
    assert_eq!(archived["written"], true, "{archived}");
    assert_eq!(
        (
            archived["records"].as_u64(),
            archived["accessRecords"].as_u64()
        ),
        (
            Some(orders_stored.len() as u64),
            Some(access_stored.len() as u64)
        ),
        "{archived}"
    );
    let again = stack
        .invoke("AuditArchiveFunction", &json!({"month": past}))
        .await;
    assert_eq!(again["written"], false);
    assert_eq!(again["accessKey"], archived["accessKey"]);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.aws().await)
            .force_path_style(true)
            .build(),
    );
    let bucket = "ordersync-local-auditarchivebucket";
    // What the deployed bucket does with each object: its lifecycle rules, as the template sets
    // them (the emulator keeps them, and expires nothing).
    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .rules
        .unwrap_or_default();
    let day = 24 * 3600;
    let mut lines_of = BTreeMap::new();
    for (kept, stored, dir) in [
        (shared::audit::Kept::Commerce, &orders_stored, "audit"),
        (shared::audit::Kept::Access, &access_stored, "access"),
    ] {
        let key = format!(
            "{dir}/year={}/month={}/{dir}-{past}.jsonl.gz",
            &past[..4],
            &past[5..]
        );
        let field = if dir == "audit" { "key" } else { "accessKey" };
        assert_eq!(archived[field], key.as_str(), "{archived}");
        let listed = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(format!("{dir}/"))
            .send()
            .await
            .unwrap();
        let versions = listed.versions();
        assert_eq!(versions.len(), 1, "one object, one version: {versions:?}");
        assert_eq!(versions[0].key(), Some(key.as_str()));
        let object = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        let bytes = object.body.collect().await.unwrap().into_bytes();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut ids: Vec<&str> = lines
            .iter()
            .map(|l| l["eventId"].as_str().unwrap())
            .collect();
        ids.sort();
        let mut expected: Vec<&str> = stored.iter().map(String::as_str).collect();
        expected.sort();
        assert_eq!(ids, expected, "{key}");
        // Kept its kind's term, no less (the law's floor) and, for sign-ins, no more: an address is
        // not kept five years because an order is. One rule applies to each object.
        let applying: Vec<_> = rules
            .iter()
            .filter(|r| r.status().as_str() == "Enabled")
            .filter(|r| {
                let prefix = r.filter().and_then(|f| f.prefix()).unwrap_or("");
                key.starts_with(prefix)
            })
            .collect();
        assert_eq!(applying.len(), 1, "{key}: {rules:?}");
        let days = i64::from(
            applying[0]
                .expiration()
                .and_then(|e| e.days())
                .expect("an expiry in days"),
        );
        assert!(days * day >= kept.seconds(), "{key}: {days} days");
        if kept == shared::audit::Kept::Access {
            assert!(days * day <= kept.seconds(), "{key}: {days} days");
        }
        lines_of.insert(dir, lines);
    }
    for line in &lines_of["access"] {
        let action = line["action"].as_str().unwrap();
        assert!(action.starts_with("user."), "{line}");
        assert!(line.get("storeId").is_none(), "{line}");
    }
    // Each order line is the record as the listing answered it, but for the month it was put under.
    let lines = &lines_of["audit"];
    for listed in &records {
        let id = listed["eventId"].as_str().unwrap();
        let line = lines
            .iter()
            .find(|l| l["eventId"] == id)
            .unwrap_or_else(|| panic!("{id} not archived"));
        let (mut line, mut listed) = (line.clone(), listed.clone());
        assert!(line["at"].as_str().unwrap().starts_with(&past), "{line}");
        line.as_object_mut().unwrap().remove("at");
        listed.as_object_mut().unwrap().remove("at");
        assert_eq!(line, listed);
    }
}

/// The day's report as (orders, gross sales, orders by hour summed, items as (count, revenue)).
fn day_figures(day: &Value) -> (u64, i64, u64, BTreeMap<String, (u64, i64)>) {
    let items = day["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["itemId"].as_str().unwrap().to_owned(),
                        (i["count"].as_u64().unwrap(), i["revenue"].as_i64().unwrap()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (
        day["orders"].as_u64().unwrap_or(0),
        day["grossSales"].as_i64().unwrap_or(0),
        day["ordersByHour"]
            .as_array()
            .map(|h| h.iter().filter_map(Value::as_u64).sum())
            .unwrap_or(0),
        items,
    )
}

/// The sales a stream batch carries are counted in one transaction, each report item written once
/// (not once per paid order), and once in effect whatever befalls that transaction: its answer lost
/// after it was made (the batch comes again, and the events are found made one by one), a conflict,
/// a throttle; or the audit records the batch appends side by side: an answer lost, errors past
/// the SDK's retries (the batch comes again from the first event not made, and what was made after
/// it is found made). Invariants, after every round: the day's report equals the sum of what was
/// paid; at the end, the audit trail holds each order's placing and payment once.
/// Each round pays a random number of random orders while the recording consumer is stopped, so
/// they reach it as one batch when it starts (`REPORTS_SEED=<n>` replays a run).
#[tokio::test]
async fn a_batch_of_sales_is_counted_in_one_write_and_once() {
    use rand::{Rng, SeedableRng};
    let seed = e2e::seed("REPORTS_SEED");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let stack = Stack::start();
    e2e::clear_of_seoul_midnight().await;
    let (store, owner, _staff, customer) = stack.staffed_store("batch").await;
    // Up to 35 paid orders stay waiting for the store (the default queue holds 30).
    let roomier = stack
        .patch(
            &format!("/v1/stores/{store}"),
            &json!({"maxQueuedOrders": 50}),
            Some(&owner),
        )
        .await;
    assert_eq!(roomier.status, StatusCode::OK, "{:?}", roomier.body);
    let today = seoul_today();
    let mut truth = (0u64, 0i64, 0u64, BTreeMap::<String, (u64, i64)>::new());
    let mut orders = Vec::new();
    let rounds = [
        None,
        Some(("TransactWriteItems", "lost", 1)),
        Some(("TransactWriteItems", "conflict", 1)),
        Some(("TransactWriteItems", "throttle", 1)),
        Some(("PutItem", "lost", 2)),
        Some(("PutItem", "error", 12)),
        None,
    ];
    for (round, fault) in rounds.into_iter().enumerate() {
        stack
            .local("functions/EventsRecordFunction/stop", &json!({}))
            .await;
        let paid = rng.random_range(3..=5u64);
        for _ in 0..paid {
            let items = if rng.random_bool(0.5) {
                json!([latte(rng.random_range(1..=3))])
            } else {
                json!([
                    latte(1),
                    kimbap(if rng.random_bool(0.5) {
                        "regular"
                    } else {
                        "large"
                    })
                ])
            };
            let (order, total, lines) = place(&stack, &customer, &store, items).await;
            pay(&stack, &customer, &order, total).await;
            orders.push(order);
            truth.0 += 1;
            truth.1 += total;
            truth.2 += 1;
            for (item, quantity, amount) in lines {
                let entry = truth.3.entry(item).or_default();
                entry.0 += quantity;
                entry.1 += amount;
            }
        }
        if let Some((operation, fault, times)) = fault {
            stack
                .aws_faults(json!([{"function": "EventsRecordFunction",
                                    "operation": operation, "fault": fault, "times": times}]))
                .await;
        }
        let mut day = Value::Null;
        let reading = stack
            .metered(async {
                stack
                    .local("functions/EventsRecordFunction/start", &json!({}))
                    .await;
                day = settled_report(&stack, &owner, &store, &today, |r| {
                    r["orders"].as_u64() == Some(truth.0)
                })
                .await;
                // Until the meter has counted the day's last write (its count holds still).
                let day_writes = |r: &Value| r["dynamodbByKind"]["REPORT/DAY"]["items"].as_u64();
                let mut last = None;
                for _ in 0..40 {
                    let now = day_writes(&stack.meter_reading().await);
                    if now.is_some_and(|n| n > 0) && now == last {
                        break;
                    }
                    last = now;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
            .await;
        assert_eq!(
            day_figures(&day),
            truth,
            "round {round} ({fault:?}): {day:#}"
        );
        if let Some((_, _, times)) = fault {
            // The day's figures can settle while the batch's last tries are still on their way
            // (make test once read 6 of 12 here): wait, within a deadline, for every fault to fire.
            let mut fired = stack.aws_faults_fired().await;
            for _ in 0..40 {
                if fired["rules"][0]["fired"] == times {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                fired = stack.aws_faults_fired().await;
            }
            assert_eq!(fired["rules"][0]["fired"], times, "round {round}: {fired}");
            stack.aws_faults(json!([])).await;
        } else {
            // The paid orders reached the consumer in one or two batches (the first may be what it
            // was handed before it stopped): their day's counters were written as often, not once
            // per order.
            let writes = reading["dynamodbByKind"]["REPORT/DAY"]["items"]
                .as_u64()
                .unwrap();
            assert!(
                (1..=2).contains(&writes) && writes < paid,
                "round {round}: {paid} orders paid, the day written {writes} times: {reading:#}"
            );
        }
    }
    // The last round's batch came after every earlier one (a shard is read in order): no late
    // repeat of a faulted round counted again.
    assert_eq!(
        day_figures(&report(&stack, &owner, &store, &today).await),
        truth
    );
    let audit = stack
        .get(&format!("/v1/stores/{store}/audit?limit=200"), Some(&owner))
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);
    let mut trail = BTreeMap::<(String, String), u32>::new();
    for record in audit.body["records"].as_array().unwrap() {
        let key = (
            record["target"].as_str().unwrap().to_owned(),
            record["action"].as_str().unwrap().to_owned(),
        );
        *trail.entry(key).or_default() += 1;
    }
    let expected: BTreeMap<_, _> = orders
        .iter()
        .flat_map(|order| {
            ["order.placed", "order.paid"]
                .map(|action| ((format!("ORDER#{order}"), action.to_owned()), 1))
        })
        .collect();
    assert_eq!(trail, expected);
}
