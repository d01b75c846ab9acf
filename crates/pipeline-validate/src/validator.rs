//! [`Validator`]: the seed design's `DataValidator` API (`validate_chunk`, `validate_file`,
//! `summary()`, `generate_report()`) over the same stage the engine runs, in one thread.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pipeline_core::{Chunk, Config, Emitter, Error, Reject, Result, SourceId, SourceTable, Stage};

use crate::plan::ValidationPlan;
use crate::report::{FinishOptions, Mode, Summary, ValidationReport, Verdict, verdict_of};
use crate::rules::{CustomRule, RuleInfo, Severity, Unit};
use crate::rulesfile::RulesFile;
use crate::stage::ValidateStage;

/// One finding: which rule, on which row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Rule name.
    pub rule: String,
    /// The severity it ran with.
    pub severity: Severity,
    /// The source (file) id.
    pub source: SourceId,
    /// 1-based line.
    pub line: u64,
}

/// What one [`Validator::validate_chunk`] call produced.
#[derive(Debug, Default)]
pub struct ChunkResult {
    /// The rows that passed every error-severity rule (`None` when none did).
    pub kept: Option<Chunk>,
    /// Quarantined rows, with rule, severity and values in `detail`.
    pub rejects: Vec<Reject>,
    /// Every finding decided during the call (stateful rules may decide about rows of earlier
    /// chunks: a price jump needs the two rows after it).
    pub findings: Vec<Finding>,
}

/// What [`Validator::validate_file`] produced.
#[derive(Debug, Default)]
pub struct FileResult {
    /// The id the file's rows were given.
    pub source: SourceId,
    /// Rows read.
    pub rows: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Findings decided while the file was read.
    pub findings: Vec<Finding>,
}

/// Validates chunks in one thread with per-symbol state, like the seed's `DataValidator`.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
/// use pipeline_core::Chunk;
/// use pipeline_validate::{Validator, Verdict};
///
/// let t0 = 1_609_770_600_000_000_000i64; // 2021-01-04 14:30 UTC, the NYSE open
/// let batch = RecordBatch::try_from_iter([
///     ("ts", Arc::new(TimestampNanosecondArray::from(vec![t0, t0 + 1_000_000]).with_timezone("UTC")) as ArrayRef),
///     ("symbol", Arc::new(StringArray::from(vec!["AAPL", "AAPL"])) as ArrayRef),
///     ("price", Arc::new(Float64Array::from(vec![130.01, 130.02])) as ArrayRef),
///     ("size", Arc::new(Float64Array::from(vec![100.0, 200.0])) as ArrayRef),
///     ("bid", Arc::new(Float64Array::from(vec![130.0, 130.05])) as ArrayRef),
///     ("ask", Arc::new(Float64Array::from(vec![130.02, 130.01])) as ArrayRef),
/// ])?;
/// let mut v = Validator::financial()?;
/// let out = v.validate_file("ticks.csv", [Chunk::with_first_line(batch, 0, 0, 2)])?;
/// assert_eq!(out.quarantined, 1); // line 3: bid above ask
/// assert_eq!(v.summary().failures_by_rule["crossed_quote"], 1);
/// let report = v.generate_report()?;
/// assert_eq!(report.rule("crossed_quote").unwrap().examples[0].file, "ticks.csv");
/// assert_eq!(report.verdict, Verdict::Fail); // 1 of 2 rows is above the 1% error threshold
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Validator {
    cfg: Config,
    file: Option<RulesFile>,
    custom: Vec<CustomRule>,
    running: Option<(ValidationPlan, ValidateStage)>,
    names: BTreeMap<SourceId, String>,
    history: Option<PathBuf>,
    report: Option<ValidationReport>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("custom", &self.custom.len())
            .field("started", &self.running.is_some())
            .finish()
    }
}

impl Validator {
    /// A validator with `cfg`'s `[validation]` settings (and its rules file, if named).
    pub fn new(cfg: &Config) -> Result<Self> {
        cfg.validation.validate()?;
        Ok(Validator {
            cfg: cfg.clone(),
            file: None,
            custom: Vec::new(),
            running: None,
            names: BTreeMap::new(),
            history: None,
            report: None,
        })
    }

    /// The `financial` preset with default settings.
    pub fn financial() -> Result<Self> {
        Self::new(&Config::default())
    }

    /// No rules until some are added (`preset = "none"`).
    pub fn empty() -> Result<Self> {
        let mut cfg = Config::default();
        cfg.validation.preset = "none".into();
        Self::new(&cfg)
    }

    fn not_started(&self) -> Result<()> {
        if self.running.is_some() {
            return Err(Error::Usage(
                "rules must be added before the first chunk is validated".into(),
            ));
        }
        Ok(())
    }

    /// Turns on built-in rules at the severities given (e.g. [`financial_rules`]).
    ///
    /// [`financial_rules`]: crate::financial_rules
    pub fn add_rules(&mut self, rules: impl IntoIterator<Item = RuleInfo>) -> Result<()> {
        self.not_started()?;
        for r in rules {
            self.cfg
                .validation
                .severity
                .insert(r.name.clone(), r.severity.name().to_string());
        }
        Ok(())
    }

    /// Adds a custom rule (Rust closure or expression).
    pub fn add_rule(&mut self, rule: CustomRule) -> Result<()> {
        self.not_started()?;
        self.custom.push(rule);
        Ok(())
    }

    /// Uses a rules file (replacing `[validation] rules_file`).
    pub fn set_rules_file(&mut self, file: RulesFile) -> Result<()> {
        self.not_started()?;
        self.file = Some(file);
        Ok(())
    }

    /// Keeps the metrics history in `dir` (read and rewritten by `generate_report`).
    pub fn set_history_dir(&mut self, dir: impl Into<PathBuf>) {
        self.history = Some(dir.into());
    }

    fn running(&mut self) -> Result<&mut (ValidationPlan, ValidateStage)> {
        if self.report.is_some() {
            return Err(Error::Usage(
                "the report was generated: no more chunks".into(),
            ));
        }
        if self.running.is_none() {
            let plan = ValidationPlan::with_rules(
                &self.cfg,
                Mode::Standalone,
                self.file.as_ref(),
                self.custom.clone(),
            )?;
            let mut stage = plan.stage()?;
            stage.log = Some(Vec::new());
            self.running = Some((plan, stage));
        }
        self.running
            .as_mut()
            .ok_or_else(|| Error::Internal("validator not started".into()))
    }

    /// Validates one chunk (rows of one source, in order per symbol).
    pub fn validate_chunk(&mut self, chunk: Chunk) -> Result<ChunkResult> {
        let (plan, stage) = self.running()?;
        let _ = plan;
        let mut em = Emitter::default();
        stage.process(chunk, &mut em)?;
        Ok(self.result(em))
    }

    fn result(&mut self, mut em: Emitter) -> ChunkResult {
        let mut kept = em.take_chunks();
        let rejects = em.take_rejects();
        let findings = self.drain_findings();
        ChunkResult {
            kept: kept.pop(),
            rejects,
            findings,
        }
    }

    /// Findings logged since the last call that no call returned yet: those decided by
    /// [`Validator::generate_report`] (the last symbol-days' price jumps and spread
    /// outliers).
    pub fn drain_findings(&mut self) -> Vec<Finding> {
        let Some((plan, stage)) = self.running.as_mut() else {
            return Vec::new();
        };
        let rules = plan.rule_info();
        stage
            .log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
            .into_iter()
            .map(|h| Finding {
                rule: rules[h.rule].0.clone(),
                severity: rules[h.rule].1,
                source: h.source,
                line: h.line,
            })
            .collect()
    }

    /// Validates a file given as its chunks (reading files is pipeline-io's job:
    /// `pipeline_io::open_source` gives them). Its rows get a new source id, named `name`
    /// in examples and reports.
    pub fn validate_file(
        &mut self,
        name: impl Into<String>,
        chunks: impl IntoIterator<Item = Result<Chunk>>,
    ) -> Result<FileResult> {
        let id = self.names.len() as SourceId;
        self.names.insert(id, name.into());
        let mut res = FileResult {
            source: id,
            ..FileResult::default()
        };
        for c in chunks {
            let c = c?;
            let seq = c.seq();
            let c = Chunk::new(c.into_batch(), id, seq)?;
            res.rows += c.num_rows() as u64;
            let out = self.validate_chunk(c)?;
            res.quarantined += out.rejects.len() as u64;
            res.findings.extend(out.findings);
        }
        Ok(res)
    }

    /// Names source `id` (for chunks passed to [`Validator::validate_chunk`] directly).
    pub fn name_source(&mut self, id: SourceId, name: impl Into<String>) {
        self.names.insert(id, name.into());
    }

    /// Totals so far, findings by rule and the verdict on what has been decided (the
    /// report's verdict adds the day-level and dataset rules).
    pub fn summary(&self) -> Summary {
        if let Some(r) = &self.report {
            return r.summary();
        }
        let Some((plan, stage)) = &self.running else {
            return Summary {
                rows_checked: 0,
                total_results: 0,
                rows_quarantined: 0,
                failures_by_rule: BTreeMap::new(),
                verdict: Verdict::Pass,
            };
        };
        let acc = stage.acc();
        let rules = plan.rule_info();
        let results = plan.row_results(acc);
        let mut by_rule = BTreeMap::new();
        let mut quarantined = 0;
        for (i, n) in acc.failed.iter().enumerate() {
            if *n > 0 {
                by_rule.insert(rules[i].0.clone(), *n);
                if rules[i].1 == Severity::Error && rules[i].2 == Unit::Rows && plan.quarantines(i)
                {
                    quarantined += n;
                }
            }
        }
        Summary {
            rows_checked: acc.rows,
            total_results: acc.failed.iter().sum(),
            rows_quarantined: quarantined,
            failures_by_rule: by_rule,
            verdict: verdict_of(&results),
        }
    }

    /// Finishes (closes open symbol-days, runs the dataset rules) and returns the report;
    /// later calls return the same report.
    pub fn generate_report(&mut self) -> Result<&ValidationReport> {
        if self.report.is_none() {
            let mut table = SourceTable::default();
            let max = self.names.keys().last().copied().unwrap_or(0);
            for i in 0..=max {
                table.add(
                    self.names
                        .get(&i)
                        .cloned()
                        .unwrap_or_else(|| format!("source {i}")),
                );
            }
            self.running()?;
            let Some((plan, stage)) = self.running.as_mut() else {
                return Err(Error::Internal("validator not started".into()));
            };
            stage.flush()?;
            let opts = FinishOptions {
                sources: Some(&table),
                ledger: None,
                history_dir: self.history.as_deref(),
            };
            self.report = Some(plan.finish(&opts)?);
        }
        self.report
            .as_ref()
            .ok_or_else(|| Error::Internal("no report".into()))
    }
}
