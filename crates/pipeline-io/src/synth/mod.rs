//! The deterministic synthetic TAQ generator behind `cargo xtask gen-data`.
//!
//! [`GenConfig`] says what to make: symbols, years of NYSE trading days (holidays by rule,
//! the 09:30–16:00 New York session converted to UTC across DST), a total row count, a file
//! [`Layout`], a [`Codec`], and per-kind [`AnomalyRates`]. [`generate_to_dir`] writes the files
//! and a ground-truth `anomalies.jsonl` (`{"file","line","kind"}` per injected anomaly, line 1
//! being the header); [`generate_to_writer`] streams one file to any writer at constant memory.
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
pub use config::{AnomalyKind, AnomalyRates, Codec, GenConfig, GenSummary, Holidays, Layout};
pub use generate::{MANIFEST_FILE, TAQ_HEADER, generate_to_dir, generate_to_writer};
pub use market::symbol_name;
pub use taq_split::{
    EXCHANGES, NO_QUOTE_SHARE, POST_MARKET_HOURS, QUOTES_HEADER, QUOTES_PER_TRADE, SPARSE_SHARE,
    TRADES_HEADER,
};
