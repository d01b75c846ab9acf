//! Sort bench: [`pipeline_parallel::spill::ExternalSorter`] on shuffled tick-like rows (20
//! symbols, random timestamps, TAQ columns) with a small budget, so the data spills to many
//! zstd IPC runs and is merged back. Prints one JSON line: rows/s for push + merge, runs
//! spilled, peak RSS of the process (which includes the input, held in memory).
//!
//! Run: `cargo run --release -p pipeline-parallel --example sort_bench [-- ROWS_MILLIONS
//! BUDGET_MIB]` (default 2 M rows, 16 MiB; fixed seed; best of 3 runs).

use std::sync::Arc;
use std::time::Instant;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Float64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use pipeline_core::Chunk;
use pipeline_parallel::peak_rss;
use pipeline_parallel::spill::ExternalSorter;

const SYMBOLS: [&str; 20] = [
    "AAPL", "MSFT", "AMZN", "GOOG", "META", "TSLA", "NVDA", "JPM", "V", "JNJ", "WMT", "PG", "MA",
    "UNH", "HD", "DIS", "BAC", "XOM", "KO", "PEP",
];
const CHUNK_ROWS: usize = 65_536;

fn make_chunks(rows: usize) -> Vec<Chunk> {
    let mut rng = pipeline_core::SplitMix64::new(7);
    let mut r = move || rng.next_u64();
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
        Field::new(
            "exchange",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
    ]));
    let mut out = Vec::new();
    let mut line = 2u64;
    let mut left = rows;
    while left > 0 {
        let n = left.min(CHUNK_ROWS);
        let ts = TimestampNanosecondArray::from_iter_values(
            (0..n).map(|_| 1_609_770_600_000_000_000 + (r() % 23_400_000_000_000) as i64),
        )
        .with_timezone("UTC");
        let sym: DictionaryArray<Int32Type> =
            (0..n).map(|_| SYMBOLS[(r() % 20) as usize]).collect();
        let exch: DictionaryArray<Int32Type> = (0..n)
            .map(|_| ["Q", "N", "P", "Z"][(r() % 4) as usize])
            .collect();
        let price: Vec<f64> = (0..n)
            .map(|_| 100.0 + (r() % 10_000) as f64 / 100.0)
            .collect();
        let size: Vec<f64> = (0..n).map(|_| (r() % 1000) as f64).collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(ts),
            Arc::new(sym),
            Arc::new(Float64Array::from(price.clone())),
            Arc::new(Float64Array::from(size)),
            Arc::new(Float64Array::from_iter_values(
                price.iter().map(|p| p - 0.01),
            )),
            Arc::new(Float64Array::from_iter_values(
                price.iter().map(|p| p + 0.01),
            )),
            Arc::new(exch),
        ];
        let b = RecordBatch::try_new(schema.clone(), cols).expect("batch");
        out.push(Chunk::with_first_line(b, 0, out.len() as u64, line).expect("chunk"));
        line += n as u64;
        left -= n;
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let millions: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2.0);
    let budget_mib: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);
    let rows = (millions * 1e6) as usize;
    let chunks = make_chunks(rows);
    // The input is held in memory for repeatable timing, so peak RSS is at least this much.
    let input_mib = chunks.iter().map(Chunk::memory_size).sum::<usize>() as f64 / (1 << 20) as f64;
    let dir = std::env::temp_dir().join(format!("tickpipe-sort-bench-{}", std::process::id()));
    let mut best = f64::MAX;
    let mut runs = 0;
    let mut out_rows = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let mut s = ExternalSorter::new("symbol", "ts", budget_mib << 20, &dir);
        for c in &chunks {
            s.push(c.clone()).expect("push");
        }
        runs = s.spilled_runs();
        out_rows = 0;
        for c in s.finish(CHUNK_ROWS).expect("finish") {
            out_rows += c.expect("merge").num_rows();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    assert_eq!(out_rows, rows);
    let _ = std::fs::remove_dir(&dir);
    println!(
        "{{\"rows\":{rows},\"budget_mib\":{budget_mib},\"input_mib\":{input_mib:.1},\"spilled_runs\":{runs},\"seconds\":{best:.3},\"rows_per_s\":{:.0},\"peak_rss_mib\":{:.1}}}",
        rows as f64 / best,
        peak_rss() as f64 / (1 << 20) as f64
    );
}
