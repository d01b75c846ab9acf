//! The rule registry: severities, the built-in rules of the `financial` preset with their
//! sources, custom rules (TOML expressions and Rust closures), and the [`RuleSet`] a plan
//! compiles from `[validation]` plus a rules file.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arrow_array::BooleanArray;
use pipeline_core::{Chunk, Config, Error, Result};
use serde::{Deserialize, Serialize};

use crate::calendar::CalendarKind;
use crate::expr::Expr;
use crate::rulesfile::{AnomalySpec, RulesFile};

/// How serious a failing rule is.
///
/// `error`: the row is quarantined (row rules) and a share above the rule's threshold makes
/// the verdict `fail`. `warning`: counted and sampled, the row stays; above the threshold the
/// verdict is at least `warn`. `info`: counted and sampled, never changes the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Quarantine the row; can fail the dataset.
    Error,
    /// Keep the row; can make the verdict `warn`.
    Warning,
    /// Keep the row; for information only.
    Info,
}

impl Severity {
    /// Parses `error`, `warning` or `info`; `off` gives `None`.
    pub fn parse(key: &str, s: &str) -> Result<Option<Severity>> {
        match s {
            "error" => Ok(Some(Severity::Error)),
            "warning" | "warn" => Ok(Some(Severity::Warning)),
            "info" => Ok(Some(Severity::Info)),
            "off" => Ok(None),
            other => Err(Error::config(
                key,
                format!("unknown severity `{other}`; expected error, warning, info or off"),
            )),
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The family a rule belongs to (the seed design's grouping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Columns, types, nullability, allowed values.
    Schema,
    /// Value ranges, price grid, spreads.
    Range,
    /// Market-data rules (quotes, bars, time order, session, jumps).
    Market,
    /// Shares of nulls, duplicates, outliers per symbol-day.
    Statistical,
    /// Whole-dataset checks (history, missing days, duplicated files).
    Dataset,
    /// User rules (TOML expressions, Rust closures, history checks).
    Custom,
}

/// What a rule counts: rows, symbol-days or files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Rows; the failing share is failing rows / rows checked.
    Rows,
    /// Symbol-days; any failing symbol-day fails the rule (threshold 0 unless set).
    SymbolDays,
    /// Input files.
    Files,
}

/// A rule's name, family, default severity, what it counts, and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// Short unique name, used as the quarantine reason and in reports (e.g. `crossed_quote`).
    pub name: String,
    /// Rule family.
    pub category: Category,
    /// Severity (the preset default until overridden).
    pub severity: Severity,
    /// What the rule counts.
    pub unit: Unit,
    /// What a failure means.
    pub description: String,
    /// The source the rule follows (paper, regulation, tool).
    pub source: String,
}

/// Indices of the built-in rules in every [`RuleSet`] (custom rules follow them).
pub(crate) mod id {
    pub const NULL_KEY: usize = 0;
    pub const NONPOSITIVE_PRICE: usize = 1;
    pub const NONPOSITIVE_SIZE: usize = 2;
    pub const CROSSED_QUOTE: usize = 3;
    pub const BAR_OHLC: usize = 4;
    pub const BOUNDS: usize = 5;
    pub const TS_ORDER: usize = 6;
    pub const NULL_VALUE: usize = 7;
    pub const LOCKED_QUOTE: usize = 8;
    pub const TICK_GRID: usize = 9;
    pub const TRADE_OUTSIDE_QUOTE: usize = 10;
    pub const ALLOWED_VALUES: usize = 11;
    pub const DUPLICATE_ROW: usize = 12;
    pub const OUTSIDE_SESSION: usize = 13;
    pub const NON_TRADING_DAY: usize = 14;
    pub const SESSION_GAP: usize = 15;
    pub const PRICE_JUMP: usize = 16;
    pub const SPREAD_OUTLIER: usize = 17;
    pub const NULL_FRACTION: usize = 18;
    pub const DUPLICATE_FRACTION: usize = 19;
    pub const OUTLIER_FRACTION: usize = 20;
    pub const ROWS_VS_HISTORY: usize = 21;
    pub const MISSING_TRADING_DAY: usize = 22;
    pub const DUPLICATED_FILE: usize = 23;
    pub const SCHEMA_COLUMNS: usize = 24;
    pub const SCHEMA_TYPES: usize = 25;
    /// Number of built-in rules.
    pub const COUNT: usize = 26;
}

const BNHLS: &str = "Barndorff-Nielsen, Hansen, Lunde & Shephard (2009), Realized kernels in practice, Econometrics Journal 12";

/// The built-in rules in index order: (name, category, default severity, unit, description,
/// source).
const BUILTIN: [(&str, Category, Severity, Unit, &str, &str); id::COUNT] = [
    (
        "null_key",
        Category::Schema,
        Severity::Error,
        Unit::Rows,
        "`ts` or `symbol` is null: the row cannot be placed in time or attributed to an instrument",
        "tick data model (DESIGN.md): every row has a time and a symbol",
    ),
    (
        "nonpositive_price",
        Category::Range,
        Severity::Error,
        Unit::Rows,
        "price, bid or ask is zero, negative or not finite",
        "Barndorff-Nielsen et al. (2009), rule P2 (entries with a zero bid, ask or price)",
    ),
    (
        "nonpositive_size",
        Category::Range,
        Severity::Error,
        Unit::Rows,
        "trade size is zero, negative or not finite, or a quote size is negative",
        "a trade moves a positive quantity (the seed's range validation: size > 0)",
    ),
    (
        "crossed_quote",
        Category::Market,
        Severity::Error,
        Unit::Rows,
        "bid above ask (negative spread)",
        "Barndorff-Nielsen et al. (2009), rule Q2; SEC Regulation NMS Rule 610(d)",
    ),
    (
        "bar_ohlc",
        Category::Market,
        Severity::Error,
        Unit::Rows,
        "bar with high below max(open, close, low), low above min(open, close), or volume < 0",
        "definition of OHLC bars (López de Prado 2018, ch. 2)",
    ),
    (
        "bounds",
        Category::Range,
        Severity::Error,
        Unit::Rows,
        "value outside its column's [min, max] from the rules file",
        "rules file (`[columns.NAME] min/max`), as Great Expectations' expect_column_values_to_be_between",
    ),
    (
        "ts_order",
        Category::Market,
        Severity::Error,
        Unit::Rows,
        "timestamp earlier than the previous row of the same symbol",
        "time priority: a symbol's ticks are recorded in time order (DESIGN.md)",
    ),
    (
        "null_value",
        Category::Schema,
        Severity::Warning,
        Unit::Rows,
        "price, size, bid or ask (or a not_null column of the rules file) is null",
        "seed ValidationConfig.null_threshold; Deequ completeness (Schelter et al. 2018)",
    ),
    (
        "locked_quote",
        Category::Market,
        Severity::Warning,
        Unit::Rows,
        "bid equals ask (zero spread)",
        "SEC Regulation NMS Rule 610(d) (locked quotations)",
    ),
    (
        "tick_grid",
        Category::Range,
        Severity::Warning,
        Unit::Rows,
        "price, bid or ask off the price grid (tick_size at $1 and above, $0.0001 below)",
        "SEC Regulation NMS Rule 612 (minimum pricing increment)",
    ),
    (
        "trade_outside_quote",
        Category::Market,
        Severity::Warning,
        Unit::Rows,
        "trade price below bid − spread or above ask + spread",
        BNHLS,
    ),
    (
        "allowed_values",
        Category::Schema,
        Severity::Warning,
        Unit::Rows,
        "value not in its column's allowed list from the rules file (exchange, condition codes)",
        "rules file (`[columns.NAME] allowed`), as Great Expectations' expect_column_values_to_be_in_set",
    ),
    (
        "duplicate_row",
        Category::Statistical,
        Severity::Warning,
        Unit::Rows,
        "exact copy of an earlier row of the symbol at the same timestamp",
        "seed statistical validation (duplicates); Deequ uniqueness (Schelter et al. 2018)",
    ),
    (
        "outside_session",
        Category::Market,
        Severity::Warning,
        Unit::Rows,
        "row outside the session hours ([preprocessing] session_open/close/timezone)",
        "Barndorff-Nielsen et al. (2009), rule P1 (entries outside 9:30–16:00)",
    ),
    (
        "non_trading_day",
        Category::Market,
        Severity::Warning,
        Unit::Rows,
        "row on a weekend or exchange holiday (the calendar gen-data uses)",
        "NYSE holiday rules; Barndorff-Nielsen et al. (2009), rule P1",
    ),
    (
        "session_gap",
        Category::Market,
        Severity::Warning,
        Unit::Rows,
        "longer than max_gap without a row inside the session (from the open or the previous row)",
        "missing data is the most common defect of tick files; gaps show it",
    ),
    (
        "price_jump",
        Category::Market,
        Severity::Warning,
        Unit::Rows,
        "price further than jump_k × rolling volatility from the median of its neighbours (two on each side, same symbol-day)",
        "Brownlees & Gallo (2006), Financial econometric analysis at ultra-high frequency, CSDA 51 (neighbourhood test)",
    ),
    (
        "spread_outlier",
        Category::Range,
        Severity::Warning,
        Unit::Rows,
        "spread above spread_k × the symbol-day's median spread",
        "Barndorff-Nielsen et al. (2009), rule Q3 (50 × the day's median spread)",
    ),
    (
        "null_fraction",
        Category::Statistical,
        Severity::Warning,
        Unit::SymbolDays,
        "share of nulls in a column of a symbol-day above null_threshold",
        "seed ValidationConfig.null_threshold; Deequ hasCompleteness",
    ),
    (
        "duplicate_fraction",
        Category::Statistical,
        Severity::Warning,
        Unit::SymbolDays,
        "share of duplicate rows in a symbol-day above duplicate_threshold",
        "seed ValidationConfig.duplicate_threshold",
    ),
    (
        "outlier_fraction",
        Category::Statistical,
        Severity::Warning,
        Unit::SymbolDays,
        "share of price jumps and spread outliers in a symbol-day above outlier_threshold",
        "seed ValidationConfig.outlier_threshold",
    ),
    (
        "rows_vs_history",
        Category::Dataset,
        Severity::Warning,
        Unit::SymbolDays,
        "symbol-day rows below rows_min_ratio or above rows_max_ratio × the median of the symbol's previous history_window days",
        "Deequ anomaly detection on a metrics repository (Schelter et al. 2018)",
    ),
    (
        "missing_trading_day",
        Category::Dataset,
        Severity::Warning,
        Unit::SymbolDays,
        "trading day without rows between a symbol's first and last day",
        "trading calendar (as gen-data's)",
    ),
    (
        "duplicated_file",
        Category::Dataset,
        Severity::Error,
        Unit::Files,
        "input file whose rows equal another input file's rows",
        "row fingerprints (sum of row hashes) per file",
    ),
    (
        "schema_columns",
        Category::Schema,
        Severity::Error,
        Unit::Files,
        "a required column is missing (ts, symbol and the columns of the dataset kind)",
        "canonical tick schema (pipeline_core::DatasetKind)",
    ),
    (
        "schema_types",
        Category::Schema,
        Severity::Error,
        Unit::Files,
        "a column has the wrong type, or ts is not nanoseconds in UTC",
        "canonical tick schema (pipeline_core::Canonical::data_type)",
    ),
];

/// The rules of the `financial` preset, named and citable, at their default severities (the
/// seed's `create_financial_data_rules()`). Pass them to [`Validator::add_rules`] after
/// adjusting severities, or read them to see what the preset checks.
///
/// ```
/// let rules = pipeline_validate::financial_rules();
/// let t4 = rules.iter().find(|r| r.name == "trade_outside_quote").unwrap();
/// assert!(t4.source.contains("Barndorff-Nielsen"));
/// ```
///
/// [`Validator::add_rules`]: crate::Validator::add_rules
pub fn financial_rules() -> Vec<RuleInfo> {
    BUILTIN
        .iter()
        .map(
            |(name, category, severity, unit, description, source)| RuleInfo {
                name: (*name).into(),
                category: *category,
                severity: *severity,
                unit: *unit,
                description: (*description).into(),
                source: if *source == BNHLS {
                    format!("{BNHLS}, rule T4")
                } else {
                    (*source).into()
                },
            },
        )
        .collect()
}

/// A row check written in Rust: given a chunk, `true` passes a row, `false` fails it, null
/// means the rule does not apply.
pub type RowCheck = Arc<dyn Fn(&Chunk) -> Result<BooleanArray> + Send + Sync>;

/// A custom row rule: a name, a severity and a check (a Rust closure, or an expression from
/// a rules file).
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Array, BooleanArray, Float64Array};
/// use pipeline_validate::{CustomRule, Severity};
///
/// // Trades above $10M notional are suspicious.
/// let rule = CustomRule::new("notional_cap", Severity::Warning, Arc::new(|chunk| {
///     let col = |n: &str| chunk.column_by_name(n).and_then(|a| a.as_any().downcast_ref::<Float64Array>().cloned());
///     let (Some(p), Some(s)) = (col("price"), col("size")) else {
///         return Ok(BooleanArray::new_null(chunk.num_rows()));
///     };
///     Ok(p.iter().zip(s.iter()).map(|(p, s)| Some(p? * s? <= 1e7)).collect())
/// }))
/// .description("price × size above $10M");
/// assert_eq!(rule.name(), "notional_cap");
/// ```
#[derive(Clone)]
pub struct CustomRule {
    pub(crate) info: RuleInfo,
    pub(crate) threshold: Option<f64>,
    pub(crate) check: Check,
}

#[derive(Clone)]
pub(crate) enum Check {
    Closure(RowCheck),
    Expr(Expr, String),
}

impl fmt::Debug for CustomRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomRule")
            .field("info", &self.info)
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl CustomRule {
    /// A rule from a Rust closure.
    pub fn new(name: impl Into<String>, severity: Severity, check: RowCheck) -> Self {
        CustomRule {
            info: RuleInfo {
                name: name.into(),
                category: Category::Custom,
                severity,
                unit: Unit::Rows,
                description: String::new(),
                source: "Rust closure".into(),
            },
            threshold: None,
            check: Check::Closure(check),
        }
    }

    /// A rule from an expression (see the crate docs for the language); the error names the
    /// rule.
    ///
    /// ```
    /// use pipeline_validate::{CustomRule, Severity};
    /// let r = CustomRule::expr("mid_inside", Severity::Error, "bid <= ask and abs(price - (bid + ask) / 2) < 10 * (ask - bid)")?;
    /// assert!(CustomRule::expr("broken", Severity::Error, "bid <").is_err());
    /// # Ok::<(), pipeline_core::Error>(())
    /// ```
    pub fn expr(name: impl Into<String>, severity: Severity, expr: &str) -> Result<Self> {
        let name = name.into();
        let e = Expr::parse(expr)
            .map_err(|m| Error::config(format!("rule.{name}"), format!("`{expr}`: {m}")))?;
        Ok(CustomRule {
            info: RuleInfo {
                name,
                category: Category::Custom,
                severity,
                unit: Unit::Rows,
                description: format!("fails when not ({expr})"),
                source: "rules file expression".into(),
            },
            threshold: None,
            check: Check::Expr(e, expr.to_string()),
        })
    }

    /// Sets the description shown in reports.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.info.description = text.into();
        self
    }

    /// Sets the largest tolerated failing share (default: `error_threshold` or
    /// `warning_threshold` by severity).
    pub fn threshold(mut self, share: f64) -> Self {
        self.threshold = Some(share);
        self
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }
}

/// The `[validation]` keys read only when the report is built, never by the streaming
/// stage: the rules' default thresholds, the verdict, and the history checks (run on the
/// symbol-days when the report is made). A finished dataset whose configuration changed
/// only in these keeps its rows and stage state; only the end-of-input flush runs again and
/// the report is made with the new values.
pub const REPORT_ONLY_KEYS: &[&str] = &[
    "validation.error_threshold",
    "validation.warning_threshold",
    "validation.fail_on",
    "validation.history",
    "validation.history_window",
    "validation.history_min_days",
    "validation.rows_min_ratio",
    "validation.rows_max_ratio",
];

/// Numeric settings of a rule set (from `[validation]`, `[preprocessing]` session keys and
/// the rules file's `[settings]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Settings {
    pub null_threshold: f64,
    pub duplicate_threshold: f64,
    pub outlier_threshold: f64,
    pub error_threshold: f64,
    pub warning_threshold: f64,
    pub fail_on_warn: bool,
    pub spread_k: f64,
    pub jump_k: f64,
    pub max_gap_ns: Option<i64>,
    pub tick_size: f64,
    pub calendar: CalendarKind,
    pub holidays: Vec<String>,
    pub examples: usize,
    pub statistical: bool,
    pub session_open: String,
    pub session_close: String,
    pub session_timezone: String,
    pub history: bool,
    pub history_window: usize,
    pub history_min_days: usize,
    pub rows_min_ratio: f64,
    pub rows_max_ratio: f64,
    pub required_columns: Vec<String>,
    pub not_null: Vec<String>,
    pub bounds: Vec<(String, Option<f64>, Option<f64>)>,
    pub allowed: Vec<(String, Vec<String>)>,
}

/// One rule of a compiled set: its description, severity (`None`: off) and threshold.
#[derive(Debug, Clone)]
pub(crate) struct RuleDef {
    pub info: RuleInfo,
    pub severity: Option<Severity>,
    pub threshold: f64,
}

/// Everything a validation stage needs, immutable once built and shared by every stage
/// instance.
#[derive(Clone)]
pub(crate) struct RuleSet {
    pub rules: Vec<RuleDef>,
    pub settings: Settings,
    /// Custom row rules: (rule index, check).
    pub custom: Vec<(usize, Check)>,
    /// History checks from the rules file: (rule index, spec).
    pub anomalies: Vec<(usize, AnomalySpec)>,
    /// Bit of each row-local warning/info rule in the per-row mask.
    pub warn_bit: Vec<Option<u8>>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .field("settings", &self.settings)
            .finish()
    }
}

/// Row-local rules that set a bit in the per-row warning mask when their severity is not
/// `error` (an `error` severity makes them quarantine instead).
pub(crate) const ROW_LOCAL: [usize; 10] = [
    id::NULL_KEY,
    id::NONPOSITIVE_PRICE,
    id::NONPOSITIVE_SIZE,
    id::CROSSED_QUOTE,
    id::BAR_OHLC,
    id::BOUNDS,
    id::NULL_VALUE,
    id::LOCKED_QUOTE,
    id::TICK_GRID,
    id::TRADE_OUTSIDE_QUOTE,
];

impl RuleSet {
    /// Compiles `cfg`, an optional parsed rules file and extra custom rules.
    pub(crate) fn build(
        cfg: &Config,
        file: Option<&RulesFile>,
        extra: &[CustomRule],
    ) -> Result<RuleSet> {
        let v = &cfg.validation;
        v.validate()?;
        let p = &cfg.preprocessing;
        let mut s = Settings {
            null_threshold: v.null_threshold,
            duplicate_threshold: v.duplicate_threshold,
            outlier_threshold: v.outlier_threshold,
            error_threshold: v.error_threshold,
            warning_threshold: v.warning_threshold,
            fail_on_warn: v.fail_on == "warn",
            spread_k: v.spread_k,
            jump_k: v.jump_k,
            max_gap_ns: v.max_gap_ns()?,
            tick_size: v.tick_size,
            calendar: CalendarKind::parse_key("validation.calendar", &v.calendar)?,
            holidays: v.holidays.clone(),
            examples: v.examples_per_rule,
            statistical: v.enable_statistical_validation,
            session_open: p.session_open.clone(),
            session_close: p.session_close.clone(),
            session_timezone: p.session_timezone.clone(),
            history: v.history,
            history_window: v.history_window,
            history_min_days: v.history_min_days,
            rows_min_ratio: v.rows_min_ratio,
            rows_max_ratio: v.rows_max_ratio,
            required_columns: Vec::new(),
            not_null: Vec::new(),
            bounds: Vec::new(),
            allowed: Vec::new(),
        };
        let preset = v.preset == "financial";
        let mut rules: Vec<RuleDef> = financial_rules()
            .into_iter()
            .map(|info| RuleDef {
                severity: preset.then_some(info.severity),
                threshold: 0.0,
                info,
            })
            .collect();
        let mut custom: Vec<CustomRule> = Vec::new();
        let mut anomalies = Vec::new();
        let mut thresholds: BTreeMap<String, f64> = BTreeMap::new();
        let mut severities: Vec<(String, String, String)> = v
            .severity
            .iter()
            .map(|(k, x)| (format!("validation.severity.{k}"), k.clone(), x.clone()))
            .collect();
        if let Some(f) = file {
            f.apply(&mut s)?;
            // The rules file's bounds and allowed lists switch their rules on.
            if !s.bounds.is_empty() {
                rules[id::BOUNDS].severity = Some(rules[id::BOUNDS].info.severity);
            }
            if !s.allowed.is_empty() {
                rules[id::ALLOWED_VALUES].severity = Some(rules[id::ALLOWED_VALUES].info.severity);
            }
            for (name, sev) in &f.severity {
                severities.push((format!("rules.severity.{name}"), name.clone(), sev.clone()));
            }
            thresholds.extend(f.thresholds.clone());
            for r in &f.rule {
                let sev = match r.severity.as_str() {
                    "" => Some(Severity::Warning),
                    x => Severity::parse(&format!("rule.{}.severity", r.name), x)?,
                };
                let Some(sev) = sev else { continue };
                let mut c = CustomRule::expr(&r.name, sev, &r.expr)?;
                if let Some(d) = &r.description {
                    c = c.description(d.clone());
                }
                if let Some(t) = r.threshold {
                    c = c.threshold(t);
                }
                custom.push(c);
            }
        }
        custom.extend(extra.iter().cloned());
        // Severity overrides, then per-rule thresholds; unknown names are errors, so a typo
        // never silently leaves a rule on.
        let custom_start = rules.len();
        for c in &custom {
            if rules.iter().any(|r| r.info.name == c.info.name) {
                return Err(Error::config(
                    format!("rule.{}", c.info.name),
                    "a rule of that name already exists",
                ));
            }
            rules.push(RuleDef {
                severity: Some(c.info.severity),
                threshold: 0.0,
                info: c.info.clone(),
            });
        }
        if let Some(f) = file {
            for a in &f.anomaly {
                let name = a.rule_name();
                if rules.iter().any(|r| r.info.name == name) {
                    return Err(Error::config(
                        format!("anomaly.{name}"),
                        "a rule of that name already exists",
                    ));
                }
                a.check()?;
                let sev = match a.severity.as_str() {
                    "" => Some(Severity::Warning),
                    x => Severity::parse(&format!("anomaly.{name}.severity"), x)?,
                };
                anomalies.push((rules.len(), a.clone()));
                rules.push(RuleDef {
                    severity: sev,
                    threshold: 0.0,
                    info: RuleInfo {
                        name: name.clone(),
                        category: Category::Custom,
                        severity: sev.unwrap_or(Severity::Warning),
                        unit: Unit::SymbolDays,
                        description: a.describe(),
                        source: "Deequ anomaly detection strategies (Schelter et al. 2018)".into(),
                    },
                });
            }
        }
        for (key, name, sev) in severities {
            let sev = Severity::parse(&key, &sev)?;
            let r = rules
                .iter_mut()
                .find(|r| r.info.name == name)
                .ok_or_else(|| Error::config(key.clone(), format!("no rule named `{name}`")))?;
            r.severity = sev;
            if let Some(s) = sev {
                r.info.severity = s;
            }
        }
        // Bounds and allowed values do nothing without lists from a rules file.
        if s.bounds.is_empty() {
            rules[id::BOUNDS].severity = None;
        }
        if s.allowed.is_empty() {
            rules[id::ALLOWED_VALUES].severity = None;
        }
        if !s.statistical {
            for i in [
                id::NULL_FRACTION,
                id::DUPLICATE_FRACTION,
                id::OUTLIER_FRACTION,
            ] {
                rules[i].severity = None;
            }
        }
        if s.spread_k == 0.0 {
            rules[id::SPREAD_OUTLIER].severity = None;
        }
        if s.jump_k == 0.0 {
            rules[id::PRICE_JUMP].severity = None;
        }
        if s.max_gap_ns.is_none() {
            rules[id::SESSION_GAP].severity = None;
        }
        if s.tick_size == 0.0 {
            rules[id::TICK_GRID].severity = None;
        }
        if !s.history {
            rules[id::ROWS_VS_HISTORY].severity = None;
        }
        if s.calendar == CalendarKind::None {
            for i in [
                id::OUTSIDE_SESSION,
                id::NON_TRADING_DAY,
                id::SESSION_GAP,
                id::MISSING_TRADING_DAY,
            ] {
                rules[i].severity = None;
            }
        }
        // Rules decided after their row has been passed on (price_jump, spread_outlier,
        // the symbol-day and dataset rules) cannot quarantine: with severity `error` they
        // count toward a `fail` verdict only (see the crate docs).
        // Default thresholds by kind, then the rules file's.
        for (i, r) in rules.iter_mut().enumerate() {
            r.threshold = match (i, r.info.unit) {
                (id::NULL_VALUE, _) => s.null_threshold,
                (id::DUPLICATE_ROW, _) => s.duplicate_threshold,
                (id::PRICE_JUMP | id::SPREAD_OUTLIER, _) => s.outlier_threshold,
                (_, Unit::Rows) => match r.severity {
                    Some(Severity::Error) => s.error_threshold,
                    _ => s.warning_threshold,
                },
                _ => 0.0,
            };
        }
        for (i, c) in custom.iter().enumerate() {
            if let Some(t) = c.threshold {
                rules[custom_start + i].threshold = t;
            }
        }
        for (name, t) in thresholds {
            let r = rules
                .iter_mut()
                .find(|r| r.info.name == name)
                .ok_or_else(|| {
                    Error::config(
                        format!("thresholds.{name}"),
                        format!("no rule named `{name}`"),
                    )
                })?;
            if !(0.0..=1.0).contains(&t) {
                return Err(Error::config(
                    format!("thresholds.{name}"),
                    "must be between 0 and 1",
                ));
            }
            r.threshold = t;
        }
        if rules.len() > 250 {
            return Err(Error::config("rule", "at most 224 custom rules"));
        }
        // Bits of the per-row warning mask: row-local rules that do not quarantine.
        let mut warn_bit = vec![None; rules.len()];
        let mut next = 0u8;
        let row_local = ROW_LOCAL
            .iter()
            .copied()
            .chain([id::ALLOWED_VALUES])
            .chain(custom_start..custom_start + custom.len());
        for i in row_local {
            if matches!(rules[i].severity, Some(Severity::Warning | Severity::Info)) {
                if next >= 64 {
                    return Err(Error::config(
                        "rule",
                        "at most 64 row rules of warning or info severity",
                    ));
                }
                warn_bit[i] = Some(next);
                next += 1;
            }
        }
        let custom = custom
            .into_iter()
            .enumerate()
            .map(|(k, c)| (custom_start + k, c.check))
            .collect();
        Ok(RuleSet {
            rules,
            settings: s,
            custom,
            anomalies,
            warn_bit,
        })
    }

    /// Whether rule `i` runs.
    #[inline]
    pub(crate) fn on(&self, i: usize) -> bool {
        self.rules[i].severity.is_some()
    }

    /// Whether rule `i` quarantines (runs with severity `error`).
    #[inline]
    pub(crate) fn quarantines(&self, i: usize) -> bool {
        self.rules[i].severity == Some(Severity::Error)
    }

    /// A stable description of the set, for the stage key: what the stage's state and
    /// output depend on. Settings read only when the report is built ([`REPORT_ONLY_KEYS`]:
    /// the rules' thresholds, the verdict, the history checks) are left out, so a dataset
    /// whose only change is one of them keeps its stage state and rows, and only its report
    /// is made again.
    pub(crate) fn key_text(&self) -> String {
        // `rows_vs_history` is judged only when the report is made (`validation.history`
        // turns it on and off).
        let rules: Vec<(String, Option<Severity>)> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let sev = if i == id::ROWS_VS_HISTORY {
                    None
                } else {
                    r.severity
                };
                (r.info.name.clone(), sev)
            })
            .collect();
        let d = Settings {
            error_threshold: 0.0,
            warning_threshold: 0.0,
            fail_on_warn: false,
            history: false,
            history_window: 0,
            history_min_days: 0,
            rows_min_ratio: 0.0,
            rows_max_ratio: 0.0,
            ..self.settings.clone()
        };
        let exprs: Vec<String> = self
            .custom
            .iter()
            .map(|(_, c)| match c {
                Check::Expr(_, src) => src.clone(),
                Check::Closure(_) => "<closure>".into(),
            })
            .collect();
        serde_json::to_string(&(rules, exprs, &d)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_only_keys_leave_the_stage_key_alone() {
        let key = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            RuleSet::build(&c, None, &[]).unwrap().key_text()
        };
        let base = key(&|_| {});
        // Each report-only key, changed: the same key.
        type Change<'a> = (&'a str, &'a dyn Fn(&mut Config));
        let changes: [Change<'_>; 8] = [
            ("validation.error_threshold", &|c| {
                c.validation.error_threshold = 0.5
            }),
            ("validation.warning_threshold", &|c| {
                c.validation.warning_threshold = 0.5
            }),
            ("validation.fail_on", &|c| {
                c.validation.fail_on = "warn".into()
            }),
            ("validation.history", &|c| {
                c.validation.history = !c.validation.history
            }),
            ("validation.history_window", &|c| {
                c.validation.history_window = 3
            }),
            ("validation.history_min_days", &|c| {
                c.validation.history_min_days = 9
            }),
            ("validation.rows_min_ratio", &|c| {
                c.validation.rows_min_ratio = 0.01
            }),
            ("validation.rows_max_ratio", &|c| {
                c.validation.rows_max_ratio = 99.0
            }),
        ];
        for (name, f) in changes {
            assert!(REPORT_ONLY_KEYS.contains(&name), "{name}");
            assert_eq!(key(f), base, "{name}");
        }
        assert_eq!(REPORT_ONLY_KEYS.len(), changes.len());
        // Keys the streaming stage reads change it.
        assert_ne!(key(&|c| c.validation.spread_k = 7.0), base);
        assert_ne!(key(&|c| c.validation.null_threshold = 0.5), base);
        assert_ne!(key(&|c| c.validation.examples_per_rule = 3), base);
    }

    #[test]
    fn builtins_are_named_once_and_sourced() {
        let rules = financial_rules();
        assert_eq!(rules.len(), id::COUNT);
        let mut names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), id::COUNT);
        assert!(
            rules
                .iter()
                .all(|r| !r.source.is_empty() && !r.description.is_empty())
        );
        assert_eq!(rules[id::TS_ORDER].name, "ts_order");
        assert_eq!(rules[id::SCHEMA_TYPES].name, "schema_types");
    }

    #[test]
    fn severities_thresholds_and_switches() {
        let mut cfg = Config::default();
        cfg.validation
            .severity
            .insert("locked_quote".into(), "error".into());
        cfg.validation
            .severity
            .insert("tick_grid".into(), "off".into());
        cfg.validation.max_gap = "0".into();
        let rs = RuleSet::build(&cfg, None, &[]).unwrap();
        assert!(rs.quarantines(id::LOCKED_QUOTE));
        assert!(!rs.on(id::TICK_GRID));
        assert!(!rs.on(id::SESSION_GAP));
        assert!(!rs.on(id::BOUNDS), "bounds need a rules file");
        assert_eq!(rs.rules[id::NULL_VALUE].threshold, 0.1);
        assert_eq!(rs.rules[id::CROSSED_QUOTE].threshold, 0.01);
        assert!(rs.warn_bit[id::LOCKED_QUOTE].is_none());
        assert!(rs.warn_bit[id::NULL_VALUE].is_some());
        cfg.validation
            .severity
            .insert("no_such_rule".into(), "off".into());
        let e = RuleSet::build(&cfg, None, &[]).unwrap_err().to_string();
        assert!(e.contains("no_such_rule"), "{e}");
        let mut none = Config::default();
        none.validation.preset = "none".into();
        let rs = RuleSet::build(&none, None, &[]).unwrap();
        assert!(rs.rules.iter().all(|r| r.severity.is_none()));
    }
}
