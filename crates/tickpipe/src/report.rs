//! [`RunReport`]: what one run did, as `summary.json` holds it. The keys are documented in
//! the README ("The run summary"); scripts rely on them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use pipeline_core::{Error, Ledger, Result, StageMetrics};

/// One failed input file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailedFile {
    /// The input file.
    pub file: String,
    /// Why it failed.
    pub error: String,
}

/// Per-stage figures in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageSummary {
    /// Stage name.
    pub name: String,
    /// Rows in, rows out, bytes, busy time.
    #[serde(flatten)]
    pub metrics: StageMetrics,
    /// Rows per busy second.
    pub rows_per_second: f64,
}

/// What a run into a dataset with a changed history kept and processed again
/// ([`RunReport::reprocessed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reprocessed {
    /// The first input that differs from the recorded ones (changed, or new where a recorded
    /// one was removed or a new one sorts before recorded ones).
    pub first_changed: String,
    /// Recorded inputs kept as they were (up to the last segment end before the change).
    pub kept: usize,
    /// Inputs processed again or for the first time.
    pub processed: usize,
}

/// A run into a finished dataset whose configuration changed only in feature parameters:
/// the feature columns were computed again from the rows the dataset holds, without reading
/// or cleaning the inputs ([`RunReport::refeatured`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refeatured {
    /// The configuration keys that changed.
    pub changed: Vec<String>,
    /// Data files rewritten.
    pub files: usize,
    /// Rows whose features were computed again.
    pub rows: u64,
    /// Seconds the re-run took.
    pub seconds: f64,
}

/// Where a live run started and stopped in its followed file (1-based line numbers, byte
/// offsets): `started` is the start of the file for a first run, or where the run it
/// continues stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSpan {
    /// The line and byte the run started reading at.
    pub started: (u64, u64),
    /// The line and byte of the first record it did not read (where a later run continues).
    pub stopped: Option<(u64, u64)>,
}

/// The report of one run. `rows_read + sum(rows_added) == rows_written + rows_quarantined + sum(rows_removed)`
/// always holds (the engine checks it before the report is built).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// The command or label of the run (`run`, `convert`, `bars`, ...).
    pub command: String,
    /// Data rows read (header lines excluded).
    pub rows_read: u64,
    /// Rows written to the output.
    pub rows_written: u64,
    /// Rows quarantined (malformed, late).
    pub rows_quarantined: u64,
    /// Quarantined rows by reason.
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Rows removed, by rule.
    pub rows_removed: BTreeMap<String, u64>,
    /// Values repaired in place, by rule.
    pub values_repaired: BTreeMap<String, u64>,
    /// Rows stages made that no input row became (empty session bars), by rule:
    /// `rows_read + sum(rows_added) = rows_written + rows_quarantined + sum(rows_removed)`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rows_added: BTreeMap<String, u64>,
    /// Input files fully processed.
    pub files_ok: u64,
    /// Input files that failed, with the error.
    pub files_failed: Vec<FailedFile>,
    /// Input bytes read (compressed size for compressed files).
    pub bytes_read: u64,
    /// Bytes written to outputs.
    pub bytes_written: u64,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// Rows read per wall second.
    pub rows_per_second: f64,
    /// Input megabytes (10^6) read per wall second.
    pub mb_per_second: f64,
    /// Peak resident memory of the process, in bytes (VmHWM).
    pub peak_rss_bytes: u64,
    /// Output files written.
    pub outputs: Vec<PathBuf>,
    /// Report files (the quarantine file, when rows were quarantined or removed).
    pub reports: Vec<PathBuf>,
    /// The ledger equation as text.
    pub ledger: String,
    /// Per-stage metrics.
    pub stages: Vec<StageSummary>,
    /// Bars written (bar runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bars_written: Option<u64>,
    /// The data-quality report (pipeline-validate): mode, summary (verdict, findings by rule,
    /// rows checked and quarantined), the exit code the verdict asks for, report files.
    /// `null` when validation did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<serde_json::Value>,
    /// The performance summary (pipeline-monitor): CPU and memory average and maximum,
    /// throughput, per-stage, per-worker and per-reader tables, the bottleneck, alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<serde_json::Value>,
    /// The performance headline: peak RSS, busiest stage, alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance_headline: Option<String>,
    /// The cache's figures (pipeline-cache): hits, misses and hit rate per tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<serde_json::Value>,
    /// Set when the run quarantined a larger share of its rows than `[pipeline]
    /// max_quarantine_fraction` allows: the message says how many and why. The output is
    /// complete, but the run is not a success (the CLI exits 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_limit: Option<String>,
    /// True when nothing was run because the output folder already held this run, complete
    /// (the figures are that run's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub up_to_date: bool,
    /// For an incremental run: `(added, recorded)`, the inputs it processed and the inputs
    /// of the dataset it extended (the ledger covers all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appended: Option<(usize, usize)>,
    /// A run into a finished dataset whose history changed (an input in the middle changed,
    /// was removed or inserted): what it kept and what it processed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprocessed: Option<Reprocessed>,
    /// A run whose configuration changed only in feature parameters: what was recomputed
    /// (the inputs were not read again; the other figures are the dataset's run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refeatured: Option<Refeatured>,
    /// A run whose configuration changed only in settings of the quality report (rule
    /// thresholds, the verdict, history checks: `pipeline_validate::REPORT_ONLY_KEYS`): the
    /// keys. The rows and the stage state were kept; only the end-of-input flush ran again,
    /// and the quality report was made with the new values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_only: Option<Vec<String>>,
    /// A run over a finished dataset whose configuration changed in settings of the
    /// streaming stages (`[preprocessing]`, `[validation]` keys the rules read): the keys.
    /// The dataset was made again from the inputs; its earlier history is kept in the
    /// record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<Vec<String>>,
    /// Live (`--follow`) runs into a dataset folder: where this run started and stopped in
    /// the followed file. A later live run of the same command continues from `stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSpan>,
    /// Trades and quotes runs: what the as-of join did (trades and quotes read, quotes
    /// applied or ignored, trades by `quote_match`, symbol-days written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taq: Option<serde_json::Value>,
    /// The row ledger itself (not serialised: the fields above carry its figures).
    #[serde(skip)]
    pub row_ledger: Ledger,
}

impl RunReport {
    /// Builds the report from the engine's figures.
    #[allow(clippy::too_many_arguments)] // Called from one place in this crate.
    pub(crate) fn new(
        command: &str,
        ledger: &Ledger,
        stages: &[(String, StageMetrics)],
        files_ok: u64,
        files_failed: Vec<FailedFile>,
        bytes_read: u64,
        bytes_written: u64,
        wall_seconds: f64,
        outputs: Vec<PathBuf>,
        reports: Vec<PathBuf>,
    ) -> Self {
        let secs = wall_seconds.max(1e-9);
        RunReport {
            command: command.to_string(),
            rows_read: ledger.read,
            rows_written: ledger.written,
            rows_quarantined: ledger.quarantined_total(),
            quarantined_by_reason: ledger.quarantined.clone(),
            rows_removed: ledger.removed.clone(),
            values_repaired: ledger.repaired.clone(),
            rows_added: ledger.added.clone(),
            files_ok,
            files_failed,
            bytes_read,
            bytes_written,
            wall_seconds,
            rows_per_second: ledger.read as f64 / secs,
            mb_per_second: bytes_read as f64 / 1e6 / secs,
            peak_rss_bytes: pipeline_parallel::peak_rss(),
            outputs,
            reports,
            ledger: ledger.equation(),
            stages: stages
                .iter()
                .map(|(name, m)| StageSummary {
                    name: name.clone(),
                    rows_per_second: m.rows_per_second(),
                    metrics: m.clone(),
                })
                .collect(),
            bars_written: None,
            validation: None,
            performance: None,
            performance_headline: None,
            cache: None,
            quarantine_limit: None,
            up_to_date: false,
            appended: None,
            reprocessed: None,
            refeatured: None,
            report_only: None,
            rerun: None,
            live: None,
            taq: None,
            row_ledger: ledger.clone(),
        }
    }

    /// True when every input file was processed (none is in `files_failed`).
    pub fn all_files_ok(&self) -> bool {
        self.files_failed.is_empty()
    }

    /// True when the run is a success: every file processed and the quarantine within its
    /// limit.
    pub fn succeeded(&self) -> bool {
        self.all_files_ok() && self.quarantine_limit.is_none()
    }

    /// The exit code the validation verdict asks for (`tickpipe validate`: 0 pass, 1 fail),
    /// when validation ran.
    pub fn validation_exit_code(&self) -> Option<i32> {
        self.validation
            .as_ref()
            .and_then(|v| v.get("exit_code"))
            .and_then(|c| c.as_i64())
            .map(|c| c as i32)
    }

    /// The report as pretty-printed JSON (the `summary.json` format).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("cannot serialise the run report: {e}")))
    }

    /// Writes the JSON report to `path` (through a temporary file and a rename).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        crate::output::write_atomic(path, &(self.to_json()? + "\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_keys() {
        let mut l = Ledger::default();
        l.add_read(10);
        l.add_written(7);
        l.add_removed("dedupe_exact", 2);
        l.add_quarantined("bad_number", 1);
        let s = RunReport::new("run", &l, &[], 1, vec![], 100, 50, 1.0, vec![], vec![]);
        let v: serde_json::Value = serde_json::from_str(&s.to_json().unwrap()).unwrap();
        for key in [
            "rows_read",
            "rows_written",
            "rows_quarantined",
            "quarantined_by_reason",
            "rows_removed",
            "values_repaired",
            "files_ok",
            "files_failed",
            "bytes_read",
            "bytes_written",
            "wall_seconds",
            "rows_per_second",
            "mb_per_second",
            "peak_rss_bytes",
            "outputs",
            "reports",
            "ledger",
            "stages",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["rows_removed"]["dedupe_exact"], 2);
        assert_eq!(v["rows_quarantined"], 1);
        assert!(v.get("bars_written").is_none());
        let back: RunReport = serde_json::from_value(v).unwrap();
        assert_eq!(back.rows_read, 10);
    }
}
