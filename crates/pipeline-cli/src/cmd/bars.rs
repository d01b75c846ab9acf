//! `tickpipe bars`: time, tick, volume or dollar bars per symbol.

use tickpipe::{BarEdge, BarSession, CalendarKind, EmptyBars, Output, Pipeline, StageSet};

use crate::Outcome;
use crate::args::BarsArgs;
use crate::execute::execute;
use crate::settings::{apply_output_flags, load_config};

/// Runs the command.
pub fn run(args: BarsArgs, quiet: bool) -> anyhow::Result<Outcome> {
    crate::settings::require_inputs(&args.input, "bars")?;
    let mut cfg = load_config(&args.input)?;
    apply_output_flags(&mut cfg, args.format, None)?;
    let session = match &args.session {
        Some(hours) => Some(session(&args, hours, &cfg.preprocessing.session_timezone)?),
        None => None,
    };
    let mut b = Pipeline::builder()
        .inputs(args.input.inputs.clone())
        .config(cfg)
        .output(Output::dataset(&args.out))
        .stages(StageSet::cleaning())
        .bars(args.kind.clone())
        .overwrite(args.overwrite)
        .label("bars");
    if let Some(s) = session {
        b = b.bar_session(s);
    }
    let (_, outcome) = execute(b, quiet, args.summary_json.as_deref())?;
    if !quiet {
        eprintln!("  bars: {}", args.out.join(tickpipe::DATA_DIR).display());
    }
    Ok(outcome)
}

/// The session calendar from the flags.
fn session(args: &BarsArgs, hours: &str, default_zone: &str) -> anyhow::Result<BarSession> {
    let bad = |flag: &str, v: &str, want: &str| {
        pipeline_core::Error::Usage(format!("--{flag} {v}: expected {want}"))
    };
    let (open, close) = hours
        .split_once('-')
        .ok_or_else(|| bad("session", hours, "HH:MM-HH:MM, e.g. 09:30-16:00"))?;
    let edge = |flag: &str, v: &str| match v {
        "left" => Ok(BarEdge::Left),
        "right" => Ok(BarEdge::Right),
        _ => Err(bad(flag, v, "left or right")),
    };
    Ok(BarSession {
        zone: args
            .zone
            .clone()
            .unwrap_or_else(|| default_zone.to_string()),
        open: open.trim().to_string(),
        close: close.trim().to_string(),
        early_close: args.early_close.clone(),
        calendar: CalendarKind::parse_key("--calendar", &args.calendar)?,
        holidays: args.holidays.clone(),
        empty: match args.empty.as_str() {
            "skip" => EmptyBars::Skip,
            "carry" => EmptyBars::Carry,
            "null" => EmptyBars::Null,
            v => return Err(bad("empty", v, "skip, carry or null").into()),
        },
        label: edge("label", &args.label)?,
        closed: edge("closed", &args.closed)?,
    })
}
