//! `--load CUSTOMERSxORDERS` (`make load`): many customers ordering at once from one store, through
//! the local stack with every consumer running, as the store's board and each customer's phone
//! listen on the WebSocket API. Then every order is checked as its customer, its store, Toss and
//! the day's report see it, and the run prints how long each route answered and how far behind
//! the answers the pushes and the report came.
//!
//! Each customer plays their orders one after another; the customers play at once. An order's
//! fate is drawn from `--seed` (printed): most are accepted, prepared, readied and completed on the
//! board; some are rejected (refunded in full), cancelled by the customer once paid (refunded in
//! full) or never paid. Some creates are sent twice with their `Idempotency-Key` (a retry, which
//! must name the same order) and some confirms twice at once (a double tap: one payment at Toss).
//!
//! What must hold, each a problem printed (and the exit status 1) when it does not:
//! - no answer is a 5xx or one its request does not allow;
//! - every order ends in its fate's status, as the API reads it;
//! - Toss holds exactly one executed payment for each paid order and none for an unpaid one, and
//!   refunded exactly a rejected or cancelled order's amount, nothing of a completed one's;
//! - the day's report counts every paid order, its sales and its refunds;
//! - the board hears every paid order (and every customer's cancel), and each phone what its
//!   customer needs of their orders (docs/ARCHITECTURE.md#events-and-pushes), and no phone hears of
//!   another customer's order.
//!
//! Timings are this machine's, against the emulator: for comparing runs, not AWS.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Stack;
use crate::cost::BOARD;

/// How long the consumers may take, after the last answer, to catch up before what they lack is a
/// problem.
const CATCH_UP: Duration = Duration::from_secs(180);

/// A run's shape: `CUSTOMERSxORDERS`.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub customers: usize,
    pub orders_each: usize,
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (customers, each) = text.split_once('x').unwrap_or((text, "5"));
        let number = |n: &str| {
            n.parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000).contains(n))
                .ok_or_else(|| format!("`{text}`: CUSTOMERSxORDERS, each 1–1000"))
        };
        Ok(Shape {
            customers: number(customers)?,
            orders_each: number(each)?,
        })
    }
}

/// What becomes of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Completed,
    Rejected,
    /// Cancelled by its customer once paid.
    Canceled,
    Unpaid,
}

impl Fate {
    fn drawn(rng: &mut StdRng) -> Fate {
        match rng.random_range(0..10) {
            0 => Fate::Rejected,
            1 => Fate::Canceled,
            2 => Fate::Unpaid,
            _ => Fate::Completed,
        }
    }

    fn status(self) -> &'static str {
        match self {
            Fate::Completed => "COMPLETED",
            Fate::Rejected => "REJECTED",
            Fate::Canceled => "CANCELED",
            Fate::Unpaid => "PENDING_PAYMENT",
        }
    }

    fn paid(self) -> bool {
        self != Fate::Unpaid
    }

    fn refunded(self) -> bool {
        matches!(self, Fate::Rejected | Fate::Canceled)
    }

    /// The pushes the store's board must hear: the paid order, and a customer's cancel (the board's
    /// own moves name it, so they are not pushed back to it).
    fn board_hears(self) -> &'static [&'static str] {
        match self {
            Fate::Unpaid => &[],
            Fate::Canceled => &["order.paid", "order.canceled"],
            Fate::Completed | Fate::Rejected => &["order.paid"],
        }
    }

    /// The pushes the customer's phone must hear.
    fn phone_hears(self) -> &'static [&'static str] {
        match self {
            Fate::Unpaid => &[],
            Fate::Completed => &["order.accepted", "order.ready", "order.completed"],
            Fate::Rejected => &["order.rejected"],
            Fate::Canceled => &["order.canceled"],
        }
    }
}

/// One order to play, as drawn.
struct Plan {
    fate: Fate,
    quantity: u32,
    /// Its create sent again with the same `Idempotency-Key`.
    retry_create: bool,
    /// Its confirm sent twice at once.
    double_tap: bool,
}

impl Plan {
    fn drawn(rng: &mut StdRng) -> Plan {
        Plan {
            fate: Fate::drawn(rng),
            quantity: rng.random_range(1..=3),
            retry_create: rng.random_bool(0.3),
            double_tap: rng.random_bool(0.3),
        }
    }
}

/// One order as played: what it must end as.
struct Played {
    order: String,
    /// The customer who placed it (their index).
    customer: usize,
    fate: Fate,
    total: i64,
    /// When the request that makes each of its events was answered (the first, for a double tap).
    answered: HashMap<&'static str, Instant>,
}

/// Who heard a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Listener {
    Board,
    /// A customer's phone (their index).
    Phone(usize),
}

impl Listener {
    fn kind(self) -> &'static str {
        match self {
            Listener::Board => "board",
            Listener::Phone(_) => "phones",
        }
    }
}

/// A push heard: who, the order, the event type, when.
type Heard = Arc<Mutex<Vec<(Listener, String, String, Instant)>>>;

/// Every answer: its route, its status, how long it took.
#[derive(Default)]
struct Answers {
    by_route: BTreeMap<&'static str, Vec<(u16, Duration)>>,
    problems: Vec<String>,
}

type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(shared: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Stack {
    /// One request, timed under `route`; a 5xx or a status outside `allowed` is a problem.
    #[allow(clippy::too_many_arguments)]
    async fn timed(
        &self,
        answers: &Shared<Answers>,
        route: &'static str,
        allowed: &[u16],
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let started = Instant::now();
        let (status, answer) = self.call(method, path, token, body, key).await;
        let took = started.elapsed();
        let mut answers = lock(answers);
        answers
            .by_route
            .entry(route)
            .or_default()
            .push((status, took));
        if !allowed.contains(&status) {
            answers
                .problems
                .push(format!("{route} {path}: {status} {answer}"));
        }
        (status, answer)
    }

    /// Listens on `socket` until it closes, noting each push under `who`.
    fn listen(socket: crate::cost::Socket, who: Listener, heard: Heard) {
        tokio::spawn(async move {
            let mut socket = socket;
            while let Some(Ok(message)) = socket.next().await {
                let Ok(text) = message.to_text() else {
                    continue;
                };
                let Ok(push) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                let order = push["order"]["orderId"].as_str().unwrap_or_default();
                let kind = push["type"].as_str().unwrap_or_default();
                lock(&heard).push((who, order.to_owned(), kind.to_owned(), Instant::now()));
            }
        });
    }

    /// One customer's orders (`who`, their token), one after another.
    async fn customer_orders(
        &self,
        answers: &Shared<Answers>,
        (store, owner): (&str, &str),
        (who, customer): (usize, &str),
        plans: Vec<Plan>,
    ) -> Vec<Played> {
        let mut played = Vec::new();
        for Plan {
            fate,
            quantity,
            retry_create,
            double_tap,
        } in plans
        {
            let key = uuid::Uuid::new_v4().to_string();
            let body = json!({"storeId": store, "items": [{"itemId": "latte", "quantity": quantity}],
                "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678"});
            let (status, order) = self
                .timed(
                    answers,
                    "POST /v1/orders",
                    &[201],
                    Method::POST,
                    "/v1/orders",
                    Some(customer),
                    Some(body.clone()),
                    Some(&key),
                )
                .await;
            if status != 201 {
                continue;
            }
            let id = order["orderId"].as_str().unwrap_or_default().to_owned();
            let total = order["total"].as_i64().unwrap_or_default();
            if retry_create {
                let (_, again) = self
                    .timed(
                        answers,
                        "POST /v1/orders (retry)",
                        &[200, 201],
                        Method::POST,
                        "/v1/orders",
                        Some(customer),
                        Some(body),
                        Some(&key),
                    )
                    .await;
                if again["orderId"] != order["orderId"] {
                    lock(answers).problems.push(format!(
                        "a retried create named {} where the first named {id}",
                        again["orderId"]
                    ));
                }
            }
            let mut answered = HashMap::new();
            if fate.paid() {
                let confirm =
                    json!({"orderId": id, "paymentKey": format!("tpk_{id}"), "amount": total});
                let taps = if double_tap { 2 } else { 1 };
                let confirms: Vec<(u16, Value)> = futures::stream::iter(0..taps)
                    .map(|_| {
                        self.timed(
                            answers,
                            "POST /v1/payments/confirm",
                            &[200, 409],
                            Method::POST,
                            "/v1/payments/confirm",
                            Some(customer),
                            Some(confirm.clone()),
                            None,
                        )
                    })
                    .buffer_unordered(2)
                    .collect()
                    .await;
                if !confirms.iter().any(|(status, _)| *status == 200) {
                    lock(answers)
                        .problems
                        .push(format!("{id}: no confirm was answered 200"));
                    continue;
                }
                answered.insert("order.paid", Instant::now());
            }
            let path = format!("/v1/orders/{id}/status");
            let moves: Vec<(&str, Value, &'static str)> = match fate {
                Fate::Unpaid => Vec::new(),
                Fate::Canceled => vec![(customer, json!({"to": "CANCELED"}), "order.canceled")],
                Fate::Rejected => vec![(
                    owner,
                    json!({"to": "REJECTED", "reason": "TOO_BUSY", "device": BOARD}),
                    "order.rejected",
                )],
                Fate::Completed => vec![
                    (
                        owner,
                        json!({"to": "ACCEPTED", "etaMinutes": 10, "device": BOARD}),
                        "order.accepted",
                    ),
                    (
                        owner,
                        json!({"to": "PREPARING", "device": BOARD}),
                        "order.preparing",
                    ),
                    (
                        owner,
                        json!({"to": "READY", "device": BOARD}),
                        "order.ready",
                    ),
                    (
                        owner,
                        json!({"to": "COMPLETED", "device": BOARD}),
                        "order.completed",
                    ),
                ],
            };
            for (token, body, event) in moves {
                self.timed(
                    answers,
                    "POST /v1/orders/{id}/status",
                    &[200],
                    Method::POST,
                    &path,
                    Some(token),
                    Some(body),
                    None,
                )
                .await;
                answered.insert(event, Instant::now());
            }
            played.push(Played {
                order: id,
                customer: who,
                fate,
                total,
                answered,
            });
        }
        played
    }

    /// The load run; its figures, and the problems found (none when everything held).
    pub async fn load(&self, shape: Shape, seed: u64) -> (Value, Vec<String>) {
        println!(
            "\n== Load: {} customers × {} orders at once (seed {seed})",
            shape.customers, shape.orders_each
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let run = uuid::Uuid::new_v4().simple().to_string();
        let run = &run[..8];
        let owner = self
            .account(&format!("load-owner-{run}@example.com"), "OWNER")
            .await;
        let store = self.open_store(&owner).await;
        let heard: Heard = Arc::default();
        let board = self
            .socket(&owner, Some(&store))
            .await
            .expect("the store's board connects");
        Self::listen(board, Listener::Board, heard.clone());
        let customers: Vec<String> = futures::stream::iter(0..shape.customers)
            .map(|i| async move {
                self.account(&format!("load-{run}-{i}@example.com"), "CUSTOMER")
                    .await
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (who, customer) in customers.iter().enumerate() {
            let phone = self.socket(customer, None).await.expect("a phone connects");
            Self::listen(phone, Listener::Phone(who), heard.clone());
        }
        let plans: Vec<Vec<Plan>> = (0..shape.customers)
            .map(|_| {
                (0..shape.orders_each)
                    .map(|_| Plan::drawn(&mut rng))
                    .collect()
            })
            .collect();

        let answers: Shared<Answers> = Arc::default();
        let started = Instant::now();
        let played: Vec<Played> =
            futures::future::join_all(customers.iter().enumerate().zip(plans).map(
                |((who, customer), plans)| {
                    self.customer_orders(&answers, (&store, &owner), (who, customer), plans)
                },
            ))
            .await
            .into_iter()
            .flatten()
            .collect();
        let played_for = started.elapsed();
        let last_answer = Instant::now();

        // The consumers catch up: every push each listener must hear, and the day's report.
        let pushes_lacking = || -> Vec<String> {
            let heard = lock(&heard);
            let got: HashSet<(Listener, &str, &str)> = heard
                .iter()
                .map(|(who, order, kind, _)| (*who, order.as_str(), kind.as_str()))
                .collect();
            played
                .iter()
                .flat_map(|p| {
                    let board = p.fate.board_hears().iter().map(|k| (Listener::Board, *k));
                    let phone =
                        (p.fate.phone_hears().iter()).map(|k| (Listener::Phone(p.customer), *k));
                    board
                        .chain(phone)
                        .map(move |(who, kind)| (who, p.order.as_str(), kind))
                })
                .filter(|want| !got.contains(want))
                .map(|(who, order, kind)| format!("{who:?} {order} {kind}"))
                .collect()
        };
        let paid: Vec<&Played> = played.iter().filter(|p| p.fate.paid()).collect();
        let want_report = (
            paid.len() as i64,
            paid.iter().map(|p| p.total).sum::<i64>(),
            paid.iter()
                .filter(|p| p.fate.refunded())
                .map(|p| p.total)
                .sum::<i64>(),
        );
        // The store's day is Seoul's (the store's default time zone).
        let today = jiff::Timestamp::now()
            .in_tz("Asia/Seoul")
            .map(|now| now.date().to_string())
            .unwrap_or_default();
        let (mut pushes_after, mut report_after) = (None, None);
        let mut report = (0, 0, 0);
        while last_answer.elapsed() < CATCH_UP && (pushes_after.is_none() || report_after.is_none())
        {
            if pushes_after.is_none() && pushes_lacking().is_empty() {
                pushes_after = Some(last_answer.elapsed());
            }
            if report_after.is_none() {
                let (_, day) = self
                    .call(
                        Method::GET,
                        &format!("/v1/stores/{store}/reports/daily?date={today}"),
                        Some(&owner),
                        None,
                        None,
                    )
                    .await;
                report = (
                    day["orders"].as_i64().unwrap_or(-1),
                    day["grossSales"].as_i64().unwrap_or(-1),
                    day["refunds"].as_i64().unwrap_or(-1),
                );
                if report == want_report {
                    report_after = Some(last_answer.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }

        let mut problems = std::mem::take(&mut lock(&answers).problems);
        if pushes_after.is_none() {
            let lacking = pushes_lacking();
            problems.push(format!(
                "{} pushes not heard {} s after the last answer, among them {}",
                lacking.len(),
                CATCH_UP.as_secs(),
                lacking[..lacking.len().min(5)].join(", ")
            ));
        }
        if report_after.is_none() {
            problems.push(format!(
                "the day's report read (orders, sales, refunds) = {report:?}, not {want_report:?}"
            ));
        }
        problems.extend(self.checked(&played, &owner).await);
        problems.extend(overheard(&played, &lock(&heard)));

        let delays = push_delays(&played, &lock(&heard));
        let figures = figures(
            &lock(&answers),
            shape,
            &played,
            played_for,
            delays,
            pushes_after,
            report_after,
        );
        (figures, problems)
    }

    /// Every order as the API reads it and as Toss's books have it.
    async fn checked(&self, played: &[Played], owner: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for p in played {
            let (_, order) = self
                .call(
                    Method::GET,
                    &format!("/v1/orders/{}", p.order),
                    Some(owner),
                    None,
                    None,
                )
                .await;
            if order["status"] != p.fate.status() {
                problems.push(format!(
                    "{}: {} where it must be {}",
                    p.order,
                    order["status"],
                    p.fate.status()
                ));
            }
        }
        let Some(toss) = &self.toss else {
            problems.push("no Toss stand-in to check the money at".into());
            return problems;
        };
        let ledger: Value = match self.http.get(format!("{toss}/__ledger")).send().await {
            Ok(reply) => reply.json().await.unwrap_or_default(),
            Err(err) => {
                problems.push(format!("Toss's ledger: {err}"));
                return problems;
            }
        };
        let mut executed: HashMap<&str, usize> = HashMap::new();
        for payment in ledger["payments"].as_array().into_iter().flatten() {
            if matches!(
                payment["status"].as_str(),
                Some("DONE" | "CANCELED" | "PARTIAL_CANCELED")
            ) {
                *executed
                    .entry(payment["orderId"].as_str().unwrap_or_default())
                    .or_default() += 1;
            }
        }
        let mut refunded: HashMap<&str, i64> = HashMap::new();
        for cancel in ledger["cancels"].as_array().into_iter().flatten() {
            *refunded
                .entry(cancel["orderId"].as_str().unwrap_or_default())
                .or_default() += cancel["amount"].as_i64().unwrap_or_default();
        }
        for p in played {
            let payments = executed.get(p.order.as_str()).copied().unwrap_or(0);
            if payments != usize::from(p.fate.paid()) {
                problems.push(format!(
                    "{} ({:?}): {payments} payments at Toss",
                    p.order, p.fate
                ));
            }
            let back = refunded.get(p.order.as_str()).copied().unwrap_or(0);
            let owed = if p.fate.refunded() { p.total } else { 0 };
            if back != owed {
                problems.push(format!(
                    "{} ({:?}): {back} refunded at Toss, not {owed}",
                    p.order, p.fate
                ));
            }
        }
        problems
    }
}

/// Pushes a listener must not have heard: a phone hears only its own customer's orders, the board
/// only its store's (every order played is; no other order is in the run).
fn overheard(played: &[Played], heard: &[(Listener, String, String, Instant)]) -> Vec<String> {
    let customer_of: HashMap<&str, usize> = played
        .iter()
        .map(|p| (p.order.as_str(), p.customer))
        .collect();
    heard
        .iter()
        .filter(
            |(who, order, _, _)| match (who, customer_of.get(order.as_str())) {
                (_, None) => true,
                (Listener::Board, Some(_)) => false,
                (Listener::Phone(phone), Some(customer)) => phone != customer,
            },
        )
        .map(|(who, order, kind, _)| format!("{who:?} heard {kind} of {order}, not theirs"))
        .collect()
}

/// How long after the answer that made each event its listener heard it (its first hearing; 0 when
/// the push came before the answer did).
fn push_delays(
    played: &[Played],
    heard: &[(Listener, String, String, Instant)],
) -> BTreeMap<&'static str, Vec<Duration>> {
    let answered: HashMap<(&str, &str), Instant> = played
        .iter()
        .flat_map(|p| {
            p.answered
                .iter()
                .map(|(kind, at)| ((p.order.as_str(), *kind), *at))
        })
        .collect();
    let mut first: HashMap<(Listener, &str, &str), Instant> = HashMap::new();
    for (who, order, kind, at) in heard {
        first
            .entry((*who, order.as_str(), kind.as_str()))
            .and_modify(|t| *t = (*t).min(*at))
            .or_insert(*at);
    }
    let mut delays: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for ((who, order, kind), at) in first {
        if let Some(answer) = answered.get(&(order, kind)) {
            delays
                .entry(who.kind())
                .or_default()
                .push(at.saturating_duration_since(*answer));
        }
    }
    delays
}

/// The `q` quantile of `values` (sorted here), in ms.
/// Durations sorted once, read at quantiles.
struct Spread(Vec<Duration>);

impl Spread {
    fn of(mut values: Vec<Duration>) -> Spread {
        values.sort_unstable();
        Spread(values)
    }

    /// The `q` quantile, in ms (0 when there is none).
    fn at(&self, q: f64) -> f64 {
        let Some(last) = self.0.len().checked_sub(1) else {
            return 0.0;
        };
        let at = ((last as f64) * q).round() as usize;
        crate::ms(self.0[at.min(last)])
    }
}

fn figures(
    answers: &Answers,
    shape: Shape,
    played: &[Played],
    played_for: Duration,
    delays: BTreeMap<&'static str, Vec<Duration>>,
    pushes_after: Option<Duration>,
    report_after: Option<Duration>,
) -> Value {
    let requests: usize = answers.by_route.values().map(Vec::len).sum();
    println!(
        "{} orders ({} paid) in {:.1} s: {:.1} orders/s, {:.1} requests/s",
        played.len(),
        played.iter().filter(|p| p.fate.paid()).count(),
        played_for.as_secs_f64(),
        played.len() as f64 / played_for.as_secs_f64(),
        requests as f64 / played_for.as_secs_f64(),
    );
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>8} {:>8}  statuses",
        "route", "requests", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    let mut routes = serde_json::Map::new();
    for (route, list) in &answers.by_route {
        let took = Spread::of(list.iter().map(|(_, d)| *d).collect());
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        for (status, _) in list {
            *statuses.entry(*status).or_default() += 1;
        }
        let (p50, p95, p99, max) = (took.at(0.5), took.at(0.95), took.at(0.99), took.at(1.0));
        println!(
            "{route:<32} {:>8} {p50:>8.1} {p95:>8.1} {p99:>8.1} {max:>8.1}  {statuses:?}",
            list.len()
        );
        routes.insert(
            (*route).to_owned(),
            json!({"requests": list.len(), "p50Ms": p50, "p95Ms": p95, "p99Ms": p99, "maxMs": max,
                "statuses": statuses}),
        );
    }
    let mut heard = serde_json::Map::new();
    for (who, list) in delays {
        let list = Spread::of(list);
        let (p50, p95, max) = (list.at(0.5), list.at(0.95), list.at(1.0));
        println!(
            "the {who} heard {} pushes: p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms after the answer that made them",
            list.0.len()
        );
        heard.insert(
            who.to_owned(),
            json!({"pushes": list.0.len(), "p50Ms": p50, "p95Ms": p95, "maxMs": max}),
        );
    }
    let after = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 10.0).round() / 10.0);
    let said = |d: Option<Duration>| match after(d) {
        Some(s) => format!("{s:.1} s"),
        None => format!("not within {} s", CATCH_UP.as_secs()),
    };
    println!(
        "after the last answer: every push heard at {}, the day's report complete at {}",
        said(pushes_after),
        said(report_after)
    );
    json!({
        "customers": shape.customers, "ordersEach": shape.orders_each,
        "orders": played.len(), "paid": played.iter().filter(|p| p.fate.paid()).count(),
        "seconds": played_for.as_secs_f64(), "requests": requests,
        "routes": routes, "pushDelays": heard,
        "everyPushHeardAfterS": after(pushes_after), "reportCompleteAfterS": after(report_after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_is_customers_by_orders() {
        let shape: Shape = "40x5".parse().expect("a shape");
        assert_eq!((shape.customers, shape.orders_each), (40, 5));
        let shape: Shape = "7".parse().expect("orders default to 5");
        assert_eq!((shape.customers, shape.orders_each), (7, 5));
        assert!("0x5".parse::<Shape>().is_err());
        assert!("40x".parse::<Shape>().is_err());
        assert!("fortyx5".parse::<Shape>().is_err());
    }

    #[test]
    fn a_phone_may_hear_only_its_customers_orders() {
        let played = |order: &str, customer| Played {
            order: order.into(),
            customer,
            fate: Fate::Completed,
            total: 4500,
            answered: HashMap::new(),
        };
        let played = [played("a", 0), played("b", 1)];
        let now = Instant::now();
        let heard = |who, order: &str| (who, order.to_owned(), "order.ready".to_owned(), now);
        let fine = [
            heard(Listener::Phone(0), "a"),
            heard(Listener::Phone(1), "b"),
            heard(Listener::Board, "a"),
        ];
        assert!(overheard(&played, &fine).is_empty());
        let wrong = [heard(Listener::Phone(1), "a"), heard(Listener::Board, "c")];
        assert_eq!(overheard(&played, &wrong).len(), 2);
    }

    #[test]
    fn quantiles_pick_from_the_sorted_values() {
        let values = Spread::of([5, 1, 4, 2, 3].map(Duration::from_millis).to_vec());
        assert_eq!(values.at(0.5), 3.0);
        assert_eq!(values.at(1.0), 5.0);
        assert_eq!(Spread::of(Vec::new()).at(0.5), 0.0);
    }
}
