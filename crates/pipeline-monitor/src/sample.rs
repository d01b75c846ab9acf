//! [`Sample`]: what the monitor records at each tick, built from resource readings and two
//! consecutive live snapshots of the engine.

use pipeline_core::LiveSnapshot;
use serde::{Deserialize, Serialize};

/// Process and system resources at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// Process CPU use in percent of one core (200 = two cores busy).
    pub cpu_pct: f64,
    /// Process resident memory in bytes.
    pub rss_bytes: u64,
    /// Process virtual memory in bytes.
    pub virtual_bytes: u64,
    /// Bytes the process read from storage since it started (Linux: `/proc/self/io`).
    pub disk_read_bytes: u64,
    /// Bytes the process wrote to storage since it started.
    pub disk_written_bytes: u64,
    /// Open file descriptors of the process.
    pub open_files: u64,
    /// Whole-system CPU use in percent of all cores (0..=100).
    pub system_cpu_pct: f64,
    /// Whole-system memory in use, in bytes.
    pub system_memory_used_bytes: u64,
    /// Whole-system memory, in bytes.
    pub system_memory_total_bytes: u64,
}

/// One stage at one tick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSample {
    /// Stage name.
    pub name: String,
    /// Rows handed to it so far.
    pub rows_in: u64,
    /// Rows it emitted so far.
    pub rows_out: u64,
    /// Seconds inside it so far, over all workers.
    pub busy_seconds: f64,
    /// Rows in per second over the last interval.
    pub rows_per_second: f64,
}

/// One worker over the last interval: shares of the interval (0..=1) and its queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerSample {
    /// Share of the interval inside stages.
    pub busy: f64,
    /// Share inside the sink (blocked on output).
    pub write: f64,
    /// Share waiting for input.
    pub wait: f64,
    /// Reader time spent blocked on this worker's full queue, per second of the interval
    /// (1 = a reader was blocked on it the whole interval; several readers add up).
    pub saturation: f64,
    /// Chunks queued for it at the tick.
    pub queued: u64,
    /// Rows delivered to it so far.
    pub rows_in: u64,
}

/// What the monitor records at each tick; one line of `metrics.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the monitor started.
    pub t: f64,
    /// Seconds since the previous sample.
    pub dt: f64,
    /// Process and system resources.
    #[serde(flatten)]
    pub resources: ResourceSample,
    /// Rows read so far (including quarantined ones).
    pub rows_read: u64,
    /// Rows written so far.
    pub rows_written: u64,
    /// Rows quarantined so far.
    pub rows_quarantined: u64,
    /// Rows removed by rules so far.
    pub rows_removed: u64,
    /// Input bytes consumed so far.
    pub bytes_read: u64,
    /// Rows read per second over the last interval.
    pub rows_per_second: f64,
    /// Reader slots reading a source at the tick.
    pub readers_active: u32,
    /// Per stage, in pipeline order.
    pub stages: Vec<StageSample>,
    /// Per worker.
    pub workers: Vec<WorkerSample>,
}

fn per_s(delta: u64, dt: f64) -> f64 {
    if dt > 0.0 { delta as f64 / dt } else { 0.0 }
}

fn share(delta_ns: u64, dt: f64) -> f64 {
    if dt > 0.0 {
        delta_ns as f64 / 1e9 / dt
    } else {
        0.0
    }
}

impl Sample {
    /// Builds a sample at `t` seconds, `dt` after the previous one, from resource readings
    /// and the engine's snapshots now and at the previous tick (`prev` is `None` for the
    /// first tick of a run: counters then start from zero).
    pub fn from_live(
        t: f64,
        dt: f64,
        resources: ResourceSample,
        prev: Option<&LiveSnapshot>,
        now: Option<&LiveSnapshot>,
    ) -> Sample {
        let mut s = Sample {
            t,
            dt,
            resources,
            ..Default::default()
        };
        let Some(now) = now else { return s };
        let empty = LiveSnapshot::default();
        let prev = prev.unwrap_or(&empty);
        s.rows_read = now.rows_read;
        s.rows_written = now.rows_written;
        s.rows_quarantined = now.rows_quarantined;
        s.rows_removed = now.rows_removed;
        s.bytes_read = now.readers.iter().map(|r| r.bytes).sum();
        s.rows_per_second = per_s(now.rows_read.saturating_sub(prev.rows_read), dt);
        s.readers_active = now.readers.iter().filter(|r| r.active).count() as u32;
        s.stages = now
            .stages
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let before = prev.stages.get(i).map_or(0, |p| p.rows_in);
                StageSample {
                    name: st.name.clone(),
                    rows_in: st.rows_in,
                    rows_out: st.rows_out,
                    busy_seconds: st.busy_ns as f64 / 1e9,
                    rows_per_second: per_s(st.rows_in.saturating_sub(before), dt),
                }
            })
            .collect();
        s.workers = now
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let p = prev.workers.get(i).cloned().unwrap_or_default();
                WorkerSample {
                    busy: share(w.busy_ns.saturating_sub(p.busy_ns), dt),
                    write: share(w.write_ns.saturating_sub(p.write_ns), dt),
                    wait: share(w.wait_ns.saturating_sub(p.wait_ns), dt),
                    saturation: share(w.backpressure_ns.saturating_sub(p.backpressure_ns), dt),
                    queued: w.queued,
                    rows_in: w.rows_in,
                }
            })
            .collect();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::{ReaderSnapshot, StageSnapshot, WorkerSnapshot};

    #[test]
    fn rates_and_shares_come_from_the_deltas() {
        let prev = LiveSnapshot {
            rows_read: 1000,
            stages: vec![StageSnapshot {
                name: "clean".into(),
                rows_in: 1000,
                ..Default::default()
            }],
            workers: vec![WorkerSnapshot {
                busy_ns: 1_000_000_000,
                ..Default::default()
            }],
            ..Default::default()
        };
        let now = LiveSnapshot {
            rows_read: 3000,
            stages: vec![StageSnapshot {
                name: "clean".into(),
                rows_in: 2000,
                busy_ns: 1_500_000_000,
                ..Default::default()
            }],
            workers: vec![WorkerSnapshot {
                busy_ns: 2_500_000_000,
                wait_ns: 250_000_000,
                backpressure_ns: 2_000_000_000,
                queued: 2,
                ..Default::default()
            }],
            readers: vec![
                ReaderSnapshot {
                    active: true,
                    bytes: 10,
                    ..Default::default()
                },
                ReaderSnapshot {
                    bytes: 5,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let s = Sample::from_live(3.0, 2.0, ResourceSample::default(), Some(&prev), Some(&now));
        assert_eq!(s.rows_per_second, 1000.0);
        assert_eq!(s.stages[0].rows_per_second, 500.0);
        assert_eq!(s.stages[0].busy_seconds, 1.5);
        let w = &s.workers[0];
        assert_eq!(
            (w.busy, w.wait, w.saturation, w.queued),
            (0.75, 0.125, 1.0, 2)
        );
        assert_eq!((s.readers_active, s.bytes_read), (1, 15));
        // Before the engine began: resources only.
        let r = ResourceSample {
            rss_bytes: 7,
            ..Default::default()
        };
        let s = Sample::from_live(1.0, 1.0, r, None, None);
        assert_eq!((s.resources.rss_bytes, s.rows_read), (7, 0));
        // A zero interval gives no rates rather than infinities.
        let s = Sample::from_live(1.0, 0.0, ResourceSample::default(), None, Some(&now));
        assert_eq!(s.rows_per_second, 0.0);
        assert_eq!(s.workers[0].busy, 0.0);
    }
}
