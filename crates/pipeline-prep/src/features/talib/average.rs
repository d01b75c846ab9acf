//! TA-Lib moving averages: SMA, EMA, WMA, DEMA, TEMA, MACD and Bollinger Bands.
//!
//! Each mirrors the order of floating-point operations of TA-Lib 0.4/0.6's C code (running
//! totals added before the trailing value is subtracted, EMA as `(x - prev) * k + prev`), so
//! results agree with TA-Lib to the last few bits, not just to a tolerance.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// TA-Lib's `TA_IS_ZERO_OR_NEG`: below 1e-14 counts as zero.
fn is_zero_or_neg(x: f64) -> bool {
    x < 1e-14
}

/// Simple moving average: `sum(x[i-n+1..=i]) / n`; lookback `n - 1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sma {
    period: usize,
    window: VecDeque<f64>,
    total: f64,
}

impl Sma {
    /// An SMA over `period` (≥ 1) values.
    pub fn new(period: usize) -> Self {
        Sma {
            period: period.max(1),
            window: VecDeque::with_capacity(period + 1),
            total: 0.0,
        }
    }

    /// Adds `x`; the average once `period` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.total += x;
        self.window.push_back(x);
        if self.window.len() < self.period {
            return None;
        }
        let out = self.total / self.period as f64;
        if let Some(old) = self.window.pop_front() {
            self.total -= old;
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
    window: VecDeque<f64>,
    sum: f64,
    sub: f64,
    trailing: f64,
}

impl Wma {
    /// A WMA over `period` (≥ 1) values.
    pub fn new(period: usize) -> Self {
        Wma {
            period: period.max(1),
            window: VecDeque::with_capacity(period + 1),
            sum: 0.0,
            sub: 0.0,
            trailing: 0.0,
        }
    }

    /// Adds `x`; the average once `period` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.window.push_back(x);
        if self.window.len() < self.period {
            self.sub += x;
            self.sum += x * self.window.len() as f64;
            return None;
        }
        self.sub += x;
        self.sub -= self.trailing;
        self.sum += x * self.period as f64;
        self.trailing = self.window.pop_front().unwrap_or(0.0);
        let divider = ((self.period * (self.period + 1)) >> 1) as f64;
        let out = self.sum / divider;
        self.sum -= self.sub;
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
    total: f64,
    total2: f64,
}

impl Bbands {
    /// Bands of `period` values, `k_up`/`k_down` deviations wide.
    pub fn new(period: usize, k_up: f64, k_down: f64) -> Self {
        Bbands {
            period: period.max(1),
            k_up,
            k_down,
            window: VecDeque::with_capacity(period + 1),
            total: 0.0,
            total2: 0.0,
        }
    }

    /// Adds `x`; `[upper, middle, lower]` once `period` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<[f64; 3]> {
        self.total += x;
        self.total2 += x * x;
        self.window.push_back(x);
        if self.window.len() < self.period {
            return None;
        }
        let n = self.period as f64;
        let mid = self.total / n;
        let mut mean2 = self.total2 / n;
        if let Some(old) = self.window.pop_front() {
            self.total -= old;
            self.total2 -= old * old;
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

    #[test]
    fn wma_weights_the_newest_most() {
        let mut w = Wma::new(3);
        let out: Vec<_> = [1.0, 2.0, 3.0, 6.0].iter().map(|&x| w.update(x)).collect();
        assert_eq!(out[2], Some((1.0 + 4.0 + 9.0) / 6.0));
        assert_eq!(out[3], Some((2.0 + 6.0 + 18.0) / 6.0));
    }
}
