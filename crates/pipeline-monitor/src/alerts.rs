//! Alert rules: thresholds from `[monitor]`, evaluated on each [`Sample`]. Each rule fires
//! once per episode (when its condition starts to hold long enough) and re-arms when the
//! condition clears, so a run gets a handful of alerts, not one per second.

use std::collections::VecDeque;

use pipeline_core::MonitorConfig;
use serde::{Deserialize, Serialize};

use crate::sample::Sample;

/// Rows read before the quarantine rate is judged: on fewer, one malformed header block or
/// a short first file is a large share (gen-data's smallest test runs read ~10 K rows).
const MIN_ROWS_FOR_RATE: u64 = 10_000;

/// A queue counts as saturated over an interval when readers were blocked on it for at
/// least this share of it (a worker that drains its queue in bursts leaves short gaps).
const SATURATED_SHARE: f64 = 0.9;

/// A worker counts as idle below this busy share (stages plus writing) of an interval...
const IDLE_SHARE: f64 = 0.1;

/// ...while the other workers average at least this busy share.
const BUSY_SHARE: f64 = 0.5;

/// Baseline samples needed before the throughput rule judges a drop.
const MIN_BASELINE_SAMPLES: usize = 5;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Resident memory above `memory_alert_pct` of the memory limit.
    Memory,
    /// Rows/s more than `throughput_drop_pct` below the moving average for
    /// `throughput_drop_s`.
    ThroughputDrop,
    /// A worker's input queue saturated (readers blocked on it) for `queue_saturation_s`.
    QueueSaturated,
    /// More than `quarantine_rate` of the rows read quarantined.
    QuarantineRate,
    /// A worker idle for `idle_worker_s` while the others are busy.
    IdleWorker,
}

impl AlertKind {
    /// Every kind, in report order.
    pub const ALL: [AlertKind; 5] = [
        AlertKind::Memory,
        AlertKind::ThroughputDrop,
        AlertKind::QueueSaturated,
        AlertKind::QuarantineRate,
        AlertKind::IdleWorker,
    ];

    /// The snake-case name (as in JSON and Prometheus labels).
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Memory => "memory",
            AlertKind::ThroughputDrop => "throughput_drop",
            AlertKind::QueueSaturated => "queue_saturated",
            AlertKind::QuarantineRate => "quarantine_rate",
            AlertKind::IdleWorker => "idle_worker",
        }
    }
}

/// One alert: what, when, about whom, the value against its threshold, and a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// Seconds since the monitor started.
    pub at_seconds: f64,
    /// The worker it concerns (`worker 2`), or empty for the whole run.
    pub subject: String,
    /// The observed value, in the threshold's unit.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// A sentence for people.
    pub message: String,
}

/// Per-episode state of a rule over one subject.
#[derive(Debug, Clone, Default)]
struct Episode {
    /// Seconds the condition has held without a break.
    held: f64,
    /// Fired in this episode.
    fired: bool,
}

impl Episode {
    /// Adds `dt` when `cond` holds (resetting otherwise) and says whether to fire now.
    fn step(&mut self, cond: bool, dt: f64, need: f64) -> bool {
        if !cond {
            *self = Episode::default();
            return false;
        }
        self.held += dt;
        if !self.fired && self.held >= need {
            self.fired = true;
            return true;
        }
        false
    }
}

/// The alert rules of one run and their state.
#[derive(Debug, Clone)]
pub struct AlertRules {
    cfg: MonitorConfig,
    memory_limit: u64,
    memory: Episode,
    quarantine: Episode,
    throughput: Episode,
    /// `(t, rows/s)` of recent samples outside a drop: the moving average's window.
    baseline: VecDeque<(f64, f64)>,
    saturated: Vec<Episode>,
    idle: Vec<Episode>,
}

impl AlertRules {
    /// Rules with `cfg`'s thresholds; `memory_limit` in bytes (0: no memory rule).
    pub fn new(cfg: &MonitorConfig, memory_limit: u64) -> Self {
        AlertRules {
            cfg: cfg.clone(),
            memory_limit,
            memory: Episode::default(),
            quarantine: Episode::default(),
            throughput: Episode::default(),
            baseline: VecDeque::new(),
            saturated: Vec::new(),
            idle: Vec::new(),
        }
    }

    /// Evaluates every rule on the next sample; returns the alerts that fire now.
    pub fn check(&mut self, s: &Sample) -> Vec<Alert> {
        let mut out = Vec::new();
        let alert = |kind, subject: String, value, threshold, message| Alert {
            kind,
            at_seconds: s.t,
            subject,
            value,
            threshold,
            message,
        };

        if self.memory_limit > 0 {
            let pct = s.resources.rss_bytes as f64 * 100.0 / self.memory_limit as f64;
            let limit = self.cfg.memory_alert_pct;
            if self.memory.step(pct > limit, s.dt, 0.0) {
                out.push(alert(
                    AlertKind::Memory,
                    String::new(),
                    pct,
                    limit,
                    format!(
                        "resident memory {} MiB is {pct:.0}% of the {} MiB limit (alert above {limit}%)",
                        s.resources.rss_bytes >> 20,
                        self.memory_limit >> 20
                    ),
                ));
            }
        }

        if s.rows_read >= MIN_ROWS_FOR_RATE {
            let rate = s.rows_quarantined as f64 / s.rows_read as f64;
            let limit = self.cfg.quarantine_rate;
            if self.quarantine.step(rate > limit, s.dt, 0.0) {
                out.push(alert(
                    AlertKind::QuarantineRate,
                    String::new(),
                    rate,
                    limit,
                    format!(
                        "{} of {} rows read ({:.2}%) were quarantined (alert above {:.2}%)",
                        s.rows_quarantined,
                        s.rows_read,
                        rate * 100.0,
                        limit * 100.0
                    ),
                ));
            }
        }

        if let Some(a) = self.check_throughput(s) {
            out.push(a);
        }

        let n = s.workers.len();
        self.saturated.resize(n, Episode::default());
        self.idle.resize(n, Episode::default());
        for (w, ws) in s.workers.iter().enumerate() {
            let need = self.cfg.queue_saturation_s;
            if self.saturated[w].step(ws.saturation >= SATURATED_SHARE, s.dt, need) {
                out.push(alert(
                    AlertKind::QueueSaturated,
                    format!("worker {w}"),
                    self.saturated[w].held,
                    need,
                    format!(
                        "worker {w}'s input queue has been full for {:.0} s: readers wait on it, so its stages limit the run (backpressure)",
                        self.saturated[w].held
                    ),
                ));
            }
        }
        if n >= 2 {
            let total: f64 = s.workers.iter().map(|w| w.busy + w.write).sum();
            for (w, ws) in s.workers.iter().enumerate() {
                let own = ws.busy + ws.write;
                let others = (total - own) / (n - 1) as f64;
                let need = self.cfg.idle_worker_s;
                let cond = own < IDLE_SHARE && others >= BUSY_SHARE;
                if self.idle[w].step(cond, s.dt, need) {
                    out.push(alert(
                        AlertKind::IdleWorker,
                        format!("worker {w}"),
                        self.idle[w].held,
                        need,
                        format!(
                            "worker {w} has been idle for {:.0} s ({:.0}% busy) while the others are {:.0}% busy: the keys are unevenly spread over workers",
                            self.idle[w].held,
                            own * 100.0,
                            others * 100.0
                        ),
                    ));
                }
            }
        }
        out
    }

    /// The throughput rule: judged only while sources are being read (the tail of a run,
    /// when workers drain and sinks finish, reads nothing by design).
    fn check_throughput(&mut self, s: &Sample) -> Option<Alert> {
        if s.readers_active == 0 || s.dt <= 0.0 {
            self.throughput = Episode::default();
            return None;
        }
        let window = self.cfg.throughput_window_s;
        while self
            .baseline
            .front()
            .is_some_and(|(t, _)| *t < s.t - window)
        {
            self.baseline.pop_front();
        }
        let span = match (self.baseline.front(), self.baseline.back()) {
            (Some(a), Some(b)) => b.0 - a.0,
            _ => 0.0,
        };
        let ready = self.baseline.len() >= MIN_BASELINE_SAMPLES
            && span >= self.cfg.throughput_drop_s.min(window / 2.0);
        let avg = if self.baseline.is_empty() {
            0.0
        } else {
            self.baseline.iter().map(|b| b.1).sum::<f64>() / self.baseline.len() as f64
        };
        let floor = avg * (1.0 - self.cfg.throughput_drop_pct / 100.0);
        let low = ready && avg > 0.0 && s.rows_per_second < floor;
        if !low {
            // The moving average only learns from samples outside a drop, so a long drop
            // does not become the new normal.
            self.baseline.push_back((s.t, s.rows_per_second));
        }
        let need = self.cfg.throughput_drop_s;
        if self.throughput.step(low, s.dt, need) {
            let drop = (1.0 - s.rows_per_second / avg) * 100.0;
            return Some(Alert {
                kind: AlertKind::ThroughputDrop,
                at_seconds: s.t,
                subject: String::new(),
                value: drop,
                threshold: self.cfg.throughput_drop_pct,
                message: format!(
                    "throughput {:.0} rows/s is {drop:.0}% below its {window:.0} s moving average of {avg:.0} rows/s for {:.0} s",
                    s.rows_per_second, self.throughput.held
                ),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{ResourceSample, WorkerSample};

    fn cfg() -> MonitorConfig {
        MonitorConfig {
            memory_alert_pct: 90.0,
            throughput_drop_pct: 50.0,
            throughput_window_s: 20.0,
            throughput_drop_s: 3.0,
            queue_saturation_s: 5.0,
            quarantine_rate: 0.05,
            idle_worker_s: 4.0,
            ..MonitorConfig::default()
        }
    }

    /// A 1 s sample at `t` with the given rows/s, one reader active.
    fn at(t: f64) -> Sample {
        Sample {
            t,
            dt: 1.0,
            readers_active: 1,
            ..Default::default()
        }
    }

    fn run(rules: &mut AlertRules, samples: impl IntoIterator<Item = Sample>) -> Vec<Alert> {
        samples.into_iter().flat_map(|s| rules.check(&s)).collect()
    }

    fn kinds(a: &[Alert]) -> Vec<(AlertKind, f64, String)> {
        a.iter()
            .map(|a| (a.kind, a.at_seconds, a.subject.clone()))
            .collect()
    }

    #[test]
    fn memory_fires_above_the_limit_once_per_episode() {
        let mut r = AlertRules::new(&cfg(), 100 << 20);
        let rss = [80, 89, 91, 95, 85, 92];
        let got = run(
            &mut r,
            rss.iter().enumerate().map(|(i, m)| Sample {
                resources: ResourceSample {
                    rss_bytes: m << 20,
                    ..Default::default()
                },
                ..at(i as f64)
            }),
        );
        assert_eq!(
            kinds(&got),
            vec![
                (AlertKind::Memory, 2.0, String::new()),
                (AlertKind::Memory, 5.0, String::new())
            ]
        );
        assert!(
            got[0]
                .message
                .contains("91 MiB is 91% of the 100 MiB limit"),
            "{}",
            got[0].message
        );
        // Without a limit there is no memory rule.
        let mut r = AlertRules::new(&cfg(), 0);
        assert!(
            r.check(&Sample {
                resources: ResourceSample {
                    rss_bytes: u64::MAX,
                    ..Default::default()
                },
                ..at(0.0)
            })
            .is_empty()
        );
    }

    #[test]
    fn quarantine_rate_needs_enough_rows_and_a_high_share() {
        let mut r = AlertRules::new(&cfg(), 0);
        let s = |t: f64, read: u64, q: u64| Sample {
            rows_read: read,
            rows_quarantined: q,
            ..at(t)
        };
        // 50% of 1,000 rows: too few rows to judge. 4% of 100 K: below the 5% threshold.
        assert!(run(&mut r, [s(0.0, 1000, 500), s(1.0, 100_000, 4000)]).is_empty());
        let got = run(&mut r, [s(2.0, 200_000, 12_000), s(3.0, 300_000, 18_000)]);
        assert_eq!(
            kinds(&got),
            vec![(AlertKind::QuarantineRate, 2.0, String::new())]
        );
        assert!((got[0].value - 0.06).abs() < 1e-12);
        assert!(got[0].message.contains("(6.00%)"), "{}", got[0].message);
    }

    #[test]
    fn throughput_drop_fires_after_it_lasts_and_not_for_a_dip_or_the_tail() {
        let rate = |t: usize, v: f64| Sample {
            rows_per_second: v,
            ..at(t as f64)
        };
        // Ten steady seconds at 1 M rows/s, a 2 s dip to 100 K (shorter than 3 s), steady
        // again, then the input ends (no reader active) and throughput falls to 0.
        let mut samples: Vec<Sample> = (0..10).map(|t| rate(t, 1e6)).collect();
        samples.extend([rate(10, 1e5), rate(11, 1e5)]);
        samples.extend((12..20).map(|t| rate(t, 1e6)));
        samples.extend((20..30).map(|t| Sample {
            readers_active: 0,
            ..rate(t, 0.0)
        }));
        let mut r = AlertRules::new(&cfg(), 0);
        assert!(run(&mut r, samples.clone()).is_empty());
        // A real drop to 400 K (60% below) for 3 s: one alert at the third second.
        let mut samples: Vec<Sample> = (0..10).map(|t| rate(t, 1e6)).collect();
        samples.extend((10..16).map(|t| rate(t, 4e5)));
        let mut r = AlertRules::new(&cfg(), 0);
        let got = run(&mut r, samples);
        assert_eq!(
            kinds(&got),
            vec![(AlertKind::ThroughputDrop, 12.0, String::new())]
        );
        assert!((got[0].value - 60.0).abs() < 1e-9, "{got:?}");
        // A 40% drop stays under the 50% threshold; and no judgement before a baseline.
        let mut samples: Vec<Sample> = (0..10).map(|t| rate(t, 1e6)).collect();
        samples.extend((10..20).map(|t| rate(t, 6e5)));
        let mut r = AlertRules::new(&cfg(), 0);
        assert!(run(&mut r, samples).is_empty());
        let mut r = AlertRules::new(&cfg(), 0);
        assert!(
            run(
                &mut r,
                [
                    rate(0, 1e6),
                    rate(1, 1e6),
                    rate(2, 0.0),
                    rate(3, 0.0),
                    rate(4, 0.0)
                ]
            )
            .is_empty()
        );
    }

    fn workers(t: f64, ws: &[(f64, f64)]) -> Sample {
        Sample {
            workers: ws
                .iter()
                .map(|&(busy, saturation)| WorkerSample {
                    busy,
                    saturation,
                    ..Default::default()
                })
                .collect(),
            ..at(t)
        }
    }

    #[test]
    fn a_queue_saturated_longer_than_the_limit_fires_per_worker() {
        let mut r = AlertRules::new(&cfg(), 0);
        // Worker 1's queue is full 4 s (under the 5 s limit), clears, then stays full 6 s;
        // worker 0's queue is full 90% of each interval only at t=3.
        let mut samples = Vec::new();
        for t in 0..4 {
            samples.push(workers(
                t as f64,
                &[(1.0, if t == 3 { 0.9 } else { 0.2 }), (1.0, 1.0)],
            ));
        }
        samples.push(workers(4.0, &[(1.0, 0.0), (1.0, 0.5)]));
        for t in 5..11 {
            samples.push(workers(t as f64, &[(1.0, 0.0), (1.0, 1.3)]));
        }
        let got = run(&mut r, samples);
        assert_eq!(
            kinds(&got),
            vec![(AlertKind::QueueSaturated, 9.0, "worker 1".into())]
        );
        assert!(
            got[0].message.contains("full for 5 s"),
            "{}",
            got[0].message
        );
    }

    #[test]
    fn an_idle_worker_fires_only_while_the_others_are_busy() {
        let mut r = AlertRules::new(&cfg(), 0);
        // All idle (input-bound run): nothing. Worker 2 idle while 0 and 1 are busy, 5 s.
        let mut samples: Vec<Sample> = (0..6)
            .map(|t| workers(t as f64, &[(0.05, 0.0), (0.0, 0.0), (0.02, 0.0)]))
            .collect();
        samples.extend((6..11).map(|t| workers(t as f64, &[(0.9, 0.0), (0.7, 0.0), (0.05, 0.0)])));
        let got = run(&mut r, samples);
        assert_eq!(
            kinds(&got),
            vec![(AlertKind::IdleWorker, 9.0, "worker 2".into())]
        );
        assert!(got[0].message.contains("80% busy"), "{}", got[0].message);
        // A single worker is never "idle while the others are busy".
        let mut r = AlertRules::new(&cfg(), 0);
        assert!(run(&mut r, (0..10).map(|t| workers(t as f64, &[(0.0, 0.0)]))).is_empty());
    }
}
