//! `tickpipe validate`: the data-quality rules alone on the rows as read; the verdict is
//! the exit code (0 pass, 1 fail; 2 for usage, configuration or input errors).

use tickpipe::{Output, Pipeline, Validation};

use crate::Outcome;
use crate::args::ValidateArgs;
use crate::execute::execute;
use crate::settings::load_config;

/// Runs the command.
pub fn run(args: ValidateArgs, quiet: bool) -> anyhow::Result<Outcome> {
    crate::settings::require_inputs(&args.input, "validate")?;
    let cfg = load_config(&args.input)?;
    if let Some(path) = &args.suggest {
        let toml = tickpipe::suggest_rules(&args.input.inputs, &cfg, args.suggest_rows)?;
        std::fs::write(path, toml).map_err(|e| pipeline_core::Error::io(path, e))?;
        eprintln!(
            "wrote suggested rules to {} (edit them, then: tickpipe validate INPUT --rules {})",
            path.display(),
            path.display()
        );
        return Ok(Outcome::Ok);
    }
    let mut b = Pipeline::builder()
        .inputs(args.input.inputs.clone())
        .config(cfg)
        .output(Output::discard())
        .validation(Validation::Standalone {
            rules: args.rules.clone(),
            report: args.report.clone(),
            history: args.history.clone(),
        })
        .label("validate");
    if let Some(q) = &args.quarantine {
        b = b.quarantine_file(q);
    }
    let (report, outcome) = execute(b, quiet, args.summary_json.as_deref())?;
    if let Some(r) = &args.report {
        eprintln!("  quality report: {}", r.display());
    }
    Ok(match (outcome, report.validation_exit_code()) {
        (Outcome::Ok, Some(0)) => Outcome::Ok,
        (Outcome::Ok, _) => Outcome::SomeFilesFailed,
        (o, _) => o,
    })
}
