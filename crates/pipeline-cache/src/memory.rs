//! The memory tier: a moka sync cache bounded by bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;

use crate::codec::CacheValue;
use crate::key::{CacheKey, Namespace};
use crate::options::{MemoryPolicy, Options};
use crate::stats::TierStats;

/// Bytes charged per entry on top of its value: the key, moka's node and our `Arc`s. Keeps
/// a flood of tiny blobs from looking free to the byte bound.
const ENTRY_OVERHEAD_BYTES: u64 = 128;

pub(crate) type MemKey = (Namespace, CacheKey);

/// Counters the eviction listener updates.
#[derive(Debug, Default)]
struct Removals {
    evictions: AtomicU64,
    expirations: AtomicU64,
}

pub(crate) struct MemoryTier {
    cache: moka::sync::Cache<MemKey, CacheValue>,
    capacity: u64,
    policy: MemoryPolicy,
    hits: AtomicU64,
    misses: AtomicU64,
    removals: Arc<Removals>,
}

impl MemoryTier {
    pub(crate) fn new(o: &Options) -> MemoryTier {
        let removals = Arc::new(Removals::default());
        let listener = removals.clone();
        let mut b = moka::sync::Cache::builder()
            .max_capacity(o.memory_bytes)
            .weigher(|_k: &MemKey, v: &CacheValue| {
                (v.memory_size() + ENTRY_OVERHEAD_BYTES).min(u64::from(u32::MAX)) as u32
            })
            .eviction_policy(match o.memory_policy {
                MemoryPolicy::TinyLfu => EvictionPolicy::tiny_lfu(),
                MemoryPolicy::Lru => EvictionPolicy::lru(),
            })
            .eviction_listener(move |_k, _v, cause| match cause {
                RemovalCause::Size => {
                    listener.evictions.fetch_add(1, Ordering::Relaxed);
                }
                RemovalCause::Expired => {
                    listener.expirations.fetch_add(1, Ordering::Relaxed);
                }
                RemovalCause::Explicit | RemovalCause::Replaced => {}
            });
        if let Some(ttl) = o.memory_ttl {
            b = b.time_to_live(ttl);
        }
        if let Some(tti) = o.memory_tti {
            b = b.time_to_idle(tti);
        }
        MemoryTier {
            cache: b.build(),
            capacity: o.memory_bytes,
            policy: o.memory_policy,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            removals,
        }
    }

    /// Looks `key` up, counting a hit or a miss.
    pub(crate) fn get(&self, key: &MemKey) -> Option<CacheValue> {
        let v = self.cache.get(key);
        let c = if v.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        c.fetch_add(1, Ordering::Relaxed);
        v
    }

    pub(crate) fn contains(&self, key: &MemKey) -> bool {
        self.cache.contains_key(key)
    }

    pub(crate) fn insert(&self, key: MemKey, value: CacheValue) {
        self.cache.insert(key, value);
    }

    pub(crate) fn remove(&self, key: &MemKey) {
        self.cache.invalidate(key);
    }

    /// Removes every entry of `ns` (all entries when `None`).
    pub(crate) fn clear(&self, ns: Option<&Namespace>) {
        match ns {
            None => self.cache.invalidate_all(),
            Some(ns) => {
                let keys: Vec<MemKey> = self
                    .cache
                    .iter()
                    .filter(|(k, _)| &k.0 == ns)
                    .map(|(k, _)| (*k).clone())
                    .collect();
                for k in keys {
                    self.cache.invalidate(&k);
                }
            }
        }
        self.cache.run_pending_tasks();
    }

    /// Keys of `ns` held now.
    pub(crate) fn keys(&self, ns: &Namespace) -> Vec<CacheKey> {
        self.cache
            .iter()
            .filter(|(k, _)| &k.0 == ns)
            .map(|(k, _)| k.1)
            .collect()
    }

    pub(crate) fn stats(&self) -> TierStats {
        // moka applies inserts and evictions to its counters lazily; settle them first.
        self.cache.run_pending_tasks();
        TierStats::new(
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.removals.evictions.load(Ordering::Relaxed),
            self.removals.expirations.load(Ordering::Relaxed),
            self.cache.weighted_size(),
            self.cache.entry_count(),
            self.capacity,
            self.policy.to_string(),
        )
    }
}
