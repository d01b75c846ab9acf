//! Event-time windows per key: tumbling, sliding, session and count windows with aggregates,
//! fed through the bounded reorder buffer (watermark = latest time − allowed lateness).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{
    Chunk, Emitter, Error, LINE_COLUMN, Result, SourceId, Stage, StageKey, StageOrder, dict_type,
    ts_type,
};
use serde::{Deserialize, Serialize};

use crate::reorder::{Key, Released, Reorderer};

/// How rows are grouped into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows `[k·size, (k+1)·size)`.
    Tumbling {
        /// Window length.
        size: Duration,
    },
    /// Overlapping windows of `size` ending at every multiple of `step` (`size` must be a
    /// multiple of `step`). A window is emitted when its newest `step` slot holds at least one
    /// row, so each input row is the "own" row of exactly one window and the ledger balances.
    Sliding {
        /// Window length.
        size: Duration,
        /// Distance between window ends.
        step: Duration,
    },
    /// A window closes when the next row of the key is more than `gap` after the last; it spans
    /// `[first ts, last ts + gap)`.
    Session {
        /// Inactivity gap that ends a session.
        gap: Duration,
    },
    /// Every `rows` rows of a key form a window spanning `[first ts, last ts]`; the last window
    /// of a key may be shorter.
    Count {
        /// Rows per window.
        rows: usize,
    },
}

/// An aggregate function over a numeric column (nulls are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AggFn {
    /// Number of non-null values.
    Count,
    /// Sum of values.
    Sum,
    /// Mean of values.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// First value in event-time order.
    First,
    /// Last value in event-time order.
    Last,
}

impl AggFn {
    fn label(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::Sum => "sum",
            AggFn::Mean => "mean",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::First => "first",
            AggFn::Last => "last",
        }
    }
}

/// One output column: `func` over `column`, named `output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agg {
    /// The input column.
    pub column: String,
    /// The function.
    pub func: AggFn,
    /// The output column name.
    pub output: String,
}

impl Agg {
    /// `func` over `column`, output as `{column}_{func}` (e.g. `price_mean`).
    pub fn new(func: AggFn, column: &str) -> Self {
        Agg {
            column: column.into(),
            func,
            output: format!("{column}_{}", func.label()),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ValAcc {
    n: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    first: Option<f64>,
    last: Option<f64>,
}

impl ValAcc {
    fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        self.first.get_or_insert(v);
        self.last = Some(v);
    }

    fn merge(&mut self, o: &ValAcc) {
        self.n += o.n;
        self.sum += o.sum;
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, o.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if self.first.is_none() {
            self.first = o.first;
        }
        if o.last.is_some() {
            self.last = o.last;
        }
    }

    fn get(&self, f: AggFn) -> Option<f64> {
        match f {
            AggFn::Count => Some(self.n as f64),
            AggFn::Sum => Some(self.sum),
            AggFn::Mean => (self.n > 0).then(|| self.sum / self.n as f64),
            AggFn::Min => self.min,
            AggFn::Max => self.max,
            AggFn::First => self.first,
            AggFn::Last => self.last,
        }
    }
}

/// Rows accumulated into one window (or one sliding slot).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Acc {
    start: i64,
    first_ts: i64,
    last_ts: i64,
    rows: u64,
    line: u64,
    source: SourceId,
    vals: Vec<ValAcc>,
}

impl Acc {
    fn new(start: i64, ts: i64, line: u64, source: SourceId, n: usize) -> Self {
        Acc {
            start,
            first_ts: ts,
            last_ts: ts,
            rows: 0,
            line,
            source,
            vals: vec![ValAcc::default(); n],
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct KeyWin {
    cur: Option<Acc>,
    slots: VecDeque<Acc>,
}

/// One output row.
struct OutRow {
    key: Arc<Key>,
    start: i64,
    end: i64,
    rows: u64,
    own: u64,
    line: u64,
    vals: Vec<Option<f64>>,
}

#[derive(Serialize)]
struct WindowConfig<'a> {
    key: &'a str,
    ts: &'a str,
    kind: &'a WindowKind,
    aggs: &'a [Agg],
    lateness_ns: u128,
}

/// A per-key stage that emits one row per window per key: the key, `window_start`,
/// `window_end`, `rows` (rows in the window) and one Float64 column per [`Agg`], with `_line` =
/// the line of the window's first own row. Rows pass through the reorder buffer first, so rows
/// within `lateness` are aggregated in event-time order and later ones are quarantined as
/// `late`. In the ledger, the rows folded into a window row count as removed under the
/// stage's name (they live on in the aggregate).
///
/// ```
/// use std::time::Duration;
/// use pipeline_stream::{Agg, AggFn, WindowKind, WindowStage};
/// let w = WindowStage::new(
///     "bars_1s", "symbol", "ts",
///     WindowKind::Tumbling { size: Duration::from_secs(1) },
///     vec![Agg::new(AggFn::Last, "price"), Agg::new(AggFn::Sum, "size")],
///     Duration::from_millis(100),
/// )?;
/// # use pipeline_core::Stage;
/// assert_eq!(w.name(), "bars_1s");
/// # Ok::<(), pipeline_core::Error>(())
/// ```
pub struct WindowStage {
    name: String,
    key: String,
    ts: String,
    kind: WindowKind,
    aggs: Vec<Agg>,
    lateness: Duration,
    cols: Vec<String>,
    buf: Reorderer,
    wins: BTreeMap<Key, KeyWin>,
    schema: SchemaRef,
    last: (SourceId, u64),
}

fn nanos(d: Duration, what: &str) -> Result<i64> {
    match i64::try_from(d.as_nanos()) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::config(
            format!("window.{what}"),
            "must be between 1 ns and 292 years",
        )),
    }
}

impl WindowStage {
    /// A window stage named `name` over `ts_col`, per `key_col`.
    pub fn new(
        name: &str,
        key_col: &str,
        ts_col: &str,
        kind: WindowKind,
        aggs: Vec<Agg>,
        lateness: Duration,
    ) -> Result<Self> {
        match kind {
            WindowKind::Tumbling { size } => {
                nanos(size, "size")?;
            }
            WindowKind::Sliding { size, step } => {
                let (z, p) = (nanos(size, "size")?, nanos(step, "step")?);
                if z % p != 0 {
                    return Err(Error::config(
                        "window.size",
                        "a sliding window's size must be a multiple of its step",
                    ));
                }
            }
            WindowKind::Session { gap } => {
                nanos(gap, "gap")?;
            }
            WindowKind::Count { rows } => {
                if rows == 0 {
                    return Err(Error::config("window.rows", "must be at least 1"));
                }
            }
        }
        let mut fields = vec![
            Field::new(key_col, dict_type(), true),
            Field::new("window_start", ts_type(), false),
            Field::new("window_end", ts_type(), false),
            Field::new("rows", DataType::UInt64, false),
        ];
        for a in &aggs {
            fields.push(Field::new(&a.output, DataType::Float64, true));
        }
        fields.push(Field::new(LINE_COLUMN, DataType::UInt64, false));
        let mut cols: Vec<String> = Vec::new();
        for a in &aggs {
            if !cols.contains(&a.column) {
                cols.push(a.column.clone());
            }
        }
        Ok(WindowStage {
            name: name.into(),
            key: key_col.into(),
            ts: ts_col.into(),
            kind,
            aggs,
            lateness,
            cols,
            buf: Reorderer::new(key_col, ts_col, lateness),
            wins: BTreeMap::new(),
            schema: Arc::new(Schema::new(fields)),
            last: (0, 0),
        })
    }

    /// Feeds released rows (in order) into the windows, collecting closed windows.
    fn feed(&mut self, rows: &[Released], out: &mut Vec<OutRow>) -> Result<()> {
        for r in rows {
            let e = self
                .buf
                .retained(r.chunk)
                .ok_or_else(|| Error::Internal(format!("window buffer lost chunk {}", r.chunk)))?;
            let (line, source) = (e.chunk.line(r.row), e.chunk.source());
            let vals: Vec<Option<f64>> = e.cols.iter().map(|c| c[r.row]).collect();
            let n = self.cols.len();
            let w = self.wins.entry((*r.key).clone()).or_default();
            let t = r.ts;
            match self.kind {
                WindowKind::Tumbling { size } => {
                    let s = nanos(size, "size")?;
                    let start = t.div_euclid(s) * s;
                    if w.cur.as_ref().is_some_and(|c| c.start != start)
                        && let Some(c) = w.cur.take()
                    {
                        out.push(close(
                            &r.key,
                            &c,
                            c.start,
                            c.start + s,
                            &self.aggs,
                            &self.cols,
                        ));
                    }
                    let c = w
                        .cur
                        .get_or_insert_with(|| Acc::new(start, t, line, source, n));
                    add(c, t, &vals);
                }
                WindowKind::Session { gap } => {
                    let g = nanos(gap, "gap")?;
                    if w.cur.as_ref().is_some_and(|c| t - c.last_ts > g)
                        && let Some(c) = w.cur.take()
                    {
                        out.push(close(
                            &r.key,
                            &c,
                            c.first_ts,
                            c.last_ts + g,
                            &self.aggs,
                            &self.cols,
                        ));
                    }
                    let c = w.cur.get_or_insert_with(|| Acc::new(t, t, line, source, n));
                    add(c, t, &vals);
                }
                WindowKind::Count { rows } => {
                    let c = w.cur.get_or_insert_with(|| Acc::new(t, t, line, source, n));
                    add(c, t, &vals);
                    if c.rows as usize >= rows
                        && let Some(c) = w.cur.take()
                    {
                        out.push(close(
                            &r.key, &c, c.first_ts, c.last_ts, &self.aggs, &self.cols,
                        ));
                    }
                }
                WindowKind::Sliding { size, step } => {
                    let (z, p) = (nanos(size, "size")?, nanos(step, "step")?);
                    let slot = t.div_euclid(p) * p;
                    if w.slots.back().is_some_and(|b| b.start != slot) {
                        out.extend(close_sliding(
                            &r.key, &w.slots, z, p, &self.aggs, &self.cols,
                        ));
                        while w.slots.front().is_some_and(|f| f.start < slot + p - z) {
                            w.slots.pop_front();
                        }
                    }
                    if w.slots.back().is_none_or(|b| b.start != slot) {
                        w.slots.push_back(Acc::new(slot, t, line, source, n));
                    }
                    if let Some(b) = w.slots.back_mut() {
                        add(b, t, &vals);
                    }
                }
            }
        }
        self.buf.done(rows);
        Ok(())
    }

    fn build(&self, rows: Vec<OutRow>, source: SourceId, seq: u64, em: &mut Emitter) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut keys = StringDictionaryBuilder::<Int32Type>::new();
        for r in &rows {
            match r.key.as_ref() {
                Some(k) => keys.append_value(k),
                None => keys.append_null(),
            }
            em.aggregate(&self.name, r.own.saturating_sub(1));
        }
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(keys.finish()),
            Arc::new(
                TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.start))
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.end))
                    .with_timezone("UTC"),
            ),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.rows))),
        ];
        for i in 0..self.aggs.len() {
            cols.push(Arc::new(
                rows.iter().map(|r| r.vals[i]).collect::<Float64Array>(),
            ));
        }
        cols.push(Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.line),
        )));
        let batch = RecordBatch::try_new(self.schema.clone(), cols)?;
        em.emit(Chunk::new(batch, source, seq)?);
        Ok(())
    }
}

fn add(c: &mut Acc, t: i64, vals: &[Option<f64>]) {
    c.rows += 1;
    c.last_ts = t;
    for (acc, v) in c.vals.iter_mut().zip(vals) {
        if let Some(v) = v {
            acc.add(*v);
        }
    }
}

fn close(key: &Arc<Key>, c: &Acc, start: i64, end: i64, aggs: &[Agg], cols: &[String]) -> OutRow {
    OutRow {
        key: key.clone(),
        start,
        end,
        rows: c.rows,
        own: c.rows,
        line: c.line,
        vals: aggs
            .iter()
            .map(|a| {
                let i = cols.iter().position(|c| *c == a.column).unwrap_or(0);
                c.vals.get(i).and_then(|v| v.get(a.func))
            })
            .collect(),
    }
}

/// The window ending with the newest slot: merges the slots inside it. `rows` counts every row
/// in the window, but only the newest slot's rows are its own (folded into it in the ledger).
fn close_sliding(
    key: &Arc<Key>,
    slots: &VecDeque<Acc>,
    z: i64,
    p: i64,
    aggs: &[Agg],
    cols: &[String],
) -> Option<OutRow> {
    let newest = slots.back()?;
    let end = newest.start + p;
    let start = end - z;
    let mut merged = Acc::new(
        start,
        newest.first_ts,
        newest.line,
        newest.source,
        newest.vals.len(),
    );
    for s in slots.iter().filter(|s| s.start >= start) {
        merged.rows += s.rows;
        for (m, v) in merged.vals.iter_mut().zip(&s.vals) {
            m.merge(v);
        }
    }
    let mut row = close(key, &merged, start, end, aggs, cols);
    row.own = newest.rows;
    Some(row)
}

#[derive(Serialize, Deserialize)]
struct WinSnapshot {
    wins: Vec<(Key, KeyWin)>,
    buffer: Vec<u8>,
}

impl Stage for WindowStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: self.key.clone(),
        }
    }

    fn key(&self) -> StageKey {
        StageKey::of(
            &self.name,
            &WindowConfig {
                key: &self.key,
                ts: &self.ts,
                kind: &self.kind,
                aggs: &self.aggs,
                lateness_ns: self.lateness.as_nanos(),
            },
        )
    }

    fn process(&mut self, chunk: Chunk, em: &mut Emitter) -> Result<()> {
        let (source, seq) = (chunk.source(), chunk.seq());
        self.last = (source, seq);
        let released = self.buf.push(chunk, &self.cols, em)?;
        let mut rows = Vec::new();
        self.feed(&released, &mut rows)?;
        self.build(rows, source, seq, em)
    }

    fn finish(&mut self, em: &mut Emitter) -> Result<()> {
        let released = self.buf.drain();
        let mut rows = Vec::new();
        self.feed(&released, &mut rows)?;
        let (z, p) = match self.kind {
            WindowKind::Sliding { size, step } => (nanos(size, "size")?, nanos(step, "step")?),
            _ => (0, 0),
        };
        for (key, w) in std::mem::take(&mut self.wins) {
            let key = Arc::new(key);
            if let Some(c) = &w.cur {
                let (s, e) = match self.kind {
                    WindowKind::Tumbling { size } => (c.start, c.start + nanos(size, "size")?),
                    WindowKind::Session { gap } => (c.first_ts, c.last_ts + nanos(gap, "gap")?),
                    _ => (c.first_ts, c.last_ts),
                };
                rows.push(close(&key, c, s, e, &self.aggs, &self.cols));
            }
            rows.extend(close_sliding(&key, &w.slots, z, p, &self.aggs, &self.cols));
        }
        let (source, seq) = self.last;
        self.build(rows, source, seq, em)
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let snap = WinSnapshot {
            wins: self
                .wins
                .iter()
                .map(|(k, w)| (k.clone(), w.clone()))
                .collect(),
            buffer: self.buf.checkpoint()?,
        };
        serde_json::to_vec(&snap)
            .map(Some)
            .map_err(|e| Error::Internal(format!("window checkpoint: {e}")))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let snap: WinSnapshot = serde_json::from_slice(state)
            .map_err(|e| Error::Internal(format!("window checkpoint: {e}")))?;
        self.wins = snap.wins.into_iter().collect();
        self.buf.restore(&snap.buffer, &self.cols)
    }
}
