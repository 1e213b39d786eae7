//! Payments through the local runner and the Toss stand-in: paid exactly once, amounts checked before
//! Toss is called, ambiguous answers settled by asking Toss, refusals with our own codes.

use std::time::Duration;

use e2e::{Stack, StatusCode};
use futures::future::join_all;
use serde_json::{Value, json};

async fn toss(stack: &Stack, control: Value) {
    let reply = stack
        .http()
        .post(format!("{}/__control", stack.toss))
        .json(&control)
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success());
}

async fn confirms_executed(stack: &Stack) -> u64 {
    let stats: Value = stack
        .http()
        .get(format!("{}/__stats", stack.toss))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["confirmsExecuted"].as_u64().unwrap()
}

/// A customer with a fresh 9,000 KRW order (two lattes); (customer token, order id).
async fn unpaid_order(stack: &Stack, n: &str) -> (String, String, String) {
    let (_, owner, _) = stack
        .account(&format!("pay-owner-{n}@example.com"), "OWNER")
        .await;
    let (_, customer, _) = stack
        .account(&format!("pay-customer-{n}@example.com"), "CUSTOMER")
        .await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let order = stack
        .order(
            &customer,
            &json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 2}],
            "fulfilment": {"type": "PICKUP"}, "phone": "010-2222-3333"}),
        )
        .await;
    assert_eq!(order.body["total"], 9000);
    (
        customer,
        order.body["orderId"].as_str().unwrap().to_owned(),
        owner,
    )
}

fn confirm(order: &str, key: &str, amount: i64) -> Value {
    json!({"orderId": order, "paymentKey": key, "amount": amount})
}

#[tokio::test]
async fn a_confirmed_payment_marks_the_order_paid_once() {
    let stack = Stack::start();
    let (customer, order, owner) = unpaid_order(&stack, "happy").await;

    // A tampered amount is refused before Toss hears of it.
    let tampered = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_happy", 100),
            Some(&customer),
        )
        .await;
    assert_eq!(
        (tampered.status.as_u16(), tampered.code()),
        (422, "AMOUNT_MISMATCH")
    );
    assert_eq!(confirms_executed(&stack).await, 0);
    // Only the order's customer confirms it.
    let (_, stranger, _) = stack.account("pay-stranger@example.com", "CUSTOMER").await;
    let foreign = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_happy", 9000),
            Some(&stranger),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(
        stack
            .post(
                "/v1/payments/confirm",
                &confirm(&order, "tpk_happy", 9000),
                Some(&owner)
            )
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let paid = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_happy", 9000),
            Some(&customer),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "PAID");
    // The app retries (a lost response): the same success, no second charge.
    let again = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_happy", 9000),
            Some(&customer),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(confirms_executed(&stack).await, 1);
    // The store sees it on its board; the payment key is sealed at rest.
    let read = stack
        .get(&format!("/v1/orders/{order}"), Some(&owner))
        .await;
    assert_eq!(read.body["status"], "PAID");
    let dump = format!("{:?}", stack.scan().await);
    assert!(!dump.contains("tpk_happy"));
}

#[tokio::test]
async fn a_hundred_concurrent_confirms_charge_once() {
    let stack = Stack::start();
    let (customer, order, _) = unpaid_order(&stack, "race").await;
    toss(&stack, json!({"confirm": "slow", "delayMs": 300})).await;
    let body = confirm(&order, "tpk_race", 9000);
    let attempts: Vec<_> = (0..100)
        .map(|_| stack.post("/v1/payments/confirm", &body, Some(&customer)))
        .collect();
    let replies = join_all(attempts).await;
    let mut ok = 0;
    for reply in &replies {
        match (reply.status.as_u16(), reply.code()) {
            (200, _) => ok += 1,
            (409, "PAYMENT_IN_PROGRESS") | (409, "ORDER_STATUS_CHANGED") => {}
            other => panic!("unexpected {other:?}: {:?}", reply.body),
        }
    }
    assert!(ok >= 1);
    assert_eq!(
        confirms_executed(&stack).await,
        1,
        "Toss ran exactly one confirm"
    );
    let read = stack
        .get(&format!("/v1/orders/{order}"), Some(&customer))
        .await;
    assert_eq!(read.body["status"], "PAID");
    assert_eq!(
        read.body["version"], 2,
        "paid once: one move in the history"
    );
}

#[tokio::test]
async fn an_unanswered_confirm_is_settled_without_a_second_charge() {
    // Calls to Toss time out after a second; the stand-in answers after three.
    let stack = Stack::start_with(&["TossTimeoutMs=1000"]);
    let (customer, order, _) = unpaid_order(&stack, "ambiguous").await;
    toss(&stack, json!({"confirm": "ambiguous", "delayMs": 3000})).await;
    let first = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_lost", 9000),
            Some(&customer),
        )
        .await;
    assert_eq!(
        (first.status.as_u16(), first.code()),
        (503, "PAYMENT_PENDING"),
        "{:?}",
        first.body
    );
    assert!(first.header("retry-after").is_some());
    assert_eq!(confirms_executed(&stack).await, 1, "Toss did charge");
    toss(&stack, json!({"confirm": "normal"})).await;

    // The reconciler (every second here) asks Toss and settles it.
    let mut status = Value::Null;
    for _ in 0..60 {
        status = stack
            .get(&format!("/v1/orders/{order}"), Some(&customer))
            .await
            .body["status"]
            .clone();
        if status == "PAID" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, "PAID");
    // The customer's retry finds it settled; Toss was never asked to charge again.
    let retry = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_lost", 9000),
            Some(&customer),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(confirms_executed(&stack).await, 1);
}

#[tokio::test]
async fn refusals_have_our_codes_and_a_new_attempt_may_follow() {
    let stack = Stack::start();
    let (customer, order, _) = unpaid_order(&stack, "refused").await;
    toss(&stack, json!({"confirm": "reject"})).await;
    let declined = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_declined", 9000),
            Some(&customer),
        )
        .await;
    assert_eq!(
        (declined.status.as_u16(), declined.code()),
        (422, "CARD_REJECTED")
    );
    let read = stack
        .get(&format!("/v1/orders/{order}"), Some(&customer))
        .await;
    assert_eq!(read.body["status"], "PENDING_PAYMENT");

    // Another card (a new Toss payment) goes through.
    toss(&stack, json!({"confirm": "normal"})).await;
    let paid = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_second_card", 9000),
            Some(&customer),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    assert_eq!(paid.body["status"], "PAID");
    // Paid orders are not paid again, whatever the key.
    let twice = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_third", 9000),
            Some(&customer),
        )
        .await;
    assert_eq!(
        (twice.status.as_u16(), twice.code()),
        (409, "ORDER_NOT_PAYABLE")
    );
    assert_eq!(confirms_executed(&stack).await, 1);
}
