//! Cluster jobs (plan → map → reduce) write what one machine writes: the same data, the
//! same quarantine and the same ledger, for several task layouts, with a map task run twice.

use std::path::{Path, PathBuf};

use pipeline_core::Ledger;
use pipeline_io::{Codec, GenConfig, Layout};
use tickpipe::{Output, Pipeline, cluster};

use crate::support::{config, dataset_rows, rows_of};

/// Per-day gzip files of 6 symbols over 7 days (so (7, 5) gets a file per map task).
fn inputs(dir: &Path) -> PathBuf {
    let input = dir.join("input");
    let cfg = GenConfig {
        rows: 30_000,
        symbols: 6,
        days: Some(7),
        layout: Layout::PerDay,
        compression: Codec::Gzip,
        ..GenConfig::default()
    };
    pipeline_io::generate_to_dir(&cfg, &input).expect("gen-data");
    std::fs::remove_file(input.join(pipeline_io::MANIFEST_FILE)).expect("drop manifest");
    input
}

/// The quarantine rows of a folder (every `quarantine*.parquet`), sorted.
pub fn quarantine_rows(dir: &Path) -> Vec<String> {
    let mut batches = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("quarantine") && name.ends_with(".parquet") {
            batches.extend(pipeline_io::read_dataset(&p).expect("read quarantine"));
        }
    }
    rows_of(&batches)
}

/// Runs a whole job in-process: plan (the shuffle compressed with `shuffle`), every map
/// task (task 0 twice), every reduce task.
fn run_job(
    input: &Path,
    dir: &Path,
    (f, m): (usize, usize),
    shuffle: cluster::ShuffleCompression,
) -> Ledger {
    let inputs = vec![input.display().to_string()];
    let plan = cluster::plan(&inputs, &config(2), dir, (f, m), shuffle).expect("plan");
    assert_eq!(plan.map_tasks(), f);
    assert_eq!(plan.shuffle_compression, shuffle);
    for t in 0..f {
        cluster::map_task(dir, t).expect("map");
    }
    // A retried map task finds its outputs published and changes nothing.
    assert_eq!(cluster::map_task(dir, 0).expect("map again"), 0);
    for t in 0..m {
        assert!(
            !dir.join(tickpipe::SUCCESS).exists(),
            "done before the last reduce"
        );
        cluster::reduce_task(dir, t).expect("reduce");
    }
    let text = std::fs::read_to_string(dir.join(cluster::JOB_LEDGER)).expect("job ledger");
    serde_json::from_str(&text).expect("ledger")
}

#[test]
fn cluster_jobs_write_what_one_machine_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = inputs(tmp.path());
    let one = tmp.path().join("one");
    let r = Pipeline::builder()
        .inputs([input.display().to_string()])
        .config(config(2))
        .output(Output::dataset(&one))
        .build()
        .unwrap()
        .run()
        .unwrap();
    let want_rows = dataset_rows(&one.join(tickpipe::DATA_DIR));
    let want_q = quarantine_rows(&one);
    let want_quality = quality(&one);
    assert!(
        want_quality["total_findings"].as_u64() > Some(0),
        "the sample has validation findings"
    );
    assert!(!want_q.is_empty(), "the sample has quarantined rows");
    assert!(
        r.rows_removed.values().sum::<u64>() > 0,
        "the sample has removed rows"
    );
    // Each job shuffles with another compression: the output is the same whichever.
    for ((f, m), shuffle) in [
        ((1, 1), cluster::ShuffleCompression::None),
        ((3, 2), cluster::ShuffleCompression::Lz4),
        ((7, 5), cluster::ShuffleCompression::Zstd),
    ] {
        let dir = tmp.path().join(format!("job-{f}-{m}"));
        let ledger = run_job(&input, &dir, (f, m), shuffle);
        assert_eq!(ledger.read, r.rows_read, "({f},{m}) read");
        assert_eq!(ledger.written, r.rows_written, "({f},{m}) written");
        assert_eq!(ledger.quarantined, r.quarantined_by_reason, "({f},{m})");
        assert_eq!(ledger.removed, r.rows_removed, "({f},{m})");
        assert_eq!(ledger.repaired, r.values_repaired, "({f},{m})");
        let got = dataset_rows(&dir.join(tickpipe::DATA_DIR));
        assert_eq!(got.len(), want_rows.len(), "({f},{m}) rows");
        let diff = got.iter().zip(&want_rows).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "({f},{m}): {diff} rows differ");
        assert_eq!(quarantine_rows(&dir), want_q, "({f},{m}) quarantine");
        assert_eq!(quality(&dir), want_quality, "({f},{m}) quality.json");
        assert!(dir.join(tickpipe::QUALITY_HTML).exists(), "({f},{m})");
        if m > 1 {
            // A reduce task run again after the job finished (a retry that raced the
            // first attempt) finishes the job again with the same report; only the
            // history's count of earlier records now includes the job's own.
            cluster::reduce_task(&dir, 1).expect("reduce again");
            let mut again = quality(&dir);
            let mut want = want_quality.clone();
            for v in [&mut again, &mut want] {
                v.as_object_mut().unwrap().remove("history");
            }
            assert_eq!(again, want, "({f},{m}) quality.json after a retry");
        }
    }
}

/// A folder's `quality.json`, without the history file's path (the folders differ).
fn quality(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(tickpipe::QUALITY_JSON)).expect("quality.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let h = v["history"].as_object_mut().expect("a history");
    assert!(h.remove("path").is_some());
    v
}

#[test]
fn reduce_waits_for_every_map_and_tasks_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    pipeline_io::generate_to_dir(
        &GenConfig {
            rows: 2_000,
            days: Some(2),
            layout: Layout::PerDay,
            ..GenConfig::default()
        },
        &input,
    )
    .unwrap();
    let dir = tmp.path().join("job");
    let inputs = vec![input.join("*.csv").display().to_string()];
    cluster::plan(&inputs, &config(1), &dir, (2, 2), Default::default()).unwrap();
    cluster::map_task(&dir, 0).unwrap();
    let e = cluster::reduce_task(&dir, 0).unwrap_err().to_string();
    assert!(e.contains("no map output yet"), "{e}");
    assert!(cluster::map_task(&dir, 2).is_err());
    cluster::map_task(&dir, 1).unwrap();
    assert!(cluster::reduce_task(&dir, 2).is_err());
    // Planning another job into the same folder is refused.
    assert!(cluster::plan(&inputs, &config(1), &dir, (3, 2), Default::default()).is_err());
}
