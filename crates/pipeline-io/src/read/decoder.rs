//! The push-based CSV decoder: bytes in, canonical [`Chunk`]s out.
//!
//! [`CsvDecoder::decode`] takes any slice of the input and returns how much it consumed; an
//! incomplete last record is kept inside and finished by the next push, so the input may be
//! split anywhere. [`CsvDecoder::finish`] marks the end of the input and [`CsvDecoder::flush`]
//! returns the rows decoded so far as a chunk. File, mmap, stdin and follow sources are thin
//! wrappers around this core.
//!
//! Only the columns in the plan are parsed (projection). Numbers go through a hand-written
//! decimal parser, timestamps through fixed-position parsers, and symbols are
//! dictionary-encoded while decoding. A malformed row is rolled back and kept as a quarantine
//! [`Reject`] (or, in strict mode, returned as an error).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int8Array, Int32Array, Int64Array, RecordBatch,
    RecordBatchOptions, StringArray, TimestampNanosecondArray, UInt64Array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::SchemaRef;
use pipeline_core::{Chunk, Error, Reject, Result, SourceId, truncate_for_error};

use super::number::{parse_f64, parse_i64, parse_side};
use super::plan::{CsvPlan, Input, Kind, OutCol, Scale};
use super::record::{Span, Split, is_blank, split_record, unescape};
use super::timestamp::{TsError, TsParser};

/// The symbol dictionaries' maps: SipHash costs more than the rest of a row's decoding.
type FxMap<K, V> = HashMap<K, V, pipeline_core::FxBuildHasher>;

/// One output column under construction.
enum Builder {
    /// Timestamps (nanoseconds, UTC).
    Ts(Vec<i64>),
    I64(Vec<i64>),
    F64(Vec<f64>, Scale),
    I8(Vec<i8>),
    /// Trade sides (+1 / -1).
    Side(Vec<i8>),
    Dict(DictBuilder),
    Utf8 {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    /// A constant (e.g. the symbol taken from the file name).
    Const,
}

struct Column {
    builder: Builder,
    /// Rows (in this batch) whose value is null, ascending. Nulls are rare in tick data, so
    /// a list beats a validity flag per cell, which profiles showed as a visible cost.
    nulls: Vec<u32>,
}

impl Column {
    fn truncate(&mut self, rows: usize) {
        while self.nulls.last().is_some_and(|&r| r as usize >= rows) {
            self.nulls.pop();
        }
        match &mut self.builder {
            Builder::Ts(v) | Builder::I64(v) => v.truncate(rows),
            Builder::F64(v, _) => v.truncate(rows),
            Builder::I8(v) | Builder::Side(v) => v.truncate(rows),
            Builder::Dict(d) => d.keys.truncate(rows),
            Builder::Utf8 { offsets, data } => {
                offsets.truncate(rows + 1);
                data.truncate(offsets[rows] as usize);
            }
            Builder::Const => {}
        }
    }
}

/// Why one cell could not be read.
struct CellError {
    reason: &'static str,
    expected: &'static str,
}

/// The push-based decoder (see the module docs).
pub struct CsvDecoder {
    plan: Arc<CsvPlan>,
    source: SourceId,
    cols: Vec<Column>,
    ts: TsParser,
    lines: Vec<u64>,
    rows: usize,
    batch_rows: usize,
    next_line: u64,
    skip_records: usize,
    partial: Vec<u8>,
    fields: Vec<Span>,
    scratch: Vec<u8>,
    rejects: Vec<Reject>,
    seq: u64,
    failed: bool,
    records_seen: u64,
    /// Whether a NUL byte was seen in the input: from then on every record is checked for
    /// one (a SIMD scan of each pushed slice keeps the common case free).
    saw_nul: bool,
}

impl CsvDecoder {
    /// A decoder for text laid out as `plan` says, producing chunks of at most `batch_rows`
    /// rows for source `source`. The first record read is on line `first_line`; with
    /// `skip_header`, that record is the header and is skipped.
    pub fn new(
        plan: Arc<CsvPlan>,
        source: SourceId,
        batch_rows: usize,
        first_line: u64,
        skip_header: bool,
    ) -> Self {
        let cols = plan
            .outs
            .iter()
            .map(|o| Column {
                builder: match (&o.kind, &o.input) {
                    (_, Input::Const(_)) => Builder::Const,
                    (Kind::Ts, _) => Builder::Ts(Vec::new()),
                    (Kind::I64, _) => Builder::I64(Vec::new()),
                    (Kind::F64(s), _) => Builder::F64(Vec::new(), *s),
                    (Kind::I8, _) => Builder::I8(Vec::new()),
                    (Kind::Side, _) => Builder::Side(Vec::new()),
                    (Kind::Dict, _) => Builder::Dict(DictBuilder::default()),
                    (Kind::Utf8, _) => Builder::Utf8 {
                        offsets: vec![0],
                        data: Vec::new(),
                    },
                },
                nulls: Vec::new(),
            })
            .collect();
        CsvDecoder {
            ts: TsParser::new(plan.ts_format, plan.zone),
            plan,
            source,
            cols,
            lines: Vec::new(),
            rows: 0,
            batch_rows: batch_rows.max(1),
            next_line: first_line,
            skip_records: usize::from(skip_header),
            partial: Vec::new(),
            fields: Vec::new(),
            scratch: Vec::new(),
            rejects: Vec::new(),
            seq: 0,
            failed: false,
            records_seen: 0,
            saw_nul: false,
        }
    }

    /// The schema of the chunks (with the `_line` column).
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema.clone()
    }

    /// Rows decoded and not yet flushed.
    pub fn buffered_rows(&self) -> usize {
        self.rows
    }

    /// True when a full batch is waiting: call [`CsvDecoder::flush`] before pushing more.
    pub fn is_full(&self) -> bool {
        self.rows >= self.batch_rows
    }

    /// The line number the next record starts on.
    pub fn next_line(&self) -> u64 {
        self.next_line
    }

    /// Bytes of an incomplete last record held until the rest of it arrives (counted as
    /// consumed by [`CsvDecoder::decode`]).
    pub fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// Records seen so far (decoded, quarantined, header and blank lines excluded).
    pub fn records_seen(&self) -> u64 {
        self.records_seen
    }

    /// Reserves room for `rows` more rows in every column (and `text_bytes` of string data),
    /// so a block of known size decodes without re-growing its buffers.
    pub fn reserve(&mut self, rows: usize, text_bytes: usize) {
        self.lines.reserve(rows);
        for c in &mut self.cols {
            match &mut c.builder {
                Builder::Ts(v) | Builder::I64(v) => v.reserve(rows),
                Builder::F64(v, _) => v.reserve(rows),
                Builder::I8(v) | Builder::Side(v) => v.reserve(rows),
                Builder::Dict(d) => d.keys.reserve(rows),
                Builder::Utf8 { offsets, data } => {
                    offsets.reserve(rows);
                    data.reserve(text_bytes);
                }
                Builder::Const => {}
            }
        }
    }

    /// Takes the rows quarantined so far.
    pub fn drain_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }

    /// Decodes complete records from `data` and returns the bytes consumed. It stops early
    /// (consumed < `data.len()`) only when a batch is full; an incomplete last record is kept
    /// inside and counts as consumed. In strict mode a malformed row is an error.
    pub fn decode(&mut self, data: &[u8]) -> Result<usize> {
        if self.failed {
            return Err(Error::Internal("decode after a strict-mode error".into()));
        }
        if !self.saw_nul && memchr::memchr(0, data).is_some() {
            self.saw_nul = true;
        }
        let mut pos = 0;
        // First finish a record cut by the previous push, adding one line at a time.
        while !self.partial.is_empty() && pos < data.len() {
            if self.is_full() {
                return Ok(pos);
            }
            let nl = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i + 1);
            self.partial.extend_from_slice(&data[pos..nl]);
            pos = nl;
            let mut fields = std::mem::take(&mut self.fields);
            let split = split_record(&self.partial, self.plan.delimiter, false, &mut fields);
            self.fields = fields;
            if let Split::Record {
                newlines,
                unterminated,
                ..
            } = split
            {
                let rec = std::mem::take(&mut self.partial);
                let r = self.record(&rec, newlines, unterminated);
                self.partial = rec;
                self.partial.clear();
                r?;
            }
        }
        while pos < data.len() {
            if self.is_full() {
                return Ok(pos);
            }
            let rest = &data[pos..];
            match split_record(rest, self.plan.delimiter, false, &mut self.fields) {
                Split::Record {
                    end,
                    newlines,
                    unterminated,
                } => {
                    self.record(&rest[..end], newlines, unterminated)?;
                    pos += end;
                }
                Split::Incomplete => {
                    self.partial.extend_from_slice(rest);
                    pos = data.len();
                }
            }
        }
        Ok(pos)
    }

    /// Marks the end of the input: a last record without a newline is decoded. It may
    /// overfill the batch by that one record.
    pub fn finish(&mut self) -> Result<()> {
        if self.failed || self.partial.is_empty() {
            return Ok(());
        }
        let rec = std::mem::take(&mut self.partial);
        let split = split_record(&rec, self.plan.delimiter, true, &mut self.fields);
        if let Split::Record {
            newlines,
            unterminated,
            ..
        } = split
        {
            self.record(&rec, newlines, unterminated)?;
        }
        Ok(())
    }

    /// Returns the rows decoded since the last flush as a chunk (`None` when there are none).
    pub fn flush(&mut self) -> Result<Option<Chunk>> {
        let Some((batch, lines)) = self.take_batch()? else {
            return Ok(None);
        };
        let seq = self.seq;
        self.seq += 1;
        Chunk::with_lines(batch, self.source, seq, UInt64Array::from(lines)).map(Some)
    }

    /// The decoded rows as a batch without `_line`, plus their lines.
    pub(crate) fn take_batch(&mut self) -> Result<Option<(RecordBatch, Vec<u64>)>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let rows = self.rows;
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cols.len());
        for (col, out) in self.cols.iter_mut().zip(&self.plan.outs) {
            let nulls = (!col.nulls.is_empty()).then(|| {
                let mut valid = arrow_buffer::BooleanBufferBuilder::new(rows);
                valid.append_n(rows, true);
                for &r in &col.nulls {
                    valid.set_bit(r as usize, false);
                }
                col.nulls.clear();
                NullBuffer::new(valid.finish())
            });
            let a: ArrayRef = match &mut col.builder {
                Builder::Ts(v) => {
                    let v = ScalarBuffer::from(std::mem::take(v));
                    Arc::new(TimestampNanosecondArray::new(v, nulls).with_timezone("UTC"))
                }
                Builder::I64(v) => Arc::new(Int64Array::new(
                    ScalarBuffer::from(std::mem::take(v)),
                    nulls,
                )),
                Builder::F64(v, _) => Arc::new(Float64Array::new(
                    ScalarBuffer::from(std::mem::take(v)),
                    nulls,
                )),
                Builder::I8(v) | Builder::Side(v) => {
                    Arc::new(Int8Array::new(ScalarBuffer::from(std::mem::take(v)), nulls))
                }
                Builder::Dict(d) => d.take(nulls)?,
                Builder::Utf8 { offsets, data } => {
                    let off =
                        OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, vec![0])));
                    let vals = StringArray::try_new(off, std::mem::take(data).into(), nulls)?;
                    Arc::new(vals)
                }
                Builder::Const => {
                    let Input::Const(s) = &out.input else {
                        return Err(Error::Internal("constant column without a value".into()));
                    };
                    let k = Int32Array::from(vec![0; rows]);
                    Arc::new(DictionaryArray::<Int32Type>::try_new(
                        k,
                        Arc::new(StringArray::from(vec![s.as_str()])),
                    )?)
                }
            };
            arrays.push(a);
        }
        let batch = RecordBatch::try_new_with_options(
            self.plan.data_schema(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        self.rows = 0;
        Ok(Some((batch, std::mem::take(&mut self.lines))))
    }

    /// Handles one split record.
    fn record(&mut self, rec: &[u8], newlines: u32, unterminated: bool) -> Result<()> {
        let line = self.next_line;
        self.next_line += u64::from(newlines);
        if is_blank(&self.fields) {
            return Ok(());
        }
        if self.skip_records > 0 {
            self.skip_records -= 1;
            return Ok(());
        }
        self.records_seen += 1;
        if unterminated {
            return self.reject(
                line,
                rec,
                "unterminated_quote",
                "a quoted field is not closed before the end of the input".into(),
                None,
            );
        }
        if rec.len() > self.plan.max_line_bytes {
            if self.plan.strict {
                self.failed = true;
                return Err(Error::Malformed {
                    file: self.plan.file.clone(),
                    line,
                    message: long_line_detail(rec.len() as u64, self.plan.max_line_bytes),
                });
            }
            self.rejects.push(long_line_reject(
                self.source,
                line,
                rec.len() as u64,
                self.plan.max_line_bytes,
                rec,
            ));
            return Ok(());
        }
        if self.saw_nul && memchr::memchr(0, rec).is_some() {
            // Invalid bytes quarantine their row, not the file (issue #13 case 7).
            let msg = "the row holds NUL (0x00) bytes, which are not text".to_string();
            return self.reject(line, rec, "bad_encoding", msg, None);
        }
        let want = self.plan.names.len();
        if self.fields.len() != want {
            let msg = format!("expected {want} fields, found {}", self.fields.len());
            return self.reject(line, rec, "wrong_field_count", msg, None);
        }
        // The columns walked beside their plan entries, with the decoder's parts borrowed
        // apart: no index checks per cell.
        let mut cx = Cells {
            fields: &self.fields,
            scratch: &mut self.scratch,
            ts: &mut self.ts,
            rows: self.rows,
            decimal_comma: self.plan.decimal_comma,
        };
        let failed = self
            .plan
            .outs
            .iter()
            .zip(self.cols.iter_mut())
            .enumerate()
            .find_map(|(c, (out, col))| cell(out, col, rec, &mut cx).err().map(|e| (c, e)));
        if let Some((c, e)) = failed {
            for col in &mut self.cols {
                col.truncate(self.rows);
            }
            let (name, found) = self.cell_context(c, rec);
            let detail = format!(
                "column `{name}`: expected {}, found {:?}",
                e.expected,
                truncate_for_error(&found)
            );
            return self.reject(line, rec, e.reason, detail, Some((name, e.expected, found)));
        }
        self.lines.push(line);
        self.rows += 1;
        Ok(())
    }

    fn cell_context(&mut self, c: usize, rec: &[u8]) -> (String, String) {
        let out = &self.plan.outs[c];
        let idx = match out.input {
            Input::Field(i) => i,
            Input::DateTime(_, t) => t,
            Input::Const(_) => 0,
        };
        let text = match self.fields.get(idx) {
            Some(sp) => {
                String::from_utf8_lossy(&rec[sp.start as usize..sp.end as usize]).into_owned()
            }
            None => String::new(),
        };
        let name = self
            .plan
            .names
            .get(idx)
            .cloned()
            .unwrap_or_else(|| out.name.clone());
        (name, text)
    }

    fn reject(
        &mut self,
        line: u64,
        rec: &[u8],
        reason: &'static str,
        detail: String,
        parse: Option<(String, &'static str, String)>,
    ) -> Result<()> {
        if self.plan.strict {
            self.failed = true;
            return Err(match parse {
                Some((column, expected, found)) => Error::Parse {
                    file: self.plan.file.clone(),
                    line,
                    column,
                    expected: expected.into(),
                    found: truncate_for_error(&found),
                },
                None => Error::Malformed {
                    file: self.plan.file.clone(),
                    line,
                    message: format!("{reason}: {detail}"),
                },
            });
        }
        let raw = String::from_utf8_lossy(strip_terminator(rec)).into_owned();
        self.rejects.push(Reject::quarantined(
            self.source,
            line,
            reason,
            detail,
            Some(raw),
        ));
        Ok(())
    }
}

/// Quarantine reason of a record longer than `ReadOptions::max_line_bytes`.
pub(crate) const LINE_TOO_LONG: &str = "line_too_long";

/// Bytes of a too-long line kept as its `raw` text.
const LONG_LINE_PREFIX: usize = 256;

/// The detail of a too-long line.
pub(crate) fn long_line_detail(len: u64, max: usize) -> String {
    format!(
        "line_too_long: the record is {len} bytes, more than the {max}-byte limit ([input] max_line_bytes, derived from the memory limit by default); it was skipped"
    )
}

/// The quarantine record of a too-long line starting with `prefix`.
pub(crate) fn long_line_reject(
    source: SourceId,
    line: u64,
    len: u64,
    max: usize,
    prefix: &[u8],
) -> Reject {
    let mut end = prefix.len().min(LONG_LINE_PREFIX);
    let text = String::from_utf8_lossy(&prefix[..end]);
    // Cut on a character boundary of the lossy text.
    end = text.len().min(LONG_LINE_PREFIX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Reject::quarantined(
        source,
        line,
        LINE_TOO_LONG,
        long_line_detail(len, max),
        Some(format!("{}…", &text[..end])),
    )
}

/// What parsing a cell needs of the decoder besides its column.
struct Cells<'a> {
    fields: &'a [Span],
    scratch: &'a mut Vec<u8>,
    ts: &'a mut TsParser,
    rows: usize,
    decimal_comma: bool,
}

/// Parses the cell of plan entry `out` of record `rec` into its column `col`.
#[inline]
fn cell(
    out: &OutCol,
    col: &mut Column,
    rec: &[u8],
    cx: &mut Cells<'_>,
) -> std::result::Result<(), CellError> {
    let field = match out.input {
        Input::Const(_) => return Ok(()),
        Input::DateTime(d, t) => {
            let date = field_bytes(rec, cx.fields[d], cx.scratch).to_vec();
            let time = field_bytes(rec, cx.fields[t], cx.scratch);
            if date.is_empty() || time.is_empty() {
                push_null(col, cx.rows);
                return Ok(());
            }
            let v = cx
                .ts
                .parse_date_time_checked(&date, time)
                .map_err(|e| CellError {
                    reason: "bad_timestamp",
                    expected: match e {
                        TsError::Malformed => "a date and a time of day",
                        e => e.expected(),
                    },
                })?;
            if let Builder::Ts(vals) | Builder::I64(vals) = &mut col.builder {
                vals.push(v);
            }
            return Ok(());
        }
        Input::Field(i) => field_bytes(rec, cx.fields[i], cx.scratch),
    };
    if field.is_empty() {
        push_null(col, cx.rows);
        return Ok(());
    }
    // The builder's variant says the column's kind: one match per cell.
    match &mut col.builder {
        Builder::Ts(v) => {
            let t = cx.ts.parse_checked(field).map_err(|e| CellError {
                reason: "bad_timestamp",
                expected: e.expected(),
            })?;
            v.push(t);
        }
        Builder::I64(v) => {
            let x = parse_i64(trim(field)).ok_or(CellError {
                reason: "bad_number",
                expected: "an integer",
            })?;
            v.push(x);
        }
        Builder::F64(v, scale) => {
            let x = if cx.decimal_comma {
                super::plan::parse_decimal_comma(trim(field))
            } else {
                // A `match`, not `or_else`: the closure was not inlined (a call per cell).
                match parse_f64(field) {
                    Some(x) => Some(x),
                    None => parse_f64(trim(field)),
                }
            };
            let x = x.ok_or(CellError {
                reason: "bad_number",
                expected: "a decimal number",
            })?;
            v.push(match scale {
                Scale::One => x,
                Scale::Mul(m) => x * *m,
                Scale::Div(d) => x / *d,
            });
        }
        Builder::Side(v) => {
            let x = parse_side(trim(field)).ok_or(CellError {
                reason: "bad_number",
                expected: "a side (1/-1, buy/sell)",
            })?;
            v.push(x);
        }
        Builder::I8(v) => {
            let x = parse_i64(trim(field))
                .and_then(|x| i8::try_from(x).ok())
                .ok_or(CellError {
                    reason: "bad_number",
                    expected: "a small integer",
                })?;
            v.push(x);
        }
        Builder::Dict(d) => {
            let k = d.key_of(field)?;
            d.keys.push(k);
        }
        Builder::Utf8 { offsets, data } => {
            utf8(field)?;
            data.extend_from_slice(field);
            offsets.push(data.len() as i32);
        }
        // A constant column has no cell (its input is `Const`, answered above).
        Builder::Const => {
            return Err(CellError {
                reason: "bad_number",
                expected: "a value of the column's type",
            });
        }
    }
    Ok(())
}

/// `field` as text, or the cell error of a field that is not UTF-8.
#[inline]
fn utf8(field: &[u8]) -> std::result::Result<&str, CellError> {
    std::str::from_utf8(field).map_err(|_| CellError {
        reason: "bad_encoding",
        expected: "UTF-8 text",
    })
}

/// A dictionary column under construction: its keys, and its values with their keys.
#[derive(Default)]
struct DictBuilder {
    keys: Vec<i32>,
    /// Keys of up to 7 bytes packed with their length into a `u64`: symbols and venue
    /// codes are that short, and integer keys skip the `memcmp` that showed up in
    /// profiles of the TAQ decode.
    short: FxMap<u64, i32>,
    /// Short keys seen lately, by a hash of the packed key: a column of few distinct
    /// values (symbols, venues, condition codes) is answered here without probing the map.
    recent: Box<Recent>,
    long: FxMap<Box<[u8]>, i32>,
    values: Vec<String>,
}

impl DictBuilder {
    /// The key of value `field`, added to the dictionary when new.
    #[inline]
    fn key_of(&mut self, field: &[u8]) -> std::result::Result<i32, CellError> {
        let packed = pack_short(field);
        let found = match packed {
            Some(p) => match self.recent.get(p) {
                Some(k) => Some(k),
                None => {
                    let k = self.short.get(&p).copied();
                    if let Some(k) = k {
                        self.recent.put(p, k);
                    }
                    k
                }
            },
            None => self.long.get(field).copied(),
        };
        if let Some(k) = found {
            return Ok(k);
        }
        let s = utf8(field)?;
        let k = self.values.len() as i32;
        self.values.push(s.to_string());
        match packed {
            Some(p) => {
                self.recent.put(p, k);
                self.short.insert(p, k);
            }
            None => {
                self.long.insert(field.into(), k);
            }
        }
        Ok(k)
    }

    /// The column built so far (with validity `nulls`); the builder starts a new dictionary.
    fn take(&mut self, nulls: Option<NullBuffer>) -> Result<ArrayRef> {
        let k = Int32Array::new(ScalarBuffer::from(std::mem::take(&mut self.keys)), nulls);
        let vals = StringArray::from_iter_values(self.values.iter());
        self.short.clear();
        *self.recent = Recent::default();
        self.long.clear();
        self.values.clear();
        Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
            k,
            Arc::new(vals),
        )?))
    }
}

/// Packs a key of at most 7 bytes and its length into a `u64` (never 0: the length is in the
/// top byte and an empty field is a null, never packed). Two overlapping loads instead of a
/// copy of `len` bytes, which compiled to a `memcpy` call and was the decoder's hottest line.
#[inline]
fn pack_short(b: &[u8]) -> Option<u64> {
    let n = b.len();
    let low = match n {
        0 => 0,
        1 => u64::from(b[0]),
        2 | 3 => {
            u64::from(u16::from_le_bytes([b[0], b[1]])) | (u64::from(b[n - 1]) << ((n - 1) * 8))
        }
        4..=7 => {
            let head = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let tail = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
            u64::from(head) | (u64::from(tail) << ((n - 4) * 8))
        }
        _ => return None,
    };
    Some(low | ((n as u64) << 56))
}

/// A direct-mapped cache of packed short keys and their dictionary keys (64 slots; a packed
/// key is never 0, so 0 marks an empty slot).
#[derive(Clone)]
struct Recent([(u64, i32); 64]);

impl Default for Recent {
    fn default() -> Self {
        Recent([(0, 0); 64])
    }
}

impl Recent {
    #[inline]
    fn slot(p: u64) -> usize {
        (p.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
    }

    #[inline]
    fn get(&self, p: u64) -> Option<i32> {
        let (key, k) = self.0[Self::slot(p)];
        (key == p).then_some(k)
    }

    #[inline]
    fn put(&mut self, p: u64, k: i32) {
        self.0[Self::slot(p)] = (p, k);
    }
}

#[inline]
fn push_null(col: &mut Column, row: usize) {
    col.nulls.push(row as u32);
    match &mut col.builder {
        Builder::Ts(v) | Builder::I64(v) => v.push(0),
        Builder::F64(v, _) => v.push(0.0),
        Builder::I8(v) | Builder::Side(v) => v.push(0),
        Builder::Dict(d) => d.keys.push(0),
        Builder::Utf8 { offsets, data } => offsets.push(data.len() as i32),
        Builder::Const => {}
    }
}

#[inline]
fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

#[inline]
fn field_bytes<'a>(rec: &'a [u8], sp: Span, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let raw = &rec[sp.start as usize..sp.end as usize];
    if sp.kind == 2 {
        unescape(raw, scratch);
        scratch
    } else {
        raw
    }
}

fn strip_terminator(rec: &[u8]) -> &[u8] {
    let r = rec.strip_suffix(b"\n").unwrap_or(rec);
    r.strip_suffix(b"\r").unwrap_or(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::options::ReadOptions;

    fn decode_all(
        text: &[u8],
        piece: usize,
        batch: usize,
        strict: bool,
    ) -> Result<(Vec<Chunk>, Vec<Reject>)> {
        let opts = ReadOptions {
            strict,
            ..ReadOptions::default()
        };
        let plan = Arc::new(CsvPlan::build(text, true, "t.csv", &opts)?);
        let mut dec = CsvDecoder::new(plan, 1, batch, 1, true);
        let mut out = Vec::new();
        for part in text.chunks(piece) {
            let mut off = 0;
            while off < part.len() {
                off += dec.decode(&part[off..])?;
                if dec.is_full() {
                    out.extend(dec.flush()?);
                }
            }
        }
        dec.finish()?;
        out.extend(dec.flush()?);
        Ok((out, dec.drain_rejects()))
    }

    #[test]
    fn any_split_and_batch_size_decodes_the_same() {
        let text = b"ts,symbol,price\r\n2021-01-04T14:30:00Z,\"A\nB\",1.5\r\n\r\n2021-01-04T14:30:01Z,C,\n2021-01-04T14:30:02Z,C,x\n2021-01-04T14:30:03Z,D,2";
        let (want, rej) = decode_all(text, text.len(), 1000, false).unwrap();
        let lines = |c: &[Chunk]| {
            c.iter()
                .flat_map(|c| c.lines().values().to_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(&want), vec![2, 5, 7]);
        assert_eq!((rej[0].line, rej[0].reason.as_str()), (6, "bad_number"));
        for piece in 1..text.len() {
            for batch in [1, 2, 5] {
                let (got, r) = decode_all(text, piece, batch, false).unwrap();
                assert_eq!(lines(&got), lines(&want), "piece {piece} batch {batch}");
                assert_eq!(r, rej);
                let concat = Chunk::concat(&got).unwrap();
                assert_eq!(concat.batch(), Chunk::concat(&want).unwrap().batch());
            }
        }
        let err = decode_all(text, 7, 2, true).unwrap_err();
        assert!(matches!(err, Error::Parse { line: 6, .. }), "{err}");
    }

    /// The packed form of a short key is its bytes and its length, as a copy into a zeroed
    /// word would make it, for every length; so distinct keys never share a packed key.
    #[test]
    fn short_keys_pack_to_their_bytes_and_length() {
        let bytes = b"\x00\x01ABCDEFG\xff";
        for n in 0..=7 {
            for start in 0..=bytes.len() - n {
                let b = &bytes[start..start + n];
                let mut w = [0u8; 8];
                w[..n].copy_from_slice(b);
                w[7] = n as u8;
                assert_eq!(pack_short(b), Some(u64::from_le_bytes(w)), "{b:?}");
            }
        }
        assert_eq!(pack_short(b"ABCDEFGH"), None);
    }

    /// A dictionary column of more distinct values than the recent-key cache has slots, in
    /// shuffled order and split over several batches, gives every row its own text back.
    #[test]
    fn many_distinct_dictionary_values_decode_to_their_text() {
        let names: Vec<String> = (0..300u32)
            .map(|i| format!("S{}", (i * 7919) % 1000))
            .chain(["LONGNAME1".to_string(), "X".into(), "YZ".into()])
            .collect();
        let mut text = String::from("ts,symbol,price\n");
        let mut want = Vec::new();
        for r in 0..2000usize {
            let name = &names[(r * 31 + r / 7) % names.len()];
            text.push_str(&format!("2021-01-04T14:30:00Z,{name},1.5\n"));
            want.push(name.clone());
        }
        let (chunks, rejects) = decode_all(text.as_bytes(), 4096, 700, false).unwrap();
        assert!(rejects.is_empty());
        let mut got = Vec::new();
        for c in &chunks {
            let col = c.batch().column_by_name("symbol").unwrap();
            let col = arrow_cast::cast(col, &arrow_schema::DataType::Utf8).unwrap();
            let col = col.as_any().downcast_ref::<StringArray>().unwrap();
            got.extend(col.iter().map(|v| v.unwrap().to_string()));
        }
        assert_eq!(got, want);
    }
}
