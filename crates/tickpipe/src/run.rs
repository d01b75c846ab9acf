//! [`Pipeline::run`]: the output policy around the engine. For a dataset folder:
//!
//! 1. an exclusive lock on the folder for the run's lifetime (a second run fails fast);
//! 2. the run record (`_run.json`: inputs with fingerprints, configuration, stages, the
//!    run's own settings) decides what the folder may become: a fresh run needs an empty
//!    folder (or `overwrite`); the same run over the same inputs is already done; a resume
//!    continues only when everything matches and otherwise refuses, naming what changed,
//!    before anything is touched; new inputs after the recorded ones are appended, a changed
//!    history is processed again from the last segment end before the change, and changed
//!    feature parameters recompute the feature columns from the dataset (`refeature`);
//! 3. data and quarantine are committed together, segment by segment (one quarantine file
//!    per segment: `quarantine.parquet`, `quarantine-00001.parquet`, … read as one table
//!    with `quarantine*.parquet`); a resume removes only files this run owns that the
//!    manifest does not list (`part-N-M` data files and quarantine files of uncommitted
//!    segments, and their temporary files), never anything else;
//! 4. the normalisation post-pass;
//! 5. `_SUCCESS` (the run report as JSON) written last, so readers and schedulers can tell a
//!    finished dataset from a crashed one ([`output_status`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use pipeline_core::{Error, Result, Sink, StageOrder};
use pipeline_parallel::{EngineEvent, Runtime};
use serde::Serialize;

use crate::builder::{Pipeline, Settings};
use crate::lock::OutputLock;
use crate::output::{DATA_DIR, MANIFEST, NullSink, Output};
use crate::record::{RUN_RECORD, RunRecord};
use crate::report::RunReport;

/// The completion marker written last into a dataset folder (Spark and Hadoop's name); it
/// holds the run report as JSON.
pub const SUCCESS: &str = "_SUCCESS";

/// A point in a run, for observers and crash tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An event of the engine's commit protocol.
    Engine(EngineEvent),
    /// The normalisation post-pass has rewritten `files` files so far.
    Normalized {
        /// Files rewritten.
        files: usize,
    },
    /// A feature re-run (only feature parameters changed) has rewritten `files` files so far.
    Refeatured {
        /// Files rewritten.
        files: usize,
    },
}

/// Receives [`Event`]s.
pub type EventFn = Arc<dyn Fn(&Event) + Send + Sync>;

/// What a dataset folder holds, for `tickpipe inspect OUT`.
#[derive(Debug, Clone, Serialize)]
pub struct OutputStatus {
    /// `complete`, `running`, `interrupted` or `unknown` (tickpipe files without a record).
    pub state: String,
    /// The pid of the run writing it now, when `running`.
    pub running_pid: Option<u32>,
    /// The run record, when there is one.
    pub record: Option<RunRecord>,
    /// The report of the finished run (from `_SUCCESS`), when `complete`.
    pub report: Option<RunReport>,
    /// What an `interrupted` run committed before it stopped (its manifest), when anything.
    pub committed: Option<pipeline_parallel::CommittedSummary>,
    /// When the interrupted run is a re-run of the feature columns (only feature parameters
    /// changed): the configuration keys it changes. The same command completes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refeature: Option<Vec<String>>,
}

/// What `dir` holds as a tickpipe output folder; `None` when it is not one.
pub fn output_status(dir: &Path) -> Result<Option<OutputStatus>> {
    let record = RunRecord::load(dir)?;
    let marker = dir.join(SUCCESS);
    let has_ours = record.is_some() || marker.exists() || dir.join(MANIFEST).exists();
    if !has_ours {
        return Ok(None);
    }
    let running_pid = OutputLock::holder(dir);
    let report = if marker.exists() {
        let text = std::fs::read_to_string(&marker).map_err(|e| Error::io(&marker, e))?;
        serde_json::from_str(&text).ok()
    } else {
        None
    };
    let state = if running_pid.is_some() {
        "running"
    } else if report.is_some() {
        "complete"
    } else if record.is_some() {
        "interrupted"
    } else {
        "unknown"
    };
    let committed = if state == "interrupted" {
        // A manifest that cannot be read leaves the state as it is, without the figures.
        pipeline_parallel::committed_summary(&dir.join(MANIFEST)).unwrap_or_default()
    } else {
        None
    };
    #[cfg(feature = "prep")]
    let refeature = match state {
        "interrupted" => crate::refeature::pending(dir)
            .ok()
            .flatten()
            .map(|(_, keys)| keys),
        _ => None,
    };
    #[cfg(not(feature = "prep"))]
    let refeature = None;
    Ok(Some(OutputStatus {
        state: state.into(),
        running_pid,
        record,
        report,
        committed,
        refeature,
    }))
}

/// For a resume: take the interrupted run's settings from its record (configuration,
/// checkpoint interval, worker count), keeping what the caller asked for only where it
/// cannot change the output, and refusing, with the keys named, where it would.
pub(crate) fn adopt_recorded_settings(s: &mut Settings, out: &Path) -> Result<()> {
    let Some(prior) = RunRecord::load(out)? else {
        if out.join(MANIFEST).exists() {
            return Err(Error::Usage(format!(
                "cannot resume {}: it was written by an older tickpipe without a run record; \
                 start over with --overwrite",
                out.display()
            )));
        }
        return Err(Error::Usage(format!(
            "cannot resume: {} holds no interrupted run",
            out.display()
        )));
    };
    let (mut config, mut conflicts) = crate::record::resume_config(&prior.config()?, &s.config)?;
    match (s.checkpoint_every, prior.checkpoint_bytes) {
        (Some(a), Some(b)) if a != b => conflicts.push(format!(
            "--checkpoint-every: the interrupted run used {b} bytes, this run asks for {a}"
        )),
        (Some(a), None) => conflicts.push(format!(
            "--checkpoint-every: the interrupted run used the default, this run asks for {a} bytes"
        )),
        _ => s.checkpoint_every = prior.checkpoint_bytes,
    }
    if s.config.pipeline.max_workers != 0 && s.config.pipeline.max_workers != prior.workers {
        conflicts.push(format!(
            "--workers: the interrupted run used {}, this run asks for {} (stage state is kept per worker)",
            prior.workers, s.config.pipeline.max_workers
        ));
    }
    if !conflicts.is_empty() {
        return Err(Error::Usage(format!(
            "cannot resume {}: {}; resume without those settings, or start over with --overwrite",
            out.display(),
            conflicts.join("; ")
        )));
    }
    config.pipeline.max_workers = prior.workers;
    s.config = config;
    if s.shard.is_none() {
        s.shard = prior.shard;
    }
    Ok(())
}

impl Pipeline {
    /// Runs to the end and writes the output, with the output policy described in this
    /// module. Returns [`Error::Cancelled`] when the stop flag cancelled the run (committed
    /// segments are kept for a resume), [`Error::Busy`] when another run holds the folder.
    pub fn run(self) -> Result<RunReport> {
        let started = Instant::now();
        crate::alloc::release_near_limit(self.s.config.pipeline.memory_limit.0);
        match self.s.output.clone() {
            Output::Dataset(out) => self.run_dataset(&out, started),
            Output::File(path) => {
                if path.exists() && !self.s.overwrite {
                    return Err(Error::Usage(format!(
                        "{} exists; use --overwrite to replace it",
                        path.display()
                    )));
                }
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                self.run_engine(None, started)
            }
            Output::Discard => self.run_engine(None, started),
        }
    }

    /// The record this run will write.
    fn record(&self, workers: usize) -> Result<RunRecord> {
        let stages = self
            .stages
            .iter()
            .map(|f| f().map(|s| (s.name().to_string(), s.key().0)))
            .collect::<Result<Vec<_>>>()?;
        // A trades-and-quotes run records its quotes files (with fingerprints) after the
        // trades: a changed quotes file is a changed input.
        #[allow(unused_mut)]
        let mut files = self.inputs.files.clone();
        #[cfg(feature = "prep")]
        if let Some(t) = &self.taq {
            files.extend(t.quote_files().iter().cloned());
        }
        RunRecord::new(
            &self.s.label,
            &files,
            &self.s.config,
            stages,
            workers,
            self.s.checkpoint_every,
            self.s.shard,
        )
    }

    fn run_dataset(mut self, out: &Path, started: Instant) -> Result<RunReport> {
        let _lock = OutputLock::acquire(out)?;
        let mut now = self.record(self.workers)?;
        let mut extended = None;
        let mut reprocessed = None;
        let mut report_only = None;
        let mut rerun = None;
        let prior = RunRecord::load_shared(out)?;
        let complete = out.join(SUCCESS).exists();
        #[cfg(feature = "prep")]
        if let Some(report) = self.refeature_again(out, prior.as_deref(), &now, started)? {
            return Ok(report);
        }
        if self.s.follow.is_some() && !self.s.overwrite {
            self.prepare_live(out, prior.map(Arc::unwrap_or_clone), &mut now, complete)?;
        } else if self.s.resume {
            let Some(prior) = prior else {
                return Err(Error::Usage(format!(
                    "cannot resume: {} holds no interrupted run",
                    out.display()
                )));
            };
            let diffs = prior.differences(&now);
            if !diffs.is_empty() {
                return Err(Error::Usage(format!(
                    "cannot resume {}: {}; nothing was changed. Start over with --overwrite \
                     (or a new folder) to process the inputs as they are now",
                    out.display(),
                    diffs.join("; ")
                )));
            }
            if complete {
                return finished_report(out, "the run in it is already complete");
            }
            // An interrupted report-only run flushes again (if the manifest was already
            // taken back to the state before the flush, this changes nothing).
            self.s.flush_again = prior
                .history
                .last()
                .is_some_and(|h| !h.report_only.is_empty());
            remove_marker(out)?;
        } else if self.s.overwrite {
            #[cfg(feature = "prep")]
            crate::refeature::clear_pending(out)?;
            clear_ours(out)?;
        } else {
            match prior {
                Some(prior) => {
                    let diffs = prior.differences(&now);
                    if complete && diffs.is_empty() {
                        return finished_report(out, "it already holds this run, complete");
                    }
                    if !complete {
                        return Err(Error::Usage(format!(
                            "{} holds an interrupted run; continue it with --resume, or start \
                             over with --overwrite",
                            out.display()
                        )));
                    }
                    // Changed settings of the quality report go with any of the paths below:
                    // each ends by flushing again, and the report is made anew.
                    let report_keys = self.report_only_change(out, &prior, &now);
                    let same_setup = prior.same_setup(&now) || report_keys.is_some();
                    let appended = same_setup
                        && prior.inputs.len() < now.inputs.len()
                        && now.inputs.starts_with(&prior.inputs);
                    if appended {
                        self.check_incremental(out, &prior)?;
                        let added = now.inputs.len() - prior.inputs.len();
                        tracing::info!(
                            "{}: incremental run: {added} new inputs after the {} recorded ones; \
                             each symbol continues from its state at the end of the recorded \
                             inputs (the folder is marked unfinished until the append is \
                             committed; if it is interrupted, --resume completes it)",
                            out.display(),
                            prior.inputs.len()
                        );
                        remove_marker(out)?;
                        self.continue_recorded(out, &prior, &mut now, prior.inputs.len())?;
                        extended = Some((added, prior.inputs.len()));
                    } else if report_keys.is_some() && prior.inputs == now.inputs {
                        tracing::info!(
                            "{}: only settings of the quality report changed: the rows and the \
                             stage state are kept; the end-of-input flush runs again from the \
                             recorded state and the report is made with the new values",
                            out.display(),
                        );
                        remove_marker(out)?;
                        self.continue_recorded(out, &prior, &mut now, prior.inputs.len())?;
                        self.s.flush_again = true;
                    } else if same_setup
                        && let Some(r) = self.rewind_history(out, &prior, &mut now)?
                    {
                        reprocessed = Some(r);
                    } else if let Some(report) = self.refeature(out, &prior, &now, None, started)? {
                        return Ok(report);
                    } else if let Some(keys) = self.stage_rerun_change(&prior, &now) {
                        tracing::info!(
                            "{}: settings of the streaming stages changed ({}): the dataset is \
                             made again from the inputs",
                            out.display(),
                            keys.join(", ")
                        );
                        #[cfg(feature = "prep")]
                        crate::refeature::clear_pending(out)?;
                        clear_ours(out)?;
                        let mut history = prior.history.clone();
                        if let Some(mut h) = now.history.pop() {
                            h.rerun = keys.clone();
                            history.push(h);
                        }
                        now.history = history;
                        rerun = Some(keys);
                    } else {
                        let appends = now.inputs.len() > prior.inputs.len()
                            && now.inputs.starts_with(&prior.inputs);
                        let why = if appends {
                            "new inputs after the recorded ones are appended only under the \
                             recorded configuration, and it changed: run the append with the \
                             recorded settings, or "
                        } else if diffs.iter().any(|d| d.starts_with("input ")) {
                            "a changed, removed or inserted input changes the state every \
                             later file of its symbols starts from, so the run goes back to \
                             the last segment end before it; here there is none (the first \
                             input changed, or the folder's manifest keeps no segment ends), \
                             so the dataset must be made again: "
                        } else {
                            ""
                        };
                        return Err(Error::Usage(format!(
                            "{} holds a finished run of another configuration or inputs ({}); \
                             {why}use --overwrite to replace it (the folder is rewritten), or a \
                             new folder",
                            out.display(),
                            diffs.join("; ")
                        )));
                    }
                    if let (Some(keys), None) = (report_keys, &rerun) {
                        tracing::info!(
                            "{}: settings of the quality report changed ({})",
                            out.display(),
                            keys.join(", ")
                        );
                        self.mark_report_only(out, &mut now, &keys)?;
                        report_only = Some(keys);
                    }
                }
                None if has_ours(out) => {
                    return Err(Error::Usage(format!(
                        "{} holds output of an earlier tickpipe run; use --overwrite to replace \
                         it, or a new folder",
                        out.display()
                    )));
                }
                None => {}
            }
        }
        if !self.s.resume && self.s.follow.is_none() {
            now.save(out)?;
        }
        let data = out.join(DATA_DIR);
        std::fs::create_dir_all(&data).map_err(|e| Error::io(&data, e))?;
        let live_from = self.s.follow.is_some().then_some(self.live_from);
        let mut report = self.run_engine(Some(out), started)?;
        report.appended = extended;
        report.reprocessed = reprocessed;
        report.report_only = report_only;
        report.rerun = rerun;
        if let Some(from) = live_from {
            report.live = Some(crate::live::live_span(out, from)?);
        }
        let json = report.to_json()?;
        crate::output::write_atomic(&out.join(SUCCESS), &(json + "\n"))?;
        Ok(report)
    }

    /// A finished run `prior` in `out` of these inputs whose configuration differs only in
    /// feature parameters: the feature columns are computed again from the dataset's rows
    /// (see [`crate::refeature`]); `again` names the keys of an interrupted pass done again.
    /// `None` when that does not apply.
    fn refeature(
        &self,
        out: &Path,
        prior: &RunRecord,
        now: &RunRecord,
        again: Option<Vec<String>>,
        started: Instant,
    ) -> Result<Option<RunReport>> {
        #[cfg(feature = "prep")]
        {
            let write = self.writer_options(prior.workers);
            if let Some(plan) = crate::refeature::plan(out, prior, now, &write, again)? {
                return plan
                    .run(&write, started, &self.refeature_events())
                    .map(Some);
            }
        }
        #[cfg(not(feature = "prep"))]
        let _ = (out, prior, now, again, started);
        Ok(None)
    }

    /// Reports each file a feature re-run rewrote as an [`Event::Refeatured`].
    #[cfg(feature = "prep")]
    fn refeature_events(&self) -> impl Fn(usize) + Sync + use<> {
        let events = self.s.events.clone();
        move |files: usize| {
            if let Some(e) = &events {
                e(&Event::Refeatured { files });
            }
        }
    }

    /// An interrupted feature re-run in `out` (its marker is there): the same command does
    /// it again; another one is refused until then, unless it overwrites the folder.
    #[cfg(feature = "prep")]
    fn refeature_again(
        &self,
        out: &Path,
        prior: Option<&RunRecord>,
        now: &RunRecord,
        started: Instant,
    ) -> Result<Option<RunReport>> {
        if self.s.overwrite {
            return Ok(None);
        }
        let Some((target, changed)) = crate::refeature::pending(out)? else {
            return Ok(None);
        };
        let diffs = target.differences(now);
        let what = format!(
            "{} holds an interrupted re-run of its feature columns ({})",
            out.display(),
            changed.join(", ")
        );
        if !diffs.is_empty() {
            return Err(Error::Usage(format!(
                "{what}; this run differs from it ({}): run that command again to complete \
                 it, or start over with --overwrite",
                diffs.join("; ")
            )));
        }
        let prior = prior.ok_or_else(|| {
            Error::Usage(format!(
                "{what} but no run record; start over with --overwrite"
            ))
        })?;
        match self.refeature(out, prior, now, Some(changed), started)? {
            Some(report) => Ok(Some(report)),
            None => Err(Error::Usage(format!(
                "{what}, which cannot be completed; start over with --overwrite"
            ))),
        }
    }

    /// A finished run `prior` in `out` of the same configuration whose inputs changed after
    /// the first few (a day re-delivered, removed or inserted in the middle of the history):
    /// state flows forward, so everything from the change on is processed again, from the
    /// last segment end before it (the manifest keeps the stage state of segment ends).
    /// The manifest goes back first (one transaction; no file is deleted until the run's
    /// resume removes the later segments' files as uncommitted work), then the folder is
    /// marked unfinished and the record replaced. The caller checked the setup is the same.
    /// `None` (nothing touched) when the very first input changed or no segment end before
    /// the change is kept: the caller refuses then.
    fn rewind_history(
        &mut self,
        out: &Path,
        prior: &RunRecord,
        now: &mut RunRecord,
    ) -> Result<Option<crate::report::Reprocessed>> {
        let unchanged = prior
            .inputs
            .iter()
            .zip(&now.inputs)
            .take_while(|(a, b)| a == b && a.fingerprint.is_some())
            .count();
        if unchanged == 0 {
            return Ok(None);
        }
        self.check_incremental(out, prior)?;
        let kept: Vec<String> = prior.inputs[..unchanged]
            .iter()
            .map(|i| i.path.clone())
            .collect();
        let Some(point) = pipeline_parallel::rewind(&out.join(MANIFEST), out, &kept)? else {
            return Ok(None);
        };
        // Until the record is replaced the folder still reads as the finished old run (the
        // rewound manifest deletes nothing by itself); a crash here leaves it so, and running
        // the command again goes back to the same point.
        remove_marker(out)?;
        let first_changed = now
            .inputs
            .get(unchanged)
            .or(prior.inputs.get(unchanged))
            .map(|i| i.path.clone())
            .unwrap_or_default();
        tracing::info!(
            "{}: the recorded inputs changed from {first_changed} on: keeping the first {} \
             (up to the last segment end before the change) and processing the other {} \
             again, each symbol continuing from its state there",
            out.display(),
            point.inputs,
            now.inputs.len() - point.inputs
        );
        self.continue_recorded(out, prior, now, point.inputs)?;
        Ok(Some(crate::report::Reprocessed {
            first_changed,
            kept: point.inputs,
            processed: now.inputs.len() - point.inputs,
        }))
    }

    /// Makes this run continue the finished run `prior` in `out` (an append, or a changed
    /// history gone back to a segment end) from its input `from` on: with its execution
    /// settings and history (plus this run's entry), as a resume of the folder, which the
    /// caller has marked unfinished.
    fn continue_recorded(
        &mut self,
        out: &Path,
        prior: &RunRecord,
        now: &mut RunRecord,
        from: usize,
    ) -> Result<()> {
        now.workers = prior.workers;
        now.checkpoint_bytes = self.s.checkpoint_every.or(prior.checkpoint_bytes);
        now.history = prior.history.clone();
        now.history.push(crate::record::RecordedRun::now(
            &now.inputs[from..],
            now.inputs.len(),
        ));
        now.save(out)?;
        self.s.resume = true;
        Ok(())
    }

    /// Records, in this run's history entry, the report settings it changed (so an
    /// interrupted run flushes again when resumed), and removes the quality history when
    /// it is now off (a fresh run would have none).
    fn mark_report_only(&mut self, out: &Path, now: &mut RunRecord, keys: &[String]) -> Result<()> {
        if let Some(h) = now.history.last_mut() {
            h.report_only = keys.to_vec();
        }
        now.save(out)?;
        #[cfg(feature = "validate")]
        if !self.s.config.validation.history {
            crate::output::remove_if_exists(&out.join(pipeline_validate::HISTORY_FILE))?;
        }
        Ok(())
    }

    /// The configuration keys that changed, when they are all settings of the streaming
    /// stages (`[preprocessing]`, `[validation]`) and nothing else of the setup differs from
    /// the finished run `prior` (the inputs may): the run then makes the dataset again from
    /// the inputs, the same as `--overwrite`. This is the re-run from the first stage whose
    /// key changed: the stages before cleaning (reading and parsing) keep no output but the
    /// inputs themselves. Feature parameters alone take [`Self::refeature`] instead, report
    /// settings alone [`Self::report_only_change`], when the folder allows them.
    fn stage_rerun_change(&self, prior: &RunRecord, now: &RunRecord) -> Option<Vec<String>> {
        let keys = prior.changed_keys(now);
        let stage_key =
            |k: &String| k.starts_with("preprocessing.") || k.starts_with("validation.");
        if keys.is_empty() || !keys.iter().all(stage_key) {
            return None;
        }
        // The stages' keys hold their parameters; the chain itself must be the same.
        let names = |r: &RunRecord| r.stages.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(prior) != names(now) {
            return None;
        }
        let mut masked = prior.with_recorded(now, &keys);
        masked.stages = prior.stages.clone();
        prior.setup_differences(&masked).is_empty().then_some(keys)
    }

    /// The configuration keys that changed, when `now`'s setup (all but its inputs) differs
    /// from the finished run `prior` in `out` only in settings read when the quality report
    /// is made (`pipeline_validate::REPORT_ONLY_KEYS`) and the folder can run its
    /// end-of-input flush again (written appendable, one manifest, not a shard, no
    /// normalisation or trades-and-quotes join); `None` otherwise.
    fn report_only_change(
        &self,
        out: &Path,
        prior: &RunRecord,
        now: &RunRecord,
    ) -> Option<Vec<String>> {
        #[cfg(feature = "validate")]
        {
            let keys = prior.changed_keys(now);
            if keys.is_empty()
                || !keys
                    .iter()
                    .all(|k| pipeline_validate::REPORT_ONLY_KEYS.contains(&k.as_str()))
            {
                return None;
            }
            // Everything else (inputs, stages, other keys, shard) as recorded.
            if !prior
                .setup_differences(&prior.with_recorded(now, &keys))
                .is_empty()
                || !self.s.config.output.appendable
                || self.s.shard.is_some()
                || prior.shard.is_some()
            {
                return None;
            }
            #[cfg(feature = "prep")]
            if self.normalize.is_some() || self.taq.is_some() {
                return None;
            }
            pipeline_parallel::resumed_workers(&out.join(MANIFEST))
                .ok()
                .flatten()?;
            Some(keys)
        }
        #[cfg(not(feature = "validate"))]
        {
            let _ = (out, prior, now);
            None
        }
    }

    /// Whether this run may add inputs to the finished run `prior` in `out`: outputs that
    /// depend on the whole dataset cannot be extended row by row, so those settings are
    /// refused, saying why.
    fn check_incremental(&self, out: &Path, prior: &RunRecord) -> Result<()> {
        let refuse = |why: &str| {
            Err(Error::Usage(format!(
                "{} holds a finished run of the same configuration over {} of these {} inputs, \
                 but it cannot be extended incrementally: {why}; use --overwrite to process all \
                 of them, or a new folder",
                out.display(),
                prior.inputs.len(),
                self.inputs.files.len()
            )))
        };
        #[cfg(feature = "prep")]
        if self.normalize.is_some() {
            return refuse(
                "normalize_features scales every row by statistics of the whole dataset, which \
                 the new rows change",
            );
        }
        if self.s.shard.is_some() || prior.shard.is_some() {
            return refuse("it is one shard of a sharded run (shards are made by file size)");
        }
        if self.s.follow.is_some() {
            return refuse("--follow tails a live input");
        }
        #[cfg(feature = "prep")]
        if self.taq.is_some() {
            return refuse(
                "trades are joined to quotes from the start of both streams (the join's quote \
                 state is not checkpointed)",
            );
        }
        if !self.s.config.output.appendable {
            return refuse(
                "it was written with [output] appendable = false, so the state at the end of \
                 its inputs was not kept",
            );
        }
        let manifest = out.join(MANIFEST);
        if pipeline_parallel::resumed_workers(&manifest)
            .ok()
            .flatten()
            .is_none()
        {
            return refuse(
                "its checkpoint manifest is missing or was written by an older tickpipe",
            );
        }
        Ok(())
    }

    /// Builds and runs the engine with this pipeline's sinks, cache, monitor and validation;
    /// `out` is the dataset folder.
    fn run_engine(mut self, out: Option<&Path>, started: Instant) -> Result<RunReport> {
        let cancel = self.s.cancel.clone().unwrap_or_default();
        let cache = match self.cache.take() {
            Some(c) => Some(c),
            None => crate::caching::Caching::open(&self.s.config, out)?,
        };
        // Without a cache after all (another process holds it) what was found stays in
        // memory.
        if let Some(c) = &cache {
            if let Some(p) = self.meta_pending.take() {
                p.attach(c.meta());
            }
            self.read.meta_cache = Some(c.meta());
        }
        let mut workers = self.workers;
        // Resuming must use the interrupted run's worker count (stage state is per worker).
        if let (true, Some(out)) = (self.s.resume, out)
            && let Some(n) = pipeline_parallel::resumed_workers(&out.join(MANIFEST))?
        {
            workers = n;
        }
        let rt = match &self.s.runtime {
            Some(rt) => rt.clone(),
            None => Runtime::new(workers)?,
        };
        // The folder is as the report will find it: its history is read while the run goes.
        if let Some(q) = &self.quality {
            q.prefetch_history(out);
        }
        let (mut runner, table, _) = self.runner(workers, &cancel, &rt)?;
        // The report is prepared while the engine ends its run (one stage instance per
        // worker hands in at the end). Not for a live run, which runs until stopped.
        if let (Some(q), None) = (&self.quality, &self.s.follow) {
            q.start_report(workers, &table, out);
        }
        let mut monitor_cfg = self.s.config.clone();
        if self.s.follow.is_some() {
            // A live input is idle whenever nothing is appended: that is no throughput drop.
            monitor_cfg.monitor.throughput_drop_pct = 100.0;
        }
        let monitor = crate::monitoring::Monitoring::start(&monitor_cfg, out)?;
        if let Some(m) = &monitor {
            runner = runner.observer(m.observer());
        }
        if let Some(events) = &self.s.events {
            let e = events.clone();
            runner = runner.on_event(Arc::new(move |ev| e(&Event::Engine(*ev))));
        }
        let data = out.map(|o| o.join(DATA_DIR));
        match (&self.s.output, out) {
            (Output::Dataset(_), Some(out)) => {
                let data = out.join(DATA_DIR);
                // Each worker writes its own files. When a symbol can reach several workers
                // (no per-key stage, or files not partitioned by symbol) the worker number is
                // part of the file number so two workers never write the same name.
                let keyed = self
                    .stages
                    .iter()
                    .any(|f| f().is_ok_and(|s| s.order() != StageOrder::RowLocal));
                let by_symbol = self
                    .write
                    .partition_by
                    .contains(&pipeline_io::PartitionKey::Symbol);
                let per_worker_names = !(keyed && by_symbol);
                let opts = self.writer_options(workers);
                let dir = data.clone();
                let q_dir = out.to_path_buf();
                let q_table = table.clone();
                runner = runner
                    .sink_factory(Arc::new(move |worker, segment| {
                        let number = if per_worker_names {
                            segment.saturating_mul(1000).saturating_add(worker as u32)
                        } else {
                            segment
                        };
                        pipeline_io::create_sink(&dir, number, &opts)
                    }))
                    .reject_sink_factory(Arc::new(move |seg| {
                        pipeline_io::create_quarantine_sink(
                            &quarantine_file(&q_dir, seg),
                            q_table.clone(),
                        )
                    }))
                    .owned_outputs(owned_outputs(out.to_path_buf(), per_worker_names))
                    .manifest(out.join(MANIFEST))
                    .output_dir(&data)
                    .root(out)
                    .flush_segment(self.s.config.output.appendable)
                    .flush_again(self.s.flush_again)
                    .resume(self.s.resume);
            }
            (Output::File(path), _) => {
                let opts = self.writer_options(workers);
                let p = path.clone();
                runner = runner.sink_factory(Arc::new(move |_w, _s| {
                    pipeline_io::create_file_sink(&p, &opts)
                }));
                let q = crate::output::sibling(path, crate::output::QUARANTINE);
                let q_table = table.clone();
                runner = runner.reject_sink_factory(Arc::new(move |seg| {
                    let name = if seg == 0 {
                        q.clone()
                    } else {
                        crate::output::sibling(&q, &format!("{seg:05}.parquet"))
                    };
                    pipeline_io::create_quarantine_sink(&name, q_table.clone())
                }));
            }
            _ => {
                runner = runner.sink_factory(Arc::new(|_w, _s| {
                    Ok(Box::new(NullSink::default()) as Box<dyn Sink>)
                }));
                if let Some(q) = self.s.quarantine_file.clone() {
                    if let Some(parent) = q.parent().filter(|p| !p.as_os_str().is_empty()) {
                        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                    }
                    let q_table = table.clone();
                    runner = runner.reject_sink_factory(Arc::new(move |seg| {
                        let name = if seg == 0 {
                            q.clone()
                        } else {
                            crate::output::sibling(&q, &format!("{seg:05}.parquet"))
                        };
                        pipeline_io::create_quarantine_sink(&name, q_table.clone())
                    }));
                }
            }
        }

        let report = match runner.build().and_then(|r| r.run()) {
            Ok(r) => r,
            Err(e) => {
                // The report page still explains what happened.
                if let Some(m) = monitor {
                    let _ = m.finish(self.facts(
                        &pipeline_core::Ledger::default(),
                        None,
                        None,
                        Some(&e),
                    ));
                }
                return Err(e);
            }
        };
        // The engine lists data and quarantine files together; the report keeps them apart.
        #[cfg_attr(not(feature = "prep"), allow(unused_mut))]
        let (mut outputs, reports): (Vec<PathBuf>, Vec<PathBuf>) =
            report.outputs.iter().cloned().partition(|p| match &data {
                Some(d) => p.starts_with(d),
                None => !is_quarantine(p) && self.s.quarantine_file.is_none(),
            });
        #[cfg(feature = "prep")]
        if let Some(plan) = &self.normalize {
            // The post-pass is part of the run: its time counts in the report's wall time.
            let events = self.s.events.clone();
            let on_file = move |files: usize| {
                if let Some(e) = &events {
                    e(&Event::Normalized { files });
                }
            };
            outputs.extend(plan.apply(&outputs, &rt, &cancel, &on_file)?);
        }
        if cancel.load(Ordering::SeqCst) && self.s.follow.is_none() {
            return Err(Error::Cancelled);
        }
        let reports: Vec<PathBuf> = reports.into_iter().filter(|p| p.exists()).collect();
        let quality = match &self.quality {
            Some(q) => Some(q.finish(&table, &report.ledger, out)?),
            None => None,
        };
        let mut r = self.report(&report, outputs, reports, started);
        r.quarantine_limit = report
            .ledger
            .check_quarantine_limit(self.s.config.pipeline.max_quarantine_fraction)
            .err()
            .map(|e| e.to_string());
        let mut quality_html = None;
        if let Some(q) = quality {
            r.reports.extend(q.files);
            r.validation = Some(q.json);
            quality_html = Some(q.html);
        }
        if let Some(m) = monitor {
            let o = m.finish(self.facts(&report.ledger, Some(&report), quality_html, None))?;
            // report.html first: it is the page to open after a run.
            r.reports.splice(0..0, o.files);
            r.performance = Some(o.json);
            r.performance_headline = Some(o.headline);
        }
        if let Some(c) = &cache {
            r.cache = Some(c.finish()?);
        }
        Ok(r)
    }

    /// What the monitor's report says about the run.
    fn facts<'a>(
        &self,
        ledger: &'a pipeline_core::Ledger,
        report: Option<&pipeline_parallel::RunReport>,
        quality_html: Option<String>,
        error: Option<&Error>,
    ) -> crate::monitoring::RunFacts<'a> {
        let mut title = format!("tickpipe {}", self.s.label);
        for f in self.inputs.files.iter().take(3) {
            title.push(' ');
            title.push_str(&f.display_name());
        }
        if self.inputs.files.len() > 3 {
            title.push_str(&format!(" … ({} inputs)", self.inputs.files.len()));
        }
        if let Output::Dataset(o) = &self.s.output {
            title.push_str(&format!(" --out {}", o.display()));
        }
        crate::monitoring::RunFacts {
            title,
            ledger,
            wall_seconds: 0.0,
            bytes_read: report.map_or(0, |r| r.bytes_read),
            files_ok: report.map_or(0, |r| r.files_ok.len()),
            files_failed: report.map_or_else(Vec::new, |r| r.files_failed.clone()),
            quality_html,
            error: error.map(|e| e.to_string()),
        }
    }
}

/// The quarantine file of segment `seg` in a dataset folder.
fn quarantine_file(out: &Path, seg: u32) -> PathBuf {
    if seg == 0 {
        out.join(crate::output::QUARANTINE)
    } else {
        out.join(format!("quarantine-{seg:05}.parquet"))
    }
}

fn is_quarantine(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().contains("quarantine"))
}

/// The segment a file of this run belongs to, from its name: data files
/// `part-<number>-<n>.<ext>` (number = segment, or segment × 1000 + worker), quarantine files
/// `quarantine.parquet` (segment 0) and `quarantine-<segment>.parquet`, and the hidden
/// temporary form `.<name>.tmp` of each. `None` for anything else.
fn segment_of(path: &Path, out: &Path, per_worker_names: bool) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let name = match name.strip_suffix(".tmp") {
        Some(n) => n.strip_prefix('.').unwrap_or(n),
        None => name,
    };
    if path.parent() == Some(out) {
        if name == crate::output::QUARANTINE {
            return Some(0);
        }
        let seg = name.strip_prefix("quarantine-")?.strip_suffix(".parquet")?;
        return seg.parse().ok();
    }
    if !path.starts_with(out.join(DATA_DIR)) {
        return None;
    }
    let rest = name.strip_prefix("part-")?;
    let (number, rest) = rest.split_once('-')?;
    let (_n, ext) = rest.split_once('.')?;
    if !matches!(ext, "parquet" | "arrow" | "csv") {
        return None;
    }
    let number: u32 = number.parse().ok()?;
    Some(if per_worker_names {
        number / 1000
    } else {
        number
    })
}

/// What a resume may delete: files of this run's naming whose segment is not committed.
fn owned_outputs(out: PathBuf, per_worker_names: bool) -> pipeline_parallel::OwnedFn {
    Arc::new(move |path: &Path, next: u32| {
        segment_of(path, &out, per_worker_names).is_some_and(|seg| seg >= next)
    })
}

/// True when `out` holds tickpipe output (of any version).
pub(crate) fn has_ours(out: &Path) -> bool {
    [
        DATA_DIR,
        MANIFEST,
        crate::output::QUARANTINE,
        SUCCESS,
        RUN_RECORD,
    ]
    .iter()
    .any(|n| out.join(n).exists())
}

/// Removes everything tickpipe writes into a dataset folder (only its own entries). The
/// cache (`_cache`, keyed by content) and the quality history (`quality_history.jsonl`, the
/// symbols' past days) stay: they are what the next run builds on.
fn clear_ours(out: &Path) -> Result<()> {
    crate::output::clear_previous(out)?;
    for name in [
        SUCCESS,
        RUN_RECORD,
        crate::quality::QUALITY_JSON,
        crate::quality::QUALITY_HTML,
        "report.html",
        "metrics.prom",
        "metrics.jsonl",
    ] {
        let p = out.join(name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    #[cfg(feature = "prep")]
    {
        let p = out.join(crate::normalize::SCALER_FILE);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

pub(crate) fn remove_marker(out: &Path) -> Result<()> {
    crate::output::remove_if_exists(&out.join(SUCCESS))
}

/// The report of the finished run in `out` (nothing is run again).
fn finished_report(out: &Path, why: &str) -> Result<RunReport> {
    let marker = out.join(SUCCESS);
    let text = std::fs::read_to_string(&marker).map_err(|e| Error::io(&marker, e))?;
    let mut report: RunReport = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{}: {e}; use --overwrite to run again",
            marker.display()
        ))
    })?;
    tracing::info!("{}: {why}; nothing to do", out.display());
    report.up_to_date = true;
    report.appended = None;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_of_this_runs_files_and_nothing_else() {
        let out = Path::new("/o");
        let s = |p: &str, w| segment_of(Path::new(p), out, w);
        assert_eq!(s("/o/quarantine.parquet", true), Some(0));
        assert_eq!(s("/o/quarantine-00003.parquet", true), Some(3));
        assert_eq!(s("/o/.quarantine-00003.parquet.tmp", true), Some(3));
        assert_eq!(s("/o/data/symbol=A/part-00002-000.parquet", false), Some(2));
        assert_eq!(s("/o/data/symbol=A/part-02001-000.parquet", true), Some(2));
        assert_eq!(
            s("/o/data/symbol=A/.part-00004-001.arrow.tmp", false),
            Some(4)
        );
        assert_eq!(s("/o/data/symbol=A/notes.parquet", false), None);
        assert_eq!(s("/o/data/part-1-x", false), None);
        assert_eq!(s("/o/summary.json", false), None);
        assert_eq!(s("/elsewhere/quarantine.parquet", false), None);
        assert_eq!(s("/o/_manifest.redb", false), None);
    }
}
