//! Payments through the local runner and the Toss stand-in: paid exactly once, amounts checked before
//! Toss is called, ambiguous answers settled by asking Toss, refusals with our own codes.

use std::time::{Duration, Instant};

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
    toss_stats(stack).await["confirmsExecuted"]
        .as_u64()
        .unwrap()
}

/// How many times a payment was looked up at Toss by its order.
async fn lookups(stack: &Stack) -> u64 {
    toss_stats(stack).await["lookupsByOrder"].as_u64().unwrap()
}

async fn toss_stats(stack: &Stack) -> Value {
    stack
        .http()
        .get(format!("{}/__stats", stack.toss))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A customer with a fresh 9,000 KRW order (two lattes): (customer token, order id, owner token).
async fn unpaid_order(stack: &Stack, n: &str) -> (String, String, String) {
    let latte = stack.latte_order(&format!("pay-{n}")).await;
    (latte.customer, latte.order, latte.owner)
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
    // Nor is anything secret in the logs: not the payment key, not our Toss secret key.
    let logs = stack.settled_logs().await;
    assert!(
        logs.contains("POST /v1/payments/confirm"),
        "the logs were captured"
    );
    assert!(!logs.contains("tpk_happy") && !logs.contains("test_sk_local_standin"));
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
async fn a_confirm_that_loses_the_race_to_its_twin_gets_the_twins_answer() {
    // The app sends its confirm twice (a double tap). The first one's intent reaches the table
    // four seconds late: the second writes its own, is charged and settles the order meanwhile.
    // The first, refused its write, reads the payment settled by the same key: it answers as its
    // twin did, not that the order "was paid with another payment".
    let stack = Stack::start();
    let (customer, order, _) = unpaid_order(&stack, "twins").await;
    stack
        .aws_faults(
            json!([{"function": "PaymentsConfirmFunction", "service": "dynamodb",
            "operation": "PutItem", "contains": "PAYMENT#", "fault": "latency",
            "delayMs": 4000, "times": 1}]),
        )
        .await;
    let body = confirm(&order, "tpk_twins", 9000);
    let first = async {
        let reply = stack
            .post("/v1/payments/confirm", &body, Some(&customer))
            .await;
        (reply, Instant::now())
    };
    let second = async {
        for _ in 0..80 {
            if stack.aws_faults_fired().await["rules"][0]["fired"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let reply = stack
            .post("/v1/payments/confirm", &body, Some(&customer))
            .await;
        (reply, Instant::now())
    };
    let ((first, first_at), (second, second_at)) = tokio::join!(first, second);
    assert!(second_at < first_at, "the second confirm settled first");
    for reply in [&second, &first] {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(reply.body["status"], "PAID");
    }
    assert_eq!(confirms_executed(&stack).await, 1, "one charge");
    let read = stack
        .get(&format!("/v1/orders/{order}"), Some(&customer))
        .await;
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
    // Toss's own webhook would settle it at once: here only the reconciler does.
    toss(
        &stack,
        json!({"confirm": "ambiguous", "delayMs": 3000, "webhooks": false}),
    )
    .await;
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

/// Toss's own record of the order's payment, from the stand-in's API.
async fn toss_payment(stack: &Stack, order: &str) -> Value {
    stack
        .http()
        .get(format!("{}/v1/payments/orders/{order}", stack.toss))
        .basic_auth("test_sk_check", Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn paid_order(stack: &Stack, n: &str) -> (String, String, String) {
    let latte = stack.paid_latte_order(n).await;
    (latte.customer, latte.order, latte.owner)
}

async fn refund(stack: &Stack, owner: &str, order: &str, key: &str, amount: i64) -> e2e::Reply {
    stack.refund(owner, order, key, amount).await
}

/// An order's refunds as its customer and its store see them: what was paid, what went back, what
/// is left, each refund with its state, oldest first, matching Toss's ledger. An owner's partial
/// refunds stop at twenty, a refused one included (the next is refused here, Toss never asked), and
/// a rejection after them still refunds all that is left. Nobody else sees them.
#[tokio::test]
async fn an_orders_refunds_are_listed_and_partial_ones_stop_at_twenty() {
    let stack = Stack::start();
    let (customer, order, owner) = paid_order(&stack, "listed").await;
    let path = format!("/v1/orders/{order}/refunds");
    let listed = |token: String| {
        let (stack, path) = (&stack, &path);
        async move {
            let reply = stack.get(path, Some(&token)).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            reply.body
        }
    };
    assert_eq!(
        listed(customer.clone()).await,
        json!({"orderId": order, "paidAmount": 9000, "refundedAmount": 0, "balanceAmount": 9000,
            "refunds": []})
    );

    // The first, Toss refuses: listed FAILED, nothing went back, and it counts.
    stack
        .toss_control(json!({"faults": [{"orderId": order, "call": "cancel", "mode": "reject"}]}))
        .await;
    let refused = refund(&stack, &owner, &order, "listed-0", 100).await;
    assert_eq!(refused.code(), "REFUND_FAILED", "{:?}", refused.body);
    for n in 1..20 {
        let made = refund(&stack, &owner, &order, &format!("listed-{n}"), 100).await;
        assert_eq!(made.status, StatusCode::CREATED, "{n}: {:?}", made.body);
    }
    let over = refund(&stack, &owner, &order, "listed-20", 100).await;
    assert_eq!(
        (over.status.as_u16(), over.code()),
        (422, "REFUND_LIMIT_REACHED"),
        "{:?}",
        over.body
    );
    let at_toss = toss_payment(&stack, &order).await;
    assert_eq!(at_toss["cancels"].as_array().unwrap().len(), 19);
    assert_eq!(at_toss["balanceAmount"], 9000 - 1900);

    let by_owner = listed(owner.clone()).await;
    assert_eq!(by_owner, listed(customer.clone()).await);
    assert_eq!(
        (
            &by_owner["paidAmount"],
            &by_owner["refundedAmount"],
            &by_owner["balanceAmount"]
        ),
        (&json!(9000), &json!(1900), &json!(7100))
    );
    let refunds = by_owner["refunds"].as_array().unwrap();
    let states: Vec<&str> = refunds.iter().filter_map(|r| r["state"].as_str()).collect();
    assert_eq!(states.len(), 20);
    assert_eq!(states[0], "FAILED");
    assert!(states[1..].iter().all(|s| *s == "DONE"), "{states:?}");
    assert!(
        refunds
            .iter()
            .all(|r| r["amount"] == 100 && r["reason"] == "cold soup")
    );
    let times: Vec<&str> = refunds
        .iter()
        .filter_map(|r| r["createdAt"].as_str())
        .collect();
    assert!(times.is_sorted(), "{times:?}");

    // Past the limit, a rejection still gives back all that is left.
    let rejected = stack
        .post(
            &format!("/v1/orders/{order}/status"),
            &json!({"to": "REJECTED", "reason": "OTHER"}),
            Some(&owner),
        )
        .await;
    assert_eq!(rejected.body["status"], "REJECTED", "{:?}", rejected.body);
    assert_eq!(toss_payment(&stack, &order).await["balanceAmount"], 0);
    let after = listed(customer.clone()).await;
    assert_eq!(
        (&after["refundedAmount"], &after["balanceAmount"]),
        (&json!(9000), &json!(0))
    );
    let last = &after["refunds"][20];
    assert_eq!(
        (&last["amount"], &last["state"]),
        (&json!(7100), &json!("DONE"))
    );

    // Twenty-six at once on another order: the bound holds under the race too. What is granted is
    // what Toss refunded and what the listing shows; the rest are told why, and Toss never asked.
    let (_, raced, raced_owner) = paid_order(&stack, "listed-race").await;
    let keys: Vec<String> = (0..26).map(|n| format!("race-{n}")).collect();
    let replies = join_all(
        keys.iter()
            .map(|key| refund(&stack, &raced_owner, &raced, key, 100)),
    )
    .await;
    let granted = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let conflicts = replies
        .iter()
        .filter(|r| r.code() == "TRANSACTION_CONFLICT")
        .count();
    // Twenty; fewer only if no request was refused for the bound, all the others having lost to a
    // conflict and reserved nothing (the emulator serialises transactions: none do here).
    assert!(
        granted == 20 || granted + conflicts == replies.len(),
        "{granted} granted, {conflicts} conflicts"
    );
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert!(
            ["REFUND_LIMIT_REACHED", "TRANSACTION_CONFLICT"].contains(&reply.code()),
            "{:?}",
            reply.body
        );
    }
    let at_toss = toss_payment(&stack, &raced).await;
    assert_eq!(at_toss["cancels"].as_array().unwrap().len(), granted);
    let shown = stack
        .get(&format!("/v1/orders/{raced}/refunds"), Some(&raced_owner))
        .await
        .body;
    assert_eq!(shown["refunds"].as_array().unwrap().len(), granted);
    assert_eq!(shown["refundedAmount"], 100 * granted as i64);
    assert_eq!(shown["balanceAmount"], at_toss["balanceAmount"]);

    // An unpaid order: nothing taken, nothing to give back.
    let unpaid = stack.latte_order("listed-unpaid").await;
    let reply = stack
        .get(
            &format!("/v1/orders/{}/refunds", unpaid.order),
            Some(&unpaid.customer),
        )
        .await;
    assert_eq!(
        reply.body,
        json!({"orderId": unpaid.order, "paidAmount": 0, "refundedAmount": 0, "balanceAmount": 0,
            "refunds": []})
    );

    // Another customer and another store's owner: no such order.
    let (_, stranger, _) = stack
        .account("listed-stranger@example.com", "CUSTOMER")
        .await;
    let (_, other_owner, _) = stack.account("listed-other@example.com", "OWNER").await;
    for token in [stranger, other_owner] {
        let refused = stack.get(&path, Some(&token)).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (404, "ORDER_NOT_FOUND")
        );
    }
}

#[tokio::test]
async fn rejecting_or_cancelling_a_paid_order_refunds_it_in_full() {
    let stack = Stack::start();
    let (_, rejected, owner) = paid_order(&stack, "reject").await;
    let reply = stack
        .post(
            &format!("/v1/orders/{rejected}/status"),
            &json!({"to": "REJECTED", "reason": "OUT_OF_STOCK"}),
            Some(&owner),
        )
        .await;
    assert_eq!(reply.body["status"], "REJECTED");
    let at_toss = toss_payment(&stack, &rejected).await;
    assert_eq!(at_toss["status"], "CANCELED");
    assert_eq!(at_toss["balanceAmount"], 0);
    assert_eq!(at_toss["cancels"].as_array().unwrap().len(), 1);

    let (customer, canceled, _) = paid_order(&stack, "cancel").await;
    let reply = stack
        .post(
            &format!("/v1/orders/{canceled}/status"),
            &json!({"to": "CANCELED"}),
            Some(&customer),
        )
        .await;
    assert_eq!(reply.body["status"], "CANCELED");
    assert_eq!(toss_payment(&stack, &canceled).await["balanceAmount"], 0);
    // Nothing is left to refund.
    let more = refund(&stack, &owner, &rejected, "after-reject", 100).await;
    assert_eq!(more.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn partial_refunds_never_exceed_what_was_paid() {
    let stack = Stack::start();
    let (customer, order, owner) = paid_order(&stack, "partial").await;
    let first = refund(&stack, &owner, &order, "refund-1", 3000).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["balanceAmount"], 6000);
    // The same key again: the same refund, not a second one.
    let replay = refund(&stack, &owner, &order, "refund-1", 3000).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.body["refundId"], first.body["refundId"]);
    let misuse = refund(&stack, &owner, &order, "refund-1", 1000).await;
    assert_eq!(misuse.code(), "IDEMPOTENCY_KEY_REUSED");
    // More than is left: refused before Toss hears of it.
    let too_much = refund(&stack, &owner, &order, "refund-2", 6001).await;
    assert_eq!(
        (too_much.status.as_u16(), too_much.code()),
        (422, "REFUND_EXCEEDS_BALANCE")
    );
    // A reason is free text like any other: trimmed, 1 to 200 characters as sent, no control
    // characters. Refused before Toss hears of it.
    for reason in [
        "   ".to_owned(),
        "cold\u{7}soup".to_owned(),
        "cold\nsoup".to_owned(),
        format!("  {}", "x".repeat(200)),
    ] {
        let refused = stack
            .send(
                stack
                    .http()
                    .post(stack.url(&format!("/v1/orders/{order}/refunds")))
                    .bearer_auth(&owner)
                    .header("idempotency-key", "refund-bad-reason")
                    .json(&json!({"amount": 100, "reason": reason})),
            )
            .await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (422, "VALIDATION_FAILED"),
            "{reason:?}: {:?}",
            refused.body
        );
    }
    assert_eq!(
        toss_payment(&stack, &order).await["cancels"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Five owners' clicks at once, 2,500 each, on 6,000 left: at most two go through.
    let racing: Vec<_> = (0..5)
        .map(|i| {
            refund(
                &stack,
                &owner,
                &order,
                ["r-a", "r-b", "r-c", "r-d", "r-e"][i],
                2500,
            )
        })
        .collect();
    let replies = join_all(racing).await;
    let granted = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert!(granted <= 2, "{granted}");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert!(
            ["REFUND_EXCEEDS_BALANCE", "REFUND_IN_PROGRESS"].contains(&reply.code()),
            "{:?}",
            reply.body
        );
    }
    let at_toss = toss_payment(&stack, &order).await;
    assert_eq!(at_toss["balanceAmount"], 6000 - 2500 * granted as i64);
    assert!(at_toss["balanceAmount"].as_i64().unwrap() >= 0);

    // Only the store's owner refunds.
    assert_eq!(
        refund(&stack, &customer, &order, "by-customer", 100)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let (_, other_owner, _) = stack
        .account("refund-other-owner@example.com", "OWNER")
        .await;
    assert_eq!(
        refund(&stack, &other_owner, &order, "by-other", 100)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn webhook(stack: &Stack, transmission: Option<&str>, body: Value) -> e2e::Reply {
    let mut request = stack
        .http()
        .post(stack.url("/v1/webhooks/toss"))
        .json(&body);
    if let Some(id) = transmission {
        request = request.header("tosspayments-webhook-transmission-id", id);
    }
    stack.send(request).await
}

#[tokio::test]
async fn webhooks_are_believed_only_as_toss_confirms_them_and_only_once() {
    // No reconciler in this test's time (it would settle the payment itself).
    let stack = Stack::start_scheduled(&["TossTimeoutMs=1000"], 3600);
    let (customer, order, _) = unpaid_order(&stack, "hook").await;
    // The deliveries in this test are the test's own.
    toss(
        &stack,
        json!({"confirm": "ambiguous", "delayMs": 3000, "webhooks": false}),
    )
    .await;
    let lost = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_hook", 9000),
            Some(&customer),
        )
        .await;
    assert_eq!(lost.code(), "PAYMENT_PENDING");
    toss(&stack, json!({"confirm": "normal"})).await;

    let event = json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": "2026-11-26T12:00:00.000000",
        "data": {"paymentKey": "tpk_hook", "orderId": order, "status": "DONE", "totalAmount": 9000}});
    let first = webhook(&stack, Some("tx-1"), event.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["outcome"], "order paid");
    assert_eq!(
        stack
            .get(&format!("/v1/orders/{order}"), Some(&customer))
            .await
            .body["status"],
        "PAID"
    );
    // Toss delivers it again: now a "DONE" of the payment that paid the order, which tells
    // nothing; nothing happens twice.
    let looked_up = lookups(&stack).await;
    let again = webhook(&stack, Some("tx-1"), event.clone()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.body["outcome"],
        "nothing to do: this payment paid the order"
    );
    assert_eq!(confirms_executed(&stack).await, 1);
    // Another "DONE" of the payment that paid the order (as Toss sends after every confirm that
    // answered) tells nothing, true or forged: answered without asking Toss, and without a record
    // of its delivery.
    let told = webhook(&stack, Some("tx-1b"), event.clone()).await;
    assert_eq!(told.status, StatusCode::OK, "{:?}", told.body);
    assert_eq!(
        told.body["outcome"],
        "nothing to do: this payment paid the order"
    );
    assert_eq!(lookups(&stack).await, looked_up);
    let delivered: Vec<String> = stack
        .scan()
        .await
        .iter()
        .filter_map(|i| i["PK"].as_s().ok().cloned())
        .filter(|pk| pk.starts_with("WEBHOOK#"))
        .collect();
    assert_eq!(
        delivered,
        ["WEBHOOK#tx-1"],
        "the delivery that paid the order, alone"
    );
    // A "DONE" of another payment of the paid order would be a second charge: Toss is asked.
    let mut other = event.clone();
    other["data"]["paymentKey"] = json!("tpk_other");
    let asked = webhook(&stack, Some("tx-1c"), other).await;
    assert_eq!(asked.status, StatusCode::OK, "{:?}", asked.body);
    assert_eq!(asked.body["outcome"], "nothing to do");
    assert_eq!(lookups(&stack).await, looked_up + 1);

    // Forged: a "DONE" for an order Toss never charged changes nothing.
    let (customer2, unpaid, _) = unpaid_order(&stack, "hook-forged").await;
    let forged = json!({"eventType": "PAYMENT_STATUS_CHANGED",
        "data": {"paymentKey": "tpk_fake", "orderId": unpaid, "status": "DONE", "totalAmount": 9000}});
    let reply = webhook(&stack, Some("tx-forged"), forged.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["outcome"], "ignored: Toss has no such payment");
    // Delivered again: recognised by its transmission id, and Toss is not asked twice.
    let looked_up = lookups(&stack).await;
    let again = webhook(&stack, Some("tx-forged"), forged).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.body["outcome"],
        "duplicate of a delivery that was ignored: Toss has no such payment"
    );
    assert_eq!(lookups(&stack).await, looked_up);
    assert_eq!(
        stack
            .get(&format!("/v1/orders/{unpaid}"), Some(&customer2))
            .await
            .body["status"],
        "PENDING_PAYMENT"
    );
    // Forged: a claimed amount means nothing; Toss's own record of the payment decides.
    let cheap = json!({"eventType": "PAYMENT_STATUS_CHANGED",
        "data": {"paymentKey": "tpk_hook", "orderId": order, "status": "CANCELED", "totalAmount": 1, "balanceAmount": 0}});
    let reply = webhook(&stack, Some("tx-amount"), cheap).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["outcome"], "nothing to do");
    assert_eq!(
        stack
            .get(&format!("/v1/orders/{order}"), Some(&customer))
            .await
            .body["status"],
        "PAID"
    );
    // A deposit callback without the payment's secret is ignored.
    let deposit = json!({"eventType": "DEPOSIT_CALLBACK",
        "data": {"orderId": order, "secret": "ps_guessed", "status": "DONE", "transactionKey": "x"}});
    let reply = webhook(&stack, Some("tx-deposit"), deposit).await;
    assert_eq!(reply.body["outcome"], "ignored: wrong secret");
    // Without a transmission id it is not a Toss delivery.
    let anonymous = webhook(&stack, None, event).await;
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.code()),
        (400, "TRANSMISSION_ID_REQUIRED")
    );
}
