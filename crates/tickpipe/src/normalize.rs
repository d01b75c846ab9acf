//! `[preprocessing] normalize_features`: z-score, min-max or robust (median/IQR) scaling of
//! feature columns, as a post-pass over the files a run wrote. The facade orchestrates; the
//! fit and its merge live in pipeline-prep ([`ScalerFit`], [`ScalerParams`]) and the column
//! rewrite in pipeline-io ([`pipeline_io::rewrite_columns`]).
//!
//! The run streams its input once (stdin works) and writes its output as usual. Then:
//! 1. the parameters are fitted in one streaming pass over the output files, decoding only
//!    the columns to scale (mean and variance, min/max, P² quartiles); with
//!    `normalize_params` (a `scaler.json` of an earlier run) they are known up front instead,
//!    a [`ScaleStage`] scales the rows during the run, and step 3 only adds the metadata,
//!    copying every column chunk as it is;
//! 2. they are written to `OUT/scaler.json`;
//! 3. every output file is rewritten with the parameters in its metadata under
//!    [`SCALER_METADATA_KEY`] (same writer settings and row groups, the unscaled Parquet
//!    column chunks copied as they are, temp file + rename).
//!
//! Memory stays bounded: both passes hold one batch (and the rewrite one row group) per
//! thread. The post-pass is resumable: after an interruption, `--resume` finds the files
//! that already carry the key, takes the parameters from them and rewrites only the rest.
//!
//! Sharded runs (`shard` with N > 1) are refused unless `normalize_params` is set: each
//! shard would otherwise fit its own parameters and the shards' outputs would not agree.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_schema::DataType;
use pipeline_core::{Config, Error, OutputFormat, Result, Stage, StageFactory};
use pipeline_io::WriteOptions;
use pipeline_parallel::Runtime;
use pipeline_prep::{SCALER_METADATA_KEY, ScaleMethod, ScaleStage, ScalerFit, ScalerParams};

/// The fitted parameters' file inside a dataset output folder.
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
pub(crate) struct Plan {
    out: PathBuf,
    params: Params,
    opts: WriteOptions,
    threads: usize,
}

/// What a run needs to know to plan its normalisation.
pub(crate) struct Request<'a> {
    /// The run's configuration.
    pub config: &'a Config,
    /// The dataset output folder (`None`: the run writes no dataset).
    pub out: Option<&'a Path>,
    /// `Some((k, n))` for shard k of n.
    pub shard: Option<(usize, usize)>,
    /// Whether the run has the feature stage.
    pub features: bool,
    /// A live (follow) run: its input never ends, so nothing can be fitted.
    pub live: bool,
    /// Worker threads of the run (bounds the post-pass threads).
    pub workers: usize,
}

/// Checks the normalisation settings before the run reads any input (so a bad setting costs
/// nothing, and stdin is not consumed by a run that then fails), and returns the plan and,
/// when the parameters are known up front, the stage that scales rows during the run; `None`
/// when nothing is to be normalised.
pub(crate) fn plan(req: &Request<'_>) -> Result<Option<(Plan, Option<StageFactory>)>> {
    let cfg = &req.config.preprocessing;
    let Some(out) = req.out else {
        if cfg.normalize_features {
            tracing::warn!("normalize_features: nothing is written, nothing to scale");
        }
        return Ok(None);
    };
    if !cfg.normalize_features {
        return Ok(None);
    }
    let opts = WriteOptions::from_config(&req.config.output)?;
    if opts.format == OutputFormat::Csv {
        return Err(Error::config(
            "preprocessing.normalize_features",
            "CSV output has no file metadata to keep the scaler parameters in; write parquet or ipc",
        ));
    }
    let threads = rewrite_threads(req.config, req.workers);
    if cfg.normalize_params.is_empty() {
        if req.live {
            return Err(Error::config(
                "preprocessing.normalize_params",
                format!(
                    "--follow cannot fit scaling parameters (its input has no end); fit once \
                     with a run without --follow and pass its {SCALER_FILE} as normalize_params"
                ),
            ));
        }
        if let Some((k, n)) = req.shard.filter(|s| s.1 > 1) {
            return Err(Error::config(
                "preprocessing.normalize_params",
                format!(
                    "--shard {k}/{n} would fit separate parameters per shard; fit once (a run \
                     without --shard) and pass its {SCALER_FILE} as normalize_params"
                ),
            ));
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
        let columns = fit_columns(req)?;
        return Ok(Some((
            Plan {
                out: out.to_path_buf(),
                params: Params::Fit(method, columns),
                opts,
                threads,
            },
            None,
        )));
    }
    let params = load_params(Path::new(&cfg.normalize_params), &cfg.normalize_columns)?;
    // Known before the run: the rows are scaled on their way to the sink (after the feature
    // stage), and the post-pass only adds the metadata.
    let stage = params.clone();
    let factory: StageFactory =
        Arc::new(move || Ok(Box::new(ScaleStage::new(stage.clone())) as Box<dyn Stage>));
    Ok(Some((
        Plan {
            out: out.to_path_buf(),
            params: Params::Given(params),
            opts,
            threads,
        },
        Some(factory),
    )))
}

/// The columns a fit covers: `normalize_columns`, else the feature stage's output.
fn fit_columns(req: &Request<'_>) -> Result<Columns> {
    let cfg = &req.config.preprocessing;
    if !cfg.normalize_columns.is_empty() {
        return Ok(Columns::Named(cfg.normalize_columns.clone()));
    }
    let names = if req.features {
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
        ));
    }
    Ok(Columns::Features(names))
}

/// Reads a `scaler.json`, keeping only `only` (when not empty; each must be in it).
fn load_params(path: &Path, only: &[String]) -> Result<ScalerParams> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(
            "preprocessing.normalize_params",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let mut params = ScalerParams::from_json(&text).map_err(|e| {
        Error::config(
            "preprocessing.normalize_params",
            format!("{}: {e}", path.display()),
        )
    })?;
    if !only.is_empty() {
        if let Some(c) = only
            .iter()
            .find(|c| !params.columns.iter().any(|p| p.column == **c))
        {
            return Err(Error::config(
                "preprocessing.normalize_columns",
                format!("`{c}` has no parameters in {}", path.display()),
            ));
        }
        params.columns.retain(|p| only.contains(&p.column));
    }
    Ok(params)
}

/// Files rewritten at once. Each rewrite holds about one row group (Parquet keeps about
/// three times the row-group budget in memory while encoding, as measured for the sinks), so
/// the count is capped by a quarter of the memory limit per row-group budget, and by the
/// worker count.
fn rewrite_threads(cfg: &Config, workers: usize) -> usize {
    let per_file = cfg.output.row_group_bytes.0.max(1).saturating_mul(4);
    let by_memory = usize::try_from(cfg.pipeline.memory_limit.0 / per_file).unwrap_or(1);
    workers.min(by_memory).max(1)
}

impl Plan {
    /// Runs the post-pass over `outputs` (the run's files) and returns the extra outputs
    /// (`scaler.json`). Returns early, leaving the rest for `--resume`, when `cancel` is set.
    pub(crate) fn apply(
        &self,
        outputs: &[PathBuf],
        runtime: &Runtime,
        cancel: &AtomicBool,
        on_file: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<PathBuf>> {
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
                let p = ScalerParams::from_json(v).map_err(|e| {
                    Error::Usage(format!("{}: {SCALER_METADATA_KEY}: {e}", f.display()))
                })?;
                if earlier.as_ref().is_some_and(|e| *e != p) {
                    return Err(Error::Usage(format!(
                        "{} carries other scaler parameters than the files before it; run \
                         again without --resume",
                        f.display()
                    )));
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
                ));
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
                match fit(&files, *method, columns, self.threads, runtime, cancel)? {
                    Some(p) => p,
                    None => return Ok(Vec::new()),
                }
            }
        };
        let fitted = started.elapsed().as_secs_f64();
        // The parameters are on disk before any file changes, so an interrupted rewrite can
        // always be completed with the same ones.
        let json_path = self.out.join(SCALER_FILE);
        let json = serde_json::to_string_pretty(&params)
            .map_err(|e| Error::Internal(format!("scaler parameters: {e}")))?;
        crate::output::write_atomic(&json_path, &json)?;
        let todo: Vec<&Path> = files
            .iter()
            .zip(&done)
            .filter(|(_, d)| !**d)
            .map(|(f, _)| f.as_path())
            .collect();
        let in_stream = matches!(self.params, Params::Given(_));
        rewrite_all(
            &todo,
            &params,
            in_stream,
            &self.opts,
            self.threads,
            (runtime, cancel),
            on_file,
        )?;
        tracing::info!(
            files = todo.len(),
            fit_seconds = fitted,
            seconds = started.elapsed().as_secs_f64(),
            "normalize_features: output scaled"
        );
        Ok(vec![json_path])
    }
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
    runtime: &Runtime,
    cancel: &AtomicBool,
) -> Result<Option<ScalerParams>> {
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
        ));
    }
    let paths: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
    let mut seen = vec![false; names.len()];
    let params = if method == ScaleMethod::Robust {
        // One task per group of columns, each reading its columns of every file in path
        // order: the columns are independent, so the result does not depend on the grouping.
        let group = names.len().div_ceil(threads.max(1));
        let groups: Vec<&[String]> = names.chunks(group).collect();
        let fits = runtime.map(&groups, threads, cancel, &|cols: &&[String]| {
            let mut acc = ScalerFit::new(cols, method);
            let mut seen = vec![false; cols.len()];
            for f in &paths {
                if cancel.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                for (s, has) in seen.iter_mut().zip(feed(f, cols, &mut acc)?) {
                    *s |= has;
                }
            }
            Ok(Some((acc, seen)))
        })?;
        let Some(fits) = fits else { return Ok(None) };
        let mut columns = Vec::with_capacity(names.len());
        let mut k = 0;
        for fit in fits {
            let Some((acc, has)): Option<PartFit> = fit else {
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
        let parts = runtime.map(&paths, threads, cancel, &|f: &&Path| {
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
        ));
    }
    Ok(Some(params))
}

/// Feeds the columns `cols` of one file into `acc`; returns which of them the file has.
fn feed(f: &Path, cols: &[String], acc: &mut ScalerFit) -> Result<Vec<bool>> {
    let schema = pipeline_io::file_schema(f)?;
    for batch in pipeline_io::file_batches(f, Some(cols))? {
        acc.update(&batch?)
            .map_err(|e| Error::Usage(format!("normalize_features: {}: {e}", f.display())))?;
    }
    Ok(cols
        .iter()
        .map(|n| schema.column_with_name(n).is_some())
        .collect())
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
    (runtime, cancel): (&Runtime, &AtomicBool),
    on_file: &(dyn Fn(usize) + Sync),
) -> Result<()> {
    let meta = [(SCALER_METADATA_KEY.to_string(), params.to_json())];
    let columns: Vec<String> = if in_stream {
        Vec::new()
    } else {
        params.columns.iter().map(|c| c.column.clone()).collect()
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    runtime.map(files, threads, cancel, &|f: &&Path| {
        let r = pipeline_io::rewrite_columns(f, opts, &meta, &columns, &mut |b| params.apply(&b))?;
        on_file(done.fetch_add(1, Ordering::SeqCst) + 1);
        Ok(r)
    })?;
    Ok(())
}
