//! The cache in a run (pipeline-cache): the run's sniffed file metadata (formats, block
//! boundaries, `inspect` reports) is kept in the two-tier cache of the output folder
//! (`OUT/_cache`, or `[cache] dir`), and the run report's `cache` object holds its figures.
//! `--no-cache` (or `[cache] enabled = false`) runs without it. Readers of the dataset skip
//! the `_`-prefixed folder.

use std::path::Path;

use pipeline_core::{Config, MetaCache, MetaStore, Result};
use serde_json::Value;

/// The cache folder inside a dataset output folder.
pub const CACHE_DIR: &str = "_cache";

/// Where the cache of a run into `out` lives: `[cache] dir`, else `out/_cache`; `None` when
/// the cache is off or there is neither.
#[cfg_attr(not(feature = "cache"), allow(dead_code))]
fn dir_of(cfg: &Config, out: Option<&Path>) -> Option<std::path::PathBuf> {
    if !cfg.cache.enabled {
        return None;
    }
    match (out, cfg.cache.dir.is_empty()) {
        (_, false) => Some(cfg.cache.dir.clone().into()),
        (Some(o), true) => Some(o.join(CACHE_DIR)),
        (None, true) => None,
    }
}

#[cfg(feature = "cache")]
mod with_cache {
    use std::sync::Arc;

    use super::*;
    use pipeline_cache::{CacheBuilder, CacheError, CacheManager};

    /// An open cache.
    pub(crate) struct Caching(Arc<CacheManager>);

    impl Caching {
        /// Opens the cache of output folder `out` (or of `[cache] dir`); `None` when it is
        /// off or there is no folder to keep it in. A cache another process holds is not an
        /// error (it only saves time): the run goes on without it and says so once.
        pub(crate) fn open(cfg: &Config, out: Option<&Path>) -> Result<Option<Caching>> {
            match dir_of(cfg, out) {
                Some(dir) => Self::open_in(cfg, &dir, true),
                None => Ok(None),
            }
        }

        /// The cache of output folder `out` (or of `[cache] dir`) when it exists already:
        /// opened before the inputs are sniffed, so a re-run or an append sniffs only the
        /// files the cache has not described. Nothing is created for a new folder (the run
        /// may still be refused). Busy is not said here: the run says so when it starts
        /// (another run holds the folder) or tries the cache again then.
        pub(crate) fn open_existing(cfg: &Config, out: &Path) -> Result<Option<Caching>> {
            match dir_of(cfg, Some(out)) {
                Some(dir) if dir.is_dir() => Self::open_in(cfg, &dir, false),
                _ => Ok(None),
            }
        }

        /// The cache in `dir`; `None` when another process holds it (with a warning when
        /// `say_busy`).
        fn open_in(cfg: &Config, dir: &Path, say_busy: bool) -> Result<Option<Caching>> {
            match CacheBuilder::from_config(cfg, dir).and_then(CacheBuilder::build) {
                Ok(m) => Ok(Some(Caching(Arc::new(m)))),
                Err(e @ CacheError::Busy { .. }) => {
                    if say_busy {
                        tracing::warn!("running without the cache: {e}");
                    }
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        }

        /// The handle pipeline-io keeps sniffed metadata in.
        pub(crate) fn meta(&self) -> pipeline_core::MetaCache {
            pipeline_core::MetaCache::new(self.0.clone())
        }

        /// Flushes and returns the figures for the run report's `cache` object.
        pub(crate) fn finish(&self) -> Result<Value> {
            self.0.flush()?;
            let stats = self.0.get_stats()?;
            serde_json::to_value(stats)
                .map_err(|e| pipeline_core::Error::Internal(format!("cache stats: {e}")))
        }
    }
}

#[cfg(feature = "cache")]
pub(crate) use with_cache::Caching;

#[cfg(not(feature = "cache"))]
mod without_cache {
    use super::*;

    /// The cache is left out of this build.
    pub(crate) struct Caching;

    impl Caching {
        pub(crate) fn open(_cfg: &Config, _out: Option<&Path>) -> Result<Option<Caching>> {
            Ok(None)
        }
        pub(crate) fn open_existing(_cfg: &Config, _out: &Path) -> Result<Option<Caching>> {
            Ok(None)
        }
        pub(crate) fn meta(&self) -> pipeline_core::MetaCache {
            pipeline_core::MetaCache::memory()
        }
        pub(crate) fn finish(&self) -> Result<Value> {
            Ok(Value::Null)
        }
    }
}

#[cfg(not(feature = "cache"))]
pub(crate) use without_cache::Caching;

/// Metadata found before the cache is open: a run into a new folder describes its inputs
/// before it may create `OUT/_cache` (it can still be refused), so the descriptions wait
/// here and go into the cache when the run opens it ([`Pending::attach`]); the next run (an
/// append, a re-run) then sniffs only the files it has not seen.
#[derive(Default)]
pub(crate) struct Pending(std::sync::Mutex<PendingState>);

/// The entries stored so far and the cache they go to once it is open.
#[derive(Default)]
struct PendingState {
    /// One entry per key, in the order first stored.
    waiting: Vec<(String, Vec<u8>)>,
    /// Where each key is in `waiting` (a scan per lookup made describing n new files cost
    /// O(n^2): 5% of a first run over 6,291 files).
    index: std::collections::HashMap<String, usize>,
    target: Option<MetaCache>,
}

impl Pending {
    /// Sends what was stored so far to `target`, and everything stored from now on.
    pub(crate) fn attach(&self, target: MetaCache) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // One write for all of them (a run over 1,258 files made 1,258 transactions).
        target.put_many(&std::mem::take(&mut g.waiting));
        g.index.clear();
        g.target = Some(target);
    }
}

impl MetaStore for Pending {
    fn get_meta(&self, key: &str) -> Option<Vec<u8>> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &g.target {
            Some(t) => t.get(key),
            None => g.index.get(key).map(|&i| g.waiting[i].1.clone()),
        }
    }

    fn put_meta(&self, key: &str, value: &[u8]) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &g.target {
            Some(t) => t.put(key, value),
            None => {
                let g = &mut *g;
                match g.index.get(key) {
                    Some(&i) => g.waiting[i].1 = value.to_vec(),
                    None => {
                        g.index.insert(key.to_string(), g.waiting.len());
                        g.waiting.push((key.to_string(), value.to_vec()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_metadata_reaches_the_cache_it_is_attached_to() {
        let p = std::sync::Arc::new(Pending::default());
        let handle = MetaCache::new(p.clone());
        handle.put("a", b"1");
        handle.put("a", b"2");
        assert_eq!(handle.get("a").as_deref(), Some(&b"2"[..]));
        let target = MetaCache::memory();
        p.attach(target.clone());
        assert_eq!(target.get("a").as_deref(), Some(&b"2"[..]));
        handle.put("b", b"3");
        assert_eq!(target.get("b").as_deref(), Some(&b"3"[..]));
        assert_eq!(handle.get("b").as_deref(), Some(&b"3"[..]));
    }
}
