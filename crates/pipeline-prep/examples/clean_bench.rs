//! Throughput of the default cleaning chain on generated TAQ rows (gen-data's shape and
//! anomaly kinds), with precision and recall per anomaly kind.
//!
//! ```text
//! cargo run --release -p pipeline-prep --example clean_bench -- [ROWS] [CHUNK]
//! ```
//! Defaults: 5,000,000 rows, chunks of 65,536 rows, 20 symbols, seed 42. Rows are generated
//! chunk by chunk (not timed); only the stages are timed, one thread, in a plain loop.

#[path = "../tests/it/taqgen.rs"]
mod taqgen;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pipeline_core::{Emitter, PreprocessingConfig, Stage};
use pipeline_prep::cleaning_stages;
use taqgen::{Gen, Kind, Rates};

fn main() -> Result<(), pipeline_core::Error> {
    let args: Vec<String> = std::env::args().collect();
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
