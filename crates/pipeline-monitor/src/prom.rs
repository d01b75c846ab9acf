//! The Prometheus text exposition format (version 0.0.4) of a run's metrics, and an atomic
//! file write for `metrics.prom` (node_exporter's textfile collector reads such files).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use pipeline_core::{Error, HistogramSnapshot, LiveSnapshot, Result};

use crate::alerts::{Alert, AlertKind};
use crate::sample::Sample;

/// Escapes a label value: backslash, double quote and newline.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes a metric family: `# HELP`, `# TYPE` and one line per `(labels, value)`.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str, rows: &[(String, f64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        for (labels, v) in rows {
            let v = if v.is_finite() { *v } else { 0.0 };
            if labels.is_empty() {
                let _ = writeln!(self.0, "{name} {v}");
            } else {
                let _ = writeln!(self.0, "{name}{{{labels}}} {v}");
            }
        }
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.family(name, kind, help, &[(String::new(), v)]);
    }

    /// A summary family of chunk latencies: p50, p99 and the maximum as quantiles, plus
    /// `_sum` and `_count`.
    fn latency(&mut self, name: &str, help: &str, rows: &[(String, &HistogramSnapshot)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} summary");
        for (labels, h) in rows {
            let sep = if labels.is_empty() { "" } else { "," };
            for (q, v) in [
                ("0.5", h.quantile(0.5)),
                ("0.99", h.quantile(0.99)),
                ("1", h.max_ns),
            ] {
                let _ = writeln!(
                    self.0,
                    "{name}{{{labels}{sep}quantile=\"{q}\"}} {}",
                    v as f64 / 1e9
                );
            }
            let braces = |s: &str| {
                if s.is_empty() {
                    String::new()
                } else {
                    format!("{{{s}}}")
                }
            };
            let _ = writeln!(
                self.0,
                "{name}_sum{} {}",
                braces(labels),
                h.sum_ns as f64 / 1e9
            );
            let _ = writeln!(self.0, "{name}_count{} {}", braces(labels), h.count);
        }
    }
}

/// Renders the metrics of a run: resources and rates from the latest `sample`, counters
/// from the engine's `live` snapshot (when the engine began), the memory limit and alerts.
pub fn render_prometheus(
    sample: &Sample,
    live: Option<&LiveSnapshot>,
    memory_limit: u64,
    peak_rss: u64,
    alerts: &[Alert],
) -> String {
    let mut o = Out(String::with_capacity(8192));
    let r = &sample.resources;
    o.one(
        "tickpipe_run_elapsed_seconds",
        "gauge",
        "Seconds since the monitor started.",
        sample.t,
    );
    o.one(
        "tickpipe_process_cpu_percent",
        "gauge",
        "Process CPU use over the last interval, percent of one core.",
        r.cpu_pct,
    );
    o.one(
        "tickpipe_process_resident_memory_bytes",
        "gauge",
        "Process resident memory.",
        r.rss_bytes as f64,
    );
    o.one(
        "tickpipe_process_peak_resident_memory_bytes",
        "gauge",
        "Peak process resident memory so far.",
        peak_rss.max(r.rss_bytes) as f64,
    );
    o.one(
        "tickpipe_process_virtual_memory_bytes",
        "gauge",
        "Process virtual memory.",
        r.virtual_bytes as f64,
    );
    o.one(
        "tickpipe_memory_limit_bytes",
        "gauge",
        "The run's memory limit ([pipeline] memory_limit).",
        memory_limit as f64,
    );
    o.one(
        "tickpipe_process_disk_read_bytes_total",
        "counter",
        "Bytes the process read from storage.",
        r.disk_read_bytes as f64,
    );
    o.one(
        "tickpipe_process_disk_written_bytes_total",
        "counter",
        "Bytes the process wrote to storage.",
        r.disk_written_bytes as f64,
    );
    o.one(
        "tickpipe_process_open_fds",
        "gauge",
        "Open file descriptors of the process.",
        r.open_files as f64,
    );
    o.one(
        "tickpipe_system_cpu_percent",
        "gauge",
        "Whole-system CPU use over the last interval, percent of all cores.",
        r.system_cpu_pct,
    );
    o.one(
        "tickpipe_system_memory_used_bytes",
        "gauge",
        "Whole-system memory in use.",
        r.system_memory_used_bytes as f64,
    );
    o.one(
        "tickpipe_system_memory_total_bytes",
        "gauge",
        "Whole-system memory.",
        r.system_memory_total_bytes as f64,
    );
    o.one(
        "tickpipe_rows_per_second",
        "gauge",
        "Rows read per second over the last interval.",
        sample.rows_per_second,
    );

    let mut by_kind: BTreeMap<AlertKind, u64> = AlertKind::ALL.iter().map(|k| (*k, 0)).collect();
    for a in alerts {
        *by_kind.entry(a.kind).or_default() += 1;
    }
    let rows: Vec<(String, f64)> = by_kind
        .iter()
        .map(|(k, n)| (format!("kind=\"{}\"", k.name()), *n as f64))
        .collect();
    o.family(
        "tickpipe_alerts_total",
        "counter",
        "Alerts raised, by kind.",
        &rows,
    );

    let Some(l) = live else { return o.0 };
    o.one(
        "tickpipe_rows_read_total",
        "counter",
        "Rows read, including quarantined ones.",
        l.rows_read as f64,
    );
    o.one(
        "tickpipe_rows_written_total",
        "counter",
        "Rows written.",
        l.rows_written as f64,
    );
    o.one(
        "tickpipe_rows_quarantined_total",
        "counter",
        "Rows quarantined.",
        l.rows_quarantined as f64,
    );
    o.one(
        "tickpipe_rows_removed_total",
        "counter",
        "Rows removed by cleaning rules.",
        l.rows_removed as f64,
    );
    o.one(
        "tickpipe_bytes_read_total",
        "counter",
        "Input bytes consumed.",
        l.readers.iter().map(|r| r.bytes).sum::<u64>() as f64,
    );
    o.one(
        "tickpipe_sources_done_total",
        "counter",
        "Input sources finished.",
        l.sources_done as f64,
    );

    let stage = |s: &str| format!("stage=\"{}\"", label(s));
    let per_stage = |f: &dyn Fn(&pipeline_core::StageSnapshot) -> f64| -> Vec<(String, f64)> {
        l.stages.iter().map(|s| (stage(&s.name), f(s))).collect()
    };
    o.family(
        "tickpipe_stage_rows_in_total",
        "counter",
        "Rows handed to each stage.",
        &per_stage(&|s| s.rows_in as f64),
    );
    o.family(
        "tickpipe_stage_rows_out_total",
        "counter",
        "Rows each stage emitted.",
        &per_stage(&|s| s.rows_out as f64),
    );
    o.family(
        "tickpipe_stage_bytes_in_total",
        "counter",
        "Arrow bytes handed to each stage.",
        &per_stage(&|s| s.bytes_in as f64),
    );
    o.family(
        "tickpipe_stage_bytes_out_total",
        "counter",
        "Arrow bytes each stage emitted.",
        &per_stage(&|s| s.bytes_out as f64),
    );
    o.family(
        "tickpipe_stage_busy_seconds_total",
        "counter",
        "Seconds inside each stage, over all workers.",
        &per_stage(&|s| s.busy_ns as f64 / 1e9),
    );
    let lat: Vec<(String, &HistogramSnapshot)> = l
        .stages
        .iter()
        .map(|s| (stage(&s.name), &s.latency))
        .collect();
    o.latency(
        "tickpipe_stage_chunk_seconds",
        "Time per chunk in each stage (quantile 1 is the maximum).",
        &lat,
    );
    o.latency(
        "tickpipe_read_chunk_seconds",
        "Time to read and decode one chunk (quantile 1 is the maximum).",
        &[(String::new(), &l.read_latency)],
    );

    let worker = |i: usize| format!("worker=\"{i}\"");
    let per_worker = |f: &dyn Fn(&pipeline_core::WorkerSnapshot) -> f64| -> Vec<(String, f64)> {
        l.workers
            .iter()
            .enumerate()
            .map(|(i, w)| (worker(i), f(w)))
            .collect()
    };
    o.family(
        "tickpipe_worker_rows_total",
        "counter",
        "Rows delivered to each worker.",
        &per_worker(&|w| w.rows_in as f64),
    );
    o.family(
        "tickpipe_worker_busy_seconds_total",
        "counter",
        "Seconds each worker spent in stages.",
        &per_worker(&|w| w.busy_ns as f64 / 1e9),
    );
    o.family(
        "tickpipe_worker_write_seconds_total",
        "counter",
        "Seconds each worker spent in its sink (blocked on output).",
        &per_worker(&|w| w.write_ns as f64 / 1e9),
    );
    o.family(
        "tickpipe_worker_wait_seconds_total",
        "counter",
        "Seconds each worker waited for input.",
        &per_worker(&|w| w.wait_ns as f64 / 1e9),
    );
    o.family(
        "tickpipe_worker_queue_depth",
        "gauge",
        "Chunks queued for each worker.",
        &per_worker(&|w| w.queued as f64),
    );
    o.family(
        "tickpipe_worker_backpressure_seconds_total",
        "counter",
        "Seconds readers waited for room on each worker's queue.",
        &per_worker(&|w| w.backpressure_ns as f64 / 1e9),
    );
    let lat: Vec<(String, &HistogramSnapshot)> = l
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| (worker(i), &w.latency))
        .collect();
    o.latency(
        "tickpipe_worker_chunk_seconds",
        "Time per delivery in each worker, stages plus writing (quantile 1 is the maximum).",
        &lat,
    );

    let reader = |i: usize| format!("reader=\"{i}\"");
    let per_reader = |f: &dyn Fn(&pipeline_core::ReaderSnapshot) -> f64| -> Vec<(String, f64)> {
        l.readers
            .iter()
            .enumerate()
            .map(|(i, r)| (reader(i), f(r)))
            .collect()
    };
    o.family(
        "tickpipe_reader_rows_total",
        "counter",
        "Rows each reader slot read.",
        &per_reader(&|r| r.rows as f64),
    );
    o.family(
        "tickpipe_reader_read_seconds_total",
        "counter",
        "Seconds each reader slot spent reading and decoding.",
        &per_reader(&|r| r.read_ns as f64 / 1e9),
    );
    o.family(
        "tickpipe_reader_blocked_seconds_total",
        "counter",
        "Seconds each reader slot was blocked on full worker queues.",
        &per_reader(&|r| r.blocked_ns as f64 / 1e9),
    );
    o.family(
        "tickpipe_reader_active",
        "gauge",
        "1 while the reader slot reads a source.",
        &per_reader(&|r| f64::from(u8::from(r.active))),
    );
    o.0
}

/// Writes `text` to `path` atomically: a sibling `.tmp` file renamed over it, so a scraper
/// never reads half a file.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn without_the_engine_only_resources_are_written() {
        let text = render_prometheus(&Sample::default(), None, 1 << 28, 0, &[]);
        assert!(
            text.contains("tickpipe_memory_limit_bytes 268435456\n"),
            "{text}"
        );
        assert!(!text.contains("tickpipe_rows_read_total"));
        assert!(text.contains("tickpipe_alerts_total{kind=\"memory\"} 0\n"));
    }

    #[test]
    fn writes_replace_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.prom");
        write_atomic(&p, "a 1\n").unwrap();
        write_atomic(&p, "b 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b 2\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no .tmp left"
        );
    }
}
