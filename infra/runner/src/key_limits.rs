//! DynamoDB's limits on the size of a key, which the emulator leaves out of reads: a partition key's
//! value is at most 2,048 bytes, a sort key's 1,024. DynamoDB refuses any call that names a bigger
//! key — a get, a batch get, an update, a delete, a transaction's item, a query's key condition —
//! with a `ValidationException`, and moto answers those as if the item were missing. The front
//! refuses them as DynamoDB does, so that a key built from a client's input without a check fails
//! in the tests as it would on AWS (a 500), not as "not found".

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::dynamodb_items::{Named, named};

pub const PARTITION_KEY_BYTES: usize = 2048;
pub const SORT_KEY_BYTES: usize = 1024;

/// A table's key attributes: its partition key's name, and its sort key's if it has one.
pub struct TableKeys<'a> {
    pub partition: &'a str,
    pub sort: Option<&'a str>,
}

/// The tables a DynamoDB call names.
pub fn tables(operation: &str, request: &Value) -> Vec<String> {
    named(operation, request)
        .into_iter()
        .map(|item| item.table.to_owned())
        .chain(
            (operation == "Query")
                .then(|| request["TableName"].as_str().map(String::from))
                .flatten(),
        )
        .collect()
}

/// DynamoDB's refusal of a call that names a key over its limits (the message it sends), if this
/// one does. `keys_of` gives a table's key attributes.
pub fn refusal<'a>(
    operation: &str,
    request: &Value,
    keys_of: impl Fn(&str) -> Option<TableKeys<'a>>,
) -> Option<&'static str> {
    const PARTITION: &str = "One or more parameter values were invalid: Size of hashkey has \
                             exceeded the maximum size limit of2048 bytes";
    const SORT: &str = "One or more parameter values were invalid: Aggregated size of all range \
                        keys has exceeded the size limit of 1024 bytes";
    for Named { table, key, .. } in named(operation, request) {
        let Some(keys) = keys_of(table) else {
            continue;
        };
        if key.get(keys.partition).map_or(0, size) > PARTITION_KEY_BYTES {
            return Some(PARTITION);
        }
        if keys.sort.and_then(|sort| key.get(sort)).map_or(0, size) > SORT_KEY_BYTES {
            return Some(SORT);
        }
    }
    // A query's key condition: every value it names is a key's (the partition key's limit, the
    // larger, is all that is checked here).
    if operation == "Query" {
        let condition = request["KeyConditionExpression"].as_str().unwrap_or("");
        let values = request["ExpressionAttributeValues"].as_object();
        let too_big = values
            .into_iter()
            .flatten()
            .any(|(name, value)| mentions(condition, name) && size(value) > PARTITION_KEY_BYTES);
        if too_big {
            return Some(PARTITION);
        }
    }
    None
}

/// Whether `expression` names the placeholder `name` (`:pk` in `PK = :pk`, not in `:pk2`).
fn mentions(expression: &str, name: &str) -> bool {
    expression.match_indices(name).any(|(at, _)| {
        !expression[at + name.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// An attribute value's size as DynamoDB counts a key's: a string's UTF-8 bytes, a binary's bytes.
fn size(value: &Value) -> usize {
    if let Some(text) = value["S"].as_str() {
        return text.len();
    }
    value["B"]
        .as_str()
        .and_then(|b| STANDARD.decode(b).ok())
        .map_or(0, |bytes| bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(_: &str) -> Option<TableKeys<'static>> {
        Some(TableKeys {
            partition: "PK",
            sort: Some("SK"),
        })
    }

    #[test]
    fn a_key_over_its_limit_is_refused_wherever_a_call_names_it() {
        let big = |n: usize| json!({"S": "x".repeat(n)});
        let key = |pk: usize, sk: usize| json!({"PK": big(pk), "SK": big(sk)});
        let refused = |operation: &str, request: Value| refusal(operation, &request, keys);
        for (operation, request) in [
            ("GetItem", json!({"TableName": "t", "Key": key(2049, 1)})),
            ("UpdateItem", json!({"TableName": "t", "Key": key(2049, 1)})),
            ("DeleteItem", json!({"TableName": "t", "Key": key(2049, 1)})),
            ("PutItem", json!({"TableName": "t", "Item": key(2049, 1)})),
            (
                "BatchGetItem",
                json!({"RequestItems": {"t": {"Keys": [key(1, 1), key(2049, 1)]}}}),
            ),
            (
                "BatchWriteItem",
                json!({"RequestItems": {"t": [{"DeleteRequest": {"Key": key(2049, 1)}}]}}),
            ),
            (
                "TransactWriteItems",
                json!({"TransactItems": [{"ConditionCheck": {"TableName": "t", "Key": key(2049, 1)}}]}),
            ),
            (
                "TransactGetItems",
                json!({"TransactItems": [{"Get": {"TableName": "t", "Key": key(2049, 1)}}]}),
            ),
            (
                "Query",
                json!({"TableName": "t", "KeyConditionExpression": "#pk = :pk",
                    "ExpressionAttributeValues": {":pk": big(2049)}}),
            ),
        ] {
            let said = refused(operation, request).unwrap_or_else(|| panic!("{operation}"));
            assert!(said.contains("hashkey"), "{operation}: {said}");
        }
        let said = refused("GetItem", json!({"TableName": "t", "Key": key(1, 1025)}));
        assert!(said.is_some_and(|s| s.contains("range keys")));
        // At the limits, and values the condition does not name as keys, pass.
        assert_eq!(
            refused("GetItem", json!({"TableName": "t", "Key": key(2048, 1024)})),
            None
        );
        assert_eq!(
            refused(
                "Query",
                json!({"TableName": "t", "KeyConditionExpression": "PK = :pk",
                    "FilterExpression": "x = :pk2",
                    "ExpressionAttributeValues": {":pk": big(10), ":pk2": big(5000)}})
            ),
            None
        );
        // A key's size is its UTF-8 bytes: 683 Hangul syllables are 2,049 of them.
        assert!(
            refused(
                "GetItem",
                json!({"TableName": "t", "Key": {"PK": {"S": "가".repeat(683)}, "SK": {"S": "x"}}})
            )
            .is_some()
        );
    }
}
