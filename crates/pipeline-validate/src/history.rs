//! The per-symbol-day metrics history (Deequ's metrics repository): a JSON-lines file of
//! [`SymbolDay`] records, and the checks of each new day against the symbol's earlier days
//! (Deequ's anomaly strategies: absolute change, relative rate of change, z-score, plus the
//! ratio to the window's median that `rows_vs_history` uses).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use pipeline_core::{Error, Result};

use crate::model::{Ex, SymbolDay};
use crate::report::write_atomic;
use crate::rules::{RuleSet, id};
use crate::rulesfile::AnomalySpec;
use crate::stage::{Acc, fmt_num};

/// The history file's name inside its folder.
pub const FILE: &str = "quality_history.jsonl";

/// A history file as read: its records, and each record's line as it was written (an
/// unchanged record is written back as it was read, not serialised again).
#[derive(Debug, Default)]
pub(crate) struct Prior {
    /// The records, in file order.
    pub days: Vec<SymbolDay>,
    /// Each record's line, without its `\n`.
    lines: Vec<String>,
}

/// Reads a history file; a missing file is an empty history, a bad line an error naming it.
pub(crate) fn read(path: &Path) -> Result<Prior> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Prior::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Prior::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let d: SymbolDay = serde_json::from_str(line).map_err(|e| Error::Malformed {
            file: path.display().to_string(),
            line: i as u64 + 1,
            message: format!("not a quality-history record: {e}"),
        })?;
        out.days.push(d);
        out.lines.push(line.to_string());
    }
    Ok(out)
}

/// Writes `prior` with `days` replacing records of the same symbol and date, sorted; returns
/// the number of records. A record of `days` equal to the one it replaces keeps its line as
/// read (an append's report covers every day so far, and nearly all of them are unchanged:
/// serialising 6,290 records again was a tenth of the report's cost).
pub(crate) fn write(path: &Path, prior: &Prior, days: &[SymbolDay]) -> Result<u64> {
    /// A record to write: an earlier one (its index in `prior`, its line as read), or a
    /// new line.
    enum Rec<'a> {
        Kept(usize, &'a str),
        New(String),
    }
    let mut all: BTreeMap<(&str, &str), Rec<'_>> = prior
        .days
        .iter()
        .zip(&prior.lines)
        .enumerate()
        .map(|(i, (d, l))| ((d.symbol.as_str(), d.date.as_str()), Rec::Kept(i, l)))
        .collect();
    for d in days {
        let key = (d.symbol.as_str(), d.date.as_str());
        let d = SymbolDay {
            file: None,
            line: None,
            source: None,
            ..d.clone()
        };
        if matches!(all.get(&key), Some(Rec::Kept(i, _)) if prior.days[*i] == d) {
            continue;
        }
        let line = serde_json::to_string(&d)
            .map_err(|e| Error::Internal(format!("history record: {e}")))?;
        all.insert(key, Rec::New(line));
    }
    let mut text = String::new();
    for r in all.values() {
        text.push_str(match r {
            Rec::Kept(_, l) => l,
            Rec::New(l) => l,
        });
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())?;
    Ok(all.len() as u64)
}

/// One history check: which metric, how, over how many days.
struct Check<'a> {
    rule: usize,
    metric: &'a str,
    strategy: &'a str,
    min: Option<f64>,
    max: Option<f64>,
    max_change: Option<f64>,
    max_z: Option<f64>,
    window: usize,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Runs the history checks on this run's `days` (sorted by symbol and date) against the
/// symbol's earlier days from `prior` and from this run; failing days go to `flagged` (for
/// the rows chart) when the check is `rows_vs_history`.
pub(crate) fn check(
    rs: &RuleSet,
    prior: &[SymbolDay],
    days: &[SymbolDay],
    acc: &mut Acc,
    flagged: &mut BTreeSet<String>,
) {
    let s = &rs.settings;
    let mut checks: Vec<Check<'_>> = Vec::new();
    if rs.on(id::ROWS_VS_HISTORY) {
        checks.push(Check {
            rule: id::ROWS_VS_HISTORY,
            metric: "rows",
            strategy: "median_ratio",
            min: Some(s.rows_min_ratio),
            max: Some(s.rows_max_ratio),
            max_change: None,
            max_z: None,
            window: s.history_window,
        });
    }
    for (rule, a) in &rs.anomalies {
        if rs.on(*rule) {
            checks.push(from_spec(*rule, a, s.history_window));
        }
    }
    if checks.is_empty() {
        return;
    }
    // Each symbol's series: earlier runs' days not in this run, then this run's, by date.
    let this: BTreeSet<(&str, &str)> = days
        .iter()
        .map(|d| (d.symbol.as_str(), d.date.as_str()))
        .collect();
    let mut series: BTreeMap<&str, Vec<(&SymbolDay, bool)>> = BTreeMap::new();
    for d in prior {
        if !this.contains(&(d.symbol.as_str(), d.date.as_str())) {
            series
                .entry(d.symbol.as_str())
                .or_default()
                .push((d, false));
        }
    }
    for d in days {
        series.entry(d.symbol.as_str()).or_default().push((d, true));
    }
    for v in series.values_mut() {
        v.sort_by(|a, b| a.0.date.cmp(&b.0.date));
    }
    // Buffers reused for every day (6,290 symbol-days on the demo layout, each checked).
    let (mut past, mut sorted): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for ser in series.values() {
        for (k, (d, ours)) in ser.iter().enumerate() {
            if !ours {
                continue;
            }
            for c in &checks {
                let Some(x) = d.metric(c.metric) else {
                    continue;
                };
                let lo = k.saturating_sub(c.window);
                past.clear();
                past.extend(ser[lo..k].iter().filter_map(|(p, _)| p.metric(c.metric)));
                let need = match c.strategy {
                    "absolute" | "relative" => 1,
                    _ => s.history_min_days.max(2),
                };
                if past.len() < need {
                    continue;
                }
                acc.checked[c.rule] += 1;
                let prev = past[past.len() - 1];
                let outside = |r: f64| c.min.is_some_and(|m| r < m) || c.max.is_some_and(|m| r > m);
                // What a failing day's note says; written only for a failing day
                // (formatting it for every day checked was most of the checks' cost).
                let (bad, what) = match c.strategy {
                    "absolute" => {
                        let ch = x - prev;
                        (
                            ch.abs() > c.max_change.unwrap_or(f64::INFINITY),
                            Why::Change { ch, prev },
                        )
                    }
                    "relative" => {
                        if prev == 0.0 {
                            continue;
                        }
                        let r = x / prev;
                        (outside(r), Why::Ratio { r, prev })
                    }
                    "median_ratio" => {
                        sorted.clear();
                        sorted.extend_from_slice(&past);
                        let m = median(&mut sorted);
                        if m == 0.0 {
                            continue;
                        }
                        let r = x / m;
                        (
                            outside(r),
                            Why::Median {
                                r,
                                m,
                                n: past.len(),
                            },
                        )
                    }
                    _ => {
                        let n = past.len() as f64;
                        let mean = past.iter().sum::<f64>() / n;
                        let var =
                            past.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
                        let sd = var.sqrt();
                        let z = if sd > 0.0 {
                            (x - mean) / sd
                        } else if x == mean {
                            0.0
                        } else {
                            f64::INFINITY
                        };
                        (
                            z.abs() > c.max_z.unwrap_or(f64::INFINITY),
                            Why::Z {
                                z,
                                mean,
                                n: past.len(),
                            },
                        )
                    }
                };
                if !bad {
                    continue;
                }
                acc.failed[c.rule] += 1;
                if c.rule == id::ROWS_VS_HISTORY {
                    flagged.insert(d.date.clone());
                }
                let (src, line) = (d.source.unwrap_or(0), d.line.unwrap_or(0));
                if acc.wants(c.rule, src, line, s.examples) {
                    let ex = Ex {
                        source: src,
                        line,
                        symbol: d.symbol.clone(),
                        ts: None,
                        date: Some(d.date.clone()),
                        values: vec![(c.metric.to_string(), fmt_num(x))],
                        note: format!(
                            "{} {}: {} {} {}",
                            d.symbol,
                            d.date,
                            c.metric,
                            fmt_num(x),
                            what.note()
                        ),
                    };
                    acc.keep(c.rule, ex, s.examples);
                }
            }
        }
    }
}

/// Why a day failed a history check, formatted only for failing days.
enum Why {
    Change { ch: f64, prev: f64 },
    Ratio { r: f64, prev: f64 },
    Median { r: f64, m: f64, n: usize },
    Z { z: f64, mean: f64, n: usize },
}

impl Why {
    fn note(&self) -> String {
        match *self {
            Why::Change { ch, prev } => {
                format!("changed by {} from {}", fmt_num(ch), fmt_num(prev))
            }
            Why::Ratio { r, prev } => format!("{r:.3} × the previous day's {}", fmt_num(prev)),
            Why::Median { r, m, n } => {
                format!("{r:.3} × the median {} of {n} earlier days", fmt_num(m))
            }
            Why::Z { z, mean, n } => format!(
                "z-score {z:.2} against mean {} of {n} earlier days",
                fmt_num(mean)
            ),
        }
    }
}

fn from_spec(rule: usize, a: &AnomalySpec, window: usize) -> Check<'_> {
    Check {
        rule,
        metric: &a.metric,
        strategy: &a.strategy,
        min: a.min,
        max: a.max,
        max_change: a.max_change,
        max_z: a.max_z,
        window: a.window.unwrap_or(window),
    }
}
