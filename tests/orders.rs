//! Orders through the local runner: server pricing, every refusal, idempotency, the lifecycle under
//! concurrent moves, expiry, paging, and every foreign read refused.

use std::collections::HashSet;
use std::time::Duration;

use e2e::{PASSWORD, Stack, StatusCode};
use futures::future::join_all;
use serde_json::{Value, json};

fn pickup(store: &str, items: Value) -> Value {
    json!({"storeId": store, "items": items, "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678"})
}

fn kimbap(quantity: u32, size: &str, toppings: &[&str]) -> Value {
    json!({"itemId": "kimbap", "quantity": quantity,
           "options": [{"groupId": "size", "valueIds": [size]}, {"groupId": "toppings", "valueIds": toppings}]})
}

#[tokio::test]
async fn totals_are_computed_by_the_server() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("price-owner@example.com", "OWNER").await;
    let (_, customer, _) = stack
        .account("price-customer@example.com", "CUSTOMER")
        .await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;

    // Hand-computed: (base + options) × quantity, summed over lines.
    let cases = [
        (json!([kimbap(1, "regular", &[])]), 3_500),
        (json!([kimbap(2, "large", &["cheese", "tuna"])]), 11_600), // (3,500+1,000+500+800)×2
        (
            json!([{"itemId": "latte", "quantity": 3, "options": [{"groupId": "shots",
            "quantities": [{"valueId": "espresso", "quantity": 2}, {"valueId": "decaf", "quantity": 1}]}]}]),
            19_200,
        ),
        (
            json!([kimbap(1, "regular", &["egg"]), {"itemId": "latte", "quantity": 2}]),
            12_800,
        ), // 3,800 + 9,000
    ];
    for (items, expected) in cases {
        let reply = stack.order(&customer, &pickup(&store, items.clone())).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{items}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["total"], expected, "{items}");
        assert_eq!(reply.body["status"], "PENDING_PAYMENT");
        let id = reply.body["orderId"].as_str().unwrap();
        assert!(
            id.len() >= 6
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
        assert!(reply.body["menuVersion"].as_u64().unwrap() > 1);
    }
    let two_lines = stack
        .order(
            &customer,
            &pickup(
                &store,
                json!([kimbap(1, "regular", &[]), {"itemId": "latte", "quantity": 1}]),
            ),
        )
        .await;
    assert_eq!(two_lines.body["orderName"], "원조김밥 외 1건");
    assert_eq!(two_lines.body["phone"], "01012345678");

    // Personal fields are sealed in the table.
    let dump = format!("{:?}", stack.scan().await);
    assert!(!dump.contains("01012345678") && !dump.contains("1234-5678"));
}

#[tokio::test]
async fn every_refusal_has_its_code_and_changes_nothing() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("refuse-owner@example.com", "OWNER").await;
    let (_, customer, _) = stack
        .account("refuse-customer@example.com", "CUSTOMER")
        .await;
    let store = stack
        .open_store_with_menu(
            &owner,
            json!({"minOrderAmount": 4000, "maxQueuedOrders": 1}),
        )
        .await;

    let cases = [
        (
            pickup(&store, json!([{"itemId": "ghost", "quantity": 1}])),
            422,
            "ITEM_NOT_FOUND",
        ),
        (
            pickup(&store, json!([{"itemId": "soldout", "quantity": 5}])),
            422,
            "ITEM_SOLD_OUT",
        ),
        (
            pickup(&store, json!([{"itemId": "latte", "quantity": 0}])),
            422,
            "QUANTITY_OUT_OF_BOUNDS",
        ),
        (
            pickup(&store, json!([{"itemId": "latte", "quantity": 100}])),
            422,
            "QUANTITY_OUT_OF_BOUNDS",
        ),
        (
            pickup(&store, json!([{"itemId": "kimbap", "quantity": 2}])),
            422,
            "OPTION_REQUIRED",
        ),
        (
            pickup(&store, json!([kimbap(2, "huge", &[])])),
            422,
            "OPTION_INVALID",
        ),
        (
            pickup(
                &store,
                json!([kimbap(2, "regular", &["cheese", "tuna", "egg"])]),
            ),
            422,
            "OPTION_RULES_BROKEN",
        ),
        (
            pickup(&store, json!([kimbap(1, "regular", &[])])),
            422,
            "BELOW_MINIMUM_AMOUNT",
        ),
        (
            pickup("nope", json!([kimbap(1, "regular", &[])])),
            422,
            "STORE_NOT_FOUND",
        ),
        // An id no store can have is refused before a key is built from it: on AWS, one over
        // DynamoDB's 2 KB key limit would fail the read (the emulator does not enforce it).
        (
            pickup(&"s".repeat(3000), json!([kimbap(1, "regular", &[])])),
            422,
            "VALIDATION_FAILED",
        ),
        (
            pickup("a/b", json!([kimbap(1, "regular", &[])])),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}], "fulfilment": {"type": "PICKUP"},
                "phone": "010-1234-5678", "total": 1}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1, "unitPrice": 1}],
                "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678"}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}], "fulfilment": {"type": "PICKUP"},
                "phone": "010-1234-5678", "status": "PAID"}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}], "fulfilment": {"type": "DELIVERY"},
                "phone": "010-1234-5678"}),
            422,
            "VALIDATION_FAILED",
        ),
        // Text the store reads as it was typed: no control character, no bidirectional override.
        (
            json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}],
                "fulfilment": {"type": "DELIVERY", "address": "1 Main St\u{1b}[2J"}, "phone": "010-1234-5678"}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}], "fulfilment": {"type": "PICKUP"},
                "phone": "010-1234-5678", "note": "no onions \u{202E}sdrawkcab"}),
            422,
            "VALIDATION_FAILED",
        ),
        // Objects written as arrays of their fields, which serde's derive would take.
        (
            json!({"storeId": store, "items": [["latte", 1]], "fulfilment": {"type": "PICKUP"},
                "phone": "010-1234-5678"}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}], "fulfilment": ["PICKUP"],
                "phone": "010-1234-5678"}),
            422,
            "VALIDATION_FAILED",
        ),
    ];
    for (body, status, code) in &cases {
        let reply = stack.order(&customer, body).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (*status, *code),
            "{body}: {:?}",
            reply.body
        );
    }
    let mine = stack.get("/v1/me/orders", Some(&customer)).await;
    assert_eq!(
        mine.body["orders"],
        json!([]),
        "no refusal created an order"
    );

    // No key: refused before anything else.
    let keyless = stack
        .send(
            stack
                .http()
                .post(stack.url("/v1/orders"))
                .bearer_auth(&customer)
                .json(&pickup(&store, json!([]))),
        )
        .await;
    assert_eq!(
        (keyless.status.as_u16(), keyless.code()),
        (400, "IDEMPOTENCY_KEY_REQUIRED")
    );
    // Owners do not place orders as customers.
    assert_eq!(
        stack.order(&owner, &pickup(&store, json!([]))).await.status,
        StatusCode::FORBIDDEN
    );

    // The queue holds one paid order: the next is refused until it moves on.
    let latte = pickup(&store, json!([{"itemId": "latte", "quantity": 1}]));
    let first = stack.order(&customer, &latte).await;
    assert_eq!(first.status, StatusCode::CREATED);
    stack
        .mark_paid(first.body["orderId"].as_str().unwrap())
        .await;
    let full = stack.order(&customer, &latte).await;
    assert_eq!((full.status.as_u16(), full.code()), (409, "QUEUE_FULL"));

    // Closed by the switch.
    stack
        .patch(
            &format!("/v1/stores/{store}"),
            &json!({"acceptingOrders": false, "maxQueuedOrders": 10}),
            Some(&owner),
        )
        .await;
    let closed = stack.order(&customer, &latte).await;
    assert_eq!(
        (closed.status.as_u16(), closed.code()),
        (409, "STORE_CLOSED")
    );
    assert_eq!(
        closed.body["error"]["message"],
        "the store is not taking orders: it has switched ordering off"
    );
}

#[tokio::test]
async fn an_order_toss_could_not_take_is_not_placed() {
    // Toss takes no card payment under 100 KRW: a free item alone would make an order that waits
    // out its payment time, never paid and never seen by the store.
    let stack = Stack::start();
    let (_, owner, _) = stack.account("free-owner@example.com", "OWNER").await;
    let (_, customer, _) = stack.account("free-customer@example.com", "CUSTOMER").await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let water = stack
        .put(
            &format!("/v1/stores/{store}/menu/items/water"),
            &json!({"categoryId": "main", "name": "Water", "price": 0}),
            Some(&owner),
        )
        .await;
    assert_eq!(water.status, StatusCode::CREATED, "{:?}", water.body);
    let free = stack
        .order(
            &customer,
            &pickup(&store, json!([{"itemId": "water", "quantity": 2}])),
        )
        .await;
    assert_eq!(
        (free.status.as_u16(), free.code()),
        (422, "BELOW_MINIMUM_AMOUNT"),
        "{:?}",
        free.body
    );
    let mine = stack.get("/v1/me/orders", Some(&customer)).await;
    assert_eq!(mine.body["orders"], json!([]), "nothing was placed");
    // With something to pay for, the water comes along.
    let lunch = stack
        .order(
            &customer,
            &pickup(
                &store,
                json!([{"itemId": "water", "quantity": 1}, {"itemId": "latte", "quantity": 1}]),
            ),
        )
        .await;
    assert_eq!(lunch.status, StatusCode::CREATED, "{:?}", lunch.body);
}

#[tokio::test]
async fn idempotency_replays_refuses_mismatches_and_survives_races() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("idem-owner@example.com", "OWNER").await;
    let (_, customer, _) = stack.account("idem-customer@example.com", "CUSTOMER").await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let body = pickup(&store, json!([{"itemId": "latte", "quantity": 1}]));
    let send = |key: &'static str, body: Value| {
        let stack = &stack;
        let customer = customer.clone();
        async move { stack.order_keyed(&customer, key, &body).await }
    };

    let first = send("key-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = send("key-1", body.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body, "the first response, replayed");
    let other = send(
        "key-1",
        pickup(&store, json!([{"itemId": "latte", "quantity": 2}])),
    )
    .await;
    assert_eq!(
        (other.status.as_u16(), other.code()),
        (422, "IDEMPOTENCY_KEY_REUSED")
    );

    // Twelve identical requests at once: one order, which every one of them answers.
    let racers: Vec<_> = (0..12).map(|_| send("key-race", body.clone())).collect();
    let replies = join_all(racers).await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert_eq!(reply.body, replies[0].body);
    }
    let mine = stack.get("/v1/me/orders", Some(&customer)).await;
    assert_eq!(
        mine.body["orders"].as_array().unwrap().len(),
        2,
        "key-1 and key-race: two orders in all"
    );

    // Keys are per customer: another customer's same key is their own.
    let (_, someone, _) = stack.account("idem-other@example.com", "CUSTOMER").await;
    let theirs = stack.order_keyed(&someone, "key-1", &body).await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.body["orderId"], first.body["orderId"]);

    // A key that is none is refused before anything is read or placed: missing, too long, or not
    // visible ASCII (sent, so not "missing"). The count of orders at the end holds them to it.
    let bare = stack.post("/v1/orders", &body, Some(&customer)).await;
    assert_eq!(
        (bare.status.as_u16(), bare.code()),
        (400, "IDEMPOTENCY_KEY_REQUIRED")
    );
    let too_long = stack.order_keyed(&customer, &"k".repeat(256), &body).await;
    assert_eq!(
        (too_long.status.as_u16(), too_long.code()),
        (400, "IDEMPOTENCY_KEY_INVALID")
    );
    let korean = stack
        .send(
            stack
                .http()
                .post(stack.url("/v1/orders"))
                .bearer_auth(&customer)
                .header(
                    "idempotency-key",
                    reqwest::header::HeaderValue::from_bytes("한글키".as_bytes()).unwrap(),
                )
                .json(&body),
        )
        .await;
    assert_eq!(
        (korean.status.as_u16(), korean.code()),
        (400, "IDEMPOTENCY_KEY_INVALID")
    );

    // The key names its order for good: a retry after the order moved on, and after the store
    // closed, is answered with the order as it stands — not refused, not placed again.
    let order_id = first.body["orderId"].as_str().unwrap();
    stack.mark_paid(order_id).await;
    stack
        .patch(
            &format!("/v1/stores/{store}"),
            &json!({"acceptingOrders": false}),
            Some(&owner),
        )
        .await;
    let later = send("key-1", body.clone()).await;
    assert_eq!(later.status, StatusCode::CREATED, "{:?}", later.body);
    assert_eq!(later.body["orderId"], first.body["orderId"]);
    assert_eq!(later.body["status"], "PAID");
    let fresh = send("key-2", body.clone()).await;
    assert_eq!((fresh.status.as_u16(), fresh.code()), (409, "STORE_CLOSED"));
    let mine = stack.get("/v1/me/orders", Some(&customer)).await;
    assert_eq!(mine.body["orders"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_lifecycle_with_twenty_racing_moves() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("life-owner@example.com", "OWNER").await;
    let (_, customer, _) = stack.account("life-customer@example.com", "CUSTOMER").await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let latte = pickup(&store, json!([{"itemId": "latte", "quantity": 1}]));
    let order = stack.order(&customer, &latte).await.body["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = format!("/v1/orders/{order}/status");

    // Unpaid: the store cannot accept; only payment moves it on.
    let early = stack
        .post(
            &status,
            &json!({"to": "ACCEPTED", "etaMinutes": 10}),
            Some(&owner),
        )
        .await;
    assert_eq!(
        (early.status.as_u16(), early.code()),
        (409, "TRANSITION_NOT_ALLOWED")
    );
    assert_eq!(
        early.body["error"]["message"],
        "a store cannot move an order from PENDING_PAYMENT to ACCEPTED; \
         no move from PENDING_PAYMENT is a store's"
    );
    // A move the document's schema refuses is 422 whatever the order's state, before it is read.
    for body in [
        json!({"to": "ACCEPTED"}),
        json!({"to": "PREPARING", "reason": "TOO_BUSY"}),
    ] {
        let malformed = stack.post(&status, &body, Some(&owner)).await;
        assert_eq!(
            (malformed.status.as_u16(), malformed.code()),
            (422, "VALIDATION_FAILED"),
            "{body}"
        );
    }
    stack.mark_paid(&order).await;

    // Ten accept and ten reject at once: exactly one wins.
    let moves: Vec<_> = (0..20)
        .map(|i| {
            let body = if i % 2 == 0 {
                json!({"to": "ACCEPTED", "etaMinutes": 15})
            } else {
                json!({"to": "REJECTED", "reason": "TOO_BUSY"})
            };
            let stack = &stack;
            let (status, owner) = (status.clone(), owner.clone());
            async move { stack.post(&status, &body, Some(&owner)).await }
        })
        .collect();
    let replies = join_all(moves).await;
    let winners: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, r.code().to_owned()))
            .collect::<Vec<_>>()
    );
    for loser in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(loser.status, StatusCode::CONFLICT);
        assert!(
            ["ORDER_STATUS_CHANGED", "TRANSITION_NOT_ALLOWED"].contains(&loser.code()),
            "{:?}",
            loser.body
        );
    }
    let won = winners[0].body["status"].as_str().unwrap().to_owned();

    // The history — the order's trail in the audit — is consistent: one record per version, each
    // move from the previous status.
    let mut trail: Vec<(u64, Option<String>, String)> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while trail.len() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let audit = stack
            .get(&format!("/v1/stores/{store}/audit?limit=200"), Some(&owner))
            .await;
        assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);
        trail = audit.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["target"] == format!("ORDER#{order}").as_str())
            // Moves only (a move's event id ends in the order's version; a refund's does not).
            .filter_map(|r| {
                let version = r["eventId"]
                    .as_str()
                    .and_then(|id| id.rsplit_once(".v"))
                    .and_then(|(_, v)| v.parse().ok())?;
                Some((
                    version,
                    r["before"].as_str().map(String::from),
                    r["after"].as_str()?.to_owned(),
                ))
            })
            .collect();
    }
    trail.sort();
    assert_eq!(
        trail.iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{trail:?}"
    );
    assert_eq!(trail[0].1, None);
    for pair in trail.windows(2) {
        assert_eq!(pair[1].1.as_deref(), Some(pair[0].2.as_str()), "{trail:?}");
    }
    assert_eq!(trail[2].2, won, "the trail ends where the order is");
    let read = stack
        .get(&format!("/v1/orders/{order}"), Some(&customer))
        .await;
    assert_eq!(read.body["status"], won.as_str());
    assert_eq!(read.body["version"], 3);
    // The winning move sent again (its answer lost, or a second tablet's): the order is there.
    let winning = if won == "ACCEPTED" {
        json!({"to": "ACCEPTED", "etaMinutes": 15})
    } else {
        json!({"to": "REJECTED", "reason": "TOO_BUSY"})
    };
    let again = stack.post(&status, &winning, Some(&owner)).await;
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (409, "ORDER_STATUS_CHANGED")
    );
    assert_eq!(
        again.body["error"]["message"],
        format!("the order is already {won}")
    );

    // A full run on a second order: accept with an ETA, prepare, ready, complete.
    let second = stack.order(&customer, &latte).await.body["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.mark_paid(&second).await;
    let status = format!("/v1/orders/{second}/status");
    let no_eta = stack
        .post(&status, &json!({"to": "ACCEPTED"}), Some(&owner))
        .await;
    assert_eq!(no_eta.status, StatusCode::UNPROCESSABLE_ENTITY);
    let customer_accepts = stack
        .post(
            &status,
            &json!({"to": "ACCEPTED", "etaMinutes": 5}),
            Some(&customer),
        )
        .await;
    assert_eq!(customer_accepts.code(), "TRANSITION_NOT_ALLOWED");
    // The refusal says where the caller may move it instead.
    assert_eq!(
        customer_accepts.body["error"]["message"],
        "a customer cannot move an order from PAID to ACCEPTED; from PAID it may move it to CANCELED"
    );
    let accepted = stack
        .post(
            &status,
            &json!({"to": "ACCEPTED", "etaMinutes": 20}),
            Some(&owner),
        )
        .await;
    assert_eq!(accepted.body["status"], "ACCEPTED");
    assert!(accepted.body["etaAt"].is_string());
    let cancel_late = stack
        .post(&status, &json!({"to": "CANCELED"}), Some(&customer))
        .await;
    assert_eq!(
        cancel_late.code(),
        "TRANSITION_NOT_ALLOWED",
        "no cancelling after acceptance"
    );
    for to in ["PREPARING", "READY", "COMPLETED"] {
        let reply = stack.post(&status, &json!({"to": to}), Some(&owner)).await;
        assert_eq!(reply.body["status"], to, "{:?}", reply.body);
    }
    let board = stack
        .get(
            &format!("/v1/stores/{store}/orders?status=CLOSED"),
            Some(&owner),
        )
        .await;
    assert!(
        board.body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["orderId"] == second.as_str())
    );

    // The customer cancels a paid order before acceptance.
    let third = stack.order(&customer, &latte).await.body["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.mark_paid(&third).await;
    let canceled = stack
        .post(
            &format!("/v1/orders/{third}/status"),
            &json!({"to": "CANCELED"}),
            Some(&customer),
        )
        .await;
    assert_eq!(canceled.body["status"], "CANCELED");

    // One status picks its orders out of the closed ones, and only those.
    for (status, order) in [("COMPLETED", &second), ("CANCELED", &third)] {
        let listed = stack
            .get(
                &format!("/v1/stores/{store}/orders?status={status}"),
                Some(&owner),
            )
            .await;
        let ids: Vec<_> = listed.body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["orderId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [order.as_str()], "{status}: {:?}", listed.body);
    }
}

/// An order's item stays under a kilobyte as DynamoDB sizes it on AWS (the meter sizes sealed
/// values with AWS's 184-byte wrapped key) through a move that stamps the mover's id, for a pickup
/// order and for a delivery with a Korean address and a note: a move is billed one write unit, not
/// two. A field added to the order, or a longer key, that takes it past the edge doubles the price
/// of every move and fails here. And a move within the board (paid → accepted) leaves the store's
/// listing entry as it was: no index write (the index holds the order's keys, not its status).
#[tokio::test]
async fn a_move_of_an_order_is_billed_one_write_unit() {
    let stack = Stack::start();
    let pickup = json!({"type": "PICKUP"});
    let delivery = json!({"type": "DELIVERY", "address": "서울 마포구 월드컵북로 396 누리꿈스퀘어 12층 1203호"});
    for (n, fulfilment, note) in [
        ("kb-pickup", pickup, None),
        (
            "kb-delivery",
            delivery,
            Some("벨 누르지 말고 문 앞에 두세요. 수저는 빼 주세요."),
        ),
    ] {
        let latte = stack.latte_order_with(n, fulfilment, note).await;
        stack.pay(&latte, n).await;
        let status = format!("/v1/orders/{}/status", latte.order);
        let reading = stack
            .metered(async {
                let accepted = stack
                    .post(
                        &status,
                        &json!({"to": "ACCEPTED", "etaMinutes": 20}),
                        Some(&latte.owner),
                    )
                    .await;
                assert_eq!(accepted.body["status"], "ACCEPTED", "{:?}", accepted.body);
            })
            .await;
        let order = &reading["dynamodbByKind"]["ORDER/ORDER"];
        let table_units =
            order["writeUnits"].as_f64().unwrap() - order["indexWriteUnits"].as_f64().unwrap();
        eprintln!("{n}: {} bytes", order["bytes"]);
        assert_eq!(order["items"], 1, "{n}: {reading:#}");
        assert_eq!(table_units, 1.0, "{n}: {reading:#}");
        assert_eq!(order["indexWriteUnits"], 0.0, "{n}: {reading:#}");
    }
}

/// A move asks the table for the order and nothing else of the store's: its owner, which never
/// changes, is read once per instance (`stores::owners`). Staff are read on every move, so a staff
/// member removed is refused at their next one; another store's owner is refused however warm the
/// instance. Each metered move's calls are counted at the runner's front, by function.
#[tokio::test]
async fn a_move_reads_the_stores_owner_once_per_instance_and_its_staff_every_time() {
    let stack = Stack::start();
    let (store, owner, staff, customer) = stack.staffed_store("owner-once").await;
    let (_, stranger, _) = stack
        .account("owner-once-stranger@example.com", "OWNER")
        .await;
    let _their_store = stack.open_store_with_menu(&stranger, json!({})).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        let placed = stack
            .order(
                &customer,
                &pickup(&store, json!([{"itemId": "latte", "quantity": 1}])),
            )
            .await;
        let order = placed.body["orderId"].as_str().unwrap().to_owned();
        stack.mark_paid(&order).await;
        orders.push(order);
    }
    let accept = json!({"to": "ACCEPTED", "etaMinutes": 10});
    let status = |order: &str| format!("/v1/orders/{order}/status");
    // The instance's first move reads the store's owner.
    let first = stack.post(&status(&orders[0]), &accept, Some(&owner)).await;
    assert_eq!(first.body["status"], "ACCEPTED", "{:?}", first.body);

    // Then the owner's move reads the order alone; a staff member's, the order and their place.
    for (token, order, reads) in [(&owner, &orders[1], 1), (&staff, &orders[2], 2)] {
        let (calls, read_the_store) = metered_move(&stack, order, token, &accept).await;
        assert_eq!(
            calls,
            json!({"dynamodb.GetItem": reads, "dynamodb.UpdateItem": 1}),
            "{reads} reads"
        );
        assert!(!read_the_store);
    }

    // Another store's owner: refused as if the order did not exist, and it does not move.
    let prepare = json!({"to": "PREPARING"});
    let foreign = stack
        .post(&status(&orders[1]), &prepare, Some(&stranger))
        .await;
    assert_eq!(
        (foreign.status.as_u16(), foreign.code()),
        (404, "ORDER_NOT_FOUND")
    );
    // A staff member removed is refused at their next move.
    let me = stack.get("/v1/me", Some(&staff)).await;
    let staff_id = me.body["userId"].as_str().unwrap().to_owned();
    let removed = stack
        .delete(
            &format!("/v1/stores/{store}/staff/{staff_id}"),
            Some(&owner),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let after = stack
        .post(&status(&orders[2]), &prepare, Some(&staff))
        .await;
    assert_eq!(
        (after.status.as_u16(), after.code()),
        (404, "ORDER_NOT_FOUND")
    );
    for order in &orders[1..] {
        let seen = stack
            .get(&format!("/v1/orders/{order}"), Some(&owner))
            .await;
        assert_eq!(seen.body["status"], "ACCEPTED", "{order}: {:?}", seen.body);
    }
}

/// `token`'s move of `order` with `body`, metered: the status function's AWS calls, and whether
/// anything read the store's item.
async fn metered_move(stack: &Stack, order: &str, token: &str, body: &Value) -> (Value, bool) {
    // The stream's readers wait meanwhile: the recorder reads a paid order's store (its time zone),
    // and its batching window may put that read of an earlier event inside the reading.
    let readers = ["EventsRecordFunction", "NotificationsPushFunction"];
    for reader in readers {
        stack
            .local(&format!("functions/{reader}/stop"), &json!({}))
            .await;
    }
    let reading = stack
        .metered(async {
            let moved = stack
                .post(&format!("/v1/orders/{order}/status"), body, Some(token))
                .await;
            assert_eq!(moved.body["status"], body["to"], "{:?}", moved.body);
        })
        .await;
    for reader in readers {
        stack
            .local(&format!("functions/{reader}/start"), &json!({}))
            .await;
    }
    let calls = reading["awsCallsByFunction"]["OrdersStatusFunction"].clone();
    let read_the_store = reading["dynamodbByKind"]
        .as_object()
        .is_some_and(|kinds| kinds.contains_key("STORE/STORE"));
    (calls, read_the_store)
}

#[tokio::test]
async fn unpaid_orders_expire() {
    let stack = Stack::start_with(&["PaymentWindowSeconds=1"]);
    let (_, owner, _) = stack.account("expire-owner@example.com", "OWNER").await;
    let (_, customer, _) = stack
        .account("expire-customer@example.com", "CUSTOMER")
        .await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let latte = pickup(&store, json!([{"itemId": "latte", "quantity": 1}]));
    let unpaid = stack.order(&customer, &latte).await.body["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let paid = stack.order(&customer, &latte).await.body["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.mark_paid(&paid).await;

    let mut status = Value::Null;
    for _ in 0..40 {
        status = stack
            .get(&format!("/v1/orders/{unpaid}"), Some(&customer))
            .await
            .body["status"]
            .clone();
        if status == "EXPIRED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, "EXPIRED");
    let paid_now = stack
        .get(&format!("/v1/orders/{paid}"), Some(&customer))
        .await;
    assert_eq!(paid_now.body["status"], "PAID", "paid orders never expire");
    // Expired is final: paying or cancelling it is refused.
    let cancel = stack
        .post(
            &format!("/v1/orders/{unpaid}/status"),
            &json!({"to": "CANCELED"}),
            Some(&customer),
        )
        .await;
    assert_eq!(cancel.code(), "TRANSITION_NOT_ALLOWED");
}

#[tokio::test]
async fn paging_through_250_orders_has_no_gaps_or_duplicates() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("page-owner@example.com", "OWNER").await;
    let (_, customer, _) = stack.account("page-customer@example.com", "CUSTOMER").await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let other_store = stack.open_store_with_menu(&owner, json!({})).await;
    let latte = pickup(&store, json!([{"itemId": "latte", "quantity": 1}]));
    let mut created = HashSet::new();
    // Five at a time: enough to interleave, gentle on the emulator (it copies the whole table in
    // every transaction).
    for chunk in 0..50 {
        let batch: Vec<_> = (0..5).map(|_| stack.order(&customer, &latte)).collect();
        for reply in join_all(batch).await {
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "chunk {chunk}: {:?}",
                reply.body
            );
            created.insert(reply.body["orderId"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(created.len(), 250);

    async fn walk(stack: &Stack, path: &str, token: &str, limit: u32) -> Vec<Value> {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut request = stack
                .http()
                .get(stack.url(path))
                .bearer_auth(token)
                .query(&[("limit", limit.to_string())]);
            if let Some(c) = &cursor {
                request = request.query(&[("cursor", c)]);
            }
            let page = stack.send(request).await;
            assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
            seen.extend(page.body["orders"].as_array().unwrap().iter().cloned());
            match page.body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return seen,
            }
        }
    }
    for (path, token) in [
        ("/v1/me/orders".to_owned(), &customer),
        (format!("/v1/stores/{store}/orders?status=PENDING"), &owner),
    ] {
        let listed = walk(&stack, &path, token, 100).await;
        let ids: Vec<&str> = listed
            .iter()
            .map(|o| o["orderId"].as_str().unwrap())
            .collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(ids.len(), 250, "{path}");
        assert_eq!(unique.len(), 250, "{path}: duplicates");
        assert!(
            unique.iter().all(|id| created.contains(*id)),
            "{path}: strangers"
        );
        let times: Vec<&str> = listed
            .iter()
            .map(|o| o["createdAt"].as_str().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "{path}: newest first"
        );
    }

    // Cursors are bound to their listing and cannot be made up; limits are capped.
    let first = stack
        .send(
            stack
                .http()
                .get(stack.url(&format!(
                    "/v1/stores/{store}/orders?status=PENDING&limit=10"
                )))
                .bearer_auth(&owner),
        )
        .await;
    let cursor = first.body["nextCursor"].as_str().unwrap().to_owned();
    for path in [
        format!("/v1/stores/{other_store}/orders"),
        format!("/v1/stores/{other_store}/orders?status=PENDING"),
        "/v1/me/orders".to_owned(),
    ] {
        let token = if path.starts_with("/v1/me") {
            &customer
        } else {
            &owner
        };
        let replay = stack
            .send(
                stack
                    .http()
                    .get(stack.url(&path))
                    .bearer_auth(token)
                    .query(&[("cursor", &cursor)]),
            )
            .await;
        assert_eq!(
            (replay.status.as_u16(), replay.code()),
            (422, "VALIDATION_FAILED"),
            "{path}"
        );
    }
    let forged = stack
        .send(
            stack
                .http()
                .get(stack.url("/v1/me/orders"))
                .bearer_auth(&customer)
                .query(&[("cursor", "eyJQSyI6IngifQ")]),
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A parameter that is not what it should be says what it should be.
    for (path, token, message) in [
        (
            "/v1/me/orders?limit=101".to_owned(),
            &customer,
            "limit: between 1 and 100",
        ),
        (
            "/v1/me/orders?limit=-1".to_owned(),
            &customer,
            "limit: a whole number of items, e.g. 20",
        ),
        (
            format!("/v1/stores/{store}/orders?since=yesterday"),
            &owner,
            "since: a time as RFC 3339, e.g. 2026-12-07T09:00:00Z",
        ),
    ] {
        let refused = stack.get(&path, Some(token)).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (422, "VALIDATION_FAILED"),
            "{path}"
        );
        assert_eq!(refused.body["error"]["message"], message, "{path}");
    }
}

/// A cursor is opened in memory under a key KMS derives once per instance (`crypto::cursors`): a
/// new instance opens the cursors an earlier one issued, and an altered, forged or outdated cursor
/// is refused (422) without a call to KMS — such requests cannot spend the account's KMS rate.
#[tokio::test]
async fn cursors_open_in_any_instance_and_a_forged_one_costs_no_kms_call() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("cursor-owner@example.com", "OWNER").await;
    let (_, customer, _) = stack
        .account("cursor-customer@example.com", "CUSTOMER")
        .await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let latte = pickup(&store, json!([{"itemId": "latte", "quantity": 1}]));
    for _ in 0..3 {
        let placed = stack.order(&customer, &latte).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    }
    let page = |cursor: Option<String>| {
        let mut request = stack
            .http()
            .get(stack.url("/v1/me/orders"))
            .bearer_auth(&customer)
            .query(&[("limit", "1")]);
        if let Some(cursor) = cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        stack.send(request)
    };
    let listed = |reply: &e2e::Reply| -> (String, Option<String>) {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let orders = reply.body["orders"].as_array().unwrap();
        assert_eq!(orders.len(), 1, "{:?}", reply.body);
        (
            orders[0]["orderId"].as_str().unwrap().to_owned(),
            reply.body["nextCursor"].as_str().map(String::from),
        )
    };
    let (first, cursor) = listed(&page(None).await);
    let cursor = cursor.expect("a second page");

    // A new instance derives the same key, once.
    stack.crash("OrdersMineFunction").await;
    let mut second = None;
    let reading = stack
        .metered(async { second = Some(page(Some(cursor.clone())).await) })
        .await;
    let (second, cursor) = listed(&second.unwrap());
    assert_ne!(first, second);
    let calls = &reading["awsCallsByFunction"]["OrdersMineFunction"];
    assert_eq!(calls["kms.GenerateMac"], json!(1), "{calls}");
    let cursor = cursor.expect("a third page");

    let mut altered = cursor.clone().into_bytes();
    altered[cursor.len() / 2] = if altered[cursor.len() / 2] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let altered = String::from_utf8(altered).unwrap();
    // What an earlier release issued: an envelope of ~300 characters.
    let outdated = "AQICAHh".to_owned() + &"x3Yz".repeat(75);
    let forged = [
        altered,
        outdated,
        "eyJQSyI6IngifQ".to_owned(),
        "A".repeat(5000),
    ];
    let reading = stack
        .metered(async {
            for forged in &forged {
                let refused = page(Some(forged.clone())).await;
                assert_eq!(
                    (refused.status.as_u16(), refused.code()),
                    (422, "VALIDATION_FAILED"),
                    "{forged}: {:?}",
                    refused.body
                );
                assert_eq!(
                    refused.body["error"]["message"],
                    json!("cursor: not a cursor of this listing"),
                    "{:?}",
                    refused.body
                );
            }
        })
        .await;
    let calls = &reading["awsCallsByFunction"]["OrdersMineFunction"];
    let kms: Vec<&String> = calls
        .as_object()
        .map(|calls| calls.keys().filter(|k| k.starts_with("kms.")).collect())
        .unwrap_or_default();
    assert!(kms.is_empty(), "forged cursors called KMS: {calls}");

    // The genuine cursor still leads on.
    let (third, last) = listed(&page(Some(cursor)).await);
    assert!(![first, second].contains(&third));
    assert_eq!(last, None);
}

#[tokio::test]
async fn orders_are_private_to_their_customer_and_store() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("priv-owner@example.com", "OWNER").await;
    let (_, other_owner, _) = stack.account("priv-other-owner@example.com", "OWNER").await;
    let (_, customer, _) = stack.account("priv-customer@example.com", "CUSTOMER").await;
    let (_, stranger, _) = stack.account("priv-stranger@example.com", "CUSTOMER").await;
    let (staff_id, invited, _) = stack.account("priv-staff@example.com", "CUSTOMER").await;
    let (other_staff_id, other_invited, _) = stack
        .account("priv-other-staff@example.com", "CUSTOMER")
        .await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let other_store = stack.open_store_with_menu(&other_owner, json!({})).await;
    stack.hire(&owner, &store, &staff_id, &invited).await;
    stack
        .hire(&other_owner, &other_store, &other_staff_id, &other_invited)
        .await;
    let staff = stack.login("priv-staff@example.com", PASSWORD).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_staff = stack
        .login("priv-other-staff@example.com", PASSWORD)
        .await
        .body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = stack
        .order(
            &customer,
            &pickup(&store, json!([{"itemId": "latte", "quantity": 1}])),
        )
        .await
        .body["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.mark_paid(&order).await;
    let order_path = format!("/v1/orders/{order}");
    let status_path = format!("{order_path}/status");

    // Allowed readers.
    for token in [&customer, &owner, &staff] {
        let read = stack.get(&order_path, Some(token)).await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.body["phone"], "01012345678");
    }
    // Everyone else: the order does not exist for them, and they cannot move it.
    for (who, token) in [
        ("a foreign customer", &stranger),
        ("a foreign store's owner", &other_owner),
        ("a foreign store's staff", &other_staff),
    ] {
        let read = stack.get(&order_path, Some(token)).await;
        assert_eq!(
            (read.status.as_u16(), read.code()),
            (404, "ORDER_NOT_FOUND"),
            "{who}"
        );
        let moved = stack
            .post(&status_path, &json!({"to": "CANCELED"}), Some(token))
            .await;
        assert_eq!(moved.status, StatusCode::NOT_FOUND, "{who}");
        let accepted = stack
            .post(
                &status_path,
                &json!({"to": "ACCEPTED", "etaMinutes": 5}),
                Some(token),
            )
            .await;
        assert_eq!(accepted.status, StatusCode::NOT_FOUND, "{who}");
        let board = stack
            .get(&format!("/v1/stores/{store}/orders"), Some(token))
            .await;
        assert_eq!(board.status, StatusCode::FORBIDDEN, "{who}");
    }
    for (path, method) in [
        (order_path.clone(), "GET"),
        (status_path.clone(), "POST"),
        ("/v1/me/orders".into(), "GET"),
        (format!("/v1/stores/{store}/orders"), "GET"),
        ("/v1/orders".into(), "POST"),
    ] {
        let reply = if method == "GET" {
            stack.get(&path, None).await
        } else {
            stack.post(&path, &json!({}), None).await
        };
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "anonymous {method} {path}"
        );
    }
    // A stranger's own list does not include it; the store's board does.
    let theirs = stack.get("/v1/me/orders", Some(&stranger)).await;
    assert_eq!(theirs.body["orders"], json!([]));
    let board = stack
        .get(&format!("/v1/stores/{store}/orders"), Some(&staff))
        .await;
    assert_eq!(board.body["orders"][0]["orderId"], order.as_str());
    // Staff work the queue.
    let accepted = stack
        .post(
            &status_path,
            &json!({"to": "ACCEPTED", "etaMinutes": 5}),
            Some(&staff),
        )
        .await;
    assert_eq!(accepted.body["status"], "ACCEPTED");
}
