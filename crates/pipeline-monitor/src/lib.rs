//! tickpipe's performance monitor (the seed's `PerformanceMonitor`): where a run's time and
//! memory go, alerts before trouble, and exports people and tools read.
//!
//! - A sampler thread reads process and system resources ([`ResourceSample`]: CPU, RSS,
//!   virtual memory, disk I/O, open files) and the engine's live counters
//!   ([`pipeline_core::LiveMetrics`], filled by `pipeline_parallel::Runner::observer`) at
//!   `[monitor] interval_ms`, and records a [`Sample`].
//! - [`AlertRules`] turn samples into [`Alert`]s (memory near the limit, throughput drop,
//!   saturated queue, quarantine rate, idle worker): logged with `tracing`, passed to
//!   [`Monitor::on_alert`] callbacks, listed in the summary and the report.
//! - [`History`] keeps recent samples in a ring buffer and appends every one to
//!   `metrics.jsonl` ([`read_history`] reads it back).
//! - Exports: [`PerformanceSummary`] (the summary's `performance` object),
//!   [`render_prometheus`] (`metrics.prom`, refreshed each tick, and `GET /metrics` when
//!   `http_addr` is set), and [`render_report`] (`report.html`, self-contained).
//!
//! The engine does not depend on this crate: it fills a board of atomics defined in
//! pipeline-core, which the monitor reads. Everything the sampler does per tick costs tens of
//! microseconds, so the 1 s default costs far under 1% of a run.
//!
//! ```
//! use pipeline_core::{Ledger, MonitorConfig};
//! use pipeline_monitor::{Monitor, RunReportInputs};
//!
//! let out = tempfile::tempdir()?;
//! let monitor = Monitor::start(&MonitorConfig::default(), Some(out.path()), 256 << 20)?;
//! let observer = monitor.observer(); // -> Runner::new().observer(observer)
//! # drop(observer);
//! // ... run the engine; the sampler ticks every second ...
//! let mut ledger = Ledger::default();
//! ledger.add_read(10);
//! ledger.add_written(10);
//! let report = monitor.finish(&RunReportInputs { ledger, ..Default::default() })?;
//! println!("{}", report.performance.headline());
//! assert!(out.path().join("report.html").exists() && out.path().join("metrics.prom").exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod alerts;
mod history;
mod http;
mod monitor;
mod prom;
mod report;
mod resources;
mod sample;
mod summary;

pub use alerts::{Alert, AlertKind, AlertRules};
pub use history::{History, read_history};
pub use monitor::{
    AlertCallback, HISTORY_FILE, Monitor, MonitorReport, PROMETHEUS_FILE, REPORT_FILE,
};
pub use prom::{render_prometheus, write_atomic};
pub use report::{RunReportInputs, render_report};
pub use sample::{ResourceSample, Sample, StageSample, WorkerSample};
pub use summary::{
    AvgMax, Bottleneck, CpuStats, LatencyMs, MemoryStats, PerformanceSummary, ReaderPerf,
    StagePerf, Throughput, TimeShare, WorkerPerf,
};

use resources::peak_rss;
