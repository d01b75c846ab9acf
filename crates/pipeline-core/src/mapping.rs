//! Column mapping: which input column feeds which canonical column.
//!
//! Recognition is case-insensitive and ignores `_`, `-`, `.` and spaces, so `Trade_Price`,
//! `tradeprice` and `TRADE PRICE` all map to `price`. Explicit overrides (config `[input.columns]`
//! or `--columns ts=Time,price=Px`) win over recognition.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::schema::Canonical;

/// Normalises a header for matching: lower case, without `_`, `-`, `.`, spaces and quotes.
///
/// ```
/// assert_eq!(pipeline_core::normalize_header(" Trade_Price "), "tradeprice");
/// ```
pub fn normalize_header(h: &str) -> String {
    h.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' ' | '"' | '\t' | '\u{feff}'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Where `ts` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsSource {
    /// One column holding the timestamp (or time of day, with the date from config/file name).
    Column(usize),
    /// A date column and a time-of-day column, as in TAQ's `DATE`, `TIME_M`.
    DateTime {
        /// Index of the date column.
        date: usize,
        /// Index of the time-of-day column.
        time: usize,
    },
}

/// The result of matching a header row against the canonical schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedColumns {
    /// Where the timestamp comes from, if anywhere.
    pub ts: Option<TsSource>,
    /// Canonical columns other than `ts`, with their input column index, in schema order.
    pub columns: Vec<(Canonical, usize)>,
    /// Input columns that matched nothing; they are passed through under their own names.
    pub unmapped: Vec<usize>,
}

impl ResolvedColumns {
    /// The input index feeding canonical column `c` (not `ts`).
    pub fn index_of(&self, c: Canonical) -> Option<usize> {
        self.columns.iter().find(|(k, _)| *k == c).map(|(_, i)| *i)
    }

    /// Canonical columns present, `ts` included.
    pub fn canonical(&self) -> Vec<Canonical> {
        let mut v: Vec<Canonical> = self.ts.iter().map(|_| Canonical::Ts).collect();
        v.extend(self.columns.iter().map(|(c, _)| *c));
        v
    }
}

/// Maps input headers to canonical columns: recognition plus user overrides.
///
/// ```
/// use pipeline_core::{Canonical, ColumnMapping, TsSource};
/// let headers = ["DATE", "TIME_M", "SYM_ROOT", "PRICE", "SIZE", "EX"];
/// let r = ColumnMapping::default().resolve(&headers)?;
/// assert_eq!(r.ts, Some(TsSource::DateTime { date: 0, time: 1 }));
/// assert_eq!(r.index_of(Canonical::Symbol), Some(2));
/// assert_eq!(r.index_of(Canonical::Exchange), Some(5));
///
/// let custom = ColumnMapping::from_pairs([("price", "Px"), ("ts", "When")])?;
/// let r = custom.resolve(&["When", "Px", "Qty"])?;
/// assert_eq!(r.index_of(Canonical::Price), Some(1));
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMapping {
    overrides: BTreeMap<Canonical, String>,
    date: Option<String>,
    time: Option<String>,
}

/// Order in which canonical columns claim headers: bar fields before `size` so that `volume`
/// means bar volume in a bar file and trade size elsewhere.
const CLAIM_ORDER: [Canonical; 18] = [
    Canonical::Symbol,
    Canonical::Open,
    Canonical::High,
    Canonical::Low,
    Canonical::Close,
    Canonical::Volume,
    Canonical::Price,
    Canonical::Size,
    Canonical::Bid,
    Canonical::Ask,
    Canonical::BidSize,
    Canonical::AskSize,
    Canonical::Exchange,
    Canonical::Conditions,
    Canonical::EventType,
    Canonical::OrderId,
    Canonical::Side,
    Canonical::Id,
];

impl ColumnMapping {
    /// Builds a mapping from `(canonical name, input header)` pairs. Besides the canonical
    /// names, the keys `date` and `time` name separate date and time-of-day columns.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut m = ColumnMapping::default();
        for (k, v) in pairs {
            let key = k.trim().to_ascii_lowercase();
            let v = v.trim().to_string();
            match key.as_str() {
                "date" => m.date = Some(v),
                "time" => m.time = Some(v),
                _ => {
                    let c = Canonical::from_name(&key).ok_or_else(|| {
                        Error::config(
                            format!("input.columns.{key}"),
                            format!(
                                "unknown canonical column; expected one of: date, time, {}",
                                Canonical::ALL.map(|c| c.name()).join(", ")
                            ),
                        )
                    })?;
                    m.overrides.insert(c, v);
                }
            }
        }
        Ok(m)
    }

    /// Parses the CLI form `ts=Time,price=Px`.
    pub fn parse_cli(spec: &str) -> Result<Self> {
        let mut pairs = Vec::new();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                Error::Usage(format!(
                    "--columns: `{part}` is not of the form canonical=Header (e.g. ts=Time)"
                ))
            })?;
            pairs.push((k, v));
        }
        Self::from_pairs(pairs)
    }

    /// True when no override is set.
    pub fn is_empty(&self) -> bool {
        self.overrides.is_empty() && self.date.is_none() && self.time.is_none()
    }

    /// Matches `headers` (in file order).
    pub fn resolve<S: AsRef<str>>(&self, headers: &[S]) -> Result<ResolvedColumns> {
        let norm: Vec<String> = headers
            .iter()
            .map(|h| normalize_header(h.as_ref()))
            .collect();
        let mut claimed = vec![false; headers.len()];
        let find = |name: &str, claimed: &[bool]| -> Option<usize> {
            // Aliases are written normalized already: only a user's name needs normalizing
            // (a copy per alias and header was most of the allocations of a plan).
            let plain = name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            let n = if plain {
                std::borrow::Cow::Borrowed(name)
            } else {
                std::borrow::Cow::Owned(normalize_header(name))
            };
            (0..norm.len()).find(|&i| !claimed[i] && norm[i] == n)
        };
        let must_find = |what: &str, name: &str, claimed: &[bool]| -> Result<usize> {
            find(name, claimed).ok_or_else(|| {
                Error::Schema(format!(
                    "column mapping {what}={name}: no such column; the input has: {}",
                    headers
                        .iter()
                        .map(|h| h.as_ref())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
        };

        // 1. Explicit overrides.
        let mut columns: Vec<(Canonical, usize)> = Vec::new();
        let mut ts = None;
        if let (Some(d), Some(t)) = (&self.date, &self.time) {
            let date = must_find("date", d, &claimed)?;
            claimed[date] = true;
            let time = must_find("time", t, &claimed)?;
            claimed[time] = true;
            ts = Some(TsSource::DateTime { date, time });
        }
        for (c, name) in &self.overrides {
            let i = must_find(c.name(), name, &claimed)?;
            claimed[i] = true;
            if *c == Canonical::Ts {
                ts = Some(TsSource::Column(i));
            } else {
                columns.push((*c, i));
            }
        }

        // 2. Timestamp recognition: a date column plus a time column, else one ts column.
        if ts.is_none() {
            let date = ["date", "tradedate", "day"]
                .iter()
                .find_map(|a| find(a, &claimed));
            let time = ["timem", "time", "timeofday", "tradetime"]
                .iter()
                .find_map(|a| find(a, &claimed));
            if let (Some(date), Some(time)) = (date, time) {
                claimed[date] = true;
                claimed[time] = true;
                ts = Some(TsSource::DateTime { date, time });
            } else if let Some(i) = Canonical::Ts
                .aliases()
                .iter()
                .find_map(|a| find(a, &claimed))
            {
                claimed[i] = true;
                ts = Some(TsSource::Column(i));
            }
        }

        // 3. Everything else, in claim order; bar volume only in a bar file.
        for c in CLAIM_ORDER {
            if columns.iter().any(|(k, _)| *k == c) {
                continue;
            }
            if c == Canonical::Volume {
                let bars = [Canonical::Open, Canonical::Close]
                    .iter()
                    .all(|b| columns.iter().any(|(k, _)| k == b));
                if !bars {
                    continue;
                }
            }
            if let Some(i) = c.aliases().iter().find_map(|a| find(a, &claimed)) {
                claimed[i] = true;
                columns.push((c, i));
            }
        }
        columns.sort_by_key(|(c, _)| *c);
        let unmapped = (0..headers.len()).filter(|&i| !claimed[i]).collect();
        Ok(ResolvedColumns {
            ts,
            columns,
            unmapped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_common_vendor_headers() {
        let h = [
            "exchange",
            "symbol",
            "timestamp",
            "local_timestamp",
            "id",
            "side",
            "price",
            "amount",
        ];
        let r = ColumnMapping::default().resolve(&h).unwrap();
        assert_eq!(r.ts, Some(TsSource::Column(2)));
        assert_eq!(r.index_of(Canonical::Size), Some(7));
        assert_eq!(r.index_of(Canonical::Side), Some(5));
        assert_eq!(r.index_of(Canonical::Exchange), Some(0));
        assert_eq!(r.index_of(Canonical::Id), Some(4));
        assert_eq!(r.unmapped, vec![3]);
    }

    #[test]
    fn bid_ask_variants_and_case() {
        let h = [
            "Time", "Sym", "BidPx", "Offer", "Bid_Size", "ASK_QTY", "Last", "Qty",
        ];
        let r = ColumnMapping::default().resolve(&h).unwrap();
        assert_eq!(r.index_of(Canonical::Bid), Some(2));
        assert_eq!(r.index_of(Canonical::Ask), Some(3));
        assert_eq!(r.index_of(Canonical::BidSize), Some(4));
        assert_eq!(r.index_of(Canonical::AskSize), Some(5));
        assert_eq!(r.index_of(Canonical::Price), Some(6));
        assert_eq!(r.index_of(Canonical::Size), Some(7));
    }

    #[test]
    fn volume_is_size_unless_bars() {
        let trades = ColumnMapping::default()
            .resolve(&["ts", "price", "volume"])
            .unwrap();
        assert_eq!(trades.index_of(Canonical::Size), Some(2));
        let bars = ColumnMapping::default()
            .resolve(&["ts", "open", "high", "low", "close", "volume"])
            .unwrap();
        assert_eq!(bars.index_of(Canonical::Volume), Some(5));
        assert_eq!(bars.index_of(Canonical::Size), None);
    }

    #[test]
    fn overrides_win_and_bad_ones_are_named() {
        let m = ColumnMapping::parse_cli("ts=When,price=Px").unwrap();
        let r = m.resolve(&["price", "Px", "When"]).unwrap();
        assert_eq!(r.ts, Some(TsSource::Column(2)));
        assert_eq!(r.index_of(Canonical::Price), Some(1));
        let err = m.resolve(&["a", "b"]).unwrap_err().to_string();
        assert!(err.contains("no such column"), "{err}");
        let err = ColumnMapping::parse_cli("prise=Px")
            .unwrap_err()
            .to_string();
        assert!(err.contains("input.columns.prise"), "{err}");
        assert!(ColumnMapping::parse_cli("price").is_err());
    }

    #[test]
    fn explicit_date_and_time() {
        let m = ColumnMapping::from_pairs([("date", "D"), ("time", "T")]).unwrap();
        let r = m.resolve(&["T", "D", "px"]).unwrap();
        assert_eq!(r.ts, Some(TsSource::DateTime { date: 1, time: 0 }));
    }
}
