//! [`Monitor`]: the sampler thread, alerts and exports of one run, driven by the facade.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pipeline_core::{Error, LiveMetrics, LiveSnapshot, MonitorConfig, Result};
use serde::Serialize;

use crate::alerts::{Alert, AlertRules};
use crate::history::History;
use crate::http::MetricsServer;
use crate::prom::{render_prometheus, write_atomic};
use crate::report::{RunReportInputs, render_report};
use crate::resources::ResourceSampler;
use crate::sample::Sample;
use crate::summary::{PerformanceSummary, Running, SummaryInputs};

/// File names written into the output folder.
pub const HISTORY_FILE: &str = "metrics.jsonl";
/// See [`HISTORY_FILE`].
pub const PROMETHEUS_FILE: &str = "metrics.prom";
/// See [`HISTORY_FILE`].
pub const REPORT_FILE: &str = "report.html";

/// A callback for alerts (called on the sampler thread, after the alert is logged).
pub type AlertCallback = Arc<dyn Fn(&Alert) + Send + Sync>;

/// What [`Monitor::finish`] returns: the summary's `performance` object and the files.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorReport {
    /// The summary's `performance` object.
    pub performance: PerformanceSummary,
    /// `report.html`, when an output folder was given.
    pub report_html: Option<PathBuf>,
    /// `metrics.prom`, when an output folder was given.
    pub metrics_prom: Option<PathBuf>,
    /// `metrics.jsonl`, when an output folder was given.
    pub history: Option<PathBuf>,
}

impl MonitorReport {
    /// Every file written, for the summary's `reports` list.
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.report_html, &self.metrics_prom, &self.history]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Mutable state behind the sampler.
struct State {
    resources: ResourceSampler,
    prev: Option<LiveSnapshot>,
    last_t: f64,
    history: History,
    rules: AlertRules,
    running: Running,
    alerts: Vec<Alert>,
    /// The first error writing a file; later ticks stop writing files and `finish`
    /// returns it.
    error: Option<Error>,
}

struct Inner {
    cfg: MonitorConfig,
    memory_limit: u64,
    out_dir: Option<PathBuf>,
    started: Instant,
    live: Arc<LiveMetrics>,
    state: Mutex<State>,
    callbacks: Mutex<Vec<AlertCallback>>,
    prom_text: Arc<Mutex<String>>,
    stop: Mutex<bool>,
    wake: Condvar,
    /// Nanoseconds spent in ticks so far (the monitor's own cost).
    tick_ns: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    /// One sampling step: resources, engine counters, alerts, history, exports.
    fn tick(&self) {
        let started = Instant::now();
        self.tick_inner();
        self.tick_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// The monitor's own time so far, in seconds.
    fn own_seconds(&self) -> f64 {
        self.tick_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    fn tick_inner(&self) {
        let fired = {
            let mut st = lock(&self.state);
            let t = self.started.elapsed().as_secs_f64();
            let dt = t - st.last_t;
            st.last_t = t;
            let resources = st.resources.sample();
            let now = self.live.snapshot();
            // A snapshot from another run (the engine began a new board) is not a baseline.
            let prev = st
                .prev
                .take()
                .filter(|p| now.as_ref().is_some_and(|n| n.elapsed_ns >= p.elapsed_ns));
            let sample = Sample::from_live(t, dt, resources, prev.as_ref(), now.as_ref());
            let fired = st.rules.check(&sample);
            st.alerts.extend(fired.iter().cloned());
            st.running.add(&sample);
            let peak = crate::peak_rss();
            let text =
                render_prometheus(&sample, now.as_ref(), self.memory_limit, peak, &st.alerts);
            if st.error.is_none() {
                let pushed = st.history.push(sample);
                let written = match &self.out_dir {
                    Some(d) => write_atomic(&d.join(PROMETHEUS_FILE), &text),
                    None => Ok(()),
                };
                if let Err(e) = pushed.and(written) {
                    tracing::warn!("monitor: cannot write its files: {e}");
                    st.error = Some(e);
                }
            }
            *lock(&self.prom_text) = text;
            st.prev = now;
            fired
        };
        for a in &fired {
            tracing::warn!(kind = a.kind.name(), subject = %a.subject, "alert: {}", a.message);
            let cbs = lock(&self.callbacks).clone();
            for cb in cbs {
                cb(a);
            }
        }
    }
}

/// Watches one run: samples resources and the engine's live metrics on a thread, raises
/// alerts, keeps the history, and writes `metrics.jsonl`, `metrics.prom` (refreshed every
/// tick) and, at [`Monitor::finish`], `report.html`.
///
/// ```
/// use pipeline_core::{Ledger, MonitorConfig};
/// use pipeline_monitor::{Monitor, RunReportInputs};
///
/// let dir = tempfile::tempdir()?;
/// let monitor = Monitor::start(&MonitorConfig::default(), Some(dir.path()), 256 << 20)?;
/// let _observer = monitor.observer(); // hand to `Runner::observer`
/// monitor.on_alert(|a| eprintln!("alert: {}", a.message));
/// // ... run the engine ...
/// let report = monitor.finish(&RunReportInputs { ledger: Ledger::default(), ..Default::default() })?;
/// assert!(report.report_html.unwrap().exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Monitor {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
    server: Option<MetricsServer>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("config", &self.inner.cfg)
            .field("out_dir", &self.inner.out_dir)
            .field("http", &self.server.as_ref().map(MetricsServer::addr))
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// Starts the sampler (and the HTTP endpoint when `cfg.http_addr` is set). Files go to
    /// `out_dir` (created if missing) when given; `memory_limit` in bytes is what the memory
    /// alert and the report measure against (0: none). `cfg.enable` is the caller's to
    /// check: this always starts.
    pub fn start(
        cfg: &MonitorConfig,
        out_dir: Option<&Path>,
        memory_limit: u64,
    ) -> Result<Monitor> {
        cfg.validate()?;
        if let Some(d) = out_dir {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let history = History::new(
            cfg.history_len,
            out_dir.map(|d| d.join(HISTORY_FILE)).as_deref(),
        )?;
        let prom_text = Arc::new(Mutex::new(String::new()));
        let server = match cfg.http_socket_addr()? {
            Some(addr) => Some(MetricsServer::start(addr, prom_text.clone())?),
            None => None,
        };
        let inner = Arc::new(Inner {
            cfg: cfg.clone(),
            memory_limit,
            out_dir: out_dir.map(Path::to_path_buf),
            started: Instant::now(),
            live: LiveMetrics::new(),
            state: Mutex::new(State {
                resources: ResourceSampler::new(),
                prev: None,
                last_t: 0.0,
                history,
                rules: AlertRules::new(cfg, memory_limit),
                running: Running::new(cfg.interval_ms as f64 / 1000.0),
                alerts: Vec::new(),
                error: None,
            }),
            callbacks: Mutex::new(Vec::new()),
            prom_text,
            stop: Mutex::new(false),
            wake: Condvar::new(),
            tick_ns: AtomicU64::new(0),
        });
        // A first export right away, so a scraper or a reader of metrics.prom never finds
        // nothing while the first interval runs.
        *lock(&inner.prom_text) = render_prometheus(&Sample::default(), None, memory_limit, 0, &[]);
        let interval = Duration::from_millis(cfg.interval_ms);
        let sampler = inner.clone();
        let thread = std::thread::Builder::new()
            .name("tickpipe-monitor".into())
            .spawn(move || {
                let mut next = Instant::now() + interval;
                loop {
                    {
                        let mut stop = lock(&sampler.stop);
                        while !*stop {
                            let now = Instant::now();
                            if now >= next {
                                break;
                            }
                            stop = sampler
                                .wake
                                .wait_timeout(stop, next - now)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        if *stop {
                            return;
                        }
                    }
                    sampler.tick();
                    // Fixed-rate ticks; after a stall, skip ahead rather than catch up.
                    next += interval;
                    let now = Instant::now();
                    if next < now {
                        next = now + interval;
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot spawn the monitor thread: {e}")))?;
        Ok(Monitor {
            inner,
            thread: Some(thread),
            server,
        })
    }

    /// The live metrics handle to pass to the engine (`Runner::observer`).
    pub fn observer(&self) -> Arc<LiveMetrics> {
        self.inner.live.clone()
    }

    /// Registers a callback for alerts (called on the sampler thread, in order).
    pub fn on_alert(&self, f: impl Fn(&Alert) + Send + Sync + 'static) {
        lock(&self.inner.callbacks).push(Arc::new(f));
    }

    /// Where the HTTP endpoint listens (the real port when `:0` was asked).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(MetricsServer::addr)
    }

    /// Alerts raised so far.
    pub fn alerts(&self) -> Vec<Alert> {
        lock(&self.inner.state).alerts.clone()
    }

    /// Takes a sample now (outside the timer), e.g. at a phase boundary.
    pub fn sample_now(&self) {
        self.inner.tick();
    }

    /// The performance summary so far (the seed's `performance_summary()`), from the
    /// samples taken and the engine's live counters.
    pub fn performance_summary(&self) -> PerformanceSummary {
        let st = lock(&self.inner.state);
        let live = self.inner.live.snapshot();
        let wall = self.inner.started.elapsed().as_secs_f64();
        PerformanceSummary::build(
            &st.running,
            &SummaryInputs {
                wall_seconds: wall,
                interval_seconds: self.inner.cfg.interval_ms as f64 / 1000.0,
                memory_limit: self.inner.memory_limit,
                peak_rss: crate::peak_rss(),
                rows_read: live.as_ref().map_or(0, |l| l.rows_read),
                bytes_read: live
                    .as_ref()
                    .map_or(0, |l| l.readers.iter().map(|r| r.bytes).sum()),
                live: live.as_ref(),
                alerts: &st.alerts,
                monitor_seconds: self.inner.own_seconds(),
            },
        )
    }

    /// Stops sampling after a last sample, and writes `metrics.prom`, `report.html` (and
    /// the end of `metrics.jsonl`) when an output folder was given. `inputs` carries what
    /// only the caller knows: the final ledger, wall time, files, the quality section.
    pub fn finish(mut self, inputs: &RunReportInputs) -> Result<MonitorReport> {
        self.stop_thread();
        self.inner.tick();
        self.server.take();
        let inner = &self.inner;
        let mut st = lock(&inner.state);
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        let live = inner.live.snapshot();
        let wall = if inputs.wall_seconds > 0.0 {
            inputs.wall_seconds
        } else {
            inner.started.elapsed().as_secs_f64()
        };
        let bytes_read = if inputs.bytes_read > 0 {
            inputs.bytes_read
        } else {
            live.as_ref()
                .map_or(0, |l| l.readers.iter().map(|r| r.bytes).sum())
        };
        let perf = PerformanceSummary::build(
            &st.running,
            &SummaryInputs {
                wall_seconds: wall,
                interval_seconds: inner.cfg.interval_ms as f64 / 1000.0,
                memory_limit: inner.memory_limit,
                peak_rss: inputs.peak_rss_bytes.max(crate::peak_rss()),
                rows_read: inputs.ledger.read,
                bytes_read,
                live: live.as_ref(),
                alerts: &st.alerts,
                monitor_seconds: inner.own_seconds(),
            },
        );
        let mut report = MonitorReport {
            performance: perf,
            report_html: None,
            metrics_prom: None,
            history: st.history.path().map(Path::to_path_buf),
        };
        if let Some(dir) = &inner.out_dir {
            let writing = Instant::now();
            // The last tick above wrote `metrics.prom` (a failed write returned its error).
            report.metrics_prom = Some(dir.join(PROMETHEUS_FILE));
            let html = render_report(inputs, &report.performance, &st.history.overview());
            let path = dir.join(REPORT_FILE);
            write_atomic(&path, &html)?;
            report.report_html = Some(path);
            // The page shows the ticks' cost; the summary adds what writing it took.
            let own = inner.own_seconds() + writing.elapsed().as_secs_f64();
            report.performance.set_monitor_seconds(own);
        }
        Ok(report)
    }

    fn stop_thread(&mut self) {
        *lock(&self.inner.stop) = true;
        self.inner.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_interval_and_stop_at_finish() {
        let cfg = MonitorConfig {
            interval_ms: 20,
            ..MonitorConfig::default()
        };
        let m = Monitor::start(&cfg, None, 0).unwrap();
        std::thread::sleep(Duration::from_millis(130));
        let r = m.finish(&RunReportInputs::default()).unwrap();
        // About 6 ticks plus the final one; a loaded machine may skip some.
        assert!(
            (2..=9).contains(&r.performance.samples),
            "{}",
            r.performance.samples
        );
        assert!(r.files().is_empty(), "no folder, no files");
        assert!(r.performance.memory.max_bytes > 0);
    }

    #[test]
    fn bad_settings_are_refused_before_anything_starts() {
        let cfg = MonitorConfig {
            interval_ms: 1,
            ..MonitorConfig::default()
        };
        assert!(Monitor::start(&cfg, None, 0).is_err());
    }
}
