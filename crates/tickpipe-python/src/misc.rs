//! `inspect`, `gen_data` and `cache_stats`: what the CLI's `inspect --json`, `xtask
//! gen-data` and `cache stats --json` print, as JSON for the Python side to load.

use std::path::{Path, PathBuf};

use pipeline_core::{Error, Result};
use pyo3::prelude::*;

use crate::errors::to_py;

fn json(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("serialisation: {e}")))
}

fn inspect_json(paths: &[String], config: Option<&str>) -> Result<String> {
    let cfg = crate::config::from_json_or_default(config)?;
    let opts = pipeline_io::ReadOptions::from_config(&cfg)?;
    let mut outputs = Vec::new();
    let mut rest = Vec::new();
    for a in paths {
        let p = Path::new(a);
        match p.is_dir().then(|| tickpipe::output_status(p)).transpose()? {
            Some(Some(status)) => {
                outputs.push(serde_json::json!({ "path": a, "output": status }));
            }
            _ => rest.push(a.clone()),
        }
    }
    if rest.is_empty() {
        return json(&serde_json::json!({ "files": [], "totals": null, "outputs": outputs }));
    }
    let inputs = pipeline_io::expand_inputs(&rest, &cfg.input.file_pattern)?;
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    let mut first_error = None;
    for input in &inputs {
        match pipeline_io::inspect(input, &opts) {
            Ok(r) => reports.push(r),
            Err(e) => {
                errors.push(serde_json::json!({
                    "file": input.display_name(),
                    "error": e.to_string(),
                }));
                first_error.get_or_insert(e);
            }
        }
    }
    if reports.is_empty()
        && let Some(e) = first_error
    {
        // Nothing could be inspected: the (first) reason is the answer.
        return Err(e);
    }
    let totals = pipeline_io::DatasetTotals::from_reports(&reports, errors.len());
    json(&serde_json::json!({
        "files": reports,
        "totals": totals,
        "outputs": outputs,
        "errors": errors,
    }))
}

/// What each input is (format, compression, layout, rows, time range, schema) and the state
/// of tickpipe output folders, as JSON.
#[pyfunction]
#[pyo3(signature = (paths, config = None))]
pub(crate) fn inspect(
    py: Python<'_>,
    paths: Vec<String>,
    config: Option<&str>,
) -> PyResult<String> {
    py.detach(move || inspect_json(&paths, config.map(str::to_owned).as_deref()))
        .map_err(|e| to_py(py, e))
}

/// Generates synthetic TAQ data with labelled anomalies (`xtask gen-data`) into `out`;
/// returns the summary as JSON.
#[pyfunction]
#[pyo3(signature = (
    out, *, rows = 1_000_000, symbols = 5, years = 5, days = None, layout = "single",
    compression = "none", seed = 42,
))]
#[allow(clippy::too_many_arguments)] // Keyword arguments of one Python function.
pub(crate) fn gen_data(
    py: Python<'_>,
    out: PathBuf,
    rows: u64,
    symbols: usize,
    years: u32,
    days: Option<u32>,
    layout: &str,
    compression: &str,
    seed: u64,
) -> PyResult<String> {
    let cfg = layout
        .parse::<pipeline_io::Layout>()
        .and_then(|layout| {
            Ok(pipeline_io::GenConfig {
                rows,
                symbols,
                years,
                days,
                seed,
                layout,
                compression: compression.parse::<pipeline_io::Codec>()?,
                ..pipeline_io::GenConfig::default()
            })
        })
        .map_err(|e| to_py(py, e))?;
    py.detach(move || pipeline_io::generate_to_dir(&cfg, &out).and_then(|s| json(&s)))
        .map_err(|e| to_py(py, e))
}

/// The statistics of the cache in `dir` (a run's output folder, or a cache folder), as JSON.
#[pyfunction]
pub(crate) fn cache_stats(py: Python<'_>, dir: PathBuf) -> PyResult<String> {
    py.detach(move || {
        let inner = dir.join(tickpipe::CACHE_DIR);
        let cache = if inner.is_dir() { inner } else { dir.clone() };
        if !cache.join("cache.redb").exists() {
            return Err(Error::Usage(format!(
                "{} holds no tickpipe cache",
                dir.display()
            )));
        }
        let cfg = pipeline_core::Config::default();
        let manager = pipeline_cache::CacheManager::builder()
            .dir(&cache)
            .disk_bytes(cfg.pipeline.cache_max_size.0)
            .build()
            .map_err(Error::from)?;
        let stats = manager.get_stats().map_err(Error::from)?;
        json(&stats)
    })
    .map_err(|e| to_py(py, e))
}
