//! [`Runner`]: the builder for a parallel run, and the coordinator that drives readers,
//! workers, segment commits and the manifest.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded, select, unbounded};
use pipeline_core::{
    Error, LiveMetrics, RejectSink, Result, RunShape, SinkSummary, StageFactory, StageMetrics,
    StageOrder,
};

use crate::manifest::{Committed, Manifest, remove_uncommitted};
use crate::memory::{DEFAULT_CHUNK_BYTES, RSS_GATE, current_rss, derive_capacity, peak_rss};
use crate::reader::{ReaderCtx, Shared, SourceOutcome, read_source};
use crate::reject_channel::RejectMsg;
use crate::route::{KeyAssigner, Route};
use crate::runtime::Runtime;
use crate::spec::{
    CommitFn, EngineEvent, EventFn, OwnedFn, ProgressFn, ProgressSnapshot, RejectSinkFactory,
    RunReport, SinkFactory, SourceSpec,
};
use crate::worker::{Control, SegmentReport, Worker};

/// Progress callbacks are at most this frequent.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Settings of a run; every field has a documented default.
#[derive(Debug, Clone)]
struct RunConfig {
    /// Worker threads. Default: the number of cores.
    workers: usize,
    /// Sources open at once. Default: see `default_open`.
    max_open_files: Option<usize>,
    /// Rows each key will bring, when known ahead: keys are spread over the workers by them.
    key_weights: Vec<(String, u64)>,
    /// Memory budget in bytes. Default 256 MiB (as `[pipeline] memory_limit`).
    memory_limit: u64,
    /// Chunks per (source, worker) channel; 0 derives it from the memory limit and the
    /// observed chunk size. Default 0.
    channel_capacity: usize,
    /// Retries per source after an error or panic. Default 2 (as `[pipeline] retries`).
    retries: u32,
    /// First retry delay, doubled per retry. Default 50 ms.
    retry_backoff: Duration,
    /// A segment ends at the first source boundary after this many input bytes. Default 1 GiB:
    /// at the target throughput that is a few seconds of work lost to a `kill -9`, while
    /// keeping the number of output files per symbol small.
    segment_bytes: u64,
    /// Run manifest path. Default: none (no checkpoints).
    manifest: Option<PathBuf>,
    /// Continue an interrupted run from its manifest. Default false.
    resume: bool,
    /// Output directory cleaned of unlisted files on resume. Default: none.
    output_dir: Option<PathBuf>,
    /// Root the manifest's output paths are relative to, so a moved or copied output folder
    /// can be resumed. Default: none (absolute paths as given).
    root: Option<PathBuf>,
    /// `(k, n)`: keep only shard `k` of `n`. Default `(0, 1)`.
    shard: (usize, usize),
    /// Whether the end-of-input flush gets a segment of its own, so a later run can add
    /// inputs (see [`Runner::flush_segment`]). Default false.
    flush_segment: bool,
    /// Whether a resumed finished run flushes again from the state before its flush even
    /// with no new inputs (see [`Runner::flush_again`]). Default false.
    flush_again: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            workers: pipeline_core::cores(),
            max_open_files: None,
            key_weights: Vec::new(),
            memory_limit: 256 << 20,
            channel_capacity: 0,
            retries: 2,
            retry_backoff: Duration::from_millis(50),
            segment_bytes: 1 << 30,
            manifest: None,
            resume: false,
            output_dir: None,
            root: None,
            shard: (0, 1),
            flush_segment: false,
            flush_again: false,
        }
    }
}

/// Builds a parallel run: sources, stages, sinks and settings; [`Runner::build`] validates.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use arrow_array::{RecordBatch, StringArray};
/// use arrow_schema::{DataType, Field, Schema};
/// use pipeline_core::{Chunk, MemorySink, Sink, Source, VecSource};
/// use pipeline_parallel::{Runner, SourceSpec};
///
/// let schema = Arc::new(Schema::new(vec![Field::new("symbol", DataType::Utf8, true)]));
/// let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["A", "B"]))])?;
/// let chunk = Chunk::with_first_line(batch, 0, 0, 2)?;
/// let spec = SourceSpec {
///     name: "day1.csv".into(),
///     size_bytes: 100,
///     open: Arc::new(move || Ok(Box::new(VecSource::new(chunk.schema(), vec![chunk.clone()])) as Box<dyn Source>)),
/// };
/// let report = Runner::new()
///     .sources(vec![spec])
///     .workers(2)
///     .sink_factory(Arc::new(|_w, _seg| Ok(Box::new(MemorySink::default()) as Box<dyn Sink>)))
///     .build()?
///     .run()?;
/// assert_eq!(report.ledger.written, 2);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Default)]
pub struct Runner {
    config: RunConfig,
    sources: Vec<SourceSpec>,
    stages: Vec<StageFactory>,
    sink_factory: Option<SinkFactory>,
    reject_sink: Option<Box<dyn RejectSink>>,
    reject_factory: Option<RejectSinkFactory>,
    owned: Option<OwnedFn>,
    events: Option<EventFn>,
    progress: Option<ProgressFn>,
    on_commit: Option<CommitFn>,
    cancel: Option<Arc<AtomicBool>>,
    runtime: Option<Runtime>,
    observer: Option<Arc<LiveMetrics>>,
}

impl Runner {
    /// A runner with default settings.
    pub fn new() -> Self {
        Runner::default()
    }

    /// The inputs, in processing order (per-day files in date order).
    pub fn sources(mut self, sources: Vec<SourceSpec>) -> Self {
        self.sources = sources;
        self
    }

    /// The stages, in order.
    pub fn stages(mut self, stages: Vec<StageFactory>) -> Self {
        self.stages = stages;
        self
    }

    /// Builds each worker's sink for each segment.
    pub fn sink_factory(mut self, f: SinkFactory) -> Self {
        self.sink_factory = Some(f);
        self
    }

    /// Receives every rejected row (one writer thread), finished when the run ends. See
    /// [`Runner::reject_sink_factory`] for a quarantine committed segment by segment.
    pub fn reject_sink(mut self, s: Box<dyn RejectSink>) -> Self {
        self.reject_sink = Some(s);
        self
    }

    /// Builds one quarantine sink per segment; each is published right before its segment
    /// is committed to the manifest (and listed there), and the sinks of segments that are
    /// never committed (Ctrl-C, a failure) are aborted. So after any crash and resume the
    /// quarantine holds every rejected row of the committed work once. Takes precedence
    /// over [`Runner::reject_sink`].
    pub fn reject_sink_factory(mut self, f: RejectSinkFactory) -> Self {
        self.reject_factory = Some(f);
        self
    }

    /// Which files under the root (or output directory) a resume may delete as this run's
    /// uncommitted work. Without it, a resume deletes only unlisted `*.tmp` files.
    pub fn owned_outputs(mut self, f: OwnedFn) -> Self {
        self.owned = Some(f);
        self
    }

    /// Receives the commit protocol's [`EngineEvent`]s.
    pub fn on_event(mut self, f: EventFn) -> Self {
        self.events = Some(f);
        self
    }

    /// The output folder the manifest's paths are relative to (so the folder can be moved
    /// or copied and still resumed); quarantine files live here too.
    pub fn root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.root = Some(dir.into());
        self
    }

    /// Worker threads (default: cores).
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n;
        self
    }

    /// Sources open at once (default `max(4, 2 × workers)`).
    pub fn max_open_files(mut self, n: usize) -> Self {
        self.config.max_open_files = Some(n);
        self
    }

    /// The rows each key (a value of the routing key column) will bring, when the caller
    /// knows them ahead (a cluster reduce task does, from the map outputs): keys are then
    /// spread over the workers heaviest first to the least loaded by these counts, instead
    /// of by their rows in the first chunk. A resumed run keeps the assignment it recorded.
    pub fn key_weights(mut self, weights: Vec<(String, u64)>) -> Self {
        self.config.key_weights = weights;
        self
    }

    /// Memory budget in bytes (default 256 MiB).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.config.memory_limit = bytes;
        self
    }

    /// Chunks per channel; 0 derives it from the memory limit (default 0).
    pub fn channel_capacity(mut self, n: usize) -> Self {
        self.config.channel_capacity = n;
        self
    }

    /// Retries per failing source (default 2).
    pub fn retries(mut self, n: u32) -> Self {
        self.config.retries = n;
        self
    }

    /// First retry delay, doubled per retry (default 50 ms).
    pub fn retry_backoff(mut self, d: Duration) -> Self {
        self.config.retry_backoff = d;
        self
    }

    /// Input bytes per segment (checkpoint interval; default 1 GiB).
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.config.segment_bytes = bytes;
        self
    }

    /// Ctrl-C flag: stop cleanly, keep committed segments, abort partial outputs.
    pub fn cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Progress callback (at most every ~200 ms).
    pub fn progress(mut self, f: ProgressFn) -> Self {
        self.progress = Some(f);
        self
    }

    /// The runtime whose threads the run uses (default: a new one with one pool thread per
    /// worker).
    pub fn runtime(mut self, rt: Runtime) -> Self {
        self.runtime = Some(rt);
        self
    }

    /// Live metrics for a monitor: the run fills `metrics` (per stage, worker and reader
    /// slot; a few relaxed atomic adds per chunk) while the monitor reads it. Default: none.
    pub fn observer(mut self, metrics: Arc<LiveMetrics>) -> Self {
        self.observer = Some(metrics);
        self
    }

    /// Called after each segment commit with the segment number.
    pub fn on_commit(mut self, f: CommitFn) -> Self {
        self.on_commit = Some(f);
        self
    }

    /// Writes a run manifest (redb) at `path`.
    pub fn manifest(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.manifest = Some(path.into());
        self
    }

    /// Continues the run recorded in the manifest.
    pub fn resume(mut self, yes: bool) -> Self {
        self.config.resume = yes;
        self
    }

    /// The output directory: on resume, files in it (or under [`Runner::root`]) that the
    /// manifest does not list and that [`Runner::owned_outputs`] claims are deleted (partial
    /// segments, stray `.tmp` files), after every check of the resume has passed.
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.output_dir = Some(dir.into());
        self
    }

    /// Keeps only the sources of shard `k` of `n`. Sources are dealt out by size, largest
    /// first, each to the shard with the fewest bytes so far (ties by name), so `n` processes
    /// given the same dataset split it into `n` byte-balanced parts without talking; the split
    /// depends only on the files' sizes and their names' order, not on where the dataset is
    /// mounted.
    pub fn shard(mut self, k: usize, n: usize) -> Self {
        self.config.shard = (k, n);
        self
    }

    /// Gives the end-of-input flush (rows stages hold back until the input ends: reorder
    /// buffers, open bars) a segment of its own, committed after the last input's segment,
    /// and keeps the stage state from before the flush in the manifest. A later resume of the
    /// finished run with more inputs after the recorded ones (an incremental run) then drops
    /// only that flush segment, continues every stage from the state it had at the end of
    /// the recorded inputs, and flushes again at the new end: the output equals one run over
    /// all the inputs.
    pub fn flush_segment(mut self, yes: bool) -> Self {
        self.config.flush_segment = yes;
        self
    }

    /// With [`Runner::resume`] on a finished run written with [`Runner::flush_segment`]:
    /// drop its flush segment and flush again from the state before it, even when no input
    /// was added. For stages whose end-of-input work depends on settings that change
    /// nothing before it (a report's thresholds): the rows and the state are kept, only the
    /// flush runs again. A run that has no flush segment is left as it is.
    pub fn flush_again(mut self, yes: bool) -> Self {
        self.config.flush_again = yes;
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<Run> {
        let c = &self.config;
        if c.workers == 0 {
            return Err(Error::config("pipeline.max_workers", "must be at least 1"));
        }
        if c.max_open_files == Some(0) {
            return Err(Error::config("output.max_open_files", "must be at least 1"));
        }
        let (k, n) = c.shard;
        if n == 0 || k >= n {
            return Err(Error::Usage(format!("--shard {k}/{n}: need 0 <= K < N")));
        }
        if c.resume && c.manifest.is_none() {
            return Err(Error::Usage("--resume needs a run manifest".into()));
        }
        if c.segment_bytes == 0 {
            return Err(Error::config("segment_bytes", "must be at least 1"));
        }
        let sink_factory = self
            .sink_factory
            .clone()
            .ok_or_else(|| Error::Usage("a parallel run needs a sink factory".into()))?;
        let mut key: Option<String> = None;
        let mut names = Vec::new();
        for f in &self.stages {
            let s = f()?;
            names.push(s.name().to_string());
            if let StageOrder::PerKey { key: k } = s.order() {
                match &key {
                    None => key = Some(k),
                    Some(prev) if *prev != k => {
                        return Err(Error::Usage(format!(
                            "per-key stages disagree on the key column: `{prev}` and `{k}` (stage `{}`)",
                            s.name()
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        let mut seen = HashSet::new();
        for s in &self.sources {
            if !seen.insert(s.name.as_str()) {
                return Err(Error::Usage(format!("input `{}` is listed twice", s.name)));
            }
        }
        Ok(Run {
            r: self,
            sink_factory,
            key,
            names,
        })
    }
}

/// A validated run, ready to [`Run::run`].
pub struct Run {
    r: Runner,
    sink_factory: SinkFactory,
    /// The key column rows are routed by, when a stage needs per-key order.
    key: Option<String>,
    names: Vec<String>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("config", &self.r.config)
            .field("sources", &self.r.sources.len())
            .field("stages", &self.names)
            .finish_non_exhaustive()
    }
}

/// The sources of shard `k` of `n` (see [`Runner::shard`]), in their given order. Hashing
/// names, as this did first, left shards unbalanced by chance (one 10 GB file and ninety-nine
/// small ones) and, because names carry the mount path, could differ between machines.
fn shard_sources(sources: Vec<SourceSpec>, k: usize, n: usize) -> Vec<SourceSpec> {
    if n <= 1 {
        return sources;
    }
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by(|&a, &b| {
        sources[b]
            .size_bytes
            .cmp(&sources[a].size_bytes)
            .then_with(|| sources[a].name.cmp(&sources[b].name))
    });
    let mut load = vec![0u64; n];
    let mut keep = vec![false; sources.len()];
    for i in order {
        let shard = (0..n).min_by_key(|&s| load[s]).unwrap_or(0);
        load[shard] += sources[i].size_bytes.max(1);
        keep[i] = shard == k;
    }
    sources
        .into_iter()
        .zip(keep)
        .filter_map(|(s, kept)| kept.then_some(s))
        .collect()
}

/// Splits sources into segments: each ends at the first source boundary after
/// `segment_bytes` input bytes, and the last ends with the input.
fn plan_segments(sources: &[SourceSpec], segment_bytes: u64) -> Vec<u32> {
    let mut seg = 0u32;
    let mut acc = 0u64;
    let mut out = Vec::with_capacity(sources.len());
    for (i, s) in sources.iter().enumerate() {
        out.push(seg);
        acc += s.size_bytes;
        if acc >= segment_bytes && i + 1 < sources.len() {
            seg += 1;
            acc = 0;
        }
    }
    out
}

struct Progressor {
    f: Option<ProgressFn>,
    last: Instant,
    start: Instant,
    total: u64,
    files_total: usize,
}

impl Progressor {
    fn tick(&mut self, shared: &Shared, files_done: usize, force: bool) {
        let Some(f) = &self.f else { return };
        if !force && self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last = Instant::now();
        let rows = shared.rows.load(Ordering::Relaxed);
        let elapsed = self.start.elapsed();
        f(&ProgressSnapshot {
            rows,
            bytes_read: shared.bytes.load(Ordering::Relaxed),
            bytes_total: self.total,
            rows_per_second: rows as f64 / elapsed.as_secs_f64().max(1e-9),
            files_done,
            files_total: self.files_total,
            elapsed,
        });
    }
}

impl Run {
    /// Runs to the end (or to cancellation: [`Error::Cancelled`], with completed segments
    /// committed and partial outputs removed).
    pub fn run(self) -> Result<RunReport> {
        let start = Instant::now();
        let Run {
            r,
            sink_factory,
            key,
            names,
        } = self;
        let Runner {
            config: c,
            sources,
            stages,
            reject_sink,
            reject_factory,
            owned,
            events,
            progress,
            on_commit,
            cancel,
            runtime,
            observer,
            ..
        } = r;
        let emit = |e: EngineEvent| {
            if let Some(f) = &events {
                f(&e);
            }
        };
        let w = c.workers;
        let rt = match runtime {
            Some(rt) => rt,
            None => Runtime::new(w)?,
        };
        let (k, n) = c.shard;
        // A source's position in the caller's list is its id when it fails before yielding a
        // row (see `SourceSpec`); sharding reorders the list, so remember it by name.
        let positions: std::collections::HashMap<String, u32> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i as u32))
            .collect();
        let sources = shard_sources(sources, k, n);

        // The manifest: fresh, or loaded for a resume.
        let mut committed = Committed {
            workers: w,
            stages: names
                .iter()
                .map(|n| (n.clone(), StageMetrics::default()))
                .collect(),
            ..Default::default()
        };
        let mut states: Vec<Vec<Option<Vec<u8>>>> = vec![vec![None; names.len()]; w];
        let manifest = match &c.manifest {
            None => None,
            Some(path) if c.resume => {
                let m = Manifest::open(path, c.root.clone())?;
                if let Some((prev, st)) = m.load()? {
                    if prev.workers != w {
                        return Err(Error::Usage(format!(
                            "cannot resume with {w} workers: the interrupted run used {} (stage state is kept per worker)",
                            prev.workers
                        )));
                    }
                    if prev.stages.iter().map(|s| &s.0).ne(names.iter()) {
                        return Err(Error::Usage(
                            "cannot resume: the stages differ from the interrupted run".into(),
                        ));
                    }
                    committed = prev;
                    states = st;
                }
                Some(m)
            }
            Some(path) => Some(Manifest::create(path, c.root.clone())?),
        };
        let done_names: HashSet<String> = committed
            .completed
            .iter()
            .cloned()
            .chain(committed.failed.iter().map(|f| f.0.clone()))
            .collect();
        // A finished run given more inputs (an incremental run): go back to the state before
        // its end-of-input flush. The manifest says so first, so a crash from here on leaves
        // an interrupted run that a resume continues; then the flush segment's files are
        // removed below as uncommitted work.
        if committed.flushed
            && (c.flush_again || sources.iter().any(|s| !done_names.contains(&s.name)))
            && let Some(m) = &manifest
        {
            let Some(base) = m.load_base()? else {
                return Err(Error::Usage(
                    "cannot add inputs: the finished run's manifest keeps no state from before its end-of-input flush; start over with --overwrite".into(),
                ));
            };
            tracing::info!(
                "incremental run: continuing from the end of {} recorded inputs (segment {})",
                base.completed.len() + base.failed.len(),
                base.next_segment
            );
            m.recommit(&base, &states)?;
            committed = base;
        }
        // The inputs already committed come first; the rest are planned from the next
        // segment on (a resume or an incremental run never renumbers committed segments).
        let first = sources
            .iter()
            .position(|s| !done_names.contains(&s.name))
            .unwrap_or(sources.len());
        if let Some(s) = sources[first..]
            .iter()
            .find(|s| done_names.contains(&s.name))
        {
            return Err(Error::Usage(format!(
                "cannot resume: input `{}` was committed, but comes after inputs that were not (inputs changed?)",
                s.name
            )));
        }
        let mut segs = vec![0u32; first];
        segs.extend(
            plan_segments(&sources[first..], c.segment_bytes)
                .into_iter()
                .map(|s| s + committed.next_segment),
        );
        // With a flush segment, the flush is one more segment after the last input's.
        let flush_seg = (c.flush_segment && !sources.is_empty()).then(|| {
            match segs[first..].last() {
                Some(s) => s + 1,
                // Every input is committed: the flush is committed too, or comes next.
                None if committed.flushed => committed.next_segment.saturating_sub(1),
                None => committed.next_segment,
            }
        });
        let last_seg = flush_seg.unwrap_or_else(|| segs.last().copied().unwrap_or(0));
        tracing::info!(
            "plan: {} inputs ({} bytes) in {} segments{}; {w} workers, rows routed by {}; at most {} inputs open; memory limit {} MiB; {} retries for I/O errors; stages: {}",
            sources.len(),
            sources.iter().map(|s| s.size_bytes).sum::<u64>(),
            last_seg + 1,
            if n > 1 {
                format!(" (shard {k} of {n})")
            } else {
                String::new()
            },
            key.as_deref()
                .map_or("chunk (round robin)".to_string(), |k| format!("`{k}`")),
            c.max_open_files.unwrap_or_else(|| default_open(w)),
            c.memory_limit >> 20,
            c.retries,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(" → ")
            },
        );

        // Only now that every check has passed does a resume touch the output: it removes
        // the interrupted segment's partial files, and nothing it does not own.
        if c.resume
            && let Some(dir) = c.root.as_ref().or(c.output_dir.as_ref())
        {
            let removed = remove_uncommitted(
                dir,
                &committed.outputs,
                committed.next_segment,
                owned.as_deref(),
            )?;
            tracing::info!(removed, "resume: removed partial outputs");
        }
        let assigner = match key {
            Some(k) if committed.assignment.is_empty() && !c.key_weights.is_empty() => {
                Some((k, Arc::new(KeyAssigner::weighted(w, &c.key_weights))))
            }
            Some(k) => Some((k, Arc::new(KeyAssigner::new(w, &committed.assignment)?))),
            None => None,
        };
        let route = match &assigner {
            Some((k, a)) => Route::ByKey(k.clone(), a.clone()),
            None => Route::RoundRobin,
        };
        let resumed_complete = c.resume
            && committed.next_segment > last_seg
            && first == sources.len()
            && !sources.is_empty();

        // The quarantine writer.
        let (rej_tx, rej_rx) = crate::reject_channel::channel(c.memory_limit);
        let writer_events = events.clone();
        let reject_thread = rt.spawn("tickpipe-rejects", move || -> Result<SinkSummary> {
            write_rejects(rej_rx, reject_sink, reject_factory, writer_events)
        })?;
        // The coordinator's own handle on the writer, to publish each segment's quarantine.
        let publish_tx = rej_tx.clone();

        let cancel = cancel.unwrap_or_default();
        let abort = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let max_open = c.max_open_files.unwrap_or_else(|| default_open(w));
        // Sources up to this size (in input bytes) count as small (see `default_open`).
        let small_source = c.memory_limit / SMALL_SOURCE_SHARE;
        // The large sources open now, by index.
        let mut big = std::collections::HashSet::new();
        let live = observer.map(|m| {
            m.begin(RunShape {
                stages: names.clone(),
                workers: w,
                readers: max_open,
            })
        });

        // Workers.
        let (rep_tx, rep_rx) = unbounded::<Result<SegmentReport>>();
        let mut controls: Vec<Sender<Control>> = Vec::new();
        let mut worker_threads: Vec<JoinHandle<()>> = Vec::new();
        for (id, st) in states.into_iter().enumerate() {
            let built: Vec<_> = stages.iter().map(|f| f()).collect::<Result<_>>()?;
            let mut worker = Worker::new(
                id,
                built,
                sink_factory.clone(),
                rej_tx.clone(),
                c.retries > 0,
                (abort.clone(), cancel.clone()),
                committed.next_segment,
            );
            worker.live = live.clone();
            let (tx, rx) = unbounded();
            controls.push(tx);
            let reps = rep_tx.clone();
            let abort = abort.clone();
            // Each worker restores its stages' state on its own thread, while the readers
            // start: the validation stage's holds every closed symbol-day (on a one-day
            // append to five years of days, 2.6 ms of the main thread before any input was
            // opened). A state that does not restore fails the run as a worker error does.
            worker_threads.push(rt.spawn(&format!("tickpipe-worker-{id}"), move || {
                if let Err(e) = worker.restore(&st) {
                    abort.store(true, Ordering::Relaxed);
                    let _ = reps.send(Err(e));
                    return;
                }
                drop(st);
                worker.run(rx, reps)
            })?);
        }
        drop(rep_tx);

        let ctx = Arc::new(ReaderCtx {
            workers: w,
            route,
            seeder: first,
            retries: c.retries,
            backoff: c.retry_backoff,
            cancel: cancel.clone(),
            abort: abort.clone(),
            rejects: rej_tx.clone(),
            shared: shared.clone(),
            live: live.clone(),
        });
        drop(rej_tx);
        // Reader slots (0..max_open) for the live metrics: a source takes a free one.
        let mut free_slots: Vec<usize> = (0..max_open).rev().collect();
        let mut slot_of: HashMap<usize, usize> = HashMap::new();
        let (out_tx, out_rx) = unbounded::<SourceOutcome>();
        // Reader threads: one per input that may be open at once, each reading the inputs
        // it is handed in turn. (A thread per input cost a spawn, a 2 MiB stack mapping and
        // a join per file: on the demo layout's 1,258 small files, 1,272 `clone3` calls.)
        let (job_tx, job_rx) = unbounded::<Box<dyn FnOnce() + Send>>();
        let mut readers: Vec<JoinHandle<()>> = Vec::with_capacity(max_open);
        for i in 0..max_open {
            let jobs = job_rx.clone();
            readers.push(rt.spawn(&format!("tickpipe-reader-{i}"), move || {
                for job in jobs {
                    job();
                }
            })?);
        }
        drop(job_rx);
        let mut prog = Progressor {
            f: progress,
            last: Instant::now(),
            start,
            total: sources[first..].iter().map(|s| s.size_bytes).sum(),
            files_total: sources.len() - first,
        };
        let sources = Arc::new(sources);

        let mut next = first;
        let mut in_flight = 0usize;
        let mut outcomes: BTreeMap<usize, SourceOutcome> = BTreeMap::new();
        let mut reports: BTreeMap<u32, Vec<SegmentReport>> = BTreeMap::new();
        let mut next_commit = committed.next_segment;
        let mut fatal: Option<Error> = None;
        let all_done = |next_commit: u32| resumed_complete || next_commit > last_seg;
        if sources.is_empty() {
            for ctl in &controls {
                let _ = ctl.send(Control::SegmentEnd { seg: 0, last: true });
            }
        } else if let Some(f) = flush_seg
            && first == sources.len()
            && committed.next_segment == f
        {
            // Every input was committed before an interruption, but not the flush.
            for ctl in &controls {
                let _ = ctl.send(Control::SegmentEnd { seg: f, last: true });
            }
        }
        // Inputs with an outcome so far (committed ones leave `outcomes`).
        let mut files_done = 0usize;
        // The inputs of each segment, and how many outcomes of each have arrived: a segment
        // is looked at only once all its inputs could be done. (Scanning every input and
        // looking up each of the segment's on every event cost O(inputs^2): 8% of a run
        // over 6,291 small files.)
        let mut seg_files: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, s) in segs.iter().enumerate().skip(first) {
            seg_files.entry(*s).or_default().push(i);
        }
        let mut arrived: HashMap<u32, usize> = HashMap::new();

        while !all_done(next_commit) {
            let stopping = cancel.load(Ordering::Relaxed) || fatal.is_some();
            while !stopping && next < sources.len() && in_flight < max_open {
                // Past `max(2, workers)` open sources, only small ones, and only while every
                // open one is small: the extra sources are for runs of many small files.
                if c.max_open_files.is_none()
                    && in_flight >= w.max(2)
                    && (!big.is_empty() || sources[next].size_bytes > small_source)
                {
                    break;
                }
                if in_flight > 0 && (current_rss() as f64) > RSS_GATE * c.memory_limit as f64 {
                    tracing::debug!("memory near the limit: not opening another source yet");
                    break;
                }
                let cap = if c.channel_capacity > 0 {
                    c.channel_capacity
                } else {
                    let seen = shared.chunks.load(Ordering::Relaxed);
                    let avg = shared
                        .chunk_bytes_sum
                        .load(Ordering::Relaxed)
                        .checked_div(seen)
                        .unwrap_or(DEFAULT_CHUNK_BYTES);
                    derive_capacity(c.memory_limit, avg, max_open, w)
                };
                let (ack_tx, ack_rx) = unbounded();
                let mut part_txs = Vec::with_capacity(w);
                for ctl in &controls {
                    let (tx, rx) = bounded(cap);
                    part_txs.push(tx);
                    let _ = ctl.send(Control::Source {
                        parts: rx,
                        acks: ack_tx.clone(),
                    });
                }
                drop(ack_tx);
                if next + 1 == sources.len() || segs[next + 1] != segs[next] {
                    let at_end = next + 1 == sources.len();
                    for ctl in &controls {
                        let _ = ctl.send(Control::SegmentEnd {
                            seg: segs[next],
                            last: at_end && flush_seg.is_none(),
                        });
                        if let (true, Some(f)) = (at_end, flush_seg) {
                            let _ = ctl.send(Control::SegmentEnd { seg: f, last: true });
                        }
                    }
                }
                let (ctx, srcs, out) = (ctx.clone(), sources.clone(), out_tx.clone());
                let index = next;
                let seg = segs[index];
                let slot = free_slots.pop().unwrap_or(0);
                slot_of.insert(index, slot);
                let position = positions.get(&sources[index].name).copied().unwrap_or(0);
                // `read_source` turns a panic into the input's failure, so a job always
                // ends by sending the outcome.
                let job = move || {
                    let o = read_source(
                        &ctx,
                        (index, position),
                        seg,
                        slot,
                        &srcs[index],
                        part_txs,
                        ack_rx,
                    );
                    let _ = out.send(o);
                };
                if job_tx.send(Box::new(job)).is_err() {
                    return Err(Error::Internal("the reader threads stopped".into()));
                }
                if sources[index].size_bytes > small_source {
                    big.insert(index);
                }
                next += 1;
                in_flight += 1;
            }

            // Commit every segment that is complete, in order.
            while next_commit <= last_seg {
                let files: &[usize] = seg_files.get(&next_commit).map_or(&[], Vec::as_slice);
                let ready = arrived.get(&next_commit).copied().unwrap_or(0) >= files.len()
                    && reports.get(&next_commit).is_some_and(|r| r.len() == w)
                    && files
                        .iter()
                        .all(|i| outcomes.get(i).is_some_and(|o| !o.cancelled));
                if !ready {
                    break;
                }
                // The state before the end-of-input flush, kept for an incremental run.
                let base = (flush_seg == Some(next_commit)).then(|| committed.clone());
                let mut reps = reports.remove(&next_commit).unwrap_or_default();
                reps.sort_by_key(|r| r.worker);
                for &i in files {
                    // Committed: the outcome is in `committed` from here on.
                    if let Some(o) = outcomes.remove(&i) {
                        committed.ledger.merge(&o.ledger);
                        committed.bytes_read += o.bytes;
                        if let (None, Some(p)) = (&o.failed, o.position) {
                            committed.positions.push((sources[i].name.clone(), p));
                        }
                        match &o.failed {
                            None => committed.completed.push(sources[i].name.clone()),
                            Some(e) => committed.failed.push((sources[i].name.clone(), e.clone())),
                        }
                    }
                }
                let mut new_states = Vec::with_capacity(w);
                for rep in reps {
                    committed.ledger.merge(&rep.ledger);
                    for (slot, m) in committed.stages.iter_mut().zip(&rep.metrics) {
                        slot.1.merge(m);
                    }
                    committed.outputs.extend(rep.outputs);
                    new_states.push(rep.states);
                }
                committed.next_segment = next_commit + 1;
                committed.flushed = base.is_some();
                if let Some((_, a)) = &assigner {
                    // A superset of the keys whose state this commit holds: readers may
                    // already route the next segment.
                    committed.assignment = a.snapshot();
                }
                // The segment's quarantine goes into place with its data, then the manifest
                // names both; a crash in between leaves files a resume recognises as
                // uncommitted and removes.
                committed
                    .outputs
                    .extend(publish_rejects(&publish_tx, next_commit)?);
                emit(EngineEvent::BeforeCommit { seg: next_commit });
                if let Some(m) = &manifest {
                    if let Some(b) = &base {
                        // The stage states stay those of the last input's segment: the
                        // state before the flush.
                        m.save_base(b)?;
                        m.commit(&committed, &[])?;
                    } else {
                        m.commit(&committed, &new_states)?;
                    }
                }
                emit(EngineEvent::Committed { seg: next_commit });
                if let Some(f) = &on_commit {
                    f(next_commit);
                }
                next_commit += 1;
            }
            if all_done(next_commit) {
                break;
            }
            let stopping = cancel.load(Ordering::Relaxed) || fatal.is_some();
            if stopping && in_flight == 0 {
                break;
            }
            select! {
                recv(out_rx) -> o => {
                    if let Ok(mut o) = o {
                        in_flight -= 1;
                        big.remove(&o.index);
                        if let Some(slot) = slot_of.remove(&o.index) {
                            free_slots.push(slot);
                        }
                        if let Some(e) = o.fatal.take() {
                            abort.store(true, Ordering::Relaxed);
                            keep_cause(&mut fatal, e);
                        }
                        if let Some(s) = segs.get(o.index) {
                            *arrived.entry(*s).or_default() += 1;
                        }
                        if outcomes.insert(o.index, o).is_none() {
                            files_done += 1;
                        }
                    }
                }
                recv(rep_rx) -> r => match r {
                    Ok(Ok(rep)) => reports.entry(rep.seg).or_default().push(rep),
                    Ok(Err(e)) => {
                        abort.store(true, Ordering::Relaxed);
                        keep_cause(&mut fatal, e);
                    }
                    Err(_) => {
                        keep_cause(&mut fatal, Error::Internal("all workers stopped".into()));
                        abort.store(true, Ordering::Relaxed);
                    }
                },
                default(PROGRESS_EVERY) => {}
            }
            prog.tick(&shared, files_done, false);
        }

        // Shut down: workers finish what is queued, abort partial sinks and exit.
        drop(controls);
        drop(publish_tx);
        for h in worker_threads {
            if h.join().is_err() {
                keep_cause(
                    &mut fatal,
                    Error::Internal("a worker thread panicked".into()),
                );
            }
        }
        drop(job_tx);
        for h in readers {
            if h.join().is_err() {
                keep_cause(
                    &mut fatal,
                    Error::Internal("a reader thread panicked".into()),
                );
            }
        }
        for rep in rep_rx.try_iter() {
            if let Err(e) = rep {
                keep_cause(&mut fatal, e);
            }
        }
        drop(ctx);
        let rejects = match reject_thread.join() {
            Ok(r) => r,
            Err(_) => Err(Error::Internal("the quarantine writer panicked".into())),
        };
        prog.tick(&shared, files_done, true);
        if let Some(e) = fatal {
            return Err(e);
        }
        let rejects = rejects?;
        if !all_done(next_commit) {
            return Err(Error::Cancelled);
        }
        committed.ledger.check_balance()?;
        Ok(RunReport {
            ledger: committed.ledger,
            stages: committed.stages,
            outputs: committed.outputs,
            rejects,
            files_ok: committed.completed,
            files_failed: committed.failed,
            bytes_read: committed.bytes_read,
            wall: start.elapsed(),
            peak_rss_bytes: peak_rss(),
        })
    }
}

/// The quarantine writer's loop: rejects go to their segment's sink (from the factory) or
/// to the single sink; a segment's sink is finished when the coordinator publishes it, and
/// sinks of segments never published are aborted at the end.
fn write_rejects(
    rx: crossbeam_channel::Receiver<RejectMsg>,
    mut single: Option<Box<dyn RejectSink>>,
    factory: Option<RejectSinkFactory>,
    events: Option<EventFn>,
) -> Result<SinkSummary> {
    let mut open: BTreeMap<u32, Box<dyn RejectSink>> = BTreeMap::new();
    let mut total = SinkSummary::default();
    let mut run = || -> Result<()> {
        for msg in rx.iter() {
            match msg {
                RejectMsg::Rows(seg, rows) => match &factory {
                    Some(f) => {
                        let sink = match open.entry(seg) {
                            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                            std::collections::btree_map::Entry::Vacant(e) => e.insert(f(seg)?),
                        };
                        sink.write(&rows)?;
                        if let Some(ev) = &events {
                            ev(&EngineEvent::QuarantineWrite { seg });
                        }
                    }
                    None => {
                        if let Some(s) = single.as_mut() {
                            s.write(&rows)?;
                        }
                    }
                },
                RejectMsg::Publish(seg, ack) => {
                    let files = match open.remove(&seg) {
                        Some(mut sink) => sink.finish().map(|s| {
                            let files = s.files.clone();
                            total.merge(s);
                            files
                        }),
                        None => Ok(Vec::new()),
                    };
                    let failed = files.as_ref().err().map(|e| e.to_string());
                    let _ = ack.send(files);
                    if let Some(e) = failed {
                        return Err(Error::Internal(format!("quarantine: {e}")));
                    }
                }
            }
        }
        Ok(())
    };
    let result = run();
    // Rejects of segments that were never committed must not reach the quarantine.
    for (_, mut sink) in std::mem::take(&mut open) {
        let _ = sink.abort();
    }
    result?;
    if let Some(s) = single.as_mut() {
        total.merge(s.finish()?);
    }
    Ok(total)
}

/// Sources open at once unless set: two per worker, at least 4, of which those past
/// `max(2, workers)` only while every open source is small (at most a
/// [`SMALL_SOURCE_SHARE`]th of the memory limit in input bytes). Workers take sources in
/// order and each moves on as soon as it is done with its part of one, so the sources open
/// ahead are how far a worker may run ahead of the others. At `max(2, workers)`, on 252 day
/// files of 12K rows (2 workers), a run took 2.74 s and one reduce task of a cluster job
/// 1.35 s; at 4, 2.43 s and 1.02 s, for 2-4 MiB more peak memory. Large files gain nothing
/// from it and each open one holds its own buffers: four 5M-row CSV files open at once
/// peaked at 292-314 MiB against 252-256 MiB with two (256 MiB limit).
fn default_open(workers: usize) -> usize {
    (2 * workers).max(4)
}

/// See [`default_open`]: 2 MiB at the default 256 MiB limit.
const SMALL_SOURCE_SHARE: u64 = 128;

/// Asks the quarantine writer to publish segment `seg`'s quarantine and waits for its files.
fn publish_rejects(tx: &crossbeam_channel::Sender<RejectMsg>, seg: u32) -> Result<Vec<PathBuf>> {
    let (ack_tx, ack_rx) = bounded(1);
    let stopped = || Error::Internal("the quarantine writer stopped".into());
    tx.send(RejectMsg::Publish(seg, ack_tx))
        .map_err(|_| stopped())?;
    ack_rx.recv().map_err(|_| stopped())?
}

/// Records `e` as the run's fatal error unless one is already kept; an error that stops the
/// run for a reason (a strict-mode row error, a config or schema error, disorder) replaces a
/// kept [`Error::Cancelled`]: once such an error sets the abort flag, workers stop with
/// `Cancelled`, which may reach the coordinator first.
fn keep_cause(fatal: &mut Option<Error>, e: Error) {
    let replaces =
        matches!(fatal, Some(Error::Cancelled)) && e.stops_run() && !matches!(e, Error::Cancelled);
    if fatal.is_none() || replaces {
        *fatal = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, size: u64) -> SourceSpec {
        SourceSpec {
            name: name.into(),
            size_bytes: size,
            open: Arc::new(|| Err(Error::Internal("not opened in this test".into()))),
        }
    }

    fn names(v: &[SourceSpec]) -> Vec<&str> {
        v.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn shards_are_balanced_by_bytes_and_independent_of_the_mount_path() {
        let mut sizes = vec![("big", 10_000u64)];
        sizes.extend((0..99).map(|i| (["s"; 99][i], 100 + i as u64)));
        let make = |root: &str| -> Vec<SourceSpec> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, (n, sz))| spec(&format!("{root}/{n}{i:03}"), *sz))
                .collect()
        };
        let mut all = Vec::new();
        let mut bytes = Vec::new();
        for k in 0..3 {
            let here = shard_sources(make("/mnt/a"), k, 3);
            let there = shard_sources(make("/data/ticks"), k, 3);
            let strip = |v: &[SourceSpec], root: &str| -> Vec<String> {
                v.iter()
                    .map(|s| s.name.trim_start_matches(root).to_string())
                    .collect()
            };
            assert_eq!(strip(&here, "/mnt/a"), strip(&there, "/data/ticks"));
            bytes.push(here.iter().map(|s| s.size_bytes).sum::<u64>());
            all.extend(strip(&here, "/mnt/a"));
            if here.iter().any(|s| s.size_bytes == 10_000) {
                assert_eq!(here.len(), 1, "the big file's shard holds nothing else");
            }
        }
        all.sort();
        assert_eq!(all.len(), 100, "every source in exactly one shard");
        all.dedup();
        assert_eq!(all.len(), 100);
        // 24,851 bytes in all: the big file's shard takes it alone (more than a third); the
        // other two split the rest within one small file of each other.
        bytes.sort();
        assert_eq!(bytes[2], 10_000, "{bytes:?}");
        assert!(bytes[1] - bytes[0] <= 200, "{bytes:?}");
        assert_eq!(names(&shard_sources(make("r"), 0, 1)).len(), 100);
    }

    #[test]
    fn segments_end_at_file_boundaries_after_the_threshold() {
        let s: Vec<SourceSpec> = [5, 5, 20, 1, 1, 1]
            .iter()
            .enumerate()
            .map(|(i, n)| spec(&i.to_string(), *n))
            .collect();
        assert_eq!(plan_segments(&s, 10), vec![0, 0, 1, 2, 2, 2]);
        assert_eq!(plan_segments(&s, 1000), vec![0; 6]);
    }

    #[test]
    fn build_rejects_bad_settings() {
        let sink: SinkFactory =
            Arc::new(|_, _| Ok(Box::new(pipeline_core::MemorySink::default()) as _));
        assert!(
            Runner::new()
                .workers(0)
                .sink_factory(sink.clone())
                .build()
                .is_err()
        );
        assert!(
            Runner::new()
                .shard(2, 2)
                .sink_factory(sink.clone())
                .build()
                .is_err()
        );
        assert!(
            Runner::new()
                .resume(true)
                .sink_factory(sink.clone())
                .build()
                .is_err()
        );
        assert!(Runner::new().build().is_err());
        assert!(
            Runner::new()
                .sources(vec![spec("a", 1), spec("a", 1)])
                .sink_factory(sink)
                .build()
                .is_err()
        );
    }
}
