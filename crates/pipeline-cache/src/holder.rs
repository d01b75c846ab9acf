//! [`Holder`]: who has a cache directory open, recorded in `holder.json` beside the database
//! so that a second process refused by the database's file lock can name the first.

use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The process that has a cache open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command line (arguments joined by spaces, at most 200 bytes).
    pub command: String,
    /// When it opened the cache, in seconds since the Unix epoch.
    pub opened_unix_s: u64,
}

/// Most bytes of a command line kept in the record: enough to recognise a `tickpipe run`.
const MAX_COMMAND_BYTES: usize = 200;

impl Holder {
    /// This process, now.
    pub(crate) fn this_process() -> Holder {
        let mut command = std::env::args().collect::<Vec<_>>().join(" ");
        if command.len() > MAX_COMMAND_BYTES {
            let mut end = MAX_COMMAND_BYTES;
            while !command.is_char_boundary(end) {
                end -= 1;
            }
            command.truncate(end);
            command.push('…');
        }
        Holder {
            pid: std::process::id(),
            command,
            opened_unix_s: unix_now_s(),
        }
    }

    /// Reads the record at `path`; `None` when it is missing or unreadable.
    pub(crate) fn read(path: &Path) -> Option<Holder> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Writes the record to `path` (through a temporary file and a rename, so a reader never
    /// sees half of it).
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ago = unix_now_s().saturating_sub(self.opened_unix_s);
        write!(
            f,
            "process {} (`{}`), which opened it {ago} s ago",
            self.pid, self.command
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_names_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("holder.json");
        assert!(Holder::read(&p).is_none());
        let h = Holder::this_process();
        h.write(&p).unwrap();
        let back = Holder::read(&p).unwrap();
        assert_eq!(back, h);
        assert!(back.to_string().contains(&std::process::id().to_string()));
        std::fs::write(&p, "not json").unwrap();
        assert!(Holder::read(&p).is_none());
    }
}
