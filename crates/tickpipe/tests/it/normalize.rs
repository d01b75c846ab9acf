//! The normalisation post-pass through the facade: fit on the output, then re-apply.

use tempfile::tempdir;
use tickpipe::{Output, Pipeline};

use crate::support::*;

#[test]
fn fit_writes_parameters_and_reapplying_them_gives_the_same_values() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 4_000, 2);
    let mut cfg = config(2);
    cfg.preprocessing.normalize_features = true;
    cfg.preprocessing.normalize_columns = vec!["price".into(), "sma_20".into()];
    let out = tmp.path().join("fit");
    let r = Pipeline::builder()
        .inputs([input.display().to_string()])
        .config(cfg.clone())
        .output(Output::dataset(&out))
        .build()
        .unwrap()
        .run()
        .unwrap();
    let scaler = out.join(tickpipe::SCALER_FILE);
    assert!(r.outputs.contains(&scaler));
    let fitted = dataset_rows(&out.join(tickpipe::DATA_DIR));

    cfg.preprocessing.normalize_params = scaler.display().to_string();
    let again = tmp.path().join("again");
    Pipeline::builder()
        .inputs([input.display().to_string()])
        .config(cfg.clone())
        .output(Output::dataset(&again))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(dataset_rows(&again.join(tickpipe::DATA_DIR)), fitted);

    // Settings are checked at build: CSV output cannot carry the parameters.
    cfg.output.format = pipeline_core::OutputFormat::Csv;
    let e = Pipeline::builder()
        .inputs([input.display().to_string()])
        .config(cfg)
        .output(Output::dataset(tmp.path().join("csv")))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("CSV"), "{e}");
}
