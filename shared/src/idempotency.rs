//! Idempotent requests, with AWS Powertools' semantics: a client's `Idempotency-Key` (scoped to the
//! caller and the operation) runs the operation once; the same key with the same body replays the
//! first response; with another body it is refused (422); while the first is still running, a
//! duplicate is refused (409). Records expire after 24 hours.
//!
//! The record is claimed `IN_PROGRESS` with a conditional write before any work, and completed inside
//! the operation's own transaction (see [`Claim::complete`]), so the result and the record commit
//! together or not at all. A claim carries its request's random token, so when the claim's answer is
//! lost and the SDK sends it again, the claim it then finds standing is known for its own, not a
//! duplicate's (which would have refused the request with 409 until the claim expired).
//!
//! The stored response is sealed (`crate::crypto`): responses carry personal data, which never rests
//! in the table in the clear. It is deflated first and stored as binary, so
//! a completed record stays under a kilobyte: the completion is written in a transaction, which
//! bills twice per kilobyte.

use std::cell::RefCell;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::crypto::{Location, Sealed};
use crate::error::ApiError;
use crate::storage::{StorageError, key, n, s};

pub const RECORD_SECONDS: i64 = 24 * 3600;
/// How long a claim holds against duplicates if its request dies without completing or abandoning.
const IN_PROGRESS_SECONDS: i64 = 30;
const SK: &str = "IDEMPOTENCY";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    status: String,
    request_hash: String,
    /// The claiming request's own random token. It makes each claim's item unique, so a claim that
    /// meets its very item (`Db::put_or_standing`: the SDK's repeat of a claim whose answer was
    /// lost) is this request's, never a concurrent one's with the same key and body; completing or
    /// abandoning a claim holds only over it. 0 in records from before.
    #[serde(default)]
    claim: u64,
    in_progress_until: i64,
    expires_at: i64,
    #[serde(default)]
    response_status: Option<u16>,
    /// Written by [`Claim::complete`] alone.
    #[serde(default, skip_serializing, deserialize_with = "stored_response")]
    response_body: Option<StoredResponse>,
}

/// A completed record's response, sealed: binary and deflated before sealing, or, in a record
/// completed by a version before that (within a day of its deployment), text as it was.
#[derive(Debug, Clone)]
enum StoredResponse {
    Text(Sealed),
    Deflated(Sealed),
}

fn stored_response<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<StoredResponse>, D::Error> {
    struct Stored;

    impl serde::de::Visitor<'_> for Stored {
        type Value = Option<StoredResponse>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a sealed response (binary, or enc1: text)")
        }

        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
            Sealed::from_binary(bytes)
                .map(|sealed| Some(StoredResponse::Deflated(sealed)))
                .ok_or_else(|| E::custom("a malformed sealed value"))
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Sealed::from_stored(text)
                .map(|sealed| Some(StoredResponse::Text(sealed)))
                .ok_or_else(|| E::custom("a malformed sealed value"))
        }
    }

    deserializer.deserialize_any(Stored)
}

fn body_location<'a>(app: &'a App, pk: &'a str) -> Location<'a> {
    Location {
        table: app.db.table(),
        pk,
        sk: SK,
        field: "responseBody",
    }
}

thread_local! {
    // A compressor's state is hundreds of kilobytes of tables, allocated and zeroed when made:
    // one per instance, reset for each response, takes an order's response from 20 to 15 µs,
    // sealing included (`cargo bench -p shared --bench crypto`; sealing alone is 2).
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
    static DECOMPRESSOR: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// A response's bytes, deflated: JSON of an order shrinks by about a third. (Public for
/// `cargo bench -p shared --bench crypto`.)
pub fn deflate(body: &str) -> Result<Vec<u8>, ApiError> {
    let input = body.as_bytes();
    COMPRESSOR.with_borrow_mut(|compressor| {
        compressor.reset();
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        loop {
            let read = usize::try_from(compressor.total_in()).map_err(ApiError::internal)?;
            let rest = input.get(read..).unwrap_or_default();
            match compressor
                .compress_vec(rest, &mut out, FlushCompress::Finish)
                .map_err(ApiError::internal)?
            {
                Status::StreamEnd => return Ok(out),
                // Out of room: more, and on.
                Status::Ok | Status::BufError => out.reserve(out.capacity().max(64)),
            }
        }
    })
}

/// What [`deflate`] made, back.
pub fn inflate(deflated: &[u8]) -> Result<String, ApiError> {
    DECOMPRESSOR.with_borrow_mut(|decompressor| {
        decompressor.reset(false);
        let mut out = Vec::with_capacity(deflated.len() * 3 + 64);
        loop {
            let read = usize::try_from(decompressor.total_in()).map_err(ApiError::internal)?;
            let rest = deflated.get(read..).unwrap_or_default();
            let before = (decompressor.total_in(), decompressor.total_out());
            let status = decompressor
                .decompress_vec(rest, &mut out, FlushDecompress::None)
                .map_err(ApiError::internal)?;
            if status == Status::StreamEnd {
                break;
            }
            let full = out.len() == out.capacity();
            if !full && before == (decompressor.total_in(), decompressor.total_out()) {
                // Room left, nothing taken: the stream ends before its end.
                return Err(ApiError::internal("a truncated deflate stream"));
            }
            if full {
                out.reserve(out.capacity());
            }
        }
        String::from_utf8(out).map_err(ApiError::internal)
    })
}

/// A claimed key: the operation may run.
#[derive(Debug, Clone)]
pub struct Claim {
    pk: String,
    token: u64,
}

pub enum Begin {
    Run(Claim),
    /// The operation already ran with this key and this body: its response.
    Replay {
        status: u16,
        body: String,
    },
}

/// The hash a request is compared by: its JSON document in canonical form (keys sorted, no
/// whitespace), so formatting differences do not count as a different body.
pub fn request_hash(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|_| body.to_vec());
    format!("{:x}", Sha256::digest(&canonical))
}

pub fn validate_key(key: &str) -> Result<(), ApiError> {
    let ok = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "IDEMPOTENCY_KEY_INVALID",
            "Idempotency-Key: 1 to 255 visible ASCII characters",
        ))
    }
}

/// Claims `key` for `scope` (caller and operation), or says why not.
pub async fn begin(
    app: &App,
    scope: &str,
    key: &str,
    request_hash: String,
) -> Result<Begin, ApiError> {
    validate_key(key)?;
    let db = &app.db;
    let now = jiff::Timestamp::now().as_second();
    let pk = format!(
        "IDEMPOTENCY#{:x}",
        Sha256::digest(format!("{scope}\n{key}"))
    );
    // Never 0, the token of records from before tokens.
    let token = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
    let record = Record {
        pk: pk.clone(),
        sk: SK.to_owned(),
        status: "IN_PROGRESS".to_owned(),
        request_hash: request_hash.clone(),
        claim: token,
        in_progress_until: now + IN_PROGRESS_SECONDS,
        expires_at: now + RECORD_SECONDS,
        response_status: None,
        response_body: None,
    };
    let claim = db
        .client()
        .put_item()
        .table_name(db.table())
        .condition_expression(
            "attribute_not_exists(PK) OR expiresAt < :now \
             OR (#status = :in_progress AND inProgressUntil < :now)",
        )
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":in_progress", s("IN_PROGRESS"));
    let existing: Record = match db
        .put_or_standing(claim, crate::storage::to_item(&record)?)
        .await
    {
        Ok(None) => return Ok(Begin::Run(Claim { pk, token })),
        Ok(Some(standing)) => crate::storage::from_item(standing)?,
        // Refused, and yet no record stands: it went meanwhile.
        Err(StorageError::ConditionFailed) => {
            return Err(ApiError::conflict(
                "REQUEST_IN_PROGRESS",
                "retry in a moment",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    if existing.request_hash != request_hash {
        return Err(ApiError::new(
            lambda_http::http::StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with a different request",
        ));
    }
    match (
        existing.status.as_str(),
        existing.response_status,
        existing.response_body,
    ) {
        ("COMPLETED", Some(status), Some(stored)) => {
            let crypto = app.crypto();
            let at = body_location(app, &pk);
            let body = match stored {
                StoredResponse::Deflated(sealed) => inflate(&crypto.open(&at, &sealed).await?)?,
                StoredResponse::Text(sealed) => crypto.open_str(&at, &sealed).await?,
            };
            Ok(Begin::Replay { status, body })
        }
        _ => Err(ApiError {
            retry_after: Some(1),
            ..ApiError::conflict(
                "REQUEST_IN_PROGRESS",
                "a request with this Idempotency-Key is still being processed",
            )
        }),
    }
}

impl Claim {
    /// The transaction action that records the response; fails the transaction if the claim is no
    /// longer this request's (it expired and another request took it over).
    pub async fn complete(
        &self,
        app: &App,
        status: u16,
        body: &str,
    ) -> Result<TransactWriteItem, ApiError> {
        let db = &app.db;
        let sealed = app
            .crypto()
            .seal(&body_location(app, &self.pk), &deflate(body)?)
            .await?;
        let sealed = sealed.to_binary().map_err(ApiError::internal)?;
        let update = Update::builder()
            .table_name(db.table())
            .set_key(Some(key(&self.pk, SK)))
            .update_expression("SET #status = :completed, responseStatus = :rs, responseBody = :rb")
            .condition_expression("#status = :in_progress AND claim = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s("COMPLETED"))
            .expression_attribute_values(":in_progress", s("IN_PROGRESS"))
            .expression_attribute_values(":token", n(self.token))
            .expression_attribute_values(":rs", n(status))
            .expression_attribute_values(":rb", AttributeValue::B(Blob::new(sealed)))
            .build()
            .map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Releases the claim after a failure, so the client may retry with the same key (unless it
    /// expired and another request holds it now).
    pub async fn abandon(self, app: &App) {
        let db = &app.db;
        let released = db
            .client()
            .delete_item()
            .table_name(db.table())
            .set_key(Some(key(&self.pk, SK)))
            .condition_expression("#status = :in_progress AND claim = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s("IN_PROGRESS"))
            .expression_attribute_values(":token", n(self.token))
            .send()
            .await;
        if let Err(err) = released {
            // The claim expires by itself; a duplicate meanwhile gets a 409 and retries.
            tracing::warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(err), "idempotency claim not released");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_does_not_change_the_hash_but_content_does() {
        let a = request_hash(br#"{"b": 1, "a": [1, 2]}"#);
        assert_eq!(a, request_hash(br#"{"a":[1,2],"b":1}"#));
        assert_ne!(a, request_hash(br#"{"a":[2,1],"b":1}"#));
    }

    #[test]
    fn a_response_is_kept_deflated_and_read_back_whole() {
        // An order create's response: a latte with an option, picked up.
        let body = r#"{"orderId":"ord_8d073cd10eff41cc8be0260587a3ca96","storeId":"278987d848454479afdcb2c7634b6314","customerId":"fb95a687-50e0-4acb-80b0-0a35e1af1b68","status":"PENDING_PAYMENT","version":1,"lines":[{"itemId":"latte","name":"카페라떼","quantity":2,"unitPrice":5000,"options":[{"groupId":"size","valueId":"large","name":"Large","price":500}],"lineTotal":11000}],"total":11000,"orderName":"카페라떼 외 0건","menuVersion":3,"fulfilment":{"type":"PICKUP"},"phone":"010-1234-5678","createdAt":"2026-12-05T19:30:12.345Z","updatedAt":"2026-12-05T19:30:12.345Z","paymentDueAt":"2026-12-05T19:45:12.345Z"}"#;
        let deflated = deflate(body).unwrap();
        // The saving that keeps a completed record under a kilobyte (DATA_MODEL.md).
        assert!(
            deflated.len() * 10 <= body.len() * 7,
            "{} of {} bytes",
            deflated.len(),
            body.len()
        );
        assert_eq!(inflate(&deflated).unwrap(), body);
        // The instance's compressor starts afresh each time.
        assert_eq!(deflate(body).unwrap(), deflated);
        assert!(inflate(b"not deflate").is_err());
        assert!(inflate(&deflated[..deflated.len() / 2]).is_err());
        // A listing-sized response that shrinks far more than a third (its buffers grow).
        let long = body.repeat(40);
        let small = deflate(&long).unwrap();
        assert!(small.len() * 10 < long.len());
        assert_eq!(inflate(&small).unwrap(), long);
    }

    #[test]
    fn a_completed_record_reads_its_response_in_either_form() {
        let sealed = crate::crypto::format::encode(1, &[7; 184], &[0; 12], &[0; 16]).unwrap();
        let record = |body: AttributeValue| {
            let mut item = crate::storage::to_item(&Record {
                pk: "IDEMPOTENCY#k".to_owned(),
                sk: SK.to_owned(),
                status: "COMPLETED".to_owned(),
                request_hash: "h".to_owned(),
                claim: 7,
                in_progress_until: 0,
                expires_at: 0,
                response_status: Some(201),
                response_body: None,
            })
            .unwrap();
            assert!(!item.contains_key("responseBody"));
            item.insert("responseBody".to_owned(), body);
            crate::storage::from_item::<Record>(item).map(|r| r.response_body)
        };
        let binary = record(AttributeValue::B(Blob::new(sealed.clone()))).unwrap();
        assert!(
            matches!(binary, Some(StoredResponse::Deflated(s)) if s.to_binary().unwrap() == sealed)
        );
        let text = Sealed::from_binary(&sealed).unwrap().as_str().to_owned();
        let before = record(AttributeValue::S(text.clone())).unwrap();
        assert!(matches!(before, Some(StoredResponse::Text(s)) if s.as_str() == text));
        assert!(record(AttributeValue::S("in the clear".to_owned())).is_err());
        assert!(record(AttributeValue::B(Blob::new(b"not sealed".to_vec()))).is_err());
    }

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(validate_key("3f6a1c0e-9b7d-4e2a-8c55-0d1e2f3a4b5c").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("has space").is_err());
        assert!(validate_key(&"k".repeat(256)).is_err());
        assert_eq!(
            validate_key("키").unwrap_err().code,
            "IDEMPOTENCY_KEY_INVALID"
        );
    }
}
