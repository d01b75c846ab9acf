//! Live (`--follow`) runs into a dataset folder: a first run, and a later run of the same
//! command that continues where the last one stopped.
//!
//! Ctrl-C ends a live run cleanly: the followed file's source stops after the last complete
//! line, the engine commits what it read (data and quarantine) and records that line and
//! byte, with hashes of what was read ([`SourcePosition`]); `_SUCCESS` marks the folder
//! finished. Running the same command again continues from that byte and line with each
//! symbol's stage state from before the end-of-input flush (as an incremental run does), so
//! the folder ends up as one uninterrupted run over the file would have made it. A live run
//! killed outright (`kill -9`) commits nothing of the part it was reading; `--resume`
//! restarts that part from the last recorded stop (or the start of the file).

use std::path::Path;

use pipeline_core::{Error, Result, SourcePosition};

use crate::builder::Pipeline;
use crate::output::MANIFEST;
use crate::record::{RecordedRun, RunRecord};
use crate::report::LiveSpan;

impl Pipeline {
    /// Decides what a live run into `out` does given the run already there (`prior`, and
    /// whether it is `complete`): start fresh, continue where it stopped, or refuse with the
    /// reason before anything is touched. Saves `now` as the folder's record.
    pub(crate) fn prepare_live(
        &mut self,
        out: &Path,
        prior: Option<RunRecord>,
        now: &mut RunRecord,
        complete: bool,
    ) -> Result<()> {
        let Some(prior) = prior else {
            if self.s.resume {
                return Err(Error::Usage(format!(
                    "cannot resume: {} holds no interrupted run",
                    out.display()
                )));
            }
            if crate::run::has_ours(out) {
                return Err(Error::Usage(format!(
                    "{} holds output of an earlier tickpipe run; use --overwrite to replace \
                     it, or a new folder",
                    out.display()
                )));
            }
            now.save(out)?;
            return Ok(());
        };
        // The followed file grows between runs: everything else must match.
        let mut diffs = Vec::new();
        let same_file = prior.inputs.len() == 1
            && now.inputs.len() == 1
            && prior.inputs[0].path == now.inputs[0].path;
        if !same_file {
            diffs.push(format!(
                "the input was {}, is now {}",
                names(&prior),
                names(now)
            ));
        }
        diffs.extend(prior.setup_differences(now));
        if !diffs.is_empty() {
            return Err(Error::Usage(format!(
                "{} holds a run of another configuration or input ({}); a live run continues \
                 only the same command on the same file. Use --overwrite to replace it, or a \
                 new folder",
                out.display(),
                diffs.join("; ")
            )));
        }
        if !complete && !self.s.resume {
            return Err(Error::Usage(format!(
                "{} holds an interrupted live run; continue it with --resume (it reads again \
                 from where it was last stopped), or start over with --overwrite",
                out.display()
            )));
        }
        let from = pipeline_parallel::committed_positions(&out.join(MANIFEST))?
            .last()
            .map(|p| p.1);
        let file = &self.inputs.files[0];
        if complete && from.is_none() {
            return Err(Error::Usage(format!(
                "{} holds a finished live run of {} that did not record where it stopped (it \
                 read from a stream, or was written by an older tickpipe); start over with \
                 --overwrite",
                out.display(),
                file.display_name()
            )));
        }
        if let Some(p) = &from
            && let Some(change) = pipeline_io::check_position(&file.path, p)?
        {
            return Err(Error::Usage(format!(
                "cannot continue the live run in {}: {} changed: {change}; nothing was \
                 changed. Start over with --overwrite (or a new folder)",
                out.display(),
                file.display_name()
            )));
        }
        now.workers = prior.workers;
        now.checkpoint_bytes = prior.checkpoint_bytes;
        now.history = prior.history.clone();
        if complete {
            now.history.push(RecordedRun::now(&now.inputs, 1));
        }
        match &from {
            Some(p) => tracing::info!(
                "{}: continuing the live run of {} from line {} (byte {})",
                out.display(),
                file.display_name(),
                p.line,
                p.offset
            ),
            None => tracing::info!(
                "{}: the interrupted live run committed nothing; reading {} from its start",
                out.display(),
                file.display_name()
            ),
        }
        crate::run::remove_marker(out)?;
        now.save(out)?;
        self.s.resume = true;
        self.live_from = from;
        Ok(())
    }
}

/// Where the live run into `out` that started at `from` (`None`: the start of the file)
/// started and, once it committed, where it stopped.
pub(crate) fn live_span(out: &Path, from: Option<SourcePosition>) -> Result<LiveSpan> {
    let at = |p: &SourcePosition| (p.line, p.offset);
    let stopped = pipeline_parallel::committed_positions(&out.join(MANIFEST))?
        .last()
        .map(|p| at(&p.1))
        .filter(|s| Some(*s) != from.as_ref().map(at));
    Ok(LiveSpan {
        started: from.as_ref().map_or((1, 0), at),
        stopped,
    })
}

fn names(r: &RunRecord) -> String {
    r.inputs
        .iter()
        .map(|i| i.path.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
