//! Profiling → suggested rules (Deequ's constraint suggestion, Great Expectations'
//! profilers): [`Profiler`] reads a sample and [`Profiler::suggest`] writes a [`RulesFile`]
//! with thresholds taken from the data, for the user to edit.

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::Array;
use arrow_schema::DataType;
use pipeline_core::{Canonical, Chunk, LINE_COLUMN, Result};

use crate::cols::{F64, str_col};
use crate::rulesfile::{AnomalySpec, ColumnRules, FileSettings, RulesFile};

/// Distinct values of a text column kept while profiling; a column with more is not given an
/// allowed list (exchange and condition codes have a few dozen at most).
const MAX_DISTINCT: usize = 32;
/// Candidate price grids, coarsest first.
const GRIDS: [f64; 4] = [0.01, 0.005, 0.001, 0.0001];
/// Share of prices ($1 and above) that must sit on a grid for it to be suggested: one in a
/// thousand may be a sub-penny print (midpoint trades).
const GRID_SHARE: f64 = 0.999;

#[derive(Debug, Default, Clone)]
struct ColProfile {
    numeric: bool,
    text: bool,
    count: u64,
    nulls: u64,
    min: f64,
    max: f64,
    distinct: BTreeSet<String>,
    overflow: bool,
}

/// Profiles chunks and proposes a rules file.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
/// use pipeline_core::Chunk;
/// use pipeline_validate::Profiler;
///
/// let b = RecordBatch::try_from_iter([
///     ("price", Arc::new(Float64Array::from(vec![10.01, 10.02, 10.05])) as ArrayRef),
///     ("exchange", Arc::new(StringArray::from(vec!["Q", "N", "Q"])) as ArrayRef),
/// ])?;
/// let mut p = Profiler::default();
/// p.add(&Chunk::with_first_line(b, 0, 0, 2)?)?;
/// let rules = p.suggest();
/// assert_eq!(rules.settings.tick_size, Some(0.01));
/// assert_eq!(rules.columns["exchange"].allowed, Some(vec!["N".to_string(), "Q".to_string()]));
/// assert_eq!(rules.columns["price"].not_null, Some(true));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Profiler {
    rows: u64,
    cols: BTreeMap<String, ColProfile>,
    prices: u64,
    on_grid: [u64; 4],
}

impl Profiler {
    /// Adds a chunk to the profile.
    pub fn add(&mut self, chunk: &Chunk) -> Result<()> {
        let n = chunk.num_rows();
        self.rows += n as u64;
        let schema = chunk.schema();
        for f in schema.fields() {
            let name = f.name();
            if name == LINE_COLUMN {
                continue;
            }
            let Some(a) = chunk.column_by_name(name) else {
                continue;
            };
            let p = self.cols.entry(name.clone()).or_insert_with(|| ColProfile {
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                ..ColProfile::default()
            });
            p.count += n as u64;
            p.nulls += a.logical_null_count() as u64;
            if f.data_type().is_numeric() {
                p.numeric = true;
                if let Some(c) = F64::of(chunk, name)? {
                    for i in 0..n {
                        if let Some(v) = c.get(i).filter(|v| v.is_finite()) {
                            p.min = p.min.min(v);
                            p.max = p.max.max(v);
                        }
                    }
                }
            } else if let Some(s) = str_col(chunk, name) {
                p.text = true;
                if !p.overflow {
                    for i in 0..n {
                        if let Some(v) = s.get(i) {
                            if !p.distinct.contains(v) {
                                p.distinct.insert(v.to_string());
                            }
                            if p.distinct.len() > MAX_DISTINCT {
                                p.overflow = true;
                                p.distinct.clear();
                                break;
                            }
                        }
                    }
                }
            } else if !matches!(f.data_type(), DataType::Timestamp(_, _)) {
                p.overflow = true;
            }
        }
        for col in ["price", "bid", "ask"] {
            let Some(c) = F64::of(chunk, col)? else {
                continue;
            };
            for i in 0..n {
                let Some(v) = c.get(i).filter(|v| *v >= 1.0 && v.is_finite()) else {
                    continue;
                };
                self.prices += 1;
                for (k, g) in GRIDS.iter().enumerate() {
                    let q = v / g;
                    if (q - q.round()).abs() < 1e-6 {
                        self.on_grid[k] += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Rows profiled.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The suggested rules file.
    pub fn suggest(&self) -> RulesFile {
        let mut f = RulesFile {
            version: 1,
            ..RulesFile::default()
        };
        let mut worst_nulls: f64 = 0.0;
        for (name, p) in &self.cols {
            let canon = Canonical::from_name(name);
            let share = if p.count > 0 {
                p.nulls as f64 / p.count as f64
            } else {
                0.0
            };
            if canon.is_some() && share < 0.5 {
                f.required_columns.push(name.clone());
            }
            let mut r = ColumnRules::default();
            if p.nulls == 0 && p.count > 0 {
                r.not_null = Some(true);
            }
            if matches!(
                canon,
                Some(Canonical::Price | Canonical::Size | Canonical::Bid | Canonical::Ask)
            ) {
                worst_nulls = worst_nulls.max(share);
            }
            if p.numeric && p.min.is_finite() {
                match canon {
                    // Prices: a quarter to four times the sampled range, because a sample of
                    // days misses the years around it.
                    Some(
                        Canonical::Price
                        | Canonical::Bid
                        | Canonical::Ask
                        | Canonical::Open
                        | Canonical::High
                        | Canonical::Low
                        | Canonical::Close,
                    ) => {
                        r.min = Some(round_sig(p.min / 4.0));
                        r.max = Some(round_sig(p.max * 4.0));
                    }
                    // Sizes: ten times the largest sampled size (size > 0 is its own rule).
                    Some(
                        Canonical::Size
                        | Canonical::BidSize
                        | Canonical::AskSize
                        | Canonical::Volume,
                    ) => {
                        r.max = Some(round_sig(p.max * 10.0));
                    }
                    _ => {}
                }
            }
            if p.text && !p.overflow && !p.distinct.is_empty() && canon != Some(Canonical::Symbol) {
                r.allowed = Some(p.distinct.iter().cloned().collect());
            }
            if r != ColumnRules::default() {
                f.columns.insert(name.clone(), r);
            }
        }
        let tick = GRIDS
            .iter()
            .zip(self.on_grid)
            .find(|(_, k)| self.prices > 0 && *k as f64 >= GRID_SHARE * self.prices as f64)
            .map_or(0.0, |(g, _)| *g);
        f.settings = FileSettings {
            tick_size: Some(tick),
            // Twice the worst sampled null share, at least 0.1%.
            null_threshold: Some(round_sig((2.0 * worst_nulls).max(0.001)).min(1.0)),
            ..FileSettings::default()
        };
        f.anomaly.push(AnomalySpec {
            metric: "volume".into(),
            strategy: "median_ratio".into(),
            min: Some(0.2),
            max: Some(5.0),
            severity: "warning".into(),
            ..AnomalySpec::default()
        });
        f
    }
}

/// Rounds to two significant digits (suggested bounds are for people to read).
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let m = 10f64.powi(x.abs().log10().floor() as i32 - 1);
    (x / m).round() * m
}

/// Profiles `chunks` and suggests a rules file.
pub fn suggest(chunks: impl IntoIterator<Item = Result<Chunk>>) -> Result<RulesFile> {
    let mut p = Profiler::default();
    for c in chunks {
        p.add(&c?)?;
    }
    Ok(p.suggest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(round_sig(123.4), 120.0);
        assert_eq!(round_sig(0.0456), 0.046);
        assert_eq!(round_sig(0.0), 0.0);
    }
}
