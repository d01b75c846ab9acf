//! TA-Lib momentum indicators on one price series: RSI, ROC, MOM, OBV and CCI.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// TA-Lib's `TA_IS_ZERO`: strictly within ±1e-14.
pub(crate) fn is_zero(x: f64) -> bool {
    -1e-14 < x && x < 1e-14
}

/// TA-Lib 0.8's `TA_IS_ZERO_SCALED`: `|x| ≤ 1e-14 · scale`, for a difference `x` of numbers
/// of magnitude `scale` (a flat window leaves a rounding residue of a few ulps).
pub(crate) fn is_zero_scaled(x: f64, scale: f64) -> bool {
    x.abs() <= 1e-14 * scale
}

/// Relative Strength Index with Wilder smoothing: average gain `G` and loss `L` start as the
/// plain means of the first `n` changes, then `G ← (G(n−1) + gain)/n`; `RSI = 100·G/(G+L)`
/// (0 when `G + L` is zero); lookback `n` (TA-Lib's unstable period 0).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rsi {
    period: usize,
    prev: Option<f64>,
    changes: usize,
    gain: f64,
    loss: f64,
}

impl Rsi {
    /// An RSI of `period` (≥ 1) changes.
    pub fn new(period: usize) -> Self {
        Rsi {
            period: period.max(1),
            prev: None,
            changes: 0,
            gain: 0.0,
            loss: 0.0,
        }
    }

    fn value(&self) -> f64 {
        let t = self.gain + self.loss;
        if is_zero(t) {
            0.0
        } else {
            100.0 * (self.gain / t)
        }
    }

    /// Adds `x`; the RSI once `period` changes have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let prev = self.prev.replace(x)?;
        let d = x - prev;
        let n = self.period as f64;
        if self.changes < self.period {
            self.changes += 1;
            if d < 0.0 {
                self.loss -= d;
            } else {
                self.gain += d;
            }
            if self.changes < self.period {
                return None;
            }
            self.loss /= n;
            self.gain /= n;
            return Some(self.value());
        }
        self.loss *= n - 1.0;
        self.gain *= n - 1.0;
        if d < 0.0 {
            self.loss -= d;
        } else {
            self.gain += d;
        }
        self.loss /= n;
        self.gain /= n;
        Some(self.value())
    }
}

/// The last `n + 1` values of a series, for indicators that compare `x` with `x[i−n]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Back {
    n: usize,
    window: VecDeque<f64>,
}

impl Back {
    fn new(n: usize) -> Self {
        Back {
            n: n.max(1),
            window: VecDeque::with_capacity(n + 2),
        }
    }

    /// Pushes `x` and returns `x[i−n]` once it exists.
    fn push(&mut self, x: f64) -> Option<f64> {
        self.window.push_back(x);
        if self.window.len() <= self.n {
            return None;
        }
        self.window.pop_front()
    }
}

/// Rate of change in percent: `(x / x[i−n] − 1)·100` (0 when `x[i−n]` is 0); lookback `n`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Roc(Back);

impl Roc {
    /// A ROC over `period` rows.
    pub fn new(period: usize) -> Self {
        Roc(Back::new(period))
    }

    /// Adds `x`; the ROC once `period + 1` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let old = self.0.push(x)?;
        Some(if old != 0.0 {
            ((x / old) - 1.0) * 100.0
        } else {
            0.0
        })
    }
}

/// Momentum: `x − x[i−n]`; lookback `n`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mom(Back);

impl Mom {
    /// A momentum over `period` rows.
    pub fn new(period: usize) -> Self {
        Mom(Back::new(period))
    }

    /// Adds `x`; the momentum once `period + 1` values have been seen.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        let old = self.0.push(x)?;
        Some(x - old)
    }
}

/// On-balance volume: starts at the first volume, then adds the volume when the price rises
/// and subtracts it when it falls; lookback 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Obv {
    prev: Option<(f64, f64)>,
}

impl Obv {
    /// A fresh OBV.
    pub fn new() -> Self {
        Obv::default()
    }

    /// Adds a (price, volume) row and returns the OBV.
    pub fn update(&mut self, price: f64, volume: f64) -> Option<f64> {
        let obv = match self.prev {
            None => volume,
            Some((p, obv)) if price > p => obv + volume,
            Some((p, obv)) if price < p => obv - volume,
            Some((_, obv)) => obv,
        };
        self.prev = Some((price, obv));
        Some(obv)
    }
}

/// Commodity Channel Index over the typical price `tp = (h + l + c)/3`:
/// `(tp − mean) / (0.015 · mean|tp − mean|)` over `n` rows (0 when either part is within
/// 1e-14 × |mean| of zero, TA-Lib 0.8's scale-aware flat-window test);
/// lookback `n − 1`. The mean deviation needs the whole window, so this one is O(n) per row,
/// as in TA-Lib (whose circular-buffer summation order it keeps).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cci {
    buf: Vec<f64>,
    idx: usize,
    seen: usize,
}

impl Cci {
    /// A CCI over `period` (≥ 1) rows.
    pub fn new(period: usize) -> Self {
        Cci {
            buf: vec![0.0; period.max(1)],
            idx: 0,
            seen: 0,
        }
    }

    /// Adds a (high, low, close) row; the CCI once `period` rows have been seen.
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let p = self.buf.len();
        let last = (high + low + close) / 3.0;
        self.buf[self.idx] = last;
        self.idx = (self.idx + 1) % p;
        self.seen += 1;
        if self.seen < p {
            return None;
        }
        let n = p as f64;
        let mut avg = 0.0;
        for &v in &self.buf {
            avg += v;
        }
        avg /= n;
        let mut dev = 0.0;
        for &v in &self.buf {
            dev += (v - avg).abs();
        }
        dev /= n;
        let t = last - avg;
        let scale = avg.abs();
        Some(
            if !is_zero_scaled(t, scale) && !is_zero_scaled(dev, scale) {
                t / (0.015 * dev)
            } else {
                0.0
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsi_is_100_on_a_rising_series_and_0_when_flat() {
        let mut r = Rsi::new(3);
        let out: Vec<_> = [1.0, 2.0, 3.0, 4.0, 5.0]
            .iter()
            .map(|&x| r.update(x))
            .collect();
        assert_eq!(out, vec![None, None, None, Some(100.0), Some(100.0)]);
        let mut r = Rsi::new(2);
        let out: Vec<_> = [1.0, 1.0, 1.0].iter().map(|&x| r.update(x)).collect();
        assert_eq!(out[2], Some(0.0));
    }

    #[test]
    fn roc_mom_and_obv() {
        let mut roc = Roc::new(2);
        let mut mom = Mom::new(2);
        let mut obv = Obv::new();
        let xs = [10.0, 11.0, 12.5, 11.0];
        let r: Vec<_> = xs.iter().map(|&x| roc.update(x)).collect();
        let m: Vec<_> = xs.iter().map(|&x| mom.update(x)).collect();
        let o: Vec<_> = xs.iter().map(|&x| obv.update(x, 2.0)).collect();
        assert_eq!(r[2], Some(25.0));
        assert_eq!(m[3], Some(0.0));
        assert_eq!(o, vec![Some(2.0), Some(4.0), Some(6.0), Some(4.0)]);
    }
}
