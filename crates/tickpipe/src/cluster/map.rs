//! `tickpipe map --task i`: each input of group `i`, read as a run reads it, split by
//! symbol bucket in source order into one map output file per input ([`MapFile`]): the
//! rows as Arrow IPC segments, the reader's rejects and a footer.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray, UInt32Array};
use arrow_ipc::CompressionType;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::DataType;
use pipeline_core::{Chunk, Error, Reject, Result};
use serde::{Deserialize, Serialize};

use super::plan::{Plan, ShuffleCompression};
use crate::output::Output;

/// The last bytes of a finished map output file, after the length of its footer.
const MAGIC: &[u8; 8] = b"TPMAP001";

/// What a map output holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Done {
    /// The buckets that hold rows of the input.
    pub buckets: BTreeMap<u32, Bucket>,
    /// How many rejects the file holds.
    #[serde(default)]
    pub rejects: usize,
    /// Where their JSON is in the file (byte offset, length), when there are some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_at: Option<(u64, u64)>,
    /// Rows per symbol (null symbols left out): reduce tasks spread their symbols over
    /// their workers by these.
    #[serde(default)]
    pub symbols: BTreeMap<String, u64>,
    /// The input failed for good after these rows (a corrupt or truncated file): its error
    /// and the lines read before it. The reduce task that owns the input's rejects reports it
    /// failed, as one run does; the rows before the failure are kept, as one run keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<MapFailure>,
}

/// One bucket's rows in a map output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Bucket {
    /// Rows.
    pub rows: u64,
    /// Bytes of its segments.
    pub bytes: u64,
    /// Its segments in the file (byte offset, length), in order.
    pub segments: Vec<(u64, u64)>,
}

/// Why an input's map output ends early.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MapFailure {
    /// The error, as the reader said it.
    pub error: String,
    /// First and last input line of the rows read before it.
    pub lines: Option<(u64, u64)>,
}

/// Runs map task `task` of the job in `dir`: returns the inputs it wrote (inputs whose
/// output an earlier attempt already published are skipped). The inputs of the task are
/// read by up to twice `[pipeline] max_workers` threads at once, one input each.
pub fn map_task(dir: &Path, task: usize) -> Result<usize> {
    let plan = Plan::load(dir)?;
    let Some(group) = plan.map_groups.get(task) else {
        return Err(Error::Usage(format!(
            "map task {task}: the plan has {} map tasks (0..{})",
            plan.map_tasks(),
            plan.map_tasks()
        )));
    };
    let pipeline = plan.pipeline(Output::discard())?;
    let retries = pipeline.s.config.pipeline.retries;
    // Two inputs per worker at once: a thread also waits (writing, faulting pages in), and
    // with one per worker a map task of 84 day files kept 1.74 of 2 cores busy (0.53 s);
    // with two, 1.88 (0.45 s).
    let threads = (2 * crate::settings::workers(&pipeline.s.config))
        .min(group.len())
        .max(1);
    // Rows of an input are held per bucket until this many bytes, then written out as
    // segments: a sixteenth of the memory limit, shared by the inputs read at once.
    let hold = usize::try_from(pipeline.s.config.pipeline.memory_limit.0 / 16 / threads as u64)
        .unwrap_or(usize::MAX)
        .max(1 << 20);
    let cancel = Arc::new(AtomicBool::new(false));
    let specs = pipeline.input_sources(&cancel);
    let next = AtomicUsize::new(0);
    let written = AtomicUsize::new(0);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = group.get(k) else { break };
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    let spec = specs.get(index);
                    let done = spec
                        .ok_or_else(|| Error::Internal(format!("no source for input {index}")))
                        .and_then(|spec| {
                            let out = plan.map_output(dir, index);
                            if out.exists() {
                                return Ok(false);
                            }
                            plan.check_input(index)?;
                            let writing = Writing {
                                hold,
                                compression: plan.shuffle_compression,
                            };
                            map_input(&out, spec, plan.buckets, (retries, writing))
                        });
                    match done {
                        Ok(true) => {
                            written.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {}
                        Err(e) => {
                            cancel.store(true, Ordering::Relaxed);
                            let mut f = failed.lock().unwrap_or_else(|e| e.into_inner());
                            f.get_or_insert(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(written.into_inner())
}

/// Reads one input into its map output file `out` (the caller skips inputs an earlier
/// attempt published); whether this call published it.
fn map_input(
    out: &Path,
    spec: &pipeline_parallel::SourceSpec,
    buckets: u32,
    (retries, writing): (u32, Writing),
) -> Result<bool> {
    let parent = out
        .parent()
        .ok_or_else(|| Error::Internal("map output has no parent".into()))?;
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        out.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    // As one run: an I/O error is retried (here from the start of the input, into a
    // fresh file); a deterministic error, or the last retry's, fails the input, and what
    // was read before it is kept.
    let mut attempt = 0u32;
    loop {
        match split_input((spec.open)(), &tmp, buckets, writing)? {
            Some(e) if e.is_retryable() && attempt < retries => attempt += 1,
            Some(e) => {
                tracing::error!(source = %spec.name, error = %e, "source failed after {} attempt(s)", attempt + 1);
                break;
            }
            None => break,
        }
    }
    // One rename publishes the whole output; a twin attempt that got there first wins
    // (the same rows either way).
    if out.exists() {
        std::fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
        return Ok(false);
    }
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    Ok(true)
}

/// How a map task writes an input's rows: held per bucket until `hold` bytes, then written
/// as segments compressed with `compression`.
#[derive(Debug, Clone, Copy)]
struct Writing {
    hold: usize,
    compression: ShuffleCompression,
}

/// The IPC options of map outputs compressed with `c` (see [`ShuffleCompression`]).
fn ipc_options(c: ShuffleCompression) -> Result<IpcWriteOptions> {
    let codec = match c {
        ShuffleCompression::None => None,
        ShuffleCompression::Lz4 => Some(CompressionType::LZ4_FRAME),
        ShuffleCompression::Zstd => Some(CompressionType::ZSTD),
    };
    Ok(IpcWriteOptions::default().try_with_compression(codec)?)
}

/// One IPC stream (schema, `batch` when given, end marker) as bytes.
fn ipc_stream(
    schema: &arrow_schema::Schema,
    batch: Option<&RecordBatch>,
    options: &IpcWriteOptions,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = StreamWriter::try_new_with_options(&mut buf, schema, options.clone())?;
    if let Some(b) = batch {
        w.write(b)?;
    }
    w.finish()?;
    drop(w);
    Ok(buf)
}

/// The rows of an input on their way to its map output file: held per bucket, then written a
/// bucket at a time, each bucket's held rows as one segment.
struct Rows {
    file: BufWriter<File>,
    path: PathBuf,
    at: u64,
    schema: arrow_schema::SchemaRef,
    held: BTreeMap<u32, Vec<RecordBatch>>,
    held_bytes: usize,
    hold: usize,
    options: IpcWriteOptions,
    buckets: BTreeMap<u32, Bucket>,
}

impl Rows {
    fn create(path: &Path, schema: arrow_schema::SchemaRef, writing: Writing) -> Result<Rows> {
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut rows = Rows {
            file: BufWriter::new(f),
            path: path.to_path_buf(),
            at: 0,
            schema,
            held: BTreeMap::new(),
            held_bytes: 0,
            hold: writing.hold,
            options: ipc_options(writing.compression)?,
            buckets: BTreeMap::new(),
        };
        let head = ipc_stream(&rows.schema, None, &rows.options)?;
        rows.append(&head)?;
        Ok(rows)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(u64, u64)> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        let at = self.at;
        self.at += bytes.len() as u64;
        Ok((at, bytes.len() as u64))
    }

    fn push(&mut self, bucket: u32, part: RecordBatch) -> Result<()> {
        self.held_bytes += part.get_array_memory_size();
        self.held.entry(bucket).or_default().push(part);
        if self.held_bytes >= self.hold {
            self.write_held()?;
        }
        Ok(())
    }

    /// Writes every held bucket as a segment of its own.
    fn write_held(&mut self) -> Result<()> {
        for (b, parts) in std::mem::take(&mut self.held) {
            let batch = arrow_select::concat::concat_batches(&self.schema, &parts)?;
            let seg = self.append(&ipc_stream(&self.schema, Some(&batch), &self.options)?)?;
            let e = self.buckets.entry(b).or_default();
            e.rows += batch.num_rows() as u64;
            e.bytes += seg.1;
            e.segments.push(seg);
        }
        self.held_bytes = 0;
        Ok(())
    }

    /// Writes what is held, the rejects and the footer (the marker: [`MapFile::read`]
    /// refuses a file without it).
    fn finish(mut self, rejects: &[Reject], mut done: Done) -> Result<()> {
        self.write_held()?;
        done.buckets = std::mem::take(&mut self.buckets);
        done.rejects = rejects.len();
        if !rejects.is_empty() {
            let text = serde_json::to_vec(rejects)
                .map_err(|e| Error::Internal(format!("rejects as JSON: {e}")))?;
            done.rejects_at = Some(self.append(&text)?);
        }
        let footer = serde_json::to_vec(&done)
            .map_err(|e| Error::Internal(format!("map marker as JSON: {e}")))?;
        self.append(&footer)?;
        self.append(&(footer.len() as u64).to_le_bytes())?;
        self.append(MAGIC)?;
        self.file.flush().map_err(|e| Error::io(&self.path, e))?;
        Ok(())
    }
}

/// A finished map output file: the rows of one input as Arrow IPC streams (the schema
/// first, then each bucket's segments), the reader's rejects as JSON, then the footer
/// ([`Done`] as JSON), its length (8 bytes, little-endian) and [`MAGIC`].
pub(crate) struct MapFile;

impl MapFile {
    /// The footer of the map output file `path`; `None` when there is no such file.
    pub fn read(path: &Path) -> Result<Option<Done>> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let bad = |what: &str| incomplete(path, what);
        let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < 16 {
            return Err(bad("too short"));
        }
        let tail = read_at(&mut f, path, (len - 16, 16))?;
        if &tail[8..] != MAGIC {
            return Err(bad("no end marker"));
        }
        let n = u64::from_le_bytes(tail[..8].try_into().map_err(|_| bad("footer length"))?);
        if n > len - 16 {
            return Err(bad("footer length"));
        }
        let footer = read_at(&mut f, path, (len - 16 - n, n))?;
        serde_json::from_slice(&footer)
            .map(Some)
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
    }

    /// The rejects of the map output file `path`, where its footer places them.
    pub fn rejects(path: &Path, at: Option<(u64, u64)>) -> Result<Vec<Reject>> {
        let Some((at, len)) = at else {
            return Ok(Vec::new());
        };
        let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
        let buf = read_at(&mut f, path, (at, len))?;
        serde_json::from_slice(&buf)
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
    }
}

/// Reads `source` to its end into the map output file `tmp` (rows, rejects, footer).
/// A bucket's rows keep the order the reader produced them in (source order). When the
/// input fails (it cannot be opened, or an error ends it), what was read before is written
/// with the failure in the marker, and the error is returned for the caller to retry or
/// accept; errors writing the output are errors of the task.
fn split_input(
    source: Result<Box<dyn pipeline_core::Source>>,
    tmp: &Path,
    buckets: u32,
    writing: Writing,
) -> Result<Option<Error>> {
    let mut source = match source {
        Ok(s) => s,
        Err(e) if e.stops_run() => return Err(e),
        Err(e) => {
            // Nothing was read: an empty output that says why.
            let done = Done {
                failed: Some(MapFailure {
                    error: e.to_string(),
                    lines: None,
                }),
                ..Default::default()
            };
            Rows::create(tmp, Arc::new(arrow_schema::Schema::empty()), writing)?
                .finish(&[], done)?;
            return Ok(Some(e));
        }
    };
    let mut out = Rows::create(tmp, source.schema(), writing)?;
    let mut symbols = BTreeMap::new();
    let mut rejects: Vec<Reject> = Vec::new();
    let mut lines: Option<(u64, u64)> = None;
    let mut failed = None;
    while let Some(chunk) = source.next() {
        let chunk: Chunk = match chunk {
            Ok(c) => c,
            Err(e) if e.stops_run() => return Err(e),
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        rejects.extend(source.drain_rejects());
        if !chunk.is_empty() {
            let (lo, hi) = chunk
                .lines()
                .values()
                .iter()
                .fold((u64::MAX, 0), |(a, b), &x| (a.min(x), b.max(x)));
            lines = Some(lines.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
        let batch = chunk.batch();
        if batch.num_rows() == 0 {
            continue;
        }
        let of_row = buckets_of(batch, buckets, &mut symbols)?;
        for (b, idx) in rows_by_bucket(&of_row) {
            let part = if idx.len() == batch.num_rows() {
                batch.clone()
            } else {
                arrow_select::take::take_record_batch(batch, &UInt32Array::from(idx))?
            };
            out.push(b, part)?;
        }
    }
    if failed.is_none() {
        rejects.extend(source.drain_rejects());
    }
    let done = Done {
        symbols,
        failed: failed.as_ref().map(|e| MapFailure {
            error: e.to_string(),
            lines,
        }),
        ..Default::default()
    };
    out.finish(&rejects, done)?;
    Ok(failed)
}

/// The `len` bytes at `at` of file `f` (at `path`, for errors); a range past the file's
/// end (a damaged footer) is an error, not an allocation of whatever size it claims.
pub(crate) fn read_at(f: &mut File, path: &Path, (at, len): (u64, u64)) -> Result<Vec<u8>> {
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let n = match at.checked_add(len) {
        Some(end) if end <= size => usize::try_from(len).ok(),
        _ => None,
    }
    .ok_or_else(|| incomplete(path, &format!("bytes {at}+{len} of {size}")))?;
    let mut buf = vec![0u8; n];
    f.seek(SeekFrom::Start(at))
        .and_then(|_| f.read_exact(&mut buf))
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

/// The error for a map output file that is not whole (`what` is wrong with it).
fn incomplete(path: &Path, what: &str) -> Error {
    Error::Usage(format!(
        "{}: not a complete map output ({what}); remove it and run its map task again",
        path.display()
    ))
}

/// The bucket of `symbol` (a stable hash; null symbols are hashed as "").
pub(crate) fn bucket_of(symbol: &str, buckets: u32) -> u32 {
    (pipeline_core::stable_hash(symbol.as_bytes()) % u64::from(buckets.max(1))) as u32
}

/// The bucket of every row of `batch`, from its `symbol` column, with the rows of each
/// symbol added to `counts`. A dictionary-encoded column (what the readers make) is hashed
/// once per dictionary value and its rows take their key's bucket; any other column is cast
/// to text and each distinct symbol hashed once per chunk.
pub(crate) fn buckets_of(
    batch: &RecordBatch,
    buckets: u32,
    counts: &mut BTreeMap<String, u64>,
) -> Result<Vec<u32>> {
    let col = batch
        .column_by_name("symbol")
        .ok_or_else(|| Error::Schema("a cluster job needs a `symbol` column".into()))?;
    let null_bucket = bucket_of("", buckets);
    if let Some(dict) = col.as_any().downcast_ref::<DictionaryArray<Int32Type>>()
        && let Some(values) = dict.values().as_any().downcast_ref::<StringArray>()
    {
        // Per dictionary value: its bucket (a null value counts as a null symbol).
        let of_value: Vec<Option<u32>> = (0..values.len())
            .map(|v| (!values.is_null(v)).then(|| bucket_of(values.value(v), buckets)))
            .collect();
        let mut rows_of_value = vec![0u64; values.len()];
        let keys = dict.keys();
        let mut of_row = Vec::with_capacity(keys.len());
        for (i, &k) in keys.values().iter().enumerate() {
            let valued = usize::try_from(k)
                .ok()
                .filter(|_| keys.is_valid(i))
                .and_then(|v| Some((v, of_value.get(v).copied().flatten()?)));
            match valued {
                Some((v, b)) => {
                    rows_of_value[v] += 1;
                    of_row.push(b);
                }
                None => of_row.push(null_bucket),
            }
        }
        for (v, n) in rows_of_value.into_iter().enumerate() {
            if n > 0 {
                *counts.entry(values.value(v).to_string()).or_default() += n;
            }
        }
        return Ok(of_row);
    }
    let text = arrow_cast::cast(col, &DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Internal("symbol cast to text".into()))?;
    // Each symbol hashed once per chunk.
    let mut seen: std::collections::HashMap<&str, (u32, u64)> = std::collections::HashMap::new();
    let of_row: Vec<u32> = (0..text.len())
        .map(|i| {
            if text.is_null(i) {
                return null_bucket;
            }
            let e = seen
                .entry(text.value(i))
                .or_insert_with_key(|s| (bucket_of(s, buckets), 0));
            e.1 += 1;
            e.0
        })
        .collect();
    for (s, (_, n)) in seen {
        *counts.entry(s.to_string()).or_default() += n;
    }
    Ok(of_row)
}

/// The rows of each bucket in `of_row` (a row's bucket), in row order, buckets ascending.
fn rows_by_bucket(of_row: &[u32]) -> Vec<(u32, Vec<u32>)> {
    let mut groups: Vec<(u32, Vec<u32>)> = Vec::new();
    // A chunk holds few buckets; the last one looked up is usually the next row's too.
    let mut last = usize::MAX;
    for (row, &b) in of_row.iter().enumerate() {
        if groups.get(last).is_none_or(|g| g.0 != b) {
            last = match groups.iter().position(|g| g.0 == b) {
                Some(at) => at,
                None => {
                    groups.push((b, Vec::new()));
                    groups.len() - 1
                }
            };
        }
        groups[last].1.push(row as u32);
    }
    groups.sort_unstable_by_key(|g| g.0);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray, UInt64Array};
    use pipeline_core::Source;

    fn batch(rows: &[(&str, i64)]) -> RecordBatch {
        let sym: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0)));
        let v: ArrayRef = Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1)));
        let line: ArrayRef = Arc::new(UInt64Array::from_iter_values(
            rows.iter().map(|r| r.1 as u64 + 1),
        ));
        RecordBatch::try_from_iter([
            ("symbol", sym),
            ("v", v),
            (pipeline_core::LINE_COLUMN, line),
        ])
        .unwrap()
    }

    /// Held rows written out early (a hold of one byte) leave a bucket in several segments,
    /// between other buckets' segments; reading a bucket's segments gives its rows in the
    /// order they were pushed, and chunks of the batch size taken across segments.
    #[test]
    fn a_bucket_in_many_segments_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tpmap");
        let b = batch(&[("A", 0)]);
        let mut rows = Rows::create(
            &path,
            b.schema(),
            Writing {
                hold: 1,
                compression: ShuffleCompression::Lz4,
            },
        )
        .unwrap();
        let mut pushed: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
        for i in 0..7 {
            for (bucket, sym) in [(3u32, "A"), (1, "B")] {
                let v = i * 10 + i64::from(bucket);
                rows.push(bucket, batch(&[(sym, v), (sym, v + 100)]))
                    .unwrap();
                pushed.entry(bucket).or_default().extend([v, v + 100]);
            }
        }
        rows.finish(&[], Done::default()).unwrap();
        let buckets = MapFile::read(&path).unwrap().unwrap().buckets;
        assert_eq!(buckets[&3].segments.len(), 7);
        assert_eq!(buckets[&3].rows, 14);
        for (bucket, want) in &pushed {
            let segments = buckets[bucket].segments.clone();
            let mut src = super::super::shuffled::ShuffledSource::open(
                0,
                path.clone(),
                segments,
                (Vec::new(), None),
                5,
            )
            .unwrap();
            assert_eq!(src.schema().fields().len(), 3);
            let mut got = Vec::new();
            let mut sizes = Vec::new();
            for c in src.by_ref() {
                let c = c.unwrap();
                sizes.push(c.num_rows());
                let v = c.batch().column_by_name("v").unwrap();
                let v = v.as_any().downcast_ref::<Int64Array>().unwrap();
                got.extend(v.values().iter().copied());
            }
            assert_eq!(&got, want, "bucket {bucket}");
            assert_eq!(sizes, vec![5, 5, 4], "bucket {bucket}");
        }
        // No segments: the schema, and no rows.
        let mut src = super::super::shuffled::ShuffledSource::open(
            0,
            path,
            Vec::new(),
            (Vec::new(), None),
            5,
        )
        .unwrap();
        assert_eq!(src.schema().field(0).name(), "symbol");
        assert!(src.next().is_none());
    }

    /// A map output cut short (or any file without the end marker) is refused, naming the
    /// file and what to do; a missing one is "not yet".
    #[test]
    fn a_damaged_map_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tpmap");
        assert!(MapFile::read(&path).unwrap().is_none());
        let b = batch(&[("A", 1)]);
        let mut rows = Rows::create(
            &path,
            b.schema(),
            Writing {
                hold: 1 << 20,
                compression: ShuffleCompression::None,
            },
        )
        .unwrap();
        rows.push(0, b).unwrap();
        let rejects = vec![Reject::quarantined(0, 7, "bad_number", "x", None)];
        rows.finish(&rejects, Done::default()).unwrap();
        let done = MapFile::read(&path).unwrap().unwrap();
        assert_eq!(done.rejects, 1);
        assert_eq!(MapFile::rejects(&path, done.rejects_at).unwrap()[0].line, 7);
        // A segment past the file's end (a damaged footer) is an error, not an allocation.
        let mut src = super::super::shuffled::ShuffledSource::open(
            0,
            path.clone(),
            vec![(8, u64::MAX / 2)],
            (Vec::new(), None),
            5,
        )
        .unwrap();
        let e = src.next().unwrap().unwrap_err().to_string();
        assert!(e.contains("not a complete map output"), "{e}");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let e = MapFile::read(&path).unwrap_err().to_string();
        assert!(
            e.contains("x.tpmap") && e.contains("run its map task again"),
            "{e}"
        );
    }

    /// A dictionary-encoded symbol column (what the readers make), with null keys, a null
    /// value and an unused value, gets the buckets and counts its text gives.
    #[test]
    fn dictionary_and_text_symbols_get_the_same_buckets() {
        use arrow_array::{DictionaryArray, Int32Array};
        let values = StringArray::from(vec![Some("MSFT"), None, Some("AAPL"), Some("UNUSED")]);
        let keys = Int32Array::from(vec![Some(2), Some(0), None, Some(2), Some(1), Some(0)]);
        let dict: ArrayRef = Arc::new(DictionaryArray::try_new(keys, Arc::new(values)).unwrap());
        let text = arrow_cast::cast(&dict, &DataType::Utf8).unwrap();
        let of = |col: ArrayRef| {
            let b = RecordBatch::try_from_iter([("symbol", col)]).unwrap();
            let mut counts = BTreeMap::new();
            let rows = buckets_of(&b, 256, &mut counts).unwrap();
            (rows, counts)
        };
        let (d_rows, d_counts) = of(dict);
        let (t_rows, t_counts) = of(text);
        assert_eq!(d_rows, t_rows);
        assert_eq!(d_counts, t_counts);
        let (msft, aapl, none) = (
            bucket_of("MSFT", 256),
            bucket_of("AAPL", 256),
            bucket_of("", 256),
        );
        assert_eq!(d_rows, vec![aapl, msft, none, aapl, none, msft]);
        assert_eq!(
            d_counts.into_iter().collect::<Vec<_>>(),
            vec![("AAPL".to_string(), 2), ("MSFT".to_string(), 2)]
        );
        // Rows grouped by bucket keep their order; buckets ascending.
        let groups = rows_by_bucket(&[5, 3, 5, 5, 9, 3]);
        assert_eq!(
            groups,
            vec![(3, vec![1, 5]), (5, vec![0, 2, 3]), (9, vec![4])]
        );
    }
}
