//! A reader: opens one source, splits its chunks over the workers, and retries the source
//! (reopening it) after an error or panic in the source or in a worker's stage.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use pipeline_core::{Error, Ledger, LiveRun, Reject, RejectKind, SourceId, SourcePosition};

use crate::reject_channel::RejectMsg;

use crate::panic::panic_message;
use crate::route::{Route, split};
use crate::spec::SourceSpec;
use crate::worker::{Ack, Part};

/// How often a reader waiting for workers' answers checks whether the run was aborted.
const ACK_POLL: Duration = Duration::from_millis(50);

/// Counters shared by all readers, for progress and the adaptive channel size.
#[derive(Default)]
pub(crate) struct Shared {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub chunk_bytes_sum: AtomicU64,
    pub chunks: AtomicU64,
}

/// How one source ended.
pub(crate) struct SourceOutcome {
    pub index: usize,
    /// Rows read (including the source's quarantined rows) and those quarantines.
    pub ledger: Ledger,
    /// `Some(error)` when it failed after all retries.
    pub failed: Option<String>,
    /// An error that stops the whole run ([`Error::stops_run`]): a config or schema error,
    /// or a malformed row in strict mode. The coordinator aborts the run with it.
    pub fatal: Option<Error>,
    pub bytes: u64,
    pub cancelled: bool,
    /// Where the source stopped, when it can be continued ([`Source::stopped_at`]).
    ///
    /// [`Source::stopped_at`]: pipeline_core::Source::stopped_at
    pub position: Option<SourcePosition>,
}

pub(crate) struct ReaderCtx {
    pub workers: usize,
    pub route: Route,
    /// Index of the run's first source, whose first chunk seeds the key assignment.
    pub seeder: usize,
    pub retries: u32,
    pub backoff: Duration,
    pub cancel: Arc<AtomicBool>,
    pub abort: Arc<AtomicBool>,
    pub rejects: Sender<RejectMsg>,
    pub shared: Arc<Shared>,
    /// Live metrics for a monitor, when one watches.
    pub live: Option<Arc<LiveRun>>,
}

/// Why an attempt stopped early.
enum Stop {
    /// The source failed (to open, or while reading).
    Source(Error),
    /// A worker's stage failed; `retry` says whether another attempt can help.
    Worker {
        message: String,
        retry: bool,
    },
    Cancelled,
}

struct FileState {
    /// The segment the source belongs to (its rejects are committed with it).
    seg: u32,
    /// Deliveries counted as read so far (the high-water mark over attempts).
    hw: u64,
    /// Whether the source's final rejects were counted.
    tail_counted: bool,
    /// Whether some worker must replay (then deliveries below `hw` are sent again).
    replay: bool,
    rows: Vec<Vec<u32>>,
    ledger: Ledger,
    bytes: u64,
    /// The reader slot this source occupies (for the live metrics).
    slot: usize,
    /// Whether opening the source again reads the same rows (false for stdin and pipes).
    reopenable: bool,
    /// The source id its chunks carry, once one was read.
    id: Option<SourceId>,
    /// First and last input line of the rows read so far.
    lines: Option<(u64, u64)>,
    /// Where the source stopped, once it ended, when it can be continued.
    position: Option<SourcePosition>,
}

/// Reads source `index` to the end, retrying; `parts[w]` goes to worker `w`. `position` is
/// the source's place in the caller's list, its id if it fails before yielding a row; `seg`
/// is its segment; `slot` is the reader slot it occupies in the live metrics.
#[allow(clippy::too_many_arguments)] // The reader's coordinates, all from the coordinator.
pub(crate) fn read_source(
    ctx: &ReaderCtx,
    (index, position): (usize, u32),
    seg: u32,
    slot: usize,
    spec: &SourceSpec,
    parts: Vec<Sender<Part>>,
    acks: Receiver<Ack>,
) -> SourceOutcome {
    let seeding = index == ctx.seeder;
    // The first source's reader lets the others go on however it ends (see `KeyAssigner`).
    let _release = seeding.then(|| ReleaseSeed(&ctx.route));
    let mut st = FileState {
        seg,
        hw: 0,
        tail_counted: false,
        replay: false,
        rows: Vec::new(),
        ledger: Ledger::default(),
        bytes: 0,
        slot,
        reopenable: true,
        id: None,
        lines: None,
        position: None,
    };
    let reader_live = ctx.live.as_ref().and_then(|l| l.readers.get(slot));
    if let Some(r) = reader_live {
        r.set_active(true);
    }
    let mut last_error = String::new();
    let mut cancelled = false;
    let mut ok = false;
    let mut fatal: Option<Error> = None;
    let mut attempts = 0;
    // Workers that acknowledged a complete attempt without a failure: done with this source
    // (see `Part::End`); nothing more is sent to them and no answer awaited.
    let mut released = vec![false; ctx.workers];
    for attempt in 0..=ctx.retries {
        attempts = attempt + 1;
        if attempt > 0 {
            let wait = ctx.backoff.saturating_mul(1 << (attempt - 1).min(6));
            tracing::warn!(source = %spec.name, attempt, error = %last_error, "retrying source in {wait:?}");
            std::thread::sleep(wait);
        }
        let mut acked = 0usize;
        let active = released.iter().filter(|r| !**r).count();
        let mut worker_failed = false;
        // Whether another attempt can cure this one's failure: a source error only when it is
        // an I/O error, a stage failure when the stage says so (see `Ack::retry`).
        let mut retryable = true;
        let stop = {
            let mut on_ack = |a: Ack| {
                if a.attempt == attempt {
                    acked += 1;
                    if let Some(e) = a.error {
                        worker_failed = true;
                        retryable &= a.retry;
                        last_error = e;
                    }
                }
            };
            let r = catch_unwind(AssertUnwindSafe(|| {
                attempt_once(
                    ctx,
                    spec,
                    seeding,
                    attempt,
                    (&parts, &released),
                    &acks,
                    &mut st,
                    &mut on_ack,
                )
            }));
            match r {
                Ok(r) => r,
                Err(p) => Some(Stop::Source(Error::Internal(format!(
                    "source panicked: {}",
                    panic_message(&p)
                )))),
            }
        };
        let complete = stop.is_none();
        for p in still_on(&parts, &released) {
            let _ = p.send(Part::End { attempt, complete });
        }
        // Every worker still on the source answers each attempt exactly once (a worker that
        // died of a fatal error never will: the abort flag ends the wait).
        while acked < active {
            match acks.recv_timeout(ACK_POLL) {
                Ok(a) => {
                    if a.attempt == attempt {
                        acked += 1;
                        match a.error {
                            Some(e) => {
                                worker_failed = true;
                                retryable &= a.retry;
                                last_error = e;
                            }
                            None if complete => {
                                if let Some(r) = released.get_mut(a.worker) {
                                    *r = true;
                                }
                            }
                            None => {}
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) if !ctx.abort.load(Ordering::Relaxed) => {}
                Err(_) => break,
            }
        }
        if worker_failed {
            st.replay = true;
        }
        match stop {
            Some(Stop::Cancelled) => {
                cancelled = true;
                break;
            }
            Some(Stop::Source(e)) => {
                last_error = e.to_string();
                retryable &= e.is_retryable();
                if e.stops_run() {
                    // The same for every attempt and every file: stop the run, once.
                    fatal = Some(e);
                    ctx.abort.store(true, Ordering::Relaxed);
                    break;
                }
            }
            Some(Stop::Worker { message, retry }) => {
                last_error = message;
                retryable &= retry;
            }
            None if !worker_failed => {
                ok = true;
                break;
            }
            None => {}
        }
        if ctx.abort.load(Ordering::Relaxed) {
            break;
        }
        if !retryable || !st.reopenable {
            // A deterministic error fails the same way again; stdin cannot be read twice.
            if !st.reopenable {
                last_error = format!("{last_error} (not retried: the input cannot be read again)");
            }
            break;
        }
    }
    if ok {
        for p in still_on(&parts, &released) {
            let _ = p.send(Part::Finished);
        }
    } else {
        let rows = Arc::new(std::mem::take(&mut st.rows));
        for p in still_on(&parts, &released) {
            let _ = p.send(Part::Failed { rows: rows.clone() });
        }
        if !cancelled && fatal.is_none() {
            tracing::error!(source = %spec.name, error = %last_error, "source failed after {attempts} attempt(s)");
            send_rejects(
                ctx,
                st.seg,
                vec![failed_file_record(&st, position, &last_error)],
            );
        }
    }
    if let Some(l) = &ctx.live {
        if let Some(r) = reader_live {
            r.set_active(false);
        }
        l.source_done();
    }
    SourceOutcome {
        index,
        ledger: st.ledger,
        failed: (!ok && !cancelled && fatal.is_none()).then_some(last_error),
        fatal,
        bytes: st.bytes,
        cancelled,
        position: st.position,
    }
}

/// The channels of the workers not yet released from the source (see `Part::End`).
fn still_on<'a>(
    parts: &'a [Sender<Part>],
    released: &'a [bool],
) -> impl Iterator<Item = &'a Sender<Part>> {
    parts
        .iter()
        .zip(released)
        .filter(|(_, r)| !**r)
        .map(|(p, _)| p)
}

/// The quarantine record of a source that failed for good: one row naming the lines read
/// and the error, so the quarantine file shows the failure and not only the ledger. (Rows
/// read but not processed are counted under `failed_file` by the workers; the lines after the
/// failure were never read.) It is not a row of the input, so the ledger does not count it.
fn failed_file_record(st: &FileState, position: u32, error: &str) -> Reject {
    let (line, read) = match st.lines {
        Some((a, b)) => (
            b + 1,
            format!(
                "lines {a}-{b} were read (those no stage processed are counted as `{}`), lines from {} on were not",
                crate::worker::FAILED_FILE,
                b + 1
            ),
        ),
        None => (1, "no row was read".to_string()),
    };
    Reject::quarantined(
        st.id.unwrap_or(position),
        line,
        crate::worker::FAILED_FILE,
        format!("the file failed: {error}; {read}"),
        None,
    )
}

fn count_rejects(ctx: &ReaderCtx, ledger: &mut Ledger, rejects: &[Reject]) {
    let (mut q, mut r) = (0u64, 0u64);
    for rej in rejects {
        ledger.add_read(1);
        match rej.kind {
            RejectKind::Quarantined => {
                q += 1;
                ledger.add_quarantined(&rej.reason, 1)
            }
            RejectKind::Removed => {
                r += 1;
                ledger.add_removed(&rej.reason, 1)
            }
        }
    }
    if let Some(l) = &ctx.live {
        l.add_read_rejects(q, r);
    }
}

/// Releases the key assignment's seed when the first source's reader ends.
struct ReleaseSeed<'a>(&'a Route);

impl Drop for ReleaseSeed<'_> {
    fn drop(&mut self) {
        if let Route::ByKey(_, a) = self.0 {
            a.release();
        }
    }
}

#[allow(clippy::too_many_arguments)] // The reader's state, passed down one level.
fn attempt_once(
    ctx: &ReaderCtx,
    spec: &SourceSpec,
    seeding: bool,
    attempt: u32,
    (parts, released): (&[Sender<Part>], &[bool]),
    acks: &Receiver<Ack>,
    st: &mut FileState,
    on_ack: &mut dyn FnMut(Ack),
) -> Option<Stop> {
    let mut src = match (spec.open)() {
        Ok(s) => s,
        Err(e) => return Some(Stop::Source(e)),
    };
    st.reopenable &= src.reopenable();
    let mut d = 0u64;
    let mut last_bytes = 0u64;
    loop {
        if ctx.cancel.load(Ordering::Relaxed) || ctx.abort.load(Ordering::Relaxed) {
            return Some(Stop::Cancelled);
        }
        while let Ok(a) = acks.try_recv() {
            let failed = a.error.clone().map(|m| (m, a.retry));
            on_ack(a);
            if let Some((message, retry)) = failed {
                return Some(Stop::Worker { message, retry });
            }
        }
        let started = ctx.live.as_ref().map(|_| Instant::now());
        let item = src.next();
        let rejects = src.drain_rejects();
        let took = started.map(|t| t.elapsed());
        let fresh = d >= st.hw;
        let Some(item) = item else {
            if let (Some(l), Some(t)) = (&ctx.live, took)
                && let Some(r) = l.readers.get(st.slot)
            {
                r.add_read_time(t);
            }
            if !st.tail_counted {
                count_rejects(ctx, &mut st.ledger, &rejects);
                send_rejects(ctx, st.seg, rejects);
                st.tail_counted = true;
            }
            st.position = src.stopped_at();
            return None;
        };
        let chunk = match item {
            Ok(c) => c,
            Err(e) => {
                if let Some(lines) = src.lines_read() {
                    st.lines = Some(lines);
                }
                return Some(Stop::Source(e));
            }
        };
        let p = src.progress().bytes_read;
        if let (Some(l), Some(t)) = (&ctx.live, took) {
            if fresh {
                l.record_read(
                    st.slot,
                    chunk.num_rows() as u64,
                    p.saturating_sub(last_bytes),
                    t,
                );
            } else if let Some(r) = l.readers.get(st.slot) {
                r.add_read_time(t);
            }
        }
        if fresh {
            if !chunk.is_empty() {
                let l = chunk.lines().values();
                let (lo, hi) = l
                    .iter()
                    .fold((u64::MAX, 0), |(a, b), &x| (a.min(x), b.max(x)));
                st.lines = Some(st.lines.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
                st.id = Some(chunk.source());
            }
            count_rejects(ctx, &mut st.ledger, &rejects);
            send_rejects(ctx, st.seg, rejects);
            let n = chunk.num_rows() as u64;
            st.ledger.add_read(n);
            st.bytes += p.saturating_sub(last_bytes);
            ctx.shared.rows.fetch_add(n, Ordering::Relaxed);
            ctx.shared
                .bytes
                .fetch_add(p.saturating_sub(last_bytes), Ordering::Relaxed);
            ctx.shared
                .chunk_bytes_sum
                .fetch_add(chunk.memory_size() as u64, Ordering::Relaxed);
            ctx.shared.chunks.fetch_add(1, Ordering::Relaxed);
        }
        last_bytes = p;
        if !fresh && !st.replay {
            d += 1;
            continue;
        }
        let split = match split(chunk, d, &ctx.route, ctx.workers, seeding) {
            Ok(s) => s,
            Err(e) => return Some(Stop::Source(e)),
        };
        if fresh {
            st.rows.push(
                split
                    .iter()
                    .map(|p| p.as_ref().map_or(0, |c| c.num_rows() as u32))
                    .collect(),
            );
            st.hw = d + 1;
        }
        for (w, part) in split.into_iter().enumerate() {
            if let Some(chunk) = part
                && !released[w]
                && !send_part(ctx, st.slot, w, &parts[w], Part::Data { attempt, d, chunk })
            {
                return Some(Stop::Cancelled);
            }
        }
        d += 1;
    }
}

/// Sends a part to worker `w`; false when the worker is gone. With live metrics, counts it
/// on the worker's queue and times a send that finds the queue full (backpressure).
fn send_part(ctx: &ReaderCtx, slot: usize, w: usize, tx: &Sender<Part>, part: Part) -> bool {
    let Some(worker) = ctx.live.as_ref().and_then(|l| l.workers.get(w)) else {
        return tx.send(part).is_ok();
    };
    worker.queue_delta(1);
    let sent = match tx.try_send(part) {
        Ok(()) => true,
        Err(TrySendError::Full(part)) => {
            let t = Instant::now();
            let sent = tx.send(part).is_ok();
            let waited = t.elapsed();
            worker.add_backpressure(waited);
            if let Some(r) = ctx.live.as_ref().and_then(|l| l.readers.get(slot)) {
                r.add_blocked(waited);
            }
            sent
        }
        Err(TrySendError::Disconnected(_)) => false,
    };
    if !sent {
        worker.queue_delta(-1);
    }
    sent
}

fn send_rejects(ctx: &ReaderCtx, seg: u32, rejects: Vec<Reject>) {
    if !rejects.is_empty() {
        let _ = crate::reject_channel::send(&ctx.rejects, seg, rejects);
    }
}
