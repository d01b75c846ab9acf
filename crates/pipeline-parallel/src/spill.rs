//! [`ExternalSorter`]: sorts one source's rows by `(key, ts, line)` in bounded memory, spilling
//! sorted runs to zstd-compressed Arrow IPC files and merging them.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, RecordBatch, UInt64Array};
use arrow_ipc::CompressionType;
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use arrow_schema::{DataType, TimeUnit};
use pipeline_core::{Chunk, Error, LINE_COLUMN, Result, SourceId};

/// Distinguishes spill files of sorters in one process.
static NEXT_SORTER: AtomicU64 = AtomicU64::new(0);

/// Sort key of one row: key (nulls first), time (nulls first), line.
type RowKey = (Option<String>, Option<i64>, u64);

fn row_keys(batch: &RecordBatch, key: &str, ts: &str) -> Result<Vec<RowKey>> {
    let k = batch
        .column_by_name(key)
        .ok_or_else(|| Error::Schema(format!("sort key column `{key}` is missing")))?;
    let t = batch
        .column_by_name(ts)
        .ok_or_else(|| Error::Schema(format!("sort time column `{ts}` is missing")))?;
    let l = batch
        .column_by_name(LINE_COLUMN)
        .ok_or_else(|| Error::Internal("sorted rows lost their line column".into()))?
        .as_primitive::<arrow_array::types::UInt64Type>();
    let keys: Vec<Option<String>> = match k.data_type() {
        DataType::Dictionary(kt, vt) if **kt == DataType::Int32 && **vt == DataType::Utf8 => {
            let d = k.as_dictionary::<Int32Type>();
            let v = d.values().as_string::<i32>();
            (0..d.len())
                .map(|i| (!d.is_null(i)).then(|| v.value(d.keys().value(i) as usize).to_string()))
                .collect()
        }
        DataType::Utf8 => {
            let s = k.as_string::<i32>();
            (0..s.len())
                .map(|i| (!s.is_null(i)).then(|| s.value(i).to_string()))
                .collect()
        }
        other => {
            return Err(Error::Schema(format!(
                "sort key `{key}` must be a string column, found {other}"
            )));
        }
    };
    let times: Vec<Option<i64>> = match t.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            t.as_primitive::<TimestampNanosecondType>().iter().collect()
        }
        DataType::Int64 => t.as_primitive::<Int64Type>().iter().collect(),
        other => {
            return Err(Error::Schema(format!(
                "sort time `{ts}` must be Timestamp(ns) or Int64, found {other}"
            )));
        }
    };
    Ok(keys
        .into_iter()
        .zip(times)
        .zip(l.values().iter())
        .map(|((k, t), l)| (k, t, *l))
        .collect())
}

/// Sorts the rows of one source by `(key, ts, line)` within a memory budget.
///
/// Chunks are buffered until they hold `budget_bytes`; each full buffer is sorted and written
/// as a run (an Arrow IPC file, zstd-compressed) under the spill directory. `finish` merges
/// the runs (and what is still buffered) into sorted chunks of at most `out_rows` rows. The
/// line column makes the order total, so the output does not depend on the budget.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch, StringArray};
/// use arrow_schema::{DataType, Field, Schema};
/// use pipeline_core::Chunk;
/// use pipeline_parallel::spill::ExternalSorter;
///
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("symbol", DataType::Utf8, true),
///     Field::new("ts", DataType::Int64, true),
/// ]));
/// let b = RecordBatch::try_new(schema, vec![
///     Arc::new(StringArray::from(vec!["B", "A", "A"])),
///     Arc::new(Int64Array::from(vec![1, 9, 3])),
/// ])?;
/// let dir = std::env::temp_dir();
/// let mut s = ExternalSorter::new("symbol", "ts", 1, &dir);
/// s.push(Chunk::with_first_line(b, 0, 0, 2)?)?;
/// let out: Vec<Chunk> = s.finish(1024)?.collect::<Result<_, _>>()?;
/// assert_eq!(out[0].lines().values().to_vec(), vec![4, 3, 2]);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
pub struct ExternalSorter {
    key: String,
    ts: String,
    budget: usize,
    dir: PathBuf,
    id: u64,
    source: Option<SourceId>,
    buffered: Vec<RecordBatch>,
    bytes: usize,
    runs: Vec<PathBuf>,
}

impl ExternalSorter {
    /// A sorter by `key_col` then `ts_col`, buffering at most `budget_bytes` before spilling
    /// to files in `spill_dir`.
    pub fn new(key_col: &str, ts_col: &str, budget_bytes: usize, spill_dir: &Path) -> Self {
        ExternalSorter {
            key: key_col.into(),
            ts: ts_col.into(),
            budget: budget_bytes.max(1),
            dir: spill_dir.to_path_buf(),
            id: NEXT_SORTER.fetch_add(1, AtomicOrdering::Relaxed),
            source: None,
            buffered: Vec::new(),
            bytes: 0,
            runs: Vec::new(),
        }
    }

    /// Number of runs spilled so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds a chunk (all chunks must come from one source).
    pub fn push(&mut self, chunk: Chunk) -> Result<()> {
        match self.source {
            None => self.source = Some(chunk.source()),
            Some(s) if s != chunk.source() => {
                return Err(Error::Internal(format!(
                    "external sort of source {s} got a chunk of source {}",
                    chunk.source()
                )));
            }
            Some(_) => {}
        }
        self.bytes += chunk.memory_size();
        self.buffered.push(chunk.into_batch());
        if self.bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn sorted_buffer(&mut self) -> Result<Option<RecordBatch>> {
        let Some(first) = self.buffered.first() else {
            return Ok(None);
        };
        let batch = arrow_select::concat::concat_batches(&first.schema(), &self.buffered)?;
        self.buffered.clear();
        self.bytes = 0;
        let keys = row_keys(&batch, &self.key, &self.ts)?;
        let mut idx: Vec<u64> = (0..batch.num_rows() as u64).collect();
        idx.sort_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]));
        Ok(Some(arrow_select::take::take_record_batch(
            &batch,
            &UInt64Array::from(idx),
        )?))
    }

    fn spill(&mut self) -> Result<()> {
        let Some(sorted) = self.sorted_buffer()? else {
            return Ok(());
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.dir.join(format!(
            "tickpipe-sort-{}-{}-{}.arrow",
            std::process::id(),
            self.id,
            self.runs.len()
        ));
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let opts = IpcWriteOptions::default().try_with_compression(Some(CompressionType::ZSTD))?;
        let mut w = FileWriter::try_new_with_options(BufWriter::new(file), &sorted.schema(), opts)?;
        // Runs are written in slices so the merge reads them back a slice at a time.
        let mut off = 0;
        while off < sorted.num_rows() {
            let n = RUN_BATCH_ROWS.min(sorted.num_rows() - off);
            w.write(&sorted.slice(off, n))?;
            off += n;
        }
        w.finish()?;
        self.runs.push(path);
        Ok(())
    }

    /// Merges everything into sorted chunks of at most `out_rows` rows.
    pub fn finish(mut self, out_rows: usize) -> Result<SortedChunks> {
        let mut cursors = Vec::new();
        let source = self.source.unwrap_or(0);
        if self.runs.is_empty() {
            // Everything fit in memory: no files at all.
            if let Some(b) = self.sorted_buffer()? {
                cursors.push(Cursor::new(
                    Box::new(std::iter::once(Ok(b))),
                    &self.key,
                    &self.ts,
                )?);
            }
        } else {
            self.spill()?;
            for path in &self.runs {
                let file = File::open(path).map_err(|e| Error::io(path, e))?;
                let reader = FileReader::try_new(BufReader::new(file), None)?;
                let it = reader.map(|b| b.map_err(Error::from));
                cursors.push(Cursor::new(Box::new(it), &self.key, &self.ts)?);
            }
        }
        let mut heap = BinaryHeap::new();
        for (i, c) in cursors.iter().enumerate() {
            if let Some(k) = c.current() {
                heap.push(Reverse(HeapItem(k.clone(), i)));
            }
        }
        Ok(SortedChunks {
            cursors,
            heap,
            out_rows: out_rows.max(1),
            source,
            seq: 0,
            files: std::mem::take(&mut self.runs),
            key: self.key.clone(),
            ts: self.ts.clone(),
        })
    }
}

/// Rows per batch inside a spilled run: the merge holds one such batch per run in memory.
/// 8 K rows of tick data is about 128 KiB, so even 1000 runs stay near 128 MiB.
const RUN_BATCH_ROWS: usize = 8192;

struct Cursor {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>>>,
    batch: Option<RecordBatch>,
    keys: Vec<RowKey>,
    row: usize,
}

impl Cursor {
    fn new(
        mut batches: Box<dyn Iterator<Item = Result<RecordBatch>>>,
        key: &str,
        ts: &str,
    ) -> Result<Self> {
        let mut c = Cursor {
            batch: None,
            keys: Vec::new(),
            row: 0,
            batches: Box::new(std::iter::empty()),
        };
        c.load(&mut batches, key, ts)?;
        c.batches = batches;
        Ok(c)
    }

    fn load(
        &mut self,
        it: &mut Box<dyn Iterator<Item = Result<RecordBatch>>>,
        key: &str,
        ts: &str,
    ) -> Result<()> {
        self.batch = None;
        self.keys.clear();
        self.row = 0;
        for b in it.by_ref() {
            let b = b?;
            if b.num_rows() > 0 {
                self.keys = row_keys(&b, key, ts)?;
                self.batch = Some(b);
                break;
            }
        }
        Ok(())
    }

    fn current(&self) -> Option<&RowKey> {
        self.keys.get(self.row)
    }
}

#[derive(PartialEq, Eq)]
struct HeapItem(RowKey, usize);

impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// The merged, sorted output of an [`ExternalSorter`]; deletes its spill files when dropped.
pub struct SortedChunks {
    cursors: Vec<Cursor>,
    heap: BinaryHeap<Reverse<HeapItem>>,
    out_rows: usize,
    source: SourceId,
    seq: u64,
    files: Vec<PathBuf>,
    key: String,
    ts: String,
}

impl SortedChunks {
    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut picks: Vec<(usize, usize)> = Vec::new();
        let mut parts: Vec<RecordBatch> = Vec::new();
        // Rows are gathered per output chunk; a cursor moving to its next batch flushes the
        // picks that point into its current one first.
        while picks.len() < self.out_rows {
            let Some(Reverse(HeapItem(_, i))) = self.heap.pop() else {
                break;
            };
            let c = &mut self.cursors[i];
            let Some(batch) = c.batch.clone() else {
                continue;
            };
            let slot = match parts
                .iter()
                .position(|b| Arc::ptr_eq(&b.columns()[0], &batch.columns()[0]))
            {
                Some(s) => s,
                None => {
                    parts.push(batch);
                    parts.len() - 1
                }
            };
            picks.push((slot, c.row));
            c.row += 1;
            if c.row == c.keys.len() {
                let mut it = std::mem::replace(&mut c.batches, Box::new(std::iter::empty()));
                c.load(&mut it, &self.key, &self.ts)?;
                c.batches = it;
            }
            if let Some(k) = c.current() {
                self.heap.push(Reverse(HeapItem(k.clone(), i)));
            }
        }
        if picks.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&RecordBatch> = parts.iter().collect();
        let batch = arrow_select::interleave::interleave_record_batch(&refs, &picks)?;
        let chunk = Chunk::new(batch, self.source, self.seq)?;
        self.seq += 1;
        Ok(Some(chunk))
    }
}

impl Iterator for SortedChunks {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        self.next_chunk().transpose()
    }
}

impl Drop for SortedChunks {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    fn chunk(seed: u64, n: usize, seq: u64) -> Chunk {
        let mut s = seed;
        let mut r = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let syms: StringArray = (0..n)
            .map(|_| Some(["A", "B", "C"][(r() % 3) as usize]))
            .collect();
        let ts = Int64Array::from_iter_values((0..n).map(|_| (r() % 50) as i64));
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("ts", DataType::Int64, true),
        ]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(syms), Arc::new(ts)]).unwrap();
        Chunk::with_first_line(b, 4, seq, 2 + seq * n as u64).unwrap()
    }

    fn keys(out: &[Chunk]) -> Vec<RowKey> {
        out.iter()
            .flat_map(|c| row_keys(c.batch(), "symbol", "ts").unwrap())
            .collect()
    }

    #[test]
    fn spilled_and_in_memory_sorts_agree_with_a_plain_sort() {
        let input: Vec<Chunk> = (0..20).map(|i| chunk(i + 1, 97, i)).collect();
        let mut want = keys(&input);
        want.sort();
        let dir = tempfile::tempdir().unwrap();
        for budget in [1, 10_000, usize::MAX] {
            let mut s = ExternalSorter::new("symbol", "ts", budget, dir.path());
            for c in &input {
                s.push(c.clone()).unwrap();
            }
            let spilled = s.spilled_runs();
            let out: Vec<Chunk> = s.finish(128).unwrap().collect::<Result<_>>().unwrap();
            assert_eq!(keys(&out), want, "budget {budget}");
            assert!(out.iter().all(|c| c.num_rows() <= 128 && c.source() == 4));
            if budget == 1 {
                assert_eq!(spilled, 20);
            }
        }
        // Spill files are gone once the output is dropped.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn chunks_of_two_sources_are_refused() {
        let mut s = ExternalSorter::new("symbol", "ts", 1 << 20, &std::env::temp_dir());
        s.push(chunk(1, 3, 0)).unwrap();
        let other = Chunk::new(chunk(2, 3, 1).into_batch(), 5, 1).unwrap();
        assert!(s.push(other).is_err());
    }
}
