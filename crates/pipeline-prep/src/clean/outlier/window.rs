//! Rolling windows for the outlier detectors: a ring with running moments (O(1) per row) and
//! a sorted window for order statistics.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The last `cap` values with their running mean and variance.
///
/// The sums are deviations from a shift ([`crate::sums::Moments`]), so prices near 100 with a
/// spread of cents keep full precision in the variance, and they are rebuilt from the ring
/// whenever their rounding-error bound passes 2^-40 of their value: an extreme value that
/// has left the window leaves no trace. Add and remove are O(1) amortised.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Moments {
    cap: usize,
    ring: VecDeque<f64>,
    sums: crate::sums::Moments,
}

impl Moments {
    pub(crate) fn new(cap: usize) -> Self {
        Moments {
            cap: cap.max(1),
            ring: VecDeque::new(),
            sums: crate::sums::Moments::new(true),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    pub(crate) fn clear(&mut self) {
        self.ring.clear();
        self.sums = crate::sums::Moments::new(true);
    }

    pub(crate) fn push(&mut self, x: f64) {
        if self.ring.len() == self.cap
            && let Some(old) = self.ring.pop_front()
        {
            self.sums.sub(old);
        }
        self.sums.add(x, self.ring.is_empty());
        self.ring.push_back(x);
        if self.sums.stale(self.ring.len()) {
            self.sums.rebuild(self.ring.iter().copied());
        }
    }

    /// Mean and sample standard deviation (`None` below two values).
    pub(crate) fn mean_std(&self) -> Option<(f64, f64)> {
        let n = self.ring.len();
        if n < 2 {
            return None;
        }
        let var = self.sums.m2(n) / (n - 1) as f64;
        Some((self.sums.mean(n), var.sqrt()))
    }
}

/// The last `cap` values, also kept sorted for order statistics.
///
/// Insert and remove are a binary search plus a `memmove` of at most `cap` floats: O(log N)
/// comparisons and O(N) moves, which for the window sizes used here (tens to hundreds) is
/// faster in practice than two heaps with lazy deletion. Median and quantiles are O(1); the
/// median absolute deviation is O(N) (a merge outward from the median).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Sorted {
    cap: usize,
    ring: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl Sorted {
    pub(crate) fn new(cap: usize) -> Self {
        Sorted {
            cap: cap.max(1),
            ..Sorted::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    pub(crate) fn clear(&mut self) {
        self.ring.clear();
        self.sorted.clear();
    }

    pub(crate) fn push(&mut self, x: f64) {
        if self.ring.len() == self.cap
            && let Some(old) = self.ring.pop_front()
        {
            let i = self.sorted.partition_point(|v| *v < old);
            if i < self.sorted.len() {
                self.sorted.remove(i);
            }
        }
        self.ring.push_back(x);
        let i = self.sorted.partition_point(|v| *v < x);
        self.sorted.insert(i, x);
    }

    /// The `q` quantile with linear interpolation between order statistics (Hyndman & Fan
    /// type 7, numpy's default).
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        quantile_sorted(&self.sorted, q)
    }

    /// Median and median absolute deviation (unscaled).
    pub(crate) fn median_mad(&self) -> Option<(f64, f64)> {
        let m = self.quantile(0.5)?;
        Some((m, mad_sorted(&self.sorted, m)))
    }
}

/// Type-7 quantile of sorted values.
pub(crate) fn quantile_sorted(s: &[f64], q: f64) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let h = (s.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    Some(s[lo] + (s[hi] - s[lo]) * (h - lo as f64))
}

/// Median of |x − m| over sorted `s`, by merging the distances outward from `m`.
pub(crate) fn mad_sorted(s: &[f64], m: f64) -> f64 {
    let n = s.len();
    if n == 0 {
        return 0.0;
    }
    let mut r = s.partition_point(|v| *v < m);
    let mut l = r;
    let mut d = Vec::with_capacity(n / 2 + 2);
    let need = n / 2 + 1;
    while d.len() < need && (l > 0 || r < n) {
        let dl = if l > 0 { m - s[l - 1] } else { f64::INFINITY };
        let dr = if r < n { s[r] - m } else { f64::INFINITY };
        if dl <= dr {
            d.push(dl);
            l -= 1;
        } else {
            d.push(dr);
            r += 1;
        }
    }
    if n % 2 == 1 {
        d[n / 2]
    } else {
        (d[n / 2 - 1] + d[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_direct_computation() {
        let mut m = Moments::new(4);
        for x in [100.0, 100.01, 99.99, 100.02, 100.03, 100.0] {
            m.push(x);
        }
        let w = [99.99, 100.02, 100.03, 100.0];
        let mean = w.iter().sum::<f64>() / 4.0;
        let var = w.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 3.0;
        let (mu, sd) = m.mean_std().unwrap();
        assert!((mu - mean).abs() < 1e-12);
        assert!((sd - var.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn sorted_window_statistics() {
        let mut s = Sorted::new(5);
        for x in [9.0, 1.0, 2.0, 3.0, 4.0, 100.0] {
            s.push(x);
        }
        // The window is 1, 2, 3, 4, 100.
        assert_eq!(s.len(), 5);
        assert_eq!(s.quantile(0.5), Some(3.0));
        assert_eq!(s.quantile(0.25), Some(2.0));
        // Distances to 3: 2, 1, 0, 1, 97 → median 1.
        assert_eq!(s.median_mad(), Some((3.0, 1.0)));
        assert_eq!(mad_sorted(&[1.0, 2.0, 3.0, 4.0], 2.5), 1.0);
    }
}
