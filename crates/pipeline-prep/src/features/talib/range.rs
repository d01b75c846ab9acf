//! TA-Lib indicators on high/low/close: ATR, ADX, Stochastic and Williams %R.

use serde::{Deserialize, Serialize};

use super::average::Sma;
use super::momentum::{is_zero, is_zero_scaled};
use crate::features::window::{Extreme, MonoDeque};

/// True range of today's high/low against yesterday's close:
/// `max(h − l, |h − c₋₁|, |l − c₋₁|)`.
pub(crate) fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    let mut out = high - low;
    let a = (prev_close - high).abs();
    if a > out {
        out = a;
    }
    let b = (low - prev_close).abs();
    if b > out {
        out = b;
    }
    out
}

/// Average true range with Wilder smoothing: the first value is the mean of the first `n`
/// true ranges (rows 1..=n), then `ATR ← (ATR(n−1) + TR)/n`; lookback `n`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Atr {
    period: usize,
    prev_close: Option<f64>,
    seen: usize,
    value: f64,
}

impl Atr {
    /// An ATR of `period` (≥ 1).
    pub fn new(period: usize) -> Self {
        Atr {
            period: period.max(1),
            prev_close: None,
            seen: 0,
            value: 0.0,
        }
    }

    /// Adds a (high, low, close) row; the ATR once `period` true ranges exist.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let pc = self.prev_close.replace(close)?;
        let tr = true_range(high, low, pc);
        let n = self.period as f64;
        if self.seen < self.period {
            self.seen += 1;
            self.value += tr;
            if self.seen < self.period {
                return None;
            }
            self.value /= n;
            return Some(self.value);
        }
        self.value *= n - 1.0;
        self.value += tr;
        self.value /= n;
        Some(self.value)
    }
}

/// Average directional index (Wilder): +DM/−DM and TR summed over the first `n − 1` changes,
/// then Wilder-smoothed (`S ← S − S/n + x`); `DX = 100·|−DI − +DI| / (−DI + +DI)` with
/// `±DI = 100·±DM/TR`; the first ADX is the mean of `n` DX values, then
/// `ADX ← (ADX(n−1) + DX)/n`; lookback `2n − 1`. Zero TR or DI sums (below 1e-14) leave the
/// previous value in place, as in TA-Lib.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adx {
    period: usize,
    prev: Option<(f64, f64, f64)>,
    steps: usize,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    sum_dx: f64,
    adx: f64,
}

impl Adx {
    /// An ADX of `period` (≥ 1).
    pub fn new(period: usize) -> Self {
        Adx {
            period: period.max(1),
            prev: None,
            steps: 0,
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            sum_dx: 0.0,
            adx: 0.0,
        }
    }

    /// Adds a (high, low, close) row; the ADX once `2·period − 1` changes have been seen.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let (ph, pl, pc) = self.prev.replace((high, low, close))?;
        let n = self.period as f64;
        let diff_p = high - ph;
        let diff_m = pl - low;
        let tr = true_range(high, low, pc);
        self.steps += 1;
        let smoothing = self.steps >= self.period;
        if smoothing {
            self.minus_dm -= self.minus_dm / n;
            self.plus_dm -= self.plus_dm / n;
        }
        if diff_m > 0.0 && diff_p < diff_m {
            self.minus_dm += diff_m;
        } else if diff_p > 0.0 && diff_p > diff_m {
            self.plus_dm += diff_p;
        }
        if !smoothing {
            self.tr += tr;
            return None;
        }
        self.tr = self.tr - (self.tr / n) + tr;
        let dx = if is_zero(self.tr) {
            None
        } else {
            let minus_di = 100.0 * (self.minus_dm / self.tr);
            let plus_di = 100.0 * (self.plus_dm / self.tr);
            let t = minus_di + plus_di;
            if is_zero(t) {
                None
            } else {
                Some(100.0 * ((minus_di - plus_di).abs() / t))
            }
        };
        let first = 2 * self.period - 1;
        if self.steps < first {
            self.sum_dx += dx.unwrap_or(0.0);
            return None;
        }
        if self.steps == first {
            self.sum_dx += dx.unwrap_or(0.0);
            self.adx = self.sum_dx / n;
            return Some(self.adx);
        }
        if let Some(dx) = dx {
            self.adx = ((self.adx * (n - 1.0)) + dx) / n;
        }
        Some(self.adx)
    }
}

/// Highest high and lowest low over the last `n` rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HighLow {
    period: usize,
    row: i64,
    hi: MonoDeque,
    lo: MonoDeque,
}

impl HighLow {
    fn new(period: usize) -> Self {
        HighLow {
            period: period.max(1),
            row: 0,
            hi: MonoDeque::new(Extreme::Max),
            lo: MonoDeque::new(Extreme::Min),
        }
    }

    /// Adds a row; `(highest, lowest)` once `period` rows have been seen.
    fn push(&mut self, high: f64, low: f64) -> Option<(f64, f64)> {
        self.hi.push(self.row, high);
        self.lo.push(self.row, low);
        let oldest_excluded = self.row - self.period as i64;
        self.hi.expire(oldest_excluded);
        self.lo.expire(oldest_excluded);
        self.row += 1;
        if self.row < self.period as i64 {
            return None;
        }
        Some((self.hi.get()?, self.lo.get()?))
    }
}

/// Slow stochastic: fast %K `= 100·(c − LL_k)/(HH_k − LL_k)` (0 on a flat window), slow %K
/// `= SMA_sk(fast %K)`, slow %D `= SMA_sd(slow %K)`; lookback `(k − 1) + (sk − 1) + (sd − 1)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stoch {
    range: HighLow,
    slow_k: Sma,
    slow_d: Sma,
}

impl Stoch {
    /// A stochastic with fast %K period `k`, slow %K period `sk` and slow %D period `sd`.
    pub fn new(k: usize, sk: usize, sd: usize) -> Self {
        Stoch {
            range: HighLow::new(k),
            slow_k: Sma::new(sk),
            slow_d: Sma::new(sd),
        }
    }

    /// Adds a (high, low, close) row; `[slow %K, slow %D]` once both exist.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<[f64; 2]> {
        let (hh, ll) = self.range.push(high, low)?;
        let range = hh - ll;
        let fast = if is_zero_scaled(range, hh.abs() + ll.abs()) {
            0.0
        } else {
            ((close - ll) / range) * 100.0
        };
        let k = self.slow_k.update(fast)?;
        let d = self.slow_d.update(k)?;
        Some([k, d])
    }
}

/// Williams %R: `−100·(HH − c)/(HH − LL)` over `n` rows, clamped to [−100, 0] (0 on a flat
/// window, as in STOCH); lookback `n − 1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Willr {
    range: HighLow,
}

impl Willr {
    /// A Williams %R of `period`.
    pub fn new(period: usize) -> Self {
        Willr {
            range: HighLow::new(period),
        }
    }

    /// Adds a (high, low, close) row; the value once `period` rows have been seen.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let (hh, ll) = self.range.push(high, low)?;
        let range = hh - ll;
        if is_zero_scaled(range, hh.abs() + ll.abs()) {
            return Some(0.0);
        }
        Some((((hh - close) / range) * -100.0).clamp(-100.0, 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_starts_with_the_mean_true_range() {
        let mut a = Atr::new(2);
        assert_eq!(a.update(10.0, 9.0, 9.5), None);
        assert_eq!(a.update(11.0, 10.0, 10.5), None); // TR 1.5
        assert_eq!(a.update(10.5, 10.0, 10.2), Some(1.0)); // TR 0.5
        assert_eq!(a.update(12.2, 10.2, 12.0), Some(1.5)); // TR 2.0
    }

    #[test]
    fn willr_spans_minus_100_to_0() {
        let mut w = Willr::new(2);
        assert_eq!(w.update(10.0, 8.0, 9.0), None);
        assert_eq!(w.update(12.0, 9.0, 12.0), Some(0.0));
        assert_eq!(w.update(11.0, 10.0, 9.0), Some(-100.0));
    }
}
