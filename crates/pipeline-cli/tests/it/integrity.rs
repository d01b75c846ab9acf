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
    // `inspect` tells a finished folder.
    let a = tickpipe()
        .args(["inspect", out.to_str().unwrap()])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&a.get_output().stdout).contains("complete"));

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
    if !mount_tmpfs(&disk, "160k") {
        return;
    }
    let _m = Mounted(disk.clone());
    let out = disk.join("out");
    let a = tickpipe().args(run_args(&input, &out)).assert().code(4);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert_eq!(
        err.matches("No space left on device").count(),
        1,
        "said once: {err}"
    );
    assert!(!out.join("_SUCCESS").exists());
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
