//! `run`, `convert`, `bars` and shards through the facade.

use tempfile::tempdir;
use tickpipe::{Output, Pipeline, StageSet};

use crate::support::*;

#[test]
fn run_writes_a_balanced_dataset_that_does_not_depend_on_workers() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 6_000, 3);
    let mut rows = Vec::new();
    for workers in [1, 3] {
        let out = tmp.path().join(format!("out{workers}"));
        let r = Pipeline::builder()
            .inputs([input.display().to_string()])
            .config(config(workers))
            .output(Output::dataset(&out))
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert_balanced(&r);
        assert_eq!(r.rows_read, 6_000);
        assert_eq!(r.files_ok, 3);
        assert!(r.all_files_ok());
        assert!(out.join("quarantine.parquet").exists());
        // The run report first, then the quarantine, metrics and the quality reports.
        assert_eq!(r.reports.first(), Some(&out.join("report.html")));
        for name in ["quarantine.parquet", "quality.json", "quality.html"] {
            assert!(
                r.reports.contains(&out.join(name)),
                "{name} in {:?}",
                r.reports
            );
            assert!(out.join(name).exists(), "{name}");
        }
        assert!(r.stages.iter().any(|s| s.name == "features"));
        rows.push(dataset_rows(&out.join(tickpipe::DATA_DIR)));
        assert_eq!(rows.last().unwrap().len() as u64, r.rows_written);
    }
    assert_eq!(rows[0], rows[1]);
}

#[test]
fn convert_writes_one_file_and_bars_aggregate_every_tick() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 3_000, 2);
    let file = tmp.path().join("all.parquet");
    let r = Pipeline::builder()
        .inputs([input.display().to_string()])
        .output(Output::file_or_dataset(&file))
        .stages(StageSet::none())
        .label("convert")
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(r.command, "convert");
    assert_eq!(r.outputs, vec![file.clone()]);
    assert_eq!(dataset_rows(&file).len() as u64, r.rows_written);
    // No cleaning: only malformed rows are quarantined, nothing is removed by a rule.
    assert!(r.rows_removed.is_empty());

    let bars = tmp.path().join("bars");
    let r = Pipeline::builder()
        .inputs([input.display().to_string()])
        .output(Output::dataset(&bars))
        .stages(StageSet::cleaning())
        .bars("time:1m")
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_balanced(&r);
    assert_eq!(r.bars_written, Some(r.rows_written));
    assert!(r.rows_written > 0 && r.rows_written < 3_000);
    assert!(r.rows_removed.contains_key("bar_aggregated") || r.rows_removed.len() > 1);
}

#[test]
fn shards_by_file_are_refused_pointing_to_cluster_jobs() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 1_000, 2);
    // A symbol's days on different shards would restart its state: refused, with the way
    // that is identical to one machine (cluster::plan / map_task / reduce_task).
    let e = Pipeline::builder()
        .inputs([input.display().to_string()])
        .output(Output::discard())
        .shard(0, 2)
        .build()
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tickpipe::cluster"), "{e}");
    // 0/1 is the whole input, as without a shard.
    let r = Pipeline::builder()
        .inputs([input.display().to_string()])
        .output(Output::discard())
        .shard(0, 1)
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(r.rows_read, 1_000);
}

#[test]
fn bad_settings_fail_at_build_before_any_input_is_read() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 1_000, 1);
    let inputs = [input.display().to_string()];
    let build = |b: tickpipe::PipelineBuilder| b.build().map(|_| ()).unwrap_err().to_string();
    assert!(build(Pipeline::builder()).contains("no input"));
    let mut cfg = config(1);
    cfg.output.compression = "lz5".into();
    let e = build(Pipeline::builder().inputs(inputs.clone()).config(cfg));
    assert!(e.contains("lz5"), "{e}");
    let e = build(
        Pipeline::builder()
            .inputs(inputs.clone())
            .bars("fortnight:2"),
    );
    assert!(e.contains("fortnight"), "{e}");
    let e = build(Pipeline::builder().inputs(inputs.clone()).shard(2, 2));
    assert!(e.contains("2/2"), "{e}");
    let e = build(
        Pipeline::builder()
            .inputs(inputs.clone())
            .output(Output::discard())
            .resume(true),
    );
    assert!(e.contains("--resume"), "{e}");
    let e = build(
        Pipeline::builder()
            .inputs([tmp.path().join("nope.csv").display().to_string()])
            .output(Output::discard()),
    );
    assert!(e.contains("nope.csv"), "{e}");
}
