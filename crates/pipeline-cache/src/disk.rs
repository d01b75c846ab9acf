//! The disk tier: checksummed values in a redb database, with access metadata in a table of
//! its own, bounded by bytes, evicting by LRU, LFU or TTL.
//!
//! Tables (all keyed by `(namespace, key)` except the counters):
//! - `cache_values_v1`: the stored value (see `codec`).
//! - `cache_access_v1`: created, last access, hits, sizes, kind, pinned (42 bytes).
//! - `cache_counters_v1`: totals (`bytes`, `entries`) kept exact by updating them in the same
//!   transaction as the entries, and lifetime counters (`hits`, `misses`, `evictions`,
//!   `expirations`, `corrupt`).
//!
//! Every change is one redb write transaction, so a process killed mid-write leaves the
//! database as of its last commit: values, metadata and totals always agree.
//!
//! Reads do not write: a hit's new last-access time and hit count go to an in-memory buffer
//! that is applied, in one non-durable transaction, before any eviction decision, when it
//! grows past [`PENDING_ACCESS_FLUSH`] entries, and on flush. Losing that buffer in a crash
//! only ages some entries' access stamps, which eviction tolerates.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError,
    TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::codec::{self, CacheValue, Corruption, Encoded, ValueKind};
use crate::error::{CacheError, Result};
use crate::holder::Holder;
use crate::key::{CacheKey, Namespace};
use crate::options::{DB_FILE, DiskPolicy, HOLDER_FILE, Options};
use crate::stats::{DiskStats, LifetimeStats, TierStats, rate};

const VALUES: TableDefinition<(&str, u128), &[u8]> = TableDefinition::new("cache_values_v1");
const ACCESS: TableDefinition<(&str, u128), &[u8]> = TableDefinition::new("cache_access_v1");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("cache_counters_v1");

const C_BYTES: &str = "bytes";
const C_ENTRIES: &str = "entries";
const C_HITS: &str = "hits";
const C_MISSES: &str = "misses";
const C_EVICTIONS: &str = "evictions";
const C_EXPIRATIONS: &str = "expirations";
const C_CORRUPT: &str = "corrupt";

/// Buffered access updates applied once this many keys are waiting: one small non-durable
/// transaction per 4,096 hits keeps the write cost of reads negligible.
const PENDING_ACCESS_FLUSH: usize = 4096;

/// Eviction goes down to this share of the bound (in thousandths), so that a full cache
/// scans its metadata once per ~10% of its size written instead of on every put.
const EVICT_TO_PERMILLE: u64 = 900;

/// Non-durable writes (single puts) are made durable once this many bytes wait: a crash
/// then loses at most 64 MiB of cached values (recomputed on the next run), while a stream of
/// small puts does not pay an fsync each.
const DURABLE_EVERY_BYTES: u64 = 64 << 20;

/// Access metadata of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Access {
    pub created_ms: u64,
    pub last_access_ms: u64,
    pub hits: u64,
    /// Stored bytes (header and payload).
    pub size: u64,
    /// Size in memory once decoded.
    pub raw_size: u64,
    pub kind: ValueKind,
    pub pinned: bool,
}

const ACCESS_BYTES: usize = 42;

impl Access {
    fn to_bytes(self) -> [u8; ACCESS_BYTES] {
        let mut b = [0u8; ACCESS_BYTES];
        for (i, v) in [
            self.created_ms,
            self.last_access_ms,
            self.hits,
            self.size,
            self.raw_size,
        ]
        .into_iter()
        .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        b[40] = self.kind.code();
        b[41] = u8::from(self.pinned);
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Access> {
        if b.len() != ACCESS_BYTES || b[41] > 1 {
            return None;
        }
        let u = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(a)
        };
        Some(Access {
            created_ms: u(0),
            last_access_ms: u(1),
            hits: u(2),
            size: u(3),
            raw_size: u(4),
            kind: ValueKind::from_code(b[40])?,
            pinned: b[41] == 1,
        })
    }
}

/// One entry as listed by [`CacheNamespace::entries`](crate::CacheNamespace::entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    /// The namespace.
    pub namespace: Namespace,
    /// The key.
    pub key: CacheKey,
    /// Batches or bytes.
    pub kind: ValueKind,
    /// Bytes on disk (compressed, with the 32-byte header).
    pub stored_bytes: u64,
    /// Bytes in memory once decoded.
    pub memory_bytes: u64,
    /// When it was written, in ms since the Unix epoch (by the cache's clock).
    pub created_ms: u64,
    /// When it was last read (or written).
    pub last_access_ms: u64,
    /// Reads since it was written.
    pub hits: u64,
    /// Whether it is pinned (never evicted or expired).
    pub pinned: bool,
}

/// What [`CacheManager::prune`](crate::CacheManager::prune) removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prune {
    /// Evict by the disk policy until the stored bytes are at most this. `None`: no size
    /// target.
    pub max_bytes: Option<u64>,
    /// Remove entries not read (or written) for this long. `None`: no age limit.
    pub unused_for: Option<Duration>,
}

/// What a prune, clear or verify did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MaintenanceReport {
    /// Entries removed.
    pub removed: u64,
    /// Stored bytes they held.
    pub freed_bytes: u64,
    /// Entries checked (verify only).
    pub checked: u64,
    /// Damaged entries among those removed (verify only).
    pub corrupt: u64,
    /// Stored bytes left.
    pub bytes_after: u64,
    /// Entries left.
    pub entries_after: u64,
}

#[derive(Debug, Default)]
struct Session {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    corrupt: AtomicU64,
    rejected: AtomicU64,
    /// Hits and misses not yet added to the lifetime counters.
    unflushed_hits: AtomicU64,
    unflushed_misses: AtomicU64,
    /// Bytes written by non-durable commits since the last durable one.
    undurable_bytes: AtomicU64,
}

type PendingKey = (Namespace, CacheKey);

/// A value to write.
pub(crate) struct DiskPut {
    pub ns: Namespace,
    pub key: CacheKey,
    pub enc: Encoded,
}

pub(crate) struct DiskTier {
    db: Database,
    dir: PathBuf,
    path: PathBuf,
    max_bytes: u64,
    policy: DiskPolicy,
    ttl_ms: Option<u64>,
    clock: std::sync::Arc<dyn Clock>,
    /// Last access time and hits since the last flush, per key.
    pending: Mutex<HashMap<PendingKey, (u64, u64)>>,
    session: Session,
}

/// What a write transaction changes in the counters.
#[derive(Debug, Default)]
struct Delta {
    evictions: u64,
    expirations: u64,
    corrupt: u64,
    hits: u64,
    misses: u64,
}

/// The three tables of one write transaction, with the totals as of now.
struct Tables<'t> {
    values: redb::Table<'t, (&'static str, u128), &'static [u8]>,
    access: redb::Table<'t, (&'static str, u128), &'static [u8]>,
    counters: redb::Table<'t, &'static str, u64>,
    /// The database file, for errors.
    path: PathBuf,
    bytes: u64,
    entries: u64,
    delta: Delta,
}

impl DiskTier {
    /// Opens (or creates) the cache in `dir`.
    pub(crate) fn open(dir: &Path, o: &Options) -> Result<DiskTier> {
        std::fs::create_dir_all(dir).map_err(|source| CacheError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let mut builder = redb::Builder::new();
        builder.set_cache_size(o.page_cache_bytes);
        let db = match builder.create(&path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(CacheError::Busy {
                    dir: dir.to_path_buf(),
                    holder: Holder::read(&dir.join(HOLDER_FILE)),
                });
            }
            Err(e) if unreadable(&e) => {
                // The file is not a database this redb can read. The cache holds only what
                // can be recomputed, so it is set aside (kept for inspection) and started
                // afresh rather than failing the run.
                let aside = path.with_extension(format!("redb.unreadable-{}", o.clock.now_ms()));
                tracing::warn!(
                    "cache {}: {e}; moved it to {} and starting an empty cache",
                    path.display(),
                    aside.display()
                );
                std::fs::rename(&path, &aside).map_err(|source| CacheError::Io {
                    path: path.clone(),
                    source,
                })?;
                builder.create(&path).map_err(|e| db_err(&path, e))?
            }
            Err(e) => return Err(db_err(&path, e)),
        };
        Holder::this_process()
            .write(&dir.join(HOLDER_FILE))
            .map_err(|source| CacheError::Io {
                path: dir.join(HOLDER_FILE),
                source,
            })?;
        let tier = DiskTier {
            db,
            dir: dir.to_path_buf(),
            path,
            max_bytes: o.disk_bytes,
            policy: o.disk_policy,
            ttl_ms: o.disk_ttl.map(|d| d.as_millis() as u64),
            clock: o.clock.clone(),
            pending: Mutex::new(HashMap::new()),
            session: Session::default(),
        };
        // Create the tables, so that readers always find them.
        tier.write_txn(true, |_| Ok(()))?;
        Ok(tier)
    }

    fn err(&self, e: impl Into<redb::Error>) -> CacheError {
        db_err(&self.path, e)
    }

    fn expired(&self, a: &Access, now: u64) -> bool {
        !a.pinned
            && self
                .ttl_ms
                .is_some_and(|ttl| now.saturating_sub(a.created_ms) >= ttl)
    }

    /// Runs `f` in one write transaction and commits it (durably when `durable`), then adds
    /// its counter changes to the session.
    fn write_txn<T>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Tables<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut wtx: WriteTransaction = self.db.begin_write().map_err(|e| self.err(e))?;
        if durable {
            // Durable commits also save redb's allocator state, so reopening after a crash
            // is near instant instead of a walk over the whole file (which for a cache of
            // several GB would make the next run wait seconds before its first read).
            wtx.set_quick_repair(true);
        } else {
            wtx.set_durability(Durability::None)
                .map_err(|e| self.err(e))?;
        }
        let (out, delta) = {
            let mut t = self.tables(&wtx)?;
            let out = f(&mut t)?;
            let delta = std::mem::take(&mut t.delta);
            t.store_counters(&delta).map_err(|e| self.err(e))?;
            (out, delta)
        };
        wtx.commit().map_err(|e| self.err(e))?;
        let s = &self.session;
        s.evictions.fetch_add(delta.evictions, Ordering::Relaxed);
        s.expirations
            .fetch_add(delta.expirations, Ordering::Relaxed);
        s.corrupt.fetch_add(delta.corrupt, Ordering::Relaxed);
        Ok(out)
    }

    fn tables<'t>(&self, wtx: &'t WriteTransaction) -> Result<Tables<'t>> {
        let e = |e: redb::TableError| self.err(e);
        let values = wtx.open_table(VALUES).map_err(e)?;
        let access = wtx.open_table(ACCESS).map_err(e)?;
        let counters = wtx.open_table(COUNTERS).map_err(e)?;
        let get = |k: &str| -> Result<u64> {
            Ok(counters
                .get(k)
                .map_err(|e| self.err(e))?
                .map_or(0, |g| g.value()))
        };
        let bytes = get(C_BYTES)?;
        let entries = get(C_ENTRIES)?;
        Ok(Tables {
            values,
            access,
            counters,
            path: self.path.clone(),
            bytes,
            entries,
            delta: Delta::default(),
        })
    }

    /// Looks a value up; expired and damaged entries are removed and answered as misses.
    pub(crate) fn get(&self, ns: &Namespace, key: CacheKey) -> Result<Option<CacheValue>> {
        enum Found {
            Miss,
            Hit(CacheValue),
            Expired,
            Corrupt(Corruption),
        }
        let now = self.clock.now_ms();
        let k = (ns.as_str(), key.0);
        let found = {
            let rtx = self.db.begin_read().map_err(|e| self.err(e))?;
            let values = rtx.open_table(VALUES).map_err(|e| self.err(e))?;
            let access = rtx.open_table(ACCESS).map_err(|e| self.err(e))?;
            match values.get(k).map_err(|e| self.err(e))? {
                None => Found::Miss,
                Some(v) => {
                    let a = access
                        .get(k)
                        .map_err(|e| self.err(e))?
                        .and_then(|a| Access::from_bytes(a.value()));
                    match a {
                        None => Found::Corrupt(Corruption::Undecodable(
                            "missing or damaged access record".into(),
                        )),
                        Some(a) if self.expired(&a, now) => Found::Expired,
                        Some(_) => match codec::decode(v.value()) {
                            Ok(val) => Found::Hit(val),
                            Err(c) => Found::Corrupt(c),
                        },
                    }
                }
            }
        };
        let hit = match found {
            Found::Hit(v) => {
                self.note_access(ns, key, now)?;
                Some(v)
            }
            Found::Miss => None,
            Found::Expired => {
                self.write_txn(false, |t| {
                    if let Some(a) = t.access_of(ns.as_str(), key.0)?
                        && self.expired(&a, self.clock.now_ms())
                    {
                        t.remove(ns.as_str(), key.0)?;
                        t.delta.expirations += 1;
                    }
                    Ok(())
                })?;
                None
            }
            Found::Corrupt(c) => {
                self.drop_if_damaged(ns, key, &c)?;
                None
            }
        };
        let s = &self.session;
        if hit.is_some() {
            s.hits.fetch_add(1, Ordering::Relaxed);
            s.unflushed_hits.fetch_add(1, Ordering::Relaxed);
        } else {
            s.misses.fetch_add(1, Ordering::Relaxed);
            s.unflushed_misses.fetch_add(1, Ordering::Relaxed);
        }
        Ok(hit)
    }

    /// Removes `key` if it is still damaged (another thread may have rewritten it since it
    /// was read), counting it as corrupt.
    fn drop_if_damaged(&self, ns: &Namespace, key: CacheKey, seen: &Corruption) -> Result<()> {
        let dropped = self.write_txn(true, |t| {
            let k = (ns.as_str(), key.0);
            let damaged = match t.values.get(k).map_err(|e| self.err(e))? {
                None => false,
                Some(v) => codec::decode(v.value()).is_err() || t.access_of(k.0, k.1)?.is_none(),
            };
            if damaged {
                t.remove_any(k.0, k.1)?;
                t.delta.corrupt += 1;
            }
            Ok(damaged)
        })?;
        if dropped {
            tracing::warn!(
                "cache {}: entry {ns}/{key} is damaged ({seen}); dropped it, it will be recomputed",
                self.dir.display()
            );
        }
        Ok(())
    }

    /// Records a read of `key` (also used for memory-tier hits, so that the disk tier's LRU
    /// and LFU see the entries that are hot in memory).
    pub(crate) fn note_access(&self, ns: &Namespace, key: CacheKey, now: u64) -> Result<()> {
        let full = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let e = p.entry((ns.clone(), key)).or_insert((now, 0));
            e.0 = e.0.max(now);
            e.1 += 1;
            p.len() >= PENDING_ACCESS_FLUSH
        };
        if full {
            self.flush(false)?;
        }
        Ok(())
    }

    fn take_pending(&self) -> HashMap<PendingKey, (u64, u64)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Applies buffered access updates and lifetime hit/miss counts.
    pub(crate) fn flush(&self, durable: bool) -> Result<()> {
        let pending = self.take_pending();
        let hits = self.session.unflushed_hits.swap(0, Ordering::Relaxed);
        let misses = self.session.unflushed_misses.swap(0, Ordering::Relaxed);
        self.write_txn(durable, |t| {
            t.apply_pending(pending)?;
            t.delta.hits += hits;
            t.delta.misses += misses;
            Ok(())
        })?;
        if durable {
            self.session.undurable_bytes.store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes `puts` (and pins `pins`) in one transaction, evicting by policy if the cache
    /// goes over its bound; the entries written are not evicted by their own write.
    pub(crate) fn write(
        &self,
        puts: Vec<DiskPut>,
        pins: &[(Namespace, CacheKey)],
        durable: bool,
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let written: u64 = puts.iter().map(|p| p.enc.bytes.len() as u64).sum();
        let durable = durable
            || self.session.undurable_bytes.load(Ordering::Relaxed) + written
                >= DURABLE_EVERY_BYTES;
        let pending = self.take_pending();
        let mut rejected = 0u64;
        self.write_txn(durable, |t| {
            t.apply_pending(pending)?;
            let mut protect = HashSet::new();
            for p in &puts {
                let size = p.enc.bytes.len() as u64;
                if size > self.max_bytes {
                    rejected += 1;
                    tracing::warn!(
                        "cache {}: {}/{} is {size} bytes, more than the whole cache ({} bytes); not stored",
                        self.dir.display(),
                        p.ns,
                        p.key,
                        self.max_bytes
                    );
                    continue;
                }
                let k = (p.ns.as_str(), p.key.0);
                let old = t.remove(k.0, k.1)?;
                t.values
                    .insert(k, p.enc.bytes.as_slice())
                    .map_err(|e| self.err(e))?;
                let a = Access {
                    created_ms: now,
                    last_access_ms: now,
                    hits: 0,
                    size,
                    raw_size: p.enc.raw_size,
                    kind: p.enc.kind,
                    pinned: old.is_some_and(|o| o.pinned),
                };
                t.access
                    .insert(k, a.to_bytes().as_slice())
                    .map_err(|e| self.err(e))?;
                t.bytes += size;
                t.entries += 1;
                protect.insert((p.ns.as_str().to_string(), p.key.0));
            }
            for (ns, key) in pins {
                t.set_pinned(ns.as_str(), key.0, true)?;
            }
            let target = self.max_bytes / 1000 * EVICT_TO_PERMILLE;
            t.make_room(self, now, self.max_bytes, target, &protect)
        })?;
        self.session.rejected.fetch_add(rejected, Ordering::Relaxed);
        if durable {
            self.session.undurable_bytes.store(0, Ordering::Relaxed);
        } else {
            self.session
                .undurable_bytes
                .fetch_add(written, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether `key` is held (and not expired); not counted as a lookup.
    pub(crate) fn contains(&self, ns: &Namespace, key: CacheKey) -> Result<bool> {
        let rtx = self.db.begin_read().map_err(|e| self.err(e))?;
        let access = rtx.open_table(ACCESS).map_err(|e| self.err(e))?;
        let a = access
            .get((ns.as_str(), key.0))
            .map_err(|e| self.err(e))?
            .and_then(|a| Access::from_bytes(a.value()));
        Ok(a.is_some_and(|a| !self.expired(&a, self.clock.now_ms())))
    }

    /// Removes `key`; whether it was there.
    pub(crate) fn remove(&self, ns: &Namespace, key: CacheKey) -> Result<bool> {
        self.write_txn(true, |t| t.remove_any(ns.as_str(), key.0))
    }

    /// Pins or unpins `key`; whether it was there.
    pub(crate) fn set_pinned(&self, ns: &Namespace, key: CacheKey, pinned: bool) -> Result<bool> {
        self.write_txn(true, |t| t.set_pinned(ns.as_str(), key.0, pinned))
    }

    /// Entries of `ns`, in key order.
    pub(crate) fn entries(&self, ns: &Namespace) -> Result<Vec<EntryInfo>> {
        let rtx = self.db.begin_read().map_err(|e| self.err(e))?;
        let access = rtx.open_table(ACCESS).map_err(|e| self.err(e))?;
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        let range = access
            .range((ns.as_str(), 0u128)..=(ns.as_str(), u128::MAX))
            .map_err(|e| self.err(e))?;
        for item in range {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let Some(a) = Access::from_bytes(v.value()) else {
                continue;
            };
            if self.expired(&a, now) {
                continue;
            }
            out.push(EntryInfo {
                namespace: ns.clone(),
                key: CacheKey(k.value().1),
                kind: a.kind,
                stored_bytes: a.size,
                memory_bytes: a.raw_size,
                created_ms: a.created_ms,
                last_access_ms: a.last_access_ms,
                hits: a.hits,
                pinned: a.pinned,
            });
        }
        Ok(out)
    }

    /// Removes every entry of `ns`, or everything (and resets the lifetime counters) when
    /// `None`.
    pub(crate) fn clear(&self, ns: Option<&Namespace>) -> Result<MaintenanceReport> {
        self.take_pending();
        self.write_txn(true, |t| {
            let before = (t.entries, t.bytes);
            match ns {
                None => {
                    t.values.retain(|_, _| false).map_err(|e| self.err(e))?;
                    t.access.retain(|_, _| false).map_err(|e| self.err(e))?;
                    t.counters.retain(|_, _| false).map_err(|e| self.err(e))?;
                    t.bytes = 0;
                    t.entries = 0;
                }
                Some(ns) => {
                    for k in t.keys_in(Some(ns.as_str()))? {
                        t.remove_any(ns.as_str(), k)?;
                    }
                }
            }
            Ok(MaintenanceReport {
                removed: before.0 - t.entries,
                freed_bytes: before.1 - t.bytes,
                bytes_after: t.bytes,
                entries_after: t.entries,
                ..MaintenanceReport::default()
            })
        })
    }

    /// Removes expired entries, entries unused for `p.unused_for`, then evicts by policy
    /// down to `p.max_bytes`. Pinned entries stay.
    pub(crate) fn prune(&self, p: &Prune) -> Result<MaintenanceReport> {
        let now = self.clock.now_ms();
        let pending = self.take_pending();
        self.write_txn(true, |t| {
            t.apply_pending(pending)?;
            let before = (t.entries, t.bytes);
            t.remove_expired(self, now)?;
            if let Some(age) = p.unused_for {
                let age = age.as_millis() as u64;
                for (ns, k, a) in t.all_access()? {
                    if !a.pinned && now.saturating_sub(a.last_access_ms) >= age {
                        t.remove(&ns, k)?;
                        t.delta.evictions += 1;
                    }
                }
            }
            if let Some(max) = p.max_bytes {
                t.make_room(self, now, max, max, &HashSet::new())?;
            }
            Ok(MaintenanceReport {
                removed: before.0 - t.entries,
                freed_bytes: before.1 - t.bytes,
                bytes_after: t.bytes,
                entries_after: t.entries,
                ..MaintenanceReport::default()
            })
        })
    }

    /// Checks every stored value's checksum and that values and metadata pair up; removes
    /// what fails and recomputes the totals.
    pub(crate) fn verify(&self) -> Result<MaintenanceReport> {
        let pending = self.take_pending();
        self.write_txn(true, |t| {
            t.apply_pending(pending)?;
            let before = (t.entries, t.bytes);
            let mut checked = 0;
            let mut bad: Vec<(String, u128)> = Vec::new();
            let mut seen: HashSet<(String, u128)> = HashSet::new();
            for item in t.values.iter().map_err(|e| self.err(e))? {
                let (k, v) = item.map_err(|e| self.err(e))?;
                let (ns, key) = k.value();
                checked += 1;
                let a = t
                    .access
                    .get((ns, key))
                    .map_err(|e| self.err(e))?
                    .and_then(|a| Access::from_bytes(a.value()));
                let ok = a.is_some_and(|a| a.size == v.value().len() as u64)
                    && codec::verify(v.value()).is_ok();
                if ok {
                    seen.insert((ns.to_string(), key));
                } else {
                    bad.push((ns.to_string(), key));
                }
            }
            let corrupt = bad.len() as u64;
            for (ns, key) in &bad {
                t.values
                    .remove((ns.as_str(), *key))
                    .map_err(|e| self.err(e))?;
                t.access
                    .remove((ns.as_str(), *key))
                    .map_err(|e| self.err(e))?;
            }
            // Metadata without a value.
            for (ns, key, _) in t.all_access()? {
                if !seen.contains(&(ns.clone(), key)) {
                    t.access
                        .remove((ns.as_str(), key))
                        .map_err(|e| self.err(e))?;
                }
            }
            let (mut bytes, mut entries) = (0, 0);
            for (_, _, a) in t.all_access()? {
                bytes += a.size;
                entries += 1;
            }
            t.bytes = bytes;
            t.entries = entries;
            t.delta.corrupt += corrupt;
            Ok(MaintenanceReport {
                removed: before.0.saturating_sub(entries),
                freed_bytes: before.1.saturating_sub(bytes),
                checked,
                corrupt,
                bytes_after: bytes,
                entries_after: entries,
            })
        })
    }

    /// Shrinks the file to what it holds.
    pub(crate) fn compact(&mut self) -> Result<()> {
        self.flush(true)?;
        self.db.compact().map_err(|e| self.err(e))?;
        Ok(())
    }

    pub(crate) fn stats(&self) -> Result<DiskStats> {
        self.flush(false)?;
        let rtx = self.db.begin_read().map_err(|e| self.err(e))?;
        let counters = rtx.open_table(COUNTERS).map_err(|e| self.err(e))?;
        let get = |k: &str| -> Result<u64> {
            Ok(counters
                .get(k)
                .map_err(|e| self.err(e))?
                .map_or(0, |g| g.value()))
        };
        let access = rtx.open_table(ACCESS).map_err(|e| self.err(e))?;
        let (mut pinned_entries, mut pinned_bytes) = (0, 0);
        for item in access.iter().map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            if let Some(a) = Access::from_bytes(v.value())
                && a.pinned
            {
                pinned_entries += 1;
                pinned_bytes += a.size;
            }
        }
        let s = &self.session;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (hits, misses) = (get(C_HITS)?, get(C_MISSES)?);
        Ok(DiskStats {
            tier: TierStats::new(
                ld(&s.hits),
                ld(&s.misses),
                ld(&s.evictions),
                ld(&s.expirations),
                get(C_BYTES)?,
                get(C_ENTRIES)?,
                self.max_bytes,
                self.policy.to_string(),
            ),
            corrupt: ld(&s.corrupt),
            rejected: ld(&s.rejected),
            pinned_entries,
            pinned_bytes,
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            dir: self.dir.clone(),
            lifetime: LifetimeStats {
                hits,
                misses,
                hit_rate: rate(hits, misses),
                evictions: get(C_EVICTIONS)?,
                expirations: get(C_EXPIRATIONS)?,
                corrupt: get(C_CORRUPT)?,
            },
        })
    }

    /// The clock's time now.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DiskTier {
    fn drop(&mut self) {
        if let Err(e) = self.flush(true) {
            tracing::warn!("cache {}: final flush failed: {e}", self.dir.display());
        }
        // The record goes before the lock (the database, dropped after this body), so a
        // record is never missing while the lock is held.
        let _ = std::fs::remove_file(self.dir.join(HOLDER_FILE));
    }
}

/// Whether opening failed because the file is not a database this redb can read (garbage,
/// damaged header, another file format version), as opposed to I/O trouble.
fn unreadable(e: &DatabaseError) -> bool {
    match e {
        DatabaseError::UpgradeRequired(_) => true,
        DatabaseError::Storage(StorageError::Corrupted(_)) => true,
        DatabaseError::Storage(StorageError::Io(io)) => {
            io.kind() == std::io::ErrorKind::InvalidData
        }
        _ => false,
    }
}

/// A redb error; an I/O error inside it stays an I/O error with its kind (a full disk is
/// the environment's fault, not a usage error).
fn db_err(path: &Path, e: impl Into<redb::Error>) -> CacheError {
    match e.into() {
        redb::Error::Io(source) => CacheError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => CacheError::Db {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

impl Tables<'_> {
    fn store_counters(&mut self, d: &Delta) -> std::result::Result<(), StorageError> {
        self.counters.insert(C_BYTES, self.bytes)?;
        self.counters.insert(C_ENTRIES, self.entries)?;
        for (name, add) in [
            (C_HITS, d.hits),
            (C_MISSES, d.misses),
            (C_EVICTIONS, d.evictions),
            (C_EXPIRATIONS, d.expirations),
            (C_CORRUPT, d.corrupt),
        ] {
            if add > 0 {
                let old = self.counters.get(name)?.map_or(0, |g| g.value());
                self.counters.insert(name, old + add)?;
            }
        }
        Ok(())
    }

    fn access_of(&self, ns: &str, key: u128) -> Result<Option<Access>> {
        Ok(self
            .access
            .get((ns, key))
            .map_err(|e| db_err(&self.path, e))?
            .and_then(|a| Access::from_bytes(a.value())))
    }

    /// Removes an entry with valid metadata, keeping the totals; returns its metadata.
    fn remove(&mut self, ns: &str, key: u128) -> Result<Option<Access>> {
        let Some(a) = self.access_of(ns, key)? else {
            return Ok(None);
        };
        self.values
            .remove((ns, key))
            .map_err(|e| db_err(&self.path, e))?;
        self.access
            .remove((ns, key))
            .map_err(|e| db_err(&self.path, e))?;
        self.bytes = self.bytes.saturating_sub(a.size);
        self.entries = self.entries.saturating_sub(1);
        Ok(Some(a))
    }

    /// Removes whatever is stored under the key, even without valid metadata.
    fn remove_any(&mut self, ns: &str, key: u128) -> Result<bool> {
        if self.remove(ns, key)?.is_some() {
            return Ok(true);
        }
        let v = self
            .values
            .remove((ns, key))
            .map_err(|e| db_err(&self.path, e))?
            .is_some();
        let a = self
            .access
            .remove((ns, key))
            .map_err(|e| db_err(&self.path, e))?
            .is_some();
        Ok(v || a)
    }

    fn set_pinned(&mut self, ns: &str, key: u128, pinned: bool) -> Result<bool> {
        let Some(mut a) = self.access_of(ns, key)? else {
            return Ok(false);
        };
        a.pinned = pinned;
        self.access
            .insert((ns, key), a.to_bytes().as_slice())
            .map_err(|e| db_err(&self.path, e))?;
        Ok(true)
    }

    fn apply_pending(&mut self, pending: HashMap<PendingKey, (u64, u64)>) -> Result<()> {
        for ((ns, key), (last, hits)) in pending {
            if let Some(mut a) = self.access_of(ns.as_str(), key.0)? {
                a.last_access_ms = a.last_access_ms.max(last);
                a.hits += hits;
                self.access
                    .insert((ns.as_str(), key.0), a.to_bytes().as_slice())
                    .map_err(|e| db_err(&self.path, e))?;
            }
        }
        Ok(())
    }

    fn all_access(&self) -> Result<Vec<(String, u128, Access)>> {
        let mut out = Vec::new();
        for item in self.access.iter().map_err(|e| db_err(&self.path, e))? {
            let (k, v) = item.map_err(|e| db_err(&self.path, e))?;
            if let Some(a) = Access::from_bytes(v.value()) {
                let (ns, key) = k.value();
                out.push((ns.to_string(), key, a));
            }
        }
        Ok(out)
    }

    fn keys_in(&self, ns: Option<&str>) -> Result<Vec<u128>> {
        let Some(ns) = ns else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self
            .values
            .range((ns, 0u128)..=(ns, u128::MAX))
            .map_err(|e| db_err(&self.path, e))?
        {
            out.push(item.map_err(|e| db_err(&self.path, e))?.0.value().1);
        }
        Ok(out)
    }

    /// Removes every expired entry.
    fn remove_expired(&mut self, tier: &DiskTier, now: u64) -> Result<()> {
        if tier.ttl_ms.is_none() {
            return Ok(());
        }
        for (ns, key, a) in self.all_access()? {
            if tier.expired(&a, now) {
                self.remove(&ns, key)?;
                self.delta.expirations += 1;
            }
        }
        Ok(())
    }

    /// If the stored bytes exceed `limit`: removes expired entries, then evicts unpinned,
    /// unprotected entries in policy order until the bytes are at most `target`.
    fn make_room(
        &mut self,
        tier: &DiskTier,
        now: u64,
        limit: u64,
        target: u64,
        protect: &HashSet<(String, u128)>,
    ) -> Result<()> {
        if self.bytes <= limit {
            return Ok(());
        }
        let mut candidates = Vec::new();
        for (ns, key, a) in self.all_access()? {
            if tier.expired(&a, now) {
                self.remove(&ns, key)?;
                self.delta.expirations += 1;
            } else if !a.pinned && !protect.contains(&(ns.clone(), key)) {
                let order = match tier.policy {
                    DiskPolicy::Lru => (a.last_access_ms, a.created_ms),
                    DiskPolicy::Lfu => (a.hits, a.last_access_ms),
                    DiskPolicy::Ttl => (a.created_ms, a.last_access_ms),
                };
                candidates.push((order, ns, key));
            }
        }
        candidates.sort();
        for (_, ns, key) in candidates {
            if self.bytes <= target {
                break;
            }
            self.remove(&ns, key)?;
            self.delta.evictions += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    const SEC: Duration = Duration::from_secs(1);

    /// Stored size of each test value: 1,000 incompressible bytes and the 32-byte header.
    const VALUE: u64 = 1_032;

    /// Ten values fit; the eleventh triggers eviction down to 90% (9,450 bytes), i.e. three
    /// values go (11 × 1,032 = 11,352; minus three = 8,256).
    const MAX: u64 = 10_500;

    fn open(
        dir: &Path,
        policy: DiskPolicy,
        ttl: Option<Duration>,
        clock: &ManualClock,
    ) -> DiskTier {
        let o = Options {
            dir: Some(dir.to_path_buf()),
            disk_bytes: MAX,
            disk_policy: policy,
            disk_ttl: ttl,
            clock: Arc::new(clock.clone()),
            ..Options::default()
        };
        DiskTier::open(dir, &o).unwrap()
    }

    fn k(i: u64) -> CacheKey {
        CacheKey::of([i.to_le_bytes()])
    }

    /// 1,000 bytes that zstd cannot shrink (SplitMix64 output), different per `i`.
    fn blob(i: u64) -> Vec<u8> {
        // Each value's sequence starts at a scrambled point, so no two values share bytes
        // (zstd would shrink a concatenation of overlapping ones).
        let mut s = (i ^ 0x5555)
            .wrapping_mul(0xD6E8_FEB8_6659_FD93)
            .rotate_left(32)
            ^ i;
        (0..125)
            .flat_map(|_| {
                s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)).to_le_bytes()
            })
            .collect()
    }

    fn put(t: &DiskTier, i: u64) {
        let enc = codec::encode_bytes(&blob(i)).unwrap();
        assert_eq!(enc.bytes.len() as u64, VALUE);
        t.write(
            vec![DiskPut {
                ns: Namespace::USER,
                key: k(i),
                enc,
            }],
            &[],
            false,
        )
        .unwrap();
    }

    fn get(t: &DiskTier, i: u64) -> bool {
        match t.get(&Namespace::USER, k(i)).unwrap() {
            Some(CacheValue::Bytes(b)) => {
                assert_eq!(&b[..], &blob(i)[..], "value of {i}");
                true
            }
            Some(other) => panic!("{other:?}"),
            None => false,
        }
    }

    fn present(t: &DiskTier) -> Vec<u64> {
        (0..50)
            .filter(|&i| t.contains(&Namespace::USER, k(i)).unwrap())
            .collect()
    }

    /// Ten values written one second apart, then `reads` (in order, one second apart), then
    /// an eleventh value: returns which of the eleven are left.
    fn survivors(policy: DiskPolicy, reads: &[u64]) -> Vec<u64> {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000_000);
        let t = open(dir.path(), policy, None, &clock);
        for i in 0..10 {
            put(&t, i);
            clock.advance(SEC);
        }
        for &i in reads {
            assert!(get(&t, i));
            clock.advance(SEC);
        }
        put(&t, 10);
        let s = t.stats().unwrap();
        assert_eq!(s.tier.evictions, 3);
        assert_eq!(s.tier.entries, 8);
        assert_eq!(s.tier.bytes, 8 * VALUE);
        present(&t)
    }

    #[test]
    fn lru_evicts_least_recently_used() {
        // 0, 1, 2 were read after everything else was written: 3, 4, 5 are the oldest.
        assert_eq!(
            survivors(DiskPolicy::Lru, &[0, 1, 2]),
            vec![0, 1, 2, 6, 7, 8, 9, 10]
        );
    }

    #[test]
    fn lfu_evicts_least_frequently_used() {
        // Hits: 3 and 7 none, 5 one, 9 two, the rest three. Reading them in rounds makes the
        // rarely read ones the *recently* read ones too, so LRU would choose differently.
        let mut reads = Vec::new();
        for round in 0..3 {
            for i in [0, 1, 2, 4, 6, 8] {
                reads.push(i);
            }
            if round < 2 {
                reads.push(9);
            }
            if round < 1 {
                reads.push(5);
            }
        }
        assert_eq!(
            survivors(DiskPolicy::Lfu, &reads),
            vec![0, 1, 2, 4, 6, 8, 9, 10]
        );
    }

    #[test]
    fn ttl_policy_evicts_oldest_created_even_if_hot() {
        assert_eq!(
            survivors(DiskPolicy::Ttl, &[0, 1, 2, 0, 1, 2]),
            vec![3, 4, 5, 6, 7, 8, 9, 10]
        );
    }

    #[test]
    fn entries_expire_after_their_ttl_unless_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let t = open(
            dir.path(),
            DiskPolicy::Lru,
            Some(Duration::from_secs(60)),
            &clock,
        );
        put(&t, 0);
        put(&t, 2);
        assert!(t.set_pinned(&Namespace::USER, k(2), true).unwrap());
        clock.advance(30 * SEC);
        put(&t, 1);
        clock.advance(29 * SEC);
        assert!(get(&t, 0), "59 s old: still fresh");
        clock.advance(SEC);
        assert!(!get(&t, 0), "60 s old: expired");
        assert!(!t.contains(&Namespace::USER, k(0)).unwrap());
        assert!(get(&t, 1));
        clock.advance(1000 * SEC);
        assert!(!t.contains(&Namespace::USER, k(1)).unwrap());
        assert!(get(&t, 2), "pinned entries never expire");
        let s = t.stats().unwrap();
        assert_eq!(
            s.tier.expirations, 1,
            "only the entry read after expiry is removed so far"
        );
        // A prune removes the other expired entry.
        let r = t.prune(&Prune::default()).unwrap();
        assert_eq!((r.entries_after, r.bytes_after), (1, VALUE));
        assert_eq!(t.stats().unwrap().tier.expirations, 1 + 1);
        assert_eq!(t.stats().unwrap().lifetime.expirations, 2);
    }

    #[test]
    fn pinned_and_just_written_entries_are_never_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let t = open(dir.path(), DiskPolicy::Lru, None, &clock);
        put(&t, 0);
        assert!(t.set_pinned(&Namespace::USER, k(0), true).unwrap());
        for i in 1..40 {
            clock.advance(SEC);
            put(&t, i);
            assert!(
                t.contains(&Namespace::USER, k(i)).unwrap(),
                "{i} evicted by its own write"
            );
        }
        assert!(get(&t, 0), "pinned entry was evicted");
        let s = t.stats().unwrap();
        assert!(s.tier.bytes <= MAX, "{} > {MAX}", s.tier.bytes);
        assert_eq!((s.pinned_entries, s.pinned_bytes), (1, VALUE));
        // Once unpinned it can go: read 39 after it, and prune down to one value.
        assert!(t.set_pinned(&Namespace::USER, k(0), false).unwrap());
        clock.advance(SEC);
        assert!(get(&t, 39));
        let r = t
            .prune(&Prune {
                max_bytes: Some(VALUE),
                unused_for: None,
            })
            .unwrap();
        assert_eq!(r.entries_after, 1);
        assert_eq!(present(&t), vec![39]);
    }

    #[test]
    fn prune_by_age_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let t = open(dir.path(), DiskPolicy::Lru, None, &clock);
        for i in 0..8 {
            put(&t, i);
            clock.advance(10 * SEC);
        }
        // Now: 0 was last used 80 s ago, 7 10 s ago. Read 0 to make it fresh.
        assert!(get(&t, 0));
        let r = t
            .prune(&Prune {
                max_bytes: None,
                unused_for: Some(Duration::from_secs(45)),
            })
            .unwrap();
        assert_eq!(r.removed, 3, "1, 2, 3 unused for 45 s or more (4: 40 s)");
        assert_eq!(present(&t), vec![0, 4, 5, 6, 7]);
        let r = t
            .prune(&Prune {
                max_bytes: Some(2 * VALUE),
                unused_for: None,
            })
            .unwrap();
        assert_eq!(
            (r.removed, r.freed_bytes, r.bytes_after),
            (3, 3 * VALUE, 2 * VALUE)
        );
        assert_eq!(
            present(&t),
            vec![0, 7],
            "LRU order: 4, 5 and 6 were least recent"
        );
    }

    /// Overwrites the stored value of `i` with `f(value)`, behind the cache's back.
    fn damage(t: &DiskTier, i: u64, f: impl FnOnce(&mut Vec<u8>)) {
        let wtx = t.db.begin_write().unwrap();
        {
            let mut values = wtx.open_table(VALUES).unwrap();
            let key = (Namespace::USER.as_str(), k(i).0);
            let mut v = values.get(key).unwrap().unwrap().value().to_vec();
            f(&mut v);
            values.insert(key, v.as_slice()).unwrap();
        }
        wtx.commit().unwrap();
    }

    #[test]
    fn damaged_entries_are_dropped_counted_and_missed() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let t = open(dir.path(), DiskPolicy::Lru, None, &clock);
        for i in 0..4 {
            put(&t, i);
        }
        damage(&t, 0, |v| v[500] ^= 1); // flipped bit
        damage(&t, 1, |v| v.truncate(700)); // truncated
        damage(&t, 2, |v| v[4] = 99); // another format version
        for i in 0..3 {
            assert!(!get(&t, i), "damaged entry {i} was returned");
            assert!(
                !t.contains(&Namespace::USER, k(i)).unwrap(),
                "{i} not dropped"
            );
        }
        assert!(get(&t, 3));
        let s = t.stats().unwrap();
        assert_eq!((s.corrupt, s.lifetime.corrupt), (3, 3));
        assert_eq!(
            (s.tier.entries, s.tier.bytes),
            (1, VALUE),
            "totals follow the drops"
        );
        assert_eq!((s.tier.hits, s.tier.misses), (1, 3));
    }

    #[test]
    fn verify_finds_damage_and_repairs_totals() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let t = open(dir.path(), DiskPolicy::Lru, None, &clock);
        for i in 0..5 {
            put(&t, i);
        }
        damage(&t, 3, |v| {
            let n = v.len();
            v[n - 1] ^= 0xff
        });
        // A value whose metadata was lost.
        {
            let wtx = t.db.begin_write().unwrap();
            wtx.open_table(ACCESS)
                .unwrap()
                .remove((Namespace::USER.as_str(), k(4).0))
                .unwrap();
            wtx.commit().unwrap();
        }
        let r = t.verify().unwrap();
        assert_eq!((r.checked, r.corrupt), (5, 2));
        assert_eq!((r.entries_after, r.bytes_after), (3, 3 * VALUE));
        assert_eq!(present(&t), vec![0, 1, 2]);
        let s = t.stats().unwrap();
        assert_eq!((s.tier.entries, s.tier.bytes), (3, 3 * VALUE));
    }

    #[test]
    fn contents_and_lifetime_counters_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        {
            let t = open(dir.path(), DiskPolicy::Lru, None, &clock);
            put(&t, 0);
            put(&t, 1);
            assert!(get(&t, 0));
            assert!(!get(&t, 7));
            assert!(dir.path().join(HOLDER_FILE).exists());
        }
        assert!(
            !dir.path().join(HOLDER_FILE).exists(),
            "holder record left behind"
        );
        let t = open(dir.path(), DiskPolicy::Lru, None, &clock);
        assert!(get(&t, 1));
        let s = t.stats().unwrap();
        assert_eq!(
            (s.tier.hits, s.tier.misses),
            (1, 0),
            "session counters start at zero"
        );
        assert_eq!((s.lifetime.hits, s.lifetime.misses), (2, 1));
        assert_eq!(s.tier.entries, 2);
        let e = t.entries(&Namespace::USER).unwrap();
        let zero = e.iter().find(|e| e.key == k(0)).unwrap();
        assert_eq!(zero.hits, 1, "access metadata persisted");
        let r = t.clear(None).unwrap();
        assert_eq!((r.removed, r.freed_bytes), (2, 2 * VALUE));
        assert_eq!(t.stats().unwrap().lifetime, LifetimeStats::default());
    }

    #[test]
    fn namespaces_are_separate() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let t = open(dir.path(), DiskPolicy::Lru, None, &clock);
        let enc = || codec::encode_bytes(b"x").unwrap();
        t.write(
            vec![
                DiskPut {
                    ns: Namespace::STATE,
                    key: k(1),
                    enc: enc(),
                },
                DiskPut {
                    ns: Namespace::STATE,
                    key: k(2),
                    enc: enc(),
                },
                DiskPut {
                    ns: Namespace::META,
                    key: k(1),
                    enc: enc(),
                },
            ],
            &[(Namespace::META, k(1))],
            true,
        )
        .unwrap();
        let keys = |ns: &Namespace| -> Vec<CacheKey> {
            t.entries(ns).unwrap().into_iter().map(|e| e.key).collect()
        };
        let mut both = vec![k(1), k(2)];
        both.sort();
        assert_eq!(keys(&Namespace::STATE), both);
        assert_eq!(keys(&Namespace::META), vec![k(1)]);
        assert!(t.entries(&Namespace::META).unwrap()[0].pinned);
        assert!(keys(&Namespace::USER).is_empty());
        let r = t.clear(Some(&Namespace::STATE)).unwrap();
        assert_eq!(r.removed, 2);
        assert_eq!(keys(&Namespace::META), vec![k(1)]);
    }

    #[test]
    fn values_larger_than_the_cache_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let t = open(dir.path(), DiskPolicy::Lru, None, &clock);
        put(&t, 0);
        let big: Vec<u8> = (0..12).flat_map(blob).collect();
        t.write(
            vec![DiskPut {
                ns: Namespace::USER,
                key: k(99),
                enc: codec::encode_bytes(&big).unwrap(),
            }],
            &[],
            true,
        )
        .unwrap();
        let s = t.stats().unwrap();
        assert_eq!((s.rejected, s.tier.entries), (1, 1));
        assert!(get(&t, 0), "a rejected value evicts nothing");
    }

    #[test]
    fn an_unreadable_database_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
        let clock = ManualClock::new(0);
        let t = open(dir.path(), DiskPolicy::Lru, None, &clock);
        put(&t, 0);
        assert!(get(&t, 0));
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("unreadable")
            })
            .count();
        assert_eq!(aside, 1);
    }

    #[test]
    fn access_records_round_trip() {
        let a = Access {
            created_ms: 1,
            last_access_ms: u64::MAX,
            hits: 3,
            size: 4,
            raw_size: 5,
            kind: ValueKind::Batches,
            pinned: true,
        };
        assert_eq!(Access::from_bytes(&a.to_bytes()), Some(a));
        assert_eq!(Access::from_bytes(&a.to_bytes()[..41]), None);
    }
}
