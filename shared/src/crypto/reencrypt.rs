//! Re-encryption of values sealed before a cut-off: after a key rotation, a suspected data-key
//! exposure, or a format change, every sealed attribute whose data key is older than the cut-off is
//! opened and sealed again under a fresh data key.
//!
//! - Resumable: it works through the table a page at a time and returns a cursor; the next run
//!   starts there. Running it twice is harmless (values already newer than the cut-off are skipped).
//! - Safe while traffic flows: each item is rewritten with a condition that its sealed attributes are
//!   still the ones that were read, so a concurrent write is never overwritten (that item is counted
//!   as `changed`; the writer sealed under a current key anyway).
//!
//! Sealed values are recognised among an item's top-level attributes: strings by their `enc1:`
//! prefix, binary values (`super::binary`) by parsing as the sealed format; each is written back
//! in the form it was read in.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{Envelope, KeySource, Location, Sealed};
use crate::error::ApiError;
use crate::storage::{Db, Item, StorageError, s};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReencryptRequest {
    /// Values whose data key was made before this instant (RFC 3339) are re-encrypted.
    pub cutoff: jiff::Timestamp,
    /// Where a previous run stopped.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Items to examine in this run at most.
    #[serde(default = "default_max_items")]
    pub max_items: u32,
}

fn default_max_items() -> u32 {
    1_000
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReencryptReport {
    pub scanned: u64,
    pub values_reencrypted: u64,
    pub items_updated: u64,
    /// Items written by someone else between our read and our write: left as they are.
    pub items_changed: u64,
    /// Present while there is more to do: pass it back as `cursor`.
    pub cursor: Option<String>,
}

fn encode_cursor(key: &Item) -> Option<String> {
    let pk = key.get("PK")?.as_s().ok()?;
    let sk = key.get("SK")?.as_s().ok()?;
    let json = serde_json::to_vec(&[pk, sk]).ok()?;
    Some(URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(cursor: &str) -> Result<Item, ApiError> {
    let bad = || ApiError::validation("cursor", "not a cursor this job returned");
    let json = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let [pk, sk]: [String; 2] = serde_json::from_slice(&json).map_err(|_| bad())?;
    Ok(crate::storage::key(pk, sk))
}

/// One run. `envelope` must be fresh for the run (an empty key cache), so that every new value is
/// sealed under a data key made after the cut-off.
pub async fn run<S: KeySource>(
    db: &Db,
    envelope: &Envelope<S>,
    request: &ReencryptRequest,
) -> Result<ReencryptReport, ApiError> {
    if request.cutoff > jiff::Timestamp::now() {
        return Err(ApiError::validation("cutoff", "must not be in the future"));
    }
    let cutoff_ms = request.cutoff.as_millisecond().max(0) as u64;
    let mut report = ReencryptReport::default();
    let mut start = request.cursor.as_deref().map(decode_cursor).transpose()?;
    loop {
        let remaining = u64::from(request.max_items).saturating_sub(report.scanned);
        if remaining == 0 {
            report.cursor = start.as_ref().and_then(encode_cursor);
            return Ok(report);
        }
        let page = db
            .client()
            .scan()
            .table_name(db.table())
            .consistent_read(true)
            .limit(remaining.min(100) as i32)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(StorageError::from_sdk)?;
        for item in page.items.unwrap_or_default() {
            report.scanned += 1;
            reencrypt_item(db, envelope, item, cutoff_ms, &mut report).await?;
        }
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(report),
        }
    }
}

async fn reencrypt_item<S: KeySource>(
    db: &Db,
    envelope: &Envelope<S>,
    item: Item,
    cutoff_ms: u64,
    report: &mut ReencryptReport,
) -> Result<(), ApiError> {
    let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
        (item.get("PK"), item.get("SK"))
    else {
        return Ok(());
    };
    // (attribute, value as read, value to write)
    let mut replacements: Vec<(String, AttributeValue, AttributeValue)> = Vec::new();
    for (field, value) in &item {
        let sealed = match value {
            AttributeValue::S(text) => Sealed::from_stored(text),
            AttributeValue::B(bytes) => Sealed::from_binary(bytes.as_ref()),
            _ => None,
        };
        let Some(sealed) = sealed else {
            continue;
        };
        if sealed.key_time()? >= cutoff_ms {
            continue;
        }
        let at = Location {
            table: db.table(),
            pk,
            sk,
            field,
        };
        let plaintext = envelope.open(&at, &sealed).await?;
        let fresh = envelope.seal(&at, &plaintext).await?;
        let fresh = match value {
            AttributeValue::B(_) => AttributeValue::B(fresh.to_binary()?.into()),
            _ => s(fresh.as_str()),
        };
        replacements.push((field.clone(), value.clone(), fresh));
    }
    if replacements.is_empty() {
        return Ok(());
    }
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut sets = Vec::new();
    let mut conditions = Vec::new();
    for (i, (field, old, new)) in replacements.iter().enumerate() {
        names.insert(format!("#f{i}"), field.clone());
        values.insert(format!(":old{i}"), old.clone());
        values.insert(format!(":new{i}"), new.clone());
        sets.push(format!("#f{i} = :new{i}"));
        conditions.push(format!("#f{i} = :old{i}"));
    }
    let result = db
        .client()
        .update_item()
        .table_name(db.table())
        .set_key(Some(crate::storage::key(pk.clone(), sk.clone())))
        .update_expression(format!("SET {}", sets.join(", ")))
        .condition_expression(conditions.join(" AND "))
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .send()
        .await
        .map_err(StorageError::from_sdk);
    match result {
        Ok(_) => {
            report.items_updated += 1;
            report.values_reencrypted += replacements.len() as u64;
        }
        Err(StorageError::ConditionFailed) => report.items_changed += 1,
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = crate::storage::key("USER#1", "PROFILE");
        let cursor = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&cursor).unwrap(), key);
        assert_eq!(decode_cursor("%%%").unwrap_err().status.as_u16(), 422);
        assert_eq!(
            decode_cursor(&URL_SAFE_NO_PAD.encode("[1]"))
                .unwrap_err()
                .code,
            "VALIDATION_FAILED"
        );
    }
}
