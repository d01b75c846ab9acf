//! `tickpipe inspect`: what each input is.

use pipeline_io::{InspectReport, ReadOptions};

use crate::Outcome;
use crate::args::InspectArgs;
use crate::settings::load_config;

/// Runs the command. An argument that is a tickpipe output folder gets its state (complete,
/// running, interrupted) instead of a listing of its files; a cluster job folder (it holds
/// `_plan.json`) gets its phase, the tasks done, the inputs that failed, and once complete
/// its ledger and quality verdict.
pub fn run(args: InspectArgs) -> anyhow::Result<Outcome> {
    crate::settings::require_inputs(&args.input, "inspect")?;
    let cfg = load_config(&args.input)?;
    let opts = ReadOptions::from_config(&cfg)?;
    let mut rest = Vec::new();
    let mut outputs = Vec::new();
    let mut jobs = Vec::new();
    for a in &args.input.inputs {
        let p = std::path::Path::new(a);
        if !p.is_dir() {
            rest.push(a.clone());
        } else if let Some(job) = tickpipe::cluster::status(p)? {
            jobs.push((a.clone(), job));
        } else if let Some(status) = tickpipe::output_status(p)? {
            outputs.push((a.clone(), status));
        } else {
            rest.push(a.clone());
        }
    }
    let outputs_json: Vec<serde_json::Value> = outputs
        .iter()
        .map(|(path, st)| serde_json::json!({ "path": path, "output": st }))
        .chain(
            jobs.iter()
                .map(|(path, job)| serde_json::json!({ "path": path, "job": job })),
        )
        .collect();
    if !args.json {
        for (path, st) in &outputs {
            print_status(path, st);
        }
        for (path, job) in &jobs {
            print_job(path, job);
        }
    }
    if rest.is_empty() {
        if args.json {
            let v = serde_json::json!({ "files": [], "totals": null, "outputs": outputs_json });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        return Ok(Outcome::Ok);
    }
    let inputs = pipeline_io::expand_inputs(&rest, &cfg.input.file_pattern)?;
    let mut reports = Vec::new();
    let mut failed = false;
    for input in &inputs {
        match pipeline_io::inspect(input, &opts) {
            Ok(r) => reports.push(r),
            Err(e) => {
                failed = true;
                eprintln!("tickpipe: {}: {e}", input.display_name());
            }
        }
    }
    let failures = inputs.len() - reports.len();
    let totals = pipeline_io::DatasetTotals::from_reports(&reports, failures);
    if args.json {
        let v = serde_json::json!({
            "files": reports,
            "totals": totals,
            "outputs": outputs_json,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for r in &reports {
            print_table(r);
        }
        // A folder of many files ends with what they make together.
        println!("{}", totals.render());
    }
    if failed && reports.is_empty() {
        return Err(pipeline_core::Error::Usage("no input could be inspected".into()).into());
    }
    Ok(if failed {
        Outcome::SomeFilesFailed
    } else {
        Outcome::Ok
    })
}

fn print_status(path: &str, st: &tickpipe::OutputStatus) {
    println!("{path}");
    let what = match st.state.as_str() {
        "complete" => "complete: a finished run (_SUCCESS present)".to_string(),
        "running" => format!(
            "running: being written by pid {}",
            st.running_pid.map_or("?".into(), |p| p.to_string())
        ),
        "interrupted" => match &st.refeature {
            Some(keys) => format!(
                "interrupted: a re-run of its feature columns ({}) was stopped; the same `tickpipe run` command, with that configuration, completes it (--overwrite starts over)",
                keys.join(", ")
            ),
            None => "interrupted: not finished (crashed or stopped); `tickpipe run ... --resume` continues it"
                .to_string(),
        },
        _ => "unknown: tickpipe output without a run record (an older tickpipe?)".to_string(),
    };
    println!("  {:<12} {what}", "state");
    if let Some(r) = &st.record {
        println!("  {:<12} {}", "command", r.command);
        println!("  {:<12} {} files", "inputs", r.inputs.len());
        for i in r.inputs.iter().take(5) {
            println!("  {:<12} {}", "", i.path);
        }
        if r.inputs.len() > 5 {
            println!("  {:<12} … and {} more", "", r.inputs.len() - 5);
        }
        println!("  {:<12} {}", "workers", r.workers);
        let stages: Vec<&str> = r.stages.iter().map(|(n, _)| n.as_str()).collect();
        println!(
            "  {:<12} {}",
            "stages",
            if stages.is_empty() {
                "none".to_string()
            } else {
                stages.join(" → ")
            }
        );
        let config = r.config_summary();
        if config.is_empty() {
            println!("  {:<12} the defaults", "config");
        }
        for (i, line) in config.iter().enumerate() {
            println!("  {:<12} {line}", if i == 0 { "config" } else { "" });
        }
        for (i, line) in r.history_lines().iter().enumerate() {
            println!("  {:<12} {line}", if i == 0 { "history" } else { "" });
        }
    }
    if let Some(c) = &st.committed {
        println!(
            "  {:<12} {} segments, {} inputs done, {} failed; {}",
            "committed",
            c.segments,
            c.inputs_completed,
            c.inputs_failed,
            c.ledger.equation()
        );
    }
    if let Some(rep) = &st.report {
        println!("  {:<12} {}", "ledger", rep.ledger);
        println!("  {:<12} {} data files", "outputs", rep.outputs.len());
        if let Some(verdict) = rep
            .validation
            .as_ref()
            .and_then(|v| v["summary"]["verdict"].as_str())
        {
            println!("  {:<12} {verdict} ({path}/quality.json)", "quality");
        }
    }
}

/// A cluster job folder: which tasks are done, what failed, the ledger and verdict.
fn print_job(path: &str, job: &tickpipe::cluster::JobStatus) {
    println!("{path}");
    let what = match job.state.as_str() {
        "complete" => "complete: a finished cluster job (_SUCCESS present)".to_string(),
        "reducing" => format!(
            "reducing: every map task done, {} of {} reduce tasks done",
            job.reduces_done.len(),
            job.reduce_tasks
        ),
        "mapping" => format!(
            "mapping: {} of {} map tasks done",
            job.maps_done.len(),
            job.map_tasks
        ),
        _ => "planned: no map task done yet".to_string(),
    };
    println!("  {:<12} {what}", "state");
    println!("  {:<12} {} files", "inputs", job.inputs);
    println!(
        "  {:<12} {} of {} done ({} of {} inputs shuffled)",
        "map tasks",
        job.maps_done.len(),
        job.map_tasks,
        job.inputs_mapped,
        job.inputs
    );
    println!(
        "  {:<12} {} of {} done",
        "reduce tasks",
        job.reduces_done.len(),
        job.reduce_tasks
    );
    for (i, (file, error)) in job.inputs_failed.iter().enumerate() {
        let label = if i == 0 { "failed" } else { "" };
        println!("  {label:<12} {file}: {error}");
    }
    if let Some(l) = &job.ledger {
        println!("  {:<12} {}", "ledger", l.equation());
    }
    if let Some(q) = &job.quality {
        println!("  {:<12} {q} ({path}/quality.json)", "quality");
    }
}

fn print_table(r: &InspectReport) {
    let v = serde_json::to_value(r).unwrap_or_default();
    let s = |k: &str| match &v[k] {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!("{}", r.path);
    for (label, key) in [
        ("format", "format"),
        ("compression", "compression"),
        ("encoding", "encoding"),
        ("delimiter", "delimiter"),
        ("header", "has_header"),
        ("layout", "layout"),
        ("kind", "dataset_kind"),
        ("rows", "rows"),
        ("quarantined", "quarantined"),
        ("bytes", "bytes"),
        ("first ts", "ts_min"),
        ("last ts", "ts_max"),
    ] {
        println!("  {label:<12} {}", s(key));
    }
    let more = if r.symbols_truncated { ", …" } else { "" };
    println!("  {:<12} {}{more}", "symbols", r.symbols.join(", "));
    println!("  schema");
    for c in &r.schema {
        println!("    {:<24} {}", c.name, c.data_type);
    }
}
