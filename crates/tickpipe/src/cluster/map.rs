//! `tickpipe map --task i`: each input of group `i`, read as a run reads it, split into
//! per-bucket Parquet runs in source order; the reader's rejects kept beside them.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arrow_array::{Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::DataType;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use pipeline_core::{Chunk, Error, Reject, Result};
use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::output::Output;

/// The marker of a finished map output: rows and bytes per bucket.
pub(crate) const DONE: &str = "done.json";
/// The reader's rejects of one input (quarantined while reading), as JSON.
pub(crate) const REJECTS: &str = "rejects.json";
/// An empty Parquet file with the input's schema.
pub(crate) const SCHEMA: &str = "schema.parquet";

/// What a map output holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Done {
    /// Bucket → (rows, bytes of its file).
    pub buckets: BTreeMap<u32, (u64, u64)>,
    /// The input failed for good after these rows (a corrupt or truncated file): its error
    /// and the lines read before it. The reduce task that owns the input's rejects reports it
    /// failed, as one run does; the rows before the failure are kept, as one run keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<MapFailure>,
}

/// Why an input's map output ends early.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MapFailure {
    /// The error, as the reader said it.
    pub error: String,
    /// First and last input line of the rows read before it.
    pub lines: Option<(u64, u64)>,
}

/// The file of `bucket` in a map output folder.
pub(crate) fn bucket_file(dir: &Path, bucket: u32) -> PathBuf {
    dir.join(format!("b{bucket:05}.parquet"))
}

/// Runs map task `task` of the job in `dir`: returns the inputs it wrote (inputs whose
/// output an earlier attempt already published are skipped).
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
    let cancel = Arc::new(AtomicBool::new(false));
    let specs = pipeline.input_sources(&cancel);
    let mut written = 0;
    for &index in group {
        let out = plan.map_output(dir, index);
        if out.join(DONE).exists() {
            continue;
        }
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
        let spec = specs
            .get(index)
            .ok_or_else(|| Error::Internal(format!("no source for input {index}")))?;
        // As one run: an I/O error is retried (here from the start of the input, into a
        // fresh folder); a deterministic error, or the last retry's, fails the input, and
        // what was read before it is kept.
        let mut attempt = 0u32;
        loop {
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            }
            std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            match split_input((spec.open)(), &tmp, plan.buckets)? {
                Some(e) if e.is_retryable() && attempt < retries => attempt += 1,
                Some(e) => {
                    tracing::error!(source = %spec.name, error = %e, "source failed after {} attempt(s)", attempt + 1);
                    break;
                }
                None => break,
            }
        }
        // One rename publishes the whole output; a twin attempt that got there first wins.
        match std::fs::rename(&tmp, &out) {
            Ok(()) => written += 1,
            Err(_) if out.join(DONE).exists() => {
                std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            }
            Err(e) => return Err(Error::io(&out, e)),
        }
    }
    Ok(written)
}

fn props() -> WriterProperties {
    // Intermediate files are read once, by a machine on the same network: fast compression.
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build()
}

/// Reads `source` to its end into per-bucket files, its rejects and its schema in `tmp`.
/// A bucket's rows keep the order the reader produced them in (source order). When the
/// input fails (it cannot be opened, or an error ends it), what was read before is written
/// with the failure in the marker, and the error is returned for the caller to retry or
/// accept; errors writing the output are errors of the task.
fn split_input(
    source: Result<Box<dyn pipeline_core::Source>>,
    tmp: &Path,
    buckets: u32,
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
            write_parquet(
                &tmp.join(SCHEMA),
                &[],
                Arc::new(arrow_schema::Schema::empty()),
            )?;
            write_marker(tmp, &[], &done)?;
            return Ok(Some(e));
        }
    };
    let schema = source.schema();
    write_parquet(&tmp.join(SCHEMA), &[], schema.clone())?;
    let mut writers: BTreeMap<u32, (ArrowWriter<File>, u64)> = BTreeMap::new();
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
        let of_row = buckets_of(batch, buckets)?;
        let mut rows: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (row, b) in of_row.values().iter().enumerate() {
            rows.entry(*b).or_default().push(row as u32);
        }
        for (b, idx) in rows {
            let part = if idx.len() == batch.num_rows() {
                batch.clone()
            } else {
                arrow_select::take::take_record_batch(batch, &UInt32Array::from(idx))?
            };
            let entry = match writers.entry(b) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let path = bucket_file(tmp, b);
                    let f = File::create(&path).map_err(|e| Error::io(&path, e))?;
                    let w = ArrowWriter::try_new(f, schema.clone(), Some(props())).map_err(pq)?;
                    e.insert((w, 0))
                }
            };
            entry.1 += part.num_rows() as u64;
            entry.0.write(&part).map_err(pq)?;
        }
    }
    if failed.is_none() {
        rejects.extend(source.drain_rejects());
    }
    let mut done = Done {
        failed: failed.as_ref().map(|e| MapFailure {
            error: e.to_string(),
            lines,
        }),
        ..Default::default()
    };
    for (b, (w, rows)) in writers {
        w.close().map_err(pq)?;
        let path = bucket_file(tmp, b);
        let bytes = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        done.buckets.insert(b, (rows, bytes));
    }
    write_marker(tmp, &rejects, &done)?;
    Ok(failed)
}

/// Writes the rejects, then the marker (last: an output folder with it is complete).
fn write_marker(tmp: &Path, rejects: &[Reject], done: &Done) -> Result<()> {
    let text = serde_json::to_string(rejects)
        .map_err(|e| Error::Internal(format!("rejects as JSON: {e}")))?;
    std::fs::write(tmp.join(REJECTS), text).map_err(|e| Error::io(tmp.join(REJECTS), e))?;
    let text = serde_json::to_string(done)
        .map_err(|e| Error::Internal(format!("map marker as JSON: {e}")))?;
    std::fs::write(tmp.join(DONE), text).map_err(|e| Error::io(tmp.join(DONE), e))?;
    Ok(())
}

/// The bucket of every row of `batch`, from its `symbol` column.
pub(crate) fn buckets_of(batch: &RecordBatch, buckets: u32) -> Result<UInt32Array> {
    let col = batch
        .column_by_name("symbol")
        .ok_or_else(|| Error::Schema("a cluster job needs a `symbol` column".into()))?;
    let text = arrow_cast::cast(col, &DataType::Utf8)?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Internal("symbol cast to text".into()))?;
    Ok((0..text.len())
        .map(|i| {
            let s = if text.is_null(i) { "" } else { text.value(i) };
            (pipeline_core::stable_hash(s.as_bytes()) % u64::from(buckets.max(1))) as u32
        })
        .collect())
}

/// Writes `batch` (possibly empty) to a new Parquet file.
pub(crate) fn write_parquet(
    path: &Path,
    batches: &[RecordBatch],
    schema: arrow_schema::SchemaRef,
) -> Result<u64> {
    let f = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = ArrowWriter::try_new(f, schema, Some(props())).map_err(pq)?;
    for b in batches {
        w.write(b).map_err(pq)?;
    }
    w.close().map_err(pq)?;
    Ok(std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len())
}

/// A Parquet error as ours.
pub(crate) fn pq(e: parquet::errors::ParquetError) -> Error {
    Error::Arrow(e.into())
}
