//! Helpers: generated inputs, running the binary, reading summaries and outputs.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use pipeline_io::{Codec, GenConfig, Layout};
use serde_json::Value;

/// The binary under test.
pub fn tickpipe() -> Command {
    let mut c = Command::cargo_bin("tickpipe").expect("tickpipe binary");
    c.env_remove("TICKPIPE_LOG");
    c
}

/// Generates a small TAQ dataset (per-day gzip files) and returns its directory.
pub fn gen_data(dir: &Path, rows: u64, days: u32) -> PathBuf {
    let input = dir.join("input");
    let cfg = GenConfig {
        rows,
        symbols: 3,
        days: Some(days),
        layout: Layout::PerDay,
        compression: Codec::Gzip,
        ..GenConfig::default()
    };
    pipeline_io::generate_to_dir(&cfg, &input).expect("gen-data");
    // Keep only data files in the input folder; the ground truth goes beside it.
    let manifest = input.join(pipeline_io::MANIFEST_FILE);
    std::fs::rename(&manifest, dir.join("anomalies.jsonl")).expect("move manifest");
    input
}

/// Parses a summary JSON file.
pub fn summary(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary file")).expect("json")
}

/// Checks `rows_read == rows_written + rows_quarantined + sum(rows_removed)`.
pub fn assert_balanced(s: &Value) {
    let removed: u64 = s["rows_removed"]
        .as_object()
        .expect("rows_removed object")
        .values()
        .map(|v| v.as_u64().expect("count"))
        .sum();
    let read = s["rows_read"].as_u64().expect("rows_read");
    let written = s["rows_written"].as_u64().expect("rows_written");
    let q = s["rows_quarantined"].as_u64().expect("rows_quarantined");
    let added: u64 = s["rows_added"]
        .as_object()
        .map_or(0, |m| m.values().map(|v| v.as_u64().expect("count")).sum());
    assert!(read > 0, "no rows read: {s}");
    assert_eq!(
        read + added,
        written + q + removed,
        "ledger does not balance: {s}"
    );
}

/// Every Parquet file under `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// Rows in all Parquet files under `dir`.
pub fn parquet_rows(dir: &Path) -> u64 {
    parquet_files(dir)
        .iter()
        .map(|p| {
            let f = std::fs::File::open(p).expect("open parquet");
            let r = parquet::file::reader::SerializedFileReader::new(f).expect("parquet");
            use parquet::file::reader::FileReader;
            r.metadata().file_metadata().num_rows() as u64
        })
        .sum()
}

/// The real datasets' directory, or `None` (with a skip message) outside CI.
pub fn real_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/real");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing, and CI=true requires it", dir.display());
    }
    eprintln!(
        "skipped: {} not found (it sits beside CI checkouts)",
        dir.display()
    );
    None
}
