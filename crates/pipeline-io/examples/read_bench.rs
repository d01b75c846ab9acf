//! Read throughput of `pipeline_io::open_source` on one file: rows/s and MB/s.
//!
//! `cargo run --release -p pipeline-io --example read_bench -- FILE [THREADS] [CHUNK_ROWS] [COLUMNS]`
//! prints one line per run: file, input bytes, rows, seconds, MB/s (input bytes; decompressed
//! bytes for compressed files are reported by the source's progress) and M rows/s.

use std::time::Instant;

use pipeline_io::{InputFile, ReadOptions, read_all_count};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: read_bench FILE [THREADS] [CHUNK_ROWS] [COLUMNS,...]");
        std::process::exit(2);
    };
    let mut opts = ReadOptions::default();
    if let Some(t) = args.get(2) {
        opts.threads = t.parse()?;
    }
    if let Some(c) = args.get(3) {
        opts.chunk_rows = c.parse()?;
    }
    if let Some(cols) = args.get(4) {
        opts.columns = Some(cols.split(',').map(String::from).collect());
    }
    let input = InputFile::new(path);
    let t = Instant::now();
    let (rows, bytes) = read_all_count(&input, &opts)?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "{path}: {bytes} bytes, {rows} rows, threads {}, {s:.3} s, {:.0} MB/s, {:.2} M rows/s",
        opts.effective_threads(),
        bytes as f64 / s / 1e6,
        rows as f64 / s / 1e6
    );
    Ok(())
}
