//! Rolling statistics over the last N rows or over a time window, O(1) amortised per row
//! (the median O(log N)).
//!
//! Mean, sum and variance are running sums of deviations from a shift ([`crate::sums`]),
//! rebuilt exactly from the window whenever their rounding-error bound passes 2^-40 of their
//! value: about once per few thousand rows on ordinary data, and at once after an extreme
//! value leaves the window, so it changes nothing afterwards (issue #13 case 2). Min/max use
//! monotonic deques; the median keeps the window in two ordered multisets.

use std::collections::{BTreeMap, VecDeque};

use pipeline_core::{Error, Result};
use serde::{Deserialize, Serialize};

use super::window::{Extreme, MonoDeque};
use crate::sums::Moments;

/// Parses a duration such as `500ms`, `1s`, `1m`, `5m`, `1h` or `1d` into nanoseconds.
pub fn parse_duration(text: &str) -> Result<i64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| Error::config("duration", format!("`{text}`: expected e.g. 1s, 5m, 1h")))?;
    let per = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => {
            return Err(Error::config(
                "duration",
                format!("`{text}`: unit must be ns, us, ms, s, m, h or d"),
            ));
        }
    };
    match n.checked_mul(per) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(Error::config(
            "duration",
            format!("`{text}` must be positive"),
        )),
    }
}

/// The statistic a [`Rolling`] window reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollingStat {
    /// Arithmetic mean.
    Mean,
    /// Sample standard deviation (n − 1 denominator, as pandas).
    Std,
    /// Sum.
    Sum,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Median (mean of the two middle values for an even count).
    Median,
}

impl RollingStat {
    /// Parses `mean`, `std`, `sum`, `min`, `max` or `median`.
    pub fn parse(s: &str) -> Result<RollingStat> {
        Ok(match s {
            "mean" => RollingStat::Mean,
            "std" => RollingStat::Std,
            "sum" => RollingStat::Sum,
            "min" => RollingStat::Min,
            "max" => RollingStat::Max,
            "median" => RollingStat::Median,
            _ => {
                return Err(Error::config(
                    "rolling",
                    format!("`{s}`: expected mean, std, sum, min, max or median"),
                ));
            }
        })
    }

    /// The lower-case name used in column names.
    pub fn name(self) -> &'static str {
        match self {
            RollingStat::Mean => "mean",
            RollingStat::Std => "std",
            RollingStat::Sum => "sum",
            RollingStat::Min => "min",
            RollingStat::Max => "max",
            RollingStat::Median => "median",
        }
    }
}

/// The extent of a rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// The last N rows; values appear once N rows have been seen.
    Rows(usize),
    /// Rows with `ts` in `(t − width, t]` (nanoseconds); values appear from the first row
    /// (the standard deviation from the second), as pandas' `rolling("1s")`.
    Time(i64),
}

/// A total order on `f64` as `u64` keys (negative values flipped), for ordered multisets.
fn ord_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

fn from_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// A sliding median: the lower half and the upper half of the window as ordered multisets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct MedianWindow {
    lo: BTreeMap<u64, u32>,
    hi: BTreeMap<u64, u32>,
    n_lo: usize,
    n_hi: usize,
}

fn take_one(m: &mut BTreeMap<u64, u32>, k: u64) -> bool {
    match m.get_mut(&k) {
        Some(c) if *c > 1 => {
            *c -= 1;
            true
        }
        Some(_) => {
            m.remove(&k);
            true
        }
        None => false,
    }
}

impl MedianWindow {
    fn insert(&mut self, x: f64) {
        let k = ord_key(x);
        if self.lo.last_key_value().is_none_or(|(&top, _)| k <= top) {
            *self.lo.entry(k).or_insert(0) += 1;
            self.n_lo += 1;
        } else {
            *self.hi.entry(k).or_insert(0) += 1;
            self.n_hi += 1;
        }
        self.rebalance();
    }

    fn remove(&mut self, x: f64) {
        let k = ord_key(x);
        if self.lo.last_key_value().is_some_and(|(&top, _)| k <= top) {
            if take_one(&mut self.lo, k) {
                self.n_lo -= 1;
            }
        } else if take_one(&mut self.hi, k) {
            self.n_hi -= 1;
        }
        self.rebalance();
    }

    fn rebalance(&mut self) {
        while self.n_lo > self.n_hi + 1 {
            if let Some((&k, _)) = self.lo.last_key_value() {
                take_one(&mut self.lo, k);
                *self.hi.entry(k).or_insert(0) += 1;
                self.n_lo -= 1;
                self.n_hi += 1;
            }
        }
        while self.n_hi > self.n_lo {
            if let Some((&k, _)) = self.hi.first_key_value() {
                take_one(&mut self.hi, k);
                *self.lo.entry(k).or_insert(0) += 1;
                self.n_hi -= 1;
                self.n_lo += 1;
            }
        }
    }

    fn median(&self) -> Option<f64> {
        let lo = from_key(*self.lo.last_key_value()?.0);
        if self.n_lo > self.n_hi {
            return Some(lo);
        }
        let hi = from_key(*self.hi.first_key_value()?.0);
        Some(lo + (hi - lo) / 2.0)
    }
}

/// A rolling statistic over rows or time: `update(pos, x)` with `pos` the row's timestamp
/// in nanoseconds (ignored for row windows).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rolling {
    stat: RollingStat,
    window: Window,
    values: VecDeque<(i64, f64)>,
    row: i64,
    moments: Moments,
    /// How many of the newest values equal the newest one: a window that is one repeated
    /// value reports std 0 and mean exactly that value (as pandas does), where Welford's
    /// downdate would leave a rounding residue.
    run: usize,
    extreme: Option<MonoDeque>,
    median: Option<MedianWindow>,
}

impl Rolling {
    /// A rolling `stat` over `window`.
    pub fn new(stat: RollingStat, window: Window) -> Self {
        let extreme = match stat {
            RollingStat::Min => Some(MonoDeque::new(Extreme::Min)),
            RollingStat::Max => Some(MonoDeque::new(Extreme::Max)),
            _ => None,
        };
        Rolling {
            stat,
            window,
            values: VecDeque::new(),
            row: 0,
            moments: Moments::new(stat == RollingStat::Std),
            run: 0,
            extreme,
            median: (stat == RollingStat::Median).then(MedianWindow::default),
        }
    }

    fn add(&mut self, pos: i64, x: f64) {
        self.run = match self.values.back() {
            Some(&(_, last)) if last == x => self.run + 1,
            _ => 1,
        };
        match self.stat {
            RollingStat::Mean | RollingStat::Std | RollingStat::Sum => {
                self.moments.add(x, self.values.is_empty());
            }
            RollingStat::Min | RollingStat::Max => {
                if let Some(e) = &mut self.extreme {
                    e.push(pos, x);
                }
            }
            RollingStat::Median => {
                if let Some(m) = &mut self.median {
                    m.insert(x);
                }
            }
        }
        self.values.push_back((pos, x));
    }

    fn remove_front(&mut self) {
        let Some((_, x)) = self.values.pop_front() else {
            return;
        };
        match self.stat {
            RollingStat::Mean | RollingStat::Std | RollingStat::Sum => self.moments.sub(x),
            RollingStat::Median => {
                if let Some(m) = &mut self.median {
                    m.remove(x);
                }
            }
            RollingStat::Min | RollingStat::Max => {}
        }
    }

    /// Adds `x` at timestamp `ts` (ns) and returns the statistic, `None` while the window is
    /// not yet full (row windows) or holds too few values.
    pub fn update(&mut self, ts: i64, x: f64) -> Option<f64> {
        let pos = match self.window {
            Window::Rows(_) => {
                self.row += 1;
                self.row
            }
            Window::Time(_) => ts,
        };
        self.add(pos, x);
        match self.window {
            Window::Rows(n) => {
                while self.values.len() > n.max(1) {
                    self.remove_front();
                }
                if let Some(e) = &mut self.extreme {
                    e.expire(pos - n.max(1) as i64);
                }
                if self.values.len() < n.max(1) {
                    return None;
                }
            }
            Window::Time(w) => {
                let cut = pos.saturating_sub(w);
                while self.values.front().is_some_and(|&(p, _)| p <= cut) {
                    self.remove_front();
                }
                if let Some(e) = &mut self.extreme {
                    e.expire(cut);
                }
            }
        }
        let n = self.values.len();
        if matches!(
            self.stat,
            RollingStat::Mean | RollingStat::Std | RollingStat::Sum
        ) && self.moments.stale(n)
        {
            self.moments.rebuild(self.values.iter().map(|v| v.1));
        }
        let constant = self.run >= n;
        match self.stat {
            RollingStat::Mean if constant => Some(x),
            RollingStat::Mean => Some(self.moments.mean(n)),
            RollingStat::Std if constant => (n >= 2).then_some(0.0),
            RollingStat::Std => (n >= 2).then(|| (self.moments.m2(n) / (n - 1) as f64).sqrt()),
            RollingStat::Sum => Some(self.moments.sum(n)),
            RollingStat::Min | RollingStat::Max => self.extreme.as_ref()?.get(),
            RollingStat::Median => self.median.as_ref()?.median(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::testutil::SplitMix;

    fn naive(stat: RollingStat, w: &[f64]) -> Option<f64> {
        let n = w.len() as f64;
        let mean = w.iter().sum::<f64>() / n;
        Some(match stat {
            RollingStat::Mean => mean,
            RollingStat::Sum => w.iter().sum(),
            RollingStat::Std => {
                if w.len() < 2 {
                    return None;
                }
                (w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            }
            RollingStat::Min => w.iter().copied().reduce(f64::min)?,
            RollingStat::Max => w.iter().copied().reduce(f64::max)?,
            RollingStat::Median => {
                let mut s = w.to_vec();
                s.sort_by(f64::total_cmp);
                let m = s.len() / 2;
                if s.len() % 2 == 1 {
                    s[m]
                } else {
                    (s[m - 1] + s[m]) / 2.0
                }
            }
        })
    }

    const STATS: [RollingStat; 6] = [
        RollingStat::Mean,
        RollingStat::Std,
        RollingStat::Sum,
        RollingStat::Min,
        RollingStat::Max,
        RollingStat::Median,
    ];

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            _ => false,
        }
    }

    #[test]
    fn row_windows_match_a_naive_rescan() {
        let mut rng = SplitMix::new(7);
        // Rounded values create ties, which the median's multisets must count.
        let xs: Vec<f64> = (0..3000)
            .map(|_| (rng.normal() * 4.0).round() + 100.0)
            .collect();
        for stat in STATS {
            for n in [1, 2, 5, 20] {
                let mut r = Rolling::new(stat, Window::Rows(n));
                for (i, &x) in xs.iter().enumerate() {
                    let got = r.update(0, x);
                    let want = if i + 1 < n {
                        None
                    } else {
                        naive(stat, &xs[i + 1 - n..=i])
                    };
                    assert!(
                        close(got, want),
                        "{stat:?} n={n} row {i}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn time_windows_match_a_naive_rescan() {
        let mut rng = SplitMix::new(11);
        let mut ts = 0i64;
        let rows: Vec<(i64, f64)> = (0..2000)
            .map(|_| {
                ts += (rng.next_f64() * 400_000_000.0) as i64; // 0..0.4 s apart, ties included
                (ts, rng.normal() * 3.0 + 50.0)
            })
            .collect();
        let width = parse_duration("1s").unwrap();
        for stat in STATS {
            let mut r = Rolling::new(stat, Window::Time(width));
            for (i, &(t, x)) in rows.iter().enumerate() {
                let got = r.update(t, x);
                let w: Vec<f64> = rows[..=i]
                    .iter()
                    .filter(|r| r.0 > t - width)
                    .map(|r| r.1)
                    .collect();
                let want = naive(stat, &w);
                assert!(close(got, want), "{stat:?} row {i}: {got:?} vs {want:?}");
            }
        }
    }

    /// Issue #13 case 2: a value 1e12 (or 1e17) times the others changes nothing once it has
    /// left the window, for row and time windows, and results stay within 1e-9 of a rescan.
    #[test]
    fn extremes_are_forgotten_once_they_leave_the_window() {
        let mut rng = SplitMix::new(5);
        let mut xs: Vec<f64> = (0..4000).map(|_| 100.0 + rng.normal() * 0.05).collect();
        for (i, big) in [(0, 1e17), (900, 1e14), (2000, -1e12), (3100, 1e9)] {
            xs[i] = big;
        }
        for stat in [RollingStat::Mean, RollingStat::Std, RollingStat::Sum] {
            for n in [2, 20, 100] {
                let mut r = Rolling::new(stat, Window::Rows(n));
                for (i, &x) in xs.iter().enumerate() {
                    let got = r.update(0, x);
                    if i + 1 < n {
                        continue;
                    }
                    let w = &xs[i + 1 - n..=i];
                    if w.iter().any(|v| v.abs() > 1e6) {
                        continue;
                    }
                    let want = naive(stat, w);
                    assert!(
                        close(got, want),
                        "{stat:?} n={n} row {i}: {got:?} vs {want:?}"
                    );
                }
            }
            let width = 1_000_000_000;
            let mut r = Rolling::new(stat, Window::Time(width));
            for (i, &x) in xs.iter().enumerate() {
                let t = i as i64 * 50_000_000;
                let got = r.update(t, x);
                let lo = (i + 1).saturating_sub(20);
                let w = &xs[lo..=i];
                if w.iter().any(|v| v.abs() > 1e6) {
                    continue;
                }
                assert!(close(got, naive(stat, w)), "{stat:?} time row {i}");
            }
        }
    }

    proptest::proptest! {
        /// Random windows and data with random extremes injected, against a rescan.
        #[test]
        fn rolling_moments_match_a_rescan_with_injected_extremes(
            seed: u64,
            n in 2usize..60,
            extremes in proptest::collection::vec((0usize..600, -17i32..18), 0..6),
        ) {
            let mut rng = SplitMix::new(seed);
            let mut xs: Vec<f64> = (0..600).map(|_| 50.0 + rng.normal()).collect();
            for (i, e) in &extremes {
                xs[*i] = 50.0 * 10f64.powi(*e);
            }
            for stat in [RollingStat::Mean, RollingStat::Std, RollingStat::Sum] {
                let mut r = Rolling::new(stat, Window::Rows(n));
                for (i, &x) in xs.iter().enumerate() {
                    let got = r.update(0, x);
                    if i + 1 < n {
                        proptest::prop_assert_eq!(got, None);
                        continue;
                    }
                    let w = &xs[i + 1 - n..=i];
                    // Within the window an extreme dominates; judge the rows it has left.
                    if w.iter().any(|v| !(1.0..=2500.0).contains(v)) {
                        continue;
                    }
                    let want = naive(stat, w);
                    proptest::prop_assert!(close(got, want), "{:?} n={} row {}: {:?} vs {:?}", stat, n, i, got, want);
                }
            }
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1s").unwrap(), 1_000_000_000);
        assert_eq!(parse_duration("5m").unwrap(), 300_000_000_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250_000_000);
        for bad in ["", "5", "1y", "0s", "-1s", "m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
