//! What operators see of a whole order flow: every request's log line carries the fields that trace
//! it, the EMF metrics have the names, units and dimensions the dashboards and alarms use, and no
//! log line holds personal data, tokens or keys.

use std::collections::{BTreeMap, BTreeSet};

use e2e::{PASSWORD, Stack, StatusCode};
use serde_json::{Value, json};

/// The JSON documents the functions printed, by function.
fn documents(logs: &str) -> Vec<(String, Value)> {
    logs.lines()
        .filter_map(|line| {
            let (label, rest) = line.strip_prefix('[')?.split_once("] ")?;
            let function = label.split('#').next()?.to_owned();
            serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| (function, v))
        })
        .collect()
}

#[tokio::test]
async fn an_order_flow_is_traceable_measurable_and_discreet() {
    let stack = Stack::start();
    let (_, owner, _) = stack.account("obs-owner@example.com", "OWNER").await;
    let (customer_id, customer, _) = stack.account("obs-customer@example.com", "CUSTOMER").await;
    let store = stack.open_store_with_menu(&owner, json!({})).await;
    let body = json!({"storeId": store, "items": [{"itemId": "latte", "quantity": 1}],
        "fulfilment": {"type": "DELIVERY", "address": "서울 마포구 비밀로 7"}, "phone": "010-9876-5432",
        "note": "초인종 누르지 마세요"});
    let order = stack.order(&customer, &body).await.body["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirm =
        |key: &str, amount: i64| json!({"orderId": order, "paymentKey": key, "amount": amount});
    // A refused card, then a good one, then the store rejects the order.
    stack
        .http()
        .post(format!("{}/__control", stack.toss))
        .json(&json!({"confirm": "reject"}))
        .send()
        .await
        .unwrap();
    let refused = stack
        .post(
            "/v1/payments/confirm",
            &confirm("tpk_obs_bad", 4500),
            Some(&customer),
        )
        .await;
    assert_eq!(refused.code(), "CARD_REJECTED");
    stack
        .http()
        .post(format!("{}/__control", stack.toss))
        .json(&json!({"confirm": "normal"}))
        .send()
        .await
        .unwrap();
    let paid = stack
        .post(
            "/v1/payments/confirm",
            &confirm("tpk_obs_good", 4500),
            Some(&customer),
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK);
    let rejected = stack
        .post(
            &format!("/v1/orders/{order}/status"),
            &json!({"to": "REJECTED", "reason": "TOO_BUSY"}),
            Some(&owner),
        )
        .await;
    assert_eq!(rejected.body["status"], "REJECTED");

    // The flow's events reach the notifications consumer a moment after the last response.
    stack.logs_with("\"MessagesProcessed\"").await;
    let logs = stack.settled_logs().await;
    let docs = documents(&logs);

    // Request lines: every field that traces a request, and the caller on authenticated routes.
    // A request's line is also its metrics document: function and latency are its dimension and
    // metric, so they are not repeated among the fields; each route is a function of its own, so
    // the function names it, and a cold start is the `ColdStart` metric.
    let requests: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["fields"]["message"] == "request")
        .collect();
    assert!(requests.len() >= 10);
    for line in &requests {
        let f = &line["fields"];
        for field in ["request_id", "lambda_request_id", "trace_id", "status"] {
            assert!(!f[field].is_null(), "{field} missing: {f}");
        }
        assert!(
            f["trace_id"].as_str().unwrap().starts_with("Root=1-"),
            "{f}"
        );
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(line["Function"].is_string(), "{line}");
        assert!(line.get("Route").is_none(), "{line}");
        assert!(f.get("cold_start").is_none(), "{line}");
        assert!(line["Latency"].is_number(), "{line}");
        assert!(line.get("_aws").is_some(), "{line}");
    }
    // One line per request: no separate metrics line beside it.
    let metric_lines = docs.iter().filter(|(_, d)| d.get("_aws").is_some()).count();
    let failures = docs
        .iter()
        .filter(|(_, d)| d.get("PaymentFailures").is_some())
        .count();
    let jobs = docs
        .iter()
        .filter(|(_, d)| {
            d["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("job"))
        })
        .count();
    assert_eq!(metric_lines, requests.len() + jobs + failures);
    let create = requests
        .iter()
        .find(|l| l["Function"] == "OrdersCreateFunction")
        .unwrap();
    assert_eq!(create["fields"]["user_id"], customer_id.as_str());
    assert!(requests.iter().any(|l| l["ColdStart"] == 1.0));
    assert!(requests.iter().any(|l| l.get("ColdStart").is_none()));

    // Spans: the handler and each AWS and Toss call, under the request's trace id.
    let spans: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["fields"]["message"] == "span")
        .collect();
    let create_trace = create["fields"]["trace_id"].as_str().unwrap();
    let of_create: Vec<&str> = spans
        .iter()
        .filter(|s| s["fields"]["trace_id"] == create_trace)
        .map(|s| s["fields"]["span"].as_str().unwrap())
        .collect();
    assert!(of_create.contains(&"POST /v1/orders"), "{of_create:?}");
    assert!(of_create.contains(&"dynamodb.PutItem"), "{of_create:?}");
    assert!(of_create.contains(&"dynamodb.GetItem"), "{of_create:?}");
    let confirm_trace = requests
        .iter()
        .find(|l| l["Function"] == "PaymentsConfirmFunction" && l["fields"]["status"] == 200)
        .unwrap()["fields"]["trace_id"]
        .as_str()
        .unwrap();
    assert!(
        spans
            .iter()
            .any(|s| s["fields"]["trace_id"] == confirm_trace
                && s["fields"]["kind"] == "toss"
                && s["fields"]["span"] == "toss confirm"),
        "no Toss span"
    );
    for span in &spans {
        assert!(span["fields"]["duration_ms"].is_number());
    }

    // EMF: names, units and dimensions. A count declares no unit (CloudWatch's `None`).
    let emf: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d.get("_aws").is_some())
        .collect();
    let mut declared: BTreeMap<String, (String, BTreeSet<Vec<String>>)> = BTreeMap::new();
    for doc in &emf {
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], "OrderSync");
            let dims: BTreeSet<Vec<String>> = directive["Dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|set| {
                    set.as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_str().unwrap().to_owned())
                        .collect()
                })
                .collect();
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap().to_owned();
                assert!(doc[&name].is_number(), "{name} has no value");
                let entry = declared.entry(name).or_insert((
                    metric["Unit"].as_str().unwrap_or("None").to_owned(),
                    BTreeSet::new(),
                ));
                entry.1.extend(dims.iter().cloned());
            }
        }
    }
    let expect = |name: &str, unit: &str, dims: &[&str]| {
        let (u, sets) = declared
            .get(name)
            .unwrap_or_else(|| panic!("no {name} metric"));
        assert_eq!(u, unit, "{name}");
        assert!(
            sets.contains(&dims.iter().map(|d| d.to_string()).collect::<Vec<_>>()),
            "{name}: {sets:?}"
        );
    };
    expect("Latency", "Milliseconds", &["Function"]);
    expect("Status2xx", "None", &["Function"]);
    expect("Status4xx", "None", &["Function"]);
    expect("ColdStart", "None", &["Function"]);
    expect("KmsDataKeyCacheMisses", "None", &["Function"]);
    expect("OrdersCreated", "None", &["Function"]);
    expect("OrdersPaid", "None", &["Function"]);
    expect("OrdersRejected", "None", &["Function"]);
    expect("PaymentFailures", "None", &["Function", "Code"]);
    expect("PaymentFailures", "None", &["Function"]);
    // The event pipeline: both stream readers' batches.
    expect("BatchSize", "None", &["Function"]);
    expect("MessagesProcessed", "None", &["Function"]);
    // A hit is not counted (a request that sealed or opened something; a miss is a KMS call).
    assert!(!declared.contains_key("KmsDataKeyCacheHits"));
    let failure = emf
        .iter()
        .find(|d| d.get("PaymentFailures").is_some())
        .unwrap();
    assert_eq!(failure["Code"], "CARD_REJECTED");
    let functions: BTreeSet<&str> = emf.iter().filter_map(|d| d["Function"].as_str()).collect();
    assert!(
        functions.len() < 50,
        "the function is a bounded dimension: {functions:?}"
    );

    // Nothing personal or secret anywhere in the logs.
    let access = stack.login("obs-customer@example.com", PASSWORD).await.body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    for secret in [
        "obs-customer@example.com",
        "01098765432",
        "9876-5432",
        "서울 마포구 비밀로 7",
        "초인종",
        "tpk_obs_good",
        "tpk_obs_bad",
        PASSWORD,
        &customer,
        &owner,
        &access,
        "test_sk_local_standin",
    ] {
        assert!(!logs.contains(secret), "the logs hold {secret}");
    }
}

/// At the most verbose level anyone can set, the logs are verbose — and still hold no password and
/// no token: TRACE, at which the runtime prints raw events, is capped at DEBUG.
#[tokio::test]
async fn the_most_verbose_logs_hold_no_password_or_token() {
    let stack = Stack::start_logging("trace");
    stack.account("verbose@example.com", "CUSTOMER").await;
    let login = stack.login("verbose@example.com", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK);
    let refresh = login.body["refreshToken"].as_str().unwrap().to_owned();
    let rotated = stack
        .post("/v1/auth/refresh", &json!({"refreshToken": refresh}), None)
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let access = rotated.body["accessToken"].as_str().unwrap().to_owned();
    let second_refresh = rotated.body["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(
        stack.get("/v1/me", Some(&access)).await.status,
        StatusCode::OK
    );
    let wrong = stack
        .login("verbose@example.com", "not the password!")
        .await;
    assert_eq!(wrong.status.as_u16(), 401);

    let logs = stack.logs_with("capped at DEBUG").await;
    let docs = documents(&logs);
    assert!(
        docs.iter().any(|(_, d)| d["level"] == "DEBUG"),
        "DEBUG lines are logged"
    );
    assert!(
        !docs.iter().any(|(_, d)| d["level"] == "TRACE"),
        "no TRACE line is logged"
    );
    assert!(logs.contains("capped at DEBUG"), "the cap is said");
    for secret in [
        PASSWORD,
        "not the password!",
        &refresh,
        &second_refresh,
        &access,
        login.body["accessToken"].as_str().unwrap(),
        "verbose@example.com",
    ] {
        assert!(!logs.contains(secret), "the logs hold {secret}");
    }
}
