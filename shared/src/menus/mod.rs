//! Menus: one document per store (`STORE#<storeId>` / `MENU`), versioned. Reads are one `GetItem`;
//! writes are compare-and-set on the version, so concurrent edits never lose each other, and the
//! version tells the order path which menu priced an order.
//!
//! Menu reads are the hottest path. A warm instance keeps each store's rendered menu for
//! `MENU_CACHE_SECONDS` (default 5): no response is ever older than that.

pub mod image;
pub mod model;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use self::model::*;
use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::storage::{Db, StorageError};
use crate::stores::{self, Access, store_pk};

pub const MENU_SK: &str = "MENU";
/// Optimistic attempts at a menu write before `409 MENU_BUSY`.
const WRITE_ATTEMPTS: u32 = 5;
/// The first pause after a lost race; each later one may be twice as long. Writers that lost to
/// the same winner each draw a pause below it, so they stop colliding in lockstep.
const FIRST_PAUSE_MS: u64 = 25;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MenuRecord {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub store_id: String,
    pub version: u64,
    pub updated_at: String,
    #[serde(flatten)]
    pub menu: Menu,
}

impl MenuRecord {
    pub fn empty(store_id: &str) -> Self {
        Self {
            pk: store_pk(store_id),
            sk: MENU_SK.to_owned(),
            store_id: store_id.to_owned(),
            version: 1,
            updated_at: jiff::Timestamp::now().to_string(),
            menu: Menu::default(),
        }
    }

    /// The validator of the menu as rendered in image-URL window `window`.
    pub fn etag(&self, window: i64) -> String {
        format!("\"{}.{}.{window}\"", self.store_id, self.version)
    }
}

/// The menu as a client receives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MenuView<'a> {
    store_id: &'a str,
    version: u64,
    updated_at: &'a str,
    #[serde(flatten)]
    menu: &'a Menu,
}

/// A rendered menu: body and validator, ready to send.
#[derive(Debug)]
pub struct RenderedMenu {
    pub version: u64,
    /// The image-URL signing window it was rendered in (see `images::URL_WINDOW_SECONDS`).
    pub window: i64,
    pub etag: String,
    pub body: String,
}

pub async fn load(db: &Db, store_id: &str) -> Result<Option<MenuRecord>, StorageError> {
    db.get(store_pk(store_id), MENU_SK).await
}

async fn render(app: &App, record: MenuRecord, window: i64) -> Result<RenderedMenu, ApiError> {
    let etag = record.etag(window);
    let menu = record.menu.sorted();
    let mut view = serde_json::to_value(MenuView {
        store_id: &record.store_id,
        version: record.version,
        updated_at: &record.updated_at,
        menu: &menu,
    })
    .map_err(ApiError::internal)?;
    // Images are private: each is served through a GET URL signed for this window.
    if let Some(items) = view.get_mut("items").and_then(|i| i.as_array_mut()) {
        for (view, item) in items.iter_mut().zip(&menu.items) {
            if let (Some(key), Some(object)) = (&item.image_key, view.as_object_mut()) {
                let url = app.images().read_url(key, window).await?;
                object.insert("imageUrl".into(), serde_json::Value::String(url));
            }
        }
    }
    Ok(RenderedMenu {
        version: record.version,
        window,
        etag,
        body: view.to_string(),
    })
}

/// Per-instance cache of rendered menus, each served for at most `ttl` after it was read.
pub struct MenuCache {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<String, (Arc<RenderedMenu>, Instant)>>,
}

impl MenuCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            max_entries: 1_000,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn get_at(&self, store_id: &str, now: Instant, window: i64) -> Option<Arc<RenderedMenu>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(store_id)
            .filter(|(menu, read_at)| {
                now.duration_since(*read_at) < self.ttl && menu.window == window
            })
            .map(|(menu, _)| menu.clone())
    }

    fn insert_at(&self, store_id: &str, menu: Arc<RenderedMenu>, read_at: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (_, at)| read_at.duration_since(*at) < self.ttl);
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(store_id.to_owned(), (menu, read_at));
    }
}

/// The store's menu, from this instance's cache when fresh enough.
pub async fn get_rendered(app: &App, store_id: &str) -> Result<Arc<RenderedMenu>, ApiError> {
    // The clock starts before the read: the entry is never older than its recorded time.
    let read_at = Instant::now();
    let window = crate::images::window_of(jiff::Timestamp::now());
    if let Some(menu) = app.menus.get_at(store_id, read_at, window) {
        return Ok(menu);
    }
    let record = load(&app.db, store_id)
        .await?
        .ok_or_else(|| ApiError::not_found("STORE_NOT_FOUND", "no such store"))?;
    let menu = Arc::new(render(app, record, window).await?);
    app.menus.insert_at(store_id, menu.clone(), read_at);
    Ok(menu)
}

/// Applies `change` to the store's menu and saves it as the next version; retried on a concurrent
/// write, so `change` must be a pure function of the menu it is given. Returns the saved record.
pub async fn update<T>(
    app: &App,
    caller: &Caller,
    store_id: &str,
    access: Access,
    change: impl FnMut(&mut Menu) -> Result<T, ApiError>,
) -> Result<(T, MenuRecord), ApiError> {
    stores::check_access(app, store_id, caller, access).await?;
    apply(app, store_id, change).await
}

/// [`update`] without the caller check: for the system's own writes (an accepted image upload).
pub async fn apply<T>(
    app: &App,
    store_id: &str,
    mut change: impl FnMut(&mut Menu) -> Result<T, ApiError>,
) -> Result<(T, MenuRecord), ApiError> {
    for attempt in 0..WRITE_ATTEMPTS {
        if attempt > 0 {
            let ceiling = FIRST_PAUSE_MS << (attempt - 1);
            let pause = rand::random_range(0..=ceiling);
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        let current = load(&app.db, store_id)
            .await?
            .ok_or_else(|| ApiError::not_found("STORE_NOT_FOUND", "no such store"))?;
        let mut next = current.clone();
        let result = change(&mut next.menu)?;
        next.menu.validate()?;
        next.version = current.version + 1;
        next.updated_at = jiff::Timestamp::now().to_string();
        match app.db.put_if_version(&next, current.version).await {
            Ok(()) => return Ok((result, next)),
            Err(StorageError::ConditionFailed) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::conflict(
        "MENU_BUSY",
        "the menu is being changed by others; retry",
    ))
}

/// Whether a PUT created the entity or replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Replaced,
}

impl Upsert {
    /// 201 for a new entity, 200 for a replaced one.
    pub fn status(self) -> lambda_http::http::StatusCode {
        match self {
            Upsert::Created => lambda_http::http::StatusCode::CREATED,
            Upsert::Replaced => lambda_http::http::StatusCode::OK,
        }
    }
}

/// A saved menu entity and the menu version that holds it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Saved<T> {
    pub menu_version: u64,
    #[serde(flatten)]
    pub entity: T,
}

fn upsert<T: Clone>(list: &mut Vec<T>, value: T, same: impl Fn(&T) -> bool) -> Upsert {
    match list.iter_mut().find(|v| same(v)) {
        Some(slot) => {
            *slot = value;
            Upsert::Replaced
        }
        None => {
            list.push(value);
            Upsert::Created
        }
    }
}

pub fn put_category(menu: &mut Menu, category: Category) -> Upsert {
    let id = category.id.clone();
    upsert(&mut menu.categories, category, |c| c.id == id)
}

/// Replaces an item's definition; its image stays (only the upload flow sets it), and so do its
/// availability and place unless the input names them.
pub fn put_item(
    menu: &mut Menu,
    id: &str,
    input: ItemInput,
) -> Result<(MenuItem, Upsert), ApiError> {
    let item = input.into_item(id, menu.item(id))?;
    let done = upsert(&mut menu.items, item.clone(), |i| i.id == id);
    Ok((item, done))
}

pub fn put_option_group(menu: &mut Menu, group: OptionGroup) -> Upsert {
    let id = group.id.clone();
    upsert(&mut menu.option_groups, group, |g| g.id == id)
}

pub fn delete_category(menu: &mut Menu, id: &str) -> Result<(), ApiError> {
    if menu.items.iter().any(|i| i.category_id == id) {
        return Err(ApiError::conflict(
            "CATEGORY_NOT_EMPTY",
            "move or delete the category's items first",
        ));
    }
    let before = menu.categories.len();
    menu.categories.retain(|c| c.id != id);
    if menu.categories.len() == before {
        return Err(ApiError::not_found(
            "CATEGORY_NOT_FOUND",
            "no such category",
        ));
    }
    Ok(())
}

pub fn delete_item(menu: &mut Menu, id: &str) -> Result<(), ApiError> {
    let before = menu.items.len();
    menu.items.retain(|i| i.id != id);
    if menu.items.len() == before {
        return Err(ApiError::not_found("ITEM_NOT_FOUND", "no such item"));
    }
    Ok(())
}

pub fn delete_option_group(menu: &mut Menu, id: &str) -> Result<(), ApiError> {
    if menu
        .items
        .iter()
        .any(|i| i.option_group_ids.iter().any(|g| g == id))
    {
        return Err(ApiError::conflict(
            "OPTION_GROUP_IN_USE",
            "remove the group from its items first",
        ));
    }
    let before = menu.option_groups.len();
    menu.option_groups.retain(|g| g.id != id);
    if menu.option_groups.len() == before {
        return Err(ApiError::not_found(
            "OPTION_GROUP_NOT_FOUND",
            "no such option group",
        ));
    }
    Ok(())
}

/// `PATCH …/items/{itemId}/availability`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityInput {
    pub available: bool,
}

pub fn set_availability(menu: &mut Menu, id: &str, available: bool) -> Result<MenuItem, ApiError> {
    let item = menu
        .items
        .iter_mut()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found("ITEM_NOT_FOUND", "no such item"))?;
    item.available = available;
    Ok(item.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(version: u64) -> Arc<RenderedMenu> {
        Arc::new(RenderedMenu {
            version,
            window: 7,
            etag: format!("\"s.{version}\""),
            body: String::new(),
        })
    }

    #[test]
    fn cached_menus_are_served_for_at_most_the_ttl() {
        let cache = MenuCache::new(Duration::from_secs(5));
        let t0 = Instant::now();
        cache.insert_at("s", rendered(3), t0);
        assert_eq!(
            cache
                .get_at("s", t0 + Duration::from_millis(4_999), 7)
                .unwrap()
                .version,
            3
        );
        assert!(cache.get_at("s", t0 + Duration::from_secs(5), 7).is_none());
        assert!(cache.get_at("other", t0, 7).is_none());
        // A new URL window needs a new rendering: the old one's image URLs are aging out.
        assert!(cache.get_at("s", t0, 8).is_none());
    }

    #[test]
    fn deletes_refuse_what_is_still_used() {
        let mut menu = Menu::default();
        put_category(
            &mut menu,
            Category {
                id: "rolls".into(),
                name: "Rolls".into(),
                position: 0,
            },
        );
        put_option_group(
            &mut menu,
            OptionGroupInput {
                name: "Spice".into(),
                kind: OptionKind::SingleChoice,
                required: false,
                min: 0,
                max: 1,
                values: vec![OptionValue {
                    id: "hot".into(),
                    name: "Hot".into(),
                    price: 0,
                }],
            }
            .into_group("spice")
            .unwrap(),
        );
        let input = ItemInput {
            category_id: "rolls".into(),
            name: "Kimbap".into(),
            description: String::new(),
            price: 3_500,
            available: None,
            option_group_ids: vec!["spice".into()],
            position: None,
        };
        let (_, done) = put_item(&mut menu, "kimbap", input).unwrap();
        assert_eq!(done, Upsert::Created);
        assert_eq!(
            delete_category(&mut menu, "rolls").unwrap_err().code,
            "CATEGORY_NOT_EMPTY"
        );
        assert_eq!(
            delete_option_group(&mut menu, "spice").unwrap_err().code,
            "OPTION_GROUP_IN_USE"
        );
        assert_eq!(
            delete_item(&mut menu, "nope").unwrap_err().code,
            "ITEM_NOT_FOUND"
        );
        assert!(
            !set_availability(&mut menu, "kimbap", false)
                .unwrap()
                .available
        );
        delete_item(&mut menu, "kimbap").unwrap();
        delete_option_group(&mut menu, "spice").unwrap();
        delete_category(&mut menu, "rolls").unwrap();
        assert_eq!(menu, Menu::default());
    }
}
