//! Live run metrics: counters the engine bumps per chunk and a monitor reads while the run
//! goes on, without locks and without the engine knowing who reads them.
//!
//! A [`LiveMetrics`] handle is created by whoever watches (the monitor) and handed to the
//! engine, which calls [`LiveMetrics::begin`] once it knows the run's shape (stages, workers,
//! reader slots) and then updates the returned [`LiveRun`] with relaxed atomic adds: a few
//! per chunk, never per row. Readers of the board take a [`LiveSnapshot`] at any time.
//!
//! ```
//! use std::time::Duration;
//! use pipeline_core::{LiveMetrics, RunShape, StageMetrics};
//!
//! let metrics = LiveMetrics::default();
//! let run = metrics.begin(RunShape { stages: vec!["clean".into()], workers: 2, readers: 1 });
//! let took = Duration::from_millis(3);
//! run.stages[0].record_latency(took);
//! run.stages[0].add(&StageMetrics { rows_in: 1000, rows_out: 900, chunks: 1, busy: took, ..Default::default() });
//! run.workers[1].add_wait(Duration::from_millis(5));
//! let snap = metrics.snapshot().unwrap();
//! assert_eq!(snap.stages[0].rows_in, 1000);
//! assert_eq!(snap.stages[0].latency.count, 1);
//! assert_eq!(snap.workers[1].wait_ns, 5_000_000);
//! ```

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ledger::StageMetrics;

/// Sub-buckets per power of two, as a bit count: 16 sub-buckets make each bucket at most
/// 1/16 of its lower bound wide, so a quantile read at the bucket's middle is within ~3% of
/// the true value (HdrHistogram's "1 significant digit and a bit"; chunk latencies in ms need
/// no more). Chosen over the `hdrhistogram` crate because its histograms need `&mut` to
/// record: every worker would need its own plus a lock to read them, while atomic buckets let
/// any thread record and the monitor read at any time, and core stays free of a dependency.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Largest recorded power of two: 2^40 ns is about 18 minutes; longer values are clamped.
const MAX_EXP: u32 = 40;
/// Buckets: exact values below [`SUB`], then [`SUB`] per power of two up to [`MAX_EXP`].
const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS + 1) as u64 * SUB) as usize;

fn bucket_of(v: u64) -> usize {
    let v = v.min((1u64 << (MAX_EXP + 1)) - 1);
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let sub = (v >> (e - SUB_BITS)) - SUB;
    (SUB + u64::from(e - SUB_BITS) * SUB + sub) as usize
}

/// `[low, high)` of bucket `i`.
fn bucket_bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, i + 1);
    }
    let e = (i - SUB) / SUB + u64::from(SUB_BITS);
    let sub = (i - SUB) % SUB;
    let width = 1u64 << (e - u64::from(SUB_BITS));
    let low = (SUB + sub) * width;
    (low, low + width)
}

/// A log-bucketed latency histogram (nanoseconds) that any thread can record into without a
/// lock; see [`HistogramSnapshot`] for quantiles.
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl LatencyHistogram {
    /// Records one value.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// The counts so far (a consistent-enough copy: concurrent records may land on either
    /// side of it).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets = self
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let n = b.load(Ordering::Relaxed);
                (n > 0).then_some((i as u32, n))
            })
            .collect::<Vec<_>>();
        HistogramSnapshot {
            count: buckets.iter().map(|b| b.1).sum(),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
            max_ns: self.max_ns.load(Ordering::Relaxed),
            buckets,
        }
    }
}

/// A copy of a [`LatencyHistogram`]: sparse `(bucket, count)` pairs plus count, sum and max.
///
/// ```
/// use std::time::Duration;
/// use pipeline_core::LatencyHistogram;
/// let h = LatencyHistogram::default();
/// for ms in 1..=100 {
///     h.record(Duration::from_millis(ms));
/// }
/// let s = h.snapshot();
/// let p50 = s.quantile(0.5) as f64 / 1e6;
/// assert!((p50 - 50.0).abs() < 50.0 * 0.04, "{p50}");
/// assert_eq!(s.max_ns, 100_000_000);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    /// Values recorded.
    pub count: u64,
    /// Sum of the values, in nanoseconds.
    pub sum_ns: u64,
    /// Largest value, in nanoseconds.
    pub max_ns: u64,
    /// Non-empty buckets as `(index, count)`, by index.
    pub buckets: Vec<(u32, u64)>,
}

impl HistogramSnapshot {
    /// The `q`-quantile (0..=1) in nanoseconds: the middle of the bucket holding it, capped
    /// at the maximum (the maximum itself for the last value); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        if rank >= self.count {
            return self.max_ns;
        }
        let mut seen = 0u64;
        for &(i, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let (lo, hi) = bucket_bounds(i as usize);
                let mid = lo + (hi - lo) / 2;
                return mid.min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Mean in nanoseconds (0 when empty).
    pub fn mean_ns(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.count as f64
        }
    }

    /// Adds another histogram's counts (the maximum is the larger one).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        let mut out = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push((x.0, x.1 + y.1));
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    out.push(**x);
                    a.next();
                }
                (Some(_), Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (Some(x), None) => {
                    out.push(**x);
                    a.next();
                }
                (None, Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = out;
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }
}

/// What a run looks like: the engine passes it to [`LiveMetrics::begin`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunShape {
    /// Stage names, in pipeline order.
    pub stages: Vec<String>,
    /// Worker threads.
    pub workers: usize,
    /// Reader slots: the most sources read at once.
    pub readers: usize,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Live counters of one stage, summed over workers.
#[derive(Debug)]
pub struct StageLive {
    /// The stage's name.
    pub name: String,
    rows_in: AtomicU64,
    rows_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    chunks: AtomicU64,
    busy_ns: AtomicU64,
    latency: LatencyHistogram,
}

impl StageLive {
    fn new(name: String) -> Self {
        StageLive {
            name,
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            chunks: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            latency: LatencyHistogram::default(),
        }
    }

    /// Adds counts (rows and bytes in and out, chunks, busy time) for this stage.
    pub fn add(&self, m: &StageMetrics) {
        self.rows_in.fetch_add(m.rows_in, Ordering::Relaxed);
        self.rows_out.fetch_add(m.rows_out, Ordering::Relaxed);
        self.bytes_in.fetch_add(m.bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(m.bytes_out, Ordering::Relaxed);
        self.chunks.fetch_add(m.chunks, Ordering::Relaxed);
        self.busy_ns.fetch_add(ns(m.busy), Ordering::Relaxed);
    }

    /// Records the time one chunk took in the stage (latency only; counts go through
    /// [`StageLive::add`] once the chunk's delivery succeeded).
    pub fn record_latency(&self, took: Duration) {
        self.latency.record(took);
    }

    fn snapshot(&self) -> StageSnapshot {
        StageSnapshot {
            name: self.name.clone(),
            rows_in: self.rows_in.load(Ordering::Relaxed),
            rows_out: self.rows_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            chunks: self.chunks.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

/// Live counters of one worker thread.
#[derive(Debug, Default)]
pub struct WorkerLive {
    rows_in: AtomicU64,
    chunks: AtomicU64,
    rows_written: AtomicU64,
    busy_ns: AtomicU64,
    write_ns: AtomicU64,
    wait_ns: AtomicU64,
    queued: AtomicI64,
    backpressure_ns: AtomicU64,
    latency: LatencyHistogram,
}

impl WorkerLive {
    /// One delivery processed: its rows, the time in stages, and its end-to-end latency
    /// (stages plus writing).
    pub fn record_delivery(&self, rows: u64, stages: Duration, total: Duration) {
        self.rows_in.fetch_add(rows, Ordering::Relaxed);
        self.chunks.fetch_add(1, Ordering::Relaxed);
        self.busy_ns.fetch_add(ns(stages), Ordering::Relaxed);
        self.latency.record(total);
    }

    /// Time in stages outside a delivery (the end-of-input flush).
    pub fn add_busy(&self, d: Duration) {
        self.busy_ns.fetch_add(ns(d), Ordering::Relaxed);
    }

    /// Rows written to the sink and the time the sink took (blocked on output).
    pub fn add_written(&self, rows: u64, took: Duration) {
        self.rows_written.fetch_add(rows, Ordering::Relaxed);
        self.write_ns.fetch_add(ns(took), Ordering::Relaxed);
    }

    /// Time spent in the sink outside writes (finishing a segment's files).
    pub fn add_write_time(&self, took: Duration) {
        self.write_ns.fetch_add(ns(took), Ordering::Relaxed);
    }

    /// Time spent waiting for input (blocked on the queue from the readers).
    pub fn add_wait(&self, d: Duration) {
        self.wait_ns.fetch_add(ns(d), Ordering::Relaxed);
    }

    /// A reader put a chunk on this worker's queue (+1) or the worker took one (-1).
    pub fn queue_delta(&self, n: i64) {
        self.queued.fetch_add(n, Ordering::Relaxed);
    }

    /// A reader waited this long for room on this worker's queue (backpressure).
    pub fn add_backpressure(&self, d: Duration) {
        self.backpressure_ns.fetch_add(ns(d), Ordering::Relaxed);
    }

    fn snapshot(&self) -> WorkerSnapshot {
        WorkerSnapshot {
            rows_in: self.rows_in.load(Ordering::Relaxed),
            chunks: self.chunks.load(Ordering::Relaxed),
            rows_written: self.rows_written.load(Ordering::Relaxed),
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
            write_ns: self.write_ns.load(Ordering::Relaxed),
            wait_ns: self.wait_ns.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed).max(0) as u64,
            backpressure_ns: self.backpressure_ns.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

/// Live counters of one reader slot (the engine reuses a slot for the next source).
#[derive(Debug, Default)]
pub struct ReaderLive {
    active: AtomicBool,
    sources: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
    chunks: AtomicU64,
    read_ns: AtomicU64,
    blocked_ns: AtomicU64,
}

impl ReaderLive {
    /// The slot starts (true) or stops (false) reading a source.
    pub fn set_active(&self, yes: bool) {
        if yes {
            self.sources.fetch_add(1, Ordering::Relaxed);
        }
        self.active.store(yes, Ordering::Relaxed);
    }

    /// One chunk read and decoded: rows, input bytes consumed, and the time it took.
    pub fn record_chunk(&self, rows: u64, bytes: u64, took: Duration) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.chunks.fetch_add(1, Ordering::Relaxed);
        self.read_ns.fetch_add(ns(took), Ordering::Relaxed);
    }

    /// Time spent reading that produced no new chunk (end of input, retried deliveries).
    pub fn add_read_time(&self, took: Duration) {
        self.read_ns.fetch_add(ns(took), Ordering::Relaxed);
    }

    /// Time blocked on a full worker queue (blocked on output).
    pub fn add_blocked(&self, d: Duration) {
        self.blocked_ns.fetch_add(ns(d), Ordering::Relaxed);
    }

    fn snapshot(&self) -> ReaderSnapshot {
        ReaderSnapshot {
            active: self.active.load(Ordering::Relaxed),
            sources: self.sources.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            chunks: self.chunks.load(Ordering::Relaxed),
            read_ns: self.read_ns.load(Ordering::Relaxed),
            blocked_ns: self.blocked_ns.load(Ordering::Relaxed),
        }
    }
}

/// The board of one run: per-stage, per-worker and per-reader counters, plus run totals.
#[derive(Debug)]
pub struct LiveRun {
    started: Instant,
    /// One per stage, in pipeline order.
    pub stages: Vec<StageLive>,
    /// One per worker.
    pub workers: Vec<WorkerLive>,
    /// One per reader slot.
    pub readers: Vec<ReaderLive>,
    read_latency: LatencyHistogram,
    rows_read: AtomicU64,
    rows_quarantined: AtomicU64,
    rows_removed: AtomicU64,
    sources_done: AtomicU64,
}

impl LiveRun {
    fn new(shape: RunShape) -> Self {
        LiveRun {
            started: Instant::now(),
            stages: shape.stages.into_iter().map(StageLive::new).collect(),
            workers: (0..shape.workers).map(|_| WorkerLive::default()).collect(),
            readers: (0..shape.readers).map(|_| ReaderLive::default()).collect(),
            read_latency: LatencyHistogram::default(),
            rows_read: AtomicU64::new(0),
            rows_quarantined: AtomicU64::new(0),
            rows_removed: AtomicU64::new(0),
            sources_done: AtomicU64::new(0),
        }
    }

    /// Reader `slot` read one chunk: counts it for the slot and the run, and records the
    /// read latency. Out-of-range slots count for the run only.
    pub fn record_read(&self, slot: usize, rows: u64, bytes: u64, took: Duration) {
        if let Some(r) = self.readers.get(slot) {
            r.record_chunk(rows, bytes, took);
        }
        self.rows_read.fetch_add(rows, Ordering::Relaxed);
        self.read_latency.record(took);
    }

    /// Rows counted as read that went straight to quarantine or were removed by a source
    /// (malformed lines): they count as read too.
    pub fn add_read_rejects(&self, quarantined: u64, removed: u64) {
        self.rows_read
            .fetch_add(quarantined + removed, Ordering::Relaxed);
        self.add_outcomes(quarantined, removed);
    }

    /// Rows quarantined and removed downstream of the readers.
    pub fn add_outcomes(&self, quarantined: u64, removed: u64) {
        self.rows_quarantined
            .fetch_add(quarantined, Ordering::Relaxed);
        self.rows_removed.fetch_add(removed, Ordering::Relaxed);
    }

    /// A source finished (done or failed).
    pub fn source_done(&self) {
        self.sources_done.fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of every counter, with the time since [`LiveMetrics::begin`].
    pub fn snapshot(&self) -> LiveSnapshot {
        let workers: Vec<WorkerSnapshot> = self.workers.iter().map(|w| w.snapshot()).collect();
        LiveSnapshot {
            elapsed_ns: ns(self.started.elapsed()),
            rows_read: self.rows_read.load(Ordering::Relaxed),
            rows_written: workers.iter().map(|w| w.rows_written).sum(),
            rows_quarantined: self.rows_quarantined.load(Ordering::Relaxed),
            rows_removed: self.rows_removed.load(Ordering::Relaxed),
            sources_done: self.sources_done.load(Ordering::Relaxed),
            read_latency: self.read_latency.snapshot(),
            stages: self.stages.iter().map(|s| s.snapshot()).collect(),
            readers: self.readers.iter().map(|r| r.snapshot()).collect(),
            workers,
        }
    }
}

/// The handle a watcher creates and the engine fills: see the module docs.
#[derive(Debug, Default)]
pub struct LiveMetrics {
    run: Mutex<Option<Arc<LiveRun>>>,
}

impl LiveMetrics {
    /// A new handle, shared between the engine and the watcher.
    pub fn new() -> Arc<Self> {
        Arc::new(LiveMetrics::default())
    }

    /// Called by the engine when a run starts: a fresh board for `shape` (replacing any
    /// earlier run's), which the engine keeps and updates without locking.
    pub fn begin(&self, shape: RunShape) -> Arc<LiveRun> {
        let run = Arc::new(LiveRun::new(shape));
        *self.run.lock().unwrap_or_else(PoisonError::into_inner) = Some(run.clone());
        run
    }

    /// The current run's board, once the engine began one.
    pub fn current(&self) -> Option<Arc<LiveRun>> {
        self.run
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A snapshot of the current run, once the engine began one.
    pub fn snapshot(&self) -> Option<LiveSnapshot> {
        self.current().map(|r| r.snapshot())
    }
}

/// A stage's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSnapshot {
    /// The stage's name.
    pub name: String,
    /// Rows handed to the stage.
    pub rows_in: u64,
    /// Rows it emitted.
    pub rows_out: u64,
    /// Arrow bytes handed to it.
    pub bytes_in: u64,
    /// Arrow bytes it emitted.
    pub bytes_out: u64,
    /// Chunks handed to it.
    pub chunks: u64,
    /// Nanoseconds inside the stage, over all workers.
    pub busy_ns: u64,
    /// Time per chunk.
    pub latency: HistogramSnapshot,
}

/// A worker's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    /// Rows delivered to the worker.
    pub rows_in: u64,
    /// Deliveries processed.
    pub chunks: u64,
    /// Rows it wrote.
    pub rows_written: u64,
    /// Nanoseconds inside stages.
    pub busy_ns: u64,
    /// Nanoseconds inside the sink (blocked on output).
    pub write_ns: u64,
    /// Nanoseconds waiting for input.
    pub wait_ns: u64,
    /// Chunks queued for it now (including one a blocked reader holds).
    pub queued: u64,
    /// Nanoseconds readers spent waiting for room on its queue.
    pub backpressure_ns: u64,
    /// Time per delivery, stages plus writing.
    pub latency: HistogramSnapshot,
}

/// A reader slot's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReaderSnapshot {
    /// Reading a source now.
    pub active: bool,
    /// Sources it started.
    pub sources: u64,
    /// Rows it read.
    pub rows: u64,
    /// Input bytes it consumed.
    pub bytes: u64,
    /// Chunks it read.
    pub chunks: u64,
    /// Nanoseconds reading and decoding.
    pub read_ns: u64,
    /// Nanoseconds blocked on full worker queues.
    pub blocked_ns: u64,
}

/// Every counter of a run at one moment (cumulative since the run began).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveSnapshot {
    /// Nanoseconds since the run began.
    pub elapsed_ns: u64,
    /// Rows read, including those the readers quarantined.
    pub rows_read: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// Rows removed by rules.
    pub rows_removed: u64,
    /// Sources finished.
    pub sources_done: u64,
    /// Time per chunk read.
    pub read_latency: HistogramSnapshot,
    /// Per stage, in pipeline order.
    pub stages: Vec<StageSnapshot>,
    /// Per worker.
    pub workers: Vec<WorkerSnapshot>,
    /// Per reader slot.
    pub readers: Vec<ReaderSnapshot>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order_and_contain_them() {
        let mut last = 0usize;
        for v in (0..5000u64).chain([1 << 20, (1 << 20) + 12_345, 1 << 39, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v}");
            assert!(b >= last, "buckets grow with the value");
            last = b;
            let (lo, hi) = bucket_bounds(b);
            let clamped = v.min((1u64 << (MAX_EXP + 1)) - 1);
            assert!(lo <= clamped && clamped < hi, "{v} in [{lo},{hi})");
            assert!((hi - lo) as f64 <= (lo as f64 / SUB as f64).max(1.0), "{v}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    /// Quantiles against a plain sort of the same seeded values.
    #[test]
    fn quantiles_are_within_a_bucket_of_the_exact_ones() {
        let h = LatencyHistogram::default();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut vals = Vec::new();
        for _ in 0..10_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Log-uniform between 1 µs and 1 s.
            let v = (1e3 * 1e6f64.powf((state % 1_000_000) as f64 / 1e6)) as u64;
            vals.push(v);
            h.record(Duration::from_nanos(v));
        }
        vals.sort_unstable();
        let s = h.snapshot();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.max_ns, *vals.last().unwrap());
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact = vals[((q * vals.len() as f64).ceil() as usize).max(1) - 1] as f64;
            let got = s.quantile(q) as f64;
            assert!(
                (got - exact).abs() <= exact / 16.0,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(s.quantile(1.0), s.max_ns);
        assert_eq!(HistogramSnapshot::default().quantile(0.5), 0);
    }

    #[test]
    fn snapshots_merge_like_one_histogram() {
        let (a, b, all) = (
            LatencyHistogram::default(),
            LatencyHistogram::default(),
            LatencyHistogram::default(),
        );
        for v in 1..200u64 {
            let d = Duration::from_micros(v * v);
            if v % 3 == 0 { &a } else { &b }.record(d);
            all.record(d);
        }
        let mut m = a.snapshot();
        m.merge(&b.snapshot());
        assert_eq!(m, all.snapshot());
    }

    #[test]
    fn a_new_run_replaces_the_board_and_counts_from_zero() {
        let m = LiveMetrics::new();
        assert!(m.snapshot().is_none());
        let shape = RunShape {
            stages: vec!["a".into(), "b".into()],
            workers: 2,
            readers: 3,
        };
        let r = m.begin(shape.clone());
        r.record_read(1, 10, 100, Duration::from_micros(5));
        r.record_read(99, 5, 50, Duration::from_micros(5));
        r.add_read_rejects(2, 1);
        r.add_outcomes(1, 0);
        r.workers[0].queue_delta(1);
        r.workers[1].queue_delta(-1);
        r.workers[0].add_written(7, Duration::from_millis(1));
        r.readers[2].set_active(true);
        let s = m.snapshot().unwrap();
        assert_eq!(
            (s.rows_read, s.rows_quarantined, s.rows_removed),
            (18, 3, 1)
        );
        assert_eq!(s.readers[1].rows, 10);
        assert_eq!(s.read_latency.count, 2);
        assert_eq!((s.workers[0].queued, s.workers[1].queued), (1, 0));
        assert_eq!(s.rows_written, 7);
        assert!(s.readers[2].active && s.readers[2].sources == 1);
        let r2 = m.begin(shape);
        assert!(!Arc::ptr_eq(&r, &r2));
        assert_eq!(m.snapshot().unwrap().rows_read, 0);
    }
}
