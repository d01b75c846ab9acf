//! `tickpipe convert`: load and write only.

use tickpipe::{Output, Pipeline, StageSet};

use crate::Outcome;
use crate::args::ConvertArgs;
use crate::execute::execute;
use crate::settings::{apply_output_flags, load_config};

/// Runs `convert`.
pub fn run(args: ConvertArgs, quiet: bool) -> anyhow::Result<Outcome> {
    crate::settings::require_inputs(&args.input, "convert")?;
    let mut cfg = load_config(&args.input)?;
    apply_output_flags(&mut cfg, args.format, args.partition_by.as_deref())?;
    let b = Pipeline::builder()
        .inputs(args.input.inputs.clone())
        .config(cfg)
        .output(Output::file_or_dataset(&args.out))
        .stages(StageSet::none())
        .normalize(false)
        .overwrite(args.overwrite)
        .label("convert");
    Ok(execute(b, quiet, args.summary_json.as_deref())?.1)
}
