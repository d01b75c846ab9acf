//! Monitor overhead: the engine on a synthetic tick workload with no observer, with the live
//! metrics only (the engine's per-chunk counters), and with the whole monitor (sampler at
//! INTERVAL_MS, history, metrics.prom every tick, report.html at the end). Prints one JSON
//! line with paired-median overheads in wall time and in process CPU time (CPU time is
//! steadier when other processes share the cores), and the cost of one sampler tick.
//!
//! Run: `cargo run --release -p pipeline-monitor --example monitor_overhead [-- ROWS_MILLIONS
//! [OUT_DIR [INTERVAL_MS]]]` (default 8 M rows, 1 worker, fixed seed, 7 interleaved repeats,
//! the default 1000 ms interval). With OUT_DIR the last monitored run's files (report.html,
//! metrics.prom, metrics.jsonl) stay there.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type};
use arrow_array::{Array, ArrayRef, BooleanArray, DictionaryArray, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use pipeline_core::{
    Chunk, Emitter, LiveMetrics, MonitorConfig, Reject, Result, Sink, SinkSummary, Source, Stage,
    StageFactory, StageKey, StageOrder, VecSource, dict_type,
};
use pipeline_monitor::{Monitor, RunReportInputs};
use pipeline_parallel::{RunReport, Runner, SourceSpec};

const SYMBOLS: usize = 128;
const CHUNK_ROWS: usize = 65_536;
const FILES: usize = 8;
const REPEATS: usize = 7;

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
                    .expect("columns match the schema");
                    Chunk::with_first_line(b, f as u32, seq as u64, 2 + (seq * CHUNK_ROWS) as u64)
                        .expect("a valid chunk")
                })
                .collect()
        })
        .collect()
}

/// A source that also reports a few malformed lines per chunk, like a CSV reader would.
struct WithRejects(VecSource, u32, u64);

impl Iterator for WithRejects {
    type Item = Result<Chunk>;
    fn next(&mut self) -> Option<Result<Chunk>> {
        self.2 += 1;
        self.0.next()
    }
}

impl Source for WithRejects {
    fn schema(&self) -> arrow_schema::SchemaRef {
        self.0.schema()
    }
    fn drain_rejects(&mut self) -> Vec<Reject> {
        let line = self.2 * CHUNK_ROWS as u64;
        let mut v = vec![Reject::quarantined(
            self.1,
            line,
            "wrong_field_count",
            "",
            None,
        )];
        if self.2.is_multiple_of(3) {
            v.push(Reject::quarantined(
                self.1,
                line + 1,
                "bad_number",
                "",
                None,
            ));
        }
        v
    }
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
            .expect("price column")
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

/// Per-key EMA with `work` extra floating-point iterations per row (as engine_bench).
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
            .expect("symbol column")
            .as_dictionary::<Int32Type>();
        let names = k.values().as_string::<i32>();
        let mut slots: Vec<f64> = (0..names.len())
            .map(|i| self.state.get(names.value(i)).copied().unwrap_or(f64::NAN))
            .collect();
        let px = chunk
            .column_by_name("price")
            .expect("price column")
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

struct Null;

impl Sink for Null {
    fn write(&mut self, _c: &Chunk) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }
}

fn engine(files: &[Vec<Chunk>], workers: usize, observer: Option<Arc<LiveMetrics>>) -> RunReport {
    let specs: Vec<SourceSpec> = files
        .iter()
        .enumerate()
        .map(|(i, chunks)| {
            let chunks = chunks.clone();
            SourceSpec {
                name: format!("day{i}.csv"),
                size_bytes: chunks.iter().map(|c| c.memory_size() as u64).sum(),
                open: Arc::new(move || {
                    Ok(Box::new(WithRejects(
                        VecSource::new(chunks[0].schema(), chunks.clone()),
                        i as u32,
                        0,
                    )) as Box<dyn Source>)
                }),
            }
        })
        .collect();
    let stages: Vec<StageFactory> = vec![
        Arc::new(|| Ok(Box::new(Positive) as Box<dyn Stage>)),
        Arc::new(|| {
            Ok(Box::new(Ema {
                state: HashMap::new(),
                work: 4,
            }) as Box<dyn Stage>)
        }),
    ];
    let mut r = Runner::new()
        .sources(specs)
        .stages(stages)
        .sink_factory(Arc::new(|_, _| Ok(Box::new(Null) as Box<dyn Sink>)))
        .workers(workers)
        .memory_limit(1 << 30);
    if let Some(o) = observer {
        r = r.observer(o);
    }
    r.build()
        .expect("valid settings")
        .run()
        .expect("the run succeeds")
}

/// Process CPU time (user + system) from `/proc/self/stat`, in seconds (0 elsewhere), as in
/// pipeline-parallel's engine bench.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // The kernel's USER_HZ is 100 on every Linux configuration we run on.
    ticks / 100.0
}

/// Wall and CPU seconds of `f`.
fn timed(f: impl FnOnce()) -> (f64, f64) {
    let (t, c) = (Instant::now(), cpu_seconds());
    f();
    (t.elapsed().as_secs_f64(), cpu_seconds() - c)
}

/// The median and range of `b / a - 1` over paired runs, in percent.
fn paired(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let mut pct: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| (b / a - 1.0) * 100.0)
        .collect();
    pct.sort_by(f64::total_cmp);
    (pct[pct.len() / 2], pct[0], pct[pct.len() - 1])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let millions: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8.0);
    let keep: Option<PathBuf> = args.next().map(PathBuf::from);
    let mut cfg = MonitorConfig::default();
    if let Some(ms) = args.next().and_then(|a| a.parse().ok()) {
        cfg.interval_ms = ms;
    }
    let files = make_files((millions * 1e6) as usize);
    let scratch = std::env::temp_dir().join(format!("monitor_overhead_{}", std::process::id()));
    let (mut plain, mut live, mut full) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for i in 0..REPEATS {
        plain.push(timed(|| {
            engine(&files, 1, None);
        }));
        live.push(timed(|| {
            engine(&files, 1, Some(LiveMetrics::new()));
        }));
        let dir = match (&keep, i + 1 == REPEATS) {
            (Some(k), true) => k.clone(),
            _ => scratch.clone(),
        };
        full.push(timed(|| {
            let monitor = Monitor::start(&cfg, Some(&dir), 1 << 30).expect("monitor starts");
            let report = engine(&files, 1, Some(monitor.observer()));
            let inputs = RunReportInputs {
                title: format!(
                    "monitor_overhead example: {millions} M rows, {FILES} files, 1 worker"
                ),
                ledger: report.ledger.clone(),
                wall_seconds: report.wall.as_secs_f64(),
                bytes_read: report.bytes_read,
                peak_rss_bytes: report.peak_rss_bytes,
                files_ok: report.files_ok.len(),
                files_failed: report.files_failed.clone(),
                quality_html: None,
                error: None,
            };
            last = Some(monitor.finish(&inputs).expect("monitor finishes"));
        }));
    }
    let _ = std::fs::remove_dir_all(&scratch);

    // One sampler tick on its own (resources, snapshot, alerts, history line, metrics.prom).
    let tick_dir = std::env::temp_dir().join(format!("monitor_tick_{}", std::process::id()));
    let monitor = Monitor::start(&cfg, Some(&tick_dir), 1 << 30).expect("monitor starts");
    let observer = monitor.observer();
    engine(&files[..1], 1, Some(observer));
    let n = 500;
    let (wall, cpu) = timed(|| {
        for _ in 0..n {
            monitor.sample_now();
        }
    });
    let (tick_us, tick_cpu_us) = (wall * 1e6 / f64::from(n), cpu * 1e6 / f64::from(n));
    drop(monitor);
    // The fixed cost per run: `start` (files, thread, first readings) and `finish` (last
    // tick, summary, report.html) around a small engine run; the fastest of 10.
    let (mut start_ms, mut finish_ms) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..10 {
        let t = Instant::now();
        let monitor = Monitor::start(&cfg, Some(&tick_dir), 1 << 30).expect("monitor starts");
        start_ms = start_ms.min(t.elapsed().as_secs_f64() * 1e3);
        let report = engine(&files[..1], 1, Some(monitor.observer()));
        let inputs = RunReportInputs {
            ledger: report.ledger,
            ..Default::default()
        };
        let t = Instant::now();
        monitor.finish(&inputs).expect("monitor finishes");
        finish_ms = finish_ms.min(t.elapsed().as_secs_f64() * 1e3);
    }
    let _ = std::fs::remove_dir_all(&tick_dir);

    let wall = |v: &[(f64, f64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
    let cpu = |v: &[(f64, f64)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
    let best = |v: &[(f64, f64)]| wall(v).into_iter().fold(f64::INFINITY, f64::min);
    let (live_pct, live_lo, live_hi) = paired(&wall(&plain), &wall(&live));
    let (full_pct, full_lo, full_hi) = paired(&wall(&plain), &wall(&full));
    let (live_cpu, _, _) = paired(&cpu(&plain), &cpu(&live));
    let (full_cpu, full_cpu_lo, full_cpu_hi) = paired(&cpu(&plain), &cpu(&full));
    let samples = last.map_or(0, |r| r.performance.samples);
    println!(
        "{{\"bench\":\"monitor_overhead\",\"rows\":{},\"plain_s\":{:.4},\"live_s\":{:.4},\"monitor_s\":{:.4},\"live_overhead_pct\":{live_pct:.2},\"live_overhead_range_pct\":[{live_lo:.2},{live_hi:.2}],\"monitor_overhead_pct\":{full_pct:.2},\"monitor_overhead_range_pct\":[{full_lo:.2},{full_hi:.2}],\"live_cpu_overhead_pct\":{live_cpu:.2},\"monitor_cpu_overhead_pct\":{full_cpu:.2},\"monitor_cpu_overhead_range_pct\":[{full_cpu_lo:.2},{full_cpu_hi:.2}],\"tick_us\":{tick_us:.1},\"tick_cpu_us\":{tick_cpu_us:.1},\"start_ms\":{start_ms:.2},\"finish_ms\":{finish_ms:.2},\"samples_last_run\":{samples},\"interval_ms\":{}}}",
        (millions * 1e6) as u64,
        best(&plain),
        best(&live),
        best(&full),
        cfg.interval_ms
    );
}
