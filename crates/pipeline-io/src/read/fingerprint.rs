//! [`Fingerprint`]: what identifies an input file's content cheaply (size, modification time,
//! and a hash of its first and last 64 KiB), so a resumed or incremental run can tell an
//! unchanged file from an appended, rewritten or replaced one, and say which changed.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use pipeline_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Bytes hashed at each end of a file: enough to notice appends and rewrites of the same
/// size and mtime, small enough to cost nothing (two 64 KiB reads per file).
const END_BYTES: u64 = 64 << 10;

/// A file's fingerprint.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let p = dir.path().join("a.csv");
/// std::fs::write(&p, "ts,price\n1,2\n")?;
/// let a = pipeline_io::Fingerprint::of(&p)?;
/// std::fs::write(&p, "ts,price\n1,2\n3,4\n")?;
/// let b = pipeline_io::Fingerprint::of(&p)?;
/// assert_eq!(a.change_from(&a), None);
/// assert!(b.change_from(&a).unwrap().contains("size"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when unknown).
    pub mtime_ns: u128,
    /// `stable_hash` of the first and last 64 KiB.
    pub ends_hash: u64,
}

impl Fingerprint {
    /// Fingerprints the file at `path`.
    pub fn of(path: &Path) -> Result<Fingerprint> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let size = meta.len();
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // Sized up front: `read_to_end` into an empty buffer reads in growing steps.
        let mut buf = Vec::with_capacity(size.min(2 * END_BYTES) as usize + 1);
        (&mut f)
            .take(END_BYTES)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, e))?;
        if size > END_BYTES {
            f.seek(SeekFrom::Start(
                size.saturating_sub(END_BYTES).max(END_BYTES),
            ))
            .map_err(|e| Error::io(path, e))?;
            f.take(END_BYTES)
                .read_to_end(&mut buf)
                .map_err(|e| Error::io(path, e))?;
        }
        Ok(Fingerprint {
            size,
            mtime_ns,
            ends_hash: pipeline_core::stable_hash(&buf),
        })
    }

    /// What changed from `earlier` to `self`, in words; `None` when nothing did.
    pub fn change_from(&self, earlier: &Fingerprint) -> Option<String> {
        if self.size != earlier.size {
            let how = if self.size > earlier.size {
                "grew (appended?)"
            } else {
                "shrank"
            };
            return Some(format!(
                "size {} → {} bytes: it {how}",
                earlier.size, self.size
            ));
        }
        if self.ends_hash != earlier.ends_hash {
            return Some("its content changed (same size, different bytes)".into());
        }
        if self.mtime_ns != earlier.mtime_ns {
            return Some("it was modified (same size, new modification time)".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_rewrites_and_touches_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let body: String = (0..20_000).map(|i| format!("{i},1.5\n")).collect();
        std::fs::write(&p, &body).unwrap();
        let a = Fingerprint::of(&p).unwrap();
        assert_eq!(Fingerprint::of(&p).unwrap(), a);
        // Same size, a byte changed near the end.
        let mut changed = body.clone().into_bytes();
        let n = changed.len();
        changed[n - 3] = b'9';
        std::fs::write(&p, &changed).unwrap();
        let b = Fingerprint::of(&p).unwrap();
        assert!(b.change_from(&a).unwrap().contains("content"), "{b:?}");
        // Appended.
        std::fs::write(&p, format!("{body}1,2\n")).unwrap();
        let c = Fingerprint::of(&p).unwrap();
        assert!(c.change_from(&a).unwrap().contains("grew"));
        assert!(Fingerprint::of(&dir.path().join("none")).is_err());
    }
}
