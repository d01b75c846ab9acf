//! Outlier detectors and what they do with the outliers they find.
//!
//! Every detector takes an [`OutlierAction`]: `flag` adds a boolean column
//! `outlier_<method>`, `drop` removes the row under rule `outlier_<method>`, `winsorize`
//! clips the value to the nearest bound and counts a repair under `outlier_<method>`.
//!
//! Detectors read one value per row (see [`OutlierConfig::column`]): a named column, or
//! `auto` = `price`, and for rows without a price but with a quote (quote rows of a dataset
//! that unites trades and quotes) the mid-quote `(bid + ask) / 2`; without a `price` column
//! every row's mid. Rows whose value is null are never judged and do not enter the windows;
//! neither are order-book messages that are not executions (their price is an order's
//! limit, not a trade: LOBSTER adds, cancels and deletes), which are never removed.

mod centred;
mod dbscan;
mod iforest;
mod iqr_global;
mod rolling;
mod window;
mod windowed;

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array};
use arrow_schema::{DataType, Field};
use pipeline_core::{Chunk, Emitter, Error, Result};
use serde::{Deserialize, Serialize};

use super::cols::{f64_col, with_f64};

pub use centred::{BrownleesGallo, BrownleesGalloConfig};
pub(crate) use centred::{Centred, CentredRule};
pub use dbscan::{DbscanConfig, DbscanOutliers};
pub use iforest::{IsolationForest, IsolationForestConfig, IsolationForestOutliers};
pub use iqr_global::{GlobalIqr, GlobalIqrConfig};
pub use rolling::{Basis, OutlierConfig, RollingMethod, RollingOutliers};

/// What a detector does with an outlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutlierAction {
    /// Add a boolean column `outlier_<method>` (true on outliers).
    Flag,
    /// Remove the row (rule `outlier_<method>`).
    Drop,
    /// Clip the value to the nearest bound (repair `outlier_<method>`).
    Winsorize,
}

impl OutlierAction {
    /// Parses `flag`, `drop` or `winsorize`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "flag" => Ok(OutlierAction::Flag),
            "drop" => Ok(OutlierAction::Drop),
            "winsorize" => Ok(OutlierAction::Winsorize),
            other => Err(Error::config(
                "preprocessing.outlier_action",
                format!("unknown value `{other}`; expected drop, flag or winsorize"),
            )),
        }
    }
}

/// Where a detector's values came from in one chunk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueSource {
    /// A column of that name.
    Column(String),
    /// `(bid + ask) / 2`.
    Mid,
    /// `price`, and the mid on the rows marked `true` (quote rows without a price).
    Mixed(Vec<bool>),
}

/// The detector's value per row, or `None` when the chunk lacks the columns (no-op).
pub(crate) fn values(
    chunk: &Chunk,
    column: &str,
) -> Result<Option<(Vec<Option<f64>>, ValueSource)>> {
    let col = if column == "auto" {
        if chunk.column_by_name("price").is_some() {
            "price"
        } else {
            "mid"
        }
    } else {
        column
    };
    if col == "mid" && chunk.column_by_name("mid").is_none() {
        let (Some(b), Some(a)) = (f64_col(chunk, "bid")?, f64_col(chunk, "ask")?) else {
            return Ok(None);
        };
        let v = b
            .iter()
            .zip(a.iter())
            .map(|(b, a)| match (b, a) {
                (Some(b), Some(a)) => Some((b + a) / 2.0),
                _ => None,
            })
            .map(|v| v.filter(|x| x.is_finite()))
            .collect();
        return Ok(Some((v, ValueSource::Mid)));
    }
    let Some(a) = f64_col(chunk, col)? else {
        return Ok(None);
    };
    let events = crate::kind::Events::of(chunk)?;
    let mut v: Vec<Option<f64>> = a
        .iter()
        .enumerate()
        .map(|(i, v)| v.filter(|x| x.is_finite() && (col != "price" || events.trade(i))))
        .collect();
    if column == "auto"
        && a.null_count() > 0
        && let (Some(b), Some(q)) = (f64_col(chunk, "bid")?, f64_col(chunk, "ask")?)
    {
        // Quote rows (no price, not an order-book message) are judged on their mid.
        let mut mask = vec![false; v.len()];
        for (i, m) in mask.iter_mut().enumerate() {
            if a.is_null(i) && !events.message(i) && b.is_valid(i) && q.is_valid(i) {
                let mid = (b.value(i) + q.value(i)) / 2.0;
                if mid.is_finite() {
                    v[i] = Some(mid);
                    *m = true;
                }
            }
        }
        if mask.iter().any(|m| *m) {
            return Ok(Some((v, ValueSource::Mixed(mask))));
        }
    }
    Ok(Some((v, ValueSource::Column(col.to_string()))))
}

/// Applies `action` to a chunk given, per row, `None` (not an outlier) or `Some(bound)` (an
/// outlier and the bound it is clipped to).
pub(crate) fn apply(
    chunk: Chunk,
    out: &mut Emitter,
    method: &str,
    action: OutlierAction,
    src: &ValueSource,
    vals: &[Option<f64>],
    verdict: &[Option<f64>],
) -> Result<()> {
    apply_with(chunk, out, method, action, src, vals, verdict, &[])
}

/// [`apply`] with the numbers behind each dropped row's verdict: `(row, detail)` pairs in
/// ascending row order, written to the quarantine file's `detail`.
#[allow(clippy::too_many_arguments)] // `apply`'s arguments plus the details.
pub(crate) fn apply_with(
    chunk: Chunk,
    out: &mut Emitter,
    method: &str,
    action: OutlierAction,
    src: &ValueSource,
    vals: &[Option<f64>],
    verdict: &[Option<f64>],
    details: &[(usize, String)],
) -> Result<()> {
    let rule = format!("outlier_{method}");
    let n_out = verdict.iter().filter(|v| v.is_some()).count();
    match action {
        OutlierAction::Flag => {
            let flags: BooleanArray = verdict.iter().map(|v| Some(v.is_some())).collect();
            let c = chunk.with_columns(vec![(
                Field::new(&rule, DataType::Boolean, false),
                Arc::new(flags) as ArrayRef,
            )])?;
            out.emit(c);
        }
        OutlierAction::Drop => {
            if n_out == 0 {
                out.emit(chunk);
            } else {
                let keep = BooleanArray::from(arrow_buffer::BooleanBuffer::collect_bool(
                    verdict.len(),
                    |i| verdict[i].is_none(),
                ));
                let kept = out.remove_with_details(&rule, &chunk, &keep, details)?;
                out.emit(kept);
            }
        }
        OutlierAction::Winsorize => {
            if n_out == 0 {
                out.emit(chunk);
                return Ok(());
            }
            out.repaired(&rule, n_out as u64);
            let c = match src {
                ValueSource::Mixed(mask) => {
                    let mut c = chunk;
                    if let Some(a) = f64_col(&c, "price")? {
                        let new: Float64Array = a
                            .iter()
                            .zip(verdict)
                            .zip(mask)
                            .map(|((x, v), m)| if *m { x } else { v.or(x) })
                            .collect();
                        c = with_f64(&c, "price", new)?;
                    }
                    for q in ["bid", "ask"] {
                        if let Some(a) = f64_col(&c, q)? {
                            let new: Float64Array = a
                                .iter()
                                .enumerate()
                                .map(|(i, x)| match (x, vals[i], verdict[i], mask[i]) {
                                    (Some(x), Some(v), Some(b), true) => Some(x + b - v),
                                    (x, ..) => x,
                                })
                                .collect();
                            c = with_f64(&c, q, new)?;
                        }
                    }
                    c
                }
                ValueSource::Column(name) => {
                    let a =
                        f64_col(&chunk, name)?.unwrap_or_else(|| Float64Array::from(vec![None; 0]));
                    let new: Float64Array = a.iter().zip(verdict).map(|(x, v)| v.or(x)).collect();
                    with_f64(&chunk, name, new)?
                }
                ValueSource::Mid => {
                    let shift: Vec<f64> = vals
                        .iter()
                        .zip(verdict)
                        .map(|(x, v)| match (x, v) {
                            (Some(x), Some(b)) => b - x,
                            _ => 0.0,
                        })
                        .collect();
                    let mut c = chunk;
                    for q in ["bid", "ask"] {
                        if let Some(a) = f64_col(&c, q)? {
                            let new: Float64Array = a
                                .iter()
                                .zip(&shift)
                                .map(|(x, d)| x.map(|x| x + d))
                                .collect();
                            c = with_f64(&c, q, new)?;
                        }
                    }
                    c
                }
            };
            out.emit(c);
        }
    }
    Ok(())
}

/// The value a winsorized outlier is clipped to.
pub(crate) fn clip(x: f64, lo: f64, hi: f64) -> f64 {
    if x < lo { lo } else { hi }
}

/// The median of `v` (`None` when empty).
pub(crate) fn median_of(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    window::quantile_sorted(&v, 0.5)
}
