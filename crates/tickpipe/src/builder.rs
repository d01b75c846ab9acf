//! [`Pipeline::builder`] → [`PipelineBuilder`] → [`Pipeline`] → [`RunReport`] (or a
//! [`RunStream`] of batches): the one composition of sources, stages, engine and output
//! policy that every front end drives.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use pipeline_core::{Config, Error, Result, SourceTable, StageFactory};
use pipeline_io::{ReadOptions, WriteOptions};
use pipeline_parallel::{CommitFn, ProgressFn, Runner, Runtime};

use crate::input::{Inputs, live_source_spec, source_specs};
use crate::output::Output;
use crate::report::{FailedFile, RunReport};
use crate::stages::{StageSet, standard_stages};
use crate::stream::RunStream;

/// Plans kept between describing the inputs and opening them (serialised, about 3 KB each,
/// in one store of at most 8 MiB: see `pipeline_io::PlanMemo`); inputs past the first 4,096
/// build their plan again when opened.
const PLAN_MEMO_CAPACITY: usize = 4096;

/// Settings of a pipeline, each with its default.
#[derive(Clone)]
pub(crate) struct Settings {
    /// Inputs as given: files, folders, glob patterns, `-` for stdin. Default: none.
    pub inputs: Vec<String>,
    /// Quotes files the inputs (then trades) are matched against. Default: none.
    pub quotes: Vec<String>,
    /// The session calendar of time bars. Default: none (UTC multiples of the width).
    #[cfg(feature = "prep")]
    pub bar_session: Option<pipeline_prep::BarSession>,
    /// The configuration. Default `Config::default()`.
    pub config: Config,
    /// Where rows go. Default `Output::Discard`.
    pub output: Output,
    /// Which standard stages run. Default: all.
    pub stages: StageSet,
    /// A bar spec (`time:1m`, …): bars are computed after cleaning. Default: none.
    pub bars: Option<String>,
    /// Stages appended after the standard ones. Default: none.
    pub extra: Vec<StageFactory>,
    /// Whether `[preprocessing] normalize_features` applies. Default true (bar runs never
    /// normalise).
    pub normalize: bool,
    /// Continue an interrupted run. Default false.
    pub resume: bool,
    /// With `resume` on a finished dataset: run its end-of-input flush again from the
    /// recorded state (only report settings changed). Set by the run itself.
    pub(crate) flush_again: bool,
    /// Replace what a previous run left in the output. Default false: a folder holding
    /// another run (or a file that exists) is refused.
    pub overwrite: bool,
    /// Receives the run's commit-protocol events. Default none.
    pub events: Option<crate::run::EventFn>,
    /// Where validation sits. Default inline (after cleaning, when `[validation] enabled`).
    pub validation: crate::quality::Validation,
    /// The quarantine file of a run whose output is discarded. Default none (counted only).
    pub quarantine_file: Option<PathBuf>,
    /// `(k, n)`: only shard k of n. Default none.
    pub shard: Option<(usize, usize)>,
    /// Input bytes between resumable checkpoints. Default: the engine's (1 GiB).
    pub checkpoint_every: Option<u64>,
    /// Live mode: follow one growing input, flushing at least this often. Default off.
    pub follow: Option<Duration>,
    /// The stop flag (Ctrl-C). In live mode it ends the input and the run finishes
    /// normally; otherwise it cancels the run. Default: a private flag.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Progress callback. Default none.
    pub progress: Option<ProgressFn>,
    /// Called after each committed segment. Default none.
    pub on_commit: Option<CommitFn>,
    /// The report's `command`. Default `run`.
    pub label: String,
    /// The threads the run uses. Default: one pool thread per worker.
    pub runtime: Option<Runtime>,
    /// The inputs' description made earlier (a cluster task takes its plan's): the inputs
    /// are not sniffed again. Default none: they are described at build time.
    pub(crate) described: Option<crate::input::Described>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            inputs: Vec::new(),
            quotes: Vec::new(),
            #[cfg(feature = "prep")]
            bar_session: None,
            config: Config::default(),
            output: Output::Discard,
            stages: StageSet::default(),
            bars: None,
            extra: Vec::new(),
            normalize: true,
            resume: false,
            flush_again: false,
            overwrite: false,
            events: None,
            validation: crate::quality::Validation::Inline,
            quarantine_file: None,
            shard: None,
            checkpoint_every: None,
            follow: None,
            cancel: None,
            progress: None,
            on_commit: None,
            label: "run".into(),
            runtime: None,
            described: None,
        }
    }
}

/// Builds a [`Pipeline`]: inputs, configuration, output and options; [`build`] validates
/// everything that can be checked before any input is read.
///
/// [`build`]: PipelineBuilder::build
#[derive(Default)]
pub struct PipelineBuilder {
    s: Settings,
}

/// A validated pipeline, ready to [`run`](Pipeline::run) or [`stream`](Pipeline::stream).
pub struct Pipeline {
    pub(crate) s: Settings,
    pub(crate) inputs: Inputs,
    pub(crate) read: ReadOptions,
    pub(crate) write: WriteOptions,
    pub(crate) stages: Vec<StageFactory>,
    #[cfg(feature = "prep")]
    pub(crate) normalize: Option<crate::normalize::Plan>,
    pub(crate) quality: Option<crate::quality::Quality>,
    pub(crate) workers: usize,
    /// Replaces how each input is opened (a reduce task reads the shuffled rows of the
    /// inputs instead of the inputs); `None` opens the inputs.
    pub(crate) reopen: Option<crate::cluster::Reopen>,
    /// Rows per routing key known ahead (a reduce task's symbols): the engine spreads the
    /// keys over its workers by them. Empty: by the first chunk.
    pub(crate) key_weights: Vec<(String, u64)>,
    /// Trades and quotes as separate inputs: the as-of join that is the run's one source.
    #[cfg(feature = "prep")]
    pub(crate) taq: Option<crate::taq::TaqPlan>,
    /// A live run that continues an earlier one: where that run stopped in the file.
    pub(crate) live_from: Option<pipeline_core::SourcePosition>,
    /// The output folder's cache when it already existed at build time (the inputs were
    /// described with it); the run keeps using it.
    pub(crate) cache: Option<crate::caching::Caching>,
    /// The descriptions made before the cache was open, for the cache the run opens.
    pub(crate) meta_pending: Option<Arc<crate::caching::Pending>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("inputs", &self.inputs.files.len())
            .field("output", &self.s.output)
            .field("stages", &self.stages.len())
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A builder with default settings.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }
}

impl PipelineBuilder {
    /// Inputs: files, folders (walked recursively, `[input] file_pattern` applies), glob
    /// patterns, or `-` for stdin.
    pub fn inputs<I, S>(mut self, inputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.s.inputs.extend(inputs.into_iter().map(Into::into));
        self
    }

    /// Time bars on an exchange's session calendar (hours, holidays, early closes, daylight
    /// saving), with an empty-bar policy and `label` / `closed` edges; see
    /// [`pipeline_prep::BarSession`]. Needs [`bars`](Self::bars) with a `time:` spec.
    #[cfg(feature = "prep")]
    pub fn bar_session(mut self, session: pipeline_prep::BarSession) -> Self {
        self.s.bar_session = Some(session);
        self
    }

    /// Quotes files (files, folders, globs) to match the inputs against: the inputs are then
    /// trades, and each trade gets the NBBO prevailing before it (see `[taq]` and
    /// [`pipeline_prep::TaqJoin`]). Also `[input] trades` / `quotes`.
    pub fn quotes<I, S>(mut self, quotes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.s.quotes = quotes.into_iter().map(Into::into).collect();
        self
    }

    /// The configuration (default `Config::default()`).
    pub fn config(mut self, config: Config) -> Self {
        self.s.config = config;
        self
    }

    /// Where rows go (default [`Output::Discard`]).
    pub fn output(mut self, output: Output) -> Self {
        self.s.output = output;
        self
    }

    /// Which standard stages run (default: reorder, cleaning and features).
    pub fn stages(mut self, set: StageSet) -> Self {
        self.s.stages = set;
        self
    }

    /// Computes bars (`time:1m`, `tick:1000`, `volume:1e4`, `dollar:1e6`) after cleaning,
    /// instead of features.
    pub fn bars(mut self, spec: impl Into<String>) -> Self {
        self.s.bars = Some(spec.into());
        self
    }

    /// Appends a stage of your own after the standard ones.
    pub fn stage(mut self, factory: StageFactory) -> Self {
        self.s.extra.push(factory);
        self
    }

    /// Whether `[preprocessing] normalize_features` applies to this run (default true).
    pub fn normalize(mut self, yes: bool) -> Self {
        self.s.normalize = yes;
        self
    }

    /// Continues the interrupted run recorded in the output folder.
    pub fn resume(mut self, yes: bool) -> Self {
        self.s.resume = yes;
        self
    }

    /// Replaces what a previous run left in the output folder (or the output file). Without
    /// it, a folder that holds another run, an interrupted run or output of an unknown run is
    /// refused with a message saying why, and an existing output file is refused.
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.s.overwrite = yes;
        self
    }

    /// Receives the run's commit-protocol events (for observers and crash tests).
    pub fn on_event(mut self, f: crate::run::EventFn) -> Self {
        self.s.events = Some(f);
        self
    }

    /// Where validation runs: inline after cleaning (the default, when `[validation]
    /// enabled`), off, or standalone (`tickpipe validate`: the rules alone on the rows as
    /// read).
    pub fn validation(mut self, v: crate::quality::Validation) -> Self {
        self.s.validation = v;
        self
    }

    /// Where rejected rows go when the output is [`Output::Discard`] (default: counted
    /// only): `tickpipe validate --quarantine FILE`.
    pub fn quarantine_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.s.quarantine_file = Some(path.into());
        self
    }

    /// Processes only shard `k` of `n` of the inputs: only `n = 1` is accepted now (a split
    /// by files was not the one-machine dataset); scale out with [`crate::cluster`].
    pub fn shard(mut self, k: usize, n: usize) -> Self {
        self.s.shard = Some((k, n));
        self
    }

    /// Commits a resumable checkpoint at the first file boundary after this many input bytes.
    pub fn checkpoint_every(mut self, bytes: u64) -> Self {
        self.s.checkpoint_every = Some(bytes.max(1));
        self
    }

    /// Live mode: follows one growing input (or stdin) on the same engine, handing rows on
    /// at least every `flush`, until the stop flag ([`cancel`](Self::cancel)) is set; the
    /// run then finishes normally and commits its output.
    pub fn follow(mut self, flush: Duration) -> Self {
        self.s.follow = Some(flush.max(Duration::from_millis(1)));
        self
    }

    /// The stop flag (e.g. set by Ctrl-C).
    pub fn cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.s.cancel = Some(flag);
        self
    }

    /// Receives progress snapshots (at most every ~200 ms).
    pub fn progress(mut self, f: ProgressFn) -> Self {
        self.s.progress = Some(f);
        self
    }

    /// Called after each segment is committed, with its number.
    pub fn on_commit(mut self, f: CommitFn) -> Self {
        self.s.on_commit = Some(f);
        self
    }

    /// The report's `command` field (default `run`).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.s.label = label.into();
        self
    }

    /// Takes the inputs' description made earlier (a cluster plan's) instead of sniffing
    /// every input again.
    pub(crate) fn described(mut self, d: crate::input::Described) -> Self {
        self.s.described = Some(d);
        self
    }

    /// The threads the run uses (default: a new runtime with one pool thread per worker).
    pub fn runtime(mut self, rt: Runtime) -> Self {
        self.s.runtime = Some(rt);
        self
    }

    /// Validates the settings, the configuration, the reading and writing options and the
    /// stages, and lists the inputs, all before any input is read.
    pub fn build(self) -> Result<Pipeline> {
        let mut s = self.s;
        s.config.validate()?;
        if s.inputs.is_empty() && !s.config.input.trades.is_empty() {
            s.inputs = s.config.input.trades.clone();
        }
        if s.quotes.is_empty() {
            s.quotes = s.config.input.quotes.clone();
        }
        if s.inputs.is_empty() {
            return Err(Error::Usage("no input given".into()));
        }
        if let Some((k, n)) = s.shard
            && (n == 0 || k >= n)
        {
            return Err(Error::Usage(format!(
                "--shard {k}/{n}: expected K/N with 0 <= K < N, e.g. 0/4"
            )));
        }
        if let Some((k, n)) = s.shard
            && n > 1
        {
            // Whole files dealt to shards split a symbol's days, and its state restarted at
            // the border: the shards' union was not the one-machine dataset.
            return Err(Error::Usage(format!(
                "shard {k}/{n}: sharding by files is removed (a symbol's state would restart \
                 between shards); use tickpipe::cluster (plan, map_task, reduce_task)"
            )));
        }
        if s.resume && !matches!(s.output, Output::Dataset(_)) {
            return Err(Error::Usage(
                "--resume needs a dataset output folder; it cannot be used with --discard or a \
                 single output file"
                    .into(),
            ));
        }
        if s.follow.is_some() {
            check_live(&s)?;
        }
        if s.resume
            && let Output::Dataset(out) = s.output.clone()
        {
            crate::run::adopt_recorded_settings(&mut s, &out)?;
        }
        // The folder's run record (0.5 MB of JSON for five years of daily files, parsed
        // once per process and kept: see `RunRecord::load`) is read, and the folder's cache
        // opened, while the inputs are listed, one `stat` each: on a one-day append to five
        // years of days the three took 2, 3 and 6 ms one after the other. A failed read is
        // reported by the next load; a cache that fails to open, after the inputs.
        let preload = match (&s.output, &s.follow) {
            (Output::Dataset(out), None) => {
                let recorded = out.join(crate::record::RUN_RECORD).exists();
                // A recorded folder is resumed or extended from its manifest (unless it is
                // overwritten): its stage states are read ahead too, on a thread of their
                // own (the run waits for them only when it opens the manifest).
                if recorded && !s.overwrite {
                    pipeline_parallel::preload_manifest(&out.join(crate::MANIFEST));
                }
                let (out, config) = (out.clone(), s.config.clone());
                std::thread::Builder::new()
                    .name("tickpipe-preload".into())
                    .spawn(move || {
                        if recorded {
                            let _ = crate::record::RunRecord::load_shared(&out);
                        }
                        crate::caching::Caching::open_existing(&config, &out)
                    })
                    .ok()
            }
            _ => None,
        };
        let inputs = Inputs::expand(&s.inputs, &s.config);
        let opened = match preload {
            Some(h) => Some(h.join().map_err(|_| {
                Error::Internal("opening the output folder's cache panicked".into())
            })?),
            None => None,
        };
        let inputs = inputs?;
        if s.follow.is_some() && inputs.files.len() != 1 {
            return Err(Error::Usage(
                "--follow takes exactly one input file (or -)".into(),
            ));
        }
        let mut read = ReadOptions::from_config(&s.config)?;
        if !s.quotes.is_empty() && s.config.pipeline.chunk_size == 0 {
            // Two streams are read at once: each gets half the chunk size the memory limit
            // derives for one (on 20M trades against 50M quotes: peak RSS 262 → 185 MiB
            // at the default 256 MiB limit, 23.0 → 24.3 s).
            read.chunk_rows = (read.chunk_rows / 2).max(1024);
        }
        // The inputs are described with the folder's cache when it exists (a re-run or an
        // append sniffs only new files); otherwise the descriptions wait for the cache the
        // run opens.
        let (mut cache, mut meta_pending) = (None, None);
        if s.follow.is_none() {
            if let Output::Dataset(out) = &s.output {
                cache = match opened {
                    Some(opened) => opened?,
                    // No thread could be started.
                    None => crate::caching::Caching::open_existing(&s.config, out)?,
                };
                crate::record::remember_fingerprints(out, &inputs.files);
            }
            if let Some(c) = &cache {
                read.meta_cache = Some(c.meta());
            } else if s.config.cache.enabled {
                let p = Arc::new(crate::caching::Pending::default());
                read.meta_cache = Some(pipeline_core::MetaCache::new(p.clone()));
                meta_pending = Some(p);
            }
            match &s.described {
                Some(d) => d.apply(&mut read, &mut s.config),
                None => {
                    // The plans built while describing are handed to the sources that open
                    // the same files, instead of being built again (see `PlanMemo`).
                    read.plans = Some(pipeline_io::PlanMemo::new(PLAN_MEMO_CAPACITY));
                    let d = crate::input::describe(&inputs, &mut read, &mut s.config)?;
                    s.described = Some(d);
                }
            }
        }
        #[cfg(feature = "prep")]
        let taq = if s.quotes.is_empty() {
            None
        } else {
            check_taq(&s)?;
            let out = match &s.output {
                Output::Dataset(d) => Some(d.as_path()),
                _ => None,
            };
            Some(crate::taq::plan(&s.quotes, &s.config, &read, out)?)
        };
        #[cfg(not(feature = "prep"))]
        if !s.quotes.is_empty() {
            return Err(crate::stages::missing_feature("prep", "--quotes"));
        }
        let mut write = WriteOptions::from_config(&s.config.output)?;
        if !s.config.pipeline.enable_compression {
            write.compression = pipeline_io::Compression::None;
        }
        if let Output::File(path) = &s.output
            && let Some(f) = pipeline_io::format_from_extension(path)
        {
            write.format = f;
        }
        let mut set = s.stages;
        let standalone = matches!(s.validation, crate::quality::Validation::Standalone { .. });
        if standalone {
            // The rules see the rows as read.
            set = StageSet::none();
            s.normalize = false;
        }
        // Inline validation checks what cleaning leaves; without cleaning there is nothing
        // for it to check that the standalone command would not measure better.
        let quality = if standalone || set.clean {
            crate::quality::Quality::plan(&s.validation, &s.config)?
        } else {
            None
        };
        let workers = match s.output {
            // One file means one writer: a single worker writes it, in input order.
            Output::File(_) => 1,
            _ => crate::settings::workers(&s.config),
        };
        let workers = quality.as_ref().map_or(workers, |q| q.workers(workers));
        if s.follow.is_some() {
            // No reorder buffer in live mode: it would hold rows for the allowed lateness,
            // longer than the flush interval promises.
            set.reorder = false;
        }
        if s.bars.is_some() {
            set.features = false;
            s.normalize = false;
        }
        // reorder → cleaning → validation → features → bars → user stages → scale.
        let mut stages = standard_stages(
            &s.config.preprocessing,
            StageSet {
                features: false,
                ..set
            },
        )?;
        if let Some(q) = &quality {
            stages.extend(q.stages());
        }
        if set.features {
            stages.extend(standard_stages(
                &s.config.preprocessing,
                StageSet {
                    reorder: false,
                    clean: false,
                    features: true,
                },
            )?);
        }
        if let Some(spec) = &s.bars {
            let column = s.config.preprocessing.price_column.as_deref();
            #[cfg(feature = "prep")]
            let bars = crate::stages::session_bar_stage(spec, column, s.bar_session.as_ref())?;
            #[cfg(not(feature = "prep"))]
            let bars = crate::stages::bar_stage(spec, column)?;
            stages.push(bars);
        }
        stages.extend(s.extra.iter().cloned());
        #[cfg(feature = "prep")]
        let normalize = if s.normalize {
            let out = match &s.output {
                Output::Dataset(dir) => Some(dir.as_path()),
                _ => None,
            };
            let planned = crate::normalize::plan(&crate::normalize::Request {
                config: &s.config,
                out,
                shard: s.shard,
                features: set.features,
                live: s.follow.is_some(),
                workers,
            })?;
            match planned {
                Some((plan, stage)) => {
                    stages.extend(stage);
                    Some(plan)
                }
                None => None,
            }
        } else {
            None
        };
        #[cfg(not(feature = "prep"))]
        if s.normalize && s.config.preprocessing.normalize_features {
            return Err(crate::stages::missing_feature("prep", "normalize_features"));
        }
        Ok(Pipeline {
            s,
            inputs,
            read,
            write,
            stages,
            #[cfg(feature = "prep")]
            normalize,
            quality,
            workers,
            reopen: None,
            key_weights: Vec::new(),
            #[cfg(feature = "prep")]
            taq,
            live_from: None,
            cache,
            meta_pending,
        })
    }
}

/// The options a trades-and-quotes run cannot take, refused with the reason.
#[cfg(feature = "prep")]
fn check_taq(s: &Settings) -> Result<()> {
    let refuse = |flag: &str, why: &str| Err(Error::Usage(format!("--quotes with {flag}: {why}")));
    if s.follow.is_some() {
        return refuse("--follow", "the join reads files to their end");
    }
    if s.config.input.sort {
        return refuse(
            "[input] sort",
            "the join needs each stream sorted across its files; sort them first (`tickpipe \
             convert --sort`), or set [taq] order to the order they have",
        );
    }
    if s.bars.is_some() {
        return refuse("--bars", "build bars from the joined output");
    }
    Ok(())
}

/// Live mode applies every option that makes sense for an input without an end, and refuses
/// the others with the reason.
fn check_live(s: &Settings) -> Result<()> {
    let refuse = |flag: &str, why: &str| Err(Error::Usage(format!("--follow with {flag}: {why}")));
    if s.config.input.sort {
        return refuse(
            "--sort",
            "sorting needs the whole input, and a followed input has no end",
        );
    }
    if s.shard.is_some() {
        return refuse(
            "--shard",
            "a followed input is one growing file; there is nothing to split",
        );
    }
    if matches!(s.output, Output::File(_)) {
        return refuse(
            "a single output file",
            "write a dataset folder (a file is only complete when the run ends)",
        );
    }
    Ok(())
}

impl Pipeline {
    /// The number of workers the run uses.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The dataset folder the run writes, when its output is one.
    pub fn output_dir(&self) -> Option<&std::path::Path> {
        match &self.s.output {
            Output::Dataset(d) => Some(d),
            _ => None,
        }
    }

    /// The input files, in processing order.
    pub fn input_files(&self) -> Vec<String> {
        self.inputs.files.iter().map(|f| f.display_name()).collect()
    }

    /// Writer options with the writer budget: a sixteenth of the memory limit per worker
    /// (one sink each). Parquet holds about three times what it reports as buffered
    /// (measured with the sink bench), so all sinks together stay near 3/16 of the limit
    /// (measured: a 5M-row run peaks at 268 MiB with an eighth, 241 MiB with a sixteenth, at
    /// the same speed).
    pub(crate) fn writer_options(&self, workers: usize) -> WriteOptions {
        let mut opts = self.write.clone();
        opts.max_buffered_bytes =
            usize::try_from(self.s.config.pipeline.memory_limit.0 / 16 / workers.max(1) as u64)
                .unwrap_or(usize::MAX)
                .max(4 << 20);
        opts
    }

    /// The engine for this pipeline, without sinks: sources, stages and settings. Returns
    /// the runner, the source table (for the quarantine) and the input bytes.
    pub(crate) fn runner(
        &self,
        workers: usize,
        cancel: &Arc<AtomicBool>,
        rt: &Runtime,
    ) -> Result<(Runner, SourceTable, u64)> {
        let mut table = SourceTable::default();
        let live = self.s.follow;
        let specs = match live {
            Some(flush) => vec![live_source_spec(
                &self.inputs.files[0],
                &mut table,
                &self.read,
                (flush, self.live_from),
                cancel.clone(),
            )],
            None => match self.taq_source(&mut table)? {
                Some(join) => vec![join],
                None => source_specs(
                    &self.inputs,
                    &mut table,
                    &self.read,
                    self.sort_options(workers, cancel),
                ),
            },
        };
        let specs = match &self.reopen {
            Some(f) => f(specs)?,
            None => specs,
        };
        let total: u64 = specs.iter().map(|s| s.size_bytes).sum();
        let mut runner = Runner::new()
            .sources(specs)
            .stages(self.stages.clone())
            .workers(workers)
            .memory_limit(self.s.config.pipeline.memory_limit.0)
            .channel_capacity(self.s.config.pipeline.channel_capacity)
            .key_weights(self.key_weights.clone())
            .runtime(rt.clone());
        if live.is_some() {
            // The stop flag ends the live input; the run then finishes and commits. Its
            // source is never retried: a retry would read the growing file again.
            runner = runner.retries(0);
        } else {
            runner = runner
                .retries(self.s.config.pipeline.retries)
                .cancel(cancel.clone());
        }
        if let Some((k, n)) = self.s.shard {
            runner = runner.shard(k, n);
        }
        if let Some(b) = self.s.checkpoint_every {
            runner = runner.segment_bytes(b);
        }
        if let Some(f) = &self.s.on_commit {
            runner = runner.on_commit(f.clone());
        }
        if let Some(p) = &self.s.progress {
            runner = runner.progress(p.clone());
        }
        Ok((runner, table, total))
    }

    /// The trades-and-quotes join as the run's one source, when the run has quotes.
    fn taq_source(
        &self,
        _table: &mut SourceTable,
    ) -> Result<Option<pipeline_parallel::SourceSpec>> {
        #[cfg(feature = "prep")]
        if let Some(t) = &self.taq {
            return t.source_spec(&self.inputs, &self.read, _table).map(Some);
        }
        Ok(None)
    }

    /// The sources a run would read, one per input in processing order (ids = positions),
    /// for a map task that reads the inputs itself.
    pub(crate) fn input_sources(
        &self,
        cancel: &Arc<AtomicBool>,
    ) -> Vec<pipeline_parallel::SourceSpec> {
        let mut table = SourceTable::default();
        source_specs(
            &self.inputs,
            &mut table,
            &self.read,
            self.sort_options(self.workers, cancel),
        )
    }

    /// How each input is sorted before the stages (`[input] sort`), or `None`.
    ///
    /// The budget rule is `SortOptions::for_run`'s, over the engine's bound on sources read
    /// at once, max(workers, 2). Spill files go inside the output folder; a run that discards
    /// its output spills to the system temp directory. The stop flag stops a sort while it
    /// reads its input.
    fn sort_options(
        &self,
        workers: usize,
        cancel: &Arc<AtomicBool>,
    ) -> Option<pipeline_parallel::SortOptions> {
        if !self.s.config.input.sort {
            return None;
        }
        let spill_dir = self.s.output.spill_dir();
        if !matches!(self.s.output, Output::Discard) {
            // A run killed mid-sort (kill -9) leaves its spill folder behind; the next run
            // into the same place removes it. The shared temp directory is left alone.
            pipeline_parallel::spill::remove_stale_spill_dirs(&spill_dir);
        }
        Some(pipeline_parallel::SortOptions {
            cancel: Some(cancel.clone()),
            ..pipeline_parallel::SortOptions::for_run(
                self.s.config.pipeline.memory_limit.0,
                workers.max(2),
                spill_dir,
            )
        })
    }

    /// The run report from the engine's.
    pub(crate) fn report(
        &self,
        report: &pipeline_parallel::RunReport,
        outputs: Vec<PathBuf>,
        reports: Vec<PathBuf>,
        started: Instant,
    ) -> RunReport {
        let bytes_written = outputs
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        #[allow(unused_mut)]
        let mut ledger = report.ledger.clone();
        #[cfg(feature = "prep")]
        if let Some(t) = &self.taq {
            t.extend_ledger(&mut ledger);
        }
        let mut r = RunReport::new(
            &self.s.label,
            &ledger,
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
            started.elapsed().as_secs_f64(),
            outputs,
            reports,
        );
        if self.s.bars.is_some() {
            r.bars_written = Some(report.ledger.written);
        }
        #[cfg(feature = "prep")]
        if let Some(t) = &self.taq {
            r.taq = serde_json::to_value(t.stats()).ok();
        }
        r
    }

    /// Runs in the background and hands the output batches to the caller instead of writing
    /// them, in bounded memory; see [`RunStream`].
    pub fn stream(self) -> Result<RunStream> {
        RunStream::start(self)
    }
}
