//! [`CacheError`]: what can go wrong opening or using a cache.

use std::path::PathBuf;

use crate::holder::Holder;

/// A cache error. Corrupted entries are not errors (they are dropped, counted and reported
/// as misses); these are the cases a caller must decide about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// Another cache manager (in this or another process) has the cache directory open.
    #[error(
        "cache {} is in use by {}; wait for it to finish, run with --no-cache, or point [cache] dir elsewhere",
        dir.display(),
        holder.as_ref().map_or_else(|| "another process (holder unknown)".to_string(), |h| h.to_string())
    )]
    Busy {
        /// The cache directory.
        dir: PathBuf,
        /// Who holds it, as it recorded itself when it opened the cache (`None` when the
        /// record is missing or unreadable).
        holder: Option<Holder>,
    },
    /// Reading or writing a file of the cache failed.
    #[error("cache {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The disk tier's database failed (an I/O error inside redb, a full disk).
    #[error("cache {}: {message}", path.display())]
    Db {
        /// The database file.
        path: PathBuf,
        /// redb's message.
        message: String,
    },
    /// A value could not be encoded (e.g. batches with different schemas).
    #[error("cache: cannot encode value: {0}")]
    Encode(String),
    /// A bad argument or setting: an empty batch list, a bad namespace or key text, an
    /// unknown policy name.
    #[error("cache: {0}")]
    Invalid(String),
}

impl From<CacheError> for pipeline_core::Error {
    fn from(e: CacheError) -> Self {
        match e {
            CacheError::Io { path, source } => pipeline_core::Error::Io { path, source },
            CacheError::Invalid(m) => pipeline_core::Error::config("cache", m),
            CacheError::Busy { .. } => pipeline_core::Error::Usage(e.to_string()),
            other => pipeline_core::Error::Io {
                path: match &other {
                    CacheError::Db { path, .. } => path.clone(),
                    _ => PathBuf::from("<cache>"),
                },
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}

/// A `Result` whose error is [`CacheError`].
pub type Result<T, E = CacheError> = std::result::Result<T, E>;
