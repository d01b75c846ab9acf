//! Incremental runs (#16): a finished dataset given more inputs after its recorded ones
//! processes only the new ones, each symbol continuing from its state at the end of the
//! recorded inputs, and ends up equal (data and quarantine, row for row) to one run over all
//! the inputs; an interrupted append resumes to the same; a changed or removed file in the
//! middle of the history is processed again from there (from the last segment end before
//! it), equal to a fresh run; a changed first file is refused and the dataset left as it was.

use std::path::{Path, PathBuf};

use tempfile::tempdir;

use crate::util::*;

fn run_args(input: &Path, out: &Path) -> Vec<String> {
    vec![
        "run".into(),
        input.to_string_lossy().into(),
        "--out".into(),
        out.to_string_lossy().into(),
        "--checkpoint-every".into(),
        "1".into(),
        "--workers".into(),
        "3".into(),
        "-q".into(),
    ]
}

/// [`run_args`] without `-q`, for the messages.
fn loud(input: &Path, out: &Path) -> Vec<String> {
    let mut v = run_args(input, out);
    v.retain(|a| a != "-q");
    v
}

/// Every row of the Parquet files under `dir` (or of the `quarantine*.parquet` files
/// directly in it, when `quarantine`), all columns as text, sorted; file paths in the
/// quarantine are compared by file name.
pub fn rows(dir: &Path, quarantine: bool) -> Vec<String> {
    let files: Vec<PathBuf> = if quarantine {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("quarantine") && n.ends_with(".parquet")
                })
            })
            .collect()
    } else {
        parquet_files(&dir.join("data"))
    };
    let mut out = Vec::new();
    for f in files {
        // The partition folders hold the symbol (and date): keep them with the row.
        let part = f
            .parent()
            .and_then(|p| p.strip_prefix(dir).ok())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        for b in pipeline_io::read_dataset(&f).unwrap() {
            // Zoned timestamps as their instants (the formatter knows no zone names).
            let cols: Vec<arrow_array::ArrayRef> = b
                .columns()
                .iter()
                .map(|c| match c.data_type() {
                    arrow_schema::DataType::Timestamp(unit, Some(_)) => {
                        arrow_cast::cast(c, &arrow_schema::DataType::Timestamp(*unit, None))
                            .unwrap()
                    }
                    _ => c.clone(),
                })
                .collect();
            let fmt: Vec<_> = cols
                .iter()
                .map(|c| {
                    arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &Default::default())
                        .unwrap()
                })
                .collect();
            let names: Vec<String> = b
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            for r in 0..b.num_rows() {
                let mut cells = vec![part.clone()];
                for (name, f) in names.iter().zip(&fmt) {
                    let v = f.value(r).to_string();
                    let v = if quarantine && name == "file" {
                        Path::new(&v)
                            .file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_default()
                    } else {
                        v
                    };
                    cells.push(format!("{name}={v}"));
                }
                out.push(cells.join("|"));
            }
        }
    }
    out.sort();
    out
}

fn assert_same_rows(got: &Path, want: &Path, what: &str) {
    let (g, w) = (rows(got, false), rows(want, false));
    assert!(!w.is_empty(), "the reference run writes rows");
    assert_eq!(g.len(), w.len(), "{what}: data row count");
    assert!(
        g == w,
        "{what}: data rows differ from one run over all inputs"
    );
    let (g, w) = (rows(got, true), rows(want, true));
    assert!(!w.is_empty(), "the reference run quarantines rows");
    assert_eq!(g, w, "{what}: quarantine rows");
}

/// The day files of a generated dataset, in name order.
fn days(input: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(input)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Moves the last day of `input` aside, into `aside`; returns where it went and where it was.
fn hold_back_last_day(input: &Path, aside: &Path) -> (PathBuf, PathBuf) {
    let last = days(input).pop().unwrap();
    std::fs::create_dir_all(aside).unwrap();
    let held = aside.join(last.file_name().unwrap());
    std::fs::rename(&last, &held).unwrap();
    (held, last)
}

/// What `tickpipe inspect dir` prints.
fn inspect(dir: &Path) -> String {
    let a = tickpipe()
        .args(["inspect", dir.to_str().unwrap()])
        .assert()
        .success();
    String::from_utf8_lossy(&a.get_output().stdout).to_string()
}

fn summary_of(out: &Path) -> serde_json::Value {
    summary(&out.join("_SUCCESS"))
}

#[test]
fn appending_a_day_equals_a_full_run_and_an_interrupted_append_resumes() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 5);
    assert!(days(&input).len() >= 4, "{:?}", days(&input));
    let (held, back) = hold_back_last_day(&input, &tmp.path().join("aside"));

    // Days 1..N-1, then day N added.
    let out = tmp.path().join("out");
    let crashed = tmp.path().join("crashed");
    tickpipe().args(run_args(&input, &out)).assert().success();
    tickpipe()
        .args(run_args(&input, &crashed))
        .assert()
        .success();
    let first = summary_of(&out);
    std::fs::rename(&held, &back).unwrap();
    let a = tickpipe().args(loud(&input, &out)).assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("incremental run: 1 new inputs"), "{err}");

    // A fresh run over days 1..N.
    let reference = tmp.path().join("reference");
    tickpipe()
        .args(run_args(&input, &reference))
        .assert()
        .success();
    assert_same_rows(&out, &reference, "append");
    // The quality history of the append (its unchanged records written back as read) is
    // the fresh run's, line for line.
    let history = |d: &Path| std::fs::read_to_string(d.join("quality_history.jsonl")).unwrap();
    assert_eq!(history(&out), history(&reference));
    assert!(history(&out).lines().count() > 5);

    // The ledger is cumulative and balanced, and only the new day was read again.
    let (s, r) = (summary_of(&out), summary_of(&reference));
    assert_balanced(&s);
    for k in ["rows_read", "rows_written", "rows_quarantined"] {
        assert_eq!(s[k], r[k], "{k}: {s} vs {r}");
    }
    assert!(
        s["rows_read"].as_u64().unwrap() > first["rows_read"].as_u64().unwrap(),
        "{s}"
    );
    // The recorded days were not sniffed again, nor looked up one by one: their
    // description came from the cache the first run kept, as one entry (one hit); the
    // misses are the new day's description and its block boundaries.
    let recorded = days(&input).len() as u64 - 1;
    assert!(recorded >= 3);
    let (hits, misses) = (
        s["cache"]["hits"].as_u64().unwrap(),
        s["cache"]["misses"].as_u64().unwrap(),
    );
    assert!(hits >= 1 && misses <= 2, "{}", s["cache"]);

    // The record says what the dataset was made from, appends included.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("_run.json")).unwrap()).unwrap();
    let history = record["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{record}");
    assert_eq!(history[1]["inputs"], 1, "{record}");
    assert_eq!(
        record["inputs"].as_array().unwrap().len(),
        days(&input).len()
    );
    let text = inspect(&out);
    assert!(text.contains("added 1 input"), "{text}");

    // The same again is up to date.
    let a = tickpipe().args(loud(&input, &out)).assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("nothing to do"), "{err}");

    // An append killed after committing the new day's segment but before the new end: the
    // folder is unfinished, and a plain --resume completes it.
    let n = days(&input).len();
    for point in [format!("commit:{}", n - 1), format!("before-commit:{n}")] {
        let target = tmp.path().join(point.replace(':', "-"));
        copy_dir(&crashed, &target);
        let a = tickpipe()
            .args(run_args(&input, &target))
            .args(["--abort-at", &point])
            .assert();
        assert!(!a.get_output().status.success(), "{point}: should crash");
        assert!(!target.join("_SUCCESS").exists(), "{point}");
        tickpipe()
            .args([
                "run",
                input.to_str().unwrap(),
                "--out",
                target.to_str().unwrap(),
                "--resume",
                "-q",
            ])
            .assert()
            .success();
        assert_same_rows(&target, &reference, &point);
    }
}

/// Drops the last line of a gzip day file (a vendor's corrected re-delivery).
fn drop_last_row(day: &Path) {
    use std::io::{Read, Write};
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(day).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
    std::fs::write(day, enc.finish().unwrap()).unwrap();
}

/// A fresh run over `input` into `tmp/name`, for comparison.
fn fresh(tmp: &Path, input: &Path, name: &str) -> PathBuf {
    let reference = tmp.join(name);
    tickpipe()
        .args(run_args(input, &reference))
        .assert()
        .success();
    reference
}

#[test]
fn a_changed_or_removed_day_in_the_middle_is_processed_again_from_there() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 8_000, 6);
    let out = tmp.path().join("out");
    tickpipe().args(run_args(&input, &out)).assert().success();
    let all = days(&input);
    assert!(all.len() >= 5, "{all:?}");

    // Day 3 is re-delivered without its last row: days 1-2 are kept, 3.. processed again.
    drop_last_row(&all[2]);
    let a = tickpipe().args(loud(&input, &out)).assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    let name = all[2].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        err.contains("changed history")
            && err.contains(&name)
            && err.contains("the first 2 were kept"),
        "{err}"
    );
    let reference = fresh(tmp.path(), &input, "reference");
    assert_same_rows(&out, &reference, "a changed day");
    let (s, r) = (summary_of(&out), summary_of(&reference));
    assert_balanced(&s);
    for k in [
        "rows_read",
        "rows_written",
        "rows_quarantined",
        "rows_removed",
    ] {
        assert_eq!(s[k], r[k], "{k}: {s} vs {r}");
    }
    assert_eq!(s["reprocessed"]["kept"], 2, "{s}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("_run.json")).unwrap()).unwrap();
    assert_eq!(record["history"].as_array().unwrap().len(), 2, "{record}");

    // Day 4 is removed: days 1-3 are kept, the rest processed again; then a new last day
    // is an ordinary append.
    let aside = tmp.path().join("aside");
    std::fs::create_dir_all(&aside).unwrap();
    std::fs::rename(&all[3], aside.join(all[3].file_name().unwrap())).unwrap();
    let held = hold_back_last_day(&input, &tmp.path().join("held"));
    tickpipe().args(run_args(&input, &out)).assert().success();
    assert_same_rows(
        &out,
        &fresh(tmp.path(), &input, "reference2"),
        "a removed day",
    );
    std::fs::rename(&held.0, &held.1).unwrap();
    let a = tickpipe().args(loud(&input, &out)).assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("incremental run: 1 new inputs"), "{err}");
    assert_same_rows(
        &out,
        &fresh(tmp.path(), &input, "reference3"),
        "then appended",
    );

    // The first day changed: nothing before it to keep. Refused, naming it, nothing touched.
    let before = rows(&out, false);
    drop_last_row(&all[0]);
    let a = tickpipe().args(run_args(&input, &out)).assert().code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    let name = all[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(err.contains(&name) && err.contains("changed"), "{err}");
    assert!(err.contains("--overwrite"), "{err}");
    assert!(out.join("_SUCCESS").exists());
    assert_eq!(rows(&out, false), before);
    // --overwrite makes it again, equal to a fresh run.
    tickpipe()
        .args(run_args(&input, &out))
        .arg("--overwrite")
        .assert()
        .success();
    assert_same_rows(
        &out,
        &fresh(tmp.path(), &input, "reference4"),
        "after --overwrite",
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

#[test]
fn a_folder_written_not_appendable_refuses_an_append_and_says_why() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 3_000, 3);
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "[output]\nappendable = false\n").unwrap();
    let (held, back) = hold_back_last_day(&input, &tmp.path().join("aside"));
    let out = tmp.path().join("out");
    let with_cfg = |args: Vec<String>| {
        let mut a = args;
        a.extend(["--config".into(), cfg.to_string_lossy().into()]);
        a
    };
    tickpipe()
        .args(with_cfg(run_args(&input, &out)))
        .assert()
        .success();
    let before = rows(&out, false);
    std::fs::rename(&held, &back).unwrap();
    let a = tickpipe()
        .args(with_cfg(run_args(&input, &out)))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("appendable = false"), "{err}");
    assert_eq!(rows(&out, false), before, "the dataset was touched");
}

/// Runs [`with_config`] without `-q`; it must succeed; its stderr.
fn loud_with_config(input: &Path, out: &Path, cfg: &Path) -> String {
    let mut args = with_config(input, out, cfg);
    args.retain(|a| a != "-q");
    let a = tickpipe().args(&args).assert().success();
    String::from_utf8_lossy(&a.get_output().stderr).to_string()
}

/// Runs [`with_config`]; it must succeed.
fn run_with_config(input: &Path, out: &Path, cfg: &Path) {
    tickpipe()
        .args(with_config(input, out, cfg))
        .assert()
        .success();
}

/// `run_args` with `--config cfg`.
fn with_config(input: &Path, out: &Path, cfg: &Path) -> Vec<String> {
    let mut a = run_args(input, out);
    a.extend(["--config".into(), cfg.to_string_lossy().into()]);
    a
}

#[test]
fn a_changed_feature_parameter_recomputes_the_features_from_the_dataset() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 5);
    let (held, back) = hold_back_last_day(&input, &tmp.path().join("aside"));
    // Another window, another indicator set and other lags: the columns change too.
    let cfg = tmp.path().join("features.toml");
    std::fs::write(
        &cfg,
        "[preprocessing]\nindicators = [\"sma_30\", \"rsi_14\"]\nrolling_window = 7\n\
         lag_periods = [2, 3]\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    tickpipe().args(run_args(&input, &out)).assert().success();
    let interrupted = tmp.path().join("interrupted");
    copy_dir(&out, &interrupted);
    let first = summary_of(&out);

    let err = loud_with_config(&input, &out, &cfg);
    assert!(
        err.contains("only feature parameters changed")
            && err.contains("preprocessing.indicators")
            && err.contains("without reading or cleaning the inputs"),
        "{err}"
    );
    let reference = tmp.path().join("reference");
    run_with_config(&input, &reference, &cfg);
    assert_same_rows(&out, &reference, "features recomputed");
    let names = |dir: &Path| {
        let f = &parquet_files(&dir.join("data"))[0];
        pipeline_io::file_schema(f)
            .unwrap()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&out), names(&reference), "column order");
    assert!(names(&out).contains(&"rsi_14".to_string()));
    // Each rewritten file says which feature configuration computed its columns.
    for f in parquet_files(&out.join("data")) {
        let key = pipeline_io::file_metadata_value(&f, "tickpipe.features").unwrap();
        assert!(key.is_some_and(|k| k.len() == 16), "{}", f.display());
    }
    let s = summary_of(&out);
    assert_eq!(s["rows_read"], first["rows_read"], "{s}");
    assert_eq!(s["refeatured"]["rows"], s["rows_written"], "{s}");
    assert!(s["refeatured"]["files"].as_u64().unwrap() > 0, "{s}");
    let text = inspect(&out);
    assert!(
        text.contains("feature columns computed again for preprocessing."),
        "{text}"
    );
    // The record holds the new configuration: the same command is up to date.
    let err = loud_with_config(&input, &out, &cfg);
    assert!(err.contains("nothing to do"), "{err}");

    // Killed after rewriting two files: the folder is unfinished; another configuration is
    // refused, naming the interrupted re-run; the same command completes it.
    let a = tickpipe()
        .args(with_config(&input, &interrupted, &cfg))
        .args(["--abort-at", "refeature:2"])
        .assert();
    assert!(!a.get_output().status.success(), "should crash");
    assert!(!interrupted.join("_SUCCESS").exists());
    let text = inspect(&interrupted);
    assert!(
        text.contains("a re-run of its feature columns (preprocessing."),
        "{text}"
    );
    let a = tickpipe()
        .args(run_args(&input, &interrupted))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("interrupted re-run of its feature columns"),
        "{err}"
    );
    run_with_config(&input, &interrupted, &cfg);
    assert_same_rows(&interrupted, &reference, "an interrupted re-run completed");

    // The stage state at the end was recomputed too: appending a day continues with the
    // new parameters, equal to a fresh run over all days.
    std::fs::rename(&held, &back).unwrap();
    for dir in [&out, &interrupted] {
        run_with_config(&input, dir, &cfg);
        assert_eq!(summary_of(dir)["appended"][0], 1);
    }
    let all = tmp.path().join("all");
    run_with_config(&input, &all, &cfg);
    assert_same_rows(&out, &all, "then appended");
    assert_same_rows(&interrupted, &all, "interrupted, completed, then appended");

    // A cleaning parameter is not a feature parameter: the dataset is made again from the
    // inputs, equal to a fresh run.
    let other = tmp.path().join("other.toml");
    std::fs::write(&other, "[preprocessing]\noutlier_window = 50\n").unwrap();
    run_with_config(&input, &out, &other);
    let rerun = summary_of(&out)["rerun"].clone();
    assert!(
        rerun
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "preprocessing.outlier_window")),
        "{rerun}"
    );
    let fresh = tmp.path().join("fresh");
    run_with_config(&input, &fresh, &other);
    assert_same_rows(&out, &fresh, "a cleaning parameter changed");
}

#[test]
fn recorded_inputs_whose_stat_is_unchanged_are_not_read_again() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 3_000, 3);
    // Files changed in the last 2 s get no stamp (git's racy entries): let them settle.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let out = tmp.path().join("out");
    tickpipe().args(run_args(&input, &out)).assert().success();
    let path = out.join("_run.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let inputs = record["inputs"].as_array_mut().unwrap();
    assert!(inputs.iter().all(|i| i["stamp"].is_object()), "{inputs:?}");
    // Plant another content hash for the first day under its true stamp: a run that reads
    // the file would see the difference and go back in the history; one that trusts the
    // stamp sees the recorded value and has nothing to do.
    let h = inputs[0]["fingerprint"]["ends_hash"].as_u64().unwrap();
    inputs[0]["fingerprint"]["ends_hash"] = (h ^ 1).into();
    std::fs::write(&path, serde_json::to_string_pretty(&record).unwrap()).unwrap();
    let a = tickpipe().args(loud(&input, &out)).assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("nothing to do"), "{err}");
    // Touched (its stat changes): read again, and the planted hash no longer matches.
    let first = days(&input)[0].clone();
    let bytes = std::fs::read(&first).unwrap();
    std::fs::write(&first, bytes).unwrap();
    let a = tickpipe().args(loud(&input, &out)).assert().code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    let name = first.file_name().unwrap().to_string_lossy().to_string();
    assert!(err.contains(&name) && err.contains("changed"), "{err}");
}

#[test]
fn a_feature_re_run_works_on_a_folder_written_not_appendable() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 3_000, 3);
    let (base, feat) = (tmp.path().join("base.toml"), tmp.path().join("feat.toml"));
    std::fs::write(&base, "[output]\nappendable = false\n").unwrap();
    std::fs::write(
        &feat,
        "[output]\nappendable = false\n[preprocessing]\nrolling_window = 5\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    run_with_config(&input, &out, &base);
    run_with_config(&input, &out, &feat);
    assert!(summary_of(&out)["refeatured"].is_object());
    let reference = tmp.path().join("reference");
    run_with_config(&input, &reference, &feat);
    assert_same_rows(&out, &reference, "not appendable, features recomputed");
}

#[test]
fn a_changed_report_setting_keeps_the_rows_and_makes_the_report_again() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 5);
    let out = tmp.path().join("out");
    tickpipe().args(run_args(&input, &out)).assert().success();
    let first = summary_of(&out);
    let crashed = tmp.path().join("crashed");
    copy_dir(&out, &crashed);
    // A warning threshold of 0 turns every rule with a warning into a failed one; the
    // history check's ratio and window are report settings too.
    let cfg = tmp.path().join("report.toml");
    std::fs::write(
        &cfg,
        "[validation]\nwarning_threshold = 0.0\nrows_min_ratio = 0.5\nhistory_window = 3\n",
    )
    .unwrap();
    let err = loud_with_config(&input, &out, &cfg);
    assert!(
        err.contains("only settings of the quality report changed")
            && err.contains("validation.warning_threshold"),
        "{err}"
    );
    let s = summary_of(&out);
    assert_eq!(
        s["report_only"],
        serde_json::json!([
            "validation.history_window",
            "validation.rows_min_ratio",
            "validation.warning_threshold"
        ]),
        "{s}"
    );

    // Against a fresh run with the new settings: the same rows, quarantine, ledger and
    // quality report (rule by rule).
    let reference = tmp.path().join("reference");
    run_with_config(&input, &reference, &cfg);
    assert_same_rows(&out, &reference, "report settings changed");
    let r = summary_of(&reference);
    assert_balanced(&s);
    for k in ["rows_read", "rows_written", "rows_quarantined"] {
        assert_eq!(s[k], r[k], "{k}: {s} vs {r}");
        assert_eq!(s[k], first[k], "{k}: the rows did not change");
    }
    let quality = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("quality.json")).unwrap()).unwrap()
    };
    let rules = |q: &serde_json::Value| -> Vec<serde_json::Value> {
        q["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                serde_json::json!([
                    x["name"],
                    x["status"],
                    x["checked"],
                    x["failed"],
                    x["threshold"]
                ])
            })
            .collect()
    };
    let (got, want) = (quality(&out), quality(&reference));
    assert_eq!(rules(&got), rules(&want));
    assert_eq!(got["verdict"], want["verdict"]);
    assert!(
        rules(&got)
            .iter()
            .any(|x| x[1] == "fail" && x[4].as_f64() == Some(0.0)),
        "a warning rule with findings fails at threshold 0: {:?}",
        rules(&got)
    );
    assert!(inspect(&out).contains("quality report made again for validation.history_window"));

    // Killed before the flush segment is committed again: the folder is unfinished, and a
    // plain --resume (the recorded, new settings) completes it.
    let flush = days(&input).len();
    let a = tickpipe()
        .args(with_config(&input, &crashed, &cfg))
        .args(["--abort-at", &format!("before-commit:{flush}")])
        .assert();
    assert!(!a.get_output().status.success(), "should crash");
    assert!(!crashed.join("_SUCCESS").exists());
    tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            crashed.to_str().unwrap(),
            "--resume",
            "-q",
        ])
        .assert()
        .success();
    assert_same_rows(&crashed, &reference, "report settings, resumed");
    assert_eq!(rules(&quality(&crashed)), rules(&want));

    // Turning the history off leaves no history file, as a fresh run would.
    assert!(out.join("quality_history.jsonl").exists());
    let off = tmp.path().join("off.toml");
    std::fs::write(&off, "[validation]\nhistory = false\n").unwrap();
    run_with_config(&input, &out, &off);
    assert!(!out.join("quality_history.jsonl").exists());
    // (The other three keys went back to their defaults: report settings as well.)
    assert_eq!(
        summary_of(&out)["report_only"][0],
        serde_json::json!("validation.history")
    );

    // With a new day at the same time: the day is appended and the report made with the
    // settings, equal to a fresh run over all days with them.
    let (held, back) = hold_back_last_day(&input, &tmp.path().join("aside"));
    let short = tmp.path().join("short");
    tickpipe().args(run_args(&input, &short)).assert().success();
    std::fs::rename(&held, &back).unwrap();
    let err = loud_with_config(&input, &short, &cfg);
    assert!(
        err.contains("incremental run: 1 new inputs")
            && err.contains("settings of the quality report changed (validation.history_window"),
        "{err}"
    );
    assert_same_rows(&short, &reference, "an append with changed report settings");
    assert_eq!(rules(&quality(&short)), rules(&want));
    let text = inspect(&short);
    assert!(
        text.contains("added 1 input") && text.contains("quality report settings changed"),
        "{text}"
    );
}

/// A changed setting of the streaming stages (here the outlier filter's threshold and a
/// validation rule's bound) makes the dataset again from the inputs, also together with a
/// new day: the result equals a fresh run with the new settings over all days, the summary
/// and `inspect` say why, and the record keeps the earlier history.
#[test]
fn a_changed_stage_setting_makes_the_dataset_again_from_the_inputs() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 5);
    let (held, back) = hold_back_last_day(&input, &tmp.path().join("aside"));
    let out = tmp.path().join("out");
    tickpipe().args(run_args(&input, &out)).assert().success();
    let first = summary_of(&out);
    std::fs::rename(&held, &back).unwrap();
    let cfg = tmp.path().join("stages.toml");
    std::fs::write(
        &cfg,
        "[preprocessing]\noutlier_threshold = 2.0\n[validation]\nspread_k = 7.0\n",
    )
    .unwrap();
    let err = loud_with_config(&input, &out, &cfg);
    assert!(
        err.contains("settings of the streaming stages changed")
            && err.contains("preprocessing.outlier_threshold")
            && err.contains("validation.spread_k"),
        "{err}"
    );
    let s = summary_of(&out);
    assert_eq!(
        s["rerun"],
        serde_json::json!(["preprocessing.outlier_threshold", "validation.spread_k"]),
        "{s}"
    );
    let reference = tmp.path().join("reference");
    run_with_config(&input, &reference, &cfg);
    assert_same_rows(&out, &reference, "stage settings changed");
    assert_eq!(rows(&out, true), rows(&reference, true), "quarantine");
    let r = summary_of(&reference);
    assert_balanced(&s);
    for k in [
        "rows_read",
        "rows_written",
        "rows_quarantined",
        "rows_removed",
    ] {
        assert_eq!(s[k], r[k], "{k}: {s} vs {r}");
    }
    assert_ne!(
        s["rows_removed"], first["rows_removed"],
        "the lower outlier threshold removes other rows"
    );
    let text = inspect(&out);
    assert!(
        text.contains("made from") && text.contains("made again from 5 inputs"),
        "{text}"
    );
    // The same command again finds the run done.
    let again = loud_with_config(&input, &out, &cfg);
    assert!(again.contains("already holds this run"), "{again}");
    // Any other changed key is still refused, naming it.
    let other = tmp.path().join("other.toml");
    std::fs::write(
        &other,
        "[preprocessing]\noutlier_threshold = 2.0\n[validation]\nspread_k = 7.0\n[output]\nrow_group_bytes = \"8MiB\"\n",
    )
    .unwrap();
    let a = tickpipe()
        .args(with_config(&input, &out, &other))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("output.row_group_bytes"), "{err}");
}
