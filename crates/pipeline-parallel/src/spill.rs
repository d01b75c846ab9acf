//! [`ExternalSorter`]: sorts one source's rows by `(key, ts, line)` or `(ts, line)` in bounded
//! memory, spilling sorted runs to zstd-compressed Arrow IPC files and merging them.
//!
//! Keys are compared as numbers, not strings: every key string the sorter has seen gets its
//! rank in byte order, each batch maps its dictionary values to ranks once, and a row's sort
//! key is then `(rank, ts, line)`, three integers with no allocation. (The first version built
//! a `String` per row and cloned it per heap operation; `sort_bench` on 2 M shuffled rows with
//! a 16 MiB budget went from 1.3-1.5 M to 3.0-3.1 M rows/s, old and new binaries run
//! alternately, and its peak RSS from 180 to 138 MiB, 107 MiB of which is the input it holds;
//! writing runs straight from the buffered batches instead of concatenating and sorting a
//! copy of them saves the rest.)

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use arrow_array::builder::{ArrayBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt64Type,
};
use arrow_array::{Array, ArrayRef, DictionaryArray, Int32Array, RecordBatch};
use arrow_ipc::CompressionType;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use pipeline_core::{Chunk, Error, LINE_COLUMN, Result, SourceId};

/// Distinguishes spill directories of sorters in one process.
static NEXT_SORTER: AtomicU64 = AtomicU64::new(0);

/// Sort key of one row: key rank (0 for a null key, otherwise 1 + the key string's position
/// in byte order among all keys seen), time (nulls first), line.
type RowKey = (u32, Option<i64>, u64);

/// Fewest runs a merge should be able to read at once: a run's batch size is chosen so that
/// this many batches fit in the budget. With 16, a 10 GiB input sorted with a 64 MiB budget
/// (160 runs) merges in two passes at worst; a larger fan-in means smaller batches, and
/// batches under a few thousand rows make the merge's per-batch costs (IPC decode,
/// dictionary ranks) show up in `sort_bench`.
const MIN_FAN_IN: usize = 16;

/// Bounds on the rows per batch inside a spilled run (the merge holds one such batch per
/// open run). 8 K rows of tick data is about 0.5 MiB; below 256 rows per-batch overheads
/// dominate.
const MAX_RUN_BATCH_ROWS: usize = 8192;
const MIN_RUN_BATCH_ROWS: usize = 256;

/// zstd level of spilled runs. Compression was 35% of `sort_bench`'s profile at arrow's
/// default level 3; level 1 (also the output default, chosen by the same kind of
/// measurement) is what the figure in [`ExternalSorter`]'s docs was measured with.
const SPILL_ZSTD_LEVEL: i32 = 1;

/// Each key string's rank in byte order, plus one (0 is the null key).
struct Ranks {
    map: HashMap<String, u32>,
}

impl Ranks {
    fn new(keys: &BTreeSet<String>) -> Self {
        let map = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u32 + 1))
            .collect();
        Ranks { map }
    }

    fn get(&self, key: &str) -> Result<u32> {
        self.map.get(key).copied().ok_or_else(|| {
            Error::Internal(format!("sort key `{key}` was not seen while buffering"))
        })
    }
}

/// The columns a sort reads.
#[derive(Debug, Clone)]
struct SortColumns {
    /// `None`: sort by time and line only.
    key: Option<String>,
    ts: String,
}

/// Adds the key strings of `batch` to `seen` (for a dictionary column: its values).
fn collect_keys(batch: &RecordBatch, key: &str, seen: &mut BTreeSet<String>) -> Result<()> {
    let Some(k) = batch.column_by_name(key) else {
        return Ok(());
    };
    let add = |s: &str| {
        if !seen.contains(s) {
            seen.insert(s.to_owned());
        }
    };
    match k.data_type() {
        DataType::Dictionary(kt, vt) if **kt == DataType::Int32 && **vt == DataType::Utf8 => {
            let v = k.as_dictionary::<Int32Type>().values().as_string::<i32>();
            v.iter().flatten().for_each(add);
        }
        DataType::Utf8 => k.as_string::<i32>().iter().flatten().for_each(add),
        other => {
            return Err(Error::Schema(format!(
                "sort key `{key}` must be a string column, found {other}"
            )));
        }
    }
    Ok(())
}

/// The raw values of a time column: any timestamp unit or Int64 (values of one source share
/// a type, so their order is the order of the raw numbers).
fn time_values(t: &ArrayRef, ts: &str) -> Result<Vec<Option<i64>>> {
    Ok(match t.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            t.as_primitive::<TimestampNanosecondType>().iter().collect()
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => t
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => t
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect(),
        DataType::Timestamp(TimeUnit::Second, _) => {
            t.as_primitive::<TimestampSecondType>().iter().collect()
        }
        DataType::Int64 => t.as_primitive::<Int64Type>().iter().collect(),
        other => {
            return Err(Error::Schema(format!(
                "sort time `{ts}` must be a timestamp or Int64, found {other}"
            )));
        }
    })
}

/// The sort key of every row of `batch`. A missing key or time column sorts as nulls.
fn row_keys(batch: &RecordBatch, cols: &SortColumns, ranks: &Ranks) -> Result<Vec<RowKey>> {
    let n = batch.num_rows();
    let lines = batch
        .column_by_name(LINE_COLUMN)
        .ok_or_else(|| Error::Internal("sorted rows lost their line column".into()))?
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| Error::Internal("the line column is not UInt64".into()))?;
    let key_ranks: Vec<u32> = match cols.key.as_deref().and_then(|k| batch.column_by_name(k)) {
        None => vec![0; n],
        Some(k) => match k.data_type() {
            DataType::Dictionary(kt, vt) if **kt == DataType::Int32 && **vt == DataType::Utf8 => {
                let d = k.as_dictionary::<Int32Type>();
                let values = d.values().as_string::<i32>();
                // One rank lookup per dictionary value, then one table read per row.
                let table = (0..values.len())
                    .map(|j| {
                        if values.is_null(j) {
                            Ok(0)
                        } else {
                            ranks.get(values.value(j))
                        }
                    })
                    .collect::<Result<Vec<u32>>>()?;
                let keys = d.keys();
                (0..n)
                    .map(|i| {
                        if keys.is_null(i) {
                            0
                        } else {
                            table
                                .get(keys.value(i) as usize)
                                .copied()
                                .unwrap_or_default()
                        }
                    })
                    .collect()
            }
            DataType::Utf8 => k
                .as_string::<i32>()
                .iter()
                .map(|s| s.map_or(Ok(0), |s| ranks.get(s)))
                .collect::<Result<_>>()?,
            other => {
                return Err(Error::Schema(format!(
                    "sort key `{}` must be a string column, found {other}",
                    cols.key.as_deref().unwrap_or_default()
                )));
            }
        },
    };
    let times = match batch.column_by_name(&cols.ts) {
        None => vec![None; n],
        Some(t) => time_values(t, &cols.ts)?,
    };
    Ok(key_ranks
        .into_iter()
        .zip(times)
        .zip(lines.values().iter())
        .map(|((k, t), l)| (k, t, *l))
        .collect())
}

/// A sorter's own spill directory (`<parent>/.tickpipe-sort-<pid>-<n>`), created at the first
/// spill and removed with everything in it when dropped, so spill files go away on success,
/// on error and on panic (unwinding drops it). A process killed outright leaves it behind;
/// such directories are safe to delete.
#[derive(Debug)]
struct SpillDir {
    path: PathBuf,
    created: bool,
    files: u64,
}

impl SpillDir {
    fn new(parent: &Path, id: u64) -> Self {
        SpillDir {
            path: parent.join(format!("{SPILL_DIR_PREFIX}{}-{id}", std::process::id())),
            created: false,
            files: 0,
        }
    }

    fn new_file(&mut self) -> Result<PathBuf> {
        if !self.created {
            std::fs::create_dir_all(&self.path).map_err(|e| Error::io(&self.path, e))?;
            self.created = true;
        }
        self.files += 1;
        Ok(self.path.join(format!("run-{}.arrows", self.files)))
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Prefix of every sorter's spill directory name; the process id and a counter follow.
const SPILL_DIR_PREFIX: &str = ".tickpipe-sort-";

/// Removes the spill directories that killed processes left in `parent`: those named for a
/// process id that is no longer running (checked in `/proc`, so only on Linux; elsewhere
/// nothing is removed). Returns how many were removed. Directories of running processes,
/// this one included, are kept.
pub fn remove_stale_spill_dirs(parent: &Path) -> usize {
    if !Path::new("/proc/self").exists() {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(SPILL_DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && e.path().is_dir() && std::fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Writes `batches` as one zstd-compressed Arrow IPC stream (the stream format allows each
/// batch its own dictionaries, which interleaved batches have).
fn write_run(
    path: &Path,
    schema: &SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let opts = IpcWriteOptions::default()
        .try_with_compression(Some(CompressionType::ZSTD))?
        .try_with_compression_level(Some(SPILL_ZSTD_LEVEL))?;
    let mut w = StreamWriter::try_new_with_options(BufWriter::new(file), schema, opts)?;
    for b in batches {
        w.write(&b?)?;
    }
    w.finish()?;
    Ok(())
}

/// Sorts the rows of one source by `(key, ts, line)` ([`ExternalSorter::new`]) or by
/// `(ts, line)` ([`ExternalSorter::by_time`]) within a memory budget.
///
/// Chunks are buffered until they hold `budget_bytes` (Arrow memory); each full buffer is
/// sorted and written as a run (a zstd-compressed Arrow IPC stream) in the sorter's own
/// directory under the spill directory. `finish` merges the runs into sorted chunks of at
/// most `out_rows` rows, first merging groups of runs into longer runs when more of them
/// are open than the budget holds (one batch of each open run is in memory). When nothing
/// was spilled, the buffer is sorted in memory and no file is written. Ties on
/// `(key, ts, line)` keep input order, so the output does not depend on the budget. Keys
/// sort in byte order with nulls first, times with nulls first; a missing key or time column
/// sorts as all nulls.
///
/// Memory: the buffer (`budget_bytes`) plus 40 bytes per buffered row while a run is sorted;
/// during the merge, at most `budget_bytes` of run batches plus the output chunk.
///
/// Speed (`sort_bench`, 2 M shuffled tick rows, 16 MiB budget, 6 runs, one core of the
/// development machine, release build): 3.0-3.1 M rows/s for push, spill and merge together.
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
    cols: SortColumns,
    budget: usize,
    dir: SpillDir,
    source: Option<SourceId>,
    schema: Option<SchemaRef>,
    keys: BTreeSet<String>,
    buffered: Vec<RecordBatch>,
    bytes: usize,
    total_bytes: u64,
    total_rows: u64,
    run_rows: usize,
    runs: Vec<PathBuf>,
}

impl ExternalSorter {
    /// A sorter by `key_col` then `ts_col`, buffering at most `budget_bytes` before spilling
    /// to files in its own directory under `spill_dir`.
    pub fn new(key_col: &str, ts_col: &str, budget_bytes: usize, spill_dir: &Path) -> Self {
        Self::with_columns(Some(key_col), ts_col, budget_bytes, spill_dir)
    }

    /// A sorter by `ts_col` alone (then line): the rows in time order, ties in input order.
    pub fn by_time(ts_col: &str, budget_bytes: usize, spill_dir: &Path) -> Self {
        Self::with_columns(None, ts_col, budget_bytes, spill_dir)
    }

    fn with_columns(
        key_col: Option<&str>,
        ts_col: &str,
        budget_bytes: usize,
        spill_dir: &Path,
    ) -> Self {
        ExternalSorter {
            cols: SortColumns {
                key: key_col.map(str::to_owned),
                ts: ts_col.into(),
            },
            budget: budget_bytes.max(1),
            dir: SpillDir::new(spill_dir, NEXT_SORTER.fetch_add(1, AtomicOrdering::Relaxed)),
            source: None,
            schema: None,
            keys: BTreeSet::new(),
            buffered: Vec::new(),
            bytes: 0,
            total_bytes: 0,
            total_rows: 0,
            run_rows: MAX_RUN_BATCH_ROWS,
            runs: Vec::new(),
        }
    }

    /// Number of runs spilled so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds a chunk (all chunks must come from one source and share a schema).
    pub fn push(&mut self, chunk: Chunk) -> Result<()> {
        match self.source {
            None => {
                self.source = Some(chunk.source());
                self.schema = Some(chunk.schema());
            }
            Some(s) if s != chunk.source() => {
                return Err(Error::Internal(format!(
                    "external sort of source {s} got a chunk of source {}",
                    chunk.source()
                )));
            }
            Some(_) => {}
        }
        if chunk.is_empty() {
            return Ok(());
        }
        if let Some(key) = &self.cols.key {
            collect_keys(chunk.batch(), key, &mut self.keys)?;
        }
        let size = chunk.memory_size();
        self.bytes += size;
        self.total_bytes += size as u64;
        self.total_rows += chunk.num_rows() as u64;
        self.buffered.push(chunk.into_batch());
        if self.bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Mean Arrow bytes per row pushed so far (at least 1).
    fn row_bytes(&self) -> usize {
        (self.total_bytes / self.total_rows.max(1)).max(1) as usize
    }

    /// The buffered rows' `(batch, row)` positions in sorted order.
    fn sorted_order(&self) -> Result<Vec<(usize, usize)>> {
        let ranks = Ranks::new(&self.keys);
        let rows: usize = self.buffered.iter().map(RecordBatch::num_rows).sum();
        let mut all: Vec<(RowKey, u32, u32)> = Vec::with_capacity(rows);
        for (b, batch) in self.buffered.iter().enumerate() {
            let keys = row_keys(batch, &self.cols, &ranks)?;
            all.extend(
                keys.into_iter()
                    .enumerate()
                    .map(|(r, k)| (k, b as u32, r as u32)),
            );
        }
        // Batch and row end every tuple, so ties keep input order with an unstable sort.
        all.sort_unstable();
        Ok(all
            .into_iter()
            .map(|(_, b, r)| (b as usize, r as usize))
            .collect())
    }

    fn spill(&mut self) -> Result<()> {
        let Some(schema) = self.schema.clone() else {
            return Ok(());
        };
        if self.buffered.is_empty() {
            return Ok(());
        }
        if self.runs.is_empty() {
            // The first run fixes the batch size so that MIN_FAN_IN batches fit the budget.
            self.run_rows = (self.budget / self.row_bytes() / MIN_FAN_IN)
                .clamp(MIN_RUN_BATCH_ROWS, MAX_RUN_BATCH_ROWS);
        }
        let order = self.sorted_order()?;
        let refs: Vec<&RecordBatch> = self.buffered.iter().collect();
        let path = self.dir.new_file()?;
        // The run is written a batch at a time, straight from the buffered batches.
        write_run(
            &path,
            &schema,
            order
                .chunks(self.run_rows)
                .map(|picks| gather(&refs, picks)),
        )?;
        self.runs.push(path);
        self.buffered.clear();
        self.bytes = 0;
        Ok(())
    }

    /// Merges everything into sorted chunks of at most `out_rows` rows.
    pub fn finish(mut self, out_rows: usize) -> Result<SortedChunks> {
        let source = self.source.unwrap_or(0);
        let out_rows = out_rows.max(1);
        if self.runs.is_empty() {
            // Everything fit in memory: no files at all.
            let order = self.sorted_order()?;
            return Ok(SortedChunks {
                output: Output::Memory {
                    batches: std::mem::take(&mut self.buffered),
                    order,
                    pos: 0,
                },
                out_rows,
                source,
                seq: 0,
                _dir: None,
            });
        }
        self.spill()?;
        let ranks = Arc::new(Ranks::new(&self.keys));
        let fan_in = (self.budget / (self.run_rows * self.row_bytes())).max(2);
        let mut runs = std::mem::take(&mut self.runs);
        // Merge passes: groups of `fan_in` consecutive runs become one run each (consecutive,
        // so ties still resolve in input order), until one merge can read them all.
        while runs.len() > fan_in {
            let mut next = Vec::with_capacity(runs.len().div_ceil(fan_in));
            for group in runs.chunks(fan_in) {
                if let [one] = group {
                    next.push(one.clone());
                    continue;
                }
                let mut merger = Merger::open(group, &self.cols, &ranks)?;
                let path = self.dir.new_file()?;
                let run_rows = self.run_rows;
                write_run(
                    &path,
                    &merger.schema.clone(),
                    std::iter::from_fn(|| merger.next_batch(run_rows).transpose()),
                )?;
                for p in group {
                    let _ = std::fs::remove_file(p);
                }
                next.push(path);
            }
            runs = next;
        }
        let merger = Merger::open(&runs, &self.cols, &ranks)?;
        let dir = std::mem::replace(&mut self.dir, SpillDir::new(Path::new(""), 0));
        Ok(SortedChunks {
            output: Output::Merge(merger),
            out_rows,
            source,
            seq: 0,
            _dir: Some(dir),
        })
    }
}

/// Rows `picks` (`(batch, row)` into `batches`) as one batch, passing `interleave` only the
/// batches picked from (it merges or concatenates the dictionaries of every batch it gets).
fn gather(batches: &[&RecordBatch], picks: &[(usize, usize)]) -> Result<RecordBatch> {
    let mut slot: Vec<Option<usize>> = vec![None; batches.len()];
    let mut used: Vec<&RecordBatch> = Vec::new();
    let local: Vec<(usize, usize)> = picks
        .iter()
        .map(|&(b, r)| {
            let s = *slot[b].get_or_insert_with(|| {
                used.push(batches[b]);
                used.len() - 1
            });
            (s, r)
        })
        .collect();
    Ok(arrow_select::interleave::interleave_record_batch(
        &used, &local,
    )?)
}

/// Rewrites every `Dictionary(Int32, Utf8)` column whose dictionary holds a value more than
/// once so that each value has one slot. Interleaving batches concatenates their
/// dictionaries, and code downstream may treat slots as distinct values: the engine's key
/// router, given two `AAPL` slots in one chunk, sent them to different workers.
fn unique_dictionaries(batch: RecordBatch) -> Result<RecordBatch> {
    let mut columns = batch.columns().to_vec();
    let mut changed = false;
    for col in &mut columns {
        let DataType::Dictionary(k, v) = col.data_type() else {
            continue;
        };
        if **k != DataType::Int32 || **v != DataType::Utf8 {
            continue;
        }
        let d = col.as_dictionary::<Int32Type>();
        let values = d.values().as_string::<i32>();
        let mut slot: HashMap<Option<&str>, i32> = HashMap::with_capacity(values.len());
        let mut unique = StringBuilder::new();
        let remap: Vec<i32> = values
            .iter()
            .map(|v| {
                *slot.entry(v).or_insert_with(|| {
                    unique.append_option(v);
                    (unique.len() - 1) as i32
                })
            })
            .collect();
        if unique.len() == values.len() {
            continue;
        }
        let keys: Int32Array = d
            .keys()
            .iter()
            .map(|k| k.and_then(|k| remap.get(k as usize).copied()))
            .collect();
        *col = Arc::new(DictionaryArray::<Int32Type>::try_new(
            keys,
            Arc::new(unique.finish()),
        )?);
        changed = true;
    }
    if !changed {
        return Ok(batch);
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Reads one run a batch at a time and knows the sort key of each row of the current batch.
struct Cursor {
    reader: StreamReader<BufReader<File>>,
    batch: Option<RecordBatch>,
    keys: Vec<RowKey>,
    row: usize,
    /// Index of the current batch in the output being assembled, once picked from.
    slot: Option<usize>,
}

impl Cursor {
    fn open(path: &Path, cols: &SortColumns, ranks: &Ranks) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = StreamReader::try_new(BufReader::new(file), None)?;
        let mut c = Cursor {
            reader,
            batch: None,
            keys: Vec::new(),
            row: 0,
            slot: None,
        };
        c.load(cols, ranks)?;
        Ok(c)
    }

    /// Moves to the next non-empty batch (or to the end).
    fn load(&mut self, cols: &SortColumns, ranks: &Ranks) -> Result<()> {
        self.batch = None;
        self.keys.clear();
        self.row = 0;
        self.slot = None;
        for b in self.reader.by_ref() {
            let b = b?;
            if b.num_rows() > 0 {
                self.keys = row_keys(&b, cols, ranks)?;
                self.batch = Some(b);
                break;
            }
        }
        Ok(())
    }

    fn current(&self) -> Option<RowKey> {
        self.keys.get(self.row).copied()
    }
}

/// A k-way merge of sorted runs; ties between runs go to the earlier run.
struct Merger {
    cursors: Vec<Cursor>,
    heap: BinaryHeap<Reverse<(RowKey, usize)>>,
    cols: SortColumns,
    ranks: Arc<Ranks>,
    schema: SchemaRef,
}

impl Merger {
    fn open(paths: &[PathBuf], cols: &SortColumns, ranks: &Arc<Ranks>) -> Result<Self> {
        let cursors = paths
            .iter()
            .map(|p| Cursor::open(p, cols, ranks))
            .collect::<Result<Vec<_>>>()?;
        let schema = cursors
            .first()
            .map(|c| c.reader.schema())
            .ok_or_else(|| Error::Internal("merge of zero runs".into()))?;
        let heap = cursors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.current().map(|k| Reverse((k, i))))
            .collect();
        Ok(Merger {
            cursors,
            heap,
            cols: cols.clone(),
            ranks: ranks.clone(),
            schema,
        })
    }

    /// The next at most `max_rows` rows in order, or `None` at the end.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>> {
        let mut parts: Vec<RecordBatch> = Vec::new();
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(max_rows);
        for c in &mut self.cursors {
            c.slot = None;
        }
        while picks.len() < max_rows {
            let Some(Reverse((_, i))) = self.heap.pop() else {
                break;
            };
            // The popped run keeps the lead while its rows sort before the next run's head:
            // nearly sorted input then costs one heap operation per stretch, not per row.
            let bound = self.heap.peek().map(|Reverse(top)| *top);
            let c = &mut self.cursors[i];
            while let Some(batch) = &c.batch {
                let slot = *c.slot.get_or_insert_with(|| {
                    parts.push(batch.clone());
                    parts.len() - 1
                });
                picks.push((slot, c.row));
                c.row += 1;
                if c.row == c.keys.len() {
                    c.load(&self.cols, &self.ranks)?;
                }
                let Some(k) = c.current() else { break };
                if picks.len() >= max_rows || bound.is_some_and(|b| (k, i) > b) {
                    self.heap.push(Reverse((k, i)));
                    break;
                }
            }
        }
        if picks.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&RecordBatch> = parts.iter().collect();
        Ok(Some(arrow_select::interleave::interleave_record_batch(
            &refs, &picks,
        )?))
    }
}

enum Output {
    /// Nothing was spilled: the buffered batches and their sorted order.
    Memory {
        batches: Vec<RecordBatch>,
        order: Vec<(usize, usize)>,
        pos: usize,
    },
    /// A merge of spilled runs.
    Merge(Merger),
}

/// The merged, sorted output of an [`ExternalSorter`]: chunks of the sorted source numbered
/// from 0. Deletes its spill files when dropped.
pub struct SortedChunks {
    output: Output,
    out_rows: usize,
    source: SourceId,
    seq: u64,
    /// Declared last so open run files are closed before their directory goes.
    _dir: Option<SpillDir>,
}

impl SortedChunks {
    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let batch = match &mut self.output {
            Output::Memory {
                batches,
                order,
                pos,
            } => {
                if *pos >= order.len() {
                    return Ok(None);
                }
                let end = (*pos + self.out_rows).min(order.len());
                let refs: Vec<&RecordBatch> = batches.iter().collect();
                let b = gather(&refs, &order[*pos..end])?;
                *pos = end;
                b
            }
            Output::Merge(m) => match m.next_batch(self.out_rows)? {
                Some(b) => b,
                None => return Ok(None),
            },
        };
        let chunk = Chunk::new(unique_dictionaries(batch)?, self.source, self.seq)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    use arrow_array::{DictionaryArray, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed.max(1);
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    fn chunk(seed: u64, n: usize, seq: u64) -> Chunk {
        let mut r = xorshift(seed);
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

    /// A chunk with a dictionary symbol column (its own dictionary, in its own order), nulls
    /// in both key and time, and an extra column that must travel with its row.
    fn dict_chunk(seed: u64, n: usize, seq: u64) -> Chunk {
        let mut r = xorshift(seed);
        let pool = ["ZZ", "A", "MSFT", "AA", "B"];
        let syms: DictionaryArray<Int32Type> = (0..n)
            .map(|_| match r() % 11 {
                0 => None,
                k => Some(pool[(k % 5) as usize]),
            })
            .collect();
        let ts: Int64Array = (0..n)
            .map(|_| match r() % 13 {
                0 => None,
                k => Some((k * 7 % 20) as i64),
            })
            .collect();
        let first_line = 10 + seq * n as u64;
        let payload = Int64Array::from_iter_values((0..n as u64).map(|i| (first_line + i) as i64));
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Int64, true),
            Field::new(
                "symbol",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("payload", DataType::Int64, true),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![Arc::new(ts), Arc::new(syms), Arc::new(payload)],
        )
        .unwrap();
        Chunk::with_first_line(b, 1, seq, first_line).unwrap()
    }

    /// `(symbol, ts, line)` of every row, read back as plain values.
    fn plain_keys(out: &[Chunk]) -> Vec<(Option<String>, Option<i64>, u64)> {
        let mut v = Vec::new();
        for c in out {
            let b = c.batch();
            let sym = b.column_by_name("symbol").unwrap();
            let ts = b.column_by_name("ts").unwrap().as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let s = match sym.as_dictionary_opt::<Int32Type>() {
                    Some(d) => d.is_valid(i).then(|| {
                        let v = d.values().as_string::<i32>();
                        v.value(d.keys().value(i) as usize).to_string()
                    }),
                    None => {
                        let s = sym.as_string::<i32>();
                        s.is_valid(i).then(|| s.value(i).to_string())
                    }
                };
                v.push((s, ts.is_valid(i).then(|| ts.value(i)), c.line(i)));
            }
        }
        v
    }

    fn sort_all(
        input: &[Chunk],
        budget: usize,
        dir: &Path,
        out_rows: usize,
    ) -> (Vec<Chunk>, usize) {
        let mut s = ExternalSorter::new("symbol", "ts", budget, dir);
        for c in input {
            s.push(c.clone()).unwrap();
        }
        let spilled = s.spilled_runs();
        let out = s.finish(out_rows).unwrap().collect::<Result<_>>().unwrap();
        (out, spilled)
    }

    #[test]
    fn spilled_and_in_memory_sorts_agree_with_a_plain_sort() {
        let input: Vec<Chunk> = (0..20).map(|i| chunk(i + 1, 97, i)).collect();
        let mut want = plain_keys(&input);
        want.sort();
        let dir = tempfile::tempdir().unwrap();
        for budget in [1, 10_000, usize::MAX] {
            let (out, spilled) = sort_all(&input, budget, dir.path(), 128);
            assert_eq!(plain_keys(&out), want, "budget {budget}");
            assert!(out.iter().all(|c| c.num_rows() <= 128 && c.source() == 4));
            let seqs: Vec<u64> = out.iter().map(Chunk::seq).collect();
            assert_eq!(seqs, (0..out.len() as u64).collect::<Vec<_>>());
            match budget {
                1 => assert_eq!(spilled, 20),
                usize::MAX => assert_eq!(spilled, 0),
                _ => assert!(spilled > 1 && spilled < 20, "{spilled} runs"),
            }
        }
        // Spill directories are gone once the output is dropped.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn dictionary_keys_and_nulls_sort_by_value_and_rows_stay_whole() {
        // Each chunk has its own dictionary order; a budget of one byte spills every chunk
        // and forces merge passes (fan-in 2), so ranks must agree across runs and passes.
        let input: Vec<Chunk> = (0..9).map(|i| dict_chunk(i + 7, 61, i)).collect();
        let mut want = plain_keys(&input);
        want.sort();
        let dir = tempfile::tempdir().unwrap();
        for budget in [1, 4096, usize::MAX] {
            let (out, _) = sort_all(&input, budget, dir.path(), 50);
            assert_eq!(plain_keys(&out), want, "budget {budget}");
            for c in &out {
                // One dictionary slot per symbol, however many input dictionaries met.
                let d = c
                    .column_by_name("symbol")
                    .unwrap()
                    .as_dictionary::<Int32Type>();
                let names: Vec<_> = d.values().as_string::<i32>().iter().collect();
                let unique: BTreeSet<_> = names.iter().collect();
                assert_eq!(unique.len(), names.len(), "{names:?}");
                let p = c
                    .column_by_name("payload")
                    .unwrap()
                    .as_primitive::<Int64Type>();
                for i in 0..c.num_rows() {
                    assert_eq!(
                        p.value(i) as u64,
                        c.line(i),
                        "row moved without its payload"
                    );
                }
            }
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn equal_keys_keep_input_order() {
        // Every row has the same symbol, time and line: only input order tells them apart.
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("payload", DataType::Int64, true),
        ]));
        let input: Vec<Chunk> = (0..6)
            .map(|k| {
                let b = RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from(vec!["X"; 5])),
                        Arc::new(Int64Array::from_iter_values(k * 5..k * 5 + 5)),
                    ],
                )
                .unwrap();
                let lines = arrow_array::UInt64Array::from(vec![1; 5]);
                Chunk::with_lines(b, 0, k as u64, lines).unwrap()
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        for budget in [1, usize::MAX] {
            let (out, _) = sort_all(&input, budget, dir.path(), 7);
            let payload: Vec<i64> = out
                .iter()
                .flat_map(|c| {
                    let p = c
                        .column_by_name("payload")
                        .unwrap()
                        .as_primitive::<Int64Type>();
                    p.values().to_vec()
                })
                .collect();
            assert_eq!(payload, (0..30).collect::<Vec<_>>(), "budget {budget}");
        }
    }

    #[test]
    fn dropping_an_unfinished_sorter_removes_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ExternalSorter::new("symbol", "ts", 1, dir.path());
        s.push(chunk(1, 10, 0)).unwrap();
        s.push(chunk(2, 10, 1)).unwrap();
        assert_eq!(s.spilled_runs(), 2);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_panic_mid_merge_removes_the_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let r = std::panic::catch_unwind(move || {
            let mut s = ExternalSorter::new("symbol", "ts", 1, &path);
            for i in 0..3 {
                s.push(chunk(i + 1, 10, i)).unwrap();
            }
            let mut out = s.finish(4).unwrap();
            out.next().unwrap().unwrap();
            assert_eq!(std::fs::read_dir(&path).unwrap().count(), 1);
            panic!("a stage blew up");
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn spill_dirs_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // Process ids are below 2^22 on Linux, so this one is not running.
        let dead = dir.path().join(format!("{SPILL_DIR_PREFIX}4294967295-0"));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join("run-1.arrows"), b"x").unwrap();
        let mut live = ExternalSorter::new("symbol", "ts", 1, dir.path());
        live.push(chunk(1, 10, 0)).unwrap();
        let other = dir.path().join("keep-me");
        std::fs::create_dir_all(&other).unwrap();
        let removed = remove_stale_spill_dirs(dir.path());
        if cfg!(target_os = "linux") {
            assert_eq!(removed, 1);
            assert!(!dead.exists());
        }
        // This process's directory and unrelated entries stay.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        drop(live);
        assert!(other.exists());
    }

    #[test]
    fn chunks_of_two_sources_are_refused() {
        let mut s = ExternalSorter::new("symbol", "ts", 1 << 20, &std::env::temp_dir());
        s.push(chunk(1, 3, 0)).unwrap();
        let other = Chunk::new(chunk(2, 3, 1).into_batch(), 5, 1).unwrap();
        assert!(s.push(other).is_err());
    }

    #[test]
    fn a_numeric_key_column_is_a_schema_error() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "symbol",
            DataType::Int64,
            true,
        )]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
        let mut s = ExternalSorter::new("symbol", "ts", 1 << 20, &std::env::temp_dir());
        let err = s
            .push(Chunk::with_first_line(b, 0, 0, 2).unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::Schema(_)), "{err}");
    }
}
