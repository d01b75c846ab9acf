//! Engine bench: overhead of [`pipeline_parallel::Runner`] against the same stages in a
//! plain loop on one thread, and 1-vs-2-worker scaling on a CPU-heavy per-key stage.
//! Prints one JSON line.
//!
//! Run: `cargo run --release -p pipeline-parallel --example engine_bench [-- ROWS_MILLIONS]`
//! (default 4 M rows; fixed seed; each figure is the best of 3 runs).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type};
use arrow_array::{Array, ArrayRef, BooleanArray, DictionaryArray, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use pipeline_core::{
    Chunk, Emitter, Result, Sink, SinkSummary, Source, Stage, StageFactory, StageKey, StageOrder,
    VecSource, dict_type,
};
use pipeline_parallel::{Runner, SourceSpec, partition, peak_rss};

/// Symbols with equal volume; hash routing of 128 keys leaves the 2-worker split within a
/// few percent of even (the JSON reports the actual busiest-worker share).
const SYMBOLS: usize = 128;
const CHUNK_ROWS: usize = 65_536;
const FILES: usize = 8;

fn make_files(rows: usize) -> Vec<Vec<Chunk>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("symbol", dict_type(), true),
        Field::new("price", DataType::Float64, true),
    ]));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let names: Vec<String> = (0..SYMBOLS).map(|i| format!("S{i:03}")).collect();
    let per_file = rows / FILES;
    (0..FILES)
        .map(|f| {
            (0..per_file.div_ceil(CHUNK_ROWS))
                .map(|seq| {
                    let n = CHUNK_ROWS.min(per_file - seq * CHUNK_ROWS);
                    let keys: DictionaryArray<Int32Type> = (0..n)
                        .map(|_| Some(names[(rnd() % SYMBOLS as u64) as usize].as_str()))
                        .collect();
                    let px = Float64Array::from_iter_values(
                        (0..n).map(|_| (rnd() % 20_000) as f64 / 100.0 - 1.0),
                    );
                    let b = RecordBatch::try_new(
                        schema.clone(),
                        vec![Arc::new(keys) as ArrayRef, Arc::new(px)],
                    )
                    .unwrap();
                    Chunk::with_first_line(b, f as u32, seq as u64, 2 + (seq * CHUNK_ROWS) as u64)
                        .unwrap()
                })
                .collect()
        })
        .collect()
}

/// Row-local: drops non-positive prices.
struct Positive;

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

/// Per-key: an EMA per symbol, with `work` extra floating-point iterations per row to make
/// the stage CPU-bound (`work` = 0 is a realistic cheap feature).
struct Ema {
    state: HashMap<String, f64>,
    work: u32,
}

impl Stage for Ema {
    fn name(&self) -> &str {
        "ema"
    }
    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }
    fn key(&self) -> StageKey {
        StageKey::of("ema", &self.work)
    }
    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let k = chunk
            .column_by_name("symbol")
            .unwrap()
            .as_dictionary::<Int32Type>();
        let names = k.values().as_string::<i32>();
        let mut slots: Vec<f64> = (0..names.len())
            .map(|i| self.state.get(names.value(i)).copied().unwrap_or(f64::NAN))
            .collect();
        let px = chunk
            .column_by_name("price")
            .unwrap()
            .as_primitive::<Float64Type>();
        let mut ema = Vec::with_capacity(chunk.num_rows());
        for i in 0..chunk.num_rows() {
            let s = &mut slots[k.keys().value(i) as usize];
            let mut p = px.value(i);
            for _ in 0..self.work {
                p = (p * 1.000_001).sqrt().mul_add(p.sqrt(), 0.5).ln_1p();
            }
            *s = if s.is_nan() { p } else { 0.05 * p + 0.95 * *s };
            ema.push(*s);
        }
        for (i, v) in slots.into_iter().enumerate() {
            if !v.is_nan() {
                self.state.insert(names.value(i).to_string(), v);
            }
        }
        out.emit(chunk.with_columns(vec![(
            Field::new("ema", DataType::Float64, false),
            Arc::new(Float64Array::from(ema)) as ArrayRef,
        )])?);
        Ok(())
    }
}

struct Counting(Arc<AtomicU64>);

impl Sink for Counting {
    fn write(&mut self, c: &Chunk) -> Result<()> {
        self.0.fetch_add(c.num_rows() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }
}

fn stages(work: u32) -> Vec<StageFactory> {
    vec![
        Arc::new(|| Ok(Box::new(Positive) as Box<dyn Stage>)),
        Arc::new(move || {
            Ok(Box::new(Ema {
                state: HashMap::new(),
                work,
            }) as Box<dyn Stage>)
        }),
    ]
}

fn plain(files: &[Vec<Chunk>], work: u32) -> (Duration, u64) {
    let t = Instant::now();
    let mut s: Vec<Box<dyn Stage>> = stages(work).iter().map(|f| f().unwrap()).collect();
    let mut rows = 0u64;
    let mut em = Emitter::default();
    for f in files {
        for c in f {
            s[0].process(c.clone(), &mut em).unwrap();
            for c in em.take_chunks() {
                s[1].process(c, &mut em).unwrap();
            }
            for c in em.take_chunks() {
                rows += c.num_rows() as u64;
            }
            em.take_rejects();
        }
    }
    (t.elapsed(), rows)
}

fn engine(files: &[Vec<Chunk>], work: u32, workers: usize) -> (Duration, u64) {
    let specs: Vec<SourceSpec> = files
        .iter()
        .enumerate()
        .map(|(i, chunks)| {
            let chunks = chunks.clone();
            SourceSpec {
                name: format!("f{i}"),
                size_bytes: chunks.iter().map(|c| c.memory_size() as u64).sum(),
                open: Arc::new(move || {
                    Ok(Box::new(VecSource::new(chunks[0].schema(), chunks.clone()))
                        as Box<dyn Source>)
                }),
            }
        })
        .collect();
    let rows = Arc::new(AtomicU64::new(0));
    let r2 = rows.clone();
    let t = Instant::now();
    Runner::new()
        .sources(specs)
        .stages(stages(work))
        .sink_factory(Arc::new(move |_, _| {
            Ok(Box::new(Counting(r2.clone())) as Box<dyn Sink>)
        }))
        .workers(workers)
        .memory_limit(1 << 30)
        .build()
        .unwrap()
        .run()
        .unwrap();
    (t.elapsed(), rows.load(Ordering::Relaxed))
}

fn best(mut f: impl FnMut() -> (Duration, u64)) -> (Duration, u64) {
    (0..3).map(|_| f()).min_by_key(|r| r.0).unwrap()
}

fn main() {
    let millions: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4.0);
    let rows = (millions * 1e6) as usize;
    let files = make_files(rows);
    let (tp, np) = best(|| plain(&files, 0));
    let (te, ne) = best(|| engine(&files, 0, 1));
    assert_eq!(np, ne, "engine and plain loop disagree on output rows");
    let heavy = 40;
    let (h1, n1) = best(|| engine(&files, heavy, 1));
    let (h2, n2) = best(|| engine(&files, heavy, 2));
    assert_eq!(n1, n2);
    let on_first = (0..SYMBOLS)
        .filter(|i| partition(format!("S{i:03}").as_bytes(), 2) == 0)
        .count();
    let share = on_first.max(SYMBOLS - on_first) as f64 / SYMBOLS as f64;
    println!(
        "{{\"bench\":\"engine\",\"rows\":{rows},\"plain_s\":{:.4},\"engine_1w_s\":{:.4},\"overhead_pct\":{:.2},\"heavy_1w_s\":{:.4},\"heavy_2w_s\":{:.4},\"speedup_2w\":{:.3},\"busiest_worker_share\":{share:.3},\"cores\":{},\"peak_rss_bytes\":{}}}",
        tp.as_secs_f64(),
        te.as_secs_f64(),
        (te.as_secs_f64() / tp.as_secs_f64() - 1.0) * 100.0,
        h1.as_secs_f64(),
        h2.as_secs_f64(),
        h1.as_secs_f64() / h2.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        peak_rss(),
    );
}
