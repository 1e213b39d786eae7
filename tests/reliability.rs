//! Faults on purpose (docs/FAILURE_MODES.md): AWS failing the way it does in production — throttling,
//! 5xx, transaction conflicts, stalled calls, lost answers, dropped connections — injected through
//! the local stack's switchboard into one path at a time, and the end state checked: every client saw
//! a documented status with a stable code, nothing was written twice or half, every event arrived
//! once in effect.

use std::time::Duration;

use e2e::{Stack, StatusCode};
use serde_json::{Value, json};

fn latte_order(store: &str) -> Value {
    json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 2}],
        "fulfilment": {"type": "PICKUP"}, "phone": "010-2222-3333"})
}

async fn place(stack: &Stack, customer: &str, key: &str, body: &Value) -> e2e::Reply {
    stack.order_keyed(customer, key, body).await
}

/// The order ids of every `order.placed` event in the table.
async fn placed_events(stack: &Stack) -> Vec<String> {
    stack
        .events_of("order.placed")
        .await
        .iter()
        .filter_map(|e| e["order"]["orderId"].as_str().map(String::from))
        .collect()
}

/// Every answer a client may see while AWS fails: a success, or a documented retryable refusal.
fn documented(reply: &e2e::Reply, success: u16) -> bool {
    let status = reply.status.as_u16();
    status == success
        || matches!(
            (status, reply.code()),
            (503, "SERVICE_UNAVAILABLE") | (409, "TRANSACTION_CONFLICT")
        ) && reply.header("retry-after").is_some()
}

#[tokio::test]
async fn an_order_is_placed_once_whatever_fails_under_its_write() {
    // Short AWS time-outs, so that a stalled call is cut quickly.
    let stack = Stack::start_with(&["AwsAttemptTimeoutMs=1000", "AwsOperationTimeoutMs=3500"]);
    let (store, _, _, customer) = stack.staffed_store("create-faults").await;
    let body = latte_order(&store);
    // (fault, how many calls it hits, what the client is told first), on the order's one conditional
    // put. Throttling and 5xx past the SDK's three attempts are a 503; a conflict is a 409 to retry;
    // a lost answer is made good by the SDK's retry meeting the order it put; a stalled or dropped
    // attempt is retried by the SDK.
    let faults = [
        ("throttle", 5, 503),
        ("error", 5, 503),
        ("conflict", 1, 409),
        ("lost", 1, 201),
        ("timeout", 1, 201),
        ("reset", 1, 201),
        ("latency", 1, 201),
    ];
    let mut orders = Vec::new();
    for (fault, times, told) in faults {
        stack
            .aws_faults(
                json!([{"function": "OrdersCreateFunction", "service": "dynamodb",
                "operation": "PutItem", "contains": "ORDER#", "fault": fault, "times": times,
                "delayMs": 1500}]),
            )
            .await;
        let key = format!("create-{fault}");
        let first = place(&stack, &customer, &key, &body).await;
        assert!(
            documented(&first, 201),
            "{fault}: {} {:?}",
            first.status,
            first.body
        );
        assert_eq!(first.status.as_u16(), told, "{fault}: {:?}", first.body);
        stack.aws_faults(json!([])).await;
        // The client retries with the same key until it is told the outcome.
        let mut last = first;
        for _ in 0..5 {
            if last.status == StatusCode::CREATED {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            last = place(&stack, &customer, &key, &body).await;
        }
        assert_eq!(last.status, StatusCode::CREATED, "{fault}: {:?}", last.body);
        let again = place(&stack, &customer, &key, &body).await;
        assert_eq!(
            again.body, last.body,
            "{fault}: a replay is the first answer"
        );
        orders.push(last.body["orderId"].as_str().unwrap().to_owned());
    }
    let fired = stack.aws_faults_fired().await;
    assert_eq!(fired["rules"].as_array().unwrap().len(), 0);
    // One order per key, each placed once: one event each, none half-written.
    let mine = stack.get("/v1/me/orders?limit=100", Some(&customer)).await;
    let listed: Vec<&str> = mine.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), faults.len(), "{listed:?}");
    let mut placed = placed_events(&stack).await;
    placed.sort();
    let mut expected = orders.clone();
    expected.sort();
    assert_eq!(placed, expected, "one order.placed per order");
}

#[tokio::test]
async fn an_order_whose_answer_is_lost_is_placed_once() {
    let stack = Stack::start();
    let (store, _, _, customer) = stack.staffed_store("put-lost").await;
    let body = latte_order(&store);
    // The order's conditional put lands, its answer is lost, and the SDK sends it again: the repeat
    // meets the order it made, which is this request's, not a duplicate's.
    next_put_loses_its_answer(&stack, "OrdersCreateFunction", "ORDER#").await;
    let placed = place(&stack, &customer, "put-lost", &body).await;
    the_answer_was_lost(&stack).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let again = place(&stack, &customer, "put-lost", &body).await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::CREATED, &placed.body),
        "a retry answers the order its key placed"
    );
    // Two requests with one key at once: one order, which both answer.
    let other = place(&stack, &customer, "put-other", &body);
    let same = place(&stack, &customer, "put-other", &body);
    let (other, same) = tokio::join!(other, same);
    assert_eq!(
        (other.status, same.status),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{:?} {:?}",
        other.body,
        same.body
    );
    assert_eq!(other.body, same.body);
    assert_eq!(placed_events(&stack).await.len(), 2, "one order per key");
}

/// The invariant of an order's `Idempotency-Key`, however requests under one key interleave and
/// whatever AWS does to their calls (answers lost, throttles, conflicts, delays): the key places at
/// most one order; every 201 under it names that order, and answers a request with the body that
/// placed it; a request with another body is refused (422) and places nothing; every other answer
/// is a documented refusal to retry. Randomized; `ORDERS_SEED` replays a run.
#[tokio::test]
async fn a_key_places_one_order_whatever_interleaves_and_fails() {
    use futures::StreamExt;
    use rand::{Rng, SeedableRng};
    let seed = e2e::seed("ORDERS_SEED");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let stack = Stack::start_with(&[
        "AwsAttemptTimeoutMs=1000",
        "AwsOperationTimeoutMs=3500",
        "RateLimits=orders-per-customer=1000/60",
    ]);
    let (store, _, _, customer) = stack.staffed_store("key-mix").await;
    let body = |quantity: u32| {
        json!({"storeId": store, "items": [{"itemId": "latte", "quantity": quantity}],
            "fulfilment": {"type": "PICKUP"}, "phone": "010-2222-3333"})
    };
    stack
        .local(
            "faults/aws",
            &json!({"seed": seed, "rules": [
                {"function": "OrdersCreateFunction", "service": "dynamodb", "operation": "PutItem",
                 "fault": "lost", "probability": 0.3},
                {"function": "OrdersCreateFunction", "service": "dynamodb", "operation": "PutItem",
                 "fault": "conflict", "probability": 0.05},
                {"function": "OrdersCreateFunction", "service": "dynamodb", "fault": "throttle",
                 "probability": 0.05},
                {"function": "OrdersCreateFunction", "service": "dynamodb", "fault": "latency",
                 "delayMs": 200, "probability": 0.2}]}),
        )
        .await;
    // 48 requests over 8 keys, twelve in flight at a time; one in five with another quantity.
    let asked: Vec<(usize, u32)> = (0..48)
        .map(|_| {
            let quantity = if rng.random_bool(0.2) { 2 } else { 1 };
            (rng.random_range(0..8), quantity)
        })
        .collect();
    let replies: Vec<(usize, u32, e2e::Reply)> = futures::stream::iter(asked)
        .map(|(key, quantity)| {
            let (stack, customer, body) = (&stack, &customer, body(quantity));
            async move {
                let reply = place(stack, customer, &format!("mix-{key}"), &body).await;
                (key, quantity, reply)
            }
        })
        .buffer_unordered(12)
        .collect()
        .await;
    let fired = stack.aws_faults_fired().await;
    stack.aws_faults(json!([])).await;

    // Each key's order, asked for again with each body, without faults: the body that placed it is
    // answered 201, the other 422 (a key no request placed is placed now).
    let mut orders = Vec::new();
    for key in 0..8 {
        let key_name = format!("mix-{key}");
        let one = place(&stack, &customer, &key_name, &body(1)).await;
        let two = place(&stack, &customer, &key_name, &body(2)).await;
        let (order, quantity) = match (one.status.as_u16(), two.status.as_u16()) {
            (201, 422) => (one.body["orderId"].clone(), 1),
            (422, 201) => (two.body["orderId"].clone(), 2),
            other => panic!("key {key}: {other:?} {:?} {:?}", one.body, two.body),
        };
        for (_, asked, reply) in replies.iter().filter(|(k, _, _)| *k == key) {
            match reply.status.as_u16() {
                201 => {
                    assert_eq!(reply.body["orderId"], order, "key {key}: another order");
                    assert_eq!(
                        (*asked, reply.body["lines"][0]["quantity"].as_u64()),
                        (quantity, Some(u64::from(quantity))),
                        "key {key}: answered a body that did not place it"
                    );
                }
                422 => {
                    assert_eq!(reply.code(), "IDEMPOTENCY_KEY_REUSED");
                    assert_ne!(*asked, quantity, "key {key}: its own body refused");
                }
                _ => assert!(
                    documented(reply, 201),
                    "key {key}: {} {:?}",
                    reply.status,
                    reply.body
                ),
            }
        }
        orders.push(order.as_str().unwrap().to_owned());
    }
    // One order per key in the table, each placed once.
    let mut placed = placed_events(&stack).await;
    placed.sort();
    orders.sort();
    assert_eq!(placed, orders, "one order per key ({fired})");
    assert!(
        fired["rules"][0]["fired"].as_u64().unwrap_or(0) > 0,
        "no answer was lost: {fired}"
    );
}

/// A conditional put has no token: when its answer is lost, the SDK's repeat meets the item the first
/// attempt wrote. Met with itself, it is written — not a conflict, not a duplicate. (`function`'s next
/// `PutItem` whose request contains `contains` lands and loses its answer.)
async fn next_put_loses_its_answer(stack: &Stack, function: &str, contains: &str) {
    stack
        .aws_faults(
            json!([{"function": function, "service": "dynamodb", "operation": "PutItem",
            "contains": contains, "fault": "lost", "times": 1}]),
        )
        .await;
}

async fn the_answer_was_lost(stack: &Stack) {
    assert_eq!(
        stack.aws_faults_fired().await["rules"][0]["fired"],
        1,
        "the put's answer was lost"
    );
}

#[tokio::test]
async fn a_store_change_whose_answer_is_lost_is_told_as_made() {
    let stack = Stack::start();
    let (store, owner, _, _) = stack.staffed_store("put-lost").await;
    // Put over the version read. Before: 409 STORE_CHANGED for a change made.
    next_put_loses_its_answer(&stack, "StoresUpdateFunction", "STORE#").await;
    let updated = stack
        .patch(
            &format!("/v1/stores/{store}"),
            &json!({"name": "Lost Answers"}),
            Some(&owner),
        )
        .await;
    the_answer_was_lost(&stack).await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    let read = stack.get(&format!("/v1/stores/{store}"), None).await;
    assert_eq!(read.body["name"], "Lost Answers");
    assert_eq!(
        read.body["updatedAt"], updated.body["updatedAt"],
        "changed once"
    );
}

#[tokio::test]
async fn a_sign_in_whose_session_answer_is_lost_signs_in() {
    let stack = Stack::start();
    // Put where none is. Before: the sign-in failed.
    next_put_loses_its_answer(&stack, "AuthLoginFunction", "SESSION#").await;
    let (_, token, _) = stack.account("put-lost@example.com", "CUSTOMER").await;
    the_answer_was_lost(&stack).await;
    assert_eq!(
        stack.get("/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_socket_whose_place_answer_is_lost_opens() {
    let stack = Stack::start();
    let (_, customer, _) = stack.account("put-lost-ws@example.com", "CUSTOMER").await;
    // Its place in its channel. Before: 409 CONNECTION_EXISTS, the socket refused.
    next_put_loses_its_answer(&stack, "WsConnectFunction", "").await;
    let socket = stack.connect(Some(&customer), None).await;
    the_answer_was_lost(&stack).await;
    assert!(socket.is_ok(), "{:?}", socket.err());
}

/// A paid order of a new store, and its owner's token; the next status move's `UpdateItem` meets
/// `fault` once.
async fn paid_order_whose_move_meets(stack: &Stack, fault: &str) -> (String, String) {
    let (store, owner, _, customer) = stack.staffed_store(&format!("move-{fault}")).await;
    let order = stack.order(&customer, &latte_order(&store)).await;
    let order = order.body["orderId"].as_str().unwrap().to_owned();
    stack.mark_paid(&order).await;
    stack
        .aws_faults(
            json!([{"function": "OrdersStatusFunction", "operation": "UpdateItem",
            "fault": fault, "times": 1}]),
        )
        .await;
    (order, owner)
}

#[tokio::test]
async fn a_move_lost_to_a_transaction_conflict_is_told_to_retry() {
    let stack = Stack::start();
    // A lone move is one conditional UpdateItem; meeting a transaction on its item, it is refused
    // with DynamoDB's TransactionConflictException.
    let (order, owner) = paid_order_whose_move_meets(&stack, "conflict").await;
    let accept = json!({"to": "ACCEPTED", "etaMinutes": 10});
    let lost = stack
        .post(&format!("/v1/orders/{order}/status"), &accept, Some(&owner))
        .await;
    assert_eq!(
        (lost.status.as_u16(), lost.code()),
        (409, "TRANSACTION_CONFLICT"),
        "{:?}",
        lost.body
    );
    assert_eq!(lost.header("retry-after"), Some("1"));
    let retried = stack
        .post(&format!("/v1/orders/{order}/status"), &accept, Some(&owner))
        .await;
    assert_eq!(retried.body["status"], "ACCEPTED", "{:?}", retried.body);
    assert_eq!(
        retried.body["version"], 3,
        "paid, then accepted: nothing in between"
    );
}

#[tokio::test]
async fn a_move_whose_answer_is_lost_is_made_once_and_told_as_made() {
    let stack = Stack::start();
    // The update lands, its answer is lost, and the SDK sends it again: the repeat fails its own
    // condition (the order is no longer at the version read).
    let (order, owner) = paid_order_whose_move_meets(&stack, "lost").await;
    let moved = stack
        .post(
            &format!("/v1/orders/{order}/status"),
            &json!({"to": "ACCEPTED", "etaMinutes": 10}),
            Some(&owner),
        )
        .await;
    let fired = stack.aws_faults_fired().await;
    assert_eq!(fired["rules"][0]["fired"], 1, "{fired}");
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(
        (
            moved.body["status"].as_str(),
            moved.body["version"].as_u64()
        ),
        (Some("ACCEPTED"), Some(3))
    );
    // One move, one event: the order's record of version 3, stamped by the owner.
    let accepted = stack.events_of("order.accepted").await;
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0]["eventId"], format!("{order}.v3"));
    assert_eq!(accepted[0]["actor"]["kind"], "STORE");
    assert_eq!(accepted[0]["order"]["from"], "PAID");
    // (A move that really lost its race is 409 ORDER_STATUS_CHANGED: tests/orders.rs, racing moves.)
}

#[tokio::test]
async fn a_stalled_aws_call_is_cut_by_its_time_out_not_the_functions() {
    let stack = Stack::start_with(&["AwsAttemptTimeoutMs=800", "AwsOperationTimeoutMs=2500"]);
    let (store, owner, _, _) = stack.staffed_store("stall").await;
    stack
        .aws_faults(
            json!([{"function": "StoresGetFunction", "operation": "GetItem",
            "fault": "timeout"}]),
        )
        .await;
    let started = std::time::Instant::now();
    let stalled = stack
        .get(&format!("/v1/stores/{store}"), Some(&owner))
        .await;
    assert_eq!(
        (stalled.status.as_u16(), stalled.code()),
        (503, "SERVICE_UNAVAILABLE"),
        "{:?}",
        stalled.body
    );
    assert!(stalled.header("retry-after").is_some());
    // Within the operation's time-out, long before the function's own (10 s).
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    stack.aws_faults(json!([])).await;
    let fine = stack
        .get(&format!("/v1/stores/{store}"), Some(&owner))
        .await;
    assert_eq!(fine.status, StatusCode::OK);
}

#[tokio::test]
async fn events_survive_stream_reader_failures_and_count_once() {
    let stack = Stack::start();
    e2e::clear_of_seoul_midnight().await;
    let (store, owner, _, customer) = stack.staffed_store("pipeline").await;
    let mut board = stack.connect(Some(&owner), Some(&store)).await.unwrap();
    // The notifier's look-ups of who listens fail (past the SDK's retries) a few times; the
    // recording consumer's writes (audit records, sales counters) are throttled a few times.
    stack
        .aws_faults(json!([
            {"function": "NotificationsPushFunction", "operation": "Query",
             "fault": "error", "times": 4},
            {"function": "EventsRecordFunction", "service": "dynamodb", "fault": "throttle",
             "times": 8}]))
        .await;
    let order = stack.order(&customer, &latte_order(&store)).await;
    let order = order.body["orderId"].as_str().unwrap().to_owned();
    let paid = stack
        .post(
            "/v1/payments/confirm",
            &json!({"orderId": order, "paymentKey": "tpk_pipeline", "amount": 9000}),
            Some(&customer),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    // The board hears it, once in effect (a repeat carries the same event id).
    let pushes = board.until("order.paid", Duration::from_secs(60)).await;
    let paid_events: std::collections::BTreeSet<&str> = pushes
        .iter()
        .filter(|p| p["type"] == "order.paid")
        .filter_map(|p| p["eventId"].as_str())
        .collect();
    assert_eq!(paid_events.len(), 1);
    // The day's report counts it once; the audit trail has its records once.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Seoul").unwrap())
        .date()
        .to_string();
    let mut report = Value::Null;
    for _ in 0..120 {
        report = stack
            .get(
                &format!("/v1/stores/{store}/reports/daily?date={today}"),
                Some(&owner),
            )
            .await
            .body;
        if report["orders"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        (report["orders"].as_u64(), report["grossSales"].as_i64()),
        (Some(1), Some(9000))
    );
    let mut actions: Vec<String> = Vec::new();
    for _ in 0..120 {
        let trail = stack
            .get(&format!("/v1/stores/{store}/audit"), Some(&owner))
            .await;
        actions = trail.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["target"].as_str().is_some_and(|t| t.contains(&order)))
            .filter_map(|r| r["action"].as_str().map(String::from))
            .collect();
        if actions.iter().any(|a| a == "order.paid") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    actions.sort();
    let mut unique = actions.clone();
    unique.dedup();
    assert_eq!(actions, unique, "an audit record was written twice");
    assert!(actions.iter().any(|a| a == "order.paid"), "{actions:?}");
    // Every fault did happen (checked once the consumers have done their work: the analytics
    // consumer touches DynamoDB only for the events that count).
    let fired = stack.aws_faults_fired().await;
    for rule in fired["rules"].as_array().unwrap() {
        assert!(rule["fired"].as_u64().unwrap() > 0, "{rule}");
    }
}

#[tokio::test]
async fn one_failing_connection_does_not_keep_the_others_from_their_pushes() {
    let stack = Stack::start();
    let (store, owner, staff, customer) = stack.staffed_store("push-faults").await;
    let mut broken = stack.connect(Some(&owner), Some(&store)).await.unwrap();
    let broken_id = stack.connection_ids().await.pop().unwrap();
    let mut tablet = stack.connect(Some(&staff), Some(&store)).await.unwrap();
    let mut phone = stack.connect(Some(&customer), None).await.unwrap();
    // Every post to the first board fails, after the SDK's retries.
    stack.local("faults", &json!({"refuse": [broken_id]})).await;
    let order = stack.order(&customer, &latte_order(&store)).await;
    let order = order.body["orderId"].as_str().unwrap().to_owned();
    let paid = stack
        .post(
            "/v1/payments/confirm",
            &json!({"orderId": order, "paymentKey": "tpk_push", "amount": 9000}),
            Some(&customer),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK);
    tablet.until("order.paid", Duration::from_secs(30)).await;
    // The customer hears of their order once the store accepts it.
    let accepted = stack
        .post(
            &format!("/v1/orders/{order}/status"),
            &json!({"to": "ACCEPTED", "etaMinutes": 10}),
            Some(&staff),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    phone.until("order.accepted", Duration::from_secs(30)).await;
    // Not redelivered to those who had it (the message did not fail), not delivered to the broken one.
    let more = tablet.drain(Duration::from_secs(3)).await;
    assert!(
        more.iter().all(|p| p["type"] != "order.paid"),
        "pushed again: {more:?}"
    );
    assert!(broken.drain(Duration::from_millis(500)).await.is_empty());
    let logs = stack.logs_with("push failed").await;
    assert!(
        logs.contains("\"PushesFailed\":1"),
        "the failure is counted"
    );
}

#[tokio::test]
async fn the_expiry_sweep_goes_on_past_an_order_it_cannot_expire() {
    let stack = Stack::start_with(&["PaymentWindowSeconds=2"]);
    let (store, _, _, customer) = stack.staffed_store("sweep").await;
    let stuck = stack.order(&customer, &latte_order(&store)).await;
    let stuck = stuck.body["orderId"].as_str().unwrap().to_owned();
    let other = stack.order(&customer, &latte_order(&store)).await;
    let other = other.body["orderId"].as_str().unwrap().to_owned();
    // Every write that expires the first order fails.
    stack
        .aws_faults(
            json!([{"function": "OrdersExpireFunction", "operation": "TransactWriteItems",
            "contains": stuck, "fault": "error"}]),
        )
        .await;
    let status = |order: String| {
        let stack = &stack;
        let customer = &customer;
        async move {
            stack
                .get(&format!("/v1/orders/{order}"), Some(customer))
                .await
                .body["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let mut expired = false;
    for _ in 0..60 {
        if status(other.clone()).await == "EXPIRED" {
            expired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(expired, "the sweep stopped at the failing order");
    assert_eq!(status(stuck.clone()).await, "PENDING_PAYMENT");
    stack.aws_faults(json!([])).await;
    for _ in 0..60 {
        if status(stuck.clone()).await == "EXPIRED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status(stuck).await, "EXPIRED");
}

/// The actions of the store's audit trail about `order`.
async fn audit_actions(stack: &Stack, owner: &str, store: &str, order: &str) -> Vec<String> {
    let reply = stack
        .get(&format!("/v1/stores/{store}/audit"), Some(owner))
        .await;
    reply.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"].as_str().is_some_and(|t| t.contains(order)))
        .filter_map(|r| r["action"].as_str().map(String::from))
        .collect()
}

/// The audit trail's records about the account `user_id`, by action (sorted).
async fn user_audit(stack: &Stack, user_id: &str) -> Vec<String> {
    let target = format!("USER#{user_id}");
    let mut actions: Vec<String> = stack
        .scan()
        .await
        .into_iter()
        .filter(|i| i["PK"].as_s().is_ok_and(|pk| pk.starts_with("AUDIT#")))
        .filter(|i| i["target"].as_s().is_ok_and(|t| *t == target))
        .filter_map(|i| i["action"].as_s().ok().cloned())
        .collect();
    actions.sort();
    actions
}

/// The day's report of `store`: its paid orders and gross sales.
async fn sales(stack: &Stack, owner: &str, store: &str) -> (Option<u64>, Option<i64>) {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Seoul").unwrap())
        .date();
    let report = stack
        .get(
            &format!("/v1/stores/{store}/reports/daily?date={today}"),
            Some(owner),
        )
        .await
        .body;
    (report["orders"].as_u64(), report["grossSales"].as_i64())
}

/// How many events the recording consumer found recorded already, from its metric lines.
fn recorded_before(stack: &Stack) -> f64 {
    e2e::metric_sum(&stack.logs(), "EventsRecordFunction", "MessagesDuplicate")
}

#[tokio::test]
async fn events_lost_to_an_expired_stream_are_replayed_once_in_effect() {
    let stack = Stack::start();
    e2e::clear_of_seoul_midnight().await;
    let (store, owner, _, customer) = stack.staffed_store("replay").await;
    // The recording consumer is down while an order is placed and paid: as far as the audit trail
    // and the sales report know, its events are lost.
    stack
        .local("functions/EventsRecordFunction/stop", &json!({}))
        .await;
    let before = jiff::Timestamp::now();
    let order = stack.order(&customer, &latte_order(&store)).await;
    let order = order.body["orderId"].as_str().unwrap().to_owned();
    stack.mark_paid(&order).await;
    // A sign-up (an outbox item), a sign-in (a new session) and a sign-out (the session's
    // revocation) are lost with them.
    let (newcomer, access, _) = stack
        .account("replay-newcomer@example.com", "CUSTOMER")
        .await;
    let logout = stack
        .post("/v1/auth/logout", &json!({}), Some(&access))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_eq!(
        audit_actions(&stack, &owner, &store, &order).await,
        Vec::<String>::new()
    );
    assert_eq!(user_audit(&stack, &newcomer).await, Vec::<String>::new());
    assert_eq!(sales(&stack, &owner, &store).await.0.unwrap_or(0), 0);
    // The operator replays the time range, twice: the audit records are there once, the sale is
    // counted once.
    let range = json!({"from": (before - jiff::SignedDuration::from_secs(5)).to_string(),
        "to": jiff::Timestamp::now().to_string()});
    for _ in 0..2 {
        let replayed = stack.invoke("EventsReplayFunction", &range).await;
        assert!(replayed["events"].as_u64().unwrap() >= 2, "{replayed}");
    }
    let once = |actions: Vec<String>| actions.iter().filter(|a| *a == "order.paid").count();
    assert_eq!(once(audit_actions(&stack, &owner, &store, &order).await), 1);
    assert_eq!(sales(&stack, &owner, &store).await, (Some(1), Some(9000)));
    let newcomers_day = vec!["user.signed_in", "user.signed_out", "user.signed_up"];
    assert_eq!(user_audit(&stack, &newcomer).await, newcomers_day);
    // The stream's own delivery comes after all: the paid event was recorded, nothing changes.
    // (The placed event was not replayed — an order carries its latest move only — so the stream
    // records it now.)
    stack
        .local("functions/EventsRecordFunction/start", &json!({}))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while recorded_before(&stack) < 1.0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        recorded_before(&stack) >= 1.0,
        "the stream's delivery never came"
    );
    assert_eq!(once(audit_actions(&stack, &owner, &store, &order).await), 1);
    assert_eq!(sales(&stack, &owner, &store).await, (Some(1), Some(9000)));
    assert_eq!(user_audit(&stack, &newcomer).await, newcomers_day);
    // From the stream's dead-letter queue: Lambda's record of a batch it gave up on.
    let sqs = aws_sdk_sqs::Client::new(&stack.aws().await);
    let listed = sqs.list_queues().send().await.unwrap();
    let queue = listed
        .queue_urls()
        .iter()
        .find(|u| u.contains("EventsStreamDLQ"))
        .unwrap_or_else(|| panic!("no stream dead-letter queue in {:?}", listed.queue_urls()))
        .clone();
    let now = jiff::Timestamp::now();
    sqs.send_message()
        .queue_url(&queue)
        .message_body(
            json!({"requestContext": {"condition": "RetryAttemptsExhausted"},
                "DDBStreamBatchInfo": {"shardId": "shardId-1", "startSequenceNumber": "1",
                "endSequenceNumber": "2", "batchSize": 2,
                "approximateArrivalOfFirstRecord": (now - jiff::SignedDuration::from_secs(30)).to_string(),
                "approximateArrivalOfLastRecord": now.to_string()}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let replayed = stack
        .invoke("EventsReplayFunction", &json!({"fromDeadLetters": true}))
        .await;
    assert_eq!(replayed["deadLettersCleared"], 1, "{replayed}");
    assert!(replayed["events"].as_u64().unwrap() >= 2, "{replayed}");
}

/// IAM refuses a call its function's policy does not allow, and so does the local stack: a grant
/// too narrow fails here, not once deployed. The order create's policy without its batch read (the
/// store and its menu, read in one round trip).
#[tokio::test]
async fn a_grant_too_narrow_fails_here_as_it_would_on_aws() {
    let template = std::fs::read_to_string(e2e::root().join("template.yaml")).unwrap();
    let function = template
        .find("\n  OrdersCreateFunction:\n")
        .expect("the order create's resource");
    let grant = "dynamodb:BatchGetItem, ";
    let at = function + template[function..].find(grant).expect("its batch read");
    let narrowed = format!("{}{}", &template[..at], &template[at + grant.len()..]);
    let path = e2e::target_dir().join(format!("narrowed-{}.yaml", std::process::id()));
    std::fs::write(&path, narrowed).unwrap();
    let stack = Stack::start_from(path.to_str().unwrap());
    let (store, _, _, customer) = stack.staffed_store("narrowed").await;

    let refused = stack.order(&customer, &latte_order(&store)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        "{:?}",
        refused.body
    );
    let orders = stack
        .scan()
        .await
        .into_iter()
        .filter(|item| {
            item.get("PK")
                .and_then(|pk| pk.as_s().ok())
                .is_some_and(|pk| pk.starts_with("ORDER#"))
        })
        .count();
    assert_eq!(orders, 0, "an order was placed without its grant");
    assert!(
        stack.logs().contains(
            "OrdersCreateFunction: dynamodb BatchGetItem (dynamodb:BatchGetItem on \
             arn:aws:dynamodb:ap-northeast-2:123456789012:table/"
        ),
        "the refusal is not in the runner's log"
    );
    let _ = std::fs::remove_file(path);
}

/// Closing accounts and changing passwords while the table's calls fail at random (answers lost,
/// throttles, latency), each request sent twice at once (two taps) and retried while it is told to
/// retry. Every answer is documented: a success; a 503 to retry; 404 `USER_NOT_FOUND` for a
/// closing that a twin (or an earlier attempt whose answer was lost) made; 403 `WRONG_PASSWORD` for
/// a change that one made. Invariants: of each pair, at most one success; a closed account leaves
/// nothing of itself (profile, address claim, staff places) and one `user.deleted` event; a changed
/// password is the new one, with one `user.password_changed` event, and the sessions from before
/// are refused. Randomized; `ACCOUNTS_SEED` replays a run.
#[tokio::test]
async fn accounts_close_and_passwords_change_once_whatever_fails_under_them() {
    let seed = e2e::seed("ACCOUNTS_SEED");
    let stack = Stack::start_with(&["AwsAttemptTimeoutMs=1000", "AwsOperationTimeoutMs=3500"]);
    let (_, owner, _) = stack.account("acc-owner@example.com", "OWNER").await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let mut closing = Vec::new();
    let mut changing = Vec::new();
    for n in 0..4 {
        let (id, token, _) = stack
            .account(&format!("acc-close-{n}@example.com"), "CUSTOMER")
            .await;
        stack.hire(&owner, &store, &id, &token).await;
        closing.push((id, token));
        let (id, token, refresh) = stack
            .account(&format!("acc-change-{n}@example.com"), "CUSTOMER")
            .await;
        changing.push((n, id, token, refresh));
    }
    let mut rules = Vec::new();
    for function in ["MeDeleteFunction", "MePasswordFunction"] {
        rules.extend([
            json!({"function": function, "service": "dynamodb", "fault": "lost", "probability": 0.25}),
            json!({"function": function, "service": "dynamodb", "fault": "throttle", "probability": 0.05}),
            json!({"function": function, "service": "dynamodb", "fault": "latency", "delayMs": 150,
                   "probability": 0.2}),
        ]);
    }
    stack
        .local("faults/aws", &json!({"seed": seed, "rules": rules}))
        .await;

    const NEW: &str = "tteokbokki at midnight";
    // A request, sent again while it is told to retry (a documented 503).
    let until_settled =
        |method: reqwest::Method, path: &'static str, body: Value, token: String| {
            let stack = &stack;
            async move {
                for _ in 0..8 {
                    let reply = stack
                        .send_json(method.clone(), path, Some(&body), Some(&token))
                        .await;
                    if !documented(&reply, 0) {
                        return reply;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("{path}: still refused after eight tries");
            }
        };
    let closings = futures::future::join_all(closing.iter().flat_map(|(_, token)| {
        [0, 1].map(|_| {
            until_settled(
                reqwest::Method::DELETE,
                "/v1/me",
                json!({"password": e2e::PASSWORD}),
                token.clone(),
            )
        })
    }));
    let changes = futures::future::join_all(changing.iter().flat_map(|(_, _, token, _)| {
        [0, 1].map(|_| {
            until_settled(
                reqwest::Method::POST,
                "/v1/me/password",
                json!({"currentPassword": e2e::PASSWORD, "newPassword": NEW}),
                token.clone(),
            )
        })
    }));
    let (closings, changes) = futures::join!(closings, changes);
    let fired = stack.aws_faults_fired().await;
    stack.aws_faults(json!([])).await;
    eprintln!("faults fired: {fired}");

    for (pair, (id, _)) in closings.chunks(2).zip(&closing) {
        let told: Vec<(u16, &str)> = pair.iter().map(|r| (r.status.as_u16(), r.code())).collect();
        assert!(
            told.iter()
                .all(|t| *t == (204, "") || *t == (404, "USER_NOT_FOUND")),
            "{id}: {told:?}"
        );
        assert!(
            told.iter().filter(|t| t.0 == 204).count() <= 1,
            "{id}: {told:?}"
        );
    }
    for (pair, (_, id, _, _)) in changes.chunks(2).zip(&changing) {
        let told: Vec<(u16, &str)> = pair.iter().map(|r| (r.status.as_u16(), r.code())).collect();
        assert!(
            told.iter()
                .all(|t| t.0 == 200 || *t == (403, "WRONG_PASSWORD")),
            "{id}: {told:?}"
        );
        assert!(
            told.iter().filter(|t| t.0 == 200).count() <= 1,
            "{id}: {told:?}"
        );
    }

    let items = stack.scan().await;
    let deleted = stack.events_of("user.deleted").await;
    for (id, _) in &closing {
        let left: Vec<_> = items
            .iter()
            .filter(|i| {
                e2e::text_of(i, "PK") == format!("USER#{id}")
                    || e2e::text_of(i, "SK") == format!("STAFF#{id}")
                    || e2e::text_of(i, "userId") == id.as_str() && e2e::text_of(i, "SK") == "EMAIL"
            })
            .collect();
        assert!(left.is_empty(), "{id}: {left:?}");
        let events = deleted
            .iter()
            .filter(|e| e["actor"]["id"] == id.as_str())
            .count();
        assert_eq!(events, 1, "{id}");
    }
    let changed = stack.events_of("user.password_changed").await;
    for (n, id, _, refresh) in &changing {
        let email = format!("acc-change-{n}@example.com");
        assert_eq!(
            stack.login(&email, NEW).await.status,
            StatusCode::OK,
            "{id}: the new password"
        );
        assert_eq!(
            stack.login(&email, e2e::PASSWORD).await.status.as_u16(),
            401
        );
        let renewed = stack
            .post("/v1/auth/refresh", &json!({"refreshToken": refresh}), None)
            .await;
        assert_eq!(
            (renewed.status.as_u16(), renewed.code()),
            (401, "SESSION_REVOKED"),
            "{id}"
        );
        let events = changed
            .iter()
            .filter(|e| e["actor"]["id"] == id.as_str())
            .count();
        assert_eq!(events, 1, "{id}");
    }
}
