//! The cache's speed and hit-rate figures (see `pipeline_cache::run_bench`).
//!
//! ```text
//! cargo run --release -p pipeline-cache --example cache_bench [-- SCRATCH_DIR] [--json]
//! ```
//!
//! Scratch files go to SCRATCH_DIR (default: a temporary directory, removed afterwards).

use pipeline_cache::{BenchConfig, run_bench};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let tmp = tempfile::tempdir()?;
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or_else(|| tmp.path().join("cache-bench"), std::path::PathBuf::from);
    let report = run_bench(&BenchConfig::new(dir))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
