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
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let spec = specs
            .get(index)
            .ok_or_else(|| Error::Internal(format!("no source for input {index}")))?;
        split_input((spec.open)()?, &tmp, plan.buckets)?;
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
/// A bucket's rows keep the order the reader produced them in (source order).
fn split_input(mut source: Box<dyn pipeline_core::Source>, tmp: &Path, buckets: u32) -> Result<()> {
    let schema = source.schema();
    write_parquet(&tmp.join(SCHEMA), &[], schema.clone())?;
    let mut writers: BTreeMap<u32, (ArrowWriter<File>, u64)> = BTreeMap::new();
    let mut rejects: Vec<Reject> = Vec::new();
    while let Some(chunk) = source.next() {
        let chunk: Chunk = chunk?;
        rejects.extend(source.drain_rejects());
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
    rejects.extend(source.drain_rejects());
    let mut done = Done::default();
    for (b, (w, rows)) in writers {
        w.close().map_err(pq)?;
        let path = bucket_file(tmp, b);
        let bytes = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        done.buckets.insert(b, (rows, bytes));
    }
    let text = serde_json::to_string(&rejects)
        .map_err(|e| Error::Internal(format!("rejects as JSON: {e}")))?;
    std::fs::write(tmp.join(REJECTS), text).map_err(|e| Error::io(tmp.join(REJECTS), e))?;
    // The marker last: an output folder with it is complete.
    let text = serde_json::to_string(&done)
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
