//! Every sample event in `events/` does its function's work once its placeholders are filled in —
//! what a developer gets from `cargo lambda invoke <function> --data-file events/<function>.json`.
//! Each is invoked through the local runner as Lambda would invoke it
//! (`/__local/functions/<binary>/invoke`), in the order a store's day needs them, and must succeed:
//! an API route with a 2xx answer, a consumer with no failed record.

use std::collections::{BTreeMap, BTreeSet};

use e2e::{Stack, always_open, text_of};
use serde_json::{Value, json};

/// The sample events' placeholders, and what fills them as the day goes on.
#[derive(Default)]
struct Placeholders(BTreeMap<&'static str, String>);

impl Placeholders {
    fn set(&mut self, name: &'static str, value: &str) {
        self.0.insert(name, value.to_owned());
    }

    /// `events/<binary>.json` with every placeholder known so far filled in.
    fn sample(&self, binary: &str) -> Value {
        let path = e2e::root().join(format!("events/{binary}.json"));
        let mut text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (name, value) in &self.0 {
            text = text.replace(name, value);
        }
        assert!(
            !text.contains("PASTE_"),
            "{binary}: a placeholder is left unfilled"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{binary}: {e}"))
    }
}

struct Day {
    stack: Stack,
    values: Placeholders,
    invoked: BTreeSet<String>,
}

impl Day {
    /// Invokes `binary` with its sample event; the function's own answer.
    async fn invoke(&mut self, binary: &str) -> Value {
        let event = self.values.sample(binary);
        self.invoked.insert(binary.to_owned());
        self.stack.invoke(binary, &event).await
    }

    /// An API route's sample: its status must be `expected`; the answer's JSON body.
    async fn route(&mut self, binary: &str, expected: u16) -> Value {
        let answer = self.invoke(binary).await;
        assert_eq!(answer["statusCode"], expected, "{binary}: {answer}");
        answer["body"]
            .as_str()
            .filter(|body| !body.is_empty())
            .map(|body| serde_json::from_str(body).unwrap_or_else(|e| panic!("{binary}: {e}")))
            .unwrap_or(Value::Null)
    }

    /// A consumer's or a job's sample: it must succeed with no record handed back as failed.
    async fn job(&mut self, binary: &str) -> Value {
        let answer = self.invoke(binary).await;
        let failures = &answer["batchItemFailures"];
        assert!(
            failures.is_null() || failures.as_array().is_some_and(Vec::is_empty),
            "{binary}: {answer}"
        );
        answer
    }
}

#[tokio::test]
async fn every_sample_event_does_its_functions_work_once_its_placeholders_are_filled() {
    let mut day = Day {
        stack: Stack::start(),
        values: Placeholders::default(),
        invoked: BTreeSet::new(),
    };

    // The owner signs up and in, and opens the store with its menu.
    let signed_up = day.route("auth-signup", 201).await;
    assert_eq!(signed_up["email"], "owner@example.com");
    let signed_in = day.route("auth-login", 200).await;
    let owner = signed_in["accessToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    day.values.set("PASTE_AN_OWNER_ACCESS_TOKEN", &owner);
    day.values.set("PASTE_AN_ACCESS_TOKEN", &owner);
    day.values.set(
        "PASTE_A_REFRESH_TOKEN",
        signed_in["refreshToken"].as_str().expect("a refresh token"),
    );
    assert_eq!(day.route("me", 200).await["role"], "OWNER");
    assert_eq!(day.route("me-update", 200).await["phone"], "01098765432");
    let store = day.route("stores-create", 201).await["storeId"]
        .as_str()
        .expect("a store id")
        .to_owned();
    day.values.set("PASTE_A_STORE_ID", &store);
    day.route("stores-get", 200).await;
    assert_eq!(
        day.route("stores-update", 200).await["acceptingOrders"],
        false
    );
    day.route("menu-option-group-put", 201).await;
    day.route("menu-category-put", 201).await;
    day.route("menu-item-put", 201).await;
    let menu = day.route("menu-get", 200).await;
    assert!(menu.to_string().contains("원조김밥"), "{menu}");
    day.route("menu-item-image", 201).await;
    day.job("menu-image-check").await;
    assert_eq!(
        day.route("stores-mine", 200).await["stores"][0]["storeId"],
        store
    );

    // Open for orders (the sample store keeps a few hours a week and was just paused).
    let reopened = day
        .stack
        .patch(
            &format!("/v1/stores/{store}"),
            &json!({"acceptingOrders": true, "weeklyHours": always_open()}),
            Some(&owner),
        )
        .await;
    assert_eq!(reopened.status, 200, "{:?}", reopened.body);

    // A customer orders and pays; the store takes the order, and later refunds part of it.
    let (_, customer, _) = day.stack.account("customer@example.com", "CUSTOMER").await;
    day.values.set("PASTE_A_CUSTOMER_ACCESS_TOKEN", &customer);
    let order = day.route("orders-create", 201).await;
    assert_eq!(order["total"], 9000, "{order}");
    day.values.set(
        "PASTE_AN_ORDER_ID",
        order["orderId"].as_str().expect("an id"),
    );
    assert_eq!(day.route("payments-confirm", 200).await["status"], "PAID");
    day.route("payments-webhook", 200).await;
    assert_eq!(day.route("orders-get", 200).await["status"], "PAID");
    assert_eq!(day.route("orders-status", 200).await["status"], "ACCEPTED");
    day.route("orders-store-list", 200).await;
    day.route("orders-mine", 200).await;
    day.route("orders-refund", 201).await;
    let refunds = day.route("orders-refund-list", 200).await;
    assert_eq!(
        refunds["refunds"].as_array().map(Vec::len),
        Some(1),
        "{refunds}"
    );
    day.route("ws-connect", 200).await;
    // API Gateway never repeats a connection id; if it came again, under the same session, it
    // would be the same connection. Under another session it is refused, not failed.
    day.route("ws-connect", 200).await;
    let other_session = day.route("auth-login", 200).await;
    let mut connect = day.values.sample("ws-connect");
    connect["headers"]["Authorization"] = json!(format!(
        "Bearer {}",
        other_session["accessToken"].as_str().unwrap()
    ));
    let refused = day.stack.invoke("ws-connect", &connect).await;
    assert_eq!(refused["statusCode"], 409, "{refused}");
    assert!(
        refused["body"]
            .as_str()
            .is_some_and(|body| body.contains("CONNECTION_EXISTS")),
        "{refused}"
    );

    // The owner's reports and audit trail; an operator's.
    day.route("reports-daily", 200).await;
    day.route("reports-top-items", 200).await;
    day.route("reports-export", 201).await;
    day.route("audit-store-list", 200).await;
    let admin = day.stack.admin("admin@example.com").await;
    day.values.set("PASTE_AN_ADMIN_ACCESS_TOKEN", &admin);
    day.route("audit-admin-list", 200).await;

    // Staff: invited, seeing the invitation, accepting it, removed; then gone.
    let (staff_id, staff, _) = day.stack.account("staff@example.com", "CUSTOMER").await;
    day.values.set("PASTE_A_USER_ID", &staff_id);
    day.values
        .set("PASTE_THE_INVITED_USERS_ACCESS_TOKEN", &staff);
    day.route("staff-add", 202).await;
    // Invited again by the address the owner knows: renewed.
    assert_eq!(
        day.route("staff-invite", 202).await["userId"],
        staff_id.as_str()
    );
    day.values.set("PASTE_AN_ACCESS_TOKEN", &staff);
    let invitations = day.route("invitations-list", 200).await;
    assert_eq!(
        invitations["invitations"][0]["storeId"], store,
        "{invitations}"
    );
    day.route("invitations-accept", 200).await;
    let listed = day.route("staff-list", 200).await;
    assert_eq!(listed["staff"][0]["userId"], staff_id.as_str(), "{listed}");
    day.route("staff-remove", 204).await;
    // The staff member closes their account (the sample's password is the tests' own).
    day.route("me-delete", 204).await;
    // The customer changes their password.
    day.values.set("PASTE_AN_ACCESS_TOKEN", &customer);
    assert_eq!(day.route("me-password", 200).await["tokenType"], "Bearer");

    // The menu taken apart again, in the order its references allow.
    day.route("menu-item-availability", 200).await;
    day.route("menu-item-delete", 204).await;
    day.route("menu-option-group-delete", 204).await;
    day.route("menu-category-delete", 204).await;

    // The owner's session: refreshed, then ended.
    day.route("auth-refresh", 200).await;
    day.values.set("PASTE_AN_ACCESS_TOKEN", &owner);
    day.route("auth-logout", 204).await;

    // The consumers and the scheduled jobs. The stream's and the queue's samples carry a made-up
    // order of a made-up store (`st_example`): recorded in the audit trail, counted nowhere (no one
    // could read that store's reports), and the stream goes on past it.
    day.job("events-record").await;
    let items = day.stack.scan().await;
    assert!(
        items
            .iter()
            .any(|i| text_of(i, "SK").ends_with("#ord_0123456789abcdef0123456789abcdef.v2")),
        "the sample event's audit record"
    );
    assert!(
        !items
            .iter()
            .any(|i| text_of(i, "PK").starts_with("REPORT#st_example")),
        "counters of a store that does not exist"
    );
    for job in [
        "notifications-push",
        "events-replay",
        "orders-expire",
        "payments-reconcile",
        "crypto-reencrypt",
        "audit-archive",
    ] {
        day.job(job).await;
    }

    let samples: BTreeSet<String> = std::fs::read_dir(e2e::root().join("events"))
        .expect("events/")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    assert_eq!(
        samples, day.invoked,
        "a sample event this test does not play"
    );
}

/// The README's "A first order, by hand", run as it is written there: the shell block under that
/// heading, against the local API, prints each answer's status from the payment to the handover.
#[tokio::test]
async fn the_readmes_first_order_by_hand_runs_as_written() {
    let readme = std::fs::read_to_string(e2e::root().join("README.md")).expect("README.md");
    let section = readme
        .split_once("### A first order, by hand")
        .expect("the README's walkthrough")
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .expect("its shell block")
        .0;
    let stack = Stack::start();
    let run = tokio::process::Command::new("bash")
        .args(["-eu", "-o", "pipefail", "-c", block])
        .env("API", &stack.base_url)
        .output()
        .await
        .expect("bash");
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}\n{printed}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        ["PAID", "ACCEPTED", "PREPARING", "READY", "COMPLETED"],
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
