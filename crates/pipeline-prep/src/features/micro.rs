//! Market-microstructure kernels on quotes and trades.
//!
//! * mid `(b + a)/2`; spread `a − b` and in basis points `10⁴(a − b)/mid`;
//! * microprice `(b·Qa + a·Qb)/(Qb + Qa)`; quote imbalance `(Qb − Qa)/(Qb + Qa)`;
//! * order-flow imbalance per event (Cont, Kukanov & Stoikov 2014, eq. 2):
//!   `e = 1{Pb ≥ Pb₋₁}Qb − 1{Pb ≤ Pb₋₁}Qb₋₁ − 1{Pa ≤ Pa₋₁}Qa + 1{Pa ≥ Pa₋₁}Qa₋₁`;
//! * trade sign (Lee & Ready 1991): +1 above the prevailing mid, −1 below, the tick rule at
//!   the mid (up-tick +1, down-tick −1, zero-tick the previous sign); the 5-second quote delay
//!   of the original paper is not applied (modern feeds time-stamp quotes and trades together);
//! * VWAP over the last N trades and per session (reset when the session's local date changes);
//! * realized variance per day: squared log returns between the last prices of consecutive
//!   intervals (e.g. 5 minutes) summed over the day so far, and its square root;
//! * trade intensity: trades in the trailing time window divided by its length in seconds.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::sums::RunningSum;

/// Mid-quote.
pub fn mid(bid: f64, ask: f64) -> f64 {
    (bid + ask) / 2.0
}

/// Microprice: the mid weighted towards the side with less size.
pub fn microprice(bid: f64, ask: f64, bid_size: f64, ask_size: f64) -> f64 {
    (bid * ask_size + ask * bid_size) / (bid_size + ask_size)
}

/// Quote imbalance in [−1, 1].
pub fn quote_imbalance(bid_size: f64, ask_size: f64) -> f64 {
    (bid_size - ask_size) / (bid_size + ask_size)
}

/// Order-flow imbalance contribution of each best-quote event (Cont, Kukanov & Stoikov 2014).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ofi {
    prev: Option<[f64; 4]>,
}

impl Ofi {
    /// Adds a best quote `(bid, bid_size, ask, ask_size)`; `e_n` from the second quote on.
    pub fn update(&mut self, bid: f64, bid_size: f64, ask: f64, ask_size: f64) -> Option<f64> {
        let [pb, qb, pa, qa] = self.prev.replace([bid, bid_size, ask, ask_size])?;
        let mut e = 0.0;
        if bid >= pb {
            e += bid_size;
        }
        if bid <= pb {
            e -= qb;
        }
        if ask <= pa {
            e -= ask_size;
        }
        if ask >= pa {
            e += qa;
        }
        Some(e)
    }
}

/// Lee–Ready trade classification: quote rule against the prevailing mid, tick rule fallback.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TradeSign {
    prev_price: Option<f64>,
    tick_sign: Option<f64>,
}

impl TradeSign {
    /// Classifies a trade at `price` given the prevailing `mid`; `None` when neither rule
    /// decides (no quote and no earlier price change).
    pub fn update(&mut self, price: f64, mid: Option<f64>) -> Option<f64> {
        if let Some(prev) = self.prev_price.replace(price) {
            if price > prev {
                self.tick_sign = Some(1.0);
            } else if price < prev {
                self.tick_sign = Some(-1.0);
            }
        }
        match mid {
            Some(m) if price > m => Some(1.0),
            Some(m) if price < m => Some(-1.0),
            _ => self.tick_sign,
        }
    }
}

/// VWAP over the last N trades; O(1) per trade, with running totals that forget what left
/// the window (see [`Vwap::update`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vwap {
    n: usize,
    window: VecDeque<(f64, f64)>,
    pv: RunningSum,
    v: RunningSum,
}

impl Vwap {
    /// A VWAP over `n` (≥ 1) trades.
    pub fn new(n: usize) -> Self {
        Vwap {
            n: n.max(1),
            window: VecDeque::with_capacity(n + 1),
            pv: RunningSum::default(),
            v: RunningSum::default(),
        }
    }

    /// Adds a trade; the VWAP once `n` trades have been seen (`None` on zero volume). The
    /// running totals are rebuilt from the window when their rounding-error bound says so
    /// (`crate::sums`), so a huge trade leaves no trace once it is out of the window.
    pub fn update(&mut self, price: f64, size: f64) -> Option<f64> {
        let pv = price * size;
        self.window.push_back((pv, size));
        self.pv.add(pv);
        self.v.add(size);
        if self.window.len() > self.n
            && let Some((opv, ov)) = self.window.pop_front()
        {
            self.pv.sub(opv);
            self.v.sub(ov);
        }
        if self.pv.stale() || self.v.stale() {
            self.pv.rebuild(self.window.iter().map(|w| w.0));
            self.v.rebuild(self.window.iter().map(|w| w.1));
        }
        let v = self.v.value();
        (self.window.len() == self.n && v != 0.0).then(|| self.pv.value() / v)
    }
}

/// VWAP since the session (local day) began.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionVwap {
    day: Option<i64>,
    pv: f64,
    v: f64,
}

impl SessionVwap {
    /// Adds a trade on local day `day`; the VWAP of the day so far.
    pub fn update(&mut self, day: i64, price: f64, size: f64) -> Option<f64> {
        if self.day != Some(day) {
            *self = SessionVwap {
                day: Some(day),
                pv: 0.0,
                v: 0.0,
            };
        }
        self.pv += price * size;
        self.v += size;
        (self.v != 0.0).then(|| self.pv / self.v)
    }
}

/// Running realized variance of interval returns within a day.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RealizedVar {
    day: Option<i64>,
    interval: i64,
    last: f64,
    prev_close: Option<f64>,
    rv: f64,
}

impl RealizedVar {
    /// Adds a price in interval `interval` (e.g. the local 5-minute slot) of day `day`;
    /// returns the sum of squared log returns of the day's completed intervals.
    pub fn update(&mut self, day: i64, interval: i64, price: f64) -> f64 {
        if self.day != Some(day) {
            *self = RealizedVar {
                day: Some(day),
                interval,
                last: price,
                prev_close: None,
                rv: 0.0,
            };
            return 0.0;
        }
        if interval != self.interval {
            // The previous interval is complete: its last price is its close.
            if let Some(pc) = self.prev_close {
                let r = (self.last / pc).ln();
                self.rv += r * r;
            }
            self.prev_close = Some(self.last);
            self.interval = interval;
        }
        self.last = price;
        self.rv
    }
}

/// Trades per second over a trailing time window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TradeIntensity {
    width: i64,
    times: VecDeque<i64>,
}

impl TradeIntensity {
    /// Intensity over a window of `width` nanoseconds.
    pub fn new(width: i64) -> Self {
        TradeIntensity {
            width: width.max(1),
            times: VecDeque::new(),
        }
    }

    /// Adds a trade at `ts` (ns); trades in `(ts − width, ts]` per second.
    pub fn update(&mut self, ts: i64) -> f64 {
        self.times.push_back(ts);
        let cut = ts.saturating_sub(self.width);
        while self.times.front().is_some_and(|&t| t <= cut) {
            self.times.pop_front();
        }
        self.times.len() as f64 / (self.width as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::testutil::SplitMix;

    #[test]
    fn ofi_follows_cont_kukanov_stoikov() {
        let mut o = Ofi::default();
        assert_eq!(o.update(10.0, 100.0, 10.1, 200.0), None);
        // Bid size up 50 at the same price, ask unchanged: e = 150 − 100 − 200 + 200 = 50.
        assert_eq!(o.update(10.0, 150.0, 10.1, 200.0), Some(50.0));
        // Bid steps up (new size 30 counts fully), ask steps down (new size 40 counts against).
        assert_eq!(o.update(10.05, 30.0, 10.08, 40.0), Some(30.0 - 40.0));
    }

    #[test]
    fn lee_ready_uses_quotes_then_ticks() {
        let mut s = TradeSign::default();
        assert_eq!(s.update(10.0, Some(10.0)), None);
        assert_eq!(s.update(10.02, Some(10.0)), Some(1.0));
        assert_eq!(s.update(10.0, Some(10.0)), Some(-1.0)); // at the mid: down-tick
        assert_eq!(s.update(10.0, Some(10.0)), Some(-1.0)); // zero-tick keeps the sign
        assert_eq!(s.update(9.9, None), Some(-1.0));
    }

    #[test]
    fn vwap_matches_a_rescan() {
        let mut rng = SplitMix::new(9);
        let trades: Vec<(f64, f64)> = (0..1000)
            .map(|_| (100.0 + rng.normal(), (rng.next_f64() * 500.0).round() + 1.0))
            .collect();
        let mut v = Vwap::new(10);
        for (i, &(p, s)) in trades.iter().enumerate() {
            let got = v.update(p, s);
            if i < 9 {
                assert_eq!(got, None);
                continue;
            }
            let w = &trades[i - 9..=i];
            let want =
                w.iter().map(|t| t.0 * t.1).sum::<f64>() / w.iter().map(|t| t.1).sum::<f64>();
            assert!((got.unwrap() - want).abs() < 1e-9);
        }
    }

    #[test]
    fn realized_variance_sums_completed_intervals_per_day() {
        let mut rv = RealizedVar::default();
        assert_eq!(rv.update(1, 0, 100.0), 0.0);
        assert_eq!(rv.update(1, 0, 101.0), 0.0);
        // Interval 0 closed at 101: the first close, no return yet.
        assert_eq!(rv.update(1, 1, 102.0), 0.0);
        // Interval 1 closed at 102: one return, ln(102/101).
        let r1 = (102.0f64 / 101.0).ln();
        assert_eq!(rv.update(1, 3, 99.0), r1 * r1);
        let r2 = (99.0f64 / 102.0).ln();
        assert_eq!(rv.update(1, 4, 98.0), r1 * r1 + r2 * r2);
        // A new day starts afresh.
        assert_eq!(rv.update(2, 0, 103.0), 0.0);
    }

    #[test]
    fn trade_intensity_counts_the_trailing_window() {
        let mut t = TradeIntensity::new(2_000_000_000);
        assert_eq!(t.update(0), 0.5);
        assert_eq!(t.update(1_000_000_000), 1.0);
        assert_eq!(t.update(2_000_000_000), 1.0); // the trade at 0 left the window
    }
}
