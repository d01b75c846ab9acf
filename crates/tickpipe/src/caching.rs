//! The cache in a run (pipeline-cache): the run's sniffed file metadata (formats, block
//! boundaries, `inspect` reports) is kept in the two-tier cache of the output folder
//! (`OUT/_cache`, or `[cache] dir`), and the run report's `cache` object holds its figures.
//! `--no-cache` (or `[cache] enabled = false`) runs without it. Readers of the dataset skip
//! the `_`-prefixed folder.

use std::path::Path;

use pipeline_core::{Config, Result};
use serde_json::Value;

/// The cache folder inside a dataset output folder.
pub const CACHE_DIR: &str = "_cache";

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
            if !cfg.cache.enabled {
                return Ok(None);
            }
            let default = match (out, cfg.cache.dir.is_empty()) {
                (Some(o), _) => o.join(CACHE_DIR),
                (None, false) => cfg.cache.dir.clone().into(),
                (None, true) => return Ok(None),
            };
            let built = CacheBuilder::from_config(cfg, &default).and_then(CacheBuilder::build);
            match built {
                Ok(m) => Ok(Some(Caching(Arc::new(m)))),
                Err(e @ CacheError::Busy { .. }) => {
                    tracing::warn!("running without the cache: {e}");
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
