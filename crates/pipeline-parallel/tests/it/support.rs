//! Test fixtures: a seeded tick generator, sources over it, a stateful per-key stage with
//! fault injection, a row-local filter, and sinks that collect or write text files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use pipeline_core::{
    Chunk, Emitter, Error, Reject, Result, Sink, SinkSummary, Source, Stage, StageFactory,
    StageKey, StageOrder,
};
use pipeline_parallel::{SinkFactory, SourceSpec};

/// The seeded PRNG of the tests.
pub struct Rng(pub pipeline_core::SplitMix64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
}

/// One generated row: symbol (maybe null), price (negative ones are bad data).
#[derive(Clone, Debug)]
pub struct Row {
    pub symbol: Option<String>,
    pub price: f64,
}

/// Generates `files` files of `rows` rows each.
pub fn gen_files(seed: u64, files: usize, rows: usize) -> Vec<Vec<Row>> {
    let syms = ["AAPL", "MSFT", "IBM", "GE", "F", "T", "KO"];
    let mut rng = Rng(pipeline_core::SplitMix64::new(seed));
    (0..files)
        .map(|_| {
            (0..rows)
                .map(|_| {
                    let r = rng.next();
                    let symbol = if r.is_multiple_of(53) {
                        None
                    } else {
                        Some(syms[(r % 7) as usize].to_string())
                    };
                    let price = ((rng.next() % 10_000) as f64) / 100.0
                        - if r.is_multiple_of(17) { 200.0 } else { 0.0 };
                    Row { symbol, price }
                })
                .collect()
        })
        .collect()
}

pub fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
    ]))
}

/// Chunks of `rows` (source `id`), `chunk` rows each, lines from 2.
pub fn chunks_of(id: u32, rows: &[Row], chunk: usize) -> Vec<Chunk> {
    rows.chunks(chunk.max(1))
        .enumerate()
        .map(|(seq, part)| {
            let sym: StringArray = part.iter().map(|r| r.symbol.as_deref()).collect();
            let px = Float64Array::from(part.iter().map(|r| r.price).collect::<Vec<_>>());
            let b = RecordBatch::try_new(schema(), vec![Arc::new(sym) as ArrayRef, Arc::new(px)])
                .unwrap();
            let first = 2 + (seq * chunk.max(1)) as u64;
            Chunk::with_first_line(b, id, seq as u64, first).unwrap()
        })
        .collect()
}

/// A source over prepared chunks that can fail: `fail_at` = chunk index at which `next`
/// returns an error, while `failures` (shared) is above zero (decremented per failure).
/// Every 10th row of a chunk is reported as a quarantined reject on top of the chunk's rows.
pub struct TestSource {
    chunks: std::vec::IntoIter<Chunk>,
    pos: usize,
    fail_at: Option<usize>,
    failures: Arc<AtomicUsize>,
    rejects: Vec<Reject>,
    id: u32,
}

impl Iterator for TestSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        if self.fail_at == Some(self.pos)
            && self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Some(Err(Error::Io {
                path: "test".into(),
                source: std::io::Error::other("injected"),
            }));
        }
        let c = self.chunks.next()?;
        self.pos += 1;
        self.rejects.push(Reject::quarantined(
            self.id,
            100_000 + self.pos as u64,
            "bad_number",
            "",
            None,
        ));
        Some(Ok(c))
    }
}

impl Source for TestSource {
    fn schema(&self) -> arrow_schema::SchemaRef {
        schema()
    }

    fn drain_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }
}

/// Specs for `files`, named `f00`, `f01`, …
pub fn specs(files: &[Vec<Row>], chunk: usize) -> Vec<SourceSpec> {
    specs_failing(files, chunk, None)
}

/// As [`specs`], with source `fail.0` failing at chunk `fail.1` `fail.2` times.
pub fn specs_failing(
    files: &[Vec<Row>],
    chunk: usize,
    fail: Option<(usize, usize, usize)>,
) -> Vec<SourceSpec> {
    files
        .iter()
        .enumerate()
        .map(|(i, rows)| {
            let chunks = chunks_of(i as u32, rows, chunk);
            let (fail_at, n) = match fail {
                Some((f, at, n)) if f == i => (Some(at), n),
                _ => (None, 0),
            };
            let failures = Arc::new(AtomicUsize::new(n));
            SourceSpec {
                name: format!("f{i:02}"),
                size_bytes: rows.len() as u64 * 20,
                open: Arc::new(move || {
                    Ok(Box::new(TestSource {
                        chunks: chunks.clone().into_iter(),
                        pos: 0,
                        fail_at,
                        failures: failures.clone(),
                        rejects: Vec::new(),
                        id: i as u32,
                    }) as Box<dyn Source>)
                }),
            }
        })
        .collect()
}

/// Per-symbol running count and price sum: a stateful per-key stage. Adds `n` and `cum`.
/// `panic_on` = (source, line): panics on chunks of that source reaching that line while `panics` (shared) is above zero.
pub struct CumSum {
    state: BTreeMap<String, (u64, f64)>,
    panic_on: Option<(u32, u64)>,
    panics: Arc<AtomicUsize>,
    sleep: Duration,
}

impl Stage for CumSum {
    fn name(&self) -> &str {
        "cumsum"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        StageKey::of("cumsum", &())
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        if !self.sleep.is_zero() {
            std::thread::sleep(self.sleep);
        }
        if let Some((src, line)) = self.panic_on
            && chunk.source() == src
            && chunk.lines().values().iter().any(|l| *l >= line)
            && self
                .panics
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            panic!("injected panic at {src}:{line}");
        }
        let sym = chunk
            .column_by_name("symbol")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let px = chunk
            .column_by_name("price")
            .unwrap()
            .as_primitive::<Float64Type>()
            .clone();
        let mut n = Vec::with_capacity(chunk.num_rows());
        let mut cum = Vec::with_capacity(chunk.num_rows());
        for i in 0..chunk.num_rows() {
            let key = if sym.is_null(i) {
                String::new()
            } else {
                sym.value(i).to_string()
            };
            let e = self.state.entry(key).or_default();
            e.0 += 1;
            e.1 += px.value(i);
            n.push(e.0);
            cum.push(e.1);
        }
        out.emit(chunk.with_columns(vec![
            (
                Field::new("n", DataType::UInt64, false),
                Arc::new(UInt64Array::from(n)) as ArrayRef,
            ),
            (
                Field::new("cum", DataType::Float64, false),
                Arc::new(Float64Array::from(cum)) as ArrayRef,
            ),
        ])?);
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        // f64 as bits: JSON text does not round-trip every float exactly.
        let v: Vec<(&String, u64, u64)> = self
            .state
            .iter()
            .map(|(k, v)| (k, v.0, v.1.to_bits()))
            .collect();
        Ok(Some(serde_json::to_vec(&v).unwrap()))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let v: Vec<(String, u64, u64)> =
            serde_json::from_slice(state).map_err(|e| Error::Internal(e.to_string()))?;
        self.state = v
            .into_iter()
            .map(|(k, n, s)| (k, (n, f64::from_bits(s))))
            .collect();
        Ok(())
    }
}

pub fn cumsum(panic_on: Option<(u32, u64)>, panics: usize, sleep: Duration) -> StageFactory {
    let panics = Arc::new(AtomicUsize::new(panics));
    Arc::new(move || {
        Ok(Box::new(CumSum {
            state: BTreeMap::new(),
            panic_on,
            panics: panics.clone(),
            sleep,
        }) as Box<dyn Stage>)
    })
}

/// A row-local filter removing negative prices under rule `nonpositive_price`.
pub struct Positive;

impl Stage for Positive {
    fn name(&self) -> &str {
        "positive"
    }

    fn key(&self) -> StageKey {
        StageKey::of("positive", &())
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let px = chunk
            .column_by_name("price")
            .unwrap()
            .as_primitive::<Float64Type>();
        let keep: BooleanArray = px
            .iter()
            .map(|p| Some(p.is_some_and(|p| p > 0.0)))
            .collect();
        let kept = out.remove("nonpositive_price", &chunk, &keep)?;
        out.emit(kept);
        Ok(())
    }
}

pub fn positive() -> StageFactory {
    Arc::new(|| Ok(Box::new(Positive) as Box<dyn Stage>))
}

/// Output rows as `(symbol, source, line, n, cum)`.
pub type OutRow = (String, u32, u64, u64, u64);

/// A sink collecting rows into a shared map per (worker, segment).
pub struct CollectSink {
    pub rows: Vec<OutRow>,
    pub to: Collected,
    pub at: (usize, u32),
}

pub fn rows_of(c: &Chunk) -> Vec<OutRow> {
    let sym = c.column_by_name("symbol").unwrap().as_string::<i32>();
    let n = c
        .column_by_name("n")
        .map(|a| a.as_primitive::<arrow_array::types::UInt64Type>().clone());
    let cum = c
        .column_by_name("cum")
        .map(|a| a.as_primitive::<Float64Type>().clone());
    (0..c.num_rows())
        .map(|i| {
            (
                if sym.is_null(i) {
                    "<null>".to_string()
                } else {
                    sym.value(i).to_string()
                },
                c.source(),
                c.line(i),
                n.as_ref().map_or(0, |n| n.value(i)),
                cum.as_ref().map_or(0, |x| x.value(i).to_bits()),
            )
        })
        .collect()
}

impl Sink for CollectSink {
    fn write(&mut self, chunk: &Chunk) -> Result<()> {
        self.rows.extend(rows_of(chunk));
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        let rows = self.rows.len() as u64;
        self.to
            .lock()
            .unwrap()
            .entry(self.at)
            .or_default()
            .append(&mut self.rows);
        Ok(SinkSummary {
            rows,
            ..Default::default()
        })
    }
}

pub type Collected = Arc<Mutex<BTreeMap<(usize, u32), Vec<OutRow>>>>;

pub fn collect_sink() -> (SinkFactory, Collected) {
    let to: Collected = Arc::default();
    let t2 = to.clone();
    (
        Arc::new(move |w, seg| {
            Ok(Box::new(CollectSink {
                rows: Vec::new(),
                to: t2.clone(),
                at: (w, seg),
            }) as Box<dyn Sink>)
        }),
        to,
    )
}

/// Every collected row grouped by symbol, in output order.
pub fn by_symbol(c: &Collected) -> BTreeMap<String, Vec<OutRow>> {
    let mut m: BTreeMap<String, Vec<OutRow>> = BTreeMap::new();
    for rows in c.lock().unwrap().values() {
        for r in rows {
            m.entry(r.0.clone()).or_default().push(r.clone());
        }
    }
    m
}

/// A sink writing rows as text to `dir/w{worker}-s{segment}.txt` via a `.tmp` file.
pub struct TextSink {
    pub path: PathBuf,
    pub text: String,
}

impl Sink for TextSink {
    fn write(&mut self, chunk: &Chunk) -> Result<()> {
        for r in rows_of(chunk) {
            self.text
                .push_str(&format!("{},{},{},{},{}\n", r.0, r.1, r.2, r.3, r.4));
        }
        let tmp = self.path.with_extension("txt.tmp");
        std::fs::write(&tmp, &self.text).map_err(|e| Error::io(&tmp, e))
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        let tmp = self.path.with_extension("txt.tmp");
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&tmp, e))?;
        Ok(SinkSummary {
            rows: 0,
            bytes: self.text.len() as u64,
            files: vec![self.path.clone()],
        })
    }

    fn abort(&mut self) -> Result<()> {
        let _ = std::fs::remove_file(self.path.with_extension("txt.tmp"));
        Ok(())
    }
}

pub fn text_sink(dir: PathBuf) -> SinkFactory {
    Arc::new(move |w, seg| {
        Ok(Box::new(TextSink {
            path: dir.join(format!("w{w}-s{seg}.txt")),
            text: String::new(),
        }) as Box<dyn Sink>)
    })
}
