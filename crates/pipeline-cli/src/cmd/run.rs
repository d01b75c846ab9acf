//! `tickpipe run`: load → clean → features → partitioned Parquet, with quarantine.

use std::time::Duration;

use tickpipe::{Output, Pipeline, StageSet};

use crate::Outcome;
use crate::args::RunArgs;
use crate::execute::execute;
use crate::settings::{apply_output_flags, load_config, parse_shard};

/// Runs the command.
pub fn run(args: RunArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let mut cfg = load_config(&args.input)?;
    apply_output_flags(&mut cfg, args.format, args.partition_by.as_deref())?;
    if args.no_cache {
        tracing::debug!("--no-cache: the stage-output cache is not built yet, nothing to skip");
    }
    let output = if args.discard {
        Output::discard()
    } else {
        Output::dataset(&args.out)
    };
    let mut b = Pipeline::builder()
        .inputs(args.input.inputs.clone())
        .config(cfg)
        .output(output)
        .stages(StageSet {
            reorder: !args.no_clean,
            clean: !args.no_clean,
            features: !args.no_features,
        })
        .resume(args.resume)
        .label(if args.follow { "run --follow" } else { "run" });
    if let Some(spec) = &args.shard {
        let (k, n) = parse_shard(spec)?;
        b = b.shard(k, n);
    }
    if let Some(c) = &args.checkpoint_every {
        b = b.checkpoint_every(c.parse::<pipeline_core::ByteSize>()?.0);
    }
    if args.follow {
        b = b.follow(Duration::from_millis(args.flush_ms));
    }
    if let Some(n) = args.abort_after_segment {
        // Simulates a crash (kill -9) at a known point, so resume can be tested exactly.
        b = b.on_commit(std::sync::Arc::new(move |segment| {
            if segment >= n {
                std::process::abort();
            }
        }));
    }
    let (_, outcome) = execute(b, quiet, args.summary_json.as_deref())?;
    if !quiet && !args.discard {
        eprintln!("  output: {}", args.out.join(tickpipe::DATA_DIR).display());
    }
    Ok(outcome)
}
