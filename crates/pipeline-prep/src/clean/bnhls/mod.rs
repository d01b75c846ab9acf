//! The trade and quote cleaning rules of Barndorff-Nielsen, Hansen, Lunde & Shephard (2009),
//! "Realized kernels in practice: trades and quotes", Econometrics Journal 12(3), C1–C32,
//! section 3 ("Data cleaning"), named as in the paper:
//!
//! | rule | definition (paper) | stage |
//! |---|---|---|
//! | P1 | delete entries outside exchange hours (default 09:30–16:00 America/New_York) | [`BnhlsRowRules`] |
//! | P2 | delete entries with a bid, ask or transaction price equal to zero | [`BnhlsRowRules`] |
//! | P3 | retain entries from a single exchange: a configured list, or the symbol-day's most active exchange | [`BnhlsRowRules`] / [`DayExchange`] |
//! | T1 | delete corrected trades | [`BnhlsRowRules`] |
//! | T2 | delete trades with abnormal sale conditions (codes other than `@`, `E`, `F`, empty) | [`BnhlsRowRules`] |
//! | T3 | merge same-timestamp trades: median price, summed size | [`SameTimestamp`] |
//! | T4 | delete trades above ask + spread or below bid − spread | [`BnhlsRowRules`] |
//! | Q1 | merge same-timestamp quotes: median bid and median ask | [`SameTimestamp`] |
//! | Q2 | delete quotes with a negative spread (ask < bid) | [`BnhlsRowRules`] |
//! | Q3 | delete quotes whose spread exceeds 50 × the symbol-day's median spread | [`DaySpread`] |
//! | Q4 | delete quotes whose mid deviates from the centred rolling median of 50 observations (excluding itself) by more than 10 mean absolute deviations | [`MidQuoteDeviation`] |
//!
//! A row is a *trade* when its `price` is non-null and a *quote* when `bid` and `ask` are
//! non-null; a TAQ row can be both. Rules whose columns are absent are no-ops.

mod day_exchange;
mod day_spread;
mod q4;
mod row;
mod same_ts;

use serde::{Deserialize, Serialize};

pub use day_exchange::DayExchange;
pub use day_spread::DaySpread;
pub use q4::MidQuoteDeviation;
pub use row::BnhlsRowRules;
pub use same_ts::SameTimestamp;

/// The rule names, in the paper's order.
pub const BNHLS_RULES: [&str; 11] = [
    "P1", "P2", "P3", "T1", "T2", "T3", "T4", "Q1", "Q2", "Q3", "Q4",
];

/// Configuration of the BN-HLS rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BnhlsConfig {
    /// Enabled rules by name (`P1`…`Q4`). Default: none.
    pub rules: Vec<String>,
    /// P1 session open, local `HH:MM`. Default 09:30.
    pub session_open: String,
    /// P1 session close (exclusive), local `HH:MM`. Default 16:00.
    pub session_close: String,
    /// Zone of the session hours and of the Q3 trading day. Default America/New_York.
    pub timezone: String,
    /// P3: exchanges to keep (values of `exchange`). Empty (the default) means the paper's
    /// rule, the symbol-day's most active exchange ([`DayExchange`], which holds one
    /// symbol-day of rows); a list keeps the rule row-local ([`BnhlsRowRules`]).
    pub exchanges: Vec<String>,
    /// T1: column holding the correction indicator (non-zero = corrected). Default `corr`.
    pub correction_column: String,
    /// T1: condition codes that mark corrected trades. Default empty.
    pub corrected_conditions: Vec<String>,
    /// T2: allowed sale-condition codes (`conditions` split on spaces and commas; every code
    /// must be allowed; null or empty is allowed). Default `@`, `E`, `F`.
    pub allowed_conditions: Vec<String>,
    /// Q3 multiple of the day's median spread. Default 50 (the paper's).
    pub q3_multiple: f64,
    /// Q4 window (observations, half before and half after). Default 50 (the paper's).
    pub q4_window: usize,
    /// Q4 multiple of the mean absolute deviation. Default 10 (the paper's).
    pub q4_multiple: f64,
}

impl Default for BnhlsConfig {
    fn default() -> Self {
        BnhlsConfig {
            rules: Vec::new(),
            session_open: "09:30".into(),
            session_close: "16:00".into(),
            timezone: "America/New_York".into(),
            exchanges: Vec::new(),
            correction_column: "corr".into(),
            corrected_conditions: Vec::new(),
            allowed_conditions: vec!["@".into(), "E".into(), "F".into()],
            q3_multiple: 50.0,
            q4_window: 50,
            q4_multiple: 10.0,
        }
    }
}

impl BnhlsConfig {
    /// Whether `rule` is enabled.
    pub fn has(&self, rule: &str) -> bool {
        self.rules.iter().any(|r| r == rule)
    }
}
