//! tickpipe's developer tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! One subcommand per module. The alias builds in debug mode; for speed-sensitive tasks run
//! `cargo run --release -p xtask -- <task> …` instead.

use std::path::PathBuf;

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
    GenData(gen_data::Args),
}

/// The workspace root (the parent of this crate's folder).
#[allow(dead_code)] // Used by the bench and tidy tasks that join this enum later.
fn project_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::GenData(args) => gen_data::run(&args),
    }
}
