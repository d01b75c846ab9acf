//! tickpipe's streaming executor: runs `Source → Stage… → Sink` over chunks with one thread per
//! stage and bounded channels between them ([`Pipeline`]), so a slow sink slows the source and
//! memory stays near `capacity × chunk bytes` per edge. Also: stages from closures
//! ([`map_stage`], [`filter_stage`]), the bounded reorder buffer ([`ReorderStage`]), event-time
//! windows per key ([`WindowStage`]: tumbling, sliding, session, count), and, behind the
//! `async` feature, `into_stream` (a `futures::Stream` of output chunks).
//!
//! Live mode is a source that yields small chunks as data arrive (the CLI's following reader):
//! every chunk is forwarded as soon as it exists; [`Pipeline::coalesce_rows`] with
//! [`Pipeline::flush_every`] regroups tiny chunks for the sink with a bounded delay.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use arrow_array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
//! use arrow_schema::{DataType, Field, Schema, TimeUnit};
//! use pipeline_core::{Chunk, MemorySink, VecSource};
//! use pipeline_stream::{Agg, AggFn, Pipeline, WindowKind, WindowStage};
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("symbol", DataType::Utf8, true),
//!     Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
//!     Field::new("price", DataType::Float64, true),
//! ]));
//! let batch = RecordBatch::try_new(schema, vec![
//!     Arc::new(StringArray::from(vec!["A", "A", "A"])),
//!     Arc::new(TimestampNanosecondArray::from(vec![1, 5, 12])),
//!     Arc::new(Float64Array::from(vec![1.0, 3.0, 7.0])),
//! ])?;
//! let chunk = Chunk::with_first_line(batch, 0, 0, 2)?;
//! let window = WindowStage::new("w", "symbol", "ts",
//!     WindowKind::Tumbling { size: Duration::from_nanos(10) },
//!     vec![Agg::new(AggFn::Mean, "price")], Duration::ZERO)?;
//! let report = Pipeline::new(Box::new(VecSource::new(chunk.schema(), vec![chunk])))
//!     .stage(Box::new(window))
//!     .sink(Box::new(MemorySink::default()))
//!     .run()?;
//! // Two windows: [0, 10) with 2 rows folded into one, and [10, 20).
//! assert_eq!(report.ledger.written, 2);
//! assert_eq!(report.ledger.removed["w"], 1);
//! # Ok::<(), pipeline_core::Error>(())
//! ```

mod closure;
mod columns;
mod pipeline;
mod reorder;
#[cfg(feature = "async")]
mod stream;
mod window;

pub use closure::{filter_stage, map_stage};
pub use pipeline::{ChunkHook, Pipeline, StreamReport};
pub use reorder::{BAD_TIMESTAMP, LATE, MIN_ROWS_FOR_DISORDER, ReorderStage};
#[cfg(feature = "async")]
pub use stream::into_stream;
pub use window::{Agg, AggFn, WindowKind, WindowStage};
