//! Global (whole-series) IQR fences per symbol, fitted in a first pass.

use std::collections::BTreeMap;

use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey};
use serde::{Deserialize, Serialize};

use super::{OutlierAction, apply, clip, values};
use crate::clean::cols::Slots;

/// The P² streaming quantile estimator (Jain & Chlamtac 1985, CACM 28(10)): five markers,
/// O(1) memory and time per value; exact for the first five values, then an approximation
/// whose error on smooth distributions is well below the spacing of the data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct P2 {
    p: f64,
    n: [f64; 5],
    np: [f64; 5],
    dn: [f64; 5],
    h: [f64; 5],
    init: Vec<f64>,
}

impl P2 {
    pub(crate) fn new(p: f64) -> Self {
        P2 {
            p,
            n: [1.0, 2.0, 3.0, 4.0, 5.0],
            np: [1.0, 1.0 + 2.0 * p, 1.0 + 4.0 * p, 3.0 + 2.0 * p, 5.0],
            dn: [0.0, p / 2.0, p, (1.0 + p) / 2.0, 1.0],
            h: [0.0; 5],
            init: Vec::with_capacity(5),
        }
    }

    pub(crate) fn add(&mut self, x: f64) {
        if self.init.len() < 5 {
            self.init.push(x);
            if self.init.len() == 5 {
                self.init.sort_by(f64::total_cmp);
                self.h.copy_from_slice(&self.init);
            }
            return;
        }
        let h = &mut self.h;
        let k = if x < h[0] {
            h[0] = x;
            0
        } else if x >= h[4] {
            h[4] = x;
            3
        } else {
            (0..4).find(|&i| h[i] <= x && x < h[i + 1]).unwrap_or(3)
        };
        for i in k + 1..5 {
            self.n[i] += 1.0;
        }
        for i in 0..5 {
            self.np[i] += self.dn[i];
        }
        for i in 1..4 {
            let d = self.np[i] - self.n[i];
            let n = &self.n;
            if (d >= 1.0 && n[i + 1] - n[i] > 1.0) || (d <= -1.0 && n[i - 1] - n[i] < -1.0) {
                let d = d.signum();
                let hp = h[i]
                    + d / (n[i + 1] - n[i - 1])
                        * ((n[i] - n[i - 1] + d) * (h[i + 1] - h[i]) / (n[i + 1] - n[i])
                            + (n[i + 1] - n[i] - d) * (h[i] - h[i - 1]) / (n[i] - n[i - 1]));
                h[i] = if h[i - 1] < hp && hp < h[i + 1] {
                    hp
                } else {
                    let j = if d > 0.0 { i + 1 } else { i - 1 };
                    h[i] + d * (h[j] - h[i]) / (n[j] - n[i])
                };
                self.n[i] += d;
            }
        }
    }

    pub(crate) fn value(&self) -> Option<f64> {
        if self.init.len() < 5 {
            let mut v = self.init.clone();
            v.sort_by(f64::total_cmp);
            return super::window::quantile_sorted(&v, self.p);
        }
        Some(self.h[2])
    }
}

/// Configuration of [`GlobalIqr`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalIqrConfig {
    /// Value column (`auto` = price, else mid). Default `auto`.
    pub column: String,
    /// Fence multiple of the IQR. Default 1.5 (Tukey's fences).
    pub threshold: f64,
    /// What to do with outliers. Default `drop`.
    pub action: OutlierAction,
}

impl Default for GlobalIqrConfig {
    fn default() -> Self {
        GlobalIqrConfig {
            column: "auto".into(),
            threshold: 1.5,
            action: OutlierAction::Drop,
        }
    }
}

/// Tukey's fences `[Q1 − t·IQR, Q3 + t·IQR]` per symbol over the whole input: [`GlobalIqr::fit`]
/// makes a first pass over the chunks (P² quartiles, O(1) memory per symbol), then the stage
/// applies the fences row by row (rule `outlier_iqr_global`). Symbols not seen while fitting
/// pass untouched.
#[derive(Debug, Clone)]
pub struct GlobalIqr {
    cfg: GlobalIqrConfig,
    fences: BTreeMap<String, (f64, f64)>,
}

impl GlobalIqr {
    /// First pass: estimates each symbol's quartiles from `chunks`.
    pub fn fit(
        cfg: GlobalIqrConfig,
        chunks: impl IntoIterator<Item = Result<Chunk>>,
    ) -> Result<Self> {
        if cfg.threshold.is_nan() || cfg.threshold <= 0.0 {
            return Err(Error::config("iqr_global.threshold", "must be > 0"));
        }
        let mut slots = Slots::default();
        let mut est: Vec<(P2, P2)> = Vec::new();
        for c in chunks {
            let c = c?;
            let Some((vals, _)) = values(&c, &cfg.column)? else {
                continue;
            };
            let rows = slots.rows(&c)?;
            for (v, s) in vals.iter().zip(rows) {
                if est.len() <= s {
                    est.resize(s + 1, (P2::new(0.25), P2::new(0.75)));
                }
                if let Some(x) = v {
                    est[s].0.add(*x);
                    est[s].1.add(*x);
                }
            }
        }
        let mut fences = BTreeMap::new();
        for (name, (a, b)) in slots.names().iter().zip(&est) {
            if let (Some(q1), Some(q3)) = (a.value(), b.value()) {
                let iqr = q3 - q1;
                fences.insert(
                    name.clone(),
                    (q1 - cfg.threshold * iqr, q3 + cfg.threshold * iqr),
                );
            }
        }
        Ok(GlobalIqr { cfg, fences })
    }

    /// The fitted fences per symbol.
    pub fn fences(&self) -> &BTreeMap<String, (f64, f64)> {
        &self.fences
    }
}

impl Stage for GlobalIqr {
    fn name(&self) -> &str {
        "outliers_iqr_global"
    }

    fn key(&self) -> StageKey {
        let f: Vec<(&String, [u64; 2])> = self
            .fences
            .iter()
            .map(|(k, v)| (k, [v.0.to_bits(), v.1.to_bits()]))
            .collect();
        crate::clean::key::stage_key(self.name(), &(&self.cfg, f))
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let Some((vals, src)) = values(&chunk, &self.cfg.column)? else {
            out.emit(chunk);
            return Ok(());
        };
        let mut slots = Slots::default();
        let rows = slots.rows(&chunk)?;
        let bounds: Vec<Option<(f64, f64)>> = slots
            .names()
            .iter()
            .map(|n| self.fences.get(n).copied())
            .collect();
        let verdict: Vec<Option<f64>> = vals
            .iter()
            .zip(&rows)
            .map(|(v, s)| match (v, bounds[*s]) {
                (Some(x), Some((lo, hi))) if *x < lo || *x > hi => Some(clip(*x, lo, hi)),
                _ => None,
            })
            .collect();
        apply(
            chunk,
            out,
            "iqr_global",
            self.cfg.action,
            &src,
            &vals,
            &verdict,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2_quartiles_are_close_on_a_uniform_sequence() {
        let mut a = P2::new(0.25);
        let mut b = P2::new(0.75);
        // A deterministic permutation of 0..10000.
        for i in 0..10_000u64 {
            let x = ((i * 7919) % 10_000) as f64;
            a.add(x);
            b.add(x);
        }
        assert!(
            (a.value().unwrap() - 2500.0).abs() < 100.0,
            "{:?}",
            a.value()
        );
        assert!(
            (b.value().unwrap() - 7500.0).abs() < 100.0,
            "{:?}",
            b.value()
        );
        let mut c = P2::new(0.5);
        for x in [3.0, 1.0, 2.0] {
            c.add(x);
        }
        assert_eq!(c.value(), Some(2.0));
    }
}
