//! Throughput of the default cleaning chain on generated TAQ rows (gen-data's shape and
//! anomaly kinds), with precision and recall per anomaly kind.
//!
//! ```text
//! cargo run --release -p pipeline-prep --example clean_bench -- [ROWS] [CHUNK]
//! cargo run --release -p pipeline-prep --example clean_bench -- --csv DIR [CHUNK]
//! ```
//! Defaults: 5,000,000 rows, chunks of 65,536 rows, 20 symbols, seed 42. Rows are generated
//! chunk by chunk (not timed); only the stages are timed, one thread, in a plain loop.
//!
//! With `--csv DIR`, reads gen-data's single-file output instead (`DIR/taq.csv` and its
//! ground truth `DIR/anomalies.jsonl`, from `cargo run --release -p xtask -- gen-data
//! --layout single --compression none --out DIR`) with a minimal parser for that exact
//! layout (lines it cannot parse are skipped, as the reader would quarantine them), and
//! scores the default chain against gen-data's own labels.

#[path = "../tests/it/taqgen.rs"]
mod taqgen;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pipeline_core::{Emitter, PreprocessingConfig, Stage};
use pipeline_prep::cleaning_stages;
use taqgen::{Gen, Kind, Rates};

fn main() -> Result<(), pipeline_core::Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--csv") {
        let dir = args.get(2).cloned().unwrap_or_else(|| ".".into());
        let chunk: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(65_536);
        // Optional overrides of the z-score's dispersion floor and reset length, to measure
        // their effect: `--csv DIR CHUNK FLOOR RESET`.
        let floor: Option<f64> = args.get(4).and_then(|a| a.parse().ok());
        let reset: Option<usize> = args.get(5).and_then(|a| a.parse().ok());
        return gen_data::run(std::path::Path::new(&dir), chunk, floor, reset);
    }
    let rows: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let chunk: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(65_536);
    let mut stages: Vec<Box<dyn Stage>> = cleaning_stages(&PreprocessingConfig::default())?
        .iter()
        .map(|f| f())
        .collect::<Result<_, _>>()?;
    let mut times = vec![Duration::ZERO; stages.len()];
    let mut g = Gen::new(42, 20, Rates::default());
    let mut removed: HashMap<u64, String> = HashMap::new();
    let (mut done, mut written) = (0usize, 0usize);
    let mut em = Emitter::default();
    while done < rows {
        let n = chunk.min(rows - done);
        let mut cur = vec![g.chunk(n)];
        done += n;
        for (s, t) in stages.iter_mut().zip(times.iter_mut()) {
            let start = Instant::now();
            for c in cur {
                s.process(c, &mut em)?;
            }
            cur = em.take_chunks();
            *t += start.elapsed();
        }
        written += cur.iter().map(|c| c.num_rows()).sum::<usize>();
        for r in em.take_rejects() {
            removed.insert(r.line, r.reason);
        }
    }
    for (s, t) in stages.iter_mut().zip(times.iter_mut()) {
        let start = Instant::now();
        s.finish(&mut em)?;
        *t += start.elapsed();
    }
    written += em.take_chunks().iter().map(|c| c.num_rows()).sum::<usize>();
    let total: Duration = times.iter().sum();
    println!(
        "rows {rows}, chunk {chunk}, written {written}, removed {}",
        removed.len()
    );
    for (s, t) in stages.iter().zip(&times) {
        println!(
            "  {:18} {:8.3} s  {:7.2} M rows/s",
            s.name(),
            t.as_secs_f64(),
            rows as f64 / t.as_secs_f64() / 1e6
        );
    }
    println!(
        "chain total        {:8.3} s  {:7.2} M rows/s",
        total.as_secs_f64(),
        rows as f64 / total.as_secs_f64() / 1e6
    );
    let truth: HashMap<u64, Kind> = g.truth.iter().copied().collect();
    for (kind, rule) in [
        (Kind::Duplicate, "dedupe_exact"),
        (Kind::Spike, "outlier_zscore"),
        (Kind::Crossed, "crossed_quote"),
        (Kind::BadSize, "nonpositive_size"),
        (Kind::BadPrice, "nonpositive_price"),
        (Kind::Missing, "missing_value"),
    ] {
        let got: Vec<u64> = removed
            .iter()
            .filter(|(_, r)| *r == rule)
            .map(|(l, _)| *l)
            .collect();
        let tp = got.iter().filter(|l| truth.get(l) == Some(&kind)).count();
        let labelled = g.truth.iter().filter(|t| t.1 == kind).count();
        println!(
            "  {rule:18} precision {:.4} recall {:.4} ({labelled} labelled, {} removed)",
            tp as f64 / got.len().max(1) as f64,
            tp as f64 / labelled.max(1) as f64,
            got.len()
        );
    }
    Ok(())
}

/// Scoring against gen-data's real output.
mod gen_data {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use arrow_array::builder::{Float64Builder, StringBuilder, StringDictionaryBuilder};
    use arrow_array::types::Int32Type;
    use arrow_array::{ArrayRef, RecordBatch, TimestampNanosecondArray, UInt64Array};
    use pipeline_core::{Chunk, Emitter, Error, PreprocessingConfig, Result, Stage};
    use pipeline_prep::{OutlierConfig, RollingOutliers, cleaning_stages};

    struct Batch {
        ts: Vec<i64>,
        sym: StringDictionaryBuilder<Int32Type>,
        ex: StringDictionaryBuilder<Int32Type>,
        cond: StringBuilder,
        f: Vec<Float64Builder>,
        lines: Vec<u64>,
    }

    impl Batch {
        fn new() -> Self {
            Batch {
                ts: Vec::new(),
                sym: StringDictionaryBuilder::new(),
                ex: StringDictionaryBuilder::new(),
                cond: StringBuilder::new(),
                f: (0..6).map(|_| Float64Builder::new()).collect(),
                lines: Vec::new(),
            }
        }

        fn push(&mut self, line: u64, text: &str) -> Option<()> {
            let f: Vec<&str> = text.split(',').collect();
            if f.len() != 10 {
                return None;
            }
            let nums: Vec<Option<f64>> = f[2..8]
                .iter()
                .map(|x| {
                    if x.is_empty() {
                        Ok(None)
                    } else {
                        x.parse::<f64>().map(Some)
                    }
                })
                .collect::<std::result::Result<_, _>>()
                .ok()?;
            let ts = chrono::DateTime::parse_from_rfc3339(f[0])
                .ok()?
                .timestamp_nanos_opt()?;
            self.ts.push(ts);
            self.sym.append_value(f[1]);
            for (b, v) in self.f.iter_mut().zip(nums) {
                b.append_option(v);
            }
            self.ex.append_value(f[8]);
            self.cond.append_value(f[9]);
            self.lines.push(line);
            Some(())
        }

        fn finish(&mut self, seq: u64) -> Result<Chunk> {
            let ts =
                TimestampNanosecondArray::from(std::mem::take(&mut self.ts)).with_timezone("UTC");
            let mut cols: Vec<ArrayRef> = vec![Arc::new(ts), Arc::new(self.sym.finish())];
            for b in &mut self.f {
                cols.push(Arc::new(b.finish()));
            }
            cols.push(Arc::new(self.ex.finish()));
            cols.push(Arc::new(self.cond.finish()));
            let batch = RecordBatch::try_new(super::taqgen::schema(), cols)?;
            Chunk::with_lines(
                batch,
                0,
                seq,
                UInt64Array::from(std::mem::take(&mut self.lines)),
            )
        }
    }

    pub fn run(dir: &Path, chunk: usize, floor: Option<f64>, reset: Option<usize>) -> Result<()> {
        let text = std::fs::read_to_string(dir.join("taq.csv")).map_err(|e| Error::io(dir, e))?;
        let truth_text =
            std::fs::read_to_string(dir.join("anomalies.jsonl")).map_err(|e| Error::io(dir, e))?;
        let mut truth: HashMap<u64, String> = HashMap::new();
        for l in truth_text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(l).map_err(|e| Error::Internal(e.to_string()))?;
            if let (Some(line), Some(kind)) = (v["line"].as_u64(), v["kind"].as_str()) {
                truth.insert(line, kind.to_string());
            }
        }
        let mut chunks = Vec::new();
        let mut b = Batch::new();
        let (mut n, mut skipped) = (0usize, 0usize);
        for (i, l) in text.lines().enumerate().skip(1) {
            if b.push(i as u64 + 1, l).is_some() {
                n += 1;
            } else {
                skipped += 1;
            }
            if b.lines.len() == chunk {
                chunks.push(b.finish(chunks.len() as u64)?);
            }
        }
        if !b.lines.is_empty() {
            chunks.push(b.finish(chunks.len() as u64)?);
        }
        let mut stages: Vec<Box<dyn Stage>> = cleaning_stages(&PreprocessingConfig::default())?
            .iter()
            .map(|f| f())
            .collect::<Result<_>>()?;
        if floor.is_some() || reset.is_some() {
            let d = OutlierConfig::default();
            let cfg = OutlierConfig {
                min_scale_rel: floor.unwrap_or(d.min_scale_rel),
                reset_after: reset.unwrap_or(d.reset_after),
                ..d
            };
            println!(
                "z-score floor {} reset_after {}",
                cfg.min_scale_rel, cfg.reset_after
            );
            if let Some(last) = stages.last_mut() {
                *last = Box::new(RollingOutliers::new(cfg)?);
            }
        }
        let mut em = Emitter::default();
        let mut total = Duration::ZERO;
        let mut written = 0usize;
        let mut removed: HashMap<u64, String> = HashMap::new();
        for c in chunks {
            let start = Instant::now();
            let mut cur = vec![c];
            for s in stages.iter_mut() {
                for c in cur {
                    s.process(c, &mut em)?;
                }
                cur = em.take_chunks();
            }
            total += start.elapsed();
            written += cur.iter().map(|c| c.num_rows()).sum::<usize>();
            for r in em.take_rejects() {
                removed.insert(r.line, r.reason);
            }
        }
        for s in stages.iter_mut() {
            s.finish(&mut em)?;
        }
        written += em.take_chunks().iter().map(|c| c.num_rows()).sum::<usize>();
        println!(
            "gen-data {}: {n} rows parsed ({skipped} unparsable skipped), written {written}, removed {}, chain {:.3} s ({:.2} M rows/s)",
            dir.display(),
            removed.len(),
            total.as_secs_f64(),
            n as f64 / total.as_secs_f64() / 1e6
        );
        for (kinds, rule) in [
            (&["duplicate"][..], "dedupe_exact"),
            (&["price_spike"][..], "outlier_zscore"),
            (&["crossed_quote"][..], "crossed_quote"),
            (&["zero_size", "negative_size"][..], "nonpositive_size"),
            (&["zero_price", "negative_price"][..], "nonpositive_price"),
            (&["missing_field"][..], "missing_value"),
        ] {
            let got: Vec<u64> = removed
                .iter()
                .filter(|(_, r)| *r == rule)
                .map(|(l, _)| *l)
                .collect();
            let is = |l: &u64| truth.get(l).is_some_and(|k| kinds.contains(&k.as_str()));
            let tp = got.iter().filter(|l| is(l)).count();
            let labelled = truth
                .values()
                .filter(|k| kinds.contains(&k.as_str()))
                .count();
            let mut fp_kinds: HashMap<String, usize> = HashMap::new();
            for l in got.iter().filter(|l| !is(l)) {
                *fp_kinds
                    .entry(truth.get(l).cloned().unwrap_or_else(|| "clean".into()))
                    .or_default() += 1;
            }
            println!(
                "  {rule:18} precision {:.4} recall {:.4} ({labelled} labelled, {} removed; false positives by label {fp_kinds:?})",
                tp as f64 / got.len().max(1) as f64,
                tp as f64 / labelled.max(1) as f64,
                got.len()
            );
        }
        Ok(())
    }
}
