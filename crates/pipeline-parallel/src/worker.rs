//! A worker: owns one instance of every stage and its sink per segment, takes the parts of
//! each source routed to it (sources strictly in order), and replays a source after a stage
//! failure so that per-key state is exactly what it was before the failing chunk.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use pipeline_core::{
    Chunk, Emitter, Error, Ledger, LiveRun, Reject, Result, Sink, Stage, StageMetrics, WorkerLive,
};

use crate::reject_channel::RejectMsg;
use crate::spec::SinkFactory;

/// Quarantine reason for rows of a source that failed after all retries and that no stage
/// saw (see the crate docs on failed sources).
pub const FAILED_FILE: &str = "failed_file";

/// What a reader sends a worker about one source.
pub(crate) enum Part {
    /// Delivery `d` of attempt `attempt`: this worker's rows of the source's `d`-th chunk.
    Data { attempt: u32, d: u64, chunk: Chunk },
    /// Attempt `attempt` ended; `complete`: it read the source to its end without an error
    /// of the source. A worker that has processed every delivery of a complete attempt
    /// without a failure of its own acknowledges it and moves on to the next source: a later
    /// attempt (another worker failed) only re-sends deliveries it has already processed.
    /// Waiting for the source's `Finished` instead made every input a barrier of all
    /// workers (on 252 day files of 6K rows, each worker idle about 40% of the time).
    End { attempt: u32, complete: bool },
    /// The source is done; move on.
    Finished,
    /// The source failed for good; `rows[d][w]` are the rows of delivery `d` for worker `w`
    /// among the deliveries counted as read.
    Failed { rows: Arc<Vec<Vec<u32>>> },
}

/// A worker's answer to one attempt: exactly one per attempt.
pub(crate) struct Ack {
    /// The worker answering.
    pub worker: usize,
    pub attempt: u32,
    pub error: Option<String>,
    /// Whether retrying the source can cure `error` (an I/O error or a panic in a stage);
    /// a stage's deterministic error fails the source at once.
    pub retry: bool,
}

/// What the coordinator sends a worker.
pub(crate) enum Control {
    /// Process source `parts` next (sources arrive in order).
    Source {
        parts: Receiver<Part>,
        acks: Sender<Ack>,
    },
    /// Segment `seg` ends here; `last` also flushes every stage.
    SegmentEnd { seg: u32, last: bool },
}

/// A worker's contribution to one committed segment.
pub(crate) struct SegmentReport {
    pub worker: usize,
    pub seg: u32,
    pub ledger: Ledger,
    pub metrics: Vec<StageMetrics>,
    pub outputs: Vec<PathBuf>,
    pub states: Vec<Option<Vec<u8>>>,
}

/// Stage failures fail the source (retried when `retry`); sink and reject-sink failures, and
/// stage errors that stop the run ([`Error::stops_run`], e.g. [`Error::Disorder`]), end the
/// run.
enum Fault {
    Stage { message: String, retry: bool },
    Fatal(Error),
}

pub(crate) struct Worker {
    pub id: usize,
    pub stages: Vec<Box<dyn Stage>>,
    pub sink_factory: SinkFactory,
    pub rejects: Sender<RejectMsg>,
    pub take_checkpoints: bool,
    pub abort: Arc<AtomicBool>,
    pub cancel: Arc<AtomicBool>,
    pub segment: u32,
    /// Live metrics for a monitor, when one watches.
    pub live: Option<Arc<LiveRun>>,
    sink: Option<Box<dyn Sink>>,
    ledger: Ledger,
    metrics: Vec<StageMetrics>,
}

impl Worker {
    pub fn new(
        id: usize,
        stages: Vec<Box<dyn Stage>>,
        sink_factory: SinkFactory,
        rejects: Sender<RejectMsg>,
        take_checkpoints: bool,
        (abort, cancel): (Arc<AtomicBool>, Arc<AtomicBool>),
        segment: u32,
    ) -> Self {
        let n = stages.len();
        Worker {
            id,
            stages,
            sink_factory,
            rejects,
            take_checkpoints,
            abort,
            cancel,
            segment,
            live: None,
            sink: None,
            ledger: Ledger::default(),
            metrics: vec![StageMetrics::default(); n],
        }
    }

    /// Restores stage states from a manifest.
    pub fn restore(&mut self, states: &[Option<Vec<u8>>]) -> Result<()> {
        for (s, st) in self.stages.iter_mut().zip(states) {
            if let Some(bytes) = st {
                s.restore(bytes)?;
            }
        }
        Ok(())
    }

    /// This worker's live counters, when a monitor watches.
    fn live_worker(&self) -> Option<&WorkerLive> {
        self.live.as_ref().and_then(|l| l.workers.get(self.id))
    }

    /// Receives the next message; with live metrics, the time blocked counts as waiting for
    /// input.
    fn recv<T>(&self, rx: &Receiver<T>) -> Option<T> {
        match self.live_worker() {
            None => rx.recv().ok(),
            Some(l) => {
                let t = Instant::now();
                let r = rx.recv().ok();
                l.add_wait(t.elapsed());
                r
            }
        }
    }

    /// Runs until the control channel closes; `reports` gets one report per segment.
    pub fn run(mut self, control: Receiver<Control>, reports: Sender<Result<SegmentReport>>) {
        while let Some(msg) = self.recv(&control) {
            // Stage panics are caught per call; this catches panics in sinks.
            let r = catch_unwind(AssertUnwindSafe(|| match msg {
                Control::Source { parts, acks } => self.source(parts, acks).map(|()| None),
                Control::SegmentEnd { seg, last } => self.segment_end(seg, last).map(Some),
            }))
            .unwrap_or_else(|p| {
                Err(Error::Internal(format!(
                    "worker {} panicked outside a stage: {}",
                    self.id,
                    crate::panic::panic_message(&p)
                )))
            });
            match r {
                Ok(None) => {}
                Ok(Some(rep)) => {
                    if reports.send(Ok(rep)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    self.abort.store(true, Ordering::Relaxed);
                    let _ = reports.send(Err(e));
                    break;
                }
            }
        }
        // Anything not finished is partial: remove it.
        if let Some(mut s) = self.sink.take() {
            let _ = s.abort();
        }
    }

    fn checkpoint(&self) -> Result<Vec<Option<Vec<u8>>>> {
        self.stages.iter().map(|s| s.checkpoint()).collect()
    }

    /// Processes one source's parts, with the replay protocol described on [`Part`].
    fn source(&mut self, parts: Receiver<Part>, acks: Sender<Ack>) -> Result<()> {
        // Restored into these same stages only: a replay point, not a full checkpoint (a
        // stage's growing logs are recorded by length, so an input's start costs the same
        // at the 10,000th input as at the first).
        let ckpt = if self.take_checkpoints {
            Some(
                self.stages
                    .iter_mut()
                    .map(|s| s.replay_point())
                    .collect::<Result<Vec<_>>>()?,
            )
        } else {
            None
        };
        let mut done = 0u64; // deliveries fully processed and written
        let mut attempt = 0u32; // lowest attempt still accepted
        let mut needs_replay = false; // state was damaged by a failure: restore and replay
        let mut replaying = false;
        while let Some(msg) = self.recv(&parts) {
            if let (Part::Data { .. }, Some(l)) = (&msg, self.live_worker()) {
                l.queue_delta(-1);
            }
            let msg_attempt = match &msg {
                Part::Data { attempt, .. } | Part::End { attempt, .. } => Some(*attempt),
                _ => None,
            };
            if let Some(a) = msg_attempt {
                if a < attempt {
                    continue;
                }
                if a > attempt || (needs_replay && !replaying) {
                    attempt = a;
                    if needs_replay {
                        if let Some(c) = &ckpt {
                            self.restore(c)?;
                        }
                        replaying = true;
                    }
                }
            }
            match msg {
                Part::Data {
                    attempt: a,
                    d,
                    chunk,
                } => {
                    let discard = if d < done {
                        if !replaying {
                            continue;
                        }
                        true
                    } else {
                        false
                    };
                    match self.push(0, vec![chunk], discard) {
                        Ok(()) => {
                            if !discard {
                                done = d + 1;
                                needs_replay = false;
                                replaying = false;
                            }
                        }
                        Err(Fault::Stage { message, retry }) => {
                            // Checkpoints are taken whenever retries are allowed; without
                            // one there is no retry to prepare for.
                            needs_replay = ckpt.is_some();
                            replaying = false;
                            attempt = a + 1;
                            let _ = acks.send(Ack {
                                worker: self.id,
                                attempt: a,
                                error: Some(message),
                                retry,
                            });
                        }
                        Err(Fault::Fatal(e)) => return Err(e),
                    }
                }
                Part::End {
                    attempt: a,
                    complete,
                } => {
                    let _ = acks.send(Ack {
                        worker: self.id,
                        attempt: a,
                        error: None,
                        retry: true,
                    });
                    if complete && !needs_replay {
                        // Released: see `Part::End`.
                        return Ok(());
                    }
                }
                Part::Finished => return Ok(()),
                Part::Failed { rows } => {
                    let lost: u64 = rows
                        .iter()
                        .skip(done as usize)
                        .map(|r| u64::from(r.get(self.id).copied().unwrap_or(0)))
                        .sum();
                    self.ledger.add_quarantined(FAILED_FILE, lost);
                    if let Some(l) = &self.live {
                        l.add_outcomes(lost, 0);
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Runs `chunks` through stages `from..`, writing the results (or discarding everything
    /// they produce when replaying). Counts, rejects and metrics are kept aside until every
    /// stage has succeeded, so a failing delivery leaves no trace and can be retried.
    fn push(
        &mut self,
        from: usize,
        chunks: Vec<Chunk>,
        discard: bool,
    ) -> std::result::Result<(), Fault> {
        let started = self.live.as_ref().map(|_| Instant::now());
        let rows_delivered: u64 = chunks.iter().map(|c| c.num_rows() as u64).sum();
        let mut cur = chunks;
        let mut ledger = Ledger::default();
        let mut rejects: Vec<Reject> = Vec::new();
        let mut metrics: Vec<StageMetrics> = vec![StageMetrics::default(); self.stages.len()];
        for (k, m) in metrics.iter_mut().enumerate().skip(from) {
            let mut em = Emitter::default();
            let mut next = Vec::new();
            for c in cur {
                m.rows_in += c.num_rows() as u64;
                m.bytes_in += c.memory_size() as u64;
                m.chunks += 1;
                let t = Instant::now();
                let stage = &mut self.stages[k];
                let r = catch_unwind(AssertUnwindSafe(|| stage.process(c, &mut em)));
                let took = t.elapsed();
                m.busy += took;
                if let Some(l) = &self.live {
                    l.stages[k].record_latency(took);
                }
                check(r, self.stages[k].name())?;
                next.extend(em.take_chunks());
            }
            for c in &next {
                m.rows_out += c.num_rows() as u64;
                m.bytes_out += c.memory_size() as u64;
            }
            ledger.merge(&em.take_ledger());
            rejects.extend(em.take_rejects());
            cur = next;
        }
        let stage_time = metrics.iter().map(|m| m.busy).sum();
        if discard {
            if let Some(l) = self.live_worker() {
                l.add_busy(stage_time);
            }
            return Ok(());
        }
        if let Some(l) = &self.live {
            for (s, m) in l.stages.iter().zip(&metrics).skip(from) {
                s.add(m);
            }
            l.add_outcomes(ledger.quarantined_total(), ledger.removed_total());
        }
        self.ledger.merge(&ledger);
        for (a, b) in self.metrics.iter_mut().zip(&metrics) {
            a.merge(b);
        }
        if !crate::reject_channel::send(&self.rejects, self.segment, rejects) {
            return Err(Fault::Fatal(Error::Internal(
                "the quarantine writer stopped".into(),
            )));
        }
        for c in cur {
            self.write(&c).map_err(Fault::Fatal)?;
        }
        if let (Some(l), Some(t)) = (self.live_worker(), started) {
            if from == 0 {
                l.record_delivery(rows_delivered, stage_time, t.elapsed());
            } else {
                // Rows a stage flushed at the end of the input: stage time, not a delivery.
                l.add_busy(stage_time);
            }
        }
        Ok(())
    }

    fn write(&mut self, c: &Chunk) -> Result<()> {
        let started = self.live.as_ref().map(|_| Instant::now());
        if self.sink.is_none() {
            self.sink = Some((self.sink_factory)(self.id, self.segment)?);
        }
        if let Some(s) = self.sink.as_mut() {
            s.write(c)?;
        }
        let rows = c.num_rows() as u64;
        self.ledger.add_written(rows);
        if let (Some(l), Some(t)) = (self.live_worker(), started) {
            l.add_written(rows, t.elapsed());
        }
        Ok(())
    }

    /// Ends a segment: flushes stages when it is the last, finishes the sink, checkpoints.
    fn segment_end(&mut self, seg: u32, last: bool) -> Result<SegmentReport> {
        if self.cancel.load(Ordering::Relaxed) || self.abort.load(Ordering::Relaxed) {
            // The segment's sources may have been cut short: its outputs are partial.
            if let Some(mut s) = self.sink.take() {
                s.abort()?;
            }
            return Err(Error::Cancelled);
        }
        if last {
            for k in 0..self.stages.len() {
                let mut em = Emitter::default();
                let t = Instant::now();
                let stage = &mut self.stages[k];
                let r = catch_unwind(AssertUnwindSafe(|| stage.finish(&mut em)));
                let took = t.elapsed();
                self.metrics[k].busy += took;
                let fail = |f: Fault| match f {
                    Fault::Stage { message, .. } => {
                        Error::Internal(format!("at the end of the input: {message}"))
                    }
                    Fault::Fatal(e) => e,
                };
                check(r, self.stages[k].name()).map_err(fail)?;
                let out = em.take_chunks();
                let mut flushed = StageMetrics {
                    busy: took,
                    ..Default::default()
                };
                for c in &out {
                    flushed.rows_out += c.num_rows() as u64;
                    flushed.bytes_out += c.memory_size() as u64;
                }
                let m = &mut self.metrics[k];
                m.rows_out += flushed.rows_out;
                m.bytes_out += flushed.bytes_out;
                let finished = em.take_ledger();
                if let Some(l) = &self.live {
                    l.stages[k].add(&flushed);
                    l.add_outcomes(finished.quarantined_total(), finished.removed_total());
                    if let Some(w) = l.workers.get(self.id) {
                        w.add_busy(took);
                    }
                }
                self.ledger.merge(&finished);
                let rejects = em.take_rejects();
                if !crate::reject_channel::send(&self.rejects, self.segment, rejects) {
                    return Err(Error::Internal("the quarantine writer stopped".into()));
                }
                self.push(k + 1, out, false).map_err(fail)?;
            }
        }
        let mut outputs = Vec::new();
        if let Some(mut s) = self.sink.take() {
            let t = Instant::now();
            outputs = s.finish()?.files;
            if let Some(l) = self.live_worker() {
                l.add_write_time(t.elapsed());
            }
        }
        let states = if last {
            vec![None; self.stages.len()]
        } else {
            self.checkpoint()?
        };
        let n = self.stages.len();
        let rep = SegmentReport {
            worker: self.id,
            seg,
            ledger: std::mem::take(&mut self.ledger),
            metrics: std::mem::replace(&mut self.metrics, vec![StageMetrics::default(); n]),
            outputs,
            states,
        };
        self.segment = seg + 1;
        Ok(rep)
    }
}

/// Classifies a stage call's result. An error that stops the run (e.g. [`Error::Disorder`])
/// ends it; other errors fail the source, retried only when [`Error::is_retryable`]. A panic
/// is retried: unlike an error it says nothing about the input (an allocation failure or a
/// lock poisoned by another thread can pass), and the replay protocol restores the stage's
/// state, so a retry is safe.
fn check(r: std::thread::Result<Result<()>>, name: &str) -> std::result::Result<(), Fault> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.stops_run() => Err(Fault::Fatal(e)),
        Ok(Err(e)) => Err(Fault::Stage {
            retry: e.is_retryable(),
            message: format!("stage `{name}`: {e}"),
        }),
        Err(p) => Err(Fault::Stage {
            message: format!(
                "stage `{name}` panicked: {}",
                crate::panic::panic_message(&p)
            ),
            retry: true,
        }),
    }
}
