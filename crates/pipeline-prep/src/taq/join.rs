//! [`TaqJoin`]: trades and quotes read as two streams, merged in time order per symbol, each
//! trade matched to the prevailing NBBO, signed and measured, in bounded memory.
//!
//! The join is a [`Source`]: it yields the trade rows (every column of the trades input) with
//! the columns below appended, one output chunk per input trade chunk (same source id and
//! `_line`s), so everything downstream (cleaning, features, validation, the sinks and the
//! quarantine) sees an ordinary source.
//!
//! **Order.** Both streams must be sorted the same way, either
//! * [`StreamOrder::Time`]: by time across all symbols (how most feeds and the gen-data
//!   `taq-split` layout write a day), the files of each stream read one after the other; or
//! * [`StreamOrder::Symbol`]: by symbol, then time (NYSE Daily TAQ's order), one segment per
//!   trades file and its quotes file of the same day.
//!
//! A two-pointer merge walks them: before a trade with time `t` is matched, every quote with
//! time `< t − delay` is applied to its symbol's [`NbboBook`], so the matched NBBO is the last
//! one strictly before `t − delay` (pandas' `merge_asof(by="symbol",
//! allow_exact_matches=False)` on the NBBO series). Quote state is carried across files and
//! days. A row that breaks the order cannot be matched correctly and is quarantined
//! (`taq_unsorted_trade`, `taq_unsorted_quote`) with its file and line; so is a row without
//! a time (`taq_missing_time`) and a trade without a price (`taq_missing_price`).
//!
//! **Columns added** (`quote_match` says what the trade got):
//! `bid, ask, bid_size, ask_size` (the matched NBBO, null if none), `quote_ts` (time of the
//! quote that last changed it), `quote_match` (`matched`, `locked`, `crossed`, `one_sided`,
//! `stale_quote`: older than the tolerance, quote columns null; `no_quote`: none yet),
//! `sign` (Lee–Ready), `sign_emo`, `sign_clnv`, `sign_tick` (Int8, see [`super::sign`]),
//! `quoted_spread`, `effective_spread`, and per horizon `h` (e.g. `5m`)
//! `realized_spread_h`, `price_impact_h` (see [`super::measures`]). A trade waits for its
//! horizons: it is emitted once the quote stream has passed `t − delay + h`, so the memory
//! held is the trades of one horizon, not of a day.
//!
//! **Per symbol-day** measures go to a [`DailyWriter`] as each symbol's day completes (days in
//! [`TaqOptions::day_zone`], the exchange's time zone).
//!
//! Quote rows are consumed, not output: [`TaqStats`] counts every one (applied, ignored as
//! crossed by its own exchange, quarantined), and every trade by its `quote_match`.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, DictionaryArray, Float64Array, Int8Array, Int32Array,
    RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::{NaiveTime, TimeZone};
use chrono_tz::Tz;
use pipeline_core::calendar::epoch_day;
use pipeline_core::{
    Chunk, Error, Progress, QUOTE_MATCH_COLUMN, Reject, Result, Source, dict_type, ts_type,
};
use serde::Serialize;

use super::measures::{
    DayMeasures, TradeMeasures, effective_spread, price_impact, realized_spread,
};
use super::nbbo::{NbboBook, NbboState, QuoteOutcome};
use super::sign::{TickRule, sign_clnv, sign_emo, sign_lee_ready};
use crate::features::columns::{F64Col, TsCol, f64_col, key_slots, ts_col};

/// Opens one input file as a source (called once per open of the join).
pub type OpenSource = Arc<dyn Fn() -> Result<Box<dyn Source>> + Send + Sync>;

/// How both streams are sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StreamOrder {
    /// By time across symbols.
    Time,
    /// By symbol, then time, one segment per day.
    Symbol,
}

/// The join's settings.
#[derive(Debug, Clone)]
pub struct TaqOptions {
    /// Quotes must be older than `t − delay_ns` (Lee & Ready's 5 s for second-stamped data).
    pub delay_ns: i64,
    /// A quote older than this (relative to `t − delay`) is stale: the trade gets nulls.
    pub tolerance_ns: Option<i64>,
    /// Realized-spread and price-impact horizons: `(label, nanoseconds)`.
    pub horizons: Vec<(String, i64)>,
    /// How the inputs are sorted.
    pub order: StreamOrder,
    /// The zone whose calendar days the per-symbol-day measures use.
    pub day_zone: Tz,
}

impl Default for TaqOptions {
    fn default() -> Self {
        TaqOptions {
            delay_ns: 0,
            tolerance_ns: None,
            horizons: vec![("5m".into(), 300_000_000_000)],
            order: StreamOrder::Time,
            day_zone: Tz::UTC,
        }
    }
}

/// One segment of the merge: trades files and quotes files read one after the other.
#[derive(Clone, Default)]
pub struct TaqSegment {
    /// The trades files, in order.
    pub trades: Vec<OpenSource>,
    /// The quotes files, in order.
    pub quotes: Vec<OpenSource>,
}

/// Receives the per-symbol-day measures.
pub trait DailyWriter: Send {
    /// Writes a batch of [`TaqJoin::daily_schema`] rows.
    fn write(&mut self, batch: RecordBatch) -> Result<()>;
    /// Called once after the last batch.
    fn finish(&mut self) -> Result<()>;
}

/// What the join did, for the run report and the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaqStats {
    /// Trade rows the trades readers yielded.
    pub trades_read: u64,
    /// Trade rows emitted (with their quote columns).
    pub trades_out: u64,
    /// Quote rows the quotes readers yielded.
    pub quotes_read: u64,
    /// Quotes applied to a book.
    pub quotes_applied: u64,
    /// Quotes ignored: bid above ask on the quoting exchange itself.
    pub quotes_crossed_exchange: u64,
    /// Rows the join quarantined, by reason.
    pub quarantined: std::collections::BTreeMap<String, u64>,
    /// Emitted trades by `quote_match`.
    pub matches: std::collections::BTreeMap<String, u64>,
    /// Symbol-day rows written.
    pub days: u64,
}

const MATCH_NAMES: [&str; 6] = [
    "matched",
    "locked",
    "crossed",
    "one_sided",
    "stale_quote",
    "no_quote",
];
const M_MATCHED: i32 = 0;
const M_LOCKED: i32 = 1;
const M_CROSSED: i32 = 2;
const M_ONE_SIDED: i32 = 3;
const M_STALE: i32 = 4;
const M_NONE: i32 = 5;

/// The columns the join appends.
fn added_fields(horizons: &[(String, i64)]) -> Vec<Field> {
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    let mut v = vec![
        f("bid"),
        f("ask"),
        f("bid_size"),
        f("ask_size"),
        Field::new("quote_ts", ts_type(), true),
        Field::new(QUOTE_MATCH_COLUMN, dict_type(), false),
        Field::new("sign", DataType::Int8, true),
        Field::new("sign_emo", DataType::Int8, true),
        Field::new("sign_clnv", DataType::Int8, true),
        Field::new("sign_tick", DataType::Int8, true),
        f("quoted_spread"),
        f("effective_spread"),
    ];
    for (label, _) in horizons {
        v.push(f(&format!("realized_spread_{label}")));
        v.push(f(&format!("price_impact_{label}")));
    }
    v
}

/// One stream of files: the current source and those still to open.
struct Stream {
    files: VecDeque<OpenSource>,
    cur: Option<Box<dyn Source>>,
    rejects: Vec<Reject>,
    done_bytes: u64,
}

impl Stream {
    fn new(files: Vec<OpenSource>) -> Self {
        Stream {
            files: files.into(),
            cur: None,
            rejects: Vec::new(),
            done_bytes: 0,
        }
    }

    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        loop {
            if self.cur.is_none() {
                let Some(open) = self.files.pop_front() else {
                    return Ok(None);
                };
                self.cur = Some(open()?);
            }
            let Some(src) = self.cur.as_mut() else {
                continue;
            };
            let item = src.next();
            self.rejects.extend(src.drain_rejects());
            match item {
                Some(Ok(c)) if c.num_rows() == 0 => continue,
                Some(Ok(c)) => return Ok(Some(c)),
                Some(Err(e)) => return Err(e),
                None => {
                    self.done_bytes += src.progress().bytes_read;
                    self.cur = None;
                }
            }
        }
    }

    fn bytes_read(&self) -> u64 {
        self.done_bytes + self.cur.as_ref().map_or(0, |s| s.progress().bytes_read)
    }
}

/// A quote chunk being applied.
struct QuoteCursor {
    chunk: Chunk,
    ts: TsCol,
    slots: Vec<usize>,
    exchanges: Vec<usize>,
    bid: F64Col,
    ask: F64Col,
    bid_size: F64Col,
    ask_size: F64Col,
    row: usize,
}

/// Per-symbol state.
struct Symbol {
    name: String,
    book: NbboBook,
    tick: TickRule,
    day: Option<(i32, DayMeasures)>,
}

/// A trade chunk waiting for its horizons.
struct Pending {
    chunk: Chunk,
    keep: Vec<bool>,
    slots: Vec<usize>,
    bid: Vec<Option<f64>>,
    ask: Vec<Option<f64>>,
    bid_size: Vec<Option<f64>>,
    ask_size: Vec<Option<f64>>,
    quote_ts: Vec<Option<i64>>,
    matches: Vec<i32>,
    signs: [Vec<Option<i8>>; 4],
    quoted: Vec<Option<f64>>,
    effective: Vec<Option<f64>>,
    mid: Vec<Option<f64>>,
    price: Vec<f64>,
    size: Vec<f64>,
    ts: Vec<i64>,
    realized: Vec<Vec<Option<f64>>>,
    impact: Vec<Vec<Option<f64>>>,
    unresolved: usize,
}

/// A horizon waiting for the quote stream: trade `(pending chunk number, row)` of symbol
/// `slot` needs the midpoint strictly before `target`.
#[derive(Clone, Copy)]
struct Target {
    slot: usize,
    target: i64,
    chunk_no: u64,
    row: usize,
}

/// Converts UTC nanoseconds to calendar days in a zone, caching the current day's bounds.
struct DayClock {
    zone: Tz,
    lo: i64,
    hi: i64,
    day: i32,
}

impl DayClock {
    fn new(zone: Tz) -> Self {
        DayClock {
            zone,
            lo: 1,
            hi: 0,
            day: 0,
        }
    }

    /// Days since 1970-01-01 of the local date of `ts`.
    fn day(&mut self, ts: i64) -> i32 {
        if ts >= self.lo && ts < self.hi {
            return self.day;
        }
        let local = self.zone.timestamp_nanos(ts);
        let date = local.date_naive();
        let start = |d: chrono::NaiveDate| {
            self.zone
                .from_local_datetime(&d.and_time(NaiveTime::MIN))
                .earliest()
                .and_then(|t| t.timestamp_nanos_opt())
        };
        self.day = epoch_day(date);
        match (start(date), date.succ_opt().and_then(start)) {
            (Some(lo), Some(hi)) if lo <= ts && ts < hi => {
                self.lo = lo;
                self.hi = hi;
            }
            _ => {
                self.lo = 1;
                self.hi = 0;
            }
        }
        self.day
    }
}

/// The streaming as-of join of trades and quotes (see the module docs).
pub struct TaqJoin {
    opts: TaqOptions,
    schema: SchemaRef,
    segments: VecDeque<TaqSegment>,
    trades: Option<Stream>,
    quotes: Option<Stream>,
    quote: Option<QuoteCursor>,
    quotes_done: bool,
    symbols: Vec<Symbol>,
    index: HashMap<String, usize>,
    exchanges: HashMap<String, usize>,
    pending: VecDeque<Pending>,
    pending_base: u64,
    targets: Vec<VecDeque<Target>>,
    /// The last trade's and quote's `(slot, ts)`, for the order check.
    last_trade: Option<(usize, i64)>,
    last_quote: Option<(usize, i64)>,
    out: VecDeque<Chunk>,
    rejects: Vec<Reject>,
    seq: u64,
    stats: TaqStats,
    /// Emitted trades by `quote_match` (index into [`MATCH_NAMES`]), folded into `stats`
    /// when published.
    match_counts: [u64; 6],
    shared: Arc<Mutex<TaqStats>>,
    daily: Option<Box<dyn DailyWriter>>,
    daily_rows: DailyRows,
    clock: DayClock,
    finished: bool,
    bytes_total: u64,
    bytes_done: u64,
}

impl TaqJoin {
    /// The output schema for a trades schema: its columns, then the added ones.
    pub fn output_schema(trades: &Schema, horizons: &[(String, i64)]) -> Result<SchemaRef> {
        let added = added_fields(horizons);
        for f in &added {
            if trades.field_with_name(f.name()).is_ok() {
                return Err(Error::Schema(format!(
                    "the trades input already has a `{}` column; trades and quotes inputs \
                     expect trade rows without quote columns (use a single TAQ input instead)",
                    f.name()
                )));
            }
        }
        let mut fields: Vec<Field> = trades.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(added);
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            trades.metadata().clone(),
        )))
    }

    /// The schema of the per-symbol-day rows.
    pub fn daily_schema(horizons: &[(String, i64)]) -> SchemaRef {
        let f = |n: &str| Field::new(n, DataType::Float64, true);
        let mut fields = vec![
            Field::new("symbol", DataType::Utf8, false),
            Field::new("date", DataType::Date32, false),
            Field::new("trades", DataType::Int64, false),
            Field::new("matched_trades", DataType::Int64, false),
            f("volume"),
            f("vwap"),
            f("buy_volume"),
            f("sell_volume"),
            f("order_imbalance"),
            f("quoted_spread"),
            f("effective_spread"),
            f("relative_effective_spread"),
        ];
        for (label, _) in horizons {
            fields.push(f(&format!("realized_spread_{label}")));
            fields.push(f(&format!("price_impact_{label}")));
        }
        Arc::new(Schema::new(fields))
    }

    /// A join of `segments` whose trades have schema `trades_schema`; `stats` is reset and
    /// then kept current (after every chunk); `bytes_total` is the inputs' size, for
    /// progress.
    pub fn new(
        trades_schema: &Schema,
        segments: Vec<TaqSegment>,
        opts: TaqOptions,
        daily: Option<Box<dyn DailyWriter>>,
        stats: Arc<Mutex<TaqStats>>,
        bytes_total: u64,
    ) -> Result<Self> {
        let schema = Self::output_schema(trades_schema, &opts.horizons)?;
        if let Ok(mut s) = stats.lock() {
            *s = TaqStats::default();
        }
        let h = opts.horizons.len();
        Ok(TaqJoin {
            clock: DayClock::new(opts.day_zone),
            daily_rows: DailyRows::new(h),
            targets: vec![VecDeque::new(); h],
            opts,
            schema,
            segments: segments.into(),
            trades: None,
            quotes: None,
            quote: None,
            quotes_done: true,
            symbols: Vec::new(),
            index: HashMap::new(),
            exchanges: HashMap::new(),
            pending: VecDeque::new(),
            pending_base: 0,
            last_trade: None,
            last_quote: None,
            out: VecDeque::new(),
            rejects: Vec::new(),
            seq: 0,
            stats: TaqStats::default(),
            match_counts: [0; 6],
            shared: stats,
            daily,
            finished: false,
            bytes_total,
            bytes_done: 0,
        })
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(&s) = self.index.get(name) {
            return s;
        }
        let s = self.symbols.len();
        self.symbols.push(Symbol {
            name: name.to_string(),
            book: NbboBook::default(),
            tick: TickRule::default(),
            day: None,
        });
        self.index.insert(name.to_string(), s);
        s
    }

    /// `a` before `b` in the streams' order.
    fn order(&self, a: (usize, i64), b: (usize, i64)) -> Ordering {
        match self.opts.order {
            StreamOrder::Time => a.1.cmp(&b.1),
            StreamOrder::Symbol => {
                if a.0 == b.0 {
                    a.1.cmp(&b.1)
                } else {
                    self.symbols[a.0]
                        .name
                        .cmp(&self.symbols[b.0].name)
                        .then(a.1.cmp(&b.1))
                }
            }
        }
    }

    /// Opens the next segment; false when there is none.
    fn next_segment(&mut self) -> bool {
        let Some(seg) = self.segments.pop_front() else {
            return false;
        };
        self.trades = Some(Stream::new(seg.trades));
        self.quotes = Some(Stream::new(seg.quotes));
        self.quote = None;
        self.quotes_done = false;
        self.last_trade = None;
        self.last_quote = None;
        true
    }

    fn stream_bytes(&self) -> u64 {
        self.trades.as_ref().map_or(0, Stream::bytes_read)
            + self.quotes.as_ref().map_or(0, Stream::bytes_read)
    }

    fn take_stream_rejects(&mut self) {
        for s in [self.trades.as_mut(), self.quotes.as_mut()]
            .into_iter()
            .flatten()
        {
            self.rejects.append(&mut s.rejects);
        }
    }

    fn quarantine(&mut self, chunk: &Chunk, row: usize, reason: &str, detail: String) {
        *self
            .stats
            .quarantined
            .entry(reason.to_string())
            .or_default() += 1;
        self.rejects.push(Reject::quarantined(
            chunk.source(),
            chunk.lines().value(row),
            reason,
            detail,
            Some(chunk.row_text(row)),
        ));
    }

    /// Makes `self.quote` point at the next quote row, loading chunks; false at the end of
    /// the segment's quotes.
    fn load_quote(&mut self) -> Result<bool> {
        loop {
            if let Some(q) = &self.quote
                && q.row < q.chunk.num_rows()
            {
                return Ok(true);
            }
            self.quote = None;
            if self.quotes_done {
                return Ok(false);
            }
            let Some(stream) = self.quotes.as_mut() else {
                self.quotes_done = true;
                return Ok(false);
            };
            let Some(chunk) = stream.next_chunk()? else {
                self.quotes_done = true;
                return Ok(false);
            };
            self.stats.quotes_read += chunk.num_rows() as u64;
            let slots = key_slots(&chunk, "symbol", |s| self.slot(s))?;
            let exchanges = key_slots(&chunk, "exchange", |s| {
                let next = self.exchanges.len();
                *self.exchanges.entry(s.to_string()).or_insert(next)
            })?;
            if chunk.column_by_name("bid").is_none() && chunk.column_by_name("ask").is_none() {
                return Err(Error::Schema(format!(
                    "the quotes input has neither a `bid` nor an `ask` column (columns: {})",
                    chunk
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            self.quote = Some(QuoteCursor {
                ts: ts_col(&chunk, "ts")?,
                bid: f64_col(&chunk, "bid")?,
                ask: f64_col(&chunk, "ask")?,
                bid_size: f64_col(&chunk, "bid_size")?,
                ask_size: f64_col(&chunk, "ask_size")?,
                slots,
                exchanges,
                chunk,
                row: 0,
            });
        }
    }

    /// The next quote's `(slot, ts)`, skipping (and quarantining) rows without a time or out
    /// of order; `None` at the end of the segment's quotes.
    fn peek_quote(&mut self) -> Result<Option<(usize, i64)>> {
        loop {
            if !self.load_quote()? {
                return Ok(None);
            }
            let Some(q) = self.quote.as_ref() else {
                return Ok(None);
            };
            let (row, slot) = (q.row, q.slots[q.row]);
            let Some(ts) = q.ts.get(row) else {
                let chunk = q.chunk.clone();
                self.quote_skip();
                self.quarantine(
                    &chunk,
                    row,
                    "taq_missing_time",
                    "quote row without a time".into(),
                );
                continue;
            };
            if let Some(last) = self.last_quote
                && self.order((slot, ts), last) == Ordering::Less
            {
                let chunk = self.quote.as_ref().map(|q| q.chunk.clone());
                self.quote_skip();
                if let Some(chunk) = chunk {
                    let detail = self.order_detail("quote", (slot, ts), last);
                    self.quarantine(&chunk, row, "taq_unsorted_quote", detail);
                }
                continue;
            }
            return Ok(Some((slot, ts)));
        }
    }

    fn order_detail(&self, what: &str, at: (usize, i64), last: (usize, i64)) -> String {
        let order = match self.opts.order {
            StreamOrder::Time => "time",
            StreamOrder::Symbol => "symbol, then time",
        };
        format!(
            "{what} of {} at {} ns comes after one of {} at {} ns; the {what}s must be sorted \
             by {order} (set [taq] order = \"{}\" if the files are sorted the other way)",
            self.symbols[at.0].name,
            at.1,
            self.symbols[last.0].name,
            last.1,
            match self.opts.order {
                StreamOrder::Time => "symbol",
                StreamOrder::Symbol => "time",
            }
        )
    }

    fn quote_skip(&mut self) {
        if let Some(q) = self.quote.as_mut() {
            q.row += 1;
        }
    }

    /// Resolves the horizons whose target is at or before `key` (all with `None`).
    fn resolve_targets(&mut self, key: Option<(usize, i64)>) {
        for h in 0..self.targets.len() {
            while let Some(t) = self.targets[h].front().copied() {
                if let Some(k) = key
                    && self.order((t.slot, t.target), k) == Ordering::Greater
                {
                    break;
                }
                self.targets[h].pop_front();
                let later = self.symbols[t.slot].book.nbbo().and_then(|n| n.mid());
                let idx = (t.chunk_no - self.pending_base) as usize;
                if let Some(p) = self.pending.get_mut(idx) {
                    let (price, mid) = (p.price[t.row], p.mid[t.row]);
                    if let (Some(sign), Some(mid), Some(later)) = (p.signs[0][t.row], mid, later) {
                        p.realized[h][t.row] = Some(realized_spread(price, sign, later));
                        p.impact[h][t.row] = Some(price_impact(sign, mid, later));
                    }
                    p.unresolved -= 1;
                }
            }
        }
    }

    /// Applies the current quote (already peeked).
    fn apply_quote(&mut self, key: (usize, i64)) {
        self.resolve_targets(Some(key));
        let Some(q) = self.quote.as_mut() else {
            return;
        };
        let r = q.row;
        q.row += 1;
        let bid = q.bid.get(r);
        let ask = q.ask.get(r);
        let bs = q
            .bid_size
            .get(r)
            .unwrap_or(if bid.is_some() { 1.0 } else { 0.0 });
        let asz = q
            .ask_size
            .get(r)
            .unwrap_or(if ask.is_some() { 1.0 } else { 0.0 });
        let ex = q.exchanges[r] as u32;
        match self.symbols[key.0].book.apply(ex, key.1, bid, ask, bs, asz) {
            QuoteOutcome::Applied => self.stats.quotes_applied += 1,
            QuoteOutcome::CrossedExchange => self.stats.quotes_crossed_exchange += 1,
        }
        self.last_quote = Some(key);
    }

    /// Matches one trade chunk; it joins the pending queue.
    fn match_chunk(&mut self, chunk: Chunk) -> Result<()> {
        let n = chunk.num_rows();
        self.stats.trades_read += n as u64;
        if chunk.column_by_name("price").is_none() {
            return Err(Error::Schema(
                "the trades input has no `price` column".to_string(),
            ));
        }
        let slots = key_slots(&chunk, "symbol", |s| self.slot(s))?;
        let ts = ts_col(&chunk, "ts")?;
        let price = f64_col(&chunk, "price")?;
        let size = f64_col(&chunk, "size")?;
        let h = self.opts.horizons.len();
        let chunk_no = self.pending_base + self.pending.len() as u64;
        // The chunk waits in the queue from the start: horizons of its first rows may
        // resolve while its later rows are matched.
        self.pending.push_back(Pending {
            keep: vec![true; n],
            slots,
            bid: vec![None; n],
            ask: vec![None; n],
            bid_size: vec![None; n],
            ask_size: vec![None; n],
            quote_ts: vec![None; n],
            matches: vec![M_NONE; n],
            signs: [vec![None; n], vec![None; n], vec![None; n], vec![None; n]],
            quoted: vec![None; n],
            effective: vec![None; n],
            mid: vec![None; n],
            price: vec![f64::NAN; n],
            size: vec![0.0; n],
            ts: vec![0; n],
            realized: vec![vec![None; n]; h],
            impact: vec![vec![None; n]; h],
            unresolved: 0,
            chunk: chunk.clone(),
        });
        for i in 0..n {
            let slot = self.pending.back().map_or(0, |p| p.slots[i]);
            let (Some(t), Some(px)) = (ts.get(i), price.get(i)) else {
                if let Some(p) = self.pending.back_mut() {
                    p.keep[i] = false;
                }
                let (reason, what) = if ts.get(i).is_none() {
                    ("taq_missing_time", "time")
                } else {
                    ("taq_missing_price", "price")
                };
                self.quarantine(&chunk, i, reason, format!("trade row without a {what}"));
                continue;
            };
            if let Some(last) = self.last_trade
                && self.order((slot, t), last) == Ordering::Less
            {
                if let Some(p) = self.pending.back_mut() {
                    p.keep[i] = false;
                }
                let detail = self.order_detail("trade", (slot, t), last);
                self.quarantine(&chunk, i, "taq_unsorted_trade", detail);
                continue;
            }
            self.last_trade = Some((slot, t));
            let key = (slot, t.saturating_sub(self.opts.delay_ns));
            // Every quote strictly before the trade's key.
            while let Some(qk) = self.peek_quote()? {
                if self.order(qk, key) != Ordering::Less {
                    break;
                }
                self.apply_quote(qk);
            }
            let tick = self.symbols[slot].tick.update(px);
            let nbbo = self.symbols[slot].book.nbbo();
            let stale = |ts: i64| self.opts.tolerance_ns.is_some_and(|tol| key.1 - ts > tol);
            let Some(p) = self.pending.back_mut() else {
                break;
            };
            p.price[i] = px;
            p.size[i] = size.get(i).unwrap_or(0.0);
            p.ts[i] = t;
            let (mut bid, mut ask) = (None, None);
            match nbbo {
                None => p.matches[i] = M_NONE,
                Some(nb) if stale(nb.ts) => p.matches[i] = M_STALE,
                Some(nb) => {
                    p.matches[i] = match nb.state() {
                        NbboState::Normal => M_MATCHED,
                        NbboState::Locked => M_LOCKED,
                        NbboState::Crossed => M_CROSSED,
                        NbboState::OneSided => M_ONE_SIDED,
                    };
                    (bid, ask) = (nb.bid, nb.ask);
                    p.bid[i] = nb.bid;
                    p.ask[i] = nb.ask;
                    p.bid_size[i] = nb.bid.map(|_| nb.bid_size);
                    p.ask_size[i] = nb.ask.map(|_| nb.ask_size);
                    p.quote_ts[i] = Some(nb.ts);
                    p.mid[i] = nb.mid();
                    if let (Some(b), Some(a)) = (nb.bid, nb.ask)
                        && b <= a
                    {
                        p.quoted[i] = Some(a - b);
                    }
                }
            }
            let lr = sign_lee_ready(px, bid, ask, tick);
            p.signs[0][i] = lr;
            p.signs[1][i] = sign_emo(px, bid, ask, tick);
            p.signs[2][i] = sign_clnv(px, bid, ask, tick);
            p.signs[3][i] = tick;
            if let (Some(s), Some(m)) = (lr, p.mid[i]) {
                p.effective[i] = Some(effective_spread(px, s, m));
            }
            p.unresolved += h;
            for (hi, (_, dur)) in self.opts.horizons.iter().enumerate() {
                self.targets[hi].push_back(Target {
                    slot,
                    target: key.1.saturating_add(*dur),
                    chunk_no,
                    row: i,
                });
            }
            if self.quotes_done {
                // No quote can change the books any more: horizons resolve now.
                self.resolve_targets(None);
            }
        }
        Ok(())
    }

    /// Emits the pending chunks whose every horizon is resolved, in order (called between
    /// chunks, so every pending chunk is fully matched).
    fn emit_ready(&mut self) -> Result<()> {
        while let Some(p) = self.pending.front() {
            if p.unresolved > 0 {
                break;
            }
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            self.pending_base += 1;
            self.finish_chunk(p)?;
        }
        Ok(())
    }

    fn finish_chunk(&mut self, mut p: Pending) -> Result<()> {
        let n = p.keep.len();
        let h = self.opts.horizons.len();
        // Reused per row: no allocation per trade.
        let (mut realized, mut impact) = (vec![None; h], vec![None; h]);
        for i in 0..n {
            if !p.keep[i] {
                continue;
            }
            self.stats.trades_out += 1;
            self.match_counts[p.matches[i] as usize] += 1;
            let day = self.clock.day(p.ts[i]);
            let slot = p.slots[i];
            let tm = TradeMeasures {
                price: p.price[i],
                size: p.size[i],
                sign: p.signs[0][i],
                matched: matches!(p.matches[i], M_MATCHED | M_LOCKED),
                quoted: p.quoted[i],
                effective: p.effective[i],
                mid: p.mid[i],
            };
            for k in 0..h {
                realized[k] = p.realized[k][i];
                impact[k] = p.impact[k][i];
            }
            let sym = &mut self.symbols[slot];
            match &mut sym.day {
                Some((d, acc)) if *d == day => acc.add(&tm, &realized, &impact),
                other => {
                    if let Some((d, acc)) = other.take() {
                        self.daily_rows.push(&sym.name, d, &acc);
                    }
                    let mut acc = DayMeasures::new(h);
                    acc.add(&tm, &realized, &impact);
                    *other = Some((day, acc));
                }
            }
        }
        self.flush_daily(false)?;
        let f64s =
            |v: &mut Vec<Option<f64>>| Arc::new(Float64Array::from(std::mem::take(v))) as ArrayRef;
        let i8s =
            |v: &mut Vec<Option<i8>>| Arc::new(Int8Array::from(std::mem::take(v))) as ArrayRef;
        let match_values: ArrayRef = Arc::new(StringArray::from(MATCH_NAMES.to_vec()));
        let match_col = DictionaryArray::<Int32Type>::try_new(
            Int32Array::from(std::mem::take(&mut p.matches)),
            match_values,
        )
        .map_err(|e| Error::Internal(format!("quote_match column: {e}")))?;
        let mut cols: Vec<ArrayRef> = p.chunk.batch().columns().to_vec();
        cols.extend([
            f64s(&mut p.bid),
            f64s(&mut p.ask),
            f64s(&mut p.bid_size),
            f64s(&mut p.ask_size),
            Arc::new(
                TimestampNanosecondArray::from(std::mem::take(&mut p.quote_ts))
                    .with_timezone("UTC"),
            ) as ArrayRef,
            Arc::new(match_col) as ArrayRef,
            i8s(&mut p.signs[0]),
            i8s(&mut p.signs[1]),
            i8s(&mut p.signs[2]),
            i8s(&mut p.signs[3]),
            f64s(&mut p.quoted),
            f64s(&mut p.effective),
        ]);
        for hi in 0..self.opts.horizons.len() {
            cols.push(f64s(&mut p.realized[hi]));
            cols.push(f64s(&mut p.impact[hi]));
        }
        // Conform to the output schema (field names and nullability from it).
        let batch = RecordBatch::try_new(self.schema.clone(), cols)
            .map_err(|e| Error::Internal(format!("taq output batch: {e}")))?;
        let chunk = Chunk::new(batch, p.chunk.source(), self.seq)?;
        self.seq += 1;
        let chunk = if p.keep.iter().all(|&k| k) {
            chunk
        } else {
            chunk.filter(&BooleanArray::from(std::mem::take(&mut p.keep)))?
        };
        if chunk.num_rows() > 0 {
            self.out.push_back(chunk);
        }
        Ok(())
    }

    fn flush_daily(&mut self, all: bool) -> Result<()> {
        if self.daily_rows.len() == 0 || (!all && self.daily_rows.len() < 4096) {
            return Ok(());
        }
        let schema = Self::daily_schema(&self.opts.horizons);
        let batch = self.daily_rows.finish(schema)?;
        self.stats.days += batch.num_rows() as u64;
        if let Some(w) = self.daily.as_mut() {
            w.write(batch)?;
        }
        Ok(())
    }

    /// Drains the quotes of the current segment (resolving every horizon) and ends it.
    fn end_segment(&mut self) -> Result<()> {
        while let Some(qk) = self.peek_quote()? {
            self.apply_quote(qk);
        }
        self.resolve_targets(None);
        // Both streams' bytes, counted before they are dropped (progress).
        self.bytes_done += self.stream_bytes();
        self.take_stream_rejects();
        self.trades = None;
        self.quotes = None;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        for s in 0..self.symbols.len() {
            if let Some((d, acc)) = self.symbols[s].day.take() {
                let name = self.symbols[s].name.clone();
                self.daily_rows.push(&name, d, &acc);
            }
        }
        self.flush_daily(true)?;
        if let Some(w) = self.daily.as_mut() {
            w.finish()?;
        }
        self.finished = true;
        Ok(())
    }

    fn publish(&mut self) {
        for (name, &n) in MATCH_NAMES.iter().zip(&self.match_counts) {
            if n > 0 {
                self.stats.matches.insert((*name).to_string(), n);
            }
        }
        if let Ok(mut s) = self.shared.lock() {
            *s = self.stats.clone();
        }
    }

    fn step(&mut self) -> Result<Option<Chunk>> {
        loop {
            if let Some(c) = self.out.pop_front() {
                return Ok(Some(c));
            }
            if self.finished {
                return Ok(None);
            }
            let chunk = match self.trades.as_mut() {
                Some(t) => t.next_chunk()?,
                None => {
                    if !self.next_segment() {
                        self.emit_ready()?;
                        if self.pending.is_empty() {
                            self.finish()?;
                        } else {
                            return Err(Error::Internal(
                                "taq join: trades left waiting at the end".into(),
                            ));
                        }
                        continue;
                    }
                    continue;
                }
            };
            self.take_stream_rejects();
            match chunk {
                Some(c) => self.match_chunk(c)?,
                None => self.end_segment()?,
            }
            self.take_stream_rejects();
            self.emit_ready()?;
        }
    }
}

impl Iterator for TaqJoin {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.step();
        self.publish();
        match r {
            Ok(Some(c)) => Some(Ok(c)),
            Ok(None) => None,
            Err(e) => {
                self.finished = true;
                self.out.clear();
                Some(Err(e))
            }
        }
    }
}

impl Source for TaqJoin {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn progress(&self) -> Progress {
        Progress {
            bytes_read: self.bytes_done + self.stream_bytes(),
            bytes_total: Some(self.bytes_total),
            rows_read: self.stats.trades_read + self.stats.quotes_read,
        }
    }

    fn drain_rejects(&mut self) -> Vec<Reject> {
        self.take_stream_rejects();
        std::mem::take(&mut self.rejects)
    }
}

/// Per-symbol-day rows being built.
struct DailyRows {
    symbol: StringBuilder,
    date: Vec<i32>,
    trades: Int64Builder,
    matched: Int64Builder,
    floats: Vec<Float64Builder>,
}

impl DailyRows {
    fn new(horizons: usize) -> Self {
        DailyRows {
            symbol: StringBuilder::new(),
            date: Vec::new(),
            trades: Int64Builder::new(),
            matched: Int64Builder::new(),
            floats: (0..8 + 2 * horizons)
                .map(|_| Float64Builder::new())
                .collect(),
        }
    }

    fn len(&self) -> usize {
        self.date.len()
    }

    fn push(&mut self, symbol: &str, day: i32, d: &DayMeasures) {
        self.symbol.append_value(symbol);
        self.date.push(day);
        self.trades.append_value(d.trades as i64);
        self.matched.append_value(d.matched as i64);
        let mut v = vec![
            Some(d.volume),
            d.vwap(),
            Some(d.buy_volume),
            Some(d.sell_volume),
            d.order_imbalance(),
            d.quoted_spread(),
            d.effective.mean(),
            d.relative_effective.mean(),
        ];
        for (r, i) in d.realized.iter().zip(&d.impact) {
            v.push(r.mean());
            v.push(i.mean());
        }
        for (b, x) in self.floats.iter_mut().zip(v) {
            b.append_option(x);
        }
    }

    fn finish(&mut self, schema: SchemaRef) -> Result<RecordBatch> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.symbol.finish()),
            Arc::new(Date32Array::from(std::mem::take(&mut self.date))),
            Arc::new(self.trades.finish()),
            Arc::new(self.matched.finish()),
        ];
        cols.extend(
            self.floats
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        RecordBatch::try_new(schema, cols).map_err(|e| Error::Internal(format!("daily batch: {e}")))
    }
}
