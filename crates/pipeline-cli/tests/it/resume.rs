//! Resume after a crash produces the same output as an uninterrupted run.

use tempfile::tempdir;

use crate::util::*;

#[test]
fn resume_after_a_crash_matches_an_uninterrupted_run() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 12_000, 6);
    let clean = tmp.path().join("clean");
    let args = |out: &std::path::Path| {
        vec![
            "run".to_string(),
            input.to_string_lossy().to_string(),
            "--out".into(),
            out.to_string_lossy().to_string(),
            "--workers".into(),
            "2".into(),
            "--checkpoint-every".into(),
            "1".into(),
            "-q".into(),
        ]
    };
    tickpipe().args(args(&clean)).assert().success();

    let crashed = tmp.path().join("crashed");
    // The hidden test hook aborts the process (no cleanup, like kill -9) after segment 2.
    let a = tickpipe()
        .args(args(&crashed))
        .args(["--abort-after-segment", "2"])
        .assert();
    assert!(
        !a.get_output().status.success(),
        "the run should have been killed"
    );
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
