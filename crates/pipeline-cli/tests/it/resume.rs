//! Resume after a crash produces the same output as an uninterrupted run.

use tempfile::tempdir;

use crate::util::*;

#[test]
fn resume_after_a_crash_matches_an_uninterrupted_run() {
    crash_and_resume(true);
}

/// A run resumed without `--workers` (say on a machine with another core count) takes the
/// interrupted run's worker count from the manifest instead of refusing.
#[test]
fn resume_without_workers_takes_the_interrupted_runs_count() {
    crash_and_resume(false);
}

/// Runs the same job uninterrupted and killed after segment 2 (both with 3 workers, which is
/// not this machine's default of one per core unless it has 3), resumes the killed one
/// with or without `--workers 3`, and compares the outputs byte for byte.
fn crash_and_resume(resume_names_workers: bool) {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 6);
    let clean = tmp.path().join("clean");
    let args = |out: &std::path::Path| {
        vec![
            "run".to_string(),
            input.to_string_lossy().to_string(),
            "--out".into(),
            out.to_string_lossy().to_string(),
            "--checkpoint-every".into(),
            "1".into(),
            "-q".into(),
        ]
    };
    let workers = ["--workers", "3"];
    tickpipe()
        .args(args(&clean))
        .args(workers)
        .assert()
        .success();

    let crashed = tmp.path().join("crashed");
    // The hidden test hook aborts the process (no cleanup, like kill -9) after segment 2.
    let a = tickpipe()
        .args(args(&crashed))
        .args(workers)
        .args(["--abort-after-segment", "2"])
        .assert();
    assert!(
        !a.get_output().status.success(),
        "the run should have been killed"
    );
    let sj = tmp.path().join("s.json");
    let mut resume = tickpipe();
    resume.args(args(&crashed));
    if resume_names_workers {
        resume.args(workers);
    }
    resume
        .arg("--resume")
        .arg("--summary-json")
        .arg(&sj)
        .assert()
        .success();
    let s = summary(&sj);
    assert_balanced(&s);

    let files = |root: &std::path::Path| {
        parquet_files(&root.join("data"))
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (files(&clean), files(&crashed));
    assert_eq!(
        a.iter().map(|x| &x.0).collect::<Vec<_>>(),
        b.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert!(a == b, "resumed output differs from the uninterrupted run");
}
