//! A small in-process cache with expiry, for values that are immutable or
//! may be a few seconds stale: sessions (a token's session never changes;
//! its expiry is checked on every use), device keys (a device id is its
//! key's thumbprint) and parsed service guides (invalidated on publish, and
//! at most [`crate::state::GUIDE_CACHE_SECS`] stale across replicas).
//!
//! Time comes from the caller (the injected clock). When full, the cache is
//! emptied rather than tracking recency: simple, bounded, and refilled from
//! the store on the next misses.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A bounded map whose entries expire.
#[derive(Debug)]
pub struct Cache<K, V> {
    entries: Mutex<HashMap<K, (V, i64)>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    /// An empty cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The value for `key` if present and not expired at `now`.
    pub fn get(&self, key: &K, now: i64) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((v, expires)) if *expires > now => Some(v.clone()),
            _ => None,
        }
    }

    /// Stores `value` until `expires_at` (exclusive).
    pub fn put(&self, key: K, value: V, expires_at: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(key, (value, expires_at));
        }
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    /// Number of entries (expired ones included until overwritten).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_capacity_bounds() {
        let c = Cache::new(2);
        c.put("a", 1, 10);
        assert_eq!(c.get(&"a", 9), Some(1));
        assert_eq!(c.get(&"a", 10), None);
        c.put("b", 2, 10);
        c.put("c", 3, 10);
        assert!(c.len() <= 2);
        assert_eq!(c.get(&"c", 0), Some(3));
        c.remove(&"c");
        assert_eq!(c.get(&"c", 0), None);
    }
}
