//! Determinism, faults, sharding and memory bounds of [`Runner`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pipeline_core::{Emitter, MemoryRejectSink, RejectSink, Result, SinkSummary, run_stage};
use pipeline_parallel::{FAILED_FILE, RunReport, Runner, SourceSpec};

use crate::support::*;

/// The obviously-correct reference: every file in order through the stages on one thread.
fn reference(files: &[Vec<Row>]) -> BTreeMap<String, Vec<OutRow>> {
    let mut pos = Positive;
    let mut cum = (cumsum(None, 0, Duration::ZERO))().unwrap();
    let mut m: BTreeMap<String, Vec<OutRow>> = BTreeMap::new();
    for (i, rows) in files.iter().enumerate() {
        let (kept, _) = run_stage(&mut pos, chunks_of(i as u32, rows, 1000)).unwrap();
        let mut em = Emitter::default();
        for c in kept {
            cum.process(c, &mut em).unwrap();
        }
        for c in em.take_chunks() {
            for r in rows_of(&c) {
                m.entry(r.0.clone()).or_default().push(r);
            }
        }
    }
    m
}

fn run(
    specs: Vec<SourceSpec>,
    workers: usize,
    fault: Option<(u32, u64, usize)>,
) -> (Result<RunReport>, Collected) {
    let (sink, got) = collect_sink();
    let (panic_on, panics) = fault.map_or((None, 0), |(s, l, n)| (Some((s, l)), n));
    let r = Runner::new()
        .sources(specs)
        .stages(vec![positive(), cumsum(panic_on, panics, Duration::ZERO)])
        .sink_factory(sink)
        .reject_sink(Box::new(MemoryRejectSink::default()))
        .workers(workers)
        .max_open_files(3)
        .channel_capacity(2)
        .retry_backoff(Duration::from_millis(1))
        .segment_bytes(3000)
        .build()
        .unwrap()
        .run();
    (r, got)
}

#[test]
fn output_per_key_is_identical_for_any_worker_count_and_chunk_size() {
    let files = gen_files(7, 6, 400);
    let want = reference(&files);
    for workers in [1, 2, 3] {
        for chunk in [1, 7, 64, 1000] {
            let (r, got) = run(specs(&files, chunk), workers, None);
            let r = r.unwrap();
            assert_eq!(by_symbol(&got), want, "workers {workers}, chunk {chunk}");
            r.ledger.check_balance().unwrap();
            assert_eq!(r.files_ok.len(), 6);
            // Each chunk brings one quarantined reject from the source.
            assert_eq!(
                r.ledger.quarantined["bad_number"],
                6 * 400_usize.div_ceil(chunk) as u64
            );
            assert_eq!(r.ledger.read, 6 * 400 + r.ledger.quarantined["bad_number"]);
        }
    }
}

#[test]
fn a_stage_that_keeps_panicking_fails_its_file_and_the_rest_completes() {
    let files = gen_files(11, 5, 300);
    // Line 100 of source 2 (f02): panics on every attempt.
    let (r, got) = run(specs(&files, 16), 2, Some((2, 100, usize::MAX)));
    let r = r.unwrap();
    assert_eq!(r.files_failed.len(), 1, "{:?}", r.files_failed);
    assert_eq!(r.files_failed[0].0, "f02");
    assert!(
        r.files_failed[0].1.contains("injected panic"),
        "{}",
        r.files_failed[0].1
    );
    assert_eq!(r.files_ok, vec!["f00", "f01", "f03", "f04"]);
    r.ledger.check_balance().unwrap();
    assert!(r.ledger.quarantined.get(FAILED_FILE).copied().unwrap_or(0) > 0);
    // Every row of the other files is there.
    let rows: BTreeSet<(u32, u64)> = by_symbol(&got)
        .values()
        .flatten()
        .map(|r| (r.1, r.2))
        .collect();
    for (i, f) in files.iter().enumerate().filter(|(i, _)| *i != 2) {
        let kept = f.iter().filter(|r| r.price > 0.0).count();
        assert_eq!(
            rows.iter().filter(|(s, _)| *s == i as u32).count(),
            kept,
            "file {i}"
        );
    }
}

#[test]
fn transient_faults_are_retried_and_leave_output_identical() {
    let files = gen_files(13, 5, 300);
    let want = reference(&files);
    // A stage panic twice (retries = 2 by default), then success.
    let (r, got) = run(specs(&files, 16), 3, Some((3, 200, 2)));
    let r = r.unwrap();
    assert!(r.files_failed.is_empty(), "{:?}", r.files_failed);
    assert_eq!(by_symbol(&got), want);
    r.ledger.check_balance().unwrap();
    // A source error at chunk 5 of f01, once.
    let (r, got) = run(specs_failing(&files, 16, Some((1, 5, 1))), 2, None);
    let r = r.unwrap();
    assert!(r.files_failed.is_empty(), "{:?}", r.files_failed);
    assert_eq!(by_symbol(&got), want);
    assert_eq!(r.ledger.read, 5 * 300 + r.ledger.quarantined["bad_number"]);
    // A source that always fails at chunk 3: failed, and its first 3 chunks balance.
    let (r, _) = run(specs_failing(&files, 16, Some((4, 3, usize::MAX))), 2, None);
    let r = r.unwrap();
    assert_eq!(r.files_failed.len(), 1);
    r.ledger.check_balance().unwrap();
}

/// A worker that finishes its part of a source moves on before the others (it is released
/// once the source was read to its end); a panic in another worker's last chunk then retries
/// the source for that worker alone. Slow stages let the reader finish every source first,
/// so the panic comes after the source's end was announced.
#[test]
fn a_late_failure_retries_only_the_worker_that_failed() {
    let files = gen_files(21, 6, 400);
    let want = reference(&files);
    for workers in [2, 3] {
        let (sink, got) = collect_sink();
        let r = Runner::new()
            .sources(specs(&files, 40))
            .stages(vec![
                positive(),
                cumsum(Some((2, 399)), 1, Duration::from_millis(2)),
            ])
            .sink_factory(sink)
            .reject_sink(Box::new(MemoryRejectSink::default()))
            .workers(workers)
            .channel_capacity(64)
            .retry_backoff(Duration::from_millis(1))
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert!(r.files_failed.is_empty(), "{:?}", r.files_failed);
        assert_eq!(by_symbol(&got), want, "{workers} workers");
        r.ledger.check_balance().unwrap();
    }
}

/// A source that counts how many sources are open at once.
struct OpenCount {
    inner: Box<dyn pipeline_core::Source>,
    open: Arc<AtomicU64>,
}

impl Iterator for OpenCount {
    type Item = Result<pipeline_core::Chunk>;
    fn next(&mut self) -> Option<Self::Item> {
        std::thread::sleep(Duration::from_millis(1));
        self.inner.next()
    }
}

impl pipeline_core::Source for OpenCount {
    fn schema(&self) -> arrow_schema::SchemaRef {
        self.inner.schema()
    }
}

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// By default, up to four sources are open at once with two workers while they are small,
/// and two when they are large (each open large source holds its own buffers).
#[test]
fn only_small_sources_are_opened_past_two_per_run_of_two_workers() {
    let files = gen_files(31, 24, 60);
    for (bytes_each, most) in [(1_000u64, 4u64), (64 << 20, 2)] {
        let (open, peak) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let specs: Vec<SourceSpec> = specs(&files, 10)
            .into_iter()
            .map(|s| {
                let (inner, open, peak) = (s.open.clone(), open.clone(), peak.clone());
                SourceSpec {
                    name: s.name,
                    size_bytes: bytes_each,
                    open: Arc::new(move || {
                        let n = open.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        Ok(Box::new(OpenCount {
                            inner: inner()?,
                            open: open.clone(),
                        }) as Box<dyn pipeline_core::Source>)
                    }),
                }
            })
            .collect();
        let (sink, got) = collect_sink();
        let r = Runner::new()
            .sources(specs)
            .stages(vec![cumsum(None, 0, Duration::from_millis(3))])
            .sink_factory(sink)
            .workers(2)
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert!(r.files_failed.is_empty());
        assert_eq!(
            by_symbol(&got).values().map(Vec::len).sum::<usize>(),
            24 * 60
        );
        let p = peak.load(Ordering::SeqCst);
        assert!(
            p <= most,
            "{bytes_each} bytes each: {p} open at once, at most {most}"
        );
        if most == 4 {
            assert!(p > 2, "small sources: {p} open at once");
        }
    }
}

#[test]
fn shards_cover_every_source_exactly_once() {
    let files = gen_files(3, 40, 5);
    let mut seen: Vec<String> = Vec::new();
    for k in 0..3 {
        let (sink, _) = collect_sink();
        let r = Runner::new()
            .sources(specs(&files, 5))
            .sink_factory(sink)
            .workers(1)
            .shard(k, 3)
            .build()
            .unwrap()
            .run()
            .unwrap();
        assert!(!r.files_ok.is_empty(), "shard {k} got nothing");
        seen.extend(r.files_ok);
    }
    seen.sort();
    let all: Vec<String> = (0..40).map(|i| format!("f{i:02}")).collect();
    assert_eq!(seen, all);
}

#[test]
fn cancel_stops_with_cancelled() {
    let files = gen_files(5, 4, 200);
    let flag = Arc::new(AtomicBool::new(true));
    let (sink, _) = collect_sink();
    let r = Runner::new()
        .sources(specs(&files, 10))
        .sink_factory(sink)
        .cancel(flag)
        .build()
        .unwrap()
        .run();
    assert!(matches!(r, Err(pipeline_core::Error::Cancelled)), "{r:?}");
}

/// A reject sink that is slow: the engine must not buffer unboundedly in front of it.
struct CountingRejects(Arc<AtomicU64>);

impl RejectSink for CountingRejects {
    fn write(&mut self, r: &[pipeline_core::Reject]) -> Result<()> {
        self.0.fetch_add(r.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary {
            rows: self.0.load(Ordering::Relaxed),
            ..Default::default()
        })
    }
}

#[test]
fn progress_is_reported_and_rejects_reach_the_sink() {
    let files = gen_files(9, 3, 500);
    let calls = Arc::new(AtomicU64::new(0));
    let c2 = calls.clone();
    let n = Arc::new(AtomicU64::new(0));
    let (sink, _) = collect_sink();
    let r = Runner::new()
        .sources(specs(&files, 50))
        .stages(vec![positive()])
        .sink_factory(sink)
        .reject_sink(Box::new(CountingRejects(n.clone())))
        .progress(Arc::new(move |p| {
            assert!(p.bytes_total > 0);
            c2.fetch_add(1, Ordering::Relaxed);
        }))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert!(calls.load(Ordering::Relaxed) >= 1);
    assert_eq!(
        r.rejects.rows,
        r.ledger.quarantined_total() + r.ledger.removed_total()
    );
    assert!(r.peak_rss_bytes > 0 || !cfg!(target_os = "linux"));
}

/// A sink whose writes fail (or panic) after `ok` chunks.
struct Broken {
    ok: usize,
    panic: bool,
}

impl pipeline_core::Sink for Broken {
    fn write(&mut self, _c: &pipeline_core::Chunk) -> Result<()> {
        if self.ok == 0 {
            if self.panic {
                panic!("sink exploded");
            }
            return Err(pipeline_core::Error::io(
                "out.parquet",
                std::io::Error::other("disk full"),
            ));
        }
        self.ok -= 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }
}

#[test]
fn a_failing_sink_ends_the_run_with_its_error_instead_of_hanging() {
    let files = gen_files(17, 6, 300);
    for panic in [false, true] {
        let r = Runner::new()
            .sources(specs(&files, 10))
            .stages(vec![positive(), cumsum(None, 0, Duration::ZERO)])
            .sink_factory(Arc::new(move |_, _| {
                Ok(Box::new(Broken { ok: 5, panic }) as Box<dyn pipeline_core::Sink>)
            }))
            .workers(2)
            .channel_capacity(1)
            .build()
            .unwrap()
            .run();
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains(if panic { "sink exploded" } else { "disk full" }),
            "{e}"
        );
    }
}

/// Rows produced by sources and not yet handed to a sink, now and at most.
#[derive(Default)]
struct InFlight {
    now: std::sync::atomic::AtomicI64,
    max: std::sync::atomic::AtomicI64,
}

struct SlowCounting(Arc<InFlight>);

impl pipeline_core::Sink for SlowCounting {
    fn write(&mut self, c: &pipeline_core::Chunk) -> Result<()> {
        std::thread::sleep(Duration::from_micros(300));
        self.0.now.fetch_sub(c.num_rows() as i64, Ordering::SeqCst);
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }
}

#[test]
fn slow_sinks_bound_the_rows_in_flight() {
    let files = gen_files(23, 4, 2000);
    let flight = Arc::new(InFlight::default());
    let chunk = 20;
    // Sources that count every row they produce.
    let specs: Vec<SourceSpec> = specs(&files, chunk)
        .into_iter()
        .map(|s| {
            let (open, f) = (s.open.clone(), flight.clone());
            SourceSpec {
                open: Arc::new(move || {
                    let inner = open()?;
                    Ok(Box::new(Counted {
                        inner,
                        f: f.clone(),
                    }) as Box<dyn pipeline_core::Source>)
                }),
                ..s
            }
        })
        .collect();
    let f2 = flight.clone();
    let r = Runner::new()
        .sources(specs)
        .sink_factory(Arc::new(move |_, _| {
            Ok(Box::new(SlowCounting(f2.clone())) as Box<dyn pipeline_core::Sink>)
        }))
        .workers(2)
        .max_open_files(2)
        .channel_capacity(2)
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(r.ledger.written, 4 * 2000);
    // Per open source: one chunk in the reader's hand plus 2 workers × capacity 2 parts;
    // plus one chunk inside each worker. Far below the 8000 rows of the input.
    let bound = (2 * (1 + 2 * 2) + 2) * chunk as i64;
    let max = flight.max.load(Ordering::SeqCst);
    assert!(max <= bound, "{max} rows in flight, bound {bound}");
}

struct Counted {
    inner: Box<dyn pipeline_core::Source>,
    f: Arc<InFlight>,
}

impl Iterator for Counted {
    type Item = Result<pipeline_core::Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        if let Ok(c) = &item {
            let now =
                self.f.now.fetch_add(c.num_rows() as i64, Ordering::SeqCst) + c.num_rows() as i64;
            self.f.max.fetch_max(now, Ordering::SeqCst);
        }
        Some(item)
    }
}

impl pipeline_core::Source for Counted {
    fn schema(&self) -> arrow_schema::SchemaRef {
        self.inner.schema()
    }

    fn drain_rejects(&mut self) -> Vec<pipeline_core::Reject> {
        self.inner.drain_rejects()
    }
}

/// Mappings in this process (each thread stack is one).
#[cfg(target_os = "linux")]
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn finished_readers_do_not_keep_their_stacks() {
    // 1,500 one-row inputs, a commit every 100 or so: a finished reader thread keeps its
    // stack mapped until joined, and joining them only at the end held one mapping per input.
    let files = gen_files(21, 1_500, 1);
    let before = mappings();
    let most = Arc::new(AtomicU64::new(0));
    let m = most.clone();
    let (sink, _) = collect_sink();
    let r = Runner::new()
        .sources(specs(&files, 10))
        .stages(vec![positive()])
        .sink_factory(sink)
        .reject_sink(Box::new(MemoryRejectSink::default()))
        .segment_bytes(2_000)
        .on_commit(Arc::new(move |_| {
            m.fetch_max(mappings() as u64, Ordering::Relaxed);
        }))
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(r.files_ok.len(), 1_500);
    let most = most.load(Ordering::Relaxed) as usize;
    // Other tests of this binary run beside this one: allow for their threads.
    assert!(
        most < before + 400,
        "{before} mappings before the run, {most} during it"
    );
}
