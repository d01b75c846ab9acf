//! The performance monitor in a run (pipeline-monitor): started before the engine, fed by its
//! live metrics, finished after the run with the ledger and the quality section; it writes
//! `report.html`, `metrics.prom` and `metrics.jsonl` into the output folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipeline_core::{Config, Ledger, Result};
use serde_json::Value;

/// What the monitor reports for the run report.
pub(crate) struct MonitorOutcome {
    /// The `performance` object.
    pub json: Value,
    /// One line: peak RSS, busiest stage, alerts.
    pub headline: String,
    /// Files written (report.html first).
    pub files: Vec<PathBuf>,
}

/// What the run tells the monitor at the end (read only with the monitor built in).
#[cfg_attr(not(feature = "monitor"), allow(dead_code))]
pub(crate) struct RunFacts<'a> {
    pub title: String,
    pub ledger: &'a Ledger,
    pub wall_seconds: f64,
    pub bytes_read: u64,
    pub files_ok: usize,
    pub files_failed: Vec<(String, String)>,
    pub quality_html: Option<String>,
    pub error: Option<String>,
}

#[cfg(feature = "monitor")]
mod with_monitor {
    use super::*;
    use pipeline_monitor::{Monitor, RunReportInputs};

    /// A running monitor.
    pub(crate) struct Monitoring(Monitor);

    impl Monitoring {
        /// Starts the monitor when `[monitor] enable` (files into `dir` when given).
        pub(crate) fn start(cfg: &Config, dir: Option<&Path>) -> Result<Option<Monitoring>> {
            if !cfg.monitor.enable {
                return Ok(None);
            }
            let m = Monitor::start(&cfg.monitor, dir, cfg.pipeline.memory_limit.0)?;
            Ok(Some(Monitoring(m)))
        }

        /// The engine's observer.
        pub(crate) fn observer(&self) -> Arc<pipeline_core::LiveMetrics> {
            self.0.observer()
        }

        /// Finishes: the summary, the report and the exports.
        pub(crate) fn finish(self, f: RunFacts<'_>) -> Result<MonitorOutcome> {
            let r = self.0.finish(&RunReportInputs {
                title: f.title,
                ledger: f.ledger.clone(),
                wall_seconds: f.wall_seconds,
                bytes_read: f.bytes_read,
                peak_rss_bytes: pipeline_parallel::peak_rss(),
                files_ok: f.files_ok,
                files_failed: f.files_failed,
                quality_html: f.quality_html,
                error: f.error,
            })?;
            Ok(MonitorOutcome {
                json: serde_json::to_value(&r.performance).map_err(|e| {
                    pipeline_core::Error::Internal(format!("performance summary: {e}"))
                })?,
                headline: r.performance.headline(),
                files: r.files(),
            })
        }
    }
}

#[cfg(feature = "monitor")]
pub(crate) use with_monitor::Monitoring;

#[cfg(not(feature = "monitor"))]
mod without_monitor {
    use super::*;

    /// The monitor is left out of this build.
    pub(crate) struct Monitoring;

    impl Monitoring {
        pub(crate) fn start(_cfg: &Config, _dir: Option<&Path>) -> Result<Option<Monitoring>> {
            Ok(None)
        }
        pub(crate) fn observer(&self) -> Arc<pipeline_core::LiveMetrics> {
            Arc::default()
        }
        pub(crate) fn finish(self, _f: RunFacts<'_>) -> Result<MonitorOutcome> {
            Ok(MonitorOutcome {
                json: Value::Null,
                headline: String::new(),
                files: Vec::new(),
            })
        }
    }
}

#[cfg(not(feature = "monitor"))]
pub(crate) use without_monitor::Monitoring;
