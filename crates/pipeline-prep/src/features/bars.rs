//! [`BarStage`]: per-symbol time, tick, volume and dollar bars (López de Prado 2018, ch. 2).
//!
//! Each trade (a row with `ts`, `price` and `size`) joins the symbol's
//! open bar; a bar is emitted as soon as it is complete, and the last partial bar of each
//! symbol in `finish`:
//! * `time:<dur>`: bars of fixed clock intervals (`ts` floored to the interval); a bar is
//!   complete when a trade of a later interval arrives (empty intervals give no bar);
//! * `tick:<n>`: every n trades;
//! * `volume:<v>`: when the bar's summed size reaches v (the crossing trade belongs to it);
//! * `dollar:<d>`: when the bar's summed price × size reaches d.
//!
//! Output rows: `ts` (the interval start for time bars, else the first trade's time),
//! `symbol`, `open`, `high`, `low`, `close`, `volume`, `vwap`, `trades` (Int64), `ts_end`
//! (the last trade's time), and `_line` = the bar's first trade's line; each output chunk
//! carries the source and sequence number of its bars' first trades.
//!
//! What a trade is follows the row's kind (see the crate's `kind` module): order-book
//! messages count only when they are executions (LOBSTER types 4, 5 and 6), so volume bars
//! and VWAP see executed volume, not the sizes of orders added or cancelled; a symbol whose
//! first priced row is a quote (FX quote files: bid and ask, no price) gets bars of its mid
//! `(bid + ask) / 2` with volume 0 and `trades` counting quotes (time and tick bars make
//! sense there; volume and dollar bars never complete and end as one bar per symbol).
//! [`BarStage::price_column`] `mid` builds every symbol's bars on the mid.
//!
//! With a [`BarSession`] ([`BarStage::session`], time bars only) the bins follow the
//! exchange's session calendar instead of UTC multiples: see `super::session_bars` for the
//! grid (hours, holidays, early closes, daylight saving), `label`, `closed` and the empty-bin
//! policy. Trades outside every session are counted with `aggregate("bar_outside_session")`;
//! empty bars are rows no input row became, counted with `Emitter::added("bar_empty")` (their
//! `ts_end` is their stamp, `_line` that of the trade after them or, at the end, of the bar
//! before them).
//!
//! Row accounting: a bar's first trade becomes the bar row; every further trade merged into
//! it is counted with `Emitter::aggregate("bars", 1)` (so per call, rows in = bars started +
//! aggregated); rows that are not trades (order-book messages other than executions, quote
//! rows of a symbol with trades) are counted with `Emitter::aggregate("bar_non_trade", n)`
//! (they are not bad data, so no per-row reject is kept); and a trade that cannot join a bar
//! (null `ts`, `price` or `size`) is removed under `bar_missing_input`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use pipeline_core::{
    Chunk, Emitter, Error, Result, SourceId, Stage, StageKey, StageOrder, dict_type, ts_type,
};
use serde::{Deserialize, Serialize};

use super::columns::{f64_col, key_slots, ts_col};
use super::rolling::parse_duration;
use super::session_bars::{BarEdge, BarSession, Bin, EmptyBars, SessionGrid};

/// What closes a bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BarSpec {
    /// Clock intervals of this many nanoseconds.
    Time(i64),
    /// This many trades.
    Tick(u64),
    /// This much summed size.
    Volume(f64),
    /// This much summed price × size.
    Dollar(f64),
}

/// Parses `time:1m`, `time:5s`, `tick:1000`, `volume:10000` or `dollar:1e6`.
pub fn parse_bar_spec(spec: &str) -> Result<BarSpec> {
    let bad = |m: &str| Error::config("bars", format!("`{spec}`: {m}"));
    let (kind, arg) = spec.split_once(':').ok_or_else(|| {
        bad("expected kind:size, e.g. time:1m, tick:1000, volume:1e4, dollar:1e6")
    })?;
    let positive = |a: &str| -> Result<f64> {
        match a.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
            _ => Err(bad("size must be a positive number")),
        }
    };
    match kind {
        "time" => Ok(BarSpec::Time(parse_duration(arg)?)),
        "tick" => match arg.parse::<u64>() {
            Ok(n) if n > 0 => Ok(BarSpec::Tick(n)),
            _ => Err(bad("tick count must be a positive integer")),
        },
        "volume" => Ok(BarSpec::Volume(positive(arg)?)),
        "dollar" => Ok(BarSpec::Dollar(positive(arg)?)),
        _ => Err(bad("kind must be time, tick, volume or dollar")),
    }
}

/// A bar being built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bar {
    bucket: i64,
    /// Session mode: the bin's local day and end.
    #[serde(default)]
    day: i32,
    #[serde(default)]
    bin_end: i64,
    ts: i64,
    ts_end: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    pv: f64,
    trades: i64,
    line: u64,
    source: SourceId,
    seq: u64,
}

/// A finished bar with its symbol.
struct Done {
    symbol: String,
    bar: Bar,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    spec: BarSpec,
    open: BTreeMap<String, Bar>,
    /// Per symbol: whether its bars are of the mid (`true`) or of trades (`false`).
    #[serde(default)]
    mid: BTreeMap<String, bool>,
}

/// Builds bars per symbol (see the module docs).
pub struct BarStage {
    spec: BarSpec,
    session: Option<(BarSession, SessionGrid)>,
    mid_always: bool,
    slots: HashMap<String, usize>,
    keys: Vec<String>,
    open: Vec<Option<Bar>>,
    /// Per slot: `Some(true)` bars of the mid, `Some(false)` of trades, `None` undecided.
    mid: Vec<Option<bool>>,
}

impl BarStage {
    /// A bar stage for `spec`.
    pub fn new(spec: BarSpec) -> Self {
        BarStage {
            spec,
            session: None,
            mid_always: false,
            slots: HashMap::new(),
            keys: Vec::new(),
            open: Vec::new(),
            mid: Vec::new(),
        }
    }

    /// Builds every symbol's bars on `mid` (`(bid + ask) / 2`, volume 0) when `column` is
    /// `mid`; any other value keeps the default (trades, the mid for quotes-only symbols).
    pub fn price_column(mut self, column: &str) -> Self {
        self.mid_always = column == "mid";
        self
    }

    /// Time bars on a session calendar (see the module docs); an error for other bar kinds
    /// and for a bad zone, time or date.
    pub fn session(mut self, session: BarSession) -> Result<Self> {
        let BarSpec::Time(w) = self.spec else {
            return Err(Error::config(
                "bars",
                "a session calendar applies to time bars (time:<duration>) only",
            ));
        };
        let grid = SessionGrid::new(&session, w)?;
        self.session = Some((session, grid));
        Ok(self)
    }

    fn slot(&mut self, key: &str) -> usize {
        if let Some(&s) = self.slots.get(key) {
            return s;
        }
        let s = self.keys.len();
        self.keys.push(key.to_string());
        self.open.push(None);
        self.mid.push(self.mid_always.then_some(true));
        self.slots.insert(key.to_string(), s);
        s
    }

    /// An empty bar for `bin`: at `close` (carry) or null OHLC (NaN here), volume 0.
    fn empty_bar(&self, bin: Bin, close: f64, at: (u64, SourceId, u64)) -> Bar {
        let ts = match &self.session {
            Some((s, _)) if s.label == BarEdge::Right => bin.end,
            _ => bin.start,
        };
        Bar {
            bucket: bin.index,
            day: bin.day,
            bin_end: bin.end,
            ts,
            ts_end: ts,
            open: close,
            high: close,
            low: close,
            close,
            volume: 0.0,
            pv: 0.0,
            trades: 0,
            line: at.0,
            source: at.1,
            seq: at.2,
        }
    }

    /// The empty bins after `prev` up to `next` (exclusive) within the sessions of both:
    /// the rest of `prev`'s session, then the start of `next`'s when it is a later day. None
    /// without a session or with [`EmptyBars::Skip`].
    fn empties(&mut self, prev: &Bar, next: Option<Bin>, at: (u64, SourceId, u64)) -> Vec<Bar> {
        let close = match self.session.as_ref().map(|(s, _)| s.empty) {
            Some(EmptyBars::Carry) => prev.close,
            Some(EmptyBars::Null) => f64::NAN,
            _ => return Vec::new(),
        };
        let mut bins = Vec::new();
        if let Some((_, grid)) = self.session.as_mut() {
            let same_day = next.is_some_and(|n| n.day == prev.day);
            let end = match next {
                Some(n) if same_day => n.index,
                _ => grid.bins_in(prev.day),
            };
            bins.extend(((prev.bucket + 1)..end).filter_map(|k| grid.bin_of(prev.day, k)));
            if let Some(n) = next
                && !same_day
            {
                bins.extend((0..n.index).filter_map(|k| grid.bin_of(n.day, k)));
            }
        }
        bins.into_iter()
            .map(|b| self.empty_bar(b, close, at))
            .collect()
    }

    /// The empty bins of `bin`'s session before it, for a symbol's first bar (null OHLC).
    fn leading_empties(&mut self, bin: Bin, at: (u64, SourceId, u64)) -> Vec<Bar> {
        let bins: Vec<Bin> = match self.session.as_mut() {
            Some((_, grid)) => (0..bin.index)
                .filter_map(|k| grid.bin_of(bin.day, k))
                .collect(),
            None => Vec::new(),
        };
        bins.into_iter()
            .map(|b| self.empty_bar(b, f64::NAN, at))
            .collect()
    }

    fn complete(&self, b: &Bar) -> bool {
        match self.spec {
            BarSpec::Time(_) => false,
            BarSpec::Tick(n) => b.trades as u64 >= n,
            BarSpec::Volume(v) => b.volume >= v,
            BarSpec::Dollar(d) => b.pv >= d,
        }
    }

    /// Builds output chunks from finished bars, one per run of equal (source, seq).
    fn emit(done: Vec<Done>, out: &mut Emitter) -> Result<()> {
        let mut start = 0;
        while start < done.len() {
            let key = (done[start].bar.source, done[start].bar.seq);
            let end = done[start..]
                .iter()
                .position(|d| (d.bar.source, d.bar.seq) != key)
                .map_or(done.len(), |p| start + p);
            out.emit(bars_chunk(&done[start..end], key.0, key.1)?);
            start = end;
        }
        Ok(())
    }
}

/// The output schema of [`BarStage`] (without `_line`).
fn bar_schema() -> Arc<Schema> {
    let f = |n: &str| Field::new(n, DataType::Float64, false);
    // OHLC is null on the empty bars of `EmptyBars::Null`.
    let ohlc = |n: &str| Field::new(n, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        Field::new("ts", ts_type(), false),
        Field::new("symbol", dict_type(), false),
        ohlc("open"),
        ohlc("high"),
        ohlc("low"),
        ohlc("close"),
        f("volume"),
        Field::new("vwap", DataType::Float64, true),
        Field::new("trades", DataType::Int64, false),
        Field::new("ts_end", ts_type(), false),
    ]))
}

fn bars_chunk(done: &[Done], source: SourceId, seq: u64) -> Result<Chunk> {
    let col = |f: fn(&Bar) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            done.iter().map(|d| f(&d.bar)),
        ))
    };
    // NaN marks the null OHLC of an empty bar (a trade's price is never NaN here).
    let ohlc = |f: fn(&Bar) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter(done.iter().map(|d| {
            let v = f(&d.bar);
            (!v.is_nan()).then_some(v)
        })))
    };
    let mut sym = StringDictionaryBuilder::<Int32Type>::new();
    for d in done {
        sym.append_value(&d.symbol);
    }
    let ts = |f: fn(&Bar) -> i64| -> ArrayRef {
        Arc::new(
            TimestampNanosecondArray::from_iter_values(done.iter().map(|d| f(&d.bar)))
                .with_timezone("UTC"),
        )
    };
    let vwap: Float64Array = done
        .iter()
        .map(|d| (d.bar.volume != 0.0).then(|| d.bar.pv / d.bar.volume))
        .collect();
    let batch = RecordBatch::try_new(
        bar_schema(),
        vec![
            ts(|b| b.ts),
            Arc::new(sym.finish()),
            ohlc(|b| b.open),
            ohlc(|b| b.high),
            ohlc(|b| b.low),
            ohlc(|b| b.close),
            col(|b| b.volume),
            Arc::new(vwap),
            Arc::new(Int64Array::from_iter_values(
                done.iter().map(|d| d.bar.trades),
            )),
            ts(|b| b.ts_end),
        ],
    )?;
    let lines = UInt64Array::from_iter_values(done.iter().map(|d| d.bar.line));
    Chunk::with_lines(batch, source, seq, lines)
}

impl Stage for BarStage {
    fn name(&self) -> &str {
        "bars"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        // TOML (what `StageKey` hashes) has no top-level enums, so key a struct holding the
        // spec's debug form, which names the kind and its exact size.
        #[derive(Serialize)]
        struct Key {
            spec: String,
            mid: bool,
            session: String,
        }
        StageKey::of(
            "bars",
            &Key {
                spec: format!("{:?}", self.spec),
                mid: self.mid_always,
                session: format!("{:?}", self.session.as_ref().map(|(s, _)| s)),
            },
        )
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let slots = {
            let mut reg = |k: &str| self.slot(k);
            key_slots(&chunk, "symbol", &mut reg)?
        };
        let price = f64_col(&chunk, "price")?;
        let size = f64_col(&chunk, "size")?;
        let (bid, ask) = (f64_col(&chunk, "bid")?, f64_col(&chunk, "ask")?);
        let ts = ts_col(&chunk, "ts")?;
        let events = crate::kind::Events::of(&chunk)?;
        let lines = chunk.lines();
        let mut done = Vec::new();
        let mut merged = 0u64;
        let mut non_trade = 0u64;
        let mut outside = 0u64;
        let mut added = 0u64;
        for (i, &slot) in slots.iter().enumerate() {
            let message = events.message(i);
            let quote = match (bid.get(i), ask.get(i)) {
                (Some(b), Some(a)) => Some((b + a) / 2.0),
                _ => None,
            };
            let quote_row = !message && price.get(i).is_none() && quote.is_some();
            if self.mid[slot].is_none() {
                if quote_row {
                    self.mid[slot] = Some(true);
                } else if !message || events.trade(i) {
                    self.mid[slot] = Some(false);
                }
            }
            let on_mid = self.mid[slot] == Some(true);
            // On the mid, rows without a quote that are trades or messages are not quotes;
            // on trades, rows that are not trades (non-execution messages, quote rows) are
            // not trades. A quote or trade with a missing value is missing input.
            let skip = if on_mid {
                quote.is_none() && (message || price.get(i).is_some())
            } else {
                !events.trade(i) || quote_row
            };
            if skip {
                non_trade += 1;
                continue;
            }
            let (p, s) = if on_mid {
                (quote, Some(0.0))
            } else {
                (price.get(i), size.get(i))
            };
            let (Some(p), Some(s), Some(t)) = (p, s, ts.get(i)) else {
                out.remove_one("bar_missing_input", chunk.source(), lines.value(i));
                continue;
            };
            let bin = match self.session.as_mut() {
                Some((_, grid)) => match grid.bin(t) {
                    Some(b) => Some(b),
                    None => {
                        outside += 1;
                        continue;
                    }
                },
                None => None,
            };
            let (bucket, day) = match (bin, &self.spec) {
                (Some(b), _) => (b.index, b.day),
                (None, BarSpec::Time(w)) => (t.div_euclid(*w), 0),
                _ => (0, 0),
            };
            let here = (lines.value(i), chunk.source(), chunk.seq());
            if let Some(b) = &self.open[slot]
                && (b.day, b.bucket) != (day, bucket)
                && let Some(b) = self.open[slot].take()
            {
                let empties = self.empties(&b, bin, here);
                done.push(Done {
                    symbol: self.keys[slot].clone(),
                    bar: b,
                });
                added += empties.len() as u64;
                done.extend(empties.into_iter().map(|bar| Done {
                    symbol: self.keys[slot].clone(),
                    bar,
                }));
            } else if self.open[slot].is_none()
                && let (Some(bin), Some((sess, _))) = (bin, &self.session)
                && sess.empty == EmptyBars::Null
            {
                // The symbol's first bar of all: the session's earlier bins are empty.
                let empties = self.leading_empties(bin, here);
                added += empties.len() as u64;
                done.extend(empties.into_iter().map(|bar| Done {
                    symbol: self.keys[slot].clone(),
                    bar,
                }));
            }
            match &mut self.open[slot] {
                Some(b) => {
                    b.ts_end = t;
                    b.high = b.high.max(p);
                    b.low = b.low.min(p);
                    b.close = p;
                    b.volume += s;
                    b.pv += p * s;
                    b.trades += 1;
                    merged += 1;
                }
                none => {
                    let start = match (bin, &self.session, &self.spec) {
                        (Some(b), Some((sess, _)), _) if sess.label == BarEdge::Right => b.end,
                        (Some(b), _, _) => b.start,
                        (None, _, BarSpec::Time(w)) => bucket * w,
                        _ => t,
                    };
                    *none = Some(Bar {
                        bucket,
                        day,
                        bin_end: bin.map_or(0, |b| b.end),
                        ts: start,
                        ts_end: t,
                        open: p,
                        high: p,
                        low: p,
                        close: p,
                        volume: s,
                        pv: p * s,
                        trades: 1,
                        line: lines.value(i),
                        source: chunk.source(),
                        seq: chunk.seq(),
                    });
                }
            }
            if self.open[slot].as_ref().is_some_and(|b| self.complete(b))
                && let Some(b) = self.open[slot].take()
            {
                done.push(Done {
                    symbol: self.keys[slot].clone(),
                    bar: b,
                });
            }
        }
        out.aggregate("bars", merged);
        if non_trade > 0 {
            out.aggregate("bar_non_trade", non_trade);
        }
        out.aggregate("bar_outside_session", outside);
        out.added("bar_empty", added);
        Self::emit(done, out)
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        let mut done = Vec::new();
        let mut added = 0u64;
        for slot in 0..self.open.len() {
            if let Some(bar) = self.open[slot].take() {
                let empties = self.empties(&bar, None, (bar.line, bar.source, bar.seq));
                added += empties.len() as u64;
                done.push(Done {
                    symbol: self.keys[slot].clone(),
                    bar,
                });
                done.extend(empties.into_iter().map(|bar| Done {
                    symbol: self.keys[slot].clone(),
                    bar,
                }));
            }
        }
        out.added("bar_empty", added);
        // Partial bars go out in input order of their first trades.
        done.sort_by_key(|d| (d.bar.source, d.bar.seq, d.bar.line));
        Self::emit(done, out)
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let open = self
            .keys
            .iter()
            .zip(&self.open)
            .filter_map(|(k, b)| b.clone().map(|b| (k.clone(), b)))
            .collect();
        let mid = self
            .keys
            .iter()
            .zip(&self.mid)
            .filter_map(|(k, m)| m.map(|m| (k.clone(), m)))
            .collect();
        let cp = Checkpoint {
            spec: self.spec.clone(),
            open,
            mid,
        };
        crate::state::save("bars", &cp)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = crate::state::load("bars", state)?;
        if cp.spec != self.spec {
            return Err(Error::Usage(
                "the bars checkpoint was written with a different bar spec".into(),
            ));
        }
        self.slots.clear();
        self.keys.clear();
        self.open.clear();
        self.mid.clear();
        for (k, b) in cp.open {
            let s = self.slot(&k);
            self.open[s] = Some(b);
        }
        for (k, m) in cp.mid {
            let s = self.slot(&k);
            self.mid[s] = Some(m);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_specs_parse() {
        assert_eq!(
            parse_bar_spec("time:1m").unwrap(),
            BarSpec::Time(60_000_000_000)
        );
        assert_eq!(parse_bar_spec("tick:1000").unwrap(), BarSpec::Tick(1000));
        assert_eq!(
            parse_bar_spec("volume:10000").unwrap(),
            BarSpec::Volume(1e4)
        );
        assert_eq!(parse_bar_spec("dollar:1e6").unwrap(), BarSpec::Dollar(1e6));
        for bad in [
            "time",
            "tick:0",
            "tick:1.5",
            "volume:-1",
            "dollar:x",
            "range:5",
        ] {
            assert!(parse_bar_spec(bad).is_err(), "{bad}");
        }
    }
}
