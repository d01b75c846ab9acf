//! The deterministic synthetic TAQ generator behind `cargo xtask gen-data`.
//!
//! [`GenConfig`] says what to make: symbols, years of NYSE trading days (holidays by rule,
//! the 09:30–16:00 New York session converted to UTC across DST), a total row count, a file
//! [`Layout`], a [`Codec`], and per-kind [`AnomalyRates`]. [`generate_to_dir`] writes the files
//! and a ground-truth `anomalies.jsonl` (`{"file","line","kind"}` per injected anomaly, line 1
//! being the header); [`generate_to_writer`] streams one file to any writer at constant memory.
//!
//! So that a benchmark is not tuned to one file shape, three knobs vary the layout of the rows
//! without changing what they hold (their defaults give the original output, byte for byte):
//!
//! * [`GenConfig::ts_format`] ([`TimestampFormat`]): `iso` `2019-01-02T12:53:17.784433219Z`
//!   (default), `iso-micros` `2019-01-02T12:53:17.784433Z`, `space-micros`
//!   `2019-01-02 12:53:17.784433` (UTC, no zone written), `epoch-ns` `1546433597784433219`,
//!   `epoch-ms` `1546433597784`. Shorter forms truncate the nanosecond time.
//! * [`GenConfig::symbol_skew`]: symbol `i` gets rows in proportion to `1/(i+1)^S` (Zipf);
//!   0 is uniform, the default 0.5 is 1/√rank, 1 gives the first of 20 symbols about 28% of
//!   the rows. The total stays `rows` exactly, and no symbol loses all its rows on a day that
//!   has at least one row per symbol.
//! * [`GenConfig::column_order`] ([`ColumnOrder`]): `canonical` ([`TAQ_HEADER`]) or `vendor`
//!   ([`VENDOR_TAQ_HEADER`]: `symbol,date_time,price,volume,bid_price,…,sale_condition`, names
//!   tickpipe's reader maps without a config).
//!
//! The manifest names rows by file and line, so it reads the same in every variant.
//!
//! Same config, same bytes: the PRNG is our own xoshiro256**, each symbol has its own stream
//! (so a symbol's rows do not depend on the layout), and nothing reads the clock. Speed comes
//! from hand-written integer formatting into one reused line buffer.
//!
//! ```
//! use pipeline_io::{generate_to_writer, GenConfig};
//! let cfg = GenConfig { rows: 3, days: Some(1), ..GenConfig::default() };
//! let mut out = Vec::new();
//! let summary = generate_to_writer(&cfg, &mut out, None)?;
//! let text = String::from_utf8(out).unwrap();
//! let mut lines = text.lines();
//! assert_eq!(lines.next(), Some("ts,symbol,price,size,bid,ask,bid_size,ask_size,exchange,conditions"));
//! assert!(lines.next().unwrap().starts_with("2019-01-02T"));
//! assert_eq!(lines.count(), 2);
//! assert_eq!(summary.rows, 3);
//! # Ok::<(), pipeline_core::Error>(())
//! ```

mod calendar;
mod config;
mod format;
mod generate;
mod market;
mod output;
mod rng;
mod taq_split;

pub use calendar::{nyse_holidays, trading_days};
pub use config::{
    AnomalyKind, AnomalyRates, Codec, ColumnOrder, GenConfig, GenSummary, Holidays, Layout,
    TimestampFormat,
};
pub use generate::{
    MANIFEST_FILE, TAQ_HEADER, VENDOR_TAQ_HEADER, generate_to_dir, generate_to_writer,
};
pub use market::symbol_name;
pub use taq_split::{
    EXCHANGES, NO_QUOTE_SHARE, POST_MARKET_HOURS, QUOTES_HEADER, QUOTES_PER_TRADE, SPARSE_SHARE,
    TRADES_HEADER,
};
