//! Each store's owner, remembered by the instance that read it.
//!
//! Every access check needs the store's owner ([`super::check_access`]). Read from the table, it
//! was a round trip and a read unit (strongly consistent) on every move of an order, every order a
//! store reads, every menu change. A store's owner is written once, when the store is created, and
//! never again: no route transfers a store or deletes one (`PatchStore` refuses `ownerId`). So an
//! owner this instance has read cannot go stale, and is kept for the instance's life. Staff, who
//! can be removed at any moment, are read on every request and never remembered here. A route that
//! ever transfers or deletes a store must stop using this.

use std::collections::HashMap;
use std::sync::Mutex;

/// Store id → owner id, bounded: a full map is emptied (an instance serving more stores than that
/// reads their owners again, as before).
pub struct Owners {
    max_entries: usize,
    entries: Mutex<HashMap<String, String>>,
}

impl Owners {
    /// Room for the stores one busy instance serves; ~0.5 MB at most.
    pub const MAX_ENTRIES: usize = 4_096;

    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The owner of `store_id`, if this instance has read it.
    pub fn get(&self, store_id: &str) -> Option<String> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(store_id).cloned()
    }

    /// Remembers the owner of a store read from the table (only stores that exist: a missing store
    /// may be created later).
    pub fn remember(&self, store_id: &str, owner_id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.max_entries && !entries.contains_key(store_id) {
            entries.clear();
        }
        entries.insert(store_id.to_owned(), owner_id.to_owned());
    }
}

impl Default for Owners {
    fn default() -> Self {
        Self::new(Self::MAX_ENTRIES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_owner_is_returned_for_its_store_only() {
        let owners = Owners::new(8);
        assert_eq!(owners.get("s1"), None);
        owners.remember("s1", "alice");
        assert_eq!(owners.get("s1").as_deref(), Some("alice"));
        assert_eq!(owners.get("s2"), None);
    }

    #[test]
    fn a_full_map_is_emptied_before_it_grows() {
        let owners = Owners::new(2);
        owners.remember("s1", "a");
        owners.remember("s2", "b");
        // Remembering a store it holds does not empty it.
        owners.remember("s2", "b");
        assert_eq!(owners.get("s1").as_deref(), Some("a"));
        owners.remember("s3", "c");
        assert_eq!(owners.get("s1"), None);
        assert_eq!(owners.get("s2"), None);
        assert_eq!(owners.get("s3").as_deref(), Some("c"));
    }
}
