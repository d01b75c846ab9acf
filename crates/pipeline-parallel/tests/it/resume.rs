//! Kill-and-resume: a child process running the engine is killed with SIGKILL after its first
//! segment commit; `resume` must then produce output identical to an uninterrupted run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use pipeline_core::Result;
use pipeline_parallel::{RunReport, Runner};

use crate::support::*;

const CHILD_ENV: &str = "TICKPIPE_RESUME_CHILD";

fn run_into(dir: &Path, resume: bool, sleep: Duration, announce: bool) -> Result<RunReport> {
    run_cancellable(dir, resume, sleep, announce, None)
}

/// As [`run_into`]; with `cancel_after`, sets the cancel flag when that segment commits.
fn run_cancellable(
    dir: &Path,
    resume: bool,
    sleep: Duration,
    announce: bool,
    cancel_after: Option<u32>,
) -> Result<RunReport> {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f2 = flag.clone();
    let files = gen_files(99, 6, 200);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    Runner::new()
        .sources(specs(&files, 20))
        .stages(vec![positive(), cumsum(None, 0, sleep)])
        .sink_factory(text_sink(out.clone()))
        .workers(2)
        .segment_bytes(4000)
        .manifest(dir.join("run.redb"))
        .output_dir(out)
        .resume(resume)
        .cancel(flag)
        .on_commit(Arc::new(move |seg| {
            if announce {
                println!("COMMITTED {seg}");
            }
            if cancel_after == Some(seg) {
                f2.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }))
        .build()?
        .run()
}

/// Runs the engine slowly for [`kill_and_resume_matches_an_uninterrupted_run`]; it does
/// nothing unless started by that test.
#[test]
#[ignore = "helper: run in a child process by kill_and_resume_matches_an_uninterrupted_run"]
fn resume_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        eprintln!(
            "resume_child only runs as a child of kill_and_resume_matches_an_uninterrupted_run"
        );
        return;
    };
    run_into(Path::new(&dir), false, Duration::from_millis(60), true).unwrap();
    println!("DONE");
}

fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                PathBuf::from(p.file_name().unwrap()),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn kill_and_resume_matches_an_uninterrupted_run() {
    let clean = tempfile::tempdir().unwrap();
    let want = run_into(clean.path(), false, Duration::ZERO, false).unwrap();

    let killed = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "resume::resume_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, killed.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut committed = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        assert!(
            !line.contains("DONE"),
            "the child finished before it could be killed"
        );
        if line.contains("COMMITTED 0") {
            committed = true;
            break;
        }
    }
    assert!(committed, "the child never committed a segment");
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    let got = run_into(killed.path(), true, Duration::ZERO, false).unwrap();
    let (a, b) = (
        files_in(&killed.path().join("out")),
        files_in(&clean.path().join("out")),
    );
    let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    for (x, y) in a.iter().zip(&b) {
        assert!(x.1 == y.1, "{} differs after resume", x.0.display());
    }
    assert_eq!(got.ledger, want.ledger);
    assert_eq!(got.files_ok, want.files_ok);
    let outs = |r: &RunReport| {
        r.outputs
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(outs(&got), outs(&want));

    // A different worker count is refused clearly.
    let files = gen_files(99, 6, 200);
    let err = Runner::new()
        .sources(specs(&files, 20))
        .stages(vec![positive(), cumsum(None, 0, Duration::ZERO)])
        .sink_factory(text_sink(killed.path().join("out")))
        .workers(3)
        .manifest(killed.path().join("run.redb"))
        .resume(true)
        .build()
        .unwrap()
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("workers"), "{err}");
}

#[test]
fn cancel_keeps_committed_segments_and_resume_completes_identically() {
    let clean = tempfile::tempdir().unwrap();
    let want = run_into(clean.path(), false, Duration::ZERO, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err =
        run_cancellable(dir.path(), false, Duration::from_millis(5), false, Some(1)).unwrap_err();
    assert!(matches!(err, pipeline_core::Error::Cancelled), "{err}");
    // Segments 0 and 1 are in place; nothing partial is.
    let names: Vec<PathBuf> = files_in(&dir.path().join("out"))
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.to_string_lossy().ends_with("-s1.txt")),
        "{names:?}"
    );
    assert!(
        names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")),
        "{names:?}"
    );
    let got = run_into(dir.path(), true, Duration::ZERO, false).unwrap();
    assert_eq!(got.ledger, want.ledger);
    let (a, b) = (
        files_in(&dir.path().join("out")),
        files_in(&clean.path().join("out")),
    );
    assert!(a == b, "outputs differ after cancel and resume");
}

/// Rows of one symbol in output order, from every text file of a run's output folder.
fn rows_by_symbol(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, bytes) in files_in(dir) {
        for line in String::from_utf8(bytes).unwrap().lines() {
            let sym = line.split(',').next().unwrap().to_string();
            m.entry(sym).or_default().push(line.to_string());
        }
    }
    m
}

/// The key → worker assignment is load-based, so a resumed run must reuse the interrupted
/// run's: here a fresh assignment would send `B` (on worker 1 behind the heavy `A`) to worker
/// 0, whose restored state has no running count for it.
#[test]
fn resume_routes_keys_to_the_worker_holding_their_state() {
    let row = |s: &str| Row {
        symbol: Some(s.to_string()),
        price: 1.0,
    };
    let mut f0: Vec<Row> = (0..30).map(|_| row("A")).collect();
    f0.extend((0..10).map(|_| row("B")));
    let files = vec![
        f0,
        (0..20)
            .map(|i| row(if i % 2 == 0 { "B" } else { "C" }))
            .collect(),
        (0..20)
            .map(|i| row(if i % 2 == 0 { "C" } else { "B" }))
            .collect(),
    ];
    let run = |dir: &Path, resume: bool, cancel_after: Option<u32>| {
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f2 = flag.clone();
        Runner::new()
            .sources(specs(&files, 40))
            .stages(vec![cumsum(None, 0, Duration::ZERO)])
            .sink_factory(text_sink(out.clone()))
            .workers(2)
            .max_open_files(1)
            .segment_bytes(1)
            .manifest(dir.join("run.redb"))
            .output_dir(out)
            .resume(resume)
            .cancel(flag)
            .on_commit(Arc::new(move |seg| {
                if cancel_after == Some(seg) {
                    f2.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }))
            .build()?
            .run()
    };
    let clean = tempfile::tempdir().unwrap();
    run(clean.path(), false, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = run(dir.path(), false, Some(0)).unwrap_err();
    assert!(matches!(err, pipeline_core::Error::Cancelled), "{err}");
    run(dir.path(), true, None).unwrap();
    let (want, got) = (
        rows_by_symbol(&clean.path().join("out")),
        rows_by_symbol(&dir.path().join("out")),
    );
    assert_eq!(want["B"].len(), 30);
    assert_eq!(got, want);
}
