//! `tickpipe run`: load → clean → features → partitioned Parquet, with quarantine.

use pipeline_core::Error;

use crate::Outcome;
use crate::args::RunArgs;
use crate::job::{Job, Output, StageSet, pipeline_stages, run_job};
use crate::settings::{apply_output_flags, load_config, parse_shard};

/// Runs the command.
pub fn run(args: RunArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let mut cfg = load_config(&args.input)?;
    apply_output_flags(&mut cfg, args.format, args.partition_by.as_deref())?;
    if args.no_cache {
        tracing::debug!("--no-cache: the stage-output cache is not built yet, nothing to skip");
    }
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if args.follow {
        return crate::cmd::follow::follow(&args, cfg, quiet);
    }
    let stages = pipeline_stages(
        &cfg.preprocessing,
        StageSet {
            reorder: !args.no_clean,
            clean: !args.no_clean,
            features: !args.no_features,
        },
    )?;
    if args.resume && args.discard {
        return Err(Error::Usage(
            "--resume needs an output; it cannot be used with --discard".into(),
        )
        .into());
    }
    let checkpoint_every = args
        .checkpoint_every
        .as_deref()
        .map(|s| s.parse::<pipeline_core::ByteSize>().map(|b| b.0))
        .transpose()?;
    let output = if args.discard {
        Output::Discard
    } else {
        Output::Dataset(args.out.clone())
    };
    let (summary, report) = run_job(Job {
        command: "run",
        config: cfg,
        inputs: args.input.inputs.clone(),
        stages,
        output,
        resume: args.resume,
        shard,
        quiet,
        checkpoint_every,
        abort_after_segment: args.abort_after_segment,
    })?;
    if !quiet {
        summary.print_human();
        if !args.discard {
            eprintln!(
                "  output: {}",
                args.out.join(crate::job::DATA_DIR).display()
            );
        }
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
