//! Integration tests of pipeline-cache: the public API over both tiers (`api`), and what
//! other processes see: a second opener, and a writer killed mid-write (`process`).

mod api;
mod process;

use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};

/// A TAQ-like batch of `rows` rows whose values depend on `seed`.
pub fn ticks(seed: u64, rows: usize) -> RecordBatch {
    let ts: Vec<i64> = (0..rows as i64)
        .map(|i| seed as i64 * 1_000_000 + i * 137)
        .collect();
    let px: Vec<f64> = (0..rows)
        .map(|i| 100.0 + ((seed as usize + i * 7) % 1000) as f64 / 100.0)
        .collect();
    let size: Vec<i64> = (0..rows as i64)
        .map(|i| (i * 31 + seed as i64) % 500 + 1)
        .collect();
    let sym: Vec<&str> = (0..rows)
        .map(|i| ["AAPL", "MSFT", "SPY"][(i + seed as usize) % 3])
        .collect();
    RecordBatch::try_from_iter([
        ("ts", Arc::new(Int64Array::from(ts)) as _),
        ("symbol", Arc::new(StringArray::from(sym)) as _),
        ("price", Arc::new(Float64Array::from(px)) as _),
        ("size", Arc::new(Int64Array::from(size)) as _),
    ])
    .expect("fixed schema")
}
