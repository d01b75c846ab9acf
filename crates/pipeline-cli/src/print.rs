//! Printing a run report for people (stderr) and for scripts (`--summary-json`).

use std::io::Write;
use std::path::Path;

use tickpipe::RunReport;

/// Prints the human summary to stderr.
pub fn print_human(r: &RunReport) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "{}: {} rows in {:.2}s ({:.2} M rows/s, {:.1} MB/s), peak RSS {:.0} MiB",
        r.command,
        r.rows_read,
        r.wall_seconds,
        r.rows_per_second / 1e6,
        r.mb_per_second,
        r.peak_rss_bytes as f64 / (1 << 20) as f64
    );
    let _ = writeln!(e, "  ledger: {}", r.ledger);
    for (rule, n) in &r.rows_removed {
        let _ = writeln!(e, "    removed by {rule}: {n}");
    }
    for (reason, n) in &r.quarantined_by_reason {
        let _ = writeln!(e, "    quarantined ({reason}): {n}");
    }
    for (rule, n) in &r.rows_added {
        let _ = writeln!(e, "    added by {rule}: {n}");
    }
    for (rule, n) in &r.values_repaired {
        let _ = writeln!(e, "    repaired by {rule}: {n} values");
    }
    if let Some(t) = &r.taq {
        let n = |k: &str| t[k].as_u64().unwrap_or(0);
        let matches = t["matches"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let _ = writeln!(
            e,
            "  trades and quotes: {} trades against {} quotes ({} applied, {} crossed on their \
             own exchange); trades by quote: {matches}; {} symbol-days in {}",
            n("trades_read"),
            n("quotes_read"),
            n("quotes_applied"),
            n("quotes_crossed_exchange"),
            n("days"),
            tickpipe::TAQ_DAILY_FILE,
        );
    }
    if let Some(b) = r.bars_written {
        let _ = writeln!(e, "  bars written: {b}");
    }
    let _ = writeln!(
        e,
        "  files: {} ok, {} failed; {} output files",
        r.files_ok,
        r.files_failed.len(),
        r.outputs.len()
    );
    for f in &r.files_failed {
        let _ = writeln!(e, "    FAILED {}: {}", f.file, f.error);
    }
    if let Some(v) = &r.validation {
        let s = &v["summary"];
        let _ = writeln!(
            e,
            "  quality: {} ({} rows checked, {} findings)",
            s["verdict"].as_str().unwrap_or("?"),
            s["rows_checked"],
            s["total_results"]
        );
    }
    if let Some(h) = &r.performance_headline {
        let _ = writeln!(e, "  performance: {h}");
    }
    for p in &r.reports {
        let _ = writeln!(e, "  report: {}", p.display());
    }
}

/// Writes the JSON summary to `path` (`-` for stdout).
pub fn write_json(r: &RunReport, path: &Path) -> anyhow::Result<()> {
    if path == Path::new("-") {
        println!("{}", r.to_json()?);
    } else {
        r.write_json(path)?;
    }
    Ok(())
}
