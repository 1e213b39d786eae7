//! DynamoDB access shared by every domain: the table handle, item (de)serialisation through
//! `serde_dynamo`, and one classification of SDK errors into what callers can act on.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A conditional write's condition did not hold.
    #[error("conditional check failed")]
    ConditionFailed,
    /// A transaction was canceled; one reason code (or `None`) per action, in order.
    #[error("transaction canceled: {0:?}")]
    TransactionCanceled(Vec<Option<String>>),
    #[error("throttled by DynamoDB")]
    Throttled,
    /// No answer in time, a lost connection, or a 5xx, after the SDK's own retries: the write may or
    /// may not have happened.
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    #[error("DynamoDB: {0}")]
    Backend(String),
    #[error("item does not match its type: {0}")]
    Malformed(String),
}

impl StorageError {
    /// Whether action `index` of a canceled transaction failed its condition.
    pub fn condition_failed_at(&self, index: usize) -> bool {
        match self {
            Self::TransactionCanceled(reasons) => reasons
                .get(index)
                .and_then(Option::as_deref)
                .is_some_and(|code| code == "ConditionalCheckFailed"),
            _ => false,
        }
    }

    /// Whether a canceled transaction lost to something that passes: throttling, or a conflict
    /// with another transaction on one of its items (DynamoDB's `TransactionConflict`).
    fn transient_reasons(reasons: &[Option<String>]) -> (bool, bool) {
        let has = |codes: &[&str]| {
            reasons
                .iter()
                .flatten()
                .any(|code| codes.contains(&code.as_str()))
        };
        (
            has(&[
                "ThrottlingError",
                "ProvisionedThroughputExceeded",
                "RequestLimitExceeded",
            ]),
            has(&["TransactionConflict"]),
        )
    }

    pub(crate) fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match err.code() {
            Some("ConditionalCheckFailedException") => return Self::ConditionFailed,
            Some(
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded",
            ) => return Self::Throttled,
            // A single write that met a transaction on its item: as a transaction that met another.
            Some("TransactionConflictException") => {
                return Self::TransactionCanceled(vec![Some("TransactionConflict".into())]);
            }
            Some(
                "InternalServerError" | "ServiceUnavailable" | "TransactionInProgressException",
            ) => {
                return Self::Unavailable(
                    aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string(),
                );
            }
            _ => {}
        }
        // The service's own errors are told apart by their codes, above.
        let transient = matches!(
            err,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        );
        let described = aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string();
        if transient {
            Self::Unavailable(described)
        } else {
            Self::Backend(described)
        }
    }
}

/// What a client is told when storage fails: a transient failure is 503 (or 409 for a lost race
/// between transactions), with `Retry-After`; the rest is a 500.
impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Throttled => ApiError::unavailable(),
            StorageError::Unavailable(cause) => {
                tracing::warn!(%cause, "storage unavailable");
                ApiError::unavailable()
            }
            StorageError::TransactionCanceled(reasons) => {
                match StorageError::transient_reasons(&reasons) {
                    (true, _) => ApiError::unavailable(),
                    (false, true) => ApiError {
                        retry_after: Some(1),
                        ..ApiError::conflict(
                            "TRANSACTION_CONFLICT",
                            "another request changed the same data at the same moment; retry",
                        )
                    },
                    _ => ApiError::internal(StorageError::TransactionCanceled(reasons)),
                }
            }
            other => ApiError::internal(other),
        }
    }
}

/// The table every domain stores its items in.
#[derive(Debug, Clone)]
pub struct Db {
    client: Client,
    table: String,
}

/// Which of `shards` partitions a sharded index key of `id` goes to (a rolling hash, spread evenly
/// over ids that differ only in their last characters).
pub fn shard(id: &str, shards: u32) -> u32 {
    id.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % shards
}

/// A time as items store it: RFC 3339 in UTC with exactly three fractional digits. Fixed width, so
/// times sort as text (index sort keys); milliseconds, as nanoseconds are six bytes of every item
/// and index entry that no reader needs, and a byte over a kilobyte doubles a write's price.
pub fn stamp(at: jiff::Timestamp) -> String {
    format!("{at:.3}")
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        ("PK".to_owned(), AttributeValue::S(pk.into())),
        ("SK".to_owned(), AttributeValue::S(sk.into())),
    ])
}

/// An item's table key (`PK`, `SK`), when both are strings.
pub fn item_key(item: &Item) -> Option<(String, String)> {
    match (item.get("PK"), item.get("SK")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
            Some((pk.clone(), sk.clone()))
        }
        _ => None,
    }
}

pub fn to_item<T: Serialize>(value: &T) -> Result<Item, StorageError> {
    serde_dynamo::to_item(value).map_err(|e| StorageError::Malformed(e.to_string()))
}

/// A conditional put's outcome as a result: `ConditionFailed` when another item stood in its way.
fn written(standing: Option<Item>) -> Result<(), StorageError> {
    match standing {
        None => Ok(()),
        Some(_) => Err(StorageError::ConditionFailed),
    }
}

pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StorageError> {
    serde_dynamo::from_item(item).map_err(|e| StorageError::Malformed(e.to_string()))
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A token for a conditional write that has none of its own (an `UpdateItem` or a `PutItem` carries
/// no client token), for [`update_once`] and [`put_once`].
pub fn write_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Sends `update`, a conditional `UpdateItem` that sets `attribute` to `token` and whose condition
/// refuses an item carrying it already. Made — by this send, or by an earlier send of the same
/// write whose answer was lost, which the SDK's retry meets (DynamoDB returns the item with the
/// refusal) — is `Ok`; refused by an item that does not carry `token`, `ConditionFailed`.
pub async fn update_once(
    update: UpdateItemFluentBuilder,
    attribute: &str,
    token: &str,
) -> Result<(), StorageError> {
    match update_once_telling(update, attribute, token).await? {
        Once::Made(_) => Ok(()),
        Once::Refused(_) => Err(StorageError::ConditionFailed),
    }
}

/// What an [`update_once_telling`] met.
pub enum Once {
    /// Made, by this send or by the earlier one the SDK retried: the attributes the update's
    /// `ReturnValues` asked for, or the item standing with this write's token (empty when neither).
    Made(Item),
    /// Refused by an item that does not carry the write's token (`None`: no item).
    Refused(Option<Item>),
}

/// [`update_once`], telling what it met: the item as the update left it, or the item that refused
/// it, as DynamoDB returns it with the refusal (a caller tells why from it).
pub async fn update_once_telling(
    update: UpdateItemFluentBuilder,
    attribute: &str,
    token: &str,
) -> Result<Once, StorageError> {
    let sent = update
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let err = match sent {
        Ok(made) => return Ok(Once::Made(made.attributes.unwrap_or_default())),
        Err(err) => err,
    };
    let Some(UpdateItemError::ConditionalCheckFailedException(refused)) = err.as_service_error()
    else {
        return Err(StorageError::from_sdk(err));
    };
    let standing = refused.item();
    Ok(if carries(standing, attribute, token) {
        Once::Made(standing.cloned().unwrap_or_default())
    } else {
        Once::Refused(standing.cloned())
    })
}

/// [`update_once`] for a conditional `PutItem` whose item carries `token` in `attribute`.
pub async fn put_once(
    put: PutItemFluentBuilder,
    attribute: &str,
    token: &str,
) -> Result<(), StorageError> {
    let sent = put
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let Err(err) = sent else {
        return Ok(());
    };
    let standing = match err.as_service_error() {
        Some(PutItemError::ConditionalCheckFailedException(refused)) => refused.item(),
        _ => None,
    };
    if carries(standing, attribute, token) {
        Ok(())
    } else {
        Err(StorageError::from_sdk(err))
    }
}

/// Whether `standing` — the item a refused write met, as DynamoDB returns it with the refusal —
/// carries `token` in `attribute`: that write's own.
fn carries(standing: Option<&Item>, attribute: &str, token: &str) -> bool {
    standing
        .and_then(|item| item.get(attribute))
        .and_then(|value| value.as_s().ok())
        .is_some_and(|value| value == token)
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl Db {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// A strongly consistent read of one item.
    pub async fn get<T: DeserializeOwned>(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> Result<Option<T>, StorageError> {
        self.read(key(pk, sk), None).await
    }

    /// A strongly consistent read of the attributes `projection` names (a `ProjectionExpression`)
    /// of one item: billed as the whole item, but only these cross the wire and are parsed.
    pub async fn get_projected<T: DeserializeOwned>(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
        projection: &str,
    ) -> Result<Option<T>, StorageError> {
        self.read(key(pk, sk), Some(projection)).await
    }

    async fn read<T: DeserializeOwned>(
        &self,
        key: Item,
        projection: Option<&str>,
    ) -> Result<Option<T>, StorageError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_projection_expression(projection.map(str::to_owned))
            .consistent_read(true)
            .send()
            .await
            .map_err(StorageError::from_sdk)?;
        out.item.map(from_item).transpose()
    }

    pub async fn put<T: Serialize>(&self, value: &T) -> Result<(), StorageError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(value)?))
            .send()
            .await
            .map_err(StorageError::from_sdk)?;
        Ok(())
    }

    /// Deletes one item; deleting one that is not there is fine.
    pub async fn delete(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> Result<(), StorageError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(StorageError::from_sdk)?;
        Ok(())
    }

    /// Creates `value` unless an item with its key exists (then `ConditionFailed`).
    pub async fn put_if_absent<T: Serialize>(&self, value: &T) -> Result<(), StorageError> {
        self.put_item_if_absent(to_item(value)?).await
    }

    /// [`Self::put_if_absent`] for an item already in DynamoDB's form.
    pub async fn put_item_if_absent(&self, item: Item) -> Result<(), StorageError> {
        written(self.put_or_standing(self.absent_put(), item).await?)
    }

    /// [`Self::put_if_absent`] that says what stands in its way: `Some(item)` when an item other than
    /// `value` has its key.
    pub async fn put_if_absent_or_standing<T: Serialize>(
        &self,
        value: &T,
    ) -> Result<Option<Item>, StorageError> {
        self.put_or_standing(self.absent_put(), to_item(value)?)
            .await
    }

    fn absent_put(&self) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .condition_expression("attribute_not_exists(PK)")
    }

    /// Replaces the item with `value` if its stored `version` is still `seen` (optimistic
    /// concurrency); `ConditionFailed` when someone changed it meanwhile. A plain conditional write,
    /// at half the cost of a transaction.
    pub async fn put_if_version<T: Serialize>(
        &self,
        value: &T,
        seen: u64,
    ) -> Result<(), StorageError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", n(seen));
        written(self.put_or_standing(put, to_item(value)?).await?)
    }

    /// Sends `put` (a conditional put, its condition set) of `item`: `None` when it was written, else
    /// the item that stands (DynamoDB returns it with the refusal, at no cost; `ConditionFailed`
    /// when none does). A put has no token: when its answer is lost the SDK sends it again, and the
    /// repeat meets the item the first attempt wrote — so a standing item that is `item` itself
    /// counts as written. (An item that two writers could both make must carry a token of its
    /// writer's, or one would take the other's for its own.)
    pub async fn put_or_standing(
        &self,
        put: PutItemFluentBuilder,
        item: Item,
    ) -> Result<Option<Item>, StorageError> {
        let sent = put
            .set_item(Some(item.clone()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Err(err) = sent else {
            return Ok(None);
        };
        match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(refused)) => match refused.item() {
                Some(standing) if *standing == item => Ok(None),
                Some(standing) => Ok(Some(standing.clone())),
                // No item stands (a version put over one deleted meanwhile).
                None => Err(StorageError::ConditionFailed),
            },
            _ => Err(StorageError::from_sdk(err)),
        }
    }

    /// A transaction item that creates `value` only where no item with its key exists yet.
    pub fn put_new<T: Serialize>(&self, value: &T) -> Result<TransactWriteItem, StorageError> {
        self.put_action(value, Some("attribute_not_exists(PK)"))
    }

    /// [`Self::put_new`] for an item already in DynamoDB's form.
    pub fn put_new_item(&self, item: Item) -> Result<TransactWriteItem, StorageError> {
        self.put_item_action(item, Some("attribute_not_exists(PK)"))
    }

    pub fn put_action<T: Serialize>(
        &self,
        value: &T,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StorageError> {
        self.put_item_action(to_item(value)?, condition)
    }

    fn put_item_action(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StorageError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(String::from))
            .build()
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction item that deletes the item at `pk`, `sk` (if there is one).
    pub fn delete_action(
        &self,
        pk: impl Into<String>,
        sk: impl Into<String>,
    ) -> Result<TransactWriteItem, StorageError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The table keys (`PK`, `SK`) of every item in the given partitions of a keys-only index,
    /// optionally only those whose index sort key is below `sort_below`. For the sweeps over sparse,
    /// sharded indexes (unpaid orders, unsettled payments and refunds); follows every page.
    pub async fn keys_in(
        &self,
        index: &str,
        partitions: impl IntoIterator<Item = String>,
        sort_below: Option<&str>,
    ) -> Result<Vec<(String, String)>, StorageError> {
        let (pk_name, sk_name) = (format!("{index}PK"), format!("{index}SK"));
        let mut keys = Vec::new();
        for partition in partitions {
            let mut start = None;
            loop {
                let mut query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(index)
                    .expression_attribute_names("#pk", &pk_name)
                    .expression_attribute_values(":pk", s(&partition))
                    .set_exclusive_start_key(start.take());
                query = match sort_below {
                    Some(below) => query
                        .key_condition_expression("#pk = :pk AND #sk < :below")
                        .expression_attribute_names("#sk", &sk_name)
                        .expression_attribute_values(":below", s(below)),
                    None => query.key_condition_expression("#pk = :pk"),
                };
                let page = query.send().await.map_err(StorageError::from_sdk)?;
                for item in page.items.unwrap_or_default() {
                    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                        (item.get("PK"), item.get("SK"))
                    {
                        keys.push((pk.clone(), sk.clone()));
                    }
                }
                match page.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
        }
        Ok(keys)
    }

    /// The items at `keys` (at most 100), strongly consistent, in the keys' order; keys with no item
    /// are left out. For listings that query a lean index and then read the items themselves.
    pub async fn get_many(&self, keys: Vec<Item>) -> Result<Vec<Item>, StorageError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let order: Vec<Option<(String, String)>> = keys.iter().map(item_key).collect();
        let mut found: HashMap<(String, String), Item> = HashMap::with_capacity(keys.len());
        let mut pending = keys;
        // DynamoDB may leave keys unprocessed under load: ask again for those, with a short backoff.
        for attempt in 0..5u32 {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| StorageError::Backend(e.to_string()))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(StorageError::from_sdk)?;
            for item in out
                .responses
                .and_then(|mut tables| tables.remove(&self.table))
                .unwrap_or_default()
            {
                if let Some(key) = item_key(&item) {
                    found.insert(key, item);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut tables| tables.remove(&self.table))
                .map(|rest| rest.keys)
                .unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(StorageError::Throttled);
        }
        Ok(order
            .into_iter()
            .flatten()
            .filter_map(|key| found.remove(&key))
            .collect())
    }

    /// Two items, strongly consistent, in one `BatchGetItem`: one round trip (and one call's worth of
    /// the SDK's CPU) instead of two `GetItem`s, for the same read units (each item is rounded up on
    /// its own either way).
    pub async fn get_two<A: DeserializeOwned, B: DeserializeOwned>(
        &self,
        a: (String, String),
        b: (String, String),
    ) -> Result<(Option<A>, Option<B>), StorageError> {
        let [first, second] = self.get_each([a, b]).await?;
        Ok((
            first.map(from_item).transpose()?,
            second.map(from_item).transpose()?,
        ))
    }

    /// The items at `keys` (`PK`, `SK`), strongly consistent, in one `BatchGetItem`: each in its
    /// key's place, `None` where there is none.
    pub async fn get_each<const N: usize>(
        &self,
        keys: [(String, String); N],
    ) -> Result<[Option<Item>; N], StorageError> {
        let mut found = self
            .get_many(keys.iter().map(|(pk, sk)| key(pk, sk)).collect())
            .await?;
        Ok(keys.map(|wanted| {
            found
                .iter()
                .position(|item| item_key(item).as_ref() == Some(&wanted))
                .map(|at| found.swap_remove(at))
        }))
    }

    /// Sends a transaction's update on its own, as a plain `UpdateItem`: half the write units of a
    /// one-item transaction. `ConditionFailed` when its condition does not hold. Unlike a
    /// transaction's token, nothing makes a retry after a lost answer succeed: the SDK's retry of a
    /// write that landed fails its own condition, so callers check what is there (`orders::commit_move`).
    pub async fn update(&self, update: Update) -> Result<(), StorageError> {
        self.client
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await
            .map_err(StorageError::from_sdk)?;
        Ok(())
    }

    /// Runs the actions as one all-or-nothing transaction.
    pub async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<(), StorageError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => {
                    Err(StorageError::TransactionCanceled(
                        canceled
                            .cancellation_reasons()
                            .iter()
                            .map(|r| r.code().filter(|c| *c != "None").map(String::from))
                            .collect(),
                    ))
                }
                _ => Err(StorageError::from_sdk(err)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_known_by_its_token() {
        let token = write_token();
        assert_eq!(token.len(), 16);
        assert_ne!(token, write_token());
        let standing: Item = [("last".to_owned(), s(&token))].into();
        assert!(carries(Some(&standing), "last", &token));
        assert!(!carries(Some(&standing), "last", &write_token()));
        assert!(!carries(Some(&standing), "attempt", &token));
        assert!(!carries(None, "last", &token));
    }

    #[test]
    fn condition_failure_is_located_by_action_index() {
        let err =
            StorageError::TransactionCanceled(vec![None, Some("ConditionalCheckFailed".into())]);
        assert!(!err.condition_failed_at(0));
        assert!(err.condition_failed_at(1));
        assert!(!err.condition_failed_at(2));
        assert!(!StorageError::ConditionFailed.condition_failed_at(0));
    }

    #[test]
    fn throttling_becomes_a_retryable_503() {
        let api: ApiError = StorageError::Throttled.into();
        assert_eq!(api.status.as_u16(), 503);
        assert_eq!(api.retry_after, Some(1));
        let api: ApiError = StorageError::Unavailable("timed out".into()).into();
        assert_eq!(
            (api.status.as_u16(), api.code),
            (503, "SERVICE_UNAVAILABLE")
        );
    }

    #[test]
    fn transactions_lost_to_throttling_or_a_conflict_are_retryable() {
        let throttled =
            StorageError::TransactionCanceled(vec![None, Some("ThrottlingError".into())]);
        let api: ApiError = throttled.into();
        assert_eq!((api.status.as_u16(), api.retry_after), (503, Some(1)));
        let conflict = StorageError::TransactionCanceled(vec![Some("TransactionConflict".into())]);
        let api: ApiError = conflict.into();
        assert_eq!(
            (api.status.as_u16(), api.code, api.retry_after),
            (409, "TRANSACTION_CONFLICT", Some(1))
        );
        let other = StorageError::TransactionCanceled(vec![Some("ValidationError".into())]);
        let api: ApiError = other.into();
        assert_eq!(api.status.as_u16(), 500);
    }
}
