//! tickpipe as a library: one composition of the pipeline that the `tickpipe` CLI, the Python
//! package and distributed tasks all drive, as the `polars` crate composes `polars-*`.
//!
//! [`Pipeline::builder`] takes inputs (files, folders, globs, `-`), a [`Config`] and an
//! [`Output`]; [`PipelineBuilder::build`] checks everything that can be checked before a row
//! is read (configuration, reading and writing options, stage specs, normalisation settings,
//! inputs); [`Pipeline::run`] runs sources → stages → sinks on the parallel engine and returns
//! a [`RunReport`] (what `summary.json` holds); [`Pipeline::stream`] hands the output batches
//! to the caller instead, in bounded memory. The facade owns the policy the CLI used to hold:
//! inputs → sources, config → stages ([`StageSet`], bars), output policy (dataset,
//! quarantine, file numbering, writer budget), resume, live (follow) runs on the same engine,
//! and the normalisation post-pass.
//!
//! The stage crates come in behind features (default: all): `prep` (cleaning, features,
//! bars, normalisation), `stream` (the reorder buffer), `validate` (data-quality rules inline
//! and standalone, quality reports), `monitor` (resource sampling, live stage metrics,
//! alerts, `report.html`, `metrics.prom`) and `cache` (the two-tier cache of sniffed file
//! metadata). A run into a dataset folder leaves: `data/` (the dataset), `quarantine*.parquet`,
//! `quality.json`/`quality.html`, `report.html`, `metrics.prom`, `metrics.jsonl`, the run
//! record `_run.json`, the manifest `_manifest.redb`, `_cache/`, and `_SUCCESS` last.
//!
//! ```
//! use tickpipe::{Config, Output, Pipeline};
//! # fn main() -> Result<(), tickpipe::Error> {
//! # let dir = std::env::temp_dir().join("tickpipe-lib-doc");
//! # let _ = std::fs::remove_dir_all(&dir);
//! # let sample = pipeline_io::GenConfig { rows: 5_000, days: Some(2), ..Default::default() };
//! # pipeline_io::generate_to_dir(&sample, &dir.join("ticks"))?;
//! let report = Pipeline::builder()
//!     .inputs([dir.join("ticks/*.csv").display().to_string()])
//!     .config(Config::default())
//!     .output(Output::dataset(dir.join("out")))
//!     .build()?
//!     .run()?;
//! println!("{}", report.ledger); // read = written + quarantined + removed
//! assert_eq!(report.rows_read, 5_000);
//! # Ok(()) }
//! ```

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

mod builder;
mod caching;
pub mod cluster;
mod error;
mod input;
mod live;
mod lock;
mod monitoring;
#[cfg(feature = "prep")]
mod normalize;
mod output;
mod quality;
mod record;
#[cfg(feature = "prep")]
mod refeature;
mod report;
mod run;
mod settings;
mod stages;
mod stream;
#[cfg(feature = "prep")]
mod taq;

pub mod alloc;

pub use builder::{Pipeline, PipelineBuilder};
pub use caching::CACHE_DIR;
pub use lock::LOCK_FILE;
#[cfg(feature = "prep")]
pub use normalize::SCALER_FILE;
pub use output::{DATA_DIR, MANIFEST, NullSink, Output, QUARANTINE};
pub use pipeline_core::calendar::CalendarKind;
pub use pipeline_core::{Config, Error, Result};
pub use pipeline_parallel::{CommitFn, EngineEvent, ProgressFn, ProgressSnapshot, Runtime};
#[cfg(feature = "prep")]
pub use pipeline_prep::{BarEdge, BarSession, EmptyBars};
#[cfg(feature = "validate")]
pub use quality::suggest_rules;
pub use quality::{QUALITY_HTML, QUALITY_JSON, Validation, quality_verdict};
pub use record::{RUN_RECORD, RecordedInput, RunRecord};
#[cfg(feature = "prep")]
pub use refeature::FEATURES_METADATA_KEY;
pub use report::{FailedFile, LiveSpan, Refeatured, Reprocessed, RunReport, StageSummary};
pub use run::{Event, EventFn, OutputStatus, SUCCESS, output_status};
pub use settings::workers;
#[cfg(feature = "prep")]
pub use stages::session_bar_stage;
pub use stages::{StageSet, bar_stage, standard_stages};
pub use stream::RunStream;
#[cfg(feature = "prep")]
pub use taq::TAQ_DAILY_FILE;

/// Checks a configuration the way a run would: the config's own rules, then what only the
/// readers, writers and stages parse (time zones, codecs, indicator names, rolling specs),
/// so `tickpipe config check` fails on everything `tickpipe run` would.
pub fn check_config(cfg: &Config) -> Result<()> {
    cfg.validate()?;
    pipeline_io::ReadOptions::from_config(cfg)?;
    pipeline_io::WriteOptions::from_config(&cfg.output)?;
    standard_stages(&cfg.preprocessing, StageSet::default())?;
    #[cfg(feature = "prep")]
    taq::options(cfg)?;
    Ok(())
}
