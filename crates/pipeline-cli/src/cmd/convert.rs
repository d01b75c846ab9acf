//! `tickpipe convert`: load and write only.

use std::path::Path;

use crate::Outcome;
use crate::args::ConvertArgs;
use crate::job::{Job, Output, run_job};
use crate::settings::{apply_output_flags, load_config};

/// Runs `convert`.
pub fn run(args: ConvertArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let mut cfg = load_config(&args.input)?;
    apply_output_flags(&mut cfg, args.format, args.partition_by.as_deref())?;
    let output = if is_file_target(&args.out) {
        Output::File(args.out.clone())
    } else {
        Output::Dataset(args.out.clone())
    };
    let (summary, report) = run_job(Job {
        command: "convert",
        config: cfg,
        inputs: args.input.inputs.clone(),
        stages: Vec::new(),
        output,
        resume: false,
        shard: None,
        quiet,
        checkpoint_every: None,
        abort_after_segment: None,
    })?;
    if !quiet {
        summary.print_human();
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

/// `--out x.parquet` (or .arrow/.ipc/.csv) names a file; anything else is a directory.
fn is_file_target(out: &Path) -> bool {
    pipeline_io::format_from_extension(out).is_some()
}
