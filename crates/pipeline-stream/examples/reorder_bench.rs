//! Reorder throughput: `ReorderStage::new("symbol", "ts", 2 s)` over 5M generated TAQ rows
//! (20 symbols interleaved, in time order except 0.1% of rows stamped 1 ms–1 s early, so
//! within the lateness), fed in 65,536-row chunks. Checks that the output is in time order per
//! symbol and that no row was lost, then prints one JSON line with the best of three runs.
//!
//! Run: `cargo run --release -p pipeline-stream --example reorder_bench [rows] [mean_step_ns]`
//! (the default mean step, 4.7 ms, spreads 5M rows over a 6.5 h day; a small step such as
//! 20,000 ns keeps ~100k rows pending).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampNanosecondType};
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use pipeline_core::{Chunk, Emitter, Stage};
use pipeline_stream::ReorderStage;

const SYMBOLS: usize = 20;
const CHUNK_ROWS: usize = 65_536;

/// A seeded splitmix64 generator.
struct Rng(pipeline_core::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
}

fn dict(keys: Vec<i32>, values: &[String]) -> ArrayRef {
    let values = StringArray::from(values.to_vec());
    Arc::new(
        DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(values)).unwrap(),
    )
}

/// Builds the input chunks: `step` ns between rows on average, symbols drawn at random, 0.1%
/// of rows 1 ms–1 s early.
fn input(rows: usize, step: u64) -> Vec<Chunk> {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            "symbol",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("price", DataType::Float64, true),
        Field::new("size", DataType::Float64, true),
        Field::new("bid", DataType::Float64, true),
        Field::new("ask", DataType::Float64, true),
        Field::new("bid_size", DataType::Float64, true),
        Field::new("ask_size", DataType::Float64, true),
        Field::new(
            "exchange",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("conditions", DataType::Utf8, true),
    ]));
    let symbols: Vec<String> = (0..SYMBOLS).map(|i| format!("SYM{i:02}")).collect();
    let exchanges: Vec<String> = ["Q", "N", "P", "Z"].iter().map(|s| s.to_string()).collect();
    let mut rng = Rng(pipeline_core::SplitMix64::new(42));
    let mut t: i64 = 1_609_770_600_000_000_000;
    let mut out = Vec::new();
    let mut line = 2u64;
    let mut left = rows;
    let mut seq = 0;
    while left > 0 {
        let n = left.min(CHUNK_ROWS);
        let (mut ts, mut sym, mut px, mut ex, mut cond) = (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            t += (rng.next() % (2 * step)) as i64;
            let r = rng.next();
            let early = if r.is_multiple_of(1000) {
                1_000_000 + (rng.next() % 999_000_000) as i64
            } else {
                0
            };
            ts.push(t - early);
            sym.push(((r >> 20) % SYMBOLS as u64) as i32);
            px.push(100.0 + (r % 10_000) as f64 / 100.0);
            ex.push(((r >> 40) % 4) as i32);
            cond.push(["@", "F", "E", "I"][(r >> 50) as usize % 4]);
        }
        let p = Float64Array::from(px);
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC")),
                dict(sym, &symbols),
                Arc::new(p.clone()),
                Arc::new(p.clone()),
                Arc::new(p.clone()),
                Arc::new(p.clone()),
                Arc::new(p.clone()),
                Arc::new(p),
                dict(ex, &exchanges),
                Arc::new(StringArray::from(cond)),
            ],
        )
        .unwrap();
        out.push(Chunk::with_first_line(b, 0, seq, line).unwrap());
        line += n as u64;
        left -= n;
        seq += 1;
    }
    out
}

/// Runs the stage once; returns (busy time, rows out, late rows), checking order per symbol.
fn run(chunks: &[Chunk]) -> (Duration, usize, u64) {
    let mut stage = ReorderStage::new("symbol", "ts", Duration::from_secs(2));
    let mut em = Emitter::default();
    let mut outs = Vec::new();
    let mut busy = Duration::ZERO;
    for c in chunks {
        let c = c.clone();
        let start = Instant::now();
        stage.process(c, &mut em).unwrap();
        busy += start.elapsed();
        outs.extend(em.take_chunks());
    }
    let start = Instant::now();
    stage.finish(&mut em).unwrap();
    busy += start.elapsed();
    outs.extend(em.take_chunks());
    let mut last = [i64::MIN; SYMBOLS];
    let mut n = 0;
    for c in &outs {
        let ts = c
            .column_by_name("ts")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>();
        let sym = c
            .column_by_name("symbol")
            .unwrap()
            .as_dictionary::<Int32Type>();
        let values = sym.values().as_string::<i32>();
        for i in 0..c.num_rows() {
            let s = values.value(sym.keys().value(i) as usize);
            let k: usize = s[3..].parse().unwrap();
            assert!(ts.value(i) >= last[k], "symbol {s} out of order");
            last[k] = ts.value(i);
        }
        n += c.num_rows();
    }
    let late = em.ledger().quarantined.get("late").copied().unwrap_or(0);
    (busy, n, late)
}

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("rows must be a number"))
        .unwrap_or(5_000_000);
    let step: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().expect("mean_step_ns must be a number"))
        .unwrap_or(4_700_000);
    let chunks = input(rows, step.max(1));
    let mut best = Duration::MAX;
    let mut result = (0, 0);
    for _ in 0..3 {
        let (busy, out, late) = run(&chunks);
        assert_eq!(out as u64 + late, rows as u64, "rows lost");
        best = best.min(busy);
        result = (out, late);
    }
    println!(
        "{{\"bench\":\"reorder\",\"rows\":{rows},\"symbols\":{SYMBOLS},\"chunk_rows\":{CHUNK_ROWS},\"mean_step_ns\":{step},\"rows_out\":{},\"late\":{},\"busy_s\":{:.4},\"rows_per_s\":{:.0}}}",
        result.0,
        result.1,
        best.as_secs_f64(),
        rows as f64 / best.as_secs_f64()
    );
}
