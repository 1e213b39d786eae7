//! The web app in a real browser (Debian's Chromium, driven by playwright-core from
//! `web/tests/board.mjs`) against the local stack: a store's staff signs in, sees the order paid
//! before the board opened, hears an order paid while it watches (a chime, and an alert that stays
//! until acknowledged), and moves it through the kitchen by clicks; then two tablets accept the
//! same order at once, and the one that lost says so and shows where the order is; then the network
//! drops (a move is refused on the spot) and an order paid meanwhile appears once it is back, once;
//! then the latte's sold-out switch is flipped on the board (the API refuses an order of one) and
//! back; and, with access tokens of 15 seconds, the board renews its own and still hears an order
//! long past the first one's end, and rejects it with a reason; then it switches to English and back,
//! and is shown on a phone's screen.
//! Screenshots go to docs/screens/. Needs `make web` (the build) and Chromium (`make test`
//! installs both: `infra/browser`).

use std::process::Stdio;
use std::time::Duration;

use e2e::{PASSWORD, Stack, StatusCode, root};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const MINUTE: Duration = Duration::from_secs(60);

async fn paid_order(stack: &Stack, customer: &str, store: &str) -> String {
    let placed = stack
        .order(
            customer,
            &json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 2}],
                "fulfilment": {"type": "PICKUP"}, "phone": "010-2222-3333"}),
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order = placed.body["orderId"].as_str().unwrap().to_owned();
    stack.mark_paid(&order).await;
    order
}

#[tokio::test]
async fn a_store_moves_a_new_order_through_the_kitchen_on_the_board() {
    let web = root().join("web");
    assert!(
        web.join("dist/index.html").is_file() && web.join("node_modules/playwright-core").is_dir(),
        "the web app is not built: run `make web` (make test does)"
    );
    // Access tokens last 15 s: the board must renew its own while it watches.
    let stack = Stack::start_with(&["AccessTokenSeconds=15"]);
    let (store, _owner, _staff, customer) = stack.staffed_store("web").await;
    let first = paid_order(&stack, &customer, &store).await;
    let shots = root().join("docs/screens");
    std::fs::create_dir_all(&shots).unwrap();

    let mut board = Command::new("node")
        .arg(web.join("tests/board.mjs"))
        .current_dir(&web)
        .env("BOARD_URL", stack.url("/app/"))
        .env("EMAIL", "staff-web@example.com")
        .env("PASSWORD", PASSWORD)
        .env("STORE", &store)
        .env("FIRST", &first)
        .env("SHOTS", &shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs web/tests/board.mjs");
    let mut said = BufReader::new(board.stdout.take().unwrap()).lines();
    let mut stdin = board.stdin.take().unwrap();
    // The script says where it is, one line at a time; the test answers with an order's id.
    let mut expect = async |line: &str| {
        let heard = tokio::time::timeout(MINUTE, said.next_line())
            .await
            .unwrap_or_else(|_| panic!("{line} within a minute"));
        assert_eq!(heard.unwrap().as_deref(), Some(line));
    };
    let mut tell = async |line: &str| {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap()
    };
    expect("READY").await;

    // An order paid while the board watches: it appears, and the staff's clicks move it.
    let second = paid_order(&stack, &customer, &store).await;
    tell(&second).await;
    // The board goes offline; an order is paid meanwhile.
    expect("OFFLINE").await;
    let third = paid_order(&stack, &customer, &store).await;
    tell(&third).await;
    // The staff mark the latte sold out on the board: the menu says so, and an order of one is
    // refused; once they switch it back, it sells again.
    expect("SOLD_OUT").await;
    let menu = format!("/v1/stores/{store}/menu");
    // A warm instance serves the menu it read for up to MenuCacheSeconds (5).
    let latte_becomes = async |available: bool| {
        let mut seen = None;
        for _ in 0..40 {
            let read = stack.get(&menu, None).await;
            seen = read.body["items"]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["id"] == "latte"))
                .map(|latte| latte["available"].clone());
            if seen == Some(json!(available)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("the menu's latte is {seen:?}, not available: {available}");
    };
    latte_becomes(false).await;
    let refused = stack
        .order(
            &customer,
            &json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}],
                "fulfilment": {"type": "PICKUP"}, "phone": "010-2222-3333"}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.body["error"]["code"], "ITEM_SOLD_OUT");
    tell("back").await;
    // Long past the first access token's end, the board hears an order paid and rejects it (too
    // busy).
    expect("EXPIRED").await;
    latte_becomes(true).await;
    // The test's own tokens lapsed too: the customer signs in again.
    let customer = stack.access_token("customer-web@example.com").await;
    let staff = stack.access_token("staff-web@example.com").await;
    let fourth = paid_order(&stack, &customer, &store).await;
    tell(&fourth).await;
    expect("DONE").await;
    drop(stdin);
    let exit = tokio::time::timeout(MINUTE, board.wait())
        .await
        .expect("the browser closes");
    assert!(exit.unwrap().success());

    let read = stack
        .get(&format!("/v1/orders/{second}"), Some(&staff))
        .await;
    assert_eq!(read.body["status"], "COMPLETED", "{:?}", read.body);
    assert_eq!(read.body["version"], 6);
    // Two tablets accepted the first order at once: it moved once.
    let raced = stack
        .get(&format!("/v1/orders/{first}"), Some(&staff))
        .await;
    assert_eq!(raced.body["status"], "ACCEPTED", "{:?}", raced.body);
    assert_eq!(raced.body["version"], 3);
    let late = stack
        .get(&format!("/v1/orders/{fourth}"), Some(&staff))
        .await;
    assert_eq!(late.body["status"], "REJECTED", "{:?}", late.body);
    assert_eq!(late.body["rejectReason"], "TOO_BUSY", "{:?}", late.body);
    // The board renewed its session while it watched (a token lasts 15 s here).
    let renewals = stack
        .logs()
        .lines()
        .filter(|l| {
            l.contains("\"route\":\"POST /v1/auth/refresh\"") && l.contains("\"status\":200")
        })
        .count();
    assert!(
        renewals >= 2,
        "the board renewed its token {renewals} times"
    );
}
