//! `tickpipe inspect`: what each input is.

use pipeline_io::{InspectReport, ReadOptions};

use crate::Outcome;
use crate::args::InspectArgs;
use crate::settings::load_config;

/// Runs the command.
pub fn run(args: InspectArgs) -> anyhow::Result<Outcome> {
    let cfg = load_config(&args.input)?;
    let opts = ReadOptions::from_config(&cfg)?;
    let inputs = pipeline_io::expand_inputs(&args.input.inputs, &cfg.input.file_pattern)?;
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
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            print_table(r);
        }
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
