//! Per-row series kernels: simple and log returns, lags, and exponentially weighted mean and
//! standard deviation by span or by half-life in time.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Simple return `x / x₋₁ − 1` against the previous non-null value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SimpleReturn {
    prev: Option<f64>,
}

impl SimpleReturn {
    /// Adds `x`; the return from the second value on.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let p = self.prev.replace(x)?;
        Some(x / p - 1.0)
    }
}

/// Log return `ln(x / x₋₁)` against the previous non-null value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogReturn {
    prev: Option<f64>,
}

impl LogReturn {
    /// Adds `x`; the log return from the second value on.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let p = self.prev.replace(x)?;
        Some((x / p).ln())
    }
}

/// Lags of one column: the value `k` rows back (nulls included, as rows), for several `k`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lags {
    max: usize,
    past: VecDeque<Option<f64>>,
}

impl Lags {
    /// Lags up to `max` rows.
    pub fn new(max: usize) -> Self {
        Lags {
            max,
            past: VecDeque::with_capacity(max + 1),
        }
    }

    /// The value `k` (1..=max) rows before the row about to be pushed.
    pub fn get(&self, k: usize) -> Option<f64> {
        let n = self.past.len();
        if k == 0 || k > n {
            return None;
        }
        self.past[n - k]
    }

    /// Records the current row's value (after reading its lags).
    pub fn push(&mut self, x: Option<f64>) {
        if self.max == 0 {
            return;
        }
        if self.past.len() == self.max {
            self.past.pop_front();
        }
        self.past.push_back(x);
    }
}

/// Lag of one column by `k` rows, as a single-output kernel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lag {
    k: usize,
    lags: Lags,
}

impl Lag {
    /// A lag of `k` rows.
    pub fn new(k: usize) -> Self {
        Lag {
            k,
            lags: Lags::new(k),
        }
    }

    /// Adds `x` and returns the value `k` rows back.
    pub fn update(&mut self, x: Option<f64>) -> Option<f64> {
        let out = self.lags.get(self.k);
        self.lags.push(x);
        out
    }
}

/// How fast an exponentially weighted average forgets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Decay {
    /// By rows: `α = 2 / (span + 1)`.
    Span(f64),
    /// By time: a value loses half its weight after this many nanoseconds,
    /// `α = 1 − exp(−ln 2 · Δt / h)`.
    HalfLife(i64),
}

/// Exponentially weighted mean and standard deviation (pandas `adjust=False`, biased
/// variance): `m ← m + α(x − m)`, `v ← (1 − α)(v + α(x − m₋₁)²)`, seeded with the first value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ewm {
    decay: Decay,
    state: Option<(i64, f64, f64)>,
}

impl Ewm {
    /// A fresh average with `decay`.
    pub fn new(decay: Decay) -> Self {
        Ewm { decay, state: None }
    }

    /// True when the decay depends on time (rows without a timestamp cannot update it).
    pub fn needs_time(&self) -> bool {
        matches!(self.decay, Decay::HalfLife(_))
    }

    /// Adds `x` at `ts` (ns; used by [`Decay::HalfLife`]) and returns `(mean, std)`.
    pub fn update(&mut self, ts: i64, x: f64) -> (f64, f64) {
        let Some((t0, m, v)) = self.state else {
            self.state = Some((ts, x, 0.0));
            return (x, 0.0);
        };
        let alpha = match self.decay {
            Decay::Span(s) => 2.0 / (s + 1.0),
            Decay::HalfLife(h) => {
                let dt = ts.saturating_sub(t0).max(0) as f64;
                1.0 - (-std::f64::consts::LN_2 * dt / h as f64).exp()
            }
        };
        let d = x - m;
        let m = m + alpha * d;
        let v = (1.0 - alpha) * (v + alpha * d * d);
        self.state = Some((ts, m, v));
        (m, v.max(0.0).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::testutil::SplitMix;

    #[test]
    fn returns_and_lags_match_direct_formulas() {
        let mut rng = SplitMix::new(3);
        let xs: Vec<f64> = (0..500).map(|_| 100.0 + rng.normal()).collect();
        let (mut s, mut l) = (SimpleReturn::default(), LogReturn::default());
        let mut lag5 = Lag::new(5);
        for (i, &x) in xs.iter().enumerate() {
            let (a, b, c) = (s.update(x), l.update(x), lag5.update(Some(x)));
            if i == 0 {
                assert_eq!((a, b), (None, None));
            } else {
                assert!((a.unwrap() - (xs[i] - xs[i - 1]) / xs[i - 1]).abs() < 1e-12);
                assert!((b.unwrap() - (xs[i].ln() - xs[i - 1].ln())).abs() < 1e-12);
            }
            assert_eq!(c, i.checked_sub(5).map(|j| xs[j]));
        }
    }

    /// The EW mean and variance as explicitly weighted sums over the whole history.
    fn naive(xs: &[f64], alphas: &[f64]) -> (f64, f64) {
        // Weight of x_j at the end: α_j Π_{k>j}(1 − α_k), with α_0 = 1.
        let n = xs.len();
        let mut w = vec![0.0; n];
        for j in 0..n {
            let mut p = if j == 0 { 1.0 } else { alphas[j] };
            for a in &alphas[j + 1..] {
                p *= 1.0 - a;
            }
            w[j] = p;
        }
        let mean: f64 = w.iter().zip(xs).map(|(w, x)| w * x).sum();
        let var: f64 = w.iter().zip(xs).map(|(w, x)| w * (x - mean).powi(2)).sum();
        (mean, var.sqrt())
    }

    #[test]
    fn ewm_matches_explicit_weights() {
        let mut rng = SplitMix::new(5);
        let xs: Vec<f64> = (0..200).map(|_| rng.normal() * 2.0 + 10.0).collect();
        let ts: Vec<i64> = (0..200)
            .map(|i| i * 1_000_000_000 + (i % 7) * 13_000_000)
            .collect();
        for decay in [Decay::Span(10.0), Decay::HalfLife(5_000_000_000)] {
            let mut e = Ewm::new(decay);
            let mut alphas = vec![1.0];
            for i in 0..xs.len() {
                if i > 0 {
                    alphas.push(match decay {
                        Decay::Span(s) => 2.0 / (s + 1.0),
                        Decay::HalfLife(h) => {
                            1.0 - 0.5f64.powf((ts[i] - ts[i - 1]) as f64 / h as f64)
                        }
                    });
                }
                let (m, s) = e.update(ts[i], xs[i]);
                let (wm, ws) = naive(&xs[..=i], &alphas);
                assert!((m - wm).abs() < 1e-9, "{decay:?} mean row {i}");
                assert!((s - ws).abs() < 1e-9, "{decay:?} std row {i}");
            }
        }
    }
}
