//! The template's IAM grants, enforced: each function may call AWS only as its policy statements
//! in template.yaml allow, as IAM would decide in AWS. A grant that is too narrow — an action
//! missing, a table's index left out, a data key's `field` not named — fails the end-to-end tests
//! here instead of production; one that is too wide is visible in the template (and KMS's are
//! refused by `tests/project.rs`).
//!
//! What a call needs, as IAM's service authorization reference has it:
//!
//! - **DynamoDB**: `dynamodb:<Operation>` on the table it names, or on the index for a `Query` or a
//!   `Scan` of one. A `TransactWriteItems` needs each item's own action on its table (`PutItem`,
//!   `UpdateItem`, `DeleteItem`, `ConditionCheckItem`), a `TransactGetItems` `GetItem`; a
//!   `BatchGetItem` or `BatchWriteItem` needs itself on every table it names.
//! - **SQS**: `sqs:<Operation>` on the queue its `QueueUrl` names; a batch operation needs its
//!   single form (`SendMessageBatch` → `sqs:SendMessage`).
//! - **S3** (path-style requests): `s3:GetObject` (also for `HeadObject`), `s3:PutObject`,
//!   `s3:DeleteObject` on `arn:aws:s3:::<bucket>/<key>`; `ListObjectsV2` `s3:ListBucket` on the
//!   bucket.
//! - **The WebSocket API's Management API**: `execute-api:ManageConnections` on
//!   `arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/@connections/<id>` (a post
//!   is `POST`, a close `DELETE`).
//! - **KMS**: `kms:<Operation>` on the key the request names (its id or ARN), and `StringEquals` on
//!   `kms:EncryptionContext:<key>` (a list of values is any of them). Field keys are scoped by the
//!   `field` of their encryption context (docs/SECURITY.md).
//!
//! A presigned URL's request (a menu image, a report's export) is decided on the grants of the
//! function that signed it, as IAM decides it; a browser's upload by a presigned POST policy, whose
//! credential is in its form, is not checked here.
//!
//! Only what the template uses is understood: `Allow` statements, actions and resources with IAM's
//! `*` and `?` wildcards, and that one condition. Anything else in a condition refuses, as an unmet
//! condition does; so does a call of another service, or one this module cannot read.
//!
//! `LOCAL_GRANTS=audit` in the runner's environment logs every data-key call with its field and
//! every refusal, and refuses nothing: how a developer finds what a new code path needs. A function
//! run by `cargo lambda watch` with the runner's `--env-file` talks to the tools' front, which has
//! no grants and checks nothing.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The account the local stack's ARNs carry (moto's default, as `infra/local/provision.py` has it).
const ACCOUNT: &str = "123456789012";

/// One `Allow` statement of a function's policy (resolved by provision.py).
#[derive(Debug, Clone, Deserialize)]
pub struct Grant {
    actions: Vec<String>,
    resources: Vec<String>,
    /// Operator → condition key → the values any of which satisfies it.
    #[serde(default)]
    conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// One action a call needs, on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: String,
    pub resource: String,
}

/// The part of an AWS call the grants are decided on.
#[derive(Debug)]
pub struct AwsRequest {
    /// Every action the call needs, each on its resource; empty when the call could not be read
    /// (then nothing allows it).
    pub needs: Vec<Need>,
    /// A KMS request's encryption context.
    pub context: BTreeMap<String, String>,
}

impl AwsRequest {
    /// The request `service` (its signing name) makes with `operation`, in `region`, with its
    /// HTTP method and path: an S3 request's is `/<bucket>/<key>`, a Management API request's
    /// `/<api id>/<stage>/@connections/<id>`; `body` is a JSON protocol's.
    pub fn new(
        service: &str,
        operation: &str,
        region: &str,
        (method, path): (&str, &str),
        body: &[u8],
    ) -> Self {
        let json: Value = if matches!(service, "s3" | "execute-api") {
            Value::Null
        } else {
            serde_json::from_slice(body).unwrap_or_default()
        };
        let needs = match service {
            "dynamodb" => dynamodb_needs(operation, region, &json),
            "sqs" => sqs_needs(operation, region, &json),
            "s3" => s3_needs(operation, path),
            "execute-api" => connection_needs(region, method, path),
            "kms" => vec![Need {
                action: format!("kms:{operation}"),
                resource: json["KeyId"].as_str().unwrap_or("*").to_owned(),
            }],
            _ => Vec::new(),
        };
        let context = json["EncryptionContext"]
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Self { needs, context }
    }

    pub fn field(&self) -> &str {
        self.context.get("field").map_or("-", String::as_str)
    }
}

fn need(action: String, resource: String) -> Need {
    Need { action, resource }
}

fn table_arn(region: &str, table: &str) -> String {
    format!("arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}")
}

fn dynamodb_needs(operation: &str, region: &str, body: &Value) -> Vec<Need> {
    let on_table = |action: &str, item: &Value| {
        item["TableName"]
            .as_str()
            .map(|table| need(format!("dynamodb:{action}"), table_arn(region, table)))
    };
    let tables = |action: &str| -> Vec<Need> {
        body["RequestItems"]
            .as_object()
            .into_iter()
            .flat_map(|tables| tables.keys())
            .map(|table| need(format!("dynamodb:{action}"), table_arn(region, table)))
            .collect()
    };
    match operation {
        "TransactWriteItems" | "TransactGetItems" => {
            let mut needs = Vec::new();
            for entry in body["TransactItems"].as_array().into_iter().flatten() {
                for (kind, action) in [
                    ("Put", "PutItem"),
                    ("Update", "UpdateItem"),
                    ("Delete", "DeleteItem"),
                    ("ConditionCheck", "ConditionCheckItem"),
                    ("Get", "GetItem"),
                ] {
                    needs.extend(on_table(action, &entry[kind]));
                }
            }
            needs
        }
        "BatchGetItem" | "BatchWriteItem" => tables(operation),
        "Query" | "Scan" => on_table(operation, body)
            .map(|mut n| {
                if let Some(index) = body["IndexName"].as_str() {
                    n.resource = format!("{}/index/{index}", n.resource);
                }
                n
            })
            .into_iter()
            .collect(),
        _ => on_table(operation, body).into_iter().collect(),
    }
}

fn sqs_needs(operation: &str, region: &str, body: &Value) -> Vec<Need> {
    let action = operation.strip_suffix("Batch").unwrap_or(operation);
    // `http(s)://<host>/<account>/<queue name>`
    let Some(name) = body["QueueUrl"]
        .as_str()
        .and_then(|url| url.rsplit('/').next())
    else {
        return Vec::new();
    };
    vec![need(
        format!("sqs:{action}"),
        format!("arn:aws:sqs:{region}:{ACCOUNT}:{name}"),
    )]
}

fn s3_needs(operation: &str, path: &str) -> Vec<Need> {
    let path = path.trim_start_matches('/');
    let action = match operation {
        "HeadObject" => "GetObject",
        "ListObjectsV2" => "ListBucket",
        other => other,
    };
    vec![need(format!("s3:{action}"), format!("arn:aws:s3:::{path}"))]
}

fn connection_needs(region: &str, method: &str, path: &str) -> Vec<Need> {
    // `/<api id>/<stage>/@connections/<id>` → `<api id>/<stage>/<METHOD>/@connections/<id>`
    let Some((api, stage, connection)) = path
        .trim_start_matches('/')
        .splitn(3, '/')
        .collect::<Vec<_>>()
        .try_into()
        .ok()
        .map(|[api, stage, rest]: [&str; 3]| (api, stage, rest))
    else {
        return Vec::new();
    };
    if !connection.starts_with("@connections/") {
        return Vec::new();
    }
    vec![need(
        "execute-api:ManageConnections".to_owned(),
        format!("arn:aws:execute-api:{region}:{ACCOUNT}:{api}/{stage}/{method}/{connection}"),
    )]
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (none included)
/// and `?` for any one, as in IAM's actions and resources.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // The last `*` seen, and where in `text` its run would end if it took one more character.
    let (mut pi, mut ti, mut star): (usize, usize, Option<(usize, usize)>) = (0, 0, None);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Grant {
    fn allows(&self, need: &Need, request: &AwsRequest) -> bool {
        // Actions are matched without regard to case, as IAM matches them.
        let action = need.action.to_ascii_lowercase();
        let acts = self
            .actions
            .iter()
            .any(|a| wildcard(&a.to_ascii_lowercase(), &action));
        let on = self.resources.iter().any(|resource| {
            if need.action.starts_with("kms:") {
                // A key id or a key ARN, as the request gives it.
                let key = need.resource.as_str();
                let id = key.rsplit_once("key/").map_or(key, |(_, id)| id);
                resource == "*" || resource == key || resource.ends_with(&format!(":key/{id}"))
            } else {
                wildcard(resource, &need.resource)
            }
        });
        acts && on && self.conditions_hold(request)
    }

    fn conditions_hold(&self, request: &AwsRequest) -> bool {
        self.conditions.iter().all(|(operator, tests)| {
            operator == "StringEquals"
                && tests.iter().all(|(key, allowed)| {
                    key.strip_prefix("kms:EncryptionContext:")
                        .and_then(|name| request.context.get(name))
                        .is_some_and(|value| allowed.contains(value))
                })
        })
    }
}

/// What the request needs that none of a function's grants allows (empty: allowed). A request
/// that could not be read needs what nothing grants.
pub fn refused<'r>(grants: &[Grant], request: &'r AwsRequest) -> Vec<&'r Need> {
    if request.needs.is_empty() {
        static UNREADABLE: std::sync::LazyLock<Need> = std::sync::LazyLock::new(|| Need {
            action: "(a call the local stack cannot read)".to_owned(),
            resource: "*".to_owned(),
        });
        return vec![&*UNREADABLE];
    }
    request
        .needs
        .iter()
        .filter(|need| !grants.iter().any(|grant| grant.allows(need, request)))
        .collect()
}

/// Whether grants are only logged (`LOCAL_GRANTS=audit`), not enforced.
pub fn audit_only() -> bool {
    std::env::var("LOCAL_GRANTS").is_ok_and(|v| v == "audit")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(value: Value) -> Grant {
        serde_json::from_value(value).unwrap()
    }

    const DATA_KEY: &str = "arn:aws:kms:ap-northeast-2:123456789012:key/0c1d";
    const REGION: &str = "ap-northeast-2";
    const TABLE: &str = "arn:aws:dynamodb:ap-northeast-2:123456789012:table/t";

    fn field_grant() -> Grant {
        grant(json!({
            "actions": ["kms:GenerateDataKey", "kms:Decrypt"],
            "resources": [DATA_KEY],
            "conditions": {"StringEquals": {
                "kms:EncryptionContext:app": ["ordersync"],
                "kms:EncryptionContext:field": ["email", "name"]}}
        }))
    }

    fn kms(operation: &str, body: Value) -> AwsRequest {
        AwsRequest::new(
            "kms",
            operation,
            REGION,
            ("POST", "/"),
            body.to_string().as_bytes(),
        )
    }

    fn dynamodb(operation: &str, body: Value) -> AwsRequest {
        AwsRequest::new(
            "dynamodb",
            operation,
            REGION,
            ("POST", "/"),
            body.to_string().as_bytes(),
        )
    }

    fn allowed(grants: &[Grant], request: &AwsRequest) -> bool {
        refused(grants, request).is_empty()
    }

    fn decrypt(key: &str, field: &str) -> Value {
        json!({"KeyId": key, "CiphertextBlob": "AA==",
            "EncryptionContext": {"app": "ordersync", "table": "t", "field": field}})
    }

    #[test]
    fn a_field_grant_opens_its_fields_only() {
        let grants = [field_grant()];
        for (field, expected) in [("email", true), ("name", true), ("paymentKey", false)] {
            let request = kms("Decrypt", decrypt("0c1d", field));
            assert_eq!(allowed(&grants, &request), expected, "{field}");
        }
    }

    #[test]
    fn a_missing_context_key_fails_the_condition() {
        let body = json!({"KeyId": "0c1d", "EncryptionContext": {"app": "ordersync"}});
        assert!(!allowed(&[field_grant()], &kms("Decrypt", body)));
    }

    #[test]
    fn actions_and_keys_are_matched() {
        let grants = [field_grant()];
        assert!(!allowed(&grants, &kms("Decrypt", decrypt("ffff", "email"))));
        assert!(allowed(
            &grants,
            &kms("Decrypt", decrypt(DATA_KEY, "email"))
        ));
        let sign = json!({"KeyId": "0c1d"});
        assert!(!allowed(&grants, &kms("Sign", sign.clone())));
        let everything = grant(json!({"actions": ["kms:*"], "resources": ["*"]}));
        assert!(allowed(&[everything], &kms("Sign", sign)));
    }

    #[test]
    fn an_operator_not_understood_refuses() {
        let odd = grant(json!({"actions": ["kms:Decrypt"], "resources": ["*"],
            "conditions": {"StringLike": {"kms:EncryptionContext:field": ["*"]}}}));
        assert!(!allowed(&[odd], &kms("Decrypt", decrypt("0c1d", "email"))));
    }

    #[test]
    fn a_table_grant_leaves_out_its_indexes_and_the_batch_reads() {
        let grants = [grant(json!({
            "actions": ["dynamodb:GetItem", "dynamodb:Query"], "resources": [TABLE]}))];
        let get = dynamodb("GetItem", json!({"TableName": "t", "Key": {}}));
        assert!(allowed(&grants, &get));
        let query = json!({"TableName": "t", "KeyConditionExpression": "PK = :pk"});
        assert!(allowed(&grants, &dynamodb("Query", query.clone())));
        let mut on_index = query;
        on_index["IndexName"] = json!("GSI1");
        assert!(!allowed(&grants, &dynamodb("Query", on_index.clone())));
        let batch = json!({"RequestItems": {"t": {"Keys": [{}, {}]}}});
        let batch_get = dynamodb("BatchGetItem", batch.clone());
        assert_eq!(
            refused(&grants, &batch_get),
            [&need("dynamodb:BatchGetItem".into(), TABLE.into())]
        );
        let wider = [grant(json!({
            "actions": ["dynamodb:Query", "dynamodb:BatchGetItem"],
            "resources": [TABLE, format!("{TABLE}/index/*")]}))];
        assert!(allowed(&wider, &dynamodb("Query", on_index)));
        assert!(allowed(&wider, &dynamodb("BatchGetItem", batch)));
        let other_table = dynamodb("GetItem", json!({"TableName": "u", "Key": {}}));
        assert!(!allowed(&wider, &other_table));
    }

    #[test]
    fn a_transaction_needs_each_of_its_items_actions() {
        let transaction = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {}}},
            {"Update": {"TableName": "t", "Key": {}, "UpdateExpression": "SET a = :a"}},
            {"ConditionCheck": {"TableName": "t", "Key": {}, "ConditionExpression": "x"}}]});
        let puts_and_updates = [grant(json!({
            "actions": ["dynamodb:PutItem", "dynamodb:UpdateItem"], "resources": [TABLE]}))];
        let request = dynamodb("TransactWriteItems", transaction);
        assert_eq!(
            refused(&puts_and_updates, &request),
            [&need("dynamodb:ConditionCheckItem".into(), TABLE.into())]
        );
        let all = [grant(
            json!({"actions": ["dynamodb:*Item"], "resources": [TABLE]}),
        )];
        assert!(allowed(&all, &request));
    }

    #[test]
    fn queues_and_buckets_are_matched_by_their_arns() {
        let queue = "arn:aws:sqs:ap-northeast-2:123456789012:ordersync-local-Q";
        let grants = [
            grant(json!({"actions": ["sqs:SendMessage"], "resources": [queue]})),
            grant(json!({"actions": ["s3:PutObject"], "resources": ["arn:aws:s3:::b/audit/*"]})),
        ];
        let send = |name: &str| {
            let body = json!({"QueueUrl": format!("http://127.0.0.1:5000/123456789012/{name}"),
                "Entries": []});
            AwsRequest::new(
                "sqs",
                "SendMessageBatch",
                REGION,
                ("POST", "/"),
                body.to_string().as_bytes(),
            )
        };
        assert!(allowed(&grants, &send("ordersync-local-Q")));
        assert!(!allowed(&grants, &send("ordersync-local-DLQ")));
        let put = |path: &str| AwsRequest::new("s3", "PutObject", REGION, ("PUT", path), b"");
        assert!(allowed(&grants, &put("/b/audit/year=2026/month=12/a.gz")));
        assert!(!allowed(&grants, &put("/b/exports/a.csv")));
        assert!(!allowed(
            &grants,
            &AwsRequest::new("s3", "GetObject", REGION, ("GET", "/b/audit/a"), b"")
        ));
    }

    #[test]
    fn what_cannot_be_read_is_refused() {
        let everything = [grant(json!({"actions": ["*"], "resources": ["*"]}))];
        assert!(!allowed(&everything, &dynamodb("GetItem", json!({}))));
        assert!(!allowed(
            &everything,
            &AwsRequest::new("sts", "GetCallerIdentity", REGION, ("POST", "/"), b"")
        ));
    }

    #[test]
    fn a_grant_to_post_to_connections_does_not_close_them() {
        let api = "arn:aws:execute-api:ap-northeast-2:123456789012:api1/dev";
        let post_only = [grant(json!({"actions": ["execute-api:ManageConnections"],
            "resources": [format!("{api}/POST/@connections/*")]}))];
        let call = |method: &str, path: &str| {
            AwsRequest::new("execute-api", "-", REGION, (method, path), b"")
        };
        let post = call("POST", "/api1/dev/@connections/abc%3D");
        assert!(allowed(&post_only, &post));
        let close = call("DELETE", "/api1/dev/@connections/abc%3D");
        assert_eq!(
            refused(&post_only, &close),
            [&need(
                "execute-api:ManageConnections".into(),
                format!("{api}/DELETE/@connections/abc%3D")
            )]
        );
        assert!(!allowed(
            &post_only,
            &call("POST", "/api2/dev/@connections/abc")
        ));
        assert!(!allowed(&post_only, &call("POST", "/api1/dev/other")));
    }

    #[test]
    fn wildcards_are_iams() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "anything", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("t/index/*", "t/index/GSI1", true),
            ("t", "t/index/GSI1", false),
            ("*Item", "dynamodb:getitem", false),
            ("*item", "dynamodb:getitem", true),
            ("a*b*c", "aXbYbZc", true),
        ] {
            assert_eq!(wildcard(pattern, text), expected, "{pattern} ~ {text}");
        }
    }
}
