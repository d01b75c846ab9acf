//! History: the recent samples in a bounded ring buffer, a decimated overview of the whole
//! run for the report's charts, and every sample appended to a JSON-lines file.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use pipeline_core::{Error, Result};

use crate::sample::Sample;

/// Points kept in the whole-run overview: enough for a chart about 1,000 pixels wide (two
/// pixels a point) whatever the run's length.
const OVERVIEW_POINTS: usize = 512;

/// Samples of one run, bounded in memory; see the module docs.
#[derive(Debug)]
pub struct History {
    recent: VecDeque<Sample>,
    capacity: usize,
    overview: Vec<Sample>,
    /// Every `stride`-th sample goes to the overview; doubled when it fills up.
    stride: u64,
    seen: u64,
    file: Option<(PathBuf, BufWriter<File>)>,
}

impl History {
    /// A history keeping the last `capacity` samples in memory; with `jsonl`, every sample is
    /// also appended to that file (created or truncated).
    pub fn new(capacity: usize, jsonl: Option<&Path>) -> Result<Self> {
        let file = match jsonl {
            None => None,
            Some(p) => {
                let f = File::create(p).map_err(|e| Error::io(p, e))?;
                Some((p.to_path_buf(), BufWriter::new(f)))
            }
        };
        Ok(History {
            recent: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
            overview: Vec::new(),
            stride: 1,
            seen: 0,
            file,
        })
    }

    /// Records a sample: ring buffer, overview and file (flushed, so a crashed run keeps
    /// its history up to the last tick).
    pub fn push(&mut self, s: Sample) -> Result<()> {
        if let Some((path, w)) = &mut self.file {
            serde_json::to_writer(&mut *w, &s)
                .map_err(|e| Error::Internal(format!("metrics history: {e}")))?;
            w.write_all(b"\n")
                .and_then(|()| w.flush())
                .map_err(|e| Error::io(&*path, e))?;
        }
        if self.seen.is_multiple_of(self.stride) {
            if self.overview.len() == OVERVIEW_POINTS {
                // Keep every other point and sample half as often from now on.
                let mut i = 0;
                self.overview.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
            if self.seen.is_multiple_of(self.stride) {
                self.overview.push(s.clone());
            }
        }
        self.seen += 1;
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(s);
        Ok(())
    }

    /// The last samples, oldest first (at most the capacity).
    pub fn recent(&self) -> impl Iterator<Item = &Sample> {
        self.recent.iter()
    }

    /// The latest sample.
    pub fn last(&self) -> Option<&Sample> {
        self.recent.back()
    }

    /// Samples spread evenly over the whole run (at most `OVERVIEW_POINTS` plus the
    /// latest), oldest first: what the report charts.
    pub fn overview(&self) -> Vec<Sample> {
        let mut v = self.overview.clone();
        if let Some(last) = self.recent.back()
            && v.last().is_none_or(|l| l.t < last.t)
        {
            v.push(last.clone());
        }
        v
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.seen
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }

    /// The JSON-lines file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.0.as_path())
    }
}

/// Reads a `metrics.jsonl` written by [`History`]; a bad line is an error naming it.
pub fn read_history(path: &Path) -> Result<Vec<Sample>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let s = serde_json::from_str(&line).map_err(|e| Error::Malformed {
            file: path.display().to_string(),
            line: i as u64 + 1,
            message: format!("not a metrics sample: {e}"),
        })?;
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{ResourceSample, StageSample, WorkerSample};

    fn sample(t: u64) -> Sample {
        Sample {
            t: t as f64,
            dt: 1.0,
            resources: ResourceSample {
                cpu_pct: 150.5,
                rss_bytes: 100 << 20 | t,
                system_cpu_pct: 33.25,
                ..Default::default()
            },
            rows_read: t * 1000,
            rows_per_second: 1000.0,
            stages: vec![StageSample {
                name: "clean \"q\"".into(),
                rows_in: t,
                busy_seconds: 0.125,
                ..Default::default()
            }],
            workers: vec![WorkerSample {
                busy: 0.5,
                queued: 2,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_file_round_trips_and_memory_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut h = History::new(10, Some(&path)).unwrap();
        let all: Vec<Sample> = (0..2000).map(sample).collect();
        for s in &all {
            h.push(s.clone()).unwrap();
        }
        assert_eq!(read_history(&path).unwrap(), all);
        assert_eq!(h.len(), 2000);
        let recent: Vec<f64> = h.recent().map(|s| s.t).collect();
        assert_eq!(recent, (1990..2000).map(|t| t as f64).collect::<Vec<_>>());
        let ov = h.overview();
        assert!(
            ov.len() <= OVERVIEW_POINTS + 1 && ov.len() >= OVERVIEW_POINTS / 2,
            "{}",
            ov.len()
        );
        assert_eq!(ov[0].t, 0.0);
        assert_eq!(ov.last().unwrap().t, 1999.0);
        // Evenly spaced: one stride between neighbours (but the appended latest).
        let gaps: Vec<f64> = ov.windows(2).map(|w| w[1].t - w[0].t).collect();
        assert!(
            gaps[..gaps.len() - 1].iter().all(|g| *g == gaps[0]),
            "{gaps:?}"
        );
        assert_eq!(h.path(), Some(path.as_path()));
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(
            &path,
            format!(
                "{}\n{{\"t\": \"x\"}}\n",
                serde_json::to_string(&sample(1)).unwrap()
            ),
        )
        .unwrap();
        let e = read_history(&path).unwrap_err().to_string();
        assert!(e.contains("m.jsonl:2"), "{e}");
        let h = History::new(3, None).unwrap();
        assert!(h.is_empty() && h.overview().is_empty() && h.path().is_none());
    }
}
