//! Helpers: generated inputs and reading datasets back.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use pipeline_io::{Codec, GenConfig, Layout};
use tickpipe::{Config, RunReport};

/// Generates per-day gzip TAQ files (3 symbols) into `dir/input`; the ground truth goes
/// beside the folder.
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
    let manifest = input.join(pipeline_io::MANIFEST_FILE);
    std::fs::rename(&manifest, dir.join("anomalies.jsonl")).expect("move manifest");
    input
}

/// A config with `workers` workers.
pub fn config(workers: usize) -> Config {
    let mut c = Config::default();
    c.pipeline.max_workers = workers;
    c
}

/// Checks the ledger equation on a report.
pub fn assert_balanced(r: &RunReport) {
    let removed: u64 = r.rows_removed.values().sum();
    assert!(r.rows_read > 0, "no rows read");
    assert_eq!(
        r.rows_read,
        r.rows_written + r.rows_quarantined + removed,
        "{}",
        r.ledger
    );
}

/// Every row of a dataset folder as text lines (columns in schema order, partition
/// columns dropped), sorted: a comparison that does not depend on file layout.
pub fn dataset_rows(dir: &Path) -> Vec<String> {
    let batches = pipeline_io::read_dataset(dir).expect("read dataset");
    rows_of(&batches)
}

/// Rows of batches as sorted text lines (columns sorted by name).
pub fn rows_of(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        let mut names: Vec<(usize, &str)> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (i, f.name().as_str()))
            .filter(|(_, n)| *n != "_line")
            .collect();
        names.sort_by_key(|(_, n)| *n);
        // Timestamps as their integer value: the formatter would need chrono-tz for "UTC".
        let cols: Vec<_> = names
            .iter()
            .map(|(i, _)| match b.column(*i).data_type() {
                arrow_schema::DataType::Timestamp(..) => {
                    arrow_cast::cast(b.column(*i), &arrow_schema::DataType::Int64).expect("cast")
                }
                _ => b.column(*i).clone(),
            })
            .collect();
        let fmt: Vec<_> = cols
            .iter()
            .map(|c| {
                arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
                    .expect("formatter")
            })
            .collect();
        for row in 0..b.num_rows() {
            let cells: Vec<String> = names
                .iter()
                .zip(&fmt)
                .map(|((_, n), f)| format!("{n}={}", f.value(row)))
                .collect();
            out.push(cells.join(","));
        }
    }
    out.sort();
    out
}
