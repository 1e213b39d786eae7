//! The items a DynamoDB call names — by key, or whole for a put — with their tables: what the
//! front checks against DynamoDB's key limits (`key_limits`) and what the meter reads before a
//! write (`front::images`).

use serde_json::{Map, Value};

/// One item a call names.
pub struct Named<'r> {
    pub table: &'r str,
    /// The item's key, or the whole item for a put.
    pub key: &'r Map<String, Value>,
    /// Part of a transaction (DynamoDB bills it twice).
    pub transactional: bool,
    /// A transaction's condition check: read, not written.
    pub check: bool,
    /// Named to be read (a get, a batch get, a transaction's get), not written.
    pub read: bool,
}

/// The items `request` names, for DynamoDB's `operation`.
pub fn named<'r>(operation: &str, request: &'r Value) -> Vec<Named<'r>> {
    let table = |v: &'r Value| v["TableName"].as_str().unwrap_or_default();
    let mut items = Vec::new();
    let mut push = |table: &'r str, key: &'r Value, transactional, check, read| {
        if let Some(key) = key.as_object() {
            items.push(Named {
                table,
                key,
                transactional,
                check,
                read,
            });
        }
    };
    match operation {
        "GetItem" => push(table(request), &request["Key"], false, false, true),
        "DeleteItem" | "UpdateItem" => push(table(request), &request["Key"], false, false, false),
        "PutItem" => push(table(request), &request["Item"], false, false, false),
        "BatchGetItem" | "BatchWriteItem" => {
            for (name, asked) in request["RequestItems"].as_object().into_iter().flatten() {
                for key in asked["Keys"].as_array().into_iter().flatten() {
                    push(name, key, false, false, true);
                }
                for write in asked.as_array().into_iter().flatten() {
                    push(name, &write["PutRequest"]["Item"], false, false, false);
                    push(name, &write["DeleteRequest"]["Key"], false, false, false);
                }
            }
        }
        "TransactGetItems" | "TransactWriteItems" => {
            for item in request["TransactItems"].as_array().into_iter().flatten() {
                for (kind, field) in [
                    ("Get", "Key"),
                    ("Put", "Item"),
                    ("Update", "Key"),
                    ("Delete", "Key"),
                    ("ConditionCheck", "Key"),
                ] {
                    let action = &item[kind];
                    push(
                        table(action),
                        &action[field],
                        true,
                        kind == "ConditionCheck",
                        kind == "Get",
                    );
                }
            }
        }
        _ => {}
    }
    items
}
