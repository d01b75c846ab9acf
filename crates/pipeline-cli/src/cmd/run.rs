//! `tickpipe run`: load → clean → features → partitioned Parquet, with quarantine.

use std::time::Duration;

use tickpipe::{Output, Pipeline, StageSet};

use crate::Outcome;
use crate::args::RunArgs;
use crate::execute::execute;
use crate::settings::{apply_output_flags, load_config};

/// The `--abort-at KIND:N` test hook: aborts the process (no cleanup, like `kill -9`) at
/// that point of the commit protocol.
fn abort_at(spec: &str) -> anyhow::Result<tickpipe::EventFn> {
    use tickpipe::{EngineEvent, Event};
    let bad = || {
        pipeline_core::Error::Usage(format!(
            "--abort-at {spec}: expected quarantine:N, before-commit:N, commit:N, normalize:N or refeature:N"
        ))
    };
    let (kind, n) = spec.split_once(':').ok_or_else(bad)?;
    let n: u32 = n.parse().map_err(|_| bad())?;
    let kind = kind.to_string();
    if ![
        "quarantine",
        "before-commit",
        "commit",
        "normalize",
        "refeature",
    ]
    .contains(&kind.as_str())
    {
        return Err(bad().into());
    }
    Ok(std::sync::Arc::new(move |e: &Event| {
        let hit = match (kind.as_str(), e) {
            ("quarantine", Event::Engine(EngineEvent::QuarantineWrite { seg })) => *seg == n,
            ("before-commit", Event::Engine(EngineEvent::BeforeCommit { seg })) => *seg == n,
            ("commit", Event::Engine(EngineEvent::Committed { seg })) => *seg == n,
            ("normalize", Event::Normalized { files }) => *files as u32 >= n,
            ("refeature", Event::Refeatured { files }) => *files as u32 >= n,
            _ => false,
        };
        if hit {
            std::process::abort();
        }
    }))
}

/// Runs the command.
pub fn run(args: RunArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let mut cfg = load_config(&args.input)?;
    apply_output_flags(&mut cfg, args.format, args.partition_by.as_deref())?;
    if args.no_cache {
        cfg.cache.enabled = false;
    }
    if args.no_monitor {
        cfg.monitor.enable = false;
    }
    if args.no_validate {
        cfg.validation.enabled = false;
    }
    if let Some(a) = &args.metrics_addr {
        cfg.monitor.http_addr = a.clone();
        cfg.monitor.validate()?;
    }
    let output = if args.discard {
        Output::discard()
    } else {
        Output::dataset(&args.out)
    };
    if !args.trades.is_empty() && !args.input.inputs.is_empty() {
        return Err(pipeline_core::Error::Usage(
            "--trades replaces the positional inputs: give the trades files after --trades only"
                .into(),
        )
        .into());
    }
    if args.trades.is_empty() && args.input.inputs.is_empty() && cfg.input.trades.is_empty() {
        return Err(pipeline_core::Error::Usage(
            "tickpipe run: no input given (files, folders, globs or -; or --trades with --quotes)"
                .into(),
        )
        .into());
    }
    let inputs = if args.trades.is_empty() {
        args.input.inputs.clone()
    } else {
        args.trades.clone()
    };
    let mut b = Pipeline::builder()
        .inputs(inputs)
        .quotes(args.quotes.clone())
        .config(cfg)
        .output(output)
        .stages(StageSet {
            reorder: !args.no_clean,
            clean: !args.no_clean,
            features: !args.no_features,
        })
        .resume(args.resume)
        .overwrite(args.overwrite)
        .label(if args.follow { "run --follow" } else { "run" });
    if let Some(spec) = &args.shard {
        return Err(pipeline_core::Error::Usage(format!(
            "--shard {spec} was removed: it dealt whole files to shards, so a symbol's days \
             landed on different shards and its state (lags, windows, EMA) restarted. Run on a \
             cluster with `tickpipe plan INPUT... --out DIR`, then `tickpipe map --plan DIR \
             --task I` and `tickpipe reduce --plan DIR --task J` (README: Running on a cluster)"
        ))
        .into());
    }
    if let Some(c) = &args.checkpoint_every {
        b = b.checkpoint_every(c.parse::<pipeline_core::ByteSize>()?.0);
    }
    if args.follow {
        b = b.follow(Duration::from_millis(args.flush_ms));
    }
    if let Some(spec) = &args.abort_at {
        b = b.on_event(abort_at(spec)?);
    }
    if let Some(n) = args.abort_after_segment {
        // Simulates a crash (kill -9) at a known point, so resume can be tested exactly.
        b = b.on_commit(std::sync::Arc::new(move |segment| {
            if segment >= n {
                std::process::abort();
            }
        }));
    }
    let (report, outcome) = execute(b, quiet, args.summary_json.as_deref())?;
    if report.up_to_date && !quiet {
        eprintln!(
            "  nothing to do: {} already holds this run, complete (--overwrite runs it again)",
            args.out.display()
        );
    }
    if let (Some((added, recorded)), false) = (report.appended, quiet) {
        eprintln!(
            "  incremental run: {added} new inputs after the {recorded} recorded ones, each symbol continuing from its state at their end; the ledger covers all {} inputs",
            added + recorded
        );
    }
    if let (Some(r), false) = (&report.reprocessed, quiet) {
        eprintln!(
            "  changed history: the inputs differ from the recorded ones from {} on; the first {} were kept (up to the last segment end before it) and {} processed again, each symbol continuing from its state there; the ledger covers all {} inputs",
            r.first_changed,
            r.kept,
            r.processed,
            r.kept + r.processed
        );
    }
    if let (Some(r), false) = (&report.refeatured, quiet) {
        eprintln!(
            "  only feature parameters changed ({}): the feature columns of {} rows in {} files were computed again from the dataset in {:.2} s, without reading or cleaning the inputs; the other figures are the dataset's run's",
            r.changed.join(", "),
            r.rows,
            r.files,
            r.seconds
        );
    }
    if let (Some(keys), false) = (&report.rerun, quiet) {
        eprintln!(
            "  settings of the streaming stages changed ({}): the dataset was made again from the inputs",
            keys.join(", ")
        );
    }
    if let (Some(keys), false) = (&report.report_only, quiet) {
        if report.appended.is_some() || report.reprocessed.is_some() {
            eprintln!(
                "  settings of the quality report changed ({}): the quality report was made with the new values",
                keys.join(", ")
            );
        } else {
            eprintln!(
                "  only settings of the quality report changed ({}): the rows were kept, the end-of-input flush ran again from the recorded state and the quality report was made with the new values",
                keys.join(", ")
            );
        }
    }
    if let (Some(live), false) = (report.live, quiet) {
        match live.stopped {
            Some((line, byte)) => eprintln!(
                "  live run: read from line {} to line {}; the same command continues from line {line} (byte {byte})",
                live.started.0,
                line.saturating_sub(1)
            ),
            None => eprintln!(
                "  live run: nothing new after line {}; the same command continues from there",
                live.started.0.saturating_sub(1)
            ),
        }
    }
    if !quiet && !args.discard {
        eprintln!("  output: {}", args.out.join(tickpipe::DATA_DIR).display());
    }
    Ok(outcome)
}
