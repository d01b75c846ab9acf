//! `run --sort` on a shuffled file: no `late` rows, every far-apart duplicate removed, output in
//! time order per symbol and identical to a run on the same rows pre-sorted.

use std::path::Path;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tempfile::tempdir;

use crate::util::*;

const HEADER: &str = "ts,symbol,price,size,bid,ask,bid_size,ask_size,exchange,conditions";
/// Unique rows, and copies of some of them added at random places.
const ROWS: usize = 240_000;
const DUPLICATES: usize = 40;

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

/// TAQ rows: three symbols, 5 ms apart (unique times per symbol), quotes around a slow
/// random walk; then `DUPLICATES` exact copies of random rows.
fn rows() -> Vec<String> {
    let mut r = xorshift(0x5DEE_CE66_D1CE_4E5B);
    let syms = [("AAPL", 13_000i64), ("MSFT", 22_000), ("IBM", 12_000)];
    let mut cents = syms.map(|s| s.1);
    let mut v: Vec<String> = (0..ROWS)
        .map(|i| {
            let k = i % 3;
            cents[k] += (r() % 3) as i64 - 1;
            let p = cents[k];
            let ns = i as u64 * 5_000_000 + r() % 1000;
            let secs = 30 * 60 + ns / 1_000_000_000;
            format!(
                "2021-01-04T{:02}:{:02}:{:02}.{:09}Z,{},{}.{:02},{},{}.{:02},{}.{:02},{},{},{},@",
                14 + secs / 3600,
                secs / 60 % 60,
                secs % 60,
                ns % 1_000_000_000,
                syms[k].0,
                p / 100,
                p % 100,
                100 * (1 + r() % 9),
                (p - 1) / 100,
                (p - 1) % 100,
                (p + 1) / 100,
                (p + 1) % 100,
                100 * (1 + r() % 5),
                100 * (1 + r() % 5),
                ["Q", "N", "P"][(r() % 3) as usize],
            )
        })
        .collect();
    let mut picked = std::collections::BTreeSet::new();
    while picked.len() < DUPLICATES {
        picked.insert((r() % ROWS as u64) as usize);
    }
    let copies: Vec<String> = picked.iter().map(|&i| v[i].clone()).collect();
    v.extend(copies);
    v
}

fn write_csv(path: &Path, rows: &[String]) {
    std::fs::write(path, format!("{HEADER}\n{}\n", rows.join("\n"))).unwrap();
}

/// Runs `tickpipe run` and returns the summary and stderr.
fn run(input: &Path, out: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let sj = out.with_extension("json");
    let o = tickpipe()
        .env("TICKPIPE_LOG", "pipeline_parallel::sorted=info")
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args([
            "--workers",
            "2",
            "--memory-limit",
            "128MiB",
            "--chunk-size",
            "1000",
        ])
        .args(extra)
        .arg("--summary-json")
        .arg(&sj)
        .assert()
        .success()
        .get_output()
        .clone();
    (
        summary(&sj),
        strip_ansi(&String::from_utf8_lossy(&o.stderr)),
    )
}

/// The text without terminal colour codes (`ESC [ ... m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_code = false;
    for c in s.chars() {
        match (in_code, c) {
            (false, '\x1b') => in_code = true,
            (false, c) => out.push(c),
            (true, 'm') => in_code = false,
            (true, _) => {}
        }
    }
    out
}

/// Every output file's rows, by path relative to `dir`.
/// Each partition's batches, its files read in name (segment) order: the rows before the
/// end-of-input flush, then the flush's (kept apart for incremental runs).
fn dataset(dir: &Path) -> Vec<(String, Vec<RecordBatch>)> {
    let mut files = parquet_files(dir);
    files.sort();
    let mut out: Vec<(String, Vec<RecordBatch>)> = Vec::new();
    for p in &files {
        let f = std::fs::File::open(p).unwrap();
        let batches = ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let part = p
            .parent()
            .unwrap()
            .strip_prefix(dir)
            .unwrap()
            .display()
            .to_string();
        match out.last_mut() {
            Some((name, b)) if *name == part => b.extend(batches),
            _ => out.push((part, batches)),
        }
    }
    out
}

#[test]
fn sort_repairs_a_shuffled_file_and_finds_every_duplicate() {
    let tmp = tempdir().unwrap();
    let mut rows = rows();
    // Fisher-Yates with a fixed seed.
    let mut r = xorshift(0x0123_4567_89AB_CDEF);
    let mut shuffled = rows.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, (r() % (i as u64 + 1)) as usize);
    }
    // Fixed-width RFC 3339 times sort as text.
    rows.sort();
    let (shuffled_csv, sorted_csv) = (
        tmp.path().join("shuffled.csv"),
        tmp.path().join("sorted.csv"),
    );
    write_csv(&shuffled_csv, &shuffled);
    write_csv(&sorted_csv, &rows);

    // Without --sort the fixture is genuinely out of order: the reorder buffer gives up and
    // the run stops early, naming --sort (`[preprocessing] max_late_fraction`).
    let plain = tickpipe()
        .args(["run", shuffled_csv.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("plain"))
        .args(["--workers", "2", "-q"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&plain.get_output().stderr).to_string();
    assert!(err.contains("--sort"), "{err}");

    let out = tmp.path().join("out");
    // A spill folder left by a killed run (no process has this id) is cleared away.
    std::fs::create_dir_all(out.join(".tickpipe-sort-4294967295-0")).unwrap();
    let (s, log) = run(&shuffled_csv, &out, &["--sort"]);
    assert_balanced(&s);
    assert_eq!(s["rows_read"], (ROWS + DUPLICATES) as u64, "{s}");
    assert!(s["quarantined_by_reason"].get("late").is_none(), "{s}");
    assert_eq!(s["rows_removed"]["dedupe_exact"], DUPLICATES as u64, "{s}");
    // A 128 MiB limit over two open sources gives a 16 MiB sort budget: the file spilled.
    let runs: u64 = log
        .split("spilled_runs=")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sort log line in: {log}"));
    assert!(runs > 0, "{log}");
    // The sorter's spill directory is gone, and so is the stale one.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".tickpipe-sort"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Each symbol's rows are in time order.
    let got = dataset(&out.join("data"));
    assert_eq!(got.len(), 3, "one partition per symbol");
    for (name, batches) in &got {
        let ts: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let t = b.column_by_name("ts").unwrap();
                t.as_primitive::<TimestampNanosecondType>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{name} out of order");
    }

    // The same rows given in order, without --sort, give the same output.
    let (s2, _) = run(&sorted_csv, &tmp.path().join("presorted"), &[]);
    assert_eq!(s["rows_written"], s2["rows_written"]);
    assert_eq!(s["rows_removed"], s2["rows_removed"]);
    assert_eq!(s["quarantined_by_reason"], s2["quarantined_by_reason"]);
    let want = dataset(&tmp.path().join("presorted").join("data"));
    assert_eq!(got.len(), want.len());
    for ((gn, gb), (wn, wb)) in got.iter().zip(&want) {
        assert_eq!(gn, wn);
        assert!(gb == wb, "{gn} differs from the pre-sorted run's");
    }
}
