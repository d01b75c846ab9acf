//! [`PerformanceSummary`]: the run summary's `performance` object (the seed's
//! `performance_summary()`): CPU and memory averages and maxima, throughput, the per-stage
//! table, where the time went, the bottleneck, and the alerts.

use pipeline_core::{HistogramSnapshot, LiveSnapshot};
use serde::{Deserialize, Serialize};

use crate::alerts::Alert;
use crate::sample::Sample;

/// Whether a sample covers enough of an interval for its rates (rows/s, CPU %) to count:
/// the last tick, taken at `finish`, often covers a few milliseconds, over which CPU shares
/// read 0 and row rates swing wildly.
pub(crate) fn full_interval(dt: f64, interval: f64) -> bool {
    dt >= interval * 0.25
}

/// Running aggregates over every sample of a run (the ring buffer forgets, these do not).
/// Averages are weighted by each sample's interval; maxima of rates skip partial intervals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Running {
    interval: f64,
    n: u64,
    time: f64,
    rss_time: f64,
    cpu_sum: f64,
    cpu_max: f64,
    sys_cpu_sum: f64,
    sys_cpu_max: f64,
    rss_sum: f64,
    rss_max: u64,
    sys_mem_max: u64,
    sys_mem_total: u64,
    open_max: u64,
    rps_max: f64,
    first_disk: Option<(u64, u64)>,
    last_disk: (u64, u64),
}

impl Running {
    /// Aggregates for samples taken every `interval` seconds.
    pub fn new(interval: f64) -> Self {
        Running {
            interval,
            ..Default::default()
        }
    }

    pub fn add(&mut self, s: &Sample) {
        let r = &s.resources;
        let dt = s.dt.max(0.0);
        self.n += 1;
        self.rss_time += dt;
        self.rss_sum += r.rss_bytes as f64 * dt;
        self.rss_max = self.rss_max.max(r.rss_bytes);
        self.sys_mem_max = self.sys_mem_max.max(r.system_memory_used_bytes);
        self.sys_mem_total = r.system_memory_total_bytes;
        self.open_max = self.open_max.max(r.open_files);
        if full_interval(dt, self.interval) {
            self.time += dt;
            self.cpu_sum += r.cpu_pct * dt;
            self.cpu_max = self.cpu_max.max(r.cpu_pct);
            self.sys_cpu_sum += r.system_cpu_pct * dt;
            self.sys_cpu_max = self.sys_cpu_max.max(r.system_cpu_pct);
            self.rps_max = self.rps_max.max(s.rows_per_second);
        }
        let disk = (r.disk_read_bytes, r.disk_written_bytes);
        self.first_disk.get_or_insert(disk);
        self.last_disk = disk;
    }

    /// A time-weighted mean of a rate (over full intervals).
    fn avg(&self, sum: f64) -> f64 {
        ratio(sum, self.time)
    }
}

/// Average and maximum of a figure over the run's samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AvgMax {
    /// Mean over the samples.
    pub avg: f64,
    /// Largest sample.
    pub max: f64,
}

/// CPU use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    /// The process, in percent of one core (200 = two cores busy).
    pub process_pct: AvgMax,
    /// The whole system, in percent of all cores.
    pub system_pct: AvgMax,
}

/// Memory use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Mean resident memory over the samples, bytes.
    pub avg_bytes: f64,
    /// Peak resident memory, bytes (the kernel's high-water mark when larger than any
    /// sample).
    pub max_bytes: u64,
    /// The run's memory limit, bytes (0 when none).
    pub limit_bytes: u64,
    /// Mean resident memory in percent of the limit.
    pub avg_percent: f64,
    /// Peak in percent of the limit.
    pub max_percent: f64,
    /// Largest whole-system memory in use, bytes.
    pub system_used_max_bytes: u64,
    /// Whole-system memory, bytes.
    pub system_total_bytes: u64,
}

/// Rows and bytes per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Rows read per wall second over the run.
    pub rows_per_second: f64,
    /// Highest rows/s of one sampling interval.
    pub peak_rows_per_second: f64,
    /// Input megabytes (10^6) per wall second.
    pub mb_per_second: f64,
}

/// Chunk latency in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Chunks measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl From<&HistogramSnapshot> for LatencyMs {
    fn from(h: &HistogramSnapshot) -> Self {
        LatencyMs {
            count: h.count,
            p50: h.quantile(0.5) as f64 / 1e6,
            p99: h.quantile(0.99) as f64 / 1e6,
            max: h.max_ns as f64 / 1e6,
            mean: h.mean_ns() / 1e6,
        }
    }
}

/// One stage's row of the per-stage table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StagePerf {
    /// Stage name.
    pub name: String,
    /// Rows handed to it.
    pub rows_in: u64,
    /// Rows it emitted.
    pub rows_out: u64,
    /// Arrow bytes in.
    pub bytes_in: u64,
    /// Arrow bytes out.
    pub bytes_out: u64,
    /// Chunks.
    pub chunks: u64,
    /// Seconds inside it, over all workers.
    pub busy_seconds: f64,
    /// Its share of the workers' working time (stages plus writing).
    pub share: f64,
    /// Rows in per busy second.
    pub rows_per_second: f64,
    /// Time per chunk.
    pub latency_ms: LatencyMs,
}

/// One worker's row: how its time split and how many rows it got (an unbalanced
/// partition shows here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerPerf {
    /// Worker number.
    pub worker: usize,
    /// Rows delivered to it.
    pub rows: u64,
    /// Deliveries.
    pub chunks: u64,
    /// Seconds in stages.
    pub busy_seconds: f64,
    /// Seconds in its sink (blocked on output).
    pub write_seconds: f64,
    /// Seconds waiting for input.
    pub wait_seconds: f64,
    /// Seconds readers waited for room on its queue.
    pub backpressure_seconds: f64,
    /// Working share of its time: (busy + write) / (busy + write + wait).
    pub busy_share: f64,
    /// Time per delivery, stages plus writing.
    pub latency_ms: LatencyMs,
}

/// One reader slot's row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReaderPerf {
    /// Slot number.
    pub reader: usize,
    /// Sources it read.
    pub sources: u64,
    /// Rows it read.
    pub rows: u64,
    /// Input bytes it consumed.
    pub bytes: u64,
    /// Seconds reading and decoding.
    pub read_seconds: f64,
    /// Seconds blocked on full worker queues (blocked on output).
    pub blocked_seconds: f64,
}

/// One slice of where the time went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeShare {
    /// `readers` or `workers`: whose threads.
    pub side: String,
    /// What they did: `read`, `blocked on full queues`, a stage name, `write`, `waiting
    /// for input`.
    pub what: String,
    /// Thread-seconds.
    pub seconds: f64,
    /// Share of that side's thread-seconds.
    pub share: f64,
}

/// The stage that limits the run, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bottleneck {
    /// `read`, a stage name or `write`.
    pub stage: String,
    /// A sentence with the evidence.
    pub reason: String,
}

/// The summary's `performance` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerformanceSummary {
    /// Wall-clock seconds of the run.
    pub wall_seconds: f64,
    /// Samples taken.
    pub samples: u64,
    /// Sampling interval, seconds.
    pub interval_seconds: f64,
    /// CPU use.
    pub cpu: CpuStats,
    /// Memory use.
    pub memory: MemoryStats,
    /// Bytes the process read from and wrote to storage during the run.
    pub disk_read_bytes: u64,
    /// See `disk_read_bytes`.
    pub disk_written_bytes: u64,
    /// Most open file descriptors seen.
    pub open_files_max: u64,
    /// Rows and bytes per second.
    pub throughput: Throughput,
    /// Per stage, in pipeline order.
    pub stages: Vec<StagePerf>,
    /// Time to read and decode a chunk.
    pub read_latency_ms: LatencyMs,
    /// Per worker.
    pub workers: Vec<WorkerPerf>,
    /// Largest worker's rows over the mean (1 = balanced; 0 without workers).
    pub worker_imbalance: f64,
    /// Per reader slot.
    pub readers: Vec<ReaderPerf>,
    /// Where the readers' and the workers' time went.
    pub time_breakdown: Vec<TimeShare>,
    /// Where the most thread time went: `read`, a stage or `write`.
    pub busiest_stage: Option<String>,
    /// What limits the run.
    pub bottleneck: Option<Bottleneck>,
    /// Alerts raised, in order.
    pub alerts: Vec<Alert>,
    /// Seconds the monitor itself took: its sampler's ticks (sampling the process, checking
    /// alerts, writing `metrics.prom` and `metrics.jsonl`) and, in the final summary, writing
    /// the report and exports at the end. Measured as wall time on the thread that did it,
    /// an upper bound of its CPU time.
    #[serde(default)]
    pub monitor_seconds: f64,
    /// `monitor_seconds` as a percentage of the run's wall time: an upper bound of what
    /// monitoring adds to a run (the sampler runs beside the workers, and on a machine whose
    /// cores are all busy takes its CPU time from them).
    #[serde(default)]
    pub monitor_overhead_pct: f64,
}

/// What [`PerformanceSummary::build`] needs besides the samples.
pub(crate) struct SummaryInputs<'a> {
    pub wall_seconds: f64,
    pub interval_seconds: f64,
    pub memory_limit: u64,
    pub peak_rss: u64,
    pub rows_read: u64,
    pub bytes_read: u64,
    pub live: Option<&'a LiveSnapshot>,
    pub alerts: &'a [Alert],
    /// Seconds the monitor took so far (see [`PerformanceSummary::monitor_seconds`]).
    pub monitor_seconds: f64,
}

/// Workers waiting for input less than this share of their time are busy enough that the
/// input is not what holds them back (with one worker and sources that fit their queues,
/// readers are never blocked, yet the worker is the limit).
const WORKERS_BUSY_WAIT: f64 = 0.1;

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl PerformanceSummary {
    pub(crate) fn build(run: &Running, i: &SummaryInputs<'_>) -> PerformanceSummary {
        let limit = i.memory_limit as f64;
        let max_rss = run.rss_max.max(i.peak_rss);
        let avg_rss = ratio(run.rss_sum, run.rss_time);
        let pct = |b: f64| if limit > 0.0 { b * 100.0 / limit } else { 0.0 };
        let (d0, d1) = (run.first_disk.unwrap_or_default(), run.last_disk);
        let mut s = PerformanceSummary {
            wall_seconds: i.wall_seconds,
            samples: run.n,
            interval_seconds: i.interval_seconds,
            cpu: CpuStats {
                process_pct: AvgMax {
                    avg: run.avg(run.cpu_sum),
                    max: run.cpu_max,
                },
                system_pct: AvgMax {
                    avg: run.avg(run.sys_cpu_sum),
                    max: run.sys_cpu_max,
                },
            },
            memory: MemoryStats {
                avg_bytes: avg_rss,
                max_bytes: max_rss,
                limit_bytes: i.memory_limit,
                avg_percent: pct(avg_rss),
                max_percent: pct(max_rss as f64),
                system_used_max_bytes: run.sys_mem_max,
                system_total_bytes: run.sys_mem_total,
            },
            disk_read_bytes: d1.0.saturating_sub(d0.0),
            disk_written_bytes: d1.1.saturating_sub(d0.1),
            open_files_max: run.open_max,
            throughput: Throughput {
                rows_per_second: ratio(i.rows_read as f64, i.wall_seconds),
                peak_rows_per_second: run.rps_max,
                mb_per_second: ratio(i.bytes_read as f64 / 1e6, i.wall_seconds),
            },
            alerts: i.alerts.to_vec(),
            ..Default::default()
        };
        s.set_monitor_seconds(i.monitor_seconds);
        if let Some(l) = i.live {
            s.add_engine(l);
        }
        s
    }

    /// Sets the monitor's own time and its share of the wall time.
    pub fn set_monitor_seconds(&mut self, seconds: f64) {
        self.monitor_seconds = seconds;
        self.monitor_overhead_pct = ratio(seconds * 100.0, self.wall_seconds);
    }

    fn add_engine(&mut self, l: &LiveSnapshot) {
        let write: u64 = l.workers.iter().map(|w| w.write_ns).sum();
        let wait: u64 = l.workers.iter().map(|w| w.wait_ns).sum();
        let stage_total: u64 = l.stages.iter().map(|s| s.busy_ns).sum();
        let work = secs(stage_total + write);
        self.stages = l
            .stages
            .iter()
            .map(|s| StagePerf {
                name: s.name.clone(),
                rows_in: s.rows_in,
                rows_out: s.rows_out,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                chunks: s.chunks,
                busy_seconds: secs(s.busy_ns),
                share: ratio(secs(s.busy_ns), work),
                rows_per_second: ratio(s.rows_in as f64, secs(s.busy_ns)),
                latency_ms: LatencyMs::from(&s.latency),
            })
            .collect();
        self.read_latency_ms = LatencyMs::from(&l.read_latency);
        self.workers = l
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let busy = secs(w.busy_ns + w.write_ns);
                WorkerPerf {
                    worker: i,
                    rows: w.rows_in,
                    chunks: w.chunks,
                    busy_seconds: secs(w.busy_ns),
                    write_seconds: secs(w.write_ns),
                    wait_seconds: secs(w.wait_ns),
                    backpressure_seconds: secs(w.backpressure_ns),
                    busy_share: ratio(busy, busy + secs(w.wait_ns)),
                    latency_ms: LatencyMs::from(&w.latency),
                }
            })
            .collect();
        let rows: Vec<f64> = self.workers.iter().map(|w| w.rows as f64).collect();
        let mean = ratio(rows.iter().sum(), rows.len() as f64);
        self.worker_imbalance = ratio(rows.iter().copied().fold(0.0, f64::max), mean);
        self.readers = l
            .readers
            .iter()
            .enumerate()
            .map(|(i, r)| ReaderPerf {
                reader: i,
                sources: r.sources,
                rows: r.rows,
                bytes: r.bytes,
                read_seconds: secs(r.read_ns),
                blocked_seconds: secs(r.blocked_ns),
            })
            .collect();

        let read: u64 = l.readers.iter().map(|r| r.read_ns).sum();
        let blocked: u64 = l.readers.iter().map(|r| r.blocked_ns).sum();
        let readers_total = secs(read + blocked);
        let workers_total = secs(stage_total + write + wait);
        let share = |side: &str, what: &str, ns: u64| TimeShare {
            side: side.into(),
            what: what.into(),
            seconds: secs(ns),
            share: ratio(
                secs(ns),
                if side == "readers" {
                    readers_total
                } else {
                    workers_total
                },
            ),
        };
        self.time_breakdown = vec![
            share("readers", "read", read),
            share("readers", "blocked on full queues", blocked),
        ];
        for s in &l.stages {
            self.time_breakdown
                .push(share("workers", &s.name, s.busy_ns));
        }
        self.time_breakdown.push(share("workers", "write", write));
        self.time_breakdown
            .push(share("workers", "waiting for input", wait));

        // The busiest: the most thread time among reading, each stage and writing.
        let mut candidates: Vec<(&str, u64)> = vec![("read", read)];
        candidates.extend(l.stages.iter().map(|s| (s.name.as_str(), s.busy_ns)));
        candidates.push(("write", write));
        let busiest = candidates
            .iter()
            .filter(|c| c.1 > 0)
            .max_by_key(|c| c.1)
            .map(|c| c.0.to_string());
        self.busiest_stage = busiest;

        // The bottleneck: whichever side waits less on the other. Readers blocked on full
        // queues mean the workers cannot keep up; workers waiting for input mean the
        // readers cannot. Readers that finish early leave no blocked time behind, so workers
        // that hardly waited are the limit whatever the readers show.
        if readers_total + workers_total <= 0.0 {
            return;
        }
        let blocked_share = ratio(secs(blocked), readers_total);
        let wait_share = ratio(secs(wait), workers_total);
        let work_side = candidates[1..]
            .iter()
            .filter(|c| c.1 > 0)
            .max_by_key(|c| c.1)
            .map(|c| (c.0.to_string(), ratio(secs(c.1), work)));
        let workers_limit = wait_share < WORKERS_BUSY_WAIT || blocked_share >= wait_share;
        self.bottleneck = Some(match work_side {
            Some((stage, of_work)) if workers_limit => Bottleneck {
                reason: format!(
                    "workers waited for input {:.0}% of their time and readers were blocked on full worker queues {:.0}% of theirs, so the workers limit the run; {stage} takes {:.0}% of the workers' working time",
                    wait_share * 100.0,
                    blocked_share * 100.0,
                    of_work * 100.0
                ),
                stage,
            },
            _ => Bottleneck {
                stage: "read".into(),
                reason: format!(
                    "workers waited for input {:.0}% of their time and readers were blocked {:.0}% of theirs, so reading and decoding the input limits the run",
                    wait_share * 100.0,
                    blocked_share * 100.0
                ),
            },
        });
    }

    /// The headline for the run's last lines: peak RSS against the limit, the busiest
    /// stage, the alerts, and what monitoring took (when measured).
    ///
    /// ```
    /// use pipeline_monitor::PerformanceSummary;
    /// let mut s = PerformanceSummary::default();
    /// s.memory.max_bytes = 241 << 20;
    /// s.memory.limit_bytes = 256 << 20;
    /// s.memory.max_percent = 94.1;
    /// s.busiest_stage = Some("features".into());
    /// assert_eq!(s.headline(), "peak RSS 241 MiB (94% of the 256 MiB limit), busiest stage features, no alerts");
    /// s.wall_seconds = 10.0;
    /// s.set_monitor_seconds(0.004);
    /// assert!(s.headline().ends_with("no alerts, monitoring 0.04% of the run"));
    /// ```
    pub fn headline(&self) -> String {
        let m = &self.memory;
        let mib = |b: u64| (b as f64 / (1u64 << 20) as f64).round();
        let mut h = format!("peak RSS {} MiB", mib(m.max_bytes));
        if m.limit_bytes > 0 {
            h += &format!(
                " ({:.0}% of the {} MiB limit)",
                m.max_percent,
                mib(m.limit_bytes)
            );
        }
        if let Some(b) = &self.busiest_stage {
            h += &format!(", busiest stage {b}");
        }
        match self.alerts.len() {
            0 => h += ", no alerts",
            n => {
                let mut kinds: Vec<&str> = self.alerts.iter().map(|a| a.kind.name()).collect();
                kinds.dedup();
                h += &format!(
                    ", {n} alert{} ({})",
                    if n == 1 { "" } else { "s" },
                    kinds.join(", ")
                );
            }
        }
        if self.monitor_seconds > 0.0 {
            h += &format!(", monitoring {:.2}% of the run", self.monitor_overhead_pct);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertKind;
    use crate::sample::ResourceSample;
    use pipeline_core::{ReaderSnapshot, StageSnapshot, WorkerSnapshot};

    fn live(read_ms: u64, blocked_ms: u64, wait_ms: u64) -> LiveSnapshot {
        let ms = |m: u64| m * 1_000_000;
        LiveSnapshot {
            rows_read: 1000,
            stages: vec![
                StageSnapshot {
                    name: "clean".into(),
                    rows_in: 1000,
                    busy_ns: ms(100),
                    ..Default::default()
                },
                StageSnapshot {
                    name: "features".into(),
                    rows_in: 900,
                    busy_ns: ms(600),
                    ..Default::default()
                },
            ],
            workers: vec![
                WorkerSnapshot {
                    rows_in: 750,
                    busy_ns: ms(500),
                    write_ns: ms(200),
                    wait_ns: ms(wait_ms),
                    ..Default::default()
                },
                WorkerSnapshot {
                    rows_in: 250,
                    busy_ns: ms(200),
                    wait_ns: ms(wait_ms),
                    ..Default::default()
                },
            ],
            readers: vec![ReaderSnapshot {
                rows: 1000,
                bytes: 2_000_000,
                read_ns: ms(read_ms),
                blocked_ns: ms(blocked_ms),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn build(l: &LiveSnapshot, alerts: &[Alert]) -> PerformanceSummary {
        let mut run = Running::new(1.0);
        for (cpu, rss) in [(100.0, 100u64), (200.0, 300)] {
            run.add(&Sample {
                dt: 1.0,
                rows_per_second: cpu * 10.0,
                resources: ResourceSample {
                    cpu_pct: cpu,
                    rss_bytes: rss << 20,
                    disk_read_bytes: 10 + rss,
                    ..Default::default()
                },
                ..Default::default()
            });
        }
        PerformanceSummary::build(
            &run,
            &SummaryInputs {
                wall_seconds: 2.0,
                interval_seconds: 1.0,
                memory_limit: 400 << 20,
                peak_rss: 350 << 20,
                rows_read: 1000,
                bytes_read: 2_000_000,
                live: Some(l),
                alerts,
                monitor_seconds: 0.02,
            },
        )
    }

    #[test]
    fn figures_come_from_samples_and_the_engine() {
        let s = build(&live(300, 700, 100), &[]);
        assert_eq!(
            s.cpu.process_pct,
            AvgMax {
                avg: 150.0,
                max: 200.0
            }
        );
        assert_eq!(s.memory.max_bytes, 350 << 20, "the high-water mark wins");
        assert_eq!(s.memory.max_percent, 87.5);
        assert_eq!(s.memory.avg_percent, 50.0);
        assert_eq!(s.disk_read_bytes, 200);
        assert_eq!(s.throughput.rows_per_second, 500.0);
        assert_eq!(s.throughput.peak_rows_per_second, 2000.0);
        assert_eq!(s.throughput.mb_per_second, 1.0);
        assert_eq!(s.worker_imbalance, 1.5);
        assert_eq!(s.workers[0].busy_share, 0.875);
        // Stage shares of the workers' working time (stages 0.7 s + write 0.2 s).
        assert!((s.stages[1].share - 0.6 / 0.9).abs() < 1e-12);
        assert_eq!(s.stages[1].rows_per_second, 1500.0);
        assert_eq!(s.busiest_stage.as_deref(), Some("features"));
        let shares: f64 = s
            .time_breakdown
            .iter()
            .filter(|t| t.side == "workers")
            .map(|t| t.share)
            .sum();
        assert!((shares - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_bottleneck_is_the_side_that_waits_less() {
        // Readers blocked 70% of their time, workers waited 100 ms of 1.1 s: features.
        let b = build(&live(300, 700, 100), &[]).bottleneck.unwrap();
        assert_eq!(b.stage, "features");
        assert!(
            b.reason.contains("blocked on full worker queues 70%"),
            "{}",
            b.reason
        );
        // One busy worker whose sources fit its queues: readers never blocked, yet the
        // worker hardly waited, so it is the limit.
        assert_eq!(
            build(&live(300, 0, 10), &[]).bottleneck.unwrap().stage,
            "features"
        );
        // Readers never blocked, workers waited most of the time: reading.
        let s = build(&live(2000, 0, 2000), &[]);
        assert_eq!(s.bottleneck.unwrap().stage, "read");
        assert_eq!(s.busiest_stage.as_deref(), Some("read"));
        // No engine: no table and no verdict.
        let mut run = Running::new(1.0);
        run.add(&Sample::default());
        let s = PerformanceSummary::build(
            &run,
            &SummaryInputs {
                wall_seconds: 0.0,
                interval_seconds: 1.0,
                memory_limit: 0,
                peak_rss: 0,
                rows_read: 0,
                bytes_read: 0,
                live: None,
                alerts: &[],
                monitor_seconds: 0.0,
            },
        );
        assert!(s.bottleneck.is_none() && s.stages.is_empty());
        assert_eq!(s.throughput.rows_per_second, 0.0);
    }

    #[test]
    fn averages_weigh_by_interval_and_partial_intervals_do_not_count_for_rates() {
        let mut run = Running::new(1.0);
        let s = |dt: f64, cpu: f64, rps: f64, rss: u64| Sample {
            dt,
            rows_per_second: rps,
            resources: ResourceSample {
                cpu_pct: cpu,
                rss_bytes: rss,
                ..Default::default()
            },
            ..Default::default()
        };
        run.add(&s(1.0, 100.0, 1000.0, 10));
        run.add(&s(3.0, 200.0, 2000.0, 30));
        // The final tick 10 ms after the last: CPU reads 0 and the rate is noise.
        run.add(&s(0.01, 0.0, 1e9, 30));
        assert_eq!(run.avg(run.cpu_sum), 175.0);
        assert_eq!(run.cpu_max, 200.0);
        assert_eq!(run.rps_max, 2000.0);
        assert!((ratio(run.rss_sum, run.rss_time) - 100.3 / 4.01).abs() < 1e-9);
        assert_eq!(run.n, 3);
    }

    #[test]
    fn the_headline_names_memory_stage_and_alerts() {
        let alert = |kind| Alert {
            kind,
            at_seconds: 1.0,
            subject: String::new(),
            value: 0.0,
            threshold: 0.0,
            message: String::new(),
        };
        let s = build(
            &live(300, 700, 100),
            &[alert(AlertKind::Memory), alert(AlertKind::IdleWorker)],
        );
        assert_eq!(
            s.headline(),
            "peak RSS 350 MiB (88% of the 400 MiB limit), busiest stage features, 2 alerts (memory, idle_worker), monitoring 1.00% of the run"
        );
        let json = serde_json::to_value(&s).unwrap();
        for key in [
            "cpu",
            "memory",
            "throughput",
            "stages",
            "bottleneck",
            "alerts",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        let back: PerformanceSummary = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
