//! tickpipe's parallel engine: spreads sources over readers and rows over workers, keeps every
//! symbol on one worker in input order, retries failing sources, checkpoints to a redb
//! manifest at segment ends and resumes after `kill -9` with identical output. Main types:
//! [`Runner`] (builder) → [`Run`] → [`RunReport`]; [`SourceSpec`]; [`map_reduce`];
//! [`Runtime`], the one owned thread-pool handle a run's threads come from (named threads for
//! readers, workers and the quarantine writer; a rayon pool for batch work such as
//! map-reduce and the normalisation post-pass).
//!
//! # How a run flows
//! Sources are opened lazily by reader threads (at most `max_open_files` at once, fewer when
//! resident memory nears the limit). A reader splits each chunk by worker (the per-key
//! stages' key: the keys of the run's first chunk spread over the workers heaviest first, any
//! later key hashed with [`pipeline_core::partition_of`], and each key kept on its worker for
//! the whole run and across a resume; null keys go to worker 0; with no per-key stage, whole
//! chunks round-robin) and sends the parts over bounded channels. Each
//! worker owns one instance of every stage and takes sources strictly in order, so a
//! symbol's rows reach its stages in source, then chunk, then row order, whatever the worker
//! count, chunk size or read concurrency: output per key is deterministic.
//!
//! # Memory and load
//! Channel capacities come from the memory limit and the observed chunk size (a sixteenth of
//! the limit spread over every open (source, worker) channel, 1 to 2 chunks each) unless set
//! explicitly; a reader
//! blocked on a full channel stops reading, so a slow sink slows the sources. Before opening
//! another source the coordinator checks resident memory and waits while it is above 85% of
//! the limit. Work is spread by rows, not files: a large file's rows go to every worker by
//! key, and many small files are read concurrently up to the open-files bound. Sorting that
//! does not fit in memory goes through [`spill::ExternalSorter`]; [`SortedSource`] wraps a
//! source so its rows come out in time order (for files that are not).
//!
//! # Faults and accounting
//! An `Err` or panic in a source or a stage retries the source (reopened, up to `retries`
//! times with doubling backoff). Deliveries are numbered; every worker remembers how many of
//! a source's deliveries it has fully processed and written. After a *source* failure,
//! workers keep their state and the retry only sends what they have not seen. After a
//! *stage* failure the failing worker restores the stage state it checkpointed
//! ([`pipeline_core::Stage::checkpoint`]) when the source began (taken for every source when
//! `retries > 0`: cheap for per-day files, a cost to weigh for stages with large state), replays the deliveries it
//! had already written with all their outputs discarded, and carries on from the failing
//! one, so a transient failure leaves output identical to a clean run. When all retries fail
//! the source is reported in `files_failed` (and the manifest): rows it delivered before the
//! failure stay written and counted; rows that were read but that the failing worker never
//! processed are counted as quarantined with reason [`FAILED_FILE`]; rows after the failure
//! point were never read and are not counted. Limitation: a stage that panics halfway
//! through updating its state may leave it inconsistent for later sources; the final
//! [`pipeline_core::Ledger::check_balance`] then reports it.
//!
//! # Live metrics
//! [`Runner::observer`] hands the run a [`pipeline_core::LiveMetrics`]: the engine fills one
//! board per run with counters per stage (rows, bytes, busy time, chunk latency), per worker
//! (busy, writing, waiting for input, queue depth, backpressure it causes) and per reader
//! slot (reading, blocked on full queues), a few relaxed atomic adds per chunk. A monitor
//! (pipeline-monitor) reads it while the run goes on; the engine does not know who reads.
//!
//! # Segments and resume
//! Sources are grouped into segments (ending at the first source boundary after
//! `segment_bytes` input bytes; the grouping depends only on sizes, so a resumed run has the
//! same segments). At a segment end every worker finishes its sink (files renamed into place)
//! and checkpoints its stages; the coordinator then commits sources, outputs, failed sources,
//! ledger and states to the manifest in one redb transaction. `resume` skips committed
//! sources, deletes files under `output_dir` that the manifest does not list, restores the
//! states and continues with the next segment. State is stored per worker, so a resume needs
//! the same worker count (checked). The quarantine sink is not segmented: a resumed run's
//! rejects start at the resumed segment.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{RecordBatch, StringArray};
//! use arrow_schema::{DataType, Field, Schema};
//! use pipeline_core::{Chunk, MemorySink, Sink, Source, VecSource};
//! use pipeline_parallel::{Runner, SourceSpec};
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("symbol", DataType::Utf8, true)]));
//! let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["A", "B"]))])?;
//! let chunk = Chunk::with_first_line(batch, 0, 0, 2)?;
//! let open = Arc::new(move || Ok(Box::new(VecSource::new(chunk.schema(), vec![chunk.clone()])) as Box<dyn Source>));
//! let report = Runner::new()
//!     .sources(vec![SourceSpec { name: "a.csv".into(), size_bytes: 10, open }])
//!     .sink_factory(Arc::new(|_worker, _segment| Ok(Box::new(MemorySink::default()) as Box<dyn Sink>)))
//!     .build()?
//!     .run()?;
//! assert_eq!(report.files_ok, vec!["a.csv".to_string()]);
//! # Ok::<(), pipeline_core::Error>(())
//! ```

mod manifest;
mod mapreduce;
mod memory;
mod panic;
mod reader;
mod reject_channel;
mod route;
mod runner;
mod runtime;
mod sorted;
mod spec;
pub mod spill;
mod state_pieces;
mod worker;

pub use manifest::{
    CommittedSummary, FinishedRun, RewindPoint, committed_positions, committed_summary,
    finished_run, preload as preload_manifest, replace_stage_states, resumed_workers, rewind,
};
pub use mapreduce::{map_reduce, map_reduce_on};
pub use memory::{current_rss, peak_rss};
pub use runner::{Run, Runner};
pub use runtime::Runtime;
pub use sorted::{SortOptions, SortedSource};
pub use spec::{
    CommitFn, EngineEvent, EventFn, OwnedFn, ProgressFn, ProgressSnapshot, RejectSinkFactory,
    RunReport, SinkFactory, SourceOpener, SourceSpec,
};
pub use worker::FAILED_FILE;
