//! tickpipe's developer tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! One subcommand per module: add a variant to [`Command`] and a module holding its `Args`
//! and `run`. The alias builds in debug mode; for speed-sensitive tasks run
//! `cargo run --release -p xtask -- <task> …` instead.

use clap::{Parser, Subcommand};

mod gen_data;

/// tickpipe developer tasks.
#[derive(Debug, Parser)]
#[command(name = "xtask", about = "tickpipe developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The tasks; each variant's arguments live in the task's own module.
#[derive(Debug, Subcommand)]
enum Command {
    /// Generate deterministic synthetic TAQ data with labelled anomalies.
    ///
    /// The `cargo xtask` alias runs a debug build; for large sets use
    /// `cargo run --release -p xtask -- gen-data …` (about 6 times faster uncompressed).
    GenData(gen_data::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::GenData(args) => gen_data::run(&args),
    }
}
