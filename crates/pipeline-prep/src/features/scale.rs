//! Normalisation: z-score, min-max and robust (median/IQR) scaling, fitted in a first pass
//! and applied in a second by [`ScaleStage`].
//!
//! [`fit_scaler`] streams over the chunks once: Welford for mean and standard deviation,
//! running min/max, and P² quantile estimators (Jain & Chlamtac 1985) for the quartiles, so
//! fitting uses O(1) memory per column. The fitted [`ScalerParams`] serialise to JSON, to be
//! stored in the output's key-value metadata under [`SCALER_METADATA_KEY`] and re-applied to
//! new data.

use arrow_schema::{DataType, Field};
use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey};
use serde::{Deserialize, Serialize};

use super::columns::f64_col;
use super::stage::to_array;

/// Parquet/Arrow metadata key under which scaler parameters are stored.
pub const SCALER_METADATA_KEY: &str = "tickpipe.scaler";

/// Streaming quantile estimate with five markers (the P² algorithm): O(1) memory and time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct P2Quantile {
    p: f64,
    q: [f64; 5],
    n: [f64; 5],
    want: [f64; 5],
    step: [f64; 5],
    count: usize,
}

impl P2Quantile {
    /// An estimator of the `p` quantile (0 < p < 1).
    pub fn new(p: f64) -> Self {
        P2Quantile {
            p,
            q: [0.0; 5],
            n: [1.0, 2.0, 3.0, 4.0, 5.0],
            want: [1.0, 1.0 + 2.0 * p, 1.0 + 4.0 * p, 3.0 + 2.0 * p, 5.0],
            step: [0.0, p / 2.0, p, (1.0 + p) / 2.0, 1.0],
            count: 0,
        }
    }

    /// Adds an observation.
    pub fn update(&mut self, x: f64) {
        if self.count < 5 {
            self.q[self.count] = x;
            self.count += 1;
            if self.count == 5 {
                self.q.sort_by(f64::total_cmp);
            }
            return;
        }
        self.count += 1;
        let k = if x < self.q[0] {
            self.q[0] = x;
            0
        } else if x >= self.q[4] {
            self.q[4] = x;
            3
        } else {
            (1..5).find(|&i| x < self.q[i]).map_or(3, |i| i - 1)
        };
        for i in k + 1..5 {
            self.n[i] += 1.0;
        }
        for i in 0..5 {
            self.want[i] += self.step[i];
        }
        for i in 1..4 {
            let d = self.want[i] - self.n[i];
            if (d >= 1.0 && self.n[i + 1] - self.n[i] > 1.0)
                || (d <= -1.0 && self.n[i - 1] - self.n[i] < -1.0)
            {
                let d = d.signum();
                let qp = self.parabolic(i, d);
                self.q[i] = if self.q[i - 1] < qp && qp < self.q[i + 1] {
                    qp
                } else {
                    self.linear(i, d)
                };
                self.n[i] += d;
            }
        }
    }

    fn parabolic(&self, i: usize, d: f64) -> f64 {
        let (q, n) = (&self.q, &self.n);
        q[i] + d / (n[i + 1] - n[i - 1])
            * ((n[i] - n[i - 1] + d) * (q[i + 1] - q[i]) / (n[i + 1] - n[i])
                + (n[i + 1] - n[i] - d) * (q[i] - q[i - 1]) / (n[i] - n[i - 1]))
    }

    fn linear(&self, i: usize, d: f64) -> f64 {
        let j = if d > 0.0 { i + 1 } else { i - 1 };
        self.q[i] + d * (self.q[j] - self.q[i]) / (self.n[j] - self.n[i])
    }

    /// The current estimate (exact for fewer than six observations); `None` when empty.
    pub fn value(&self) -> Option<f64> {
        match self.count {
            0 => None,
            c if c <= 5 => {
                let mut s = self.q[..c].to_vec();
                s.sort_by(f64::total_cmp);
                let pos = self.p * (c - 1) as f64;
                let lo = pos.floor() as usize;
                let hi = pos.ceil() as usize;
                Some(s[lo] + (s[hi] - s[lo]) * (pos - lo as f64))
            }
            _ => Some(self.q[2]),
        }
    }
}

/// A scaling method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleMethod {
    /// `(x − mean) / std` (population std).
    ZScore,
    /// `(x − min) / (max − min)`.
    MinMax,
    /// `(x − median) / IQR`.
    Robust,
}

impl ScaleMethod {
    /// Parses `zscore`, `minmax` or `robust`.
    pub fn parse(s: &str) -> Result<ScaleMethod> {
        match s {
            "zscore" => Ok(ScaleMethod::ZScore),
            "minmax" => Ok(ScaleMethod::MinMax),
            "robust" => Ok(ScaleMethod::Robust),
            _ => Err(Error::config(
                "scale",
                format!("`{s}`: expected zscore, minmax or robust"),
            )),
        }
    }
}

/// The fitted parameters of one column: `scaled = (x − center) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnScale {
    /// The column.
    pub column: String,
    /// Subtracted first.
    pub center: f64,
    /// Divided by next (1 when the fitted spread was 0, so constant columns map to 0).
    pub scale: f64,
    /// Non-null values seen while fitting.
    pub count: u64,
}

/// Fitted scaling parameters for a set of columns; JSON-serialisable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalerParams {
    /// The method they were fitted for.
    pub method: ScaleMethod,
    /// One entry per column.
    pub columns: Vec<ColumnScale>,
}

impl ScalerParams {
    /// The parameters as JSON (for Parquet key-value metadata).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses parameters written by [`ScalerParams::to_json`].
    pub fn from_json(s: &str) -> Result<ScalerParams> {
        serde_json::from_str(s)
            .map_err(|e| Error::config(SCALER_METADATA_KEY, format!("bad scaler parameters: {e}")))
    }
}

/// Per-column accumulators of the fitting pass.
struct Acc {
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    q: [P2Quantile; 3],
}

/// Fits `method` on `columns` over `chunks` in one streaming pass. Columns missing from a
/// chunk are skipped there; null and non-finite values are ignored.
pub fn fit_scaler<'a>(
    chunks: impl IntoIterator<Item = &'a Chunk>,
    columns: &[String],
    method: ScaleMethod,
) -> Result<ScalerParams> {
    let mut accs: Vec<Acc> = columns
        .iter()
        .map(|_| Acc {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            q: [
                P2Quantile::new(0.25),
                P2Quantile::new(0.5),
                P2Quantile::new(0.75),
            ],
        })
        .collect();
    for chunk in chunks {
        for (name, acc) in columns.iter().zip(&mut accs) {
            let col = f64_col(chunk, name)?;
            if !col.present() {
                continue;
            }
            for i in 0..chunk.num_rows() {
                let Some(x) = col.get(i) else { continue };
                acc.n += 1;
                let d = x - acc.mean;
                acc.mean += d / acc.n as f64;
                acc.m2 += d * (x - acc.mean);
                acc.min = acc.min.min(x);
                acc.max = acc.max.max(x);
                if method == ScaleMethod::Robust {
                    for q in &mut acc.q {
                        q.update(x);
                    }
                }
            }
        }
    }
    let columns = columns
        .iter()
        .zip(accs)
        .map(|(name, a)| {
            let (center, spread) = if a.n == 0 {
                (0.0, 1.0)
            } else {
                match method {
                    ScaleMethod::ZScore => (a.mean, (a.m2 / a.n as f64).sqrt()),
                    ScaleMethod::MinMax => (a.min, a.max - a.min),
                    ScaleMethod::Robust => {
                        let [q1, q2, q3] = a.q.map(|q| q.value().unwrap_or(0.0));
                        (q2, q3 - q1)
                    }
                }
            };
            ColumnScale {
                column: name.clone(),
                center,
                scale: if spread > 0.0 && spread.is_finite() {
                    spread
                } else {
                    1.0
                },
                count: a.n,
            }
        })
        .collect();
    Ok(ScalerParams { method, columns })
}

/// Applies fitted [`ScalerParams`]: each listed column present in a chunk is replaced by its
/// scaled Float64 version (nulls stay null). Row-local and stateless.
pub struct ScaleStage {
    params: ScalerParams,
}

impl ScaleStage {
    /// A stage applying `params`.
    pub fn new(params: ScalerParams) -> Self {
        ScaleStage { params }
    }
}

impl Stage for ScaleStage {
    fn name(&self) -> &str {
        "scale"
    }

    fn key(&self) -> StageKey {
        StageKey::of("scale", &self.params)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let mut extra = Vec::new();
        for c in &self.params.columns {
            let col = f64_col(&chunk, &c.column)?;
            if !col.present() {
                continue;
            }
            let v: Vec<f64> = (0..chunk.num_rows())
                .map(|i| col.get(i).map_or(f64::NAN, |x| (x - c.center) / c.scale))
                .collect();
            extra.push((
                Field::new(&c.column, DataType::Float64, true),
                to_array(v, &DataType::Float64),
            ));
        }
        if extra.is_empty() {
            out.emit(chunk);
        } else {
            out.emit(chunk.with_columns(extra)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::testutil::SplitMix;

    #[test]
    fn p2_tracks_exact_quantiles() {
        let mut rng = SplitMix(21);
        let xs: Vec<f64> = (0..20_000).map(|_| rng.normal() * 10.0 + 3.0).collect();
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        for p in [0.25, 0.5, 0.75, 0.9] {
            let mut q = P2Quantile::new(p);
            xs.iter().for_each(|&x| q.update(x));
            let exact = sorted[(p * (xs.len() - 1) as f64).round() as usize];
            let got = q.value().unwrap();
            assert!((got - exact).abs() < 0.1, "p={p}: {got} vs {exact}");
        }
        let mut q = P2Quantile::new(0.5);
        [3.0, 1.0, 2.0].iter().for_each(|&x| q.update(x));
        assert_eq!(q.value(), Some(2.0));
    }

    #[test]
    fn params_round_trip_through_json() {
        let p = ScalerParams {
            method: ScaleMethod::Robust,
            columns: vec![ColumnScale {
                column: "x".into(),
                center: 0.1,
                scale: 3.3,
                count: 7,
            }],
        };
        assert_eq!(ScalerParams::from_json(&p.to_json()).unwrap(), p);
        assert!(ScalerParams::from_json("{").is_err());
        let mut q = p.clone();
        q.columns[0].center = 0.2;
        assert_ne!(ScaleStage::new(p).key(), ScaleStage::new(q).key());
    }
}
