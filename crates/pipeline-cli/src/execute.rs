//! Runs a built pipeline with the CLI's front-end concerns: Ctrl-C, the progress display,
//! the printed summary and the exit outcome. No pipeline policy lives here.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tickpipe::{PipelineBuilder, RunReport};

use crate::Outcome;
use crate::progress::{Progress, Tick};

/// The stop flag, set by Ctrl-C. A second Ctrl-C exits at once.
pub fn cancel_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        if let Err(e) = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!(
                "tickpipe: interrupted; finishing the current work (Ctrl-C again to stop now)"
            );
        }) {
            tracing::warn!("cannot install the Ctrl-C handler: {e}");
        }
        flag
    })
    .clone()
}

/// Builds and runs `builder` with Ctrl-C and progress wired in, then prints the summary
/// (unless `quiet`) and writes `--summary-json`.
pub fn execute(
    builder: PipelineBuilder,
    quiet: bool,
    summary_json: Option<&Path>,
) -> anyhow::Result<(RunReport, Outcome)> {
    let progress = Arc::new(Progress::new(None, quiet));
    let p = progress.clone();
    let pipeline = builder
        .cancel(cancel_flag())
        .progress(Arc::new(move |s| {
            p.update(Tick {
                rows: s.rows,
                bytes: s.bytes_read,
                bytes_total: Some(s.bytes_total),
            })
        }))
        .build()?;
    let out = pipeline.output_dir().map(Path::to_path_buf);
    let result = pipeline.run();
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let err = match e {
                tickpipe::Error::Cancelled => anyhow::Error::new(tickpipe::Error::Cancelled)
                    .context("interrupted: completed segments are kept; run again with --resume"),
                e => e.into(),
            };
            // What was committed is said after the error, and written for scripts.
            if let Err(w) = crate::print::failed_run(
                out.as_deref(),
                &crate::message(&err),
                crate::exit_code(&err),
                summary_json,
            ) {
                tracing::warn!("cannot write the summary of the failed run: {w}");
            }
            return Err(err);
        }
    };
    if !quiet {
        crate::print::print_human(&report);
    }
    if let Some(path) = summary_json {
        crate::print::write_json(&report, path)?;
    }
    if let Some(msg) = &report.quarantine_limit {
        // Said even with -q: the run is not a success.
        eprintln!("tickpipe: error: {msg}");
    }
    let outcome = if report.succeeded() {
        Outcome::Ok
    } else {
        Outcome::SomeFilesFailed
    };
    Ok((report, outcome))
}
