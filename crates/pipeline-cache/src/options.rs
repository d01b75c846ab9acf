//! [`CacheBuilder`]: the cache's settings, from code or from the run [`Config`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use pipeline_core::Config;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::error::{CacheError, Result};
use crate::manager::CacheManager;

/// How the memory tier picks what to evict (moka's policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryPolicy {
    /// TinyLFU: admits a new entry only when it is likely to be used more than the entry it
    /// would push out, so a scan of one-off values cannot flush the hot set. The default.
    #[default]
    TinyLfu,
    /// Least recently used.
    Lru,
}

/// How the disk tier picks what to evict when it is over its size bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskPolicy {
    /// Least recently used first (ties: oldest first). The default.
    #[default]
    Lru,
    /// Fewest hits first (ties: least recently used first).
    Lfu,
    /// Closest to expiry first, i.e. oldest first by creation time (with a TTL set, expired
    /// entries go before any eviction under every policy).
    Ttl,
}

macro_rules! policy_text {
    ($ty:ty, $key:literal, $( $v:ident => $s:literal ),+) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $( <$ty>::$v => $s ),+ })
            }
        }
        impl FromStr for $ty {
            type Err = CacheError;
            fn from_str(s: &str) -> Result<Self> {
                match s.to_ascii_lowercase().as_str() {
                    $( $s => Ok(<$ty>::$v), )+
                    _ => Err(CacheError::Invalid(format!(
                        concat!("unknown ", $key, " `{}`; expected {}"),
                        s,
                        [$( $s ),+].join(", ")
                    ))),
                }
            }
        }
    };
}
policy_text!(MemoryPolicy, "cache.memory_policy", TinyLfu => "tinylfu", Lru => "lru");
policy_text!(DiskPolicy, "cache.disk_policy", Lru => "lru", Lfu => "lfu", Ttl => "ttl");

/// Default memory-tier bound: 64 MiB, a quarter of the default 256 MiB `memory_limit`, so a
/// default run's cache fits beside the engine's own budget.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;

/// Default disk-tier bound: `[pipeline] cache_max_size`'s default, 1 GiB.
pub const DEFAULT_DISK_BYTES: u64 = 1 << 30;

/// Default size of redb's own page cache. Values are read once per disk hit and then live
/// in the memory tier, so redb's cache mostly holds the B-tree's branch pages; 16 MiB keeps
/// them resident for ~10^5 entries. redb's default (1 GiB) would dwarf the memory budget.
pub const DEFAULT_PAGE_CACHE_BYTES: usize = 16 << 20;

/// The file name of the disk tier's database inside the cache directory.
pub const DB_FILE: &str = "cache.redb";

/// The file name of the holder record inside the cache directory.
pub const HOLDER_FILE: &str = "holder.json";

/// The settings.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Directory of the disk tier; `None`: memory only. Default `None`.
    pub dir: Option<PathBuf>,
    /// Memory-tier bound in bytes; 0 turns the tier off. Default [`DEFAULT_MEMORY_BYTES`].
    pub memory_bytes: u64,
    /// Memory-tier eviction policy. Default TinyLFU.
    pub memory_policy: MemoryPolicy,
    /// Memory-tier time to live (from insertion). Default none.
    pub memory_ttl: Option<Duration>,
    /// Memory-tier time to idle (from the last access). Default none.
    pub memory_tti: Option<Duration>,
    /// Disk-tier bound in bytes (stored, compressed bytes). Default [`DEFAULT_DISK_BYTES`].
    pub disk_bytes: u64,
    /// Disk-tier eviction policy. Default LRU.
    pub disk_policy: DiskPolicy,
    /// Disk-tier time to live (from creation). Default none.
    pub disk_ttl: Option<Duration>,
    /// redb's page cache. Default [`DEFAULT_PAGE_CACHE_BYTES`].
    pub page_cache_bytes: usize,
    /// The disk tier's clock. Default the system clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dir: None,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            memory_policy: MemoryPolicy::TinyLfu,
            memory_ttl: None,
            memory_tti: None,
            disk_bytes: DEFAULT_DISK_BYTES,
            disk_policy: DiskPolicy::Lru,
            disk_ttl: None,
            page_cache_bytes: DEFAULT_PAGE_CACHE_BYTES,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Builds a [`CacheManager`].
///
/// ```
/// use std::time::Duration;
/// use pipeline_cache::{CacheManager, DiskPolicy};
/// let dir = tempfile::tempdir()?;
/// let cache = CacheManager::builder()
///     .dir(dir.path())
///     .memory_bytes(32 << 20)
///     .disk_bytes(256 << 20)
///     .disk_policy(DiskPolicy::Lfu)
///     .disk_ttl(Some(Duration::from_secs(7 * 86_400)))
///     .build()?;
/// assert_eq!(cache.dir(), Some(dir.path()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct CacheBuilder {
    opts: Options,
}

impl CacheBuilder {
    /// A builder with the defaults: memory only, 64 MiB, TinyLFU.
    pub fn new() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// Settings from the run configuration: `[cache]` and `[pipeline] cache_max_size`. The
    /// disk tier goes to `[cache] dir` when set, else to `default_dir` (the facade passes
    /// `<output>/_cache`). `[cache] enabled = false` is the caller's to honour (it should
    /// not build a cache at all).
    pub fn from_config(cfg: &Config, default_dir: &Path) -> Result<CacheBuilder> {
        let c = &cfg.cache;
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let dir = if c.dir.is_empty() {
            default_dir.to_path_buf()
        } else {
            PathBuf::from(&c.dir)
        };
        Ok(CacheBuilder::new()
            .dir(dir)
            .memory_bytes(c.memory_size.0)
            .memory_policy(c.memory_policy.parse()?)
            .memory_ttl(secs(c.memory_ttl_secs))
            .memory_tti(secs(c.memory_tti_secs))
            .disk_bytes(cfg.pipeline.cache_max_size.0)
            .disk_policy(c.disk_policy.parse()?)
            .disk_ttl(secs(c.disk_ttl_secs)))
    }

    /// Keeps a disk tier in `dir` (created if missing). Without it the cache is memory only.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.opts.dir = Some(dir.into());
        self
    }

    /// Memory-tier bound in bytes of Arrow buffers and blobs; 0 turns the tier off.
    /// Default 64 MiB.
    pub fn memory_bytes(mut self, bytes: u64) -> Self {
        self.opts.memory_bytes = bytes;
        self
    }

    /// Memory-tier eviction policy. Default TinyLFU.
    pub fn memory_policy(mut self, p: MemoryPolicy) -> Self {
        self.opts.memory_policy = p;
        self
    }

    /// Memory-tier time to live, from insertion. Default none.
    pub fn memory_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.opts.memory_ttl = ttl;
        self
    }

    /// Memory-tier time to idle, from the last read. Default none.
    pub fn memory_tti(mut self, tti: Option<Duration>) -> Self {
        self.opts.memory_tti = tti;
        self
    }

    /// Disk-tier bound in stored (compressed) bytes. Default 1 GiB.
    pub fn disk_bytes(mut self, bytes: u64) -> Self {
        self.opts.disk_bytes = bytes;
        self
    }

    /// Disk-tier eviction policy. Default LRU.
    pub fn disk_policy(mut self, p: DiskPolicy) -> Self {
        self.opts.disk_policy = p;
        self
    }

    /// Disk-tier time to live, from creation; expired entries are misses and are removed.
    /// Pinned entries never expire. Default none.
    pub fn disk_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.opts.disk_ttl = ttl;
        self
    }

    /// redb's page cache in bytes. Default 16 MiB.
    pub fn page_cache_bytes(mut self, bytes: usize) -> Self {
        self.opts.page_cache_bytes = bytes;
        self
    }

    /// The disk tier's clock (a [`ManualClock`](crate::ManualClock) in tests). Default the
    /// system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.opts.clock = clock;
        self
    }

    /// Validates the settings and opens the cache. Fails with [`CacheError::Busy`] when
    /// another cache manager has the directory open.
    pub fn build(self) -> Result<CacheManager> {
        let o = &self.opts;
        if o.dir.is_some() && o.disk_bytes < 1 << 20 {
            return Err(CacheError::Invalid(format!(
                "pipeline.cache_max_size: {} bytes is too small for a disk cache; use at least 1MiB",
                o.disk_bytes
            )));
        }
        for (name, d) in [
            ("memory_ttl", o.memory_ttl),
            ("memory_tti", o.memory_tti),
            ("disk_ttl", o.disk_ttl),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(CacheError::Invalid(format!(
                    "cache.{name}: a zero duration would expire everything at once; leave it unset for none"
                )));
            }
        }
        CacheManager::open_with(self.opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print() {
        for p in [MemoryPolicy::TinyLfu, MemoryPolicy::Lru] {
            assert_eq!(p.to_string().parse::<MemoryPolicy>().unwrap(), p);
        }
        for p in [DiskPolicy::Lru, DiskPolicy::Lfu, DiskPolicy::Ttl] {
            assert_eq!(p.to_string().parse::<DiskPolicy>().unwrap(), p);
        }
        let e = "fifo".parse::<DiskPolicy>().unwrap_err().to_string();
        assert!(
            e.contains("cache.disk_policy") && e.contains("lru, lfu, ttl"),
            "{e}"
        );
    }

    #[test]
    fn config_sets_every_option() {
        let cfg = Config::from_toml_str(
            "[pipeline]\ncache_max_size = \"2GiB\"\n[cache]\nmemory_size = \"8MiB\"\nmemory_policy = \"lru\"\nmemory_ttl_secs = 60\ndisk_policy = \"ttl\"\ndisk_ttl_secs = 3600\n",
        )
        .unwrap();
        let b = CacheBuilder::from_config(&cfg, Path::new("out/_cache")).unwrap();
        let o = &b.opts;
        assert_eq!(o.dir.as_deref(), Some(Path::new("out/_cache")));
        assert_eq!(o.memory_bytes, 8 << 20);
        assert_eq!(o.memory_policy, MemoryPolicy::Lru);
        assert_eq!(o.memory_ttl, Some(Duration::from_secs(60)));
        assert_eq!(o.memory_tti, None);
        assert_eq!(o.disk_bytes, 2 << 30);
        assert_eq!(o.disk_policy, DiskPolicy::Ttl);
        assert_eq!(o.disk_ttl, Some(Duration::from_secs(3600)));
        let mut cfg = Config::default();
        cfg.cache.dir = "elsewhere".into();
        let b = CacheBuilder::from_config(&cfg, Path::new("out/_cache")).unwrap();
        assert_eq!(b.opts.dir.as_deref(), Some(Path::new("elsewhere")));
        assert_eq!(b.opts.memory_bytes, DEFAULT_MEMORY_BYTES);
        assert_eq!(b.opts.disk_bytes, DEFAULT_DISK_BYTES);
    }

    #[test]
    fn bad_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = CacheBuilder::new()
            .dir(dir.path())
            .disk_bytes(1000)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("cache_max_size"), "{e}");
        let e = CacheBuilder::new()
            .disk_ttl(Some(Duration::ZERO))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("disk_ttl"), "{e}");
    }
}
