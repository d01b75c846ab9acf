//! Cost of [`pipeline_io::describe_dataset`], the sniffing pass a run makes before reading
//! to compute one dataset schema: files, seconds, and the schema's width.
//!
//! `cargo run --release -p pipeline-io --example describe_bench -- INPUT... [--threads N]`
//! expands the inputs as a run does (folders yield data files only) and times the pass
//! (best of three, so the page cache is warm as it is for the run that follows).

use std::time::Instant;

use pipeline_io::{ReadOptions, describe_dataset, expand_inputs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = ReadOptions::default();
    if let Some(i) = args.iter().position(|a| a == "--threads") {
        opts.threads = args.get(i + 1).ok_or("--threads needs a number")?.parse()?;
        args.drain(i..=i + 1);
    }
    if args.is_empty() {
        eprintln!("usage: describe_bench INPUT... [--threads N]");
        std::process::exit(2);
    }
    let files = expand_inputs(&args, "*")?;
    let mut best = f64::INFINITY;
    let mut width = 0;
    let mut failed = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let info = describe_dataset(&files, &opts)?;
        best = best.min(start.elapsed().as_secs_f64());
        width = info.schema.fields().len();
        failed = info.failed.len();
    }
    println!(
        "files={} failed={failed} columns={width} seconds={best:.4} ms_per_file={:.3}",
        files.len(),
        best * 1e3 / files.len().max(1) as f64
    );
    Ok(())
}
