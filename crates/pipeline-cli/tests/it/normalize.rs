//! `[preprocessing] normalize_features`: the run's output is scaled in a post-pass, the
//! parameters are in every file's metadata and in `scaler.json`, and re-applying them gives
//! the same values.

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use parquet::file::reader::{FileReader, SerializedFileReader};
use pipeline_prep::{SCALER_METADATA_KEY, ScaleMethod, ScalerParams};
use serde_json::Value;
use tempfile::tempdir;

use crate::util::*;

/// Generates one plain TAQ CSV of `rows` rows over two days (plain, so stdin can take it).
fn single_csv(dir: &Path, rows: u64) -> PathBuf {
    let cfg = pipeline_io::GenConfig {
        rows,
        symbols: 3,
        days: Some(2),
        layout: pipeline_io::Layout::Single,
        compression: pipeline_io::Codec::None,
        ..pipeline_io::GenConfig::default()
    };
    let gen_dir = dir.join("input");
    pipeline_io::generate_to_dir(&cfg, &gen_dir).unwrap();
    gen_dir.join("taq.csv")
}

/// Runs `tickpipe run` with `config` (TOML text) on `input` into `out`; returns the summary.
fn run(tmp: &Path, input: &Path, out: &Path, config: &str, stdin: Option<Vec<u8>>) -> Value {
    let cfg = out.with_extension("toml");
    std::fs::write(&cfg, config).unwrap();
    let sj = out.with_extension("summary.json");
    let mut cmd = tickpipe();
    cmd.current_dir(tmp)
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--workers", "2", "-q", "--config", cfg.to_str().unwrap()])
        .arg("--summary-json")
        .arg(&sj);
    if let Some(bytes) = stdin {
        cmd.write_stdin(bytes);
    }
    cmd.assert().success();
    let s = summary(&sj);
    assert_balanced(&s);
    assert_eq!(
        parquet_rows(&out.join("data")),
        s["rows_written"].as_u64().unwrap()
    );
    s
}

/// The footer key-value entry `key` of a Parquet file.
fn kv(path: &Path, key: &str) -> Option<String> {
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    r.metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == key).cloned())
        .and_then(|e| e.value)
}

/// The `sorting_columns` claim of every row group of every file.
fn sort_claims(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .flat_map(|p| {
            let r = SerializedFileReader::new(std::fs::File::open(p).unwrap()).unwrap();
            r.metadata()
                .row_groups()
                .iter()
                .map(|g| format!("{:?}", g.sorting_columns()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Non-null values of `column` across the dataset.
fn values(batches: &[RecordBatch], column: &str) -> Vec<f64> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name(column)
                .unwrap()
                .as_primitive::<Float64Type>();
            (0..a.len())
                .filter(|&i| a.is_valid(i))
                .map(|i| a.value(i))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Checks the files' metadata and `scaler.json` against each other; returns the parameters.
fn check_metadata(out: &Path, s: &Value) -> ScalerParams {
    let json = out.join("scaler.json");
    let params = ScalerParams::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let outputs: Vec<String> = s["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(
        outputs.iter().any(|o| o.ends_with("scaler.json")),
        "{outputs:?}"
    );
    let files = parquet_files(&out.join("data"));
    assert!(!files.is_empty());
    for f in &files {
        let v =
            kv(f, SCALER_METADATA_KEY).unwrap_or_else(|| panic!("{} lacks the key", f.display()));
        assert_eq!(ScalerParams::from_json(&v).unwrap(), params);
    }
    params
}

#[test]
fn zscore_fit_reapply_and_minmax() {
    let tmp = tempdir().unwrap();
    let input = single_csv(tmp.path(), 6_000);

    // Reference: the same run without scaling.
    let plain = tmp.path().join("plain");
    let s0 = run(tmp.path(), &input, &plain, "", None);
    let raw = pipeline_io::read_dataset(&plain.join("data")).unwrap();

    let z = tmp.path().join("z");
    let s1 = run(
        tmp.path(),
        &input,
        &z,
        "[preprocessing]\nnormalize_features = true\n",
        None,
    );
    // Scaling changes no row: the ledgers agree.
    for k in [
        "rows_read",
        "rows_written",
        "rows_quarantined",
        "rows_removed",
    ] {
        assert_eq!(s0[k], s1[k], "{k}");
    }
    let params = check_metadata(&z, &s1);
    assert_eq!(params.method, ScaleMethod::ZScore);
    // The default set: the Float64 feature columns (the reference job's mid, spread, returns,
    // moving averages…), not the inputs, not the integral time features.
    let names: Vec<&str> = params.columns.iter().map(|c| c.column.as_str()).collect();
    assert!(names.len() >= 5, "{names:?}");
    assert!(
        !names.contains(&"price") && !names.contains(&"ts"),
        "{names:?}"
    );
    let files = parquet_files(&z.join("data"));
    assert_eq!(
        sort_claims(&files),
        sort_claims(&parquet_files(&plain.join("data")))
    );
    let scaled = pipeline_io::read_dataset(&z.join("data")).unwrap();
    for c in &params.columns {
        let v = values(&scaled, &c.column);
        assert_eq!(v.len() as u64, c.count, "{}", c.column);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 1e-6, "{}: mean {mean}", c.column);
        assert!((std - 1.0).abs() < 1e-6, "{}: std {std}", c.column);
        // Each value is the unscaled one, shifted and divided.
        let r = values(&raw, &c.column);
        assert_eq!(r.len(), v.len());
        for (a, b) in r.iter().zip(&v) {
            let want = (a - c.center) / c.scale;
            assert!(
                (want - b).abs() <= 1e-9 * want.abs().max(1.0),
                "{}",
                c.column
            );
        }
    }
    // Columns outside the set are untouched.
    for name in ["price", "size", "symbol", "ts"] {
        let col = |b: &[RecordBatch]| {
            b.iter()
                .map(|x| x.column_by_name(name).unwrap().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(col(&raw), col(&scaled), "{name}");
    }

    // Re-applying the saved parameters to the same input, read from stdin this time,
    // gives identical values.
    let again = tmp.path().join("again");
    let text = std::fs::read(&input).unwrap();
    let config = format!(
        "[preprocessing]\nnormalize_features = true\nnormalize_params = \"{}\"\n",
        z.join("scaler.json").display()
    );
    let s2 = run(tmp.path(), Path::new("-"), &again, &config, Some(text));
    assert_eq!(s2["rows_written"], s1["rows_written"]);
    assert_eq!(check_metadata(&again, &s2), params);
    let reapplied = pipeline_io::read_dataset(&again.join("data")).unwrap();
    for c in &params.columns {
        assert_eq!(values(&reapplied, &c.column), values(&scaled, &c.column));
    }

    // Min-max on two named columns: each lands exactly on [0, 1].
    let mm = tmp.path().join("mm");
    let s3 = run(
        tmp.path(),
        &input,
        &mm,
        "[preprocessing]\nnormalize_features = true\nnormalize_method = \"minmax\"\n\
         normalize_columns = [\"mid\", \"spread\"]\n",
        None,
    );
    let p = check_metadata(&mm, &s3);
    assert_eq!(p.method, ScaleMethod::MinMax);
    let b = pipeline_io::read_dataset(&mm.join("data")).unwrap();
    for c in ["mid", "spread"] {
        let v = values(&b, c);
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((min, max), (0.0, 1.0), "{c}");
    }
    // An unscaled feature column stays as it was.
    assert_eq!(values(&b, "log_return"), values(&raw, "log_return"));
}

#[test]
fn resume_after_a_crash_scales_the_whole_output_once() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 6);
    let cfg = tmp.path().join("n.toml");
    std::fs::write(
        &cfg,
        "[preprocessing]\nnormalize_features = true\nnormalize_method = \"robust\"\n",
    )
    .unwrap();
    let args = |out: &Path| {
        vec![
            "run".to_string(),
            input.to_string_lossy().to_string(),
            "--out".into(),
            out.to_string_lossy().to_string(),
            "--workers".into(),
            "2".into(),
            "--checkpoint-every".into(),
            "1".into(),
            "--config".into(),
            cfg.to_string_lossy().to_string(),
            "-q".into(),
        ]
    };
    let clean = tmp.path().join("clean");
    tickpipe().args(args(&clean)).assert().success();
    let crashed = tmp.path().join("crashed");
    // The test hook aborts the process after segment 2, before any post-pass.
    let a = tickpipe()
        .args(args(&crashed))
        .args(["--abort-after-segment", "2"])
        .assert();
    assert!(!a.get_output().status.success());
    assert!(!crashed.join("scaler.json").exists());
    let sj = tmp.path().join("s.json");
    tickpipe()
        .args(args(&crashed))
        .arg("--resume")
        .arg("--summary-json")
        .arg(&sj)
        .assert()
        .success();
    let s = summary(&sj);
    assert_balanced(&s);
    // The parameters are fitted on the whole output, as without the crash.
    let params = check_metadata(&crashed, &s);
    assert_eq!(params, check_metadata(&clean, &s));
    let read = |root: &Path| pipeline_io::read_dataset(&root.join("data")).unwrap();
    assert_eq!(read(&clean), read(&crashed));
    // A second resume of the finished run leaves the scaled files as they are.
    let files = parquet_files(&crashed.join("data"));
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let sj2 = tmp.path().join("s2.json");
    tickpipe()
        .args(args(&crashed))
        .arg("--resume")
        .arg("--summary-json")
        .arg(&sj2)
        .assert()
        .success();
    // The post-pass saw the files (and found them scaled already).
    assert_eq!(check_metadata(&crashed, &summary(&sj2)), params);
    let after: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(before == after, "a second post-pass rescaled the output");
}

#[test]
fn ipc_output_is_scaled_and_csv_output_is_refused() {
    let tmp = tempdir().unwrap();
    let input = single_csv(tmp.path(), 3_000);
    let cfg = tmp.path().join("n.toml");
    std::fs::write(&cfg, "[preprocessing]\nnormalize_features = true\n").unwrap();
    let out = tmp.path().join("ipc");
    tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--format", "ipc", "-q", "--config", cfg.to_str().unwrap()])
        .assert()
        .success();
    let params =
        ScalerParams::from_json(&std::fs::read_to_string(out.join("scaler.json")).unwrap())
            .unwrap();
    let files = pipeline_io::dataset_files(&out.join("data")).unwrap();
    assert!(!files.is_empty());
    for f in &files {
        assert_eq!(f.extension().unwrap(), "arrow");
        let v = pipeline_io::file_metadata_value(f, SCALER_METADATA_KEY)
            .unwrap()
            .unwrap();
        assert_eq!(ScalerParams::from_json(&v).unwrap(), params);
    }
    let b = pipeline_io::read_dataset(&out.join("data")).unwrap();
    let v = values(&b, &params.columns[0].column);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean.abs() < 1e-6, "{mean}");

    // CSV has nowhere to keep the parameters: refused before any input is read.
    let a = tickpipe()
        .args(["run", input.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("csv"))
        .args(["--format", "csv", "-q", "--config", cfg.to_str().unwrap()])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("normalize_features"), "{err}");
    assert!(!tmp.path().join("csv/data").exists());
}

#[test]
fn scaled_output_does_not_depend_on_worker_count() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 8_000, 3);
    // Robust fits see every value in path order; z-score fits are merged per file in path
    // order: neither may depend on the number of workers (which also sets the post-pass's
    // threads).
    for method in ["robust", "zscore"] {
        let cfg = tmp.path().join(format!("{method}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[preprocessing]\nnormalize_features = true\nnormalize_method = \"{method}\"\n"
            ),
        )
        .unwrap();
        let run_with = |workers: &str| {
            let out = tmp.path().join(format!("{method}-w{workers}"));
            tickpipe()
                .args(["run", input.to_str().unwrap(), "--out"])
                .arg(&out)
                .args(["--workers", workers, "-q", "--config"])
                .arg(&cfg)
                .assert()
                .success();
            (
                std::fs::read_to_string(out.join("scaler.json")).unwrap(),
                pipeline_io::read_dataset(&out.join("data")).unwrap(),
            )
        };
        let (p1, d1) = run_with("1");
        let (p2, d2) = run_with("2");
        assert_eq!(p1, p2, "{method}");
        assert!(d1 == d2, "{method}: the scaled data differ");
    }
}

/// `--shard` is refused (a split by files restarted symbols' state), naming the cluster
/// commands; a cluster plan refuses to fit normalisation per reduce task.
#[test]
fn shards_are_refused_and_cluster_plans_need_fitted_parameters() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 2_000, 2);
    let a = tickpipe()
        .args(["run", input.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("o"))
        .args(["-q", "--shard", "0/2"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("tickpipe plan"), "{err}");
    let fit_cfg = tmp.path().join("fit.toml");
    std::fs::write(&fit_cfg, "[preprocessing]\nnormalize_features = true\n").unwrap();
    let a = tickpipe()
        .args(["plan", input.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("job"))
        .arg("--config")
        .arg(&fit_cfg)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("normalize_params"), "{err}");
}

/// `run --follow` cannot fit: without `normalize_params` it refuses (exit 2) instead of
/// writing unscaled files; with them it scales in stream and stamps every file.
#[test]
fn follow_applies_given_parameters_or_refuses_to_fit() {
    let tmp = tempdir().unwrap();
    let input = single_csv(tmp.path(), 3_000);
    let fitted = tmp.path().join("fitted");
    run(
        tmp.path(),
        &input,
        &fitted,
        "[preprocessing]\nnormalize_features = true\n",
        None,
    );
    let scaler = fitted.join("scaler.json");
    let follow = |config: &str, out: &Path| {
        let cfg = out.with_extension("toml");
        std::fs::write(&cfg, config).unwrap();
        tickpipe()
            .current_dir(tmp.path())
            .args(["run", "-", "--follow", "--out", out.to_str().unwrap(), "-q"])
            .args(["--config", cfg.to_str().unwrap()])
            .write_stdin(std::fs::read(&input).unwrap())
            .assert()
    };
    let refused = follow(
        "[preprocessing]\nnormalize_features = true\n",
        &tmp.path().join("f1"),
    )
    .code(2);
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(err.contains("normalize_params"), "{err}");
    let out = tmp.path().join("f2");
    follow(
        &format!(
            "[preprocessing]\nnormalize_features = true\nnormalize_params = \"{}\"\n",
            scaler.display()
        ),
        &out,
    )
    .success();
    let want = ScalerParams::from_json(&std::fs::read_to_string(&scaler).unwrap()).unwrap();
    let files = parquet_files(&out.join("data"));
    assert!(!files.is_empty());
    for f in &files {
        let got = ScalerParams::from_json(&kv(f, SCALER_METADATA_KEY).unwrap()).unwrap();
        assert_eq!(got.to_json(), want.to_json());
    }
    // Scaled in stream with parameters fitted on (nearly) the same rows: mean ≈ 0, std ≈ 1
    // (unscaled, `mid` is a price near 100).
    let mid = values(
        &pipeline_io::read_dataset(&out.join("data")).unwrap(),
        "mid",
    );
    let n = mid.len() as f64;
    let mean = mid.iter().sum::<f64>() / n;
    let sd = (mid.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 0.05 && (sd - 1.0).abs() < 0.05, "{mean} {sd}");
}
