//! `tickpipe demo`: the README's first command. Generates a sample multi-year TAQ dataset,
//! runs the full pipeline on it, and prints where everything is and the summary.

use pipeline_core::{Config, Error};
use pipeline_io::{Codec, GenConfig, Layout};

use tickpipe::{Output, Pipeline};

use crate::Outcome;
use crate::args::DemoArgs;
use crate::execute::execute;

/// Runs the command.
pub fn run(args: DemoArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let input = args.out.join("input");
    let output = args.out.join("output");
    if input.exists() {
        std::fs::remove_dir_all(&input).map_err(|e| Error::io(&input, e))?;
    }
    let gen_cfg = GenConfig {
        rows: args.rows,
        years: args.years,
        symbols: args.symbols,
        layout: Layout::PerDay,
        compression: Codec::Gzip,
        ..GenConfig::default()
    };
    eprintln!(
        "demo: generating {} rows of TAQ data ({} symbols, {} years, one gzip file per day) into {}",
        args.rows,
        args.symbols,
        args.years,
        input.display()
    );
    let generated = pipeline_io::generate_to_dir(&gen_cfg, &input)?;
    eprintln!(
        "demo: {} files, {} MB, {} labelled anomalies (ground truth: {})",
        generated.files,
        generated.bytes / 1_000_000,
        generated.anomalies_by_kind.values().sum::<u64>(),
        input.join(pipeline_io::MANIFEST_FILE).display()
    );
    let mut cfg = Config::default();
    // The input folder also holds the ground-truth manifest; read only the CSV files.
    cfg.input.file_pattern = "*.csv*".into();
    eprintln!(
        "demo: running load → clean → features → Parquet into {}",
        output.display()
    );
    let summary_path = output.join("summary.json");
    let b = Pipeline::builder()
        .inputs([input.to_string_lossy().to_string()])
        .config(cfg)
        .output(Output::dataset(&output))
        .overwrite(true)
        .label("demo");
    let (summary, outcome) = execute(b, quiet, Some(&summary_path))?;
    if quiet {
        crate::print::print_human(&summary);
    }
    eprintln!();
    eprintln!("demo outputs:");
    eprintln!(
        "  dataset:    {} (Hive-partitioned Parquet; read it with polars.scan_parquet, duckdb or pyarrow.dataset)",
        output.join(tickpipe::DATA_DIR).display()
    );
    let named = |needle: &str| {
        summary
            .reports
            .iter()
            .filter(|p| p.to_string_lossy().contains(needle))
            .cloned()
            .collect::<Vec<_>>()
    };
    for r in named("quarantine") {
        eprintln!(
            "  quarantine: {} (every removed or quarantined row with file, line, rule)",
            r.display()
        );
    }
    for r in named("quality.html") {
        let verdict = summary
            .validation
            .as_ref()
            .and_then(|v| v["summary"]["verdict"].as_str())
            .unwrap_or("?")
            .to_string();
        eprintln!("  quality:    {} (verdict: {verdict})", r.display());
    }
    for r in named("report.html") {
        eprintln!(
            "  run report: {} (the ledger, throughput, memory, where the time went, quality)",
            r.display()
        );
    }
    eprintln!("  summary:    {}", summary_path.display());
    eprintln!(
        "  next: tickpipe inspect {}   |   tickpipe bars {} --kind time:1m --out {}",
        input.display(),
        input.display(),
        args.out.join("bars").display()
    );
    Ok(outcome)
}
