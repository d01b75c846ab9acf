//! [`SortedSource`]: a source whose rows come out in time order, in bounded memory, for input
//! files that are not.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_schema::SchemaRef;
use pipeline_core::{Chunk, Error, Progress, Reject, Result, Source};

use crate::spill::{ExternalSorter, SortedChunks};

/// How a [`SortedSource`] sorts.
#[derive(Debug, Clone)]
pub struct SortOptions {
    /// Arrow bytes of rows buffered before a sorted run is spilled. Default 64 MiB.
    pub budget_bytes: usize,
    /// Where spill files go: each sorter makes (and removes) its own `.tickpipe-sort-*`
    /// directory inside it. Default [`std::env::temp_dir`].
    pub spill_dir: PathBuf,
    /// The key column rows are grouped by before time, or `None` (the default): time order
    /// across keys, as a time-ordered file would be.
    pub key: Option<String>,
    /// The time column. Default `ts`.
    pub ts: String,
    /// Checked between the inner source's chunks while it is read: once set, the sort stops
    /// with [`Error::Cancelled`] (reading a large file takes a while, and nothing comes out
    /// before it is read). Default none.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for SortOptions {
    fn default() -> Self {
        SortOptions {
            budget_bytes: 64 << 20,
            spill_dir: std::env::temp_dir(),
            key: None,
            ts: "ts".into(),
            cancel: None,
        }
    }
}

impl SortOptions {
    /// Options for sorting every source of a run with `memory_limit` bytes of which at most
    /// `max_open_sources` are read at once, spilling under `spill_dir`.
    ///
    /// Each sorter gets `memory_limit / (4 × max_open_sources)`, at least 1 MiB: the open
    /// sources' buffers together hold a quarter of the limit (plus 40 bytes of sort key per
    /// buffered row while a run is sorted, about a third more on tick data). The rest is what
    /// a run without sorting uses: the engine gives its channels a sixteenth, the CLI gives
    /// writers three sixteenths, and decoders and stage state take the remainder. A quarter
    /// rather than more because the measured unsorted run already peaks near 3/4 of a
    /// 256 MiB limit (185 MiB on 5 M rows, `cargo xtask bench`).
    pub fn for_run(memory_limit: u64, max_open_sources: usize, spill_dir: PathBuf) -> Self {
        let share = memory_limit / (4 * max_open_sources.max(1) as u64);
        SortOptions {
            budget_bytes: usize::try_from(share).unwrap_or(usize::MAX).max(MIN_BUDGET),
            spill_dir,
            ..SortOptions::default()
        }
    }
}

/// Smallest budget [`SortOptions::for_run`] gives: below about a MiB the runs get so many
/// that the merge passes cost more than the memory saved.
const MIN_BUDGET: usize = 1 << 20;

enum State {
    /// Nothing read yet.
    Pending,
    /// The input was read and sorted; its chunks are coming out.
    Merging(SortedChunks),
    /// The end, or an error.
    Done,
}

/// Wraps a source and yields its rows sorted by `(ts, line)`: the file as if it had been
/// written in time order, ties in input order (or by `(key, ts, line)` with
/// [`SortOptions::key`]).
///
/// Time order across symbols is the default because it is what the rest of the pipeline is
/// built for: grouping by symbol first sends each output chunk to a single worker and made a
/// 2 M-row `run --sort` peak at 284 MiB instead of 131 MiB (256 MiB limit, 2 workers), and
/// run slower (2.3 s against 1.5 s).
///
/// The first call to `next` reads the whole inner source into an [`ExternalSorter`]
/// (spilling sorted runs as zstd Arrow IPC when they exceed the budget); later calls yield
/// the merged rows in chunks as large as the inner source's largest. Provenance is kept: the
/// chunks carry the inner source's id and every row its `_line`. The inner source's
/// quarantined rows are all returned by the first [`Source::drain_rejects`] after the first
/// chunk (or after the end), so the ledger still balances; [`Source::progress`] is the inner
/// source's. Spill files are removed when the source is dropped, whether it finished,
/// failed or panicked.
///
/// Sorting puts every duplicate row of a file at its symbol's current timestamp, which is
/// where the de-duplication stage looks: with it, that stage finds all of a file's
/// duplicates, the global de-duplication mode for unordered files. It orders one file; rows
/// of different files still reach the stages file after file.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch, StringArray};
/// use arrow_schema::{DataType, Field, Schema};
/// use pipeline_core::{Chunk, Source, VecSource};
/// use pipeline_parallel::{SortOptions, SortedSource};
///
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("symbol", DataType::Utf8, true),
///     Field::new("ts", DataType::Int64, true),
/// ]));
/// let b = RecordBatch::try_new(schema, vec![
///     Arc::new(StringArray::from(vec!["B", "A", "A"])),
///     Arc::new(Int64Array::from(vec![1, 9, 3])),
/// ])?;
/// let chunk = Chunk::with_first_line(b, 0, 0, 2)?;
/// let inner = VecSource::new(chunk.schema(), vec![chunk]);
/// let sorted = SortedSource::new(Box::new(inner), SortOptions::default());
/// let out: Vec<Chunk> = sorted.collect::<Result<_, _>>()?;
/// assert_eq!(out[0].lines().values().to_vec(), vec![2, 4, 3]);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
pub struct SortedSource {
    inner: Box<dyn Source>,
    opts: SortOptions,
    state: State,
    rejects: Vec<Reject>,
    spilled: usize,
}

impl SortedSource {
    /// Sorts `inner` with `opts`.
    pub fn new(inner: Box<dyn Source>, opts: SortOptions) -> Self {
        SortedSource {
            inner,
            opts,
            state: State::Pending,
            rejects: Vec::new(),
            spilled: 0,
        }
    }

    /// Runs the sort spilled (0 until the input has been read, and when it fit the budget).
    pub fn spilled_runs(&self) -> usize {
        self.spilled
    }

    /// Reads the inner source to the end and starts the merge.
    fn sort(&mut self) -> Result<SortedChunks> {
        let o = &self.opts;
        let mut sorter = match &o.key {
            Some(k) => ExternalSorter::new(k, &o.ts, o.budget_bytes, &o.spill_dir),
            None => ExternalSorter::by_time(&o.ts, o.budget_bytes, &o.spill_dir),
        };
        let start = std::time::Instant::now();
        let (mut out_rows, mut rows) = (0, 0);
        while let Some(item) = self.inner.next() {
            self.rejects.extend(self.inner.drain_rejects());
            if o.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(Error::Cancelled);
            }
            let chunk: Chunk = item?;
            out_rows = out_rows.max(chunk.num_rows());
            rows += chunk.num_rows();
            sorter.push(chunk)?;
        }
        self.rejects.extend(self.inner.drain_rejects());
        self.spilled = sorter.spilled_runs();
        tracing::info!(
            rows,
            spilled_runs = self.spilled,
            budget_bytes = o.budget_bytes,
            seconds = start.elapsed().as_secs_f64(),
            "read and sorted a source"
        );
        sorter.finish(out_rows)
    }
}

impl Iterator for SortedSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        if matches!(self.state, State::Pending) {
            match self.sort() {
                Ok(chunks) => self.state = State::Merging(chunks),
                Err(e) => {
                    self.state = State::Done;
                    return Some(Err(e));
                }
            }
        }
        let State::Merging(chunks) = &mut self.state else {
            return None;
        };
        let item = chunks.next();
        if !matches!(item, Some(Ok(_))) {
            // The end or an error: the spill files can go now.
            self.state = State::Done;
        }
        item
    }
}

impl Source for SortedSource {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn progress(&self) -> Progress {
        self.inner.progress()
    }

    fn drain_rejects(&mut self) -> Vec<Reject> {
        let mut r = std::mem::take(&mut self.rejects);
        r.extend(self.inner.drain_rejects());
        r
    }

    fn reopenable(&self) -> bool {
        self.inner.reopenable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::AtomicU64;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, TimestampNanosecondType};
    use arrow_array::{DictionaryArray, Int64Array, RecordBatch, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use pipeline_core::{Ledger, VecSource};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ),
            Field::new(
                "symbol",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("size", DataType::Int64, true),
            Field::new(pipeline_core::LINE_COLUMN, DataType::UInt64, false),
        ]))
    }

    /// `n` shuffled rows in chunks of `rows`, from source 3; `size` is the row's line, so a
    /// row that lost its provenance shows. Lines skip every tenth number (a quarantined row
    /// in the real reader).
    fn shuffled(n: u64, rows: usize) -> Vec<Chunk> {
        let mut s = 0x2545_F491_4F6C_DD1D_u64;
        let mut r = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let lines: Vec<u64> = (2..).filter(|l| l % 10 != 0).take(n as usize).collect();
        lines
            .chunks(rows)
            .enumerate()
            .map(|(seq, ls)| {
                let ts = TimestampNanosecondArray::from_iter_values(
                    ls.iter().map(|_| (r() % 1000) as i64),
                )
                .with_timezone("UTC");
                let sym: DictionaryArray<Int32Type> = ls
                    .iter()
                    .map(|_| ["MSFT", "AAPL", "IBM"][(r() % 3) as usize])
                    .collect();
                let size = Int64Array::from_iter_values(ls.iter().map(|l| *l as i64));
                let b = RecordBatch::try_new(
                    schema(),
                    vec![
                        Arc::new(ts),
                        Arc::new(sym),
                        Arc::new(size),
                        Arc::new(arrow_array::UInt64Array::from(ls.to_vec())),
                    ],
                )
                .unwrap();
                Chunk::new(b, 3, seq as u64).unwrap()
            })
            .collect()
    }

    /// A source over `chunks` that quarantines one row per chunk and counts bytes; it can
    /// fail after `fail_after` chunks.
    struct Flaky {
        chunks: std::vec::IntoIter<Chunk>,
        seen: u64,
        fail_after: Option<u64>,
        rejects: Vec<Reject>,
        bytes: Arc<AtomicU64>,
    }

    fn flaky(chunks: Vec<Chunk>, fail_after: Option<u64>) -> Flaky {
        Flaky {
            chunks: chunks.into_iter(),
            seen: 0,
            fail_after,
            rejects: Vec::new(),
            bytes: Arc::new(AtomicU64::new(0)),
        }
    }

    impl Iterator for Flaky {
        type Item = Result<Chunk>;
        fn next(&mut self) -> Option<Result<Chunk>> {
            if self.fail_after == Some(self.seen) {
                return Some(Err(Error::Internal("disk on fire".into())));
            }
            let c = self.chunks.next()?;
            self.seen += 1;
            self.bytes.fetch_add(100, Ordering::Relaxed);
            self.rejects.push(Reject::quarantined(
                3,
                self.seen * 10,
                "bad_number",
                "column `size`: expected a number",
                Some("x".into()),
            ));
            Some(Ok(c))
        }
    }

    impl Source for Flaky {
        fn schema(&self) -> SchemaRef {
            schema()
        }
        fn progress(&self) -> Progress {
            Progress {
                bytes_read: self.bytes.load(Ordering::Relaxed),
                bytes_total: Some(1000),
                rows_read: self.seen,
            }
        }
        fn drain_rejects(&mut self) -> Vec<Reject> {
            std::mem::take(&mut self.rejects)
        }
    }

    type Row = (String, i64, u64, i64);

    fn rows(chunks: &[Chunk]) -> Vec<Row> {
        let mut v = Vec::new();
        for c in chunks {
            let b = c.batch();
            let ts = b.column(0).as_primitive::<TimestampNanosecondType>();
            let d = b.column(1).as_dictionary::<Int32Type>();
            let names = d.values().as_string::<i32>();
            let size = b.column(2).as_primitive::<Int64Type>();
            for i in 0..c.num_rows() {
                let sym = names.value(d.keys().value(i) as usize).to_string();
                v.push((sym, ts.value(i), c.line(i), size.value(i)));
            }
        }
        v
    }

    fn opts(budget: usize, dir: &std::path::Path) -> SortOptions {
        SortOptions {
            budget_bytes: budget,
            spill_dir: dir.to_path_buf(),
            ..SortOptions::default()
        }
    }

    #[test]
    fn rows_come_out_sorted_with_their_provenance() {
        let input = shuffled(5000, 300);
        // Rows are (symbol, ts, line, size): by time then line, or by symbol first.
        let mut by_time = rows(&input);
        by_time.sort_by_key(|r| (r.1, r.2));
        let mut by_symbol = rows(&input);
        by_symbol.sort();
        assert_ne!(by_time, by_symbol);
        let dir = tempfile::tempdir().unwrap();
        for (key, want) in [(None, &by_time), (Some("symbol".to_string()), &by_symbol)] {
            for budget in [16 << 10, usize::MAX] {
                let inner = VecSource::new(schema(), input.clone());
                let o = SortOptions {
                    key: key.clone(),
                    ..opts(budget, dir.path())
                };
                let mut src = SortedSource::new(Box::new(inner), o);
                let out: Vec<Chunk> = src.by_ref().collect::<Result<_>>().unwrap();
                assert_eq!(&rows(&out), want, "key {key:?}, budget {budget}");
                // Every row kept its line (size == line) and the source id; chunks are
                // numbered from 0 and no larger than the input's.
                assert!(rows(&out).iter().all(|r| r.2 as i64 == r.3));
                assert!(out.iter().all(|c| c.source() == 3 && c.num_rows() <= 300));
                let seqs: Vec<u64> = out.iter().map(Chunk::seq).collect();
                assert_eq!(seqs, (0..out.len() as u64).collect::<Vec<_>>());
                assert_eq!(src.schema(), schema());
                if budget == usize::MAX {
                    assert_eq!(src.spilled_runs(), 0);
                } else {
                    assert!(src.spilled_runs() > 1, "{} runs", src.spilled_runs());
                }
            }
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn rejects_and_progress_are_forwarded_so_the_ledger_balances() {
        let input = shuffled(1000, 100);
        let dir = tempfile::tempdir().unwrap();
        let inner = flaky(input, None);
        let bytes = inner.bytes.clone();
        let mut src = SortedSource::new(Box::new(inner), opts(4 << 10, dir.path()));
        // The reader's accounting: every delivered row and every reject is read.
        let mut ledger = Ledger::default();
        let mut rejects = Vec::new();
        loop {
            let item = src.next();
            let r = src.drain_rejects();
            ledger.add_read(r.len() as u64);
            for x in &r {
                ledger.add_quarantined(&x.reason, 1);
            }
            rejects.extend(r);
            let Some(item) = item else { break };
            let n = item.unwrap().num_rows() as u64;
            ledger.add_read(n);
            ledger.add_written(n);
            // The inner source was read to the end before the first chunk came out.
            assert_eq!(src.progress().bytes_read, 1000);
            assert_eq!(bytes.load(Ordering::Relaxed), 1000);
        }
        assert_eq!(rejects.len(), 10);
        assert_eq!(ledger.read, 1010);
        ledger.check_balance().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failing_inner_source_fails_the_sort_and_leaves_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let inner = flaky(shuffled(1000, 100), Some(6));
        let mut src = SortedSource::new(Box::new(inner), opts(1, dir.path()));
        let err = src.next().unwrap().unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
        assert!(src.next().is_none());
        // Rows quarantined before the failure are still handed over.
        assert_eq!(src.drain_rejects().len(), 6);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_cancelled_sort_stops_reading_and_leaves_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let inner = flaky(shuffled(1000, 100), None);
        let bytes = inner.bytes.clone();
        let cancel = Arc::new(AtomicBool::new(true));
        let o = SortOptions {
            cancel: Some(cancel),
            ..opts(1, dir.path())
        };
        let mut src = SortedSource::new(Box::new(inner), o);
        assert!(matches!(src.next(), Some(Err(Error::Cancelled))));
        assert!(src.next().is_none());
        assert_eq!(
            bytes.load(Ordering::Relaxed),
            100,
            "stopped after one chunk"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn spill_files_go_when_the_source_is_dropped_mid_merge() {
        let dir = tempfile::tempdir().unwrap();
        let inner = VecSource::new(schema(), shuffled(2000, 100));
        let mut src = SortedSource::new(Box::new(inner), opts(1, dir.path()));
        assert!(src.next().unwrap().is_ok());
        assert_eq!(src.spilled_runs(), 20);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(src);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn run_budget_is_a_quarter_of_the_limit_over_open_sources() {
        let o = SortOptions::for_run(1 << 30, 4, PathBuf::from("/spill"));
        assert_eq!(o.budget_bytes, 64 << 20);
        assert_eq!(o.spill_dir, PathBuf::from("/spill"));
        assert_eq!(
            SortOptions::for_run(1 << 20, 8, PathBuf::new()).budget_bytes,
            MIN_BUDGET
        );
    }
}
