//! What to generate: [`GenConfig`], its enums, the anomaly kinds and rates, and the
//! [`GenSummary`] a run returns.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use pipeline_core::{Error, Result};
use serde::Serialize;

/// How rows are split into files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One file, `taq.csv[.ext]`, holding every day and symbol.
    #[default]
    Single,
    /// One file per trading day, `taq_YYYY-MM-DD.csv[.ext]`, holding every symbol.
    PerDay,
    /// One file per symbol and day, `SYMBOL/taq_SYMBOL_YYYY-MM-DD.csv[.ext]`.
    PerSymbolDay,
    /// Real TAQ's shape: per day a trades file `trades_YYYY-MM-DD.csv[.ext]` and a quotes
    /// file `quotes_YYYY-MM-DD.csv[.ext]` from several exchanges; `rows` counts the trades
    /// (see the `taq_split` module for what the quotes hold).
    TaqSplit,
}

impl FromStr for Layout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "single" => Ok(Layout::Single),
            "per-day" | "per_day" => Ok(Layout::PerDay),
            "per-symbol-day" | "per_symbol_day" => Ok(Layout::PerSymbolDay),
            "taq-split" | "taq_split" => Ok(Layout::TaqSplit),
            other => Err(Error::Config {
                key: "layout".into(),
                message: format!(
                    "unknown layout {other:?}; use single, per-day, per-symbol-day or taq-split"
                ),
            }),
        }
    }
}

/// Compression of the generated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// Plain CSV.
    #[default]
    None,
    /// gzip (flate2 on zlib-rs), `.gz`.
    Gzip,
    /// bzip2, `.bz2`.
    Bzip2,
    /// xz (liblzma), `.xz`.
    Xz,
    /// zstd (single-threaded), `.zst`.
    Zstd,
}

impl Codec {
    /// The file-name suffix, including the dot (empty for [`Codec::None`]).
    pub fn extension(self) -> &'static str {
        match self {
            Codec::None => "",
            Codec::Gzip => ".gz",
            Codec::Bzip2 => ".bz2",
            Codec::Xz => ".xz",
            Codec::Zstd => ".zst",
        }
    }

    /// The level used when [`GenConfig::level`] is `None`.
    ///
    /// gzip 6, bzip2 6 and zstd 3 are those libraries' own defaults. xz uses preset 1, not
    /// liblzma's 6: on 500k generated rows preset 6 made the file 24% smaller but ran 10 times
    /// slower (12k against 118k rows/s, release build on the 2-core dev machine), which makes
    /// large sets impractical. For speed, gzip level 1 runs about 4 times faster than 6 for
    /// files 60% larger.
    pub fn default_level(self) -> u32 {
        match self {
            Codec::None => 0,
            Codec::Gzip | Codec::Bzip2 => 6,
            Codec::Xz => 1,
            Codec::Zstd => 3,
        }
    }

    /// The valid level range.
    pub fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Codec::None => 0..=0,
            Codec::Gzip => 0..=9,
            Codec::Bzip2 => 1..=9,
            Codec::Xz => 0..=9,
            Codec::Zstd => 1..=22,
        }
    }
}

impl FromStr for Codec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Codec::None),
            "gz" | "gzip" => Ok(Codec::Gzip),
            "bz2" | "bzip2" => Ok(Codec::Bzip2),
            "xz" => Ok(Codec::Xz),
            "zst" | "zstd" => Ok(Codec::Zstd),
            other => Err(Error::Config {
                key: "compression".into(),
                message: format!("unknown codec {other:?}; use none, gz, bz2, xz or zst"),
            }),
        }
    }
}

/// How the generator writes timestamps. Every form is UTC; the shorter ones truncate the
/// nanosecond time (they never round), so a row's written time never moves past its true one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampFormat {
    /// RFC 3339 with nanoseconds: `2019-01-02T12:53:17.784433219Z`.
    #[default]
    Iso,
    /// RFC 3339 with microseconds: `2019-01-02T12:53:17.784433Z`.
    IsoMicros,
    /// Date, space, time with microseconds and no zone (UTC implied):
    /// `2019-01-02 12:53:17.784433`.
    SpaceMicros,
    /// Integer nanoseconds since the Unix epoch: `1546433597784433219`.
    EpochNs,
    /// Integer milliseconds since the Unix epoch: `1546433597784`.
    EpochMs,
}

impl TimestampFormat {
    /// Every format, in declaration order.
    pub const ALL: [TimestampFormat; 5] = [
        TimestampFormat::Iso,
        TimestampFormat::IsoMicros,
        TimestampFormat::SpaceMicros,
        TimestampFormat::EpochNs,
        TimestampFormat::EpochMs,
    ];

    /// The name `gen-data --ts-format` takes.
    pub fn name(self) -> &'static str {
        match self {
            TimestampFormat::Iso => "iso",
            TimestampFormat::IsoMicros => "iso-micros",
            TimestampFormat::SpaceMicros => "space-micros",
            TimestampFormat::EpochNs => "epoch-ns",
            TimestampFormat::EpochMs => "epoch-ms",
        }
    }

    /// Nanoseconds per written unit of time: a written time is the true one truncated to a
    /// multiple of this (1 for [`TimestampFormat::Iso`] and [`TimestampFormat::EpochNs`]).
    pub fn resolution_ns(self) -> i64 {
        match self {
            TimestampFormat::Iso | TimestampFormat::EpochNs => 1,
            TimestampFormat::IsoMicros | TimestampFormat::SpaceMicros => 1_000,
            TimestampFormat::EpochMs => 1_000_000,
        }
    }
}

impl FromStr for TimestampFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.replace('_', "-");
        TimestampFormat::ALL
            .into_iter()
            .find(|f| f.name() == norm)
            .ok_or_else(|| Error::Config {
                key: "ts_format".into(),
                message: format!(
                    "unknown timestamp format {s:?}; use iso, iso-micros, space-micros, epoch-ns or epoch-ms"
                ),
            })
    }
}

/// The order and names of the columns of the tick files (layouts `single`, `per-day` and
/// `per-symbol-day`; `taq-split` has headers of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnOrder {
    /// tickpipe's canonical names and order, [`TAQ_HEADER`](crate::TAQ_HEADER):
    /// `ts,symbol,price,size,bid,ask,bid_size,ask_size,exchange,conditions`.
    #[default]
    Canonical,
    /// A vendor's export, [`VENDOR_TAQ_HEADER`](crate::VENDOR_TAQ_HEADER): the symbol first,
    /// then the time, and vendor names
    /// (`symbol,date_time,price,volume,bid_price,ask_price,bid_size,ask_size,exchange,sale_condition`),
    /// every one of them a header alias tickpipe's reader recognises, so such a file reads
    /// without a column mapping.
    Vendor,
}

impl ColumnOrder {
    /// The header line (without `\n`).
    pub fn header(self) -> &'static str {
        match self {
            ColumnOrder::Canonical => super::generate::TAQ_HEADER,
            ColumnOrder::Vendor => super::generate::VENDOR_TAQ_HEADER,
        }
    }
}

impl FromStr for ColumnOrder {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "canonical" => Ok(ColumnOrder::Canonical),
            "vendor" => Ok(ColumnOrder::Vendor),
            other => Err(Error::Config {
                key: "column_order".into(),
                message: format!("unknown column order {other:?}; use canonical or vendor"),
            }),
        }
    }
}

/// Which holidays close the market.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Holidays {
    /// NYSE full-day holidays computed by rule ([`nyse_holidays`](crate::nyse_holidays)) for
    /// every year the run covers.
    #[default]
    Nyse,
    /// Exactly these dates.
    Custom(Vec<NaiveDate>),
}

/// A kind of injected, labelled anomaly. Each anomalous row has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// An exact copy of the previous row of that symbol, written right after it (the manifest
    /// names the copy).
    Duplicate,
    /// One of price, size, bid, ask is empty.
    MissingField,
    /// The price is 1.1–1.5 times above or below the walk for one row; bid/ask unchanged.
    PriceSpike,
    /// bid > ask.
    CrossedQuote,
    /// bid == ask.
    LockedQuote,
    /// price is `0.00`.
    ZeroPrice,
    /// price is negative.
    NegativePrice,
    /// size is `0`.
    ZeroSize,
    /// size is negative.
    NegativeSize,
    /// The timestamp is 1 ms–1 s earlier than the previous row of that symbol.
    OutOfOrder,
    /// The row lies outside the session (up to two hours before the open or after the close);
    /// these rows come before the symbol's first or after its last in-session row of the day,
    /// so they never break time order.
    OutsideSession,
    /// The line has 9 or 11 fields instead of 10.
    MalformedFieldCount,
    /// price or size carries non-numeric text, such as `12.34x`.
    MalformedNumber,
}

impl AnomalyKind {
    /// Number of kinds.
    pub const COUNT: usize = 13;

    /// Every kind, in manifest-name order of declaration.
    pub const ALL: [AnomalyKind; AnomalyKind::COUNT] = [
        AnomalyKind::Duplicate,
        AnomalyKind::MissingField,
        AnomalyKind::PriceSpike,
        AnomalyKind::CrossedQuote,
        AnomalyKind::LockedQuote,
        AnomalyKind::ZeroPrice,
        AnomalyKind::NegativePrice,
        AnomalyKind::ZeroSize,
        AnomalyKind::NegativeSize,
        AnomalyKind::OutOfOrder,
        AnomalyKind::OutsideSession,
        AnomalyKind::MalformedFieldCount,
        AnomalyKind::MalformedNumber,
    ];

    /// The snake_case name used in `anomalies.jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Duplicate => "duplicate",
            AnomalyKind::MissingField => "missing_field",
            AnomalyKind::PriceSpike => "price_spike",
            AnomalyKind::CrossedQuote => "crossed_quote",
            AnomalyKind::LockedQuote => "locked_quote",
            AnomalyKind::ZeroPrice => "zero_price",
            AnomalyKind::NegativePrice => "negative_price",
            AnomalyKind::ZeroSize => "zero_size",
            AnomalyKind::NegativeSize => "negative_size",
            AnomalyKind::OutOfOrder => "out_of_order",
            AnomalyKind::OutsideSession => "outside_session",
            AnomalyKind::MalformedFieldCount => "malformed_field_count",
            AnomalyKind::MalformedNumber => "malformed_number",
        }
    }

    /// Index of this kind in [`AnomalyKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AnomalyKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.replace('-', "_");
        AnomalyKind::ALL
            .into_iter()
            .find(|k| k.name() == norm)
            .ok_or_else(|| Error::Config {
                key: "anomalies".into(),
                message: format!("unknown anomaly kind {s:?}"),
            })
    }
}

/// Per-kind anomaly rates, each a fraction of all rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyRates {
    rates: [f64; AnomalyKind::COUNT],
}

impl AnomalyRates {
    /// The default rate of each kind: 0.1% of rows, so a default run has about 1.3% anomalous
    /// rows, enough to score a cleaner on a 100k-row sample and small enough to look like data.
    pub const DEFAULT_RATE: f64 = 0.001;

    /// The same rate for every kind.
    pub fn uniform(rate: f64) -> Self {
        AnomalyRates {
            rates: [rate; AnomalyKind::COUNT],
        }
    }

    /// No anomalies at all.
    pub fn none() -> Self {
        Self::uniform(0.0)
    }

    /// The rate of `kind`.
    pub fn get(&self, kind: AnomalyKind) -> f64 {
        self.rates[kind.index()]
    }

    /// Sets the rate of `kind`.
    pub fn set(&mut self, kind: AnomalyKind, rate: f64) -> &mut Self {
        self.rates[kind.index()] = rate;
        self
    }

    /// The sum over all kinds.
    pub fn total(&self) -> f64 {
        self.rates.iter().sum()
    }
}

impl Default for AnomalyRates {
    fn default() -> Self {
        Self::uniform(Self::DEFAULT_RATE)
    }
}

/// Everything that decides the generated bytes. Same config, same bytes.
///
/// ```
/// use pipeline_io::{GenConfig, Layout, Codec};
/// let cfg = GenConfig { rows: 10_000, layout: Layout::PerDay, compression: Codec::Gzip, ..GenConfig::default() };
/// assert_eq!(cfg.seed, 42);
/// cfg.validate()?;
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// PRNG seed. Default 42.
    pub seed: u64,
    /// Number of symbols: AAPL, MSFT, … then generated names (`ZAAA`, `ZAAB`, …). Default 5.
    pub symbols: usize,
    /// Calendar years covered from `start_date`. Default 5.
    pub years: u32,
    /// Keep only the first this many trading days (for small samples). Default `None`: all.
    pub days: Option<u32>,
    /// First calendar day. Default 2019-01-02.
    pub start_date: NaiveDate,
    /// Total rows (anomalies included), exactly. Default 1,000,000.
    pub rows: u64,
    /// File layout. Default [`Layout::Single`].
    pub layout: Layout,
    /// Compression. Default [`Codec::None`].
    pub compression: Codec,
    /// Compression level; `None` uses [`Codec::default_level`]. Default `None`.
    pub level: Option<u32>,
    /// Market holidays. Default [`Holidays::Nyse`].
    pub holidays: Holidays,
    /// Anomaly rates. Default [`AnomalyRates::DEFAULT_RATE`] for every kind.
    pub anomalies: AnomalyRates,
    /// Exchange time zone. Default America/New_York.
    pub timezone: Tz,
    /// Session open, local time. Default 09:30.
    pub session_open: NaiveTime,
    /// Session close (exclusive), local time. Default 16:00.
    pub session_close: NaiveTime,
    /// `taq-split` layout: quotes per trade on a normal symbol-day (sparse days get a tenth,
    /// no-quote days none). Default [`QUOTES_PER_TRADE`](crate::QUOTES_PER_TRADE), 3.
    pub quotes_per_trade: f64,
    /// How timestamps are written (every layout). Default [`TimestampFormat::Iso`].
    pub ts_format: TimestampFormat,
    /// Zipf exponent `S` of the symbols' shares: symbol `i` (0-based) gets rows in proportion
    /// to `1/(i+1)^S` on every day, so `0` is uniform and `1` gives AAPL about 28% and the 20th
    /// of 20 symbols about 1.4%. Default [`GenConfig::DEFAULT_SYMBOL_SKEW`], 0.5 (1/√rank).
    /// Every symbol gets at least one row on each day that has at least one row per symbol.
    pub symbol_skew: f64,
    /// Column order and header names of the tick files. Default [`ColumnOrder::Canonical`];
    /// layout `taq-split` takes only that.
    pub column_order: ColumnOrder,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            symbols: 5,
            years: 5,
            days: None,
            start_date: NaiveDate::from_ymd_opt(2019, 1, 2).unwrap_or_default(),
            rows: 1_000_000,
            layout: Layout::Single,
            compression: Codec::None,
            level: None,
            holidays: Holidays::Nyse,
            anomalies: AnomalyRates::default(),
            timezone: chrono_tz::America::New_York,
            session_open: NaiveTime::from_hms_opt(9, 30, 0).unwrap_or_default(),
            session_close: NaiveTime::from_hms_opt(16, 0, 0).unwrap_or_default(),
            quotes_per_trade: super::taq_split::QUOTES_PER_TRADE as f64,
            ts_format: TimestampFormat::Iso,
            symbol_skew: Self::DEFAULT_SYMBOL_SKEW,
            column_order: ColumnOrder::Canonical,
        }
    }
}

impl GenConfig {
    /// The largest supported number of symbols: the named list plus `Z` and three letters.
    pub const MAX_SYMBOLS: usize = super::market::NAMED_SYMBOLS.len() + 26 * 26 * 26;

    /// The default [`GenConfig::symbol_skew`]: 0.5, shares in proportion to 1/√rank, the
    /// generator's split before the skew became configurable (kept so default output does not
    /// change).
    pub const DEFAULT_SYMBOL_SKEW: f64 = 0.5;

    /// The largest accepted [`GenConfig::symbol_skew`]: at 10 the second symbol already gets
    /// a thousandth of the first one's rows.
    pub const MAX_SYMBOL_SKEW: f64 = 10.0;

    /// Checks every field; the error names the offending key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, message: String| {
            Err(Error::Config {
                key: key.into(),
                message,
            })
        };
        if self.symbols == 0 || self.symbols > Self::MAX_SYMBOLS {
            return bad(
                "symbols",
                format!("must be 1..={}, got {}", Self::MAX_SYMBOLS, self.symbols),
            );
        }
        if self.years == 0 || self.years > 100 {
            return bad("years", format!("must be 1..=100, got {}", self.years));
        }
        if self.days == Some(0) {
            return bad("days", "must be at least 1".into());
        }
        if !(self.quotes_per_trade >= 0.0 && self.quotes_per_trade <= 1000.0) {
            return bad(
                "quotes_per_trade",
                format!("must be 0..=1000, got {}", self.quotes_per_trade),
            );
        }
        if !(0.0..=Self::MAX_SYMBOL_SKEW).contains(&self.symbol_skew) {
            return bad(
                "symbol_skew",
                format!(
                    "must be 0..={}, got {}",
                    Self::MAX_SYMBOL_SKEW,
                    self.symbol_skew
                ),
            );
        }
        if self.layout == Layout::TaqSplit && self.column_order != ColumnOrder::Canonical {
            return bad(
                "column_order",
                "layout taq-split writes its own trades and quotes headers; use canonical".into(),
            );
        }
        if !(1971..=9000).contains(&chrono::Datelike::year(&self.start_date)) {
            return bad("start_date", format!("{} is out of range", self.start_date));
        }
        if self.session_open >= self.session_close {
            return bad(
                "session_close",
                format!("{} is not after {}", self.session_close, self.session_open),
            );
        }
        if let Some(level) = self.level
            && !self.compression.levels().contains(&level)
        {
            return bad(
                "level",
                format!(
                    "{level} is outside {:?} for {:?}",
                    self.compression.levels(),
                    self.compression
                ),
            );
        }
        for kind in AnomalyKind::ALL {
            let r = self.anomalies.get(kind);
            if !(0.0..=1.0).contains(&r) {
                return bad(
                    &format!("anomalies.{}", kind.name()),
                    format!("rate must be in [0, 1], got {r}"),
                );
            }
        }
        if self.anomalies.total() > 0.5 {
            return bad(
                "anomalies",
                format!(
                    "rates sum to {}, above 0.5: most rows would be anomalies",
                    self.anomalies.total()
                ),
            );
        }
        Ok(())
    }
}

/// What a generation run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenSummary {
    /// Data rows written (header lines excluded, anomalies included).
    pub rows: u64,
    /// Bytes of data files written, after compression (the manifest is not counted).
    pub bytes: u64,
    /// Data files written (files that would hold no rows are not created, except the one file
    /// of [`Layout::Single`]).
    pub files: u64,
    /// Injected anomalies per kind, every kind listed.
    pub anomalies_by_kind: BTreeMap<AnomalyKind, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!("per-day".parse::<Layout>().unwrap(), Layout::PerDay);
        assert_eq!("zst".parse::<Codec>().unwrap(), Codec::Zstd);
        assert!("tar".parse::<Codec>().is_err());
        for k in AnomalyKind::ALL {
            assert_eq!(k.name().parse::<AnomalyKind>().unwrap(), k);
            assert_eq!(AnomalyKind::ALL[k.index()], k);
        }
        assert_eq!(
            "out-of-order".parse::<AnomalyKind>().unwrap(),
            AnomalyKind::OutOfOrder
        );
        for f in TimestampFormat::ALL {
            assert_eq!(f.name().parse::<TimestampFormat>().unwrap(), f);
        }
        assert_eq!(
            "epoch_ms".parse::<TimestampFormat>().unwrap(),
            TimestampFormat::EpochMs
        );
        let err = "rfc2822".parse::<TimestampFormat>().unwrap_err();
        assert!(err.to_string().contains("ts_format"), "{err}");
        assert_eq!(
            "vendor".parse::<ColumnOrder>().unwrap(),
            ColumnOrder::Vendor
        );
        assert!("reversed".parse::<ColumnOrder>().is_err());
    }

    #[test]
    fn validate_checks_the_variety_options() {
        let with = |symbol_skew: f64, layout: Layout, column_order: ColumnOrder| GenConfig {
            symbol_skew,
            layout,
            column_order,
            ..GenConfig::default()
        };
        let key = |cfg: GenConfig| cfg.validate().unwrap_err().to_string();
        with(0.0, Layout::Single, ColumnOrder::Vendor)
            .validate()
            .unwrap();
        with(10.0, Layout::TaqSplit, ColumnOrder::Canonical)
            .validate()
            .unwrap();
        for bad in [-0.1, 10.5, f64::NAN, f64::INFINITY] {
            let err = key(with(bad, Layout::Single, ColumnOrder::Canonical));
            assert!(err.contains("symbol_skew"), "{err}");
        }
        let err = key(with(0.5, Layout::TaqSplit, ColumnOrder::Vendor));
        assert!(err.contains("column_order"), "{err}");
    }

    #[test]
    fn validate_names_the_key() {
        let mut cfg = GenConfig::default();
        cfg.validate().unwrap();
        cfg.anomalies.set(AnomalyKind::ZeroSize, 2.0);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("anomalies.zero_size"), "{err}");
        let cfg = GenConfig {
            symbols: 0,
            ..GenConfig::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("symbols"));
        let cfg = GenConfig {
            compression: Codec::Gzip,
            level: Some(12),
            ..GenConfig::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("level"));
    }

    #[test]
    fn summary_serialises_kinds_by_name() {
        let mut by_kind = BTreeMap::new();
        by_kind.insert(AnomalyKind::OutOfOrder, 3);
        let s = GenSummary {
            rows: 1,
            bytes: 2,
            files: 1,
            anomalies_by_kind: by_kind,
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"out_of_order\":3"), "{json}");
    }
}
