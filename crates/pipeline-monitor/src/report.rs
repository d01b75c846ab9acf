//! `report.html`: one self-contained page per run (inline CSS and SVG; nothing is fetched)
//! with the ledger as a funnel, throughput, memory and CPU over time, where the time went,
//! the alerts, and the data-quality section the caller hands in.

use std::fmt::Write as _;

use pipeline_core::Ledger;

use crate::sample::Sample;
use crate::summary::PerformanceSummary;

/// What the report shows besides the monitor's own figures; the facade fills it after the
/// run (see [`crate::Monitor::finish`]).
#[derive(Debug, Clone, Default)]
pub struct RunReportInputs {
    /// A line saying what ran, e.g. `tickpipe run data/*.csv.gz --out out/`.
    pub title: String,
    /// Where every row went (the engine's final, balanced ledger).
    pub ledger: Ledger,
    /// Wall-clock time of the whole run, in seconds (0: the monitor's own clock).
    pub wall_seconds: f64,
    /// Input bytes consumed (0: the engine's live count).
    pub bytes_read: u64,
    /// Peak resident memory of the process in bytes (`VmHWM`; 0: the samples' maximum).
    pub peak_rss_bytes: u64,
    /// Input files completed.
    pub files_ok: usize,
    /// Input files that failed after all retries, with their errors.
    pub files_failed: Vec<(String, String)>,
    /// The data-quality section as an HTML fragment (pipeline-validate's report), inserted
    /// as it is: it must be trusted, self-contained HTML. `None`: validation did not run.
    pub quality_html: Option<String>,
    /// Why the run failed, when it did.
    pub error: Option<String>,
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// A count with a unit prefix: `12.3 M`, `4.5 K`, `999`.
fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1} G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1} M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0} K", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1} K", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn mib(b: f64) -> String {
    let m = b / (1u64 << 20) as f64;
    if m >= 100.0 {
        format!("{m:.0} MiB")
    } else {
        format!("{m:.1} MiB")
    }
}

/// Seconds as `45.2 s`, `12 min 5 s` or `2 h 3 min`.
fn duration(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{} h {} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// A share as a percentage, HTML-safe (`&lt;0.1%` for tiny shares).
fn pct(x: f64) -> String {
    if x > 0.0 && x < 0.001 {
        "&lt;0.1%".to_string()
    } else {
        format!("{:.1}%", x * 100.0)
    }
}

/// An axis of `ticks` equal steps reaching at least `x`: the step is 1, 1.5, 2, 2.5, 3, 4,
/// 5, 6 or 8 times a power of ten, so every tick label is a round number. Returns the top.
fn axis_top(x: f64, ticks: u32) -> f64 {
    let ticks = f64::from(ticks.max(1));
    if x <= 0.0 || !x.is_finite() {
        return ticks;
    }
    let raw = x / ticks;
    let p = 10f64.powf(raw.log10().floor());
    for m in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * p >= raw * (1.0 - 1e-9) {
            return m * p * ticks;
        }
    }
    10.0 * p * ticks
}

/// A tick value with at most two decimals and no trailing zeros.
fn tick(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Series colours: blue, orange, green, red, purple, brown, pink, grey (Tableau 10, which
/// stays distinguishable for the common colour-vision deficiencies).
const PALETTE: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#9c755f", "#ff9da7", "#bab0ac",
];

struct Series<'a> {
    label: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

/// A horizontal reference line: value, label, colour.
struct HLine<'a>(f64, &'a str, &'a str);

const CHART_W: f64 = 1080.0;
const CHART_H: f64 = 220.0;

/// An SVG line chart of `series` over time (x in seconds).
fn line_chart(
    series: &[Series<'_>],
    y_fmt: &dyn Fn(f64) -> String,
    hlines: &[HLine<'_>],
) -> String {
    let (l, r, t, b) = (70.0, 16.0, 26.0, 30.0);
    let (w, h) = (CHART_W - l - r, CHART_H - t - b);
    let pts = series.iter().flat_map(|s| s.points.iter());
    let x_max = pts.clone().map(|p| p.0).fold(0.0, f64::max);
    if series.iter().all(|s| s.points.len() < 2) || x_max <= 0.0 {
        return "<p class=\"muted\">Not enough samples to draw: the run was shorter than the sampling interval.</p>".into();
    }
    let data_top = pts.map(|p| p.1).fold(0.0, f64::max);
    // A reference line far above the data (a 1 GiB limit over a 30 MiB run) would flatten
    // the data into the axis: such lines are named in a note instead of drawn.
    let (drawn, above): (Vec<&HLine<'_>>, Vec<&HLine<'_>>) = hlines
        .iter()
        .partition(|h| h.0 <= (data_top * 1.5).max(f64::MIN_POSITIVE));
    let y_top = drawn.iter().map(|h| h.0).fold(data_top, f64::max);
    let y_max = axis_top(y_top * 1.02, 4);
    let x_max = axis_top(x_max, 5);
    let x = |v: f64| l + v / x_max * w;
    let y = |v: f64| t + h - v / y_max * h;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg class=\"chart\" viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\">"
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{l}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            l + w,
            y(v),
            y(v),
            l - 6.0,
            y(v) + 4.0,
            esc(&y_fmt(v))
        );
    }
    for i in 0..=5 {
        let v = x_max * f64::from(i) / 5.0;
        let label = if x_max >= 600.0 {
            format!("{}:{:02}", (v / 60.0) as u64, (v % 60.0) as u64)
        } else {
            format!("{} s", tick(v))
        };
        // The last label ends at the axis' end instead of overflowing the picture.
        let anchor = if i == 5 { "end" } else { "middle" };
        let _ = write!(
            o,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x(v),
            t + h + 18.0,
            esc(&label)
        );
    }
    let _ = write!(
        o,
        "<line class=\"axis\" x1=\"{l}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        l + w,
        t + h,
        t + h
    );
    for hl in &above {
        let _ = write!(
            o,
            "<text class=\"tick\" x=\"{:.1}\" y=\"16\" text-anchor=\"end\" fill=\"{}\">{} {} is above the chart</text>",
            l + w,
            hl.2,
            esc(hl.1),
            esc(&y_fmt(hl.0))
        );
    }
    for hl in &drawn {
        let _ = write!(
            o,
            "<line x1=\"{l}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-dasharray=\"6 4\" stroke-width=\"1.5\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{}\">{}</text>",
            l + w,
            y(hl.0),
            y(hl.0),
            hl.2,
            l + w - 4.0,
            y(hl.0) - 5.0,
            hl.2,
            esc(hl.1)
        );
    }
    let mut lx = l;
    for s in series {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        let _ = write!(
            o,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\" points=\"{}\"/>",
            s.color,
            path.join(" ")
        );
        let _ = write!(
            o,
            "<rect x=\"{lx:.1}\" y=\"6\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/><text class=\"legend\" x=\"{:.1}\" y=\"16\">{}</text>",
            s.color,
            lx + 16.0,
            esc(s.label)
        );
        lx += 24.0 + 7.5 * s.label.chars().count() as f64;
    }
    o.push_str("</svg>");
    o
}

/// The ledger as a funnel: read, each quarantine reason, each removal rule, written; bars
/// centred and proportional to rows (tiny counts get a visible sliver).
fn funnel(ledger: &Ledger) -> String {
    let mut rows: Vec<(String, u64, &str)> = vec![("read".into(), ledger.read, PALETTE[0])];
    for (reason, n) in &ledger.quarantined {
        rows.push((format!("quarantined: {reason}"), *n, PALETTE[3]));
    }
    for (rule, n) in &ledger.removed {
        rows.push((format!("removed by {rule}"), *n, PALETTE[1]));
    }
    rows.push(("written".into(), ledger.written, PALETTE[2]));
    let (label_w, value_w, bar_h, gap) = (240.0, 200.0, 22.0, 8.0);
    let area = CHART_W - label_w - value_w;
    let height = rows.len() as f64 * (bar_h + gap) + gap;
    let read = ledger.read.max(1) as f64;
    let mut o = format!("<svg class=\"chart\" viewBox=\"0 0 {CHART_W} {height:.0}\" role=\"img\">");
    for (i, (label, n, color)) in rows.iter().enumerate() {
        let yy = gap + i as f64 * (bar_h + gap);
        let bw = if *n == 0 {
            0.0
        } else {
            (*n as f64 / read * area).max(3.0)
        };
        let x0 = label_w + (area - bw) / 2.0;
        let _ = write!(
            o,
            "<text class=\"flabel\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{x0:.1}\" y=\"{yy:.1}\" width=\"{bw:.1}\" height=\"{bar_h}\" rx=\"3\" fill=\"{color}\"/><text class=\"fvalue\" x=\"{:.1}\" y=\"{:.1}\">{} ({})</text>",
            label_w - 10.0,
            yy + 15.5,
            esc(label),
            label_w + area + 10.0,
            yy + 15.5,
            thousands(*n),
            pct(*n as f64 / read)
        );
    }
    o.push_str("</svg>");
    o
}

/// A stacked bar of `(label, seconds)` parts with a legend.
fn stacked(parts: &[(String, f64, &str)]) -> String {
    let total: f64 = parts.iter().map(|p| p.1).sum();
    if total <= 0.0 {
        return "<p class=\"muted\">No time recorded.</p>".into();
    }
    let mut o = String::from("<div class=\"stack\">");
    for (label, s, color) in parts {
        let share = s / total;
        if share <= 0.0 {
            continue;
        }
        let _ = write!(
            o,
            "<div class=\"seg\" style=\"width:{:.3}%;background:{color}\" title=\"{}: {:.2} s ({})\"></div>",
            share * 100.0,
            esc(label),
            s,
            pct(share)
        );
    }
    o.push_str("</div><div class=\"legend-row\">");
    for (label, s, color) in parts {
        let _ = write!(
            o,
            "<span><i style=\"background:{color}\"></i>{} {} ({})</span>",
            esc(label),
            duration(*s),
            pct(s / total)
        );
    }
    o.push_str("</div>");
    o
}

const CSS: &str = r#"
:root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--accent:#4e79a7;--bad:#c0392b}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg)}
header,section,footer{max-width:1140px;margin:0 auto;padding:0 20px}
header{padding-top:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 12px}
.sub,.muted{color:var(--muted)}
.sub{margin:0 0 16px;word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px;margin-bottom:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.card span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.bad b{color:var(--bad)}
.headline{background:var(--card);border-left:4px solid var(--accent);padding:8px 12px;margin:0 0 8px}
.error{background:#fdecea;border-left:4px solid var(--bad);padding:8px 12px}
section{margin-top:18px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 18px}
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:var(--line);stroke-width:1}
svg .axis{stroke:#9aa5b1;stroke-width:1}
svg text{font-family:inherit}
svg .tick{font-size:12px;fill:var(--muted)}
svg .legend{font-size:12px;fill:var(--fg)}
svg .flabel{font-size:13px;fill:var(--fg)}
svg .fvalue{font-size:13px;fill:var(--fg);font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;margin-top:10px;font-variant-numeric:tabular-nums}
th,td{text-align:right;padding:5px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{font-size:12px;color:var(--muted);font-weight:600}
td.msg{text-align:left;white-space:normal}
table.text th,table.text td{text-align:left}
tr.hot td{background:#fff4e5}
.tpv th,.tpv td{text-align:left;white-space:normal}
.tpv th.n,.tpv td.n{text-align:right;white-space:nowrap}
#quality .panel{overflow-x:auto}
.stack{display:flex;height:26px;border-radius:4px;overflow:hidden;background:var(--line);margin:6px 0}
.seg{height:100%}
.legend-row{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted)}
.legend-row i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.side{font-weight:600;margin-top:10px}
.mini{display:flex;height:12px;width:220px;border-radius:3px;overflow:hidden;background:var(--line)}
.mini div{height:100%}
.eq{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px;margin-top:8px}
.callout{background:#eef4fb;border-radius:6px;padding:8px 12px;margin:10px 0}
footer{color:var(--muted);font-size:12px;padding:24px 20px 40px}
"#;

/// Renders the page; `samples` are the history's overview (oldest first).
pub fn render_report(
    inputs: &RunReportInputs,
    perf: &PerformanceSummary,
    samples: &[Sample],
) -> String {
    let l = &inputs.ledger;
    let mut o = String::with_capacity(64 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/><title>tickpipe run report</title><style>");
    o.push_str(CSS);
    o.push_str("</style></head><body>");

    // Header: what ran and the headline figures.
    let _ = write!(
        o,
        "<header><h1>tickpipe run report</h1><p class=\"sub\">{}</p>",
        esc(if inputs.title.is_empty() {
            "tickpipe run"
        } else {
            &inputs.title
        })
    );
    if let Some(e) = &inputs.error {
        let _ = write!(
            o,
            "<p class=\"error\"><b>The run failed:</b> {}</p>",
            esc(e)
        );
    }
    let card = |o: &mut String, label: &str, value: String, bad: bool| {
        let _ = write!(
            o,
            "<div class=\"card{}\"><span>{}</span><b>{}</b></div>",
            if bad { " bad" } else { "" },
            esc(label),
            esc(&value)
        );
    };
    o.push_str("<div class=\"cards\">");
    card(&mut o, "rows read", thousands(l.read), false);
    card(&mut o, "rows written", thousands(l.written), false);
    card(
        &mut o,
        "quarantined",
        thousands(l.quarantined_total()),
        false,
    );
    card(
        &mut o,
        "removed by rules",
        thousands(l.removed_total()),
        false,
    );
    card(&mut o, "wall time", duration(perf.wall_seconds), false);
    card(
        &mut o,
        "throughput",
        format!("{} rows/s", si(perf.throughput.rows_per_second)),
        false,
    );
    card(
        &mut o,
        "peak RSS",
        mib(perf.memory.max_bytes as f64),
        perf.memory.limit_bytes > 0 && perf.memory.max_percent > 100.0,
    );
    card(
        &mut o,
        "CPU avg / max",
        format!(
            "{:.0}% / {:.0}%",
            perf.cpu.process_pct.avg, perf.cpu.process_pct.max
        ),
        false,
    );
    card(
        &mut o,
        "alerts",
        perf.alerts.len().to_string(),
        !perf.alerts.is_empty(),
    );
    if !inputs.files_failed.is_empty() {
        card(
            &mut o,
            "files failed",
            inputs.files_failed.len().to_string(),
            true,
        );
    }
    o.push_str("</div>");
    let _ = write!(
        o,
        "<p class=\"headline\">{}</p></header>",
        esc(&perf.headline())
    );

    // The ledger funnel.
    o.push_str("<section id=\"ledger\"><div class=\"panel\"><h2>Where the rows went</h2>");
    o.push_str(&funnel(l));
    let balanced = l.check_balance().is_ok();
    let _ = write!(
        o,
        "<p class=\"eq\">{}{}</p>",
        esc(&l.equation()),
        if balanced {
            " ✓"
        } else {
            " — does not balance"
        }
    );
    if !l.repaired.is_empty() {
        o.push_str("<p class=\"muted\">Values repaired in place (rows still written): ");
        let parts: Vec<String> = l
            .repaired
            .iter()
            .map(|(k, v)| format!("{} {}", esc(k), thousands(*v)))
            .collect();
        o.push_str(&parts.join(", "));
        o.push_str("</p>");
    }
    if !inputs.files_failed.is_empty() {
        o.push_str("<table><tr><th>failed file</th><th>error</th></tr>");
        for (f, e) in &inputs.files_failed {
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"msg\">{}</td></tr>",
                esc(f),
                esc(e)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</div></section>");

    // Throughput over time.
    let series = |f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        samples.iter().map(|s| (s.t, f(s))).collect()
    };
    // Rates over a partial interval (the last tick at `finish`) are noise: left out.
    let full = |s: &Sample| crate::summary::full_interval(s.dt, perf.interval_seconds);
    let rate_series = |f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter(|s| full(s))
            .map(|s| (s.t, f(s)))
            .collect()
    };
    o.push_str("<section id=\"throughput\"><div class=\"panel\"><h2>Throughput</h2>");
    let _ = write!(
        o,
        "<p class=\"muted\">Rows read per second, per sampling interval ({} s). Run average {} rows/s, peak {} rows/s, {:.1} MB/s of input.</p>",
        perf.interval_seconds,
        si(perf.throughput.rows_per_second),
        si(perf.throughput.peak_rows_per_second),
        perf.throughput.mb_per_second
    );
    o.push_str(&line_chart(
        &[Series {
            label: "rows/s",
            color: PALETTE[0],
            points: rate_series(&|s| s.rows_per_second),
        }],
        &|v| si(v),
        &[],
    ));
    o.push_str("</div></section>");

    // Memory and CPU over time.
    o.push_str("<section id=\"resources\"><div class=\"panel\"><h2>Memory and CPU</h2>");
    let m = &perf.memory;
    let _ = write!(
        o,
        "<p class=\"muted\">Resident memory averaged {} and peaked at {}{}. Process CPU averaged {:.0}% and peaked at {:.0}% of one core; the whole system averaged {:.0}% of all cores. Disk: {} read, {} written; at most {} open files. The monitor's own sampling took {:.1} ms, {:.3}% of the run.</p>",
        mib(m.avg_bytes),
        mib(m.max_bytes as f64),
        if m.limit_bytes > 0 {
            format!(
                " ({:.0}% of the {} limit)",
                m.max_percent,
                mib(m.limit_bytes as f64)
            )
        } else {
            String::new()
        },
        perf.cpu.process_pct.avg,
        perf.cpu.process_pct.max,
        perf.cpu.system_pct.avg,
        mib(perf.disk_read_bytes as f64),
        mib(perf.disk_written_bytes as f64),
        perf.open_files_max,
        perf.monitor_seconds * 1e3,
        perf.monitor_overhead_pct
    );
    let mut hl = Vec::new();
    let limit_mib = m.limit_bytes as f64 / (1u64 << 20) as f64;
    if m.limit_bytes > 0 {
        hl.push(HLine(limit_mib, "memory limit", PALETTE[3]));
    }
    o.push_str(&line_chart(
        &[Series {
            label: "RSS (MiB)",
            color: PALETTE[4],
            points: series(&|s| s.resources.rss_bytes as f64 / (1u64 << 20) as f64),
        }],
        &|v| format!("{} MiB", tick(v)),
        &hl,
    ));
    o.push_str(&line_chart(
        &[
            Series {
                label: "process CPU (% of one core)",
                color: PALETTE[1],
                points: rate_series(&|s| s.resources.cpu_pct),
            },
            Series {
                label: "system CPU (% of all cores)",
                color: PALETTE[7],
                points: rate_series(&|s| s.resources.system_cpu_pct),
            },
        ],
        &|v| format!("{}%", tick(v)),
        &[],
    ));
    o.push_str("</div></section>");

    // Where the time went.
    o.push_str("<section id=\"stages\"><div class=\"panel\"><h2>Where the time went</h2>");
    if let Some(b) = &perf.bottleneck {
        let _ = write!(
            o,
            "<p class=\"callout\"><b>Bottleneck: {}.</b> {}.</p>",
            esc(&b.stage),
            esc(&b.reason)
        );
    }
    for (side, title) in [("readers", "Reader threads"), ("workers", "Worker threads")] {
        let parts: Vec<(String, f64, &str)> = perf
            .time_breakdown
            .iter()
            .filter(|t| t.side == side)
            .enumerate()
            .map(|(i, t)| {
                let color = match t.what.as_str() {
                    "waiting for input" | "blocked on full queues" => PALETTE[7],
                    "write" => PALETTE[5],
                    "read" => PALETTE[0],
                    _ => PALETTE[(i % 5) + 1],
                };
                (t.what.clone(), t.seconds, color)
            })
            .collect();
        if parts.is_empty() {
            continue;
        }
        let _ = write!(o, "<div class=\"side\">{title}</div>");
        o.push_str(&stacked(&parts));
    }
    if perf.stages.is_empty() {
        o.push_str("<p class=\"muted\">The engine reported no stage metrics.</p>");
    } else {
        o.push_str("<table><tr><th>stage</th><th>rows in</th><th>rows out</th><th>busy</th><th>share of work</th><th>rows/s busy</th><th>chunk p50</th><th>p99</th><th>max</th></tr>");
        let row = |o: &mut String,
                   name: &str,
                   rin: String,
                   rout: String,
                   busy: f64,
                   share: String,
                   rps: String,
                   lat: &crate::summary::LatencyMs| {
            let hot = perf.bottleneck.as_ref().is_some_and(|b| b.stage == name);
            let _ = write!(
                o,
                "<tr{}><td>{}</td><td>{rin}</td><td>{rout}</td><td>{}</td><td>{share}</td><td>{rps}</td><td>{:.2} ms</td><td>{:.2} ms</td><td>{:.2} ms</td></tr>",
                if hot { " class=\"hot\"" } else { "" },
                esc(name),
                duration(busy),
                lat.p50,
                lat.p99,
                lat.max
            );
        };
        let read_s: f64 = perf.readers.iter().map(|r| r.read_seconds).sum();
        let read_rows: u64 = perf.readers.iter().map(|r| r.rows).sum();
        row(
            &mut o,
            "read",
            thousands(read_rows),
            "".into(),
            read_s,
            "".into(),
            si(if read_s > 0.0 {
                read_rows as f64 / read_s
            } else {
                0.0
            }),
            &perf.read_latency_ms,
        );
        for s in &perf.stages {
            row(
                &mut o,
                &s.name,
                thousands(s.rows_in),
                thousands(s.rows_out),
                s.busy_seconds,
                pct(s.share),
                si(s.rows_per_second),
                &s.latency_ms,
            );
        }
        o.push_str("</table>");
        let _ = write!(
            o,
            "<p class=\"muted\">Busy times add up over threads. Chunk latency is the time one chunk spends in the stage; the read row is the time to read and decode one chunk.</p>"
        );
    }
    if !perf.workers.is_empty() {
        let _ = write!(
            o,
            "<table><tr><th>worker</th><th>rows</th><th>stages</th><th>write</th><th>waiting</th><th>time split</th><th>queue backpressure</th><th>delivery p50</th><th>p99</th></tr>"
        );
        for w in &perf.workers {
            let total = (w.busy_seconds + w.write_seconds + w.wait_seconds).max(1e-12);
            let _ = write!(
                o,
                "<tr><td>worker {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><div class=\"mini\"><div style=\"width:{:.2}%;background:{}\"></div><div style=\"width:{:.2}%;background:{}\"></div></div></td><td>{}</td><td>{:.2} ms</td><td>{:.2} ms</td></tr>",
                w.worker,
                thousands(w.rows),
                duration(w.busy_seconds),
                duration(w.write_seconds),
                duration(w.wait_seconds),
                w.busy_seconds / total * 100.0,
                PALETTE[1],
                w.write_seconds / total * 100.0,
                PALETTE[5],
                duration(w.backpressure_seconds),
                w.latency_ms.p50,
                w.latency_ms.p99
            );
        }
        o.push_str("</table>");
        let _ = write!(
            o,
            "<p class=\"muted\">Rows per worker: the largest is {:.2}× the mean (1.00 is an even spread). Time split: stages, then writing; the grey rest is waiting for input.</p>",
            perf.worker_imbalance
        );
    }
    if perf.readers.iter().any(|r| r.sources > 0) {
        o.push_str("<table><tr><th>reader slot</th><th>sources</th><th>rows</th><th>input</th><th>reading</th><th>blocked on full queues</th></tr>");
        for r in perf.readers.iter().filter(|r| r.sources > 0) {
            let _ = write!(
                o,
                "<tr><td>reader {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.reader,
                r.sources,
                thousands(r.rows),
                mib(r.bytes as f64),
                duration(r.read_seconds),
                duration(r.blocked_seconds)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</div></section>");

    // Alerts.
    o.push_str("<section id=\"alerts\"><div class=\"panel\"><h2>Alerts</h2>");
    if perf.alerts.is_empty() {
        o.push_str("<p class=\"muted\">No alerts: memory, throughput, queues, quarantine rate and worker balance stayed within their thresholds ([monitor] in the config).</p>");
    } else {
        o.push_str(
            "<table class=\"text\"><tr><th>at</th><th>kind</th><th>about</th><th>message</th></tr>",
        );
        for a in &perf.alerts {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"msg\">{}</td></tr>",
                duration(a.at_seconds),
                a.kind.name(),
                esc(if a.subject.is_empty() {
                    "run"
                } else {
                    &a.subject
                }),
                esc(&a.message)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</div></section>");

    // Data quality, from the caller.
    // The quality fragment brings its own heading.
    o.push_str("<section id=\"quality\"><div class=\"panel\">");
    match &inputs.quality_html {
        Some(html) => o.push_str(html),
        None => o.push_str(
            "<h2>Data quality</h2><p class=\"muted\">Validation did not run for this run.</p>",
        ),
    }
    o.push_str("</div></section>");

    let _ = writeln!(
        o,
        "<footer>Generated by tickpipe's monitor from {} samples at a {} s interval; the full history is in metrics.jsonl and the last figures in metrics.prom beside this file.</footer></body></html>",
        perf.samples, perf.interval_seconds
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(123), "123");
        assert_eq!(si(2_500_000.0), "2.5 M");
        assert_eq!(si(45_000.0), "45 K");
        assert_eq!(si(0.0), "0");
        assert_eq!(duration(3725.0), "1 h 2 min");
        assert_eq!(duration(125.0), "2 min 5 s");
        assert_eq!(pct(0.00001), "&lt;0.1%");
        assert_eq!(axis_top(0.0, 4), 4.0);
        assert_eq!(axis_top(230.0, 4), 240.0);
        assert_eq!(axis_top(1000.0, 4), 1000.0);
        assert_eq!(axis_top(3.1e6, 4), 3.2e6);
        assert!((axis_top(0.6, 5) - 0.75).abs() < 1e-12);
        assert_eq!(tick(0.15), "0.15");
        assert_eq!(tick(2.0), "2");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
