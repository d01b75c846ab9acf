//! `[preprocessing] normalize_features` for `tickpipe run`: z-score, min-max or robust
//! (median/IQR) scaling of feature columns, as a post-pass over the files the run wrote.
//!
//! The run streams its input once (stdin works) and writes its output as usual. Then:
//! 1. the parameters are fitted in one streaming pass over the output files, decoding only
//!    the columns to scale ([`pipeline_prep::ScalerFit`]: mean and variance, min/max, P²
//!    quartiles); with `normalize_params` (a `scaler.json` of an earlier run) they are known
//!    up front instead, a [`ScaleStage`] scales the rows during the run, and step 3 only adds
//!    the metadata, copying every column chunk as it is;
//! 2. they are written to `OUT/scaler.json`;
//! 3. every output file is rewritten through [`ScalerParams::apply`] with the parameters in
//!    its metadata under [`SCALER_METADATA_KEY`] ([`pipeline_io::rewrite_columns`]: same
//!    writer settings and row groups, the unscaled Parquet column chunks copied as they are,
//!    temp file + rename).
//!
//! Memory stays bounded: both passes hold one batch (and the rewrite one row group) per
//! thread. The post-pass is resumable: after an interruption, `--resume` finds the files
//! that already carry the key, takes the parameters from them and rewrites only the rest.
//!
//! Sharded runs (`--shard K/N`, N > 1) are refused unless `normalize_params` is set: each
//! shard would otherwise fit its own parameters and the shards' outputs would not agree.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arrow_schema::DataType;
use pipeline_core::{Config, Error, OutputFormat, Stage};
use pipeline_io::WriteOptions;
use pipeline_prep::{SCALER_METADATA_KEY, ScaleMethod, ScaleStage, ScalerFit, ScalerParams};

use crate::job::{Job, Output};

/// The fitted parameters' file inside `--out`.
pub const SCALER_FILE: &str = "scaler.json";

/// Which columns a fit covers.
#[derive(Debug, Clone, PartialEq)]
enum Columns {
    /// `normalize_columns`: each must be in the output.
    Named(Vec<String>),
    /// The feature stage's output columns; the Float64 ones in the output are scaled.
    Features(Vec<String>),
}

/// Where the parameters come from.
#[derive(Debug, Clone, PartialEq)]
enum Params {
    /// Fitted on this run's output.
    Fit(ScaleMethod, Columns),
    /// Loaded from `normalize_params`, and applied by a [`ScaleStage`] during the run.
    Given(ScalerParams),
}

/// The normalisation a run will do once its output is written.
#[derive(Debug)]
pub struct Plan {
    out: PathBuf,
    params: Params,
    opts: WriteOptions,
    threads: usize,
}

/// Checks the normalisation settings before the job reads any input (so a bad setting costs
/// nothing, and stdin is not consumed by a run that then fails), and returns the plan, or
/// `None` when nothing is to be normalised. A fresh `run` into a directory also removes the
/// `scaler.json` a previous run left there.
pub fn plan(job: &mut Job) -> anyhow::Result<Option<Plan>> {
    let Output::Dataset(out) = &job.output else {
        if job.config.preprocessing.normalize_features && job.command == "run" {
            tracing::warn!("normalize_features: nothing is written (--discard), nothing to scale");
        }
        return Ok(None);
    };
    if job.command != "run" {
        return Ok(None);
    }
    let stale = out.join(SCALER_FILE);
    if !job.resume && stale.exists() {
        std::fs::remove_file(&stale).map_err(|e| Error::io(&stale, e))?;
    }
    let cfg = &job.config.preprocessing;
    if !cfg.normalize_features {
        return Ok(None);
    }
    let opts = WriteOptions::from_config(&job.config.output)?;
    if opts.format == OutputFormat::Csv {
        return Err(Error::config(
            "preprocessing.normalize_features",
            "CSV output has no file metadata to keep the scaler parameters in; write parquet or ipc",
        )
        .into());
    }
    let params = if cfg.normalize_params.is_empty() {
        if let Some((k, n)) = job.shard.filter(|s| s.1 > 1) {
            return Err(Error::config(
                "preprocessing.normalize_params",
                format!(
                    "--shard {k}/{n} would fit separate parameters per shard; fit once (a run \
                     without --shard) and pass its {SCALER_FILE} as normalize_params"
                ),
            )
            .into());
        }
        let method = ScaleMethod::parse(&cfg.normalize_method).map_err(|_| {
            Error::config(
                "preprocessing.normalize_method",
                format!(
                    "`{}`: expected zscore, minmax or robust",
                    cfg.normalize_method
                ),
            )
        })?;
        Params::Fit(method, fit_columns(job)?)
    } else {
        let params = load_params(Path::new(&cfg.normalize_params), &cfg.normalize_columns)?;
        // Known before the run: the rows are scaled on their way to the sink (after the
        // feature stage), and the post-pass only adds the metadata.
        let stage = params.clone();
        job.stages.push(Arc::new(move || {
            Ok(Box::new(ScaleStage::new(stage.clone())) as Box<dyn Stage>)
        }));
        Params::Given(params)
    };
    Ok(Some(Plan {
        out: out.clone(),
        params,
        opts,
        threads: rewrite_threads(&job.config),
    }))
}

/// `run --follow`'s normalisation: a followed input never ends, so there is no fit; the
/// parameters of `normalize_params` are applied in stream by the returned stage, and the
/// returned plan adds them to the files' metadata once following stops. Without
/// `normalize_params` this is a configuration error, not a silent skip.
pub fn plan_follow(
    cfg: &Config,
    out: &Path,
) -> anyhow::Result<Option<(pipeline_core::StageFactory, Plan)>> {
    let pre = &cfg.preprocessing;
    if !pre.normalize_features {
        return Ok(None);
    }
    if pre.normalize_params.is_empty() {
        return Err(Error::config(
            "preprocessing.normalize_params",
            format!(
                "--follow cannot fit scaling parameters (its input has no end); fit once with a \
                 run without --follow and pass its {SCALER_FILE} as normalize_params"
            ),
        )
        .into());
    }
    let opts = WriteOptions::from_config(&cfg.output)?;
    if opts.format == OutputFormat::Csv {
        return Err(Error::config(
            "preprocessing.normalize_features",
            "CSV output has no file metadata to keep the scaler parameters in; write parquet or ipc",
        )
        .into());
    }
    let params = load_params(Path::new(&pre.normalize_params), &pre.normalize_columns)?;
    let stage = params.clone();
    let factory: pipeline_core::StageFactory =
        Arc::new(move || Ok(Box::new(ScaleStage::new(stage.clone())) as Box<dyn Stage>));
    Ok(Some((
        factory,
        Plan {
            out: out.to_path_buf(),
            params: Params::Given(params),
            opts,
            threads: rewrite_threads(cfg),
        },
    )))
}

/// The columns a fit covers: `normalize_columns`, else the feature stage's output.
fn fit_columns(job: &Job) -> anyhow::Result<Columns> {
    let cfg = &job.config.preprocessing;
    if !cfg.normalize_columns.is_empty() {
        return Ok(Columns::Named(cfg.normalize_columns.clone()));
    }
    let features = job
        .stages
        .iter()
        .any(|f| f().is_ok_and(|s| s.name() == "features"));
    let names = if features {
        pipeline_prep::FeatureStage::new(pipeline_prep::feature_config(cfg))?
            .output_columns()
            .to_vec()
    } else {
        Vec::new()
    };
    if names.is_empty() {
        return Err(Error::config(
            "preprocessing.normalize_columns",
            "normalize_features is on but the run adds no feature columns (--no-features, or \
             every feature switch off); name the columns to scale",
        )
        .into());
    }
    Ok(Columns::Features(names))
}

/// Reads a `scaler.json`, keeping only `only` (when not empty; each must be in it).
fn load_params(path: &Path, only: &[String]) -> anyhow::Result<ScalerParams> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(path, e))
        .context("cannot read preprocessing.normalize_params")?;
    let mut params = ScalerParams::from_json(&text)
        .with_context(|| format!("preprocessing.normalize_params: {}", path.display()))?;
    if !only.is_empty() {
        if let Some(c) = only
            .iter()
            .find(|c| !params.columns.iter().any(|p| p.column == **c))
        {
            return Err(Error::config(
                "preprocessing.normalize_columns",
                format!("`{c}` has no parameters in {}", path.display()),
            )
            .into());
        }
        params.columns.retain(|p| only.contains(&p.column));
    }
    Ok(params)
}

/// Files rewritten at once. Each rewrite holds about one row group (Parquet keeps about
/// three times the row-group budget in memory while encoding, as measured for the sinks in
/// `job.rs`), so the count is capped by a quarter of the memory limit per row-group budget,
/// and by the worker count.
fn rewrite_threads(cfg: &Config) -> usize {
    let per_file = cfg.output.row_group_bytes.0.max(1).saturating_mul(4);
    let by_memory = usize::try_from(cfg.pipeline.memory_limit.0 / per_file).unwrap_or(1);
    crate::settings::workers(cfg).min(by_memory).max(1)
}

impl Plan {
    /// Runs the post-pass over `outputs` (the run's files) and returns the extra outputs
    /// (`scaler.json`). Returns early, leaving the rest for `--resume`, when `cancel` is set.
    pub fn apply(&self, outputs: &[PathBuf], cancel: &AtomicBool) -> anyhow::Result<Vec<PathBuf>> {
        // Path order, not the engine's commit order: the fit (P² quartiles above all) then
        // does not depend on which worker finished first.
        let mut files: Vec<&PathBuf> = outputs
            .iter()
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "parquet" || e == "arrow")
            })
            .collect();
        files.sort();
        if cancel.load(Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        if files.is_empty() {
            tracing::warn!("normalize_features: the run wrote no rows, nothing to scale");
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        let mut done = Vec::with_capacity(files.len());
        let mut earlier: Option<ScalerParams> = None;
        for f in &files {
            let value = pipeline_io::file_metadata_value(f, SCALER_METADATA_KEY)?;
            if let Some(v) = &value {
                let p = ScalerParams::from_json(v)
                    .with_context(|| format!("{}: {SCALER_METADATA_KEY}", f.display()))?;
                if earlier.as_ref().is_some_and(|e| *e != p) {
                    return Err(Error::Usage(format!(
                        "{} carries other scaler parameters than the files before it; run \
                         again without --resume",
                        f.display()
                    ))
                    .into());
                }
                earlier = Some(p);
            }
            done.push(value.is_some());
        }
        let params = match (earlier, &self.params) {
            (Some(p), Params::Given(g)) if p != *g => {
                return Err(Error::Usage(
                    "the output is already scaled with other parameters than normalize_params; \
                     run again without --resume"
                        .into(),
                )
                .into());
            }
            (Some(p), _) => {
                tracing::info!(
                    scaled = done.iter().filter(|d| **d).count(),
                    files = files.len(),
                    "normalize_features: finishing an interrupted post-pass"
                );
                p
            }
            (None, Params::Given(g)) => g.clone(),
            (None, Params::Fit(method, columns)) => {
                match fit(&files, *method, columns, self.threads, cancel)? {
                    Some(p) => p,
                    None => return Ok(Vec::new()),
                }
            }
        };
        let fitted = started.elapsed().as_secs_f64();
        // The parameters are on disk before any file changes, so an interrupted rewrite can
        // always be completed with the same ones.
        let json_path = self.out.join(SCALER_FILE);
        write_atomic(&json_path, &serde_json::to_string_pretty(&params)?)?;
        let todo: Vec<&Path> = files
            .iter()
            .zip(&done)
            .filter(|(_, d)| !**d)
            .map(|(f, _)| f.as_path())
            .collect();
        let in_stream = matches!(self.params, Params::Given(_));
        rewrite_all(&todo, &params, in_stream, &self.opts, self.threads, cancel)?;
        tracing::info!(
            files = todo.len(),
            fit_seconds = fitted,
            seconds = started.elapsed().as_secs_f64(),
            "normalize_features: output scaled"
        );
        Ok(vec![json_path])
    }
}

/// Runs `work` on every file, `threads` files at a time, and returns the results in file
/// order; `None` when `cancel` was set before every file was done. The first error stops
/// the other threads after their current file.
fn per_file<T: Send>(
    files: &[&Path],
    threads: usize,
    cancel: &AtomicBool,
    work: &(dyn Fn(&Path) -> anyhow::Result<T> + Sync),
) -> anyhow::Result<Option<Vec<T>>> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<anyhow::Result<T>>>> =
        Mutex::new(files.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, files.len().max(1)) {
            s.spawn(|| {
                while !cancel.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(f) = files.get(i) else { return };
                    let r = work(f);
                    if r.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(files.len());
    // Files left undone (cancelled, or stopped by an error) have no result; the first error
    // in file order is returned.
    for r in results.into_iter().flatten() {
        out.push(r?);
    }
    Ok((out.len() == files.len()).then_some(out))
}

/// A fit of some columns, and which of them the files had.
type PartFit = (ScalerFit, Vec<bool>);

/// Fits `method` over every file, decoding only the columns to scale. Z-score and min-max
/// fit each file on its own, in parallel, and merge the fits in path order (so the result
/// does not depend on the thread count); robust scaling's P² estimators cannot be merged,
/// so each sees its column's values in path order, the columns split between threads.
/// `None` when cancelled.
fn fit(
    files: &[&PathBuf],
    method: ScaleMethod,
    columns: &Columns,
    threads: usize,
    cancel: &AtomicBool,
) -> anyhow::Result<Option<ScalerParams>> {
    let schema = pipeline_io::file_schema(files[0])?;
    let names: Vec<String> = match columns {
        Columns::Named(n) => n.clone(),
        Columns::Features(n) => n
            .iter()
            .filter(|c| {
                schema
                    .field_with_name(c)
                    .is_ok_and(|f| f.data_type() == &DataType::Float64)
            })
            .cloned()
            .collect(),
    };
    if names.is_empty() {
        return Err(Error::config(
            "preprocessing.normalize_columns",
            "none of the feature columns in the output is Float64; name the columns to scale",
        )
        .into());
    }
    let paths: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
    let mut seen = vec![false; names.len()];
    let params = if method == ScaleMethod::Robust {
        // One thread per group of columns, each reading its columns of every file in path
        // order: the columns are independent, so the result does not depend on the grouping.
        let group = names.len().div_ceil(threads.max(1));
        let fits: Vec<anyhow::Result<Option<PartFit>>> = std::thread::scope(|s| {
            let handles: Vec<_> = names
                .chunks(group)
                .map(|cols| {
                    let paths = &paths;
                    s.spawn(move || {
                        let mut acc = ScalerFit::new(cols, method);
                        let mut seen = vec![false; cols.len()];
                        for f in paths {
                            if cancel.load(Ordering::SeqCst) {
                                return Ok(None);
                            }
                            for (s, has) in seen.iter_mut().zip(feed(f, cols, &mut acc)?) {
                                *s |= has;
                            }
                        }
                        Ok(Some((acc, seen)))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(anyhow::anyhow!("normalize_features: a fit thread panicked"))
                    })
                })
                .collect()
        });
        let mut columns = Vec::with_capacity(names.len());
        let mut k = 0;
        for fit in fits {
            let Some((acc, has)) = fit? else {
                return Ok(None);
            };
            for h in has {
                seen[k] = h;
                k += 1;
            }
            columns.extend(acc.finish().columns);
        }
        ScalerParams { method, columns }
    } else {
        // Each file fitted on its own, in parallel; the fits merged in path order.
        let parts = per_file(&paths, threads, cancel, &|f| {
            let mut part = ScalerFit::new(&names, method);
            let has = feed(f, &names, &mut part)?;
            Ok((part, has))
        })?;
        let Some(parts) = parts else { return Ok(None) };
        let mut acc = ScalerFit::new(&names, method);
        for (part, has) in parts {
            acc.merge(&part)?;
            for (s, h) in seen.iter_mut().zip(has) {
                *s |= h;
            }
        }
        acc.finish()
    };
    if let Some((n, _)) = names.iter().zip(&seen).find(|(_, s)| !**s) {
        return Err(Error::config(
            "preprocessing.normalize_columns",
            format!("`{n}` is not a column of the output"),
        )
        .into());
    }
    Ok(Some(params))
}

/// Feeds the columns `cols` of one file into `acc`; returns which of them the file has.
fn feed(f: &Path, cols: &[String], acc: &mut ScalerFit) -> anyhow::Result<Vec<bool>> {
    let schema = pipeline_io::file_schema(f)?;
    for batch in pipeline_io::file_batches(f, Some(cols))? {
        acc.update(&batch?)
            .with_context(|| format!("normalize_features: {}", f.display()))?;
    }
    Ok(cols.iter().map(|n| schema.index_of(n).is_ok()).collect())
}

/// Rewrites `files` with the parameters applied (or, when the run already applied them in
/// stream, with only the metadata added: every column chunk copied as it is), `threads` at a
/// time; stops between files when `cancel` is set.
fn rewrite_all(
    files: &[&Path],
    params: &ScalerParams,
    in_stream: bool,
    opts: &WriteOptions,
    threads: usize,
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    let meta = [(SCALER_METADATA_KEY.to_string(), params.to_json())];
    let columns: Vec<String> = if in_stream {
        Vec::new()
    } else {
        params.columns.iter().map(|c| c.column.clone()).collect()
    };
    per_file(files, threads, cancel, &|f| {
        pipeline_io::rewrite_columns(f, opts, &meta, &columns, &mut |b| params.apply(&b))
            .with_context(|| format!("normalize_features: cannot rewrite {}", f.display()))
    })?;
    Ok(())
}

/// Writes `text` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = pipeline_io::temp_path(path);
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    use arrow_array::{Float64Array, RecordBatch, StringArray, UInt64Array};
    use arrow_schema::{Field, Schema};
    use pipeline_core::Chunk;

    fn job(cfg: Config, out: &Path) -> Job {
        Job {
            command: "run",
            config: cfg,
            inputs: Vec::new(),
            stages: Vec::new(),
            output: Output::Dataset(out.to_path_buf()),
            resume: false,
            shard: None,
            quiet: true,
            checkpoint_every: None,
            abort_after_segment: None,
        }
    }

    fn normalizing(columns: &[&str]) -> Config {
        let mut cfg = Config::default();
        cfg.preprocessing.normalize_features = true;
        cfg.preprocessing.normalize_columns = columns.iter().map(|c| c.to_string()).collect();
        cfg
    }

    /// Writes `files` Parquet files of `rows` rows each: `x` = row number, `s` = text.
    fn write_files(dir: &Path, files: u64, rows: u64) -> Vec<PathBuf> {
        write_files_through(dir, files, rows, &[])
    }

    /// As [`write_files`], with the rows passed through `stages` first (as a run does).
    fn write_files_through(
        dir: &Path,
        files: u64,
        rows: u64,
        stages: &[pipeline_core::StageFactory],
    ) -> Vec<PathBuf> {
        let opts = WriteOptions {
            durable: false,
            ..WriteOptions::default()
        };
        (0..files)
            .map(|k| {
                let path = dir.join(format!("part-{k}.parquet"));
                let schema = Arc::new(Schema::new(vec![
                    Field::new("x", DataType::Float64, true),
                    Field::new("s", DataType::Utf8, true),
                ]));
                let start = k * rows;
                let batch = RecordBatch::try_new(
                    schema,
                    vec![
                        Arc::new(Float64Array::from_iter_values(
                            (start..start + rows).map(|v| v as f64),
                        )),
                        Arc::new(StringArray::from_iter_values(
                            (0..rows).map(|i| format!("r{i}")),
                        )),
                    ],
                )
                .unwrap();
                let chunk = Chunk::with_lines(
                    batch,
                    0,
                    0,
                    UInt64Array::from_iter_values(start..start + rows),
                )
                .unwrap();
                let mut chunks = vec![chunk];
                for f in stages {
                    let mut stage = f().unwrap();
                    chunks = pipeline_core::run_stage(stage.as_mut(), chunks).unwrap().0;
                }
                let mut sink = pipeline_io::create_file_sink(&path, &opts).unwrap();
                for c in &chunks {
                    sink.write(c).unwrap();
                }
                sink.finish().unwrap();
                path
            })
            .collect()
    }

    fn xs(files: &[PathBuf]) -> Vec<f64> {
        files
            .iter()
            .flat_map(|f| pipeline_io::file_batches(f, None).unwrap())
            .flat_map(|b| {
                b.unwrap()
                    .column(0)
                    .as_primitive::<Float64Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn settings_are_checked_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        // Off: no plan, and a stale scaler.json of an earlier run goes.
        std::fs::write(dir.path().join(SCALER_FILE), "{}").unwrap();
        assert!(
            plan(&mut job(Config::default(), dir.path()))
                .unwrap()
                .is_none()
        );
        assert!(!dir.path().join(SCALER_FILE).exists());
        // On with no feature stage and no columns: nothing to scale is an error.
        let e = plan(&mut job(normalizing(&[]), dir.path())).unwrap_err();
        assert!(e.to_string().contains("normalize_columns"), "{e}");
        // CSV output is refused.
        let mut cfg = normalizing(&["x"]);
        cfg.output.format = OutputFormat::Csv;
        let e = plan(&mut job(cfg, dir.path())).unwrap_err();
        assert!(e.to_string().contains("CSV"), "{e}");
        // A sharded fit is refused.
        let mut j = job(normalizing(&["x"]), dir.path());
        j.shard = Some((0, 2));
        let e = plan(&mut j).unwrap_err();
        assert!(e.to_string().contains("--shard 0/2"), "{e}");
        // A missing parameter file fails before the run.
        let mut cfg = normalizing(&[]);
        cfg.preprocessing.normalize_params = dir.path().join("nope.json").display().to_string();
        assert!(plan(&mut job(cfg, dir.path())).is_err());
        // Other commands and --discard do not normalise.
        let mut j = job(normalizing(&["x"]), dir.path());
        j.command = "convert";
        assert!(plan(&mut j).unwrap().is_none());
        let mut j = job(normalizing(&["x"]), dir.path());
        j.output = Output::Discard;
        assert!(plan(&mut j).unwrap().is_none());
    }

    #[test]
    fn fit_then_rewrite_every_file_and_reapply() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let files = write_files(&data, 3, 1000);
        let p = plan(&mut job(normalizing(&["x"]), dir.path()))
            .unwrap()
            .unwrap();
        let cancel = AtomicBool::new(false);
        let extra = p.apply(&files, &cancel).unwrap();
        assert_eq!(extra, vec![dir.path().join(SCALER_FILE)]);
        let params = ScalerParams::from_json(&std::fs::read_to_string(&extra[0]).unwrap()).unwrap();
        assert_eq!(params.columns[0].count, 3000);
        for f in &files {
            let v = pipeline_io::file_metadata_value(f, SCALER_METADATA_KEY)
                .unwrap()
                .unwrap();
            assert_eq!(ScalerParams::from_json(&v).unwrap(), params);
        }
        // x was 0..3000: z-scored, mean 0 and (population) std 1.
        let x = xs(&files);
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(
            mean.abs() < 1e-9 && (var - 1.0).abs() < 1e-9,
            "{mean} {var}"
        );

        // A second run of the post-pass (resume) leaves scaled files alone.
        let before = std::fs::read(&files[0]).unwrap();
        p.apply(&files, &cancel).unwrap();
        assert_eq!(std::fs::read(&files[0]).unwrap(), before);

        // Re-applying the saved parameters: a scale stage joins the run's stages, and the
        // post-pass adds the metadata to what it wrote; the values are the same.
        let other = dir.path().join("other");
        let data2 = other.join("data");
        std::fs::create_dir_all(&data2).unwrap();
        let mut cfg = normalizing(&[]);
        cfg.preprocessing.normalize_params = extra[0].display().to_string();
        let mut j = job(cfg, &other);
        let p2 = plan(&mut j).unwrap().unwrap();
        assert_eq!(j.stages.len(), 1);
        assert_eq!(j.stages[0]().unwrap().name(), "scale");
        let files2 = write_files_through(&data2, 3, 1000, &j.stages);
        let copied = std::fs::read(&files2[1]).unwrap();
        p2.apply(&files2, &cancel).unwrap();
        assert_eq!(xs(&files2), x);
        for f in &files2 {
            let v = pipeline_io::file_metadata_value(f, SCALER_METADATA_KEY)
                .unwrap()
                .unwrap();
            assert_eq!(ScalerParams::from_json(&v).unwrap(), params);
        }
        // Only the footer changed: the column chunks were copied as they were.
        let now = std::fs::read(&files2[1]).unwrap();
        let body = copied.len().min(now.len()) / 2;
        assert_eq!(copied[..body], now[..body]);
    }

    #[test]
    fn a_half_done_post_pass_is_completed_with_the_same_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_files(dir.path(), 2, 100);
        let mut cfg = normalizing(&["x"]);
        cfg.preprocessing.normalize_method = "minmax".into();
        let p = plan(&mut job(cfg, dir.path())).unwrap().unwrap();
        // Scale only the first file, as if the post-pass had been interrupted after it.
        let params = fit(
            &files.iter().collect::<Vec<_>>(),
            ScaleMethod::MinMax,
            &Columns::Named(vec!["x".into()]),
            2,
            &AtomicBool::new(false),
        )
        .unwrap()
        .unwrap();
        rewrite_all(
            &[files[0].as_path()],
            &params,
            false,
            &p.opts,
            1,
            &AtomicBool::new(false),
        )
        .unwrap();
        p.apply(&files, &AtomicBool::new(false)).unwrap();
        let x = xs(&files);
        assert_eq!(x.first(), Some(&0.0));
        assert_eq!(x.last(), Some(&1.0));
        assert!(x.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn cancel_and_bad_columns() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_files(dir.path(), 1, 10);
        let p = plan(&mut job(normalizing(&["x"]), dir.path()))
            .unwrap()
            .unwrap();
        assert!(p.apply(&files, &AtomicBool::new(true)).unwrap().is_empty());
        assert!(
            pipeline_io::file_metadata_value(&files[0], SCALER_METADATA_KEY)
                .unwrap()
                .is_none()
        );
        let p = plan(&mut job(normalizing(&["nope"]), dir.path()))
            .unwrap()
            .unwrap();
        let e = p.apply(&files, &AtomicBool::new(false)).unwrap_err();
        assert!(format!("{e:#}").contains("`nope` is not a column"), "{e:#}");
        // The same through the robust fit, whose columns are split between threads.
        let mut cfg = normalizing(&["x", "nope"]);
        cfg.preprocessing.normalize_method = "robust".into();
        cfg.pipeline.max_workers = 2;
        let p = plan(&mut job(cfg, dir.path())).unwrap().unwrap();
        let e = p.apply(&files, &AtomicBool::new(false)).unwrap_err();
        assert!(format!("{e:#}").contains("`nope` is not a column"), "{e:#}");
        let p = plan(&mut job(normalizing(&["s"]), dir.path()))
            .unwrap()
            .unwrap();
        assert!(p.apply(&files, &AtomicBool::new(false)).is_err());
        // Nothing was rewritten by the failed attempts.
        assert!(
            pipeline_io::file_metadata_value(&files[0], SCALER_METADATA_KEY)
                .unwrap()
                .is_none()
        );
    }
}
