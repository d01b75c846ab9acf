//! Parquet and Arrow IPC files as inputs, mapped to the canonical columns like CSV headers
//! are (`_line` is the row number + 1).

use std::fs::File;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Int8Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use arrow_cast::cast;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use pipeline_core::{
    Canonical, Chunk, ColumnMapping, Error, LINE_COLUMN, Reject, Result, Source, SourceId, TsSource,
};

use super::expand::InputFile;
use super::number::parse_side;
use super::options::ReadOptions;
use super::plan::{VendorLayout, symbol_from_file_name};
use super::timestamp::{EpochUnit, TsError, TsFormat, TsParser, Zone, detect_format};

/// How one output column is made from an input batch.
#[derive(Debug, Clone)]
enum Map {
    Ts(usize),
    Cast(usize, DataType, f64),
    Side(usize),
    ConstSymbol(String),
    Pass(usize),
}

/// Opens a Parquet or Arrow IPC file.
pub(crate) fn open_columnar(
    input: &InputFile,
    id: SourceId,
    opts: &ReadOptions,
) -> Result<Box<dyn Source>> {
    let f = File::open(&input.path).map_err(|e| Error::io(&input.path, e))?;
    let mut head = [0u8; 6];
    std::io::Read::read_exact(&mut &f, &mut head).map_err(|e| Error::io(&input.path, e))?;
    let f = File::open(&input.path).map_err(|e| Error::io(&input.path, e))?;
    let batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send> = if head.starts_with(b"PAR1")
    {
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .map_err(|e| Error::Schema(format!("{}: {e}", input.display_name())))?
            .with_batch_size(opts.chunk_rows.max(1))
            .build()
            .map_err(|e| Error::Schema(format!("{}: {e}", input.display_name())))?;
        Box::new(b.map(|r| r.map_err(Error::from)))
    } else {
        let r = arrow_ipc::reader::FileReader::try_new(f, None)?;
        Box::new(r.map(|r| r.map_err(Error::from)))
    };
    let mut batches = batches.peekable();
    let in_schema: SchemaRef = match batches.peek() {
        Some(Ok(b)) => b.schema(),
        Some(Err(_)) => {
            return Err(batches
                .next()
                .and_then(|r| r.err())
                .unwrap_or(Error::Internal("peek".into())));
        }
        None => Arc::new(Schema::empty()),
    };
    let names: Vec<String> = in_schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let pairs: Vec<(&str, &str)> = opts
        .input
        .columns
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let resolved = ColumnMapping::from_pairs(pairs)?.resolve(&names)?;
    let mut maps: Vec<(Field, Map)> = Vec::new();
    match resolved.ts {
        Some(TsSource::Column(i)) => maps.push((Canonical::Ts.field(), Map::Ts(i))),
        Some(TsSource::DateTime { .. }) => {
            return Err(Error::Schema(format!(
                "{}: separate date and time columns are supported in CSV input only",
                input.display_name()
            )));
        }
        None => {}
    }
    let base = input
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let symbol = opts.input.symbol.clone().or_else(|| {
        resolved
            .index_of(Canonical::Symbol)
            .is_none()
            .then(|| symbol_from_file_name(&base, VendorLayout::Generic))
    });
    let mut canon: Vec<(Canonical, Map)> = resolved
        .columns
        .iter()
        .filter(|(c, _)| !(symbol.is_some() && *c == Canonical::Symbol))
        .map(|&(c, i)| {
            let m = match c {
                Canonical::Side
                    if matches!(
                        in_schema.field(i).data_type(),
                        DataType::Utf8 | DataType::LargeUtf8
                    ) =>
                {
                    Map::Side(i)
                }
                Canonical::Price
                | Canonical::Bid
                | Canonical::Ask
                | Canonical::Open
                | Canonical::High
                | Canonical::Low
                | Canonical::Close => Map::Cast(i, c.data_type(), opts.input.price_scale),
                Canonical::Id if !in_schema.field(i).data_type().is_integer() => {
                    Map::Cast(i, DataType::Utf8, 1.0)
                }
                _ => Map::Cast(i, c.data_type(), 1.0),
            };
            (c, m)
        })
        .collect();
    if let Some(s) = symbol {
        canon.push((Canonical::Symbol, Map::ConstSymbol(s)));
    }
    canon.sort_by_key(|(c, _)| *c);
    maps.extend(canon.into_iter().map(|(c, m)| (c.field(), m)));
    for &i in &resolved.unmapped {
        let f = in_schema.field(i);
        maps.push((
            Field::new(f.name().to_lowercase(), f.data_type().clone(), true),
            Map::Pass(i),
        ));
    }
    if let Some(keep) = &opts.columns {
        maps.retain(|(f, _)| keep.iter().any(|k| k == f.name()));
    }
    let mut fields: Vec<Field> = maps.iter().map(|(f, _)| f.clone()).collect();
    tracing::info!(
        "{}: {} file, {} input columns; columns: {}",
        input.display_name(),
        if head.starts_with(b"PAR1") {
            "Parquet"
        } else {
            "Arrow IPC"
        },
        names.len(),
        fields
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    fields.push(Field::new(LINE_COLUMN, DataType::UInt64, false));
    let zone = Zone::parse(&opts.input.timezone)?;
    let unit = opts.input.epoch_unit.as_deref().and_then(EpochUnit::parse);
    Ok(Box::new(ColumnarSource {
        file: input.display_name(),
        batches: Box::new(batches),
        maps,
        schema: Arc::new(Schema::new(fields)),
        id,
        seq: 0,
        row: 0,
        zone,
        unit,
        ts_format: None,
        bytes_total: input.size,
        strict: opts.strict,
        rejects: Vec::new(),
    }))
}

struct ColumnarSource {
    file: String,
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    maps: Vec<(Field, Map)>,
    schema: SchemaRef,
    id: SourceId,
    seq: u64,
    row: u64,
    zone: Zone,
    unit: Option<EpochUnit>,
    ts_format: Option<TsFormat>,
    bytes_total: Option<u64>,
    /// Make an unreadable timestamp an error instead of a quarantined row.
    strict: bool,
    rejects: Vec<Reject>,
}

impl ColumnarSource {
    fn convert(&mut self, b: &RecordBatch) -> Result<Chunk> {
        let n = b.num_rows();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.maps.len());
        let mut bad_ts: Vec<BadTs> = Vec::new();
        for (_, m) in self.maps.clone() {
            let a: ArrayRef = match m {
                Map::Pass(i) => b.column(i).clone(),
                Map::ConstSymbol(s) => {
                    let keys = arrow_array::Int32Array::from(vec![0; n]);
                    Arc::new(arrow_array::DictionaryArray::try_new(
                        keys,
                        Arc::new(StringArray::from(vec![s])),
                    )?)
                }
                Map::Cast(i, dt, scale) => {
                    let c = cast(b.column(i), &dt)?;
                    if scale != 1.0 {
                        let f = c
                            .as_any()
                            .downcast_ref::<arrow_array::Float64Array>()
                            .ok_or_else(|| {
                                Error::Internal("scaled column is not Float64".into())
                            })?;
                        Arc::new(f.unary::<_, arrow_array::types::Float64Type>(|v| v * scale))
                    } else {
                        c
                    }
                }
                Map::Side(i) => {
                    let s = cast(b.column(i), &DataType::Utf8)?;
                    let s = s
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .ok_or_else(|| Error::Internal("side cast".into()))?;
                    Arc::new(
                        s.iter()
                            .map(|v| v.and_then(|v| parse_side(v.as_bytes())))
                            .collect::<Int8Array>(),
                    )
                }
                Map::Ts(i) => {
                    let (col, bad) = self.ts(b.column(i))?;
                    bad_ts = bad;
                    col
                }
            };
            cols.push(a);
        }
        let fields: Vec<Field> = self.maps.iter().map(|(f, _)| f.clone()).collect();
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            cols,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        let lines = UInt64Array::from_iter_values((0..n as u64).map(|r| self.row + r + 1));
        let first_line = self.row + 1;
        self.row += n as u64;
        let seq = self.seq;
        self.seq += 1;
        let chunk = Chunk::with_lines(batch, self.id, seq, lines)?;
        if bad_ts.is_empty() {
            return Ok(chunk);
        }
        if self.strict {
            let b = &bad_ts[0];
            return Err(Error::Parse {
                file: self.file.clone(),
                line: first_line + b.row as u64,
                column: "ts".into(),
                expected: b.error.expected().into(),
                found: pipeline_core::truncate_for_error(&b.text),
            });
        }
        let mut keep = vec![true; n];
        for b in bad_ts {
            keep[b.row] = false;
            self.rejects.push(Reject::quarantined(
                self.id,
                first_line + b.row as u64,
                "bad_timestamp",
                format!(
                    "column `ts`: expected {}, found {:?}",
                    b.error.expected(),
                    pipeline_core::truncate_for_error(&b.text)
                ),
                Some(b.text),
            ));
        }
        chunk.filter(&BooleanArray::from(keep))
    }

    /// The timestamp column in UTC nanoseconds, with the rows that could not be read: their
    /// index, what was wrong, and the value as text. Every rescale (s/ms/us/days to ns, local
    /// to UTC) is checked, so values outside 1677–2262 are reported, never wrapped.
    fn ts(&mut self, a: &ArrayRef) -> Result<(ArrayRef, Vec<BadTs>)> {
        let mut bad = Vec::new();
        let out: TimestampNanosecondArray = match a.data_type() {
            DataType::Timestamp(unit, tz) => {
                // The stored values are UTC epoch counts whatever the zone annotation: rescale
                // the raw integers (a zone cast would need arrow's chrono-tz feature).
                let mul = match unit {
                    TimeUnit::Second => 1_000_000_000,
                    TimeUnit::Millisecond => 1_000_000,
                    TimeUnit::Microsecond => 1_000,
                    TimeUnit::Nanosecond => 1,
                };
                // Naive timestamps are local times in the configured zone.
                let zone = (tz.is_none() && self.zone != Zone::Utc).then_some(self.zone);
                rescale(&cast(a, &DataType::Int64)?, mul, zone, &mut bad)?
            }
            // Days (Date32) and milliseconds (Date64) since the epoch, rescaled here rather
            // than by arrow's cast, which turns an overflow into a silent null.
            DataType::Date32 => rescale(&cast(a, &DataType::Int64)?, DAY_NS, None, &mut bad)?,
            DataType::Date64 => rescale(&cast(a, &DataType::Int64)?, 1_000_000, None, &mut bad)?,
            DataType::Int64 | DataType::Int32 | DataType::UInt64 => {
                let v = cast(a, &DataType::Int64)?;
                let first = v
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .and_then(|v| v.iter().flatten().next())
                    .unwrap_or(0);
                let unit = self
                    .unit
                    .unwrap_or_else(|| EpochUnit::from_magnitude(first));
                let mul = match unit {
                    EpochUnit::S => 1_000_000_000,
                    EpochUnit::Ms => 1_000_000,
                    EpochUnit::Us => 1_000,
                    EpochUnit::Ns => 1,
                };
                rescale(&v, mul, None, &mut bad)?
            }
            _ => {
                let s = cast(a, &DataType::Utf8)?;
                let s = s
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| Error::Internal("ts cast".into()))?;
                if self.ts_format.is_none() {
                    let samples: Vec<&[u8]> =
                        s.iter().flatten().take(100).map(str::as_bytes).collect();
                    self.ts_format =
                        Some(detect_format(&samples, None, self.unit).ok_or_else(|| {
                            Error::Schema(format!("{}: unrecognised timestamps", self.file))
                        })?);
                }
                let mut p = TsParser::new(self.ts_format.unwrap_or(TsFormat::Iso), self.zone);
                let mut out = Vec::with_capacity(s.len());
                for (r, v) in s.iter().enumerate() {
                    match v {
                        None | Some("") => out.push(None),
                        Some(t) => match p.parse_checked(t.as_bytes()) {
                            Ok(v) => out.push(Some(v)),
                            Err(e) => {
                                bad.push(BadTs {
                                    row: r,
                                    error: e,
                                    text: t.to_string(),
                                });
                                out.push(None);
                            }
                        },
                    }
                }
                TimestampNanosecondArray::from(out)
            }
        };
        Ok((Arc::new(out.with_timezone("UTC")), bad))
    }
}

/// A timestamp the columnar reader could not use.
struct BadTs {
    row: usize,
    error: TsError,
    text: String,
}

/// Nanoseconds in a day.
const DAY_NS: i64 = 86_400_000_000_000;

/// `raw × mul` (local times in `zone` converted to UTC), with overflowing rows recorded in
/// `bad` and left null.
fn rescale(
    raw: &ArrayRef,
    mul: i64,
    zone: Option<Zone>,
    bad: &mut Vec<BadTs>,
) -> Result<TimestampNanosecondArray> {
    let raw = raw
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::Internal("ts cast".into()))?;
    let mut zone = zone.map(super::timestamp::ZoneCache::new);
    Ok(raw
        .iter()
        .enumerate()
        .map(|(r, x)| {
            let x = x?;
            let v = x.checked_mul(mul).and_then(|local| match &mut zone {
                Some(z) => z.local_to_utc(local.div_euclid(DAY_NS), local.rem_euclid(DAY_NS)),
                None => Some(local),
            });
            if v.is_none() {
                let days = i128::from(x) * i128::from(mul) / i128::from(DAY_NS);
                bad.push(BadTs {
                    row: r,
                    error: super::timestamp::out_of_range_at(days),
                    text: x.to_string(),
                });
            }
            v
        })
        .collect())
}

impl Iterator for ColumnarSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        let b = match self.batches.next()? {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        Some(self.convert(&b))
    }
}

impl Source for ColumnarSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn progress(&self) -> pipeline_core::Progress {
        pipeline_core::Progress {
            bytes_read: 0,
            bytes_total: self.bytes_total,
            rows_read: self.row,
        }
    }

    fn drain_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }
}
