//! [`MetaStore`]: where readers keep small per-file metadata between runs (sniffing results,
//! block boundaries), without knowing what stores it.
//!
//! pipeline-io looks metadata up through a [`MetaCache`] handle; the run gives it one backed
//! by the tickpipe cache (pipeline-cache implements [`MetaStore`] in its `meta`
//! namespace), so that metadata shares the cache's directory, lock, bound, stats and
//! `clear`/`prune`, and `--no-cache` turns it off with the rest. [`MetaCache::memory`]
//! keeps it in memory for one process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// A best-effort key-value store: a failed lookup is a miss, a failed store is forgotten
/// (implementations log their own errors). Values are small (kilobytes).
pub trait MetaStore: Send + Sync {
    /// The value under `key`, if any.
    fn get_meta(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores `value` under `key`, replacing what was there.
    fn put_meta(&self, key: &str, value: &[u8]);

    /// Stores several entries; a store that writes to disk does it in one transaction.
    fn put_meta_many(&self, entries: &[(String, Vec<u8>)]) {
        for (k, v) in entries {
            self.put_meta(k, v);
        }
    }
}

/// A shared handle to a [`MetaStore`]. Two handles are equal when they share one store.
///
/// ```
/// use pipeline_core::MetaCache;
/// let m = MetaCache::memory();
/// m.put("file|123", b"{}");
/// assert_eq!(m.get("file|123").as_deref(), Some(&b"{}"[..]));
/// assert_eq!(m, m.clone());
/// assert_ne!(m, MetaCache::memory());
/// ```
#[derive(Clone)]
pub struct MetaCache(Arc<dyn MetaStore>);

impl MetaCache {
    /// A handle to `store`.
    pub fn new(store: Arc<dyn MetaStore>) -> MetaCache {
        MetaCache(store)
    }

    /// A handle to a new in-memory store.
    pub fn memory() -> MetaCache {
        MetaCache(Arc::new(MemoryMetaStore::default()))
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.get_meta(key)
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: &str, value: &[u8]) {
        self.0.put_meta(key, value)
    }

    /// Stores several entries at once (see [`MetaStore::put_meta_many`]).
    pub fn put_many(&self, entries: &[(String, Vec<u8>)]) {
        self.0.put_meta_many(entries)
    }
}

impl fmt::Debug for MetaCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetaCache(..)")
    }
}

impl PartialEq for MetaCache {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A [`MetaStore`] in a mutex-guarded map, for tests and single-process use.
#[derive(Debug, Default)]
pub struct MemoryMetaStore(Mutex<HashMap<String, Vec<u8>>>);

impl MetaStore for MemoryMetaStore {
    fn get_meta(&self, key: &str) -> Option<Vec<u8>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn put_meta(&self, key: &str, value: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), value.to_vec());
    }
}
