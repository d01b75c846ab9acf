//! The engine's public inputs and outputs: [`SourceSpec`], the factory types, progress
//! snapshots and the [`RunReport`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pipeline_core::{Ledger, RejectSink, Result, Sink, SinkSummary, Source, StageMetrics};

/// Opens a source; called again for every retry, so it must yield the same rows each time.
pub type SourceOpener = Arc<dyn Fn() -> Result<Box<dyn Source>> + Send + Sync>;

/// Builds the sink a worker writes one segment to: `(worker, segment)`.
pub type SinkFactory = Arc<dyn Fn(usize, u32) -> Result<Box<dyn Sink>> + Send + Sync>;

/// Builds the quarantine sink of one segment; its file is published when the segment is
/// committed, so the quarantine is committed with the data.
pub type RejectSinkFactory = Arc<dyn Fn(u32) -> Result<Box<dyn RejectSink>> + Send + Sync>;

/// Tells whether a file under the output directory is uncommitted work of this run that a
/// resume may delete: `(path, first uncommitted segment)`. Files it does not claim are never
/// touched.
pub type OwnedFn = Arc<dyn Fn(&Path, u32) -> bool + Send + Sync>;

/// A point in a run's commit protocol, for observers and for crash tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// The first rejected rows of segment `seg` were written to its (temporary) quarantine.
    QuarantineWrite {
        /// The segment.
        seg: u32,
    },
    /// Segment `seg`'s data and quarantine files are in place; its manifest commit is next.
    BeforeCommit {
        /// The segment.
        seg: u32,
    },
    /// Segment `seg` is committed to the manifest.
    Committed {
        /// The segment.
        seg: u32,
    },
}

/// Receives [`EngineEvent`]s (on the thread where they happen).
pub type EventFn = Arc<dyn Fn(&EngineEvent) + Send + Sync>;

/// Receives progress snapshots (at most every ~200 ms).
pub type ProgressFn = Arc<dyn Fn(&ProgressSnapshot) + Send + Sync>;

/// Called after each segment is committed to the manifest, with its number.
pub type CommitFn = Arc<dyn Fn(u32) + Send + Sync>;

/// One input of a run, opened lazily.
///
/// A source that fails for good gets one quarantine record (reason `failed_file`, the lines
/// read and the error). Its source id is the one its chunks carry; if it failed before
/// yielding any, its position in [`crate::Runner::sources`] — so number sources in list
/// order (as the CLI's source table does).
#[derive(Clone)]
pub struct SourceSpec {
    /// Stable name (the path): the manifest, sharding and the report refer to it.
    pub name: String,
    /// Input size in bytes (for load balancing, segments and progress).
    pub size_bytes: u64,
    /// Opens (or reopens) the source.
    pub open: SourceOpener,
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSpec")
            .field("name", &self.name)
            .field("size_bytes", &self.size_bytes)
            .finish_non_exhaustive()
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressSnapshot {
    /// Rows read so far (including quarantined rows).
    pub rows: u64,
    /// Input bytes consumed so far.
    pub bytes_read: u64,
    /// Input bytes of this run's sources (resumed runs: the remaining ones).
    pub bytes_total: u64,
    /// Rows per second since the start.
    pub rows_per_second: f64,
    /// Sources finished (done or failed).
    pub files_done: usize,
    /// Sources in this run.
    pub files_total: usize,
    /// Time since the start.
    pub elapsed: Duration,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Where every row went (balanced; for resumed runs, includes the committed segments).
    pub ledger: Ledger,
    /// Per-stage metrics merged over workers, in pipeline order.
    pub stages: Vec<(String, StageMetrics)>,
    /// Output files written (renamed into place), in segment then worker order.
    pub outputs: Vec<PathBuf>,
    /// What the quarantine sink wrote.
    pub rejects: SinkSummary,
    /// Sources completed, in order.
    pub files_ok: Vec<String>,
    /// Sources that failed after all retries, with their last error.
    pub files_failed: Vec<(String, String)>,
    /// Input bytes consumed.
    pub bytes_read: u64,
    /// Wall-clock time.
    pub wall: Duration,
    /// Peak resident memory of the process (`VmHWM` on Linux, 0 elsewhere).
    pub peak_rss_bytes: u64,
}
