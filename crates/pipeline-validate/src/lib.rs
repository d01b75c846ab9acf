//! Data-quality validation for tick data: rules that run as streaming engine stages with
//! per-symbol state, quarantine failing rows with `file:line`, keep per-symbol-day metrics
//! and a history of them, and report a verdict a script trusts (JSON) and a page a person
//! reads (HTML).
//!
//! Main types: [`ValidationPlan`] (config in, [`StageFactory`](pipeline_core::StageFactory)s
//! out, [`ValidationReport`] at the end: what `tickpipe run` and `tickpipe validate` use);
//! [`Validator`] (the seed design's `validate_chunk` / `validate_file` / `summary()` /
//! `generate_report()` in one thread); [`financial_rules`] (the preset's rules, named and
//! cited); [`CustomRule`] (Rust closures and expressions); [`RulesFile`] (TOML rules);
//! [`Profiler`] / [`suggest`] (profile a sample, propose a rules file).
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
//! use pipeline_core::Chunk;
//! use pipeline_validate::{CustomRule, Severity, Validator};
//!
//! let t = 1_609_770_600_000_000_000i64; // 2021-01-04 09:30 New York
//! let col = |v: Vec<f64>| Arc::new(Float64Array::from(v)) as ArrayRef;
//! let batch = RecordBatch::try_from_iter([
//!     ("ts", Arc::new(TimestampNanosecondArray::from(vec![t, t + 1, t + 2]).with_timezone("UTC")) as ArrayRef),
//!     ("symbol", Arc::new(StringArray::from(vec!["MSFT"; 3])) as ArrayRef),
//!     ("price", col(vec![217.69, 0.0, 217.70])),
//!     ("size", col(vec![100.0, 100.0, 2e6])),
//!     ("bid", col(vec![217.68, 217.68, 217.69])),
//!     ("ask", col(vec![217.70, 217.70, 217.71])),
//! ])?;
//! let mut v = Validator::financial()?;
//! v.add_rule(CustomRule::expr("block_size", Severity::Warning, "size < 1e6")?)?;
//! let out = v.validate_chunk(Chunk::with_first_line(batch, 0, 0, 2)?)?;
//! assert_eq!(out.rejects[0].reason, "nonpositive_price"); // line 3 quarantined
//! assert_eq!(out.kept.unwrap().num_rows(), 2);
//! assert_eq!(v.summary().failures_by_rule["block_size"], 1); // warned, kept
//! let html = v.generate_report()?.to_html();
//! assert!(html.contains("id=\"tpv-rules\""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where validation runs
//! * **Standalone** (`tickpipe validate INPUT…`, [`Mode::Standalone`]): raw rows as read, no
//!   cleaning, so every defect of the files is counted. Rows failing an error rule are
//!   quarantined (a quarantine file is optional there); the exit code follows the verdict.
//! * **Inline** (`tickpipe run`, [`Mode::Inline`], on by default with the `financial`
//!   preset): after the cleaning stages and before the features, on the rows that will be
//!   written. It checks what cleaning left (anything it quarantines there is a row cleaning
//!   would have written), gathers the per-symbol-day metrics and the history, and runs the
//!   dataset rules. Cleaning has removed most row-level defects by then, so inline reports
//!   show mostly warnings, symbol-day and dataset findings; the standalone report is the one
//!   that measures the raw data.
//!
//! # Rules
//! The `financial` preset ([`financial_rules`] lists them with sources): `null_key`,
//! `nonpositive_price`, `nonpositive_size`, `crossed_quote`, `bar_ohlc`, `bounds`,
//! `ts_order` (error: quarantined); `null_value`, `locked_quote`, `tick_grid`,
//! `trade_outside_quote` (BN-HLS T4), `allowed_values`, `duplicate_row`, `outside_session`,
//! `non_trading_day`, `session_gap`, `price_jump`, `spread_outlier` (warnings: counted and
//! sampled, the row stays); `null_fraction`, `duplicate_fraction`, `outlier_fraction` (per
//! symbol-day); `rows_vs_history`, `missing_trading_day`, `duplicated_file`,
//! `schema_columns`, `schema_types` (dataset). Every severity can be changed per rule
//! (`[validation.severity]`, the rules file, or [`Validator::add_rules`]); `off` disables.
//! A row rule quarantines when its severity is `error` and it can decide when the row passes:
//! `price_jump` (needs two later rows) and `spread_outlier` (needs the day's median) decide
//! later, so with severity `error` they count toward a `fail` verdict but remove nothing.
//! A row is charged to the first error rule it breaks, in the order above; later rules do
//! not see quarantined rows (so T4 never judges a crossed quote).
//!
//! Thresholds: a rule fails when its failing share exceeds its threshold: `null_threshold`
//! for `null_value`, `duplicate_threshold` for `duplicate_row`, `outlier_threshold` for
//! `price_jump` and `spread_outlier`, `error_threshold` / `warning_threshold` for other row
//! rules by severity, 0 for symbol-day, file and dataset rules (any failure fails). The
//! verdict is `fail` when an error rule fails, `warn` when a warning rule fails, else `pass`.
//!
//! Custom rules: expressions (`[[rule]] expr = "bid <= ask and size < 1e6"`: numbers,
//! columns, `+ - * /`, comparisons, `and`/`or`/`not`, `abs`, `min`, `max`, `is_null`, text
//! equality with `==`/`!=`; a null operand makes the rule not apply to that row) and Rust
//! closures ([`CustomRule::new`]).
//!
//! # Streaming, state and determinism
//! One per-symbol stage ([`StageOrder::PerKey`](pipeline_core::StageOrder) on `symbol`) runs
//! every rule: row-local rules column-wise, stateful ones in one pass in row order with
//! per-symbol state (previous timestamp, rows at the current timestamp, a five-row price
//! window, the open symbol-day). Memory is O(symbols) plus about 250 bytes per closed
//! symbol-day (the metrics kept for the report and history). State is checkpointed and
//! restored exactly, so resume and retries continue where they stopped. Counts add,
//! examples are the smallest `(file, line)` per rule, histograms have fixed bins, file
//! fingerprints are sums of row hashes: the report does not depend on the worker count or the
//! chunk size (tested). All worker instances report to the plan's collector in `finish`.
//!
//! The median spread of a symbol-day is exact (to 1e-9) while the day has at most 4,096
//! distinct spreads (any tick-grid feed) and within 0.14% beyond. The NYSE calendar has
//! full-day holidays only (as gen-data): rows after an early close are not flagged, and the
//! gap rule does not look at the time from the last row to the close for that reason.
//!
//! # JSON report, schema version 1
//! A stable, versioned document ([`REPORT_SCHEMA_VERSION`]; fields are only ever added
//! within a version). Top level ([`ValidationReport`]): `schema_version`, `generator`,
//! `mode` (`standalone`|`inline`), `verdict` (`pass`|`warn`|`fail`), `fail_on`,
//! `rows_checked`, `rows_quarantined`, `total_findings`, `rules`, `columns`, `symbols`,
//! `days`, `symbol_days`, `files`, `returns_bps`, `spreads_bps`, `history`, `run`.
//! * `rules[]` ([`RuleResult`]): `name`, `category`, `severity` (null when off), `unit`
//!   (`rows`|`symbol_days`|`files`), `description`, `source`, `status`
//!   (`pass`|`fail`|`off`|`not_applicable`), `checked`, `failed`, `fraction`, `threshold`,
//!   `examples[]` ([`Example`]: `file`, `line`, `symbol`, `ts`, `values` {column: text},
//!   `note`).
//! * `columns[]`: `name`, `data_type`, `nulls`, `null_fraction`. `symbols[]`: `symbol`,
//!   `days`, `rows`, `errors`, `warnings`, `nulls`, `duplicates`, `outliers`, `min_price`,
//!   `max_price`, `median_spread`, `volume`. `days[]`: `date`, `rows`, `errors`, `warnings`,
//!   `symbols`, `missing`, `flagged`. `symbol_days[]` ([`SymbolDay`], also the history
//!   file's records): `symbol`, `date`, `rows`, `errors`, `warnings`, `nulls`, `duplicates`,
//!   `outliers`, `min_price`, `max_price`, `mean_price`, `median_spread`, `volume`, `file`,
//!   `line`. `files[]`: `file`, `rows`, `fingerprint`.
//! * `returns_bps`, `spreads_bps` ([`Histogram`]): `edges`, `counts`, `outliers`.
//! * `history`: `path`, `days_before`, `days_after` (null without history). `run`: `read`,
//!   `quarantined_before`, `removed_before` (null without a ledger).
//!
//! The history file (`quality_history.jsonl`) holds one [`SymbolDay`] per line without
//! `file`/`line`; a run replaces its own symbol-days and keeps the others. A line in the
//! layout tickpipe writes is read up to its `symbol` and `date`, and the rest of it only
//! when this run has no day of that key (a bad record is then an error naming its line);
//! a line in any other layout is read whole, and a bad one is an error at once.
//!
//! # Speed
//! `cargo run --release -p pipeline-validate --example validate_bench` measures the
//! financial preset over gen-data rows held in memory and prints precision and recall per
//! rule against the labels. On the shared 2-core dev machine: 2.5–3.0 M rows per
//! CPU-second on one thread (about 330 ns a row), short of the 8 M rows/s goal on two
//! cores; precision and recall 0.995–1.0 for every scored rule.

mod calendar;
mod collect;
mod cols;
mod day_codec;
mod expr;
mod history;
mod html;
mod model;
mod plan;
mod report;
mod rules;
mod rulesfile;
mod score;
mod stage;
mod suggest;
mod validator;

pub use calendar::{Calendar, CalendarKind, nyse_holidays};
pub use history::FILE as HISTORY_FILE;
pub use model::{Example, Histogram, SymbolDay};
pub use plan::{PendingReport, ValidationPlan, ValidationState};
pub use report::{
    ColumnStat, DayStat, FileStat, FinishOptions, HistoryInfo, Mode, PreparedReport,
    REPORT_SCHEMA_VERSION, RuleResult, RunCounts, Status, Summary, SymbolStat, ValidationReport,
    Verdict,
};
pub use rules::{
    Category, CustomRule, REPORT_ONLY_KEYS, RowCheck, RuleInfo, Severity, Unit, financial_rules,
};
pub use rulesfile::{AnomalySpec, ColumnRules, ExprRule, FileSettings, RulesFile};
pub use score::{LABELLED_RULES, Label, RuleScore, read_labels, score, scores_table};
pub use stage::ValidateStage;
pub use suggest::{Profiler, suggest};
pub use validator::{ChunkResult, FileResult, Finding, Validator};
