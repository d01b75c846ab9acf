//! `tickpipe run --follow`: tail one growing file (or stdin) through the cleaning and feature
//! stages on the streaming executor.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use pipeline_core::{Config, Error, SourceTable};
use pipeline_io::{InputFile, ReadOptions, WriteOptions};
use pipeline_stream::Pipeline;

use crate::Outcome;
use crate::args::RunArgs;
use crate::job::{StageSet, pipeline_stages};
use crate::summary::RunSummary;

/// Current size of a followed file (0 for stdin).
trait SizeNow {
    fn size_now(&self) -> u64;
}

impl SizeNow for InputFile {
    fn size_now(&self) -> u64 {
        if self.is_stdin() {
            0
        } else {
            std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
        }
    }
}

/// `run --follow`: tail one growing file (or stdin) through the cleaning and feature stages
/// on the streaming executor, flushing at least every `--flush-ms`, until Ctrl-C.
pub fn follow(args: &RunArgs, cfg: Config, quiet: bool) -> anyhow::Result<Outcome> {
    let inputs = &args.input.inputs;
    if inputs.len() != 1 {
        return Err(Error::Usage("--follow takes exactly one input file (or -)".into()).into());
    }
    let read_opts = ReadOptions::from_config(&cfg)?;
    let flush = Duration::from_millis(args.flush_ms.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let s = stop.clone();
        // Ctrl-C ends the follow loop; the pipeline then flushes and finishes its files.
        let _ = ctrlc::set_handler(move || s.store(true, std::sync::atomic::Ordering::SeqCst));
    }
    let input = if inputs[0] == "-" {
        InputFile::stdin()
    } else {
        InputFile::new(&inputs[0])
    };
    let mut table = SourceTable::default();
    let id = table.add(input.display_name());
    let source = if input.is_stdin() {
        pipeline_io::open_source(&input, id, &read_opts)?
    } else {
        pipeline_io::open_follow(&input.path, id, &read_opts, flush, stop.clone())?
    };
    let mut pipeline = Pipeline::new(source).flush_every(flush).cancel(stop);
    // No reorder buffer in live mode: it would hold rows for the allowed lateness, longer
    // than the flush interval promises.
    let set = StageSet {
        reorder: false,
        clean: true,
        features: true,
    };
    let normalize = crate::normalize::plan_follow(&cfg, &args.out)?;
    for f in pipeline_stages(&cfg.preprocessing, set)? {
        pipeline = pipeline.stage(f()?);
    }
    if let Some((scale, _)) = &normalize {
        pipeline = pipeline.stage(scale()?);
    }
    let data = args.out.join(crate::job::DATA_DIR);
    std::fs::create_dir_all(&data).map_err(|e| Error::io(&data, e))?;
    let write_opts = WriteOptions::from_config(&cfg.output)?;
    let q = args.out.join("quarantine.parquet");
    let report = pipeline
        .sink(pipeline_io::create_sink(&data, 0, &write_opts)?)
        .reject_sink(pipeline_io::create_quarantine_sink(&q, table)?)
        .run()?;
    let mut outputs = report.sink.files.clone();
    if let Some((_, plan)) = &normalize {
        // Following has stopped (Ctrl-C sets `stop`), so the metadata pass gets its own flag.
        outputs.extend(plan.apply(&report.sink.files, &AtomicBool::new(false))?);
    }
    let summary = RunSummary::new(
        "run --follow",
        &report.ledger,
        &report.stages,
        1,
        Vec::new(),
        input.size_now(),
        report.sink.bytes,
        report.wall.as_secs_f64(),
        outputs,
        [q].into_iter().filter(|p| p.exists()).collect(),
    );
    if !quiet {
        summary.print_human();
    }
    if let Some(path) = &args.summary_json {
        summary.write_json(path)?;
    }
    Ok(Outcome::Ok)
}
