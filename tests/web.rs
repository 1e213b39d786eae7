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
//! And the owner's day (`web/tests/owner.mjs`): the day's figures and its orders by hour as the API
//! counts them, a refund through the board's dialog (reaching Toss and the figures), the audit
//! trail, the month's CSV; the staff see the figures and none of the owner's tools.
//! Screenshots go to docs/screens/. Needs `make web` (the build) and Chromium (`make test`
//! installs both: `infra/browser`).

use std::process::Stdio;
use std::time::Duration;

use e2e::{PASSWORD, Stack, StatusCode, root};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const MINUTE: Duration = Duration::from_secs(60);
/// What a member of staff changes their password to, on the board.
const NEW_PASSWORD: &str = "tteokbokki at midnight";

/// `quantity` lattes ordered by `customer` for pickup: the API's answer.
async fn order_lattes(stack: &Stack, customer: &str, store: &str, quantity: u32) -> e2e::Reply {
    stack
        .order(
            customer,
            &json!({"storeId": store, "items": [{"itemId": "latte", "quantity": quantity}],
                "fulfilment": {"type": "PICKUP"}, "phone": "010-2222-3333"}),
        )
        .await
}

/// Two lattes ordered by `customer` for pickup, not yet paid: the order's id and total.
async fn two_lattes(stack: &Stack, customer: &str, store: &str) -> (String, serde_json::Value) {
    let placed = order_lattes(stack, customer, store, 2).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
    let order = placed.body["orderId"].as_str().unwrap().to_owned();
    (order, placed.body["total"].clone())
}

/// [`two_lattes`], marked paid behind the API (the board's test needs no money to move).
async fn paid_order(stack: &Stack, customer: &str, store: &str) -> String {
    let (order, _) = two_lattes(stack, customer, store).await;
    stack.mark_paid(&order).await;
    order
}

/// [`two_lattes`], paid through Toss (the stand-in) as the customer's app does, so that it can be
/// refunded.
async fn paid_through_toss(stack: &Stack, customer: &str, store: &str) -> String {
    let (order, total) = two_lattes(stack, customer, store).await;
    let paid = stack
        .post(
            "/v1/payments/confirm",
            &json!({"orderId": order, "paymentKey": format!("tpk_{order}"), "amount": total}),
            Some(customer),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    order
}

/// The web app's directory, once `make web` built it.
fn built_web() -> std::path::PathBuf {
    let web = root().join("web");
    assert!(
        web.join("dist/index.html").is_file() && web.join("node_modules/playwright-core").is_dir(),
        "the web app is not built: run `make web` (make test does)"
    );
    web
}

/// A browser script of `web/tests/`, run with `env`: what it says, line by line, and what it is told.
struct Script {
    child: tokio::process::Child,
    said: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stdin: Option<tokio::process::ChildStdin>,
}

impl Script {
    fn start(web: &std::path::Path, name: &str, env: &[(&str, &str)]) -> Script {
        let mut child = Command::new("node")
            .arg(web.join("tests").join(name))
            .current_dir(web)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs a browser script");
        let said = BufReader::new(child.stdout.take().unwrap()).lines();
        let stdin = child.stdin.take();
        Script { child, said, stdin }
    }

    /// The script says `line` next, within a minute.
    async fn expect(&mut self, line: &str) {
        let heard = tokio::time::timeout(MINUTE, self.said.next_line())
            .await
            .unwrap_or_else(|_| panic!("{line} within a minute"));
        assert_eq!(heard.unwrap().as_deref(), Some(line));
    }

    async fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the script still listens");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap()
    }

    /// The script ends, and ends well.
    async fn finish(mut self) {
        drop(self.stdin.take());
        let exit = tokio::time::timeout(MINUTE, self.child.wait())
            .await
            .expect("the browser closes");
        assert!(exit.unwrap().success());
    }
}

#[tokio::test]
async fn a_store_moves_a_new_order_through_the_kitchen_on_the_board() {
    let web = built_web();
    // Access tokens last 15 s: the board must renew its own while it watches.
    let stack = Stack::start_with(&["AccessTokenSeconds=15"]);
    let (store, _owner, _staff, customer) = stack.staffed_store("web").await;
    let first = paid_order(&stack, &customer, &store).await;
    let shots = root().join("docs/screens");
    std::fs::create_dir_all(&shots).unwrap();

    let shots_dir = shots.to_string_lossy();
    let url = stack.url("/app/");
    let mut board = Script::start(
        &web,
        "board.mjs",
        &[
            ("BOARD_URL", &url),
            ("EMAIL", "staff-web@example.com"),
            ("PASSWORD", PASSWORD),
            ("FIRST", &first),
            ("SHOTS", &shots_dir),
        ],
    );
    // The script says where it is, one line at a time; the test answers with an order's id.
    board.expect("READY").await;

    // An order paid while the board watches: it appears, and the staff's clicks move it.
    let second = paid_order(&stack, &customer, &store).await;
    board.tell(&second).await;
    // The board goes offline; an order is paid meanwhile.
    board.expect("OFFLINE").await;
    let third = paid_order(&stack, &customer, &store).await;
    board.tell(&third).await;
    // The staff mark the latte sold out on the board: the menu says so, and an order of one is
    // refused; once they switch it back, it sells again.
    board.expect("SOLD_OUT").await;
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
    let refused = order_lattes(&stack, &customer, &store, 1).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.body["error"]["code"], "ITEM_SOLD_OUT");
    board.tell("back").await;
    // Long past the first access token's end, the board hears an order paid and rejects it (too
    // busy): its first try is refused 401, and it renews its session and tries again.
    board.expect("EXPIRED").await;
    latte_becomes(true).await;
    // The test's own tokens lapsed too: the customer signs in again.
    let customer = stack.access_token("customer-web@example.com").await;
    let staff = stack.access_token("staff-web@example.com").await;
    let fourth = paid_order(&stack, &customer, &store).await;
    board.tell(&fourth).await;
    board.expect("DONE").await;
    board.finish().await;

    let read = stack
        .get(&format!("/v1/orders/{second}"), Some(&staff))
        .await;
    assert_eq!(read.body["status"], "COMPLETED", "{:?}", read.body);
    assert_eq!(read.body["version"], 6);
    // The order paid while the board was offline went through the kitchen by keys alone.
    let by_keys = stack
        .get(&format!("/v1/orders/{third}"), Some(&staff))
        .await;
    assert_eq!(by_keys.body["status"], "COMPLETED", "{:?}", by_keys.body);
    assert_eq!(by_keys.body["version"], 6);
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
        .filter(|l| l.starts_with("[AuthRefreshFunction#") && l.contains("\"status\":200"))
        .count();
    assert!(
        renewals >= 2,
        "the board renewed its token {renewals} times"
    );
}

#[tokio::test]
async fn tabs_of_one_kept_session_renew_it_in_turn() {
    let web = built_web();
    // Access tokens of 15 s: each tab renews every few seconds.
    let stack = Stack::start_with(&["AccessTokenSeconds=15"]);
    let (store, owner, _, _) = stack.staffed_store("tabs").await;
    // The owner runs two stores: one tab changes to the other, the rest stay where they are.
    let other = stack.store(&owner, json!({"name": "2호점"})).await;
    let url = stack.url("/app/");
    let mut tabs = Script::start(
        &web,
        "tabs.mjs",
        &[
            ("BOARD_URL", &url),
            ("EMAIL", "owner-tabs@example.com"),
            ("PASSWORD", PASSWORD),
            ("STORE", &store),
            ("STORE_NAME", "김밥천국 종로점"),
            ("OTHER", &other),
            ("OTHER_NAME", "2호점"),
        ],
    );
    tabs.expect("TABS").await;
    tabs.expect("DONE").await;
    tabs.finish().await;
    // Every renewal of the three tabs was answered, none refused as a spent token coming back.
    let logs = stack.logs();
    let renewals = |status: &str| {
        logs.lines()
            .filter(|l| {
                l.starts_with("[AuthRefreshFunction#")
                    && l.contains(&format!("\"status\":{status}"))
            })
            .count()
    };
    assert!(renewals("200") >= 6, "{} renewals", renewals("200"));
    assert_eq!(renewals("401"), 0);
}

/// The store's calendar date now (the local stack's stores keep Seoul's time).
fn seoul_today() -> String {
    jiff::Timestamp::now()
        .in_tz("Asia/Seoul")
        .unwrap()
        .date()
        .to_string()
}

#[tokio::test]
async fn an_owner_reads_the_day_and_refunds_an_order_on_the_board() {
    let web = built_web();
    let stack = Stack::start();
    let (store, owner, staff, customer) = stack.staffed_store("day").await;
    let (newcomer_id, newcomer, _) = stack.account("newcomer-day@example.com", "CUSTOMER").await;
    // The owner runs a second store: the board asks which.
    stack.store(&owner, json!({"name": "2호점"})).await;
    // A member of the staff who owns a store of their own: the owner's tools show by place.
    let (helper_id, helper, helper_refresh) =
        stack.account("helper-day@example.com", "OWNER").await;
    stack.store(&helper, json!({"name": "옆집 분식"})).await;
    stack.hire(&owner, &store, &helper_id, &helper).await;
    for (token, name) in [(&staff, "김민수"), (&helper, "이지은")] {
        let named = stack
            .patch("/v1/me", &json!({"name": name}), Some(token))
            .await;
        assert_eq!(named.status, StatusCode::OK, "{:?}", named.body);
    }
    // The day: one order handed over, one turned away (refunded in full), one waiting.
    let handed_over = paid_through_toss(&stack, &customer, &store).await;
    for (to, extra) in [
        ("ACCEPTED", json!({"etaMinutes": 10})),
        ("PREPARING", json!({})),
        ("READY", json!({})),
        ("COMPLETED", json!({})),
    ] {
        let mut body = extra;
        body["to"] = json!(to);
        let moved = stack
            .post(
                &format!("/v1/orders/{handed_over}/status"),
                &body,
                Some(&staff),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    }
    let turned_away = paid_through_toss(&stack, &customer, &store).await;
    let rejected = stack
        .post(
            &format!("/v1/orders/{turned_away}/status"),
            &json!({"to": "REJECTED", "reason": "TOO_BUSY"}),
            Some(&staff),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{:?}", rejected.body);
    paid_through_toss(&stack, &customer, &store).await;

    // The day as the API counts it, once the stream's reader has counted it: what the board must
    // show.
    let today = seoul_today();
    let daily = format!("/v1/stores/{store}/reports/daily?date={today}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let day = loop {
        let read = stack.get(&daily, Some(&owner)).await;
        assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
        if read.body["orders"] == 3 && read.body["refundCount"] == 1 {
            break read.body;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", read.body);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(day["grossSales"], 27_000, "{day}");
    assert_eq!(day["lostSales"]["total"], 9_000, "{day}");
    let by_hour: u64 = day["ordersByHour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(by_hour, 3, "{day}");

    let tomorrow = jiff::Timestamp::now()
        .in_tz("Asia/Seoul")
        .unwrap()
        .date()
        .tomorrow()
        .unwrap();
    let (closed_on, also_closed_on) = (
        tomorrow.to_string(),
        tomorrow.tomorrow().unwrap().to_string(),
    );
    let shots = root().join("docs/screens");
    std::fs::create_dir_all(&shots).unwrap();
    let (url, shots, day_json) = (
        stack.url("/app/"),
        shots.to_string_lossy().into_owned(),
        day.to_string(),
    );
    let mut board = Script::start(
        &web,
        "owner.mjs",
        &[
            ("BOARD_URL", &url),
            ("EMAIL", "owner-day@example.com"),
            ("STAFF_EMAIL", "helper-day@example.com"),
            ("STAFF_OWN_STORE", "옆집 분식"),
            ("COOK_NAME", "김민수"),
            ("HELPER_NAME", "이지은"),
            ("NEWCOMER_EMAIL", "newcomer-day@example.com"),
            ("CLOSED_ON", &closed_on),
            ("ALSO_CLOSED_ON", &also_closed_on),
            ("PASSWORD", PASSWORD),
            ("NEW_PASSWORD", NEW_PASSWORD),
            ("STORE_NAME", "김밥천국 종로점"),
            ("OTHER_NAME", "2호점"),
            ("COMPLETED", &handed_over),
            ("DAY", &day_json),
            ("SHOTS", &shots),
        ],
    );
    // The owner refunds 1,000 KRW of the order handed over, from the board's dialog.
    board.expect("REFUNDED").await;
    let refunds = stack.refunds(&handed_over).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    let at_toss: Vec<i64> = stack.toss_ledger().await["cancels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["orderId"] == handed_over.as_str())
        .map(|c| c["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(at_toss, [1_000]);
    // Orders switched off on the board, then no opening hours: a customer is refused each time.
    let refused = async |why: &str, words: &str| {
        let order = order_lattes(&stack, &customer, &store, 1).await;
        assert_eq!(
            (order.status, order.code()),
            (StatusCode::CONFLICT, "STORE_CLOSED"),
            "{:?}",
            order.body
        );
        assert_eq!(
            order.body["error"]["message"],
            format!("the store is not taking orders: {words}")
        );
        let read = stack.get(&format!("/v1/stores/{store}"), None).await;
        assert_eq!(read.body["status"]["reason"], why, "{:?}", read.body);
    };
    board.expect("CLOSED").await;
    refused("CLOSED_BY_STORE", "it has switched ordering off").await;
    board.tell("on").await;
    board.expect("NO_HOURS").await;
    refused("OUTSIDE_HOURS", "it has no opening hours set").await;
    board.tell("hours").await;
    // The cook, removed on the board, is refused the store's orders; the newcomer the owner invited
    // by address has the invitation, and is not staff until they accept it.
    board.expect("STAFF").await;
    let board_orders = format!("/v1/stores/{store}/orders?status=ACTIVE");
    let removed = stack.get(&board_orders, Some(&staff)).await;
    assert_eq!(removed.status, StatusCode::FORBIDDEN, "{:?}", removed.body);
    let invitations = stack.get("/v1/me/invitations", Some(&newcomer)).await;
    assert_eq!(
        invitations.body["invitations"][0]["storeId"],
        store.as_str(),
        "{:?}",
        invitations.body
    );
    let listed = stack
        .get(&format!("/v1/stores/{store}/staff"), Some(&owner))
        .await;
    assert_eq!(
        listed.body["invitations"][0]["userId"],
        newcomer_id.as_str()
    );
    assert_eq!(
        listed.body["staff"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        listed.body
    );
    assert_eq!(
        stack.get(&board_orders, Some(&newcomer)).await.status,
        StatusCode::FORBIDDEN
    );
    board.tell("staff").await;
    // Accepted on their own board: the newcomer is staff.
    board.expect("JOINED").await;
    assert_eq!(
        stack.get(&board_orders, Some(&newcomer)).await.status,
        StatusCode::OK
    );
    let listed = stack
        .get(&format!("/v1/stores/{store}/staff"), Some(&owner))
        .await;
    assert_eq!(listed.body["invitations"], json!([]), "{:?}", listed.body);
    assert_eq!(
        listed.body["staff"][1]["userId"],
        newcomer_id.as_str(),
        "{:?}",
        listed.body
    );
    board.tell("joined").await;
    // The menu as the owner left it on the board: each change made, nothing else of an item lost.
    board.expect("MENU").await;
    let menu = stack.menu_record(&store).await.menu;
    let item = |name: &str| {
        menu.items
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", menu.items))
    };
    let kimbap = item("원조김밥");
    assert_eq!(
        (kimbap.price, kimbap.description.as_str()),
        (4000, "참기름 듬뿍")
    );
    assert_eq!(kimbap.option_group_ids, ["size", "toppings"]);
    assert!(kimbap.available);
    let gone = item("Gone");
    assert_eq!((gone.price, gone.available), (1200, false), "{gone:?}");
    let yakgwa = item("약과");
    let desserts: Vec<&str> = menu
        .categories
        .iter()
        .filter(|c| c.id == yakgwa.category_id)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(desserts, ["디저트"]);
    assert_eq!((yakgwa.price, yakgwa.available), (2500, true));
    let names: Vec<&str> = menu.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Main", "디저트"], "the category deleted is gone");
    assert_eq!(menu.items.len(), 4, "{:?}", menu.items);
    board.tell("menu").await;
    // The store as the owner set it on the board; an order under the new minimum is refused.
    board.expect("DETAILS").await;
    let details = stack.get(&format!("/v1/stores/{store}"), None).await.body;
    assert_eq!(
        (&details["prepMinutes"], &details["minOrderAmount"]),
        (&json!(20), &json!(5000)),
        "{details}"
    );
    assert_eq!(
        details["exceptions"],
        json!([{"date": closed_on, "hours": []}])
    );
    let small = order_lattes(&stack, &customer, &store, 1).await;
    assert_eq!(
        (small.status.as_u16(), small.code()),
        (422, "BELOW_MINIMUM_AMOUNT"),
        "{:?}",
        small.body
    );
    board.tell("details").await;
    // The member of staff changed their password on the board: only the new one signs in, and the
    // session they began before (here) ended with the old one.
    board.expect("PASSWORD_CHANGED").await;
    let old = stack.login("helper-day@example.com", PASSWORD).await;
    assert_eq!(
        (old.status.as_u16(), old.code()),
        (401, "INVALID_CREDENTIALS")
    );
    let new = stack.login("helper-day@example.com", NEW_PASSWORD).await;
    assert_eq!(new.status, StatusCode::OK, "{:?}", new.body);
    let earlier = stack
        .post(
            "/v1/auth/refresh",
            &json!({"refreshToken": helper_refresh}),
            None,
        )
        .await;
    assert_eq!(
        (earlier.status.as_u16(), earlier.code()),
        (401, "SESSION_REVOKED")
    );
    board.expect("DONE").await;
    board.finish().await;
    // The day's figures moved by the refund, and by nothing else.
    let after = stack.get(&daily, Some(&owner)).await.body;
    assert_eq!(after["refunds"], day["refunds"].as_i64().unwrap() + 1_000);
    assert_eq!(after["orders"], 3);
    // Open again, every day around the clock, as the owner set it on the board.
    let store_now = stack.get(&format!("/v1/stores/{store}"), None).await.body;
    assert_eq!(store_now["status"]["open"], true, "{store_now}");
    assert_eq!(store_now["acceptingOrders"], true, "{store_now}");
    for day in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
        let spans = &store_now["weeklyHours"][day];
        assert_eq!(spans.as_array().map(Vec::len), Some(1), "{day}: {spans}");
        assert!(
            spans[0]["open"].as_str().unwrap().starts_with("00:00")
                && spans[0]["close"].as_str().unwrap().starts_with("00:00"),
            "{day}: {spans}"
        );
    }
}

/// `make deploy-web`'s upload, run against the local stack's copy of the template's WebAppBucket:
/// every file of the build under `app/` with its type, index.html and config.json never cached,
/// hashed assets for a year, config.json naming the WebSocket API; and the template's CloudFront
/// headers send the same Content-Security-Policy as the local runner.
#[tokio::test]
async fn the_web_app_deploys_as_cloudfront_serves_it() {
    let web = built_web();
    let stack = Stack::start();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.aws().await)
            .force_path_style(true)
            .build(),
    );
    let buckets = s3.list_buckets().send().await.unwrap();
    let bucket = buckets
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .find(|name| name.contains("webappbucket"))
        .expect("the template's WebAppBucket exists locally")
        .to_owned();
    let websocket = "wss://example.execute-api.ap-northeast-2.amazonaws.com/prod";
    let out = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("infra/web/deploy.py"))
        .args(["--bucket", &bucket, "--websocket", websocket])
        .args(["--endpoint", &stack.emulator])
        .arg("--dist")
        .arg(web.join("dist"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("the deploy script runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let object = async |key: &str| {
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
        let meta = (
            got.content_type().unwrap_or_default().to_owned(),
            got.cache_control().unwrap_or_default().to_owned(),
        );
        let body = got.body.collect().await.unwrap().into_bytes();
        (meta, body)
    };
    let ((kind, cache), index) = object("app/index.html").await;
    assert_eq!(
        (kind.as_str(), cache.as_str()),
        ("text/html; charset=utf-8", "no-cache")
    );
    assert_eq!(
        index,
        std::fs::read(web.join("dist/index.html")).unwrap(),
        "the build's own index.html"
    );
    let ((kind, cache), config) = object("app/config.json").await;
    assert_eq!(
        (kind.as_str(), cache.as_str()),
        ("application/json", "no-cache")
    );
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config, json!({"api": "", "websocket": websocket}));
    for entry in std::fs::read_dir(web.join("dist/assets")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let ((kind, cache), _) = object(&format!("app/assets/{name}")).await;
        assert_eq!(cache, "public, max-age=31536000, immutable", "{name}");
        let expected = if name.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else if name.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            &kind
        };
        assert_eq!(kind, expected, "{name}");
    }

    // One policy, two places: the template's (for CloudFront) and the local runner's.
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let deployed = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("ContentSecurityPolicy: !Sub "))
        .expect("the template sets a Content-Security-Policy")
        .trim_matches('"')
        .replace(
            "wss://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}",
            &stack.ws,
        );
    let local = stack
        .http()
        .get(stack.url("/app/"))
        .send()
        .await
        .unwrap()
        .headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let directives = |policy: &str| {
        let mut all: Vec<String> = policy.split(';').map(|d| d.trim().to_owned()).collect();
        all.sort();
        all
    };
    assert_eq!(directives(&deployed), directives(&local));
}
