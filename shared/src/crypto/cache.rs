//! The data-key cache of a warm instance. KMS stays off the hot path: a data key encrypts many values
//! before it is retired, and a wrapped key is unwrapped once, then served from memory.
//!
//! Bounds (see docs/SECURITY.md for the argument): an encrypting key is retired after `max_uses`
//! values or `max_age`, whichever comes first; unwrapped keys live at most `max_age` and at most
//! `max_entries` of them are held. Key bytes are `Zeroizing`: they are wiped when the last holder
//! drops them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{KeyBytes, KeyContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    pub max_age: Duration,
    pub max_uses: u64,
    pub max_entries: usize,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            max_uses: 10_000,
            max_entries: 256,
        }
    }
}

/// A plaintext data key and what identifies it.
pub struct CachedKey {
    pub plaintext: KeyBytes,
    pub wrapped: Vec<u8>,
    /// When the key was made, epoch milliseconds (written into every value it seals).
    pub key_time: u64,
    born: Instant,
}

impl CachedKey {
    pub fn new(plaintext: KeyBytes, wrapped: Vec<u8>, key_time: u64) -> Arc<Self> {
        Arc::new(Self {
            plaintext,
            wrapped,
            key_time,
            born: Instant::now(),
        })
    }
}

/// An unwrapped key is found by its wrapped form and the context it was unwrapped under.
type UnwrapId = (Vec<u8>, KeyContext);

struct Encrypting {
    key: Arc<CachedKey>,
    uses: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

impl CacheStats {
    /// The hits and misses counted since `before` was read: one request's share of the instance's.
    pub fn since(self, before: CacheStats) -> CacheStats {
        CacheStats {
            hits: self.hits.saturating_sub(before.hits),
            misses: self.misses.saturating_sub(before.misses),
        }
    }
}

pub struct KeyCache {
    policy: CachePolicy,
    encrypting: Mutex<HashMap<KeyContext, Encrypting>>,
    /// Unwrapped keys with their insertion number: the lowest is evicted first.
    decrypting: Mutex<HashMap<UnwrapId, (Arc<CachedKey>, u64)>>,
    inserted: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl KeyCache {
    pub fn new(policy: CachePolicy) -> Self {
        Self {
            policy,
            encrypting: Mutex::new(HashMap::new()),
            decrypting: Mutex::new(HashMap::new()),
            inserted: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn policy(&self) -> CachePolicy {
        self.policy
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn fresh(&self, key: &CachedKey, now: Instant) -> bool {
        now.duration_since(key.born) < self.policy.max_age
    }

    fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The key to seal one more value under `context`, if the current one is within its bounds.
    pub fn encrypting_key(&self, context: &KeyContext) -> Option<Arc<CachedKey>> {
        self.encrypting_key_at(context, Instant::now())
    }

    fn encrypting_key_at(&self, context: &KeyContext, now: Instant) -> Option<Arc<CachedKey>> {
        let mut map = self.encrypting.lock().unwrap_or_else(|e| e.into_inner());
        let usable = map
            .get(context)
            .is_some_and(|e| e.uses < self.policy.max_uses && self.fresh(&e.key, now));
        if !usable {
            // Retire it now rather than at the next use: its bytes go as soon as no seal holds them.
            map.remove(context);
            self.count(false);
            return None;
        }
        let entry = map.get_mut(context)?;
        entry.uses += 1;
        self.count(true);
        Some(entry.key.clone())
    }

    /// Installs a new encrypting key (its first use already counted) and remembers it for opening.
    pub fn insert_encrypting(&self, context: &KeyContext, key: Arc<CachedKey>) {
        self.insert_decrypting(context, key.clone());
        let mut map = self.encrypting.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(context.clone(), Encrypting { key, uses: 1 });
    }

    pub fn decrypting_key(&self, wrapped: &[u8], context: &KeyContext) -> Option<Arc<CachedKey>> {
        self.decrypting_key_at(wrapped, context, Instant::now())
    }

    fn decrypting_key_at(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
        now: Instant,
    ) -> Option<Arc<CachedKey>> {
        let mut map = self.decrypting.lock().unwrap_or_else(|e| e.into_inner());
        let lookup = (wrapped.to_vec(), context.clone());
        match map.get(&lookup) {
            Some((key, _)) if self.fresh(key, now) => {
                self.count(true);
                Some(key.clone())
            }
            Some(_) => {
                map.remove(&lookup);
                self.count(false);
                None
            }
            None => {
                self.count(false);
                None
            }
        }
    }

    pub fn insert_decrypting(&self, context: &KeyContext, key: Arc<CachedKey>) {
        let now = Instant::now();
        let mut map = self.decrypting.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (k, _)| self.fresh(k, now));
        while map.len() >= self.policy.max_entries {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, seq))| *seq)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
        let seq = self.inserted.fetch_add(1, Ordering::Relaxed);
        map.insert((key.wrapped.clone(), context.clone()), (key, seq));
    }

    /// Keys held now: (encrypting, decrypting).
    pub fn len(&self) -> (usize, usize) {
        let e = self
            .encrypting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let d = self
            .decrypting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        (e, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    #[test]
    fn a_requests_share_is_what_the_instance_counted_since() {
        let before = CacheStats { hits: 7, misses: 2 };
        let after = CacheStats {
            hits: 10,
            misses: 2,
        };
        assert_eq!(after.since(before), CacheStats { hits: 3, misses: 0 });
    }

    fn key(n: u8) -> Arc<CachedKey> {
        CachedKey::new(Zeroizing::new([n; 32]), vec![n; 8], 0)
    }

    fn context(field: &str) -> KeyContext {
        KeyContext::new("t", field)
    }

    #[test]
    fn an_encrypting_key_serves_max_uses_values_then_retires() {
        let cache = KeyCache::new(CachePolicy {
            max_uses: 3,
            ..CachePolicy::default()
        });
        let ctx = context("email");
        assert!(cache.encrypting_key(&ctx).is_none());
        cache.insert_encrypting(&ctx, key(1));
        assert!(cache.encrypting_key(&ctx).is_some());
        assert!(cache.encrypting_key(&ctx).is_some());
        assert!(
            cache.encrypting_key(&ctx).is_none(),
            "the fourth use needs a new key"
        );
        assert_eq!(cache.len().0, 0);
        // Contexts do not share keys.
        cache.insert_encrypting(&ctx, key(2));
        assert!(cache.encrypting_key(&context("name")).is_none());
    }

    #[test]
    fn keys_expire_by_age() {
        let cache = KeyCache::new(CachePolicy::default());
        let ctx = context("email");
        let k = key(1);
        let born = k.born;
        cache.insert_encrypting(&ctx, k);
        let almost = born + Duration::from_secs(299);
        let expired = born + Duration::from_secs(300);
        assert!(cache.encrypting_key_at(&ctx, almost).is_some());
        assert!(cache.decrypting_key_at(&[1; 8], &ctx, almost).is_some());
        assert!(cache.encrypting_key_at(&ctx, expired).is_none());
        assert!(cache.decrypting_key_at(&[1; 8], &ctx, expired).is_none());
        assert_eq!(
            cache.len(),
            (0, 0),
            "expired keys are dropped, and with them their bytes"
        );
    }

    #[test]
    fn unwrapped_keys_are_bounded_in_number_and_bound_to_their_context() {
        let cache = KeyCache::new(CachePolicy {
            max_entries: 2,
            ..CachePolicy::default()
        });
        let ctx = context("email");
        for n in 1..=3 {
            cache.insert_decrypting(&ctx, key(n));
        }
        assert_eq!(cache.len().1, 2);
        assert!(
            cache.decrypting_key(&[1; 8], &ctx).is_none(),
            "the oldest went first"
        );
        assert!(cache.decrypting_key(&[3; 8], &ctx).is_some());
        assert!(cache.decrypting_key(&[3; 8], &context("name")).is_none());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (1, 2));
    }
}
