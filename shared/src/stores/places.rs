//! The stores a user may run — those they own and those whose staff they are — for the board's
//! store picker (`GET /v1/me/stores`). Read from the user's side (`OWNS#` and `STAFF_AT#` items
//! under `USER#<userId>`), then the stores themselves for their current names.

use serde::Serialize;

use super::staff::STAFF_AT_PREFIX;
use super::{OWNS_PREFIX, STORE_SK, StoreRecord, store_pk, user_side_ids};
use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::storage::{Db, StorageError, from_item, key};

/// At most this many stores of each kind are listed: a picker, not a directory.
pub const MAX_LISTED: i32 = 100;

/// How the caller stands with a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Place {
    Owner,
    Staff,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MyStore {
    pub store_id: String,
    pub name: String,
    pub place: Place,
}

/// Whether the user owns a store.
pub async fn owns_any(db: &Db, user_id: &str) -> Result<bool, StorageError> {
    Ok(!user_side_ids(db, user_id, OWNS_PREFIX, Some(1), false)
        .await?
        .is_empty())
}

/// The caller's stores, by name. A store whose item is gone is left out.
pub async fn mine(app: &App, caller: &Caller) -> Result<Vec<MyStore>, ApiError> {
    let db = &app.db;
    let (owned, staffed) = futures::try_join!(
        user_side_ids(db, &caller.user_id, OWNS_PREFIX, Some(MAX_LISTED), false),
        user_side_ids(
            db,
            &caller.user_id,
            STAFF_AT_PREFIX,
            Some(MAX_LISTED),
            false
        ),
    )?;
    let places: Vec<(String, Place)> = owned
        .into_iter()
        .map(|id| (id, Place::Owner))
        .chain(staffed.into_iter().map(|id| (id, Place::Staff)))
        .collect();
    let mut found = Vec::with_capacity(places.len());
    // A batch read takes 100 keys.
    for chunk in places.chunks(100) {
        let keys = chunk
            .iter()
            .map(|(id, _)| key(store_pk(id), STORE_SK))
            .collect();
        for item in db.get_many(keys).await? {
            let store: StoreRecord = from_item(item)?;
            if let Some((_, place)) = chunk.iter().find(|(id, _)| *id == store.store_id) {
                found.push(MyStore {
                    store_id: store.store_id,
                    name: store.settings.name,
                    place: *place,
                });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name).then(a.store_id.cmp(&b.store_id)));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_serialise_as_the_api_names_them() {
        assert_eq!(serde_json::to_string(&Place::Owner).unwrap(), "\"OWNER\"");
        assert_eq!(serde_json::to_string(&Place::Staff).unwrap(), "\"STAFF\"");
    }
}
