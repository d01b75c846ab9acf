//! [`CacheStats`]: hits, misses, evictions and sizes per tier, for the run summary's `cache`
//! object and `tickpipe cache stats`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One tier's counters. Hits, misses, evictions and expirations count this process's
/// lookups; bytes and entries are what the tier holds now.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TierStats {
    /// Lookups the tier answered.
    pub hits: u64,
    /// Lookups the tier could not answer.
    pub misses: u64,
    /// `hits / (hits + misses)`; 0 before the first lookup.
    pub hit_rate: f64,
    /// Entries removed to stay under the byte bound.
    pub evictions: u64,
    /// Entries removed because their time to live (or idle) passed.
    pub expirations: u64,
    /// Bytes held: Arrow buffers and blobs in memory; stored (compressed) values on disk.
    pub bytes: u64,
    /// Entries held.
    pub entries: u64,
    /// The byte bound.
    pub capacity_bytes: u64,
    /// The eviction policy (`tinylfu`, `lru`, `lfu`, `ttl`).
    pub policy: String,
}

impl TierStats {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        hits: u64,
        misses: u64,
        evictions: u64,
        expirations: u64,
        bytes: u64,
        entries: u64,
        capacity_bytes: u64,
        policy: String,
    ) -> TierStats {
        TierStats {
            hits,
            misses,
            hit_rate: rate(hits, misses),
            evictions,
            expirations,
            bytes,
            entries,
            capacity_bytes,
            policy,
        }
    }
}

/// The disk tier's counters: [`TierStats`] for this process, plus integrity counters, pins,
/// the file, and counters kept in the database since it was created (or cleared).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DiskStats {
    /// This process's lookups, and what the tier holds now.
    #[serde(flatten)]
    pub tier: TierStats,
    /// Entries found damaged (bad checksum, truncated, undecodable, other format version),
    /// dropped and answered as misses, in this process.
    pub corrupt: u64,
    /// Values not stored because they alone exceed the byte bound, in this process.
    pub rejected: u64,
    /// Pinned entries (never evicted, never expired).
    pub pinned_entries: u64,
    /// Bytes of pinned entries.
    pub pinned_bytes: u64,
    /// Size of the database file (≥ `bytes`: B-tree pages and free space; `compact` shrinks
    /// it).
    pub file_bytes: u64,
    /// The cache directory.
    pub dir: PathBuf,
    /// Counters kept in the database across processes.
    pub lifetime: LifetimeStats,
}

/// Disk-tier counters summed over every process that used the cache since it was created or
/// last cleared.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LifetimeStats {
    /// Disk hits.
    pub hits: u64,
    /// Disk misses.
    pub misses: u64,
    /// `hits / (hits + misses)`.
    pub hit_rate: f64,
    /// Evictions.
    pub evictions: u64,
    /// Expirations.
    pub expirations: u64,
    /// Damaged entries dropped.
    pub corrupt: u64,
}

/// What [`CacheManager::get_stats`](crate::CacheManager::get_stats) returns: overall
/// lookups, then each tier (`None` when the tier is off).
///
/// A lookup is one `get`: a hit when either tier had the value. Serialises to the JSON the
/// run summary's `cache` object carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CacheStats {
    /// `get` calls.
    pub lookups: u64,
    /// Lookups answered by either tier.
    pub hits: u64,
    /// Lookups neither tier could answer.
    pub misses: u64,
    /// `hits / lookups`; 0 before the first lookup.
    pub hit_rate: f64,
    /// The memory tier.
    pub memory: Option<TierStats>,
    /// The disk tier.
    pub disk: Option<DiskStats>,
}

pub(crate) fn rate(hits: u64, misses: u64) -> f64 {
    let n = hits + misses;
    if n == 0 { 0.0 } else { hits as f64 / n as f64 }
}
