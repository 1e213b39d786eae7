//! Per-client rate limits (shared/src/limits.rs), tightened through the template's `RateLimits` so
//! that a test reaches them: each answers 429 with `Retry-After`, changes nothing, and holds only
//! the client it names.

use e2e::{PASSWORD, Stack, StatusCode};
use serde_json::{Value, json};

/// Each test's limits use day-long windows, and a test starts its counted requests at least five
/// minutes before the window's edge: a fixed window's counter starts afresh there.
const WINDOW: u64 = 86_400;

async fn clear_of_window_edge() {
    e2e::clear_of_window_edge(WINDOW, 0, 300).await;
}

fn refused(reply: &e2e::Reply) {
    assert_eq!(
        (reply.status.as_u16(), reply.code()),
        (429, "TOO_MANY_REQUESTS"),
        "{:?}",
        reply.body
    );
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
}

async fn signup(stack: &Stack, email: &str) -> e2e::Reply {
    stack
        .post(
            "/v1/auth/signup",
            &json!({"email": email, "password": PASSWORD, "name": "Kim", "role": "CUSTOMER"}),
            None,
        )
        .await
}

/// A store with the small menu (its owner `<n>-owner@…`), a customer (`<n>-customer@…`, their
/// access token) and the body of a one-latte pickup order from it.
async fn a_customer_and_an_order(stack: &Stack, n: &str) -> (String, Value) {
    let (_, owner, _) = stack
        .account(&format!("{n}-owner@example.com"), "OWNER")
        .await;
    let (_, customer, _) = stack
        .account(&format!("{n}-customer@example.com"), "CUSTOMER")
        .await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let order = json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}],
                       "fulfilment": {"type": "PICKUP"}, "phone": "010-1111-2222"});
    (customer, order)
}

/// Every request of a test comes from 127.0.0.1: one source.
#[tokio::test]
async fn sign_ups_and_sign_ins_are_limited_per_source_address() {
    let stack = Stack::start_with(&[&format!(
        "RateLimits=sign-up-per-source=2/{WINDOW},sign-in-per-source=3/{WINDOW}"
    )]);
    clear_of_window_edge().await;
    assert_eq!(
        signup(&stack, "a@example.com").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        signup(&stack, "b@example.com").await.status,
        StatusCode::CREATED
    );
    let third = signup(&stack, "c@example.com").await;
    refused(&third);
    // Nothing was made for the refused one: sign-in to it fails as for any unknown address.
    assert_eq!(
        stack.login("a@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        stack.login("b@example.com", "wrong password!").await.status,
        StatusCode::UNAUTHORIZED
    );
    let unknown = stack.login("c@example.com", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "no account c");
    // The source's fourth sign-in in the window, to any account, even with the right password.
    refused(&stack.login("b@example.com", PASSWORD).await);
    let counters: Vec<_> = stack
        .scan()
        .await
        .into_iter()
        .filter(|i| i["PK"].as_s().is_ok_and(|pk| pk.starts_with("RATE#")))
        .collect();
    assert_eq!(counters.len(), 2, "one counter per limit and window");
    assert!(counters.iter().all(|c| c.contains_key("expiresAt")));
}

#[tokio::test]
async fn orders_and_connects_are_limited_per_user() {
    let stack = Stack::start_with(&[&format!(
        "RateLimits=orders-per-customer=2/{WINDOW},connects-per-user=2/{WINDOW}"
    )]);
    clear_of_window_edge().await;
    let (customer, order) = a_customer_and_an_order(&stack, "lim").await;
    let (_, neighbour, _) = stack.account("lim-neighbour@example.com", "CUSTOMER").await;
    let first = stack.order_keyed(&customer, "lim-1", &order).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(
        stack.order(&customer, &order).await.status,
        StatusCode::CREATED
    );
    let orders_before = orders(&stack).await;
    refused(&stack.order(&customer, &order).await);
    assert_eq!(
        orders(&stack).await,
        orders_before,
        "the refused order wrote nothing"
    );
    // A retry of an order placed is answered, the limit spent or not: it places nothing.
    let again = stack.order_keyed(&customer, "lim-1", &order).await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::CREATED, &first.body)
    );
    assert_eq!(orders(&stack).await, orders_before);
    // Another customer is not held back by this one.
    assert_eq!(
        stack.order(&neighbour, &order).await.status,
        StatusCode::CREATED
    );

    // A connection refused for its input takes none of the budget.
    assert_eq!(
        stack
            .connect_as(Some(&customer), None, Some("not/a/name"))
            .await
            .err(),
        Some(422)
    );
    let _first = stack.connect(Some(&customer), None).await.unwrap();
    let _second = stack.connect(Some(&customer), None).await.unwrap();
    assert_eq!(stack.connect(Some(&customer), None).await.err(), Some(429));
    assert!(stack.connect(Some(&neighbour), None).await.is_ok());
}

/// An owner opens so many stores a day: the next is refused and writes nothing; a retry of a store
/// opened under its `Idempotency-Key` is still answered; a body refused for its input takes none of
/// the budget; another owner is not held back.
#[tokio::test]
async fn stores_are_limited_per_owner() {
    let stack = Stack::start_with(&[&format!("RateLimits=stores-per-owner=2/{WINDOW}")]);
    clear_of_window_edge().await;
    let (_, owner, _) = stack.account("lim-stores@example.com", "OWNER").await;
    let (_, other, _) = stack.account("lim-stores2@example.com", "OWNER").await;
    let open = |token: &str, key: &str, name: &str| {
        let body = json!({"name": name, "phone": "02-123-4567", "address": "서울"});
        let (stack, token, key) = (&stack, token.to_owned(), key.to_owned());
        async move { stack.store_keyed(&token, &key, &body).await }
    };
    let bad = open(&owner, "s-0", " ").await;
    assert_eq!(
        bad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        bad.body
    );
    let first = open(&owner, "s-1", "One").await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(open(&owner, "s-2", "Two").await.status, StatusCode::CREATED);
    let stores_before = stores(&stack).await;
    refused(&open(&owner, "s-3", "Three").await);
    assert_eq!(
        stores(&stack).await,
        stores_before,
        "the refused one wrote nothing"
    );
    let again = open(&owner, "s-1", "One").await;
    assert_eq!(
        (again.status, &again.body["storeId"]),
        (StatusCode::CREATED, &first.body["storeId"])
    );
    assert_eq!(
        open(&other, "s-1", "Theirs").await.status,
        StatusCode::CREATED
    );
}

/// Every store item in the table.
async fn stores(stack: &Stack) -> usize {
    stack
        .scan()
        .await
        .iter()
        .filter(|i| i["SK"].as_s().is_ok_and(|sk| sk == "STORE"))
        .count()
}

/// A count whose answer is lost (made, then its answer dropped, so the SDK sends it again) counts
/// once: the customer still places every order the limit allows, and no more.
#[tokio::test]
async fn a_count_whose_answer_is_lost_counts_once() {
    let stack = Stack::start_with(&[&format!("RateLimits=orders-per-customer=2/{WINDOW}")]);
    clear_of_window_edge().await;
    let (customer, order) = a_customer_and_an_order(&stack, "lost").await;
    stack
        .aws_faults(
            json!([{"function": "OrdersCreateFunction", "service": "dynamodb",
            "operation": "UpdateItem", "contains": "RATE#", "fault": "lost", "times": 1}]),
        )
        .await;
    let first = stack.order(&customer, &order).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(
        stack.aws_faults_fired().await["rules"][0]["fired"],
        1,
        "the count's answer was lost"
    );
    stack.aws_faults(json!([])).await;
    let second = stack.order(&customer, &order).await;
    assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
    refused(&stack.order(&customer, &order).await);
    assert_eq!(orders(&stack).await, 2);
}

/// Three sends of one order (one `Idempotency-Key`) that all read before any is written take one
/// of the customer's allowance: the count carries the order's id, so the twins' counts are the
/// first's. The customer then places as many other orders as the limit allows, and no more.
#[tokio::test]
async fn sends_of_one_order_count_once() {
    let stack = Stack::start_with(&[&format!("RateLimits=orders-per-customer=2/{WINDOW}")]);
    clear_of_window_edge().await;
    let (customer, order) = a_customer_and_an_order(&stack, "twin").await;
    // Each send's first read waits, so all three read before the first writes.
    stack
        .aws_faults(
            json!([{"function": "OrdersCreateFunction", "service": "dynamodb",
            "operation": "BatchGetItem", "fault": "latency", "delayMs": 700, "times": 3}]),
        )
        .await;
    let sends =
        futures::future::join_all((0..3).map(|_| stack.order_keyed(&customer, "twin-1", &order)))
            .await;
    assert_eq!(stack.aws_faults_fired().await["rules"][0]["fired"], 3);
    stack.aws_faults(json!([])).await;
    for send in &sends {
        assert_eq!(send.status, StatusCode::CREATED, "{:?}", send.body);
        assert_eq!(send.body["orderId"], sends[0].body["orderId"]);
    }
    let other = stack.order(&customer, &order).await;
    assert_eq!(other.status, StatusCode::CREATED, "{:?}", other.body);
    refused(&stack.order(&customer, &order).await);
    assert_eq!(orders(&stack).await, 2);
}

async fn orders(stack: &Stack) -> usize {
    stack
        .scan()
        .await
        .iter()
        .filter(|i| i["SK"].as_s().is_ok_and(|sk| sk == "ORDER"))
        .count()
}

/// A webhook costs a Toss lookup; an order's deliveries beyond the limit get a 429 (Toss retries
/// later) and cost nothing. A `DONE` of the payment that paid the order is looked up by no one, so it
/// takes none of the budget.
#[tokio::test]
async fn webhook_lookups_are_limited_per_order() {
    let stack = Stack::start_scheduled(
        &[&format!("RateLimits=webhooks-per-order=2/{WINDOW}")],
        3600,
    );
    clear_of_window_edge().await;
    // The deliveries in this test are the test's own (the stand-in sends none).
    stack.toss_control(json!({"webhooks": false})).await;
    let order = stack.paid_latte_order("hook").await;
    let deliver = |n: u32, status: &'static str| {
        let stack = &stack;
        let order_id = order.order.clone();
        async move {
            stack
                .send(
                    stack
                        .http()
                        .post(stack.url("/v1/webhooks/toss"))
                        .header("tosspayments-webhook-transmission-id", format!("tx-{n}"))
                        .json(&json!({"eventType": "PAYMENT_STATUS_CHANGED",
                                      "createdAt": "2026-11-29T12:00:00.000000",
                                      "data": {"orderId": order_id, "paymentKey": "tpk_hook",
                                               "status": status}})),
                )
                .await
        }
    };
    // (Toss's own account, looked up, says DONE: nothing changes.)
    for n in 0..2 {
        let reply = deliver(n, "CANCELED").await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(reply.body["outcome"], "nothing to do");
    }
    let deliveries = delivery_records(&stack).await;
    refused(&deliver(2, "CANCELED").await);
    assert_eq!(
        delivery_records(&stack).await,
        deliveries,
        "a refused delivery is not recorded"
    );
    let done = deliver(3, "DONE").await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(
        done.body["outcome"],
        "nothing to do: this payment paid the order"
    );
}

async fn delivery_records(stack: &Stack) -> Vec<Value> {
    let mut ids: Vec<Value> = stack
        .scan()
        .await
        .iter()
        .filter(|i| i["PK"].as_s().is_ok_and(|pk| pk.starts_with("WEBHOOK#")))
        .map(|i| json!(i["PK"].as_s().unwrap()))
        .collect();
    ids.sort_by_key(|v| v.to_string());
    ids
}
