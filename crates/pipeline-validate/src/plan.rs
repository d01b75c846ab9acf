//! [`ValidationPlan`]: the one entry point a run (or `tickpipe validate`) uses: config in,
//! stage factories out, report at the end.

use std::sync::{Arc, Mutex};

use pipeline_core::{Config, Error, Result, Stage, StageFactory};

use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::collect::Shared;
use crate::report::{FinishOptions, Mode, PreparedReport, ValidationReport, build};
use crate::rules::{CustomRule, RuleSet};
use crate::rulesfile::RulesFile;
use crate::stage::{ValidateStage, holidays};

/// Validation for one run: the compiled rules, the stage factory, and the collector every
/// stage instance reports to. One plan per run.
///
/// ```
/// use pipeline_core::{Config, SourceTable};
/// use pipeline_validate::{FinishOptions, Mode, ValidationPlan};
///
/// let plan = ValidationPlan::from_config(&Config::default(), Mode::Inline)?;
/// assert!(plan.enabled());
/// let stages = plan.stages(); // add after the cleaning stages
/// assert_eq!(stages.len(), 1);
/// // ... the engine runs them; then:
/// let report = plan.finish(&FinishOptions::default())?;
/// assert_eq!(report.rows_checked, 0);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ValidationPlan {
    rs: Arc<RuleSet>,
    cal: Arc<Calendar>,
    mode: Mode,
    enabled: bool,
    parallel: bool,
    collector: Arc<Shared>,
    /// The history file being read ahead ([`ValidationPlan::prefetch_history`]).
    prefetched: Arc<Mutex<Option<Prefetch>>>,
}

/// A history file read on a thread of its own while the run goes on.
type Prefetch = (
    std::path::PathBuf,
    std::thread::JoinHandle<Result<crate::history::Prior>>,
);

impl std::fmt::Debug for ValidationPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidationPlan")
            .field("mode", &self.mode)
            .field("enabled", &self.enabled)
            .field("rules", &self.rs.rules.len())
            .finish()
    }
}

impl ValidationPlan {
    /// Compiles `[validation]` (with the session hours of `[preprocessing]`) and the rules
    /// file it names. Errors are [`Error::Config`] naming the key, or [`Error::Io`] for an
    /// unreadable rules file.
    pub fn from_config(cfg: &Config, mode: Mode) -> Result<ValidationPlan> {
        Self::with_rules(cfg, mode, None, Vec::new())
    }

    /// Like [`ValidationPlan::from_config`], with a parsed rules file (replacing
    /// `[validation] rules_file`; `tickpipe validate --rules FILE`) and Rust rules.
    pub fn with_rules(
        cfg: &Config,
        mode: Mode,
        rules_file: Option<&RulesFile>,
        custom: Vec<CustomRule>,
    ) -> Result<ValidationPlan> {
        let loaded;
        let file = match rules_file {
            Some(f) => Some(f),
            None if !cfg.validation.rules_file.is_empty() => {
                loaded = RulesFile::load(std::path::Path::new(&cfg.validation.rules_file))?;
                Some(&loaded)
            }
            None => None,
        };
        let rs = RuleSet::build(cfg, file, &custom)?;
        Self::from_rule_set(
            rs,
            mode,
            cfg.validation.enabled,
            cfg.validation.enable_parallel_validation,
        )
    }

    pub(crate) fn from_rule_set(
        rs: RuleSet,
        mode: Mode,
        enabled: bool,
        parallel: bool,
    ) -> Result<Self> {
        let cal = Calendar::new(rs.settings.calendar, &holidays(&rs.settings.holidays)?);
        let examples = rs.settings.examples;
        let plan = ValidationPlan {
            rs: Arc::new(rs),
            cal: Arc::new(cal),
            mode,
            enabled: enabled || mode == Mode::Standalone,
            parallel,
            collector: Arc::new(Shared::new(examples)),
            prefetched: Arc::default(),
        };
        // Fail now, not in a worker, if the session settings are bad.
        plan.stage()?;
        Ok(plan)
    }

    /// Whether validation runs: always standalone; inline when `[validation] enabled`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Workers for standalone validation: `requested`, or 1 when
    /// `[validation] enable_parallel_validation` is false.
    pub fn workers(&self, requested: usize) -> usize {
        if self.parallel { requested } else { 1 }
    }

    /// A fresh stage instance reporting to this plan.
    pub(crate) fn stage(&self) -> Result<ValidateStage> {
        ValidateStage::new(self.rs.clone(), self.collector.clone(), self.cal.clone())
    }

    /// (name, severity it runs with, unit) of every rule, by index.
    pub(crate) fn rule_info(&self) -> Vec<(String, crate::rules::Severity, crate::rules::Unit)> {
        self.rs
            .rules
            .iter()
            .map(|r| {
                (
                    r.info.name.clone(),
                    r.severity.unwrap_or(r.info.severity),
                    r.info.unit,
                )
            })
            .collect()
    }

    /// Whether rule `i` quarantines.
    pub(crate) fn quarantines(&self, i: usize) -> bool {
        self.rs.quarantines(i)
    }

    /// Results of the row rules from counts so far.
    pub(crate) fn row_results(&self, acc: &crate::stage::Acc) -> Vec<crate::report::RuleResult> {
        crate::report::provisional(&self.rs, acc)
    }

    /// The stage factories to add to the run (one per-symbol stage; empty when disabled).
    /// Inline, they go after the cleaning stages and before the features.
    pub fn stages(&self) -> Vec<StageFactory> {
        if !self.enabled {
            return Vec::new();
        }
        let plan = self.clone();
        vec![Arc::new(move || {
            Ok(Box::new(plan.stage()?) as Box<dyn Stage>)
        })]
    }

    /// A copy of what the stage instances have handed in so far (call after the run): one
    /// task of a cluster job keeps it, and the task that finishes the job
    /// [`absorb`](ValidationPlan::absorb)s every task's before building one report.
    pub fn state(&self) -> Result<ValidationState> {
        let c = crate::collect::lock(&self.collector)?;
        Ok(ValidationState {
            rules: self.rs.rules.len(),
            acc: c.acc.clone(),
            days: c.days.clone(),
        })
    }

    /// Adds another plan's [`state`](ValidationPlan::state), as if its stage instances had
    /// run under this plan. The states must come from plans with the same rules (the same
    /// configuration): a different rule count is refused. Each symbol's rows must all have
    /// been checked under one plan (a symbol split between plans would restart its stateful
    /// rules and count the split as a day of its own).
    pub fn absorb(&self, state: ValidationState) -> Result<()> {
        if state.rules != self.rs.rules.len() {
            return Err(Error::Internal(format!(
                "validation state of {} rules given to a plan of {}",
                state.rules,
                self.rs.rules.len()
            )));
        }
        let mut c = crate::collect::lock(&self.collector)?;
        match state.acc {
            Some(acc) => c.add(acc, state.days),
            None => c.days.extend(state.days),
        }
        Ok(())
    }

    /// Starts reading the metrics history in `dir` (the `history_dir` that
    /// [`finish`](ValidationPlan::finish) will be given) on a thread of its own, so that
    /// `finish` finds it parsed: a dataset's history holds every symbol-day, and reading it
    /// was a fifth of an append's report. Call it once nothing else will write the file
    /// before `finish` (the run holds the folder and has cleared what it clears). Nothing
    /// happens when the history is off.
    pub fn prefetch_history(&self, dir: &std::path::Path) {
        if !self.rs.settings.history {
            return;
        }
        let path = dir.join(crate::history::FILE);
        let reading = path.clone();
        let handle = std::thread::Builder::new()
            .name("tickpipe-history".into())
            .spawn(move || crate::history::read(&reading));
        if let (Ok(handle), Ok(mut slot)) = (handle, self.prefetched.lock()) {
            *slot = Some((path, handle));
        }
    }

    /// The history of `dir` read ahead, if that is the file being read.
    fn prefetched(&self, dir: Option<&std::path::Path>) -> Result<Option<crate::history::Prior>> {
        let taken = self.prefetched.lock().ok().and_then(|mut s| s.take());
        let (Some(dir), Some((path, handle))) = (dir, taken) else {
            return Ok(None);
        };
        let prior = handle
            .join()
            .map_err(|_| Error::Internal("reading the quality history panicked".into()))??;
        Ok((path == dir.join(crate::history::FILE)).then_some(prior))
    }

    /// Builds the report from what every stage instance collected (call after the run), runs
    /// the dataset-level rules, and reads and rewrites the history file when
    /// `history_dir` is given and `[validation] history` is on.
    pub fn finish(&self, opts: &FinishOptions<'_>) -> Result<ValidationReport> {
        self.prepare(opts)?.complete(opts.ledger)
    }

    /// [`finish`](ValidationPlan::finish) but for what needs the end of the run: the
    /// ledger's counts (`opts.ledger` is not read) and writing the history file, which
    /// [`PreparedReport::complete`] does.
    pub fn prepare(&self, opts: &FinishOptions<'_>) -> Result<PreparedReport> {
        let (acc, days, _) = crate::collect::lock(&self.collector)?.take();
        let prior = self.prefetched(opts.history_dir)?;
        build(&self.rs, self.mode, acc, days, opts, &self.cal, prior)
    }

    /// Prepares the report ([`prepare`](ValidationPlan::prepare)) on a thread of its own as
    /// soon as `parts` stage instances (one per worker) have handed in their results, while
    /// the engine ends its run (writers closing, the last manifest commits, their `fsync`s):
    /// on a one-day append to five years of days the report was a sixth of the main
    /// thread's time, after everything else. Take it with [`PendingReport::take`].
    pub fn prepare_when_handed_in(
        &self,
        parts: usize,
        sources: pipeline_core::SourceTable,
        history_dir: Option<std::path::PathBuf>,
    ) -> Result<PendingReport> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let plan = self.clone();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("tickpipe-quality".into())
            .spawn(move || -> Result<Option<PreparedReport>> {
                if !plan.collector.wait_for(parts, &flag)? {
                    return Ok(None);
                }
                let mut prepared = plan.prepare(&FinishOptions {
                    sources: Some(&sources),
                    ledger: None,
                    history_dir: history_dir.as_deref(),
                })?;
                prepared.render_ahead();
                Ok(Some(prepared))
            })
            .map_err(|e| Error::Internal(format!("starting the quality report: {e}")))?;
        Ok(PendingReport {
            handle: Some(handle),
            stop,
            collector: self.collector.clone(),
        })
    }
}

/// A report being prepared on a thread of its own
/// ([`ValidationPlan::prepare_when_handed_in`]).
/// Dropped without [`take`](PendingReport::take) (a failed run), its thread stops waiting.
#[derive(Debug)]
pub struct PendingReport {
    handle: Option<std::thread::JoinHandle<Result<Option<PreparedReport>>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    collector: Arc<Shared>,
}

impl PendingReport {
    /// The prepared report, once the thread has it; `None` when fewer stage instances than
    /// expected handed in (the thread stops waiting: build the report with
    /// [`ValidationPlan::finish`], which takes what was collected). Call it after the run.
    pub fn take(mut self) -> Result<Option<PreparedReport>> {
        self.stop_waiting();
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| Error::Internal("preparing the quality report panicked".into()))?,
            None => Ok(None),
        }
    }

    fn stop_waiting(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.collector.wake();
    }
}

impl Drop for PendingReport {
    fn drop(&mut self) {
        self.stop_waiting();
    }
}

/// What a [`ValidationPlan`]'s stages collected (counts, examples, histograms, per-file
/// fingerprints, closed symbol-days), serialisable with serde: the reduce tasks of a cluster
/// job each keep theirs, and one report is built from all of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationState {
    rules: usize,
    acc: Option<crate::stage::Acc>,
    days: Vec<crate::model::SymbolDay>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::{Emitter, SourceTable};

    fn plan() -> ValidationPlan {
        ValidationPlan::from_config(&Config::default(), Mode::Inline).unwrap()
    }

    /// Two stage instances of `p` hand in (empty) results.
    fn hand_in_two(p: &ValidationPlan) {
        for _ in 0..2 {
            p.stage().unwrap().finish(&mut Emitter::default()).unwrap();
        }
    }

    /// Prepared once every expected instance has handed in, it is the report `finish` gives;
    /// one instance short, `take` stops the wait and `finish` builds it from what came.
    #[test]
    fn a_report_prepared_ahead_is_the_finished_one() {
        let want = {
            let p = plan();
            hand_in_two(&p);
            p.finish(&FinishOptions::default()).unwrap()
        };
        let p = plan();
        let pending = p
            .prepare_when_handed_in(2, SourceTable::default(), None)
            .unwrap();
        hand_in_two(&p);
        let got = pending
            .take()
            .unwrap()
            .expect("both handed in")
            .complete(None);
        assert_eq!(got.unwrap(), want);

        let p = plan();
        let pending = p
            .prepare_when_handed_in(3, SourceTable::default(), None)
            .unwrap();
        hand_in_two(&p);
        assert!(pending.take().unwrap().is_none());
        assert_eq!(p.finish(&FinishOptions::default()).unwrap(), want);
    }

    /// Dropped unanswered (a failed run), a pending report stops its thread's wait: the
    /// thread's handle is taken out first, so the wait can be seen to end.
    #[test]
    fn a_dropped_pending_report_stops_waiting() {
        let mut pending = plan()
            .prepare_when_handed_in(1, SourceTable::default(), None)
            .unwrap();
        let handle = pending.handle.take().unwrap();
        drop(pending);
        let prepared = handle.join().unwrap().unwrap();
        assert!(prepared.is_none(), "nothing was handed in");
    }
}
