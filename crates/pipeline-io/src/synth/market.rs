//! The market model: symbol names, each symbol's price walk, and the row stream of one
//! (symbol, day) cell with its U-shaped intraday timing and injected anomalies.
//!
//! Every symbol has its own PRNG stream, so a symbol's rows are the same whatever the layout;
//! only the files they land in (and so their line numbers) differ.

use std::f64::consts::TAU;

use super::config::{AnomalyKind, AnomalyRates};
use super::rng::Rng;

/// Well-known tickers used first, in this order; further symbols get generated names.
pub(crate) const NAMED_SYMBOLS: [&str; 30] = [
    "AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "JPM", "V", "JNJ", "WMT", "PG", "XOM",
    "UNH", "HD", "BAC", "MA", "KO", "PFE", "DIS", "CSCO", "INTC", "ORCL", "NFLX", "ADBE", "CRM",
    "PEP", "T", "VZ", "MRK",
];

/// The name of symbol `i`: a ticker from the list, then `ZAAA`, `ZAAB`, ….
pub fn symbol_name(i: usize) -> String {
    if let Some(name) = NAMED_SYMBOLS.get(i) {
        return (*name).to_string();
    }
    let mut k = i - NAMED_SYMBOLS.len();
    let mut tail = [b'A'; 3];
    for slot in tail.iter_mut().rev() {
        *slot = b'A' + (k % 26) as u8;
        k /= 26;
    }
    format!("Z{}", String::from_utf8_lossy(&tail))
}

/// Nanoseconds per second.
const NS_PER_SEC: i64 = 1_000_000_000;

/// How far outside-session rows reach beyond the session: two hours, so they fall around
/// 07:30–09:30 and 16:00–18:00 New York time, where extended-hours prints really occur.
const OUTSIDE_WINDOW_NS: i64 = 2 * 3600 * NS_PER_SEC;

/// Depth of the intraday U-shape: time runs as `x = q - DEPTH·sin(2πq)/2π` over the quantile
/// `q`, so activity at the open and close is `(1+DEPTH)/(1-DEPTH)` = 4 times midday, in line
/// with the 3–5× ratio reported for US equities.
const U_DEPTH: f64 = 0.6;

/// Spreads in ticks, sampled uniformly: mostly 1–2 ticks, as for liquid large caps.
const SPREADS: [i64; 8] = [1, 1, 1, 2, 2, 3, 4, 5];

/// Exchange codes by weight (Nasdaq, NYSE, Arca, Cboe BZX, Cboe EDGX, …).
const EXCHANGES: &[u8; 20] = b"QQQQQNNNPPPZZKKBJYDV";

/// Sale-condition codes by weight out of 100: regular `@` 80%, ISO `F` 7%, odd lot `I` 6%,
/// `E` 4%, extended hours `T` 2%, `Z` 1%.
const CONDITIONS: [(u8, u8); 6] = [
    (b'@', 80),
    (b'F', 87),
    (b'I', 93),
    (b'E', 97),
    (b'T', 99),
    (b'Z', 100),
];

/// The price floor in cents ($1): the walk reflects off it so quotes stay positive.
const MIN_TICKS: f64 = 100.0;

/// One generated row before formatting. Prices are in cents; timestamps in ns since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    /// Merge key: the row's place in its symbol's stream (its nominal time).
    pub(crate) key: i64,
    /// Timestamp written (differs from `key` only for `out_of_order`).
    pub(crate) ts: i64,
    pub(crate) price: i64,
    pub(crate) size: i64,
    pub(crate) bid: i64,
    pub(crate) ask: i64,
    pub(crate) bid_size: i64,
    pub(crate) ask_size: i64,
    pub(crate) exchange: u8,
    pub(crate) cond: u8,
    /// The row's anomaly, if any.
    pub(crate) kind: Option<AnomalyKind>,
    /// Which variant of the anomaly (which field is missing, which number is malformed).
    pub(crate) variant: u8,
    /// Write a labelled exact copy of this (clean) row right after it.
    pub(crate) dup: bool,
}

/// Cumulative per-row thresholds for the kinds decided row by row (all but
/// `outside_session`, which is decided per cell so those rows never break time order).
#[derive(Debug, Clone)]
pub(crate) struct KindTable {
    total: f64,
    cum: Vec<(f64, AnomalyKind)>,
    outside: f64,
}

impl KindTable {
    /// Builds the table from per-kind rates.
    pub(crate) fn new(rates: &AnomalyRates) -> Self {
        let mut acc = 0.0;
        let mut cum = Vec::new();
        for kind in AnomalyKind::ALL {
            if kind == AnomalyKind::OutsideSession || rates.get(kind) <= 0.0 {
                continue;
            }
            acc += rates.get(kind);
            cum.push((acc, kind));
        }
        KindTable {
            total: acc,
            cum,
            outside: rates.get(AnomalyKind::OutsideSession),
        }
    }

    /// The kind for a uniform draw `u`, or `None` for a clean row.
    #[inline]
    fn pick(&self, u: f64) -> Option<AnomalyKind> {
        if u >= self.total {
            return None;
        }
        self.cum.iter().find(|(c, _)| u < *c).map(|(_, k)| *k)
    }
}

/// One symbol: its name, PRNG stream, price walk and current (symbol, day) cell.
#[derive(Debug, Clone)]
pub(crate) struct SymbolGen {
    /// Ticker.
    pub(crate) name: String,
    rng: Rng,
    /// Natural log of the walk's price in cents.
    log_price: f64,
    open: i64,
    close: i64,
    pre_n: u64,
    pre_i: u64,
    slots: u64,
    slot_i: u64,
    post_n: u64,
    post_i: u64,
    last_key: i64,
    last_ts: Option<i64>,
    sigma: f64,
}

impl SymbolGen {
    /// Symbol `index` under `seed`, with a start price between $20 and $500.
    pub(crate) fn new(seed: u64, index: usize) -> Self {
        let mut rng = Rng::new(seed, 1000 + index as u64);
        let log_price = (2000f64).ln() + rng.f64() * (25f64).ln();
        SymbolGen {
            name: symbol_name(index),
            rng,
            log_price,
            open: 0,
            close: 0,
            pre_n: 0,
            pre_i: 0,
            slots: 0,
            slot_i: 0,
            post_n: 0,
            post_i: 0,
            last_key: i64::MIN,
            last_ts: None,
            sigma: 0.0,
        }
    }

    /// Starts a new day with `n` rows in the session `[open, close)` (ns since the epoch).
    /// Called for every symbol every day, so the walk moves overnight even on days a symbol
    /// gets no rows.
    pub(crate) fn start_day(&mut self, n: u64, open: i64, close: i64, table: &KindTable) {
        // Daily volatility between 1% and 2%; an overnight gap of half a day's volatility.
        let daily_vol = 0.01 + 0.01 * self.rng.f64();
        self.log_price += 0.5 * daily_vol * self.rng.normal();
        self.reflect();
        let expected = n as f64 * table.outside;
        let outside = ((expected + self.rng.f64()) as u64).min(n);
        let mut pre = 0;
        for _ in 0..outside {
            pre += self.rng.next_u64() >> 63;
        }
        self.open = open;
        self.close = close;
        self.pre_n = pre;
        self.post_n = outside - pre;
        self.slots = n - outside;
        self.pre_i = 0;
        self.post_i = 0;
        self.slot_i = 0;
        self.last_key = open - OUTSIDE_WINDOW_NS - 1;
        self.last_ts = None;
        self.sigma = daily_vol / (self.slots.max(1) as f64).sqrt();
    }

    /// Keeps the walk above the $1 floor by reflection.
    fn reflect(&mut self) {
        let floor = MIN_TICKS.ln();
        if self.log_price < floor {
            self.log_price = 2.0 * floor - self.log_price;
        }
    }

    /// A time in `[from, to)` for stratum `i` of `n`, strictly after the previous row.
    #[inline]
    fn stratified(&mut self, from: i64, to: i64, i: u64, n: u64) -> i64 {
        let q = (i as f64 + self.rng.f64()) / n as f64;
        let t = from + (q * (to - from) as f64) as i64;
        let t = t.min(to - 1).max(self.last_key + 1);
        self.last_key = t;
        t
    }

    /// The next row of the current cell, or `None` when the cell is done.
    #[inline]
    pub(crate) fn next_row(&mut self, table: &KindTable) -> Option<Row> {
        if self.pre_i < self.pre_n {
            let from = self.open - OUTSIDE_WINDOW_NS;
            let t = self.stratified(from, self.open - NS_PER_SEC, self.pre_i, self.pre_n);
            self.pre_i += 1;
            let mut row = self.clean_row(t);
            row.kind = Some(AnomalyKind::OutsideSession);
            return Some(row);
        }
        if self.slot_i < self.slots {
            return Some(self.session_row(table));
        }
        if self.post_i < self.post_n {
            let from = self.close + NS_PER_SEC;
            let t = self.stratified(
                from,
                self.close + OUTSIDE_WINDOW_NS,
                self.post_i,
                self.post_n,
            );
            self.post_i += 1;
            let mut row = self.clean_row(t);
            row.kind = Some(AnomalyKind::OutsideSession);
            return Some(row);
        }
        None
    }

    /// An in-session row: a walk step, then maybe one anomaly.
    #[inline]
    fn session_row(&mut self, table: &KindTable) -> Row {
        let q = (self.slot_i as f64 + self.rng.f64()) / self.slots as f64;
        let x = q - U_DEPTH * (TAU * q).sin() / TAU;
        let len = self.close - self.open;
        let t = (self.open + (x * len as f64) as i64)
            .min(self.close - 1)
            .max(self.last_key + 1);
        self.last_key = t;
        self.log_price += self.sigma * self.rng.normal();
        self.reflect();
        let mut row = self.clean_row(t);
        let mut step = 1;
        match table.pick(self.rng.f64()) {
            None => {}
            // The copy needs a slot of its own; on the day's last slot the row stays clean.
            Some(AnomalyKind::Duplicate) if self.slots - self.slot_i >= 2 => {
                row.dup = true;
                step = 2;
            }
            Some(kind) => self.apply(&mut row, kind),
        }
        self.slot_i += step;
        self.last_ts = Some(row.ts);
        row
    }

    /// Turns a clean `row` into one with anomaly `kind` (left clean when that is impossible
    /// here, e.g. `out_of_order` on the day's first row).
    fn apply(&mut self, row: &mut Row, kind: AnomalyKind) {
        let rng = &mut self.rng;
        match kind {
            AnomalyKind::MissingField => row.variant = rng.below(4) as u8,
            AnomalyKind::PriceSpike => {
                let factor = 1.1 + 0.4 * rng.f64();
                let p = row.price as f64;
                let spiked = if rng.next_u64() >> 63 == 0 {
                    p * factor
                } else {
                    p / factor
                };
                row.price = spiked.round() as i64;
            }
            AnomalyKind::CrossedQuote => row.bid = row.ask + 1 + rng.below(3) as i64,
            AnomalyKind::LockedQuote => row.bid = row.ask,
            AnomalyKind::ZeroPrice => row.price = 0,
            AnomalyKind::NegativePrice => row.price = -row.price,
            AnomalyKind::ZeroSize => row.size = 0,
            AnomalyKind::NegativeSize => row.size = -row.size,
            AnomalyKind::OutOfOrder => {
                let back = 1_000_000 + rng.below(999_000_001) as i64;
                match self.last_ts {
                    Some(prev) if prev - back >= self.open => row.ts = prev - back,
                    _ => return,
                }
            }
            AnomalyKind::MalformedFieldCount => row.variant = rng.below(2) as u8,
            AnomalyKind::MalformedNumber => row.variant = rng.below(6) as u8,
            AnomalyKind::Duplicate | AnomalyKind::OutsideSession => return,
        }
        row.kind = Some(kind);
    }

    /// A clean row at time `t` around the walk's current price.
    #[inline]
    fn clean_row(&mut self, t: i64) -> Row {
        let rng = &mut self.rng;
        let price = self.log_price.exp().round().max(MIN_TICKS) as i64;
        let spread = SPREADS[rng.below(SPREADS.len() as u64) as usize];
        let (bid, ask) = match rng.below(10) {
            0..=3 => (price, price + spread),
            4..=7 => (price - spread, price),
            _ if spread >= 2 => {
                let below = 1 + rng.below(spread as u64 - 1) as i64;
                (price - below, price - below + spread)
            }
            _ => (price, price + spread),
        };
        // Trade sizes: one in five is an odd lot (1–99 shares); the rest are round lots with a
        // Pareto(α = 1.5) lot count capped at 100, the tail index reported for US trade sizes.
        let size = if rng.below(5) == 0 {
            1 + rng.below(99) as i64
        } else {
            let lots = rng.f64_open().powf(-1.0 / 1.5).min(100.0) as i64;
            100 * lots.max(1)
        };
        // Displayed depth: Pareto(α = 1) lots, capped at 50.
        let bid_size = 100 * (1.0 / rng.f64_open()).min(50.0) as i64;
        let ask_size = 100 * (1.0 / rng.f64_open()).min(50.0) as i64;
        let exchange = EXCHANGES[rng.below(EXCHANGES.len() as u64) as usize];
        let c = rng.below(100) as u8;
        let cond = CONDITIONS
            .iter()
            .find(|(_, upto)| c < *upto)
            .map_or(b'@', |(code, _)| *code);
        Row {
            key: t,
            ts: t,
            price,
            size,
            bid,
            ask,
            bid_size,
            ask_size,
            exchange,
            cond,
            kind: None,
            variant: 0,
            dup: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(symbol_name(0), "AAPL");
        assert_eq!(symbol_name(29), "MRK");
        assert_eq!(symbol_name(30), "ZAAA");
        assert_eq!(symbol_name(31), "ZAAB");
        assert_eq!(symbol_name(30 + 26 * 26 * 26 - 1), "ZZZZ");
    }

    #[test]
    fn a_clean_day_is_ordered_inside_the_session_and_u_shaped() {
        let table = KindTable::new(&AnomalyRates::none());
        let mut s = SymbolGen::new(1, 0);
        let open = 1_000 * NS_PER_SEC;
        let close = open + 23_400 * NS_PER_SEC;
        s.start_day(10_000, open, close, &table);
        let mut prev = i64::MIN;
        let mut first_half_hour = 0;
        let mut mid_half_hour = 0;
        let mut n = 0;
        while let Some(r) = s.next_row(&table) {
            n += 1;
            assert!(r.ts > prev && r.ts >= open && r.ts < close);
            assert!(r.bid < r.ask && r.bid <= r.price && r.price <= r.ask && r.bid > 0);
            assert!(r.size > 0 && r.bid_size > 0 && r.ask_size > 0);
            assert!(r.kind.is_none() && !r.dup);
            prev = r.ts;
            let minute = (r.ts - open) / (60 * NS_PER_SEC);
            if minute < 30 {
                first_half_hour += 1;
            } else if (180..210).contains(&minute) {
                mid_half_hour += 1;
            }
        }
        assert_eq!(n, 10_000);
        assert!(
            first_half_hour > 2 * mid_half_hour,
            "{first_half_hour} vs {mid_half_hour}"
        );
    }

    #[test]
    fn outside_rows_come_first_and_last() {
        let mut rates = AnomalyRates::none();
        rates.set(AnomalyKind::OutsideSession, 0.1);
        let table = KindTable::new(&rates);
        let mut s = SymbolGen::new(1, 0);
        let open = 1_000_000 * NS_PER_SEC;
        let close = open + 23_400 * NS_PER_SEC;
        s.start_day(1000, open, close, &table);
        let rows: Vec<Row> = std::iter::from_fn(|| s.next_row(&table)).collect();
        assert_eq!(rows.len(), 1000);
        let outside = rows.iter().filter(|r| r.kind.is_some()).count();
        assert!((70..=130).contains(&outside), "{outside}");
        assert!(rows.windows(2).all(|w| w[0].ts < w[1].ts));
        for r in &rows {
            let inside = r.ts >= open && r.ts < close;
            assert_eq!(inside, r.kind.is_none());
        }
    }
}
