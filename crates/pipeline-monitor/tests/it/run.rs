//! A real engine run with the monitor watching: every export agrees with the engine's report.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use pipeline_core::{
    Chunk, Emitter, MonitorConfig, Result, Sink, SinkSummary, Source, Stage, StageFactory,
    StageKey, StageOrder, VecSource,
};
use pipeline_monitor::{AlertKind, Monitor, RunReportInputs, read_history};
use pipeline_parallel::{RunReport, Runner, SourceSpec};
use prometheus_parse::{Scrape, Value};

use crate::html::check_well_formed;

/// `files` sources of `chunks` chunks of 500 rows over 8 symbols; every 50th price is
/// negative (removed by `positive`).
fn sources(files: usize, chunks: usize) -> Vec<SourceSpec> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
    ]));
    (0..files)
        .map(|f| {
            let chunks: Vec<Chunk> = (0..chunks)
                .map(|c| {
                    let n = 500;
                    let sym: StringArray = (0..n)
                        .map(|i| Some(format!("S{}", (i * 7 + c) % 8)))
                        .collect();
                    let px = Float64Array::from_iter_values((0..n).map(|i| {
                        if (i + c) % 50 == 0 {
                            -1.0
                        } else {
                            100.0 + i as f64
                        }
                    }));
                    let b = RecordBatch::try_new(
                        schema.clone(),
                        vec![Arc::new(sym) as ArrayRef, Arc::new(px)],
                    )
                    .unwrap();
                    Chunk::with_first_line(b, f as u32, c as u64, 2 + (c * n) as u64).unwrap()
                })
                .collect();
            let schema = schema.clone();
            SourceSpec {
                name: format!("day{f}.csv"),
                size_bytes: 20_000,
                open: Arc::new(move || {
                    Ok(Box::new(VecSource::new(schema.clone(), chunks.clone())) as Box<dyn Source>)
                }),
            }
        })
        .collect()
}

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

/// A per-key stage that takes `pause` per chunk (a feature stage doing work).
struct Slow(Duration);

impl Stage for Slow {
    fn name(&self) -> &str {
        "features"
    }
    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }
    fn key(&self) -> StageKey {
        StageKey::of("features", &())
    }
    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        std::thread::sleep(self.0);
        out.emit(chunk);
        Ok(())
    }
}

struct Count(Arc<AtomicU64>);

impl Sink for Count {
    fn write(&mut self, c: &Chunk) -> Result<()> {
        self.0.fetch_add(c.num_rows() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }
}

fn run_engine(monitor: &Monitor, pause: Duration) -> RunReport {
    let stages: Vec<StageFactory> = vec![
        Arc::new(|| Ok(Box::new(Positive) as Box<dyn Stage>)),
        Arc::new(move || Ok(Box::new(Slow(pause)) as Box<dyn Stage>)),
    ];
    let rows = Arc::new(AtomicU64::new(0));
    Runner::new()
        .sources(sources(4, 20))
        .stages(stages)
        .sink_factory(Arc::new(move |_, _| {
            Ok(Box::new(Count(rows.clone())) as Box<dyn Sink>)
        }))
        .workers(2)
        .max_open_files(2)
        .observer(monitor.observer())
        .build()
        .unwrap()
        .run()
        .unwrap()
}

fn inputs(r: &RunReport) -> RunReportInputs {
    RunReportInputs {
        title: "tickpipe run day*.csv --out OUT".into(),
        ledger: r.ledger.clone(),
        wall_seconds: r.wall.as_secs_f64(),
        bytes_read: r.bytes_read,
        peak_rss_bytes: r.peak_rss_bytes,
        files_ok: r.files_ok.len(),
        files_failed: r.files_failed.clone(),
        quality_html: Some("<p id=\"quality-fragment\">All 12 checks passed.</p>".into()),
        error: None,
    }
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// Parses exposition text with prometheus-parse after a strict check of every line (the
/// parser skips lines it cannot read, so it alone would not catch a malformed one).
/// Parsed samples by (metric, sorted labels).
type Metrics = HashMap<(String, Vec<(String, String)>), Value>;

fn parse(text: &str) -> Metrics {
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let mut it = t.split(' ');
            typed.insert(it.next().unwrap().to_string());
            assert!(
                matches!(it.next(), Some("counter" | "gauge" | "summary")),
                "{line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (name_labels, value) = line.rsplit_once(' ').unwrap();
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("value in {line}"));
        let name = name_labels.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = name.trim_end_matches("_sum").trim_end_matches("_count");
        assert!(
            typed.contains(name) || typed.contains(family),
            "untyped {line}"
        );
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            ((s.metric, labels), s.value)
        })
        .collect()
}

fn num(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    let key = (
        name.to_string(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    match m.get(&key) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("{name}{labels:?}: {other:?}"),
    }
}

#[test]
fn a_monitored_run_exports_agree_with_the_engine() {
    let out = tempfile::tempdir().unwrap();
    let cfg = MonitorConfig {
        interval_ms: 25,
        http_addr: "127.0.0.1:0".into(),
        ..MonitorConfig::default()
    };
    let monitor = Monitor::start(&cfg, Some(out.path()), 512 << 20).unwrap();
    let addr = monitor.http_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let seen = alerts.clone();
    monitor.on_alert(move |a| seen.lock().unwrap().push(a.clone()));

    // The run takes ~400 ms (80 chunks, split over 2 workers, at 5 ms a part); scrape
    // during it.
    let report = std::thread::scope(|s| {
        let run = s.spawn(|| run_engine(&monitor, Duration::from_millis(5)));
        let t = Instant::now();
        let mut during = None;
        while t.elapsed() < Duration::from_secs(20) && during.is_none() {
            let m = parse(&get(addr, "/metrics"));
            let key = ("tickpipe_rows_read_total".to_string(), Vec::new());
            if matches!(m.get(&key), Some(Value::Counter(v)) if *v > 0.0) {
                during = Some(m);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let during = during.expect("a scrape during the run showed rows");
        assert!(num(&during, "tickpipe_process_resident_memory_bytes", &[]) > 0.0);
        run.join().unwrap()
    });
    monitor.sample_now();
    let scraped = parse(&get(addr, "/metrics"));
    let r = monitor.finish(&inputs(&report)).unwrap();
    assert!(
        TcpStream::connect(addr).is_err(),
        "the server stops at finish"
    );

    // metrics.prom: the final figures, parsed.
    let prom = std::fs::read_to_string(out.path().join("metrics.prom")).unwrap();
    let m = parse(&prom);
    let l = &report.ledger;
    assert_eq!(num(&m, "tickpipe_rows_read_total", &[]), l.read as f64);
    assert_eq!(
        num(&m, "tickpipe_rows_written_total", &[]),
        l.written as f64
    );
    assert_eq!(
        num(&m, "tickpipe_rows_quarantined_total", &[]),
        l.quarantined_total() as f64
    );
    assert_eq!(num(&m, "tickpipe_rows_removed_total", &[]), 80.0 * 10.0);
    assert_eq!(
        num(&scraped, "tickpipe_rows_written_total", &[]),
        l.written as f64
    );
    for (name, sm) in &report.stages {
        let st = [("stage", name.as_str())];
        assert_eq!(
            num(&m, "tickpipe_stage_rows_in_total", &st),
            sm.rows_in as f64
        );
        assert_eq!(
            num(&m, "tickpipe_stage_rows_out_total", &st),
            sm.rows_out as f64
        );
        let busy = num(&m, "tickpipe_stage_busy_seconds_total", &st);
        assert!(
            (busy - sm.busy.as_secs_f64()).abs() < 1e-6,
            "{name}: {busy}"
        );
        let key = (
            "tickpipe_stage_chunk_seconds".to_string(),
            vec![("stage".to_string(), name.clone())],
        );
        let Some(Value::Summary(q)) = m.get(&key) else {
            panic!("{name} latency")
        };
        assert_eq!(q.len(), 3);
    }
    assert!(
        num(
            &m,
            "tickpipe_stage_busy_seconds_total",
            &[("stage", "features")]
        ) >= 0.35
    );
    assert!(num(&m, "tickpipe_process_resident_memory_bytes", &[]) > 1e6);
    assert!(num(&m, "tickpipe_process_cpu_percent", &[]) >= 0.0);
    assert_eq!(
        num(&m, "tickpipe_memory_limit_bytes", &[]),
        (512u64 << 20) as f64
    );
    assert!(num(&m, "tickpipe_worker_rows_total", &[("worker", "1")]) > 0.0);
    assert_eq!(
        num(&m, "tickpipe_worker_queue_depth", &[("worker", "0")]),
        0.0
    );

    // The summary.
    let p = &r.performance;
    assert!(p.samples >= 3, "{}", p.samples);
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[1].rows_in, report.stages[1].1.rows_in);
    // Each source chunk is split between the two workers by symbol.
    assert_eq!(p.stages[1].latency_ms.count, report.stages[1].1.chunks);
    assert!(p.stages[1].latency_ms.count >= 80);
    assert!(
        p.stages[1].latency_ms.p50 >= 5.0,
        "{:?}",
        p.stages[1].latency_ms
    );
    assert_eq!(p.busiest_stage.as_deref(), Some("features"));
    assert_eq!(p.bottleneck.as_ref().unwrap().stage, "features");
    assert_eq!(p.workers.len(), 2);
    assert!(p.memory.max_bytes >= report.peak_rss_bytes);
    assert!(p.throughput.rows_per_second > 0.0);
    assert_eq!(
        p.alerts,
        *alerts.lock().unwrap(),
        "callbacks saw every alert"
    );

    // The history round-trips and ends with the final counts.
    let hist = read_history(&out.path().join("metrics.jsonl")).unwrap();
    assert_eq!(hist.len() as u64, p.samples);
    assert_eq!(hist.last().unwrap().rows_read, l.read);
    assert!(hist.windows(2).all(|w| w[0].t < w[1].t));
    assert_eq!(
        r.history.as_deref(),
        Some(out.path().join("metrics.jsonl").as_path())
    );

    // The report: well-formed, self-contained, every section there.
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    check_well_formed(&html).unwrap();
    for id in [
        "ledger",
        "throughput",
        "resources",
        "stages",
        "alerts",
        "quality",
    ] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
    }
    assert!(
        html.contains("quality-fragment"),
        "the caller's quality section"
    );
    assert!(html.contains("removed by nonpositive_price"));
    assert!(html.contains(&l.equation()));
    assert!(html.contains("<polyline"), "charts drawn");
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert_eq!(r.files().len(), 3);
}

#[test]
fn an_alert_reaches_callbacks_the_summary_the_prom_file_and_the_report() {
    let out = tempfile::tempdir().unwrap();
    // A 16 MiB limit and a 1% threshold: any process is above it.
    let cfg = MonitorConfig {
        interval_ms: 20,
        memory_alert_pct: 1.0,
        ..MonitorConfig::default()
    };
    let monitor = Monitor::start(&cfg, Some(out.path()), 16 << 20).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    monitor.on_alert(move |a| s2.lock().unwrap().push(a.kind));
    let report = run_engine(&monitor, Duration::ZERO);
    let r = monitor.finish(&inputs(&report)).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![AlertKind::Memory], "fires once");
    assert_eq!(r.performance.alerts.len(), 1);
    assert!(
        r.performance.headline().contains("1 alert (memory)"),
        "{}",
        r.performance.headline()
    );
    let m = parse(&std::fs::read_to_string(out.path().join("metrics.prom")).unwrap());
    assert_eq!(num(&m, "tickpipe_alerts_total", &[("kind", "memory")]), 1.0);
    assert_eq!(
        num(&m, "tickpipe_alerts_total", &[("kind", "idle_worker")]),
        0.0
    );
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    check_well_formed(&html).unwrap();
    assert!(html.contains(&crate::html_escape(&r.performance.alerts[0].message)));
}

#[test]
fn an_alert_is_logged_as_a_tracing_warning() {
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || BufWriter(sink.clone()))
        .finish();
    // No timer ticks during the test: only `sample_now`, on this thread.
    let cfg = MonitorConfig {
        interval_ms: 600_000,
        memory_alert_pct: 1.0,
        ..MonitorConfig::default()
    };
    let monitor = Monitor::start(&cfg, None, 16 << 20).unwrap();
    tracing::subscriber::with_default(subscriber, || monitor.sample_now());
    let log = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("alert: resident memory"), "{log}");
    assert!(log.contains("kind=\"memory\""), "{log}");
    assert_eq!(monitor.alerts().len(), 1);
}

/// A writer into a shared buffer, for capturing log lines.
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
