//! Every subcommand on generated data.

use predicates_shim::contains;
use tempfile::tempdir;

use crate::util::*;

/// A tiny `predicates`-free substring check for assert_cmd's stdout/stderr.
mod predicates_shim {
    pub fn contains(haystack: &[u8], needle: &str) -> bool {
        String::from_utf8_lossy(haystack).contains(needle)
    }
}

#[test]
fn run_writes_partitioned_parquet_and_a_balanced_summary() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 20_000, 4);
    let out = tmp.path().join("out");
    let sj = tmp.path().join("summary.json");
    tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--workers",
            "2",
        ])
        .arg("--summary-json")
        .arg(&sj)
        .assert()
        .success();
    let s = summary(&sj);
    assert_balanced(&s);
    assert!(s["rows_removed"].as_object().unwrap().len() >= 3, "{s}");
    assert!(s["rows_quarantined"].as_u64().unwrap() > 0);
    assert_eq!(s["files_ok"], 4);
    assert_eq!(s["files_failed"].as_array().unwrap().len(), 0);
    assert!(s["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        parquet_rows(&out.join("data")),
        s["rows_written"].as_u64().unwrap()
    );
    // Hive layout, one directory per symbol.
    let dirs: Vec<_> = std::fs::read_dir(out.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(dirs.iter().all(|d| d.starts_with("symbol=")), "{dirs:?}");
    // The quarantine file lists every quarantined and removed row.
    let q = out.join("quarantine.parquet");
    assert!(q.exists());
    let removed: u64 = s["rows_removed"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let f = std::fs::File::open(&q).unwrap();
    use parquet::file::reader::FileReader;
    let rows = parquet::file::reader::SerializedFileReader::new(f)
        .unwrap()
        .metadata()
        .file_metadata()
        .num_rows() as u64;
    let aggregated = s["rows_removed"]
        .get("bars")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    assert_eq!(
        rows,
        s["rows_quarantined"].as_u64().unwrap() + removed - aggregated
    );
}

#[test]
fn reports_follow_the_flags_that_turn_components_off() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 5_000, 2);
    let run = |name: &str, flags: &[&str]| {
        let out = tmp.path().join(name);
        tickpipe()
            .args([
                "run",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(flags)
            .assert()
            .success();
        out
    };
    let all = run("all", &[]);
    for f in [
        "report.html",
        "metrics.prom",
        "quality.json",
        "quality.html",
        "_cache",
    ] {
        assert!(all.join(f).exists(), "{f} missing from a default run");
    }
    let none = run("none", &["--no-validate", "--no-monitor", "--no-cache"]);
    for f in [
        "report.html",
        "metrics.prom",
        "quality.json",
        "quality.html",
        "_cache",
    ] {
        assert!(!none.join(f).exists(), "{f} written although turned off");
    }
    // The data does not depend on them.
    assert_eq!(
        parquet_rows(&all.join("data")),
        parquet_rows(&none.join("data"))
    );
}

#[test]
fn output_does_not_depend_on_worker_count() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 6_000, 3);
    let mut outs = Vec::new();
    for w in ["1", "3"] {
        let out = tmp.path().join(format!("out{w}"));
        tickpipe()
            .args([
                "run",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--workers",
                w,
                "--chunk-size",
                "100",
                "-q",
            ])
            .assert()
            .success();
        let files = parquet_files(&out.join("data"));
        let rel: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(&out).unwrap().to_path_buf())
            .collect();
        let bytes: Vec<_> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
        outs.push((rel, bytes));
    }
    assert_eq!(outs[0].0, outs[1].0, "same files");
    assert!(outs[0].1 == outs[1].1, "same bytes for 1 and 3 workers");
}

#[test]
fn convert_to_one_file_and_to_a_directory() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 5_000, 2);
    let file = tmp.path().join("all.parquet");
    let sj = tmp.path().join("s.json");
    tickpipe()
        .args([
            "convert",
            input.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
            "-q",
            "--summary-json",
        ])
        .arg(&sj)
        .assert()
        .success();
    let s = summary(&sj);
    assert_balanced(&s);
    assert!(
        s["rows_removed"].as_object().unwrap().is_empty(),
        "convert removes nothing"
    );
    let f = std::fs::File::open(&file).unwrap();
    use parquet::file::reader::FileReader;
    let rows = parquet::file::reader::SerializedFileReader::new(f)
        .unwrap()
        .metadata()
        .file_metadata()
        .num_rows();
    assert_eq!(rows as u64, s["rows_written"].as_u64().unwrap());
    let dir = tmp.path().join("ipc");
    tickpipe()
        .args([
            "convert",
            input.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
            "--format",
            "ipc",
            "-q",
        ])
        .assert()
        .success();
    assert!(std::fs::read_dir(dir.join("data")).unwrap().count() >= 1);
}

#[test]
fn timestamp_unit_us_writes_microsecond_timestamps() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 2_000, 1);
    let cfg = tmp.path().join("us.toml");
    std::fs::write(&cfg, "[output]\ntimestamp_unit = \"us\"\n").unwrap();
    let out = tmp.path().join("out");
    tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .arg("--config")
        .arg(&cfg)
        .assert()
        .success();
    let batches = pipeline_io::read_dataset(&out.join("data")).unwrap();
    assert!(!batches.is_empty());
    for b in &batches {
        assert_eq!(
            b.schema().field_with_name("ts").unwrap().data_type(),
            &arrow_schema::DataType::Timestamp(
                arrow_schema::TimeUnit::Microsecond,
                Some("UTC".into())
            )
        );
    }
    std::fs::write(&cfg, "[output]\ntimestamp_unit = \"s\"\n").unwrap();
    let a = tickpipe()
        .args(["config", "check", cfg.to_str().unwrap()])
        .assert()
        .code(2);
    assert!(contains(&a.get_output().stderr, "output.timestamp_unit"));
}

#[test]
fn bars_aggregate_and_account_for_every_tick() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 8_000, 2);
    let out = tmp.path().join("bars");
    let sj = tmp.path().join("s.json");
    tickpipe()
        .args([
            "bars",
            input.to_str().unwrap(),
            "--kind",
            "time:5m",
            "--out",
            out.to_str().unwrap(),
            "-q",
            "--summary-json",
        ])
        .arg(&sj)
        .assert()
        .success();
    let s = summary(&sj);
    assert_balanced(&s);
    let bars = s["bars_written"].as_u64().unwrap();
    // 3 symbols x 2 days x 78 five-minute session bars, plus a few bars of the injected
    // outside-session rows (the default cleaning keeps them: rule P1 is opt-in).
    assert!((3 * 2 * 70..=3 * 2 * (78 + 6)).contains(&bars), "{bars}");
    assert!(s["rows_removed"]["bars"].as_u64().unwrap() > 0);
    tickpipe()
        .args([
            "bars",
            input.to_str().unwrap(),
            "--kind",
            "weekly",
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .code(2);
}

#[test]
fn inspect_prints_a_table_and_json() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 3_000, 1);
    let a = tickpipe()
        .args(["inspect", input.to_str().unwrap()])
        .assert()
        .success();
    let out = &a.get_output().stdout;
    assert!(
        contains(out, "gzip") || contains(out, "Gzip"),
        "{}",
        String::from_utf8_lossy(out)
    );
    assert!(contains(out, "symbols"));
    let a = tickpipe()
        .args(["inspect", input.to_str().unwrap(), "--json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    let r = &v["files"][0];
    assert_eq!(r["symbols"].as_array().unwrap().len(), 3);
    assert!(r["rows"].as_u64().unwrap() + r["quarantined"].as_u64().unwrap() >= 3_000);
    assert!(r["ts_min"].as_str().unwrap().starts_with("2019-01-02"));
}

#[test]
fn config_init_writes_a_config_that_run_accepts() {
    let tmp = tempdir().unwrap();
    let cfg = tmp.path().join("tickpipe.toml");
    tickpipe()
        .args(["config", "init", "--out", cfg.to_str().unwrap()])
        .assert()
        .success();
    tickpipe()
        .args(["config", "init", "--out", cfg.to_str().unwrap()])
        .assert()
        .code(2);
    tickpipe()
        .args(["config", "check", cfg.to_str().unwrap()])
        .assert()
        .success();
    std::fs::write(&cfg, "[pipeline]\nchunk_sise = 3\n").unwrap();
    let a = tickpipe()
        .args(["config", "check", cfg.to_str().unwrap()])
        .assert()
        .code(2);
    assert!(contains(&a.get_output().stderr, "pipeline.chunk_sise"));
    // Specs only the stages parse are checked too.
    std::fs::write(&cfg, "[preprocessing]\nrolling_features = [\"mean_0\"]\n").unwrap();
    let a = tickpipe()
        .args(["config", "check", cfg.to_str().unwrap()])
        .assert()
        .code(2);
    assert!(contains(
        &a.get_output().stderr,
        "preprocessing.rolling_features"
    ));
    std::fs::write(&cfg, "[pipeline]\nchunk_sise = 3\n").unwrap();
    let input = gen_data(tmp.path(), 1_000, 1);
    let a = tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .assert()
        .code(2);
    assert!(contains(&a.get_output().stderr, "chunk_sise"));
}

#[test]
fn demo_runs_end_to_end() {
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("demo");
    let a = tickpipe()
        .args([
            "demo",
            "--out",
            out.to_str().unwrap(),
            "--rows",
            "20000",
            "--years",
            "1",
        ])
        .assert()
        .success();
    assert!(contains(&a.get_output().stderr, "ledger: read"));
    let s = summary(&out.join("output/summary.json"));
    assert_balanced(&s);
    assert!(parquet_rows(&out.join("output/data")) > 0);
}

#[test]
fn help_documents_exit_codes() {
    let a = tickpipe().arg("--help").assert().success();
    assert!(contains(&a.get_output().stdout, "Exit codes"));
    tickpipe().arg("frobnicate").assert().code(2);
}
