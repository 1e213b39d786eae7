//! Events through the whole pipeline of the local stack: the change (or the outbox item written with
//! it), the table's stream, the notifier, the WebSocket API — and what happens when parts of it
//! fail.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{Stack, StatusCode, metric_sum};
use serde_json::{Value, json};

const LATTE_ORDER: &str = r#"{"items": [{"itemId": "latte", "quantity": 2}],
    "fulfilment": {"type": "PICKUP"}, "phone": "010-2222-3333"}"#;

async fn place(stack: &Stack, customer: &str, store: &str) -> String {
    let mut body: Value = serde_json::from_str(LATTE_ORDER).unwrap();
    body["storeId"] = json!(store);
    let reply = stack.order(customer, &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["orderId"].as_str().unwrap().to_owned()
}

/// Pays a placed latte order (9,000 KRW) through the real confirm (the Toss stand-in).
async fn pay(stack: &Stack, customer: &str, order: &str, payment_key: &str) {
    let confirmed = stack
        .post(
            "/v1/payments/confirm",
            &json!({"orderId": order, "paymentKey": payment_key, "amount": 9000}),
            Some(customer),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
}

async fn move_to(stack: &Stack, token: &str, order: &str, body: Value) {
    let reply = stack
        .post(&format!("/v1/orders/{order}/status"), &body, Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{body}: {:?}", reply.body);
}

/// The pushes' types, sorted: an order's pushes keep its moves' order, but different orders' do
/// not keep each other's (their stream records are read side by side).
fn types(pushes: &[Value]) -> Vec<&str> {
    let mut types: Vec<&str> = pushes
        .iter()
        .map(|p| p["type"].as_str().unwrap_or("?"))
        .collect();
    types.sort();
    types
}

/// How many times each order's push of `kind` arrived.
fn tally<'a>(pushes: &'a [Value], kind: &str) -> BTreeMap<&'a str, usize> {
    let mut seen = BTreeMap::new();
    for push in pushes.iter().filter(|p| p["type"] == kind) {
        *seen
            .entry(push["order"]["orderId"].as_str().unwrap())
            .or_default() += 1;
    }
    seen
}

/// The lane of the notifier's stream that `order`'s events take (its `ParallelizationFactor`).
async fn lane_of(stack: &Stack, order: &str) -> u64 {
    stack
        .stream_lane(
            "NotificationsPushFunction",
            &format!("ORDER#{order}"),
            "ORDER",
        )
        .await
}

/// The orders a push stuck on `orders[stuck]` does not hold back: those before it, and every order
/// of another lane (`lanes[i]` is `orders[i]`'s). Those of its lane after it wait for it.
fn not_held_back<'a>(orders: &'a [String], lanes: &[u64], stuck: usize) -> Vec<&'a str> {
    orders
        .iter()
        .zip(lanes)
        .enumerate()
        .filter(|(i, (_, lane))| *i < stuck || **lane != lanes[stuck])
        .map(|(_, (order, _))| order.as_str())
        .collect()
}

/// Stops the notifier, places and pays four orders (their events wait in the stream), and returns
/// the orders; the notifier stays down until started again.
async fn paid_while_the_notifier_is_down(
    stack: &Stack,
    customer: &str,
    store: &str,
) -> Vec<String> {
    stack
        .local("functions/NotificationsPushFunction/stop", &json!({}))
        .await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        let order = place(stack, customer, store).await;
        stack.mark_paid(&order).await;
        orders.push(order);
    }
    orders
}

/// Adds pushes to `pushes` until `orders` distinct orders have an `order.paid` among them, or
/// `within` passes.
async fn await_paid(
    board: &mut e2e::Pushes,
    pushes: &mut Vec<Value>,
    orders: usize,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    while tally(pushes, "order.paid").len() < orders && Instant::now() < deadline {
        if let Some(push) = board.next(Duration::from_secs(1)).await {
            pushes.push(push);
        }
    }
}

/// A board that names itself (`?device=`, and `device` on its moves) is not pushed the moves it
/// made — their answers told it, and each push is paid for — but hears every other board's, and
/// every move that names no board. An order's pushes arrive in the order of its moves (the
/// stream's), so the first push a board hears after its own move is the move after it.
#[tokio::test]
async fn a_board_hears_every_move_but_its_own() {
    let stack = Stack::start();
    let (store, _owner, staff, customer) = stack.staffed_store("own").await;
    let board = |device: Option<&'static str>| {
        let (stack, staff, store) = (&stack, &staff, &store);
        async move {
            stack
                .connect_as(Some(staff), Some(store), device)
                .await
                .expect("staff connect")
        }
    };
    // A device is a short plain name; anything else refuses the connection.
    for bad in ["tab/1", &"d".repeat(33)] {
        let refused = stack
            .connect_as(Some(&staff), Some(&store), Some(bad))
            .await
            .err();
        assert_eq!(refused, Some(422), "{bad}");
    }
    let mut counter = board(Some("counter-tab")).await;
    let mut kitchen = board(Some("kitchen-tab")).await;
    // This one sends its token's scheme in lower case (RFC 9110 allows any), as the HTTP API
    // reads it too.
    let mut unnamed = stack
        .connect_raw(
            &format!("storeId={store}"),
            Some(&format!("bearer {staff}")),
        )
        .await
        .expect("a lower-case bearer connects");

    let order = place(&stack, &customer, &store).await;
    pay(&stack, &customer, &order, "tpk_own_1").await;
    let within = Duration::from_secs(10);
    for board in [&mut counter, &mut kitchen, &mut unnamed] {
        assert_eq!(
            types(&board.until("order.paid", within).await),
            ["order.paid"]
        );
    }

    // A move that names a device badly is refused, and moves nothing.
    let path = format!("/v1/orders/{order}/status");
    let refused = stack
        .post(
            &path,
            &json!({"to": "ACCEPTED", "etaMinutes": 10, "device": "counter tab"}),
            Some(&staff),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.body["error"]["code"], "VALIDATION_FAILED");
    let read = stack
        .get(&format!("/v1/orders/{order}"), Some(&staff))
        .await;
    assert_eq!(read.body["status"], "PAID", "{:?}", read.body);

    let by = |device: &str, to: &str| {
        let mut body = json!({"to": to, "device": device});
        if to == "ACCEPTED" {
            body["etaMinutes"] = json!(10);
        }
        body
    };
    move_to(&stack, &staff, &order, by("counter-tab", "ACCEPTED")).await;
    move_to(&stack, &staff, &order, by("kitchen-tab", "PREPARING")).await;
    move_to(&stack, &staff, &order, by("counter-tab", "READY")).await;
    // A move that names no board is everyone's.
    move_to(&stack, &staff, &order, json!({"to": "COMPLETED"})).await;

    let heard = |pushes: Vec<Value>| -> Vec<String> {
        pushes
            .iter()
            .map(|p| p["type"].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    assert_eq!(
        heard(counter.until("order.completed", within).await),
        ["order.preparing", "order.completed"]
    );
    assert_eq!(
        heard(kitchen.until("order.completed", within).await),
        ["order.accepted", "order.ready", "order.completed"]
    );
    let all = unnamed.until("order.completed", within).await;
    assert_eq!(
        heard(all.clone()),
        [
            "order.accepted",
            "order.preparing",
            "order.ready",
            "order.completed"
        ]
    );
    // A board's name is never pushed to anyone.
    assert!(
        !Value::from(all).to_string().contains("-tab"),
        "a device's name was pushed"
    );
}

#[tokio::test]
async fn staff_see_paid_orders_and_customers_see_their_own() {
    let stack = Stack::start();
    let (store, _owner, staff, customer) = stack.staffed_store("a").await;
    let (_, other_owner, _) = stack.account("ev-owner-b@example.com", "OWNER").await;
    let other_store = stack.store(&other_owner, json!({})).await;

    // $connect authenticates, and subscribes only to what the caller may see.
    assert_eq!(stack.connect(None, None).await.err(), Some(401));
    assert_eq!(
        stack.connect(Some("not-a-token"), None).await.err(),
        Some(401)
    );
    assert_eq!(
        stack.connect(Some(&staff), Some(&other_store)).await.err(),
        Some(403)
    );
    assert_eq!(
        stack.connect(Some(&customer), Some(&store)).await.err(),
        Some(403)
    );
    // A store id that no store can have is refused before a key is built from it (on AWS, one
    // over DynamoDB's 2 KB key limit would fail the lookup: a 500).
    for bad in ["", "a%2Fb", &"s".repeat(3000)] {
        let refused = stack
            .connect_raw(&format!("storeId={bad}"), Some(&format!("Bearer {staff}")))
            .await
            .err();
        assert_eq!(refused, Some(422), "storeId={bad:.20}");
    }
    let mut board = stack
        .connect(Some(&staff), Some(&store))
        .await
        .expect("staff connect");
    let mut phone = stack
        .connect(Some(&customer), None)
        .await
        .expect("customer connect");
    let mut elsewhere = stack
        .connect(Some(&other_owner), Some(&other_store))
        .await
        .expect("other owner connect");

    // Paid through the real confirm (Toss stand-in): the board hears of it.
    let first = place(&stack, &customer, &store).await;
    pay(&stack, &customer, &first, "tpk_ev_1").await;
    let paid_at = Instant::now();
    let pushes = board.until("order.paid", Duration::from_secs(10)).await;
    let latency = paid_at.elapsed();
    println!("paid order reached the store board {latency:?} after confirm answered");
    assert_eq!(
        types(&pushes),
        vec!["order.paid"],
        "unpaid orders are not pushed to stores"
    );
    let push = &pushes[0];
    assert_eq!(push["order"]["orderId"], first.as_str());
    assert_eq!(push["order"]["status"], "PAID");
    assert_eq!(push["order"]["total"], 9000);
    assert_eq!(push["order"]["lines"][0]["itemId"], "latte");
    assert!(push["eventId"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        !push.to_string().contains("010-2222-3333"),
        "no personal data in pushes"
    );

    // The customer hears what needs them: accepted (with the ETA), ready. Not that it was paid
    // (their confirm said so) nor that it is being prepared.
    move_to(
        &stack,
        &staff,
        &first,
        json!({"to": "ACCEPTED", "etaMinutes": 15}),
    )
    .await;
    let accepted = phone.until("order.accepted", Duration::from_secs(10)).await;
    assert_eq!(types(&accepted), vec!["order.accepted"]);
    assert!(accepted[0]["order"]["etaAt"].is_string());
    move_to(&stack, &staff, &first, json!({"to": "PREPARING"})).await;
    move_to(&stack, &staff, &first, json!({"to": "READY"})).await;
    assert_eq!(
        types(&phone.until("order.ready", Duration::from_secs(10)).await),
        vec!["order.ready"]
    );

    // A rejected order: the customer hears why, then that the money went back.
    let second = place(&stack, &customer, &store).await;
    pay(&stack, &customer, &second, "tpk_ev_2").await;
    move_to(
        &stack,
        &staff,
        &second,
        json!({"to": "REJECTED", "reason": "OUT_OF_STOCK"}),
    )
    .await;
    // The refund's event is an item of its own, and the stream keeps only each item's changes in
    // order: its push may come before the rejection's (the version tells a client which is newer).
    let settled = ["order.rejected", "order.refunded"];
    let heard = phone.until_each(&settled, Duration::from_secs(10)).await;
    let of = |kind: &str| {
        heard
            .iter()
            .find(|push| push["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind}: {heard:?}"))
    };
    let rejection = of("order.rejected");
    assert_eq!(rejection["order"]["orderId"], second.as_str());
    assert_eq!(rejection["order"]["reason"], "OUT_OF_STOCK");
    let refund = of("order.refunded");
    assert_eq!(refund["order"]["orderId"], second.as_str());
    assert_eq!(refund["order"]["refund"]["amount"], 9000);

    // The board saw its whole day; another store's owner saw nothing of it.
    let day = board.until_each(&settled, Duration::from_secs(10)).await;
    assert_eq!(
        types(&day),
        vec![
            "order.accepted",
            "order.paid",
            "order.preparing",
            "order.ready",
            "order.refunded",
            "order.rejected"
        ]
    );
    assert_eq!(
        elsewhere.drain(Duration::from_secs(1)).await,
        Vec::<Value>::new()
    );

    // A closed connection is forgotten by the first push to its channel, which API Gateway answers
    // 410 for (nothing listens for `$disconnect`); until then, or its two-hour TTL, its member stays.
    let members = |channel: String| {
        let stack = &stack;
        async move {
            stack
                .scan()
                .await
                .into_iter()
                .filter(|item| item.get("PK").and_then(|pk| pk.as_s().ok()) == Some(&channel))
                .collect::<Vec<_>>()
        }
    };
    drop(board);
    drop(elsewhere);
    let mut open = usize::MAX;
    for _ in 0..50 {
        open = stack.connection_ids().await.len();
        if open == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, 1, "the phone alone is still connected");
    let closed = members(format!("WS#STORE#{store}")).await;
    assert_eq!(closed.len(), 1, "{closed:?}");
    let expires_at: i64 = closed[0]["expiresAt"].as_n().unwrap().parse().unwrap();
    let in_two_hours = jiff::Timestamp::now().as_second() + 2 * 3600;
    assert!(
        (in_two_hours - 60..=in_two_hours).contains(&expires_at),
        "{expires_at}"
    );
    move_to(&stack, &staff, &first, json!({"to": "COMPLETED"})).await;
    // The store's push met the closed board and forgot it; the customer's phone heard on.
    assert_eq!(
        types(
            &phone
                .until("order.completed", Duration::from_secs(10))
                .await
        ),
        vec!["order.completed"]
    );
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = members(format!("WS#STORE#{store}")).await.len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        left, 0,
        "the closed board outlived the push that found it gone"
    );
    // The other store heard nothing: its closed board waits for its TTL.
    assert_eq!(members(format!("WS#STORE#{other_store}")).await.len(), 1);
}

#[tokio::test]
async fn a_notifier_down_loses_nothing_and_one_that_crashed_pushes_in_order_again() {
    let stack = Stack::start();
    let (store, _owner, staff, customer) = stack.staffed_store("crash").await;
    let mut board = stack
        .connect(Some(&staff), Some(&store))
        .await
        .expect("staff connect");

    // The notifier is down while four orders are placed and paid: the events wait in the stream.
    let orders = paid_while_the_notifier_is_down(&stack, &customer, &store).await;
    assert_eq!(
        board.drain(Duration::from_millis(1500)).await,
        Vec::<Value>::new()
    );

    // The notifier comes back and hangs on the third order's push. That holds back nothing of
    // another lane of the stream (`ParallelizationFactor`), and nothing before it: every such
    // order is pushed. An order after it in its lane (the fourth, one time in ten) waits with it
    // when a later batch holds it, and is pushed when the same batch does: the notifier pushes a
    // batch's orders side by side (`consumer::process_stream_outside`), and which batch a record
    // lands in is the stream's timing.
    let push = "NotificationsPushFunction";
    let mut lanes = Vec::new();
    for order in &orders {
        lanes.push(lane_of(&stack, order).await);
    }
    let unhindered = not_held_back(&orders, &lanes, 2);
    stack.local("faults", &json!({"hang": [orders[2]]})).await;
    stack
        .local(&format!("functions/{push}/start"), &json!({}))
        .await;
    let before_crash = board.drain(Duration::from_secs(3)).await;
    let heard = tally(&before_crash, "order.paid");
    assert!(
        unhindered.iter().all(|order| heard.get(order) == Some(&1)),
        "every order pushed once but the hung one and those after it in its lane \
         ({lanes:?}): {heard:?}"
    );
    assert!(
        !heard.contains_key(orders[2].as_str()) && heard.values().all(|n| *n == 1),
        "the hung order not pushed, no order pushed twice ({lanes:?}): {heard:?}"
    );
    // The notifier dies mid-batch; the stream gives the whole batch to its next instance.
    stack
        .local(&format!("functions/{push}/stop"), &json!({}))
        .await;
    stack.local("faults", &json!({})).await;
    stack
        .local(&format!("functions/{push}/start"), &json!({}))
        .await;

    let mut pushes = before_crash;
    await_paid(&mut board, &mut pushes, 4, Duration::from_secs(20)).await;
    pushes.extend(board.drain(Duration::from_secs(2)).await);
    // Every paid order reached the board. The crashed batch came again from its start (those of
    // its orders pushed before the crash were pushed twice: a push is made at least once), and a
    // repeat is the same event, so the board drops it: one event id and one version per order.
    let mut events: BTreeMap<&str, std::collections::BTreeSet<(String, u64)>> = BTreeMap::new();
    for push in pushes.iter().filter(|p| p["type"] == "order.paid") {
        events
            .entry(push["order"]["orderId"].as_str().unwrap())
            .or_default()
            .insert((
                push["eventId"].as_str().unwrap().to_owned(),
                push["order"]["orderVersion"].as_u64().unwrap(),
            ));
    }
    let expected: BTreeMap<&str, usize> = orders.iter().map(|o| (o.as_str(), 1)).collect();
    assert_eq!(
        events
            .iter()
            .map(|(o, e)| (*o, e.len()))
            .collect::<BTreeMap<_, _>>(),
        expected,
        "each paid order pushed as one event: {pushes:?}"
    );
}

/// A push that fails holds back what comes after it in its lane of the stream, and nothing else:
/// the notifier's stream is read in ten lanes by item (`ParallelizationFactor`), as
/// Lambda reads it, and a lane waits on its own failures only. Every order of another lane is
/// pushed while the fault lasts; the refused order's lane goes on once it is pushed.
#[tokio::test]
async fn a_failed_push_holds_back_only_its_lane_and_repeats_none_before_it() {
    let stack = Stack::start();
    let (store, _owner, staff, customer) = stack.staffed_store("half").await;
    let mut board = stack
        .connect(Some(&staff), Some(&store))
        .await
        .expect("staff connect");

    let mut orders = paid_while_the_notifier_is_down(&stack, &customer, &store).await;
    let push = "NotificationsPushFunction";
    let mut lanes = Vec::new();
    for order in &orders {
        lanes.push(lane_of(&stack, order).await);
    }
    let refused_lane = lanes[1];
    // At least one order after the refused one in another lane (almost always among the first
    // four), so the test shows it not held back.
    let another_after = |lanes: &[u64]| lanes[2..].iter().any(|l| *l != refused_lane);
    while !another_after(&lanes) && orders.len() < 20 {
        let order = place(&stack, &customer, &store).await;
        stack.mark_paid(&order).await;
        lanes.push(lane_of(&stack, &order).await);
        orders.push(order);
    }
    assert!(
        another_after(&lanes),
        "no order in another lane than the refused one"
    );
    // Pushed while the fault lasts: every order before the refused one, and every order of
    // another lane. Those of its lane after it may wait for it (if a later batch holds them).
    let unhindered: std::collections::BTreeSet<&str> =
        not_held_back(&orders, &lanes, 1).into_iter().collect();
    // Pushes of the second order fail.
    stack.local("faults", &json!({"refuse": [orders[1]]})).await;
    stack
        .local(&format!("functions/{push}/start"), &json!({}))
        .await;
    let mut pushes = Vec::new();
    // A deadline, not a timing: generous, for a machine busy with the rest of the suite.
    let deadline = Instant::now() + Duration::from_secs(45);
    while Instant::now() < deadline && {
        let heard = tally(&pushes, "order.paid");
        !unhindered.iter().all(|o| heard.contains_key(o))
    } {
        if let Some(push) = board.next(Duration::from_secs(1)).await {
            pushes.push(push);
        }
    }
    pushes.extend(board.drain(Duration::from_secs(3)).await);
    let heard = tally(&pushes, "order.paid");
    let missing: Vec<_> = unhindered
        .iter()
        .filter(|o| !heard.contains_key(*o))
        .collect();
    assert!(
        missing.is_empty(),
        "held back by another lane's failure: {missing:?}"
    );
    assert!(
        !heard.contains_key(orders[1].as_str()),
        "the refused order was pushed"
    );
    // The fault stays until the notifier has given the push up (the SDK retries a refused post
    // for seconds, and a retry after the fault's end would succeed and report nothing).
    let mut waited = 0;
    while metric_sum(&stack.logs(), "NotificationsPushFunction", "MessagesFailed") < 1.0 {
        assert!(waited < 600, "no failed push reported within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    stack.local("faults", &json!({})).await;
    await_paid(
        &mut board,
        &mut pushes,
        orders.len(),
        Duration::from_secs(45),
    )
    .await;
    pushes.extend(board.drain(Duration::from_secs(2)).await);
    // The stream retried from the failed push, not before it: the first order was pushed once.
    // Those after it in the stream came again with it (a push is made at least once), as the same
    // event each time, which a board drops.
    let pushed = tally(&pushes, "order.paid");
    assert_eq!(pushed.get(orders[0].as_str()), Some(&1), "{pushed:?}");
    let mut events: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for push in pushes.iter().filter(|p| p["type"] == "order.paid") {
        events
            .entry(push["order"]["orderId"].as_str().unwrap())
            .or_default()
            .insert(push["eventId"].as_str().unwrap());
    }
    let expected: BTreeMap<&str, usize> = orders.iter().map(|o| (o.as_str(), 1)).collect();
    assert_eq!(
        events
            .iter()
            .map(|(o, e)| (*o, e.len()))
            .collect::<BTreeMap<_, _>>(),
        expected
    );
    let logs = stack.settled_logs().await;
    let failed = metric_sum(&logs, "NotificationsPushFunction", "MessagesFailed");
    assert!(failed >= 1.0, "failures reported: {failed}");
}

/// How many invocations of `function` the runner's log shows (each writes one line that ends it).
fn jobs(logs: &str, function: &str) -> usize {
    logs.lines()
        .filter(|l| l.starts_with(&format!("[{function}#")) && l.contains(r#""message":"job"#))
        .count()
}

/// The notifier is invoked only for what someone hears of (its stream filters): not for sign-ups,
/// sign-ins or a placed order, which the recorder takes all the same.
#[tokio::test]
async fn the_notifier_hears_only_what_it_pushes() {
    let stack = Stack::start();
    let (store, _, _, customer) = stack.staffed_store("quiet").await;
    let order = place(&stack, &customer, &store).await;
    let recorded = |action: &'static str| {
        let stack = &stack;
        let target = format!("ORDER#{order}");
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                let found = stack.scan().await.iter().any(|i| {
                    i["PK"].as_s().is_ok_and(|pk| pk.starts_with("AUDIT#"))
                        && i["target"].as_s().is_ok_and(|t| *t == target)
                        && i["action"].as_s().is_ok_and(|a| a == action)
                });
                if found {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            panic!("{action} never recorded");
        }
    };
    recorded("order.placed").await;
    // Both readers poll the stream alike: give the notifier its turn.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let logs = stack.logs();
    assert!(jobs(&logs, "EventsRecordFunction") >= 1);
    assert_eq!(
        jobs(&logs, "NotificationsPushFunction"),
        0,
        "invoked for nothing"
    );

    stack.mark_paid(&order).await;
    recorded("order.paid").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while jobs(&stack.logs(), "NotificationsPushFunction") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        metric_sum(&stack.logs(), "NotificationsPushFunction", "BatchSize"),
        1.0,
        "the paid order alone"
    );
}

#[tokio::test]
async fn sign_ins_are_events_that_reach_the_audit_trail_without_the_address() {
    let stack = Stack::start();
    let (user_id, _, _) = stack.account("ev-audit@example.com", "CUSTOMER").await;
    let failed = stack
        .login("ev-audit@example.com", "wrong password here")
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);

    // The outbox: each event as the queues carry it; a sign-in is its session's creation instead.
    let items = stack.scan().await;
    let bodies: Vec<Value> = items
        .iter()
        .filter(|i| {
            i.get("entity")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|e| e == "EVENT")
        })
        .map(|i| serde_json::from_str(i["body"].as_s().unwrap()).unwrap())
        .collect();
    let kinds: Vec<&str> = bodies.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in ["user.signed_up", "user.sign_in_failed"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(!kinds.contains(&"user.signed_in"), "{kinds:?}");
    let sessions: Vec<_> = items
        .iter()
        .filter(|i| i["SK"].as_s().unwrap() == "SESSION")
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let session_id = sessions[0]["sessionId"].as_s().unwrap();
    let stamp = sessions[0]["signedIn"]
        .as_m()
        .expect("the session's sign-in");
    assert!(stamp["requestId"].as_s().is_ok_and(|id| !id.is_empty()));

    // Through the stream and its recorder (`events-record`): audit records.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut audited = Vec::new();
    while audited.len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        audited = stack
            .scan()
            .await
            .into_iter()
            .filter(|i| i["PK"].as_s().unwrap().starts_with("AUDIT#"))
            .collect();
    }
    let actions: Vec<&str> = audited
        .iter()
        .map(|i| i["action"].as_s().unwrap().as_str())
        .collect();
    for kind in ["user.signed_up", "user.signed_in", "user.sign_in_failed"] {
        assert!(actions.contains(&kind), "{kind} not audited: {actions:?}");
    }
    let signed_in: Vec<_> = audited
        .iter()
        .filter(|i| i["action"].as_s().unwrap() == "user.signed_in")
        .collect();
    assert_eq!(signed_in.len(), 1, "one sign-in, one record: {signed_in:?}");
    let signed_in = signed_in[0];
    assert_eq!(
        e2e::audit_event_id(signed_in),
        &format!("{session_id}.signed_in")
    );
    assert_eq!(
        signed_in["target"].as_s().unwrap(),
        &format!("USER#{user_id}")
    );
    let actor = signed_in["actor"].as_m().unwrap();
    assert_eq!(actor["kind"].as_s().unwrap(), "USER");
    assert_eq!(actor["id"].as_s().unwrap(), &user_id);
    assert_eq!(signed_in["requestId"], stamp["requestId"]);
    for item in items.iter().chain(&audited) {
        assert!(
            !format!("{item:?}").contains("ev-audit@example.com"),
            "an address stored: {item:?}"
        );
    }
}

/// A subscription ends with what entitled it: the boards of a staff member who signs out and of one
/// removed from the staff stop hearing the store and are closed; the owner's board and the customer
/// hear on.
#[tokio::test]
async fn boards_stop_hearing_when_their_session_or_staff_place_ends() {
    let stack = Stack::start();
    let (store, owner, staff, customer) = stack.staffed_store("end").await;
    let (second_id, second, _) = stack.account("staff2-end@example.com", "CUSTOMER").await;
    stack.hire(&owner, &store, &second_id, &second).await;

    let mut signed_out = stack.connect(Some(&staff), Some(&store)).await.unwrap();
    let mut removed = stack.connect(Some(&second), Some(&store)).await.unwrap();
    let mut owner_board = stack.connect(Some(&owner), Some(&store)).await.unwrap();
    let mut phone = stack.connect(Some(&customer), None).await.unwrap();
    assert_eq!(stack.connection_ids().await.len(), 4);

    let first = place(&stack, &customer, &store).await;
    stack.mark_paid(&first).await;
    move_to(
        &stack,
        &owner,
        &first,
        json!({"to": "ACCEPTED", "etaMinutes": 5}),
    )
    .await;
    for board in [&mut signed_out, &mut removed, &mut owner_board, &mut phone] {
        let heard = board.until("order.accepted", Duration::from_secs(10)).await;
        assert_eq!(heard.last().unwrap()["order"]["orderId"], first.as_str());
    }

    let logout = stack
        .post("/v1/auth/logout", &json!({}), Some(&staff))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let removal = stack
        .delete(
            &format!("/v1/stores/{store}/staff/{second_id}"),
            Some(&owner),
        )
        .await;
    assert!(removal.status.is_success(), "{:?}", removal.body);
    // A reading of a session or a staff place is believed for ten seconds (realtime::STANDING_FOR).
    tokio::time::sleep(Duration::from_secs(11)).await;

    let next = place(&stack, &customer, &store).await;
    stack.mark_paid(&next).await;
    let heard = owner_board
        .until("order.paid", Duration::from_secs(10))
        .await;
    assert_eq!(heard.last().unwrap()["order"]["orderId"], next.as_str());
    move_to(
        &stack,
        &owner,
        &next,
        json!({"to": "ACCEPTED", "etaMinutes": 5}),
    )
    .await;
    let heard = phone.until("order.accepted", Duration::from_secs(10)).await;
    assert_eq!(heard.last().unwrap()["order"]["orderId"], next.as_str());
    assert_eq!(signed_out.next(Duration::from_secs(2)).await, None);
    assert_eq!(removed.next(Duration::from_secs(2)).await, None);
    // Both were closed and forgotten; the others stay.
    assert_eq!(stack.connection_ids().await.len(), 2);
    let left: Vec<_> = stack
        .scan()
        .await
        .into_iter()
        .filter(|i| i["PK"].as_s().is_ok_and(|pk| pk.starts_with("WS#")))
        .collect();
    assert_eq!(left.len(), 2, "the owner's board and the phone: {left:?}");
}
