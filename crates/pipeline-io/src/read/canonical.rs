//! [`canonical_path`]: `std::fs::canonicalize`, once per path per process. A run names each
//! input by its canonical path in several places (the description cache's key, the engine's
//! source names, the run record); on an append to a long history that was four `realpath`
//! walks per recorded file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

static MEMO: LazyLock<Mutex<HashMap<PathBuf, PathBuf>>> = LazyLock::new(Default::default);

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
}
