//! The per-symbol-day metrics history (Deequ's metrics repository): a JSON-lines file of
//! [`SymbolDay`] records, and the checks of each new day against the symbol's earlier days
//! (Deequ's anomaly strategies: absolute change, relative rate of change, z-score, plus the
//! ratio to the window's median that `rows_vs_history` uses).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use pipeline_core::{Error, Result};

use crate::model::{Ex, SymbolDay};
#[cfg(test)]
use crate::report::write_atomic;
use crate::rules::{RuleSet, id};
use crate::rulesfile::AnomalySpec;
use crate::stage::{Acc, fmt_num};

/// The history file's name inside its folder.
pub const FILE: &str = "quality_history.jsonl";

/// A history file as read: each record's key (symbol and date) and its line as written.
/// A record is parsed only when it is needed, that is when this run has no day of the same
/// key ([`Prior::days_except`]): an append's report covers every day so far, so nearly every
/// record is replaced by this run's day, and parsing 6,290 records it would not use was a
/// fifth of an append's report. Records are rewritten from this run's days, an unchanged
/// one with the same bytes (see [`SymbolDay::write_json`]).
#[derive(Debug, Default)]
pub(crate) struct Prior {
    /// The file, for errors.
    path: String,
    text: String,
    recs: Vec<PriorRec>,
}

#[derive(Debug)]
struct PriorRec {
    /// 1-based line number.
    no: u64,
    /// The line's bytes in `text`, without its `\n`.
    line: Range<usize>,
    key: Key,
}

/// Where a record's symbol and date are: found in the line (the writer's layout), or, for
/// any other layout, the record parsed when read.
#[derive(Debug)]
enum Key {
    Spans(Range<usize>, Range<usize>),
    Parsed(Box<SymbolDay>),
}

impl Prior {
    /// Records read.
    pub(crate) fn len(&self) -> usize {
        self.recs.len()
    }

    fn key<'a>(&'a self, r: &'a PriorRec) -> (&'a str, &'a str) {
        match &r.key {
            Key::Spans(s, d) => (&self.text[s.clone()], &self.text[d.clone()]),
            Key::Parsed(day) => (day.symbol.as_str(), day.date.as_str()),
        }
    }

    /// For each record, whether `days` has a day of its key: one merge in key order when
    /// both are sorted without repeats (as tickpipe writes the file and builds the report),
    /// a set otherwise. (Sets of 6,290 keys, built and searched by string comparisons,
    /// were a fifth of an append's report.)
    fn superseded(&self, days: &[SymbolDay]) -> Vec<bool> {
        let (keys, in_order) = self.keys_beside(days);
        if in_order {
            let mut j = 0;
            keys.iter()
                .map(|k| {
                    while j < days.len() && day_key(&days[j]) < *k {
                        j += 1;
                    }
                    j < days.len() && day_key(&days[j]) == *k
                })
                .collect()
        } else {
            let set: BTreeSet<(&str, &str)> = days.iter().map(day_key).collect();
            keys.iter().map(|k| set.contains(k)).collect()
        }
    }

    /// The records' keys, in file order, and whether they and `days` both increase
    /// strictly (as tickpipe writes the file and builds the report): one merge then pairs
    /// them.
    fn keys_beside<'a>(&'a self, days: &[SymbolDay]) -> (Vec<(&'a str, &'a str)>, bool) {
        let keys: Vec<(&str, &str)> = self.recs.iter().map(|r| self.key(r)).collect();
        let in_order = increasing(keys.iter().copied()) && increasing(days.iter().map(day_key));
        (keys, in_order)
    }

    /// The records of keys `days` has no day of, parsed, in file order; a bad record is an
    /// error naming its line.
    pub(crate) fn days_except(&self, days: &[SymbolDay]) -> Result<Vec<SymbolDay>> {
        let mut out = Vec::new();
        for (r, gone) in self.recs.iter().zip(self.superseded(days)) {
            if gone {
                continue;
            }
            out.push(match &r.key {
                Key::Parsed(d) => (**d).clone(),
                Key::Spans(..) => parse(&self.path, r.no, &self.text[r.line.clone()])?,
            });
        }
        Ok(out)
    }
}

fn day_key(d: &SymbolDay) -> (&str, &str) {
    (d.symbol.as_str(), d.date.as_str())
}

/// Whether the keys increase strictly.
fn increasing<'a>(keys: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    let mut last = None;
    for k in keys {
        if last.is_some_and(|l| l >= k) {
            return false;
        }
        last = Some(k);
    }
    true
}

fn parse(path: &str, no: u64, line: &str) -> Result<SymbolDay> {
    SymbolDay::from_json(line).map_err(|e| Error::Malformed {
        file: path.to_string(),
        line: no,
        message: format!("not a quality-history record: {e}"),
    })
}

/// Reads a history file; a missing file is an empty history. A line without a symbol and
/// a date is an error naming it; the rest of a record is checked when it is parsed.
pub(crate) fn read(path: &Path) -> Result<Prior> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Prior::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let name = path.display().to_string();
    let mut recs = Vec::new();
    let mut at = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let start = at;
        at += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let no = i as u64 + 1;
        let key = match crate::day_codec::key_spans(line) {
            Some((s, d)) => Key::Spans(
                s.start + start..s.end + start,
                d.start + start..d.end + start,
            ),
            None => Key::Parsed(Box::new(parse(&name, no, line)?)),
        };
        recs.push(PriorRec {
            no,
            line: start..start + line.len(),
            key,
        });
    }
    Ok(Prior {
        path: name,
        text,
        recs,
    })
}

/// Writes `prior` with `days` replacing records of the same symbol and date, sorted; returns
/// the number of records.
#[cfg(test)]
pub(crate) fn write(path: &Path, prior: &Prior, days: &[SymbolDay]) -> Result<u64> {
    let (text, n) = render(prior, days);
    write_atomic(path, text.as_bytes())?;
    Ok(n)
}

/// The history file's text with `days` replacing `prior`'s records of the same symbol and
/// date, sorted, and its number of records.
#[cfg(test)]
pub(crate) fn render(prior: &Prior, days: &[SymbolDay]) -> (String, u64) {
    let r = render_placed(prior, days);
    (r.text, r.records)
}

/// The history file's text ([`render`]), with where each of the days' records is in it.
pub(crate) struct Rendered {
    pub text: String,
    pub records: u64,
    /// `days[i]`'s record is `text[at[i]]`: its JSON without `file`, `line` and `source`
    /// ([`SymbolDay::write_json_as`]), which [`SymbolDay::write_json`]'s begins with.
    pub at: Vec<Range<usize>>,
}

/// Where a record's line is while the records are gathered: this run's day `Some(i)` in
/// the days' own text, or a prior record (`None`) in the history's.
type Placed = (Option<usize>, Range<usize>);

/// [`render`], saying where each of `days` went.
pub(crate) fn render_placed(prior: &Prior, days: &[SymbolDay]) -> Rendered {
    let (keys, in_order) = prior.keys_beside(days);
    let mut text = String::with_capacity(prior.text.len() + days.len() * 64);
    let mut at = vec![0..0; days.len()];
    let mut n = 0u64;
    if in_order {
        // Both in key order (as tickpipe writes them): merged.
        let (mut i, mut j) = (0, 0);
        while i < keys.len() || j < days.len() {
            if j < days.len() && (i == keys.len() || day_key(&days[j]) <= keys[i]) {
                if i < keys.len() && day_key(&days[j]) == keys[i] {
                    i += 1;
                }
                let start = text.len();
                days[j].write_json_as(&mut text, false);
                at[j] = start..text.len();
                j += 1;
            } else {
                text.push_str(&prior.text[prior.recs[i].line.clone()]);
                i += 1;
            }
            text.push('\n');
            n += 1;
        }
    } else {
        // Where each record's line is: in `prior.text`, or in `new` for this run's (with
        // the day's index).
        let mut all: BTreeMap<(&str, &str), Placed> = keys
            .iter()
            .zip(&prior.recs)
            .map(|(k, r)| (*k, (None, r.line.clone())))
            .collect();
        let mut new = String::with_capacity(days.len() * 256);
        for (j, d) in days.iter().enumerate() {
            let start = new.len();
            d.write_json_as(&mut new, false);
            all.insert(day_key(d), (Some(j), start..new.len()));
        }
        for (fresh, r) in all.values() {
            let start = text.len();
            match fresh {
                Some(j) => {
                    text.push_str(&new[r.clone()]);
                    at[*j] = start..text.len();
                }
                None => text.push_str(&prior.text[r.clone()]),
            }
            text.push('\n');
            n += 1;
        }
    }
    Rendered {
        text,
        records: n,
        at,
    }
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

/// Runs the history checks on this run's `days` (sorted by symbol and date) against the
/// symbol's earlier days from `prior` (earlier runs' days of keys this run has no day of:
/// [`Prior::days_except`]) and from this run; failing days go to `flagged` (for
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
    // Each symbol's series: earlier runs' days, then this run's, by date.
    let mut series: BTreeMap<&str, Vec<(&SymbolDay, bool)>> = BTreeMap::new();
    for d in prior {
        series
            .entry(d.symbol.as_str())
            .or_default()
            .push((d, false));
    }
    for d in days {
        series.entry(d.symbol.as_str()).or_default().push((d, true));
    }
    for v in series.values_mut() {
        v.sort_by(|a, b| a.0.date.cmp(&b.0.date));
    }
    // Buffers reused for every day (6,290 symbol-days on the demo layout, each checked).
    let mut past: Vec<f64> = Vec::new();
    for ser in series.values() {
        // Each check's metric over the series, looked up once (by name, per day and per
        // day of its window, it was a fifth of the checks' cost), and the window's values
        // kept sorted as it slides, for the median (a selection per day was another third).
        let vals: Vec<Vec<Option<f64>>> = checks
            .iter()
            .map(|c| ser.iter().map(|(d, _)| d.metric(c.metric)).collect())
            .collect();
        let mut windows: Vec<Window> = checks.iter().map(|_| Window::default()).collect();
        for (k, (d, ours)) in ser.iter().enumerate() {
            for ((c, vals), win) in checks.iter().zip(&vals).zip(&mut windows) {
                let lo = k.saturating_sub(c.window);
                let sorted = c.strategy == "median_ratio";
                if sorted {
                    win.slide(vals, lo, k);
                }
                if !ours {
                    continue;
                }
                let Some(x) = vals[k] else {
                    continue;
                };
                past.clear();
                past.extend(vals[lo..k].iter().flatten());
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
                        let m = win.median();
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

/// A check's window of earlier values (a series' entries `lo..k`, those it has), sorted in
/// `f64::total_cmp`'s order as it slides forward.
#[derive(Default)]
struct Window {
    sorted: Vec<f64>,
    /// The series range it holds.
    lo: usize,
    hi: usize,
}

impl Window {
    /// Moves the window to entries `lo..hi` of `vals` (both ends only grow).
    fn slide(&mut self, vals: &[Option<f64>], lo: usize, hi: usize) {
        while self.hi < hi {
            if let Some(v) = vals[self.hi] {
                let at = self.sorted.partition_point(|x| x.total_cmp(&v).is_lt());
                self.sorted.insert(at, v);
            }
            self.hi += 1;
        }
        while self.lo < lo {
            if let Some(v) = vals[self.lo] {
                let at = self.sorted.partition_point(|x| x.total_cmp(&v).is_lt());
                self.sorted.remove(at);
            }
            self.lo += 1;
        }
    }

    /// The median of the window's values (the mean of the two middle ones when their number
    /// is even), in `f64::total_cmp`'s order; the window holds at least one.
    fn median(&self) -> f64 {
        let (v, n) = (&self.sorted, self.sorted.len());
        if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
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

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// As it slides over a series with gaps, the window holds the values of its range
        /// and its median is the sorted one, bit for bit.
        #[test]
        fn the_sliding_median_is_the_sorted_median(
            vals in proptest::collection::vec(
                proptest::option::weighted(0.8, proptest::prop_oneof![
                    proptest::num::f64::ANY,
                    -5.0f64..5.0,
                    proptest::sample::select(vec![0.0, -0.0, 1.0]),
                ]),
                1..60,
            ),
            width in 1usize..25,
        ) {
            let mut win = Window::default();
            for k in 0..=vals.len() {
                let lo = k.saturating_sub(width);
                win.slide(&vals, lo, k);
                let mut sorted: Vec<f64> = vals[lo..k].iter().flatten().copied().collect();
                sorted.sort_by(f64::total_cmp);
                let got: Vec<u64> = win.sorted.iter().map(|x| x.to_bits()).collect();
                let want: Vec<u64> = sorted.iter().map(|x| x.to_bits()).collect();
                proptest::prop_assert_eq!(got, want);
                let n = sorted.len();
                if n > 0 {
                    let median = if n % 2 == 1 {
                        sorted[n / 2]
                    } else {
                        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
                    };
                    proptest::prop_assert_eq!(win.median().to_bits(), median.to_bits());
                }
            }
        }
    }

    fn rec(symbol: &str, date: u8, rows: u64) -> SymbolDay {
        let mut d = SymbolDay::from_json(A).unwrap();
        d.symbol = symbol.into();
        d.date = format!("2024-01-{date:02}");
        d.rows = rows;
        d
    }

    proptest::proptest! {
        /// Merged (both in key order) or through a map (either not), the written file and
        /// the records kept for the checks are what a map from key to record gives: the
        /// history's last record of each key, replaced by this run's day of the key.
        #[test]
        fn merge_and_map_agree(
            prior in proptest::collection::vec((0usize..3, 1u8..6, 0u64..9), 0..12),
            ours in proptest::collection::btree_set((0usize..3, 1u8..6), 0..8),
            sort_prior in proptest::bool::ANY,
        ) {
            let syms = ["A", "B", "C"];
            let mut prior = prior;
            if sort_prior {
                prior.sort_by_key(|p| (p.0, p.1));
                prior.dedup_by_key(|p| (p.0, p.1));
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(FILE);
            let text: String = prior
                .iter()
                .map(|&(s, d, r)| rec(syms[s], d, r).to_json_line() + "\n")
                .collect();
            std::fs::write(&path, &text).unwrap();
            let days: Vec<SymbolDay> = ours.iter().map(|&(s, d)| rec(syms[s], d, 100)).collect();
            let mut want: BTreeMap<(usize, u8), u64> =
                prior.iter().map(|&(s, d, r)| ((s, d), r)).collect();
            let earlier: Vec<(usize, u8)> = prior
                .iter()
                .filter(|p| !ours.contains(&(p.0, p.1)))
                .map(|p| (p.0, p.1))
                .collect();
            for k in &ours {
                want.insert(*k, 100);
            }
            let p = read(&path).unwrap();
            // Each of this run's days is placed where its record is in the text.
            let placed = render_placed(&p, &days);
            for (d, at) in days.iter().zip(&placed.at) {
                let mut one = String::new();
                d.write_json_as(&mut one, false);
                proptest::prop_assert_eq!(&placed.text[at.clone()], one.as_str());
            }
            let kept = p.days_except(&days).unwrap();
            let kept: Vec<(String, String)> =
                kept.iter().map(|d| (d.symbol.clone(), d.date.clone())).collect();
            let earlier: Vec<(String, String)> = earlier
                .iter()
                .map(|&(s, d)| (syms[s].to_string(), format!("2024-01-{d:02}")))
                .collect();
            proptest::prop_assert_eq!(kept, earlier);
            proptest::prop_assert_eq!(write(&path, &p, &days).unwrap(), want.len() as u64);
            let got = std::fs::read_to_string(&path).unwrap();
            let expect: String = want
                .iter()
                .map(|(&(s, d), &r)| rec(syms[s], d, r).to_json_line() + "\n")
                .collect();
            proptest::prop_assert_eq!(got, expect);
        }
    }

    const A: &str = r#"{"symbol":"A","date":"2024-01-02","rows":3,"errors":0,"warnings":0,"nulls":0,"duplicates":0,"outliers":0,"min_price":1.5,"max_price":2.0,"mean_price":1.75,"median_spread":0.01,"volume":300.0}"#;

    /// Records are read up to their key; a bad body is an error naming its line only when
    /// the record is used, and a record replaced by this run's day is written from it.
    #[test]
    fn records_are_parsed_when_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let bad = r#"{"symbol":"B","date":"2024-01-02","rows":"many"}"#;
        // Another layout (whitespace) is read whole at once.
        let spaced = A
            .replace("\"A\"", "\"C\"")
            .replace(",\"rows\"", ", \"rows\"");
        std::fs::write(&path, format!("{A}\n\n{bad}\n{spaced}\n")).unwrap();
        let prior = read(&path).unwrap();
        assert_eq!(prior.len(), 3);
        let b_day = SymbolDay::from_json(&A.replace("\"A\"", "\"B\"")).unwrap();
        let kept = prior.days_except(std::slice::from_ref(&b_day)).unwrap();
        assert_eq!(
            kept.iter().map(|d| d.symbol.as_str()).collect::<Vec<_>>(),
            ["A", "C"]
        );
        let e = prior.days_except(&[]).unwrap_err().to_string();
        assert!(e.contains(&format!("{}:3", path.display())), "{e}");
        // B replaced by this run's day: the file is whole again, A and C kept byte for
        // byte, B written in the writer's layout without its file and line.
        let b = SymbolDay {
            symbol: "B".into(),
            file: Some("x.csv".into()),
            line: Some(9),
            ..kept[0].clone()
        };
        assert_eq!(write(&path, &prior, &[b]).unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], A);
        assert_eq!(lines[1], A.replace("\"A\"", "\"B\""));
        assert_eq!(lines[2], spaced);
        assert!(!text.contains("x.csv"));
        assert!(read(&path).unwrap().days_except(&[]).is_ok());
        // A line without a readable key is an error at once, naming it.
        std::fs::write(&path, format!("{A}\n{{\"symbol\":1}}\n")).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains(&format!("{}:2", path.display())), "{e}");
    }
}
