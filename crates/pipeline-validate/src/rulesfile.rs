//! The TOML rules file (`[validation] rules_file`, `tickpipe validate --rules FILE`): settings,
//! per-column bounds, nullability and allowed values, severities, thresholds, expression
//! rules and history (anomaly) checks. [`suggest`](crate::suggest) writes one from a profile.

use std::collections::BTreeMap;
use std::path::Path;

use pipeline_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::rules::Settings;

/// A rules file. Every table is optional.
///
/// ```toml
/// version = 1
/// required_columns = ["ts", "symbol", "price", "size"]
///
/// [settings]          # overrides of [validation] numbers
/// tick_size = 0.01
/// max_gap = "10m"
///
/// [columns.price]     # bounds (rule `bounds`), nulls (rule `null_value`)
/// min = 0.5
/// max = 5000.0
/// not_null = true
///
/// [columns.exchange]  # allowed values (rule `allowed_values`)
/// allowed = ["N", "Q", "P", "Z"]
///
/// [severity]          # error, warning, info or off, by rule name
/// locked_quote = "info"
///
/// [thresholds]        # largest tolerated failing share, by rule name
/// crossed_quote = 0.0
///
/// [[rule]]            # an expression rule (see the crate docs)
/// name = "notional_cap"
/// expr = "price * size <= 1e7"
/// severity = "warning"
///
/// [[anomaly]]         # a history check of a per-symbol-day metric
/// metric = "volume"
/// strategy = "relative"   # absolute | relative | median_ratio | zscore
/// min = 0.2
/// max = 5.0
/// ```
///
/// ```
/// let f = pipeline_validate::RulesFile::parse("[columns.price]\nmin = 1.0\n[[rule]]\nname = \"x\"\nexpr = \"bid <= ask\"\n")?;
/// assert_eq!(f.columns["price"].min, Some(1.0));
/// assert!(pipeline_validate::RulesFile::parse("[colums.price]\n").is_err());
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesFile {
    /// Format version; 1.
    pub version: u32,
    /// Columns every input must have (rule `schema_columns`), on top of the dataset kind's.
    pub required_columns: Vec<String>,
    /// Overrides of `[validation]` settings.
    pub settings: FileSettings,
    /// Per-column rules, by column name.
    pub columns: BTreeMap<String, ColumnRules>,
    /// Severity by rule name: `error`, `warning`, `info` or `off`.
    pub severity: BTreeMap<String, String>,
    /// Largest tolerated failing share by rule name.
    pub thresholds: BTreeMap<String, f64>,
    /// Expression rules.
    pub rule: Vec<ExprRule>,
    /// History checks of per-symbol-day metrics.
    pub anomaly: Vec<AnomalySpec>,
}

/// `[settings]` of a rules file: each, when present, replaces the `[validation]` key of the
/// same name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSettings {
    /// `[validation] tick_size`.
    pub tick_size: Option<f64>,
    /// `[validation] spread_k`.
    pub spread_k: Option<f64>,
    /// `[validation] jump_k`.
    pub jump_k: Option<f64>,
    /// `[validation] max_gap`.
    pub max_gap: Option<String>,
    /// `[validation] null_threshold`.
    pub null_threshold: Option<f64>,
    /// `[validation] duplicate_threshold`.
    pub duplicate_threshold: Option<f64>,
    /// `[validation] outlier_threshold`.
    pub outlier_threshold: Option<f64>,
    /// `[validation] error_threshold`.
    pub error_threshold: Option<f64>,
    /// `[validation] warning_threshold`.
    pub warning_threshold: Option<f64>,
}

/// `[columns.NAME]`: rules for one column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColumnRules {
    /// Smallest allowed value (rule `bounds`).
    pub min: Option<f64>,
    /// Largest allowed value (rule `bounds`).
    pub max: Option<f64>,
    /// A null here is a `null_value` finding.
    pub not_null: Option<bool>,
    /// Allowed values of a text column (rule `allowed_values`).
    pub allowed: Option<Vec<String>>,
}

/// `[[rule]]`: an expression rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExprRule {
    /// Unique rule name.
    pub name: String,
    /// The condition every row must meet.
    pub expr: String,
    /// `error`, `warning` (default) or `info`.
    pub severity: String,
    /// Shown in reports.
    pub description: Option<String>,
    /// Largest tolerated failing share.
    pub threshold: Option<f64>,
}

/// `[[anomaly]]`: a check of one per-symbol-day metric against the symbol's history, with one
/// of Deequ's strategies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalySpec {
    /// Rule name; default `history_<metric>_<strategy>`.
    pub name: Option<String>,
    /// `rows`, `volume`, `mean_price`, `min_price`, `max_price`, `median_spread`, `nulls`,
    /// `duplicates`, `outliers`, `errors` or `warnings`.
    pub metric: String,
    /// `absolute` (change from the previous day above `max_change`), `relative` (ratio to the
    /// previous day outside `[min, max]`), `median_ratio` (ratio to the median of the window
    /// outside `[min, max]`) or `zscore` (more than `max_z` standard deviations from the
    /// window's mean).
    pub strategy: String,
    /// Lower bound of the ratio (`relative`, `median_ratio`).
    pub min: Option<f64>,
    /// Upper bound of the ratio (`relative`, `median_ratio`).
    pub max: Option<f64>,
    /// Largest change (`absolute`).
    pub max_change: Option<f64>,
    /// Largest z-score (`zscore`).
    pub max_z: Option<f64>,
    /// Days of history (default `[validation] history_window`).
    pub window: Option<usize>,
    /// `error`, `warning` (default), `info` or `off`.
    pub severity: String,
}

/// Per-symbol-day metrics a history check can read.
pub(crate) const METRICS: [&str; 11] = [
    "rows",
    "volume",
    "mean_price",
    "min_price",
    "max_price",
    "median_spread",
    "nulls",
    "duplicates",
    "outliers",
    "errors",
    "warnings",
];

impl AnomalySpec {
    /// The rule name.
    pub(crate) fn rule_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("history_{}_{}", self.metric, self.strategy))
    }

    /// Checks the metric, strategy and its parameters.
    pub(crate) fn check(&self) -> Result<()> {
        let key = format!("anomaly.{}", self.rule_name());
        if !METRICS.contains(&self.metric.as_str()) {
            return Err(Error::config(
                key,
                format!(
                    "unknown metric `{}`; expected one of {}",
                    self.metric,
                    METRICS.join(", ")
                ),
            ));
        }
        let ok = match self.strategy.as_str() {
            "absolute" => self.max_change.is_some_and(|x| x >= 0.0),
            "relative" | "median_ratio" => self.min.is_some() || self.max.is_some(),
            "zscore" => self.max_z.is_some_and(|x| x > 0.0),
            other => {
                return Err(Error::config(
                    key,
                    format!(
                        "unknown strategy `{other}`; expected absolute, relative, median_ratio or zscore"
                    ),
                ));
            }
        };
        if !ok {
            return Err(Error::config(
                key,
                "absolute needs max_change ≥ 0, relative and median_ratio need min or max, zscore needs max_z > 0",
            ));
        }
        if self.window.is_some_and(|w| w < 2) {
            return Err(Error::config(key, "window must be at least 2 days"));
        }
        Ok(())
    }

    /// A one-line description for reports.
    pub(crate) fn describe(&self) -> String {
        match self.strategy.as_str() {
            "absolute" => format!(
                "{} changes by more than {} from the previous day",
                self.metric,
                self.max_change.unwrap_or(0.0)
            ),
            "relative" => format!(
                "{} / previous day's outside [{}, {}]",
                self.metric,
                self.min.map_or("-".into(), |x| x.to_string()),
                self.max.map_or("-".into(), |x| x.to_string())
            ),
            "median_ratio" => format!(
                "{} / median of the window outside [{}, {}]",
                self.metric,
                self.min.map_or("-".into(), |x| x.to_string()),
                self.max.map_or("-".into(), |x| x.to_string())
            ),
            _ => format!(
                "{} more than {} standard deviations from the window's mean",
                self.metric,
                self.max_z.unwrap_or(0.0)
            ),
        }
    }
}

impl RulesFile {
    /// Parses a rules file; errors name the key.
    pub fn parse(text: &str) -> Result<RulesFile> {
        let f: RulesFile = toml::from_str(text).map_err(|e| {
            Error::config(
                "rules file",
                e.message().trim().to_string()
                    + &e.span()
                        .map(|s| format!(" (line {})", text[..s.start].matches('\n').count() + 1))
                        .unwrap_or_default(),
            )
        })?;
        if f.version > 1 {
            return Err(Error::config(
                "version",
                format!(
                    "rules file version {} is newer than this tickpipe (1)",
                    f.version
                ),
            ));
        }
        for r in &f.rule {
            if r.name.is_empty() || r.expr.is_empty() {
                return Err(Error::config(
                    "rule",
                    "every [[rule]] needs a name and an expr",
                ));
            }
        }
        Ok(f)
    }

    /// Reads and parses a rules file.
    pub fn load(path: &Path) -> Result<RulesFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text).map_err(|e| match e {
            Error::Config { key, message } => Error::Config {
                key: format!("{}: {key}", path.display()),
                message,
            },
            other => other,
        })
    }

    /// The file as TOML text, with a header comment.
    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self)
            .map_err(|e| Error::Internal(format!("rules file serialisation: {e}")))?;
        Ok(format!(
            "# tickpipe validation rules (pipeline-validate rules file, version 1).\n\
             # Edit freely; `tickpipe validate --rules FILE` or `[validation] rules_file` reads it.\n\n{body}"
        ))
    }

    /// Applies the file to compiled settings.
    pub(crate) fn apply(&self, s: &mut Settings) -> Result<()> {
        let f = &self.settings;
        let share = |key: &str, x: Option<f64>, into: &mut f64| -> Result<()> {
            if let Some(x) = x {
                if !(0.0..=1.0).contains(&x) {
                    return Err(Error::config(
                        format!("settings.{key}"),
                        "must be between 0 and 1",
                    ));
                }
                *into = x;
            }
            Ok(())
        };
        share("null_threshold", f.null_threshold, &mut s.null_threshold)?;
        share(
            "duplicate_threshold",
            f.duplicate_threshold,
            &mut s.duplicate_threshold,
        )?;
        share(
            "outlier_threshold",
            f.outlier_threshold,
            &mut s.outlier_threshold,
        )?;
        share("error_threshold", f.error_threshold, &mut s.error_threshold)?;
        share(
            "warning_threshold",
            f.warning_threshold,
            &mut s.warning_threshold,
        )?;
        for (key, x, into) in [
            ("tick_size", f.tick_size, &mut s.tick_size),
            ("spread_k", f.spread_k, &mut s.spread_k),
            ("jump_k", f.jump_k, &mut s.jump_k),
        ] {
            if let Some(x) = x {
                if !(x.is_finite() && x >= 0.0) {
                    return Err(Error::config(
                        format!("settings.{key}"),
                        "must be 0 (off) or a positive number",
                    ));
                }
                *into = x;
            }
        }
        if let Some(g) = &f.max_gap {
            let v = pipeline_core::ValidationConfig {
                max_gap: g.clone(),
                ..Default::default()
            };
            s.max_gap_ns = v.max_gap_ns().map_err(|_| {
                Error::config("settings.max_gap", format!("`{g}` is not a duration"))
            })?;
        }
        s.required_columns = self.required_columns.clone();
        for (col, r) in &self.columns {
            if r.min.is_some() || r.max.is_some() {
                if let (Some(a), Some(b)) = (r.min, r.max)
                    && a > b
                {
                    return Err(Error::config(format!("columns.{col}"), "min is above max"));
                }
                s.bounds.push((col.clone(), r.min, r.max));
            }
            if r.not_null == Some(true) {
                s.not_null.push(col.clone());
            }
            if let Some(a) = &r.allowed {
                s.allowed.push((col.clone(), a.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_bad_keys() {
        let text = r#"
version = 1
required_columns = ["ts", "price"]
[settings]
tick_size = 0.005
max_gap = "10m"
[columns.price]
min = 1.0
max = 10.0
not_null = true
[columns.exchange]
allowed = ["Q", "N"]
[severity]
locked_quote = "info"
[thresholds]
crossed_quote = 0.0
[[rule]]
name = "cap"
expr = "size < 1e6"
[[anomaly]]
metric = "volume"
strategy = "zscore"
max_z = 3.0
"#;
        let f = RulesFile::parse(text).unwrap();
        assert_eq!(f.anomaly[0].rule_name(), "history_volume_zscore");
        f.anomaly[0].check().unwrap();
        let back = RulesFile::parse(&f.to_toml().unwrap()).unwrap();
        assert_eq!(back, f);
        let e = RulesFile::parse("[settings]\ntick = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tick"), "{e}");
        let bad = AnomalySpec {
            metric: "rows".into(),
            strategy: "zscore".into(),
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let bad = AnomalySpec {
            metric: "vwap".into(),
            strategy: "absolute".into(),
            max_change: Some(1.0),
            ..Default::default()
        };
        assert!(bad.check().unwrap_err().to_string().contains("vwap"));
    }
}
