//! The join against a plain reference (each trade's NBBO rebuilt from scratch from every
//! earlier quote of its symbol), across chunk and file boundaries, in both stream orders.

use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int8Type, TimestampNanosecondType};
use arrow_array::{
    Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema};
use pipeline_core::{Chunk, Source, VecSource, ts_type};
use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone, Copy)]
struct Q {
    ts: i64,
    sym: usize,
    ex: usize,
    bid: f64,
    ask: f64,
    bs: f64,
    asz: f64,
}

#[derive(Debug, Clone, Copy)]
struct T {
    ts: i64,
    sym: usize,
    price: f64,
    size: f64,
}

/// A trade of one share.
fn trade(ts: i64, sym: usize, price: f64) -> T {
    T {
        ts,
        sym,
        price,
        size: 1.0,
    }
}

const SYMS: [&str; 3] = ["AAA", "BBB", "CCC"];
const EXS: [&str; 3] = ["N", "Q", "P"];

/// Time-sorted trades and quotes with ties between them, withdrawn sides, crossed
/// exchange quotes, and a symbol (CCC) without quotes in the first half.
fn market(seed: u64, n: usize) -> (Vec<T>, Vec<Q>) {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut trades, mut quotes) = (Vec::new(), Vec::new());
    let mut ts = 1_000i64;
    for i in 0..n {
        ts += (next() % 3) as i64; // ties happen
        let r = next();
        let sym = (r % 3) as usize;
        if r % 4 == 0 {
            let base = 100.0 + sym as f64;
            trades.push(T {
                ts,
                sym,
                price: base + ((next() % 9) as f64 - 4.0) / 100.0,
                size: (1 + next() % 5) as f64 * 100.0,
            });
        } else if !(sym == 2 && i < n / 2) {
            let base = 100.0 + sym as f64;
            let b = base + ((next() % 5) as f64 - 3.0) / 100.0;
            let a = base + ((next() % 5) as f64 - 1.0) / 100.0;
            let w = next() % 20;
            quotes.push(Q {
                ts,
                sym,
                ex: (next() % 3) as usize,
                bid: if w == 0 { 0.0 } else { b },
                ask: if w == 1 { 0.0 } else { a },
                bs: (next() % 4) as f64 * 100.0,
                asz: (1 + next() % 4) as f64 * 100.0,
            });
        }
    }
    (trades, quotes)
}

fn trade_batch(t: &[T]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", ts_type(), true),
        Field::new("symbol", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("size", DataType::Float64, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampNanosecondArray::from_iter_values(t.iter().map(|t| t.ts)).with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(t.iter().map(|t| SYMS[t.sym]))),
        Arc::new(Float64Array::from_iter_values(t.iter().map(|t| t.price))),
        Arc::new(Float64Array::from_iter_values(t.iter().map(|t| t.size))),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn quote_batch(q: &[Q]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", ts_type(), true),
        Field::new("symbol", DataType::Utf8, true),
        Field::new("exchange", DataType::Utf8, true),
        Field::new("bid", DataType::Float64, true),
        Field::new("ask", DataType::Float64, true),
        Field::new("bid_size", DataType::Float64, true),
        Field::new("ask_size", DataType::Float64, true),
    ]));
    let f =
        |g: fn(&Q) -> f64| Arc::new(Float64Array::from_iter_values(q.iter().map(g))) as ArrayRef;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampNanosecondArray::from_iter_values(q.iter().map(|q| q.ts)).with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(q.iter().map(|q| SYMS[q.sym]))),
        Arc::new(StringArray::from_iter_values(q.iter().map(|q| EXS[q.ex]))),
        f(|q| q.bid),
        f(|q| q.ask),
        f(|q| q.bs),
        f(|q| q.asz),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

/// `rows` cut into files of `per_file` rows, each read in chunks of `chunk` rows.
fn files(batch: RecordBatch, per_file: usize, chunk: usize, first_id: u32) -> Vec<OpenSource> {
    let mut out: Vec<OpenSource> = Vec::new();
    let n = batch.num_rows();
    let mut start = 0;
    let mut id = first_id;
    while start < n {
        let len = per_file.min(n - start);
        let file = batch.slice(start, len);
        let schema = Chunk::with_first_line(file.slice(0, 0), id, 0, 2)
            .unwrap()
            .schema();
        let mut chunks = Vec::new();
        let mut s = 0;
        while s < len {
            let l = chunk.min(len - s);
            chunks.push(
                Chunk::with_first_line(file.slice(s, l), id, chunks.len() as u64, 2 + s as u64)
                    .unwrap(),
            );
            s += l;
        }
        out.push(Arc::new(move || {
            Ok(Box::new(VecSource::new(schema.clone(), chunks.clone())) as Box<dyn Source>)
        }));
        start += len;
        id += 1;
    }
    out
}

fn run(segments: Vec<TaqSegment>, opts: TaqOptions) -> (Vec<Chunk>, TaqStats) {
    let schema = trade_batch(&[]).schema();
    let schema = Chunk::with_first_line(RecordBatch::new_empty(schema), 0, 0, 1)
        .unwrap()
        .schema();
    let stats = Arc::new(Mutex::new(TaqStats::default()));
    let join = TaqJoin::new(&schema, segments, opts, None, stats.clone(), 0).unwrap();
    let out: Vec<Chunk> = join.map(|c| c.unwrap()).collect();
    let s = stats.lock().unwrap().clone();
    (out, s)
}

/// One output row: bid, ask, bid size, ask size, quote_ts, sign, realized spread.
type Row = (
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<i64>,
    Option<i8>,
    Option<f64>,
);

fn rows(out: &[Chunk]) -> Vec<Row> {
    let mut v = Vec::new();
    for c in out {
        let f = |n: &str| {
            c.column_by_name(n)
                .unwrap()
                .as_primitive::<Float64Type>()
                .clone()
        };
        let (b, a, bs, asz, rs) = (
            f("bid"),
            f("ask"),
            f("bid_size"),
            f("ask_size"),
            f("realized_spread_h"),
        );
        let qt = c
            .column_by_name("quote_ts")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>()
            .clone();
        let s = c
            .column_by_name("sign")
            .unwrap()
            .as_primitive::<Int8Type>()
            .clone();
        let o = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
        for i in 0..c.num_rows() {
            v.push((
                o(&b, i),
                o(&a, i),
                o(&bs, i),
                o(&asz, i),
                qt.is_valid(i).then(|| qt.value(i)),
                s.is_valid(i).then(|| s.value(i)),
                o(&rs, i),
            ));
        }
    }
    v
}

/// The reference: each trade's NBBO replayed from scratch from its symbol's quotes strictly
/// before `t − delay`; the later midpoint from those strictly before `t − delay + h`.
fn reference(trades: &[T], quotes: &[Q], delay: i64, h: i64) -> Vec<Row> {
    let book_at = |sym: usize, before: i64| {
        let mut b = NbboBook::default();
        for q in quotes.iter().filter(|q| q.sym == sym && q.ts < before) {
            b.apply(q.ex as u32, q.ts, Some(q.bid), Some(q.ask), q.bs, q.asz);
        }
        b.nbbo()
    };
    let mut ticks = [TickRule::default(); 3];
    trades
        .iter()
        .map(|t| {
            let tick = ticks[t.sym].update(t.price);
            let n = book_at(t.sym, t.ts - delay);
            let (bid, ask) = (n.and_then(|n| n.bid), n.and_then(|n| n.ask));
            let sign = sign_lee_ready(t.price, bid, ask, tick);
            let later = book_at(t.sym, t.ts - delay + h).and_then(|n| n.mid());
            let rs = match (sign, n.and_then(|n| n.mid()), later) {
                (Some(s), Some(_), Some(l)) => Some(realized_spread(t.price, s, l)),
                _ => None,
            };
            (
                bid,
                ask,
                bid.and(n.map(|n| n.bid_size)),
                ask.and(n.map(|n| n.ask_size)),
                n.map(|n| n.ts),
                sign,
                rs,
            )
        })
        .collect()
}

fn opts(delay: i64, h: i64, order: StreamOrder) -> TaqOptions {
    TaqOptions {
        delay_ns: delay,
        tolerance_ns: None,
        horizons: vec![("h".into(), h)],
        order,
        day_zone: chrono_tz::Tz::UTC,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn time_order_matches_the_reference(
        seed in 0u64..1000,
        tf in 1usize..400, tc in 1usize..100,
        qf in 1usize..900, qc in 1usize..300,
        delay in 0i64..4, h in 1i64..40,
    ) {
        let (trades, quotes) = market(seed, 1500);
        let seg = TaqSegment {
            trades: files(trade_batch(&trades), tf, tc, 0),
            quotes: files(quote_batch(&quotes), qf, qc, 100),
        };
        let (out, stats) = run(vec![seg], opts(delay, h, StreamOrder::Time));
        let want = reference(&trades, &quotes, delay, h);
        prop_assert_eq!(rows(&out), want);
        prop_assert_eq!(stats.trades_out, trades.len() as u64);
        prop_assert_eq!(stats.quotes_read, quotes.len() as u64);
        prop_assert_eq!(stats.quotes_applied + stats.quotes_crossed_exchange, quotes.len() as u64);
    }

    #[test]
    fn symbol_order_matches_the_reference(
        seed in 0u64..1000, tc in 1usize..100, qc in 1usize..300, h in 1i64..40,
    ) {
        let (trades, quotes) = market(seed, 1200);
        let (mut ts, mut qs) = (trades.clone(), quotes.clone());
        ts.sort_by_key(|t| (t.sym, t.ts));
        qs.sort_by_key(|q| (q.sym, q.ts));
        let seg = TaqSegment {
            trades: files(trade_batch(&ts), usize::MAX, tc, 0),
            quotes: files(quote_batch(&qs), usize::MAX, qc, 100),
        };
        let (out, stats) = run(vec![seg], opts(0, h, StreamOrder::Symbol));
        prop_assert_eq!(rows(&out), reference(&ts, &quotes, 0, h));
        prop_assert_eq!(stats.trades_out, trades.len() as u64);
    }
}

#[test]
fn unsorted_rows_are_quarantined_and_the_rest_matched() {
    let (mut trades, quotes) = market(7, 400);
    let n = trades.len();
    trades.swap(n / 2, n / 2 + 3);
    let seg = TaqSegment {
        trades: files(trade_batch(&trades), usize::MAX, 64, 0),
        quotes: files(quote_batch(&quotes), usize::MAX, 64, 1),
    };
    let schema = Chunk::with_first_line(RecordBatch::new_empty(trade_batch(&[]).schema()), 0, 0, 1)
        .unwrap()
        .schema();
    let stats = Arc::new(Mutex::new(TaqStats::default()));
    let mut join = TaqJoin::new(
        &schema,
        vec![seg],
        opts(0, 5, StreamOrder::Time),
        None,
        stats.clone(),
        0,
    )
    .unwrap();
    let mut out = 0;
    let mut rejects = Vec::new();
    while let Some(c) = join.next() {
        out += c.unwrap().num_rows();
        rejects.extend(join.drain_rejects());
    }
    rejects.extend(join.drain_rejects());
    let s = stats.lock().unwrap().clone();
    let bad = s
        .quarantined
        .get("taq_unsorted_trade")
        .copied()
        .unwrap_or(0);
    assert!(bad >= 1, "{s:?}");
    assert_eq!(out as u64 + bad, n as u64);
    assert_eq!(rejects.len() as u64, bad);
    // The line is the swapped row's: data starts on line 2.
    assert!(
        rejects
            .iter()
            .all(|r| r.reason == "taq_unsorted_trade" && r.line >= 2)
    );
}

#[test]
fn tolerance_nulls_stale_quotes_and_counts_them() {
    let trades = vec![
        trade(100, 0, 100.0),
        trade(200, 0, 100.0),
        trade(300, 1, 101.0),
    ];
    let quotes = vec![Q {
        ts: 90,
        sym: 0,
        ex: 0,
        bid: 99.99,
        ask: 100.01,
        bs: 1.0,
        asz: 1.0,
    }];
    let seg = TaqSegment {
        trades: files(trade_batch(&trades), 10, 10, 0),
        quotes: files(quote_batch(&quotes), 10, 10, 1),
    };
    let mut o = opts(0, 5, StreamOrder::Time);
    o.tolerance_ns = Some(50);
    let (out, s) = run(vec![seg], o);
    let r = rows(&out);
    assert_eq!(r[0].0, Some(99.99));
    assert_eq!(r[1].0, None); // 110 ns old > 50
    assert_eq!(r[2].0, None); // no quote for BBB
    assert_eq!(s.matches.get("matched"), Some(&1));
    assert_eq!(s.matches.get("stale_quote"), Some(&1));
    assert_eq!(s.matches.get("no_quote"), Some(&1));
}

/// A source that says it read 1,000 bytes once its chunks are taken.
struct Sized(VecSource, bool);

impl Iterator for Sized {
    type Item = pipeline_core::Result<Chunk>;
    fn next(&mut self) -> Option<Self::Item> {
        let n = self.0.next();
        self.1 |= n.is_none();
        n
    }
}

impl Source for Sized {
    fn schema(&self) -> arrow_schema::SchemaRef {
        self.0.schema()
    }
    fn progress(&self) -> pipeline_core::Progress {
        pipeline_core::Progress {
            bytes_read: if self.1 { 1000 } else { 0 },
            ..Default::default()
        }
    }
}

#[test]
fn progress_counts_the_bytes_of_every_file_of_every_segment() {
    let (trades, quotes) = market(3, 300);
    let sized = |b: RecordBatch, id: u32| -> OpenSource {
        let c = Chunk::with_first_line(b, id, 0, 2).unwrap();
        Arc::new(move || {
            Ok(
                Box::new(Sized(VecSource::new(c.schema(), vec![c.clone()]), false))
                    as Box<dyn Source>,
            )
        })
    };
    let seg = |k: u32| TaqSegment {
        trades: vec![sized(trade_batch(&trades), 2 * k)],
        quotes: vec![sized(quote_batch(&quotes), 2 * k + 1)],
    };
    let schema = Chunk::with_first_line(RecordBatch::new_empty(trade_batch(&[]).schema()), 0, 0, 1)
        .unwrap()
        .schema();
    let stats = Arc::new(Mutex::new(TaqStats::default()));
    let mut join = TaqJoin::new(
        &schema,
        vec![seg(0), seg(1)],
        opts(0, 5, StreamOrder::Time),
        None,
        stats,
        4000,
    )
    .unwrap();
    for c in join.by_ref() {
        c.unwrap();
    }
    assert_eq!(join.progress().bytes_read, 4000);
}

#[test]
fn a_trade_without_a_price_is_quarantined_with_its_own_reason() {
    let trades = vec![trade(100, 0, 100.0), trade(200, 0, 100.0)];
    let b = trade_batch(&trades);
    let mut cols = b.columns().to_vec();
    cols[2] = Arc::new(Float64Array::from(vec![Some(100.0), None]));
    let b = RecordBatch::try_new(b.schema(), cols).unwrap();
    let seg = TaqSegment {
        trades: files(b, 10, 10, 0),
        quotes: files(quote_batch(&[]), 10, 10, 1),
    };
    let (out, s) = run(vec![seg], opts(0, 5, StreamOrder::Time));
    assert_eq!(rows(&out).len(), 1);
    assert_eq!(s.quarantined.get("taq_missing_price"), Some(&1));
    assert_eq!(s.quarantined.get("taq_missing_time"), None);
}
