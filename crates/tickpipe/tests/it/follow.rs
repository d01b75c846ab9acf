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
            base().output(Output::dataset(tmp.path())).resume(true),
            "--resume",
        ),
        (base().inputs(["-"]), "exactly one input"),
    ] {
        let e = b.build().map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(flag), "{flag}: {e}");
    }
}
