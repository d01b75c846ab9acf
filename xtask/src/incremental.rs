//! The incremental-run and cache figures of `cargo xtask bench`.
//!
//! * **Appends** on the demo layout (one gzip file per trading day, 5 symbols, five years):
//!   a finished dataset over every day but the last, then the last day added and the same
//!   command run again. The append is timed against that day alone in a new folder and a
//!   full run over all days, for a small day (the history's own last day) and a large one
//!   (1,000,000 rows). An unchanged re-run ("nothing to do") is timed too. Each time is a
//!   whole `tickpipe` process (start to exit), median of [`REPEATS`] ([`SMALL_REPEATS`] for
//!   the small day's append and the day alone).
//! * **A changed feature parameter** on the same history: the re-run that computes the
//!   feature columns again from the dataset, against a fresh run with the new configuration.
//! * **Cache tiers**: `pipeline_cache::run_bench` in release (memory-tier and disk-tier hit
//!   throughput, writes, large values, the Zipf hit rate), through the `cache_bench`
//!   example so it runs optimised whatever profile xtask was built in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::bench::median;

/// Runs per timed case; the median is reported, with the range.
const REPEATS: usize = 3;

/// Runs of the small day's append and of that day alone (alternated): each takes about
/// 0.1 s, and this machine's speed drifts by a fifth from one run to the next, so three
/// medians put the ratio anywhere from 1.85× to 2.13× for the same binary.
const SMALL_REPEATS: usize = 11;

/// Rows of the five-year history (the demo's default).
const HISTORY_ROWS: u64 = 500_000;

/// Rows of the large new day.
const LARGE_DAY_ROWS: u64 = 1_000_000;

/// The append and cache figures (see the module docs); `data` keeps generated inputs,
/// `scratch` the output folders.
pub fn figures(root: &Path, xtask: &Path, tickpipe: &Path, data: &Path) -> Result<Value> {
    let dir = data.join("incremental");
    let history = dir.join("history");
    if !history.exists() {
        eprintln!("== gen-data: five years of daily files ({HISTORY_ROWS} rows)");
        gen_days(
            xtask,
            &history,
            HISTORY_ROWS,
            &["--years", "5", "--start-date", "2019-01-02"],
        )?;
    }
    let large = dir.join("large");
    if !large.exists() {
        eprintln!("== gen-data: one day of {LARGE_DAY_ROWS} rows after the history");
        gen_days(
            xtask,
            &large,
            LARGE_DAY_ROWS,
            &["--days", "1", "--start-date", "2024-01-02"],
        )?;
    }
    let mut days = day_files(&history)?;
    let small_day = days.pop().context("gen-data wrote no day files")?;
    let large_day = day_files(&large)?
        .pop()
        .context("gen-data wrote no large day")?;
    let scratch = dir.join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;

    // The history without its last day, run once; every append starts from a copy of it.
    let inputs = scratch.join("inputs");
    std::fs::create_dir_all(&inputs)?;
    for d in &days {
        link_or_copy(d, &inputs.join(file_name(d)?))?;
    }
    // Let the links settle before the history's run (see the sleep before the appends): a
    // run records the `stat` of inputs changed more than 2 s before it, so that the next
    // run takes their fingerprints without opening them; without the wait every append
    // opened all 1,257 recorded files again (0.117 s against about 0.09 s for the append).
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let base = scratch.join("base");
    eprintln!("== incremental: the history ({} days)", days.len());
    let base_secs = run_timed(tickpipe, &inputs, &base)?;

    let feature_change = feature_change(tickpipe, &inputs, &base, &scratch)?;

    let mut cases = Vec::new();
    for (label, day) in [("small", &small_day), ("large", &large_day)] {
        let added = inputs.join(file_name(day)?);
        link_or_copy(day, &added)?;
        let alone_in = scratch.join(format!("alone_{label}"));
        std::fs::create_dir_all(&alone_in)?;
        link_or_copy(day, &alone_in.join(file_name(day)?))?;
        // Real inputs were written well before the run that reads them; links made just now
        // carry a fresh change time, and a run fingerprints files changed in the last 2 s
        // afresh each time it needs them (see `pipeline_io::Fingerprint::of`). Let them
        // settle, as a day's file has by the time it is appended.
        std::thread::sleep(std::time::Duration::from_millis(2_100));
        let (mut append, mut alone, mut full) = (Vec::new(), Vec::new(), Vec::new());
        eprintln!("== incremental: appending the {label} day");
        let repeats = if label == "small" {
            SMALL_REPEATS
        } else {
            REPEATS
        };
        for _ in 0..repeats {
            let out = scratch.join("append");
            let _ = std::fs::remove_dir_all(&out);
            copy_dir(&base, &out)?;
            append.push(run_timed(tickpipe, &inputs, &out)?);
            let out = scratch.join("alone");
            let _ = std::fs::remove_dir_all(&out);
            alone.push(run_timed(tickpipe, &alone_in, &out)?);
        }
        for _ in 0..REPEATS {
            let out = scratch.join("full");
            let _ = std::fs::remove_dir_all(&out);
            full.push(run_timed(tickpipe, &inputs, &out)?);
        }
        let ledger =
            |o: &str| -> Result<Value> { Ok(success(&scratch.join(o))?["ledger"].clone()) };
        if ledger("append")? != ledger("full")? {
            bail!("the {label} append's ledger differs from the full run's");
        }
        let unchanged = {
            let mut v = Vec::new();
            for _ in 0..REPEATS {
                v.push(run_timed(tickpipe, &inputs, &scratch.join("full"))?);
            }
            v
        };
        let rows = count_rows(day)?;
        cases.push(json!({
            "day": label,
            "recorded_days": days.len(),
            "day_rows": rows,
            "append_seconds": stats(&append),
            "alone_seconds": stats(&alone),
            "full_seconds": stats(&full),
            "unchanged_rerun_seconds": stats(&unchanged),
            "append_over_alone": median(&append) / median(&alone).max(1e-9),
        }));
        std::fs::remove_file(&added)?;
    }
    let _ = std::fs::remove_dir_all(&scratch);

    eprintln!("== cache tiers (pipeline-cache's cache_bench example, release)");
    let cache = cache_bench(root, &dir.join("cache-bench"))?;
    Ok(json!({
        "history_seconds": base_secs,
        "feature_change": feature_change,
        "appends": cases,
        "cache": cache,
    }))
}

/// The feature parameters [`feature_change`] changes (the columns change too).
const FEATURE_CHANGE: &str = "[preprocessing]\nindicators = [\"sma_30\", \"rsi_14\"]\nrolling_window = 7\nlag_periods = [2, 3]\n";

/// A changed feature parameter on the finished dataset `base` over `inputs`: the re-run
/// (feature columns computed again from the dataset) against a fresh run with the new
/// configuration, median of [`REPEATS`]; checks both write the same ledger and that the
/// re-run said what it did.
fn feature_change(tickpipe: &Path, inputs: &Path, base: &Path, scratch: &Path) -> Result<Value> {
    let cfg = scratch.join("features.toml");
    std::fs::write(&cfg, FEATURE_CHANGE)?;
    let args = [std::ffi::OsStr::new("--config"), cfg.as_os_str()];
    let (mut rerun, mut fresh) = (Vec::new(), Vec::new());
    eprintln!("== incremental: a changed feature parameter");
    let (out, reference) = (scratch.join("refeature"), scratch.join("refeature_fresh"));
    for _ in 0..REPEATS {
        let _ = std::fs::remove_dir_all(&out);
        copy_dir(base, &out)?;
        rerun.push(run_timed_with(tickpipe, inputs, &out, &args)?);
        let _ = std::fs::remove_dir_all(&reference);
        fresh.push(run_timed_with(tickpipe, inputs, &reference, &args)?);
    }
    let (a, b) = (success(&out)?, success(&reference)?);
    if a["ledger"] != b["ledger"] || !a["refeatured"].is_object() {
        bail!("the feature re-run did not recompute the features of the same rows: {a}");
    }
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&reference);
    Ok(json!({
        "rerun_seconds": stats(&rerun),
        "fresh_seconds": stats(&fresh),
        "files": a["refeatured"]["files"],
        "rows": a["refeatured"]["rows"],
        "speedup": median(&fresh) / median(&rerun).max(1e-9),
    }))
}

/// The markdown section of the figures.
pub fn markdown(v: &Value) -> String {
    let mut md = format!(
        "\n### Incremental runs (demo layout: daily gzip files, 5 symbols, 5 years; whole processes, median of {REPEATS} [range]; {SMALL_REPEATS} for the small day's append and the day alone)\n\n\
         | new day | rows | days in `OUT` | append s | same day alone s | append / alone | full run s | unchanged re-run s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let s = |x: &Value| {
        format!(
            "{:.3} [{:.3}–{:.3}]",
            x["median"].as_f64().unwrap_or(0.0),
            x["min"].as_f64().unwrap_or(0.0),
            x["max"].as_f64().unwrap_or(0.0)
        )
    };
    for c in v["appends"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2}× | {} | {} |\n",
            c["day"].as_str().unwrap_or(""),
            c["day_rows"],
            c["recorded_days"],
            s(&c["append_seconds"]),
            s(&c["alone_seconds"]),
            c["append_over_alone"].as_f64().unwrap_or(0.0),
            s(&c["full_seconds"]),
            s(&c["unchanged_rerun_seconds"]),
        ));
    }
    let f = &v["feature_change"];
    if f.is_object() {
        md.push_str(&format!(
            "\nA changed feature parameter (`indicators`, `rolling_window`, `lag_periods`) on the \
             same history: the feature columns of {} rows in {} files computed again from the \
             dataset in {} s, against {} s for a fresh run with the new configuration \
             ({:.1}× faster; the inputs are not read).\n",
            f["rows"],
            f["files"],
            s(&f["rerun_seconds"]),
            s(&f["fresh_seconds"]),
            f["speedup"].as_f64().unwrap_or(0.0),
        ));
    }
    let c = &v["cache"];
    if c.is_object() {
        let mbps = |x: &Value| x["mb_per_s"].as_f64().unwrap_or(0.0);
        md.push_str(&format!(
            "\n### Cache tiers (pipeline-cache, release; values of {:.1} MB of Arrow buffers, {:.1}× smaller on disk)\n\n\
             | memory-tier hits GB/s (no copy: the cached buffers are shared) | disk-tier hits MB/s | put MB/s | durable put MB/s | Zipf(s=1) hit rate |\n\
             |---:|---:|---:|---:|---:|\n\
             | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}% ({:.1}% memory, {:.1}% disk; working set {:.0} MB over a {:.0} MB memory tier) |\n",
            c["value_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            c["value_bytes"].as_f64().unwrap_or(0.0) / c["stored_bytes"].as_f64().unwrap_or(1.0).max(1.0),
            mbps(&c["memory_get"]) / 1e3,
            mbps(&c["disk_get"]),
            mbps(&c["put"]),
            mbps(&c["put_durable"]),
            c["zipf_hit_rate"].as_f64().unwrap_or(0.0) * 100.0,
            c["zipf_memory_hit_rate"].as_f64().unwrap_or(0.0) * 100.0,
            c["zipf_disk_hit_rate"].as_f64().unwrap_or(0.0) * 100.0,
            c["zipf_working_set_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            c["zipf_memory_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        ));
    }
    md
}

/// gen-data in the demo layout into `dir`.
fn gen_days(xtask: &Path, dir: &Path, rows: u64, extra: &[&str]) -> Result<()> {
    let rows = rows.to_string();
    let mut args = vec![
        "--layout",
        "per-day",
        "--compression",
        "gz",
        "--symbols",
        "5",
    ];
    args.extend(["--rows", &rows]);
    args.extend(extra);
    crate::bench::run_gen_data(xtask, &args, dir)
}

/// The day files of a gen-data folder, in name (= date) order.
fn day_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".csv.gz"))
        .collect();
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> Result<&std::ffi::OsStr> {
    p.file_name()
        .with_context(|| format!("{} has no file name", p.display()))
}

/// A hard link where the file system allows it (no bytes copied), else a copy. The
/// fingerprint includes the modification time, which both keep.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)?;
    }
    Ok(())
}

/// Copies a folder tree (an output folder: data, quarantine, manifest, cache).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// The run report a finished output folder holds (`_SUCCESS`).
fn success(out: &Path) -> Result<Value> {
    Ok(serde_json::from_str(&std::fs::read_to_string(
        out.join("_SUCCESS"),
    )?)?)
}

/// Wall seconds of one `tickpipe run inputs --out out -q`, process start to exit.
fn run_timed(tickpipe: &Path, inputs: &Path, out: &Path) -> Result<f64> {
    run_timed_with(tickpipe, inputs, out, &[])
}

/// [`run_timed`] with more arguments.
fn run_timed_with(
    tickpipe: &Path,
    inputs: &Path,
    out: &Path,
    extra: &[&std::ffi::OsStr],
) -> Result<f64> {
    let start = Instant::now();
    let o = Command::new(tickpipe)
        .arg("run")
        .arg(inputs)
        .arg("--out")
        .arg(out)
        .args(extra)
        .arg("-q")
        .output()
        .with_context(|| format!("running {}", tickpipe.display()))?;
    let secs = start.elapsed().as_secs_f64();
    if !o.status.success() {
        bail!(
            "tickpipe run {} --out {} failed: {}",
            inputs.display(),
            out.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(secs)
}

/// Data rows of a gzip day file (lines less the header).
fn count_rows(p: &Path) -> Result<u64> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("gzip -dc \"$0\" | wc -l")
        .arg(p)
        .output()?;
    let n: u64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Ok(n.saturating_sub(1))
}

fn stats(v: &[f64]) -> Value {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({"median": median(v), "min": min, "max": max, "runs": v})
}

/// pipeline-cache's bench as JSON, built and run in release.
fn cache_bench(root: &Path, dir: &Path) -> Result<Value> {
    let o = crate::bench::example_command(root, "pipeline-cache", "cache_bench")
        .arg("--")
        .arg(dir)
        .arg("--json")
        .output()?;
    if !o.status.success() {
        bail!("the cache bench failed");
    }
    let _ = std::fs::remove_dir_all(dir);
    serde_json::from_slice(&o.stdout).context("the cache bench's output is not JSON")
}
