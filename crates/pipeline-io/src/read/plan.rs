//! The decode plan of a delimited file: delimiter, header, vendor layout, which input field
//! feeds which canonical column with which parser, and the output schema. Built once per file
//! from a sample, then shared by every decoder thread.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{Canonical, ColumnMapping, DatasetKind, Error, LINE_COLUMN, Result, TsSource};
use serde::Serialize;

use super::options::ReadOptions;
use super::record::{Span, Split, is_blank, split_record, unescape};
use super::sniff::{sniff_delimiter, sniff_header};
use super::timestamp::{EpochUnit, TsFormat, Zone, date_from_file_name, detect_format};

/// How a price column is scaled on the way in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    One,
    Mul(f64),
    /// Division by an integer power such as 10,000: exact for LOBSTER's fixed-point prices.
    Div(f64),
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
#[derive(Debug, Clone, Copy, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input {
    Field(usize),
    DateTime(usize, usize),
    Const(String),
}

#[derive(Debug, Clone, PartialEq)]
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
}

/// How a delimited file is decoded (see the module docs).
#[derive(Debug, Clone)]
pub struct CsvPlan {
    pub(crate) file: String,
    pub(crate) delimiter: u8,
    pub(crate) has_header: bool,
    pub(crate) names: Vec<String>,
    pub(crate) outs: Vec<OutCol>,
    pub(crate) ts_format: TsFormat,
    pub(crate) zone: Zone,
    pub(crate) schema: SchemaRef,
    data_schema: SchemaRef,
    pub(crate) strict: bool,
    /// Longest record decoded; longer ones are quarantined as `line_too_long`.
    pub(crate) max_line_bytes: usize,
    pub(crate) layout: VendorLayout,
    pub(crate) mean_row_bytes: f64,
    pub(crate) kind: Option<DatasetKind>,
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
        let (records, mean_row_bytes) = sample_records(sample, sample_is_all, delimiter, 1000);
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
            (None, _) => false,
        };
        let nfields = records.first().map_or(0, Vec::len);
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
            VendorLayout::Generic => Vec::new(),
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
        let data: &[Vec<String>] = if has_header && !records.is_empty() {
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
        let resolved = mapping.resolve(&names)?;

        let mut outs: Vec<OutCol> = Vec::new();
        let mut ts_format = TsFormat::Iso;
        let col_samples = |i: usize| -> Vec<&[u8]> {
            data.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.as_bytes())
                .filter(|s| !s.is_empty())
                .take(200)
                .collect()
        };
        match resolved.ts {
            Some(TsSource::Column(i)) => {
                let samples = col_samples(i);
                ts_format = match layout {
                    VendorLayout::LobsterMessage => TsFormat::SecondsOfDay(date.ok_or_else(|| no_date(file))?),
                    VendorLayout::Lean => TsFormat::MillisOfDay(date.ok_or_else(|| no_date(file))?),
                    VendorLayout::HistData => TsFormat::CompactDigits,
                    _ if samples.is_empty() => TsFormat::Iso,
                    _ => detect_format(&samples, date, unit).ok_or_else(|| {
                        Error::Schema(format!(
                            "{file}: column `{}` is not in a timestamp format tickpipe knows (e.g. {:?}); set input.columns.ts or input.epoch_unit/date",
                            names[i],
                            String::from_utf8_lossy(samples[0])
                        ))
                    })?,
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
            let kind = if !samples.is_empty()
                && samples
                    .iter()
                    .all(|s| super::number::parse_i64(s.trim_ascii()).is_some())
            {
                if lobster && name.contains("price") {
                    Kind::F64(scale)
                } else {
                    Kind::I64
                }
            } else if !samples.is_empty()
                && samples
                    .iter()
                    .all(|s| super::number::parse_f64(s.trim_ascii()).is_some())
            {
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
        if let Some(keep) = &opts.columns {
            outs.retain(|o| keep.iter().any(|k| k == &o.name));
        }
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
        Ok(CsvPlan {
            file: file.to_string(),
            delimiter,
            has_header,
            names,
            outs,
            ts_format,
            zone,
            schema: Arc::new(Schema::new(all)),
            data_schema,
            strict: opts.strict,
            max_line_bytes: opts.max_line_bytes.max(1),
            layout,
            mean_row_bytes,
            kind,
        })
    }
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
pub(crate) fn sample_records(
    sample: &[u8],
    is_all: bool,
    delim: u8,
    max: usize,
) -> (Vec<Vec<String>>, f64) {
    let mut out = Vec::new();
    let mut fields: Vec<Span> = Vec::new();
    let mut scratch = Vec::new();
    let mut pos = 0;
    while pos < sample.len() && out.len() < max {
        match split_record(&sample[pos..], delim, is_all, &mut fields) {
            Split::Record { end, .. } => {
                let rec = &sample[pos..pos + end];
                pos += end;
                if is_blank(&fields) {
                    continue;
                }
                out.push(
                    fields
                        .iter()
                        .map(|sp| {
                            let raw = &rec[sp.start as usize..sp.end as usize];
                            if sp.kind == 2 {
                                unescape(raw, &mut scratch);
                                String::from_utf8_lossy(&scratch).into_owned()
                            } else {
                                String::from_utf8_lossy(raw).into_owned()
                            }
                        })
                        .collect(),
                );
            }
            Split::Incomplete => break,
        }
    }
    let mean = if out.is_empty() {
        64.0
    } else {
        pos as f64 / out.len() as f64
    };
    (out, mean)
}

/// Recognises vendor layouts from the file name and the first records.
fn detect_layout(base: &str, records: &[Vec<String>]) -> VendorLayout {
    let lower = base.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split(['_', '.']).collect();
    let numeric = |s: &str| super::number::parse_f64(s.trim().as_bytes()).is_some();
    let first = records.first();
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
        let f0 = r.first().map(String::as_bytes).unwrap_or_default();
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
