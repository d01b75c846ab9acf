//! [`Pipeline`]: `Source → Stage… → Sink` with one thread per stage and bounded channels.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use pipeline_core::{
    Chunk, Emitter, Error, Ledger, Reject, RejectSink, Result, Sink, SinkSummary, Source, Stage,
    StageMetrics,
};

/// Chunks buffered between two threads by default. Four keeps every thread busy while a
/// neighbour has a short stall and holds memory at four chunks per edge; raise it for bursty
/// stages.
const DEFAULT_CAPACITY: usize = 4;

/// Reject batches buffered before the quarantine writer. Rejects are small (a line number and
/// a reason), so this bounds a few MB at most.
const REJECT_CAPACITY: usize = 256;

/// A callback that sees every chunk right before the sink.
pub type ChunkHook = Box<dyn FnMut(&Chunk) -> Result<()> + Send>;

/// What a streaming run did.
#[derive(Debug, Clone, Default)]
pub struct StreamReport {
    /// Where every row went; balanced (checked before `run` returns).
    pub ledger: Ledger,
    /// Per-stage metrics, in pipeline order.
    pub stages: Vec<(String, StageMetrics)>,
    /// What the main sink wrote.
    pub sink: SinkSummary,
    /// What the quarantine sink wrote.
    pub rejects: SinkSummary,
    /// Wall-clock time of the run.
    pub wall: Duration,
}

/// Settings of a [`Pipeline`].
struct StreamConfig {
    /// Chunks buffered on each channel. Default [`DEFAULT_CAPACITY`].
    capacity: usize,
    /// Coalesce small chunks before the sink up to this many rows. Default 0 (off).
    coalesce_rows: usize,
    /// When coalescing, hand buffered rows to the sink at least this often. Default 100 ms.
    flush_every: Duration,
    /// Cooperative stop flag. Default: none.
    cancel: Option<Arc<AtomicBool>>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            capacity: DEFAULT_CAPACITY,
            coalesce_rows: 0,
            flush_every: Duration::from_millis(100),
            cancel: None,
        }
    }
}

/// A streaming run: one thread per stage, bounded channels between them, so a slow sink slows
/// the source and memory stays near `capacity × chunk bytes` per edge.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch};
/// use arrow_schema::{DataType, Field, Schema};
/// use pipeline_core::{Chunk, MemorySink, VecSource};
/// use pipeline_stream::{Pipeline, map_stage};
///
/// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
/// let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
/// let chunk = Chunk::with_first_line(batch, 0, 0, 2)?;
/// let source = VecSource::new(chunk.schema(), vec![chunk]);
/// let report = Pipeline::new(Box::new(source))
///     .stage(map_stage("identity", Ok))
///     .sink(Box::new(MemorySink::default()))
///     .run()?;
/// assert_eq!(report.ledger.written, 3);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
pub struct Pipeline {
    source: Box<dyn Source>,
    stages: Vec<Box<dyn Stage>>,
    sink: Option<Box<dyn Sink>>,
    reject_sink: Option<Box<dyn RejectSink>>,
    config: StreamConfig,
}

enum Up {
    Chunk(Chunk),
}

impl Pipeline {
    /// A pipeline reading `source`.
    pub fn new(source: Box<dyn Source>) -> Self {
        Pipeline {
            source,
            stages: Vec::new(),
            sink: None,
            reject_sink: None,
            config: StreamConfig::default(),
        }
    }

    /// Appends a stage.
    pub fn stage(mut self, stage: Box<dyn Stage>) -> Self {
        self.stages.push(stage);
        self
    }

    /// Sets the main sink (without one, output chunks are counted and dropped).
    pub fn sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Sets the quarantine sink (without one, rejects are counted in the ledger and dropped).
    pub fn reject_sink(mut self, sink: Box<dyn RejectSink>) -> Self {
        self.reject_sink = Some(sink);
        self
    }

    /// Chunks buffered on each channel (at least 1).
    pub fn capacity(mut self, n: usize) -> Self {
        self.config.capacity = n.max(1);
        self
    }

    /// Coalesces small chunks from one source into chunks of up to `rows` rows before the
    /// sink (0 = off), so a live source's tiny chunks do not become tiny row groups.
    pub fn coalesce_rows(mut self, rows: usize) -> Self {
        self.config.coalesce_rows = rows;
        self
    }

    /// Live mode: rows waiting in the coalescing buffer reach the sink at least this often.
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.config.flush_every = every;
        self
    }

    /// A flag that stops the run cleanly (the sink is aborted, the run returns
    /// [`Error::Cancelled`]).
    pub fn cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.config.cancel = Some(flag);
        self
    }

    /// Runs to completion.
    pub fn run(self) -> Result<StreamReport> {
        let on_chunk: ChunkHook = Box::new(|_| Ok(()));
        self.run_with(on_chunk)
    }

    /// Runs, calling `on_chunk` with every chunk right before it goes to the sink (the async
    /// stream and latency measurements use this).
    pub fn run_with(self, mut on_chunk: ChunkHook) -> Result<StreamReport> {
        let start = Instant::now();
        let Pipeline {
            mut source,
            stages,
            sink,
            reject_sink,
            config,
        } = self;
        let failed = Arc::new(AtomicBool::new(false));
        let cancel = config.cancel.clone().unwrap_or_default();
        let (rej_tx, rej_rx) = bounded::<Vec<Reject>>(REJECT_CAPACITY);

        let reject_thread = thread::Builder::new()
            .name("tickpipe-rejects".into())
            .spawn(move || -> Result<SinkSummary> {
                let mut sink = reject_sink;
                for batch in rej_rx {
                    if let Some(s) = sink.as_mut() {
                        s.write(&batch)?;
                    }
                }
                match sink.as_mut() {
                    Some(s) => s.finish(),
                    None => Ok(SinkSummary::default()),
                }
            })
            .map_err(|e| Error::Internal(format!("cannot spawn thread: {e}")))?;

        let (tx0, mut rx) = bounded::<Up>(config.capacity);
        let src_failed = failed.clone();
        let src_rej = rej_tx.clone();
        let src_cancel = cancel.clone();
        let source_thread = thread::Builder::new()
            .name("tickpipe-source".into())
            .spawn(move || -> Result<Ledger> {
                let mut ledger = Ledger::default();
                let r = (|| {
                    while let Some(item) = source.next() {
                        if src_cancel.load(Ordering::Relaxed) || src_failed.load(Ordering::Relaxed)
                        {
                            return Err(Error::Cancelled);
                        }
                        let chunk = item?;
                        let rejects = source.drain_rejects();
                        account_source_rejects(&mut ledger, &rejects);
                        ledger.add_read(chunk.num_rows() as u64);
                        if !rejects.is_empty() && src_rej.send(rejects).is_err() {
                            return Ok(());
                        }
                        if tx0.send(Up::Chunk(chunk)).is_err() {
                            return Ok(());
                        }
                    }
                    let rejects = source.drain_rejects();
                    account_source_rejects(&mut ledger, &rejects);
                    if !rejects.is_empty() {
                        let _ = src_rej.send(rejects);
                    }
                    Ok(())
                })();
                if r.is_err() {
                    src_failed.store(true, Ordering::Relaxed);
                }
                r.map(|()| ledger)
            })
            .map_err(|e| Error::Internal(format!("cannot spawn thread: {e}")))?;

        let mut stage_threads = Vec::new();
        for mut stage in stages {
            let (tx, next_rx) = bounded::<Up>(config.capacity);
            let in_rx = std::mem::replace(&mut rx, next_rx);
            let failed = failed.clone();
            let rej = rej_tx.clone();
            let name = stage.name().to_string();
            let h = thread::Builder::new()
                .name(format!("tickpipe-{name}"))
                .spawn(move || -> Result<(String, StageMetrics, Ledger)> {
                    let r = run_stage_thread(stage.as_mut(), in_rx, tx, rej, &failed);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    r.map(|(m, l)| (stage.name().to_string(), m, l))
                })
                .map_err(|e| Error::Internal(format!("cannot spawn thread `{name}`: {e}")))?;
            stage_threads.push(h);
        }
        drop(rej_tx);

        // The sink runs on the calling thread.
        let mut sink = sink;
        let mut written = 0u64;
        let mut first_err: Option<Error> = None;
        if let Err(e) = drive_sink(&mut sink, rx, &config, &failed, &mut written, &mut on_chunk) {
            failed.store(true, Ordering::Relaxed);
            first_err = Some(e);
        }
        let mut ledger = Ledger::default();
        match join(source_thread, "source") {
            Ok(l) => ledger.merge(&l),
            Err(e) => keep_first(&mut first_err, e),
        }
        let mut metrics = Vec::new();
        for h in stage_threads {
            match join(h, "stage") {
                Ok((n, m, l)) => {
                    ledger.merge(&l);
                    metrics.push((n, m));
                }
                Err(e) => keep_first(&mut first_err, e),
            }
        }
        let rejects = match join(reject_thread, "reject writer") {
            Ok(s) => s,
            Err(e) => {
                keep_first(&mut first_err, e);
                SinkSummary::default()
            }
        };
        let cancelled = cancel.load(Ordering::Relaxed);
        if first_err.is_some() || cancelled {
            if let Some(s) = sink.as_mut() {
                s.abort()?;
            }
            return Err(first_err.unwrap_or(Error::Cancelled));
        }
        let sink_summary = match sink.as_mut() {
            Some(s) => s.finish()?,
            None => SinkSummary::default(),
        };
        ledger.add_written(written);
        ledger.check_balance()?;
        Ok(StreamReport {
            ledger,
            stages: metrics,
            sink: sink_summary,
            rejects,
            wall: start.elapsed(),
        })
    }
}

/// Counts a source's quarantined rows: they were read, and went to quarantine.
fn account_source_rejects(ledger: &mut Ledger, rejects: &[Reject]) {
    for r in rejects {
        ledger.add_read(1);
        match r.kind {
            pipeline_core::RejectKind::Quarantined => ledger.add_quarantined(&r.reason, 1),
            pipeline_core::RejectKind::Removed => ledger.add_removed(&r.reason, 1),
        }
    }
}

fn run_stage_thread(
    stage: &mut dyn Stage,
    rx: Receiver<Up>,
    tx: Sender<Up>,
    rej: Sender<Vec<Reject>>,
    failed: &AtomicBool,
) -> Result<(StageMetrics, Ledger)> {
    let mut m = StageMetrics::default();
    let mut ledger = Ledger::default();
    let mut out = Emitter::default();
    let name = stage.name().to_string();
    for Up::Chunk(chunk) in rx.iter() {
        m.rows_in += chunk.num_rows() as u64;
        m.bytes_in += chunk.memory_size() as u64;
        m.chunks += 1;
        let t = Instant::now();
        guarded(&name, || stage.process(chunk, &mut out))?;
        m.busy += t.elapsed();
        if !forward(&mut out, &mut m, &mut ledger, &tx, &rej) {
            return Ok((m, ledger));
        }
    }
    if failed.load(Ordering::Relaxed) {
        // Upstream failed: the input is incomplete, so flushing held state would be wrong.
        return Ok((m, ledger));
    }
    let t = Instant::now();
    guarded(&name, || stage.finish(&mut out))?;
    m.busy += t.elapsed();
    forward(&mut out, &mut m, &mut ledger, &tx, &rej);
    Ok((m, ledger))
}

/// Runs `f`, turning a panic into an [`Error::Internal`] naming the stage.
pub(crate) fn guarded<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Error::Internal(format!(
            "stage `{name}` panicked: {}",
            panic_message(&p)
        ))),
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

/// Sends the emitter's chunks and rejects on; false when downstream has gone away.
fn forward(
    out: &mut Emitter,
    m: &mut StageMetrics,
    ledger: &mut Ledger,
    tx: &Sender<Up>,
    rej: &Sender<Vec<Reject>>,
) -> bool {
    ledger.merge(&out.take_ledger());
    let rejects = out.take_rejects();
    if !rejects.is_empty() && rej.send(rejects).is_err() {
        return false;
    }
    for c in out.take_chunks() {
        m.rows_out += c.num_rows() as u64;
        m.bytes_out += c.memory_size() as u64;
        if tx.send(Up::Chunk(c)).is_err() {
            return false;
        }
    }
    true
}

fn drive_sink(
    sink: &mut Option<Box<dyn Sink>>,
    rx: Receiver<Up>,
    config: &StreamConfig,
    failed: &AtomicBool,
    written: &mut u64,
    on_chunk: &mut ChunkHook,
) -> Result<()> {
    let mut write = |c: &Chunk| -> Result<()> {
        if failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        on_chunk(c)?;
        *written += c.num_rows() as u64;
        if let Some(s) = sink.as_mut() {
            s.write(c)?;
        }
        Ok(())
    };
    if config.coalesce_rows == 0 {
        for Up::Chunk(c) in rx.iter() {
            write(&c)?;
        }
        return Ok(());
    }
    let mut pending: Vec<Chunk> = Vec::new();
    let mut rows = 0usize;
    let mut oldest = Instant::now();
    let mut flush = |pending: &mut Vec<Chunk>, rows: &mut usize| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let same_source = pending.iter().all(|c| c.source() == pending[0].source());
        let same_schema = pending.iter().all(|c| c.schema() == pending[0].schema());
        if same_source && same_schema {
            let c = Chunk::concat(pending)?;
            write(&c)?;
        } else {
            for c in pending.iter() {
                write(c)?;
            }
        }
        pending.clear();
        *rows = 0;
        Ok(())
    };
    loop {
        let wait = config.flush_every.saturating_sub(oldest.elapsed());
        match rx.recv_timeout(if pending.is_empty() {
            config.flush_every
        } else {
            wait
        }) {
            Ok(Up::Chunk(c)) => {
                if pending.is_empty() {
                    oldest = Instant::now();
                }
                if pending
                    .first()
                    .is_some_and(|p| p.source() != c.source() || p.schema() != c.schema())
                {
                    flush(&mut pending, &mut rows)?;
                    oldest = Instant::now();
                }
                rows += c.num_rows();
                pending.push(c);
                if rows >= config.coalesce_rows {
                    flush(&mut pending, &mut rows)?;
                }
            }
            Err(RecvTimeoutError::Timeout) => flush(&mut pending, &mut rows)?,
            Err(RecvTimeoutError::Disconnected) => {
                return flush(&mut pending, &mut rows);
            }
        }
    }
}

fn join<T>(h: thread::JoinHandle<Result<T>>, what: &str) -> Result<T> {
    match h.join() {
        Ok(r) => r,
        Err(p) => Err(Error::Internal(format!(
            "{what} thread panicked: {}",
            panic_message(&p)
        ))),
    }
}

fn keep_first(slot: &mut Option<Error>, e: Error) {
    // A thread that stopped because another failed reports `Cancelled`; the real cause wins.
    match slot {
        None => *slot = Some(e),
        Some(Error::Cancelled) if !matches!(e, Error::Cancelled) => *slot = Some(e),
        _ => {}
    }
}
