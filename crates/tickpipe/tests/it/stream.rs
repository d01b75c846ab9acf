//! The streaming form returns the rows the written dataset holds.

use tempfile::tempdir;
use tickpipe::{Output, Pipeline};

use crate::support::*;

#[test]
fn stream_returns_the_same_rows_as_the_written_dataset() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 5_000, 3);
    let out = tmp.path().join("out");
    let written = Pipeline::builder()
        .inputs([input.display().to_string()])
        .config(config(2))
        .output(Output::dataset(&out))
        .build()
        .unwrap()
        .run()
        .unwrap();
    let mut stream = Pipeline::builder()
        .inputs([input.display().to_string()])
        .config(config(2))
        .output(Output::discard())
        .build()
        .unwrap()
        .stream()
        .unwrap();
    let schema = stream.schema().unwrap().expect("rows");
    assert!(
        schema.field_with_name("_line").is_err(),
        "provenance column dropped"
    );
    let batches: Vec<_> = stream.by_ref().map(|b| b.unwrap()).collect();
    let report = stream.finish().unwrap();
    assert_eq!(report.rows_written, written.rows_written);
    assert_eq!(report.row_ledger, written.row_ledger);
    assert!(report.outputs.is_empty());
    assert_eq!(
        rows_of(&batches),
        dataset_rows(&out.join(tickpipe::DATA_DIR))
    );
}

#[test]
fn dropping_a_stream_early_stops_the_run() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 20_000, 4);
    let mut cfg = config(2);
    cfg.pipeline.chunk_size = 256;
    let mut stream = Pipeline::builder()
        .inputs([input.display().to_string()])
        .config(cfg)
        .build()
        .unwrap()
        .stream()
        .unwrap();
    let first = stream.next().unwrap().unwrap();
    assert!(first.num_rows() > 0);
    stream.stop();
    let e = stream.finish().unwrap_err();
    assert!(matches!(e, tickpipe::Error::Cancelled), "{e}");
}
