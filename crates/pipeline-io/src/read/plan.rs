//! The decode plan of a delimited file: delimiter, header, vendor layout, which input field
//! feeds which canonical column with which parser, and the output schema. Built once per file
//! from a sample, then shared by every decoder thread.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{Canonical, ColumnMapping, DatasetKind, Error, LINE_COLUMN, Result, TsSource};
use serde::{Deserialize, Serialize};

use super::options::ReadOptions;
use super::record::{Span, Split, is_blank, split_record, unescape};
use super::sniff::{sniff_delimiter, sniff_header};
use super::timestamp::{EpochUnit, TsFormat, Zone, date_from_file_name, detect_format};

/// How a price column is scaled on the way in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) enum Scale {
    One,
    Mul(#[serde(with = "f64_bits")] f64),
    /// Division by an integer power such as 10,000: exact for LOBSTER's fixed-point prices.
    Div(#[serde(with = "f64_bits")] f64),
}

/// An `f64` kept through serialisation as its bits, so that a plan read back is the plan
/// that was built, to the last bit (a decimal form may not parse back exactly).
mod f64_bits {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(v.to_bits())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        u64::deserialize(d).map(f64::from_bits)
    }
}

impl Scale {
    fn from_factor(f: f64) -> Scale {
        if f == 1.0 {
            return Scale::One;
        }
        let inv = 1.0 / f;
        if inv >= 2.0 && (inv - inv.round()).abs() < 1e-9 * inv {
            Scale::Div(inv.round())
        } else {
            Scale::Mul(f)
        }
    }
}

/// The parser and Arrow type of an output column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Ts,
    F64(Scale),
    I64,
    I8,
    Side,
    Dict,
    Utf8,
}

/// Where an output column's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Input {
    Field(usize),
    DateTime(usize, usize),
    Const(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OutCol {
    pub name: String,
    pub kind: Kind,
    pub input: Input,
}

/// A vendor file layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorLayout {
    /// Any delimited file: columns recognised from the header (or `input.names`).
    Generic,
    /// LOBSTER message file: time (s after midnight, New York), type, order id, size,
    /// price × 10,000, direction; no header.
    LobsterMessage,
    /// LOBSTER order-book file: ask price, ask size, bid price, bid size per level; no header,
    /// no timestamps (row k is the book after message k).
    LobsterOrderbook,
    /// HistData ticks: `YYYYMMDD HHMMSSfff` (fixed UTC-5), bid, ask, volume; no header.
    HistData,
    /// LEAN ticks: ms after midnight (UTC, date from the file name), bid, ask; no header.
    Lean,
    /// Tardis.dev CSV (`exchange,symbol,timestamp,local_timestamp,…`): µs epoch times in UTC;
    /// trades' `side` is the taker's (the aggressor), `id` the venue's trade id.
    Tardis,
}

impl VendorLayout {
    /// The zone the layout's venue keeps its clock in, for time features (`None`: the layout
    /// does not say): NASDAQ's America/New_York for LOBSTER; UTC for FX quotes (HistData,
    /// LEAN/OANDA: the FX market runs round the clock, and LEAN's market-hours database
    /// keeps OANDA in UTC) and for crypto (Tardis).
    pub fn exchange_zone(self) -> Option<&'static str> {
        match self {
            VendorLayout::LobsterMessage | VendorLayout::LobsterOrderbook => {
                Some("America/New_York")
            }
            VendorLayout::HistData | VendorLayout::Lean | VendorLayout::Tardis => Some("UTC"),
            VendorLayout::Generic => None,
        }
    }
}

/// How a delimited file is decoded (see the module docs). Serialisable so that a run can
/// keep the plans it built while describing its inputs for their opening (`PlanMemo`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CsvPlan {
    pub(crate) file: String,
    pub(crate) delimiter: u8,
    pub(crate) has_header: bool,
    pub(crate) names: Vec<String>,
    pub(crate) outs: Vec<OutCol>,
    pub(crate) ts_format: TsFormat,
    pub(crate) zone: Zone,
    /// Not serialised: it follows from `outs` ([`CsvPlan::restore_schemas`]), and its JSON
    /// was most of a kept plan's bytes and of the time to read it back.
    #[serde(skip, default = "no_schema")]
    pub(crate) schema: SchemaRef,
    #[serde(skip, default = "no_schema")]
    data_schema: SchemaRef,
    pub(crate) strict: bool,
    /// Longest record decoded; longer ones are quarantined as `line_too_long`.
    pub(crate) max_line_bytes: usize,
    pub(crate) layout: VendorLayout,
    #[serde(with = "f64_bits")]
    pub(crate) mean_row_bytes: f64,
    pub(crate) kind: Option<DatasetKind>,
    /// Numbers are written with a decimal comma (`510,12`): a `;`- or tab-separated file.
    pub(crate) decimal_comma: bool,
    /// The symbols of the sample: the constant symbol, or up to 100 distinct values of the
    /// symbol column.
    symbols: Vec<String>,
}

impl CsvPlan {
    /// The output schema, with the `_line` column last.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The output schema without `_line`.
    pub(crate) fn data_schema(&self) -> SchemaRef {
        self.data_schema.clone()
    }

    /// The field delimiter.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Whether the first record is a header.
    pub fn has_header(&self) -> bool {
        self.has_header
    }

    /// The vendor layout.
    pub fn layout(&self) -> VendorLayout {
        self.layout
    }

    /// The kind of records, from the canonical columns present.
    pub fn dataset_kind(&self) -> Option<DatasetKind> {
        self.kind
    }

    /// The timestamp format (meaningful when the schema has `ts`).
    pub fn ts_format(&self) -> TsFormat {
        self.ts_format
    }

    /// Mean bytes per record in the sample (used to size byte blocks).
    pub fn mean_row_bytes(&self) -> f64 {
        self.mean_row_bytes
    }

    /// Whether numbers use a decimal comma (`510,12`), detected in `;`/tab-separated files.
    pub fn decimal_comma(&self) -> bool {
        self.decimal_comma
    }

    /// The symbols seen in the sample (the file's constant symbol, or up to 100 distinct
    /// values of its symbol column).
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// Sets the schemas from the columns (after deserialising, which leaves them out).
    pub(crate) fn restore_schemas(&mut self) {
        (self.schema, self.data_schema) = schemas_of(&self.outs);
    }

    /// Builds the plan of `file` from a UTF-8 `sample` of its text (BOM removed);
    /// `sample_is_all` says the sample is the whole file (so its last record is complete).
    pub fn build(
        sample: &[u8],
        sample_is_all: bool,
        file: &str,
        opts: &ReadOptions,
    ) -> Result<CsvPlan> {
        let cfg = &opts.input;
        let delimiter = match &cfg.delimiter {
            Some(d) => {
                let c = d.as_bytes();
                if c.len() != 1 {
                    return Err(Error::config(
                        "input.delimiter",
                        "must be one ASCII character",
                    ));
                }
                c[0]
            }
            None => sniff_delimiter(sample),
        };
        let split = sample_records(sample, sample_is_all, delimiter, 1000);
        let mean_row_bytes = split.mean_bytes;
        let records = split.rows();
        let base = base_name(file);
        let layout = match cfg.layout.as_str() {
            "generic" => VendorLayout::Generic,
            "lobster" => {
                if base.contains("orderbook") {
                    VendorLayout::LobsterOrderbook
                } else {
                    VendorLayout::LobsterMessage
                }
            }
            "histdata" => VendorLayout::HistData,
            "lean" => VendorLayout::Lean,
            _ => detect_layout(&base, &records),
        };
        let has_header = match (cfg.has_header, layout) {
            (Some(h), _) => h,
            (None, VendorLayout::Generic) => sniff_header(&records),
            (None, VendorLayout::Tardis) => true,
            (None, _) => false,
        };
        let nfields = records.first().map_or(0, |r| r.len());
        let layout_names: Vec<String> = match layout {
            VendorLayout::LobsterMessage => {
                ["time", "type", "order_id", "size", "price", "direction"]
                    .map(String::from)
                    .to_vec()
            }
            VendorLayout::LobsterOrderbook => (1..=nfields.div_ceil(4).max(1))
                .flat_map(|i| {
                    [
                        format!("ask_price_{i}"),
                        format!("ask_size_{i}"),
                        format!("bid_price_{i}"),
                        format!("bid_size_{i}"),
                    ]
                })
                .take(nfields.max(4))
                .collect(),
            VendorLayout::HistData => ["ts", "bid", "ask", "tick_volume"]
                .map(String::from)
                .to_vec(),
            VendorLayout::Lean => ["time", "bid", "ask"].map(String::from).to_vec(),
            VendorLayout::Generic | VendorLayout::Tardis => Vec::new(),
        };
        let names: Vec<String> = if has_header {
            records
                .first()
                .map(|r| {
                    r.iter()
                        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
                        .collect()
                })
                .unwrap_or_default()
        } else if !cfg.names.is_empty() {
            cfg.names.clone()
        } else if !layout_names.is_empty() {
            let mut n = layout_names;
            // HistData files exist with and without the (always zero) volume column.
            if layout == VendorLayout::HistData && nfields == 3 {
                n.truncate(3);
            }
            n
        } else {
            (1..=nfields).map(|i| format!("column_{i}")).collect()
        };
        if names.is_empty() {
            return Err(Error::Schema(format!("{file}: no columns found")));
        }
        let data: &[&[Cow<str>]] = if has_header && !records.is_empty() {
            &records[1..]
        } else {
            &records
        };

        // Zone, date, scale: config first, then the layout's defaults.
        let zone_name = if cfg.timezone.trim().eq_ignore_ascii_case("utc") {
            match layout {
                VendorLayout::LobsterMessage => "America/New_York",
                VendorLayout::HistData => "-05:00",
                _ => "UTC",
            }
        } else {
            cfg.timezone.as_str()
        };
        let zone = Zone::parse(zone_name)?;
        let date = match &cfg.date {
            Some(d) => Some(
                super::timestamp::parse_date(d.as_bytes())
                    .ok_or_else(|| Error::config("input.date", format!("`{d}` is not a date")))?,
            ),
            None => date_from_file_name(&base),
        };
        let unit = match &cfg.epoch_unit {
            Some(u) => Some(
                EpochUnit::parse(u)
                    .ok_or_else(|| Error::config("input.epoch_unit", "must be s, ms, us or ns"))?,
            ),
            None => None,
        };
        let lobster = matches!(
            layout,
            VendorLayout::LobsterMessage | VendorLayout::LobsterOrderbook
        );
        let scale = Scale::from_factor(if cfg.price_scale == 1.0 && lobster {
            0.0001
        } else {
            cfg.price_scale
        });

        let pairs: Vec<(&str, &str)> = cfg
            .columns
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mapping = ColumnMapping::from_pairs(pairs)?;
        let mut resolved = mapping.resolve(&names)?;
        if layout == VendorLayout::LobsterMessage
            && let Some(at) = resolved
                .columns
                .iter()
                .position(|(c, i)| *c == Canonical::Side && names[*i] == "direction")
        {
            // LOBSTER's direction is the resting order's side, not the aggressor's: it is
            // kept as `direction`, and the joined source derives `side` from it.
            let (_, i) = resolved.columns.remove(at);
            resolved.unmapped.push(i);
            resolved.unmapped.sort_unstable();
        }
        let decimal_comma = delimiter != b',' && detect_decimal_comma(data);
        let col_samples = |i: usize| -> Vec<&[u8]> {
            data.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.as_bytes())
                .filter(|s| !s.is_empty())
                .take(200)
                .collect()
        };
        if resolved.ts.is_none() && layout == VendorLayout::Generic {
            // No header names the time: find it by content (epoch numbers by magnitude, ISO
            // or compact date-times, times of day when a date is known).
            if let Some(i) = resolved
                .unmapped
                .iter()
                .copied()
                .find(|&i| looks_like_time(&col_samples(i), date, unit))
            {
                resolved.ts = Some(TsSource::Column(i));
                resolved.unmapped.retain(|&u| u != i);
            }
        }
        if resolved.ts.is_none()
            && opts.require_timestamp
            && layout != VendorLayout::LobsterOrderbook
        {
            return Err(Error::Schema(format!(
                "{file}: no timestamp column among the headers {}; name it with --columns ts=<header> (config input.columns.ts), or date=<header>,time=<header> for separate date and time columns{}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if has_header {
                    ""
                } else {
                    " (the file has no header: its columns are named column_1, column_2, …, or set input.names)"
                }
            )));
        }

        let mut outs: Vec<OutCol> = Vec::new();
        let mut ts_format = TsFormat::Iso;
        match resolved.ts {
            Some(TsSource::Column(i)) => {
                let samples = col_samples(i);
                ts_format = match layout {
                    VendorLayout::LobsterMessage => {
                        TsFormat::SecondsOfDay(date.ok_or_else(|| no_date(file))?)
                    }
                    VendorLayout::Lean => TsFormat::MillisOfDay(date.ok_or_else(|| no_date(file))?),
                    VendorLayout::HistData => TsFormat::CompactDigits,
                    _ if samples.is_empty() => TsFormat::Iso,
                    _ => detect_format(&samples, date, unit)
                        .ok_or_else(|| ts_format_error(file, &names[i], &samples, date))?,
                };
                outs.push(OutCol {
                    name: "ts".into(),
                    kind: Kind::Ts,
                    input: Input::Field(i),
                });
            }
            Some(TsSource::DateTime { date, time }) => {
                outs.push(OutCol {
                    name: "ts".into(),
                    kind: Kind::Ts,
                    input: Input::DateTime(date, time),
                });
            }
            None => {}
        }
        let symbol_const = cfg.symbol.clone().or_else(|| {
            resolved
                .index_of(Canonical::Symbol)
                .is_none()
                .then(|| symbol_from_file_name(&base, layout))
        });
        let mut canon: Vec<(Canonical, Input)> = resolved
            .columns
            .iter()
            .filter(|(c, _)| !(symbol_const.is_some() && *c == Canonical::Symbol))
            .map(|(c, i)| (*c, Input::Field(*i)))
            .collect();
        if let Some(s) = symbol_const {
            canon.push((Canonical::Symbol, Input::Const(s)));
        }
        canon.sort_by_key(|(c, _)| *c);
        for (c, input) in canon {
            let kind = match c {
                Canonical::Symbol | Canonical::Exchange => Kind::Dict,
                Canonical::Conditions => Kind::Utf8,
                Canonical::EventType => Kind::I8,
                Canonical::Side => Kind::Side,
                Canonical::OrderId => Kind::I64,
                Canonical::Id => match input {
                    Input::Field(i)
                        if !col_samples(i)
                            .iter()
                            .all(|s| super::number::parse_i64(s.trim_ascii()).is_some()) =>
                    {
                        Kind::Utf8
                    }
                    _ => Kind::I64,
                },
                Canonical::Price
                | Canonical::Bid
                | Canonical::Ask
                | Canonical::Open
                | Canonical::High
                | Canonical::Low
                | Canonical::Close => Kind::F64(scale),
                _ => Kind::F64(Scale::One),
            };
            outs.push(OutCol {
                name: c.name().into(),
                kind,
                input,
            });
        }
        for &i in &resolved.unmapped {
            let mut name = names[i].trim().to_lowercase();
            if name.is_empty() {
                name = format!("column_{}", i + 1);
            }
            while outs.iter().any(|o| o.name == name) || name == LINE_COLUMN {
                name.push('_');
            }
            let samples = col_samples(i);
            let number = |s: &&[u8]| {
                let s = s.trim_ascii();
                if decimal_comma {
                    parse_decimal_comma(s).is_some()
                } else {
                    super::number::parse_f64(s).is_some()
                }
            };
            let kind = if lobster && name == "direction" {
                Kind::I8
            } else if !samples.is_empty()
                && samples
                    .iter()
                    .all(|s| super::number::parse_i64(s.trim_ascii()).is_some())
            {
                if lobster && name.contains("price") {
                    Kind::F64(scale)
                } else {
                    Kind::I64
                }
            } else if !samples.is_empty() && samples.iter().all(number) {
                Kind::F64(if lobster && name.contains("price") {
                    scale
                } else {
                    Scale::One
                })
            } else {
                Kind::Utf8
            };
            outs.push(OutCol {
                name,
                kind,
                input: Input::Field(i),
            });
        }
        let kind = DatasetKind::detect(&resolved.canonical());
        let symbols = sample_symbols(&outs, data);
        if let Some(keep) = &opts.columns {
            outs.retain(|o| keep.iter().any(|k| k == &o.name));
        }
        let (schema, data_schema) = schemas_of(&outs);
        Ok(CsvPlan {
            file: file.to_string(),
            delimiter,
            has_header,
            names,
            outs,
            ts_format,
            zone,
            schema,
            data_schema,
            strict: opts.strict,
            max_line_bytes: opts.max_line_bytes.max(1),
            layout,
            mean_row_bytes,
            kind,
            decimal_comma,
            symbols,
        })
    }
}

/// The output schema (`_line` last) and the data schema of columns `outs`.
fn schemas_of(outs: &[OutCol]) -> (SchemaRef, SchemaRef) {
    let fields: Vec<Field> = outs
        .iter()
        .map(|o| {
            let dt = match o.kind {
                Kind::Ts => pipeline_core::ts_type(),
                Kind::F64(_) => DataType::Float64,
                Kind::I64 => DataType::Int64,
                Kind::I8 | Kind::Side => DataType::Int8,
                Kind::Dict => pipeline_core::dict_type(),
                Kind::Utf8 => DataType::Utf8,
            };
            Field::new(&o.name, dt, true)
        })
        .collect();
    let data_schema = Arc::new(Schema::new(fields.clone()));
    let mut all = fields;
    all.push(Field::new(LINE_COLUMN, DataType::UInt64, false));
    (Arc::new(Schema::new(all)), data_schema)
}

/// A placeholder schema until [`CsvPlan::restore_schemas`] runs.
fn no_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

/// The symbols of a sample: the constant symbol, or up to 100 distinct symbol-column values.
fn sample_symbols(outs: &[OutCol], data: &[&[Cow<str>]]) -> Vec<String> {
    let Some(sym) = outs.iter().find(|o| o.name == "symbol") else {
        return Vec::new();
    };
    match &sym.input {
        Input::Const(s) => vec![s.clone()],
        Input::Field(i) => {
            let mut v: Vec<String> = Vec::new();
            for r in data {
                if let Some(s) = r.get(*i).map(|s| s.trim())
                    && !s.is_empty()
                    && !v.iter().any(|x| x == s)
                {
                    v.push(s.to_string());
                    if v.len() >= 100 {
                        break;
                    }
                }
            }
            v
        }
        Input::DateTime(..) => Vec::new(),
    }
}

/// Parses a number written with a decimal comma (`510,12`, `-0,5`; also plain integers).
pub(crate) fn parse_decimal_comma(b: &[u8]) -> Option<f64> {
    let mut buf = [0u8; 40];
    if b.len() > buf.len() || b.contains(&b'.') {
        return None;
    }
    for (o, &c) in buf.iter_mut().zip(b) {
        *o = if c == b',' { b'.' } else { c };
    }
    super::number::parse_f64(&buf[..b.len()])
}

/// True when the sample's numbers use decimal commas: some field is `digits,digits` and no
/// field is a decimal with a point. (With `,` as the delimiter a decimal comma cannot occur
/// unquoted, so only other delimiters are checked.)
fn detect_decimal_comma(data: &[&[Cow<str>]]) -> bool {
    let comma_decimal = |s: &str| {
        let s = s.trim().strip_prefix('-').unwrap_or(s.trim());
        matches!(s.split_once(','), Some((a, b)) if !a.is_empty() && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
    };
    let point_decimal = |s: &str| {
        let s = s.trim().strip_prefix('-').unwrap_or(s.trim());
        matches!(s.split_once('.'), Some((a, b)) if !a.is_empty() && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
    };
    let fields = || data.iter().take(200).flat_map(|r| r.iter());
    fields().any(|f| comma_decimal(f)) && !fields().any(|f| point_decimal(f))
}

/// True when a column's samples read as timestamps: ISO or compact date-times, times of day
/// (when a date is known), or integers that are epoch times between 1990 and 2100 in some
/// unit (by magnitude) and mostly non-decreasing, as tick times are.
fn looks_like_time(samples: &[&[u8]], date: Option<i64>, unit: Option<EpochUnit>) -> bool {
    if samples.is_empty() {
        return false;
    }
    let Some(f) = detect_format(samples, date, unit) else {
        return false;
    };
    match f {
        TsFormat::Epoch(_) => {
            let vals: Vec<i64> = samples
                .iter()
                .filter_map(|s| super::number::parse_i64(s.trim_ascii()))
                .collect();
            // 1990-01-01 in seconds, and 2100-01-01 in nanoseconds.
            let plausible = |v: i64| {
                [1, 1_000, 1_000_000, 1_000_000_000].iter().any(|&m| {
                    (631_152_000i64.saturating_mul(m)..=4_102_444_800i64.saturating_mul(m))
                        .contains(&v)
                })
            };
            let rising = vals.windows(2).filter(|w| w[1] >= w[0]).count();
            !vals.is_empty()
                && vals.len() == samples.len()
                && vals.iter().all(|&v| plausible(v))
                && rising * 10 >= vals.len().saturating_sub(1) * 9
        }
        TsFormat::MillisOfDay(_) | TsFormat::SecondsOfDay(_) => false,
        _ => true,
    }
}

/// The error for a timestamp column in no known format: what was seen, and the fix.
fn ts_format_error(file: &str, column: &str, samples: &[&[u8]], date: Option<i64>) -> Error {
    let shown: Vec<String> = samples
        .iter()
        .take(3)
        .map(|s| format!("{:?}", String::from_utf8_lossy(s)))
        .collect();
    let time_of_day = samples.first().is_some_and(|s| {
        s.len() >= 5
            && s.len() <= 20
            && s.iter().filter(|&&c| c == b':').count() == 2
            && s.first().is_some_and(u8::is_ascii_digit)
    });
    let hint = if time_of_day && date.is_none() {
        "these are times of day: give the date in the file name (e.g. AAPL_2024-03-08.csv) or with --date YYYY-MM-DD (config input.date)".to_string()
    } else {
        "tickpipe reads ISO 8601 (2024-03-08T14:30:00.123Z, `2024-03-08 14:30:00`), YYYYMMDD HH:MM:SS, epoch numbers (unit by magnitude, or --epoch-unit), times of day with a date, and separate date and time columns (--columns date=<header>,time=<header>); name another column with --columns ts=<header>".to_string()
    };
    Error::Schema(format!(
        "{file}: column `{column}` is not in a timestamp format tickpipe knows (its first values: {}); {hint}",
        shown.join(", ")
    ))
}

fn no_date(file: &str) -> Error {
    Error::Schema(format!(
        "{file}: times of day need a date; none in the file name, so set input.date"
    ))
}

/// The file name without directories.
fn base_name(file: &str) -> String {
    std::path::Path::new(file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string())
}

/// Splits up to `max` records of the sample into strings; also returns the mean record size.
/// Fields borrow from the sample unless they had to be unescaped or were not UTF-8: the
/// per-field allocations of owned strings were most of a plan's cost (measured with
/// `examples/describe_bench.rs`, which builds one plan per file: 2.0 ms per file, two thirds
/// of it in malloc/free).
pub(crate) fn sample_records(
    sample: &[u8],
    is_all: bool,
    delim: u8,
    max: usize,
) -> SampleRecords<'_> {
    let mut out = SampleRecords {
        fields: Vec::new(),
        ends: Vec::new(),
        mean_bytes: 64.0,
    };
    let mut fields: Vec<Span> = Vec::new();
    let mut scratch = Vec::new();
    // The sample is checked for UTF-8 once: fields of valid text are borrowed by slicing
    // it (their bounds are ASCII delimiters, quotes or line ends, so always character
    // boundaries), not each checked and copied by `from_utf8_lossy`, which was a third of
    // a plan's cost on a small file. A sample cut inside a character at its end counts as
    // valid up to that character.
    let text = match std::str::from_utf8(sample) {
        Ok(t) => Some(t),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&sample[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    let mut pos = 0;
    while pos < sample.len() && out.ends.len() < max {
        match split_record(&sample[pos..], delim, is_all, &mut fields) {
            Split::Record { end, .. } => {
                let rec = &sample[pos..pos + end];
                let at = pos;
                pos += end;
                if is_blank(&fields) {
                    continue;
                }
                out.fields.extend(fields.iter().map(|sp| {
                    let (a, b) = (sp.start as usize, sp.end as usize);
                    if sp.kind == 2 {
                        unescape(&rec[a..b], &mut scratch);
                        Cow::Owned(String::from_utf8_lossy(&scratch).into_owned())
                    } else if let Some(f) = text.and_then(|t| t.get(at + a..at + b)) {
                        Cow::Borrowed(f)
                    } else {
                        String::from_utf8_lossy(&rec[a..b])
                    }
                }));
                out.ends.push(out.fields.len());
            }
            Split::Incomplete => break,
        }
    }
    if !out.ends.is_empty() {
        out.mean_bytes = pos as f64 / out.ends.len() as f64;
    }
    out
}

/// The records [`sample_records`] split: every field in one vector and where each record
/// ends in it (a vector per record was a thousand allocations per plan, most of its
/// allocations on a folder of small files).
pub(crate) struct SampleRecords<'a> {
    fields: Vec<Cow<'a, str>>,
    ends: Vec<usize>,
    /// The mean bytes per record over the sample's records.
    pub(crate) mean_bytes: f64,
}

impl<'a> SampleRecords<'a> {
    /// Each record's fields, in sample order.
    pub(crate) fn rows(&self) -> Vec<&[Cow<'a, str>]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let r = &self.fields[start..end];
                start = end;
                r
            })
            .collect()
    }
}

/// Recognises vendor layouts from the file name and the first records.
fn detect_layout(base: &str, records: &[&[Cow<str>]]) -> VendorLayout {
    let lower = base.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split(['_', '.']).collect();
    let numeric = |s: &str| super::number::parse_f64(s.trim().as_bytes()).is_some();
    let first = records.first();
    // Tardis.dev: every CSV data type starts `exchange,symbol,timestamp,local_timestamp`.
    if let Some(r) = first
        && r.len() >= 5
        && r[..4].iter().map(|s| s.trim()).eq([
            "exchange",
            "symbol",
            "timestamp",
            "local_timestamp",
        ])
    {
        return VendorLayout::Tardis;
    }
    // LOBSTER: <SYM>_<YYYY-MM-DD>_<start>_<end>_<message|orderbook>_<levels>.csv
    if parts.len() >= 6
        && date_from_file_name(parts[1]).is_some()
        && parts[2].bytes().all(|c| c.is_ascii_digit())
        && parts[3].bytes().all(|c| c.is_ascii_digit())
    {
        if parts[4] == "message" {
            return VendorLayout::LobsterMessage;
        }
        if parts[4] == "orderbook" {
            return VendorLayout::LobsterOrderbook;
        }
    }
    if let Some(r) = first {
        let f0 = r.first().map(|s| s.as_bytes()).unwrap_or_default();
        let histdata_ts = f0.len() == 18
            && f0[8] == b' '
            && f0
                .iter()
                .enumerate()
                .all(|(i, c)| i == 8 || c.is_ascii_digit());
        if histdata_ts && (3..=4).contains(&r.len()) && r[1..].iter().all(|s| numeric(s)) {
            return VendorLayout::HistData;
        }
        // LEAN: <YYYYMMDD>_<sym>_<resolution>_<quote|trade>.csv with ms-after-midnight rows.
        if parts.len() >= 3
            && parts[0].len() == 8
            && date_from_file_name(parts[0]).is_some()
            && r.len() == 3
            && r.iter().all(|s| numeric(s))
            && super::number::parse_i64(r[0].as_bytes())
                .is_some_and(|v| (0..=86_400_000).contains(&v))
        {
            return VendorLayout::Lean;
        }
    }
    VendorLayout::Generic
}

/// The symbol of a file without a symbol column: `AAPL` from LOBSTER names, `EURUSD` from
/// LEAN and HistData names, else the file stem.
pub(crate) fn symbol_from_file_name(base: &str, layout: VendorLayout) -> String {
    let stem = base.split('.').next().unwrap_or(base);
    let parts: Vec<&str> = stem.split('_').collect();
    match layout {
        VendorLayout::LobsterMessage | VendorLayout::LobsterOrderbook => parts[0].to_string(),
        VendorLayout::Lean if parts.len() >= 2 => parts[1].to_ascii_uppercase(),
        VendorLayout::HistData if stem.starts_with("DAT_") && parts.len() >= 3 => {
            parts[2].to_ascii_uppercase()
        }
        _ => stem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ReadOptions {
        ReadOptions::default()
    }

    #[test]
    fn taq_header_maps_to_canonical() {
        let s = b"ts,symbol,price,size,bid,ask,bid_size,ask_size,exchange,conditions,extra\n2021-01-04T14:30:00.000123456Z,AAPL,132.45,100,132.44,132.46,300,500,Q,@,7\n";
        let p = CsvPlan::build(s, true, "taq.csv", &opts()).unwrap();
        assert!(p.has_header);
        let names: Vec<&str> = p
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "ts",
                "symbol",
                "price",
                "size",
                "bid",
                "ask",
                "bid_size",
                "ask_size",
                "exchange",
                "conditions",
                "extra",
                "_line"
            ]
        );
        assert_eq!(p.kind, Some(DatasetKind::Taq));
        assert_eq!(p.schema.field(10).data_type(), &DataType::Int64);
        let mut o = opts();
        o.columns = Some(vec!["ts".into(), "price".into()]);
        let p = CsvPlan::build(s, true, "taq.csv", &o).unwrap();
        assert_eq!(p.schema.fields().len(), 3);
    }

    #[test]
    fn layouts_from_names() {
        let m = b"34200.004241176,1,16113575,18,5853300,1\n";
        let p = CsvPlan::build(
            m,
            true,
            "d/AAPL_2012-06-21_34200000_57600000_message_1.csv",
            &opts(),
        )
        .unwrap();
        assert_eq!(p.layout, VendorLayout::LobsterMessage);
        assert_eq!(p.kind, Some(DatasetKind::OrderBook));
        assert_eq!(
            symbol_from_file_name("20140508_eurusd_tick_quote.csv", VendorLayout::Lean),
            "EURUSD"
        );
        assert_eq!(
            symbol_from_file_name("DAT_ASCII_EURUSD_T_202001.csv", VendorLayout::HistData),
            "EURUSD"
        );
        assert_eq!(
            symbol_from_file_name("quote_tick_data.csv", VendorLayout::HistData),
            "quote_tick_data"
        );
        let h = b"20200101 170000065,1.121200,1.121720,0\n";
        assert_eq!(
            CsvPlan::build(h, true, "q.csv", &opts()).unwrap().layout,
            VendorLayout::HistData
        );
        let l = b"8715,1.39101,1.39114\n";
        assert_eq!(
            CsvPlan::build(l, true, "20140508_eurusd_tick_quote.csv", &opts())
                .unwrap()
                .layout,
            VendorLayout::Lean
        );
    }
}
