//! Scale-out that writes what one machine writes: [`plan`] → [`map_task`]s → [`reduce_task`]s,
//! through files on a filesystem every task can reach. A scheduler (Kubernetes Indexed Jobs,
//! Slurm arrays, Ray; see `deploy/` and `python/tickpipe/ray.py`) only runs the tasks.
//!
//! - **plan** expands, fingerprints and describes the inputs (in the order `tickpipe run`
//!   processes them; the unified schema and zones are kept in the plan, so no task sniffs
//!   them again), deals them to map tasks by size and writes `DIR/_plan.json`.
//! - **map** reads each input of its group exactly as a run would (decompression, parsing,
//!   the reader's quarantine, `[input] sort`), up to two inputs per worker at once, and
//!   writes the rows per symbol bucket (a stable hash of the symbol into [`BUCKETS`] virtual
//!   buckets) with their provenance (`_line`), in the order the reader produced them. Each
//!   input's output is one file named by the input's fingerprint: Arrow IPC segments,
//!   uncompressed unless the plan says otherwise ([`ShuffleCompression`]; each bucket's rows
//!   in segments of their own), the reader's rejects, and a
//!   footer listing them. It is written under a temporary name and published with one
//!   rename, so a retried or duplicated map task is harmless.
//! - **reduce** assigns the buckets to reduce tasks by their sizes (longest first to the
//!   least loaded task), the same on every task. It then runs the one-machine engine with the
//!   one-machine stage chain, but each input is opened as "this input's rows of my buckets",
//!   so every symbol meets the stages in exactly the order of `tickpipe run`: inputs in plan
//!   order, rows in source order. Its data, quarantine and ledger are published into `DIR`
//!   under names of its own, and what its validation stage collected into `DIR/_quality/`;
//!   the last task to finish writes the job's ledger, its quality report (`quality.json`,
//!   `quality.html`, the metrics history: every task's validation merged, the report one
//!   run writes) and `_SUCCESS`.
//! - [`status`] says where a job folder stands (`tickpipe inspect JOB`): the phase, the tasks
//!   done, the inputs that failed, and once complete the ledger and quality verdict.
//!
//! Why not sort the shuffled runs by `(symbol, ts)`: the reorder buffer decides which rows
//! are `late` from the order rows arrive in, and stateful stages (dedupe of neighbours, EMA,
//! windows) see ties in arrival order; sorting by time would repair rows that one machine
//! quarantines. The key is therefore `(symbol, input index, source order)`, and since every
//! input's run of a bucket is already in source order, the k-way merge of a symbol's runs is
//! their concatenation in input order, streamed one batch at a time.

mod map;
mod plan;
mod reduce;
mod shuffled;
mod status;

use std::sync::Arc;

use pipeline_core::Result;
use pipeline_parallel::SourceSpec;

pub use map::map_task;
pub use plan::{BUCKETS, PLAN_FILE, Plan, PlanInput, ShuffleCompression, plan};
pub use reduce::{JOB_LEDGER, reduce_task};
pub use status::{JobStatus, status};

/// Replaces the sources of a run (a reduce task opens the shuffled rows instead of the
/// inputs), keeping their names and order.
pub(crate) type Reopen = Arc<dyn Fn(Vec<SourceSpec>) -> Result<Vec<SourceSpec>> + Send + Sync>;
