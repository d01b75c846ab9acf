//! The metadata cache: maps a file fingerprint (size, mtime, hash of the first and last
//! 64 KiB) to what reading it found: the `inspect` report (format, schema, row count, time
//! span, symbols) and the block boundaries of the parallel decoder. A second `inspect`
//! answers from the cache; a second `open_source` splits the file at the cached boundaries
//! without scanning for them.
//!
//! Entries are JSON in a [`MetaCache`] (pipeline-core's store trait; the run backs it with
//! the tickpipe cache's `meta` namespace). The cache is best effort: a miss or garbage
//! means the file is simply read without it.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use pipeline_core::MetaCache;
use serde::{Deserialize, Serialize};

use super::inspect_report::InspectReport;

/// Prefix of this module's keys in the store (the store may hold other metadata), with the
/// entry format's version.
const KEY_PREFIX: &str = "pipeline-io/file-meta/v1|";

/// Bytes hashed at each end of a file for its fingerprint: enough to notice appends and
/// rewrites of the same size and mtime, small enough to cost nothing.
const FINGERPRINT_BYTES: u64 = 64 << 10;

/// What is cached per file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CachedMeta {
    /// The `inspect` report (rows, schema, span, symbols).
    pub report: Option<InspectReport>,
    /// Block size and block end offsets used by the parallel decoder.
    pub boundaries: Option<(u64, Vec<u64>)>,
}

/// The fingerprint of a file: `size-mtime_ns-hash`.
pub(crate) fn fingerprint(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let size = meta.len();
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    (&mut f)
        .take(FINGERPRINT_BYTES)
        .read_to_end(&mut buf)
        .ok()?;
    if size > FINGERPRINT_BYTES {
        f.seek(SeekFrom::Start(
            size.saturating_sub(FINGERPRINT_BYTES)
                .max(FINGERPRINT_BYTES),
        ))
        .ok()?;
        f.take(FINGERPRINT_BYTES).read_to_end(&mut buf).ok()?;
    }
    let canon = std::fs::canonicalize(path).ok()?;
    Some(format!(
        "{}|{size}|{mtime}|{:016x}",
        canon.display(),
        pipeline_core::stable_hash(&buf)
    ))
}

/// Looks `key` up; `None` on a miss or an unreadable entry.
pub(crate) fn get(store: &MetaCache, key: &str) -> Option<CachedMeta> {
    let v = store.get(&format!("{KEY_PREFIX}{key}"))?;
    serde_json::from_slice(&v).ok()
}

/// Merges `update` into the entry of `key` (fields set in `update` win).
pub(crate) fn put(store: &MetaCache, key: &str, update: CachedMeta) {
    let mut entry = get(store, key).unwrap_or_default();
    if update.report.is_some() {
        entry.report = update.report;
    }
    if update.boundaries.is_some() {
        entry.boundaries = update.boundaries;
    }
    match serde_json::to_vec(&entry) {
        Ok(bytes) => store.put(&format!("{KEY_PREFIX}{key}"), &bytes),
        Err(e) => tracing::debug!("metadata cache: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fingerprint_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.csv");
        std::fs::write(&f, "a,b\n1,2\n").unwrap();
        let db = MetaCache::memory();
        let k = fingerprint(&f).unwrap();
        assert!(get(&db, &k).is_none());
        put(
            &db,
            &k,
            CachedMeta {
                report: None,
                boundaries: Some((10, vec![4, 8])),
            },
        );
        assert_eq!(get(&db, &k).unwrap().boundaries, Some((10, vec![4, 8])));
        std::fs::write(&f, "a,b\n1,3\n").unwrap();
        let k2 = fingerprint(&f).unwrap();
        assert_ne!(k, k2, "same size, new content");
        assert!(get(&db, &k2).is_none());
    }
}
