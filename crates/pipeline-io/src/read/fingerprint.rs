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

/// What `stat` says of a file, the key a fingerprint was taken under (size, modification
/// and change times, device, inode): equal stamps mean an unchanged file. A fingerprint
/// kept with its stamp ([`Fingerprint::stamp`]) can be given back to a later process
/// ([`Fingerprint::remember`]), and the file is not read again. Only stamps of files that
/// had settled (last changed more than 2 s before the fingerprint was taken) are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StatStamp {
    size: u64,
    mtime_ns: u128,
    /// Change time, device and inode (Unix): a write moves the change time even when the
    /// modification time is set back, and a replaced file has another inode.
    ctime_ns: i128,
    dev: u64,
    ino: u64,
}

impl StatStamp {
    /// The stamp of `meta` (a file's `stat`).
    pub fn of(meta: &std::fs::Metadata) -> StatStamp {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        #[cfg(unix)]
        let (ctime_ns, dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (
                i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
                meta.dev(),
                meta.ino(),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, dev, ino) = (0, 0, 0);
        StatStamp {
            size: meta.len(),
            mtime_ns,
            ctime_ns,
            dev,
            ino,
        }
    }
}

/// Fingerprints taken in this process, by path: a run fingerprints each input twice (its
/// record and its cached description), and each time read and hashed 128 KiB of it.
/// Reused only while `stat` says the same; cleared when it holds [`MEMO_MAX`] files.
static MEMO: std::sync::LazyLock<std::sync::Mutex<Memo>> =
    std::sync::LazyLock::new(Default::default);

/// Fingerprints by path, with the `stat` each was taken under (keyed with
/// [`pipeline_core::FxHasher`]: SipHash over the path components was most of a lookup).
type Memo =
    std::collections::HashMap<std::path::PathBuf, (StatStamp, u64), pipeline_core::FxBuildHasher>;

/// Most fingerprints [`MEMO`] keeps (about 100 bytes each).
const MEMO_MAX: usize = 1 << 20;

/// Files changed less than this long ago (nanoseconds) are not kept in [`MEMO`].
const RACY_NS: i128 = 2_000_000_000;

impl Fingerprint {
    /// Fingerprints the file at `path`.
    pub fn of(path: &Path) -> Result<Fingerprint> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        Self::under(path, StatStamp::of(&meta))
    }

    /// The fingerprint of a listed input, under the `stat` taken when it was listed (one
    /// `stat` per input and run instead of one per fingerprint): a file changed after the
    /// listing then has a newer `stat` than the one recorded, and the next run reads it
    /// again. Inputs listed without a stamp (streams) are fingerprinted as [`Fingerprint::of`].
    pub fn of_input(input: &super::InputFile) -> Result<Fingerprint> {
        match input.stamp() {
            Some(stamp) => Self::under(&input.path, *stamp),
            None => Self::of(&input.path),
        }
    }

    /// The fingerprint of `path`, whose `stat` was `key`.
    fn under(path: &Path, key: StatStamp) -> Result<Fingerprint> {
        let (size, mtime_ns) = (key.size, key.mtime_ns);
        let memo = |m: &std::collections::HashMap<_, (StatStamp, u64), _>| {
            m.get(path).filter(|(k, _)| *k == key).map(|(_, h)| *h)
        };
        if let Some(ends_hash) = MEMO.lock().ok().and_then(|m| memo(&m)) {
            return Ok(Fingerprint {
                size,
                mtime_ns,
                ends_hash,
            });
        }
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
        let ends_hash = pipeline_core::stable_hash(&buf);
        // Keyed by the `stat` taken before reading: a write during the read changes it, so
        // the next call reads again. A file changed in the last seconds is not kept: file
        // times come from a clock that ticks every few milliseconds, so two same-size writes
        // within one tick leave the same `stat` (git's "racy clean" entries).
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let settled = now_ns - key.ctime_ns.max(key.mtime_ns as i128) > RACY_NS;
        if settled && let Ok(mut m) = MEMO.lock() {
            if m.len() >= MEMO_MAX {
                m.clear();
            }
            m.insert(path.to_path_buf(), (key, ends_hash));
        }
        Ok(Fingerprint {
            size,
            mtime_ns,
            ends_hash,
        })
    }

    /// The stamp under which `path`'s fingerprint was taken in this process, when the file
    /// had settled then (see [`StatStamp`]); `None` otherwise.
    pub fn stamp(path: &Path) -> Option<StatStamp> {
        let m = MEMO.lock().ok()?;
        m.get(path).map(|(k, _)| *k)
    }

    /// The stamp to record beside a listed input's fingerprint ([`Fingerprint::of_input`]):
    /// the one it was taken under, when the file had settled then and it is still the
    /// stamp of the input's listing.
    pub fn stamp_of_input(input: &super::InputFile) -> Option<StatStamp> {
        Self::stamp(&input.path).filter(|s| input.stamp().is_none_or(|l| l == s))
    }

    /// Gives this process a fingerprint of `path` taken earlier (by another process) under
    /// `stamp`: [`Fingerprint::of`] returns it without reading the file while the file's
    /// `stat` still equals the stamp. A fingerprint that does not match the stamp's size
    /// and modification time is ignored.
    pub fn remember(path: &Path, stamp: &StatStamp, fingerprint: &Fingerprint) {
        if stamp.size != fingerprint.size || stamp.mtime_ns != fingerprint.mtime_ns {
            return;
        }
        if let Ok(mut m) = MEMO.lock()
            && m.len() < MEMO_MAX
        {
            m.entry(path.to_path_buf())
                .or_insert((*stamp, fingerprint.ends_hash));
        }
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

    #[cfg(unix)]
    #[test]
    fn a_remembered_fingerprint_stands_while_the_stat_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("day.csv");
        std::fs::write(&p, "ts,price\n1,2.5\n").unwrap();
        let fresh = Fingerprint::of(&p).unwrap();
        // Changed in the last 2 s: no stamp is handed out (git's racy entries).
        assert_eq!(Fingerprint::stamp(&p), None);
        std::thread::sleep(std::time::Duration::from_millis(2_100));
        let settled = Fingerprint::of(&p).unwrap();
        assert_eq!(settled, fresh);
        let stamp = Fingerprint::stamp(&p).expect("settled: stamped");

        // Another path naming the same file (a symbolic link: the stat is the file's),
        // given a fingerprint with another hash under the right stamp: it is taken as is,
        // so the file was not read.
        let q = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&p, &q).unwrap();
        let planted = Fingerprint {
            ends_hash: fresh.ends_hash ^ 1,
            ..fresh.clone()
        };
        Fingerprint::remember(&q, &stamp, &planted);
        assert_eq!(Fingerprint::of(&q).unwrap(), planted);
        // A fingerprint that disagrees with its stamp's size is ignored.
        let r = dir.path().join("link2.csv");
        std::os::unix::fs::symlink(&p, &r).unwrap();
        let wrong = Fingerprint {
            size: fresh.size + 1,
            ..fresh.clone()
        };
        Fingerprint::remember(&r, &stamp, &wrong);
        assert_eq!(Fingerprint::of(&r).unwrap(), fresh);

        // The file changes: its stat does, and the remembered value goes.
        std::fs::write(&p, "ts,price\n1,2.6\n").unwrap();
        let now = Fingerprint::of(&q).unwrap();
        assert_ne!(now.ends_hash, planted.ends_hash);
        assert!(now.change_from(&fresh).is_some());
    }

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

    #[test]
    fn a_listed_input_is_fingerprinted_under_its_listing() {
        // Written while the run reads it: the run records the file as it was listed, so
        // the next run sees a change and reads it again.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("day.csv");
        std::fs::write(&p, "ts,price\n1,2.5\n").unwrap();
        let listed = crate::InputFile::new(&p);
        assert!(listed.stamp().is_some());
        std::fs::write(&p, "ts,price\n1,2.5\n2,2.6\n").unwrap();
        let recorded = Fingerprint::of_input(&listed).unwrap();
        assert_eq!(recorded.size, 15);
        let now = Fingerprint::of(&p).unwrap();
        assert!(now.change_from(&recorded).is_some());
        // Streams have no stamp and are fingerprinted by path.
        assert!(crate::InputFile::stdin().stamp().is_none());
    }
}
