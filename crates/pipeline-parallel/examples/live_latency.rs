//! Live-mode latency on the engine (the one executor that runs `tickpipe run --follow`): a
//! source emits small chunks as rows "arrive" (8 rows every 1 ms, each stamped with its
//! production time), two workers pass them through a per-symbol stage, and the sink measures
//! each row's delay from production to the sink. Reports p50/p99/max. Prints one JSON line.
//!
//! Run: `cargo run --release -p pipeline-parallel --example live_latency`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{
    Chunk, Emitter, Result, Sink, SinkSummary, Source, Stage, StageKey, StageOrder,
};
use pipeline_parallel::{Runner, SourceSpec};

const ROWS_PER_TICK: usize = 8;
const TICKS: usize = 2000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("born_ns", DataType::Int64, false),
    ]))
}

/// Emits `ROWS_PER_TICK` rows every millisecond, stamped with the time they were made.
struct Feed {
    epoch: Instant,
    tick: usize,
}

impl Iterator for Feed {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        if self.tick == TICKS {
            return None;
        }
        let due = Duration::from_millis(self.tick as u64);
        if let Some(wait) = due.checked_sub(self.epoch.elapsed()) {
            std::thread::sleep(wait);
        }
        let now = self.epoch.elapsed().as_nanos() as i64;
        let symbols: Vec<&str> = (0..ROWS_PER_TICK)
            .map(|i| if i % 2 == 0 { "A" } else { "B" })
            .collect();
        let b = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(symbols)),
                Arc::new(Int64Array::from(vec![now; ROWS_PER_TICK])),
            ],
        )
        .ok()?;
        let first = 2 + (self.tick * ROWS_PER_TICK) as u64;
        self.tick += 1;
        Some(Chunk::with_first_line(b, 0, self.tick as u64, first))
    }
}

impl Source for Feed {
    fn schema(&self) -> SchemaRef {
        schema()
    }
}

/// A per-symbol pass-through stage, so rows are routed to workers as in a real run.
struct Touch;

impl Stage for Touch {
    fn name(&self) -> &str {
        "touch"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        StageKey::of("touch", &())
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        out.emit(chunk);
        Ok(())
    }
}

/// Records each row's delay from production to arrival.
struct Clock {
    epoch: Instant,
    delays: Arc<Mutex<Vec<i64>>>,
}

impl Sink for Clock {
    fn write(&mut self, c: &Chunk) -> Result<()> {
        let now = self.epoch.elapsed().as_nanos() as i64;
        let born = c
            .column_by_name("born_ns")
            .map(|a| a.as_primitive::<Int64Type>().clone());
        if let (Some(born), Ok(mut d)) = (born, self.delays.lock()) {
            d.extend(born.values().iter().map(|b| now - b));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }
}

fn main() -> Result<()> {
    let epoch = Instant::now();
    let delays = Arc::new(Mutex::new(Vec::new()));
    let d = delays.clone();
    Runner::new()
        .sources(vec![SourceSpec {
            name: "live".into(),
            size_bytes: 0,
            open: Arc::new(move || Ok(Box::new(Feed { epoch, tick: 0 }) as Box<dyn Source>)),
        }])
        .stages(vec![Arc::new(|| Ok(Box::new(Touch) as Box<dyn Stage>))])
        .workers(2)
        .retries(0)
        .sink_factory(Arc::new(move |_w, _s| {
            Ok(Box::new(Clock {
                epoch,
                delays: d.clone(),
            }) as Box<dyn Sink>)
        }))
        .build()?
        .run()?;
    let mut d = delays.lock().map(|d| d.clone()).unwrap_or_default();
    d.sort_unstable();
    let q = |f: f64| d[((d.len() - 1) as f64 * f) as usize] as f64 / 1e6;
    println!(
        "{{\"bench\":\"live_latency\",\"rows\":{},\"rate_rows_per_s\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        d.len(),
        ROWS_PER_TICK * 1000,
        q(0.5),
        q(0.99),
        q(1.0)
    );
    Ok(())
}
