//! Helpers: gen-data inputs read through the real reader, small hand-made batches.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use pipeline_core::Chunk;
use pipeline_io::{AnomalyRates, GenConfig, InputFile, Layout, ReadOptions};

/// Generates a per-day TAQ dataset with every anomaly kind at `rate` and returns its files
/// (sorted) and the labels file.
pub fn gen_data(
    dir: &Path,
    rows: u64,
    days: u32,
    symbols: usize,
    rate: f64,
) -> (Vec<PathBuf>, PathBuf) {
    let cfg = GenConfig {
        rows,
        symbols,
        days: Some(days),
        layout: Layout::PerDay,
        anomalies: AnomalyRates::uniform(rate),
        ..GenConfig::default()
    };
    pipeline_io::generate_to_dir(&cfg, dir).expect("gen-data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    (files, dir.join(pipeline_io::MANIFEST_FILE))
}

/// Reads a file into chunks of about `chunk_rows` rows with source id `id`.
pub fn read(path: &Path, id: u32, chunk_rows: usize) -> Vec<Chunk> {
    let opts = ReadOptions {
        chunk_rows,
        threads: 1,
        ..ReadOptions::default()
    };
    let src = pipeline_io::open_source(&InputFile::new(path), id, &opts).expect("open");
    src.map(|c| c.expect("chunk")).collect()
}

/// A TAQ row for hand-made batches: (ts ns, symbol, price, size, bid, ask).
pub type Row = (
    i64,
    &'static str,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// 2021-01-04 09:30:00 New York (14:30 UTC), a trading day.
pub const OPEN: i64 = 1_609_770_600_000_000_000;
/// One second.
pub const SEC: i64 = 1_000_000_000;

/// A chunk of TAQ rows, lines from `first_line`.
pub fn taq(rows: &[Row], first_line: u64) -> Chunk {
    let col = |f: fn(&Row) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let batch = RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(
                TimestampNanosecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ) as ArrayRef,
        ),
        (
            "symbol",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        ("price", col(|r| r.2)),
        ("size", col(|r| r.3)),
        ("bid", col(|r| r.4)),
        ("ask", col(|r| r.5)),
    ])
    .expect("batch");
    Chunk::with_first_line(batch, 0, 0, first_line).expect("chunk")
}

/// A clean row at `OPEN + s` seconds for symbol `sym` around `px`.
pub fn clean(s: i64, sym: &'static str, px: f64) -> Row {
    (
        OPEN + s * SEC,
        sym,
        Some(px),
        Some(100.0),
        Some(px - 0.01),
        Some(px + 0.01),
    )
}
