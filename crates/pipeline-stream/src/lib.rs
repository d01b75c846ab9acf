//! tickpipe's streaming pieces: stages from closures ([`map_stage`], [`filter_stage`]), the
//! bounded reorder buffer ([`ReorderStage`]: watermark plus allowed lateness, later rows
//! quarantined as `late`), event-time windows per key ([`WindowStage`]: tumbling, sliding,
//! session, count), and, behind the `async` feature, `into_stream` (a `futures::Stream` over
//! any blocking iterator of results, e.g. the `tickpipe` facade's `RunStream`).
//!
//! Every piece is a [`pipeline_core::Stage`] run by the one engine (`pipeline-parallel`),
//! batch runs and live (follow) runs alike; there is no second executor.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use arrow_array::{Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
//! use arrow_schema::{DataType, Field, Schema, TimeUnit};
//! use pipeline_core::{Chunk, run_stage};
//! use pipeline_stream::{Agg, AggFn, WindowKind, WindowStage};
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
//! let mut window = WindowStage::new("w", "symbol", "ts",
//!     WindowKind::Tumbling { size: Duration::from_nanos(10) },
//!     vec![Agg::new(AggFn::Mean, "price")], Duration::ZERO)?;
//! let (out, emitter) = run_stage(&mut window, [chunk])?;
//! // Two windows: [0, 10) with 2 rows folded into one, and [10, 20).
//! assert_eq!(out.iter().map(|c| c.num_rows()).sum::<usize>(), 2);
//! assert_eq!(emitter.ledger().removed["w"], 1);
//! # Ok::<(), pipeline_core::Error>(())
//! ```

mod closure;
mod columns;
mod reorder;
#[cfg(feature = "async")]
mod stream;
mod window;

pub use closure::{filter_stage, map_stage};
pub use reorder::{BAD_TIMESTAMP, LATE, MIN_ROWS_FOR_DISORDER, ReorderStage};
#[cfg(feature = "async")]
pub use stream::into_stream;
pub use window::{Agg, AggFn, WindowKind, WindowStage};
