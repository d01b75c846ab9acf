//! `tickpipe plan`, `tickpipe map` and `tickpipe reduce`: the tasks of a cluster job (see
//! `tickpipe::cluster`); a scheduler runs them, these only parse arguments and print.

use crate::Outcome;
use crate::args::{PlanArgs, TaskArgs};
use crate::settings::load_config;

/// `tickpipe plan`.
pub fn plan(args: PlanArgs, quiet: bool) -> anyhow::Result<Outcome> {
    crate::settings::require_inputs(&args.input, "plan")?;
    let cfg = load_config(&args.input)?;
    let plan = tickpipe::cluster::plan(
        &args.input.inputs,
        &cfg,
        &args.out,
        (args.map_tasks, args.reduce_tasks),
        args.shuffle_compression.parse()?,
    )?;
    if !quiet {
        eprintln!(
            "planned {} inputs into {} map and {} reduce tasks in {}",
            plan.inputs.len(),
            plan.map_tasks(),
            plan.reduce_tasks,
            args.out.display()
        );
    }
    Ok(Outcome::Ok)
}

/// `tickpipe map`.
pub fn map(args: TaskArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let n = tickpipe::cluster::map_task(&args.plan, args.task)?;
    if !quiet {
        eprintln!("map task {}: {n} inputs shuffled", args.task);
    }
    Ok(Outcome::Ok)
}

/// `tickpipe reduce`.
pub fn reduce(args: TaskArgs, quiet: bool) -> anyhow::Result<Outcome> {
    let r = tickpipe::cluster::reduce_task(&args.plan, args.task)?;
    if !quiet {
        eprintln!(
            "reduce task {}: {} rows read, {} written, {} quarantined",
            args.task, r.rows_read, r.rows_written, r.rows_quarantined
        );
    }
    // An input that failed in its map task is reported by the reduce task that owns its
    // rejects, with exit 1, as `tickpipe run` reports a failed file (its rows before the
    // failure are in the output, its `failed_file` record in the quarantine).
    for f in &r.files_failed {
        eprintln!("  failed: {}: {}", f.file, f.error);
    }
    if !quiet && args.plan.join(tickpipe::SUCCESS).exists() {
        eprintln!(
            "job complete: {}",
            args.plan.join(tickpipe::cluster::JOB_LEDGER).display()
        );
        if let Some(verdict) = tickpipe::quality_verdict(&args.plan) {
            let report = args.plan.join(tickpipe::QUALITY_JSON);
            eprintln!("quality: {verdict} ({})", report.display());
        }
    }
    Ok(if r.files_failed.is_empty() {
        Outcome::Ok
    } else {
        Outcome::SomeFilesFailed
    })
}
