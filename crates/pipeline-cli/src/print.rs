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

/// Lines to print after the error message of a failed command (what it committed).
static AFTER_ERROR: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Queues `line` to be printed after the command's error message.
pub fn after_error(line: String) {
    if let Ok(mut v) = AFTER_ERROR.lock() {
        v.push(line);
    }
}

/// Takes the lines queued by [`after_error`].
pub fn take_after_error() -> Vec<String> {
    AFTER_ERROR
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

/// After a run into `out` failed or was interrupted with `error`: queues a summary of what
/// it committed (from the folder's manifest) for after the error message, and writes the
/// failure to `--summary-json` (`"succeeded": false`, the error, the exit code and the
/// committed figures) so a script sees it too.
pub fn failed_run(
    out: Option<&Path>,
    error: &str,
    exit_code: u8,
    summary_json: Option<&Path>,
) -> anyhow::Result<()> {
    let committed = out
        .and_then(|o| tickpipe::output_status(o).ok().flatten())
        .and_then(|s| s.committed);
    if let (Some(c), Some(out)) = (&committed, out) {
        let l = &c.ledger;
        let out_so_far = l.written + l.quarantined_total() + l.removed_total();
        let held = (l.read + l.added_total()).saturating_sub(out_so_far);
        after_error(format!(
            "  committed before it stopped: {} segment(s), {} input(s) done{}; ledger so far: {}{}",
            c.segments,
            c.inputs_completed,
            if c.inputs_failed > 0 {
                format!(", {} failed", c.inputs_failed)
            } else {
                String::new()
            },
            l.equation(),
            if held > 0 {
                format!(" (+ {held} rows held in stage windows, written by the resume)")
            } else {
                String::new()
            }
        ));
        after_error(format!(
            "  {} keeps them: run the same command with --resume to continue from there",
            out.display()
        ));
    }
    if let Some(path) = summary_json {
        let v = serde_json::json!({
            "succeeded": false,
            "error": error,
            "exit_code": exit_code,
            "output": out,
            "committed": committed,
        });
        let text = serde_json::to_string_pretty(&v)?;
        if path == Path::new("-") {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n")
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}
