//! The run summary: a short human report on stderr and, with `--summary-json`, a JSON object
//! whose keys scripts rely on.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use pipeline_core::{Ledger, StageMetrics};

/// One failed input file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailedFile {
    /// The input file.
    pub file: String,
    /// Why it failed.
    pub error: String,
}

/// Per-stage figures in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct StageSummary {
    /// Stage name.
    pub name: String,
    /// Rows in, rows out, bytes, busy time.
    #[serde(flatten)]
    pub metrics: StageMetrics,
    /// Rows per busy second.
    pub rows_per_second: f64,
}

/// The summary of one command. `rows_read == rows_written + rows_quarantined +
/// sum(rows_removed)` always holds (the engine checks it before this is built).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The command (`run`, `convert`, `bars`).
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
    /// Bars written (`bars` command only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bars_written: Option<u64>,
}

impl RunSummary {
    /// Builds the summary from the engine's figures.
    #[allow(clippy::too_many_arguments)] // One call site; a builder would only add noise.
    pub fn new(
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
        RunSummary {
            command: command.to_string(),
            rows_read: ledger.read,
            rows_written: ledger.written,
            rows_quarantined: ledger.quarantined_total(),
            quarantined_by_reason: ledger.quarantined.clone(),
            rows_removed: ledger.removed.clone(),
            values_repaired: ledger.repaired.clone(),
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
        }
    }

    /// Prints the human summary to stderr.
    pub fn print_human(&self) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(
            e,
            "{}: {} rows in {:.2}s ({:.2} M rows/s, {:.1} MB/s), peak RSS {:.0} MiB",
            self.command,
            self.rows_read,
            self.wall_seconds,
            self.rows_per_second / 1e6,
            self.mb_per_second,
            self.peak_rss_bytes as f64 / (1 << 20) as f64
        );
        let _ = writeln!(e, "  ledger: {}", self.ledger);
        for (rule, n) in &self.rows_removed {
            let _ = writeln!(e, "    removed by {rule}: {n}");
        }
        for (reason, n) in &self.quarantined_by_reason {
            let _ = writeln!(e, "    quarantined ({reason}): {n}");
        }
        for (rule, n) in &self.values_repaired {
            let _ = writeln!(e, "    repaired by {rule}: {n} values");
        }
        if let Some(b) = self.bars_written {
            let _ = writeln!(e, "  bars written: {b}");
        }
        let _ = writeln!(
            e,
            "  files: {} ok, {} failed; {} output files",
            self.files_ok,
            self.files_failed.len(),
            self.outputs.len()
        );
        for f in &self.files_failed {
            let _ = writeln!(e, "    FAILED {}: {}", f.file, f.error);
        }
        for r in &self.reports {
            let _ = writeln!(e, "  report: {}", r.display());
        }
    }

    /// Writes the JSON summary to `path` (`-` for stdout).
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        if path == Path::new("-") {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n").map_err(|e| pipeline_core::Error::io(path, e))?;
        }
        Ok(())
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
        let s = RunSummary::new("run", &l, &[], 1, vec![], 100, 50, 1.0, vec![], vec![]);
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        for key in [
            "rows_read",
            "rows_written",
            "rows_quarantined",
            "rows_removed",
            "files_ok",
            "files_failed",
            "bytes_read",
            "wall_seconds",
            "rows_per_second",
            "peak_rss_bytes",
            "outputs",
            "reports",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["rows_removed"]["dedupe_exact"], 2);
        assert_eq!(v["rows_quarantined"], 1);
    }
}
