//! The executor: backpressure with bounded memory, errors and panics, live-mode coalescing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{Chunk, Error, MemoryRejectSink, Result, Sink, SinkSummary, Source, VecSource};
use pipeline_stream::{Pipeline, filter_stage, map_stage};

/// Chunks alive (produced, not yet written) now and at most.
#[derive(Default)]
struct Alive {
    now: AtomicI64,
    max: AtomicI64,
}

/// A source of `n` chunks of `rows` rows that counts chunks alive.
struct CountingSource {
    n: usize,
    rows: usize,
    made: usize,
    alive: Arc<Alive>,
    schema: SchemaRef,
}

impl Iterator for CountingSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        if self.made == self.n {
            return None;
        }
        let b = RecordBatch::try_new(
            self.schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..self.rows as i64))],
        )
        .unwrap();
        let c = Chunk::with_first_line(b, 0, self.made as u64, 2 + (self.made * self.rows) as u64)
            .unwrap();
        self.made += 1;
        let now = self.alive.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.alive.max.fetch_max(now, Ordering::SeqCst);
        Some(Ok(c))
    }
}

impl Source for CountingSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// A slow sink that releases chunks as it writes them.
struct SlowSink {
    alive: Arc<Alive>,
    delay: Duration,
    aborted: Arc<AtomicBool>,
}

impl Sink for SlowSink {
    fn write(&mut self, _c: &Chunk) -> Result<()> {
        std::thread::sleep(self.delay);
        self.alive.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }

    fn abort(&mut self) -> Result<()> {
        self.aborted.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn int_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]))
}

#[test]
fn a_slow_sink_slows_the_source_and_memory_stays_bounded() {
    let alive = Arc::new(Alive::default());
    let src = CountingSource {
        n: 400,
        rows: 1024,
        made: 0,
        alive: alive.clone(),
        schema: int_schema(),
    };
    let cap = 2;
    let report = Pipeline::new(Box::new(src))
        .stage(map_stage("a", Ok))
        .stage(map_stage("b", Ok))
        .sink(Box::new(SlowSink {
            alive: alive.clone(),
            delay: Duration::from_micros(500),
            aborted: Arc::default(),
        }))
        .capacity(cap)
        .run()
        .unwrap();
    assert_eq!(report.ledger.written, 400 * 1024);
    // Three channels of `cap`, one chunk in each of the two stages, one in the source's
    // hand and one in the sink's: nothing else may be alive, however many chunks flow.
    let bound = 3 * cap as i64 + 2 + 2;
    let max = alive.max.load(Ordering::SeqCst);
    assert!(max <= bound, "{max} chunks alive at once, bound {bound}");
    assert_eq!(alive.now.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panicking_stage_fails_the_run_and_aborts_the_sink() {
    let alive = Arc::new(Alive::default());
    let aborted = Arc::new(AtomicBool::new(false));
    let src = CountingSource {
        n: 50,
        rows: 10,
        made: 0,
        alive: alive.clone(),
        schema: int_schema(),
    };
    let mut seen = 0;
    let err = Pipeline::new(Box::new(src))
        .stage(map_stage("boom", move |c| {
            seen += 1;
            if seen == 20 {
                panic!("injected");
            }
            Ok(c)
        }))
        .sink(Box::new(SlowSink {
            alive,
            delay: Duration::ZERO,
            aborted: aborted.clone(),
        }))
        .run()
        .unwrap_err();
    assert!(
        err.to_string().contains("stage `boom` panicked: injected"),
        "{err}"
    );
    assert!(aborted.load(Ordering::SeqCst));
}

#[test]
fn source_errors_surface_and_cancel_stops() {
    struct Failing(usize);
    impl Iterator for Failing {
        type Item = Result<Chunk>;
        fn next(&mut self) -> Option<Result<Chunk>> {
            self.0 += 1;
            Some(Err(Error::Usage(format!("bad input {}", self.0))))
        }
    }
    impl Source for Failing {
        fn schema(&self) -> SchemaRef {
            int_schema()
        }
    }
    let err = Pipeline::new(Box::new(Failing(0))).run().unwrap_err();
    assert_eq!(err.to_string(), "bad input 1");

    let alive = Arc::new(Alive::default());
    let src = CountingSource {
        n: 10_000,
        rows: 10,
        made: 0,
        alive,
        schema: int_schema(),
    };
    let flag = Arc::new(AtomicBool::new(true));
    let err = Pipeline::new(Box::new(src)).cancel(flag).run().unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
}

#[test]
fn filter_stage_counts_removed_rows_by_rule_and_rejects_reach_the_sink() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let chunks: Vec<Chunk> = (0..10)
        .map(|i| {
            let b = RecordBatch::try_new(
                int_schema(),
                vec![Arc::new(Int64Array::from_iter_values(i * 10..i * 10 + 10))],
            )
            .unwrap();
            Chunk::with_first_line(b, 0, i as u64, 2 + i as u64 * 10).unwrap()
        })
        .collect();
    let report = Pipeline::new(Box::new(VecSource::new(int_schema(), chunks)))
        .stage(filter_stage("odd", "even_x", |c: &Chunk| {
            let x = c.column_by_name("x").unwrap().as_primitive::<Int64Type>();
            Ok(x.iter().map(|v| v.map(|v| v % 2 == 1)).collect())
        }))
        .reject_sink(Box::new(MemoryRejectSink::default()))
        .run()
        .unwrap();
    assert_eq!(report.ledger.removed["even_x"], 50);
    assert_eq!(report.ledger.written, 50);
    assert_eq!(report.rejects.rows, 50);
    assert_eq!(report.stages[0].1.rows_in, 100);
}

#[test]
fn live_mode_coalesces_small_chunks_with_a_bounded_delay() {
    // A source that yields one-row chunks slowly, like a followed file.
    struct Trickle(i64);
    impl Iterator for Trickle {
        type Item = Result<Chunk>;
        fn next(&mut self) -> Option<Result<Chunk>> {
            if self.0 == 30 {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
            let b =
                RecordBatch::try_new(int_schema(), vec![Arc::new(Int64Array::from(vec![self.0]))])
                    .unwrap();
            self.0 += 1;
            Some(Chunk::with_first_line(
                b,
                0,
                self.0 as u64,
                self.0 as u64 + 1,
            ))
        }
    }
    impl Source for Trickle {
        fn schema(&self) -> SchemaRef {
            int_schema()
        }
    }
    #[derive(Default)]
    struct Sizes(Arc<std::sync::Mutex<Vec<usize>>>);
    impl Sink for Sizes {
        fn write(&mut self, c: &Chunk) -> Result<()> {
            self.0.lock().unwrap().push(c.num_rows());
            Ok(())
        }
        fn finish(&mut self) -> Result<SinkSummary> {
            Ok(SinkSummary::default())
        }
    }
    let sizes = Sizes::default();
    let seen = sizes.0.clone();
    let r = Pipeline::new(Box::new(Trickle(0)))
        .sink(Box::new(sizes))
        .coalesce_rows(8)
        .flush_every(Duration::from_millis(1000))
        .run()
        .unwrap();
    assert_eq!(r.ledger.written, 30);
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.iter().sum::<usize>(), 30);
    assert!(got.len() < 30 && got.iter().all(|n| *n <= 8), "{got:?}");
}
