//! The metadata cache: maps a file fingerprint (size, mtime, hash of the first and last
//! 64 KiB) to what reading it found: the `inspect` report (format, schema, row count, time
//! span, symbols) and the block boundaries of the parallel decoder. A second `inspect`
//! answers from the cache; a second `open_source` splits the file at the cached boundaries
//! without scanning for them.
//!
//! Entries are JSON in a [`MetaCache`] (pipeline-core's store trait; the run backs it with
//! the tickpipe cache's `meta` namespace). The cache is best effort: a miss or garbage
//! means the file is simply read without it.

use pipeline_core::MetaCache;
use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use super::inspect_report::InspectReport;

/// Prefix of this module's keys in the store (the store may hold other metadata), with the
/// entry format's version.
const KEY_PREFIX: &str = "pipeline-io/file-meta/v1|";

/// What is cached per file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct CachedMeta {
    /// The `inspect` report (rows, schema, span, symbols).
    pub report: Option<InspectReport>,
    /// Block size and block end offsets used by the parallel decoder.
    pub boundaries: Option<(u64, Vec<u64>)>,
    /// What [`super::describe_dataset`] found, with the hash of the read options it was
    /// found under ([`describe_options_hash`]): the sniff a run makes of every input before
    /// reading, so a re-run or an append sniffs only the files it has not seen.
    pub described: Option<(u64, CachedInfo)>,
}

/// A [`super::FileInfo`] as stored (the name is the caller's, not the cache's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CachedInfo {
    pub layout: Option<super::plan::VendorLayout>,
    pub kind: Option<pipeline_core::DatasetKind>,
    pub schema: arrow_schema::Schema,
    pub symbols: Vec<String>,
    pub zone: Option<String>,
}

/// The hash of what a file's description depends on besides its bytes: the `[input]`
/// settings, the selected columns, whether a time column is required and the line limit,
/// and this crate's version (a newer sniffer may describe the same bytes differently).
pub(crate) fn describe_options_hash(opts: &super::ReadOptions) -> u64 {
    pipeline_core::stable_hash(
        format!(
            "{}|{:?}|{:?}|{}|{}",
            env!("CARGO_PKG_VERSION"),
            opts.input,
            opts.columns,
            opts.require_timestamp,
            opts.max_line_bytes
        )
        .as_bytes(),
    )
}

/// The cache key of a file: its canonical path and [`Fingerprint`] (size, mtime, hash of
/// the first and last 64 KiB).
pub(crate) fn fingerprint(input: &super::InputFile) -> Option<String> {
    let f = Fingerprint::of_input(input).ok()?;
    let canon = super::canonical_path(&input.path).ok()?;
    Some(format!(
        "{}|{}|{}|{:016x}",
        canon.display(),
        f.size,
        f.mtime_ns,
        f.ends_hash
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
    if update.described.is_some() {
        entry.described = update.described;
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
        let k = fingerprint(&crate::InputFile::new(&f)).unwrap();
        assert!(get(&db, &k).is_none());
        put(
            &db,
            &k,
            CachedMeta {
                boundaries: Some((10, vec![4, 8])),
                ..Default::default()
            },
        );
        assert_eq!(get(&db, &k).unwrap().boundaries, Some((10, vec![4, 8])));
        std::fs::write(&f, "a,b\n1,3\n").unwrap();
        let k2 = fingerprint(&crate::InputFile::new(&f)).unwrap();
        assert_ne!(k, k2, "same size, new content");
        assert!(get(&db, &k2).is_none());
    }
}
