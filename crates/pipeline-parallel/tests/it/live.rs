//! Live metrics ([`Runner::observer`]): what the engine reports while it runs agrees with the
//! final report, and backpressure and waiting show where the time went.

use std::sync::Arc;
use std::time::Duration;

use pipeline_core::{
    Chunk, LiveMetrics, LiveSnapshot, MemoryRejectSink, Result, Source, VecSource,
};
use pipeline_parallel::{RunReport, Runner, SourceSpec};

use crate::support::*;

fn observed(
    specs: Vec<SourceSpec>,
    workers: usize,
    fault: Option<(u32, u64, usize)>,
    sleep: Duration,
) -> (RunReport, LiveSnapshot) {
    let (sink, _) = collect_sink();
    let (panic_on, panics) = fault.map_or((None, 0), |(s, l, n)| (Some((s, l)), n));
    let live = LiveMetrics::new();
    let r = Runner::new()
        .sources(specs)
        .stages(vec![positive(), cumsum(panic_on, panics, sleep)])
        .sink_factory(sink)
        .reject_sink(Box::new(MemoryRejectSink::default()))
        .workers(workers)
        .max_open_files(2)
        .channel_capacity(1)
        .retry_backoff(Duration::from_millis(1))
        .segment_bytes(3000)
        .observer(live.clone())
        .build()
        .unwrap()
        .run()
        .unwrap();
    (r, live.snapshot().expect("the run began a board"))
}

fn assert_agrees(r: &RunReport, s: &LiveSnapshot, files: u64) {
    assert_eq!(s.rows_read, r.ledger.read);
    assert_eq!(s.rows_written, r.ledger.written);
    assert_eq!(s.rows_quarantined, r.ledger.quarantined_total());
    assert_eq!(s.rows_removed, r.ledger.removed_total());
    assert_eq!(s.sources_done, files);
    assert_eq!(s.stages.len(), r.stages.len());
    for (live, (name, m)) in s.stages.iter().zip(&r.stages) {
        assert_eq!(&live.name, name);
        assert_eq!(
            (
                live.rows_in,
                live.rows_out,
                live.bytes_in,
                live.bytes_out,
                live.chunks
            ),
            (m.rows_in, m.rows_out, m.bytes_in, m.bytes_out, m.chunks),
            "stage {name}"
        );
        assert!(live.latency.count >= live.chunks, "stage {name}");
    }
    let delivered: u64 = s.workers.iter().map(|w| w.rows_in).sum();
    assert_eq!(delivered, s.stages[0].rows_in);
    let read: u64 = s.readers.iter().map(|r| r.rows).sum();
    assert_eq!(
        read, s.stages[0].rows_in,
        "every chunk row read reaches a worker"
    );
    assert!(s.workers.iter().all(|w| w.queued == 0), "queues drained");
    assert!(s.readers.iter().all(|r| !r.active), "readers done");
    assert_eq!(s.readers.iter().map(|r| r.sources).sum::<u64>(), files);
}

#[test]
fn live_metrics_agree_with_the_report_for_any_worker_count() {
    let files = gen_files(21, 5, 300);
    for workers in [1, 3] {
        let (r, s) = observed(specs(&files, 16), workers, None, Duration::ZERO);
        assert_agrees(&r, &s, 5);
        assert_eq!(s.stages[1].latency.count, s.stages[1].chunks);
        assert_eq!(s.workers.len(), workers);
        assert_eq!(s.readers.len(), 2);
    }
}

#[test]
fn retried_deliveries_are_counted_once() {
    let files = gen_files(13, 5, 300);
    // A stage panics twice on source 3, then succeeds: the replays are not counted again.
    let (r, s) = observed(specs(&files, 16), 3, Some((3, 200, 2)), Duration::ZERO);
    assert!(r.files_failed.is_empty());
    assert_agrees(&r, &s, 5);
    // A source that always fails: its rows are quarantined as failed_file, live too.
    let (r, s) = observed(
        specs_failing(&files, 16, Some((4, 3, usize::MAX))),
        2,
        None,
        Duration::ZERO,
    );
    assert_eq!(r.files_failed.len(), 1);
    assert_agrees(&r, &s, 5);
}

#[test]
fn a_slow_stage_shows_as_backpressure_on_the_readers() {
    let files = gen_files(5, 2, 400);
    let (r, s) = observed(specs(&files, 16), 1, None, Duration::from_millis(2));
    assert_agrees(&r, &s, 2);
    let blocked: u64 = s.readers.iter().map(|r| r.blocked_ns).sum();
    let w = &s.workers[0];
    // 25 chunks per file at 2 ms each: the worker is busy for 100 ms, and readers with a
    // one-chunk queue wait most of that time.
    assert!(w.busy_ns >= 90_000_000, "{w:?}");
    assert!(blocked > 40_000_000, "readers blocked {blocked} ns");
    assert_eq!(w.backpressure_ns, blocked);
    assert!(w.wait_ns < w.busy_ns, "{w:?}");
}

/// A source that sleeps before each chunk (a slow disk or decoder).
struct Slow(VecSource, Duration);

impl Iterator for Slow {
    type Item = Result<Chunk>;
    fn next(&mut self) -> Option<Result<Chunk>> {
        std::thread::sleep(self.1);
        self.0.next()
    }
}

impl Source for Slow {
    fn schema(&self) -> arrow_schema::SchemaRef {
        self.0.schema()
    }
}

#[test]
fn a_slow_source_shows_as_workers_waiting() {
    let files = gen_files(8, 1, 400);
    let chunks = chunks_of(0, &files[0], 16);
    let spec = SourceSpec {
        name: "slow".into(),
        size_bytes: 8000,
        open: Arc::new(move || {
            Ok(Box::new(Slow(
                VecSource::new(schema(), chunks.clone()),
                Duration::from_millis(2),
            )) as Box<dyn Source>)
        }),
    };
    let (r, s) = observed(vec![spec], 2, None, Duration::ZERO);
    assert_agrees(&r, &s, 1);
    let read = &s.readers.iter().find(|r| r.sources == 1).unwrap();
    assert!(read.read_ns >= 50_000_000, "{read:?}");
    assert_eq!(s.read_latency.count, 25);
    assert!(s.read_latency.quantile(0.5) >= 2_000_000);
    for w in &s.workers {
        assert!(w.wait_ns > 40_000_000 && w.wait_ns > 5 * w.busy_ns, "{w:?}");
    }
    // The reader rarely finds a queue full (only when a worker is descheduled).
    let blocked: u64 = s.readers.iter().map(|r| r.blocked_ns).sum();
    assert!(blocked < read.read_ns / 4, "{blocked} vs {read:?}");
}
