//! Running sums over sliding windows that forget what left them.
//!
//! A window statistic kept by adding each new value and subtracting each leaving one is O(1)
//! per row, but its rounding error is that of every partial sum since it started: after a
//! value of 1e17 has passed through a window of prices near 100, the running total has lost
//! everything below 16 (a 20-row SMA read 96.2 instead of 100.03 for ever; issue #13 case 2).
//!
//! [`RunningSum`] therefore carries, next to the sum, a bound on its rounding error: the
//! recursive-summation bound `u · Σ|partial sums|` (Higham, "Accuracy and Stability of
//! Numerical Algorithms", 2nd ed., §4.2), accumulated since the sum was last rebuilt. When
//! the bound passes [`REL`] of the sum's magnitude the owner rebuilds it from the window with
//! Neumaier's compensated summation (error ≤ 2u·|sum| plus second-order terms). On ordinary
//! data that is a rebuild every few thousand rows (a 20-row window of prices near 100 adds
//! ≈ 4,000·u per row against a budget of `REL` · 2,000); right after an extreme value leaves
//! the window it is at once, so the extreme changes nothing afterwards. Between rebuilds the
//! operations are exactly the plain add-and-subtract ones, which keeps TA-Lib's order of
//! floating-point operations (its parity tests compare to 1e-9).
//!
//! A non-finite value (NaN, ±inf, or a square that overflows) makes the running sum
//! non-finite, which counts as stale: the rebuild counts such values apart, so the sum reads
//! NaN exactly while one of them is in the window (rebuilt every row then) and recovers once
//! it leaves. Keeping that out of `add`/`sub` leaves them two additions each.
//!
//! [`Moments`] keeps a window's mean and variance the same way, as sums of deviations from
//! a shift (the window's mean at the last rebuild), so prices near 100 with a spread of cents
//! keep full precision in the variance.

use serde::{Deserialize, Serialize};

/// Unit roundoff of `f64`.
const U: f64 = f64::EPSILON / 2.0;

/// Relative accuracy a running sum keeps before it is rebuilt from its window: 2^-40 ≈
/// 9.1e-13, three orders of magnitude inside the 1e-9 the TA-Lib parity tests allow, and
/// loose enough that a 20-row window of ordinary prices is rebuilt about once every 4,000
/// rows (≈ 0.005 extra additions per row).
pub(crate) const REL: f64 = 1.0 / (1u64 << 40) as f64;

/// The same for a variance, whose bound also carries the cancellation in `Σd² − (Σd)²/n` as
/// the mean drifts from the shift: 2^-32 ≈ 2.3e-10 keeps a standard deviation within 1.2e-10
/// (relative), inside the 1e-9 of the parity tests. At 2^-40 the worst-case bound rebuilt a
/// 20-row window about every 30 rows of the features bench's random walk (callgrind: 8.6 M
/// instructions of rebuilds per 400 K updates).
pub(crate) const REL_VAR: f64 = 1.0 / (1u64 << 32) as f64;

/// A sum updated by additions and subtractions, with a bound on its rounding error since it
/// was last rebuilt (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunningSum {
    sum: f64,
    /// Σ|partial sums| since the last rebuild: `U · partials` bounds the error added since.
    partials: f64,
    /// Non-finite values added and not yet subtracted.
    nonfinite: u32,
}

impl RunningSum {
    /// Adds `x`.
    #[inline]
    pub(crate) fn add(&mut self, x: f64) {
        self.sum += x;
        self.partials += self.sum.abs();
    }

    /// Subtracts `x` (a value added before).
    #[inline]
    pub(crate) fn sub(&mut self, x: f64) {
        self.sum -= x;
        self.partials += self.sum.abs();
    }

    /// The sum; NaN while a non-finite value is in it.
    #[inline]
    pub(crate) fn value(&self) -> f64 {
        if self.nonfinite > 0 {
            f64::NAN
        } else {
            self.sum
        }
    }

    /// A bound on the rounding error added since the last rebuild.
    #[inline]
    pub(crate) fn error_bound(&self) -> f64 {
        U * self.partials
    }

    /// True when the error bound passes [`REL`] of the sum's magnitude, or the sum is not
    /// finite (a non-finite value came or went): time to [`RunningSum::rebuild`].
    #[inline]
    pub(crate) fn stale(&self) -> bool {
        !self.sum.is_finite() || self.error_bound() > REL * self.sum.abs()
    }

    /// Recomputes the sum of `values` with Neumaier's compensated summation and restarts the
    /// error bound.
    pub(crate) fn rebuild(&mut self, values: impl IntoIterator<Item = f64>) {
        let (mut sum, mut comp, mut nonfinite) = (0.0f64, 0.0f64, 0u32);
        for x in values {
            if !x.is_finite() {
                nonfinite += 1;
                continue;
            }
            let t = sum + x;
            comp += if sum.abs() >= x.abs() {
                (sum - t) + x
            } else {
                (x - t) + sum
            };
            sum = t;
        }
        *self = RunningSum {
            sum: sum + comp,
            partials: 0.0,
            nonfinite,
        };
    }
}

/// Mean and variance of a window of values, kept as running sums of `x − shift` and
/// `(x − shift)²` (the owner holds the values and their count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Moments {
    shift: f64,
    s1: RunningSum,
    s2: RunningSum,
    /// Whether the variance is wanted (otherwise `s2` is not kept).
    var: bool,
}

impl Moments {
    /// Sums for the mean (and, with `var`, the variance).
    pub(crate) fn new(var: bool) -> Self {
        Moments {
            var,
            ..Moments::default()
        }
    }

    /// Adds `x`; `first` says the window was empty (its first value becomes the shift).
    #[inline]
    pub(crate) fn add(&mut self, x: f64, first: bool) {
        if first && x.is_finite() {
            *self = Moments {
                shift: x,
                ..Moments::new(self.var)
            };
        }
        let d = x - self.shift;
        self.s1.add(d);
        if self.var {
            self.s2.add(d * d);
        }
    }

    /// Subtracts `x` (a value added before).
    #[inline]
    pub(crate) fn sub(&mut self, x: f64) {
        let d = x - self.shift;
        self.s1.sub(d);
        if self.var {
            self.s2.sub(d * d);
        }
    }

    /// Sum of the `n` values.
    #[inline]
    pub(crate) fn sum(&self, n: usize) -> f64 {
        n as f64 * self.shift + self.s1.value()
    }

    /// Mean of the `n` values.
    #[inline]
    pub(crate) fn mean(&self, n: usize) -> f64 {
        self.shift + self.s1.value() / n.max(1) as f64
    }

    /// Σ(x − mean)² of the `n` values (never negative).
    #[inline]
    pub(crate) fn m2(&self, n: usize) -> f64 {
        let s1 = self.s1.value();
        let m2 = self.s2.value() - s1 * s1 / n.max(1) as f64;
        if m2.is_nan() { m2 } else { m2.max(0.0) }
    }

    /// True when rounding may have cost the mean more than [`REL`] of itself (the variance
    /// more than [`REL_VAR`]), or a non-finite value came or went: the owner should
    /// [`Moments::rebuild`]. The variance's bound is that of `s2`
    /// plus `2|s1|/n` times that of `s1` (the derivative of `s2 − s1²/n`).
    #[inline]
    pub(crate) fn stale(&self, n: usize) -> bool {
        let (s1, s2) = (self.s1.sum, self.s2.sum);
        // `s2` stays 0 without the variance.
        if !(s1.is_finite() && s2.is_finite()) {
            return true;
        }
        let nf = n.max(1) as f64;
        let inv = 1.0 / nf;
        let e1 = U * self.s1.partials;
        // The mean's scale: the sum's magnitude, or (only computed when that is not enough)
        // the spread, for values that straddle 0.
        let total = (nf * self.shift + s1).abs();
        let m2 = s2 - s1 * s1 * inv;
        if e1 > REL * total && e1 > REL * (total + (m2.max(0.0) * nf).sqrt()) {
            return true;
        }
        self.var && U * self.s2.partials + 2.0 * s1.abs() * inv * e1 > REL_VAR * m2
    }

    /// Recomputes the sums from the window's `values`, shifted by their mean.
    pub(crate) fn rebuild(&mut self, values: impl Iterator<Item = f64> + Clone) {
        let mut mean = RunningSum::default();
        mean.rebuild(values.clone());
        let n = values.clone().count().max(1);
        let shift = if mean.value().is_finite() {
            mean.value() / n as f64
        } else {
            values.clone().find(|x| x.is_finite()).unwrap_or(0.0)
        };
        self.shift = shift;
        self.s1.rebuild(values.clone().map(|x| x - shift));
        if self.var {
            self.s2.rebuild(values.map(|x| (x - shift) * (x - shift)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A window of `n` with `Moments`, rebuilt when stale, against a two-pass rescan.
    fn check(xs: &[f64], n: usize) {
        let mut w: VecDeque<f64> = VecDeque::new();
        let mut m = Moments::new(true);
        for (i, &x) in xs.iter().enumerate() {
            m.add(x, w.is_empty());
            w.push_back(x);
            if w.len() > n
                && let Some(old) = w.pop_front()
            {
                m.sub(old);
            }
            if m.stale(w.len()) {
                m.rebuild(w.iter().copied());
            }
            let k = w.len() as f64;
            let mean = w.iter().sum::<f64>() / k;
            let m2: f64 = w.iter().map(|v| (v - mean) * (v - mean)).sum();
            if w.iter().all(|v| v.is_finite()) && w.iter().all(|v| v.abs() < 1e6) {
                let got = m.mean(w.len());
                assert!(
                    (got - mean).abs() <= 1e-9 * mean.abs().max(1.0),
                    "row {i}: mean {got} vs {mean}"
                );
                let gm2 = m.m2(w.len());
                assert!(
                    (gm2 - m2).abs() <= 1e-9 * m2.max(1e-12),
                    "row {i}: m2 {gm2} vs {m2}"
                );
            }
        }
    }

    #[test]
    fn an_extreme_value_is_forgotten_once_it_leaves() {
        let mut xs: Vec<f64> = (0..3000)
            .map(|i| 100.0 + ((i * 37) % 11) as f64 * 0.01)
            .collect();
        xs[0] = 1e17;
        xs[700] = 1e9;
        xs[1500] = f64::NAN;
        xs[1600] = f64::INFINITY;
        xs[2000] = -1e300;
        check(&xs, 20);
        check(&xs, 1);
        check(&xs, 257);
    }

    #[test]
    fn a_sum_rebuilds_only_when_its_error_bound_says_so() {
        let mut s = RunningSum::default();
        let mut rebuilds = 0;
        let xs: Vec<f64> = (0..100_000)
            .map(|i| 100.0 + (i % 13) as f64 * 0.01)
            .collect();
        for i in 0..xs.len() {
            s.add(xs[i]);
            if i >= 20 {
                s.sub(xs[i - 20]);
            }
            if s.stale() {
                rebuilds += 1;
                s.rebuild(xs[i.saturating_sub(19)..=i].iter().copied());
            }
        }
        // About one rebuild per 4,000 rows (see `REL`).
        assert!((10..=60).contains(&rebuilds), "{rebuilds}");
        // A NaN makes the sum stale; rebuilt, it reads NaN until the NaN is gone.
        s.add(f64::NAN);
        assert!(s.value().is_nan() && s.stale());
        s.rebuild([1.0, f64::NAN, 2.0]);
        assert!(s.value().is_nan() && !s.stale());
        s.rebuild([1.0, 2.0]);
        assert_eq!(s.value(), 3.0);
    }
}
