//! Inputs → engine sources: expansion of files, folders, globs and stdin, and the
//! [`SourceSpec`] that opens (and on retries reopens) each one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pipeline_core::{Config, Error, Result, Source, SourcePosition, SourceTable};
use pipeline_io::{InputFile, ReadOptions};
use pipeline_parallel::{SortOptions, SortedSource, SourceSpec};

/// The expanded inputs of a run, in processing order.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    /// The files (`-` for stdin).
    pub files: Vec<InputFile>,
}

impl Inputs {
    /// Expands files, folders (walked with `[input] file_pattern`), glob patterns and `-`.
    pub fn expand(inputs: &[String], cfg: &Config) -> Result<Inputs> {
        Ok(Inputs {
            files: pipeline_io::expand_inputs(inputs, &cfg.input.file_pattern)?,
        })
    }
}

/// What describing the inputs found: the unified schema and the time zones the vendor
/// layouts name. A cluster plan keeps it, so that its tasks do not sniff every input again.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Described {
    /// The unified data schema; none when no input could be sniffed.
    pub schema: Option<arrow_schema::Schema>,
    /// Time zone per symbol, from the layouts that name one.
    pub zones: std::collections::BTreeMap<String, String>,
}

impl Described {
    /// Makes the inputs one dataset under this description: the reading options take the
    /// schema, and the zones become `[preprocessing] symbol_time_zones` for the symbols the
    /// user did not set.
    pub fn apply(&self, read: &mut ReadOptions, cfg: &mut Config) {
        if let Some(schema) = &self.schema {
            read.target_schema = Some(Arc::new(schema.clone()));
        }
        for (symbol, zone) in &self.zones {
            cfg.preprocessing
                .symbol_time_zones
                .entry(symbol.clone())
                .or_insert_with(|| zone.clone());
        }
    }
}

/// Describes the inputs once before any row is read (one sniff per file, in parallel) and
/// makes them one dataset: every source's chunks are cast and padded to the unified schema
/// (union by name, widened types, nulls where a file lacks a column), so every output file
/// has the same schema; and the time zones the vendor layouts name (LOBSTER: New York;
/// HistData, LEAN, Tardis: UTC) become `[preprocessing] symbol_time_zones` for the symbols the
/// user did not set. Streams (stdin, pipes) cannot be sniffed twice and are left out; their
/// chunks still conform to the schema of the files beside them.
pub(crate) fn describe(
    inputs: &Inputs,
    read: &mut ReadOptions,
    cfg: &mut Config,
) -> Result<Described> {
    let files: Vec<InputFile> = inputs
        .files
        .iter()
        .filter(|f| !f.is_stream())
        .cloned()
        .collect();
    let mut described = Described::default();
    if files.is_empty() {
        return Ok(described);
    }
    // An append takes the recorded inputs' description as one entry of the folder's cache.
    let info = pipeline_io::describe_dataset_cached(&files, read)?;
    for (file, e) in info.failed {
        // A deterministic error (a column mapping that names no column, a file without a
        // time column) stops the run here, before any row is read; any other fails its file
        // when the run opens it, with the same message, said once then.
        if e.stops_run() {
            return Err(e);
        }
        tracing::debug!("{file}: {e}");
    }
    if info.files.is_empty() && info.reused == 0 {
        return Ok(described);
    }
    described.schema = Some(info.schema.as_ref().clone());
    described.zones = info.zones;
    described.apply(read, cfg);
    Ok(described)
}

/// One source per input, registered in `table` (whose ids the quarantine file resolves).
pub(crate) fn source_specs(
    inputs: &Inputs,
    table: &mut SourceTable,
    opts: &ReadOptions,
    sort: Option<SortOptions>,
) -> Vec<SourceSpec> {
    inputs
        .files
        .iter()
        .map(|input| {
            let id = table.add(input.display_name());
            let (input, opts, sort) = (input.clone(), opts.clone(), sort.clone());
            let opened = Arc::new(AtomicBool::new(false));
            SourceSpec {
                // The engine (manifest, resume) knows an input by its canonical path, so a
                // run resumed from another working directory finds its inputs.
                name: crate::record::canonical(&input.path),
                size_bytes: input.size.unwrap_or(0),
                open: Arc::new(move || {
                    // A stream (stdin, a pipe) can be read once: a retry would find it at
                    // its end and "succeed" with the rows it missed. The first failure is
                    // the file's failure.
                    if input.is_stream() && opened.swap(true, Ordering::SeqCst) {
                        return Err(Error::Usage(format!(
                            "{name}: a stream (stdin or a pipe) cannot be read again after the \
                             error above; the rows after it are not in the output",
                            name = input.display_name()
                        )));
                    }
                    let src = pipeline_io::open_source(&input, id, &opts)?;
                    Ok(match &sort {
                        Some(s) => Box::new(SortedSource::new(src, s.clone())) as Box<dyn Source>,
                        None => src,
                    })
                }),
            }
        })
        .collect()
}

/// The source of a live run: the followed file (or stdin), yielding rows at least every
/// `flush` until `stop` is set, from the start or from where an earlier live run stopped
/// (`from`). The engine knows it by its canonical path, with the start byte when it
/// continues an earlier run (so the committed source and its continuation are two sources).
pub(crate) fn live_source_spec(
    input: &InputFile,
    table: &mut SourceTable,
    opts: &ReadOptions,
    (flush, from): (Duration, Option<SourcePosition>),
    stop: Arc<AtomicBool>,
) -> SourceSpec {
    let id = table.add(input.display_name());
    let mut name = crate::record::canonical(&input.path);
    if let Some(p) = from {
        name.push_str(&format!("@{}", p.offset));
    }
    let (input, opts) = (input.clone(), opts.clone());
    SourceSpec {
        name,
        size_bytes: input.size.unwrap_or(0),
        open: Arc::new(move || {
            pipeline_io::open_follow(&input.path, id, &opts, flush, stop.clone(), from)
        }),
    }
}
