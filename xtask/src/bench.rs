//! `cargo xtask bench`: release-mode figures for every stage and the whole run, at several
//! input sizes, beside Polars / pyarrow / DuckDB when they are installed.
//!
//! Writes `target/bench/results.json` and `target/bench/results.md`. Each tickpipe figure
//! comes from the `--summary-json` of a real `tickpipe` process (wall time, rows/s, MB/s and
//! that process's own peak RSS, read from `VmHWM`).

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use crate::project_root;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Input sizes in rows, comma-separated.
    #[arg(
        long,
        default_value = "1000000,5000000,20000000",
        value_delimiter = ','
    )]
    pub sizes: Vec<u64>,
    /// Skip the Polars / pyarrow / DuckDB comparisons.
    #[arg(long)]
    pub skip_peers: bool,
    /// Stream a very large generated dataset through `tickpipe run -` and record RSS over time.
    #[arg(long)]
    pub scale: bool,
    /// Rows for --scale (default: about 100 GB of CSV).
    #[arg(long, default_value_t = 1_400_000_000)]
    pub scale_rows: u64,
    /// Skip the engine figures (overhead, 1 vs 2 workers, live latency).
    #[arg(long)]
    pub skip_engine: bool,
    /// Skip the incremental-run (append) and cache-tier figures.
    #[arg(long)]
    pub skip_incremental: bool,
    /// Keep generated data between runs (target/bench/data).
    #[arg(long)]
    pub keep_data: bool,
    /// Trades of the trades-and-quotes join benchmark (gen-data `taq-split` at 3.75 quotes
    /// per trade on normal days, about 3 overall); 0 skips it.
    #[arg(long, default_value_t = 20_000_000)]
    pub taq_trades: u64,
    /// Generate the inputs in a hold-out style that no test is tuned to: space-separated
    /// microsecond timestamps without a zone, Zipf-skewed symbols (S = 1), another seed and
    /// another anomaly mix (more duplicates and spikes, no locked quotes).
    #[arg(long)]
    pub holdout: bool,
}

/// The seed design's published throughput claims (rows/s), the baseline we quote ratios to.
const SEED_CLAIMS: [(&str, f64); 5] = [
    ("load", 500_000.0),
    ("streaming", 750_000.0),
    ("preprocessing", 250_000.0),
    ("parallel (8 cores)", 1_000_000.0),
    ("validation", 400_000.0),
];

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Who ran it: tickpipe, polars, pyarrow, duckdb.
    pub tool: String,
    /// What ran: load, load_gz, clean, features, write, run, job.
    pub task: String,
    /// Input rows.
    pub rows: u64,
    /// Input bytes.
    pub bytes: u64,
    /// Wall seconds.
    pub wall_seconds: f64,
    /// Rows per second.
    pub rows_per_second: f64,
    /// Input MB (10^6) per second.
    pub mb_per_second: f64,
    /// Peak RSS of the measured process.
    pub peak_rss_bytes: u64,
    /// Whose output a read query read (`read` figures only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dataset: String,
    /// The monitor's own time as a percentage of the run, measured inside the run
    /// (`performance.monitor_overhead_pct`; tickpipe runs with the monitor on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_pct: Option<f64>,
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> Result<()> {
    let root = project_root();
    let out = root.join("target/bench");
    let data = out.join("data");
    std::fs::create_dir_all(&data)?;
    eprintln!("== building release binaries");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "--release", "-p", "pipeline-cli", "-p", "xtask"])
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    // The binaries are where cargo put them: CARGO_TARGET_DIR when set, else target/.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let tickpipe = target.join("release/tickpipe");
    let xtask = target.join("release/xtask");

    let mut figures: Vec<Figure> = Vec::new();
    let mut quality_rows: Vec<Value> = Vec::new();
    let mut monitor_rows: Vec<Value> = Vec::new();
    let mut validation_rows: Vec<Value> = Vec::new();
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    for &rows in &sizes {
        let dir = data.join(if args.holdout {
            format!("taq_{rows}_holdout")
        } else {
            format!("taq_{rows}")
        });
        let csv = dir.join("plain/taq.csv");
        let gz = dir.join("gz/taq.csv.gz");
        if !csv.exists() {
            eprintln!("== gen-data {rows} rows");
            gen_data(&xtask, rows, &dir.join("plain"), "none", args.holdout)?;
        }
        if !gz.exists() {
            gen_data(&xtask, rows, &dir.join("gz"), "gz", args.holdout)?;
        }
        let scratch = out.join("scratch");
        // The dataset of the full `run` task, read back beside Polars' output.
        let kept = out.join("run_dataset");
        let csv_s = csv.to_string_lossy().to_string();
        let gz_s = gz.to_string_lossy().to_string();
        let out_s = scratch.to_string_lossy().to_string();
        let tasks: [(&str, Vec<&str>); 9] = [
            (
                "load",
                vec![
                    "run",
                    &csv_s,
                    "--out",
                    &out_s,
                    "--no-clean",
                    "--no-features",
                    "--discard",
                ],
            ),
            (
                "load_gz",
                vec![
                    "run",
                    &gz_s,
                    "--out",
                    &out_s,
                    "--no-clean",
                    "--no-features",
                    "--discard",
                ],
            ),
            (
                "clean",
                vec!["run", &csv_s, "--out", &out_s, "--no-features", "--discard"],
            ),
            (
                "features",
                vec!["run", &csv_s, "--out", &out_s, "--discard"],
            ),
            ("write", vec!["convert", &csv_s, "--out", &out_s]),
            ("run", vec!["run", &csv_s, "--out", &out_s]),
            // What inline validation and the monitor cost: the full run without each.
            (
                "run_no_validate",
                vec!["run", &csv_s, "--out", &out_s, "--no-validate"],
            ),
            (
                "run_no_monitor",
                vec!["run", &csv_s, "--out", &out_s, "--no-monitor"],
            ),
            // Standalone validation: the rules on the rows as read, nothing written.
            ("validate", vec!["validate", &csv_s]),
        ];
        // The peers' jobs hold several GB and can push the inputs out of the page cache;
        // read both through first so every tool starts from a warm cache (an evicted 1.4 GB
        // file made one load read 2.26 s instead of 1.45 s).
        warm(&csv)?;
        warm(&gz)?;
        for (task, argv) in tasks {
            let _ = std::fs::remove_dir_all(&scratch);
            eprintln!("== tickpipe {task} ({rows} rows)");
            let f = tickpipe_figure(&tickpipe, task, &argv)?;
            eprintln!(
                "   {:.2}s  {:.2} M rows/s  {:.0} MB/s  peak RSS {:.0} MiB",
                f.wall_seconds,
                f.rows_per_second / 1e6,
                f.mb_per_second,
                f.peak_rss_bytes as f64 / 1048576.0
            );
            figures.push(f);
            if task == "run" {
                let truth = dir.join("plain").join("anomalies.jsonl");
                for mut q in quality(&root, &scratch.join("quarantine.parquet"), &truth)? {
                    q["rows"] = rows.into();
                    quality_rows.push(q);
                }
                // Kept for the read-back queries below, so the run is not repeated for them.
                let _ = std::fs::remove_dir_all(&kept);
                std::fs::rename(scratch.join("data"), &kept)?;
            }
        }
        let _ = std::fs::remove_dir_all(&scratch);
        eprintln!("== the monitor's cost ({rows} rows)");
        let files = (csv_s.as_str(), out_s.as_str(), scratch.as_path());
        monitor_rows.push(monitor_pairs(&tickpipe, files, rows)?);
        eprintln!("== inline validation's cost ({rows} rows)");
        let (on, off) = alternated(&tickpipe, files, "--no-validate", "run_no_validate")?;
        validation_rows.push(pair_cost(rows, &on, &off));
        if !args.skip_peers {
            warm(&csv)?;
            warm(&gz)?;
            figures.extend(peers(&root, "load", &[&csv_s, &gz_s])?);
            // CSV to Parquet, beside `tickpipe convert` (the `write` task).
            figures.extend(peers(&root, "write", &[&csv_s, &out_s])?);
            figures.extend(peers(&root, "job", &[&csv_s, &out_s])?);
            // Reading the outputs back: tickpipe's dataset beside Polars' own file, each
            // queried by DuckDB and Polars (a full scan; one symbol, one month).
            let theirs = scratch.join("polars_job.parquet");
            if theirs.exists() && kept.exists() {
                let a = format!("tickpipe={}", kept.display());
                let b = format!("polars={}", theirs.display());
                for mut f in peers(&root, "read", &[&a, &b])? {
                    // The reader is the tool; whose output it read goes into the task.
                    f.task = format!("{}_{}", f.task, f.dataset);
                    figures.push(f);
                }
            }
            let _ = std::fs::remove_dir_all(&scratch);
        }
        let _ = std::fs::remove_dir_all(&kept);
    }
    let taq = if args.taq_trades > 0 {
        taq_figures(
            &root,
            &xtask,
            &tickpipe,
            &data,
            args.taq_trades,
            args.skip_peers,
        )?
    } else {
        Vec::new()
    };
    let engine = if args.skip_engine {
        None
    } else {
        Some(engine_figures(
            &root,
            &tickpipe,
            &xtask,
            &data,
            *sizes.last().unwrap_or(&1_000_000),
        )?)
    };
    let incremental = if args.skip_incremental {
        None
    } else {
        Some(crate::incremental::figures(
            &root, &xtask, &tickpipe, &data,
        )?)
    };
    let scale = if args.scale {
        Some(scale_run(&xtask, &tickpipe, &out, args.scale_rows)?)
    } else {
        None
    };
    let mut md = markdown(&figures, &sizes, scale.as_ref());
    md.push_str(&validation_markdown(&validation_rows));
    md.push_str(&monitor_markdown(&monitor_rows));
    md.push_str(&read_markdown(&figures));
    md.push_str(&quality_markdown(&quality_rows));
    md.push_str(&taq_markdown(&taq));
    if let Some(e) = &engine {
        md.push_str(&engine_markdown(e));
    }
    if let Some(i) = &incremental {
        md.push_str(&crate::incremental::markdown(i));
    }
    let json = serde_json::json!({
        "figures": figures,
        "taq": taq,
        "seed_claims_rows_per_second": SEED_CLAIMS.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
        "scale": scale,
        "engine": engine,
        "incremental": incremental,
        "cleaning_quality": quality_rows,
        "monitor_cost": monitor_rows,
        "validation_cost": validation_rows,
        "machine": machine(),
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    std::fs::write(out.join("results.md"), &md)?;
    println!("{md}");
    eprintln!(
        "wrote {} and results.md",
        out.join("results.json").display()
    );
    if !args.keep_data {
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(())
}

/// The trades-and-quotes join: `tickpipe run --trades … --quotes …` (the join alone: no
/// cleaning, features, validation or monitor; Parquet out) beside Polars' `join_asof(by=
/// "symbol")` and DuckDB's ASOF JOIN on the same CSV files.
fn taq_figures(
    root: &Path,
    xtask: &Path,
    tickpipe: &Path,
    data: &Path,
    trades: u64,
    skip_peers: bool,
) -> Result<Vec<Figure>> {
    let dir = data.join(format!("taq_split_{trades}"));
    if !dir.join("_done").exists() {
        eprintln!("== gen-data taq-split {trades} trades");
        let _ = std::fs::remove_dir_all(&dir);
        let status = Command::new(xtask)
            .args([
                "gen-data",
                "--symbols",
                "20",
                "--days",
                "20",
                "--layout",
                "taq-split",
            ])
            .args(["--compression", "none", "--rows", &trades.to_string()])
            .args(["--quotes-per-trade", "3.75"])
            .arg("--out")
            .arg(&dir)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("gen-data taq-split failed");
        }
        std::fs::write(dir.join("_done"), "")?;
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    for f in &files {
        warm(f)?;
    }
    let scratch = root.join("target/bench/scratch-taq");
    let _ = std::fs::remove_dir_all(&scratch);
    let t = dir.join("trades_*.csv").to_string_lossy().to_string();
    let q = dir.join("quotes_*.csv").to_string_lossy().to_string();
    let out_s = scratch.to_string_lossy().to_string();
    eprintln!("== tickpipe asof ({trades} trades)");
    let argv = [
        "run",
        "--trades",
        &t,
        "--quotes",
        &q,
        "--out",
        &out_s,
        "--no-clean",
        "--no-features",
        "--no-validate",
        "--no-monitor",
    ];
    let f = tickpipe_figure(tickpipe, "asof", &argv)?;
    eprintln!(
        "   {:.2}s  {:.2} M rows/s  peak RSS {:.0} MiB",
        f.wall_seconds,
        f.rows_per_second / 1e6,
        f.peak_rss_bytes as f64 / 1048576.0
    );
    let mut v = vec![f];
    let _ = std::fs::remove_dir_all(&scratch);
    if !skip_peers {
        v.extend(peers(root, "asof", &[&dir.to_string_lossy(), &out_s])?);
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(v)
}

fn taq_markdown(figures: &[Figure]) -> String {
    let Some(ours) = figures.iter().find(|f| f.tool == "tickpipe") else {
        return String::new();
    };
    let mut md = String::from(
        "\n## Trades and quotes: the as-of join\n\n`tickpipe run --trades … --quotes …` \
         (NBBO across exchanges, signs, spreads, 5-minute realized spread and impact, \
         per-symbol-day file; no cleaning, features, validation or monitor) beside Polars' \
         `join_asof(by=\"symbol\", allow_exact_matches=False)` and DuckDB's ASOF JOIN to the \
         raw quote rows, on the same CSV files; rows = trades + quotes.\n\n\
         | tool | rows | wall s | M rows/s | peak RSS MiB | tickpipe's speed-up |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for f in figures {
        md.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.0} | {:.1}× |\n",
            f.tool,
            f.rows,
            f.wall_seconds,
            f.rows_per_second / 1e6,
            f.peak_rss_bytes as f64 / 1048576.0,
            f.wall_seconds / ours.wall_seconds.max(1e-9)
        ));
    }
    md
}

/// Reads `path` through once so it is in the page cache.
fn warm(path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    std::io::copy(&mut f, &mut std::io::sink())?;
    Ok(())
}

/// Precision and recall of the full run's cleaning against gen-data's ground truth, per
/// anomaly kind (`xtask/scripts/quality.py` reads the run's quarantine file). Empty when
/// python3 or pyarrow is missing.
fn quality(root: &Path, quarantine: &Path, truth: &Path) -> Result<Vec<Value>> {
    let args = [quarantine.as_os_str(), truth.as_os_str()];
    let Some(lines) = python_lines(&root.join("xtask/scripts/quality.py"), &args)? else {
        eprintln!("   python3 not found; skipping cleaning quality");
        return Ok(Vec::new());
    };
    let mut v = Vec::new();
    for line in lines {
        let q: Value = serde_json::from_str(&line)?;
        if q.get("skipped").is_some() {
            eprintln!("   cleaning quality skipped: {}", q["skipped"]);
            continue;
        }
        eprintln!(
            "   {:28} precision {:.4} recall {:.4}",
            format!(
                "{} ({})",
                q["anomaly"].as_str().unwrap_or(""),
                q["rule"].as_str().unwrap_or("")
            ),
            q["precision"].as_f64().unwrap_or(0.0),
            q["recall"].as_f64().unwrap_or(0.0)
        );
        v.push(q);
    }
    Ok(v)
}

fn quality_markdown(rows: &[Value]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\nCleaning quality of the full run against gen-data's labels (quarantine file vs `anomalies.jsonl`):\n\n| rows | anomaly | rule | labelled | removed | precision | recall |\n|---:|---|---|---:|---:|---:|---:|\n",
    );
    for q in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.4} | {:.4} |\n",
            q["rows"],
            q["anomaly"].as_str().unwrap_or(""),
            q["rule"].as_str().unwrap_or(""),
            q["labelled"],
            q["removed"],
            q["precision"].as_f64().unwrap_or(0.0),
            q["recall"].as_f64().unwrap_or(0.0)
        ));
    }
    md
}

/// The gen-data options of `--holdout` (see [`BenchArgs::holdout`]).
const HOLDOUT: [&str; 12] = [
    "--ts-format",
    "space-micros",
    "--symbol-skew",
    "1",
    "--seed",
    "20261206",
    "--rate-duplicate",
    "0.004",
    "--rate-price-spike",
    "0.003",
    "--rate-locked-quote",
    "0",
];

fn gen_data(xtask: &Path, rows: u64, dir: &Path, compression: &str, holdout: bool) -> Result<()> {
    let extra: &[&str] = if holdout { &HOLDOUT } else { &[] };
    let rows = rows.to_string();
    let mut args = vec!["--symbols", "20", "--years", "5", "--layout", "single"];
    args.extend(["--compression", compression, "--rows", &rows]);
    // Peers abort on malformed lines, so the shared benchmark file has none; every other
    // anomaly kind stays in at its default rate (0.1% of rows each).
    args.extend(["--rate-malformed-field-count", "0"]);
    args.extend(["--rate-malformed-number", "0"]);
    args.extend(extra);
    run_gen_data(xtask, &args, dir)
}

/// `xtask gen-data ARGS --out DIR` with the release xtask, quietly.
pub(crate) fn run_gen_data(xtask: &Path, args: &[&str], dir: &Path) -> Result<()> {
    let status = Command::new(xtask)
        .arg("gen-data")
        .args(args)
        .arg("--out")
        .arg(dir)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("gen-data failed");
    }
    Ok(())
}

/// The median of `v` (the upper one of an even count); 0 when empty.
/// `cargo run --release -q -p krate --example example` in `root`, its stderr shown; add
/// the example's own arguments after `--`.
pub(crate) fn example_command(root: &Path, krate: &str, example: &str) -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root)
        .args(["run", "--release", "-q", "-p", krate, "--example", example])
        .stderr(Stdio::inherit());
    c
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

fn tickpipe_figure(tickpipe: &Path, task: &str, argv: &[&str]) -> Result<Figure> {
    tickpipe_figure_on(None, tickpipe, task, argv)
}

/// Like [`tickpipe_figure`], pinned to the CPUs `cpus` (a `taskset -c` list) when given.
fn tickpipe_figure_on(
    cpus: Option<&str>,
    tickpipe: &Path,
    task: &str,
    argv: &[&str],
) -> Result<Figure> {
    let mut cmd = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list]).arg(tickpipe);
            c
        }
        None => Command::new(tickpipe),
    };
    let output = cmd
        .args(argv)
        .args(["--summary-json", "-", "-q"])
        .output()
        .with_context(|| format!("running {}", tickpipe.display()))?;
    // `validate` exits 1 when the verdict fails, which gen-data's labelled anomalies may do.
    let verdict_only = task == "validate" && output.status.code() == Some(1);
    if !output.status.success() && !verdict_only {
        bail!(
            "tickpipe {task} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| "tickpipe --summary-json output is not JSON")?;
    Ok(Figure {
        tool: "tickpipe".into(),
        task: task.into(),
        rows: v["rows_read"].as_u64().unwrap_or(0),
        bytes: v["bytes_read"].as_u64().unwrap_or(0),
        wall_seconds: v["wall_seconds"].as_f64().unwrap_or(0.0),
        rows_per_second: v["rows_per_second"].as_f64().unwrap_or(0.0),
        mb_per_second: v["mb_per_second"].as_f64().unwrap_or(0.0),
        peak_rss_bytes: v["peak_rss_bytes"].as_u64().unwrap_or(0),
        dataset: String::new(),
        monitor_pct: v["performance"]["monitor_overhead_pct"].as_f64(),
    })
}

/// Alternated pairs of `run` and `run --no-monitor` (or `--no-validate`) for a part's cost:
/// drift of the machine's speed hits both sides of a pair alike.
const PAIRS: usize = 5;

/// [`PAIRS`] alternated runs of `run` on `csv` with and without `flag`: the runs with it,
/// and without.
fn alternated(
    tickpipe: &Path,
    (csv, out, scratch): (&str, &str, &Path),
    flag: &str,
    off_task: &str,
) -> Result<(Vec<Figure>, Vec<Figure>)> {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for i in 0..PAIRS {
        let _ = std::fs::remove_dir_all(scratch);
        let a = tickpipe_figure(tickpipe, "run", &["run", csv, "--out", out])?;
        let _ = std::fs::remove_dir_all(scratch);
        let b = tickpipe_figure(tickpipe, off_task, &["run", csv, "--out", out, flag])?;
        eprintln!(
            "   pair {}: {:.2}s with, {:.2}s {flag}{}",
            i + 1,
            a.wall_seconds,
            b.wall_seconds,
            a.monitor_pct
                .map(|p| format!(" (the monitor's own time {p:.3}%)"))
                .unwrap_or_default()
        );
        on.push(a);
        off.push(b);
    }
    let _ = std::fs::remove_dir_all(scratch);
    Ok((on, off))
}

/// The cost of what `flag` turns off, from [`alternated`] pairs: the median and range of
/// the pairs' differences as a share of the run without it, and the median walls.
fn pair_cost(rows: u64, on: &[Figure], off: &[Figure]) -> Value {
    let diffs: Vec<f64> = on
        .iter()
        .zip(off)
        .map(|(a, b)| (a.wall_seconds - b.wall_seconds) / b.wall_seconds * 100.0)
        .collect();
    let walls = |v: &[Figure]| median(&v.iter().map(|f| f.wall_seconds).collect::<Vec<_>>());
    serde_json::json!({
        "rows": rows,
        "pairs": diffs.len(),
        "diff_pct_median": median(&diffs),
        "diff_pct_min": diffs.iter().copied().fold(f64::INFINITY, f64::min),
        "diff_pct_max": diffs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "wall_on_median": walls(on),
        "wall_off_median": walls(off),
    })
}

/// The monitor's cost on `csv` two ways: its own time measured inside each run (sampler
/// ticks plus writing the report, as a share of the run), and the wall-time difference of
/// [`PAIRS`] alternated runs with and without it (median and range of the pairs).
fn monitor_pairs(tickpipe: &Path, files: (&str, &str, &Path), rows: u64) -> Result<Value> {
    let (on, off) = alternated(tickpipe, files, "--no-monitor", "run_no_monitor")?;
    let own: Vec<f64> = on
        .iter()
        .map(|f| f.monitor_pct.unwrap_or(f64::NAN))
        .collect();
    let mut v = pair_cost(rows, &on, &off);
    v["own_pct_median"] = median(&own).into();
    v["own_pct_max"] = own.iter().copied().fold(f64::NEG_INFINITY, f64::max).into();
    Ok(v)
}

/// What [`pair_cost`] measured, in words: `N alternated pairs of run and run FLAG: …`.
fn pairs_text(m: &Value, flag: &str) -> String {
    let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    format!(
        "{} alternated pairs of `run` and `run {flag}`: median {:+.1}% (range {:+.1}% to {:+.1}%; medians {:.2}s and {:.2}s)",
        m["pairs"],
        f("diff_pct_median"),
        f("diff_pct_min"),
        f("diff_pct_max"),
        f("wall_on_median"),
        f("wall_off_median"),
    )
}

/// One paragraph line per input size, `line` making each.
fn per_size(rows: &[Value], line: impl Fn(&Value) -> String) -> String {
    let mut s: String = rows.iter().map(|m| format!("\n{}", line(m))).collect();
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Inline validation's cost per input size, from alternated pairs of `run` and
/// `run --no-validate` (single runs differ by up to 10% here, as much as the goal).
fn validation_markdown(rows: &[Value]) -> String {
    per_size(rows, |m| {
        format!(
            "{} rows: inline validation's cost, {}.",
            m["rows"],
            pairs_text(m, "--no-validate")
        )
    })
}

/// The monitor's cost per input size (see [`monitor_pairs`]).
fn monitor_markdown(rows: &[Value]) -> String {
    per_size(rows, |m| {
        format!(
            "{} rows, the monitor at its 1 s interval: its own time, measured inside the run (sampler ticks and writing the report), is {:.3}% of the run (median of {}; at most {:.3}%). {}, the spread of this machine's timings.",
            m["rows"],
            m["own_pct_median"].as_f64().unwrap_or(f64::NAN),
            m["pairs"],
            m["own_pct_max"].as_f64().unwrap_or(f64::NAN),
            pairs_text(m, "--no-monitor"),
        )
    })
}

/// Runs `python3 script args…` (its stderr shown) and returns its stdout lines; `None` when
/// python3 cannot be started.
fn python_lines(script: &Path, args: &[&std::ffi::OsStr]) -> Result<Option<Vec<String>>> {
    let Ok(out) = Command::new("python3")
        .arg(script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
    else {
        return Ok(None);
    };
    Ok(Some(out.stdout.lines().collect::<std::io::Result<_>>()?))
}

fn peers(root: &Path, mode: &str, args: &[&str]) -> Result<Vec<Figure>> {
    let script = root.join("xtask/scripts/peers.py");
    eprintln!("== peers: {mode}");
    let argv: Vec<&std::ffi::OsStr> = std::iter::once(mode)
        .chain(args.iter().copied())
        .map(std::ffi::OsStr::new)
        .collect();
    let Some(lines) = python_lines(&script, &argv)? else {
        eprintln!("   python3 not found; skipping peers");
        return Ok(Vec::new());
    };
    let mut v = Vec::new();
    for line in lines {
        let Ok(j) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if j.get("skipped").is_some() {
            eprintln!("   {} {}: {}", j["tool"], j["task"], j["skipped"]);
            continue;
        }
        let file = j["file"].as_str().unwrap_or("");
        let task = if file.ends_with(".gz") {
            "load_gz"
        } else {
            j["task"].as_str().unwrap_or("")
        };
        let f = Figure {
            tool: j["tool"].as_str().unwrap_or("").into(),
            task: task.into(),
            rows: j["rows"].as_u64().unwrap_or(0),
            bytes: j["bytes"]
                .as_u64()
                .unwrap_or_else(|| std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)),
            wall_seconds: j["wall_seconds"].as_f64().unwrap_or(0.0),
            rows_per_second: j["rows_per_second"].as_f64().unwrap_or(0.0),
            mb_per_second: j["mb_per_second"].as_f64().unwrap_or(0.0),
            peak_rss_bytes: j["peak_rss_bytes"].as_u64().unwrap_or(0),
            dataset: j["dataset"].as_str().unwrap_or("").into(),
            monitor_pct: None,
        };
        eprintln!(
            "   {} {}: {:.2}s {:.2} M rows/s, peak RSS {:.0} MiB",
            f.tool,
            f.task,
            f.wall_seconds,
            f.rows_per_second / 1e6,
            f.peak_rss_bytes as f64 / 1048576.0
        );
        v.push(f);
    }
    Ok(v)
}

/// RSS and throughput of one long streaming run, sampled once a second.
#[derive(Debug, Serialize)]
pub struct ScaleResult {
    /// Rows streamed.
    pub rows: u64,
    /// Seconds.
    pub wall_seconds: f64,
    /// `(seconds, rss_bytes)` samples of the tickpipe process.
    pub rss_samples: Vec<(f64, u64)>,
    /// Peak RSS reported by tickpipe.
    pub peak_rss_bytes: u64,
    /// Rows per second over the whole run.
    pub rows_per_second: f64,
}

fn scale_run(xtask: &Path, tickpipe: &Path, out: &Path, rows: u64) -> Result<ScaleResult> {
    eprintln!("== scale: {rows} rows through a pipe");
    let scratch = out.join("scale-out");
    let _ = std::fs::remove_dir_all(&scratch);
    let mut generator = Command::new(xtask)
        .args([
            "gen-data",
            "--symbols",
            "50",
            "--years",
            "5",
            "--layout",
            "single",
        ])
        .args([
            "--compression",
            "none",
            "--rows",
            &rows.to_string(),
            "--out",
            "-",
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let pipe = generator.stdout.take().context("no generator stdout")?;
    let start = Instant::now();
    // The summary goes to a file: on stdout, a summary listing a few thousand output files
    // filled the pipe while this loop waited for the process to end, and both hung.
    let summary_path = out.join("scale-summary.json");
    let mut child = Command::new(tickpipe)
        .args(["run", "-", "--out"])
        .arg(&scratch)
        .arg("--summary-json")
        .arg(&summary_path)
        .arg("-q")
        .stdin(pipe)
        .spawn()?;
    let pid = child.id();
    let mut samples = Vec::new();
    loop {
        if let Some(_status) = child.try_wait()? {
            break;
        }
        if let Some(rss) = rss_of(pid) {
            samples.push((start.elapsed().as_secs_f64(), rss));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = generator.wait();
    let v: Value = std::fs::read(&summary_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_file(&summary_path);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(ScaleResult {
        rows: v["rows_read"].as_u64().unwrap_or(0),
        wall_seconds: start.elapsed().as_secs_f64(),
        rss_samples: samples,
        peak_rss_bytes: v["peak_rss_bytes"].as_u64().unwrap_or(0),
        rows_per_second: v["rows_per_second"].as_f64().unwrap_or(0.0),
    })
}

fn rss_of(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn machine() -> Value {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    serde_json::json!({ "cores": cores, "cpu": cpu })
}

fn markdown(figures: &[Figure], sizes: &[u64], scale: Option<&ScaleResult>) -> String {
    let mut s = String::from(
        "| rows | tool | task | wall s | M rows/s | MB/s | peak RSS MiB | vs fastest peer | vs seed claim |\n|---:|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for &rows in sizes {
        for f in figures
            .iter()
            .filter(|f| f.rows == rows || (f.tool != "tickpipe" && rows_close(f.rows, rows)))
        {
            // Our full `run` is compared with the peers' comparable `job`.
            let peer_task = if f.task == "run" {
                "job"
            } else {
                f.task.as_str()
            };
            let best_peer = figures
                .iter()
                .filter(|p| p.tool != "tickpipe" && p.task == peer_task && rows_close(p.rows, rows))
                .map(|p| p.wall_seconds)
                .fold(f64::INFINITY, f64::min);
            let vs_peer = if f.tool == "tickpipe" && best_peer.is_finite() && f.wall_seconds > 0.0 {
                format!("{:.2}x faster", best_peer / f.wall_seconds)
            } else {
                String::new()
            };
            let claim = match f.task.as_str() {
                "load" | "load_gz" => Some(SEED_CLAIMS[0].1),
                "clean" | "features" | "run" | "run_no_validate" | "run_no_monitor" => {
                    Some(SEED_CLAIMS[2].1)
                }
                "validate" => Some(SEED_CLAIMS[4].1),
                _ => None,
            };
            let vs_seed = match (f.tool.as_str(), claim) {
                ("tickpipe", Some(c)) => format!("{:.1}x", f.rows_per_second / c),
                _ => String::new(),
            };
            s.push_str(&format!(
                "| {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {} | {} |\n",
                rows,
                f.tool,
                f.task,
                f.wall_seconds,
                f.rows_per_second / 1e6,
                f.mb_per_second,
                f.peak_rss_bytes as f64 / 1048576.0,
                vs_peer,
                vs_seed
            ));
        }
    }
    if let Some(sc) = scale {
        let max = sc.rss_samples.iter().map(|s| s.1).max().unwrap_or(0);
        let early = sc
            .rss_samples
            .iter()
            .take(10)
            .map(|s| s.1)
            .max()
            .unwrap_or(0);
        s.push_str(&format!(
            "\nScale run: {} rows streamed in {:.0}s ({:.2} M rows/s); RSS after 10 s {:.0} MiB, max {:.0} MiB; seed claim: < 1 GB for 100 GB.\n",
            sc.rows,
            sc.wall_seconds,
            sc.rows_per_second / 1e6,
            early as f64 / 1048576.0,
            max as f64 / 1048576.0
        ));
    }
    s
}

/// What inline validation and the monitor add to a full run, per input size: the run's wall
/// time against the same run without each (same inputs, measured one after the other).
/// Reading the outputs back: each reader's best-of-three time on tickpipe's dataset and on
/// Polars' own file of the same job.
fn read_markdown(figures: &[Figure]) -> String {
    let reads: Vec<&Figure> = figures
        .iter()
        .filter(|f| f.task.starts_with("read_"))
        .collect();
    if reads.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n### Reading the output back (best of 3, warm cache)\n\n| rows read | reader | query | output of | MB | wall ms |\n|---:|---|---|---|---:|---:|\n",
    );
    for f in reads {
        let query = f.task.trim_end_matches(&format!("_{}", f.dataset));
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} |\n",
            f.rows,
            f.tool,
            query,
            f.dataset,
            f.bytes / 1_000_000,
            f.wall_seconds * 1000.0
        ));
    }
    md
}

fn rows_close(a: u64, b: u64) -> bool {
    // Peers report rows after their own parsing; gen-data anomalies (malformed lines) can make
    // them differ by a fraction of a percent from our count.
    let (a, b) = (a as f64, b as f64);
    (a - b).abs() <= 0.01 * b.max(1.0)
}

/// Engine figures: overhead against a plain loop and live-mode latency (the crates' own
/// release examples, which print one JSON line each), and the full pipeline with 1 and 2
/// workers on the largest generated file.
fn engine_figures(
    root: &Path,
    tickpipe: &Path,
    xtask: &Path,
    data: &Path,
    rows: u64,
) -> Result<Value> {
    let mut out = serde_json::Map::new();
    for (crate_name, example) in [
        ("pipeline-parallel", "engine_bench"),
        ("pipeline-parallel", "live_latency"),
    ] {
        eprintln!("== {crate_name} example {example}");
        let o = example_command(root, crate_name, example).output()?;
        let line = String::from_utf8_lossy(&o.stdout)
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or("null")
            .to_string();
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        eprintln!("   {v}");
        out.insert(example.to_string(), v);
    }
    let csv = data.join(format!("taq_{rows}/plain/taq.csv"));
    if csv.exists() {
        let scratch = data.join("scaling-out");
        let csv_s = csv.to_string_lossy().to_string();
        let out_s = scratch.to_string_lossy().to_string();
        for workers in ["1", "2"] {
            let argv = [
                "run",
                &csv_s,
                "--out",
                &out_s,
                "--discard",
                "--workers",
                workers,
            ];
            let f = tickpipe_figure(tickpipe, "features", &argv)?;
            eprintln!(
                "== clean+features, {workers} worker(s): {:.2}s",
                f.wall_seconds
            );
            out.insert(
                format!("features_{workers}_workers_seconds"),
                f.wall_seconds.into(),
            );
        }
        // Scaling with cores: the decode threads keep the second core busy even with one
        // stage worker, so 1 vs 2 workers understates it. Pinning the whole process to one
        // and then two cores (workers default to the cores available) measures what the
        // issue asks: the full pipeline, Parquet included, on 1 core against 2.
        let taskset = Command::new("taskset")
            .arg("-c")
            .arg("0")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success());
        if taskset {
            // Three times each, alternating, reporting the median: single runs on this
            // machine vary by ~10% (one 1-core run took 15.8 s, another 17.8 s).
            warm(&csv)?;
            let mut runs: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for _ in 0..3 {
                for (i, list) in ["0", "0,1"].into_iter().enumerate() {
                    let _ = std::fs::remove_dir_all(&scratch);
                    let argv = ["run", &csv_s, "--out", &out_s];
                    let f = tickpipe_figure_on(Some(list), tickpipe, "run", &argv)?;
                    eprintln!("== full run on {} core(s): {:.2}s", i + 1, f.wall_seconds);
                    runs[i].push(f.wall_seconds);
                }
            }
            for (i, r) in runs.iter_mut().enumerate() {
                r.sort_by(f64::total_cmp);
                out.insert(
                    format!("run_{}_cores_seconds", i + 1),
                    r[r.len() / 2].into(),
                );
                out.insert(format!("run_{}_cores_all_seconds", i + 1), r.clone().into());
            }
        } else {
            eprintln!("   taskset not found; skipping the 1 vs 2 core figure");
        }
        let _ = std::fs::remove_dir_all(&scratch);
    }
    cluster_overhead(tickpipe, xtask, data, &mut out)?;
    Ok(Value::Object(out))
}

/// The two-phase job's overhead against `tickpipe run` on one machine: 252 gzip day files
/// (gen-data, 3M rows, 10 symbols), `run` against `plan` + 3 maps + 2 reduces run one after
/// another (the work a cluster spreads out), each the median of 3 alternating runs.
fn cluster_overhead(
    tickpipe: &Path,
    xtask: &Path,
    data: &Path,
    out: &mut serde_json::Map<String, Value>,
) -> Result<()> {
    let dir = data.join("cluster");
    let input = dir.join("in");
    if !input.exists() {
        // The freshly built xtask (`current_exe` may name a binary the build replaced).
        let status = Command::new(xtask)
            .args([
                "gen-data",
                "--symbols",
                "10",
                "--years",
                "1",
                "--layout",
                "per-day",
            ])
            .args(["--compression", "gz", "--rows", "3000000", "--out"])
            .arg(&input)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("gen-data for the cluster figure failed");
        }
        let _ = std::fs::remove_file(input.join("anomalies.jsonl"));
    }
    let glob = input.join("*.csv.gz").to_string_lossy().to_string();
    let (run_dir, job) = (dir.join("run"), dir.join("job"));
    let tp = |args: &[&str]| -> Result<()> {
        let o = Command::new(tickpipe).args(args).arg("-q").output()?;
        if !o.status.success() {
            bail!("tickpipe {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(())
    };
    let (job_s, run_s) = (
        job.to_string_lossy().to_string(),
        run_dir.to_string_lossy().to_string(),
    );
    let (mut runs, mut jobs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(&run_dir);
        let t = Instant::now();
        tp(&["run", &glob, "--out", &run_s])?;
        runs.push(t.elapsed().as_secs_f64());
        let _ = std::fs::remove_dir_all(&job);
        let t = Instant::now();
        tp(&[
            "plan",
            &glob,
            "--out",
            &job_s,
            "--map-tasks",
            "3",
            "--reduce-tasks",
            "2",
        ])?;
        for i in ["0", "1", "2"] {
            tp(&["map", "--plan", &job_s, "--task", i])?;
        }
        for j in ["0", "1"] {
            tp(&["reduce", "--plan", &job_s, "--task", j])?;
        }
        jobs.push(t.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    jobs.sort_by(f64::total_cmp);
    let (r, j) = (runs[1], jobs[1]);
    eprintln!("== cluster job (3 maps, 2 reduces, serial) {j:.2}s against run {r:.2}s");
    out.insert("cluster_run_seconds".into(), r.into());
    out.insert("cluster_job_serial_seconds".into(), j.into());
    out.insert(
        "cluster_overhead_pct".into(),
        (100.0 * (j / r - 1.0)).into(),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn engine_markdown(e: &Value) -> String {
    let w1 = e["features_1_workers_seconds"].as_f64().unwrap_or(0.0);
    let w2 = e["features_2_workers_seconds"].as_f64().unwrap_or(0.0);
    let speedup = if w2 > 0.0 { w1 / w2 } else { 0.0 };
    let c1 = e["run_1_cores_seconds"].as_f64().unwrap_or(0.0);
    let c2 = e["run_2_cores_seconds"].as_f64().unwrap_or(0.0);
    let cores = if c2 > 0.0 {
        format!(
            " Full run pinned to 1 core {c1:.2}s, 2 cores {c2:.2}s ({:.2}x; medians of 3 alternating runs).",
            c1 / c2
        )
    } else {
        String::new()
    };
    let eb = &e["engine_bench"];
    let live = &e["live_latency"];
    let cluster = match (
        e["cluster_job_serial_seconds"].as_f64(),
        e["cluster_run_seconds"].as_f64(),
    ) {
        (Some(j), Some(r)) => format!(
            " Cluster job on one machine (plan, 3 maps and 2 reduces one after another, 252 gzip day files, 3M rows) {j:.2}s against `run` {r:.2}s: {:.0}% overhead.",
            100.0 * (j / r - 1.0)
        ),
        _ => String::new(),
    };
    format!(
        "\nEngine: overhead vs a plain loop {}% (realistic stage; median of 7 paired runs, range {}% to {}%); clean+features with 1 worker {w1:.2}s, 2 workers {w2:.2}s ({speedup:.2}x; decode threads use the second core either way);{cores} Live mode latency p50 {} ms, p99 {} ms.{cluster}\n",
        eb["overhead_pct"],
        eb["overhead_min_pct"],
        eb["overhead_max_pct"],
        live["p50_ms"],
        live["p99_ms"]
    )
}
