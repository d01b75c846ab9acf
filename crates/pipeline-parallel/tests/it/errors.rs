//! Which errors are retried, which fail one source, and which stop the run (issue #13 case 3).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pipeline_core::{
    Chunk, Emitter, Error, MemoryRejectSink, Result, Source, Stage, StageFactory, StageKey,
    VecSource,
};
use pipeline_parallel::{RunReport, Runner, SourceSpec};

use crate::support::*;

/// A spec whose every `open` is counted and fails with `make()` once `fail_after` chunks have
/// been read (`None`: at open).
fn failing_spec(
    name: &str,
    rows: &[Row],
    fail_after: Option<usize>,
    make: fn() -> Error,
    opens: Arc<AtomicUsize>,
    reopenable: bool,
) -> SourceSpec {
    let chunks = chunks_of(0, rows, 50);
    SourceSpec {
        name: name.into(),
        size_bytes: 1000,
        open: Arc::new(move || {
            opens.fetch_add(1, Ordering::SeqCst);
            let Some(n) = fail_after else {
                return Err(make());
            };
            Ok(Box::new(Failing {
                chunks: chunks.clone().into_iter(),
                left: n,
                make,
                reopenable,
            }) as Box<dyn Source>)
        }),
    }
}

struct Failing {
    chunks: std::vec::IntoIter<Chunk>,
    left: usize,
    make: fn() -> Error,
    reopenable: bool,
}

impl Iterator for Failing {
    type Item = Result<Chunk>;
    fn next(&mut self) -> Option<Result<Chunk>> {
        if self.left == 0 {
            return Some(Err((self.make)()));
        }
        self.left -= 1;
        self.chunks.next().map(Ok)
    }
}

impl Source for Failing {
    fn schema(&self) -> arrow_schema::SchemaRef {
        schema()
    }
    fn reopenable(&self) -> bool {
        self.reopenable
    }
}

/// Where a source fails (`None`: at open) and with what.
type FailCase = (Option<usize>, fn() -> Error);

fn good_spec(name: &str, rows: &[Row]) -> SourceSpec {
    let chunks = chunks_of(1, rows, 50);
    SourceSpec {
        name: name.into(),
        size_bytes: 1000,
        open: Arc::new(move || {
            Ok(Box::new(VecSource::new(schema(), chunks.clone())) as Box<dyn Source>)
        }),
    }
}

fn run(specs: Vec<SourceSpec>, stages: Vec<StageFactory>) -> Result<RunReport> {
    let (sink, _) = collect_sink();
    Runner::new()
        .sources(specs)
        .stages(stages)
        .sink_factory(sink)
        .reject_sink(Box::new(MemoryRejectSink::default()))
        .workers(2)
        .retries(2)
        // A long backoff: a run that retried would take seconds, not milliseconds.
        .retry_backoff(Duration::from_millis(400))
        .build()
        .unwrap()
        .run()
}

#[test]
fn config_and_schema_errors_stop_the_run_once_without_retries() {
    let rows = &gen_files(1, 1, 300)[0];
    let cases: [FailCase; 3] = [
        (None, || {
            Error::config("input.timezone", "unknown time zone `America/NewYork`")
        }),
        (None, || {
            Error::Schema("column mapping ts=Time: no such column".into())
        }),
        (Some(2), || Error::Schema("late schema error".into())),
    ];
    for (at, make) in cases {
        let opens = Arc::new(AtomicUsize::new(0));
        let mut specs = vec![failing_spec("bad", rows, at, make, opens.clone(), true)];
        specs.extend((0..4).map(|i| good_spec(&format!("good{i}"), rows)));
        let t = Instant::now();
        let err = run(specs, vec![positive()]).unwrap_err();
        assert!(err.stops_run(), "{err}");
        assert_eq!(err.to_string(), make().to_string());
        assert_eq!(
            opens.load(Ordering::SeqCst),
            1,
            "opened once, never retried"
        );
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
    }
}

#[test]
fn a_strict_mode_row_error_stops_the_run_with_its_position() {
    let rows = &gen_files(2, 1, 300)[0];
    let opens = Arc::new(AtomicUsize::new(0));
    let specs = vec![
        failing_spec(
            "a.csv",
            rows,
            Some(3),
            || Error::Parse {
                file: "a.csv".into(),
                line: 152,
                column: "price".into(),
                expected: "a decimal number".into(),
                found: "12,x".into(),
            },
            opens.clone(),
            true,
        ),
        good_spec("b.csv", rows),
    ];
    let err = run(specs, vec![positive()]).unwrap_err();
    assert!(matches!(err, Error::Parse { line: 152, .. }), "{err}");
    assert!(
        err.to_string().starts_with("a.csv:152: column `price`"),
        "{err}"
    );
    assert_eq!(opens.load(Ordering::SeqCst), 1);
}

#[test]
fn deterministic_source_errors_fail_the_file_once_and_io_errors_are_retried() {
    let rows = &gen_files(3, 1, 300)[0];
    // A corrupt stream fails the file at once; the others complete.
    let opens = Arc::new(AtomicUsize::new(0));
    let specs = vec![
        failing_spec(
            "c.gz",
            rows,
            Some(2),
            || Error::Corrupt {
                file: "c.gz".into(),
                codec: "gzip".into(),
                decompressed_bytes: 100,
                message: "unexpected end of file".into(),
            },
            opens.clone(),
            true,
        ),
        good_spec("ok.csv", rows),
    ];
    let t = Instant::now();
    let r = run(specs, vec![positive()]).unwrap();
    assert_eq!(r.files_failed.len(), 1);
    assert_eq!(r.files_ok, vec!["ok.csv"]);
    assert_eq!(opens.load(Ordering::SeqCst), 1);
    assert!(t.elapsed() < Duration::from_millis(400));
    r.ledger.check_balance().unwrap();

    // An I/O error is retried (2 retries: 3 opens) before the file fails.
    let opens = Arc::new(AtomicUsize::new(0));
    let io = || Error::io("d.csv", std::io::Error::other("flaky mount"));
    let specs = vec![failing_spec(
        "d.csv",
        rows,
        Some(2),
        io,
        opens.clone(),
        true,
    )];
    let r = run(specs, vec![positive()]).unwrap();
    assert_eq!(r.files_failed.len(), 1);
    assert_eq!(opens.load(Ordering::SeqCst), 3);

    // ... but not on stdin, which cannot be read twice.
    let opens = Arc::new(AtomicUsize::new(0));
    let specs = vec![failing_spec("-", rows, Some(2), io, opens.clone(), false)];
    let r = run(specs, vec![positive()]).unwrap();
    assert_eq!(opens.load(Ordering::SeqCst), 1);
    assert!(
        r.files_failed[0].1.contains("cannot be read again"),
        "{:?}",
        r.files_failed
    );
}

/// A stage that fails with `make()` on its `at`-th chunk, counting calls.
struct FailStage {
    calls: Arc<AtomicUsize>,
    at: usize,
    make: fn() -> Error,
}

impl Stage for FailStage {
    fn name(&self) -> &str {
        "fail"
    }
    fn key(&self) -> StageKey {
        StageKey::of("fail", &())
    }
    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == self.at {
            return Err((self.make)());
        }
        out.emit(chunk);
        Ok(())
    }
}

#[test]
fn stage_errors_are_retried_only_when_they_can_pass() {
    let rows = &gen_files(4, 1, 300)[0];
    let stage = |calls: Arc<AtomicUsize>, make: fn() -> Error| -> StageFactory {
        Arc::new(move || {
            Ok(Box::new(FailStage {
                calls: calls.clone(),
                at: 2,
                make,
            }) as Box<dyn Stage>)
        })
    };
    // Disorder stops the run.
    let calls = Arc::new(AtomicUsize::new(0));
    let err = run(
        vec![good_spec("s.csv", rows)],
        vec![stage(calls, || Error::Disorder("rerun with --sort".into()))],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Disorder(_)), "{err}");
    // An internal error fails the file without a retry: 6 chunks, one failing call, no
    // replay (a retry would call the stage again for every chunk).
    let calls = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let r = run(
        vec![good_spec("s.csv", rows)],
        vec![stage(calls.clone(), || Error::Internal("bug".into()))],
    )
    .unwrap();
    assert_eq!(r.files_failed.len(), 1, "{:?}", r.files_failed);
    assert!(t.elapsed() < Duration::from_millis(400));
    r.ledger.check_balance().unwrap();
}

/// A failed file's rows are represented in the quarantine: one `failed_file` record naming
/// the lines read and the error (issue #13 case 8), while the ledger still balances.
#[test]
fn a_failed_file_leaves_one_quarantine_record_with_its_lines_and_error() {
    let rows = &gen_files(5, 1, 300)[0];
    let opens = Arc::new(AtomicUsize::new(0));
    let corrupt = || Error::Corrupt {
        file: "c.gz".into(),
        codec: "gzip".into(),
        decompressed_bytes: 100,
        message: "unexpected end of file".into(),
    };
    let (sink, _) = collect_sink();
    let rejects = Arc::new(std::sync::Mutex::new(Vec::new()));
    struct Keep(Arc<std::sync::Mutex<Vec<pipeline_core::Reject>>>);
    impl pipeline_core::RejectSink for Keep {
        fn write(&mut self, r: &[pipeline_core::Reject]) -> Result<()> {
            self.0.lock().unwrap().extend_from_slice(r);
            Ok(())
        }
        fn finish(&mut self) -> Result<pipeline_core::SinkSummary> {
            Ok(pipeline_core::SinkSummary::default())
        }
    }
    let r = Runner::new()
        .sources(vec![
            good_spec("ok.csv", rows),
            failing_spec("c.gz", rows, Some(2), corrupt, opens, true),
            failing_spec(
                "gone.csv",
                rows,
                None,
                || Error::Internal("cannot open".into()),
                Arc::new(AtomicUsize::new(0)),
                true,
            ),
        ])
        .stages(vec![positive()])
        .sink_factory(sink)
        .reject_sink(Box::new(Keep(rejects.clone())))
        .workers(2)
        .build()
        .unwrap()
        .run()
        .unwrap();
    r.ledger.check_balance().unwrap();
    assert_eq!(r.files_failed.len(), 2);
    let rej = rejects.lock().unwrap();
    let failed: Vec<&pipeline_core::Reject> =
        rej.iter().filter(|r| r.reason == "failed_file").collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    let c = failed.iter().find(|r| r.detail.contains("gzip")).unwrap();
    // Two chunks of 50 rows (lines 2-101) were read before the failure.
    assert_eq!(c.line, 102, "{c:?}");
    assert!(c.detail.contains("lines 2-101 were read"), "{}", c.detail);
    let g = failed
        .iter()
        .find(|r| r.detail.contains("cannot open"))
        .unwrap();
    assert_eq!(
        (g.source, g.line),
        (2, 1),
        "the position in the list: {g:?}"
    );
    assert!(g.detail.contains("no row was read"));
}
