//! Liquidity measures of one trade and of one symbol-day.
//!
//! With trade price `P`, its Lee–Ready sign `D` (±1), the matched NBBO midpoint `M` and the
//! midpoint `M_h` prevailing `h` after the matched quote time (the last NBBO strictly before
//! it), following Bessembinder (2003, "Issues in assessing trade execution costs", J.
//! Financial Markets 6) and Holden & Jacobsen (2014):
//! * quoted spread `ask − bid`;
//! * effective spread `2 D (P − M)`;
//! * realized spread `2 D (P − M_h)`;
//! * price impact `2 D (M_h − M)` (so effective = realized + impact).
//!
//! A measure is null when an input is: no quote, a one-sided or crossed NBBO (no midpoint;
//! Holden & Jacobsen exclude crossed markets), or an undecided sign.
//!
//! Per symbol-day ([`DayMeasures`]): trades, volume `Σ v`, VWAP `Σ P v / Σ v`, buy and sell
//! volume by the Lee–Ready sign, order imbalance `(buy − sell) / (buy + sell)` (Chordia,
//! Roll & Subrahmanyam 2002, by volume), the equally weighted mean quoted spread over
//! matched trades, and the dollar-volume-weighted means `Σ P v x / Σ P v` of the effective
//! spread, the relative effective spread `x / M`, and each realized spread and price
//! impact over the trades where they are defined (Holden & Jacobsen's "dollar-volume
//! weighted" daily average).
//!
//! ```
//! use pipeline_prep::{effective_spread, price_impact, realized_spread};
//! // A buy at 10.03 against a 10.00 × 10.04 quote; 5 minutes later the mid is 10.04.
//! assert!((effective_spread(10.03, 1, 10.02) - 0.02).abs() < 1e-12);
//! assert!((realized_spread(10.03, 1, 10.04) - -0.02).abs() < 1e-12);
//! assert!((price_impact(1, 10.02, 10.04) - 0.04).abs() < 1e-12);
//! ```

/// `2 D (P − M)`.
pub fn effective_spread(price: f64, sign: i8, mid: f64) -> f64 {
    2.0 * f64::from(sign) * (price - mid)
}

/// `2 D (P − M_h)`.
pub fn realized_spread(price: f64, sign: i8, mid_later: f64) -> f64 {
    2.0 * f64::from(sign) * (price - mid_later)
}

/// `2 D (M_h − M)`.
pub fn price_impact(sign: i8, mid: f64, mid_later: f64) -> f64 {
    2.0 * f64::from(sign) * (mid_later - mid)
}

/// A dollar-volume-weighted mean being summed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Weighted {
    sum: f64,
    weight: f64,
}

impl Weighted {
    /// Adds `x` with weight `w`.
    pub fn add(&mut self, x: f64, w: f64) {
        if x.is_finite() && w.is_finite() && w > 0.0 {
            self.sum += x * w;
            self.weight += w;
        }
    }

    /// The mean, `None` with no weight.
    pub fn mean(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.sum / self.weight)
    }
}

/// One trade as the day's measures see it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TradeMeasures {
    /// Price.
    pub price: f64,
    /// Size (0 when missing).
    pub size: f64,
    /// Lee–Ready sign.
    pub sign: Option<i8>,
    /// The matched quote was usable (a normal or locked NBBO inside the tolerance).
    pub matched: bool,
    /// Quoted spread.
    pub quoted: Option<f64>,
    /// Effective spread.
    pub effective: Option<f64>,
    /// Matched midpoint.
    pub mid: Option<f64>,
}

/// Running measures of one symbol-day.
#[derive(Debug, Clone, Default)]
pub struct DayMeasures {
    /// Trades.
    pub trades: u64,
    /// Trades with a usable quote.
    pub matched: u64,
    /// Σ size.
    pub volume: f64,
    /// Σ price × size.
    pub dollar_volume: f64,
    /// Σ size of buys (Lee–Ready).
    pub buy_volume: f64,
    /// Σ size of sells (Lee–Ready).
    pub sell_volume: f64,
    quoted_sum: f64,
    quoted_n: u64,
    /// Dollar-volume-weighted effective spread.
    pub effective: Weighted,
    /// Dollar-volume-weighted relative effective spread.
    pub relative_effective: Weighted,
    /// Per horizon: dollar-volume-weighted realized spread.
    pub realized: Vec<Weighted>,
    /// Per horizon: dollar-volume-weighted price impact.
    pub impact: Vec<Weighted>,
}

impl DayMeasures {
    /// An empty day with `horizons` realized-spread and impact horizons.
    pub fn new(horizons: usize) -> Self {
        DayMeasures {
            realized: vec![Weighted::default(); horizons],
            impact: vec![Weighted::default(); horizons],
            ..Default::default()
        }
    }

    /// Adds a trade with its realized spread and price impact per horizon.
    pub fn add(&mut self, t: &TradeMeasures, realized: &[Option<f64>], impact: &[Option<f64>]) {
        self.trades += 1;
        let dv = t.price * t.size;
        if t.size.is_finite() && t.size > 0.0 {
            self.volume += t.size;
            self.dollar_volume += dv;
            match t.sign {
                Some(1) => self.buy_volume += t.size,
                Some(-1) => self.sell_volume += t.size,
                _ => {}
            }
        }
        if t.matched {
            self.matched += 1;
        }
        if let Some(q) = t.quoted {
            self.quoted_sum += q;
            self.quoted_n += 1;
        }
        if let Some(e) = t.effective {
            self.effective.add(e, dv);
            if let Some(m) = t.mid.filter(|m| *m > 0.0) {
                self.relative_effective.add(e / m, dv);
            }
        }
        for (acc, r) in self.realized.iter_mut().zip(realized) {
            if let Some(r) = r {
                acc.add(*r, dv);
            }
        }
        for (acc, r) in self.impact.iter_mut().zip(impact) {
            if let Some(r) = r {
                acc.add(*r, dv);
            }
        }
    }

    /// `Σ P v / Σ v`.
    pub fn vwap(&self) -> Option<f64> {
        (self.volume > 0.0).then(|| self.dollar_volume / self.volume)
    }

    /// `(buy − sell) / (buy + sell)`.
    pub fn order_imbalance(&self) -> Option<f64> {
        let t = self.buy_volume + self.sell_volume;
        (t > 0.0).then(|| (self.buy_volume - self.sell_volume) / t)
    }

    /// The mean quoted spread over matched trades.
    pub fn quoted_spread(&self) -> Option<f64> {
        (self.quoted_n > 0).then(|| self.quoted_sum / self.quoted_n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_made_day() {
        let mut d = DayMeasures::new(1);
        let t = |price, size, sign, mid: Option<f64>| TradeMeasures {
            price,
            size,
            sign,
            matched: mid.is_some(),
            quoted: mid.map(|_| 0.04),
            effective: match (sign, mid) {
                (Some(s), Some(m)) => Some(effective_spread(price, s, m)),
                _ => None,
            },
            mid,
        };
        // Buy 100 @ 10.03 (mid 10.02, later 10.04); sell 300 @ 10.00 (mid 10.02, later 10.02).
        d.add(
            &t(10.03, 100.0, Some(1), Some(10.02)),
            &[Some(realized_spread(10.03, 1, 10.04))],
            &[Some(price_impact(1, 10.02, 10.04))],
        );
        d.add(
            &t(10.00, 300.0, Some(-1), Some(10.02)),
            &[Some(realized_spread(10.0, -1, 10.02))],
            &[Some(price_impact(-1, 10.02, 10.02))],
        );
        // An unmatched trade: counts in volume and VWAP only.
        d.add(&t(10.01, 100.0, None, None), &[None], &[None]);
        assert_eq!((d.trades, d.matched), (3, 2));
        assert_eq!(d.volume, 500.0);
        let vwap = (10.03 * 100.0 + 10.0 * 300.0 + 10.01 * 100.0) / 500.0;
        assert!((d.vwap().unwrap() - vwap).abs() < 1e-12);
        assert_eq!(d.order_imbalance(), Some((100.0 - 300.0) / 400.0));
        assert!((d.quoted_spread().unwrap() - 0.04).abs() < 1e-12);
        // Effective: 0.02 on 1003 $, 0.04 on 3000 $.
        let (w1, w2) = (10.03 * 100.0, 10.0 * 300.0);
        let eff = (0.02 * w1 + 0.04 * w2) / (w1 + w2);
        assert!((d.effective.mean().unwrap() - eff).abs() < 1e-12);
        // Realized: −0.02 and 0.04; impact: 0.04 and 0.
        let real = (-0.02 * w1 + 0.04 * w2) / (w1 + w2);
        assert!((d.realized[0].mean().unwrap() - real).abs() < 1e-12);
        let imp = (0.04 * w1) / (w1 + w2);
        assert!((d.impact[0].mean().unwrap() - imp).abs() < 1e-12);
        // effective = realized + impact holds for the weighted means too.
        assert!((eff - real - imp).abs() < 1e-12);
        let rel = (0.02 / 10.02 * w1 + 0.04 / 10.02 * w2) / (w1 + w2);
        assert!((d.relative_effective.mean().unwrap() - rel).abs() < 1e-12);
    }
}
