//! [`canonical_path`]: `std::fs::canonicalize`, once per path per process. A run names each
//! input by its canonical path in several places (the description cache's key, the engine's
//! source names, the run record); on an append to a long history that was four `realpath`
//! walks per recorded file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

/// Keyed with [`pipeline_core::FxHasher`]: SipHash over the path components was most of a
/// lookup (a one-day append to five years of day files looks up every input three times).
static MEMO: LazyLock<Mutex<HashMap<PathBuf, PathBuf, pipeline_core::FxBuildHasher>>> =
    LazyLock::new(Default::default);

/// Most paths kept; past it the memo starts again (a run with more inputs than this only
/// resolves some of them twice).
const MEMO_MAX: usize = 1 << 20;

/// The canonical form of `path` (see [`std::fs::canonicalize`]), remembered for the rest of
/// the process once resolved; an error (a missing file) is not remembered.
pub fn canonical_path(path: &Path) -> std::io::Result<PathBuf> {
    if let Some(p) = MEMO.lock().ok().and_then(|m| m.get(path).cloned()) {
        return Ok(p);
    }
    let canon = std::fs::canonicalize(path)?;
    if let Ok(mut m) = MEMO.lock() {
        if m.len() >= MEMO_MAX {
            m.clear();
        }
        m.insert(path.to_path_buf(), canon.clone());
    }
    Ok(canon)
}

/// Remembers `canon` as the canonical form of `path` (a directory walk knows it for a
/// regular file: its directory's canonical form and its name), so the first lookup of each
/// walked file makes no `realpath` walk of its own.
pub(crate) fn remember(path: PathBuf, canon: PathBuf) {
    if let Ok(mut m) = MEMO.lock() {
        if m.len() >= MEMO_MAX {
            m.clear();
        }
        m.insert(path, canon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_canonicalize_and_not_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.csv");
        assert!(canonical_path(&f).is_err());
        std::fs::write(&f, "x\n").unwrap();
        let rel = dir.path().join(".").join("a.csv");
        assert_eq!(
            canonical_path(&rel).unwrap(),
            std::fs::canonicalize(&f).unwrap()
        );
        assert_eq!(
            canonical_path(&rel).unwrap(),
            std::fs::canonicalize(&f).unwrap()
        );
    }

    #[cfg(unix)]
    #[test]
    fn walked_files_resolve_through_linked_folders_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("a.csv"), "x\n").unwrap();
        let elsewhere = dir.path().join("b-target.csv");
        std::fs::write(&elsewhere, "y\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, real.join("b.csv")).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let files = crate::expand_inputs(&[link.display().to_string()], "*").unwrap();
        assert_eq!(files.len(), 2);
        for f in &files {
            assert_eq!(
                canonical_path(&f.path).unwrap(),
                std::fs::canonicalize(&f.path).unwrap(),
                "{}",
                f.path.display()
            );
        }
    }
}
