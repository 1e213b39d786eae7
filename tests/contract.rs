//! docs/openapi.yaml is the contract. schemathesis — a client that knows nothing but the document —
//! generates requests from it against the local stack and checks every answer: no 5xx, only the
//! status codes the document lists, bodies and headers that match its schemas, schema-valid
//! requests accepted and invalid ones refused, authentication not ignored, created resources
//! found. Its configuration, and why each exception in it holds, is tests/schemathesis.toml.
//!
//! Two runs of two and a half minutes each: the examples, coverage and fuzzing phases aim at a store,
//! menu and order that exist (the configuration's `[parameters]`), so that generated requests reach
//! past "not found"; the stateful phase follows the document's links from what it creates itself,
//! so it runs without them.

use std::path::Path;
use std::process::Command;

use e2e::{Stack, StatusCode};
use serde_json::json;

#[tokio::test]
async fn the_api_holds_to_its_openapi_document() {
    let stack = Stack::start();
    let (store, owner, staff, customer) = stack.staffed_store("contract").await;
    let staff_id = stack.get("/v1/me", Some(&staff)).await.body["userId"]
        .as_str()
        .expect("the staff member's id")
        .to_owned();
    let (_, spare, _) = stack
        .account("contract-spare@example.com", "CUSTOMER")
        .await;
    let admin = stack.admin("contract-admin@example.com").await;
    let order = stack
        .order(
            &customer,
            &json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}],
                "fulfilment": {"type": "PICKUP"}, "phone": "010-1234-5678"}),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
    let order_id = order.body["orderId"].as_str().unwrap().to_owned();

    let root = e2e::root();
    let config = std::fs::read_to_string(root.join("tests/schemathesis.toml")).unwrap();
    let scratch = e2e::target_dir().join("contract");
    std::fs::create_dir_all(&scratch).unwrap();
    let stateful = scratch.join("stateful.toml");
    std::fs::write(&stateful, without_table(&config, "[parameters]")).unwrap();

    let base = stack.url("");
    let run = |config: &Path, phases: &str| {
        let output = Command::new(root.join(".venv/bin/schemathesis"))
            .current_dir(&root)
            .arg("--config-file")
            .arg(config)
            .args(["run", "docs/openapi.yaml", "--phases", phases])
            // Fuzzing and the stateful phase repeat until this is spent.
            .args(["--max-time", "150"])
            .args(["--url", base.trim_end_matches('/')])
            .env("OWNER_TOKEN", &owner)
            .env("CUSTOMER_TOKEN", &customer)
            .env("ADMIN_TOKEN", &admin)
            .env("SPARE_TOKEN", &spare)
            .env("STORE_ID", &store)
            .env("ORDER_ID", &order_id)
            .env("STAFF_ID", &staff_id)
            .env("NO_COLOR", "1")
            .output()
            .expect("run schemathesis (make bootstrap installs it in .venv)");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "schemathesis ({phases}) found:\n{report}"
        );
        println!("{report}");
    };
    run(
        &root.join("tests/schemathesis.toml"),
        "examples,coverage,fuzzing",
    );
    run(&stateful, "stateful");
}

/// `toml` without the table that starts at the line `header` (up to the next table).
fn without_table(toml: &str, header: &str) -> String {
    let mut skipping = false;
    toml.lines()
        .filter(|line| {
            if line.starts_with('[') {
                skipping = line.trim() == header;
            }
            !skipping
        })
        .map(|line| format!("{line}\n"))
        .collect()
}
