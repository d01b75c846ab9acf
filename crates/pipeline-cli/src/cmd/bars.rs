//! `tickpipe bars`: time, tick, volume or dollar bars per symbol.

use std::sync::Arc;

use pipeline_core::{Stage, StageFactory};
use pipeline_prep::{BarStage, parse_bar_spec};

use crate::Outcome;
use crate::args::BarsArgs;
use crate::job::{Job, Output, StageSet, pipeline_stages, run_job};
use crate::settings::{apply_output_flags, load_config};

/// Runs the command.
pub fn run(args: BarsArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let mut cfg = load_config(&args.input)?;
    apply_output_flags(&mut cfg, args.format, None)?;
    let spec = parse_bar_spec(&args.kind)?;
    let mut stages = pipeline_stages(
        &cfg.preprocessing,
        StageSet {
            reorder: true,
            clean: true,
            features: false,
        },
    )?;
    let bars: StageFactory =
        Arc::new(move || Ok(Box::new(BarStage::new(spec.clone())) as Box<dyn Stage>));
    stages.push(bars);
    let (mut summary, report) = run_job(Job {
        command: "bars",
        config: cfg,
        inputs: args.input.inputs.clone(),
        stages,
        output: Output::Dataset(args.out.clone()),
        resume: false,
        shard: None,
        quiet,
        checkpoint_every: None,
        abort_after_segment: None,
    })?;
    summary.bars_written = Some(report.ledger.written);
    if !quiet {
        summary.print_human();
        eprintln!("  bars: {}", args.out.join(crate::job::DATA_DIR).display());
    }
    if let Some(path) = &args.summary_json {
        summary.write_json(path)?;
    }
    Ok(if report.files_failed.is_empty() {
        Outcome::Ok
    } else {
        Outcome::SomeFilesFailed
    })
}
