//! The run manifest (redb): what a resumed run needs after a `kill -9` — committed segments,
//! completed and failed sources, output files, the ledger so far, and each worker's stage
//! state at the last segment end.

use std::path::{Path, PathBuf};

use pipeline_core::{Error, Ledger, Result, SourcePosition, StageMetrics};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::state_pieces::{
    PACK_AT, PIECES, assemble, collect_garbage, cut, pieces_key, store, unpack_state,
};

/// Manifest format version; bumped on incompatible changes (3: output paths relative to the
/// output folder, quarantine files listed with the data; 4: the end-of-input flush may be a
/// segment of its own, with the state before it kept for incremental runs).
const VERSION: u32 = 4;

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Stage states of manifests written before segment history (`w{worker}/s{stage}`): read
/// when [`HISTORY_STATES`] has none.
const STATES: TableDefinition<&str, &[u8]> = TableDefinition::new("states");
/// Segment ends (`{next_segment:010}` → committed state), for [`rewind`].
const HISTORY: TableDefinition<&str, &str> = TableDefinition::new("history");
/// Their stage states (`{next_segment:010}/w{worker}/s{stage}`). The newest segment end's
/// are the states a resume or an append continues from (the end-of-input flush stores none,
/// so they stay those from before it).
const HISTORY_STATES: TableDefinition<&str, &[u8]> = TableDefinition::new("history_states");

/// Most segment ends kept for [`rewind`]: past it every second one (oldest first, never
/// the newest) is dropped, so a long run keeps about this many points, spread over its
/// history, and the manifest stays small.
const MAX_HISTORY: usize = 48;

/// Everything committed so far, as of the last segment end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Committed {
    pub version: u32,
    /// Worker count of the run (a resume must use the same: stage state is per worker).
    pub workers: usize,
    /// The next segment number to write.
    pub next_segment: u32,
    /// Sources completed, in order.
    pub completed: Vec<String>,
    /// Sources failed, with their errors.
    pub failed: Vec<(String, String)>,
    /// Output files of committed segments (data and quarantine). In memory they are paths as
    /// the run uses them; on disk, relative to the manifest's root when they are under it.
    pub outputs: Vec<PathBuf>,
    /// Ledger of committed segments (rows held in stage state are read but not yet out).
    pub ledger: Ledger,
    /// Stage metrics of committed segments.
    pub stages: Vec<(String, StageMetrics)>,
    /// Input bytes of committed segments.
    pub bytes_read: u64,
    /// Worker of each key routed so far (see `route::KeyAssigner`), sorted by key.
    pub assignment: Vec<(String, usize)>,
    /// Whether the last committed segment is the end-of-input flush segment (the run is
    /// finished; the committed state before it is kept as the base, see
    /// [`Manifest::load_base`]).
    #[serde(default)]
    pub flushed: bool,
    /// Where each committed source that can be continued stopped (a followed file), in
    /// commit order.
    #[serde(default)]
    pub positions: Vec<(String, SourcePosition)>,
}

/// Serialised stage state per worker, then per stage (`None`: the stage keeps none).
pub(crate) type States = Vec<Vec<Option<Vec<u8>>>>;

/// An open manifest.
pub(crate) struct Manifest {
    db: Database,
    path: PathBuf,
    /// The output folder output paths are stored relative to.
    root: Option<PathBuf>,
    /// What [`preload`] read of this file, when it was unchanged at open: the first
    /// [`Manifest::load`] and [`Manifest::load_base`] take it instead of reading again.
    preloaded: std::sync::Mutex<Option<Read>>,
}

/// A manifest's committed state with the newest segment end's stage states, and the state
/// before its end-of-input flush, as stored (output paths relative to the root). Each part
/// is `None` once [`Manifest::load`] or [`Manifest::load_base`] took it.
struct Read {
    committed: Option<(Option<Committed>, States)>,
    base: Option<Option<Committed>>,
}

/// What identifies a version of a manifest: its `stat` (length, modification time, inode)
/// and a hash of its first 4 KiB, redb's header, which every commit rewrites (it names the
/// latest transaction): a commit within the file system's time resolution that leaves the
/// length as it was still changes the stamp.
#[derive(Debug, Clone, PartialEq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    ino: u64,
    head: u64,
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path).ok()?;
    let m = f.metadata().ok()?;
    let mut head = Vec::with_capacity(4096);
    f.by_ref().take(4096).read_to_end(&mut head).ok()?;
    Some(FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&m),
        head: twox_hash::XxHash3_64::oneshot(&head),
    })
}

/// A manifest read ahead by [`preload`]: still being read on its thread, or read (its path,
/// its stamp then, and what it read).
enum Preload {
    Reading(PathBuf, std::thread::JoinHandle<Option<(FileStamp, Read)>>),
    Read(PathBuf, FileStamp, Box<Read>),
}

/// The manifest [`preload`] read last.
static PRELOADED: std::sync::Mutex<Option<Preload>> = std::sync::Mutex::new(None);

/// Reads the manifest at `path` ahead of a run that will resume or extend it, on a thread
/// of its own, and returns at once (a one-day append to five years of days spent 4.6 ms of
/// its main thread opening it, reading the stage states and decompressing them before any
/// input was read). The run takes what was read only if the file is unchanged when it
/// opens it (waiting for the read if it is still going); nothing is kept when the file
/// cannot be read now (it is missing, open for writing by another process, of another
/// version).
pub fn preload(path: &Path) {
    let Some(mut p) = settled() else {
        return;
    };
    let at = path.to_path_buf();
    let reader = std::thread::Builder::new()
        .name("tickpipe-manifest".into())
        .spawn(move || read_ahead(&at));
    *p = reader.ok().map(|h| Preload::Reading(path.to_path_buf(), h));
}

/// What [`preload`] reads: the manifest at `path` as it is, with its stamp, unless it
/// changed while being read.
fn read_ahead(path: &Path) -> Option<(FileStamp, Read)> {
    let before = file_stamp(path)?;
    let read = {
        let db = redb::ReadOnlyDatabase::open(path).ok()?;
        let txn = db.begin_read().ok()?;
        read_in(path, &txn).ok()?
    };
    (file_stamp(path).as_ref() == Some(&before)).then_some((before, read))
}

/// [`PRELOADED`], locked, once a read in flight has ended (its database closed, so the
/// file can be opened for writing).
fn settled() -> Option<std::sync::MutexGuard<'static, Option<Preload>>> {
    let mut p = PRELOADED.lock().ok()?;
    if let Some(Preload::Reading(..)) = p.as_ref()
        && let Some(Preload::Reading(at, h)) = p.take()
    {
        *p = h
            .join()
            .ok()
            .flatten()
            .map(|(stamp, read)| Preload::Read(at, stamp, Box::new(read)));
    }
    Some(p)
}

/// The preloaded read of `path`, if its stamp is still the one it was read under.
fn take_preloaded(path: &Path) -> Option<Read> {
    let mut p = settled()?;
    match p.take() {
        Some(Preload::Read(at, stamp, read)) if at == path => {
            (file_stamp(path).as_ref() == Some(&stamp)).then_some(*read)
        }
        other => {
            *p = other;
            None
        }
    }
}

/// The committed state, the base and the newest segment end's stage states as `txn` sees
/// them, as stored.
fn read_in(path: &Path, txn: &redb::ReadTransaction) -> Result<Read> {
    let committed = meta_json::<Committed>(path, txn, "committed")?;
    let base = meta_json::<Committed>(path, txn, "base")?;
    let states = match &committed {
        Some(c) => states_in(path, txn, c)?,
        None => Vec::new(),
    };
    Ok(Read {
        committed: Some((committed, states)),
        base: Some(base),
    })
}

/// The newest segment end's stage states (`states[worker][stage]`) for committed state `c`;
/// a manifest from before segment history keeps them in STATES.
fn states_in(p: &Path, txn: &redb::ReadTransaction, c: &Committed) -> Result<States> {
    let newest = match txn.open_table(HISTORY) {
        Ok(h) => h
            .last()
            .map_err(|e| db_err(p, e))?
            .map(|(k, _)| format!("{}/", k.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(db_err(p, e)),
    };
    let (table, prefix) = match newest {
        Some(prefix) => (HISTORY_STATES, prefix),
        None => (STATES, String::new()),
    };
    let n_stages = c.stages.len();
    let mut states = vec![vec![None; n_stages]; c.workers];
    let states_t = match txn.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(states),
        Err(e) => return Err(db_err(p, e)),
    };
    for (w, row) in states.iter_mut().enumerate() {
        for (k, slot) in row.iter_mut().enumerate() {
            let key = format!("{prefix}{}", state_key(w, k));
            if let Some(v) = states_t.get(key.as_str()).map_err(|e| db_err(p, e))? {
                *slot = Some(v.value().to_vec());
            } else if let Some(v) = states_t
                .get(packed_key(&key).as_str())
                .map_err(|e| db_err(p, e))?
            {
                *slot = Some(unpack_state(v.value()).map_err(|e| db_err(p, e))?);
            } else if let Some(v) = states_t
                .get(pieces_key(&key).as_str())
                .map_err(|e| db_err(p, e))?
            {
                let pieces = txn.open_table(PIECES).map_err(|e| db_err(p, e))?;
                *slot = Some(assemble(&pieces, v.value()).map_err(|e| db_err(p, e))?);
            }
        }
    }
    Ok(states)
}

/// The worker count of the interrupted run whose manifest is at `path`; `None` when there is
/// no manifest or nothing was committed yet. A resume must use the same count (stage state
/// is kept per worker), so a caller whose count was not set explicitly takes this one.
pub fn resumed_workers(path: &Path) -> Result<Option<usize>> {
    if !path.exists() {
        return Ok(None);
    }
    if let Some(p) = settled()
        && let Some(Preload::Read(at, stamp, read)) = p.as_ref()
        && at == path
        && file_stamp(path).as_ref() == Some(stamp)
    {
        return match &read.committed {
            Some((Some(c), _)) => check_version(c.version).map(|()| Some(c.workers)),
            _ => Ok(None),
        };
    }
    // Read-only when the file was closed cleanly: a database opened for writing commits
    // its allocator state when it is closed (a write and `fsync`s), and the run opens the
    // manifest again at once. On a one-day append to five years of days this call was 5%
    // of the main thread's time (`perf`, 5 runs). Any other case takes the full open,
    // which repairs or says what is wrong.
    if let Ok(db) = redb::ReadOnlyDatabase::open(path) {
        let txn = db.begin_read().map_err(|e| db_err(path, e))?;
        /// The fields of [`Committed`] this needs (serde skips the rest, the committed
        /// inputs among them).
        #[derive(Deserialize)]
        struct Head {
            version: u32,
            workers: usize,
        }
        let Some(h) = meta_json::<Head>(path, &txn, "committed")? else {
            return Ok(None);
        };
        check_version(h.version)?;
        return Ok(Some(h.workers));
    }
    Ok(Manifest::open(path, None)?
        .load_committed()?
        .map(|c| c.workers))
}

/// The JSON value under `key` in the metadata table as `txn` sees it (`committed`, `base`),
/// read as `T` (a [`Committed`] or some of its fields); `None` when there is none.
fn meta_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    txn: &redb::ReadTransaction,
    key: &str,
) -> Result<Option<T>> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(db_err(path, e)),
    };
    let Some(text) = meta.get(key).map_err(|e| db_err(path, e))? else {
        return Ok(None);
    };
    serde_json::from_str(text.value())
        .map(Some)
        .map_err(|e| json_err(path, e))
}

/// A manifest of another format version cannot be continued.
fn check_version(version: u32) -> Result<()> {
    if version == VERSION {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "cannot resume: manifest version {version} (this tickpipe writes {VERSION})"
        )))
    }
}

/// Where the committed sources of the run whose manifest is at `path` stopped, for those
/// that can be continued (a followed file stopped by Ctrl-C), in commit order; empty when
/// there is no manifest or nothing was committed. After an end-of-input flush these are the
/// positions before it too (the flush reads nothing).
pub fn committed_positions(path: &Path) -> Result<Vec<(String, SourcePosition)>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(Manifest::open(path, None)?
        .load()?
        .map(|(c, _)| c.positions)
        .unwrap_or_default())
}

/// What an interrupted (or finished) run has committed, as its manifest says: for a summary
/// after a fatal error and for `tickpipe inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommittedSummary {
    /// Segments committed.
    pub segments: u32,
    /// Inputs completed.
    pub inputs_completed: usize,
    /// Inputs that failed (each is in the quarantine with its error).
    pub inputs_failed: usize,
    /// The ledger of the committed segments. Rows still held in stage state (a reorder or
    /// dedupe window) count as read and not yet out, so it may not balance.
    pub ledger: Ledger,
    /// Input bytes of the committed segments.
    pub bytes_read: u64,
}

/// Where [`rewind`] took a finished run back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewindPoint {
    /// The first segment that will be written again.
    pub next_segment: u32,
    /// Inputs (completed or failed) committed before it.
    pub inputs: usize,
}

/// Takes the run whose manifest is at `path` (output paths relative to `root`) back to the
/// latest segment end at which every committed input is one of `kept` (the unchanged first
/// inputs of a changed history): that state becomes the committed one, with its stage
/// states, and the later segment ends are forgotten, so a resume re-processes everything
/// after it and removes the later segments' files as uncommitted work. `None` (and nothing
/// changed) when no kept segment end qualifies, e.g. the change is in the first segment or
/// the manifest predates segment history.
pub fn rewind(path: &Path, root: &Path, kept: &[String]) -> Result<Option<RewindPoint>> {
    if !path.exists() {
        return Ok(None);
    }
    let m = Manifest::open(path, Some(root.to_path_buf()))?;
    let kept: std::collections::HashSet<&str> = kept.iter().map(String::as_str).collect();
    m.rewind(|c| {
        c.completed
            .iter()
            .map(String::as_str)
            .chain(c.failed.iter().map(|f| f.0.as_str()))
            .all(|n| kept.contains(n))
    })
}

/// What the run whose manifest is at `path` has committed; `None` when there is no manifest
/// or nothing was committed.
pub fn committed_summary(path: &Path) -> Result<Option<CommittedSummary>> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(Manifest::open(path, None)?
        .load_committed()?
        .map(|c| CommittedSummary {
            segments: c.next_segment,
            inputs_completed: c.completed.len(),
            inputs_failed: c.failed.len(),
            ledger: c.ledger,
            bytes_read: c.bytes_read,
        }))
}

/// A finished run's committed state as a post-pass that recomputes one stage needs it (see
/// [`replace_stage_states`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRun {
    /// Worker count (stage state is kept per worker).
    pub workers: usize,
    /// The stages' names, in chain order (the index of a stage's state).
    pub stages: Vec<String>,
    /// Output files of all committed segments, absolute.
    pub outputs: Vec<PathBuf>,
    /// The worker each routing key (symbol) went to.
    pub assignment: Vec<(String, usize)>,
    /// The segment ends whose stage states the manifest keeps, as the first segment after
    /// each, ascending. The last is the one a resume or an append continues from.
    pub segment_ends: Vec<u32>,
}

/// The run whose manifest is at `path` (output paths resolved against `root`), as committed;
/// the caller knows it finished (`_SUCCESS`). `None` when there is no manifest, nothing was
/// committed, or the manifest keeps no segment ends (written before segment history).
pub fn finished_run(path: &Path, root: &Path) -> Result<Option<FinishedRun>> {
    if !path.exists() {
        return Ok(None);
    }
    let m = Manifest::open(path, Some(root.to_path_buf()))?;
    let p = &m.path;
    let txn = m.db.begin_read().map_err(|e| db_err(p, e))?;
    let Some(c) = m.committed_in(&txn)? else {
        return Ok(None);
    };
    let ends = match txn.open_table(HISTORY) {
        Ok(h) => keys(h.iter().map_err(|e| db_err(p, e))?).map_err(|e| db_err(p, e))?,
        Err(redb::TableError::TableDoesNotExist(_)) => Vec::new(),
        Err(e) => return Err(db_err(p, e)),
    };
    let segment_ends = ends
        .iter()
        .map(|k| {
            k.parse::<u32>().map_err(|_| {
                Error::io(
                    p,
                    std::io::Error::other(format!("run manifest: bad segment end `{k}`")),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if segment_ends.is_empty() {
        return Ok(None);
    }
    Ok(Some(FinishedRun {
        workers: c.workers,
        stages: c.stages.iter().map(|(n, _)| n.clone()).collect(),
        outputs: c.outputs,
        assignment: c.assignment,
        segment_ends,
    }))
}

/// Replaces the state of stage `stage` at the segment ends of the manifest at `path`, in one
/// transaction: `states` holds, for each segment end (as [`FinishedRun::segment_ends`] names
/// them), every worker's new state (`None`: the stage keeps none). Segment ends not listed
/// keep their states; a listed one the manifest does not keep is an error.
pub fn replace_stage_states(
    path: &Path,
    stage: usize,
    states: &[(u32, Vec<Option<Vec<u8>>>)],
) -> Result<()> {
    let m = Manifest::open(path, None)?;
    let p = &m.path;
    let txn = m.db.begin_write().map_err(|e| db_err(p, e))?;
    {
        let h = txn.open_table(HISTORY).map_err(|e| db_err(p, e))?;
        let mut hs = txn.open_table(HISTORY_STATES).map_err(|e| db_err(p, e))?;
        for (end, per_worker) in states {
            let seg = history_key(*end);
            if h.get(seg.as_str()).map_err(|e| db_err(p, e))?.is_none() {
                return Err(Error::Internal(format!(
                    "run manifest {}: no segment end {end}",
                    p.display()
                )));
            }
            let mut entries = Vec::new();
            for (w, s) in per_worker.iter().enumerate() {
                let key = format!("{seg}/{}", state_key(w, stage));
                remove_state(&mut hs, &key).map_err(|e| db_err(p, e))?;
                if let Some(bytes) = s {
                    entries.push((key, bytes.as_slice()));
                }
            }
            insert_states(&txn, &mut hs, entries).map_err(|e| db_err(p, e))?;
        }
        collect_unnamed_pieces(&txn, &hs).map_err(|e| db_err(p, e))?;
    }
    txn.commit().map_err(|e| db_err(p, e))
}

/// A manifest error as an I/O error of `path`, keeping the kind of an underlying I/O error
/// (a full disk while committing is an environment error, exit 4, not a usage error).
fn db_err(path: &Path, e: impl Into<redb::Error>) -> Error {
    let source = match e.into() {
        redb::Error::Io(io) => std::io::Error::new(io.kind(), format!("run manifest: {io}")),
        other => std::io::Error::other(format!("run manifest: {other}")),
    };
    Error::io(path, source)
}

/// A manifest entry that does not parse.
fn json_err(path: &Path, e: serde_json::Error) -> Error {
    Error::io(path, std::io::Error::other(format!("run manifest: {e}")))
}

impl Manifest {
    /// Creates a fresh manifest at `path`, replacing any old one; output paths under `root`
    /// are stored relative to it.
    pub fn create(path: &Path, root: Option<PathBuf>) -> Result<Self> {
        // A read ahead of the old file ends first (it has it open).
        drop(settled());
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let db = Database::create(path).map_err(|e| db_err(path, e))?;
        Ok(Manifest {
            db,
            path: path.to_path_buf(),
            root,
            preloaded: std::sync::Mutex::new(None),
        })
    }

    /// Opens an existing manifest for resuming; relative output paths are resolved against
    /// `root` (the folder as it is now, wherever it was moved).
    pub fn open(path: &Path, root: Option<PathBuf>) -> Result<Self> {
        if !path.exists() {
            return Err(Error::Usage(format!(
                "cannot resume: no run manifest at {}",
                path.display()
            )));
        }
        // Taken before the open, which may write to the file.
        let preloaded = take_preloaded(path);
        let db = Database::open(path).map_err(|e| db_err(path, e))?;
        Ok(Manifest {
            db,
            path: path.to_path_buf(),
            root,
            preloaded: std::sync::Mutex::new(preloaded),
        })
    }

    /// The committed state without the stage states (which hold every worker's state and
    /// grow with a long history): `None` when nothing was committed yet.
    pub fn load_committed(&self) -> Result<Option<Committed>> {
        let txn = self.db.begin_read().map_err(|e| db_err(&self.path, e))?;
        self.committed_in(&txn)
    }

    /// The committed state as `txn` sees it.
    fn committed_in(&self, txn: &redb::ReadTransaction) -> Result<Option<Committed>> {
        let Some(mut c) = meta_json::<Committed>(&self.path, txn, "committed")? else {
            return Ok(None);
        };
        self.absolute(&mut c);
        check_version(c.version)?;
        Ok(Some(c))
    }

    /// The committed state and per-worker stage states (`states[worker][stage]`), or `None`
    /// when nothing was committed yet.
    pub fn load(&self) -> Result<Option<(Committed, States)>> {
        let preloaded = self
            .preloaded
            .lock()
            .ok()
            .and_then(|mut p| p.as_mut()?.committed.take());
        let (committed, states) = match preloaded {
            Some(read) => read,
            None => {
                let p = &self.path;
                let txn = self.db.begin_read().map_err(|e| db_err(p, e))?;
                let Some(c) = meta_json::<Committed>(p, &txn, "committed")? else {
                    return Ok(None);
                };
                let states = states_in(p, &txn, &c)?;
                (Some(c), states)
            }
        };
        let Some(mut c) = committed else {
            return Ok(None);
        };
        self.absolute(&mut c);
        check_version(c.version)?;
        Ok(Some((c, states)))
    }

    /// Keeps `base`, the committed state before the end-of-input flush segment, so a later
    /// run can continue from it with more inputs.
    pub fn save_base(&self, base: &Committed) -> Result<()> {
        let p = &self.path;
        self.forget_preloaded();
        let text = serde_json::to_string(&self.relative(base)).map_err(|e| json_err(p, e))?;
        let txn = self.db.begin_write().map_err(|e| db_err(p, e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| db_err(p, e))?;
            meta.insert("base", text.as_str())
                .map_err(|e| db_err(p, e))?;
        }
        txn.commit().map_err(|e| db_err(p, e))
    }

    /// The committed state before the end-of-input flush of the finished run (see
    /// [`Manifest::save_base`]); `None` when none was kept. The stage states stored with the
    /// flush segment are the states from before the flush.
    pub fn load_base(&self) -> Result<Option<Committed>> {
        let p = &self.path;
        let preloaded = self
            .preloaded
            .lock()
            .ok()
            .and_then(|mut p| p.as_mut()?.base.take());
        let base = match preloaded {
            Some(base) => base,
            None => {
                let txn = self.db.begin_read().map_err(|e| db_err(p, e))?;
                meta_json::<Committed>(p, &txn, "base")?
            }
        };
        let Some(mut c) = base else {
            return Ok(None);
        };
        self.absolute(&mut c);
        Ok(Some(c))
    }

    /// Drops what [`preload`] read: the file is about to change.
    fn forget_preloaded(&self) {
        if let Ok(mut p) = self.preloaded.lock() {
            *p = None;
        }
    }

    /// `c` with output paths under the root made relative to it.
    fn relative(&self, c: &Committed) -> Committed {
        let mut c = c.clone();
        c.version = VERSION;
        if let Some(root) = &self.root {
            for o in &mut c.outputs {
                if let Ok(rel) = o.strip_prefix(root) {
                    *o = rel.to_path_buf();
                }
            }
        }
        c
    }

    /// Resolves `c`'s relative output paths against the root.
    fn absolute(&self, c: &mut Committed) {
        if let Some(root) = &self.root {
            for o in &mut c.outputs {
                if o.is_relative() {
                    *o = root.join(&*o);
                }
            }
        }
    }

    /// Commits a segment atomically: the new committed state and, as a segment end of the
    /// history, every worker's stage state. The end-of-input flush passes no states: the
    /// newest segment end stays the one before it.
    pub fn commit(&self, c: &Committed, states: &[Vec<Option<Vec<u8>>>]) -> Result<()> {
        let p = &self.path;
        self.forget_preloaded();
        let c = self.relative(c);
        let text = serde_json::to_string(&c).map_err(|e| json_err(p, e))?;
        let txn = self.db.begin_write().map_err(|e| db_err(p, e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| db_err(p, e))?;
            meta.insert("committed", text.as_str())
                .map_err(|e| db_err(p, e))?;
            if !states.is_empty() {
                let seg = history_key(c.next_segment);
                let mut h = txn.open_table(HISTORY).map_err(|e| db_err(p, e))?;
                let mut hs = txn.open_table(HISTORY_STATES).map_err(|e| db_err(p, e))?;
                // Written again (an append starts from the segment end before the flush).
                let mut removed = remove_prefixed(&mut hs, &seg).map_err(|e| db_err(p, e))?;
                h.insert(seg.as_str(), text.as_str())
                    .map_err(|e| db_err(p, e))?;
                let entries = states.iter().enumerate().flat_map(|(w, row)| {
                    let seg = &seg;
                    row.iter().enumerate().filter_map(move |(k, s)| {
                        s.as_deref()
                            .map(|bytes| (format!("{seg}/{}", state_key(w, k)), bytes))
                    })
                });
                insert_states(&txn, &mut hs, entries.collect()).map_err(|e| db_err(p, e))?;
                let ends = keys(h.iter().map_err(|e| db_err(p, e))?).map_err(|e| db_err(p, e))?;
                if ends.len() > MAX_HISTORY {
                    let newest = ends.len() - 1;
                    for (i, k) in ends.iter().enumerate() {
                        if i % 2 == 1 && i != newest {
                            h.remove(k.as_str()).map_err(|e| db_err(p, e))?;
                            removed += remove_prefixed(&mut hs, k).map_err(|e| db_err(p, e))?;
                        }
                    }
                }
                if removed > 0 {
                    collect_unnamed_pieces(&txn, &hs).map_err(|e| db_err(p, e))?;
                }
            }
        }
        txn.commit().map_err(|e| db_err(p, e))
    }

    /// Makes `base`, the committed state from before a finished run's end-of-input flush,
    /// the committed state again (an append or a second flush starts from it), with
    /// `states`, the stage states [`Manifest::load`] gave. Those are the newest segment
    /// end's; when that segment end is `base`'s own they are stored already, and only the
    /// committed state is written (compressing the states again was an append's largest
    /// fixed cost: validation's state holds every closed symbol-day).
    pub fn recommit(&self, base: &Committed, states: &[Vec<Option<Vec<u8>>>]) -> Result<()> {
        let p = &self.path;
        let newest = {
            let txn = self.db.begin_read().map_err(|e| db_err(p, e))?;
            match txn.open_table(HISTORY) {
                Ok(h) => h
                    .last()
                    .map_err(|e| db_err(p, e))?
                    .map(|(k, _)| k.value().to_string()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(db_err(p, e)),
            }
        };
        if newest == Some(history_key(base.next_segment)) {
            self.commit(base, &[])
        } else {
            self.commit(base, states)
        }
    }

    /// See [`rewind`]: the latest kept segment end for which `keep` holds becomes the
    /// committed state, in one transaction.
    fn rewind(&self, keep: impl Fn(&Committed) -> bool) -> Result<Option<RewindPoint>> {
        let p = &self.path;
        self.forget_preloaded();
        let txn = self.db.begin_write().map_err(|e| db_err(p, e))?;
        let point = {
            let mut h = txn.open_table(HISTORY).map_err(|e| db_err(p, e))?;
            let mut chosen = None;
            for r in h.iter().map_err(|e| db_err(p, e))?.rev() {
                let (k, v) = r.map_err(|e| db_err(p, e))?;
                let c: Committed = serde_json::from_str(v.value()).map_err(|e| json_err(p, e))?;
                if c.version == VERSION && keep(&c) {
                    chosen = Some((k.value().to_string(), v.value().to_string(), c));
                    break;
                }
            }
            let Some((key, text, c)) = chosen else {
                return Ok(None);
            };
            // Later segment ends describe output that is about to be written again; without
            // them the chosen one is the newest, whose states a resume continues from.
            let mut hs = txn.open_table(HISTORY_STATES).map_err(|e| db_err(p, e))?;
            let later = h
                .range::<&str>((
                    std::ops::Bound::Excluded(key.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .map_err(|e| db_err(p, e))?;
            for k in keys(later).map_err(|e| db_err(p, e))? {
                h.remove(k.as_str()).map_err(|e| db_err(p, e))?;
                remove_prefixed(&mut hs, &k).map_err(|e| db_err(p, e))?;
            }
            collect_unnamed_pieces(&txn, &hs).map_err(|e| db_err(p, e))?;
            let mut meta = txn.open_table(META).map_err(|e| db_err(p, e))?;
            meta.insert("committed", text.as_str())
                .map_err(|e| db_err(p, e))?;
            meta.remove("base").map_err(|e| db_err(p, e))?;
            RewindPoint {
                next_segment: c.next_segment,
                inputs: c.completed.len() + c.failed.len(),
            }
        };
        txn.commit().map_err(|e| db_err(p, e))?;
        Ok(Some(point))
    }
}

fn history_key(next_segment: u32) -> String {
    format!("{next_segment:010}")
}

/// Removes the history states of segment end `key`; returns how many there were.
fn remove_prefixed(
    hs: &mut redb::Table<&str, &[u8]>,
    key: &str,
) -> std::result::Result<usize, redb::StorageError> {
    // `0` sorts right after `/`: the range is exactly the keys under `key/`.
    let (from, to) = (format!("{key}/"), format!("{key}0"));
    let gone = keys(hs.range(from.as_str()..to.as_str())?)?;
    for k in &gone {
        hs.remove(k.as_str())?;
    }
    Ok(gone.len())
}

/// The keys of a range of a table.
fn keys<V: redb::Value + 'static>(
    range: redb::Range<'_, &'static str, V>,
) -> std::result::Result<Vec<String>, redb::StorageError> {
    range
        .map(|r| r.map(|(k, _)| k.value().to_string()))
        .collect()
}

fn state_key(worker: usize, stage: usize) -> String {
    format!("w{worker}/s{stage}")
}

/// Where a compressed state was kept by manifests written before states were stored in
/// pieces (see [`crate::state_pieces`]): its key with `#z`. Still read and removed.
fn packed_key(key: &str) -> String {
    format!("{key}#z")
}

/// Removes the state under `key`, in whichever form it is stored.
fn remove_state(
    hs: &mut redb::Table<&str, &[u8]>,
    key: &str,
) -> std::result::Result<(), redb::StorageError> {
    hs.remove(key)?;
    hs.remove(packed_key(key).as_str())?;
    hs.remove(pieces_key(key).as_str())?;
    Ok(())
}

/// Inserts each state of `entries` (key, bytes): a large one in pieces (those the manifest
/// lacks packed on threads of their own), the others as they are.
fn insert_states(
    txn: &redb::WriteTransaction,
    hs: &mut redb::Table<&str, &[u8]>,
    entries: Vec<(String, &[u8])>,
) -> std::result::Result<(), redb::StorageError> {
    let (large, small): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(_, bytes)| bytes.len() >= PACK_AT);
    for (key, bytes) in small {
        hs.insert(key.as_str(), bytes)?;
    }
    if large.is_empty() {
        return Ok(());
    }
    let cuts: Vec<_> = large.iter().map(|(_, bytes)| cut(bytes)).collect();
    let mut pieces = txn.open_table(PIECES).map_err(table_err)?;
    store(&mut pieces, &cuts)?;
    for ((key, _), c) in large.iter().zip(&cuts) {
        hs.insert(pieces_key(key).as_str(), c.list.as_slice())?;
    }
    Ok(())
}

/// Deletes the pieces no state in `hs` names any more.
fn collect_unnamed_pieces(
    txn: &redb::WriteTransaction,
    hs: &redb::Table<&str, &[u8]>,
) -> std::result::Result<(), redb::StorageError> {
    let mut pieces = txn.open_table(PIECES).map_err(table_err)?;
    collect_garbage(&mut pieces, hs)
}

/// A table that cannot be opened, as a storage error.
fn table_err(e: redb::TableError) -> redb::StorageError {
    match e {
        redb::TableError::Storage(s) => s,
        other => redb::StorageError::Io(std::io::Error::other(other.to_string())),
    }
}

/// Claims a file as a run's uncommitted work, given the first uncommitted segment.
pub(crate) type OwnedPredicate = dyn Fn(&Path, u32) -> bool + Send + Sync;

/// Deletes this run's uncommitted work under `dir`: files not in `keep` that `owned` claims
/// (given the first uncommitted segment), or, without `owned`, unlisted `*.tmp` files.
/// Anything else (the manifest, the user's files, another tool's) is left alone. Returns how
/// many files were removed.
pub(crate) fn remove_uncommitted(
    dir: &Path,
    keep: &[PathBuf],
    next_segment: u32,
    owned: Option<&OwnedPredicate>,
) -> Result<usize> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let keep: std::collections::HashSet<PathBuf> = keep.iter().map(|p| canon(p)).collect();
    let mut removed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&d, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&d, e))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if ft.is_dir() {
                stack.push(path);
                continue;
            }
            let mine = match owned {
                Some(f) => f(&path, next_segment),
                None => path.extension().is_some_and(|e| e == "tmp"),
            };
            if mine && !keep.contains(&canon(&path)) {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_under_the_manifest_is_an_environment_error() {
        let full = redb::StorageError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull));
        let e = db_err(Path::new("m.redb"), redb::CommitError::Storage(full));
        assert!(e.is_environment(), "{e}");
        assert!(e.to_string().contains("run manifest"), "{e}");
        let other = db_err(
            Path::new("m.redb"),
            redb::StorageError::Corrupted("x".into()),
        );
        assert!(!other.is_environment(), "{other}");
    }

    #[test]
    fn a_manifest_from_before_segment_history_loads_its_states() {
        let (_dir, _, m) = new_manifest();
        let c = Committed {
            version: VERSION,
            workers: 1,
            next_segment: 2,
            stages: vec![("s".into(), StageMetrics::default())],
            ..Default::default()
        };
        // As the previous format wrote it: the committed state and STATES, no history.
        let txn = m.db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            let text = serde_json::to_string(&c).unwrap();
            meta.insert("committed", text.as_str()).unwrap();
            let mut st = txn.open_table(STATES).unwrap();
            st.insert(state_key(0, 0).as_str(), &[9u8, 9][..]).unwrap();
        }
        txn.commit().unwrap();
        let (_, states) = m.load().unwrap().unwrap();
        assert_eq!(states, vec![vec![Some(vec![9, 9])]]);
        // Once it commits in the new format, the newest segment end's states win.
        m.commit(&c, &[vec![Some(vec![1])]]).unwrap();
        let (_, states) = m.load().unwrap().unwrap();
        assert_eq!(states, vec![vec![Some(vec![1])]]);
    }

    /// A new manifest `run.redb` in a temporary folder (kept while the folder is).
    fn new_manifest() -> (tempfile::TempDir, PathBuf, Manifest) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.redb");
        let m = Manifest::create(&path, None).unwrap();
        (dir, path, m)
    }

    /// Closed symbol-days as JSON lines, `n` of them: large and repetitive.
    fn days(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                format!("{{\"symbol\":\"AAPL\",\"date\":\"d{i}\",\"rows\":{i}}}\n").into_bytes()
            })
            .collect()
    }

    fn one_stage(workers: usize, next_segment: u32) -> Committed {
        Committed {
            version: VERSION,
            workers,
            next_segment,
            stages: vec![("s".into(), StageMetrics::default())],
            ..Default::default()
        }
    }

    /// The stored values' sizes: states by key, and the pieces.
    fn stored(m: &Manifest, key: &str) -> Option<usize> {
        let txn = m.db.begin_read().unwrap();
        let t = txn.open_table(HISTORY_STATES).unwrap();
        t.get(key).unwrap().map(|v| v.value().len())
    }

    fn piece_count(m: &Manifest) -> usize {
        let txn = m.db.begin_read().unwrap();
        match txn.open_table(PIECES) {
            Ok(t) => t.iter().unwrap().count(),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn large_states_are_kept_in_compressed_pieces_and_load_as_they_were() {
        let (_dir, path, m) = new_manifest();
        let big = days(20_000);
        assert!(big.len() >= 4 * crate::state_pieces::PIECE);
        let small = vec![7u8; 100];
        m.commit(
            &one_stage(2, 1),
            &[vec![Some(big.clone())], vec![Some(small.clone())]],
        )
        .unwrap();
        let (_, states) = m.load().unwrap().unwrap();
        assert_eq!(
            states,
            vec![vec![Some(big.clone())], vec![Some(small.clone())]]
        );
        let seg = history_key(1);
        let (k0, k1) = (
            format!("{seg}/{}", state_key(0, 0)),
            format!("{seg}/{}", state_key(1, 0)),
        );
        assert_eq!(stored(&m, &k0), None);
        let pieces = big.len().div_ceil(crate::state_pieces::PIECE);
        assert_eq!(stored(&m, &pieces_key(&k0)), Some(8 + 16 * pieces));
        assert_eq!(piece_count(&m), pieces);
        let piece_bytes: usize = {
            let txn = m.db.begin_read().unwrap();
            let t = txn.open_table(PIECES).unwrap();
            t.iter().unwrap().map(|r| r.unwrap().1.value().len()).sum()
        };
        assert!(
            piece_bytes * 5 < big.len(),
            "{piece_bytes} of {}",
            big.len()
        );
        assert_eq!(stored(&m, &k1), Some(100));
        assert_eq!(stored(&m, &pieces_key(&k1)), None);
        drop(m);
        // Replaced by a small state: the list and its pieces go.
        replace_stage_states(&path, 0, &[(1, vec![Some(vec![1, 2, 3]), None])]).unwrap();
        let m = Manifest::open(&path, None).unwrap();
        let (_, states) = m.load().unwrap().unwrap();
        assert_eq!(states, vec![vec![Some(vec![1, 2, 3])], vec![None]]);
        assert_eq!(stored(&m, &pieces_key(&k0)), None);
        assert_eq!(piece_count(&m), 0);
        // A damaged compressed piece is an error, not garbage.
        assert!(unpack_state(&[1, 2]).is_err());
        assert!(unpack_state(&[200, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]).is_err());
    }

    /// A state that grows at its end shares its whole pieces with the segment end before:
    /// only the changed tail is stored again. Pieces no segment end names any more (the
    /// history thinned past its limit) are deleted, and every kept segment end still loads.
    #[test]
    fn states_that_grow_at_the_end_share_their_pieces_and_unnamed_pieces_go() {
        let (_dir, _, m) = new_manifest();
        let piece = crate::state_pieces::PIECE;
        let mut grown = Vec::new();
        for seg in 1..=(MAX_HISTORY as u32 + 6) {
            let state = days(10_000 + 500 * seg as usize);
            let before = piece_count(&m);
            m.commit(&one_stage(1, seg), &[vec![Some(state.clone())]])
                .unwrap();
            let (_, states) = m.load().unwrap().unwrap();
            assert_eq!(states, vec![vec![Some(state.clone())]]);
            if seg > 1 {
                // The unchanged whole pieces are not stored again.
                grown.push(piece_count(&m).saturating_sub(before));
            }
        }
        assert!(grown.iter().all(|&n| n <= 2), "{grown:?}");
        // Every piece stored is named by a kept segment end, and every kept one loads.
        let txn = m.db.begin_read().unwrap();
        let h = txn.open_table(HISTORY).unwrap();
        let hs = txn.open_table(HISTORY_STATES).unwrap();
        let pieces = txn.open_table(PIECES).unwrap();
        let ends = keys(h.iter().unwrap()).unwrap();
        assert!(ends.len() <= MAX_HISTORY + 1, "{}", ends.len());
        let mut named = std::collections::HashSet::new();
        for end in &ends {
            let list = hs
                .get(pieces_key(&format!("{end}/{}", state_key(0, 0))).as_str())
                .unwrap()
                .unwrap();
            let list = list.value().to_vec();
            let seg: usize = end.parse().unwrap();
            assert_eq!(assemble(&pieces, &list).unwrap(), days(10_000 + 500 * seg));
            named.extend(list[8..].chunks(16).map(<[u8]>::to_vec));
        }
        let all: Vec<Vec<u8>> = pieces
            .iter()
            .unwrap()
            .map(|r| r.unwrap().0.value().to_vec())
            .collect();
        assert!(all.iter().all(|k| named.contains(k)));
        assert_eq!(all.len(), named.len());
        assert!(all.len() < ends.len() * days(10_000).len() / piece);
    }

    /// A piece whose bytes were damaged on disk is refused, naming the manifest, not
    /// assembled into a state; so is a list that names a missing piece.
    #[test]
    fn a_damaged_or_missing_piece_is_an_error() {
        let (_dir, _, m) = new_manifest();
        let big = days(10_000);
        m.commit(&one_stage(1, 1), &[vec![Some(big.clone())]])
            .unwrap();
        // Overwrite one piece with other bytes (stored as they are).
        let id = {
            let txn = m.db.begin_read().unwrap();
            let t = txn.open_table(PIECES).unwrap();
            t.iter()
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .0
                .value()
                .to_vec()
        };
        let txn = m.db.begin_write().unwrap();
        {
            let mut t = txn.open_table(PIECES).unwrap();
            let mut other = vec![0u8];
            other.extend(std::iter::repeat_n(b'x', 100));
            t.insert(id.as_slice(), other.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        let e = m.load().unwrap_err().to_string();
        assert!(e.contains("does not match its hash"), "{e}");
        assert!(e.contains("run.redb"), "{e}");
        let txn = m.db.begin_write().unwrap();
        {
            let mut t = txn.open_table(PIECES).unwrap();
            t.remove(id.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        let e = m.load().unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }

    /// What [`preload`] read is used only while the file is as it was: a manifest committed
    /// to after the read ahead loads its new state; an unchanged one loads the same state
    /// whether read ahead or not.
    #[test]
    fn a_preloaded_manifest_is_used_only_while_unchanged() {
        let (dir, path, m) = new_manifest();
        m.commit(&one_stage(1, 1), &[vec![Some(days(3_000))]])
            .unwrap();
        drop(m);
        preload(&path);
        assert_eq!(resumed_workers(&path).unwrap(), Some(1));
        let m = Manifest::open(&path, None).unwrap();
        assert!(m.preloaded.lock().unwrap().is_some());
        let (c, states) = m.load().unwrap().unwrap();
        assert_eq!((c.next_segment, states), (1, vec![vec![Some(days(3_000))]]));
        drop(m);
        let fresh = || {
            Manifest::open(&path, None)
                .unwrap()
                .load()
                .unwrap()
                .unwrap()
        };
        assert_eq!(fresh().1, vec![vec![Some(days(3_000))]]);
        // Read ahead, then committed to by another handle at once (the same length, and
        // likely the same modification time): the change is what loads.
        preload(&path);
        drop(settled());
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            let text = serde_json::to_string(&one_stage(1, 7)).unwrap();
            meta.insert("committed", text.as_str()).unwrap();
        }
        txn.commit().unwrap();
        drop(db);
        let (c, states) = fresh();
        assert_eq!((c.next_segment, states), (7, vec![vec![Some(days(3_000))]]));
        // Replaced by another file of the same name.
        preload(&path);
        let other = dir.path().join("other.redb");
        let m = Manifest::create(&other, None).unwrap();
        m.commit(&one_stage(1, 5), &[vec![None]]).unwrap();
        drop(m);
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(fresh().0.next_segment, 5);
    }

    /// Manifests written before pieces kept large states whole and compressed (`#z`):
    /// they still load, and a new commit over them stores pieces.
    #[test]
    fn a_state_stored_whole_and_compressed_still_loads() {
        let (_dir, _, m) = new_manifest();
        let big = days(5_000);
        m.commit(&one_stage(1, 1), &[vec![None]]).unwrap();
        let key = format!("{}/{}", history_key(1), state_key(0, 0));
        let txn = m.db.begin_write().unwrap();
        {
            let mut hs = txn.open_table(HISTORY_STATES).unwrap();
            let packed = crate::state_pieces::pack(&big).unwrap();
            hs.insert(packed_key(&key).as_str(), packed.as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
        let (_, states) = m.load().unwrap().unwrap();
        assert_eq!(states, vec![vec![Some(big.clone())]]);
        // Written again at the same segment end: the old form goes.
        m.commit(&one_stage(1, 1), &[vec![Some(big.clone())]])
            .unwrap();
        assert_eq!(stored(&m, &packed_key(&key)), None);
        assert!(stored(&m, &pieces_key(&key)).is_some());
        assert_eq!(m.load().unwrap().unwrap().1, vec![vec![Some(big)]]);
    }

    #[test]
    fn recommitting_the_base_keeps_its_stored_states_and_writes_others() {
        let (_dir, _, m) = new_manifest();
        let at = |next_segment: u32, flushed: bool| Committed {
            version: VERSION,
            workers: 1,
            next_segment,
            flushed,
            stages: vec![("s".into(), StageMetrics::default())],
            ..Default::default()
        };
        let stored_at = |m: &Manifest, seg: u32| -> Option<Vec<u8>> {
            let txn = m.db.begin_read().unwrap();
            let t = txn.open_table(HISTORY_STATES).unwrap();
            let key = format!("{}/{}", history_key(seg), state_key(0, 0));
            t.get(key.as_str()).unwrap().map(|v| v.value().to_vec())
        };
        // Segment 0 ends with state [1]; the flush (segment 1) keeps no states.
        let base = at(1, false);
        m.commit(&base, &[vec![Some(vec![1])]]).unwrap();
        m.save_base(&base).unwrap();
        m.commit(&at(2, true), &[]).unwrap();
        let (_, states) = m.load().unwrap().unwrap();
        // The base's segment end is the newest: only the committed state is written, and
        // the states given are not (they are the stored ones; these differ, to tell).
        m.recommit(&base, &[vec![Some(vec![9])]]).unwrap();
        let (c, again) = m.load().unwrap().unwrap();
        assert_eq!((c.next_segment, c.flushed), (1, false));
        assert_eq!(again, states);
        assert_eq!(stored_at(&m, 1), Some(vec![1]));
        // A base whose segment end is not the newest gets its states written.
        m.recommit(&at(5, false), &[vec![Some(vec![4])]]).unwrap();
        assert_eq!(stored_at(&m, 5), Some(vec![4]));
        assert_eq!(m.load().unwrap().unwrap().0.next_segment, 5);
    }

    #[test]
    fn commit_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.redb");
        let m = Manifest::create(&path, Some(dir.path().to_path_buf())).unwrap();
        assert!(m.load().unwrap().is_none());
        let c = Committed {
            workers: 2,
            next_segment: 3,
            completed: vec!["a.csv".into()],
            stages: vec![("s".into(), StageMetrics::default())],
            outputs: vec![dir.path().join("data/part-0.parquet")],
            ..Default::default()
        };
        m.commit(&c, &[vec![Some(vec![1, 2])], vec![None]]).unwrap();
        drop(m);
        // Moved: the output paths follow the folder.
        let moved = tempfile::tempdir().unwrap();
        let new_path = moved.path().join("run.redb");
        std::fs::rename(&path, &new_path).unwrap();
        let (got, states) = Manifest::open(&new_path, Some(moved.path().to_path_buf()))
            .unwrap()
            .load()
            .unwrap()
            .unwrap();
        assert_eq!(got.outputs, vec![moved.path().join("data/part-0.parquet")]);
        assert_eq!(got.next_segment, 3);
        assert_eq!(states, vec![vec![Some(vec![1, 2])], vec![None]]);
    }

    #[test]
    fn a_rewind_restores_the_latest_kept_segment_end_and_history_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.redb");
        let m = Manifest::create(&path, Some(dir.path().to_path_buf())).unwrap();
        let mut c = Committed {
            workers: 2,
            stages: vec![("s".into(), StageMetrics::default())],
            ..Default::default()
        };
        // 100 segments of one input each; worker 1 holds state only on even segments.
        for seg in 0..100u32 {
            c.completed.push(format!("in{seg:03}"));
            c.next_segment = seg + 1;
            let odd = seg % 2 == 1;
            let st = vec![
                vec![Some(seg.to_le_bytes().to_vec())],
                vec![(!odd).then(|| vec![7])],
            ];
            m.commit(&c, &st).unwrap();
        }
        // The flush segment: no states of its own.
        let base = c.clone();
        m.save_base(&base).unwrap();
        c.next_segment = 101;
        c.flushed = true;
        m.commit(&c, &[]).unwrap();
        let history = {
            let txn = m.db.begin_read().unwrap();
            let h = txn.open_table(HISTORY).unwrap();
            h.iter().unwrap().count()
        };
        assert!(history <= MAX_HISTORY + 1, "{history} kept");
        drop(m);

        // Inputs from in040 on changed: the latest kept end at or before 40 inputs.
        let kept: Vec<String> = (0..40).map(|i| format!("in{i:03}")).collect();
        let p = rewind(&path, dir.path(), &kept).unwrap().unwrap();
        assert!(p.inputs <= 40 && p.inputs >= 30, "{p:?}");
        assert_eq!(p.next_segment as usize, p.inputs);
        let m = Manifest::open(&path, Some(dir.path().to_path_buf())).unwrap();
        let (got, states) = m.load().unwrap().unwrap();
        assert_eq!(got.completed.len(), p.inputs);
        assert!(!got.flushed);
        let seg = p.next_segment - 1;
        assert_eq!(states[0][0], Some(seg.to_le_bytes().to_vec()));
        assert_eq!(states[1][0], seg.is_multiple_of(2).then(|| vec![7]));
        assert!(m.load_base().unwrap().is_none());
        drop(m);
        // Later ends are gone; nothing before the first input is kept.
        let again = rewind(&path, dir.path(), &kept[..p.inputs])
            .unwrap()
            .unwrap();
        assert_eq!(again, p);
        assert!(rewind(&path, dir.path(), &[]).unwrap().is_none());
    }

    #[test]
    fn only_owned_unlisted_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join("part-1.parquet");
        std::fs::write(&keep, "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.txt.tmp"), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join("part-2.parquet"), "x").unwrap();
        // Without a claim, only temporary files go.
        let n = remove_uncommitted(dir.path(), std::slice::from_ref(&keep), 2, None).unwrap();
        assert_eq!(n, 1);
        assert!(keep.exists() && dir.path().join("part-2.parquet").exists());
        // With one, what it claims and the manifest does not list.
        let parts = |p: &Path, _next: u32| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
        };
        let n =
            remove_uncommitted(dir.path(), std::slice::from_ref(&keep), 2, Some(&parts)).unwrap();
        assert_eq!(n, 1);
        assert!(keep.exists() && dir.path().join("notes.txt").exists());
        assert!(!dir.path().join("part-2.parquet").exists());
    }
}
