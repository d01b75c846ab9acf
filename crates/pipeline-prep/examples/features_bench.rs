//! Throughput of the default feature set on TAQ-shaped rows: the fused [`FeatureStage`] that
//! `feature_stages` builds, against a chain of one stage per feature group doing the same
//! work, plus the 1-minute bar stage. Prints one JSON line.
//!
//! ```text
//! cargo run --release -p pipeline-prep --example features_bench -- [ROWS] [CHUNK]
//! ```
//! Defaults: 5,000,000 rows, chunks of 65,536 rows, 20 symbols interleaved at random, seed 42.
//! Rows are generated chunk by chunk (not timed); only the stages are timed, one thread.
//! Besides wall time it reports on-CPU time from `/proc/thread-self/schedstat` (Linux), which
//! the other processes on a shared machine do not inflate; `*_cpu_rows_per_s` use it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray};
use pipeline_core::{Chunk, Emitter, PreprocessingConfig, Result, Stage};
use pipeline_prep::{BarStage, FeatureConfig, FeatureStage, feature_stages, parse_bar_spec};

/// SplitMix64.
struct Rng(pipeline_core::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Generates TAQ-shaped chunks: `ts, symbol, price, size, bid, ask, bid_size, ask_size`.
struct Gen {
    rng: Rng,
    names: Vec<String>,
    px: Vec<f64>,
    ts: i64,
    line: u64,
    seq: u64,
}

impl Gen {
    fn new(seed: u64, symbols: usize) -> Self {
        Gen {
            rng: Rng(pipeline_core::SplitMix64::new(seed)),
            names: (0..symbols).map(|i| format!("S{i:03}")).collect(),
            px: (0..symbols).map(|i| 20.0 + 10.0 * i as f64).collect(),
            // 2021-01-04 14:30:00 UTC, the New York open.
            ts: 1_609_770_600_000_000_000,
            line: 2,
            seq: 0,
        }
    }

    fn chunk(&mut self, n: usize) -> Result<Chunk> {
        let mut sym = StringDictionaryBuilder::<Int32Type>::new();
        let (mut ts, mut price, mut size, mut bid, mut ask, mut bs, mut as_) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            self.ts += (self.rng.f64() * 2_000_000.0) as i64;
            let s = (self.rng.next() % self.names.len() as u64) as usize;
            let p = ((self.px[s] + (self.rng.f64() - 0.5) * 0.04) * 100.0).round() / 100.0;
            self.px[s] = p;
            sym.append_value(&self.names[s]);
            ts.push(self.ts);
            price.push(p);
            size.push(((self.rng.next() % 10) + 1) as f64 * 100.0);
            bid.push(p - 0.01);
            ask.push(p + 0.01);
            bs.push(((self.rng.next() % 9) + 1) as f64 * 100.0);
            as_.push(((self.rng.next() % 9) + 1) as f64 * 100.0);
        }
        let f = |v: Vec<f64>| Arc::new(Float64Array::from(v)) as ArrayRef;
        let batch = RecordBatch::try_from_iter(vec![
            (
                "ts",
                Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC")) as ArrayRef,
            ),
            ("symbol", Arc::new(sym.finish()) as ArrayRef),
            ("price", f(price)),
            ("size", f(size)),
            ("bid", f(bid)),
            ("ask", f(ask)),
            ("bid_size", f(bs)),
            ("ask_size", f(as_)),
        ])?;
        let c = Chunk::with_first_line(batch, 0, self.seq, self.line)?;
        self.line += n as u64;
        self.seq += 1;
        Ok(c)
    }
}

/// This thread's on-CPU time so far (0 where `/proc/thread-self/schedstat` is missing).
fn cpu_now() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Runs `stages` in sequence over `rows` generated rows; returns the (wall, CPU) time spent
/// in the stages.
fn time_chain(
    stages: &mut [Box<dyn Stage>],
    rows: usize,
    chunk: usize,
) -> Result<(Duration, Duration)> {
    let mut g = Gen::new(42, 20);
    let mut em = Emitter::default();
    let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        let mut cur = vec![g.chunk(n)?];
        done += n;
        let (start, start_cpu) = (Instant::now(), cpu_now());
        for s in stages.iter_mut() {
            for c in cur {
                s.process(c, &mut em)?;
            }
            cur = em.take_chunks();
        }
        // Dropping the output is part of the cost (a sink frees it too).
        drop(cur);
        wall += start.elapsed();
        cpu += cpu_now().saturating_sub(start_cpu);
    }
    let (start, start_cpu) = (Instant::now(), cpu_now());
    for s in stages.iter_mut() {
        s.finish(&mut em)?;
    }
    wall += start.elapsed();
    cpu += cpu_now().saturating_sub(start_cpu);
    Ok((wall, cpu))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let chunk: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(65_536);
    let cfg = PreprocessingConfig::default();

    let mut fused: Vec<Box<dyn Stage>> = feature_stages(&cfg)?
        .iter()
        .map(|f| f())
        .collect::<Result<_>>()?;
    let fused_t = time_chain(&mut fused, rows, chunk)?;

    // The same default features as a chain, one stage per group.
    let base = pipeline_prep::feature_config(&cfg);
    let none = FeatureConfig::none();
    let groups = [
        FeatureConfig {
            returns: true,
            lag_columns: base.lag_columns.clone(),
            lag_periods: base.lag_periods.clone(),
            ..none.clone()
        },
        FeatureConfig {
            rolling: base.rolling.clone(),
            ..none.clone()
        },
        FeatureConfig {
            indicators: base.indicators.clone(),
            ..none.clone()
        },
        FeatureConfig {
            vwap_window: base.vwap_window,
            ..none.clone()
        },
        FeatureConfig {
            microstructure: true,
            ..none.clone()
        },
        FeatureConfig {
            time_features: true,
            ..none.clone()
        },
    ];
    let mut chain: Vec<Box<dyn Stage>> = groups
        .into_iter()
        .map(|g| Ok(Box::new(FeatureStage::new(g)?) as Box<dyn Stage>))
        .collect::<Result<_>>()?;
    let chain_t = time_chain(&mut chain, rows, chunk)?;

    let mut bars: Vec<Box<dyn Stage>> = vec![Box::new(BarStage::new(parse_bar_spec("time:1m")?))];
    let bars_t = time_chain(&mut bars, rows, chunk)?;

    let rate = |t: Duration| rows as f64 / t.as_secs_f64();
    println!(
        "{{\"bench\":\"features\",\"rows\":{rows},\"chunk\":{chunk},\"symbols\":20,\
         \"fused_s\":{:.3},\"fused_rows_per_s\":{:.0},\"fused_cpu_rows_per_s\":{:.0},\
         \"chain_s\":{:.3},\"chain_rows_per_s\":{:.0},\"chain_cpu_rows_per_s\":{:.0},\
         \"bars_1m_rows_per_s\":{:.0},\"bars_1m_cpu_rows_per_s\":{:.0}}}",
        fused_t.0.as_secs_f64(),
        rate(fused_t.0),
        rate(fused_t.1),
        chain_t.0.as_secs_f64(),
        rate(chain_t.0),
        rate(chain_t.1),
        rate(bars_t.0),
        rate(bars_t.1),
    );
    Ok(())
}
