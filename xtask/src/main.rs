//! tickpipe's developer tasks, run as `cargo xtask <task>` (an alias in `.cargo/config.toml`).
//!
//! One subcommand per module: add a variant to [`Command`] and a module holding its `Args`
//! and `run`. The alias builds in debug mode; for speed-sensitive tasks run
//! `cargo run --release -p xtask -- <task> …` instead.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod bench;
mod gen_data;
mod incremental;
mod tidy;

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
    GenData(Box<gen_data::Args>),
    /// Build in release and measure every stage and the full run at several sizes, beside
    /// Polars / pyarrow / DuckDB; writes target/bench/results.json and results.md.
    Bench(bench::BenchArgs),
    /// Repo-wide checks: every crate documents itself, no stray `dbg!` or `todo!`.
    Tidy,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::GenData(args) => gen_data::run(&args),
        Command::Bench(args) => bench::run(args),
        Command::Tidy => tidy::run(),
    }
}

/// The workspace root (the parent of `xtask/`).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
