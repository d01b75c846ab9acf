//! Live-mode latency: a source emits small chunks as rows "arrive" (8 rows every 1 ms, each
//! stamped with its production time), two stages process them, and the sink measures each
//! row's arrival delay. Reports p50/p99/max for plain forwarding and for coalescing with
//! `flush_every(50 ms)`. Prints one JSON line.
//!
//! Run: `cargo run --release -p pipeline-stream --example live_latency`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{Chunk, Result, Sink, SinkSummary, Source};
use pipeline_stream::{Pipeline, filter_stage, map_stage};

const ROWS_PER_TICK: usize = 8;
const TICKS: usize = 2000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "born_ns",
        DataType::Int64,
        false,
    )]))
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
        let b = RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from(vec![now; ROWS_PER_TICK]))],
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

fn measure(coalesce: Option<Duration>) -> (f64, f64, f64) {
    let epoch = Instant::now();
    let delays = Arc::new(Mutex::new(Vec::new()));
    let mut p = Pipeline::new(Box::new(Feed { epoch, tick: 0 }))
        .stage(map_stage("touch", Ok))
        .stage(filter_stage("keep_all", "none", |c: &Chunk| {
            Ok(arrow_array::BooleanArray::from(vec![true; c.num_rows()]))
        }))
        .sink(Box::new(Clock {
            epoch,
            delays: delays.clone(),
        }));
    if let Some(every) = coalesce {
        p = p.coalesce_rows(1 << 20).flush_every(every);
    }
    p.run().expect("live pipeline failed");
    let mut d = delays.lock().map(|d| d.clone()).unwrap_or_default();
    d.sort_unstable();
    let q = |f: f64| d[((d.len() - 1) as f64 * f) as usize] as f64 / 1e6;
    (q(0.5), q(0.99), q(1.0))
}

fn main() {
    let (p50, p99, max) = measure(None);
    let (c50, c99, cmax) = measure(Some(Duration::from_millis(50)));
    println!(
        "{{\"bench\":\"live_latency\",\"rows\":{},\"rate_rows_per_s\":{},\"p50_ms\":{p50:.3},\"p99_ms\":{p99:.3},\"max_ms\":{max:.3},\"coalesce_50ms_p50_ms\":{c50:.3},\"coalesce_50ms_p99_ms\":{c99:.3},\"coalesce_50ms_max_ms\":{cmax:.3}}}",
        ROWS_PER_TICK * TICKS,
        ROWS_PER_TICK * 1000,
    );
}
