//! The money path under races and failures (docs/PAYMENTS.md): each way Toss, the network or our own
//! processes can fail a payment, played against the local stack and the Toss stand-in, and the
//! ledger's invariant checked afterwards.

use std::time::Duration;

use e2e::{Stack, StatusCode};
use futures::future::join_all;
use serde_json::{Value, json};

/// A customer with a fresh 9,000 KRW order (two lattes): (customer token, order id, owner token).
async fn unpaid_order(stack: &Stack, n: &str) -> (String, String, String) {
    let latte = stack.latte_order(&format!("ledger-{n}")).await;
    (latte.customer, latte.order, latte.owner)
}

fn confirm(order: &str, key: &str) -> Value {
    json!({"orderId": order, "paymentKey": key, "amount": 9000})
}

async fn paid_order(stack: &Stack, n: &str) -> (String, String, String) {
    let latte = stack.paid_latte_order(n).await;
    (latte.customer, latte.order, latte.owner)
}

async fn status(stack: &Stack, order: &str, token: &str) -> String {
    stack
        .get(&format!("/v1/orders/{order}"), Some(token))
        .await
        .body["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits (up to 30 s) for the order to reach `want`.
async fn until_status(stack: &Stack, order: &str, token: &str, want: &str) -> String {
    let mut now = String::new();
    for _ in 0..120 {
        now = status(stack, order, token).await;
        if now == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    now
}

/// Toss's record of a payment, by key.
fn at_toss<'a>(ledger: &'a Value, key: &str) -> &'a Value {
    ledger["payments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["paymentKey"] == key)
        .unwrap_or_else(|| panic!("Toss has no payment {key}"))
}

async fn settled_and_sound(stack: &Stack, orders: &[String]) {
    let open = stack.settled(orders, Duration::from_secs(40)).await;
    assert!(open.is_empty(), "not settled: {open:?}");
    let violations = stack.ledger_violations(orders).await;
    assert!(violations.is_empty(), "{violations:#?}");
}

async fn refund(stack: &Stack, owner: &str, order: &str, key: &str, amount: i64) -> e2e::Reply {
    stack.refund(owner, order, key, amount).await
}

#[tokio::test]
async fn a_payment_settled_by_toss_webhook_while_its_confirm_timed_out_is_never_refunded() {
    // The confirm's answer from Toss comes after our time-out; Toss's own webhook arrives meanwhile
    // and settles the order; then the reconciler runs every second. Before: the time-out wrote
    // UNKNOWN over DONE, and the reconciler cancelled the whole payment of a PAID order.
    let stack = Stack::start_with(&["TossTimeoutMs=1000"]);
    let (customer, order, owner) = unpaid_order(&stack, "hook-race").await;
    stack
        .toss_control(json!({"confirm": "ambiguous", "delayMs": 2500}))
        .await;
    let reply = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_hook_race"),
            Some(&customer),
        )
        .await;
    assert!(
        matches!(
            (reply.status.as_u16(), reply.code()),
            (200, _) | (503, "PAYMENT_PENDING")
        ),
        "{:?}",
        reply.body
    );
    stack.toss_control(json!({"confirm": "normal"})).await;
    assert_eq!(
        until_status(&stack, &order, &customer, "PAID").await,
        "PAID"
    );
    // Several reconciler runs and every webhook delivery later, it is still paid, and Toss still
    // holds all of it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(status(&stack, &order, &owner).await, "PAID");
    let ledger = stack.toss_ledger().await;
    let payment = at_toss(&ledger, "tpk_hook_race");
    assert_eq!(
        (
            payment["status"].as_str(),
            payment["balanceAmount"].as_i64()
        ),
        (Some("DONE"), Some(9000))
    );
    assert_eq!(ledger["cancels"].as_array().unwrap().len(), 0);
    let record = stack.payment(&order).await.unwrap();
    assert_eq!(record.state.name(), "DONE");
    settled_and_sound(&stack, &[order]).await;
}

#[tokio::test]
async fn a_confirm_whose_process_dies_after_toss_charged_is_settled_by_the_reconciler() {
    // Toss executes at once and answers after 3 s; the confirm's process is killed before that.
    // Before: the payment stayed PENDING for ever, out of the reconciler's sight.
    let stack = Stack::start_with(&["TossTimeoutMs=4000"]);
    let (customer, order, _) = unpaid_order(&stack, "crash").await;
    stack
        .toss_control(json!({"webhooks": false, "faults": [
            {"orderId": order, "call": "confirm", "mode": "ambiguous", "delayMs": 3000}]}))
        .await;
    let body = confirm(&order, "tpk_crash");
    let confirming = stack.post("/v1/payments/confirm", &body, Some(&customer));
    let crash = async {
        // Once Toss has charged, and before its answer arrives.
        for _ in 0..100 {
            if stack.toss_ledger().await["confirmsByOrder"][order.as_str()] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stack.crash("PaymentsConfirmFunction").await;
    };
    let (reply, ()) = tokio::join!(confirming, crash);
    assert!(reply.status.is_server_error(), "{:?}", reply.body);
    let record = stack
        .payment(&order)
        .await
        .expect("the intent was recorded first");
    assert!(record.state.is_open(), "{:?}", record.state);
    // Meanwhile the customer retries: told to wait, not charged again.
    let retry = stack
        .post("/v1/payments/confirm", &body, Some(&customer))
        .await;
    assert!(
        retry.status == StatusCode::OK || retry.code() == "PAYMENT_IN_PROGRESS",
        "{:?}",
        retry.body
    );
    assert_eq!(
        until_status(&stack, &order, &customer, "PAID").await,
        "PAID"
    );
    settled_and_sound(&stack, &[order]).await;
}

#[tokio::test]
async fn another_orders_payment_key_never_settles_or_refunds_this_order() {
    let stack = Stack::start();
    let (_, other_order, _) = paid_order(&stack, "key-owner").await;
    let (customer, order, _) = unpaid_order(&stack, "key-thief").await;
    // The key of another order's payment is refused for this one.
    let stolen = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_key-owner"),
            Some(&customer),
        )
        .await;
    assert_eq!(
        (stolen.status.as_u16(), stolen.code()),
        (422, "PAYMENT_SESSION_EXPIRED"),
        "{:?}",
        stolen.body
    );
    // Toss then reports a payment of this order under a key of its own (an earlier attempt of
    // ours whose answer was lost), with its webhook: the order is paid by that payment.
    let direct = stack
        .http()
        .post(format!("{}/v1/payments/confirm", stack.toss))
        .basic_auth("test_sk_check", Some(""))
        .json(&confirm(&order, "tpk_key-own"))
        .send()
        .await
        .unwrap();
    assert!(direct.status().is_success());
    assert_eq!(
        until_status(&stack, &order, &customer, "PAID").await,
        "PAID"
    );
    // The customer cancels: the refund goes to this order's payment, never the other order's.
    let canceled = stack
        .post(
            &format!("/v1/orders/{order}/status"),
            &json!({"to": "CANCELED"}),
            Some(&customer),
        )
        .await;
    assert_eq!(canceled.body["status"], "CANCELED", "{:?}", canceled.body);
    let ledger = stack.toss_ledger().await;
    assert_eq!(at_toss(&ledger, "tpk_key-own")["balanceAmount"], 0);
    let untouched = at_toss(&ledger, "tpk_key-owner");
    assert_eq!(
        (
            untouched["status"].as_str(),
            untouched["balanceAmount"].as_i64()
        ),
        (Some("DONE"), Some(9000))
    );
    settled_and_sound(&stack, &[order, other_order]).await;
}

#[tokio::test]
async fn refunds_are_bounded_by_the_server_and_always_name_their_amount() {
    let stack = Stack::start_with(&["TossTimeoutMs=1000"]);
    let (_, order, owner) = paid_order(&stack, "bounds").await;
    // More than was paid, as the first refund: refused here, Toss never asked.
    let too_much = refund(&stack, &owner, &order, "r-too-much", 9001).await;
    assert_eq!(
        (too_much.status.as_u16(), too_much.code()),
        (422, "REFUND_EXCEEDS_BALANCE"),
        "{:?}",
        too_much.body
    );
    assert!(
        stack.toss_ledger().await["cancels"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A first refund whose Toss call fails stays pending; a second for exactly what is left must
    // not cancel the first one's share too (as a cancel without an amount would).
    stack
        .toss_control(json!({"faults": [
            {"orderId": order, "call": "cancel", "mode": "fail", "times": 2}]}))
        .await;
    let first = refund(&stack, &owner, &order, "r-1", 3000).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body);
    let rest = refund(&stack, &owner, &order, "r-2", 6000).await;
    assert_eq!(rest.status, StatusCode::CREATED, "{:?}", rest.body);
    assert_eq!(rest.body["balanceAmount"], 0);
    let more = refund(&stack, &owner, &order, "r-3", 1).await;
    assert_eq!(more.code(), "REFUND_EXCEEDS_BALANCE");
    // The reconciler makes the first one; both reached Toss with their amounts.
    settled_and_sound(&stack, std::slice::from_ref(&order)).await;
    let ledger = stack.toss_ledger().await;
    let mut amounts: Vec<i64> = ledger["cancels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount"].as_i64().unwrap())
        .collect();
    amounts.sort();
    assert_eq!(amounts, [3000, 6000]);
}

#[tokio::test]
async fn a_refund_owed_to_the_customer_is_retried_until_toss_takes_it() {
    let stack = Stack::start_with(&["TossTimeoutMs=1000"]);
    // A payment record the reconciler cannot read: one bad item must not stop the run.
    let client = aws_sdk_dynamodb::Client::new(&stack.aws().await);
    use aws_sdk_dynamodb::types::AttributeValue::S;
    client
        .put_item()
        .table_name(e2e::TABLE)
        .item("PK", S("PAYMENT#ord_corrupt".into()))
        .item("SK", S("PAYMENT".into()))
        .item("state", S("UNKNOWN".into()))
        .item("GSI3PK", S("PAYOPEN#0".into()))
        .item("GSI3SK", S("2026-01-01T00:00:00Z#ord_corrupt".into()))
        .send()
        .await
        .unwrap();

    let (_, order, owner) = paid_order(&stack, "owed").await;
    // Toss refuses the cancel once. Before: the refund was dropped, the order REJECTED, the
    // customer never repaid.
    stack
        .toss_control(json!({"faults": [{"orderId": order, "call": "cancel", "mode": "reject"}]}))
        .await;
    let rejected = stack
        .post(
            &format!("/v1/orders/{order}/status"),
            &json!({"to": "REJECTED", "reason": "TOO_BUSY"}),
            Some(&owner),
        )
        .await;
    assert_eq!(rejected.body["status"], "REJECTED", "{:?}", rejected.body);
    let refunds = stack.refunds(&order).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        refunds[0].failure_code.as_deref(),
        Some("NOT_CANCELABLE_PAYMENT")
    );
    assert!(refunds[0].attempts >= 1);
    // It is counted for the alarm while it waits.
    let logs = stack.logs_with("\"RefundsStuck\":1").await;
    assert!(
        logs.contains("\"RefundsStuck\":1"),
        "the stuck refund is counted"
    );
    settled_and_sound(&stack, std::slice::from_ref(&order)).await;
    let ledger = stack.toss_ledger().await;
    assert_eq!(at_toss(&ledger, "tpk_owed")["balanceAmount"], 0);
}

/// The owner refunds 1,000 of `order` under `key`; once that is reserved (Toss has it), the
/// customer cancels the order, so their refund is what was left then, 8,000. Both answers.
async fn refund_beside_a_cancel(
    stack: &Stack,
    (owner, customer): (&str, &str),
    order: &str,
    key: &str,
) -> (e2e::Reply, e2e::Reply) {
    let partial = refund(stack, owner, order, key, 1000);
    let cancel = async {
        for _ in 0..40 {
            if !stack.refunds(order).await.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stack
            .post(
                &format!("/v1/orders/{order}/status"),
                &json!({"to": "CANCELED"}),
                Some(customer),
            )
            .await
    };
    tokio::join!(partial, cancel)
}

/// Invariant: a cancelled or rejected paid order ends with nothing left at Toss, whatever the
/// owner's partial refunds were doing when it was cancelled.
#[tokio::test]
async fn an_owners_refund_toss_refuses_after_the_order_was_cancelled_still_goes_back() {
    let stack = Stack::start_with(&["TossTimeoutMs=3000"]);
    let (customer, order, owner) = paid_order(&stack, "refused-late").await;
    // Toss holds the owner's refund for a while, then refuses it.
    stack
        .toss_control(json!({"faults": [{"orderId": order, "call": "cancel",
            "mode": "reject-late", "times": 1, "delayMs": 2000}]}))
        .await;
    let (partial, cancelled) =
        refund_beside_a_cancel(&stack, (&owner, &customer), &order, "before-cancel").await;
    assert_eq!(cancelled.body["status"], "CANCELED", "{:?}", cancelled.body);
    // The refusal came after the cancel: the 1,000 is owed to the customer now, and retried
    // until Toss takes it. Before, it was released: the owner was told REFUND_FAILED, and the
    // 1,000 stayed at Toss for an order cancelled.
    settled_and_sound(&stack, std::slice::from_ref(&order)).await;
    let ledger = stack.toss_ledger().await;
    assert_eq!(at_toss(&ledger, "tpk_refused-late")["balanceAmount"], 0);
    let refunds = stack.refunds(&order).await;
    let amounts: Vec<i64> = refunds.iter().map(|r| r.amount).collect();
    assert_eq!(amounts.iter().sum::<i64>(), 9000, "{amounts:?}");
    assert_eq!(partial.status, StatusCode::ACCEPTED, "{:?}", partial.body);
    assert_eq!(partial.body["state"], "PENDING");
}

/// The same invariant, the other way round: Toss refuses the owner's refund (and its reservation is
/// released) after the cancel read what was left but before the cancel's transaction landed.
#[tokio::test]
async fn a_cancel_that_read_a_refund_released_meanwhile_still_refunds_everything() {
    let stack = Stack::start_with(&["TossTimeoutMs=3000"]);
    let (customer, order, owner) = paid_order(&stack, "released-late").await;
    // The cancel reads what is left within a few hundred milliseconds of the owner's reservation
    // (its function is warm: a refused move started it) …
    let refused = stack
        .post(
            &format!("/v1/orders/{order}/status"),
            &json!({"to": "COOKED"}),
            Some(&customer),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    // … Toss refuses the owner's refund 1.5 s after it was asked, and the cancel's transaction (the
    // move with its refund) reaches the table 1.9 s after it was planned: after the release.
    stack
        .toss_control(json!({"faults": [{"orderId": order, "call": "cancel",
            "mode": "reject-late", "times": 1, "delayMs": 1500}]}))
        .await;
    stack
        .aws_faults(
            json!([{"service": "dynamodb", "operation": "TransactWriteItems",
            "function": "OrdersStatusFunction", "contains": "REFUND#", "fault": "latency",
            "delayMs": 1900, "times": 1}]),
        )
        .await;
    let (partial, cancelled) =
        refund_beside_a_cancel(&stack, (&owner, &customer), &order, "released").await;
    assert_eq!(
        stack.aws_faults_fired().await["rules"][0]["fired"],
        1,
        "the cancel was held back"
    );
    assert_eq!(cancelled.body["status"], "CANCELED", "{:?}", cancelled.body);
    // Before, the cancel reserved the 8,000 it had read as left, and the released 1,000 stayed at
    // Toss.
    settled_and_sound(&stack, std::slice::from_ref(&order)).await;
    let ledger = stack.toss_ledger().await;
    assert_eq!(at_toss(&ledger, "tpk_released-late")["balanceAmount"], 0);
    assert_eq!(
        partial.status,
        StatusCode::BAD_GATEWAY,
        "{:?}",
        partial.body
    );
    assert_eq!(partial.code(), "REFUND_FAILED");
}

#[tokio::test]
async fn reconciler_runs_never_overlap() {
    // No scheduled runs: the two runs here are the only ones.
    let stack = Stack::start_scheduled(&["TossTimeoutMs=2000"], 3600);
    let (_, order, owner) = paid_order(&stack, "overlap").await;
    // Two warm instances first: on a loaded machine, a second run that needed a cold start of its
    // own once began after the first had finished (a full test run saw it).
    join_all([
        stack.invoke("PaymentsReconcileFunction", &json!({})),
        stack.invoke("PaymentsReconcileFunction", &json!({})),
    ])
    .await;
    // A refund left pending (its answer lost), then a slow Toss for its retry.
    stack
        .toss_control(json!({"faults": [
            {"orderId": order, "call": "cancel", "mode": "fail", "times": 2},
            {"orderId": order, "call": "cancel", "mode": "slow", "delayMs": 1500}]}))
        .await;
    let pending = refund(&stack, &owner, &order, "r-overlap", 2000).await;
    assert_eq!(pending.status, StatusCode::ACCEPTED, "{:?}", pending.body);
    // Refunds this young are left to their request; wait past that.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let runs = join_all([
        stack.invoke("PaymentsReconcileFunction", &json!({})),
        stack.invoke("PaymentsReconcileFunction", &json!({})),
    ])
    .await;
    let ran: Vec<bool> = runs.iter().map(|r| r["ran"] == true).collect();
    assert_eq!(ran.iter().filter(|r| **r).count(), 1, "{runs:?}");
    assert_eq!(
        runs.iter()
            .map(|r| r["refunds"].as_u64().unwrap())
            .sum::<u64>(),
        1,
        "{runs:?}"
    );
    let refunds = stack.refunds(&order).await;
    assert_eq!(
        refunds[0].state,
        shared::payments::refunds::RefundState::Done
    );
    settled_and_sound(&stack, &[order]).await;
}

#[tokio::test]
async fn a_confirm_that_never_reached_toss_is_completed_by_the_reconciler() {
    // Toss drops the confirm (never runs it; the payment stays IN_PROGRESS at Toss). Before: the
    // payment stayed UNKNOWN for ever.
    let stack = Stack::start_with(&["TossTimeoutMs=1000"]);
    let (customer, order, _) = unpaid_order(&stack, "dropped").await;
    stack
        .toss_control(json!({"faults": [
            {"orderId": order, "call": "confirm", "mode": "drop", "times": 2, "delayMs": 1500}]}))
        .await;
    let lost = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_dropped"),
            Some(&customer),
        )
        .await;
    assert_eq!(
        (lost.status.as_u16(), lost.code()),
        (503, "PAYMENT_PENDING"),
        "{:?}",
        lost.body
    );
    assert_eq!(
        at_toss(&stack.toss_ledger().await, "tpk_dropped")["status"],
        "IN_PROGRESS"
    );
    assert_eq!(
        until_status(&stack, &order, &customer, "PAID").await,
        "PAID"
    );
    let ledger = stack.toss_ledger().await;
    assert_eq!(ledger["confirmsByOrder"][order.as_str()], 1);
    settled_and_sound(&stack, &[order]).await;
}

#[tokio::test]
async fn payment_keys_that_could_change_a_toss_url_are_refused() {
    let stack = Stack::start();
    let (customer, order, _) = unpaid_order(&stack, "traversal").await;
    for key in [
        "../../v1/payments/confirm",
        "..",
        "tpk/../x",
        "tpk?x=1",
        "tpk%2e%2e",
    ] {
        let reply = stack
            .post(
                "/v1/payments/confirm",
                &confirm(&order, key),
                Some(&customer),
            )
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (422, "VALIDATION_FAILED"),
            "{key}: {:?}",
            reply.body
        );
    }
    assert_eq!(status(&stack, &order, &customer).await, "PENDING_PAYMENT");
    assert!(
        stack.toss_ledger().await["payments"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_virtual_account_pays_the_order_on_deposit() {
    let stack = Stack::start();
    let (customer, order, _) = unpaid_order(&stack, "deposit").await;
    // The customer chose a virtual account in the widget.
    stack.virtual_account_session(&order, "tva_deposit").await;
    let waiting = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tva_deposit"),
            Some(&customer),
        )
        .await;
    assert_eq!(waiting.status, StatusCode::ACCEPTED, "{:?}", waiting.body);
    assert_eq!(waiting.body["status"], "PENDING_PAYMENT");
    // Neither expiry nor the customer's second thoughts can drop it while the account is open.
    let cancel = stack
        .post(
            &format!("/v1/orders/{order}/status"),
            &json!({"to": "CANCELED"}),
            Some(&customer),
        )
        .await;
    assert_eq!(cancel.code(), "PAYMENT_IN_PROGRESS", "{:?}", cancel.body);
    // The deposit: Toss sends DEPOSIT_CALLBACK (with the payment's secret) and the status change.
    let deposit = stack
        .http()
        .post(format!("{}/__deposit", stack.toss))
        .json(&json!({"orderId": order}))
        .send()
        .await
        .unwrap();
    assert!(deposit.status().is_success());
    assert_eq!(
        until_status(&stack, &order, &customer, "PAID").await,
        "PAID"
    );
    settled_and_sound(&stack, &[order]).await;
}

#[tokio::test]
async fn an_unpaid_virtual_account_closes_with_its_order() {
    let stack = Stack::start_with(&["PaymentWindowSeconds=4"]);
    let (customer, order, _) = unpaid_order(&stack, "no-deposit").await;
    stack.virtual_account_session(&order, "tva_idle").await;
    let waiting = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tva_idle"),
            Some(&customer),
        )
        .await;
    assert_eq!(waiting.status, StatusCode::ACCEPTED, "{:?}", waiting.body);
    // Past the payment window the account is closed at Toss, then the order expires.
    assert_eq!(
        until_status(&stack, &order, &customer, "EXPIRED").await,
        "EXPIRED"
    );
    assert_eq!(
        at_toss(&stack.toss_ledger().await, "tva_idle")["status"],
        "CANCELED"
    );
    settled_and_sound(&stack, &[order]).await;
}

#[tokio::test]
async fn money_toss_took_for_an_expired_order_goes_back() {
    let stack = Stack::start_with(&["PaymentWindowSeconds=2"]);
    let (customer, order, _) = unpaid_order(&stack, "void").await;
    assert_eq!(
        until_status(&stack, &order, &customer, "EXPIRED").await,
        "EXPIRED"
    );
    // A confirm of ours that Toss ran only now (its request was lost in Toss's systems), told by
    // Toss's webhook: the order cannot take it, so it goes back in full.
    let late = stack
        .http()
        .post(format!("{}/v1/payments/confirm", stack.toss))
        .basic_auth("test_sk_check", Some(""))
        .json(&confirm(&order, "tpk_void"))
        .send()
        .await
        .unwrap();
    assert!(late.status().is_success());
    for _ in 0..80 {
        if at_toss(&stack.toss_ledger().await, "tpk_void")["status"] == "CANCELED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        at_toss(&stack.toss_ledger().await, "tpk_void")["status"],
        "CANCELED"
    );
    assert_eq!(status(&stack, &order, &customer).await, "EXPIRED");
    // Toss's answer to the cancel is recorded just after Toss records it.
    let mut state = String::new();
    for _ in 0..40 {
        state = stack.payment(&order).await.unwrap().state.name().to_owned();
        if state == "VOIDED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(state, "VOIDED");
    settled_and_sound(&stack, &[order]).await;
}

#[tokio::test]
async fn an_unsettled_payment_holds_its_order_until_toss_answers() {
    // Toss charges, but the answer is lost and Toss cannot be asked while the order falls due.
    let stack = Stack::start_with(&["TossTimeoutMs=1000", "PaymentWindowSeconds=3"]);
    let (customer, order, _) = unpaid_order(&stack, "late").await;
    stack
        .toss_control(json!({"webhooks": false, "faults": [
            {"orderId": order, "call": "confirm", "mode": "ambiguous", "delayMs": 2500},
            {"orderId": order, "call": "get", "mode": "fail", "times": 1000}]}))
        .await;
    let lost = stack
        .post(
            "/v1/payments/confirm",
            &confirm(&order, "tpk_late"),
            Some(&customer),
        )
        .await;
    assert_eq!(lost.code(), "PAYMENT_PENDING", "{:?}", lost.body);
    // While the payment is unknown the order does not expire, though it is past due.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(status(&stack, &order, &customer).await, "PENDING_PAYMENT");
    // Toss answers again: the order is paid — it was still payable.
    stack.toss_control(json!({"clearFaults": true})).await;
    assert_eq!(
        until_status(&stack, &order, &customer, "PAID").await,
        "PAID"
    );
    settled_and_sound(&stack, &[order]).await;
}

/// A run whose lease's answer is lost (taken, then its answer dropped, so the SDK sends it again)
/// knows the lease for its own, runs, and gives it back — not skipped as if another run held it.
#[tokio::test]
async fn a_run_whose_lease_answer_is_lost_still_runs() {
    let stack = Stack::start_scheduled(&[], 3600);
    stack
        .aws_faults(
            json!([{"function": "OrdersExpireFunction", "service": "dynamodb",
            "operation": "UpdateItem", "contains": "JOB#", "fault": "lost", "times": 1}]),
        )
        .await;
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    stack.invoke("OrdersExpireFunction", &event).await;
    assert_eq!(
        stack.aws_faults_fired().await["rules"][0]["fired"],
        1,
        "the lease's answer was lost"
    );
    stack.aws_faults(json!([])).await;
    let logs = stack
        .logs_with("\"Function\":\"OrdersExpireFunction\"")
        .await;
    assert!(
        !logs.contains("the previous run still holds the job"),
        "the run took its own lease for another's"
    );
    let lease = stack
        .scan()
        .await
        .into_iter()
        .find(|i| e2e::text_of(i, "PK") == "JOB#orders-expire")
        .expect("the job's lease");
    assert_eq!(
        lease["lockedUntil"].as_n().unwrap(),
        "0",
        "given back: {lease:?}"
    );
}

#[tokio::test]
async fn no_scheduled_job_runs_while_another_run_holds_it() {
    // Schedules do not wait for the last run: each job holds a lease (`JOB#<function>`) while it
    // runs. Held here as if a run were under way, every scheduled function does nothing.
    let stack = Stack::start_scheduled(&[], 3600);
    let client = aws_sdk_dynamodb::Client::new(&stack.aws().await);
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let scheduled = [
        "OrdersExpireFunction",
        "PaymentsReconcileFunction",
        "AuditArchiveFunction",
    ];
    for (function, job) in
        scheduled
            .iter()
            .zip(["orders-expire", "payments-reconcile", "audit-archive"])
    {
        client
            .put_item()
            .table_name(e2e::TABLE)
            .item("PK", S(format!("JOB#{job}")))
            .item("SK", S("LEASE".into()))
            .item("holder", S("another-run".into()))
            .item(
                "lockedUntil",
                N((jiff::Timestamp::now().as_second() + 600).to_string()),
            )
            .send()
            .await
            .unwrap();
        let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        stack.invoke(function, &event).await;
        let line = format!("\"job\":\"{job}\"");
        let logs = stack.logs_with(&line).await;
        assert!(
            logs.lines()
                .any(|l| l.contains(&line) && l.contains("the previous run still holds the job")),
            "{function} ran while its job was held"
        );
    }
    // And every scheduled function of the template is one of them.
    let manifest = std::process::Command::new(e2e::root().join(".venv/bin/python"))
        .current_dir(e2e::root())
        .args(["infra/local/provision.py", "--template", "template.yaml"])
        .output()
        .unwrap();
    let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    let mut in_template: Vec<&str> = manifest["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["type"] == "Schedule")
        })
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    in_template.sort();
    let mut exclusive = scheduled.to_vec();
    exclusive.sort();
    assert_eq!(in_template, exclusive);
}
