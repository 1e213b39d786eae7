//! The project's pieces agree: every function crate is in template.yaml and every template function
//! has a crate; the OpenAPI spec and the template list the same routes.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

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
