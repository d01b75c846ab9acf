//! The contract every tickpipe crate speaks: [`Chunk`] (an Arrow `RecordBatch` plus
//! provenance), the [`Source`] / [`Stage`] / [`Sink`] traits, the tick data model
//! ([`Canonical`] columns, [`DatasetKind`]), header recognition ([`ColumnMapping`]), the row
//! [`Ledger`], the run [`Config`], the one [`Error`] type, and [`LiveMetrics`] (counters the
//! engine updates per chunk for a monitor to read during a run).
//!
//! Provenance is an internal `_line` column ([`LINE_COLUMN`]) inside each batch, so any row,
//! after any filter, partitioning or sort, can be traced back to `file:line`. Stages report
//! what they remove through an [`Emitter`], which is how the run proves
//! `read = written + quarantined + removed`.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{BooleanArray, Float64Array, RecordBatch};
//! use arrow_schema::{DataType, Field, Schema};
//! use pipeline_core::{run_stage, Chunk, Emitter, Result, Stage, StageKey};
//!
//! /// Drops non-positive prices.
//! struct PositivePrice;
//! impl Stage for PositivePrice {
//!     fn name(&self) -> &str { "positive_price" }
//!     fn key(&self) -> StageKey { StageKey::of(self.name(), &()) }
//!     fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
//!         let px = chunk.column_by_name("price").unwrap()
//!             .as_any().downcast_ref::<Float64Array>().unwrap();
//!         let keep: BooleanArray = px.iter().map(|p| Some(p.is_some_and(|p| p > 0.0))).collect();
//!         let kept = out.remove("positive_price", &chunk, &keep)?;
//!         out.emit(kept);
//!         Ok(())
//!     }
//! }
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("price", DataType::Float64, true)]));
//! let batch = RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(vec![1.0, 0.0, 2.0]))])?;
//! let (chunks, out) = run_stage(&mut PositivePrice, [Chunk::with_first_line(batch, 0, 0, 2)?])?;
//! assert_eq!(chunks[0].num_rows(), 2);
//! assert_eq!(out.rejects()[0].line, 3); // the removed row came from line 3
//! # Ok::<(), pipeline_core::Error>(())
//! ```

mod bytesize;
pub mod calendar;
mod chunk;
mod config;
mod cores;
mod error;
mod hash;
mod ledger;
mod live;
mod mapping;
mod meta_store;
mod reject;
mod render;
mod replay;
mod schema;
mod sink;
mod source;
mod stage;

pub use bytesize::ByteSize;
pub use chunk::{Chunk, LINE_COLUMN, Provenance, QUOTE_MATCH_COLUMN, SourceId};
pub use config::{
    CacheConfig, Config, InputConfig, MIN_MEMORY_LIMIT, MonitorConfig, OutputConfig, OutputFormat,
    PipelineConfig, PreprocessingConfig, TaqConfig, ValidationConfig, parse_hhmm,
};
pub use cores::cores;
pub use error::{Error, Result, truncate_for_error};
pub use hash::{FxBuildHasher, FxHasher, SplitMix64, StageKey, mix64, partition_of, stable_hash};
pub use ledger::{Ledger, StageMetrics};
pub use live::{
    HistogramSnapshot, LatencyHistogram, LiveMetrics, LiveRun, LiveSnapshot, ReaderLive,
    ReaderSnapshot, RunShape, StageLive, StageSnapshot, WorkerLive, WorkerSnapshot,
};
pub use mapping::{ColumnMapping, ResolvedColumns, TsSource, normalize_header};
pub use meta_store::{MemoryMetaStore, MetaCache, MetaStore};
pub use reject::{Reject, RejectKind};
pub use replay::Replay;
pub use schema::{
    Canonical, DatasetKind, EXECUTION_EVENT_TYPES, HALT_EVENT_TYPE, dict_type, is_execution_event,
    ts_type,
};
pub use sink::{MemoryRejectSink, MemorySink, RejectSink, Sink, SinkSummary};
pub use source::{Progress, Source, SourcePosition, SourceTable, VecSource};
pub use stage::{Emitter, Stage, StageFactory, StageOrder, run_stage};
