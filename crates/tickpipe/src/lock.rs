//! One writer per output folder: an exclusive lock on `OUT/.tickpipe.lock` for the run's
//! lifetime (the operating system's file lock, `flock` on Unix, released when the process
//! ends however it ends), holding the owner's process id for the message a second run gets.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use pipeline_core::{Error, Result};

/// The lock file's name inside the output folder.
pub const LOCK_FILE: &str = ".tickpipe.lock";

/// A held lock on an output folder; released on drop.
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Takes the lock of `out` (created if needed), or fails at once with
    /// [`Error::Busy`] naming the process that holds it.
    pub fn acquire(out: &Path) -> Result<OutputLock> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let path = out.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let who = holder
                    .trim()
                    .parse::<u32>()
                    .map_or_else(|_| "another process".to_string(), |p| format!("pid {p}"));
                return Err(Error::Busy(format!(
                    "{} is in use by another tickpipe run ({who}); wait for it to finish or \
                     write to another folder",
                    out.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        // The holder's pid, for the message above.
        let pid = std::process::id();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| write!(file, "{pid}"))
            .and_then(|()| file.flush())
            .map_err(|e| Error::io(&path, e))?;
        Ok(OutputLock { file, path })
    }

    /// The pid recorded in `out`'s lock file when another process holds the lock now;
    /// `None` when nobody does (or the folder has no lock file).
    pub fn holder(out: &Path) -> Option<u32> {
        let path = out.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new().read(true).open(path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(_) => {
                let mut s = String::new();
                file.read_to_string(&mut s).ok()?;
                s.trim().parse().ok()
            }
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
        tracing::debug!("released {}", self.path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_fails_fast_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutputLock::acquire(dir.path()).unwrap();
        let e = OutputLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(e, Error::Busy(_)));
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        assert_eq!(OutputLock::holder(dir.path()), Some(std::process::id()));
        drop(first);
        assert_eq!(OutputLock::holder(dir.path()), None);
        OutputLock::acquire(dir.path()).unwrap();
    }
}
