//! [`RunStream`]: the streaming form of a run. The pipeline runs on a background thread and
//! its output batches come to the caller through a bounded channel instead of being written,
//! so memory stays bounded however large the input (the Python package, tests and embedders
//! consume it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use crossbeam_channel::{Receiver, Sender, bounded};
use pipeline_core::{Chunk, Error, Result, Sink, SinkSummary};
use pipeline_io::WriteOptions;
use pipeline_parallel::Runtime;

use crate::builder::Pipeline;
use crate::output::Output;
use crate::report::RunReport;

/// Batches waiting for the caller. Each worker blocks once it is this far ahead, so the
/// stream holds at most this many output batches (plus one per worker being built) besides
/// the engine's own bounded buffers.
const BATCHES_IN_FLIGHT: usize = 4;

/// Output batches of a running pipeline, in the order workers produce them (each symbol's
/// rows in time order; symbols of different workers interleave). Iterate it, then call
/// [`RunStream::finish`] for the [`RunReport`]. Dropping it early stops the run.
///
/// Rows rejected during the run go to the quarantine file of the pipeline's output
/// (`OUT/quarantine.parquet` for a dataset output) and are always counted in the report's
/// ledger; with `Output::Discard` they are counted only. Nothing is written to the dataset.
pub struct RunStream {
    rx: Option<Receiver<Result<RecordBatch>>>,
    handle: Option<JoinHandle<Result<RunReport>>>,
    stop: Arc<AtomicBool>,
    schema: Option<SchemaRef>,
    /// A batch taken early by [`RunStream::schema`], handed out next.
    pending: Option<Result<RecordBatch>>,
}

impl std::fmt::Debug for RunStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunStream").finish_non_exhaustive()
    }
}

/// A sink that hands each output batch to the stream's channel.
struct ChannelSink {
    tx: Sender<Result<RecordBatch>>,
    opts: WriteOptions,
    stop: Arc<AtomicBool>,
    rows: u64,
}

impl Sink for ChannelSink {
    fn write(&mut self, chunk: &Chunk) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let batch = self.opts.output_batch(chunk)?;
        self.rows += batch.num_rows() as u64;
        if self.tx.send(Ok(batch)).is_err() {
            // The caller dropped the stream: stop the run.
            self.stop.store(true, Ordering::SeqCst);
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary {
            rows: self.rows,
            ..Default::default()
        })
    }
}

impl RunStream {
    pub(crate) fn start(p: Pipeline) -> Result<RunStream> {
        if p.s.resume {
            return Err(Error::Usage(
                "a streamed run cannot be resumed: it writes no dataset".into(),
            ));
        }
        let stop = p.s.cancel.clone().unwrap_or_default();
        let (tx, rx) = bounded::<Result<RecordBatch>>(BATCHES_IN_FLIGHT);
        let workers = p.workers;
        let rt = match &p.s.runtime {
            Some(rt) => rt.clone(),
            None => Runtime::new(workers)?,
        };
        let opts = p.writer_options(workers);
        let (runner, table, _) = p.runner(workers, &stop, &rt)?;
        let quarantine = p.s.output.quarantine_path();
        // A dataset folder gets its quarantine written: one writer per folder.
        let lock = match &p.s.output {
            Output::Dataset(out) => Some(crate::lock::OutputLock::acquire(out)?),
            _ => None,
        };
        let mut runner = runner;
        if let Some(q) = &quarantine {
            if let Some(parent) = q.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            runner = runner.reject_sink(pipeline_io::create_quarantine_sink(q, table)?);
        }
        let sink_tx = tx.clone();
        let sink_stop = stop.clone();
        let runner = runner.sink_factory(Arc::new(move |_w, _s| {
            Ok(Box::new(ChannelSink {
                tx: sink_tx.clone(),
                opts: opts.clone(),
                stop: sink_stop.clone(),
                rows: 0,
            }) as Box<dyn Sink>)
        }));
        let run = runner.build()?;
        let started = Instant::now();
        let handle = rt.spawn("tickpipe-stream", move || {
            let _lock = lock;
            let result = run.run();
            let report = match result {
                Ok(r) => r,
                Err(e) => {
                    // A caller still iterating sees the error too; `finish` returns it.
                    let _ = tx.send(Err(crate::error::duplicate(&e)));
                    return Err(e);
                }
            };
            drop(tx);
            let reports = quarantine.into_iter().filter(|q| q.exists()).collect();
            Ok(p.report(&report, Vec::new(), reports, started))
        })?;
        Ok(RunStream {
            rx: Some(rx),
            handle: Some(handle),
            stop,
            schema: None,
            pending: None,
        })
    }

    /// The schema of the output batches: waits for the first batch when none has come yet
    /// (it is kept and handed out next). `Ok(None)` when the run produced no rows.
    pub fn schema(&mut self) -> Result<Option<SchemaRef>> {
        if self.schema.is_none() && self.pending.is_none() {
            match self.rx.as_ref().and_then(|rx| rx.recv().ok()) {
                Some(Ok(b)) => {
                    self.schema = Some(b.schema());
                    self.pending = Some(Ok(b));
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(None),
            }
        }
        Ok(self.schema.clone())
    }

    /// Stops the run early (the same as dropping the stream, but the report can still be
    /// had from [`RunStream::finish`], which then returns [`Error::Cancelled`]).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for the run to end and returns its report. Batches not yet taken are dropped
    /// (their rows are still counted as written: the run produced them); to keep them,
    /// iterate to the end first.
    pub fn finish(mut self) -> Result<RunReport> {
        self.join()
    }

    fn join(&mut self) -> Result<RunReport> {
        // Drain what is left so the workers can finish.
        if let Some(rx) = self.rx.take() {
            for _ in rx.iter() {}
        }
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(Error::Internal("the streaming run panicked".into()))),
            None => Err(Error::Usage("the stream was already finished".into())),
        }
    }
}

impl Iterator for RunStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        let item = self.rx.as_ref()?.recv().ok()?;
        if let Ok(b) = &item
            && self.schema.is_none()
        {
            self.schema = Some(b.schema());
        }
        Some(item)
    }
}

impl Drop for RunStream {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = self.join();
        }
    }
}
