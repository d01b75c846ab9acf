//! The partitioned sink: rows split by Hive key into per-partition files, at most
//! `max_open_files` writers open, least recently used closed first.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, FieldRef, Schema};
use pipeline_core::{Chunk, Result, Sink, SinkSummary};

use super::options::{PartitionKey, WriteOptions};
use super::partition::{HIVE_DEFAULT_PARTITION, split_by_partition};
use super::writer::{ClosedFile, FileWriter};

/// Row groups after which a partition's file is closed and the next part file begun (see
/// `PartitionedSink::roll_if_full`). The writer keeps every row group's metadata and page
/// index until it closes the file, about 30 KB per row group for the 27 tick and feature
/// columns. With the default 256 MiB limit, 20 symbols share 8 MiB of writer buffer per worker,
/// so row groups hold about 10,000 rows. Measured with `tickpipe run -` on 100 M piped
/// gen-data rows, 20 symbols: 64 row groups per file peaked at 309 MiB and was still rising
/// at the end; 16 peaked at 251 MiB, with 567 files of about 9 MB. A larger memory limit
/// gives larger row groups, and so larger files.
pub const MAX_ROW_GROUPS_PER_FILE: usize = 16;

/// Batches a partition's held rows are kept in before they are merged into one: a one-row
/// batch of the 27 tick and feature columns costs a few KB of buffers, so a thousand sparse
/// symbols' rows held one batch per chunk would use the budget on overhead.
const PENDING_BATCHES: usize = 8;

/// Held batches averaging fewer rows than this are merged at once: a sparse symbol's rows
/// arrive one or two per chunk, and in the issue #13 case-6 shape (1,000 symbols of 10 rows
/// beside a busy one, 2 workers, 256 MiB) unmerged one-row batches overflowed the budget and
/// gave 35 symbols a second file; merged, every sparse symbol got one.
const SMALL_BATCH_ROWS: usize = 256;

/// One partition directory and its current file.
struct Slot {
    writer: Option<FileWriter>,
    /// Tick of the last write; the key of this slot in `PartitionedSink::open`.
    last_used: u64,
    /// Number of the next file of this partition within the segment.
    next_part: u32,
    /// Whether new files still declare the sort order; cleared after the rows broke it once,
    /// so unsorted input costs one extra file per partition, not one per chunk.
    claim_order: bool,
    /// Bytes the open writer buffered after its last write.
    buffered: usize,
}

impl Slot {
    /// Completes the slot's writer, if any, into `closed`; returns the bytes it buffered.
    fn close(&mut self, closed: &mut Vec<ClosedFile>) -> Result<usize> {
        if let Some(w) = self.writer.take() {
            closed.push(w.close()?);
        }
        Ok(std::mem::take(&mut self.buffered))
    }
}

/// Writes chunks into `dir/key=value/…/part-<segment>-<n>.<ext>`.
pub struct PartitionedSink {
    dir: PathBuf,
    segment: u32,
    opts: WriteOptions,
    slots: HashMap<String, Slot>,
    /// Open partitions by last use, oldest first.
    open: BTreeMap<u64, String>,
    tick: u64,
    closed: Vec<ClosedFile>,
    /// Sum of `Slot::buffered` over open writers.
    buffered_total: usize,
    /// With date or month partitions: for each partition without its time part (e.g.
    /// `symbol=AAPL`), the latest time value written and its full key.
    latest_period: HashMap<String, (String, String)>,
    /// Rows of partitions without an open file, gathered until they reach
    /// `min_rows_per_file` (see [`WriteOptions::min_rows_per_file`]).
    pending: HashMap<String, Pending>,
    /// Sum of `Pending::bytes`.
    pending_bytes: usize,
    /// Small output batches not yet split by partition (see
    /// [`WriteOptions::gather_rows`]), in arrival order, all of one schema.
    gathered: Vec<RecordBatch>,
    gathered_rows: usize,
    gathered_bytes: usize,
    done: bool,
}

/// Rows held for a partition before its file is opened.
#[derive(Default)]
struct Pending {
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
}

/// Creates a partitioned sink writing under `dir`; `segment` numbers this sink's files so
/// several sinks (one per worker or per run segment) can share a directory.
///
/// Files are written under hidden temporary names and renamed into place by
/// [`Sink::finish`]; a writer closed early (least recently used) is complete but keeps its
/// temporary name until then, so nothing under a final name exists before the run succeeds
/// and [`Sink::abort`] removes everything this sink wrote.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Array, DictionaryArray, Float64Array, RecordBatch, types::Int32Type};
/// use arrow_schema::{Field, Schema};
/// use pipeline_core::Chunk;
/// use pipeline_io::{create_sink, read_dataset, WriteOptions};
///
/// let symbol: DictionaryArray<Int32Type> = vec!["AAPL", "MSFT", "AAPL"].into_iter().collect();
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("symbol", symbol.data_type().clone(), false),
///     Field::new("price", arrow_schema::DataType::Float64, true),
/// ]));
/// let batch = RecordBatch::try_new(schema, vec![
///     Arc::new(symbol), Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])),
/// ])?;
/// let dir = std::env::temp_dir().join(format!("tickpipe-doc-{}", std::process::id()));
/// let mut sink = create_sink(&dir, 0, &WriteOptions::default())?;
/// sink.write(&Chunk::with_first_line(batch, 0, 0, 2)?)?;
/// let summary = sink.finish()?;
/// assert_eq!(summary.rows, 3);
/// assert!(summary.files[0].ends_with("symbol=AAPL/part-00000-000.parquet"));
/// assert_eq!(read_dataset(&dir)?.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), pipeline_core::Error>(())
/// ```
pub fn create_sink(dir: &Path, segment: u32, opts: &WriteOptions) -> Result<Box<dyn Sink>> {
    opts.validate()?;
    Ok(Box::new(PartitionedSink {
        dir: dir.to_path_buf(),
        segment,
        opts: opts.clone(),
        slots: HashMap::new(),
        open: BTreeMap::new(),
        tick: 0,
        closed: Vec::new(),
        buffered_total: 0,
        latest_period: HashMap::new(),
        pending: HashMap::new(),
        pending_bytes: 0,
        gathered: Vec::new(),
        gathered_rows: 0,
        gathered_bytes: 0,
        done: false,
    }))
}

impl PartitionedSink {
    /// Routes a partition's rows: to its open file, or into its pending rows until they
    /// are enough for a file of `min_rows_per_file` rows. Pending rows may use what the open
    /// writers leave of `max_buffered_bytes` (at least a quarter of it); past it the
    /// partition holding the most is written out early (a small file, but bounded memory).
    fn route(&mut self, key: String, batch: RecordBatch) -> Result<()> {
        self.close_past_period(&key)?;
        let open = self.slots.get(&key).is_some_and(|s| s.writer.is_some());
        if open || self.opts.min_rows_per_file <= 1 {
            return self.write_partition(key, batch);
        }
        let p = self.pending.entry(key.clone()).or_default();
        let bytes = batch.get_array_memory_size();
        p.rows += batch.num_rows();
        p.bytes += bytes;
        p.batches.push(batch);
        self.pending_bytes += bytes;
        let n = p.batches.len();
        if n >= PENDING_BATCHES || (n >= 2 && p.rows < SMALL_BATCH_ROWS * n) {
            // Many small batches cost more in per-array overhead than in rows: merge them.
            let merged = arrow_select::concat::concat_batches(&p.batches[0].schema(), &p.batches)?;
            let now = merged.get_array_memory_size();
            self.pending_bytes = self.pending_bytes - p.bytes + now;
            p.bytes = now;
            p.batches = vec![merged];
        }
        if p.rows >= self.opts.min_rows_per_file {
            self.flush_pending(&key)?;
        }
        // Held rows may use what the open writers leave of the budget (at least a quarter).
        let budget = self
            .opts
            .max_buffered_bytes
            .saturating_sub(self.buffered_total)
            .max(self.opts.max_buffered_bytes / 4);
        while self.pending_bytes > budget {
            let Some(largest) = self
                .pending
                .iter()
                .max_by(|a, b| a.1.bytes.cmp(&b.1.bytes).then(b.0.cmp(a.0)))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.flush_pending(&largest)?;
        }
        Ok(())
    }

    /// Writes a partition's pending rows to its file (opening it).
    fn flush_pending(&mut self, key: &str) -> Result<()> {
        let Some(p) = self.pending.remove(key) else {
            return Ok(());
        };
        self.pending_bytes -= p.bytes;
        for b in p.batches {
            self.write_partition(key.to_string(), b)?;
        }
        Ok(())
    }

    fn write_partition(&mut self, key: String, batch: RecordBatch) -> Result<()> {
        self.tick += 1;
        let tick = self.tick;
        let claim_default = self.opts.partition_by.contains(&PartitionKey::Symbol);
        let slot = self.slots.entry(key.clone()).or_insert(Slot {
            writer: None,
            last_used: 0,
            next_part: 0,
            claim_order: claim_default,
            buffered: 0,
        });
        // A file that cannot take these rows (new schema, broken order) is closed first.
        if let Some(w) = &mut slot.writer {
            let same_schema = w.schema().as_ref() == batch.schema().as_ref();
            let in_order = same_schema && w.keeps_order(&batch)?;
            if !in_order {
                if same_schema {
                    slot.claim_order = false;
                }
                self.buffered_total -= slot.close(&mut self.closed)?;
                self.open.remove(&slot.last_used);
            }
        }
        if slot.writer.is_none() {
            let claim = slot.claim_order;
            let part = slot.next_part;
            slot.next_part += 1;
            self.make_room()?;
            let name = format!(
                "part-{:05}-{:03}.{}",
                self.segment,
                part,
                self.opts.extension()
            );
            let path = if key.is_empty() {
                self.dir.join(name)
            } else {
                self.dir.join(&key).join(name)
            };
            let sort: &[String] = if claim { &self.opts.sort_columns } else { &[] };
            let constant: Vec<&str> = self
                .opts
                .partition_by
                .iter()
                .filter(|k| **k == PartitionKey::Symbol)
                .map(|k| k.name())
                .collect();
            let mut w = FileWriter::create(
                &path,
                batch.schema(),
                &self.opts,
                self.opts.format,
                sort,
                &constant,
            )?;
            // Seed the order check with this batch; a batch unsorted in itself gets a file
            // without the claim.
            if !w.keeps_order(&batch)? {
                w.abort();
                if let Some(s) = self.slots.get_mut(&key) {
                    s.claim_order = false;
                }
                w = FileWriter::create(
                    &path,
                    batch.schema(),
                    &self.opts,
                    self.opts.format,
                    &[],
                    &[],
                )?;
            }
            let slot = self
                .slots
                .get_mut(&key)
                .ok_or_else(|| pipeline_core::Error::Internal("partition slot vanished".into()))?;
            slot.writer = Some(w);
        } else {
            self.open.remove(&slot.last_used);
        }
        let slot = self
            .slots
            .get_mut(&key)
            .ok_or_else(|| pipeline_core::Error::Internal("partition slot vanished".into()))?;
        slot.last_used = tick;
        self.open.insert(tick, key.clone());
        let Some(w) = &mut slot.writer else {
            return Err(pipeline_core::Error::Internal(
                "partition writer missing".into(),
            ));
        };
        w.write(&batch)?;
        let now = w.buffered_bytes();
        self.buffered_total = self.buffered_total - slot.buffered + now;
        slot.buffered = now;
        self.enforce_budget()?;
        self.roll_if_full(&key)
    }

    /// Closes a partition's file once it holds [`MAX_ROW_GROUPS_PER_FILE`] row groups; the next
    /// rows go to its next part file. Parquet keeps every row group's metadata (and page
    /// index) in memory until the footer is written, so without this an endless input (a
    /// pipe, a 100 GB file) grows memory with every row group (836 MiB after 100 M piped rows).
    fn roll_if_full(&mut self, key: &str) -> Result<()> {
        let Some(slot) = self.slots.get_mut(key) else {
            return Ok(());
        };
        let full = slot
            .writer
            .as_ref()
            .is_some_and(|w| w.row_groups() >= MAX_ROW_GROUPS_PER_FILE);
        if !full {
            return Ok(());
        }
        self.open.remove(&slot.last_used);
        self.buffered_total -= slot.close(&mut self.closed)?;
        Ok(())
    }

    /// Flushes the fullest writers until all buffers together fit `max_buffered_bytes`.
    fn enforce_budget(&mut self) -> Result<()> {
        while self.buffered_total > self.opts.max_buffered_bytes {
            let Some(slot) = self
                .open
                .values()
                .filter_map(|k| self.slots.get(k).map(|s| (s.buffered, k)))
                .max()
                .and_then(|(b, k)| (b > 0).then(|| k.clone()))
                .and_then(|k| self.slots.get_mut(&k))
            else {
                break;
            };
            let Some(w) = &mut slot.writer else {
                break;
            };
            w.flush_buffers()?;
            let now = w.buffered_bytes();
            self.buffered_total = self.buffered_total - slot.buffered + now;
            if now >= slot.buffered {
                // Nothing more can be released (e.g. a dictionary page stays in memory).
                slot.buffered = now;
                break;
            }
            slot.buffered = now;
        }
        Ok(())
    }

    /// Rows reach the sink in time order per symbol, so once `key` moves a partition to a
    /// later date (or month), the earlier one is complete: its writer is closed at once
    /// rather than holding memory until evicted. Rows that do come back to a closed period
    /// go to its next part file, so this is only an optimisation.
    fn close_past_period(&mut self, key: &str) -> Result<()> {
        let time_prefixes = ["date=", "month="];
        let mut period = None;
        let mut rest = Vec::new();
        for part in key.split('/') {
            match time_prefixes.iter().find(|p| part.starts_with(**p)) {
                Some(p) if period.is_none() => period = Some(&part[p.len()..]),
                _ => rest.push(part),
            }
        }
        let Some(period) = period.filter(|p| *p != HIVE_DEFAULT_PARTITION) else {
            return Ok(());
        };
        let rest = rest.join("/");
        let previous = match self.latest_period.get(&rest) {
            Some((latest, _)) if latest.as_str() >= period => return Ok(()),
            _ => self
                .latest_period
                .insert(rest, (period.to_string(), key.to_string())),
        };
        if let Some((_, old_key)) = previous {
            // The earlier period is complete: its held rows make its last file.
            self.flush_pending(&old_key)?;
            if let Some(slot) = self.slots.get_mut(&old_key)
                && slot.writer.is_some()
            {
                self.open.remove(&slot.last_used);
                self.buffered_total -= slot.close(&mut self.closed)?;
            }
        }
        Ok(())
    }

    /// Closes least recently used writers until a new one fits under `max_open_files`.
    fn make_room(&mut self) -> Result<()> {
        while self.open.len() >= self.opts.max_open_files {
            let Some((_, key)) = self.open.pop_first() else {
                break;
            };
            if let Some(slot) = self.slots.get_mut(&key) {
                self.buffered_total -= slot.close(&mut self.closed)?;
            }
        }
        Ok(())
    }

    fn discard_all(&mut self) {
        for slot in self.slots.values_mut() {
            if let Some(w) = slot.writer.take() {
                w.abort();
            }
            slot.buffered = 0;
        }
        self.buffered_total = 0;
        self.open.clear();
        self.pending.clear();
        self.pending_bytes = 0;
        self.gathered.clear();
        (self.gathered_rows, self.gathered_bytes) = (0, 0);
        for c in self.closed.drain(..) {
            c.discard();
        }
    }
}

/// Writes a dictionary-encoded `name` column as plain UTF-8.
///
/// A Hive partition column that is also stored in the files must have the type readers infer
/// for the directory value, or pyarrow refuses the dataset ("Unable to merge: Field symbol has
/// incompatible types: dictionary vs string"; checked with pyarrow 26). Parquet still
/// dictionary-encodes the column's pages, so the files are no larger.
fn plain_string_column(batch: RecordBatch, name: &str) -> Result<RecordBatch> {
    let Some((i, _)) = batch.schema().column_with_name(name) else {
        return Ok(batch);
    };
    if !matches!(
        batch.schema().field(i).data_type(),
        DataType::Dictionary(..)
    ) {
        return Ok(batch);
    }
    let schema = batch.schema();
    let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    fields[i] = Arc::new(fields[i].as_ref().clone().with_data_type(DataType::Utf8));
    let mut columns = batch.columns().to_vec();
    columns[i] = arrow_cast::cast(&columns[i], &DataType::Utf8)?;
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    Ok(RecordBatch::try_new(schema, columns)?)
}

impl PartitionedSink {
    /// Takes an output batch: a large one is split at once, a small one gathered with the
    /// next until they make [`WriteOptions::gather_rows`] rows (or an eighth of the writer
    /// budget), then split together. Rows keep their order within every partition either
    /// way.
    fn gather(&mut self, batch: RecordBatch) -> Result<()> {
        let limit = self.opts.gather_rows;
        if self.gathered.is_empty() && batch.num_rows() >= limit {
            return self.split(&batch);
        }
        if self
            .gathered
            .first()
            .is_some_and(|g| g.schema().as_ref() != batch.schema().as_ref())
        {
            self.split_gathered()?;
        }
        self.gathered_rows += batch.num_rows();
        self.gathered_bytes += batch.get_array_memory_size();
        self.gathered.push(batch);
        if self.gathered_rows >= limit || self.gathered_bytes >= self.opts.max_buffered_bytes / 8 {
            self.split_gathered()?;
        }
        Ok(())
    }

    /// Splits the gathered batches, as one, by partition.
    fn split_gathered(&mut self) -> Result<()> {
        let gathered = std::mem::take(&mut self.gathered);
        (self.gathered_rows, self.gathered_bytes) = (0, 0);
        let batch = match gathered.as_slice() {
            [] => return Ok(()),
            [one] => one.clone(),
            many => arrow_select::concat::concat_batches(&many[0].schema(), many)?,
        };
        self.split(&batch)
    }

    /// Splits an output batch by partition and routes each part.
    fn split(&mut self, batch: &RecordBatch) -> Result<()> {
        let plain_symbol = self.opts.partition_by.contains(&PartitionKey::Symbol);
        for (key, part) in split_by_partition(batch, &self.opts.partition_by)? {
            let part = if plain_symbol {
                plain_string_column(part, "symbol")?
            } else {
                part
            };
            self.route(key, part)?;
        }
        Ok(())
    }
}

impl Sink for PartitionedSink {
    fn write(&mut self, chunk: &Chunk) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let batch = self.opts.output_batch(chunk)?;
        self.gather(batch)
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        self.split_gathered()?;
        // Held rows are their partitions' last rows in this segment.
        let mut held: Vec<String> = self.pending.keys().cloned().collect();
        held.sort();
        for key in held {
            self.flush_pending(&key)?;
        }
        let mut keys: Vec<String> = self.open.values().cloned().collect();
        keys.sort();
        for key in keys {
            if let Some(slot) = self.slots.get_mut(&key) {
                self.buffered_total -= slot.close(&mut self.closed)?;
            }
        }
        self.open.clear();
        let mut summary = SinkSummary::default();
        let mut published = Vec::new();
        for c in self.closed.drain(..) {
            published.push(c.publish()?);
        }
        published.sort();
        for (path, rows, bytes) in published {
            summary.rows += rows;
            summary.bytes += bytes;
            summary.files.push(path);
        }
        self.done = true;
        Ok(summary)
    }

    fn abort(&mut self) -> Result<()> {
        self.discard_all();
        self.done = true;
        Ok(())
    }
}

impl Drop for PartitionedSink {
    /// A sink dropped without `finish` or `abort` (an error or panic upstream) removes its
    /// temporary files rather than leaving them behind.
    fn drop(&mut self) {
        if !self.done {
            self.discard_all();
        }
    }
}
