//! Trade signs: is a trade buyer- (+1) or seller-initiated (−1)?
//!
//! * **Tick rule**: +1 if the price is above the last different price of the symbol (an
//!   uptick or zero-uptick), −1 if below; undecided before the first price change.
//! * **Lee–Ready** (Lee & Ready 1991, "Inferring Trade Direction from Intraday Data",
//!   J. Finance 46(2)): +1 above the prevailing midpoint, −1 below, the tick rule at the
//!   midpoint or without a midpoint.
//! * **EMO** (Ellis, Michaely & O'Hara 2000, J. Financial and Quantitative Analysis 35(4)):
//!   +1 at the ask, −1 at the bid, the tick rule anywhere else.
//! * **CLNV** (Chakrabarty, Li, Nguyen & Van Ness 2007, J. Banking & Finance 31(12)): with
//!   spread `s = ask − bid`, +1 in the top 30% of the spread `[ask − 0.3 s, ask]`, −1 in the
//!   bottom 30% `[bid, bid + 0.3 s]`, the tick rule in the middle 40% and outside the quotes.
//!
//! The quote-based rules use the quote the as-of join matched (the last NBBO strictly
//! before the trade, less the configured delay) and fall back to the tick rule when it is
//! missing, one-sided or crossed.
//!
//! ```
//! use pipeline_prep::{TickRule, sign_clnv, sign_emo, sign_lee_ready};
//! let mut tick = TickRule::default();
//! assert_eq!(tick.update(10.00), None); // no earlier price
//! assert_eq!(tick.update(10.01), Some(1)); // uptick
//! assert_eq!(tick.update(10.01), Some(1)); // zero-uptick
//! let (bid, ask, t) = (Some(10.00), Some(10.04), Some(1));
//! assert_eq!(sign_lee_ready(10.03, bid, ask, t), Some(1)); // above the mid 10.02
//! assert_eq!(sign_lee_ready(10.02, bid, ask, Some(-1)), Some(-1)); // at the mid: tick rule
//! assert_eq!(sign_emo(10.03, bid, ask, Some(-1)), Some(-1)); // not at a quote: tick rule
//! assert_eq!(sign_clnv(10.03, bid, ask, Some(-1)), Some(1)); // top 30%: [10.028, 10.04]
//! ```

/// The tick rule's state for one symbol.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickRule {
    last: Option<f64>,
    sign: Option<i8>,
}

impl TickRule {
    /// Takes the next trade price; its tick-rule sign.
    pub fn update(&mut self, price: f64) -> Option<i8> {
        if let Some(prev) = self.last {
            if price > prev {
                self.sign = Some(1);
            } else if price < prev {
                self.sign = Some(-1);
            }
        }
        self.last = Some(price);
        self.sign
    }
}

/// Normal or locked quotes (bid ≤ ask, both present).
fn quotes(bid: Option<f64>, ask: Option<f64>) -> Option<(f64, f64)> {
    match (bid, ask) {
        (Some(b), Some(a)) if b <= a => Some((b, a)),
        _ => None,
    }
}

/// Lee–Ready: the quote rule against the midpoint, `tick` at the midpoint or without quotes.
pub fn sign_lee_ready(
    price: f64,
    bid: Option<f64>,
    ask: Option<f64>,
    tick: Option<i8>,
) -> Option<i8> {
    match quotes(bid, ask) {
        Some((b, a)) => {
            let mid = (b + a) / 2.0;
            if price > mid {
                Some(1)
            } else if price < mid {
                Some(-1)
            } else {
                tick
            }
        }
        None => tick,
    }
}

/// EMO: +1 at the ask, −1 at the bid, `tick` otherwise (a locked quote is both: tick rule).
pub fn sign_emo(price: f64, bid: Option<f64>, ask: Option<f64>, tick: Option<i8>) -> Option<i8> {
    match quotes(bid, ask) {
        Some((b, a)) if b < a && price == a => Some(1),
        Some((b, a)) if b < a && price == b => Some(-1),
        _ => tick,
    }
}

/// CLNV: top 30% of the spread +1, bottom 30% −1, `tick` in the middle 40% and outside.
pub fn sign_clnv(price: f64, bid: Option<f64>, ask: Option<f64>, tick: Option<i8>) -> Option<i8> {
    match quotes(bid, ask) {
        Some((b, a)) if b < a => {
            let s = a - b;
            if price <= a && price >= a - 0.3 * s {
                Some(1)
            } else if price >= b && price <= b + 0.3 * s {
                Some(-1)
            } else {
                tick
            }
        }
        _ => tick,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_rule_on_a_hand_made_series() {
        let mut t = TickRule::default();
        let got: Vec<_> = [5.0, 5.0, 5.1, 5.1, 5.0, 5.0, 5.2]
            .iter()
            .map(|&p| t.update(p))
            .collect();
        assert_eq!(
            got,
            vec![None, None, Some(1), Some(1), Some(-1), Some(-1), Some(1)]
        );
    }

    #[test]
    fn rules_on_a_hand_made_quote() {
        let (b, a) = (Some(10.0), Some(10.10));
        // Lee–Ready
        assert_eq!(sign_lee_ready(10.06, b, a, Some(-1)), Some(1));
        assert_eq!(sign_lee_ready(10.04, b, a, Some(1)), Some(-1));
        assert_eq!(sign_lee_ready(10.05, b, a, Some(-1)), Some(-1));
        assert_eq!(sign_lee_ready(10.05, b, a, None), None);
        assert_eq!(sign_lee_ready(10.05, None, a, Some(1)), Some(1));
        // Crossed quotes: the tick rule.
        assert_eq!(sign_lee_ready(10.2, Some(10.3), a, Some(-1)), Some(-1));
        // EMO
        assert_eq!(sign_emo(10.10, b, a, Some(-1)), Some(1));
        assert_eq!(sign_emo(10.00, b, a, Some(1)), Some(-1));
        assert_eq!(sign_emo(10.09, b, a, Some(-1)), Some(-1));
        assert_eq!(sign_emo(10.0, Some(10.0), Some(10.0), Some(1)), Some(1));
        // CLNV: top 30% is [10.07, 10.10], bottom 30% [10.00, 10.03].
        assert_eq!(sign_clnv(10.08, b, a, Some(-1)), Some(1));
        assert_eq!(sign_clnv(10.02, b, a, Some(1)), Some(-1));
        assert_eq!(sign_clnv(10.05, b, a, Some(1)), Some(1));
        assert_eq!(sign_clnv(10.05, b, a, Some(-1)), Some(-1));
        assert_eq!(sign_clnv(10.20, b, a, Some(-1)), Some(-1)); // outside the quotes
    }
}
