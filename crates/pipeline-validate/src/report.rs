//! [`ValidationReport`]: the versioned JSON document (schema in the crate docs), the verdict
//! and exit decision, and the dataset-level rules that need everything the stages saw
//! (history checks, missing trading days, duplicated files, schema findings).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use pipeline_core::{Error, Ledger, Result, SourceTable};
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, day_string, parse_day};
use crate::history;
use crate::model::{Ex, Example, Histogram, RETURN_EDGES, SPREAD_EDGES, SymbolDay};
use crate::rules::{Category, RuleSet, Severity, Unit, id};
use crate::stage::{Acc, fmt_ts};

/// Version of the JSON report schema. Fields may be added within a version; a field is never
/// removed or changes meaning without a new version.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Where validation ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `tickpipe validate INPUT`: raw rows as read, no cleaning.
    Standalone,
    /// Inside `tickpipe run`, after cleaning: the rows that are written.
    Inline,
}

/// The dataset verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No error or warning rule above its threshold.
    Pass,
    /// A warning rule above its threshold, no error rule.
    Warn,
    /// An error rule above its threshold.
    Fail,
}

impl Verdict {
    /// `pass`, `warn` or `fail`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// A rule's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Failing share at or below the threshold.
    Pass,
    /// Failing share above the threshold.
    Fail,
    /// Switched off (severity `off`, a setting of 0, or not in the preset).
    Off,
    /// Nothing to check (the columns it reads are absent).
    NotApplicable,
}

/// One rule's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleResult {
    /// Rule name.
    pub name: String,
    /// Rule family.
    pub category: Category,
    /// Severity it ran with; `None` when off.
    pub severity: Option<Severity>,
    /// What `checked` and `failed` count.
    pub unit: Unit,
    /// What a failure means.
    pub description: String,
    /// The source the rule follows.
    pub source: String,
    /// Outcome.
    pub status: Status,
    /// Units checked.
    pub checked: u64,
    /// Units failing.
    pub failed: u64,
    /// `failed / checked` (0 when nothing was checked).
    pub fraction: f64,
    /// Largest tolerated fraction.
    pub threshold: f64,
    /// Up to `examples_per_rule` failing examples, smallest `(file, line)` first.
    pub examples: Vec<Example>,
}

/// Nulls of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStat {
    /// Column name.
    pub name: String,
    /// Arrow type.
    pub data_type: String,
    /// Null values.
    pub nulls: u64,
    /// `nulls / rows`.
    pub null_fraction: f64,
}

/// One symbol's totals over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolStat {
    /// The symbol.
    pub symbol: String,
    /// Trading days with rows.
    pub days: u64,
    /// Rows.
    pub rows: u64,
    /// Rows quarantined.
    pub errors: u64,
    /// Row findings of warning or info severity.
    pub warnings: u64,
    /// Rows with a null value.
    pub nulls: u64,
    /// Duplicate rows.
    pub duplicates: u64,
    /// Price jumps and spread outliers.
    pub outliers: u64,
    /// Lowest price.
    pub min_price: Option<f64>,
    /// Highest price.
    pub max_price: Option<f64>,
    /// Median over days of the median spread.
    pub median_spread: Option<f64>,
    /// Total volume.
    pub volume: f64,
}

/// One trading day over all symbols.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayStat {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Rows.
    pub rows: u64,
    /// Rows quarantined.
    pub errors: u64,
    /// Row findings of warning or info severity.
    pub warnings: u64,
    /// Symbols with rows.
    pub symbols: u64,
    /// A trading day inside the data's span without any row.
    pub missing: bool,
    /// Some symbol's rows that day broke from its history (`rows_vs_history`).
    pub flagged: bool,
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileStat {
    /// Path as given.
    pub file: String,
    /// Rows validated.
    pub rows: u64,
    /// Hex sum of row hashes (equal for files with equal rows).
    pub fingerprint: String,
}

/// The metrics history this run read and wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryInfo {
    /// The history file.
    pub path: String,
    /// Symbol-days in it before this run.
    pub days_before: u64,
    /// Symbol-days in it after this run.
    pub days_after: u64,
}

/// Counts of the whole run taken from the engine's ledger (rows the reader quarantined never
/// reach validation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Rows read from inputs.
    pub read: u64,
    /// Rows quarantined by the reader or earlier stages, by reason (validation's own reasons
    /// excluded).
    pub quarantined_before: BTreeMap<String, u64>,
    /// Rows removed by cleaning rules, by rule.
    pub removed_before: BTreeMap<String, u64>,
}

/// The validation report (JSON schema version [`REPORT_SCHEMA_VERSION`]; see the crate docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `tickpipe pipeline-validate VERSION`.
    pub generator: String,
    /// Standalone or inline.
    pub mode: Mode,
    /// The dataset verdict.
    pub verdict: Verdict,
    /// The verdict that makes the command exit 1 (`fail`, or `warn` for warn and fail).
    pub fail_on: Verdict,
    /// Rows the rules saw.
    pub rows_checked: u64,
    /// Rows quarantined by error-severity rules.
    pub rows_quarantined: u64,
    /// Findings of every rule (the seed's `total_results`).
    pub total_findings: u64,
    /// Per rule, in rule order.
    pub rules: Vec<RuleResult>,
    /// Nulls per column.
    pub columns: Vec<ColumnStat>,
    /// Per symbol.
    pub symbols: Vec<SymbolStat>,
    /// Per trading day (all symbols), missing trading days included.
    pub days: Vec<DayStat>,
    /// Per symbol and day.
    #[serde(serialize_with = "symbol_days_or_none")]
    pub symbol_days: Vec<SymbolDay>,
    /// Per input file.
    pub files: Vec<FileStat>,
    /// Returns between consecutive accepted prices of a symbol-day, in basis points;
    /// `outliers`: price jumps (deviation from their neighbours).
    pub returns_bps: Histogram,
    /// Quoted spreads in basis points of the mid; `outliers`: spread outliers.
    pub spreads_bps: Histogram,
    /// The metrics history, when kept.
    pub history: Option<HistoryInfo>,
    /// The engine's counts, when given.
    pub run: Option<RunCounts>,
}

/// What [`ValidationPlan::finish`](crate::ValidationPlan::finish) needs besides the stages'
/// results.
#[derive(Debug, Clone, Default)]
pub struct FinishOptions<'a> {
    /// Names of the run's sources (file names in examples).
    pub sources: Option<&'a SourceTable>,
    /// The run's ledger (rows read, quarantined earlier).
    pub ledger: Option<&'a Ledger>,
    /// Folder of the metrics history file (`quality_history.jsonl`); `None`: no history.
    pub history_dir: Option<&'a Path>,
}

/// The seed's `get_validation_summary()`: totals, failures by rule, verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Rows the rules saw.
    pub rows_checked: u64,
    /// Findings of every rule.
    pub total_results: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// Findings by rule name (rules with none are left out).
    pub failures_by_rule: BTreeMap<String, u64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Columns a rule reads; it is not applicable when none of its column sets is complete.
fn needs(rule: usize) -> &'static [&'static [&'static str]] {
    match rule {
        id::NULL_KEY
        | id::TS_ORDER
        | id::OUTSIDE_SESSION
        | id::NON_TRADING_DAY
        | id::SESSION_GAP => &[&["ts"]],
        id::NONPOSITIVE_PRICE | id::TICK_GRID => &[&["price"], &["bid"], &["ask"]],
        id::NONPOSITIVE_SIZE => &[&["size"], &["bid_size"], &["ask_size"]],
        id::CROSSED_QUOTE | id::LOCKED_QUOTE | id::SPREAD_OUTLIER => &[&["bid", "ask"]],
        id::BAR_OHLC => &[&["open", "high", "low", "close"], &["volume"]],
        id::TRADE_OUTSIDE_QUOTE => &[&["price", "bid", "ask"]],
        id::NULL_VALUE => &[&["price"], &["size"], &["bid"], &["ask"]],
        id::PRICE_JUMP => &[&["price"], &["bid", "ask"]],
        _ => &[],
    }
}

fn ex_to_example(e: Ex, names: &dyn Fn(u32) -> String) -> Example {
    Example {
        file: if e.line == 0 {
            String::new()
        } else {
            names(e.source)
        },
        line: e.line,
        symbol: e.symbol,
        ts: e.ts.map(fmt_ts).or(e.date),
        values: e.values.into_iter().collect(),
        note: e.note,
    }
}

/// Builds the report from the merged results.
pub(crate) fn build(
    rs: &RuleSet,
    mode: Mode,
    acc: Option<Acc>,
    days: Vec<SymbolDay>,
    opts: &FinishOptions<'_>,
    cal: &Calendar,
    prefetched: Option<history::Prior>,
) -> Result<PreparedReport> {
    let s = &rs.settings;
    let mut acc = acc.unwrap_or_else(|| Acc::new(rs.rules.len()));
    let names = |id: u32| -> String {
        opts.sources
            .map(|t| t.name(id))
            .unwrap_or_else(|| format!("source {id}"))
    };
    // Symbol-days: sorted, parts of a split day merged, files named. Grouped by symbol
    // first: each stage instance closes a symbol's days in date order, so each group is
    // nearly always sorted already (sorting 6,290 days by two strings was a tenth of an
    // append's report).
    let mut groups: BTreeMap<String, Vec<SymbolDay>> = BTreeMap::new();
    for d in days {
        match groups.get_mut(d.symbol.as_str()) {
            Some(g) => g.push(d),
            None => {
                groups.insert(d.symbol.clone(), vec![d]);
            }
        }
    }
    let mut merged: Vec<SymbolDay> = Vec::new();
    for (_, mut g) in groups {
        if !g.is_sorted_by(|a, b| a.date <= b.date) {
            g.sort_by(|a, b| a.date.cmp(&b.date));
        }
        merged.reserve(g.len());
        merged.extend(g);
    }
    let days = merged;
    let mut merged: Vec<SymbolDay> = Vec::with_capacity(days.len());
    for d in days {
        match merged.last_mut() {
            Some(m) if m.symbol == d.symbol && m.date == d.date => m.merge(&d),
            _ => merged.push(d),
        }
    }
    for d in &mut merged {
        if let Some(src) = d.source.take() {
            d.file = Some(names(src));
        }
    }
    let days = merged;
    let ex = |rule: usize, e: Ex, acc: &mut Acc| {
        if acc.wants(rule, e.source, e.line, s.examples) {
            acc.keep(rule, e, s.examples);
        }
    };

    // Schema findings per file.
    let mut files_seen: BTreeSet<u32> = acc.files.iter().map(|f| f.0).collect();
    for (src, _, _) in &acc.schema {
        files_seen.insert(*src);
    }
    let n_files = files_seen.len() as u64;
    for rule in [id::SCHEMA_COLUMNS, id::SCHEMA_TYPES] {
        acc.checked[rule] = n_files;
        let bad: BTreeSet<u32> = acc
            .schema
            .iter()
            .filter(|p| p.1 == rule)
            .map(|p| p.0)
            .collect();
        acc.failed[rule] = bad.len() as u64;
        for src in bad {
            let notes: Vec<String> = acc
                .schema
                .iter()
                .filter(|p| p.0 == src && p.1 == rule)
                .map(|p| p.2.clone())
                .collect();
            let e = Ex {
                source: src,
                line: 1,
                symbol: String::new(),
                ts: None,
                date: None,
                values: vec![],
                note: notes.join("; "),
            };
            ex(rule, e, &mut acc);
        }
    }
    // Duplicated files: equal row counts and fingerprints.
    if rs.on(id::DUPLICATED_FILE) {
        let mut files = acc.files.clone();
        files.sort_by_key(|f| f.0);
        acc.checked[id::DUPLICATED_FILE] = files.len() as u64;
        let mut first: HashMap<(u64, u64), u32> = HashMap::new();
        for (src, rows, sum) in files {
            if rows == 0 {
                continue;
            }
            match first.get(&(rows, sum)) {
                Some(orig) => {
                    acc.failed[id::DUPLICATED_FILE] += 1;
                    let note = format!("same {rows} rows as {}", names(*orig));
                    ex(
                        id::DUPLICATED_FILE,
                        Ex {
                            source: src,
                            line: 1,
                            symbol: String::new(),
                            ts: None,
                            date: None,
                            values: vec![("duplicate_of".into(), names(*orig))],
                            note,
                        },
                        &mut acc,
                    );
                }
                None => {
                    first.insert((rows, sum), src);
                }
            }
        }
    }
    // Missing trading days per symbol.
    let mut by_symbol: BTreeMap<&str, Vec<&SymbolDay>> = BTreeMap::new();
    for d in &days {
        by_symbol.entry(d.symbol.as_str()).or_default().push(d);
    }
    let mut missing_dataset: BTreeSet<i32> = BTreeSet::new();
    if rs.on(id::MISSING_TRADING_DAY) {
        for (sym, ds) in &by_symbol {
            let have: BTreeSet<i32> = ds.iter().filter_map(|d| parse_day(&d.date)).collect();
            let (Some(&lo), Some(&hi)) = (have.first(), have.last()) else {
                continue;
            };
            for day in cal.trading_days(lo, hi) {
                acc.checked[id::MISSING_TRADING_DAY] += 1;
                if !have.contains(&day) {
                    acc.failed[id::MISSING_TRADING_DAY] += 1;
                    let date = day_string(day);
                    ex(
                        id::MISSING_TRADING_DAY,
                        Ex {
                            source: 0,
                            line: 0,
                            symbol: sym.to_string(),
                            ts: None,
                            date: Some(date.clone()),
                            values: vec![],
                            note: format!("{sym} has no rows on trading day {date}"),
                        },
                        &mut acc,
                    );
                }
            }
        }
    }
    let all_days: BTreeSet<i32> = days.iter().filter_map(|d| parse_day(&d.date)).collect();
    if cal.kind() != crate::calendar::CalendarKind::None
        && let (Some(&lo), Some(&hi)) = (all_days.first(), all_days.last())
    {
        for d in cal.trading_days(lo, hi) {
            if !all_days.contains(&d) {
                missing_dataset.insert(d);
            }
        }
    }
    // History: checks against earlier days, then the file is rewritten with this run's days
    // (on a thread of its own while the rest is built).
    let history_path = opts
        .history_dir
        .filter(|_| s.history)
        .map(|dir| dir.join(history::FILE));
    let prior = match (&history_path, prefetched) {
        (Some(_), Some(p)) => p,
        (Some(path), None) => history::read(path)?,
        (None, _) => history::Prior::default(),
    };
    let mut flagged_days: BTreeSet<String> = BTreeSet::new();
    let earlier = prior.days_except(&days)?;
    history::check(rs, &earlier, &days, &mut acc, &mut flagged_days);
    let (mut report, rendered) = std::thread::scope(|scope| {
        let writer = history_path.as_ref().map(|_| {
            let (prior, days) = (&prior, &days);
            scope.spawn(move || history::render_placed(prior, days))
        });
        let report = finish_build(
            rs,
            mode,
            acc,
            &days,
            &flagged_days,
            missing_dataset,
            by_symbol,
            names,
        );
        let rendered = writer.map(|w| {
            w.join()
                .map_err(|_| Error::Internal("rendering the quality history panicked".into()))
        });
        (report, rendered)
    });
    let (history, history_at) = match (history_path, rendered) {
        (Some(path), Some(r)) => {
            let r = r?;
            report.history = Some(HistoryInfo {
                path: path.display().to_string(),
                days_before: prior.len() as u64,
                days_after: r.records,
            });
            (Some((path, r.text)), r.at)
        }
        _ => (None, Vec::new()),
    };
    report.symbol_days = days;
    Ok(PreparedReport {
        report,
        history,
        history_at,
        rendered: None,
    })
}

/// A report built from everything the stages collected, not yet completed with the run's
/// ledger and without its history file written ([`ValidationPlan::prepare`]).
///
/// [`ValidationPlan::prepare`]: crate::ValidationPlan::prepare
#[derive(Debug)]
pub struct PreparedReport {
    report: ValidationReport,
    /// The history file and its new text.
    history: Option<(PathBuf, String)>,
    /// Where each symbol-day's record is in the history's text (empty without a history).
    history_at: Vec<std::ops::Range<usize>>,
    /// The parts of the JSON and HTML reports the run's ledger does not change, when they
    /// were made ahead ([`PreparedReport::render_ahead`]).
    rendered: Option<Rendered>,
}

/// See [`PreparedReport::rendered`].
#[derive(Debug)]
struct Rendered {
    /// [`days_block`] of the report's days.
    days: String,
    /// [`crate::html::fragment_tail`] of the report.
    html_tail: String,
}

impl PreparedReport {
    /// Makes the parts of the JSON and HTML reports that the run's ledger does not change
    /// (the symbol-days, most of the JSON; every section of the page but the verdict), for
    /// [`complete_into`](Self::complete_into): the thread that prepares the report while the
    /// run ends does this too (on a one-day append to five years of days, the two took
    /// 4 and 5 ms after the run).
    pub(crate) fn render_ahead(&mut self) {
        let report = &self.report;
        let history = self.history.as_ref().map(|(_, text)| text.as_str());
        let at = &self.history_at;
        let (days, html_tail) = std::thread::scope(|scope| {
            let days = scope.spawn(|| match history {
                // Each day's JSON begins with its history record, written already.
                Some(text) if at.len() == report.symbol_days.len() => {
                    days_block_from(&report.symbol_days, |i| &text[at[i].clone()])
                }
                _ => days_block(&report.symbol_days),
            });
            let tail = crate::html::fragment_tail(report);
            (days.join(), tail)
        });
        // A panicked thread leaves the parts to be made when the report is written.
        if let Ok(days) = days {
            self.rendered = Some(Rendered { days, html_tail });
        }
    }

    /// [`complete`](Self::complete), then writes the JSON report to `json` and the HTML page
    /// to `page` (each to a temporary file, then renamed) and returns the report with its
    /// HTML fragment (for a page that embeds it).
    pub fn complete_into(
        mut self,
        ledger: Option<&Ledger>,
        json: &Path,
        page: &Path,
    ) -> Result<(ValidationReport, String)> {
        let rendered = self.rendered.take();
        let report = self.complete(ledger)?;
        let (days, tail) = match &rendered {
            Some(r) => (Cow::Borrowed(r.days.as_str()), Some(r.html_tail.as_str())),
            None => (Cow::Owned(days_block(&report.symbol_days)), None),
        };
        let days = days.as_ref();
        // The JSON (megabytes over a long history) is written beside the page.
        let html = std::thread::scope(|scope| {
            let writer = scope.spawn(|| report.write_json_with(json, days));
            let html = match tail {
                Some(tail) => crate::html::fragment_with_tail(&report, tail),
                None => report.html_fragment(),
            };
            let page_written = report.write_html_with(page, &html);
            writer
                .join()
                .map_err(|_| Error::Internal("writing the JSON report panicked".into()))?
                .and(page_written)
                .map(|()| html)
        })?;
        Ok((report, html))
    }

    /// The report with the run's counts from `ledger` (rows read, quarantined and removed
    /// before validation), after writing the history file.
    pub fn complete(self, ledger: Option<&Ledger>) -> Result<ValidationReport> {
        let mut report = self.report;
        if let Some((path, text)) = &self.history {
            write_atomic(path, text.as_bytes())?;
        }
        report.run = ledger.map(|l| {
            let ours: BTreeSet<&str> = report.rules.iter().map(|r| r.name.as_str()).collect();
            RunCounts {
                read: l.read,
                quarantined_before: l
                    .quarantined
                    .iter()
                    .filter(|(k, _)| !ours.contains(k.as_str()))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                removed_before: l.removed.clone(),
            }
        });
        Ok(report)
    }
}

/// The rest of [`build`] once the history checks have run: rule results, per-column,
/// per-symbol and per-day statistics, files (`symbol_days` and `history` are left empty for
/// the caller).
#[allow(clippy::too_many_arguments)]
fn finish_build(
    rs: &RuleSet,
    mode: Mode,
    mut acc: Acc,
    days: &[SymbolDay],
    flagged_days: &BTreeSet<String>,
    missing_dataset: BTreeSet<i32>,
    by_symbol: BTreeMap<&str, Vec<&SymbolDay>>,
    names: impl Fn(u32) -> String,
) -> ValidationReport {
    let s = &rs.settings;

    // Rule results.
    let cols: BTreeSet<&str> = acc.col_types.iter().map(|(c, _)| c.as_str()).collect();
    let mut results = Vec::with_capacity(rs.rules.len());
    let mut examples = std::mem::take(&mut acc.examples);
    for (i, r) in rs.rules.iter().enumerate() {
        let checked = match r.info.unit {
            Unit::Rows => acc.rows,
            _ => acc.checked[i],
        };
        let failed = acc.failed[i];
        let applicable = match i {
            id::BOUNDS => s.bounds.iter().any(|b| cols.contains(b.0.as_str())),
            id::ALLOWED_VALUES => s.allowed.iter().any(|a| cols.contains(a.0.as_str())),
            _ => {
                let n = needs(i);
                n.is_empty() || n.iter().any(|set| set.iter().all(|c| cols.contains(c)))
            }
        };
        let fraction = if checked > 0 {
            failed as f64 / checked as f64
        } else {
            0.0
        };
        let status = if r.severity.is_none() {
            Status::Off
        } else if !applicable || (checked == 0 && failed == 0) {
            Status::NotApplicable
        } else if fraction > r.threshold || (checked == 0 && failed > 0) {
            Status::Fail
        } else {
            Status::Pass
        };
        results.push(RuleResult {
            name: r.info.name.clone(),
            category: r.info.category,
            severity: r.severity,
            unit: r.info.unit,
            description: r.info.description.clone(),
            source: r.info.source.clone(),
            status,
            checked,
            failed,
            fraction,
            threshold: r.threshold,
            examples: std::sync::Arc::unwrap_or_clone(std::mem::take(&mut examples[i]))
                .into_iter()
                .map(|e| ex_to_example(e, &names))
                .collect(),
        });
    }
    let verdict = verdict_of(&results);
    let rows_quarantined = rs
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.info.unit == Unit::Rows && r.severity == Some(Severity::Error))
        .map(|(i, _)| acc.failed[i])
        .sum::<u64>()
        .min(acc.rows);
    let total_findings = results.iter().map(|r| r.failed).sum();

    let mut columns: Vec<ColumnStat> = acc
        .col_types
        .iter()
        .map(|(c, t)| {
            let nulls = acc
                .col_nulls
                .iter()
                .find(|(n, _)| n == c)
                .map_or(0, |x| x.1);
            ColumnStat {
                name: c.clone(),
                data_type: t.clone(),
                nulls,
                null_fraction: if acc.rows > 0 {
                    nulls as f64 / acc.rows as f64
                } else {
                    0.0
                },
            }
        })
        .collect();
    columns.sort_by(|a, b| a.name.cmp(&b.name));

    let symbols: Vec<SymbolStat> = by_symbol
        .iter()
        .map(|(sym, ds)| {
            let mut spreads: Vec<f64> = ds.iter().filter_map(|d| d.median_spread).collect();
            spreads.sort_by(f64::total_cmp);
            let fold = |f: fn(&SymbolDay) -> Option<f64>, g: fn(f64, f64) -> f64| {
                ds.iter().filter_map(|d| f(d)).reduce(g)
            };
            SymbolStat {
                symbol: sym.to_string(),
                days: ds.len() as u64,
                rows: ds.iter().map(|d| d.rows).sum(),
                errors: ds.iter().map(|d| d.errors).sum(),
                warnings: ds.iter().map(|d| d.warnings).sum(),
                nulls: ds.iter().map(|d| d.nulls).sum(),
                duplicates: ds.iter().map(|d| d.duplicates).sum(),
                outliers: ds.iter().map(|d| d.outliers).sum(),
                min_price: fold(|d| d.min_price, f64::min),
                max_price: fold(|d| d.max_price, f64::max),
                median_spread: spreads.get(spreads.len().saturating_sub(1) / 2).copied(),
                volume: ds.iter().map(|d| d.volume).sum(),
            }
        })
        .collect();
    drop(by_symbol);

    let mut per_day: BTreeMap<i32, DayStat> = BTreeMap::new();
    for d in days {
        let Some(k) = parse_day(&d.date) else {
            continue;
        };
        let e = per_day.entry(k).or_insert_with(|| DayStat {
            date: d.date.clone(),
            rows: 0,
            errors: 0,
            warnings: 0,
            symbols: 0,
            missing: false,
            flagged: false,
        });
        e.rows += d.rows;
        e.errors += d.errors;
        e.warnings += d.warnings;
        e.symbols += 1;
        e.flagged |= flagged_days.contains(&d.date);
    }
    for d in missing_dataset {
        per_day.insert(
            d,
            DayStat {
                date: day_string(d),
                rows: 0,
                errors: 0,
                warnings: 0,
                symbols: 0,
                missing: true,
                flagged: false,
            },
        );
    }
    let mut files: Vec<(u32, u64, u64)> = acc.files.clone();
    files.sort_by_key(|f| f.0);
    ValidationReport {
        schema_version: REPORT_SCHEMA_VERSION,
        generator: format!("tickpipe pipeline-validate {}", env!("CARGO_PKG_VERSION")),
        mode,
        verdict,
        fail_on: if s.fail_on_warn {
            Verdict::Warn
        } else {
            Verdict::Fail
        },
        rows_checked: acc.rows,
        rows_quarantined,
        total_findings,
        rules: results,
        columns,
        symbols,
        days: per_day.into_values().collect(),
        symbol_days: Vec::new(),
        files: files
            .into_iter()
            .map(|(src, rows, sum)| FileStat {
                file: names(src),
                rows,
                fingerprint: format!("{sum:016x}"),
            })
            .collect(),
        returns_bps: acc
            .returns
            .take()
            .unwrap_or_else(|| Histogram::new(&RETURN_EDGES)),
        spreads_bps: acc
            .spreads
            .take()
            .unwrap_or_else(|| Histogram::new(&SPREAD_EDGES)),
        history: None,
        run: None,
    }
}

/// Results of the row rules from counts so far (no examples, no dataset rules).
pub(crate) fn provisional(rs: &RuleSet, acc: &Acc) -> Vec<RuleResult> {
    rs.rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.info.unit == Unit::Rows)
        .map(|(i, r)| {
            let failed = acc.failed[i];
            let fraction = if acc.rows > 0 {
                failed as f64 / acc.rows as f64
            } else {
                0.0
            };
            RuleResult {
                name: r.info.name.clone(),
                category: r.info.category,
                severity: r.severity,
                unit: r.info.unit,
                description: r.info.description.clone(),
                source: r.info.source.clone(),
                status: if r.severity.is_none() {
                    Status::Off
                } else if fraction > r.threshold {
                    Status::Fail
                } else {
                    Status::Pass
                },
                checked: acc.rows,
                failed,
                fraction,
                threshold: r.threshold,
                examples: Vec::new(),
            }
        })
        .collect()
}

/// The verdict of a set of rule results.
pub(crate) fn verdict_of(results: &[RuleResult]) -> Verdict {
    let mut v = Verdict::Pass;
    for r in results.iter().filter(|r| r.status == Status::Fail) {
        match r.severity {
            Some(Severity::Error) => return Verdict::Fail,
            Some(Severity::Warning) => v = Verdict::Warn,
            _ => {}
        }
    }
    v
}

impl ValidationReport {
    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The exit code for `tickpipe validate`: 1 when the verdict reaches `fail_on`, else 0
    /// (2, usage or input errors, is the CLI's).
    pub fn exit_code(&self) -> i32 {
        if self.verdict >= self.fail_on && self.verdict != Verdict::Pass {
            1
        } else {
            0
        }
    }

    /// Totals, findings by rule, verdict.
    pub fn summary(&self) -> Summary {
        Summary {
            rows_checked: self.rows_checked,
            total_results: self.total_findings,
            rows_quarantined: self.rows_quarantined,
            failures_by_rule: self
                .rules
                .iter()
                .filter(|r| r.failed > 0)
                .map(|r| (r.name.clone(), r.failed))
                .collect(),
            verdict: self.verdict,
        }
    }

    /// A rule's result by name.
    pub fn rule(&self, name: &str) -> Option<&RuleResult> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The report as JSON: one top-level field per line and one array element (a rule, a
    /// symbol-day, a file) per line, compact within (a fully indented report of 6,290
    /// symbol-days was 2.9 MB and took half again as long to write).
    pub fn to_json(&self) -> Result<String> {
        self.to_json_with(&days_block(&self.symbol_days))
    }

    /// [`to_json`](Self::to_json) with the `symbol_days` entry, [`days_block`] of this
    /// report's days, written already.
    fn to_json_with(&self, days: &str) -> Result<String> {
        let shell = self.json_shell()?;
        let (before, after) = split_shell(&shell)?;
        Ok([before, days, after].concat())
    }

    /// Writes [`to_json_with`](Self::to_json_with)'s text (temp file, then rename) without
    /// gathering it in memory first (a copy of 1.9 MB on the demo layout's append).
    fn write_json_with(&self, path: &Path, days: &str) -> Result<()> {
        let shell = self.json_shell()?;
        let (before, after) = split_shell(&shell)?;
        write_atomic_parts(
            path,
            &[before.as_bytes(), days.as_bytes(), after.as_bytes()],
        )
    }

    /// The JSON report with an empty `symbol_days`, serialised by serde with the line
    /// formatter.
    fn json_shell(&self) -> Result<String> {
        // The symbol-days (6,290 over five years of five symbols, most of the file) are
        // written by `day_codec`, in the same bytes, at half the cost of serde's derive; the
        // rest by serde with the line formatter, `symbol_days` empty, filled in after.
        let mut out = Vec::with_capacity(1 << 16);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, LineFormatter::default());
        let shell = {
            let _apart = DaysApart::set();
            self.serialize(&mut ser)
        };
        shell.map_err(|e| Error::Internal(format!("validation report: {e}")))?;
        String::from_utf8(out).map_err(|e| Error::Internal(format!("validation report: {e}")))
    }

    /// Parses a JSON report (of this schema version).
    pub fn from_json(text: &str) -> Result<ValidationReport> {
        let r: ValidationReport = serde_json::from_str(text)
            .map_err(|e| Error::Usage(format!("not a validation report: {e}")))?;
        if r.schema_version != REPORT_SCHEMA_VERSION {
            return Err(Error::Usage(format!(
                "validation report schema {} (this tickpipe reads {REPORT_SCHEMA_VERSION})",
                r.schema_version
            )));
        }
        Ok(r)
    }

    /// Writes the JSON report (temp file, then rename).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json()?.as_bytes())
    }

    /// The self-contained HTML page.
    pub fn to_html(&self) -> String {
        crate::html::page(self)
    }

    /// The quality section alone, with its scoped style, for another report to embed (the
    /// run report of pipeline-monitor).
    pub fn html_fragment(&self) -> String {
        crate::html::fragment(self)
    }

    /// Writes the HTML page (temp file, then rename).
    pub fn write_html(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_html().as_bytes())
    }

    /// Writes the HTML page around `fragment`, this report's [`html_fragment`] made
    /// already (a run embeds the fragment in its own report too: made once, not twice).
    ///
    /// [`html_fragment`]: ValidationReport::html_fragment
    pub fn write_html_with(&self, path: &Path, fragment: &str) -> Result<()> {
        write_atomic(path, crate::html::page_with(self, fragment).as_bytes())
    }

    /// Writes JSON or HTML by the file's extension (`.json`, `.html`/`.htm`).
    pub fn write(&self, path: &Path) -> Result<()> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => self.write_json(path),
            Some("html" | "htm") => self.write_html(path),
            _ => Err(Error::Usage(format!(
                "{}: a report file ends in .json or .html",
                path.display()
            ))),
        }
    }
}

/// Writes `bytes` to `path` through a temp file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_parts(path, &[bytes])
}

thread_local! {
    /// Set while [`ValidationReport::to_json`] serialises the report without its
    /// symbol-days (it writes them itself).
    static DAYS_APART: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A JSON report's shell ([`ValidationReport::to_json`] without the symbol-days) around
/// its empty `symbol_days` entry. Top-level keys are the only ones at the start of a line
/// with this indent (string values hold no raw newline), and the report has one
/// `symbol_days`.
fn split_shell(shell: &str) -> Result<(&str, &str)> {
    let at = shell
        .find(EMPTY_DAYS)
        .ok_or_else(|| Error::Internal("validation report: no symbol_days".into()))?;
    Ok((&shell[..at], &shell[at + EMPTY_DAYS.len()..]))
}

/// [`write_atomic`] of the concatenation of `parts`.
fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    for part in parts {
        f.write_all(part).map_err(|e| Error::io(&tmp, e))?;
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The `symbol_days` entry as the shell of [`ValidationReport::to_json`] has it, empty.
const EMPTY_DAYS: &str = "\n  \"symbol_days\": []";

/// [`days_block`], with each day's JSON begun from `record(i)`, the history record of
/// `days[i]` ([`SymbolDay::write_json_as`] without its origin): the same bytes, without
/// formatting every number twice (6,290 days on the demo layout's append).
fn days_block_from<'a>(days: &[SymbolDay], record: impl Fn(usize) -> &'a str) -> String {
    days_block_with(days, |i, d, out| match record(i).strip_suffix('}') {
        Some(body) => {
            out.push_str(body);
            d.write_origin(out);
            out.push('}');
        }
        None => d.write_json(out),
    })
}

/// The `symbol_days` entry of [`ValidationReport::to_json`] for `days`, one per line.
fn days_block(days: &[SymbolDay]) -> String {
    days_block_with(days, |_, d, out| d.write_json(out))
}

/// The `symbol_days` entry for `days`, each day's JSON written by `write(i, day, out)`.
fn days_block_with(days: &[SymbolDay], write: impl Fn(usize, &SymbolDay, &mut String)) -> String {
    // About 300 bytes a day (1.9 MB for the demo layout's 6,290).
    let mut out = String::with_capacity(32 + days.len() * 320);
    out.push_str("\n  \"symbol_days\": [");
    for (i, d) in days.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        write(i, d, &mut out);
    }
    out.push_str(if days.is_empty() { "]" } else { "\n  ]" });
    out
}

/// Sets [`DAYS_APART`] until dropped (a panicking serializer clears it too).
struct DaysApart;

impl DaysApart {
    fn set() -> DaysApart {
        DAYS_APART.set(true);
        DaysApart
    }
}

impl Drop for DaysApart {
    fn drop(&mut self) {
        DAYS_APART.set(false);
    }
}

/// `symbol_days` as serde writes it, or an empty list while [`DAYS_APART`] is set.
fn symbol_days_or_none<S: serde::Serializer>(
    days: &[SymbolDay],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    if DAYS_APART.get() {
        s.collect_seq(std::iter::empty::<&SymbolDay>())
    } else {
        s.collect_seq(days)
    }
}

/// A JSON formatter that breaks lines only at the top two levels: each field of the top
/// object, and each element of a top-level array, on a line of its own, indented; anything
/// deeper compact.
#[derive(Default)]
struct LineFormatter {
    depth: usize,
    has_value: bool,
}

impl LineFormatter {
    /// Levels that get a line per entry.
    const LINED: usize = 2;

    fn line<W: ?Sized + std::io::Write>(&self, w: &mut W, depth: usize) -> std::io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + std::io::Write>(&mut self, w: &mut W, b: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b)
    }

    fn close<W: ?Sized + std::io::Write>(&mut self, w: &mut W, b: &[u8]) -> std::io::Result<()> {
        self.depth -= 1;
        if self.depth < Self::LINED && self.has_value {
            self.line(w, self.depth)?;
        }
        self.has_value = true;
        w.write_all(b)
    }

    fn entry<W: ?Sized + std::io::Write>(&self, w: &mut W, first: bool) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.depth <= Self::LINED {
            self.line(w, self.depth)?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for LineFormatter {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.entry(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.entry(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(if self.depth <= Self::LINED {
            b": "
        } else {
            b":"
        })
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report as serde's derive writes it with the line formatter.
    fn via_serde(r: &ValidationReport) -> String {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, LineFormatter::default());
        r.serialize(&mut ser).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// `to_json` splices in the symbol-days it writes itself: the bytes are serde's, for
    /// no day, one, and several (a symbol that needs escaping, a missing price).
    /// A day's JSON begun from its history record is the JSON written whole, with and
    /// without each origin field.
    #[test]
    fn the_days_block_from_history_records_is_the_same_bytes() {
        let mut days = Vec::new();
        for k in 0..8u64 {
            let text = format!(
                "{{\"symbol\":\"S{k}\",\"date\":\"2024-01-0{}\",\"rows\":{k},\"errors\":0,\
                 \"warnings\":1,\"nulls\":0,\"duplicates\":0,\"outliers\":0,\"min_price\":1.5,\
                 \"max_price\":null,\"mean_price\":0.30000000000000004,\"median_spread\":null,\
                 \"volume\":{k}.25}}",
                1 + k % 9
            );
            let mut d = SymbolDay::from_json(&text).unwrap();
            d.file = (k % 2 == 0).then(|| format!("f{k}.csv"));
            d.line = (k % 3 == 0).then_some(k * 10);
            d.source = (k % 4 == 0).then_some(k as u32);
            days.push(d);
        }
        let records: Vec<String> = days
            .iter()
            .map(|d| {
                let mut s = String::new();
                d.write_json_as(&mut s, false);
                s
            })
            .collect();
        for n in [0, 1, days.len()] {
            assert_eq!(
                days_block_from(&days[..n], |i| records[i].as_str()),
                days_block(&days[..n])
            );
        }
    }

    #[test]
    fn to_json_writes_the_bytes_serde_would() {
        for n in [0usize, 1, 3] {
            let plan = crate::ValidationPlan::from_config(
                &pipeline_core::Config::default(),
                Mode::Standalone,
            )
            .unwrap();
            let mut state = serde_json::to_value(plan.state().unwrap()).unwrap();
            state["days"] = (0..n)
                .map(|i| {
                    serde_json::to_value(SymbolDay {
                        symbol: if i == 1 { "B\"R\\K".into() } else { "A".into() },
                        date: format!("2024-01-0{}", i + 2),
                        rows: 10 + i as u64,
                        errors: 0,
                        warnings: 1,
                        nulls: 0,
                        duplicates: 0,
                        outliers: 0,
                        min_price: Some(1.5),
                        max_price: (i != 2).then_some(2.25),
                        mean_price: Some(1.0 / 3.0),
                        median_spread: None,
                        volume: 1e21,
                        file: None,
                        line: Some(3),
                        source: Some(0),
                    })
                    .unwrap()
                })
                .collect();
            plan.absorb(serde_json::from_value(state).unwrap()).unwrap();
            let r = plan.finish(&FinishOptions::default()).unwrap();
            assert_eq!(r.symbol_days.len(), n);
            assert_eq!(r.to_json().unwrap(), via_serde(&r), "{n} days");
            assert_eq!(
                ValidationReport::from_json(&r.to_json().unwrap()).unwrap(),
                r
            );
        }
    }
}
