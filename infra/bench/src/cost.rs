//! The cost meter's reading (`--cost`): one order's whole life, then a batch of orders at once,
//! played against the local stack with the runner's meter on (infra/runner/src/meter.rs), priced at
//! AWS's list prices — and the total per million orders, next to the target.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::{Setup, Stack};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The store's board's name for itself.
pub(crate) const BOARD: &str = "bench-board";

/// The pause between one life's steps: longer than the recorder's batching window (a second,
/// template.yaml), so that a quiet store's events travel alone, as they do when a customer reads
/// the menu before ordering and an order cooks for minutes between its moves. Played back to back,
/// a life's events would share one of the recorder's batches and the meter bill too little.
const STEP: Duration = Duration::from_millis(1_500);

/// What a million orders may cost (issue #18); the stretch is $15.
pub const TARGET_PER_MILLION: f64 = 20.0;

/// Prices (us-east-1, on demand), per unit.
struct Prices;
impl Prices {
    const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    const LAMBDA_GB_SECOND_ARM: f64 = 0.000_013_333_4;
    const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    const WRITE_UNIT: f64 = 0.625 / 1e6;
    const READ_UNIT: f64 = 0.125 / 1e6;
    const KMS_ASYMMETRIC: f64 = 0.15 / 1e4;
    const KMS_SYMMETRIC: f64 = 0.03 / 1e4;
    const SQS_REQUEST: f64 = 0.40 / 1e6;
    const WEBSOCKET_MESSAGE: f64 = 1.00 / 1e6;
    const WEBSOCKET_MINUTE: f64 = 0.25 / 1e6;
    const S3_WRITE: f64 = 0.005 / 1e3;
    const S3_READ: f64 = 0.0004 / 1e3;
    /// CloudWatch Logs' standard class: $0.50 per GB ingested, here per KB (the infrequent-access
    /// class, at half, extracts no EMF metrics).
    const LOG_KB: f64 = 0.50 / 1e6;
    const XRAY_TRACE: f64 = 5.00 / 1e6;
    /// DynamoDB Standard's storage: $0.25 per GB-month, here per KB-month.
    const STORAGE_KB_MONTH: f64 = 0.25 / (1024.0 * 1024.0);
    /// The Standard-IA table class: storage at $0.10 per GB-month, every request 25 % dearer.
    const IA_STORAGE_KB_MONTH: f64 = 0.10 / (1024.0 * 1024.0);
    const IA_REQUESTS: f64 = 1.25;
}

/// DynamoDB's prices for the reading's table: (write unit, read unit, storage KB-month), by the
/// class the template gives it (the reading carries it: `tableClasses`).
fn dynamodb_prices(reading: &Value) -> (f64, f64, f64) {
    let infrequent = reading["tableClasses"]
        .as_object()
        .is_some_and(|c| !c.is_empty() && c.values().all(|v| v == "STANDARD_INFREQUENT_ACCESS"));
    if infrequent {
        (
            Prices::WRITE_UNIT * Prices::IA_REQUESTS,
            Prices::READ_UNIT * Prices::IA_REQUESTS,
            Prices::IA_STORAGE_KB_MONTH,
        )
    } else {
        (
            Prices::WRITE_UNIT,
            Prices::READ_UNIT,
            Prices::STORAGE_KB_MONTH,
        )
    }
}

/// How long an item with no TTL is priced at rest: an order, its payment and the store's day
/// counters are kept as long as the store is; five years is the audit trail's span (the law's,
/// for records of orders and payments), and a figure to read against, not a promise.
const KEPT_MONTHS: f64 = 60.0;
/// An average month, in seconds.
const MONTH_SECONDS: f64 = 2_629_746.0;

impl Stack {
    pub(crate) async fn meter(&self, on: bool) {
        let _ = self
            .http
            .post(format!("{}/__local/meter", self.local))
            .json(&json!({"on": on}))
            .send()
            .await;
    }

    pub(crate) async fn meter_reading(&self) -> Value {
        self.http
            .get(format!("{}/__local/meter", self.local))
            .send()
            .await
            .expect("the runner's meter")
            .json()
            .await
            .expect("a reading")
    }

    /// One order's life, as a customer lives it: back in the app (their session's refresh
    /// token renewed), the menu, the order, the payment; the store accepts, prepares, readies and
    /// completes it on its board, which names itself on its moves as the web board does (so they
    /// are not pushed back to it). The store's board listens (opened for the day), and so does the
    /// customer's phone, opened for the order: returned, to be closed once the order's pushes have
    /// arrived, with the customer's next refresh token.
    async fn one_life(
        &self,
        setup: &Setup,
        owner: &str,
        refresh_token: &str,
    ) -> (Option<Socket>, String) {
        use reqwest::Method;
        // The customer's session lasts 30 days and an access token 15 minutes: a customer who
        // signed in before renews it (what a sign-in would add instead: `entries`). The store's
        // owner signed in for the day.
        let renewed = self.refreshed(refresh_token).await;
        let customer = renewed["accessToken"].as_str().unwrap_or_default();
        let next = renewed["refreshToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let phone = self.socket(customer, None).await;
        tokio::time::sleep(STEP).await;
        self.call(
            Method::GET,
            &format!("/v1/stores/{}/menu", setup.quiet_store),
            None,
            None,
            None,
        )
        .await;
        tokio::time::sleep(STEP).await;
        let (_, order) = self
            .call(
                Method::POST,
                "/v1/orders",
                Some(customer),
                Some(json!({"storeId": setup.quiet_store, "items": [{"itemId": "latte", "quantity": 1}],
                    "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678"})),
                Some(&uuid::Uuid::new_v4().to_string()),
            )
            .await;
        let order = order["orderId"].as_str().unwrap_or_default().to_owned();
        tokio::time::sleep(STEP).await;
        self.call(
            Method::POST,
            "/v1/payments/confirm",
            Some(customer),
            Some(json!({"orderId": order, "paymentKey": format!("tpk_{order}"), "amount": 4500})),
            None,
        )
        .await;
        for body in [
            json!({"to": "ACCEPTED", "etaMinutes": 10, "device": BOARD}),
            json!({"to": "PREPARING", "device": BOARD}),
            json!({"to": "READY", "device": BOARD}),
            json!({"to": "COMPLETED", "device": BOARD}),
        ] {
            tokio::time::sleep(STEP).await;
            self.call(
                Method::POST,
                &format!("/v1/orders/{order}/status"),
                Some(owner),
                Some(body),
                None,
            )
            .await;
        }
        (phone, next)
    }

    /// Has the Toss stand-in send a payment's webhook a second after its confirm, not at once: by
    /// then our confirm has recorded the payment, and the webhook's "done" of it costs one read
    /// (`payments::webhooks`). Sent at once, it races the confirm; when it wins, it counts against
    /// the order's webhook budget, asks Toss and settles: a write unit and three read units more
    /// (docs/COST.md). Without this, which one the meter read depended on the build's speed.
    async fn webhooks_after_confirms(&self) {
        let Some(toss) = &self.toss else {
            return;
        };
        let told = self
            .http
            .post(format!("{toss}/__control"))
            .json(&json!({"webhookDelayMs": 1000}))
            .send()
            .await
            .is_ok_and(|reply| reply.status().is_success());
        assert!(
            told,
            "the Toss stand-in at {toss} did not take its webhook delay"
        );
    }

    pub(crate) async fn socket(&self, token: &str, store: Option<&str>) -> Option<Socket> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let ws = self.local.replacen("http://", "ws://", 1);
        let url = match store {
            Some(store) => format!("{ws}/?storeId={store}&device={BOARD}"),
            None => format!("{ws}/"),
        };
        let mut request = url.into_client_request().ok()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().ok()?);
        tokio_tungstenite::connect_async(request)
            .await
            .ok()
            .map(|(s, _)| s)
    }

    /// Plays `orders` lives (at once when more than one) with the meter on; the reading, per order.
    async fn metered(&self, setup: &Setup, orders: usize) -> Value {
        let owner = self.login("bench-owner@example.com").await;
        let board = self.socket(&owner, Some(&setup.quiet_store)).await;
        // Each customer signed in on an earlier day: their session's refresh token. Their last
        // order was more than two hours ago, so its socket's member is gone with its TTL (free):
        // customers of their own for each reading, and for the warm-up. One who ordered within
        // the hour has their first push find the old socket gone and delete its member (a write
        // unit and a read more: docs/COST.md).
        let mut customers = Vec::new();
        for i in 0..orders * 2 {
            let email = format!("bench-cost-{orders}-{i}@example.com");
            let (_, signed_in) = self.signed_up(&email, "CUSTOMER").await;
            customers.push(crate::text_field(&signed_in, "refreshToken"));
        }
        // Warm, with as many lives at once as the reading plays: every function has the instances
        // the reading will use, each with its keys and clients (the steady state, where KMS is
        // asked once per data key, which seals for five minutes, and a burst meets instances that
        // served the last one), then the sign-ups' and sockets' events drain.
        let warm = customers.split_off(orders);
        let phones = self.lives(setup, &owner, &warm).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(phones);
        tokio::time::sleep(Duration::from_secs(8)).await;
        self.meter(true).await;
        let phones = self.lives(setup, &owner, &customers).await;
        // The events' consumers and pushes finish; the phones close (nothing answers `$disconnect`:
        // a phone's member goes with its TTL, or when the customer's next push finds it gone). The
        // board stays open: it serves the store's whole day.
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(phones);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let reading = self.meter_reading().await;
        self.meter(false).await;
        drop(board);
        reading
    }

    /// One life for each customer, all at once: their phones, to be closed when the pushes are in.
    async fn lives(&self, setup: &Setup, owner: &str, customers: &[String]) -> Vec<Option<Socket>> {
        futures::stream::iter(customers)
            .map(|token| async move { self.one_life(setup, owner, token).await.0 })
            .buffer_unordered(customers.len().max(1))
            .collect()
            .await
    }

    /// The answer to a refresh of `refresh_token`: the next access and refresh tokens.
    async fn refreshed(&self, refresh_token: &str) -> Value {
        let (_, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/auth/refresh",
                None,
                Some(json!({"refreshToken": refresh_token})),
                None,
            )
            .await;
        body
    }

    /// A customer's two ways in, each metered alone with its events recorded: a sign-in (the
    /// first order of a 30-day session, or a customer who signed out) and the refresh an order's
    /// life begins with instead.
    async fn entries(&self) -> (Value, Value) {
        let email = "bench-cost-entry@example.com";
        self.signed_up(email, "CUSTOMER").await;
        // Warm: the sign-in's and the refresh's instances hold their keys.
        let warm = self.signed_in(email).await;
        self.refreshed(&crate::text_field(&warm, "refreshToken"))
            .await;
        tokio::time::sleep(STEP * 2).await;
        self.meter(true).await;
        let signed_in = self.signed_in(email).await;
        tokio::time::sleep(STEP * 2).await;
        let sign_in = self.meter_reading().await;
        self.meter(false).await;
        self.meter(true).await;
        self.refreshed(&crate::text_field(&signed_in, "refreshToken"))
            .await;
        tokio::time::sleep(STEP * 2).await;
        let refresh = self.meter_reading().await;
        self.meter(false).await;
        (sign_in, refresh)
    }

    /// The meter's reading of one order's life and of a batch, priced.
    pub async fn cost(&self, setup: &Setup, batch: usize) -> Value {
        self.webhooks_after_confirms().await;
        let one = self.metered(setup, 1).await;
        let many = self.metered(setup, batch).await;
        let (sign_in, refresh) = self.entries().await;
        let one_priced = price(&one, 1);
        let many_priced = price(&many, batch);
        let (sign_in_priced, refresh_priced) = (price(&sign_in, 1), price(&refresh, 1));
        print_priced("one order's life", &one_priced, true);
        print_priced(
            &format!("{batch} orders at once, per order"),
            &many_priced,
            true,
        );
        print_priced("a sign-in, alone", &sign_in_priced, false);
        print_priced("a refresh, alone", &refresh_priced, false);
        let signing_in = total(&sign_in_priced) - total(&refresh_priced);
        println!(
            "\na customer who signs in for the order instead of renewing their session: \
             ${signing_in:+.2} per million orders"
        );
        println!("\nDynamoDB units by item kind, one order's life:");
        println!(
            "{:<24} {:>6} {:>8} {:>8} {:>10}",
            "kind", "items", "WCU", "of GSI", "RCU"
        );
        for (kind, units) in one["dynamodbByKind"].as_object().into_iter().flatten() {
            println!(
                "{kind:<24} {:>6} {:>8.1} {:>8.1} {:>10.1}",
                units["items"],
                units["writeUnits"].as_f64().unwrap_or(0.0),
                units["indexWriteUnits"].as_f64().unwrap_or(0.0),
                units["readUnits"].as_f64().unwrap_or(0.0)
            );
        }
        println!("\nAt rest after one order's life, by item kind (DynamoDB's storage bill):");
        println!(
            "{:<24} {:>6} {:>8} {:>8} {:>7} {:>10}",
            "kind", "items", "bytes", "of GSI", "months", "KB-months"
        );
        for kind in at_rest(&one) {
            println!(
                "{:<24} {:>6} {:>8} {:>8} {:>7.1} {:>10.1}",
                kind.kind, kind.items, kind.bytes, kind.index_bytes, kind.months, kind.kb_months
            );
        }
        println!("\nLog bytes by function, one order's life (ours, then Lambda's own lines):");
        for (function, logs) in one["logs"].as_object().into_iter().flatten() {
            println!(
                "{function:<36} {:>5} lines {:>8} bytes {:>8} bytes",
                logs["lines"], logs["bytes"], logs["platformBytes"]
            );
        }
        let capacity = capacity(&one);
        let mut markdown = markdown(&one, &one_priced, batch, &many_priced, &capacity);
        markdown.push_str(&entries_markdown(&[
            ("a sign-in", &sign_in_priced),
            ("a refresh", &refresh_priced),
        ]));
        let _ = std::fs::write("target/bench/cost.md", markdown);
        println!("\nthe tables, in markdown: target/bench/cost.md");
        json!({"capacity": capacity, "one": {"reading": one, "priced": one_priced},
            "batch": {"orders": batch, "reading": many, "priced": many_priced},
            "entries": {"signIn": {"reading": sign_in, "priced": sign_in_priced},
                "refresh": {"reading": refresh, "priced": refresh_priced},
                "signingInPerMillion": signing_in},
            "targetPerMillion": TARGET_PER_MILLION})
    }
}

/// The orders per second the capacity model is drawn for (the seed's target).
pub const ORDERS_PER_SECOND: f64 = 10_000.0;
/// What one partition key sustains (DynamoDB's per-partition limits).
const PARTITION_WCU: f64 = 1_000.0;
const PARTITION_RCU: f64 = 3_000.0;
/// Audit months, pending orders, open payments and pending refunds are spread over shards.
const SHARDS: [(&str, u32); 4] = [
    ("AUDIT#<month>#<n>", shared::audit::MONTH_SHARDS),
    ("PENDING", shared::orders::PENDING_SHARDS),
    ("PAYOPEN", shared::payments::OPEN_SHARDS),
    ("REFUNDPENDING", shared::payments::refunds::PENDING_SHARDS),
];

/// What a partition key is shared by, from its shape (ids replaced by placeholders).
fn pattern(key: &str) -> (String, &'static str) {
    let parts: Vec<&str> = key.split('#').collect();
    let is_month = |p: &str| p.len() == 7 && p.as_bytes().get(4) == Some(&b'-');
    let is_day = |p: &str| p.len() == 10 && p.as_bytes().get(4) == Some(&b'-');
    let is_shard = |p: &str| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit());
    let shape: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            // Generated ids (uuids, hashes, blind indexes, connection ids): long, and not a word.
            let id = part.len() >= 12 && part.chars().any(|c| c.is_ascii_digit());
            match () {
                _ if i == 0 => (*part).to_owned(),
                _ if is_month(part) => "<month>".to_owned(),
                _ if is_day(part) => "<day>".to_owned(),
                _ if is_shard(part) => "<n>".to_owned(),
                _ if id => "<id>".to_owned(),
                _ => (*part).to_owned(),
            }
        })
        .collect();
    let labelled = |label: &str| parts.iter().skip(1).any(|p| *p == label) || parts[0] == label;
    let scope = if parts.len() == 1 {
        "everyone"
    } else if labelled("STORE") || parts[0] == "REPORT" {
        "one store"
    } else if labelled("CUSTOMER") || labelled("USER") {
        "one customer"
    } else if parts.iter().skip(1).any(|p| is_shard(p)) {
        "a shard"
    } else if parts.iter().skip(1).any(|p| is_month(p)) {
        "everyone"
    } else {
        "one order"
    };
    (shape.join("#"), scope)
}

/// The capacity model: at [`ORDERS_PER_SECOND`], the units per second on the hottest partition key
/// of every kind, against DynamoDB's per-partition limits; and the busiest single store's ceiling.
fn capacity(reading: &Value) -> Value {
    let mut rows: BTreeMap<(String, String, &'static str), (f64, f64)> = BTreeMap::new();
    for (field, read) in [
        ("writeUnitsByPartition", false),
        ("readUnitsByPartition", true),
    ] {
        for (place_key, units) in reading[field].as_object().into_iter().flatten() {
            let (place, key) = place_key.split_once('|').unwrap_or((place_key, ""));
            let (shape, scope) = pattern(key);
            let row = rows.entry((place.to_owned(), shape, scope)).or_default();
            let units = units.as_f64().unwrap_or(0.0);
            if read {
                row.1 += units;
            } else {
                row.0 += units;
            }
        }
    }
    println!(
        "\nCapacity at {ORDERS_PER_SECOND} orders/s: the hottest key of each kind (limits: {PARTITION_WCU} WCU/s, {PARTITION_RCU} RCU/s per key)"
    );
    println!(
        "{:<22} {:<34} {:<13} {:>8} {:>8} {:>11} {:>11} {:>9}",
        "table/index", "key", "shared by", "WCU/ord", "RCU/ord", "WCU/s", "RCU/s", "headroom"
    );
    let mut out = Vec::new();
    let mut store_ceiling = f64::INFINITY;
    for ((place, shape, scope), (wcu, rcu)) in &rows {
        let sharing = match *scope {
            "everyone" => ORDERS_PER_SECOND,
            "a shard" => {
                let shards = SHARDS
                    .iter()
                    .find(|(prefix, _)| shape.starts_with(prefix))
                    .map_or(1.0, |(_, n)| f64::from(*n));
                ORDERS_PER_SECOND / shards
            }
            // A store's, a customer's or an order's own keys: as busy as that one is; the store's
            // ceiling is reported below.
            _ => 1.0,
        };
        let (wcu_s, rcu_s) = (wcu * sharing, rcu * sharing);
        let headroom = (PARTITION_WCU / wcu_s.max(1e-9)).min(PARTITION_RCU / rcu_s.max(1e-9));
        if *scope == "one store" {
            store_ceiling = store_ceiling
                .min(PARTITION_WCU / wcu.max(1e-9))
                .min(PARTITION_RCU / rcu.max(1e-9));
        }
        println!(
            "{place:<22} {shape:<34} {scope:<13} {wcu:>8.1} {rcu:>8.1} {wcu_s:>11.0} {rcu_s:>11.0} {:>8.1}×{}",
            headroom,
            if headroom < 1.0 { "  OVER" } else { "" }
        );
        out.push(json!({"place": place, "key": shape, "sharedBy": scope, "wcuPerOrder": wcu,
            "rcuPerOrder": rcu, "wcuPerSecond": wcu_s, "rcuPerSecond": rcu_s, "headroom": headroom}));
    }
    println!("the busiest single store: at most {store_ceiling:.0} orders/s (its hottest key)");
    json!({"ordersPerSecond": ORDERS_PER_SECOND, "keys": out, "storeCeilingOrdersPerSecond": store_ceiling})
}

/// Each line of the bill per order: (what, quantity per order, unit price, USD per million orders).
fn price(reading: &Value, orders: usize) -> Vec<(String, f64, f64, f64)> {
    // (`+ 0.0`: a count of nothing divided is -0 when it was negative zero, and prints so.)
    let per = |x: f64| x / orders.max(1) as f64 + 0.0;
    let sum = |v: &Value, field: &str| -> f64 {
        v.as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|e| e[field].as_f64())
            .sum()
    };
    let counts = |v: &Value| -> BTreeMap<String, f64> {
        v.as_object()
            .into_iter()
            .flatten()
            .map(|(k, n)| (k.clone(), n.as_f64().unwrap_or(0.0)))
            .collect()
    };
    let kms = counts(&reading["kmsRequests"]);
    let asymmetric: f64 = ["Sign", "GetPublicKey"]
        .iter()
        .filter_map(|k| kms.get(*k))
        .sum();
    let symmetric: f64 = kms.values().sum::<f64>() - asymmetric;
    let s3 = counts(&reading["s3Requests"]);
    let s3_writes: f64 = s3
        .iter()
        .filter(|(k, _)| k.starts_with("Put") || k.starts_with("Delete") || k.starts_with("List"))
        .map(|(_, n)| n)
        .sum();
    // (`+ 0.0`: an empty sum of floats is -0.0.)
    let s3_writes = s3_writes + 0.0;
    let s3_reads: f64 = s3.values().sum::<f64>() - s3_writes + 0.0;
    let (write_unit, read_unit, storage_kb_month) = dynamodb_prices(reading);
    let lines = [
        (
            "Lambda requests",
            per(sum(&reading["lambda"], "invocations")),
            Prices::LAMBDA_REQUEST,
        ),
        (
            "Lambda GB-seconds (arm64)",
            per(sum(&reading["lambda"], "gbSeconds")),
            Prices::LAMBDA_GB_SECOND_ARM,
        ),
        (
            "HTTP API requests",
            per(reading["apiRequests"].as_f64().unwrap_or(0.0)),
            Prices::HTTP_API_REQUEST,
        ),
        (
            "DynamoDB write units",
            per(sum(&reading["dynamodbByOperation"], "writeUnits")),
            write_unit,
        ),
        (
            "DynamoDB read units",
            per(sum(&reading["dynamodbByOperation"], "readUnits")),
            read_unit,
        ),
        (
            "KMS asymmetric requests",
            per(asymmetric),
            Prices::KMS_ASYMMETRIC,
        ),
        (
            "KMS symmetric requests",
            per(symmetric),
            Prices::KMS_SYMMETRIC,
        ),
        (
            "SQS requests",
            per(counts(&reading["sqsRequests"]).values().sum()),
            Prices::SQS_REQUEST,
        ),
        (
            "WebSocket messages",
            per(reading["websocketMessages"].as_f64().unwrap_or(0.0)),
            Prices::WEBSOCKET_MESSAGE,
        ),
        (
            "WebSocket connection-minutes",
            per(reading["websocketConnectionMinutes"]
                .as_f64()
                .unwrap_or(0.0)),
            Prices::WEBSOCKET_MINUTE,
        ),
        ("S3 writes", per(s3_writes), Prices::S3_WRITE),
        ("S3 reads", per(s3_reads), Prices::S3_READ),
        (
            "CloudWatch Logs ingested (KB)",
            per(sum(&reading["logs"], "bytes") + sum(&reading["logs"], "platformBytes")) / 1e3,
            Prices::LOG_KB,
        ),
        (
            "X-Ray traces recorded",
            per(reading["xrayTraces"].as_f64().unwrap_or(0.0)),
            Prices::XRAY_TRACE,
        ),
        (
            "DynamoDB storage (KB-months)",
            per(at_rest(reading).iter().map(|kind| kind.kb_months).sum()),
            storage_kb_month,
        ),
    ];
    lines
        .into_iter()
        .map(|(what, quantity, price)| (what.to_owned(), quantity, price, quantity * price * 1e6))
        .collect()
}

/// What the metered calls left in the table, by item kind: how many items, their bytes and their
/// index entries' as DynamoDB bills storage, the months each stays (TTL, or [`KEPT_MONTHS`]) and
/// the KB-months that makes.
struct AtRestKind {
    kind: String,
    items: u64,
    bytes: u64,
    index_bytes: u64,
    months: f64,
    kb_months: f64,
}

fn at_rest(reading: &Value) -> Vec<AtRestKind> {
    let now = jiff::Timestamp::now().as_second() as f64;
    let mut kinds: BTreeMap<String, AtRestKind> = BTreeMap::new();
    for item in reading["atRest"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        let kind = item["kind"].as_str().unwrap_or_default().to_owned();
        let bytes = item["bytes"].as_u64().unwrap_or(0);
        let index_bytes = item["indexBytes"].as_u64().unwrap_or(0);
        let months = match item["expiresAt"].as_f64() {
            Some(at) => ((at - now) / MONTH_SECONDS).max(0.0),
            None => KEPT_MONTHS,
        };
        let entry = kinds.entry(kind.clone()).or_insert(AtRestKind {
            kind,
            items: 0,
            bytes: 0,
            index_bytes: 0,
            months: 0.0,
            kb_months: 0.0,
        });
        entry.items += 1;
        entry.bytes += bytes;
        entry.index_bytes += index_bytes;
        // The kind's months: the longest any of its items stays.
        entry.months = entry.months.max(months);
        entry.kb_months += (bytes + index_bytes) as f64 / 1024.0 * months;
    }
    kinds.into_values().collect()
}

/// The meter's tables for docs/COST.md.
fn markdown(
    one: &Value,
    one_priced: &[(String, f64, f64, f64)],
    batch: usize,
    many_priced: &[(String, f64, f64, f64)],
    capacity: &Value,
) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| item | per order (one life) | per order ({batch} at once) | unit price | per million orders (one life) | ({batch} at once) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let (mut total_one, mut total_many) = (0.0, 0.0);
    for (a, b) in one_priced.iter().zip(many_priced) {
        total_one += a.3;
        total_many += b.3;
        let _ = writeln!(
            md,
            "| {} | {:.3} | {:.3} | ${:.3e} | ${:.2} | ${:.2} |",
            a.0, a.1, b.1, a.2, a.3, b.3
        );
    }
    let _ = writeln!(
        md,
        "| **total** | | | | **${total_one:.2}** | **${total_many:.2}** |\n"
    );
    let _ = writeln!(
        md,
        "| item kind | items written | write units | of which indexes | read units |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for (kind, u) in one["dynamodbByKind"].as_object().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| `{kind}` | {} | {:.1} | {:.1} | {:.1} |",
            u["items"],
            u["writeUnits"].as_f64().unwrap_or(0.0),
            u["indexWriteUnits"].as_f64().unwrap_or(0.0),
            u["readUnits"].as_f64().unwrap_or(0.0)
        );
    }
    let _ = writeln!(
        md,
        "\n| at rest, one life | items | bytes (with 100 each) | index entries' bytes | months kept | KB-months | per million orders |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let (_, _, storage_kb_month) = dynamodb_prices(one);
    for kind in at_rest(one) {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {:.1} | {:.1} | ${:.2} |",
            kind.kind,
            kind.items,
            kind.bytes,
            kind.index_bytes,
            kind.months,
            kind.kb_months,
            kind.kb_months * storage_kb_month * 1e6
        );
    }
    let _ = writeln!(
        md,
        "\n| function | log lines | their bytes | Lambda's own lines' bytes |"
    );
    let _ = writeln!(md, "|---|---|---|---|");
    for (function, logs) in one["logs"].as_object().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| {function} | {} | {} | {} |",
            logs["lines"], logs["bytes"], logs["platformBytes"]
        );
    }
    let _ = writeln!(
        md,
        "\n| table/index | key | shared by | WCU per order | RCU per order | WCU/s at {ORDERS_PER_SECOND} orders/s | RCU/s | headroom |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for key in capacity["keys"].as_array().into_iter().flatten() {
        let headroom = key["headroom"].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {:.1} | {:.1} | {:.0} | {:.0} | {}{:.1}× |",
            key["place"].as_str().unwrap_or_default(),
            key["key"].as_str().unwrap_or_default(),
            key["sharedBy"].as_str().unwrap_or_default(),
            key["wcuPerOrder"].as_f64().unwrap_or(0.0),
            key["rcuPerOrder"].as_f64().unwrap_or(0.0),
            key["wcuPerSecond"].as_f64().unwrap_or(0.0),
            key["rcuPerSecond"].as_f64().unwrap_or(0.0),
            if headroom < 1.0 { "**over** " } else { "" },
            headroom
        );
    }
    let _ = writeln!(
        md,
        "\nThe busiest single store: at most {:.0} orders/s (its hottest key).",
        capacity["storeCeilingOrdersPerSecond"]
            .as_f64()
            .unwrap_or(0.0)
    );
    md
}

/// A priced reading's total, per million.
fn total(lines: &Priced) -> f64 {
    lines.iter().map(|line| line.3).sum()
}

/// A reading priced: (item, per order, unit price, per million orders), as `price` makes them.
type Priced = [(String, f64, f64, f64)];

/// The ways in, side by side, for docs/COST.md.
fn entries_markdown(entries: &[(&str, &Priced)]) -> String {
    use std::fmt::Write;
    let mut md = String::from(
        "\n| way in, alone | write units | read units | Lambda requests | GB-seconds | log KB | per million |\n|---|---|---|---|---|---|---|\n",
    );
    for (name, priced) in entries {
        let quantity = |item: &str| {
            priced
                .iter()
                .find(|line| line.0.starts_with(item))
                .map_or(0.0, |line| line.1)
        };
        let _ = writeln!(
            md,
            "| {name} | {:.1} | {:.1} | {:.0} | {:.3} | {:.2} | ${:.2} |",
            quantity("DynamoDB write"),
            quantity("DynamoDB read"),
            quantity("Lambda requests"),
            quantity("Lambda GB"),
            quantity("CloudWatch"),
            total(priced)
        );
    }
    md
}

/// Prints a priced reading; `whole` when it is an order's whole life, to be held to the target.
fn print_priced(title: &str, lines: &Priced, whole: bool) {
    println!("\n{title}:");
    println!(
        "{:<30} {:>12} {:>14} {:>14}",
        "item", "per order", "unit price", "$ per million"
    );
    for (what, quantity, price, per_million) in lines {
        println!("{what:<30} {quantity:>12.3} {price:>14.3e} {per_million:>14.2}");
    }
    let total = total(lines);
    let target = match (whole, total <= TARGET_PER_MILLION) {
        (false, _) => String::new(),
        (true, met) => format!(
            "   (target ≤ {TARGET_PER_MILLION:.2}: {})",
            if met { "met" } else { "not met" }
        ),
    };
    println!(
        "{:<30} {:>12} {:>14} {total:>14.2}{target}",
        "total", "", ""
    );
}

#[cfg(test)]
mod tests {
    use super::pattern;

    #[test]
    fn items_at_rest_are_priced_for_as_long_as_they_stay() {
        let in_a_year = jiff::Timestamp::now().as_second() + 31_556_952;
        let reading = serde_json::json!({"atRest": {
            "t|order": {"kind": "ORDER/ORDER", "bytes": 1024, "indexBytes": 1024, "expiresAt": null},
            "t|audit1": {"kind": "AUDIT/*", "bytes": 512, "indexBytes": 0, "expiresAt": in_a_year},
            "t|audit2": {"kind": "AUDIT/*", "bytes": 512, "indexBytes": 0, "expiresAt": 1},
        }});
        let kinds = super::at_rest(&reading);
        let audit = &kinds[0];
        assert_eq!(
            (audit.kind.as_str(), audit.items, audit.bytes),
            ("AUDIT/*", 2, 1024)
        );
        // Half a KB for a year; the other already past its TTL: nothing.
        assert!((audit.kb_months - 6.0).abs() < 0.01, "{}", audit.kb_months);
        let order = &kinds[1];
        // Two KB (the item and its index entry), kept: five years.
        assert_eq!(order.kb_months, 2.0 * super::KEPT_MONTHS);
        let priced = super::price(&reading, 1);
        let storage = priced
            .iter()
            .find(|l| l.0.starts_with("DynamoDB storage"))
            .unwrap();
        assert!((storage.1 - (120.0 + 6.0)).abs() < 0.01, "{storage:?}");

        // On the Standard-IA class: the same KB-months at $0.10 a GB-month, requests 25 % dearer.
        let mut infrequent = reading.clone();
        infrequent["tableClasses"] = serde_json::json!({"t": "STANDARD_INFREQUENT_ACCESS"});
        infrequent["dynamodbByOperation"] = serde_json::json!({"PutItem": {"writeUnits": 4.0}});
        let priced = super::price(&infrequent, 1);
        let line = |name: &str| {
            priced
                .iter()
                .find(|l| l.0.starts_with(name))
                .unwrap()
                .clone()
        };
        assert!((line("DynamoDB storage").2 * 1024.0 * 1024.0 - 0.10).abs() < 1e-12);
        assert!((line("DynamoDB write units").3 - 4.0 * 0.625 * 1.25).abs() < 1e-9);
        assert_eq!(line("DynamoDB storage").1, storage.1);
    }

    #[test]
    fn keys_are_classed_by_who_shares_them() {
        let class = |key: &str| {
            let (shape, scope) = pattern(key);
            (shape, scope.to_owned())
        };
        let expect = |shape: &str, scope: &str| (shape.to_owned(), scope.to_owned());
        assert_eq!(
            class("AUDIT#2026-11#127"),
            expect("AUDIT#<month>#<n>", "a shard")
        );
        assert_eq!(class("AUDIT#2026-11"), expect("AUDIT#<month>", "everyone"));
        assert_eq!(class("PAYOPEN#7"), expect("PAYOPEN#<n>", "a shard"));
        assert_eq!(
            class("STORE#0b5e2d4f-7a11-4c1e-9d1f-2f6d3c8b9a10#ACTIVE"),
            expect("STORE#<id>#ACTIVE", "one store")
        );
        assert_eq!(
            class("REPORT#0b5e2d4f-7a11-4c1e-9d1f-2f6d3c8b9a10#2026-11-29"),
            expect("REPORT#<id>#<day>", "one store")
        );
        assert_eq!(
            class("ORDER#ord_01jxyz2345abcdef"),
            expect("ORDER#<id>", "one order")
        );
    }
}
