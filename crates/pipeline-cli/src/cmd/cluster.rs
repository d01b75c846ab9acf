//! `tickpipe plan`, `tickpipe map` and `tickpipe reduce`: the tasks of a cluster job (see
//! `tickpipe::cluster`); a scheduler runs them, these only parse arguments and print.

use crate::Outcome;
use crate::args::{PlanArgs, TaskArgs};
use crate::settings::load_config;

/// `tickpipe plan`.
pub fn plan(args: PlanArgs) -> anyhow::Result<Outcome> {
    crate::settings::require_inputs(&args.input, "plan")?;
    let cfg = load_config(&args.input)?;
    let plan = tickpipe::cluster::plan(
        &args.input.inputs,
        &cfg,
        &args.out,
        args.map_tasks,
        args.reduce_tasks,
    )?;
    eprintln!(
        "planned {} inputs into {} map and {} reduce tasks in {}",
        plan.inputs.len(),
        plan.map_tasks(),
        plan.reduce_tasks,
        args.out.display()
    );
    Ok(Outcome::Ok)
}

/// `tickpipe map`.
pub fn map(args: TaskArgs) -> anyhow::Result<Outcome> {
    let n = tickpipe::cluster::map_task(&args.plan, args.task)?;
    eprintln!("map task {}: {n} inputs shuffled", args.task);
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
    Ok(Outcome::Ok)
}
