//! The template's KMS grants, enforced: each function may do with KMS only what its policy
//! statements in template.yaml allow, as IAM would decide in AWS. Field keys are scoped by the
//! `field` of their encryption context (docs/SECURITY.md), so a grant that is too narrow fails the
//! end-to-end tests here instead of production, and one that is too wide is visible in the template.
//!
//! Only what the template uses is understood: `Allow` statements, actions `kms:<Operation>` or
//! `kms:*`, resources `*` or key ARNs, and `StringEquals` on `kms:EncryptionContext:<key>` (a list of
//! values is any of them). Anything else in a condition refuses, as an unmet condition does.
//!
//! `LOCAL_KMS_GRANTS=audit` in the runner's environment logs every data-key call with its field and
//! every refusal, and refuses nothing: how a developer finds the fields a new code path needs.
//! A function run by `cargo lambda watch` with the runner's `--env-file` talks to the tools' front,
//! which has no grants and checks nothing.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One `Allow` statement of a function's policy that names KMS actions (resolved by provision.py).
#[derive(Debug, Clone, Deserialize)]
pub struct KmsGrant {
    actions: Vec<String>,
    resources: Vec<String>,
    /// Operator → condition key → the values any of which satisfies it.
    #[serde(default)]
    conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// The part of a KMS request the grants are decided on.
#[derive(Debug)]
pub struct KmsRequest<'a> {
    pub operation: &'a str,
    /// The key the request names (a key id or ARN), if it names one.
    pub key_id: Option<&'a str>,
    pub context: BTreeMap<String, String>,
}

impl<'a> KmsRequest<'a> {
    pub fn from_body(operation: &'a str, body: &'a Value) -> Self {
        let context = body["EncryptionContext"]
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            operation,
            key_id: body["KeyId"].as_str(),
            context,
        }
    }

    pub fn field(&self) -> &str {
        self.context.get("field").map_or("-", String::as_str)
    }
}

impl KmsGrant {
    fn allows(&self, request: &KmsRequest) -> bool {
        let action = format!("kms:{}", request.operation);
        let acts = self
            .actions
            .iter()
            .any(|a| a == "kms:*" || a.eq_ignore_ascii_case(&action));
        let on = self.resources.iter().any(|resource| {
            resource == "*"
                || request.key_id.is_some_and(|key| {
                    // A key id or a key ARN, as the request gives it.
                    let id = key.rsplit_once("key/").map_or(key, |(_, id)| id);
                    resource == key || resource.ends_with(&format!(":key/{id}"))
                })
        });
        acts && on && self.conditions_hold(request)
    }

    fn conditions_hold(&self, request: &KmsRequest) -> bool {
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

/// Whether any of a function's grants allows the request.
pub fn allowed(grants: &[KmsGrant], request: &KmsRequest) -> bool {
    grants.iter().any(|grant| grant.allows(request))
}

/// Whether grants are only logged (`LOCAL_KMS_GRANTS=audit`), not enforced.
pub fn audit_only() -> bool {
    std::env::var("LOCAL_KMS_GRANTS").is_ok_and(|v| v == "audit")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(value: Value) -> KmsGrant {
        serde_json::from_value(value).unwrap()
    }

    const DATA_KEY: &str = "arn:aws:kms:ap-northeast-2:123456789012:key/0c1d";

    fn field_grant() -> KmsGrant {
        grant(json!({
            "actions": ["kms:GenerateDataKey", "kms:Decrypt"],
            "resources": [DATA_KEY],
            "conditions": {"StringEquals": {
                "kms:EncryptionContext:app": ["ordersync"],
                "kms:EncryptionContext:field": ["email", "name"]}}
        }))
    }

    fn decrypt(key: &str, field: &str) -> Value {
        json!({"KeyId": key, "CiphertextBlob": "AA==",
            "EncryptionContext": {"app": "ordersync", "table": "t", "field": field}})
    }

    #[test]
    fn a_field_grant_opens_its_fields_only() {
        let grants = [field_grant()];
        for (field, expected) in [("email", true), ("name", true), ("paymentKey", false)] {
            let body = decrypt("0c1d", field);
            let request = KmsRequest::from_body("Decrypt", &body);
            assert_eq!(allowed(&grants, &request), expected, "{field}");
        }
    }

    #[test]
    fn a_missing_context_key_fails_the_condition() {
        let body = json!({"KeyId": "0c1d", "EncryptionContext": {"app": "ordersync"}});
        let request = KmsRequest::from_body("Decrypt", &body);
        assert!(!allowed(&[field_grant()], &request));
    }

    #[test]
    fn actions_and_keys_are_matched() {
        let grants = [field_grant()];
        let other_key = decrypt("ffff", "email");
        assert!(!allowed(
            &grants,
            &KmsRequest::from_body("Decrypt", &other_key)
        ));
        let by_arn = decrypt(DATA_KEY, "email");
        assert!(allowed(&grants, &KmsRequest::from_body("Decrypt", &by_arn)));
        let sign = json!({"KeyId": "0c1d"});
        assert!(!allowed(&grants, &KmsRequest::from_body("Sign", &sign)));
        let everything = grant(json!({"actions": ["kms:*"], "resources": ["*"]}));
        assert!(allowed(
            &[everything],
            &KmsRequest::from_body("Sign", &sign)
        ));
    }

    #[test]
    fn an_operator_not_understood_refuses() {
        let odd = grant(json!({"actions": ["kms:Decrypt"], "resources": ["*"],
            "conditions": {"StringLike": {"kms:EncryptionContext:field": ["*"]}}}));
        let body = decrypt("0c1d", "email");
        assert!(!allowed(&[odd], &KmsRequest::from_body("Decrypt", &body)));
    }
}
