//! `run`: a whole run, on a Rust thread, while the calling thread waits with the GIL
//! released in 100 ms slices; between slices it runs Python's signal handlers (so Ctrl-C in
//! a terminal or a notebook cancels the run, waits for it to stop and re-raises
//! `KeyboardInterrupt`) and hands the latest progress to the callback.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pipeline_core::Error;
use pyo3::prelude::*;
use tickpipe::{Output, Pipeline, PipelineBuilder, Validation};

use crate::errors::to_py;

/// How long the waiting thread sleeps between looks at signals and progress.
const SLICE: Duration = Duration::from_millis(100);

/// The latest progress: rows, bytes read, bytes in all.
type Snapshot = Arc<Mutex<Option<(u64, u64, u64)>>>;

/// The output a Python `out` names: none → discarded, a path with a data-file extension
/// (`.parquet`, `.csv`, `.arrow`) → that file, else a dataset folder.
pub(crate) fn output_for(out: Option<PathBuf>) -> Output {
    out.map_or(Output::Discard, Output::file_or_dataset)
}

/// Runs the builder to its end on a Rust thread; see the module docs.
pub(crate) fn run_builder(
    py: Python<'_>,
    builder: PipelineBuilder,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let cancel = Arc::new(AtomicBool::new(false));
    let snapshot: Snapshot = Arc::default();
    let snap = snapshot.clone();
    let builder = builder.cancel(cancel.clone()).progress(Arc::new(move |s| {
        if let Ok(mut g) = snap.lock() {
            *g = Some((s.rows, s.bytes_read, s.bytes_total));
        }
    }));
    let pipeline = py.detach(|| builder.build()).map_err(|e| to_py(py, e))?;
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let signal = done.clone();
    let handle = std::thread::Builder::new()
        .name("tickpipe-run".into())
        .spawn(move || {
            let result = pipeline.run();
            let (lock, cv) = &*signal;
            if let Ok(mut finished) = lock.lock() {
                *finished = true;
            }
            cv.notify_all();
            result
        })
        .map_err(|e| {
            to_py(
                py,
                Error::Internal(format!("cannot start the run thread: {e}")),
            )
        })?;
    // Set when the waiting thread must stop the run: Ctrl-C, or the progress callback
    // raised.
    let mut interrupted: Option<PyErr> = None;
    loop {
        let finished = py.detach(|| {
            let (lock, cv) = &*done;
            match lock.lock() {
                Ok(g) if *g => true,
                Ok(g) => cv.wait_timeout(g, SLICE).map(|(g, _)| *g).unwrap_or(true),
                Err(_) => true,
            }
        });
        if let Some(cb) = &progress {
            let latest = snapshot.lock().ok().and_then(|mut g| g.take());
            if let Some((rows, bytes, total)) = latest
                && let Err(e) = cb.call1((rows, bytes, total))
            {
                interrupted = Some(e);
                break;
            }
        }
        if finished {
            break;
        }
        if let Err(e) = py.check_signals() {
            interrupted = Some(e);
            break;
        }
    }
    if interrupted.is_some() {
        // The run stops at its next check (a chunk boundary) and leaves its output
        // resumable; waiting for it here means no thread is left writing.
        cancel.store(true, Ordering::SeqCst);
    }
    let result = py
        .detach(|| handle.join())
        .unwrap_or_else(|_| Err(Error::Internal("the run thread panicked".into())));
    if let Some(e) = interrupted {
        return Err(e);
    }
    result.and_then(|r| r.to_json()).map_err(|e| to_py(py, e))
}

/// Runs a pipeline (see `tickpipe.run` and `tickpipe.validate` in Python) and returns the
/// run report as JSON.
#[pyfunction]
#[pyo3(signature = (
    inputs, out = None, config = None, *, overwrite = false, resume = false, bars = None,
    label = None, validate = false, rules = None, report = None, history = None,
    quarantine = None, shard = None, progress = None,
))]
#[allow(clippy::too_many_arguments)] // Keyword arguments of one Python function.
pub(crate) fn run(
    py: Python<'_>,
    inputs: Vec<String>,
    out: Option<PathBuf>,
    config: Option<&str>,
    overwrite: bool,
    resume: bool,
    bars: Option<String>,
    label: Option<String>,
    validate: bool,
    rules: Option<PathBuf>,
    report: Option<PathBuf>,
    history: Option<PathBuf>,
    quarantine: Option<PathBuf>,
    shard: Option<(usize, usize)>,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let cfg = crate::config::from_json_or_default(config).map_err(|e| to_py(py, e))?;
    let mut b = Pipeline::builder()
        .inputs(inputs)
        .config(cfg)
        .output(output_for(out))
        .overwrite(overwrite)
        .resume(resume);
    if let Some(spec) = bars {
        b = b.bars(spec).label("bars");
    }
    if validate {
        b = b
            .validation(Validation::Standalone {
                rules,
                report,
                history,
            })
            .label("validate");
    }
    if let Some(q) = quarantine {
        b = b.quarantine_file(q);
    }
    if let Some((k, n)) = shard {
        b = b.shard(k, n);
    }
    if let Some(l) = label {
        b = b.label(l);
    }
    run_builder(py, b, progress)
}
