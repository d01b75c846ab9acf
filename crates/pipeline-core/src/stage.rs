//! The [`Stage`] trait and the [`Emitter`] stages write their results to.

use std::sync::Arc;

use arrow_array::{Array, BooleanArray};

use crate::chunk::{Chunk, SourceId};
use crate::error::Result;
use crate::hash::StageKey;
use crate::ledger::Ledger;
use crate::reject::Reject;

/// What order of rows a stage needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageOrder {
    /// Each row is handled on its own; chunks may go to any worker in any order.
    RowLocal,
    /// The stage keeps state per key (e.g. per symbol) and needs all rows of one key, in time
    /// order, on one worker.
    PerKey {
        /// The key column, e.g. `symbol`.
        key: String,
    },
}

/// A (possibly stateful) transform from chunks to chunks.
///
/// `process` may emit zero, one or many chunks, and must account for every input row: a row
/// is either emitted or handed to [`Emitter::remove`] / [`Emitter::quarantine`]. A stage that
/// holds rows back (a reorder buffer, a same-timestamp aggregator) emits them in `finish`.
/// Row order within the emitted chunks must not depend on how the input was chunked.
pub trait Stage: Send {
    /// Short name, used in metrics and logs (e.g. `dedupe`).
    fn name(&self) -> &str;

    /// What row order the stage needs.
    fn order(&self) -> StageOrder {
        StageOrder::RowLocal
    }

    /// A stable hash of the stage's configuration (see [`StageKey::of`]).
    fn key(&self) -> StageKey;

    /// Handles one chunk.
    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()>;

    /// Flushes held state at the end of the input.
    fn finish(&mut self, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    /// Serialises the stage's carried state (per-key windows, EMA values…) so a resumed run
    /// continues exactly where a killed one stopped. `None` means the stage holds no state
    /// between chunks.
    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// The state to restore if the input being processed has to be replayed in this same
    /// stage instance (a retried input: the engine takes one at every input start). It goes
    /// back to [`Stage::restore`] of this instance only, so a stage whose state grows with
    /// the run (append-only logs) can record how far they reached instead of copying them,
    /// keeping the cost per input constant; it takes `&mut self` so such a stage can start
    /// tracking what it will have to undo from here. Default: [`Stage::checkpoint`].
    fn replay_point(&mut self) -> Result<Option<Vec<u8>>> {
        self.checkpoint()
    }

    /// Restores state written by [`Stage::checkpoint`] (or by [`Stage::replay_point`] of this
    /// instance).
    fn restore(&mut self, _state: &[u8]) -> Result<()> {
        Err(crate::Error::Internal(format!(
            "stage `{}` has no state to restore",
            self.name()
        )))
    }
}

/// Builds a fresh stage: per-key stages get one instance per worker.
pub type StageFactory = Arc<dyn Fn() -> Result<Box<dyn Stage>> + Send + Sync>;

/// Collects what a stage produces: chunks, and the rows it removed or quarantined.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{BooleanArray, Int64Array, RecordBatch};
/// use arrow_schema::{DataType, Field, Schema};
/// use pipeline_core::{Chunk, Emitter};
///
/// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
/// let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, -1, 2]))])?;
/// let chunk = Chunk::with_first_line(batch, 0, 0, 2)?;
/// let mut out = Emitter::default();
/// let kept = out.remove("negative", &chunk, &BooleanArray::from(vec![true, false, true]))?;
/// out.emit(kept);
/// assert_eq!(out.ledger().removed["negative"], 1);
/// assert_eq!(out.rejects()[0].line, 3);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Emitter {
    chunks: Vec<Chunk>,
    rejects: Vec<Reject>,
    ledger: Ledger,
}

impl Emitter {
    /// Emits a chunk (empty chunks are dropped: they carry no rows).
    pub fn emit(&mut self, chunk: Chunk) {
        if !chunk.is_empty() {
            self.chunks.push(chunk);
        }
    }

    /// Removes the rows of `chunk` where `keep` is false or null, recording each under `rule`
    /// (with the row rendered as text in its `raw`), and returns the kept rows.
    pub fn remove(&mut self, rule: &str, chunk: &Chunk, keep: &BooleanArray) -> Result<Chunk> {
        self.remove_with_details(rule, chunk, keep, &[])
    }

    /// [`Emitter::remove`] with a detail for some removed rows: `(row, text)` pairs, rows in
    /// ascending order, e.g. the rule's numbers (value, threshold, window statistic) that
    /// decided it. Rows without an entry get an empty detail.
    pub fn remove_with_details(
        &mut self,
        rule: &str,
        chunk: &Chunk,
        keep: &BooleanArray,
        details: &[(usize, String)],
    ) -> Result<Chunk> {
        let n = self.record(rule, chunk, keep, None, details);
        self.ledger.add_removed(rule, n);
        if n == 0 {
            return Ok(chunk.clone());
        }
        chunk.filter(keep)
    }

    /// Quarantines the rows of `chunk` where `keep` is false or null, with `reason`, and returns
    /// the kept rows.
    pub fn quarantine(
        &mut self,
        reason: &str,
        chunk: &Chunk,
        keep: &BooleanArray,
    ) -> Result<Chunk> {
        let n = self.record(reason, chunk, keep, Some(()), &[]);
        self.ledger.add_quarantined(reason, n);
        if n == 0 {
            return Ok(chunk.clone());
        }
        chunk.filter(keep)
    }

    /// Records a single removed row (for stages that merge or drop rows one by one).
    pub fn remove_one(&mut self, rule: &str, source: SourceId, line: u64) {
        self.rejects.push(Reject::removed(source, line, rule));
        self.ledger.add_removed(rule, 1);
    }

    /// Records row `row` of `chunk` as removed by `rule`, with `detail` (the rule's numbers)
    /// and the row rendered as text.
    pub fn remove_row(&mut self, rule: &str, chunk: &Chunk, row: usize, detail: String) {
        let mut r = Reject::removed(chunk.source(), chunk.line(row), rule);
        r.detail = detail;
        r.raw = Some(chunk.row_text(row));
        self.rejects.push(r);
        self.ledger.add_removed(rule, 1);
    }

    /// Records that `n` rows were merged into aggregates by `rule` (same-timestamp aggregation,
    /// bars): they count as removed in the ledger, but no per-row reject is stored, because
    /// their data lives on in the aggregate row (whose `_line` is the group's first line).
    pub fn aggregate(&mut self, rule: &str, n: u64) {
        self.ledger.add_removed(rule, n);
    }

    /// Records that the stage made `n` rows no input row became (empty bars): they are
    /// written, and the ledger reads `read + added = written + quarantined + removed`.
    pub fn added(&mut self, rule: &str, n: u64) {
        self.ledger.add_added(rule, n);
    }

    /// Records that `n` values were repaired in place by `rule` (filled, interpolated,
    /// winsorized). Repaired rows are still emitted.
    pub fn repaired(&mut self, rule: &str, n: u64) {
        self.ledger.add_repaired(rule, n);
    }

    /// Records a single quarantined row.
    pub fn quarantine_one(&mut self, reject: Reject) {
        self.ledger.add_quarantined(&reject.reason, 1);
        self.rejects.push(reject);
    }

    fn record(
        &mut self,
        reason: &str,
        chunk: &Chunk,
        keep: &BooleanArray,
        quarantine: Option<()>,
        details: &[(usize, String)],
    ) -> u64 {
        let mut n = 0;
        let lines = chunk.lines();
        let mut d = details.iter().peekable();
        for i in 0..keep.len() {
            if keep.is_null(i) || !keep.value(i) {
                n += 1;
                while d.next_if(|(r, _)| *r < i).is_some() {}
                let detail = d.next_if(|(r, _)| *r == i).map(|(_, t)| t.clone());
                let raw = Some(chunk.row_text(i));
                let r = if quarantine.is_some() {
                    Reject::quarantined(
                        chunk.source(),
                        lines.value(i),
                        reason,
                        detail.unwrap_or_default(),
                        raw,
                    )
                } else {
                    let mut r = Reject::removed(chunk.source(), lines.value(i), reason);
                    r.detail = detail.unwrap_or_default();
                    r.raw = raw;
                    r
                };
                self.rejects.push(r);
            }
        }
        n
    }

    /// The chunks emitted so far.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The rejected rows recorded so far.
    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }

    /// Removed and quarantined counts recorded so far (`read`/`written` stay 0).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Takes the emitted chunks, leaving none.
    pub fn take_chunks(&mut self) -> Vec<Chunk> {
        std::mem::take(&mut self.chunks)
    }

    /// Takes the recorded rejects, leaving none.
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }

    /// Takes the counts, leaving an empty ledger.
    pub fn take_ledger(&mut self) -> Ledger {
        std::mem::take(&mut self.ledger)
    }
}

/// Runs `stage` over `chunks` in a plain loop (one thread, no engine): the reference the engine
/// is compared against, and a convenience for tests.
pub fn run_stage(
    stage: &mut dyn Stage,
    chunks: impl IntoIterator<Item = Chunk>,
) -> Result<(Vec<Chunk>, Emitter)> {
    let mut out = Emitter::default();
    let mut all = Vec::new();
    for c in chunks {
        stage.process(c, &mut out)?;
        all.extend(out.take_chunks());
    }
    stage.finish(&mut out)?;
    all.extend(out.take_chunks());
    Ok((all, out))
}
