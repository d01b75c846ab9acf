//! `tickpipe bars`: time, tick, volume or dollar bars per symbol.

use tickpipe::{Output, Pipeline, StageSet};

use crate::Outcome;
use crate::args::BarsArgs;
use crate::execute::execute;
use crate::settings::{apply_output_flags, load_config};

/// Runs the command.
pub fn run(args: BarsArgs, quiet: bool) -> anyhow::Result<Outcome> {
    crate::settings::require_inputs(&args.input, "bars")?;
    let mut cfg = load_config(&args.input)?;
    apply_output_flags(&mut cfg, args.format, None)?;
    let b = Pipeline::builder()
        .inputs(args.input.inputs.clone())
        .config(cfg)
        .output(Output::dataset(&args.out))
        .stages(StageSet::cleaning())
        .bars(args.kind.clone())
        .overwrite(args.overwrite)
        .label("bars");
    let (_, outcome) = execute(b, quiet, args.summary_json.as_deref())?;
    if !quiet {
        eprintln!("  bars: {}", args.out.join(tickpipe::DATA_DIR).display());
    }
    Ok(outcome)
}
