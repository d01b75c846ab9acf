//! The HTML report: one self-contained page (inline CSS and SVG, nothing fetched), and the
//! same quality section as a fragment with a style scoped to `.tpv` for the run report.
//!
//! The markup is also well-formed XML (void elements closed, only the five XML entities), so
//! any XML parser can check it. Written by hand rather than with a template engine: the page
//! is a few tables and four charts, and the crate keeps its dependencies to Arrow and serde.

use std::fmt::Write;

use crate::model::Histogram;
use crate::report::{DayStat, Status, ValidationReport, Verdict};
use crate::rules::Severity;
use crate::stage::fmt_num;

/// Escapes text for HTML/XML content and attributes.
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

/// A count with thousands separators.
fn count(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

fn pct(x: f64) -> String {
    if x == 0.0 {
        "0%".into()
    } else if x < 0.0001 {
        format!("{:.4}%", x * 100.0)
    } else {
        format!("{:.2}%", x * 100.0)
    }
}

const STYLE: &str = r#"
.tpv{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;line-height:1.4;font-size:14px;max-width:1200px;margin:0 auto;padding:8px 16px}
.tpv h2{font-size:22px;margin:8px 0 4px}
.tpv h3{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.tpv h4{font-size:14px;margin:16px 0 4px}
.tpv .verdict{display:flex;align-items:center;gap:18px;padding:14px 18px;border-radius:8px;margin:8px 0 12px}
.tpv .verdict .badge{font-size:28px;font-weight:700;letter-spacing:.06em;padding:6px 18px;border-radius:6px;color:#fff}
.tpv .v-pass{background:#e8f6ec}.tpv .v-pass .badge{background:#1e8e3e}
.tpv .v-warn{background:#fff5e0}.tpv .v-warn .badge{background:#c77700}
.tpv .v-fail{background:#fde8e8}.tpv .v-fail .badge{background:#c5221f}
.tpv .why{margin:0;padding-left:18px}
.tpv .cards{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0}
.tpv .card{border:1px solid #dde2ea;border-radius:6px;padding:8px 12px;min-width:120px;background:#fafbfc}
.tpv .card b{display:block;font-size:20px}
.tpv .card span{color:#5f6b7a;font-size:12px}
.tpv table{border-collapse:collapse;width:100%;margin:4px 0 8px;font-size:13px}
.tpv th{background:#f1f3f6;text-align:left;font-weight:600;position:sticky;top:0}
.tpv th,.tpv td{border-bottom:1px solid #e6e9ef;padding:4px 8px;vertical-align:top}
.tpv td.n,.tpv th.n{text-align:right;font-variant-numeric:tabular-nums}
.tpv tr.fail td{background:#fff1f0}
.tpv tr.warnrow td{background:#fffaf0}
.tpv .st{font-weight:700;font-size:12px;padding:1px 6px;border-radius:4px;color:#fff;white-space:nowrap}
.tpv .st-pass{background:#1e8e3e}.tpv .st-fail{background:#c5221f}.tpv .st-warnfail{background:#c77700}
.tpv .st-na{background:#8d96a3}.tpv .st-info{background:#3b6fd6}
.tpv .sev{font-size:12px;color:#5f6b7a}
.tpv .src{color:#5f6b7a;font-size:12px}
.tpv code,.tpv .mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:12px}
.tpv .charts{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.tpv .chart{border:1px solid #dde2ea;border-radius:6px;padding:6px 8px;background:#fff}
.tpv .chart.wide{grid-column:1 / span 2}
.tpv .chart h4{margin:2px 0 2px}
.tpv .chart p{margin:0 0 4px;color:#5f6b7a;font-size:12px}
.tpv svg{width:100%;height:auto;display:block}
.tpv svg text{font-size:11px;fill:#4a5565}
.tpv .off{color:#5f6b7a;font-size:12px}
.tpv .muted{color:#5f6b7a}
.tpv .nw{white-space:nowrap}
.tpv details{margin:4px 0}
.tpv summary{cursor:pointer;font-weight:600}
"#;

/// The self-contained page.
pub(crate) fn page(r: &ValidationReport) -> String {
    page_with(r, &fragment(r))
}

/// The page around a fragment already made of `r` ([`fragment`]).
pub(crate) fn page_with(r: &ValidationReport, fragment: &str) -> String {
    let mut o = String::with_capacity(64 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>");
    let _ = write!(
        o,
        "<title>Data quality: {}</title></head><body style=\"margin:0;background:#fff\">",
        r.verdict.name().to_uppercase()
    );
    o.push_str(fragment);
    o.push_str("</body></html>\n");
    o
}

/// The quality section with its scoped style.
pub(crate) fn fragment(r: &ValidationReport) -> String {
    fragment_with_tail(r, &fragment_tail(r))
}

/// The quality section, with `tail` ([`fragment_tail`] of `r`) made already: only the
/// verdict and its cards, which show the run's ledger, are made here.
pub(crate) fn fragment_with_tail(r: &ValidationReport, tail: &str) -> String {
    let mut o = String::with_capacity(STYLE.len() + tail.len() + 8 * 1024);
    o.push_str("<section class=\"tpv\" id=\"data-quality\"><style>");
    o.push_str(STYLE);
    o.push_str("</style>");
    verdict(&mut o, r);
    o.push_str(tail);
    o
}

/// Everything of the quality section after the verdict: it does not depend on the run's
/// counts ([`ValidationReport::run`]), so it can be made before the run ends.
///
/// [`ValidationReport::run`]: crate::ValidationReport::run
pub(crate) fn fragment_tail(r: &ValidationReport) -> String {
    let mut o = String::with_capacity(64 * 1024);
    rules(&mut o, r);
    charts(&mut o, r);
    examples(&mut o, r);
    symbols(&mut o, r);
    dataset(&mut o, r);
    columns(&mut o, r);
    let _ = write!(
        o,
        "<p class=\"src\">{} · JSON report schema version {} · mode {}</p></section>",
        esc(&r.generator),
        r.schema_version,
        match r.mode {
            crate::report::Mode::Standalone => "standalone (raw rows, no cleaning)",
            crate::report::Mode::Inline => "inline (after cleaning: the rows written)",
        }
    );
    o
}

fn verdict(o: &mut String, r: &ValidationReport) {
    let (cls, word, text) = match r.verdict {
        Verdict::Pass => (
            "v-pass",
            "PASS",
            "Every error and warning rule is within its threshold.",
        ),
        Verdict::Warn => (
            "v-warn",
            "WARN",
            "No error rule failed; some warning rules are above their thresholds.",
        ),
        Verdict::Fail => (
            "v-fail",
            "FAIL",
            "At least one error rule is above its threshold.",
        ),
    };
    let failing: Vec<&crate::report::RuleResult> = r
        .rules
        .iter()
        .filter(|x| x.status == Status::Fail && x.severity != Some(Severity::Info))
        .collect();
    let _ = write!(
        o,
        "<div id=\"tpv-verdict\"><h2>Data quality</h2><div class=\"verdict {cls}\"><span class=\"badge\">{word}</span><div><div>{text}</div>"
    );
    if !failing.is_empty() {
        o.push_str("<ul class=\"why\">");
        for f in failing.iter().take(8) {
            let _ = write!(
                o,
                "<li><b>{}</b> ({}): {} of {} {} ({}) &gt; threshold {}</li>",
                esc(&f.name),
                f.severity.map_or("off", Severity::name),
                count(f.failed),
                count(f.checked),
                unit_name(f.unit),
                pct(f.fraction),
                pct(f.threshold)
            );
        }
        if failing.len() > 8 {
            let _ = write!(o, "<li>… and {} more</li>", failing.len() - 8);
        }
        o.push_str("</ul>");
    }
    o.push_str("</div></div><div class=\"cards\">");
    let warn_rows: u64 = r.symbol_days.iter().map(|d| d.warnings).sum();
    let q = if r.rows_checked > 0 {
        r.rows_quarantined as f64 / r.rows_checked as f64
    } else {
        0.0
    };
    for (v, label) in [
        (count(r.rows_checked), "rows checked".to_string()),
        (
            count(r.rows_quarantined),
            format!("quarantined ({})", pct(q)),
        ),
        (count(warn_rows), "row warnings".to_string()),
        (count(r.symbols.len() as u64), "symbols".to_string()),
        (
            count(r.days.iter().filter(|d| !d.missing).count() as u64),
            "trading days".to_string(),
        ),
        (count(r.files.len() as u64), "files".to_string()),
    ] {
        let _ = write!(
            o,
            "<div class=\"card\"><b>{v}</b><span>{}</span></div>",
            esc(&label)
        );
    }
    if let Some(run) = &r.run {
        let before: u64 =
            run.quarantined_before.values().sum::<u64>() + run.removed_before.values().sum::<u64>();
        let _ = write!(
            o,
            "<div class=\"card\"><b>{}</b><span>rows read; {} left before validation</span></div>",
            count(run.read),
            count(before)
        );
    }
    o.push_str("</div></div>");
}

fn unit_name(u: crate::rules::Unit) -> &'static str {
    match u {
        crate::rules::Unit::Rows => "rows",
        crate::rules::Unit::SymbolDays => "symbol-days",
        crate::rules::Unit::Files => "files",
    }
}

fn status_badge(x: &crate::report::RuleResult) -> String {
    match (x.status, x.severity) {
        (Status::Pass, _) => "<span class=\"st st-pass\">pass</span>".into(),
        (Status::Fail, Some(Severity::Error)) => "<span class=\"st st-fail\">fail</span>".into(),
        (Status::Fail, Some(Severity::Warning)) => {
            "<span class=\"st st-warnfail\">warn</span>".into()
        }
        (Status::Fail, _) => "<span class=\"st st-info\">info</span>".into(),
        (Status::NotApplicable, _) => "<span class=\"st st-na\">n/a</span>".into(),
        (Status::Off, _) => "<span class=\"st st-na\">off</span>".into(),
    }
}

fn rules(o: &mut String, r: &ValidationReport) {
    o.push_str("<div id=\"tpv-rules\"><h3>Rules</h3><table><thead><tr><th>status</th><th>rule</th><th>severity</th><th class=\"n\">failed</th><th class=\"n\">checked</th><th class=\"n\">share</th><th class=\"n\">threshold</th><th>what it checks · source</th></tr></thead><tbody>");
    let mut off = Vec::new();
    for x in &r.rules {
        if x.status == Status::Off {
            off.push(x.name.as_str());
            continue;
        }
        let cls = match (x.status, x.severity) {
            (Status::Fail, Some(Severity::Error)) => " class=\"fail\"",
            (Status::Fail, _) => " class=\"warnrow\"",
            _ => "",
        };
        let _ = write!(
            o,
            "<tr{cls}><td>{}</td><td><code>{}</code></td><td class=\"sev\">{}</td><td class=\"n\">{}</td><td class=\"n\">{} {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}<br/><span class=\"src\">{}</span></td></tr>",
            status_badge(x),
            esc(&x.name),
            x.severity.map_or("off", Severity::name),
            count(x.failed),
            count(x.checked),
            unit_name(x.unit),
            pct(x.fraction),
            pct(x.threshold),
            esc(&x.description),
            esc(&x.source)
        );
    }
    o.push_str("</tbody></table>");
    if !off.is_empty() {
        let _ = write!(o, "<p class=\"off\">Off: {}</p>", esc(&off.join(", ")));
    }
    o.push_str("</div>");
}

/// Examples per rule shown on the page (the JSON report has all `examples_per_rule`): eight
/// rows show the pattern without burying the next rule.
const HTML_EXAMPLES: usize = 8;

fn examples(o: &mut String, r: &ValidationReport) {
    o.push_str("<div id=\"tpv-examples\"><h3>Failing examples</h3>");
    let with: Vec<&crate::report::RuleResult> =
        r.rules.iter().filter(|x| !x.examples.is_empty()).collect();
    if with.is_empty() {
        o.push_str("<p class=\"muted\">No rule failed on any row.</p>");
    }
    for x in with {
        let _ = write!(
            o,
            "<details open=\"open\"><summary><code>{}</code> · {} of {} {} · {}</summary><table><thead><tr><th>file:line</th><th>symbol</th><th>time / date</th><th>values</th><th>note</th></tr></thead><tbody>",
            esc(&x.name),
            count(x.failed),
            count(x.checked),
            unit_name(x.unit),
            x.severity.map_or("off", Severity::name)
        );
        for e in x.examples.iter().take(HTML_EXAMPLES) {
            let place = if e.file.is_empty() {
                "—".to_string()
            } else {
                format!("{}:{}", e.file, e.line)
            };
            let vals: Vec<String> = e.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = write!(
                o,
                "<tr><td class=\"mono nw\">{}</td><td>{}</td><td class=\"mono nw\">{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
                esc(&place),
                esc(&e.symbol),
                esc(e.ts.as_deref().unwrap_or("")),
                esc(&vals.join(" ")),
                esc(&e.note)
            );
        }
        o.push_str("</tbody></table>");
        if x.examples.len() > HTML_EXAMPLES {
            let _ = write!(
                o,
                "<p class=\"src\">{} more in the JSON report.</p>",
                x.examples.len() - HTML_EXAMPLES
            );
        }
        o.push_str("</details>");
    }
    o.push_str("</div>");
}

fn opt(x: Option<f64>) -> String {
    x.map(fmt_num).unwrap_or_else(|| "—".into())
}

fn symbols(o: &mut String, r: &ValidationReport) {
    o.push_str("<div id=\"tpv-symbols\"><h3>Per symbol</h3><table><thead><tr><th>symbol</th><th class=\"n\">days</th><th class=\"n\">rows</th><th class=\"n\">quarantined</th><th class=\"n\">warnings</th><th class=\"n\">nulls</th><th class=\"n\">duplicates</th><th class=\"n\">outliers</th><th class=\"n\">min price</th><th class=\"n\">max price</th><th class=\"n\">median spread</th><th class=\"n\">volume</th></tr></thead><tbody>");
    for s in &r.symbols {
        let bad = s.errors > 0;
        let _ = write!(
            o,
            "<tr{}><td><b>{}</b></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if bad { " class=\"warnrow\"" } else { "" },
            esc(if s.symbol.is_empty() {
                "(none)"
            } else {
                &s.symbol
            }),
            count(s.days),
            count(s.rows),
            count(s.errors),
            count(s.warnings),
            count(s.nulls),
            count(s.duplicates),
            count(s.outliers),
            opt(s.min_price),
            opt(s.max_price),
            opt(s.median_spread),
            count(s.volume as u64)
        );
    }
    o.push_str("</tbody></table></div>");
}

fn dataset(o: &mut String, r: &ValidationReport) {
    o.push_str("<div id=\"tpv-dataset\"><h3>Dataset</h3>");
    let missing: Vec<&DayStat> = r.days.iter().filter(|d| d.missing).collect();
    if missing.is_empty() {
        o.push_str("<p>No trading day without rows inside the data's span.</p>");
    } else {
        let list: Vec<&str> = missing.iter().take(30).map(|d| d.date.as_str()).collect();
        let _ = write!(
            o,
            "<p><b>{} trading day(s) without any row</b>: {}{}</p>",
            missing.len(),
            esc(&list.join(", ")),
            if missing.len() > 30 { " …" } else { "" }
        );
    }
    match &r.history {
        Some(h) => {
            let _ = write!(
                o,
                "<p>Metrics history <code>{}</code>: {} symbol-days before this run, {} after.</p>",
                esc(&h.path),
                count(h.days_before),
                count(h.days_after)
            );
        }
        None => o.push_str("<p class=\"muted\">No metrics history kept for this run.</p>"),
    }
    let _ = write!(
        o,
        "<details><summary>{} input file(s)</summary><table><thead><tr><th>file</th><th class=\"n\">rows</th><th>fingerprint</th></tr></thead><tbody>",
        r.files.len()
    );
    for f in r.files.iter().take(500) {
        let _ = write!(
            o,
            "<tr><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"mono\">{}</td></tr>",
            esc(&f.file),
            count(f.rows),
            esc(&f.fingerprint)
        );
    }
    o.push_str("</tbody></table></details></div>");
}

fn columns(o: &mut String, r: &ValidationReport) {
    o.push_str("<div id=\"tpv-columns\"><h3>Columns</h3><table><thead><tr><th>column</th><th>type</th><th class=\"n\">nulls</th><th class=\"n\">null share</th></tr></thead><tbody>");
    let limit = r.rule("null_value").map_or(0.1, |x| x.threshold);
    for c in &r.columns {
        let _ = write!(
            o,
            "<tr{}><td><code>{}</code></td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if c.null_fraction > limit {
                " class=\"warnrow\""
            } else {
                ""
            },
            esc(&c.name),
            esc(&c.data_type),
            count(c.nulls),
            pct(c.null_fraction)
        );
    }
    o.push_str("</tbody></table></div>");
}

// ----------------------------------------------------------------------------- charts

const W: f64 = 960.0;
const H: f64 = 230.0;
const ML: f64 = 64.0;
const MR: f64 = 16.0;
const MT: f64 = 12.0;
const MB: f64 = 40.0;

fn charts(o: &mut String, r: &ValidationReport) {
    o.push_str("<div id=\"tpv-charts\"><h3>Charts</h3><div class=\"charts\">");
    o.push_str("<div class=\"chart wide\"><h4>Rows per trading day</h4><p>All symbols. Red: a trading day without rows. Orange: a day where some symbol's rows broke from its history.</p>");
    rows_chart(o, &r.days);
    o.push_str("</div><div class=\"chart wide\"><h4>Failure rates over time</h4><p>Quarantined rows and row warnings per day, as a share of the day's rows.</p>");
    rates_chart(o, &r.days);
    o.push_str("</div><div class=\"chart\"><h4>Spread distribution</h4><p>Quoted spread in basis points of the mid (log count). Red: spread outliers.</p>");
    hist_chart(o, &r.spreads_bps, "spread (bp)");
    o.push_str("</div><div class=\"chart\"><h4>Return distribution</h4><p>Tick-to-tick returns in basis points (log count). Red: price jumps.</p>");
    hist_chart(o, &r.returns_bps, "return (bp)");
    o.push_str("</div></div></div>");
}

fn svg_open(o: &mut String, label: &str) {
    let _ = write!(
        o,
        "<svg viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
}

fn axis_y(o: &mut String, max: f64, fmt: &dyn Fn(f64) -> String) {
    let ph = H - MT - MB;
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let y = MT + ph - ph * f64::from(k) / 4.0;
        let _ = write!(
            o,
            "<line x1=\"{ML}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e9ef\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - MR,
            ML - 6.0,
            y + 4.0,
            esc(&fmt(v))
        );
    }
    let _ = write!(
        o,
        "<line x1=\"{ML}\" x2=\"{ML}\" y1=\"{MT}\" y2=\"{}\" stroke=\"#8d96a3\"/><line x1=\"{ML}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#8d96a3\"/>",
        H - MB,
        W - MR,
        H - MB,
        H - MB
    );
}

fn date_labels(o: &mut String, days: &[DayStat]) {
    let n = days.len();
    if n == 0 {
        return;
    }
    let pw = W - ML - MR;
    let picks: Vec<usize> = if n <= 6 {
        (0..n).collect()
    } else {
        (0..6).map(|k| k * (n - 1) / 5).collect()
    };
    for i in picks {
        let x = ML + pw * (i as f64 + 0.5) / n as f64;
        let _ = write!(
            o,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            H - MB + 16.0,
            esc(&days[i].date)
        );
    }
}

fn no_data(o: &mut String) {
    let _ = write!(
        o,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data</text></svg>",
        W / 2.0,
        H / 2.0
    );
}

fn rows_chart(o: &mut String, days: &[DayStat]) {
    svg_open(o, "rows per trading day");
    let max = days.iter().map(|d| d.rows).max().unwrap_or(0) as f64;
    if days.is_empty() || max == 0.0 {
        return no_data(o);
    }
    axis_y(o, max, &|v| count(v as u64));
    let (pw, ph) = (W - ML - MR, H - MT - MB);
    let n = days.len() as f64;
    let bw = (pw / n).max(0.6);
    for (i, d) in days.iter().enumerate() {
        let x = ML + pw * i as f64 / n;
        if d.missing {
            let _ = write!(
                o,
                "<rect x=\"{x:.2}\" y=\"{MT}\" width=\"{bw:.2}\" height=\"{ph:.1}\" fill=\"#fbd3d0\"/><rect x=\"{x:.2}\" y=\"{:.1}\" width=\"{:.2}\" height=\"6\" fill=\"#c5221f\"><title>{} missing</title></rect>",
                H - MB - 6.0,
                bw.max(2.0),
                esc(&d.date)
            );
            continue;
        }
        let h = ph * d.rows as f64 / max;
        let fill = if d.flagged { "#e8890c" } else { "#3b6fd6" };
        let _ = write!(
            o,
            "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{fill}\"><title>{}: {} rows</title></rect>",
            MT + ph - h,
            (bw * 0.9).max(0.6),
            esc(&d.date),
            count(d.rows)
        );
    }
    date_labels(o, days);
    o.push_str("</svg>");
}

fn rates_chart(o: &mut String, days: &[DayStat]) {
    svg_open(o, "failure rates over time");
    let present: Vec<&DayStat> = days.iter().filter(|d| d.rows > 0).collect();
    if present.is_empty() {
        return no_data(o);
    }
    let rate = |a: u64, b: u64| a as f64 / b as f64;
    let max = present
        .iter()
        .map(|d| rate(d.errors, d.rows).max(rate(d.warnings, d.rows)))
        .fold(0.001f64, f64::max)
        * 1.1;
    axis_y(o, max, &|v| pct(v));
    let (pw, ph) = (W - ML - MR, H - MT - MB);
    let n = days.len() as f64;
    for (series, color, label) in [(0, "#c5221f", "quarantined"), (1, "#c77700", "warnings")] {
        // One line per run of days with rows: a missing day breaks the line.
        let mut runs: Vec<String> = vec![String::new()];
        for (i, d) in days.iter().enumerate() {
            if d.rows == 0 {
                runs.push(String::new());
                continue;
            }
            let v = if series == 0 {
                rate(d.errors, d.rows)
            } else {
                rate(d.warnings, d.rows)
            };
            let x = ML + pw * (i as f64 + 0.5) / n;
            let y = MT + ph - ph * v / max;
            if let Some(last) = runs.last_mut() {
                let _ = write!(last, "{x:.1},{y:.1} ");
            }
        }
        for pts in runs.iter().filter(|p| !p.is_empty()) {
            let _ = write!(
                o,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\"/>",
                pts.trim_end()
            );
        }
        let ly = MT + 12.0 + 14.0 * f64::from(series);
        let _ = write!(
            o,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"{color}\"/><text x=\"{}\" y=\"{:.1}\">{label}</text>",
            W - MR - 110.0,
            ly - 4.0,
            W - MR - 94.0,
            ly
        );
    }
    date_labels(o, days);
    o.push_str("</svg>");
}

fn hist_chart(o: &mut String, h: &Histogram, xlabel: &str) {
    let width = W / 2.0 + 40.0;
    let _ = write!(
        o,
        "<svg viewBox=\"0 0 {width} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\">",
        esc(xlabel)
    );
    let total: u64 = h.counts.iter().sum::<u64>() + h.outliers.iter().sum::<u64>();
    if total == 0 {
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data</text></svg>",
            width / 2.0,
            H / 2.0
        );
        return;
    }
    let lg = |c: u64| ((c + 1) as f64).log10();
    let max = h
        .counts
        .iter()
        .chain(&h.outliers)
        .map(|c| lg(*c))
        .fold(1.0f64, f64::max);
    let (ml, mb) = (48.0, 58.0);
    let (pw, ph) = (width - ml - MR, H - MT - mb);
    for k in 0..=(max.ceil() as u32) {
        let y = MT + ph - ph * f64::from(k) / max;
        if y < MT - 0.5 {
            break;
        }
        let _ = write!(
            o,
            "<line x1=\"{ml}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e9ef\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            width - MR,
            ml - 4.0,
            y + 4.0,
            count(10u64.pow(k))
        );
    }
    let nb = h.counts.len() as f64;
    let bw = pw / nb;
    for (i, (c, x)) in h.counts.iter().zip(&h.outliers).enumerate() {
        let x0 = ml + bw * i as f64;
        let label = h.label(i);
        if *c > 0 {
            let bh = ph * lg(*c) / max;
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#3b6fd6\"><title>{}: {}</title></rect>",
                x0 + 1.0,
                MT + ph - bh,
                (bw * 0.45).max(1.0),
                esc(&label),
                count(*c)
            );
        }
        if *x > 0 {
            let bh = ph * lg(*x) / max;
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#c5221f\"><title>{}: {} flagged</title></rect>",
                x0 + 1.0 + bw * 0.45,
                MT + ph - bh,
                (bw * 0.45).max(1.0),
                esc(&label),
                count(*x)
            );
        }
        let tx = x0 + bw / 2.0;
        let ty = H - mb + 10.0;
        let _ = write!(
            o,
            "<text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\" transform=\"rotate(-50 {tx:.1} {ty:.1})\" style=\"font-size:9px\">{}</text>",
            esc(&label)
        );
    }
    let _ = write!(
        o,
        "<line x1=\"{ml}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#8d96a3\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></svg>",
        width - MR,
        H - mb,
        H - mb,
        ml + pw / 2.0,
        H - 4.0,
        esc(xlabel)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(pct(0.5), "50.00%");
    }
}
