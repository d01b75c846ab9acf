//! Trades and quotes through the library: what a trades-and-quotes run refuses before any
//! row is read, each with its reason.

use std::path::Path;
use std::time::Duration;

use pipeline_io::{Codec, GenConfig, Layout};
use tickpipe::{Config, Output, Pipeline, cluster};

fn taq_split(dir: &Path) -> (String, String) {
    let cfg = GenConfig {
        rows: 2_000,
        symbols: 2,
        days: Some(2),
        layout: Layout::TaqSplit,
        compression: Codec::None,
        ..GenConfig::default()
    };
    pipeline_io::generate_to_dir(&cfg, dir).expect("gen-data");
    (
        dir.join("trades_*.csv").display().to_string(),
        dir.join("quotes_*.csv").display().to_string(),
    )
}

fn refusal(b: tickpipe::PipelineBuilder) -> String {
    b.build().expect_err("refused").to_string()
}

#[test]
fn refusals_name_the_option_and_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (trades, quotes) = taq_split(tmp.path());
    let base = || {
        Pipeline::builder()
            .inputs([trades.clone()])
            .quotes([quotes.clone()])
            .output(Output::dataset(tmp.path().join("out")))
    };
    // One trades file, so the follow checks of their own pass.
    let one = tmp
        .path()
        .join("trades_2019-01-02.csv")
        .display()
        .to_string();
    let e = refusal(
        Pipeline::builder()
            .inputs([one])
            .quotes([quotes.clone()])
            .output(Output::dataset(tmp.path().join("out")))
            .follow(Duration::from_millis(100)),
    );
    assert!(e.contains("--follow") && e.contains("to their end"), "{e}");
    let mut sorted = Config::default();
    sorted.input.sort = true;
    let e = refusal(base().config(sorted));
    assert!(e.contains("[input] sort"), "{e}");
    let e = refusal(base().bars("time:1m"));
    assert!(e.contains("--bars"), "{e}");
    // The same inputs without the refused option build.
    base().build().unwrap();
    // A cluster job cannot take quotes: the join needs both streams on one reader.
    let mut cfg = Config::default();
    cfg.input.trades = vec![trades.clone()];
    cfg.input.quotes = vec![quotes.clone()];
    let e = cluster::plan(
        std::slice::from_ref(&trades),
        &cfg,
        &tmp.path().join("job"),
        (1, 1),
        Default::default(),
    )
    .expect_err("refused")
    .to_string();
    assert!(e.contains("one machine"), "{e}");
    // Trades set without quotes is a config error naming the key.
    let mut half = Config::default();
    half.input.trades = vec![trades];
    let e = refusal(Pipeline::builder().config(half));
    assert!(e.contains("input.trades"), "{e}");
}
