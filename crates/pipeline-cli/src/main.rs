//! `tickpipe`: the command-line tool. It parses arguments, drives the `tickpipe` library
//! facade, shows progress, prints summaries and maps outcomes to exit codes; the pipeline's
//! composition and policy live in the facade.

mod args;
mod cmd;
mod config_template;
mod execute;
mod print;
mod progress;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use pipeline_core::Error;
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command};

/// What a command reports back to `main`.
pub enum Outcome {
    /// Everything worked.
    Ok,
    /// The run finished, but some files failed.
    SomeFilesFailed,
}

fn main() -> ExitCode {
    tickpipe::alloc::tune();
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let quiet = cli.quiet;
    // A panic is a bug; say so plainly instead of letting a backtrace be the message.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("tickpipe: internal error (a bug, please report it): {info}");
    }));
    let result = std::panic::catch_unwind(|| match cli.command {
        Command::Run(a) => cmd::run::run(a, quiet),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Convert(a) => cmd::convert::run(a, quiet),
        Command::Bars(a) => cmd::bars::run(a, quiet),
        Command::Config(c) => cmd::config::run(c),
        Command::Demo(a) => cmd::demo::run(a, quiet),
        Command::Validate(a) => cmd::validate::run(a, quiet),
        Command::Cache(c) => cmd::cache::run(c),
        Command::Plan(a) => cmd::cluster::plan(a, quiet),
        Command::Map(a) => cmd::cluster::map(a, quiet),
        Command::Reduce(a) => cmd::cluster::reduce(a, quiet),
    });
    match result {
        Ok(Ok(Outcome::Ok)) => ExitCode::SUCCESS,
        Ok(Ok(Outcome::SomeFilesFailed)) => ExitCode::from(1),
        Ok(Err(e)) => {
            eprintln!("tickpipe: error: {}", message(&e));
            for line in print::take_after_error() {
                eprintln!("{line}");
            }
            ExitCode::from(exit_code(&e))
        }
        Err(_) => ExitCode::from(3),
    }
}

/// The error and its causes, each said once: a cause whose text the message already ends
/// with (an I/O error shown inside its path's message) is not repeated.
pub(crate) fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Maps an error to the documented exit code.
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Error>() {
        Some(Error::Cancelled) => 130,
        Some(Error::Internal(_)) => 3,
        Some(e) if e.is_environment() => 4,
        _ => 2,
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("TICKPIPE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    // Colour codes only on a terminal: a log file or a pipe gets plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
