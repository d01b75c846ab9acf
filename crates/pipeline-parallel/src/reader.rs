//! A reader: opens one source, splits its chunks over the workers, and retries the source
//! (reopening it) after an error or panic in the source or in a worker's stage.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use pipeline_core::{Ledger, LiveRun, Reject, RejectKind};

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
    pub bytes: u64,
    pub cancelled: bool,
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
    Source(String),
    Worker(String),
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
}

/// Reads source `index` to the end, retrying; `parts[w]` goes to worker `w`. `slot` is the
/// reader slot it occupies in the live metrics.
pub(crate) fn read_source(
    ctx: &ReaderCtx,
    index: usize,
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
    };
    let reader_live = ctx.live.as_ref().and_then(|l| l.readers.get(slot));
    if let Some(r) = reader_live {
        r.set_active(true);
    }
    let mut last_error = String::new();
    let mut cancelled = false;
    let mut ok = false;
    for attempt in 0..=ctx.retries {
        if attempt > 0 {
            let wait = ctx.backoff.saturating_mul(1 << (attempt - 1).min(6));
            tracing::warn!(source = %spec.name, attempt, error = %last_error, "retrying source in {wait:?}");
            std::thread::sleep(wait);
        }
        let mut acked = 0usize;
        let mut worker_failed = false;
        let stop = {
            let mut on_ack = |a: Ack| {
                if a.attempt == attempt {
                    acked += 1;
                    if let Some(e) = a.error {
                        worker_failed = true;
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
                    &parts,
                    &acks,
                    &mut st,
                    &mut on_ack,
                )
            }));
            match r {
                Ok(r) => r,
                Err(p) => Some(Stop::Source(format!(
                    "source panicked: {}",
                    panic_message(&p)
                ))),
            }
        };
        for p in &parts {
            let _ = p.send(Part::End { attempt });
        }
        // Every worker answers each attempt exactly once (a worker that died of a fatal
        // error never will: the abort flag ends the wait).
        while acked < ctx.workers {
            match acks.recv_timeout(ACK_POLL) {
                Ok(a) => {
                    if a.attempt == attempt {
                        acked += 1;
                        if let Some(e) = a.error {
                            worker_failed = true;
                            last_error = e;
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
            Some(Stop::Source(e)) => last_error = e,
            Some(Stop::Worker(e)) => last_error = e,
            None if !worker_failed => {
                ok = true;
                break;
            }
            None => {}
        }
        if ctx.abort.load(Ordering::Relaxed) {
            break;
        }
    }
    if ok {
        for p in &parts {
            let _ = p.send(Part::Finished);
        }
    } else {
        let rows = Arc::new(std::mem::take(&mut st.rows));
        for p in &parts {
            let _ = p.send(Part::Failed { rows: rows.clone() });
        }
        if !cancelled {
            tracing::error!(source = %spec.name, error = %last_error, "source failed after {} retries", ctx.retries);
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
        failed: (!ok && !cancelled).then_some(last_error),
        bytes: st.bytes,
        cancelled,
    }
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
    parts: &[Sender<Part>],
    acks: &Receiver<Ack>,
    st: &mut FileState,
    on_ack: &mut dyn FnMut(Ack),
) -> Option<Stop> {
    let mut src = match (spec.open)() {
        Ok(s) => s,
        Err(e) => return Some(Stop::Source(e.to_string())),
    };
    let mut d = 0u64;
    let mut last_bytes = 0u64;
    loop {
        if ctx.cancel.load(Ordering::Relaxed) || ctx.abort.load(Ordering::Relaxed) {
            return Some(Stop::Cancelled);
        }
        while let Ok(a) = acks.try_recv() {
            let failed = a.error.clone();
            on_ack(a);
            if let Some(e) = failed {
                return Some(Stop::Worker(e));
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
            return None;
        };
        let chunk = match item {
            Ok(c) => c,
            Err(e) => return Some(Stop::Source(e.to_string())),
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
            Err(e) => return Some(Stop::Source(e.to_string())),
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
