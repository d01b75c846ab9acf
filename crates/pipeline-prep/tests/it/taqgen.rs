//! An in-memory TAQ generator shaped like gen-data's output (canonical columns after ingest),
//! with labelled anomalies: exact duplicates (a copy of the symbol's previous row), price
//! spikes (price ×/÷ 1.1–1.5 for one row, quote unchanged), crossed quotes, zero/negative
//! prices, zero/negative sizes and missing fields. Like gen-data, the walk has an overnight
//! gap (normal, s.d. 0.75 % of the price) every 2,000 rows of a symbol. Seeded: same seed,
//! same rows.

#![allow(dead_code)]

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use pipeline_core::Chunk;

/// Anomaly kinds, as the ground truth names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Duplicate,
    Spike,
    Crossed,
    BadPrice,
    BadSize,
    Missing,
}

/// Rates per row of each anomaly.
#[derive(Debug, Clone)]
pub struct Rates {
    pub duplicate: f64,
    pub spike: f64,
    pub crossed: f64,
    pub bad_price: f64,
    pub bad_size: f64,
    pub missing: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            duplicate: 0.005,
            spike: 0.002,
            crossed: 0.002,
            bad_price: 0.001,
            bad_size: 0.002,
            missing: 0.003,
        }
    }
}

struct Rng(pipeline_core::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A standard normal draw (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.f().max(1e-300);
        let v = self.f();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[derive(Clone)]
struct Row {
    ts: i64,
    sym: usize,
    price: Option<f64>,
    size: Option<f64>,
    bid: Option<f64>,
    ask: Option<f64>,
    bid_size: Option<f64>,
    ask_size: Option<f64>,
    exch: &'static str,
    cond: &'static str,
}

/// The generator: call [`Gen::chunk`] repeatedly.
pub struct Gen {
    rng: Rng,
    rates: Rates,
    syms: Vec<String>,
    mids: Vec<i64>,
    counts: Vec<u64>,
    prev: Vec<Option<Row>>,
    ts: i64,
    line: u64,
    seq: u64,
    /// Ground truth: (line, kind).
    pub truth: Vec<(u64, Kind)>,
}

const TICK: f64 = 0.01;
const EXCH: [&str; 4] = ["Q", "N", "P", "Z"];
const COND: [&str; 4] = ["@", "F", "E", "@"];

pub fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            "symbol",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("price", DataType::Float64, true),
        Field::new("size", DataType::Float64, true),
        Field::new("bid", DataType::Float64, true),
        Field::new("ask", DataType::Float64, true),
        Field::new("bid_size", DataType::Float64, true),
        Field::new("ask_size", DataType::Float64, true),
        Field::new(
            "exchange",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("conditions", DataType::Utf8, true),
    ]))
}

impl Gen {
    pub fn new(seed: u64, symbols: usize, rates: Rates) -> Self {
        let mut rng = Rng(pipeline_core::SplitMix64::new(seed));
        let syms: Vec<String> = (0..symbols).map(|i| format!("SYM{i}")).collect();
        let mids = (0..symbols)
            .map(|_| 5_000 + rng.below(45_000) as i64)
            .collect();
        Gen {
            rng,
            rates,
            prev: vec![None; symbols],
            counts: vec![0; symbols],
            syms,
            mids,
            // 2021-01-04 14:30 UTC.
            ts: 1_609_770_600_000_000_000,
            line: 2,
            seq: 0,
            truth: Vec::new(),
        }
    }

    fn normal(&mut self, s: usize) -> Row {
        self.counts[s] += 1;
        if self.counts[s].is_multiple_of(2_000) {
            // A new "day": an overnight gap.
            let g = (0.0075 * self.rng.normal()).exp();
            self.mids[s] = ((self.mids[s] as f64) * g).round() as i64;
        }
        let r = &mut self.rng;
        let u = r.f();
        self.mids[s] += if u < 0.25 {
            -1
        } else if u < 0.5 {
            1
        } else {
            0
        };
        self.mids[s] = self.mids[s].max(100);
        let half = 1 + r.below(2) as i64;
        let bid = (self.mids[s] - half) as f64 * TICK;
        let ask = (self.mids[s] + half) as f64 * TICK;
        let price = match r.below(3) {
            0 => bid,
            1 => ask,
            _ => self.mids[s] as f64 * TICK,
        };
        let size = (100.0 * (1.0 / (1.0 - r.f() * 0.99)).powf(0.8)).round();
        self.ts += 1 + r.below(2_000_000) as i64;
        Row {
            ts: self.ts,
            sym: s,
            price: Some((price * 100.0).round() / 100.0),
            size: Some(size),
            bid: Some((bid * 100.0).round() / 100.0),
            ask: Some((ask * 100.0).round() / 100.0),
            bid_size: Some(100.0 * (1 + r.below(20)) as f64),
            ask_size: Some(100.0 * (1 + r.below(20)) as f64),
            exch: EXCH[r.below(4) as usize],
            cond: COND[r.below(4) as usize],
        }
    }

    /// The next `n` rows as one chunk.
    pub fn chunk(&mut self, n: usize) -> Chunk {
        let mut rows = Vec::with_capacity(n);
        let first = self.line;
        for _ in 0..n {
            let s = self.rng.below(self.syms.len() as u64) as usize;
            let u = self.rng.f();
            let rt = &self.rates;
            let c1 = rt.duplicate;
            let c2 = c1 + rt.spike;
            let c3 = c2 + rt.crossed;
            let c4 = c3 + rt.bad_price;
            let c5 = c4 + rt.bad_size;
            let c6 = c5 + rt.missing;
            let line = self.line;
            self.line += 1;
            if u < c1
                && let Some(p) = self.prev[s].clone()
            {
                self.truth.push((line, Kind::Duplicate));
                rows.push(p);
                // The copy is not a clean original for the next duplicate.
                self.prev[s] = None;
                continue;
            }
            let mut row = self.normal(s);
            let mut clean = true;
            if u < c1 {
                // No previous row to copy: emit a normal row.
            } else if u < c2 {
                let f = 1.1 + 0.4 * self.rng.f();
                let p = row.price.unwrap_or(1.0);
                let v = if self.rng.below(2) == 0 { p * f } else { p / f };
                row.price = Some((v * 100.0).round() / 100.0);
                self.truth.push((line, Kind::Spike));
                clean = false;
            } else if u < c3 {
                let (b, a) = (row.bid.unwrap_or(0.0), row.ask.unwrap_or(0.0));
                row.bid = Some(a + TICK);
                row.ask = Some(b);
                self.truth.push((line, Kind::Crossed));
                clean = false;
            } else if u < c4 {
                row.price = Some(if self.rng.below(2) == 0 {
                    0.0
                } else {
                    -row.price.unwrap_or(1.0)
                });
                self.truth.push((line, Kind::BadPrice));
                clean = false;
            } else if u < c5 {
                row.size = Some(if self.rng.below(2) == 0 {
                    0.0
                } else {
                    -row.size.unwrap_or(1.0)
                });
                self.truth.push((line, Kind::BadSize));
                clean = false;
            } else if u < c6 {
                match self.rng.below(4) {
                    0 => row.price = None,
                    1 => row.size = None,
                    2 => row.bid = None,
                    _ => row.ask = None,
                }
                self.truth.push((line, Kind::Missing));
                clean = false;
            }
            self.prev[s] = clean.then(|| row.clone());
            rows.push(row);
        }
        let batch = self.batch(&rows);
        let c = Chunk::with_first_line(batch, 0, self.seq, first).unwrap();
        self.seq += 1;
        c
    }

    fn batch(&self, rows: &[Row]) -> RecordBatch {
        let ts = TimestampNanosecondArray::from(rows.iter().map(|r| r.ts).collect::<Vec<_>>())
            .with_timezone("UTC");
        let mut sym = StringDictionaryBuilder::<Int32Type>::new();
        let mut ex = StringDictionaryBuilder::<Int32Type>::new();
        let mut cond = StringBuilder::new();
        let mut f: Vec<Float64Builder> = (0..6)
            .map(|_| Float64Builder::with_capacity(rows.len()))
            .collect();
        for r in rows {
            sym.append_value(&self.syms[r.sym]);
            ex.append_value(r.exch);
            cond.append_value(r.cond);
            for (b, v) in f
                .iter_mut()
                .zip([r.price, r.size, r.bid, r.ask, r.bid_size, r.ask_size])
            {
                b.append_option(v);
            }
        }
        let mut cols: Vec<ArrayRef> = vec![Arc::new(ts), Arc::new(sym.finish())];
        for mut b in f {
            cols.push(Arc::new(b.finish()));
        }
        cols.push(Arc::new(ex.finish()));
        cols.push(Arc::new(cond.finish()));
        RecordBatch::try_new(schema(), cols).unwrap()
    }
}
