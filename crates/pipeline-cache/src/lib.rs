//! tickpipe's two-tier cache: Arrow record batches and byte blobs under 128-bit content
//! keys, in a memory tier ([moka], bounded by bytes, TinyLFU or LRU, TTL and time-to-idle)
//! over a disk tier ([redb], bounded by bytes, LRU/LFU/TTL eviction, values stored as
//! zstd-compressed Arrow IPC with a checksum).
//!
//! Main types: [`CacheManager`] (the seed's Cache Manager: `put`, `get`, `put_bytes`,
//! `get_bytes`, `get_stats`, plus `clear`, `prune`, `verify`), [`CacheNamespace`] (the same
//! API within one [`Namespace`]: `stage-output`, `state`, `meta`, `user`), [`WriteBatch`]
//! (several values and pins in one transaction), [`CacheKey`] (`CacheKey::of(parts)`),
//! [`CacheStats`] (serialisable, per tier) and [`CacheBuilder`] (settings, also from the
//! run config's `[cache]` section).
//!
//! ```
//! use pipeline_cache::{CacheKey, CacheManager};
//! let dir = tempfile::tempdir()?;
//! let cache = CacheManager::builder().dir(dir.path()).memory_bytes(16 << 20).build()?;
//! let batch = arrow_array::record_batch!(("price", Float64, [101.5, 101.25]))?;
//! let key = CacheKey::of(["trades_2024-01-02.csv|size|mtime|hash", "clean:v1"]);
//! cache.put(key, &batch)?;
//! assert_eq!(cache.get(key)?, Some(batch));
//! assert_eq!(cache.get(CacheKey::of(["never put"]))?, None);
//! let stats = cache.get_stats()?;
//! assert_eq!((stats.hits, stats.misses), (1, 1));
//! println!("{}", serde_json::to_string(&stats)?); // the run summary's `cache` object
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//!
//! - **Reads** look in memory, then on disk; a disk hit is decoded (checksum, zstd, IPC)
//!   and promoted to memory. A damaged entry (bad checksum, truncated, undecodable, another
//!   format version) is dropped, counted in [`DiskStats::corrupt`], logged and answered as
//!   a miss: it is never returned.
//! - **Writes** go to both tiers. A disk write is one redb transaction (values, access
//!   metadata and byte totals together), so a killed process leaves the cache as of its
//!   last commit. Single puts commit without fsync (redb's `Durability::None`): a crash
//!   loses at most the last 64 MiB of them, which the next run recomputes; a
//!   [`WriteBatch`] is durable by default, and dropping the manager makes everything
//!   durable.
//! - **Eviction** on disk happens in the writing transaction when the stored bytes pass the
//!   bound (`[pipeline] cache_max_size`): expired entries first, then by policy down to 90%
//!   of the bound. Entries written by that same transaction and pinned entries are never
//!   evicted. Access times and hit counts (memory hits included) are buffered and applied
//!   before each eviction decision.
//! - **One process per cache directory.** redb locks its file; a second manager on the
//!   same directory fails at once with [`CacheError::Busy`], whose message names the holder
//!   (pid, command line, since when) from the `holder.json` the holder wrote. Within a
//!   process, share one manager (`Arc<CacheManager>`); it is `Send + Sync`.
//! - **Large values** are stored whole (redb keeps a value in contiguous pages and reads it
//!   in one piece; splitting would only add bookkeeping). Measured with
//!   `examples/cache_bench` on a busy 2-core machine: a 130 MB value reads back from disk
//!   at 237–264 MB/s against 366–409 MB/s for 3 MB values, so cache a file's output as
//!   chunk-sized entries where read speed matters. A value larger than the whole disk
//!   bound is not stored ([`DiskStats::rejected`]).
//!
//! # pipeline-io's metadata cache
//!
//! pipeline-io caches per-file sniffing results (the `inspect` report and the parallel
//! decoder's block boundaries) by file fingerprint. It used to keep them in a redb file of
//! its own, opened for each lookup; now it asks a [`pipeline_core::MetaStore`] (a two-method
//! trait in pipeline-core, since stage crates cannot depend on this crate) through
//! `ReadOptions::meta_cache`, and [`CacheManager`] implements that trait in the `meta`
//! namespace. One cache directory, one lock, one byte bound, one set of stats; `clear`,
//! `prune` and `--no-cache` cover the metadata too:
//!
//! ```
//! # use std::sync::Arc;
//! # use pipeline_cache::CacheManager;
//! # let dir = tempfile::tempdir()?;
//! let cache = Arc::new(CacheManager::open(dir.path())?);
//! let meta = pipeline_core::MetaCache::new(cache.clone()); // for ReadOptions::meta_cache
//! meta.put("/data/day1.csv|1234|...", b"{\"rows\": 10}");
//! assert!(meta.get("/data/day1.csv|1234|...").is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [moka]: https://docs.rs/moka
//! [redb]: https://docs.rs/redb

mod bench;
mod clock;
mod codec;
mod disk;
mod error;
mod holder;
mod key;
mod manager;
mod memory;
mod options;
mod stats;

pub use bench::{BenchConfig, BenchReport, LargeValue, Throughput, default_bench_dir, run_bench};
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::{CacheValue, FORMAT_VERSION, ValueKind};
pub use disk::{EntryInfo, MaintenanceReport, Prune};
pub use error::{CacheError, Result};
pub use holder::Holder;
pub use key::{CacheKey, Namespace};
pub use manager::{CacheManager, CacheNamespace, WriteBatch};
pub use options::{
    CacheBuilder, DB_FILE, DEFAULT_DISK_BYTES, DEFAULT_MEMORY_BYTES, DEFAULT_PAGE_CACHE_BYTES,
    DiskPolicy, HOLDER_FILE, MemoryPolicy,
};
pub use stats::{CacheStats, DiskStats, LifetimeStats, TierStats};
