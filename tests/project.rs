//! The project's pieces agree: every function crate is in template.yaml and every template function
//! has a crate; the OpenAPI spec and the template list the same routes; no route breaks what the
//! code relies on (a store's owner never changes).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{Value, json};

fn python(args: &[&str]) -> Value {
    let root = e2e::root();
    let out = Command::new(root.join(".venv/bin/python"))
        .current_dir(&root)
        .args(args)
        .output()
        .expect("run the project's python (make bootstrap installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn manifest() -> Value {
    python(&["infra/local/provision.py", "--template", "template.yaml"])
}

#[test]
fn every_function_crate_has_a_template_entry_and_back() {
    let crates: BTreeSet<String> = std::fs::read_dir(e2e::root().join("functions"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let manifest = manifest();
    let functions = manifest["functions"].as_array().unwrap();
    let in_template: BTreeSet<String> = functions
        .iter()
        .map(|f| f["binary"].as_str().unwrap().to_owned())
        .collect();
    assert!(!crates.is_empty());
    assert_eq!(crates, in_template, "functions/ and template.yaml disagree");
    for f in functions {
        let name = &f["name"];
        assert_eq!(f["runtime"], "provided.al2023", "{name}");
        assert_eq!(f["architectures"], serde_json::json!(["arm64"]), "{name}");
        assert_eq!(f["buildMethod"], "rust-cargolambda", "{name}");
    }
}

#[test]
fn openapi_and_template_list_the_same_routes() {
    let manifest = manifest();
    let template: BTreeSet<String> = manifest["functions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["routes"].as_array().unwrap().clone())
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    let spec = python(&[
        "-c",
        "import json, sys, yaml; json.dump(yaml.safe_load(open('docs/openapi.yaml')), sys.stdout)",
    ]);
    assert_eq!(spec["openapi"], "3.1.0");
    let methods = ["get", "put", "post", "delete", "patch"];
    let documented: BTreeSet<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| methods.contains(&m.as_str()))
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    assert!(!template.is_empty());
    assert_eq!(
        template, documented,
        "template.yaml and docs/openapi.yaml disagree"
    );
}

#[test]
fn every_function_keeps_logs_for_a_set_time_and_the_flow_is_watched() {
    let resources = python(&[
        "-c",
        "import json, sys; sys.path.insert(0, 'infra/local'); import provision; \
         t = provision.load_template('template.yaml'); \
         json.dump({k: v['Type'] for k, v in t['Resources'].items()}, sys.stdout)",
    ]);
    let types = resources.as_object().unwrap();
    let functions: Vec<&String> = types
        .iter()
        .filter(|(_, t)| *t == "AWS::Serverless::Function")
        .map(|(name, _)| name)
        .collect();
    assert!(functions.len() > 20);
    for function in functions {
        assert_eq!(
            types
                .get(&format!("{function}Logs"))
                .and_then(|t| t.as_str()),
            Some("AWS::Logs::LogGroup"),
            "{function} has no log group with a retention"
        );
    }
    for alarm in [
        "Api5xxRateAlarm",
        "ApiLatencyP99Alarm",
        "LambdaThrottlesAlarm",
        "PaymentFailuresAlarm",
    ] {
        assert_eq!(types[alarm], "AWS::CloudWatch::Alarm", "{alarm}");
    }
    assert_eq!(types["Dashboard"], "AWS::CloudWatch::Dashboard");
}

/// Every queue a function consumes: a dead-letter queue with an alarm on its depth, a visibility
/// timeout at least six times the consumer's timeout, partial batch failures reported; and every
/// stream reader reports partial batch failures and sends what the stream expires to a watched
/// queue.
#[test]
fn every_queue_has_a_watched_dead_letter_queue_and_room_for_retries() {
    let template = python(&[
        "-c",
        "import json, sys; sys.path.insert(0, 'infra/local'); import provision; \
         json.dump(provision.load_template('template.yaml'), sys.stdout, default=str)",
    ]);
    let resources = template["Resources"].as_object().unwrap();
    let default_timeout = template["Globals"]["Function"]["Timeout"].as_u64().unwrap();
    let getatt_target = |value: &Value| -> String {
        value["Fn::GetAtt"]
            .as_str()
            .map(|s| s.split('.').next().unwrap_or_default().to_owned())
            .or_else(|| value["Fn::GetAtt"][0].as_str().map(String::from))
            .unwrap_or_default()
    };
    let mut consumed = 0;
    for (name, function) in resources {
        let Some(events) = function["Properties"]["Events"].as_object() else {
            continue;
        };
        for event in events
            .values()
            .filter(|e| e["Type"] == "SQS" || e["Type"] == "DynamoDB")
        {
            consumed += 1;
            let props = &event["Properties"];
            assert!(
                props["FunctionResponseTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures")),
                "{name} does not report batch item failures"
            );
            if event["Type"] == "DynamoDB" {
                // What the stream expires before it was taken goes to a watched queue.
                let dlq = getatt_target(&props["DestinationConfig"]["OnFailure"]["Destination"]);
                assert!(
                    resources.contains_key(&format!("{dlq}DepthAlarm")),
                    "{name}'s stream failures go to {dlq:?}, which no alarm watches"
                );
                continue;
            }
            let queue_name = getatt_target(&props["Queue"]);
            let queue = &resources[&queue_name]["Properties"];
            let timeout = function["Properties"]["Timeout"]
                .as_u64()
                .unwrap_or(default_timeout);
            let visibility = queue["VisibilityTimeout"].as_u64().unwrap_or(30);
            assert!(
                visibility >= 6 * timeout,
                "{queue_name}: visibility {visibility} s < 6 × {name}'s {timeout} s"
            );
            let redrive = &queue["RedrivePolicy"];
            assert!(
                redrive["maxReceiveCount"]
                    .as_u64()
                    .is_some_and(|n| (1..=10).contains(&n))
            );
            let dlq = getatt_target(&redrive["deadLetterTargetArn"]);
            let alarm = &resources[&format!("{dlq}DepthAlarm")];
            assert_eq!(
                alarm["Type"], "AWS::CloudWatch::Alarm",
                "{dlq} has no depth alarm"
            );
            assert_eq!(
                alarm["Properties"]["MetricName"],
                "ApproximateNumberOfMessagesVisible"
            );
        }
    }
    assert!(consumed >= 2, "no queue or stream consumer found");
    // Queues without a consumer yet still have their dead-letter queue and its alarm.
    for (name, queue) in resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::SQS::Queue")
    {
        if let Some(target) = queue["Properties"]["RedrivePolicy"].get("deadLetterTargetArn") {
            let dlq = getatt_target(target);
            assert!(
                resources.contains_key(&format!("{dlq}DepthAlarm")),
                "{name}'s {dlq}"
            );
        }
    }
}

/// The money path's timing invariants (docs/PAYMENTS.md) hold for every Toss time-out the template
/// allows: a confirm's lease outlasts a whole Toss call (both attempts) and the recording of its
/// answer; every route that calls Toss can wait for that and still answer within API Gateway's 30
/// seconds; jobs that call Toss have room for it.
#[test]
fn payment_timings_hold_for_every_allowed_toss_time_out() {
    use shared::payments::toss::{self, TossClient};
    use std::time::Duration;
    let params = python(&[
        "-c",
        "import json, sys; sys.path.insert(0, 'infra/local'); import provision; \
         json.dump(provision.load_template('template.yaml')['Parameters'], sys.stdout)",
    ]);
    let toss_param = &params["TossTimeoutMs"];
    let longest = Duration::from_millis(toss_param["MaxValue"].as_u64().unwrap());
    let shortest = Duration::from_millis(toss_param["MinValue"].as_u64().unwrap());
    let default = Duration::from_millis(toss_param["Default"].as_u64().unwrap());
    for timeout in [shortest, default, longest] {
        let client = TossClient::new("https://api.tosspayments.com", "test_sk_x", timeout).unwrap();
        let lease = shared::payments::lease_duration(&client);
        assert!(
            lease >= toss::worst_case(timeout) + toss::RECORD_RESERVE,
            "a lease of {lease:?} ends before one call of {timeout:?} and its recording"
        );
    }
    let client = TossClient::new("https://api.tosspayments.com", "test_sk_x", longest).unwrap();
    let lease = shared::payments::lease_duration(&client);
    let manifest = manifest();
    let mut checked = 0;
    for f in manifest["functions"].as_array().unwrap() {
        if f["env"].get("TOSS_TIMEOUT_MS").is_none() {
            continue;
        }
        checked += 1;
        let name = f["name"].as_str().unwrap();
        let timeout = Duration::from_secs(f["timeout"].as_u64().unwrap());
        let routes = f["routes"].as_array().unwrap();
        if !routes.is_empty() {
            assert!(
                timeout < Duration::from_secs(30),
                "{name}: API Gateway ends a call at 30 s; its timeout is {timeout:?}"
            );
        }
        assert!(
            timeout >= lease,
            "{name}: a {timeout:?} timeout cannot wait out a Toss call at the longest allowed \
             time-out ({lease:?} with its recording)"
        );
    }
    assert!(checked >= 5, "the functions that call Toss were found");
}

/// Nothing that runs without a caller fails silently: every scheduled function has an alarm on its
/// errors, and every stream consumer one on how far behind its stream it is.
#[test]
fn every_scheduled_job_and_stream_consumer_is_watched() {
    let template = python(&[
        "-c",
        "import json, sys; sys.path.insert(0, 'infra/local'); import provision; \
         json.dump(provision.load_template('template.yaml'), sys.stdout, default=str)",
    ]);
    let resources = template["Resources"].as_object().unwrap();
    // The alarms, as (metric, the function they watch).
    let watched: Vec<(String, String)> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .filter_map(|r| {
            let p = &r["Properties"];
            let function = p["Dimensions"]
                .as_array()?
                .iter()
                .find(|d| d["Name"] == "FunctionName")?;
            let name = function["Value"].to_string();
            Some((p["MetricName"].as_str()?.to_owned(), name))
        })
        .collect();
    let mut checked = 0;
    for (logical, resource) in resources {
        if resource["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let events = resource["Properties"]["Events"].as_object();
        for event in events.into_iter().flat_map(|e| e.values()) {
            let metric = match event["Type"].as_str() {
                Some("Schedule") => "Errors",
                Some("DynamoDB") => "IteratorAge",
                _ => continue,
            };
            checked += 1;
            assert!(
                watched
                    .iter()
                    .any(|(m, f)| m == metric && f.contains(logical.as_str())),
                "{logical}: no alarm on its {metric}"
            );
        }
    }
    assert!(
        checked >= 4,
        "the scheduled jobs and the stream consumer were found"
    );
}

/// Token verification reads a signing key's certificate from the table, and the functions that
/// issue tokens seal and unseal signing keys: the template grants each what it needs
/// (shared/src/auth/tokens.rs).
#[test]
fn every_token_verifier_can_read_signing_keys_and_every_issuer_can_unseal_them() {
    let policies = python(&[
        "-c",
        "import json, sys; sys.path.insert(0, 'infra/local'); import provision; \
         t = provision.load_template('template.yaml'); \
         json.dump({k: [s for p in v['Properties'].get('Policies', []) if isinstance(p, dict) \
                        for s in p.get('Statement', [])] \
                    for k, v in t['Resources'].items() if v['Type'] == 'AWS::Serverless::Function'}, \
                   sys.stdout)",
    ]);
    let actions = |statements: &Value| -> BTreeSet<String> {
        statements
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| match &s["Action"] {
                Value::Array(list) => list.clone(),
                one => vec![one.clone()],
            })
            .filter_map(|a| a.as_str().map(String::from))
            .collect()
    };
    let mut verifiers = 0;
    for (function, statements) in policies.as_object().unwrap() {
        let granted = actions(statements);
        if granted.contains("kms:GetPublicKey") {
            verifiers += 1;
            // During a rotation the old root's certificates are still read: its public key too.
            for statement in statements.as_array().unwrap() {
                if actions(&json!([statement])).contains("kms:GetPublicKey") {
                    let resource = statement["Resource"].to_string();
                    assert!(
                        resource.contains("RotatingTokenKey")
                            && resource.contains("${PreviousTokenSigningKeyId}"),
                        "{function} cannot read the previous root's public key: {resource}"
                    );
                }
            }
            assert!(
                granted.contains("dynamodb:GetItem"),
                "{function} verifies tokens but cannot read signing keys"
            );
        }
        if granted.contains("kms:Sign") {
            for needed in ["kms:GenerateDataKey", "kms:Decrypt", "dynamodb:PutItem"] {
                assert!(
                    granted.contains(needed),
                    "{function} issues tokens without {needed}"
                );
            }
        }
    }
    assert!(verifiers > 20, "{verifiers}");

    // The previous root reaches every function's trust list.
    let globals = python(&[
        "-c",
        "import json, sys; sys.path.insert(0, 'infra/local'); import provision; \
         t = provision.load_template('template.yaml'); \
         json.dump(t['Globals']['Function']['Environment']['Variables'], sys.stdout)",
    ]);
    assert_eq!(
        globals["JWT_PREVIOUS_KEY_IDS"],
        json!({"Ref": "PreviousTokenSigningKeyId"})
    );
}

/// Field keys are scoped (SECURITY.md, "Field keys"): every grant on the data key names the fields
/// whose keys it may make or unwrap, and each function's fields are the ones it seals or opens. The
/// local stack enforces the same grants (infra/runner/src/iam.rs), so a grant too narrow fails the
/// end-to-end tests; this table makes one too wide a change that someone has to write down.
#[test]
fn every_function_may_unwrap_only_the_fields_it_handles() {
    // Function: (fields whose keys it makes and unwraps, fields whose keys it only unwraps).
    let expected = [
        (
            "AuthSignupFunction",
            "email name phone blind-index-secret",
            "",
        ),
        (
            "AuthLoginFunction",
            "blind-index-secret tokenSigningKey",
            "",
        ),
        (
            "AuthRefreshFunction",
            "tokenSigningKey",
            "blind-index-secret",
        ),
        ("MeFunction", "", "email name phone"),
        ("MeDeleteFunction", "", "email blind-index-secret"),
        ("MeUpdateFunction", "name phone", "email blind-index-secret"),
        (
            "MePasswordFunction",
            "tokenSigningKey",
            "email blind-index-secret",
        ),
        ("StaffListFunction", "", "name"),
        ("StaffInviteFunction", "", "blind-index-secret"),
        ("OrdersCreateFunction", "contact", ""),
        ("OrdersGetFunction", "", "contact"),
        ("OrdersStatusFunction", "", "contact paymentKey"),
        ("OrdersMineFunction", "", "contact"),
        ("OrdersStoreListFunction", "", "contact"),
        ("PaymentsConfirmFunction", "paymentKey secret", "contact"),
        ("OrdersRefundFunction", "", "paymentKey"),
        ("PaymentsWebhookFunction", "paymentKey secret", ""),
        ("PaymentsReconcileFunction", "paymentKey secret", ""),
        (
            "CryptoReencryptFunction",
            "email name phone contact responseBody paymentKey secret tokenSigningKey",
            "",
        ),
    ];
    type Fields = BTreeSet<String>;
    let words = |s: &str| -> Fields { s.split_whitespace().map(String::from).collect() };
    let expected: BTreeMap<String, (Fields, Fields)> = expected
        .into_iter()
        .map(|(name, sealed, opened)| (name.to_owned(), (words(sealed), words(opened))))
        .collect();

    let manifest = manifest();
    let mut granted: BTreeMap<String, (Fields, Fields)> = BTreeMap::new();
    for function in manifest["functions"].as_array().unwrap() {
        let name = function["name"].as_str().unwrap();
        let (mut sealed, mut opened) = (Fields::new(), Fields::new());
        for grant in function["grants"].as_array().unwrap() {
            let actions = grant["actions"].to_string();
            let on_data_key = grant["resources"].to_string().contains("DataKey");
            if !on_data_key || !(actions.contains("Decrypt") || actions.contains("GenerateDataKey"))
            {
                continue;
            }
            let equals = &grant["conditions"]["StringEquals"];
            assert_eq!(
                equals["kms:EncryptionContext:app"],
                json!(["ordersync"]),
                "{name}: {grant}"
            );
            let fields: Fields = equals["kms:EncryptionContext:field"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} may unwrap every field's key: {grant}"))
                .iter()
                .map(|f| f.as_str().unwrap().to_owned())
                .collect();
            assert!(
                grant["conditions"].as_object().unwrap().len() == 1,
                "{name}: only StringEquals is understood by the local stack: {grant}"
            );
            if actions.contains("GenerateDataKey") {
                assert!(actions.contains("Decrypt"), "{name}: {grant}");
                sealed.extend(fields);
            } else {
                opened.extend(fields);
            }
        }
        if !sealed.is_empty() || !opened.is_empty() {
            granted.insert(name.to_owned(), (sealed, opened));
        }
    }
    assert_eq!(
        granted, expected,
        "function: (fields sealed and opened, fields only opened)"
    );
}

/// Each instance remembers a store's owner once read (`shared::stores::owners`), which is sound
/// only while a store's owner never changes: no route deletes a store or hands it to another
/// owner (the store's update refuses `ownerId`: `tests/stores.rs`). A route that does either must
/// first make that memory forget (SECURITY.md, "Stores and staff"); this test is where it is
/// noticed.
#[test]
fn no_route_deletes_a_store_or_hands_it_over_while_instances_remember_owners() {
    let manifest = manifest();
    let routes: Vec<(String, String)> = manifest["functions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["routes"].as_array().unwrap().clone())
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        routes
            .iter()
            .any(|(_, path)| path == "/v1/stores/{storeId}")
    );
    let changes_the_owner: Vec<String> = routes
        .iter()
        .filter(|(method, path)| {
            (method == "DELETE" && path == "/v1/stores/{storeId}")
                || ["owner", "transfer", "handover"]
                    .iter()
                    .any(|word| path.to_lowercase().contains(word))
        })
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(
        changes_the_owner.is_empty(),
        "{changes_the_owner:?} may delete a store or change its owner: stores::owners must forget it first"
    );
}

/// Every metric of ours that an alarm or the dashboard reads is one a function writes, by the
/// dimensions it writes it with: a line declares its metrics by `Function` alone (each route is a
/// function of its own), and payment failures also by `Function` and `Code`. A dashboard that asks
/// for a dimension no line carries draws nothing, and an alarm on it never fires.
#[test]
fn the_alarms_and_the_dashboard_read_metrics_the_functions_write() {
    let read = python(&[
        "-c",
        r#"
import json, re, sys
sys.path.insert(0, 'infra/local')
import provision
t = provision.load_template('template.yaml')
out = []
def metric(m):
    if m.get('Namespace') == 'OrderSync':
        out.append([m['MetricName'], [d['Name'] for d in m.get('Dimensions', [])]])
for r in t['Resources'].values():
    p = r.get('Properties') or {}
    if r['Type'] == 'AWS::CloudWatch::Alarm':
        metric(p)
        for q in p.get('Metrics', []):
            metric((q.get('MetricStat') or {}).get('Metric') or {})
    if r['Type'] == 'AWS::CloudWatch::Dashboard':
        body = json.loads(re.sub(r'\$\{[^}]*\}', 'x', p['DashboardBody']['Fn::Sub']))
        for w in body['widgets']:
            for row in w['properties'].get('metrics', []):
                if row[0] == 'OrderSync':
                    dims = [x for x in row[2:] if not isinstance(x, dict)]
                    out.append([row[1], dims[0::2]])
json.dump(out, sys.stdout)
"#,
    ]);
    let read = read.as_array().unwrap();
    assert!(read.len() >= 8, "{read:?}");
    let mut sources = String::new();
    for dir in ["shared/src", "functions"] {
        let out = Command::new("grep")
            .current_dir(e2e::root())
            .args(["-rhoE", "\"[A-Z][A-Za-z0-9]+\"", "--include=*.rs", dir])
            .output()
            .unwrap();
        sources.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    for entry in read {
        let name = entry[0].as_str().unwrap();
        let dims: Vec<&str> = entry[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        let written_by = if name == "PaymentFailures" {
            vec![vec!["Function"], vec!["Function", "Code"]]
        } else {
            vec![vec!["Function"]]
        };
        assert!(
            written_by.contains(&dims),
            "{name} is read by {dims:?}, written by {written_by:?}"
        );
        assert!(
            sources.lines().any(|l| l == format!("\"{name}\"")),
            "no function writes {name}"
        );
    }
}

/// The local emulator's own query (infra/local/moto_server.py reads one partition of the table,
/// and an index's items unsorted) answers 150 random queries, page by page, as moto's does.
#[test]
fn the_emulators_faster_query_answers_as_motos_own() {
    let compared = python(&["tests/moto_patches.py"]);
    assert_eq!(compared["queries"], 150, "{compared}");
    assert!(compared["items"].as_u64() > Some(1_000), "{compared}");
}
