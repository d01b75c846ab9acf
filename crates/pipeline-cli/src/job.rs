//! Builds and runs one engine job: sources from inputs, stages, sinks, quarantine, progress,
//! Ctrl-C. Every command that processes data (`run`, `convert`, `bars`, `demo`) goes through
//! [`run_job`], so the picture in DESIGN.md reads straight off this file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use pipeline_core::{
    Chunk, Config, Error, Result as CoreResult, Sink, SinkSummary, Source, SourceTable,
    StageFactory,
};
use pipeline_io::{InputFile, ReadOptions, WriteOptions};
use pipeline_parallel::{RunReport, Runner, SortOptions, SortedSource, SourceSpec};

use crate::progress::{Progress, Tick};
use crate::summary::{FailedFile, RunSummary};

/// Where a job's rows go.
pub enum Output {
    /// A Hive-partitioned dataset under `<dir>/data`, quarantine beside it.
    Dataset(PathBuf),
    /// One file (convert `--out file.parquet`), quarantine beside it.
    File(PathBuf),
    /// Count rows and drop them (benchmarks).
    Discard,
}

/// One job.
pub struct Job {
    /// The command name, for the summary.
    pub command: &'static str,
    /// Validated configuration.
    pub config: Config,
    /// Inputs as given on the command line.
    pub inputs: Vec<String>,
    /// Stage factories, in order.
    pub stages: Vec<StageFactory>,
    /// Where rows go.
    pub output: Output,
    /// Continue an interrupted run.
    pub resume: bool,
    /// `--shard K/N`.
    pub shard: Option<(usize, usize)>,
    /// Quiet: no progress bar.
    pub quiet: bool,
    /// Input bytes between resumable checkpoints (`None`: the engine's default).
    pub checkpoint_every: Option<u64>,
    /// Test hook: abort right after this segment is committed.
    pub abort_after_segment: Option<u32>,
}

/// Name of the dataset directory inside `--out`.
pub const DATA_DIR: &str = "data";
/// The run manifest (resume) inside `--out`.
pub const MANIFEST: &str = "_manifest.redb";

/// The cancel flag, set by Ctrl-C.
fn cancel_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        if let Err(e) = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: stop now.
                std::process::exit(130);
            }
            eprintln!(
                "tickpipe: interrupted; finishing the current work (Ctrl-C again to stop now)"
            );
        }) {
            tracing::warn!("cannot install the Ctrl-C handler: {e}");
        }
        flag
    })
    .clone()
}

/// Runs a job and returns its summary.
pub fn run_job(job: Job) -> anyhow::Result<(RunSummary, RunReport)> {
    let inputs = pipeline_io::expand_inputs(&job.inputs, &job.config.input.file_pattern)?;
    let read_opts = ReadOptions::from_config(&job.config)?;
    crate::alloc::release_near_limit(job.config.pipeline.memory_limit.0);
    // `normalize_features`: settings checked (and a scale stage added when the parameters
    // are given) before any input is read; fitting and metadata come after the run.
    let mut job = job;
    let normalize = crate::normalize::plan(&mut job)?;
    let mut table = SourceTable::default();
    let mut specs = Vec::with_capacity(inputs.len());
    let mut total = 0u64;
    for input in inputs {
        let name = input.display_name();
        let id = table.add(name.clone());
        let size = input.size.unwrap_or(0);
        total += size;
        specs.push(source_spec(
            input,
            name,
            id,
            size,
            read_opts.clone(),
            sort_options(&job),
        ));
    }
    let mut workers = crate::settings::workers(&job.config);
    // Resuming must use the interrupted run's worker count; when none was given (one per
    // core), take it from the manifest, so a run resumed on another machine just continues.
    if let (true, 0, Output::Dataset(out)) =
        (job.resume, job.config.pipeline.max_workers, &job.output)
        && job.config.pipeline.enable_parallel_processing
        && let Some(n) = pipeline_parallel::resumed_workers(&out.join(MANIFEST))?
    {
        if n != workers {
            tracing::info!("resuming with the interrupted run's {n} workers (not {workers})");
        }
        workers = n;
    }
    let mut write_opts = WriteOptions::from_config(&job.config.output)?;
    // Writer buffers get a sixteenth of the memory budget per worker (one sink each). Parquet
    // holds about three times what it reports as buffered (measured with the sink bench), so
    // all sinks together stay near 3/16 of the limit (measured: a 5M-row run peaks at 268 MiB
    // with an eighth, 241 MiB with a sixteenth, at the same speed).
    write_opts.max_buffered_bytes =
        usize::try_from(job.config.pipeline.memory_limit.0 / 16 / workers.max(1) as u64)
            .unwrap_or(usize::MAX)
            .max(4 << 20);
    let keyed = job
        .stages
        .iter()
        .any(|f| f().is_ok_and(|s| s.order() != pipeline_core::StageOrder::RowLocal));

    let mut runner = Runner::new()
        .sources(specs)
        .stages(job.stages)
        .workers(workers)
        .memory_limit(job.config.pipeline.memory_limit.0)
        .channel_capacity(job.config.pipeline.channel_capacity)
        .retries(job.config.pipeline.retries)
        .cancel(cancel_flag());
    if let Some((k, n)) = job.shard {
        runner = runner.shard(k, n);
    }
    if let Some(b) = job.checkpoint_every {
        runner = runner.segment_bytes(b.max(1));
    }
    if let Some(n) = job.abort_after_segment {
        // Simulates a crash (kill -9) at a known point, so resume can be tested exactly.
        runner = runner.on_commit(Arc::new(move |segment| {
            if segment >= n {
                std::process::abort();
            }
        }));
    }
    let progress = Arc::new(Progress::new(Some(total), job.quiet));
    {
        let p = progress.clone();
        runner = runner.progress(Arc::new(move |s| {
            p.update(Tick {
                rows: s.rows,
                bytes: s.bytes_read,
                bytes_total: Some(s.bytes_total),
            })
        }));
    }

    let mut reports = Vec::new();
    match &job.output {
        Output::Dataset(out) => {
            let data = out.join(DATA_DIR);
            if !job.resume {
                clear_previous(out)?;
            }
            std::fs::create_dir_all(&data).map_err(|e| Error::io(&data, e))?;
            // Each worker writes its own files. When a symbol can reach several workers
            // (no per-key stage, or files not partitioned by symbol) the worker number is part
            // of the file number so two workers never write the same name.
            let by_symbol = write_opts
                .partition_by
                .contains(&pipeline_io::PartitionKey::Symbol);
            let per_worker_names = !(keyed && by_symbol);
            let opts = write_opts.clone();
            let dir = data.clone();
            runner = runner
                .sink_factory(Arc::new(move |worker, segment| {
                    let number = if per_worker_names {
                        segment.saturating_mul(1000).saturating_add(worker as u32)
                    } else {
                        segment
                    };
                    pipeline_io::create_sink(&dir, number, &opts)
                }))
                .manifest(out.join(MANIFEST))
                .output_dir(&data)
                .resume(job.resume);
            let q = quarantine_path(out, job.resume);
            reports.push(q.clone());
            runner = runner.reject_sink(pipeline_io::create_quarantine_sink(&q, table.clone())?);
        }
        Output::File(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let mut opts = write_opts.clone();
            if let Some(f) = pipeline_io::format_from_extension(path) {
                opts.format = f;
            }
            let p = path.clone();
            // One file means one writer: a single worker writes it, in input order.
            runner = runner.workers(1).sink_factory(Arc::new(move |_w, _s| {
                pipeline_io::create_file_sink(&p, &opts)
            }));
            let q = sibling(path, "quarantine.parquet");
            reports.push(q.clone());
            runner = runner.reject_sink(pipeline_io::create_quarantine_sink(&q, table.clone())?);
        }
        Output::Discard => {
            runner = runner.sink_factory(Arc::new(|_w, _s| {
                Ok(Box::new(NullSink::default()) as Box<dyn Sink>)
            }));
        }
    }

    let report = runner.build()?.run();
    progress.finish();
    let mut report = report?;
    let mut outputs = report.outputs.clone();
    if let Some(plan) = &normalize {
        // The post-pass is part of the run: its time counts in the summary's wall time.
        let started = std::time::Instant::now();
        outputs.extend(plan.apply(&outputs, &cancel_flag())?);
        report.wall += started.elapsed();
    }
    let reports: Vec<PathBuf> = reports.into_iter().filter(|p| p.exists()).collect();
    let bytes_written = outputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let summary = RunSummary::new(
        job.command,
        &report.ledger,
        &report.stages,
        report.files_ok.len() as u64,
        report
            .files_failed
            .iter()
            .map(|(file, error)| FailedFile {
                file: file.clone(),
                error: error.clone(),
            })
            .collect(),
        report.bytes_read,
        bytes_written,
        report.wall.as_secs_f64(),
        outputs,
        reports,
    );
    if cancel_flag().load(Ordering::SeqCst) {
        summary.print_human();
        return Err(anyhow::Error::new(Error::Cancelled)
            .context("interrupted: completed segments are kept; run again with --resume"));
    }
    Ok((summary, report))
}

/// Which preprocessing stages a command runs, in pipeline order.
#[derive(Debug, Clone, Copy)]
pub struct StageSet {
    /// The reorder buffer ahead of the ordered stages (DESIGN.md: small disorder is
    /// repaired, rows later than `allowed_lateness_ms` are quarantined as `late`); it is
    /// skipped when that setting is 0.
    pub reorder: bool,
    /// The cleaning stages.
    pub clean: bool,
    /// The feature stage.
    pub features: bool,
}

/// Builds the preprocessing stages every command shares: reorder → cleaning → features.
pub fn pipeline_stages(
    cfg: &pipeline_core::PreprocessingConfig,
    set: StageSet,
) -> CoreResult<Vec<StageFactory>> {
    let mut stages: Vec<StageFactory> = Vec::new();
    let ms = cfg.allowed_lateness_ms;
    if set.reorder && ms > 0 {
        stages.push(Arc::new(move || {
            Ok(Box::new(pipeline_stream::ReorderStage::new(
                "symbol",
                "ts",
                std::time::Duration::from_millis(ms),
            )) as Box<dyn pipeline_core::Stage>)
        }));
    }
    if set.clean {
        stages.extend(pipeline_prep::cleaning_stages(cfg)?);
    }
    if set.features {
        stages.extend(pipeline_prep::feature_stages(cfg)?);
    }
    Ok(stages)
}

/// How each input is sorted before the stages (`[input] sort`, `--sort`), or `None`.
///
/// The budget rule is [`SortOptions::for_run`]'s, over the engine's bound on sources read at
/// once: `run_job` sets no `max_open_files`, so that bound is the engine default,
/// max(workers, 2). Spill files go in the output directory (`--out`, or the output file's
/// folder), on the disk the user chose for the output, rather than in a possibly small
/// `/tmp`; a run that discards its output spills to the system temp directory. Ctrl-C stops
/// a sort while it reads its input. Called once per input, so stale spill folders are
/// looked for before each file is opened (a directory listing, cheap next to a sort).
fn sort_options(job: &Job) -> Option<SortOptions> {
    if !job.config.input.sort {
        return None;
    }
    let open = crate::settings::workers(&job.config).max(2);
    let spill_dir = match &job.output {
        Output::Dataset(out) => out.clone(),
        Output::File(path) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        Output::Discard => std::env::temp_dir(),
    };
    if !matches!(job.output, Output::Discard) {
        // A run killed mid-sort (kill -9) leaves its spill folder behind; the next run into
        // the same place removes it. The shared temp directory is left alone.
        pipeline_parallel::spill::remove_stale_spill_dirs(&spill_dir);
    }
    Some(SortOptions {
        cancel: Some(cancel_flag()),
        ..SortOptions::for_run(job.config.pipeline.memory_limit.0, open, spill_dir)
    })
}

/// The engine's view of one input: opens it (again on retries), sorted when `sort` is set.
fn source_spec(
    input: InputFile,
    name: String,
    id: u32,
    size: u64,
    opts: ReadOptions,
    sort: Option<SortOptions>,
) -> SourceSpec {
    SourceSpec {
        name,
        size_bytes: size,
        open: Arc::new(move || {
            let src = pipeline_io::open_source(&input, id, &opts)?;
            Ok(match &sort {
                Some(s) => Box::new(SortedSource::new(src, s.clone())) as Box<dyn Source>,
                None => src,
            })
        }),
    }
}

/// Removes a previous run's outputs from `out` (only tickpipe's own entries).
fn clear_previous(out: &Path) -> anyhow::Result<()> {
    let data = out.join(DATA_DIR);
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .map_err(|e| Error::io(&data, e))
            .context("cannot clear the previous run's output (use --resume to continue it)")?;
    }
    for name in [MANIFEST, "quarantine.parquet"] {
        let p = out.join(name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    if let Ok(entries) = std::fs::read_dir(out) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with("quarantine-resume-") && n.ends_with(".parquet") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// The quarantine file: `quarantine.parquet`, or a numbered one for each resumed run (the
/// quarantine of the interrupted run stays as it was).
fn quarantine_path(out: &Path, resume: bool) -> PathBuf {
    if !resume {
        return out.join("quarantine.parquet");
    }
    (1..)
        .map(|k| out.join(format!("quarantine-resume-{k}.parquet")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| out.join("quarantine-resume.parquet"))
}

fn sibling(path: &Path, name: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.{name}"))
}

/// A sink that counts rows and drops them (benchmarks: measure everything but the write).
#[derive(Debug, Default)]
pub struct NullSink {
    rows: u64,
}

impl Sink for NullSink {
    fn write(&mut self, chunk: &Chunk) -> CoreResult<()> {
        self.rows += chunk.num_rows() as u64;
        Ok(())
    }

    fn finish(&mut self) -> CoreResult<SinkSummary> {
        Ok(SinkSummary {
            rows: self.rows,
            ..Default::default()
        })
    }
}
