//! The metadata cache: a redb file mapping a file fingerprint (size, mtime, hash of the first
//! and last 64 KiB) to what reading it found: the `inspect` report (format, schema, row
//! count, time span, symbols) and the block boundaries of the parallel decoder. A second
//! `inspect` answers from the cache; a second `open_source` splits the file at the cached
//! boundaries without scanning for them.
//!
//! The cache is best effort: when it cannot be opened (another process or source has it open
//! at that moment) or holds garbage, the file is simply read without it.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use super::inspect::InspectReport;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("tickpipe_file_meta_v1");

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

/// Looks `key` up; `None` on a miss or any cache problem.
pub(crate) fn get(db_path: &Path, key: &str) -> Option<CachedMeta> {
    if !db_path.exists() {
        return None;
    }
    let db = redb::Database::create(db_path).ok()?;
    let tx = db.begin_read().ok()?;
    let t = tx.open_table(TABLE).ok()?;
    let v = t.get(key).ok()??;
    serde_json::from_slice(v.value()).ok()
}

/// Merges `update` into the entry of `key` (fields set in `update` win).
pub(crate) fn put(db_path: &Path, key: &str, update: CachedMeta) {
    let mut entry = get(db_path, key).unwrap_or_default();
    if update.report.is_some() {
        entry.report = update.report;
    }
    if update.boundaries.is_some() {
        entry.boundaries = update.boundaries;
    }
    let Ok(bytes) = serde_json::to_vec(&entry) else {
        return;
    };
    let write = || -> Result<(), Box<dyn std::error::Error>> {
        let db = redb::Database::create(db_path)?;
        let tx = db.begin_write()?;
        {
            let mut t = tx.open_table(TABLE)?;
            t.insert(key, bytes.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    };
    if let Err(e) = write() {
        tracing::debug!("metadata cache {}: {e}", db_path.display());
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
        let db = dir.path().join("meta.redb");
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
