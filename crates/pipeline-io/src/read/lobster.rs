//! LOBSTER message and order-book files read as one source.
//!
//! LOBSTER (lobsterdata.com) rebuilds NASDAQ TotalView-ITCH into two files per symbol and
//! day: `<SYM>_<date>_<start>_<end>_message_<N>.csv` (time, type, order id, size, price,
//! direction) and `…_orderbook_<N>.csv` (`ask_price_i, ask_size_i, bid_price_i, bid_size_i`
//! for i = 1..N). The files have no key column: row k of the order book is the book *after*
//! message k. [`LobsterSource`] reads both and joins them row by row:
//!
//! * level 1 goes to the canonical `bid`, `ask`, `bid_size`, `ask_size`; deeper levels to
//!   `bid_price_k`, `bid_size_k`, `ask_price_k`, `ask_size_k` (k = 2..N), sizes as Float64;
//!   LOBSTER's fillers for an empty level (price ±9,999,999,999, size 0) become nulls;
//! * rows are matched by line number, so a malformed message row (quarantined by the
//!   decoder) does not shift the book of the rows after it; a malformed book row leaves the
//!   book columns of its message null and is logged as a warning (the book file is not a
//!   source of its own, so its rows are not counted in the ledger);
//! * `side` is the aggressor side of executions: LOBSTER's `direction` is the side of the
//!   *resting* order, so an execution (type 4 or 5) against a resting buy order
//!   (`direction = 1`) was seller-initiated (`side = -1`). Other messages have no aggressor
//!   (`side` null);
//!   the raw `direction` is kept in its own column (the side of the order the message is
//!   about: for adds, cancels and deletes, the order's own side).
//!
//! Without an order-book file beside the message file the source yields the messages alone
//! (with `side` and `direction`). An order-book file is never read on its own: it has no
//! timestamps.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int8Array, Int64Array, RecordBatch};
use arrow_buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{
    Canonical, Chunk, Error, LINE_COLUMN, Progress, Reject, Result, Source, is_execution_event,
};

/// Which LOBSTER file a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LobsterRole {
    /// The message file.
    Message,
    /// The order-book file.
    Orderbook,
}

/// If `path` is named like a LOBSTER file (`<SYM>_<YYYY-MM-DD>_<start>_<end>_<message|
/// orderbook>_<levels>.<ext>`), its role and the path its partner file would have.
pub(crate) fn lobster_role(path: &Path) -> Option<(LobsterRole, PathBuf)> {
    let name = path.file_name()?.to_str()?;
    let parts: Vec<&str> = name.split('_').collect();
    let n = parts.len();
    if n < 6 {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let date = parts[n - 5].as_bytes();
    let is_date = date.len() == 10
        && date[4] == b'-'
        && date[7] == b'-'
        && date
            .iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let levels = parts[n - 1].split('.').next().unwrap_or("");
    if !(is_date && digits(parts[n - 4]) && digits(parts[n - 3]) && digits(levels)) {
        return None;
    }
    let (role, other) = match parts[n - 2] {
        "message" => (LobsterRole::Message, "orderbook"),
        "orderbook" => (LobsterRole::Orderbook, "message"),
        _ => return None,
    };
    let mut partner: Vec<&str> = parts.clone();
    partner[n - 2] = other;
    Some((role, path.with_file_name(partner.join("_"))))
}

/// The error for an order-book file opened on its own.
pub(crate) fn lone_orderbook_error(path: &Path) -> Error {
    let message = lobster_role(path)
        .map(|(_, m)| m.display().to_string())
        .unwrap_or_else(|| "its `…_message_N.csv` file".into());
    Error::Schema(format!(
        "{}: a LOBSTER order-book file has no timestamps (row k is the book after message k); \
         read its message file {message} instead, which is joined with it row by row",
        path.display()
    ))
}

/// LOBSTER's price of an empty ask level (9,999,999,999 × 0.0001); the bid filler is its
/// negative. Prices are compared after scaling, at this magnitude or beyond.
const FILLER_PRICE: f64 = 999_999.0;

/// Where each output column of the joined source comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Col {
    /// Column `i` of the message chunk.
    Message(usize),
    /// The aggressor side computed from `event_type` and `direction`.
    Side,
    /// Column `i` of the gathered book columns.
    Book(usize),
}

/// The book columns of `levels` levels, in output order: level 1's canonical columns, then
/// `bid_price_k`, `bid_size_k`, `ask_price_k`, `ask_size_k` for each deeper level.
fn book_names(levels: usize) -> Vec<String> {
    if levels == 0 {
        return Vec::new();
    }
    let mut v: Vec<String> = ["bid", "ask", "bid_size", "ask_size"]
        .map(String::from)
        .to_vec();
    for k in 2..=levels {
        v.extend([
            format!("bid_price_{k}"),
            format!("bid_size_{k}"),
            format!("ask_price_{k}"),
            format!("ask_size_{k}"),
        ]);
    }
    v
}

/// The joined schema (data columns, no `_line`) and where each column comes from, for a
/// message schema and an order book of `levels` levels (`None`: no order-book file).
/// Canonical columns come first in canonical order, then the message file's other columns
/// (`direction`), then the deeper book levels.
fn layout(msg: &Schema, levels: Option<usize>, keep: Option<&[String]>) -> (Vec<Field>, Vec<Col>) {
    let mut cols: Vec<(Field, Col)> = Vec::new();
    for (i, f) in msg.fields().iter().enumerate() {
        if f.name() != LINE_COLUMN {
            cols.push((f.as_ref().clone(), Col::Message(i)));
        }
    }
    if msg.column_with_name("side").is_none() {
        cols.push((Canonical::Side.field(), Col::Side));
    }
    for (j, name) in book_names(levels.unwrap_or(0)).into_iter().enumerate() {
        cols.push((Field::new(name, DataType::Float64, true), Col::Book(j)));
    }
    if let Some(keep) = keep {
        cols.retain(|(f, _)| keep.iter().any(|k| k == f.name()));
    }
    // Canonical first (in canonical order), then the rest in the order above.
    let rank =
        |f: &Field| Canonical::from_name(f.name()).map_or(Canonical::ALL.len(), |c| c as usize);
    cols.sort_by_key(|(f, _)| rank(f));
    cols.into_iter().unzip()
}

/// The data schema (no `_line`) of a joined LOBSTER source.
pub(crate) fn joined_schema(
    msg: &Schema,
    levels: Option<usize>,
    keep: Option<&[String]>,
) -> SchemaRef {
    Arc::new(Schema::new(layout(msg, levels, keep).0))
}

/// The number of book levels of an order-book plan's schema: its price and size columns
/// (not `symbol` or `_line`), four per level.
pub(crate) fn levels_of(book: &Schema) -> usize {
    let n = book
        .fields()
        .iter()
        .filter(|f| f.name() != LINE_COLUMN && f.name() != "symbol")
        .count();
    n / 4
}

/// One book chunk converted to the output columns, with its lines.
struct BookChunk {
    lines: Vec<u64>,
    cols: Vec<Float64Array>,
}

/// The order-book side of a [`LobsterSource`].
struct Book {
    src: Box<dyn Source>,
    name: String,
    levels: usize,
    pending: VecDeque<BookChunk>,
    /// Rows of `pending[0]` already consumed.
    offset: usize,
    done: bool,
    /// Message rows that found no book row (book row malformed or missing).
    unmatched: u64,
    /// Book rows quarantined by the decoder, with the first one's line.
    bad: u64,
    first_bad: Option<u64>,
}

impl Book {
    /// Converts a book chunk: level-1 canonical columns and deeper levels as Float64, with
    /// LOBSTER's empty-level fillers as nulls.
    fn convert(&self, chunk: &Chunk) -> Result<BookChunk> {
        let names = book_names(self.levels);
        let n = chunk.num_rows();
        let mut cols = Vec::with_capacity(names.len());
        for quad in names.chunks(4) {
            // (bid price, bid size, ask price, ask size) of this level.
            let get = |name: &str| -> Result<Float64Array> {
                // The order-book plan names level 1 with the canonical names (its layout
                // names `bid_price_1`… are recognised as `bid`…) and deeper levels as is.
                let a = chunk
                    .column_by_name(name)
                    .ok_or_else(|| Error::Schema(format!("{}: no column `{name}`", self.name)))?;
                let a = arrow_cast::cast(a, &DataType::Float64)?;
                Ok(a.as_any()
                    .downcast_ref::<Float64Array>()
                    .cloned()
                    .unwrap_or_else(|| Float64Array::new_null(n)))
            };
            let (bp, bs, ap, as_) = if quad[0] == "bid" {
                (get("bid")?, get("bid_size")?, get("ask")?, get("ask_size")?)
            } else {
                (
                    get(&quad[0])?,
                    get(&quad[1])?,
                    get(&quad[2])?,
                    get(&quad[3])?,
                )
            };
            let empty = |p: &Float64Array| {
                BooleanBuffer::collect_bool(n, |i| p.is_valid(i) && p.value(i).abs() < FILLER_PRICE)
            };
            let (bid_ok, ask_ok) = (empty(&bp), empty(&ap));
            let masked = |a: &Float64Array, ok: &BooleanBuffer| {
                let valid = match a.nulls() {
                    Some(nl) => nl.inner() & ok,
                    None => ok.clone(),
                };
                Float64Array::new(a.values().clone(), Some(NullBuffer::new(valid)))
            };
            let (bid, bid_size, ask, ask_size) = (
                masked(&bp, &bid_ok),
                masked(&bs, &bid_ok),
                masked(&ap, &ask_ok),
                masked(&as_, &ask_ok),
            );
            if quad[0] == "bid" {
                cols.extend([bid, ask, bid_size, ask_size]);
            } else {
                cols.extend([bid, bid_size, ask, ask_size]);
            }
        }
        Ok(BookChunk {
            lines: chunk.lines().values().to_vec(),
            cols,
        })
    }

    /// Pulls book chunks until the buffer reaches line `last` or the book ends.
    fn fill_to(&mut self, last: u64) -> Result<()> {
        while !self.done
            && self
                .pending
                .back()
                .and_then(|c| c.lines.last())
                .is_none_or(|&l| l < last)
        {
            match self.src.next() {
                Some(c) => {
                    let c = c?;
                    let converted = self.convert(&c)?;
                    self.pending.push_back(converted);
                }
                None => self.done = true,
            }
            for r in self.src.drain_rejects() {
                self.bad += 1;
                self.first_bad.get_or_insert(r.line);
            }
        }
        Ok(())
    }

    /// The book columns for message rows on `lines` (increasing): each row's book row is the
    /// one on the same line; rows without one get nulls.
    fn gather(&mut self, lines: &[u64]) -> Result<Vec<ArrayRef>> {
        let width = book_names(self.levels).len();
        let Some(&last) = lines.last() else {
            return Ok((0..width)
                .map(|_| Arc::new(Float64Array::new_null(0)) as ArrayRef)
                .collect());
        };
        self.fill_to(last)?;
        // Fast path: the next book rows carry exactly these lines, in one chunk.
        if let Some(front) = self.pending.front() {
            let at = self.offset;
            let n = lines.len();
            if front.lines.len() >= at + n && front.lines[at..at + n] == *lines {
                let cols = front
                    .cols
                    .iter()
                    .map(|c| Arc::new(c.slice(at, n)) as ArrayRef)
                    .collect();
                self.offset += n;
                if self.offset == front.lines.len() {
                    self.pending.pop_front();
                    self.offset = 0;
                }
                return Ok(cols);
            }
        }
        let mut picks: Vec<Option<(usize, usize)>> = Vec::with_capacity(lines.len());
        let (mut ci, mut ri) = (0usize, self.offset);
        for &l in lines {
            while let Some(c) = self.pending.get(ci) {
                if ri >= c.lines.len() {
                    ci += 1;
                    ri = 0;
                } else if c.lines[ri] < l {
                    ri += 1;
                } else {
                    break;
                }
            }
            match self.pending.get(ci) {
                Some(c) if ri < c.lines.len() && c.lines[ri] == l => {
                    picks.push(Some((ci, ri)));
                    ri += 1;
                }
                _ => {
                    picks.push(None);
                    self.unmatched += 1;
                }
            }
        }
        let cols = (0..width)
            .map(|j| {
                let values: Vec<f64> = picks
                    .iter()
                    .map(|p| p.map_or(0.0, |(c, r)| self.pending[c].cols[j].value(r)))
                    .collect();
                let valid = BooleanBuffer::collect_bool(picks.len(), |i| {
                    picks[i].is_some_and(|(c, r)| self.pending[c].cols[j].is_valid(r))
                });
                Arc::new(Float64Array::new(
                    ScalarBuffer::from(values),
                    Some(NullBuffer::new(valid)),
                )) as ArrayRef
            })
            .collect();
        // Drop what is consumed: everything before (ci, ri).
        for _ in 0..ci.min(self.pending.len()) {
            self.pending.pop_front();
        }
        self.offset = ri;
        if self
            .pending
            .front()
            .is_some_and(|c| self.offset >= c.lines.len())
        {
            self.pending.pop_front();
            self.offset = 0;
        }
        Ok(cols)
    }
}

/// A LOBSTER message file joined with its order-book file (see the module docs).
pub(crate) struct LobsterSource {
    messages: Box<dyn Source>,
    book: Option<Book>,
    schema: SchemaRef,
    cols: Vec<Col>,
    name: String,
    finished: bool,
}

impl LobsterSource {
    /// Wraps the message source `messages` of file `path`; `book` is the order-book file's
    /// source when there is one (with its name).
    pub(crate) fn new(
        path: &Path,
        messages: Box<dyn Source>,
        book: Option<(String, Box<dyn Source>)>,
        keep: Option<&[String]>,
    ) -> Self {
        let msg_schema = messages.schema();
        let levels = book.as_ref().map(|(_, b)| levels_of(&b.schema()));
        let (mut fields, cols) = layout(&msg_schema, levels, keep);
        fields.push(Field::new(LINE_COLUMN, DataType::UInt64, false));
        LobsterSource {
            messages,
            book: book.map(|(name, src)| Book {
                src,
                name,
                levels: levels.unwrap_or(0),
                pending: VecDeque::new(),
                offset: 0,
                done: false,
                unmatched: 0,
                bad: 0,
                first_bad: None,
            }),
            schema: Arc::new(Schema::new(fields)),
            cols,
            name: path.display().to_string(),
            finished: false,
        }
    }

    fn join(&mut self, chunk: Chunk) -> Result<Chunk> {
        let n = chunk.num_rows();
        let book_cols = match &mut self.book {
            Some(b) => b.gather(chunk.lines().values())?,
            None => Vec::new(),
        };
        let side = self
            .cols
            .contains(&Col::Side)
            .then(|| aggressor_side(&chunk, n))
            .transpose()?;
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.cols.len() + 1);
        for c in &self.cols {
            arrays.push(match *c {
                Col::Message(i) => chunk.batch().column(i).clone(),
                Col::Side => side
                    .clone()
                    .unwrap_or_else(|| Arc::new(Int8Array::new_null(n))),
                Col::Book(j) => book_cols
                    .get(j)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Float64Array::new_null(n))),
            });
        }
        arrays.push(Arc::new(chunk.lines().clone()));
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        Chunk::new(batch, chunk.source(), chunk.seq())
    }

    fn report(&mut self) {
        if let Some(b) = &mut self.book {
            // Book rows beyond the last message row.
            let _ = b.fill_to(u64::MAX);
            let extra: usize = b
                .pending
                .iter()
                .map(|c| c.lines.len())
                .sum::<usize>()
                .saturating_sub(b.offset);
            if b.bad > 0 || b.unmatched > 0 || extra > 0 {
                tracing::warn!(
                    "{}: joined with {}: {} message rows without a book row, {} malformed book rows (first on line {}), {} book rows past the last message",
                    self.name,
                    b.name,
                    b.unmatched,
                    b.bad,
                    b.first_bad.map_or("-".into(), |l| l.to_string()),
                    extra
                );
            }
        }
    }
}

/// `-direction` for executions (types 4 and 5), else null: the aggressor side of LOBSTER
/// messages (see the module docs). A cross trade (type 6) has no aggressor.
fn aggressor_side(chunk: &Chunk, n: usize) -> Result<ArrayRef> {
    let (Some(et), Some(dir)) = (
        chunk.column_by_name("event_type"),
        chunk.column_by_name("direction"),
    ) else {
        return Ok(Arc::new(Int8Array::new_null(n)));
    };
    let et = arrow_cast::cast(et, &DataType::Int8)?;
    let dir = arrow_cast::cast(dir, &DataType::Int64)?;
    let (Some(et), Some(dir)) = (
        et.as_any().downcast_ref::<Int8Array>(),
        dir.as_any().downcast_ref::<Int64Array>(),
    ) else {
        return Err(Error::Internal(
            "LOBSTER side: unexpected column types".into(),
        ));
    };
    Ok(Arc::new(
        (0..n)
            .map(|i| {
                let t = et.is_valid(i).then(|| et.value(i))?;
                let d = dir.is_valid(i).then(|| dir.value(i))?;
                (is_execution_event(t) && t != 6 && (d == 1 || d == -1)).then_some(-(d as i8))
            })
            .collect::<Int8Array>(),
    ))
}

impl Iterator for LobsterSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        if self.finished {
            return None;
        }
        match self.messages.next() {
            Some(Ok(c)) => Some(self.join(c)),
            Some(Err(e)) => {
                self.finished = true;
                Some(Err(e))
            }
            None => {
                self.finished = true;
                self.report();
                None
            }
        }
    }
}

impl Source for LobsterSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn progress(&self) -> Progress {
        let m = self.messages.progress();
        match &self.book {
            Some(b) => {
                let p = b.src.progress();
                Progress {
                    bytes_read: m.bytes_read + p.bytes_read,
                    bytes_total: m.bytes_total.zip(p.bytes_total).map(|(a, b)| a + b),
                    rows_read: m.rows_read,
                }
            }
            None => m,
        }
    }

    fn drain_rejects(&mut self) -> Vec<Reject> {
        self.messages.drain_rejects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pair_up() {
        let m = Path::new("d/AAPL_2012-06-21_34200000_57600000_message_1.csv");
        let (role, partner) = lobster_role(m).unwrap();
        assert_eq!(role, LobsterRole::Message);
        assert_eq!(
            partner,
            Path::new("d/AAPL_2012-06-21_34200000_57600000_orderbook_1.csv")
        );
        let (role, back) = lobster_role(&partner).unwrap();
        assert_eq!((role, back.as_path()), (LobsterRole::Orderbook, m));
        assert!(lobster_role(Path::new("AAPL_2024-03-08.csv")).is_none());
        assert!(lobster_role(Path::new("a_2012-06-21_1_2_trades_1.csv")).is_none());
    }

    #[test]
    fn joined_columns_are_canonical_first() {
        let msg = Schema::new(vec![
            Canonical::Ts.field(),
            Canonical::Symbol.field(),
            Canonical::Price.field(),
            Canonical::Size.field(),
            Canonical::EventType.field(),
            Canonical::OrderId.field(),
            Field::new("direction", DataType::Int8, true),
        ]);
        let s = joined_schema(&msg, Some(2), None);
        let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
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
                "event_type",
                "order_id",
                "side",
                "direction",
                "bid_price_2",
                "bid_size_2",
                "ask_price_2",
                "ask_size_2"
            ]
        );
    }
}
