//! [`CacheManager`]: the two tiers behind one API; [`CacheNamespace`]: the same API within
//! one namespace; [`WriteBatch`]: several values written in one transaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;

use crate::codec::{self, CacheValue, Encoded};
use crate::disk::{DiskPut, DiskTier, EntryInfo, MaintenanceReport, Prune};
use crate::error::{CacheError, Result};
use crate::key::{CacheKey, Namespace};
use crate::memory::MemoryTier;
use crate::options::{CacheBuilder, Options};
use crate::stats::{CacheStats, rate};

/// A two-tier cache of Arrow record batches and byte blobs: a memory tier (moka, bounded by
/// bytes) over a disk tier (redb, bounded by bytes, surviving the process).
///
/// `get` looks in memory, then on disk; a disk hit is promoted to memory. `put` writes both
/// tiers. All methods take `&self`: share one manager between threads with an `Arc`.
/// Methods without a namespace use [`Namespace::USER`]; [`CacheManager::ns`] gives the same
/// API in another namespace.
pub struct CacheManager {
    memory: Option<MemoryTier>,
    disk: Option<DiskTier>,
    dir: Option<PathBuf>,
    lookups: AtomicU64,
    hits: AtomicU64,
}

impl std::fmt::Debug for CacheManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheManager")
            .field("dir", &self.dir)
            .field("memory", &self.memory.is_some())
            .finish()
    }
}

impl CacheManager {
    /// A builder (memory only until [`CacheBuilder::dir`] is given).
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }

    /// Opens the cache in `dir` with default settings (64 MiB in memory, 1 GiB on disk).
    pub fn open(dir: impl Into<PathBuf>) -> Result<CacheManager> {
        CacheBuilder::new().dir(dir).build()
    }

    pub(crate) fn open_with(o: Options) -> Result<CacheManager> {
        let disk = match &o.dir {
            Some(d) => Some(DiskTier::open(d, &o)?),
            None => None,
        };
        Ok(CacheManager {
            memory: (o.memory_bytes > 0).then(|| MemoryTier::new(&o)),
            disk,
            dir: o.dir.clone(),
            lookups: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        })
    }

    /// The cache directory (`None` for a memory-only cache).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The disk tier's database file.
    pub fn db_path(&self) -> Option<&Path> {
        self.disk.as_ref().map(|d| d.path())
    }

    /// The same API within `ns`.
    pub fn ns(&self, ns: Namespace) -> CacheNamespace<'_> {
        CacheNamespace { cache: self, ns }
    }

    /// Caches `batch` under `key` (the seed's `put(key, batch)`).
    pub fn put(&self, key: CacheKey, batch: &RecordBatch) -> Result<()> {
        self.ns(Namespace::USER).put(key, batch)
    }

    /// The batch cached under `key` (several batches come back concatenated).
    pub fn get(&self, key: CacheKey) -> Result<Option<RecordBatch>> {
        self.ns(Namespace::USER).get(key)
    }

    /// Caches a byte blob under `key`.
    pub fn put_bytes(&self, key: CacheKey, bytes: &[u8]) -> Result<()> {
        self.ns(Namespace::USER).put_bytes(key, bytes)
    }

    /// The byte blob cached under `key`.
    pub fn get_bytes(&self, key: CacheKey) -> Result<Option<Arc<[u8]>>> {
        self.ns(Namespace::USER).get_bytes(key)
    }

    /// Writes every value of `batch` in one disk transaction (all or none survive a crash),
    /// then into the memory tier unless the batch is [`WriteBatch::disk_only`].
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        if let Some(disk) = &self.disk {
            let mut puts = Vec::with_capacity(batch.items.len());
            for it in &batch.items {
                puts.push(DiskPut {
                    ns: it.ns.clone(),
                    key: it.key,
                    enc: encode(&it.value)?,
                });
            }
            disk.write(puts, &batch.pins, batch.durable)?;
        } else if !batch.pins.is_empty() {
            return Err(no_disk("pinning"));
        }
        if let Some(m) = &self.memory
            && !batch.disk_only
        {
            for it in batch.items {
                m.insert((it.ns, it.key), it.value);
            }
        }
        Ok(())
    }

    /// The seed's `get_stats()`: lookups and hit rate overall, and each tier's counters.
    pub fn get_stats(&self) -> Result<CacheStats> {
        let lookups = self.lookups.load(Ordering::Relaxed);
        let hits = self.hits.load(Ordering::Relaxed);
        Ok(CacheStats {
            lookups,
            hits,
            misses: lookups - hits.min(lookups),
            hit_rate: rate(hits, lookups - hits.min(lookups)),
            memory: self.memory.as_ref().map(MemoryTier::stats),
            disk: match &self.disk {
                Some(d) => Some(d.stats()?),
                None => None,
            },
        })
    }

    /// Removes every entry of every namespace, pinned ones too, and resets the disk tier's
    /// lifetime counters (`tickpipe cache clear`).
    pub fn clear(&self) -> Result<MaintenanceReport> {
        if let Some(m) = &self.memory {
            m.clear(None);
        }
        match &self.disk {
            Some(d) => d.clear(None),
            None => Ok(MaintenanceReport::default()),
        }
    }

    /// Removes expired entries and entries unused for `p.unused_for`, then evicts by the
    /// disk policy down to `p.max_bytes`; pinned entries stay (`tickpipe cache prune`). The
    /// memory tier is left as it is (it holds only what this process read).
    pub fn prune(&self, p: &Prune) -> Result<MaintenanceReport> {
        match &self.disk {
            Some(d) => d.prune(p),
            None => Err(no_disk("prune")),
        }
    }

    /// Checks every stored value's checksum and the metadata; removes what is damaged and
    /// repairs the totals.
    pub fn verify(&self) -> Result<MaintenanceReport> {
        match &self.disk {
            Some(d) => d.verify(),
            None => Err(no_disk("verify")),
        }
    }

    /// Makes every write so far durable and applies buffered access times. Also done when
    /// the manager is dropped.
    pub fn flush(&self) -> Result<()> {
        match &self.disk {
            Some(d) => d.flush(true),
            None => Ok(()),
        }
    }

    /// Shrinks the database file to what it holds (after a clear or prune).
    pub fn compact(&mut self) -> Result<()> {
        match &mut self.disk {
            Some(d) => d.compact(),
            None => Ok(()),
        }
    }

    fn lookup(&self, ns: &Namespace, key: CacheKey) -> Result<Option<CacheValue>> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let mk = (ns.clone(), key);
        if let Some(m) = &self.memory
            && let Some(v) = m.get(&mk)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            if let Some(d) = &self.disk {
                // Keeps the disk tier's LRU/LFU order aware of entries hot in memory.
                d.note_access(ns, key, d.now_ms())?;
            }
            return Ok(Some(v));
        }
        let Some(d) = &self.disk else {
            return Ok(None);
        };
        let v = d.get(ns, key)?;
        if let Some(v) = &v {
            self.hits.fetch_add(1, Ordering::Relaxed);
            if let Some(m) = &self.memory {
                m.insert(mk, v.clone());
            }
        }
        Ok(v)
    }
}

fn no_disk(what: &str) -> CacheError {
    CacheError::Invalid(format!(
        "{what} needs the disk tier, and this cache is memory only (no cache directory)"
    ))
}

fn encode(v: &CacheValue) -> Result<Encoded> {
    match v {
        CacheValue::Batches(b) => codec::encode_batches(b),
        CacheValue::Bytes(b) => codec::encode_bytes(b),
    }
}

/// The cache's API within one namespace (from [`CacheManager::ns`]).
///
/// ```
/// use pipeline_cache::{CacheKey, CacheManager, Namespace};
/// let dir = tempfile::tempdir()?;
/// let cache = CacheManager::open(dir.path())?;
/// let state = cache.ns(Namespace::STATE);
/// let k = CacheKey::of(["AAPL", "2024-01-02"]);
/// state.put_bytes(k, b"ema=187.25")?;
/// assert!(state.contains(k)?);
/// assert_eq!(&*state.get_bytes(k)?.unwrap(), b"ema=187.25");
/// assert_eq!(state.keys()?, vec![k]);
/// assert!(cache.ns(Namespace::META).get_bytes(k)?.is_none()); // other namespace
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CacheNamespace<'a> {
    cache: &'a CacheManager,
    ns: Namespace,
}

impl CacheNamespace<'_> {
    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    /// Caches one batch.
    pub fn put(&self, key: CacheKey, batch: &RecordBatch) -> Result<()> {
        self.put_batches(key, std::slice::from_ref(batch))
    }

    /// Caches batches sharing one schema (at least one; an empty result is one empty batch).
    pub fn put_batches(&self, key: CacheKey, batches: &[RecordBatch]) -> Result<()> {
        let mut w = WriteBatch::new().durable(false);
        w.put_batches(&self.ns, key, batches);
        self.cache.write(w)
    }

    /// Caches a byte blob.
    pub fn put_bytes(&self, key: CacheKey, bytes: &[u8]) -> Result<()> {
        let mut w = WriteBatch::new().durable(false);
        w.put_bytes(&self.ns, key, bytes);
        self.cache.write(w)
    }

    /// The value under `key`, whatever its kind.
    pub fn get_value(&self, key: CacheKey) -> Result<Option<CacheValue>> {
        self.cache.lookup(&self.ns, key)
    }

    /// The batches under `key`; [`CacheError::Invalid`] if it holds bytes.
    pub fn get_batches(&self, key: CacheKey) -> Result<Option<Arc<[RecordBatch]>>> {
        match self.get_value(key)? {
            None => Ok(None),
            Some(CacheValue::Batches(b)) => Ok(Some(b)),
            Some(CacheValue::Bytes(_)) => Err(self.wrong_kind(key, "bytes", "batches")),
        }
    }

    /// The batch under `key` (several are concatenated); [`CacheError::Invalid`] if it
    /// holds bytes.
    pub fn get(&self, key: CacheKey) -> Result<Option<RecordBatch>> {
        let Some(b) = self.get_batches(key)? else {
            return Ok(None);
        };
        if b.len() == 1 {
            return Ok(Some(b[0].clone()));
        }
        arrow_select::concat::concat_batches(&b[0].schema(), b.iter())
            .map(Some)
            .map_err(|e| CacheError::Encode(e.to_string()))
    }

    /// The bytes under `key`; [`CacheError::Invalid`] if it holds batches.
    pub fn get_bytes(&self, key: CacheKey) -> Result<Option<Arc<[u8]>>> {
        match self.get_value(key)? {
            None => Ok(None),
            Some(CacheValue::Bytes(b)) => Ok(Some(b)),
            Some(CacheValue::Batches(_)) => Err(self.wrong_kind(key, "batches", "bytes")),
        }
    }

    fn wrong_kind(&self, key: CacheKey, has: &str, asked: &str) -> CacheError {
        CacheError::Invalid(format!("{}/{key} holds {has}, not {asked}", self.ns))
    }

    /// Whether `key` is cached (in either tier); not counted as a lookup.
    pub fn contains(&self, key: CacheKey) -> Result<bool> {
        let c = self.cache;
        if c.memory
            .as_ref()
            .is_some_and(|m| m.contains(&(self.ns.clone(), key)))
        {
            return Ok(true);
        }
        match &c.disk {
            Some(d) => d.contains(&self.ns, key),
            None => Ok(false),
        }
    }

    /// Removes `key` from both tiers; whether the disk tier had it (the memory tier's
    /// answer when memory only).
    pub fn remove(&self, key: CacheKey) -> Result<bool> {
        let c = self.cache;
        let mk = (self.ns.clone(), key);
        let in_memory = c.memory.as_ref().is_some_and(|m| m.contains(&mk));
        if let Some(m) = &c.memory {
            m.remove(&mk);
        }
        match &c.disk {
            Some(d) => d.remove(&self.ns, key),
            None => Ok(in_memory),
        }
    }

    /// Pins `key` on disk: never evicted, never expired, until unpinned or cleared. Whether
    /// it was there. Needs the disk tier.
    pub fn pin(&self, key: CacheKey) -> Result<bool> {
        match &self.cache.disk {
            Some(d) => d.set_pinned(&self.ns, key, true),
            None => Err(no_disk("pinning")),
        }
    }

    /// Unpins `key`; whether it was there.
    pub fn unpin(&self, key: CacheKey) -> Result<bool> {
        match &self.cache.disk {
            Some(d) => d.set_pinned(&self.ns, key, false),
            None => Err(no_disk("pinning")),
        }
    }

    /// Keys held in either tier, sorted.
    pub fn keys(&self) -> Result<Vec<CacheKey>> {
        let c = self.cache;
        let mut keys: Vec<CacheKey> = c
            .memory
            .as_ref()
            .map_or_else(Vec::new, |m| m.keys(&self.ns));
        if let Some(d) = &c.disk {
            keys.extend(d.entries(&self.ns)?.into_iter().map(|e| e.key));
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The disk tier's entries with their metadata, in key order. Needs the disk tier.
    pub fn entries(&self) -> Result<Vec<EntryInfo>> {
        match &self.cache.disk {
            Some(d) => d.entries(&self.ns),
            None => Err(no_disk("listing entries with metadata")),
        }
    }

    /// Removes every entry of this namespace from both tiers, pinned ones too.
    pub fn clear(&self) -> Result<MaintenanceReport> {
        let c = self.cache;
        if let Some(m) = &c.memory {
            m.clear(Some(&self.ns));
        }
        match &c.disk {
            Some(d) => d.clear(Some(&self.ns)),
            None => Ok(MaintenanceReport::default()),
        }
    }
}

/// Values (and pins) written together by [`CacheManager::write`]: one disk transaction, so
/// a file's stage outputs and its state snapshot are either all cached or none are.
///
/// Durable by default (the commit is on disk when `write` returns); single puts are not
/// (see the crate docs).
///
/// ```
/// use pipeline_cache::{CacheKey, CacheManager, Namespace, WriteBatch};
/// # let dir = tempfile::tempdir()?;
/// # let cache = CacheManager::open(dir.path())?;
/// let batch = arrow_array::record_batch!(("price", Float64, [1.0, 2.0]))?;
/// let (out, state) = (CacheKey::of(["day1", "out"]), CacheKey::of(["day1", "state"]));
/// let mut w = WriteBatch::new();
/// w.put_batches(&Namespace::STAGE_OUTPUT, out, &[batch])
///     .put_bytes(&Namespace::STATE, state, b"...")
///     .pin(&Namespace::STATE, state);
/// cache.write(w)?;
/// assert!(cache.ns(Namespace::STAGE_OUTPUT).contains(out)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct WriteBatch {
    items: Vec<Item>,
    pins: Vec<(Namespace, CacheKey)>,
    durable: bool,
    disk_only: bool,
}

#[derive(Debug, Clone)]
struct Item {
    ns: Namespace,
    key: CacheKey,
    value: CacheValue,
}

impl Default for WriteBatch {
    fn default() -> Self {
        WriteBatch::new()
    }
}

impl WriteBatch {
    /// An empty, durable batch that also fills the memory tier.
    pub fn new() -> WriteBatch {
        WriteBatch {
            items: Vec::new(),
            pins: Vec::new(),
            durable: true,
            disk_only: false,
        }
    }

    /// Whether the commit must be on disk when `write` returns (an fsync). Default true.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Leaves the memory tier alone: for values written now and read by a later run.
    pub fn disk_only(mut self) -> Self {
        self.disk_only = true;
        self
    }

    /// Adds batches (sharing one schema; at least one) under `ns`/`key`.
    pub fn put_batches(
        &mut self,
        ns: &Namespace,
        key: CacheKey,
        batches: &[RecordBatch],
    ) -> &mut Self {
        self.items.push(Item {
            ns: ns.clone(),
            key,
            value: CacheValue::Batches(Arc::from(batches.to_vec())),
        });
        self
    }

    /// Adds a byte blob under `ns`/`key`.
    pub fn put_bytes(&mut self, ns: &Namespace, key: CacheKey, bytes: &[u8]) -> &mut Self {
        self.items.push(Item {
            ns: ns.clone(),
            key,
            value: CacheValue::Bytes(Arc::from(bytes)),
        });
        self
    }

    /// Pins `ns`/`key` (written in this batch or already cached) in the same transaction.
    pub fn pin(&mut self, ns: &Namespace, key: CacheKey) -> &mut Self {
        self.pins.push((ns.clone(), key));
        self
    }

    /// Values in the batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch holds no values.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// pipeline-io's metadata cache lives in the `meta` namespace, under the key of its string
/// key. Best effort, as the trait asks: errors are logged at debug level and read as misses.
impl pipeline_core::MetaStore for CacheManager {
    fn get_meta(&self, key: &str) -> Option<Vec<u8>> {
        match self.ns(Namespace::META).get_bytes(CacheKey::of([key])) {
            Ok(v) => v.map(|b| b.to_vec()),
            Err(e) => {
                tracing::debug!("metadata cache lookup of {key}: {e}");
                None
            }
        }
    }

    fn put_meta(&self, key: &str, value: &[u8]) {
        if let Err(e) = self
            .ns(Namespace::META)
            .put_bytes(CacheKey::of([key]), value)
        {
            tracing::debug!("metadata cache store of {key}: {e}");
        }
    }

    fn put_meta_many(&self, entries: &[(String, Vec<u8>)]) {
        let mut w = WriteBatch::new().durable(false);
        for (k, v) in entries {
            w.put_bytes(&Namespace::META, CacheKey::of([k.as_str()]), v);
        }
        if let Err(e) = self.write(w) {
            tracing::debug!("metadata cache store of {} entries: {e}", entries.len());
        }
    }
}
