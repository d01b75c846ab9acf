//! Validation in a run (pipeline-validate): the inline financial preset after cleaning, or
//! the standalone rules of `tickpipe validate`, and the quality reports.

use std::path::{Path, PathBuf};

use pipeline_core::{Config, Ledger, Result, SourceTable, StageFactory};
use serde_json::Value;

/// Where validation sits in a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Validation {
    /// After cleaning, before the features, when `[validation] enabled` (the default); the
    /// reports go to the dataset folder (`quality.json`, `quality.html`, and the metrics
    /// history `quality_history.jsonl`).
    #[default]
    Inline,
    /// No validation.
    Off,
    /// `tickpipe validate`: the rules on the rows as read (no cleaning stage runs), a rules
    /// file replacing `[validation] rules_file` when given, the report written to `report`
    /// (`.json` or `.html`) and the metrics history kept in `history` when given.
    Standalone {
        /// A rules file (TOML) to use instead of `[validation] rules_file`.
        rules: Option<PathBuf>,
        /// Where to write the report (`.json` or `.html`).
        report: Option<PathBuf>,
        /// The folder of the metrics history.
        history: Option<PathBuf>,
    },
}

/// What validation reports for the run report's `validation` object, and the HTML section
/// the run report embeds.
pub(crate) struct QualityOutcome {
    /// The summary (verdict, findings by rule, rows checked and quarantined), the exit code
    /// the verdict asks for, and the report files.
    pub json: Value,
    /// The quality section for `report.html`.
    pub html: String,
    /// Report files written.
    pub files: Vec<PathBuf>,
}

#[cfg(feature = "validate")]
pub(crate) use with_validate::*;

#[cfg(feature = "validate")]
mod with_validate {
    use super::*;
    use pipeline_validate::{FinishOptions, Mode, RulesFile, ValidationPlan};

    /// The plan of a run; `None` when validation is off.
    #[derive(Debug)]
    pub(crate) struct Quality {
        plan: ValidationPlan,
        standalone: bool,
        report: Option<PathBuf>,
        history: Option<PathBuf>,
        /// Where `finish` writes what the stages collected before building the report (a
        /// reduce task's share of its job's report).
        state: Option<PathBuf>,
        /// The report being prepared while the run ends ([`Quality::start_report`]).
        pending: std::sync::Mutex<Option<pipeline_validate::PendingReport>>,
    }

    impl Quality {
        /// Compiles the rules before any input is read (bad keys and rules files fail here).
        pub(crate) fn plan(v: &Validation, cfg: &Config) -> Result<Option<Quality>> {
            match v {
                Validation::Off => Ok(None),
                Validation::Inline => {
                    let plan = ValidationPlan::from_config(cfg, Mode::Inline)?;
                    Ok(plan.enabled().then_some(Quality {
                        plan,
                        standalone: false,
                        report: None,
                        history: None,
                        state: None,
                        pending: Default::default(),
                    }))
                }
                Validation::Standalone {
                    rules,
                    report,
                    history,
                } => {
                    let file = rules.as_deref().map(RulesFile::load).transpose()?;
                    let plan =
                        ValidationPlan::with_rules(cfg, Mode::Standalone, file.as_ref(), vec![])?;
                    Ok(Some(Quality {
                        plan,
                        standalone: true,
                        report: report.clone(),
                        history: history.clone(),
                        state: None,
                        pending: Default::default(),
                    }))
                }
            }
        }

        /// The stages to run (one per-symbol stage).
        pub(crate) fn stages(&self) -> Vec<StageFactory> {
            self.plan.stages()
        }

        /// Workers the rules allow (`[validation] enable_parallel_validation = false`: one).
        pub(crate) fn workers(&self, requested: usize) -> usize {
            self.plan.workers(requested)
        }

        /// Makes `finish` write what the stages collected to `path` (JSON) instead of a
        /// report.
        pub(crate) fn keep_state(&mut self, path: PathBuf) {
            self.state = Some(path);
        }

        /// Adds the state another run kept with [`Quality::keep_state`] (same configuration,
        /// other symbols) to what this one's report is built from.
        pub(crate) fn absorb(&self, path: &Path) -> Result<()> {
            let text =
                std::fs::read_to_string(path).map_err(|e| pipeline_core::Error::io(path, e))?;
            let state: pipeline_validate::ValidationState = serde_json::from_str(&text)
                .map_err(|e| pipeline_core::Error::Internal(format!("{}: {e}", path.display())))?;
            self.plan.absorb(state)
        }

        /// Starts reading the metrics history the report will read (see
        /// [`pipeline_validate::ValidationPlan::prefetch_history`]): `out` inline, the
        /// requested folder standalone.
        pub(crate) fn prefetch_history(&self, out: Option<&Path>) {
            if let (Some(dir), None) = (self.history_dir(out), &self.state) {
                self.plan.prefetch_history(dir);
            }
        }

        /// The folder of the metrics history: the dataset folder `out` inline, the
        /// requested one standalone.
        fn history_dir<'a>(&'a self, out: Option<&'a Path>) -> Option<&'a Path> {
            if self.standalone {
                self.history.as_deref()
            } else {
                out
            }
        }

        /// Starts preparing the report on a thread of its own, to run as soon as each of
        /// the `workers` stage instances has handed in its results (see
        /// [`pipeline_validate::ValidationPlan::prepare_when_handed_in`]); `finish` takes
        /// it. Not for a share of a cluster job's report. Without it (or when the thread
        /// cannot start) `finish` builds the report itself.
        pub(crate) fn start_report(&self, workers: usize, table: &SourceTable, out: Option<&Path>) {
            if self.state.is_some() {
                return;
            }
            let dir = self.history_dir(out).map(Path::to_path_buf);
            if let (Ok(p), Ok(mut slot)) = (
                self.plan
                    .prepare_when_handed_in(workers, table.clone(), dir),
                self.pending.lock(),
            ) {
                *slot = Some(p);
            }
        }

        /// Builds the report after the run and writes its files: inline into the dataset
        /// folder `out`, standalone to the requested report path.
        pub(crate) fn finish(
            &self,
            table: &SourceTable,
            ledger: &Ledger,
            out: Option<&Path>,
        ) -> Result<QualityOutcome> {
            if let Some(p) = &self.state {
                let text = serde_json::to_string(&self.plan.state()?).map_err(|e| {
                    pipeline_core::Error::Internal(format!("validation state as JSON: {e}"))
                })?;
                crate::output::write_atomic(p, &text)?;
                // A share of a job's report: the job's is built from every share, so this
                // run's own (over some symbols, in a staging folder) would be discarded.
                return Ok(QualityOutcome {
                    json: serde_json::json!({ "mode": "inline", "state": p }),
                    html: String::new(),
                    files: vec![p.clone()],
                });
            }
            let history = self.history_dir(out);
            let pending = self.pending.lock().ok().and_then(|mut p| p.take());
            let prepared = match pending.map(|p| p.take()).transpose()?.flatten() {
                Some(p) => p,
                None => self.plan.prepare(&FinishOptions {
                    sources: Some(table),
                    ledger: None,
                    history_dir: history,
                })?,
            };
            let mut files = Vec::new();
            let (report, html) = match (self.standalone, out) {
                (false, Some(out)) => {
                    let (json, page) = (out.join(QUALITY_JSON), out.join(QUALITY_HTML));
                    let done = prepared.complete_into(Some(ledger), &json, &page)?;
                    files.extend([json, page]);
                    done
                }
                _ => {
                    let report = prepared.complete(Some(ledger))?;
                    if let Some(p) = self.report.as_ref().filter(|_| self.standalone) {
                        report.write(p)?;
                        files.push(p.clone());
                    }
                    let html = report.html_fragment();
                    (report, html)
                }
            };
            if let Some(h) = history {
                let p = h.join(pipeline_validate::HISTORY_FILE);
                if p.exists() {
                    files.push(p);
                }
            }
            let summary = serde_json::to_value(report.summary())
                .map_err(|e| pipeline_core::Error::Internal(format!("quality summary: {e}")))?;
            let json = serde_json::json!({
                "mode": if self.standalone { "standalone" } else { "inline" },
                "summary": summary,
                "exit_code": report.exit_code(),
                "reports": files,
            });
            Ok(QualityOutcome { json, html, files })
        }
    }
}

/// Profiles up to `max_rows` rows of `inputs` as read (no stage runs) and suggests a rules
/// file from what it saw (thresholds from the data, Deequ's constraint suggestion): the
/// TOML text of `tickpipe validate --suggest FILE`, for the user to edit.
#[cfg(feature = "validate")]
pub fn suggest_rules(inputs: &[String], cfg: &Config, max_rows: u64) -> Result<String> {
    let mut stream = crate::Pipeline::builder()
        .inputs(inputs.iter().cloned())
        .config(cfg.clone())
        .stages(crate::StageSet::none())
        .validation(Validation::Off)
        .normalize(false)
        .output(crate::Output::Discard)
        .build()?
        .stream()?;
    let mut profiler = pipeline_validate::Profiler::default();
    let mut seen = 0u64;
    for batch in stream.by_ref() {
        let batch = batch?;
        seen += batch.num_rows() as u64;
        profiler.add(&pipeline_core::Chunk::with_first_line(batch, 0, 0, 2)?)?;
        if seen >= max_rows {
            stream.stop();
            break;
        }
    }
    match stream.finish() {
        Ok(_) | Err(pipeline_core::Error::Cancelled) => {}
        Err(e) => return Err(e),
    }
    profiler.suggest().to_toml()
}

#[cfg(not(feature = "validate"))]
mod without_validate {
    use super::*;

    /// Validation is left out of this build.
    #[derive(Debug)]
    pub(crate) struct Quality;

    impl Quality {
        pub(crate) fn plan(v: &Validation, _cfg: &Config) -> Result<Option<Quality>> {
            match v {
                Validation::Standalone { .. } => Err(crate::stages::missing_feature(
                    "validate",
                    "tickpipe validate",
                )),
                _ => Ok(None),
            }
        }
        pub(crate) fn stages(&self) -> Vec<StageFactory> {
            Vec::new()
        }
        pub(crate) fn workers(&self, requested: usize) -> usize {
            requested
        }
        pub(crate) fn keep_state(&mut self, _path: PathBuf) {}
        pub(crate) fn prefetch_history(&self, _out: Option<&Path>) {}
        pub(crate) fn start_report(&self, _w: usize, _t: &SourceTable, _out: Option<&Path>) {}
        pub(crate) fn absorb(&self, _path: &Path) -> Result<()> {
            Ok(())
        }
        pub(crate) fn finish(
            &self,
            _table: &SourceTable,
            _ledger: &Ledger,
            _out: Option<&Path>,
        ) -> Result<QualityOutcome> {
            Ok(QualityOutcome {
                json: Value::Null,
                html: String::new(),
                files: Vec::new(),
            })
        }
    }
}

#[cfg(not(feature = "validate"))]
pub(crate) use without_validate::*;

/// The inline quality report (JSON) in a dataset folder.
pub const QUALITY_JSON: &str = "quality.json";

/// The verdict of the quality report in folder `dir` (its [`QUALITY_JSON`]); `None` when
/// there is none or it cannot be read.
pub fn quality_verdict(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(QUALITY_JSON)).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["verdict"].as_str().map(str::to_string)
}
/// The inline quality report (HTML) in a dataset folder.
pub const QUALITY_HTML: &str = "quality.html";
