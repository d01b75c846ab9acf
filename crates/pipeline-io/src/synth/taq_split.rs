//! The `taq-split` layout: real TAQ's shape, a trades file and a quotes file per day.
//!
//! * `trades_YYYY-MM-DD.csv[.ext]`: `ts,symbol,price,size,exchange`, every symbol merged in
//!   time order; `cfg.rows` trades in all, spread over days and symbols as in the other
//!   layouts (±30% per day, a `1/rank^S` share per symbol, `S` being
//!   [`GenConfig::symbol_skew`]).
//! * `quotes_YYYY-MM-DD.csv[.ext]`: `ts,symbol,exchange,bid,ask,bid_size,ask_size`, about
//!   `cfg.quotes_per_trade` ([`QUOTES_PER_TRADE`] by default) quotes per trade, from the exchanges in [`EXCHANGES`]. Each quote is
//!   one exchange's new best bid and offer, so the NBBO (best bid and offer across exchanges)
//!   changes between trades. Quotes run from the open to [`POST_MARKET_HOURS`] after the close,
//!   which in New York crosses midnight UTC, so one day's quote stream spans two UTC dates.
//! * Some symbol-days are quote-sparse: [`SPARSE_SHARE`] of them get a tenth of the quotes and
//!   [`NO_QUOTE_SHARE`] get none at all (their trades have no prevailing quote).
//! * Quotes include withdrawn sides (price and size 0: the exchange left that side), about 2%,
//!   and locked or crossed exchange quotes (bid ≥ ask across exchanges), about 1%.
//!
//! The price follows a per-symbol random walk sampled once a second; quotes sit a few ticks
//! around it and trades print at the bid, the ask or the midpoint of the quotes around them.
//! The layout injects no anomalies (the anomaly rates apply to the other layouts), writes no
//! manifest lines, and like them is deterministic: same config, same bytes. Timestamps follow
//! [`GenConfig::ts_format`]; the column order is fixed (the headers above).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufWriter, Write};
use std::path::Path;

use pipeline_core::{Error, Result};

use super::calendar::{local_to_utc_ns, trading_days};
use super::config::{AnomalyKind, GenConfig, GenSummary};
use super::format::{TsFormatter, push_ticks, push_u64};
use super::market::symbol_name;
use super::output::{Counting, Encoder};
use super::rng::Rng;

/// Header of the trades files.
pub const TRADES_HEADER: &str = "ts,symbol,price,size,exchange";
/// Header of the quotes files.
pub const QUOTES_HEADER: &str = "ts,symbol,exchange,bid,ask,bid_size,ask_size";
/// Quotes generated per trade (on a normal symbol-day).
pub const QUOTES_PER_TRADE: u64 = 3;
/// The quoting exchanges (TAQ codes: NYSE, Nasdaq, Arca, Cboe BZX).
pub const EXCHANGES: [&str; 4] = ["N", "Q", "P", "Z"];
/// Hours after the close during which quotes keep coming (post-market).
pub const POST_MARKET_HOURS: i64 = 8;
/// Share of symbol-days with a tenth of the usual quotes.
pub const SPARSE_SHARE: f64 = 0.10;
/// Share of symbol-days with no quotes at all.
pub const NO_QUOTE_SHARE: f64 = 0.10;

const NS: i64 = 1_000_000_000;
const BUF_BYTES: usize = 1 << 16;

/// One generated event of one symbol.
#[derive(Debug, Clone, Copy)]
struct Event {
    ts: i64,
    /// Trade: price in cents; quote: bid in cents (0 = withdrawn).
    a: i64,
    /// Trade: size; quote: ask in cents (0 = withdrawn).
    b: i64,
    bid_size: u64,
    ask_size: u64,
    exchange: usize,
}

/// A symbol's day: its price path and the two event streams, generated lazily in time order.
struct SymbolDay {
    name: String,
    rng: Rng,
    /// Mid in cents, one value per second from `open`.
    path: Vec<f64>,
    open: i64,
    trades: (u64, u64, i64, i64),
    quotes: (u64, u64, i64, i64),
}

impl SymbolDay {
    fn mid_at(&self, ts: i64) -> f64 {
        let i = ((ts - self.open).max(0) / NS) as usize;
        self.path[i.min(self.path.len() - 1)]
    }

    /// The `i`-th of `n` stratified times in `[from, to)`: increasing in `i`.
    fn time(&mut self, i: u64, n: u64, from: i64, to: i64) -> i64 {
        let span = (to - from) as f64 / n as f64;
        from + ((i as f64 + self.rng.f64()) * span) as i64
    }

    fn next_trade(&mut self) -> Option<Event> {
        let (i, n, from, to) = self.trades;
        if i >= n {
            return None;
        }
        self.trades.0 += 1;
        let ts = self.time(i, n, from, to);
        let mid = self.mid_at(ts);
        let half = 1.0 + self.rng.below(3) as f64;
        let price = match self.rng.below(5) {
            0 => mid,
            1 | 2 => mid - half,
            _ => mid + half,
        };
        Some(Event {
            ts,
            a: price.round().max(1.0) as i64,
            b: 100 * (1 + self.rng.below(10) as i64),
            bid_size: 0,
            ask_size: 0,
            exchange: self.rng.below(EXCHANGES.len() as u64) as usize,
        })
    }

    fn next_quote(&mut self) -> Option<Event> {
        let (i, n, from, to) = self.quotes;
        if i >= n {
            return None;
        }
        self.quotes.0 += 1;
        let ts = self.time(i, n, from, to);
        let mid = self.mid_at(ts).round() as i64;
        let exchange = self.rng.below(EXCHANGES.len() as u64) as usize;
        let mut bid = mid - 1 - self.rng.below(3) as i64;
        let mut ask = mid + 1 + self.rng.below(3) as i64;
        let u = self.rng.f64();
        if u < 0.01 {
            // A locked or crossed exchange quote.
            ask = bid - self.rng.below(2) as i64;
        }
        let mut bid_size = 100 * (1 + self.rng.below(20));
        let mut ask_size = 100 * (1 + self.rng.below(20));
        let w = self.rng.f64();
        if w < 0.01 {
            bid = 0;
            bid_size = 0;
        } else if w < 0.02 {
            ask = 0;
            ask_size = 0;
        }
        Some(Event {
            ts,
            a: bid.max(0),
            b: ask.max(0),
            bid_size,
            ask_size,
            exchange,
        })
    }
}

/// Writes the `taq-split` data set of `cfg` into `dir` (see the module docs).
pub(crate) fn generate(cfg: &GenConfig, dir: &Path) -> Result<GenSummary> {
    let days = trading_days(cfg)?;
    if days.is_empty() {
        return Err(Error::Config {
            key: "years".into(),
            message: "the configured range holds no trading days".into(),
        });
    }
    let mut summary = GenSummary {
        rows: 0,
        bytes: 0,
        files: 0,
        anomalies_by_kind: AnomalyKind::ALL.into_iter().map(|k| (k, 0)).collect(),
    };
    let mut day_rng = Rng::new(cfg.seed, 1);
    let day_w: Vec<u64> = days.iter().map(|_| 700 + day_rng.below(601)).collect();
    let sym_w = super::generate::symbol_weights(cfg);
    let day_counts = apportion(cfg.rows, &day_w);
    // Each symbol's price carries across days.
    let mut last_mid: Vec<f64> = (0..cfg.symbols)
        .map(|s| 5_000.0 + 2_000.0 * s as f64)
        .collect();
    for (d, (&date, &n_day)) in days.iter().zip(&day_counts).enumerate() {
        let open = local_to_utc_ns(cfg.timezone, date, cfg.session_open)?;
        let close = local_to_utc_ns(cfg.timezone, date, cfg.session_close)?;
        let post = close + POST_MARKET_HOURS * 3600 * NS;
        let mut sym_counts = Vec::with_capacity(cfg.symbols);
        super::generate::split_over_symbols(n_day, &sym_w, &mut sym_counts, |t, w, out| {
            *out = apportion(t, w);
        });
        let mut syms = Vec::with_capacity(cfg.symbols);
        for (s, &n) in sym_counts.iter().enumerate() {
            let mut rng = Rng::new(cfg.seed, 10_000 + (d as u64) * 65_536 + s as u64);
            let secs = ((post - open) / NS + 1) as usize;
            let mut path = Vec::with_capacity(secs);
            let mut mid = last_mid[s];
            for _ in 0..secs {
                mid = (mid + 0.3 * rng.normal()).max(100.0);
                path.push(mid);
            }
            last_mid[s] = mid;
            let u = rng.f64();
            let n_quotes = if u < NO_QUOTE_SHARE {
                0
            } else if u < NO_QUOTE_SHARE + SPARSE_SHARE {
                (n as f64 * cfg.quotes_per_trade / 10.0).round() as u64
            } else {
                (n as f64 * cfg.quotes_per_trade).round() as u64
            };
            syms.push(SymbolDay {
                name: symbol_name(s),
                rng,
                path,
                open,
                trades: (0, n, open, close),
                quotes: (0, n_quotes, open, post),
            });
        }
        let ext = cfg.compression.extension();
        write_file(
            cfg,
            dir,
            &format!("trades_{date}.csv{ext}"),
            TRADES_HEADER,
            &mut syms,
            true,
            &mut summary,
        )?;
        write_file(
            cfg,
            dir,
            &format!("quotes_{date}.csv{ext}"),
            QUOTES_HEADER,
            &mut syms,
            false,
            &mut summary,
        )?;
    }
    Ok(summary)
}

/// Writes one day's trades (or quotes) of every symbol, merged by time.
fn write_file(
    cfg: &GenConfig,
    dir: &Path,
    name: &str,
    header: &str,
    syms: &mut [SymbolDay],
    trades: bool,
    summary: &mut GenSummary,
) -> Result<()> {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    let level = cfg.level.unwrap_or_else(|| cfg.compression.default_level());
    let io = |e| Error::io(&path, e);
    let enc = Encoder::new(cfg.compression, level, Counting::new(file)).map_err(io)?;
    let mut w = BufWriter::with_capacity(BUF_BYTES, enc);
    w.write_all(header.as_bytes()).map_err(io)?;
    w.write_all(b"\n").map_err(io)?;
    let next = |s: &mut SymbolDay| {
        if trades {
            s.next_trade()
        } else {
            s.next_quote()
        }
    };
    let mut pending: Vec<Option<Event>> = syms.iter_mut().map(next).collect();
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = pending
        .iter()
        .enumerate()
        .filter_map(|(s, e)| e.map(|e| Reverse((e.ts, s))))
        .collect();
    let mut fmt = TsFormatter::new(cfg.ts_format);
    let mut line = Vec::with_capacity(128);
    while let Some(Reverse((_, s))) = heap.pop() {
        let Some(e) = pending[s].take() else { continue };
        line.clear();
        fmt.push(&mut line, e.ts);
        line.push(b',');
        line.extend_from_slice(syms[s].name.as_bytes());
        line.push(b',');
        if trades {
            push_ticks(&mut line, e.a);
            line.push(b',');
            push_u64(&mut line, e.b as u64);
            line.push(b',');
            line.extend_from_slice(EXCHANGES[e.exchange].as_bytes());
        } else {
            line.extend_from_slice(EXCHANGES[e.exchange].as_bytes());
            line.push(b',');
            push_ticks(&mut line, e.a);
            line.push(b',');
            push_ticks(&mut line, e.b);
            line.push(b',');
            push_u64(&mut line, e.bid_size);
            line.push(b',');
            push_u64(&mut line, e.ask_size);
        }
        line.push(b'\n');
        w.write_all(&line).map_err(io)?;
        summary.rows += 1;
        if let Some(n) = next(&mut syms[s]) {
            heap.push(Reverse((n.ts, s)));
            pending[s] = Some(n);
        }
    }
    let enc = w.into_inner().map_err(|e| io(e.into_error()))?;
    let counting = enc.finish().map_err(io)?;
    let (_, bytes) = counting.into_inner().map_err(io)?;
    summary.bytes += bytes;
    summary.files += 1;
    Ok(())
}

/// Splits `total` over `weights` (largest remainders), exactly.
fn apportion(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u64 = weights.iter().sum::<u64>().max(1);
    let mut out: Vec<u64> = weights
        .iter()
        .map(|&w| (total as u128 * w as u128 / sum as u128) as u64)
        .collect();
    let mut left = total - out.iter().sum::<u64>();
    let mut i = 0;
    while left > 0 && !out.is_empty() {
        out[i % weights.len()] += 1;
        left -= 1;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layout;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn writes_trades_and_quotes_per_day_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = GenConfig {
            rows: 20_000,
            days: Some(12),
            symbols: 4,
            layout: Layout::TaqSplit,
            ..GenConfig::default()
        };
        let summary = crate::generate_to_dir(&cfg, dir.path()).unwrap();
        assert_eq!(summary.files, 24);
        let (mut trades, mut quotes, mut crossed_midnight) = (0usize, 0usize, false);
        let (mut withdrawn, mut locked, mut empty_days) = (0, 0, 0);
        for date in trading_days(&cfg).unwrap() {
            let t = lines(&dir.path().join(format!("trades_{date}.csv")));
            let q = lines(&dir.path().join(format!("quotes_{date}.csv")));
            assert_eq!(t[0], TRADES_HEADER);
            assert_eq!(q[0], QUOTES_HEADER);
            for f in [&t, &q] {
                let ts: Vec<&str> = f[1..].iter().map(|l| &l[..30]).collect();
                assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{date}: out of order");
            }
            trades += t.len() - 1;
            quotes += q.len() - 1;
            let date_s = date.to_string();
            crossed_midnight |= q[1..].iter().any(|l| !l.starts_with(&date_s));
            for l in &q[1..] {
                let f: Vec<&str> = l.split(',').collect();
                if f[3] == "0.00" || f[4] == "0.00" {
                    withdrawn += 1;
                } else if f[3].parse::<f64>().unwrap() >= f[4].parse::<f64>().unwrap() {
                    locked += 1;
                }
            }
            for s in 0..4 {
                let sym = format!(",{},", symbol_name(s));
                if t.iter().any(|l| l.contains(&sym)) && !q.iter().any(|l| l.contains(&sym)) {
                    empty_days += 1;
                }
            }
        }
        assert_eq!(trades, 20_000);
        assert!(quotes > 2 * trades && quotes < 3 * trades, "{quotes}");
        assert_eq!(summary.rows as usize, trades + quotes);
        assert!(crossed_midnight);
        assert!(withdrawn > 0 && locked > 0 && empty_days > 0);
        // Same config, same bytes.
        let again = tempfile::tempdir().unwrap();
        crate::generate_to_dir(&cfg, again.path()).unwrap();
        let name = "quotes_2019-01-03.csv";
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            std::fs::read(again.path().join(name)).unwrap()
        );
    }

    #[test]
    fn quotes_per_trade_scales_the_quote_stream() {
        let count = |q: f64| {
            let dir = tempfile::tempdir().unwrap();
            let cfg = GenConfig {
                rows: 10_000,
                days: Some(10),
                symbols: 4,
                layout: Layout::TaqSplit,
                quotes_per_trade: q,
                ..GenConfig::default()
            };
            crate::generate_to_dir(&cfg, dir.path()).unwrap().rows - 10_000
        };
        let (three, six) = (count(3.0), count(6.0));
        // Normal days get q per trade, sparse days q / 10, no-quote days none.
        assert!(
            six > 2 * three - 200 && six < 2 * three + 200,
            "{three} {six}"
        );
        assert_eq!(count(0.0), 0);
        let bad = GenConfig {
            quotes_per_trade: -1.0,
            ..GenConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("quotes_per_trade")
        );
    }
}
