//! The run manifest (redb): what a resumed run needs after a `kill -9` — committed segments,
//! completed and failed sources, output files, the ledger so far, and each worker's stage
//! state at the last segment end.

use std::path::{Path, PathBuf};

use pipeline_core::{Error, Ledger, Result, SourcePosition, StageMetrics};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

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
}

/// The worker count of the interrupted run whose manifest is at `path`; `None` when there is
/// no manifest or nothing was committed yet. A resume must use the same count (stage state
/// is kept per worker), so a caller whose count was not set explicitly takes this one.
pub fn resumed_workers(path: &Path) -> Result<Option<usize>> {
    if !path.exists() {
        return Ok(None);
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
            for (w, s) in per_worker.iter().enumerate() {
                let key = format!("{seg}/{}", state_key(w, stage));
                hs.remove(key.as_str()).map_err(|e| db_err(p, e))?;
                hs.remove(packed_key(&key).as_str())
                    .map_err(|e| db_err(p, e))?;
                if let Some(bytes) = s {
                    insert_state(&mut hs, &key, bytes).map_err(|e| db_err(p, e))?;
                }
            }
        }
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
        let db = Database::open(path).map_err(|e| db_err(path, e))?;
        Ok(Manifest {
            db,
            path: path.to_path_buf(),
            root,
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
        let p = &self.path;
        let txn = self.db.begin_read().map_err(|e| db_err(p, e))?;
        let Some(c) = self.committed_in(&txn)? else {
            return Ok(None);
        };
        // The newest segment end's states; a manifest from before segment history keeps
        // them in STATES.
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
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Some((c, states))),
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
                }
            }
        }
        Ok(Some((c, states)))
    }

    /// Keeps `base`, the committed state before the end-of-input flush segment, so a later
    /// run can continue from it with more inputs.
    pub fn save_base(&self, base: &Committed) -> Result<()> {
        let p = &self.path;
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
        let txn = self.db.begin_read().map_err(|e| db_err(p, e))?;
        let Some(mut c) = meta_json::<Committed>(p, &txn, "base")? else {
            return Ok(None);
        };
        self.absolute(&mut c);
        Ok(Some(c))
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
                remove_prefixed(&mut hs, &seg).map_err(|e| db_err(p, e))?;
                h.insert(seg.as_str(), text.as_str())
                    .map_err(|e| db_err(p, e))?;
                for (key, stored) in packed_states(&seg, states) {
                    hs.insert(key.as_str(), &*stored)
                        .map_err(|e| db_err(p, e))?;
                }
                let ends = keys(h.iter().map_err(|e| db_err(p, e))?).map_err(|e| db_err(p, e))?;
                if ends.len() > MAX_HISTORY {
                    let newest = ends.len() - 1;
                    for (i, k) in ends.iter().enumerate() {
                        if i % 2 == 1 && i != newest {
                            h.remove(k.as_str()).map_err(|e| db_err(p, e))?;
                            remove_prefixed(&mut hs, k).map_err(|e| db_err(p, e))?;
                        }
                    }
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

/// Removes the history states of segment end `key`.
fn remove_prefixed(
    hs: &mut redb::Table<&str, &[u8]>,
    key: &str,
) -> std::result::Result<(), redb::StorageError> {
    // `0` sorts right after `/`: the range is exactly the keys under `key/`.
    let (from, to) = (format!("{key}/"), format!("{key}0"));
    for k in keys(hs.range(from.as_str()..to.as_str())?)? {
        hs.remove(k.as_str())?;
    }
    Ok(())
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

/// States of at least this many bytes are kept zstd-compressed (level 1), under
/// [`packed_key`]: the validation stage's state holds every closed symbol-day as JSON and
/// grows with the dataset, and the manifest keeps it at up to 48 segment ends (on the demo
/// layout, 1.3 MB of state per segment end, and each append of one day grew the manifest
/// by about 2 MB).
const PACK_AT: usize = 64 << 10;

/// Where a compressed state is kept: its key with `#z` (a key names the format, so any
/// stage's bytes are stored as they are when not compressed).
fn packed_key(key: &str) -> String {
    format!("{key}#z")
}

/// Inserts `bytes` as the state under `key`: compressed under [`packed_key`] when that
/// saves space, as they are otherwise.
fn insert_state(
    hs: &mut redb::Table<&str, &[u8]>,
    key: &str,
    bytes: &[u8],
) -> std::result::Result<(), redb::StorageError> {
    if bytes.len() >= PACK_AT
        && let Some(v) = pack(bytes)
    {
        hs.insert(packed_key(key).as_str(), v.as_slice())?;
    } else {
        hs.insert(key, bytes)?;
    }
    Ok(())
}

/// The stage states of one segment end as stored: key and bytes, as [`insert_state`] would
/// store them, the large ones compressed at once on threads of their own (each worker's
/// validation state holds its closed symbol-days: compressing them one after another was
/// an append's largest fixed cost after the report).
fn packed_states<'a>(
    seg: &str,
    states: &'a [Vec<Option<Vec<u8>>>],
) -> Vec<(String, std::borrow::Cow<'a, [u8]>)> {
    let all: Vec<(String, &'a [u8])> = states
        .iter()
        .enumerate()
        .flat_map(|(w, row)| {
            row.iter().enumerate().filter_map(move |(k, s)| {
                s.as_deref()
                    .map(|bytes| (format!("{seg}/{}", state_key(w, k)), bytes))
            })
        })
        .collect();
    std::thread::scope(|scope| {
        let packing: Vec<_> = all
            .into_iter()
            .map(|(key, bytes)| {
                let job = (bytes.len() >= PACK_AT).then(|| scope.spawn(move || pack(bytes)));
                (key, bytes, job)
            })
            .collect();
        packing
            .into_iter()
            .map(|(key, bytes, job)| match job.map(|j| j.join()) {
                Some(Ok(Some(v))) => (packed_key(&key), std::borrow::Cow::Owned(v)),
                // Not smaller compressed (or the compressing thread failed): as it is.
                _ => (key, std::borrow::Cow::Borrowed(bytes)),
            })
            .collect()
    })
}

/// `bytes` as a packed state (length, then zstd level 1) when that is smaller.
fn pack(bytes: &[u8]) -> Option<Vec<u8>> {
    let z = zstd::bulk::compress(bytes, 1).ok()?;
    (z.len() + 8 < bytes.len()).then(|| {
        let mut v = Vec::with_capacity(8 + z.len());
        v.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        v.extend_from_slice(&z);
        v
    })
}

/// A state stored by [`insert_state`] under [`packed_key`]: its length, then zstd.
fn unpack_state(v: &[u8]) -> std::result::Result<Vec<u8>, redb::StorageError> {
    let bad = |m: String| redb::StorageError::Io(std::io::Error::other(m));
    let (len, z) = v
        .split_first_chunk::<8>()
        .ok_or_else(|| bad("a compressed stage state is truncated".into()))?;
    let len = usize::try_from(u64::from_le_bytes(*len))
        .map_err(|_| bad("a compressed stage state is too large".into()))?;
    let out = zstd::bulk::decompress(z, len)
        .map_err(|e| bad(format!("a compressed stage state does not decompress: {e}")))?;
    if out.len() != len {
        return Err(bad(format!(
            "a compressed stage state decompressed to {} bytes, not {len}",
            out.len()
        )));
    }
    Ok(out)
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.redb");
        let m = Manifest::create(&path, None).unwrap();
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

    #[test]
    fn large_states_are_kept_compressed_and_load_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.redb");
        let m = Manifest::create(&path, None).unwrap();
        let c = Committed {
            version: VERSION,
            workers: 2,
            next_segment: 1,
            stages: vec![("s".into(), StageMetrics::default())],
            ..Default::default()
        };
        // Closed symbol-days as JSON lines: large and repetitive.
        let big: Vec<u8> = (0..4000)
            .flat_map(|i| {
                format!("{{\"symbol\":\"AAPL\",\"date\":\"d{i}\",\"rows\":{i}}}\n").into_bytes()
            })
            .collect();
        assert!(big.len() >= PACK_AT);
        let small = vec![7u8; 100];
        m.commit(&c, &[vec![Some(big.clone())], vec![Some(small.clone())]])
            .unwrap();
        let (_, states) = m.load().unwrap().unwrap();
        assert_eq!(
            states,
            vec![vec![Some(big.clone())], vec![Some(small.clone())]]
        );
        let stored = |key: &str| -> Option<usize> {
            let txn = m.db.begin_read().unwrap();
            let t = txn.open_table(HISTORY_STATES).unwrap();
            t.get(key).unwrap().map(|v| v.value().len())
        };
        let seg = history_key(1);
        let (k0, k1) = (
            format!("{seg}/{}", state_key(0, 0)),
            format!("{seg}/{}", state_key(1, 0)),
        );
        assert_eq!(stored(&k0), None);
        assert!(stored(&packed_key(&k0)).unwrap() * 5 < big.len());
        assert_eq!(stored(&k1), Some(100));
        assert_eq!(stored(&packed_key(&k1)), None);
        drop(m);
        // Replaced by a small state: the compressed one goes.
        replace_stage_states(&path, 0, &[(1, vec![Some(vec![1, 2, 3]), None])]).unwrap();
        let m = Manifest::open(&path, None).unwrap();
        let (_, states) = m.load().unwrap().unwrap();
        assert_eq!(states, vec![vec![Some(vec![1, 2, 3])], vec![None]]);
        // A damaged compressed state is an error, not garbage.
        assert!(unpack_state(&[1, 2]).is_err());
        assert!(unpack_state(&[200, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]).is_err());
    }

    #[test]
    fn recommitting_the_base_keeps_its_stored_states_and_writes_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.redb");
        let m = Manifest::create(&path, None).unwrap();
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
