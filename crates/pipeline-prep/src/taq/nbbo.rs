//! The national best bid and offer (NBBO) of one symbol, from each exchange's latest quote.
//!
//! Each quote row is one exchange's new best bid and offer for a symbol. The NBBO is the
//! highest bid and the lowest ask across the exchanges' latest quotes, with the sizes of all
//! exchanges quoting at the best price summed. Following Holden & Jacobsen (2014, "Liquidity
//! Measurement Problems in Fast, Competitive Markets", J. Finance 69(4), section II and their
//! SAS code):
//! * a side whose price or size is zero, negative or missing is **withdrawn**: that exchange
//!   no longer quotes that side (the other side of its quote still counts);
//! * an exchange quote that is crossed by itself (its bid above its ask) is not a market and
//!   is **ignored** (counted as `quote_crossed_exchange`), leaving the exchange's previous
//!   quote in force;
//! * a **locked** NBBO (best bid = best ask, on different exchanges) is kept: its midpoint is
//!   the common price and its quoted spread 0;
//! * a **crossed** NBBO (best bid > best ask) is kept on the trade row as a fact, but the
//!   measures that need a midpoint are not computed on it (see `super::measures`).
//!
//! ```
//! use pipeline_prep::{NbboBook, QuoteOutcome};
//! let mut book = NbboBook::default();
//! assert_eq!(book.apply(0, 1, Some(10.00), Some(10.05), 100.0, 200.0), QuoteOutcome::Applied);
//! book.apply(1, 2, Some(10.01), Some(10.05), 300.0, 100.0);
//! let n = book.nbbo().unwrap();
//! assert_eq!((n.bid, n.ask, n.bid_size, n.ask_size), (Some(10.01), Some(10.05), 300.0, 300.0));
//! // Exchange 1 withdraws its bid (price 0): exchange 0's bid is the best again.
//! book.apply(1, 3, Some(0.0), Some(10.05), 0.0, 100.0);
//! assert_eq!(book.nbbo().unwrap().bid, Some(10.00));
//! ```

/// What became of a quote row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteOutcome {
    /// It replaced the exchange's quote (withdrawn sides included).
    Applied,
    /// Its bid was above its ask: ignored, the exchange's previous quote stands.
    CrossedExchange,
}

/// The state of an NBBO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NbboState {
    /// Bid below ask.
    Normal,
    /// Bid equal to ask.
    Locked,
    /// Bid above ask.
    Crossed,
    /// Only one side is quoted anywhere.
    OneSided,
}

/// The best bid and offer across exchanges, and the time of the quote that last changed a
/// symbol's book.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nbbo {
    /// Best bid (`None`: no exchange bids).
    pub bid: Option<f64>,
    /// Best ask (`None`: no exchange offers).
    pub ask: Option<f64>,
    /// Sum of the bid sizes at the best bid (0 without a bid).
    pub bid_size: f64,
    /// Sum of the ask sizes at the best ask (0 without an ask).
    pub ask_size: f64,
    /// Time (UTC ns) of the last quote applied to the book.
    pub ts: i64,
}

impl Nbbo {
    /// Normal, locked, crossed or one-sided.
    pub fn state(&self) -> NbboState {
        match (self.bid, self.ask) {
            (Some(b), Some(a)) if b < a => NbboState::Normal,
            (Some(b), Some(a)) if b == a => NbboState::Locked,
            (Some(_), Some(_)) => NbboState::Crossed,
            _ => NbboState::OneSided,
        }
    }

    /// The midpoint `(bid + ask) / 2` of a normal or locked NBBO.
    pub fn mid(&self) -> Option<f64> {
        match (self.bid, self.ask) {
            (Some(b), Some(a)) if b <= a => Some((b + a) / 2.0),
            _ => None,
        }
    }
}

/// One symbol's quotes by exchange and its NBBO, recomputed on every applied quote
/// (O(exchanges), a handful to a few dozen). Each exchange's sides sit in flat arrays
/// indexed by exchange number, a withdrawn side as NaN, so the recomputation is a few
/// compares per exchange (it was 14% of a 70M-row join with `Option` sides in a list).
#[derive(Debug, Clone, Default)]
pub struct NbboBook {
    bid: Vec<f64>,
    bid_size: Vec<f64>,
    ask: Vec<f64>,
    ask_size: Vec<f64>,
    nbbo: Option<Nbbo>,
}

/// The side's price, or NaN when withdrawn (price or size missing, zero, negative, NaN).
#[inline]
fn side(price: Option<f64>, size: f64) -> f64 {
    match price {
        Some(p) if p > 0.0 && p.is_finite() && size > 0.0 && size.is_finite() => p,
        _ => f64::NAN,
    }
}

impl NbboBook {
    /// Applies exchange `exchange`'s quote at `ts`: bid and ask prices (`None`, zero or
    /// negative: withdrawn) and sizes (zero: withdrawn).
    pub fn apply(
        &mut self,
        exchange: u32,
        ts: i64,
        bid: Option<f64>,
        ask: Option<f64>,
        bid_size: f64,
        ask_size: f64,
    ) -> QuoteOutcome {
        let (b, a) = (side(bid, bid_size), side(ask, ask_size));
        if b > a {
            // Both present (a NaN compares false) and crossed on its own exchange.
            return QuoteOutcome::CrossedExchange;
        }
        let e = exchange as usize;
        if e >= self.bid.len() {
            for v in [
                &mut self.bid,
                &mut self.bid_size,
                &mut self.ask,
                &mut self.ask_size,
            ] {
                v.resize(e + 1, f64::NAN);
            }
        }
        self.bid[e] = b;
        self.bid_size[e] = bid_size;
        self.ask[e] = a;
        self.ask_size[e] = ask_size;
        self.recompute(ts);
        QuoteOutcome::Applied
    }

    fn recompute(&mut self, ts: i64) {
        let (mut bb, mut bs) = (f64::NAN, 0.0);
        let (mut ba, mut asz) = (f64::NAN, 0.0);
        for e in 0..self.bid.len() {
            let b = self.bid[e];
            // NaN (withdrawn) fails every comparison and is skipped.
            if b > bb || (bb.is_nan() && !b.is_nan()) {
                bb = b;
                bs = self.bid_size[e];
            } else if b == bb {
                bs += self.bid_size[e];
            }
            let a = self.ask[e];
            if a < ba || (ba.is_nan() && !a.is_nan()) {
                ba = a;
                asz = self.ask_size[e];
            } else if a == ba {
                asz += self.ask_size[e];
            }
        }
        let (bid, ask) = ((!bb.is_nan()).then_some(bb), (!ba.is_nan()).then_some(ba));
        self.nbbo = if bid.is_none() && ask.is_none() {
            None
        } else {
            Some(Nbbo {
                bid,
                ask,
                bid_size: if bid.is_some() { bs } else { 0.0 },
                ask_size: if ask.is_some() { asz } else { 0.0 },
                ts,
            })
        };
    }

    /// The current NBBO, `None` when no exchange quotes either side.
    pub fn nbbo(&self) -> Option<Nbbo> {
        self.nbbo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain reference: the NBBO from a list of each exchange's latest quote, computed
    /// from scratch with no incremental state.
    fn reference(latest: &[(u32, f64, f64, f64, f64)]) -> Option<(f64, f64, f64, f64)> {
        let bids: Vec<(f64, f64)> = latest
            .iter()
            .filter(|q| q.1 > 0.0 && q.3 > 0.0 && !(q.2 > 0.0 && q.4 > 0.0 && q.1 > q.2))
            .map(|q| (q.1, q.3))
            .collect();
        let asks: Vec<(f64, f64)> = latest
            .iter()
            .filter(|q| q.2 > 0.0 && q.4 > 0.0 && !(q.1 > 0.0 && q.3 > 0.0 && q.1 > q.2))
            .map(|q| (q.2, q.4))
            .collect();
        if bids.is_empty() && asks.is_empty() {
            return None;
        }
        let bb = bids.iter().map(|b| b.0).fold(f64::NAN, f64::max);
        let ba = asks.iter().map(|a| a.0).fold(f64::NAN, f64::min);
        let bs: f64 = bids.iter().filter(|b| b.0 == bb).map(|b| b.1).sum();
        let asz: f64 = asks.iter().filter(|a| a.0 == ba).map(|a| a.1).sum();
        Some((bb, ba, bs, asz))
    }

    #[test]
    fn matches_the_reference_on_a_pseudo_random_stream() {
        let mut book = NbboBook::default();
        // Latest *accepted* quote per exchange (a self-crossed quote leaves the old one).
        let mut latest: Vec<(u32, f64, f64, f64, f64)> = Vec::new();
        let mut x: u64 = 42;
        for ts in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let ex = ((x >> 33) % 5) as u32;
            let r = |k: u32| ((x >> (k * 5)) % 7) as f64;
            let bid = if r(1) == 0.0 {
                0.0
            } else {
                100.0 + r(2) / 100.0
            };
            let ask = if r(3) == 0.0 {
                0.0
            } else {
                100.03 + r(4) / 100.0 - 0.02
            };
            let (bs, asz) = (r(5) * 100.0, r(6) * 100.0 + 100.0);
            let out = book.apply(ex, ts, Some(bid), Some(ask), bs, asz);
            let self_crossed = bid > 0.0 && bs > 0.0 && ask > 0.0 && bid > ask;
            assert_eq!(out == QuoteOutcome::CrossedExchange, self_crossed);
            if !self_crossed {
                latest.retain(|q| q.0 != ex);
                latest.push((ex, bid, ask, bs, asz));
            }
            let want = reference(&latest);
            let got = book.nbbo().map(|n| {
                (
                    n.bid.unwrap_or(f64::NAN),
                    n.ask.unwrap_or(f64::NAN),
                    n.bid_size,
                    n.ask_size,
                )
            });
            match (want, got) {
                (None, None) => {}
                (Some(w), Some(g)) => {
                    let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a == b;
                    assert!(
                        same(w.0, g.0) && same(w.1, g.1) && w.2 == g.2 && w.3 == g.3,
                        "ts {ts}: want {w:?}, got {g:?}"
                    );
                }
                other => panic!("ts {ts}: {other:?}"),
            }
        }
    }

    #[test]
    fn states_and_mid() {
        let n = |b, a| Nbbo {
            bid: b,
            ask: a,
            bid_size: 1.0,
            ask_size: 1.0,
            ts: 0,
        };
        assert_eq!(n(Some(1.0), Some(2.0)).state(), NbboState::Normal);
        assert_eq!(n(Some(2.0), Some(2.0)).state(), NbboState::Locked);
        assert_eq!(n(Some(2.0), Some(2.0)).mid(), Some(2.0));
        assert_eq!(n(Some(2.1), Some(2.0)).state(), NbboState::Crossed);
        assert_eq!(n(Some(2.1), Some(2.0)).mid(), None);
        assert_eq!(n(None, Some(2.0)).state(), NbboState::OneSided);
        assert_eq!(n(None, Some(2.0)).mid(), None);
    }
}
