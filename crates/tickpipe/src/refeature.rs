//! A re-run after only feature parameters changed (a window, an indicator, a lag): the
//! feature columns are computed again from the rows the dataset already holds, and the
//! inputs are neither read nor cleaned again.
//!
//! The feature stage only adds columns, and it keeps its state per symbol, so its input is
//! exactly the dataset's rows without the feature columns, in the order each symbol's rows
//! were written: files partitioned by symbol, `part-<segment>-<n>` in segment order and
//! then in `n` order. The pass:
//! 1. writes `_refeature.json` (the new run record) and removes `_SUCCESS`, so an
//!    interrupted pass is seen as one;
//! 2. rewrites every data file (temp file + rename, same writer settings and row groups):
//!    the old feature columns out, the new ones computed by one feature stage per worker of
//!    the original run, each file's rows through the stage of the worker its symbol went to;
//! 3. replaces the feature stage's state at every segment end the manifest keeps with the
//!    new stages' state at that point (one transaction), so a later append or a changed
//!    input in the middle of the history continues with the new parameters;
//! 4. saves the run record and writes `_SUCCESS`, then removes `_refeature.json`.
//!
//! Interrupted anywhere, the same command does the pass again from the start: files already
//! rewritten have the new columns dropped and computed again, with the same result. Another
//! configuration is refused until then (or `--overwrite`).
//!
//! Taken only where the row order is known from the file names: output partitioned by
//! symbol alone, timestamps written in nanoseconds (what the stage reads), Parquet or Arrow
//! IPC files, a manifest that keeps its segment ends, and no other stage or setting changed.
//! Anything else keeps the earlier rule: the changed key is named and `--overwrite` asked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{RecordBatch, UInt64Array};
use arrow_schema::{Schema, TimeUnit};
use pipeline_core::{Chunk, Config, Emitter, Error, LINE_COLUMN, OutputFormat, Result, Stage};
use pipeline_io::{PartitionKey, WriteOptions};
use pipeline_prep::FeatureStage;
use serde::{Deserialize, Serialize};

use crate::output::{DATA_DIR, MANIFEST};
use crate::record::RunRecord;
use crate::report::{Refeatured, RunReport};
use crate::run::SUCCESS;

/// The marker of a feature re-run in progress (the new run record).
pub(crate) const PENDING: &str = "_refeature.json";

/// Key in each rewritten file's metadata: the feature stage key it was computed with.
pub const FEATURES_METADATA_KEY: &str = "tickpipe.features";

/// The stage whose parameters may change.
const STAGE: &str = "features";

/// What `_refeature.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// The record the dataset will have once the pass is done.
    record: RunRecord,
    /// The configuration keys that changed.
    changed: Vec<String>,
}

/// One data file, in the order its rows reached the writer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DataFile {
    segment: u32,
    part: u32,
    path: PathBuf,
}

/// A feature re-run, checked and ready.
#[derive(Debug)]
pub(crate) struct Plan {
    out: PathBuf,
    /// The record the dataset gets.
    now: RunRecord,
    changed: Vec<String>,
    /// Feature columns to drop from each file: the old configuration's and the new one's
    /// (after an interruption a file may hold either).
    drop: Vec<String>,
    config: Config,
    stage_index: usize,
    workers: usize,
    /// The worker of each symbol, by its partition folder's name (`symbol=…`).
    assignment: HashMap<String, usize>,
    segment_ends: Vec<u32>,
    files: Vec<DataFile>,
}

/// Whether the dataset in `out`, a finished run `prior`, can take `now` by computing the
/// feature columns again: `None` when anything but feature parameters differs, or the
/// layout does not allow it (see the module docs); the caller then refuses as before.
///
/// `again`: the keys of an interrupted pass being done again (its record may already be the
/// one `now` asks for).
pub(crate) fn plan(
    out: &Path,
    prior: &RunRecord,
    now: &RunRecord,
    write: &WriteOptions,
    again: Option<Vec<String>>,
) -> Result<Option<Plan>> {
    let changed = prior.changed_keys(now);
    let only_features = (again.is_some() || !changed.is_empty())
        && changed
            .iter()
            .all(|k| k.starts_with("preprocessing.") && !k.contains("normaliz"));
    if !only_features
        || prior.inputs != now.inputs
        || prior.command != now.command
        || prior.shard.is_some()
        || now.shard.is_some()
        || prior.stages.len() != now.stages.len()
        || write.partition_by != [PartitionKey::Symbol]
        || write.timestamp_unit != TimeUnit::Nanosecond
        || !matches!(write.format, OutputFormat::Parquet | OutputFormat::Ipc)
    {
        return Ok(None);
    }
    let mut stage_index = None;
    for (i, (a, b)) in prior.stages.iter().zip(&now.stages).enumerate() {
        if a.0 != b.0 {
            return Ok(None);
        }
        if a.0 == STAGE {
            stage_index = Some(i);
        } else if a.1 != b.1 {
            return Ok(None);
        }
    }
    // The changed keys must reach the feature stage: a key no stage's key covers may change
    // what something else writes, so it is not taken for a feature parameter.
    let Some(stage_index) =
        stage_index.filter(|&i| again.is_some() || prior.stages[i].1 != now.stages[i].1)
    else {
        return Ok(None);
    };
    let Some(run) = pipeline_parallel::finished_run(&out.join(MANIFEST), out)? else {
        return Ok(None);
    };
    let names: Vec<&str> = prior.stages.iter().map(|(n, _)| n.as_str()).collect();
    if run.stages != names || run.workers != prior.workers {
        return Ok(None);
    }
    let names_of = |cfg: &Config| -> Result<Vec<String>> {
        Ok(
            FeatureStage::new(pipeline_prep::feature_config(&cfg.preprocessing))?
                .output_columns()
                .to_vec(),
        )
    };
    let config = now.config()?;
    let mut drop = names_of(&prior.config()?)?;
    for n in names_of(&config)? {
        if !drop.contains(&n) {
            drop.push(n);
        }
    }
    let data = out.join(DATA_DIR);
    let mut files = Vec::new();
    for path in &run.outputs {
        if !path.starts_with(&data) {
            continue;
        }
        match data_file(path) {
            Some(f) => files.push(f),
            None => return Ok(None),
        }
    }
    files.sort();
    let mut record = now.clone();
    record.workers = prior.workers;
    record.checkpoint_bytes = prior.checkpoint_bytes;
    record.history = prior.history.clone();
    // A pass done again after its record was saved has its entry already.
    if !changed.is_empty() {
        let mut entry = crate::record::RecordedRun::now(&[], now.inputs.len());
        entry.refeatured = again.clone().unwrap_or_else(|| changed.clone());
        record.history.push(entry);
    }
    Ok(Some(Plan {
        out: out.to_path_buf(),
        now: record,
        changed: again.unwrap_or(changed),
        drop,
        config,
        stage_index,
        workers: run.workers,
        assignment: run
            .assignment
            .into_iter()
            .map(|(k, w)| {
                let dir = format!("symbol={}", pipeline_io::escape_partition_value(Some(&k)));
                (dir, w)
            })
            .collect(),
        segment_ends: run.segment_ends,
        files,
    }))
}

/// `part-<segment>-<n>.<parquet|arrow>` under a `symbol=…` folder.
fn data_file(path: &Path) -> Option<DataFile> {
    let parent = path.parent()?.file_name()?.to_str()?;
    if !parent.starts_with("symbol=") {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    let (stem, ext) = name.strip_prefix("part-")?.split_once('.')?;
    if !matches!(ext, "parquet" | "arrow") {
        return None;
    }
    let (segment, part) = stem.split_once('-')?;
    Some(DataFile {
        segment: segment.parse().ok()?,
        part: part.parse().ok()?,
        path: path.to_path_buf(),
    })
}

/// The interrupted feature re-run recorded in `out`, if any: the record it will leave and
/// the keys that changed.
pub(crate) fn pending(out: &Path) -> Result<Option<(RunRecord, Vec<String>)>> {
    let path = out.join(PENDING);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let p: Pending = serde_json::from_str(&text)
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
            Ok(Some((p.record, p.changed)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Removes the marker of a feature re-run and the report it kept (done, or `--overwrite`
/// replaces the dataset).
pub(crate) fn clear_pending(out: &Path) -> Result<()> {
    crate::output::remove_if_exists(&out.join(PENDING))?;
    crate::output::remove_if_exists(&out.join(REPORT_KEPT))
}

impl Plan {
    /// Does the pass (see the module docs) and returns the dataset's report (the finished
    /// run's `_SUCCESS`) with what was recomputed. `on_file` hears the count of files
    /// rewritten so far after each.
    pub(crate) fn run(
        self,
        write: &WriteOptions,
        started: Instant,
        on_file: &(dyn Fn(usize) + Sync),
    ) -> Result<RunReport> {
        let out = &self.out;
        let marker = Pending {
            record: self.now.clone(),
            changed: self.changed.clone(),
        };
        let success = out.join(SUCCESS);
        let kept = out.join(REPORT_KEPT);
        // The finished run's report carries the dataset's figures; it is kept aside while
        // `_SUCCESS` is away, for a second attempt.
        let report_text = match std::fs::read_to_string(&success) {
            Ok(text) => {
                crate::output::write_atomic(&kept, &text)?;
                text
            }
            Err(_) => std::fs::read_to_string(&kept).map_err(|_| {
                Error::Usage(format!(
                    "{}: the dataset's run report (`{SUCCESS}`) is missing; use --overwrite \
                     to run again",
                    out.display()
                ))
            })?,
        };
        let mut report: RunReport = serde_json::from_str(&report_text)
            .map_err(|e| Error::Usage(format!("{}: {e}", success.display())))?;
        let text = serde_json::to_string_pretty(&marker)
            .map_err(|e| Error::Internal(format!("refeature marker: {e}")))?;
        crate::output::write_atomic(&out.join(PENDING), &(text + "\n"))?;
        crate::run::remove_marker(out)?;
        tracing::info!(
            "{}: only feature parameters changed ({}): computing the feature columns of {} files \
             again from the rows they hold; the inputs are not read",
            out.display(),
            self.changed.join(", "),
            self.files.len()
        );

        let fc = pipeline_prep::feature_config(&self.config.preprocessing);
        let key = format!("{:016x}", FeatureStage::new(fc.clone())?.key().0);
        let meta = [(FEATURES_METADATA_KEY.to_string(), key)];
        // Each worker's symbols went through its own stage: one thread per worker, each
        // taking its files in order.
        let mut jobs: Vec<Vec<&DataFile>> = vec![Vec::new(); self.workers];
        for f in &self.files {
            jobs[self.worker_of(&f.path)?].push(f);
        }
        let done = std::sync::atomic::AtomicUsize::new(0);
        let plan = &self;
        let results: Vec<Result<WorkerPass>> = std::thread::scope(|scope| {
            let handles: Vec<_> = jobs
                .iter()
                .map(|files| {
                    let (fc, meta, done) = (fc.clone(), &meta, &done);
                    let ends = plan.segment_ends.iter().copied();
                    scope.spawn(move || -> Result<WorkerPass> {
                        let mut stage = FeatureStage::new(fc)?;
                        let mut pass = WorkerPass::default();
                        let mut ends = ends.peekable();
                        for f in files {
                            while ends.next_if(|e| *e <= f.segment).is_some() {
                                pass.states.push(stage.checkpoint()?);
                            }
                            pass.rows += plan.rewrite(f, &mut stage, write, meta)?;
                            on_file(done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1);
                        }
                        for _ in ends {
                            pass.states.push(stage.checkpoint()?);
                        }
                        Ok(pass)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Internal("a feature re-run thread panicked".into()))
                    })
                })
                .collect()
        });
        let passes = results.into_iter().collect::<Result<Vec<_>>>()?;
        let rows = passes.iter().map(|p| p.rows).sum::<u64>();
        let states: Vec<(u32, Vec<Option<Vec<u8>>>)> = self
            .segment_ends
            .iter()
            .enumerate()
            .map(|(i, &end)| (end, passes.iter().map(|p| p.states[i].clone()).collect()))
            .collect();
        pipeline_parallel::replace_stage_states(&out.join(MANIFEST), self.stage_index, &states)?;

        self.now.save(out)?;
        report.up_to_date = false;
        report.appended = None;
        report.reprocessed = None;
        report.refeatured = Some(Refeatured {
            changed: self.changed,
            files: self.files.len(),
            rows,
            seconds: started.elapsed().as_secs_f64(),
        });
        let json = report.to_json()?;
        crate::output::write_atomic(&success, &(json + "\n"))?;
        clear_pending(out)?;
        Ok(report)
    }

    /// Rewrites one data file: its columns up to the feature columns (which must come
    /// last) are kept as they are, the new feature columns computed from them through
    /// `stage`. Returns the rows.
    fn rewrite(
        &self,
        f: &DataFile,
        stage: &mut FeatureStage,
        write: &WriteOptions,
        meta: &[(String, String)],
    ) -> Result<u64> {
        let schema = pipeline_io::file_schema(&f.path)?;
        let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        let keep = names.iter().take_while(|n| !self.drop.contains(n)).count();
        if names[keep..].iter().any(|n| !self.drop.contains(n)) {
            return Err(Error::Schema(format!(
                "{}: the feature columns are not the last columns of the file; use \
                 --overwrite to make the dataset again",
                f.path.display()
            )));
        }
        let new_fields = stage.output_fields();
        let r = pipeline_io::rewrite_tail(&f.path, write, meta, keep, &mut |base| {
            if base.num_rows() == 0 {
                let schema = Schema::new(new_fields.clone());
                return Ok(RecordBatch::new_empty(Arc::new(schema)));
            }
            compute(stage, base)
        })?;
        Ok(r.rows)
    }

    /// The worker the symbol of a data file's folder went to.
    fn worker_of(&self, path: &Path) -> Result<usize> {
        path.parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str())
            .and_then(|d| self.assignment.get(d).copied())
            .filter(|w| *w < self.workers)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "{}: its symbol is not in the run manifest's routing",
                    path.display()
                ))
            })
    }
}

/// What one worker's thread of the pass did.
#[derive(Debug, Default)]
struct WorkerPass {
    /// Rows rewritten.
    rows: u64,
    /// The stage's state at each segment end, in order.
    states: Vec<Option<Vec<u8>>>,
}

/// The finished run's report, kept while a feature re-run replaces `_SUCCESS`.
const REPORT_KEPT: &str = "_refeature_report.json";

/// Runs `base` through the feature stage and returns the columns it adds (the stage needs a
/// [`LINE_COLUMN`]: the files' own when they keep it, otherwise one is lent).
fn compute(stage: &mut FeatureStage, base: RecordBatch) -> Result<RecordBatch> {
    let keeps_lines = base.schema().column_with_name(LINE_COLUMN).is_some();
    // The columns the stage was given (a lent line column included): the rest it added.
    let width = base.num_columns() + usize::from(!keeps_lines);
    let n = base.num_rows() as u64;
    let chunk = if keeps_lines {
        Chunk::new(base, 0, 0)?
    } else {
        Chunk::with_lines(base, 0, 0, UInt64Array::from_iter_values(0..n))?
    };
    let mut out = Emitter::default();
    stage.process(chunk, &mut out)?;
    let mut chunks = out.take_chunks();
    let (Some(chunk), true) = (chunks.pop(), chunks.is_empty()) else {
        return Err(Error::Internal(
            "the feature stage did not return one chunk per chunk".into(),
        ));
    };
    let added: Vec<usize> = (width..chunk.batch().num_columns()).collect();
    if added.len() != stage.output_columns().len() {
        return Err(Error::Schema(
            "a feature column has the name of a column the dataset holds; use --overwrite to \
             make the dataset again"
                .into(),
        ));
    }
    Ok(chunk.batch().project(&added)?)
}
