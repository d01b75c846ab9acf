//! The same report whatever the worker count, chunk size or interruption: the stages on the
//! real engine against the single-threaded Validator, and checkpoint/restore mid-run.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pipeline_core::{
    Chunk, Config, Emitter, Reject, RejectSink, Result, Sink, SinkSummary, Source, SourceTable,
};
use pipeline_parallel::{Runner, SourceSpec};
use pipeline_validate::{FinishOptions, Mode, ValidationPlan, ValidationReport, Validator};
use proptest::prelude::*;

use crate::util::{gen_data, read};

/// A sink that only counts rows.
struct Count(Arc<Mutex<u64>>);
impl Sink for Count {
    fn write(&mut self, c: &Chunk) -> Result<()> {
        *self.0.lock().unwrap() += c.num_rows() as u64;
        Ok(())
    }
    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }
}

/// A quarantine sink that keeps rejects in shared memory.
struct Keep(Arc<Mutex<Vec<Reject>>>);
impl RejectSink for Keep {
    fn write(&mut self, r: &[Reject]) -> Result<()> {
        self.0.lock().unwrap().extend_from_slice(r);
        Ok(())
    }
    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary::default())
    }
}

/// Rejects as comparable tuples: source, line, reason, detail.
type Rows = Vec<(u32, u64, String, String)>;

fn sorted(mut r: Vec<Reject>) -> Rows {
    let mut v: Vec<_> = r
        .drain(..)
        .map(|r| (r.source, r.line, r.reason, r.detail))
        .collect();
    v.sort();
    v
}

/// The report as JSON without the engine-only `run` counts.
fn canon(r: &ValidationReport) -> String {
    let mut r = r.clone();
    r.run = None;
    r.to_json().unwrap()
}

fn reference(files: &[PathBuf], chunk: usize) -> (ValidationReport, Rows) {
    let mut v = Validator::financial().unwrap();
    let mut rejects = Vec::new();
    for (i, f) in files.iter().enumerate() {
        for c in read(f, i as u32, chunk) {
            rejects.extend(v.validate_chunk(c).unwrap().rejects);
        }
        v.name_source(i as u32, f.display().to_string());
    }
    (v.generate_report().unwrap().clone(), sorted(rejects))
}

fn engine(files: &[PathBuf], workers: usize, chunk: usize) -> (ValidationReport, Rows, u64) {
    let plan = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
    let mut table = SourceTable::default();
    let specs: Vec<SourceSpec> = files
        .iter()
        .map(|f| {
            let id = table.add(f.display().to_string());
            let path = f.clone();
            SourceSpec {
                name: f.display().to_string(),
                size_bytes: std::fs::metadata(f).unwrap().len(),
                open: Arc::new(move || {
                    let opts = pipeline_io::ReadOptions {
                        chunk_rows: chunk,
                        threads: 1,
                        ..Default::default()
                    };
                    pipeline_io::open_source(&pipeline_io::InputFile::new(&path), id, &opts)
                        .map(|s| s as Box<dyn Source>)
                }),
            }
        })
        .collect();
    let written = Arc::new(Mutex::new(0u64));
    let rejects = Arc::new(Mutex::new(Vec::new()));
    let w = written.clone();
    let run = Runner::new()
        .sources(specs)
        .stages(plan.stages())
        .workers(workers)
        .sink_factory(Arc::new(move |_, _| {
            Ok(Box::new(Count(w.clone())) as Box<dyn Sink>)
        }))
        .reject_sink(Box::new(Keep(rejects.clone())))
        .build()
        .unwrap()
        .run()
        .unwrap();
    run.ledger.check_balance().unwrap();
    let report = plan
        .finish(&FinishOptions {
            sources: Some(&table),
            ledger: Some(&run.ledger),
            history_dir: None,
        })
        .unwrap();
    let q = run.ledger.quarantined_total();
    assert_eq!(report.run.as_ref().unwrap().read, run.ledger.read);
    let all = rejects.lock().unwrap().clone();
    assert_eq!(all.len() as u64, q);
    // The reader's own quarantine (malformed lines) never reaches validation.
    let ours: Vec<Reject> = all
        .into_iter()
        .filter(|r| r.detail.starts_with(&format!("{} (", r.reason)))
        .collect();
    let got = sorted(ours);
    let w = *written.lock().unwrap();
    (report, got, w)
}

#[test]
fn engine_workers_and_chunk_sizes_give_the_reference_report() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = gen_data(dir.path(), 12_000, 3, 5, 0.004);
    let (want, want_rejects) = reference(&files, 65_536);
    assert!(want.rows_quarantined > 100, "{}", want.rows_quarantined);
    assert!(want.total_findings > want.rows_quarantined);
    for (workers, chunk) in [(1, 65_536), (2, 1000), (3, 257)] {
        let (got, rejects, written) = engine(&files, workers, chunk);
        assert_eq!(
            canon(&got),
            canon(&want),
            "{workers} workers, chunks of {chunk}"
        );
        assert_eq!(rejects, want_rejects);
        assert_eq!(written + got.rows_quarantined, got.rows_checked);
        assert_eq!(rejects.len() as u64, got.rows_quarantined);
    }
}

/// Three days of three symbols in 500-row chunks, and their source table.
fn small_run(dir: &std::path::Path) -> (Vec<Chunk>, SourceTable) {
    let (files, _) = gen_data(dir, 6_000, 3, 3, 0.004);
    let chunks = files
        .iter()
        .enumerate()
        .flat_map(|(i, f)| read(f, i as u32, 500))
        .collect();
    let mut table = SourceTable::default();
    for f in &files {
        table.add(f.display().to_string());
    }
    (chunks, table)
}

/// The report of one standalone stage over all of `chunks`.
fn uninterrupted(chunks: &[Chunk], opts: &FinishOptions) -> ValidationReport {
    uninterrupted_with(&Config::default(), chunks, opts)
}

/// [`uninterrupted`] with `config`.
fn uninterrupted_with(config: &Config, chunks: &[Chunk], opts: &FinishOptions) -> ValidationReport {
    let whole = ValidationPlan::from_config(config, Mode::Standalone).unwrap();
    check_all(&whole, chunks.iter().cloned());
    whole.finish(opts).unwrap()
}

/// One stage instance of `plan` over `chunks`, finished (its results handed to the plan).
fn check_all(plan: &ValidationPlan, chunks: impl IntoIterator<Item = Chunk>) {
    let mut s = plan.stages()[0]().unwrap();
    let mut em = Emitter::default();
    for c in chunks {
        s.process(c, &mut em).unwrap();
    }
    s.finish(&mut em).unwrap();
}

#[test]
fn a_restored_stage_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (chunks, table) = small_run(dir.path());
    let opts = FinishOptions {
        sources: Some(&table),
        ..Default::default()
    };
    let want = uninterrupted(&chunks, &opts);
    // Interrupted after every few chunks: checkpoint, fresh plan and stage, restore.
    for cut in [1, chunks.len() / 2, chunks.len() - 1] {
        let first = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
        let mut a = first.stages()[0]().unwrap();
        let mut em = Emitter::default();
        for c in &chunks[..cut] {
            a.process(c.clone(), &mut em).unwrap();
        }
        let state = a.checkpoint().unwrap().unwrap();
        drop(a);
        let second = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
        let mut b = second.stages()[0]().unwrap();
        b.restore(&state).unwrap();
        for c in &chunks[cut..] {
            b.process(c.clone(), &mut em).unwrap();
        }
        b.finish(&mut em).unwrap();
        let got = second.finish(&opts).unwrap();
        assert_eq!(canon(&got), canon(&want), "cut after {cut} chunks");
    }
    let bad = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
    assert!(bad.stages()[0]().unwrap().restore(b"junk").is_err());
}

#[test]
fn a_replay_point_takes_the_same_stage_back_exactly_and_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let (chunks, table) = small_run(dir.path());
    let opts = FinishOptions {
        sources: Some(&table),
        ..Default::default()
    };
    let want = uninterrupted(&chunks, &opts);
    let n = chunks.len();
    // An input starts at `at`, gets as far as `failed` (closing days on the way), fails, and
    // is replayed from its start in the same stage.
    for (at, failed) in [(1, n / 2), (n / 2, n - 1), (n - 2, n)] {
        let plan = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
        let mut a = plan.stages()[0]().unwrap();
        let mut em = Emitter::default();
        for c in &chunks[..at] {
            a.process(c.clone(), &mut em).unwrap();
        }
        let point = a.replay_point().unwrap().unwrap();
        let full = a.checkpoint().unwrap().unwrap();
        for c in &chunks[at..failed] {
            a.process(c.clone(), &mut em).unwrap();
        }
        a.restore(&point).unwrap();
        for c in &chunks[at..] {
            a.process(c.clone(), &mut em).unwrap();
        }
        a.finish(&mut em).unwrap();
        let got = plan.finish(&opts).unwrap();
        assert_eq!(canon(&got), canon(&want), "replayed from chunk {at}");
        if at > n / 3 {
            assert!(
                point.len() < full.len(),
                "the closed days are not copied: {} vs {}",
                point.len(),
                full.len()
            );
        }
    }
    // Another instance cannot take a replay point whose days it never closed.
    let plan = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
    let mut a = plan.stages()[0]().unwrap();
    let mut em = Emitter::default();
    for c in &chunks {
        a.process(c.clone(), &mut em).unwrap();
    }
    let point = a.replay_point().unwrap().unwrap();
    let mut fresh = plan.stages()[0]().unwrap();
    if !point.ends_with(&0u64.to_le_bytes()) {
        assert!(fresh.restore(&point).is_err());
    }
}

#[test]
fn replay_points_do_not_grow_and_undo_changes_to_older_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (chunks, _) = small_run(dir.path());
    // 300 inputs of 20 rows each.
    let whole = Chunk::concat(&chunks).unwrap();
    let pieces: Vec<Chunk> = (0..whole.num_rows())
        .step_by(20)
        .enumerate()
        .map(|(i, at)| {
            let c = whole.slice(at, 20.min(whole.num_rows() - at));
            Chunk::new(c.batch().clone(), i as u32, 0).unwrap()
        })
        .collect();
    let mut table = SourceTable::default();
    for i in 0..pieces.len() {
        table.add(format!("input-{i}"));
    }
    let opts = FinishOptions {
        sources: Some(&table),
        ..Default::default()
    };
    let want = uninterrupted(&pieces, &opts);
    // One example per rule, so that the examples (bounded, but filling up over this sparse
    // data) do not hide what grows with the inputs.
    let mut config = Config::default();
    config.validation.examples_per_rule = 1;
    let want_one = uninterrupted_with(&config, &pieces, &opts);
    assert_eq!(want_one.rows_checked, want.rows_checked);
    let plan = ValidationPlan::from_config(&config, Mode::Standalone).unwrap();
    let mut a = plan.stages()[0]().unwrap();
    let mut em = Emitter::default();
    let mut sizes = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let point = a.replay_point().unwrap().unwrap();
        sizes.push(point.len());
        if i % 50 == 25 {
            // A failed attempt that also reached an older input's counts and closed days:
            // the restore undoes both.
            let older = Chunk::new(pieces[i - 10].batch().clone(), (i - 10) as u32, 0).unwrap();
            a.process(older, &mut em).unwrap();
            a.process(p.clone(), &mut em).unwrap();
            a.restore(&point).unwrap();
        }
        a.process(p.clone(), &mut em).unwrap();
    }
    a.finish(&mut em).unwrap();
    assert_eq!(canon(&plan.finish(&opts).unwrap()), canon(&want_one));
    // A replay point is a token for a state kept in memory: nothing is encoded at an input
    // start, whatever came before it (encoded, the per-input file counts alone added about
    // 25 bytes per earlier input).
    assert!(sizes.iter().all(|s| *s == sizes[0]), "{sizes:?}");
}

fn chunked(files: &[PathBuf], sizes: &[usize]) -> String {
    let mut v = Validator::financial().unwrap();
    for (i, f) in files.iter().enumerate() {
        let all = read(f, i as u32, 1 << 20);
        let whole = Chunk::concat(&all).unwrap();
        let (mut at, mut k) = (0, 0);
        while at < whole.num_rows() {
            let n = sizes[k % sizes.len()].min(whole.num_rows() - at);
            v.validate_chunk(whole.slice(at, n)).unwrap();
            at += n;
            k += 1;
        }
        v.name_source(i as u32, f.display().to_string());
    }
    v.generate_report().unwrap().to_json().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    /// Any split of the rows into chunks gives the same report.
    #[test]
    fn chunk_boundaries_do_not_change_the_report(sizes in proptest::collection::vec(1usize..700, 1..5)) {
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = gen_data(dir.path(), 3_000, 2, 3, 0.01);
        prop_assert_eq!(chunked(&files, &sizes), chunked(&files, &[1 << 20]));
    }
}

/// Rows of `c` whose symbol `keep` accepts (provenance kept).
fn only_symbols(c: &Chunk, keep: impl Fn(&str) -> bool) -> Chunk {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    let col = c.column_by_name("symbol").unwrap();
    let names: Vec<String> = match col.as_string_opt::<i32>() {
        Some(s) => s.iter().map(|v| v.unwrap_or("").to_string()).collect(),
        None => {
            let d = col.as_dictionary::<Int32Type>();
            let values = d.values().as_string::<i32>();
            d.keys()
                .iter()
                .map(|k| values.value(k.unwrap() as usize).to_string())
                .collect()
        }
    };
    let mask: arrow_array::BooleanArray = names.iter().map(|n| Some(keep(n))).collect();
    c.filter(&mask).unwrap()
}

#[test]
fn states_of_plans_over_disjoint_symbols_merge_into_the_whole_report() {
    // A cluster job's reduce tasks each check some symbols; the report built from their
    // states is the report of one plan over every symbol.
    let tmp = tempfile::tempdir().unwrap();
    let (chunks, table) = small_run(tmp.path());
    let opts = FinishOptions {
        sources: Some(&table),
        ..FinishOptions::default()
    };
    let want = uninterrupted(&chunks, &opts);
    assert!(want.total_findings > 0 && want.symbols.len() == 3);
    let first = want.symbols[0].symbol.clone();
    let mut states = Vec::new();
    for part in [true, false] {
        let plan = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
        check_all(
            &plan,
            chunks
                .iter()
                .map(|c| only_symbols(c, |x| (x == first) == part)),
        );
        // Through JSON, as a reduce task hands its state over.
        let text = serde_json::to_string(&plan.state().unwrap()).unwrap();
        states.push(serde_json::from_str(&text).unwrap());
    }
    let merged = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
    for s in states {
        merged.absorb(s).unwrap();
    }
    assert_eq!(canon(&merged.finish(&opts).unwrap()), canon(&want));

    // A state of another rule set is refused.
    let other = ValidationPlan::with_rules(
        &Config::default(),
        Mode::Standalone,
        None,
        vec![
            pipeline_validate::CustomRule::expr(
                "small",
                pipeline_validate::Severity::Warning,
                "size < 1e6",
            )
            .unwrap(),
        ],
    )
    .unwrap();
    let e = merged
        .absorb(other.state().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("rules"), "{e}");
}

#[test]
fn a_history_read_ahead_gives_the_report_a_history_read_at_the_end_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let (chunks, table) = small_run(tmp.path());
    let (first, rest): (Vec<Chunk>, Vec<Chunk>) = chunks.into_iter().partition(|c| c.source() < 2);
    assert!(!first.is_empty() && !rest.is_empty());
    let run = |plan: &ValidationPlan, chunks: &[Chunk], hist: &std::path::Path| {
        check_all(plan, chunks.iter().cloned());
        let mut r = plan
            .finish(&FinishOptions {
                sources: Some(&table),
                history_dir: Some(hist),
                ..FinishOptions::default()
            })
            .unwrap();
        r.history.as_mut().expect("history kept").path.clear();
        canon(&r)
    };
    let mut reports = Vec::new();
    // Read at the end; read ahead; read ahead from another folder (ignored: the folder the
    // report is given is read).
    for (name, ahead) in [("a", None), ("b", Some("b")), ("c", Some("elsewhere"))] {
        let hist = tmp.path().join(name);
        let plan = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
        run(&plan, &first, &hist);
        let plan = ValidationPlan::from_config(&Config::default(), Mode::Standalone).unwrap();
        if let Some(ahead) = ahead {
            plan.prefetch_history(&tmp.path().join(ahead));
        }
        reports.push(run(&plan, &rest, &hist));
    }
    assert!(
        reports[0].contains("\"days_before\": 6"),
        "{}",
        &reports[0][..200]
    );
    assert_eq!(reports[1], reports[0]);
    assert_eq!(reports[2], reports[0]);
}
