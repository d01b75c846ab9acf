//! Output integrity (#11): crashes at every point of the commit protocol, Ctrl-C, moved
//! folders, another working directory, changed inputs and settings, concurrent runs and
//! reused folders. Every case is compared with an uninterrupted run: data byte for byte and
//! the quarantine row for row.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tempfile::tempdir;

use crate::util::*;

/// The arguments of a checkpointed run of `input` into `out` (3 workers, a segment per file).
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

/// Data files under `out/data` as (relative path, bytes).
fn data_files(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    parquet_files(&out.join("data"))
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(out).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// Every quarantine row of `out` (all `quarantine*.parquet` files) as sorted text.
pub fn quarantine_rows(out: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for e in std::fs::read_dir(out).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !(name.starts_with("quarantine") && name.ends_with(".parquet")) {
            continue;
        }
        for b in pipeline_io::read_dataset(&e.path()).unwrap() {
            let fmt: Vec<_> = (0..b.num_columns())
                .map(|i| {
                    arrow_cast::display::ArrayFormatter::try_new(
                        b.column(i).as_ref(),
                        &Default::default(),
                    )
                    .unwrap()
                })
                .collect();
            for r in 0..b.num_rows() {
                let cells: Vec<String> = fmt.iter().map(|f| f.value(r).to_string()).collect();
                // The file column holds the input path as given; compare by file name.
                let mut cells = cells;
                cells[0] = Path::new(&cells[0])
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                rows.push(cells.join("|"));
            }
        }
    }
    rows.sort();
    rows
}

/// A reference run of `input` and its outputs.
fn reference(tmp: &Path, input: &Path) -> (Vec<(PathBuf, Vec<u8>)>, Vec<String>) {
    let out = tmp.join("reference");
    tickpipe().args(run_args(input, &out)).assert().success();
    (data_files(&out), quarantine_rows(&out))
}

fn assert_same(out: &Path, want: &(Vec<(PathBuf, Vec<u8>)>, Vec<String>), what: &str) {
    let got = data_files(out);
    assert_eq!(
        got.iter().map(|x| &x.0).collect::<Vec<_>>(),
        want.0.iter().map(|x| &x.0).collect::<Vec<_>>(),
        "{what}: data file names"
    );
    assert!(
        got == want.0,
        "{what}: data differs from the uninterrupted run"
    );
    let q = quarantine_rows(out);
    assert!(!want.1.is_empty(), "the reference run quarantines rows");
    assert_eq!(q.len(), want.1.len(), "{what}: quarantine row count");
    assert_eq!(q, want.1, "{what}: quarantine rows");
}

#[test]
fn a_crash_at_any_commit_point_resumes_to_the_uninterrupted_output() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 6);
    let want = reference(tmp.path(), &input);
    for point in [
        "quarantine:2",
        "before-commit:1",
        "commit:2",
        "before-commit:5",
    ] {
        let out = tmp.path().join(point.replace(':', "-"));
        let a = tickpipe()
            .args(run_args(&input, &out))
            .args(["--abort-at", point])
            .assert();
        assert!(
            !a.get_output().status.success(),
            "{point}: should have crashed"
        );
        assert!(
            !out.join("_SUCCESS").exists(),
            "{point}: no completion marker"
        );
        // A plain resume: only the inputs are repeated.
        tickpipe()
            .args([
                "run",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(["--resume", "-q"])
            .assert()
            .success();
        assert!(out.join("_SUCCESS").exists());
        assert_same(&out, &want, point);
    }
}

#[test]
fn a_moved_folder_resumes_from_another_directory() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 6);
    let want = reference(tmp.path(), &input);
    let first = tmp.path().join("r1");
    tickpipe()
        .args(run_args(&input, &first))
        .args(["--abort-after-segment", "2"])
        .assert()
        .failure();
    let moved = tmp.path().join("moved").join("r2");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&first, &moved).unwrap();
    // From the parent folder, with relative paths.
    tickpipe()
        .current_dir(tmp.path().join("moved"))
        .args(["run", "../input", "--out", "r2", "--resume", "-q"])
        .assert()
        .success();
    assert_same(&moved, &want, "moved and resumed");
}

#[test]
fn a_resume_refuses_changed_inputs_and_settings_and_touches_nothing() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 6);
    let out = tmp.path().join("out");
    tickpipe()
        .args(run_args(&input, &out))
        .args(["--abort-after-segment", "2"])
        .assert()
        .failure();
    let before = data_files(&out);
    let q_before = quarantine_rows(&out);
    let resume = |extra: &[&str]| {
        tickpipe()
            .args([
                "run",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(["--resume", "-q"])
            .args(extra)
            .assert()
    };
    // A changed threshold.
    let cfg = tmp.path().join("t.toml");
    std::fs::write(&cfg, "[preprocessing]\noutlier_threshold = 3.0\n").unwrap();
    let a = resume(&["--config", cfg.to_str().unwrap()]).code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("preprocessing.outlier_threshold"), "{err}");
    // Rows appended to an input that was already committed.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let first = files[0].clone();
    let original = std::fs::read(&first).unwrap();
    let mut grown = original.clone();
    grown.extend_from_slice(&original);
    std::fs::write(&first, &grown).unwrap();
    let a = resume(&[]).code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    let name = first.file_name().unwrap().to_string_lossy().to_string();
    assert!(err.contains(&name) && err.contains("grew"), "{err}");
    // A deleted input is named too.
    std::fs::write(&first, &original).unwrap();
    std::fs::rename(&files[3], tmp.path().join("aside.csv.gz")).unwrap();
    let a = resume(&[]).code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    let gone = files[3].file_name().unwrap().to_string_lossy().to_string();
    assert!(err.contains(&gone) && err.contains("gone"), "{err}");
    // Nothing was touched by the refusals.
    assert!(data_files(&out) == before);
    assert_eq!(quarantine_rows(&out), q_before);
}

#[test]
fn ctrl_c_keeps_committed_segments_and_resume_completes_them() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 60_000, 20);
    let want = reference(tmp.path(), &input);
    for interrupts in [1, 2] {
        let out = tmp.path().join(format!("int{interrupts}"));
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tickpipe"))
            .args(run_args(&input, &out))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the first committed segment, then interrupt.
        let start = std::time::Instant::now();
        while !out.join("quarantine.parquet").exists()
            && start.elapsed() < std::time::Duration::from_secs(30)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for _ in 0..interrupts {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let status = child.wait().unwrap();
        // 130 when the interrupt landed, 0 when the run was already done.
        assert!(
            matches!(status.code(), Some(130) | Some(0)),
            "{interrupts}: {status:?}"
        );
        if interrupts == 1 && status.code() == Some(130) {
            // After the error, what was committed and how to go on.
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(
                err.contains("committed before it stopped") && err.contains("--resume"),
                "{err}"
            );
        }
        tickpipe()
            .args([
                "run",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(["--resume", "-q"])
            .assert()
            .success();
        assert_same(&out, &want, &format!("{interrupts} Ctrl-C"));
    }
}

#[test]
fn one_run_per_folder_and_a_folder_is_never_reused_silently() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 3_000, 2);
    let out = tmp.path().join("out");
    // A run that waits on a pipe holds the folder while a second run tries it.
    let fifo = tmp.path().join("live.csv");
    if !std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let mut first = std::process::Command::new(assert_cmd::cargo::cargo_bin("tickpipe"))
        .args([
            "run",
            fifo.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !out.join(".tickpipe.lock").exists()
        && start.elapsed() < std::time::Duration::from_secs(30)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let a = tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .assert()
        .code(4);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert_eq!(err.matches("in use").count(), 1, "said once: {err}");
    std::fs::write(
        &fifo,
        "ts,symbol,price,size\n2024-03-08T14:30:00Z,A,1.5,10\n",
    )
    .unwrap();
    assert!(first.wait().unwrap().success());
    // `inspect` tells a finished folder, and its quality verdict.
    let a = tickpipe()
        .args(["inspect", out.to_str().unwrap()])
        .assert()
        .success();
    let said = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    assert!(said.contains("complete"), "{said}");
    assert!(
        said.lines()
            .any(|l| l.trim_start().starts_with("quality") && l.contains("quality.json")),
        "{said}"
    );

    // Another run into the same folder needs --overwrite; the same run again is done.
    let a = tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("--overwrite"), "{err}");
    tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--overwrite", "-q"])
        .assert()
        .success();
    let before = data_files(&out);
    let a = tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("nothing to do"), "{err}");
    assert!(data_files(&out) == before);
    // A user's own file in the folder survives everything.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--overwrite", "-q"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn an_interrupted_folder_says_so_and_is_not_reused_without_resume() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 6_000, 3);
    let out = tmp.path().join("out");
    tickpipe()
        .args(run_args(&input, &out))
        .args(["--abort-after-segment", "0"])
        .assert()
        .failure();
    let a = tickpipe()
        .args(["inspect", "--json", out.to_str().unwrap()])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["outputs"][0]["output"]["state"], "interrupted", "{v}");
    let a = tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("--resume"));
}

#[test]
fn a_truncated_stream_fails_its_file_instead_of_succeeding() {
    let tmp = tempdir().unwrap();
    let cfg = pipeline_io::GenConfig {
        rows: 200_000,
        symbols: 3,
        days: Some(2),
        compression: pipeline_io::Codec::Gzip,
        ..pipeline_io::GenConfig::default()
    };
    let dir = tmp.path().join("g");
    pipeline_io::generate_to_dir(&cfg, &dir).unwrap();
    let gz = std::fs::read(dir.join("taq.csv.gz")).unwrap();
    let cut = gz[..gz.len() / 2].to_vec();
    let sj = tmp.path().join("s.json");
    tickpipe()
        .args([
            "run",
            "-",
            "--out",
            tmp.path().join("o").to_str().unwrap(),
            "-q",
        ])
        .arg("--summary-json")
        .arg(&sj)
        .write_stdin(cut)
        .assert()
        .code(1);
    let s = summary(&sj);
    assert_eq!(s["files_failed"].as_array().unwrap().len(), 1, "{s}");
}

#[test]
fn a_crash_during_normalisation_resumes_to_the_uninterrupted_output() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 6);
    let cfg = tmp.path().join("n.toml");
    std::fs::write(
        &cfg,
        "[preprocessing]\nnormalize_features = true\nnormalize_columns = [\"price\"]\n",
    )
    .unwrap();
    let args = |out: &Path| {
        let mut a = run_args(&input, out);
        a.extend(["--config".into(), cfg.to_string_lossy().into()]);
        a
    };
    let full = tmp.path().join("full");
    tickpipe().args(args(&full)).assert().success();
    let out = tmp.path().join("crashed");
    tickpipe()
        .args(args(&out))
        .args(["--abort-at", "normalize:2"])
        .assert()
        .failure();
    assert!(!out.join("_SUCCESS").exists());
    tickpipe()
        .args(args(&out))
        .arg("--resume")
        .assert()
        .success();
    assert!(
        data_files(&out) == data_files(&full),
        "rescaled output differs"
    );
    assert_eq!(
        std::fs::read(out.join("scaler.json")).unwrap(),
        std::fs::read(full.join("scaler.json")).unwrap()
    );
}

/// Mounts a tmpfs of `size` at `dir`; false (with a skip message) where the platform or the
/// permissions do not allow it.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs root); the disk-full case is untested"
        );
    }
    ok
}

/// Unmounts on drop, so a failing assertion does not leave the mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_an_environment_error_said_once_and_resumable() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 6);
    let want = reference(tmp.path(), &input);
    let disk = tmp.path().join("disk");
    // About half of what the run writes (1.6 MB): it fills after a few committed segments.
    if !mount_tmpfs(&disk, "800k") {
        return;
    }
    let _m = Mounted(disk.clone());
    let out = disk.join("out");
    let json = tmp.path().join("failed.json");
    let a = tickpipe()
        .args(run_args(&input, &out))
        .arg("--summary-json")
        .arg(&json)
        .assert()
        .code(4);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert_eq!(
        err.matches("No space left on device").count(),
        1,
        "said once: {err}"
    );
    assert!(!out.join("_SUCCESS").exists());
    // The summary still comes: what was committed, after the error, and for scripts.
    let s = summary(&json);
    assert_eq!(
        (&s["succeeded"], &s["exit_code"]),
        (&false.into(), &4.into())
    );
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("No space left on device")
    );
    let segments = s["committed"]["segments"].as_u64().unwrap();
    assert!(segments >= 1, "{s}");
    assert!(
        err.contains(&format!(
            "committed before it stopped: {segments} segment(s)"
        )) && err.contains("--resume"),
        "{err}"
    );
    // More room, then a plain resume completes the run as if nothing had happened.
    assert!(
        std::process::Command::new("mount")
            .args(["-o", "remount,size=64m"])
            .arg(&disk)
            .status()
            .unwrap()
            .success()
    );
    tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--resume", "-q"])
        .assert()
        .success();
    assert_same(&out, &want, "disk full, then resumed");
}

/// Rows of a live test file: three symbols, a bad price every 41st row.
fn live_rows(range: std::ops::Range<u64>) -> String {
    range
        .map(|i| {
            let price = if i % 41 == 3 {
                "x".to_string()
            } else {
                format!("{}.25", 200 + (i * 7919) % 17)
            };
            format!(
                "2024-03-08T{:02}:{:02}:{:02}.000Z,{},{price},{}\n",
                14 + i / 3600,
                (i / 60) % 60,
                i % 60,
                ["AAA", "BBB", "CCC"][(i % 3) as usize],
                1 + i % 5
            )
        })
        .collect()
}

/// Starts `tickpipe run FILE --out OUT --follow` (plus `extra`), with the monitor refreshing
/// `metrics.prom` every 50 ms (an earlier run's copy is removed first, so [`wait_read`]
/// sees this run's figures).
fn spawn_live(file: &Path, out: &Path, config: &Path, extra: &[&str]) -> std::process::Child {
    let _ = std::fs::remove_file(out.join("metrics.prom"));
    std::process::Command::new(assert_cmd::cargo::cargo_bin("tickpipe"))
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(["--follow", "--flush-ms", "20", "--workers", "2", "-q"])
        .arg("--config")
        .arg(config)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the live run writing `out` has read `rows` rows (quarantined ones included),
/// by its refreshed `metrics.prom`.
fn wait_read(out: &Path, rows: u64) {
    let start = std::time::Instant::now();
    loop {
        let read: f64 = std::fs::read_to_string(out.join("metrics.prom"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("tickpipe_reader_rows_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if read as u64 >= rows {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the live run read {read} of {rows} rows"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status();
}

#[test]
fn a_live_run_stopped_by_ctrl_c_or_killed_continues_to_the_uninterrupted_output() {
    let tmp = tempdir().unwrap();
    let config = tmp.path().join("live.toml");
    std::fs::write(&config, "[monitor]\ninterval_ms = 50\n").unwrap();
    let header = "ts,symbol,price,size\n";
    let all = format!("{header}{}", live_rows(0..900));
    let good = |r: std::ops::Range<u64>| r.filter(|i| i % 41 != 3).count() as u64;
    // The reference: one live run that sees the whole file, stopped with Ctrl-C.
    let whole = tmp.path().join("whole.csv");
    std::fs::write(&whole, &all).unwrap();
    let reference = tmp.path().join("reference");
    let mut child = spawn_live(&whole, &reference, &config, &[]);
    wait_read(&reference, good(0..900));
    signal(&child, "-INT");
    assert!(child.wait().unwrap().success());

    // 1. Ctrl-C after 300 rows and part of a line: committed, marked finished.
    let live = tmp.path().join("live.csv");
    let first = format!("{header}{}", live_rows(0..300));
    let cut = first.len() + 9;
    std::fs::write(&live, &all[..cut]).unwrap();
    let out = tmp.path().join("out");
    let mut child = spawn_live(&live, &out, &config, &[]);
    wait_read(&out, good(0..300));
    signal(&child, "-INT");
    assert!(child.wait().unwrap().success());
    assert!(out.join("_SUCCESS").exists());
    let done = summary(&out.join("_SUCCESS"));
    assert_eq!(
        done["live"]["stopped"],
        serde_json::json!([302, first.len()])
    );

    // 2. More rows; the same command continues, and is killed before it commits.
    let mid = format!("{header}{}", live_rows(0..600)).len();
    let append = |to: usize| {
        use std::io::Write;
        let now = std::fs::metadata(&live).unwrap().len() as usize;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&live)
            .unwrap();
        f.write_all(&all.as_bytes()[now..to]).unwrap();
    };
    append(mid);
    let mut child = spawn_live(&live, &out, &config, &[]);
    wait_read(&out, good(300..600));
    signal(&child, "-KILL");
    let _ = child.wait();
    assert!(!out.join("_SUCCESS").exists());
    // The same command without --resume says what to do.
    let mut child = spawn_live(&live, &out, &config, &[]);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("--resume"), "{err}");

    // 3. --resume reads again from the last stop; the rest arrives while it runs.
    let mut child = spawn_live(&live, &out, &config, &["--resume"]);
    wait_read(&out, good(300..600));
    append(all.len());
    wait_read(&out, good(300..900));
    signal(&child, "-INT");
    assert!(child.wait().unwrap().success());

    // Rows, not bytes: the live runs' files are cut at other points.
    let data = |o: &Path| crate::incremental::rows(o, false);
    assert_eq!(data(&out), data(&reference), "data");
    let q: Vec<String> = quarantine_rows(&out)
        .iter()
        .map(|r| r.replacen("live.csv", "whole.csv", 1))
        .collect();
    assert_eq!(q.len() as u64, 900 - good(0..900));
    assert_eq!(q, quarantine_rows(&reference), "quarantine");
    let s = summary(&out.join("_SUCCESS"));
    assert_balanced(&s);
    assert_eq!(s["rows_read"], 900);
}
