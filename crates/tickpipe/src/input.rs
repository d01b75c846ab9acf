//! Inputs → engine sources: expansion of files, folders, globs and stdin, and the
//! [`SourceSpec`] that opens (and on retries reopens) each one.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use pipeline_core::{Config, Result, Source, SourceTable};
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
            let name = input.display_name();
            let id = table.add(name.clone());
            let (input, opts, sort) = (input.clone(), opts.clone(), sort.clone());
            SourceSpec {
                name,
                size_bytes: input.size.unwrap_or(0),
                open: Arc::new(move || {
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
/// `flush` until `stop` is set.
pub(crate) fn live_source_spec(
    input: &InputFile,
    table: &mut SourceTable,
    opts: &ReadOptions,
    flush: Duration,
    stop: Arc<AtomicBool>,
) -> SourceSpec {
    let name = input.display_name();
    let id = table.add(name.clone());
    let (input, opts) = (input.clone(), opts.clone());
    SourceSpec {
        name,
        size_bytes: input.size.unwrap_or(0),
        open: Arc::new(move || {
            pipeline_io::open_follow(&input.path, id, &opts, flush, stop.clone())
        }),
    }
}
