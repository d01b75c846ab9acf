//! Live mode runs on the same engine: rows appended to a followed file are processed and
//! committed when the stop flag is set; options that cannot apply are refused.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tempfile::tempdir;
use tickpipe::{Output, Pipeline, StageSet};

use crate::support::*;

fn line(i: u64) -> String {
    format!(
        "2024-03-08T14:30:{:02}.{:06}Z,BTCUSDT,{}.5,{},\n",
        (i / 1000) % 60,
        i % 1000 * 1000,
        60_000 + i % 7,
        1 + i % 5
    )
}

#[test]
fn follow_processes_appended_rows_until_stopped() {
    let tmp = tempdir().unwrap();
    let live = tmp.path().join("live.csv");
    let mut f = std::fs::File::create(&live).unwrap();
    f.write_all(b"ts,symbol,price,size,side\n").unwrap();
    for i in 0..10 {
        f.write_all(line(i).as_bytes()).unwrap();
    }
    f.flush().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let out = tmp.path().join("out");
    let pipeline = Pipeline::builder()
        .inputs([live.display().to_string()])
        .config(config(2))
        .output(Output::dataset(&out))
        .stages(StageSet {
            features: false,
            ..StageSet::default()
        })
        .follow(Duration::from_millis(20))
        .cancel(stop.clone())
        .build()
        .unwrap();
    let writer = std::thread::spawn(move || {
        for i in 10..400 {
            f.write_all(line(i).as_bytes()).unwrap();
            if i % 50 == 0 {
                f.flush().unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
    });
    let r = pipeline.run().unwrap();
    writer.join().unwrap();
    assert_balanced(&r);
    assert_eq!(r.rows_read, 400);
    // --no-features applies in live mode too.
    assert!(!r.stages.iter().any(|s| s.name == "features"));
    assert_eq!(
        dataset_rows(&out.join(tickpipe::DATA_DIR)).len() as u64,
        r.rows_written
    );
}

#[test]
fn follow_refuses_what_cannot_apply() {
    let tmp = tempdir().unwrap();
    let live = tmp.path().join("live.csv");
    std::fs::write(&live, "ts,symbol,price,size\n").unwrap();
    let base = || {
        Pipeline::builder()
            .inputs([live.display().to_string()])
            .follow(Duration::from_millis(50))
    };
    let mut cfg = config(1);
    cfg.input.sort = true;
    for (b, flag) in [
        (base().config(cfg), "--sort"),
        (base().shard(0, 2), "sharding by files is removed"),
        (
            // --resume continues a live run; here there is none.
            base().output(Output::dataset(tmp.path())).resume(true),
            "holds no interrupted run",
        ),
        (base().inputs(["-"]), "exactly one input"),
    ] {
        let e = b.build().map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(flag), "{flag}: {e}");
    }
}

/// Rows of a live test file: two symbols, a bad price every 37th row.
fn live_rows(range: std::ops::Range<u64>) -> String {
    range
        .map(|i| {
            let price = if i % 37 == 5 {
                "x".to_string()
            } else {
                format!("{}.5", 100 + (i * 7919) % 13)
            };
            format!(
                "2024-03-08T14:{:02}:{:02}.000Z,{},{price},{}\n",
                30 + i / 60,
                i % 60,
                ["AAA", "BBB"][(i % 2) as usize],
                1 + i % 5
            )
        })
        .collect()
}

/// Every quarantine row of a dataset folder, as sorted text.
fn quarantine_rows(out: &std::path::Path) -> Vec<String> {
    let mut batches = Vec::new();
    for e in std::fs::read_dir(out).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("quarantine") && name.ends_with(".parquet") {
            batches.extend(pipeline_io::read_dataset(&e.path()).unwrap());
        }
    }
    rows_of(&batches)
}

/// A live run into `out` that reads what `path` holds and is stopped once it has.
fn live_run(path: &std::path::Path, out: &std::path::Path, resume: bool) -> tickpipe::RunReport {
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = Pipeline::builder()
        .inputs([path.display().to_string()])
        .config(config(2))
        .output(Output::dataset(out))
        .follow(Duration::from_millis(10))
        .cancel(stop.clone())
        .resume(resume)
        .build()
        .unwrap();
    let s = stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        s.store(true, Ordering::SeqCst);
    });
    let r = pipeline.run().unwrap();
    stopper.join().unwrap();
    r
}

#[test]
fn a_stopped_live_run_continues_where_it_stopped() {
    let tmp = tempdir().unwrap();
    let header = "ts,symbol,price,size\n";
    let all = format!("{header}{}", live_rows(0..300));
    // The reference: one live run that sees the whole file.
    let whole = tmp.path().join("whole.csv");
    std::fs::write(&whole, &all).unwrap();
    let reference = tmp.path().join("reference");
    let r = live_run(&whole, &reference, false);
    assert_eq!(r.rows_read, 300);
    assert_eq!(r.live.unwrap().stopped, Some((302, all.len() as u64)));

    // The same rows in three live runs: stopped after 120 rows and half of the next line,
    // continued after more rows arrived, then continued once more with nothing new.
    let live = tmp.path().join("live.csv");
    let first = format!("{header}{}", live_rows(0..120));
    let cut = first.len() + 15;
    std::fs::write(&live, &all[..cut]).unwrap();
    let out = tmp.path().join("out");
    let a = live_run(&live, &out, false);
    assert_eq!(a.rows_read, 120);
    let span = a.live.unwrap();
    assert_eq!(span.started, (1, 0));
    assert_eq!(span.stopped, Some((122, first.len() as u64)));
    assert!(out.join(tickpipe::SUCCESS).exists());

    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap();
    f.write_all(&all.as_bytes()[cut..]).unwrap();
    drop(f);
    let b = live_run(&live, &out, false);
    assert_balanced(&b);
    // The ledger covers the whole file.
    assert_eq!((b.rows_read, b.rows_written), (r.rows_read, r.rows_written));
    assert_eq!(
        b.live.unwrap(),
        tickpipe::LiveSpan {
            started: (122, first.len() as u64),
            stopped: Some((302, all.len() as u64)),
        }
    );
    let c = live_run(&live, &out, true);
    assert_eq!(c.rows_read, r.rows_read);
    assert_eq!(c.live.unwrap().stopped, None, "nothing new was read");

    let data = |o: &std::path::Path| dataset_rows(&o.join(tickpipe::DATA_DIR));
    assert_eq!(
        data(&out),
        data(&reference),
        "data as one uninterrupted run"
    );
    // The same rows and lines (the file column names the other file).
    let q: Vec<String> = quarantine_rows(&out)
        .iter()
        .map(|r| r.replace("live.csv", "whole.csv"))
        .collect();
    assert_eq!(q.len(), (0..300).filter(|i| i % 37 == 5).count());
    assert_eq!(q, quarantine_rows(&reference), "quarantine as one run");

    // A file whose read part changed is refused, naming it, and nothing is touched.
    let before = data(&out);
    std::fs::write(&live, all.replace("14:30:00.000Z", "14:30:00.001Z")).unwrap();
    let e = Pipeline::builder()
        .inputs([live.display().to_string()])
        .config(config(2))
        .output(Output::dataset(&out))
        .follow(Duration::from_millis(10))
        .build()
        .unwrap()
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("live.csv changed") && e.contains("--overwrite"),
        "{e}"
    );
    assert_eq!(data(&out), before);
    assert!(out.join(tickpipe::SUCCESS).exists());
}
