//! TA-Lib moving averages: SMA, EMA, WMA, DEMA, TEMA, MACD and Bollinger Bands.
//!
//! Each mirrors the order of floating-point operations of TA-Lib 0.4/0.6's C code (running
//! totals added before the trailing value is subtracted, EMA as `(x - prev) * k + prev`), so
//! results agree with TA-Lib to the last few bits, not just to a tolerance. Unlike TA-Lib,
//! the running totals carry a rounding-error bound and are rebuilt from the window when it
//! passes 2^-40 of their value ([`crate::sums`]): on ordinary data that changes nothing, and
//! a value 1e12 times the others no longer corrupts every average after it (issue #13).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::sums::RunningSum;

/// TA-Lib's `TA_IS_ZERO_OR_NEG`: below 1e-14 counts as zero.
fn is_zero_or_neg(x: f64) -> bool {
    x < 1e-14
}

/// Simple moving average: `sum(x[i-n+1..=i]) / n`; lookback `n - 1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sma {
    period: usize,
    window: VecDeque<f64>,
    total: RunningSum,
}

impl Sma {
    /// An SMA over `period` (≥ 1) values.
    pub fn new(period: usize) -> Self {
        Sma {
            period: period.max(1),
            window: VecDeque::with_capacity(period + 1),
            total: RunningSum::default(),
        }
    }

    /// Adds `x`; the average once `period` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.total.add(x);
        self.window.push_back(x);
        if self.window.len() < self.period {
            return None;
        }
        let out = self.total.value() / self.period as f64;
        if let Some(old) = self.window.pop_front() {
            self.total.sub(old);
        }
        if self.total.stale() {
            self.total.rebuild(self.window.iter().copied());
        }
        Some(out)
    }
}

/// Exponential moving average with `k = 2 / (n + 1)`, seeded with the SMA of the first `n`
/// values (TA-Lib's default compatibility); lookback `n - 1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ema {
    period: usize,
    k: f64,
    seen: usize,
    seed: f64,
    value: f64,
}

impl Ema {
    /// An EMA over `period` (≥ 1) values.
    pub fn new(period: usize) -> Self {
        let period = period.max(1);
        Ema {
            period,
            k: 2.0 / (period as f64 + 1.0),
            seen: 0,
            seed: 0.0,
            value: 0.0,
        }
    }

    /// Adds `x`; the average once `period` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if self.seen < self.period {
            self.seen += 1;
            self.seed += x;
            if self.seen < self.period {
                return None;
            }
            self.value = self.seed / self.period as f64;
            return Some(self.value);
        }
        self.value = (x - self.value) * self.k + self.value;
        Some(self.value)
    }
}

/// Weighted moving average, weights `1..=n` (newest heaviest): `Σ w·x / (n(n+1)/2)`;
/// lookback `n - 1`. Kept with TA-Lib's running `periodSum`/`periodSub`, O(1) per row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Wma {
    period: usize,
    /// The last `period - 1` values (the newest `period` while a value is being added).
    window: VecDeque<f64>,
    /// `Σ j·w_j` over the window, weights `1..` from the oldest.
    sum: RunningSum,
    /// `Σ w_j` over the window.
    sub: RunningSum,
}

impl Wma {
    /// A WMA over `period` (≥ 1) values.
    pub fn new(period: usize) -> Self {
        Wma {
            period: period.max(1),
            window: VecDeque::with_capacity(period + 1),
            sum: RunningSum::default(),
            sub: RunningSum::default(),
        }
    }

    /// Adds `x`; the average once `period` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.window.push_back(x);
        let n = self.window.len();
        self.sub.add(x);
        if n < self.period {
            self.sum.add(x * n as f64);
            return None;
        }
        // TA-Lib's periodSum/periodSub: every weight drops by one when the next value comes.
        self.sum.add(x * self.period as f64);
        let divider = ((self.period * (self.period + 1)) >> 1) as f64;
        let out = self.sum.value() / divider;
        let oldest = self.window.pop_front();
        let total = self.sub.value();
        if total.is_finite() && self.sum.value().is_finite() {
            self.sum.sub(total);
            if let Some(old) = oldest {
                self.sub.sub(old);
            }
            if !(self.sum.stale() || self.sub.stale()) {
                return Some(out);
            }
        }
        // Stale, or a non-finite value in the window: recompute both totals exactly.
        self.sub.rebuild(self.window.iter().copied());
        self.sum.rebuild(
            self.window
                .iter()
                .enumerate()
                .map(|(j, v)| (j + 1) as f64 * v),
        );
        Some(out)
    }
}

/// Double EMA: `2·EMA(x) − EMA(EMA(x))`; lookback `2(n − 1)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dema {
    e1: Ema,
    e2: Ema,
}

impl Dema {
    /// A DEMA of `period`.
    pub fn new(period: usize) -> Self {
        Dema {
            e1: Ema::new(period),
            e2: Ema::new(period),
        }
    }

    /// Adds `x`; the value once both EMAs are seeded.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let a = self.e1.update(x)?;
        let b = self.e2.update(a)?;
        Some((2.0 * a) - b)
    }
}

/// Triple EMA: `3·E1 − 3·E2 + E3` with `E2 = EMA(E1)`, `E3 = EMA(E2)`; lookback `3(n − 1)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tema {
    e1: Ema,
    e2: Ema,
    e3: Ema,
}

impl Tema {
    /// A TEMA of `period`.
    pub fn new(period: usize) -> Self {
        Tema {
            e1: Ema::new(period),
            e2: Ema::new(period),
            e3: Ema::new(period),
        }
    }

    /// Adds `x`; the value once all three EMAs are seeded.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let a = self.e1.update(x)?;
        let b = self.e2.update(a)?;
        let c = self.e3.update(b)?;
        Some((3.0 * a) - (3.0 * b) + c)
    }
}

/// MACD: line `EMA_fast − EMA_slow`, signal `EMA_signal(line)`, histogram `line − signal`;
/// lookback `(slow − 1) + (signal − 1)`.
///
/// As in TA-Lib, the fast EMA is seeded with the SMA of the `fast` values that end where the
/// slow EMA's first value lies (not with the first `fast` values), so both start together.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Macd {
    fast: Ema,
    slow: Ema,
    signal: Ema,
    skip: usize,
    seen: usize,
}

impl Macd {
    /// A MACD with the given periods (TA-Lib swaps `fast` and `slow` if `slow < fast`).
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        let (fast, slow) = if slow < fast {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Macd {
            fast: Ema::new(fast),
            slow: Ema::new(slow),
            signal: Ema::new(signal),
            skip: slow.max(1) - fast.max(1),
            seen: 0,
        }
    }

    /// Adds `x`; `[line, signal, histogram]` once the signal EMA is seeded.
    pub fn update(&mut self, x: f64) -> Option<[f64; 3]> {
        self.seen += 1;
        let s = self.slow.update(x);
        let f = if self.seen > self.skip {
            self.fast.update(x)
        } else {
            None
        };
        let line = f? - s?;
        let sig = self.signal.update(line)?;
        Some([line, sig, line - sig])
    }
}

/// Bollinger Bands over an SMA: middle `SMA_n`, upper/lower `middle ± k·σ` with the population
/// standard deviation `σ = sqrt(mean(x²) − mean(x)²)` (0 when that is below 1e-14, as in
/// TA-Lib); lookback `n − 1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bbands {
    period: usize,
    k_up: f64,
    k_down: f64,
    window: VecDeque<f64>,
    total: RunningSum,
    total2: RunningSum,
}

impl Bbands {
    /// Bands of `period` values, `k_up`/`k_down` deviations wide.
    pub fn new(period: usize, k_up: f64, k_down: f64) -> Self {
        Bbands {
            period: period.max(1),
            k_up,
            k_down,
            window: VecDeque::with_capacity(period + 1),
            total: RunningSum::default(),
            total2: RunningSum::default(),
        }
    }

    /// Adds `x`; `[upper, middle, lower]` once `period` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<[f64; 3]> {
        self.total.add(x);
        self.total2.add(x * x);
        self.window.push_back(x);
        if self.window.len() < self.period {
            return None;
        }
        let n = self.period as f64;
        let mid = self.total.value() / n;
        let mut mean2 = self.total2.value() / n;
        if let Some(old) = self.window.pop_front() {
            self.total.sub(old);
            self.total2.sub(old * old);
        }
        if self.total.stale() || self.total2.stale() {
            self.total.rebuild(self.window.iter().copied());
            self.total2.rebuild(self.window.iter().map(|v| v * v));
        }
        mean2 -= mid * mid;
        let sd = if is_zero_or_neg(mean2) {
            0.0
        } else {
            mean2.sqrt()
        };
        let (up, down) = if self.k_up == self.k_down {
            if self.k_up == 1.0 {
                (sd, sd)
            } else {
                let d = sd * self.k_up;
                (d, d)
            }
        } else {
            (sd * self.k_up, sd * self.k_down)
        };
        Some([mid + up, mid, mid - down])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sma_and_ema_seed_on_the_first_period() {
        let mut s = Sma::new(3);
        let mut e = Ema::new(3);
        let xs = [1.0, 2.0, 3.0, 4.0];
        let sv: Vec<_> = xs.iter().map(|&x| s.update(x)).collect();
        let ev: Vec<_> = xs.iter().map(|&x| e.update(x)).collect();
        assert_eq!(sv, vec![None, None, Some(2.0), Some(3.0)]);
        assert_eq!(ev, vec![None, None, Some(2.0), Some(3.0)]);
    }

    /// Issue #13 case 2: a first price of 1e17 made `sma_20` read 96.2 instead of 100.03 for
    /// every later row. Once the extreme has left, every average equals a rescan.
    #[test]
    fn averages_forget_an_extreme_once_it_leaves() {
        let xs: Vec<f64> = std::iter::once(1e17)
            .chain((0..2000).map(|i| 100.0 + (i % 7) as f64 * 0.01))
            .chain(std::iter::once(f64::NAN))
            .chain((0..200).map(|i| 100.0 + (i % 5) as f64 * 0.01))
            .collect();
        let p = 20;
        let (mut s, mut w, mut b) = (Sma::new(p), Wma::new(p), Bbands::new(p, 2.0, 2.0));
        for (i, &x) in xs.iter().enumerate() {
            let (sv, wv, bv) = (s.update(x), w.update(x), b.update(x));
            if i + 1 < p {
                continue;
            }
            let win = &xs[i + 1 - p..=i];
            if win.iter().any(|v| !v.is_finite() || *v > 1e6) {
                continue;
            }
            let mean = win.iter().sum::<f64>() / p as f64;
            let wmean = win
                .iter()
                .enumerate()
                .map(|(j, v)| (j + 1) as f64 * v)
                .sum::<f64>()
                / (p * (p + 1) / 2) as f64;
            let sd = (win.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / p as f64).sqrt();
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
            assert!(close(sv.unwrap(), mean), "sma row {i}: {sv:?} vs {mean}");
            assert!(close(wv.unwrap(), wmean), "wma row {i}: {wv:?} vs {wmean}");
            let [up, mid, _] = bv.unwrap();
            assert!(
                close(mid, mean) && close(up, mean + 2.0 * sd),
                "bbands row {i}"
            );
        }
    }

    #[test]
    fn wma_weights_the_newest_most() {
        let mut w = Wma::new(3);
        let out: Vec<_> = [1.0, 2.0, 3.0, 6.0].iter().map(|&x| w.update(x)).collect();
        assert_eq!(out[2], Some((1.0 + 4.0 + 9.0) / 6.0));
        assert_eq!(out[3], Some((2.0 + 6.0 + 18.0) / 6.0));
    }
}
