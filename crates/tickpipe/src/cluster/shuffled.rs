//! The source a reduce task reads in place of an input: that input's rows of the task's
//! buckets (from the map output), bucket after bucket, each in source order, then the
//! reader's rejects of the input when this task owns them; and when the input failed in its
//! map task, the task that owns its rejects ends it with the map task's error, so the input
//! is reported failed with the lines it read, as one run reports it.

use std::fs::File;
use std::path::PathBuf;

use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use pipeline_core::{Chunk, Error, Reject, Result, Source, SourceId};

use super::map::pq;

/// Reads shuffled runs as the chunks of one input.
pub(crate) struct ShuffledSource {
    id: SourceId,
    schema: SchemaRef,
    files: std::vec::IntoIter<PathBuf>,
    reader: Option<ParquetRecordBatchReader>,
    seq: u64,
    rejects: Vec<Reject>,
    batch_rows: usize,
    /// The map task's failure of this input, still to be reported (owner task only).
    failure: Option<super::map::MapFailure>,
    /// The lines the failed input had read, once the failure is reported.
    failed_lines: Option<(u64, u64)>,
}

impl ShuffledSource {
    /// A source with id `id` over the bucket `files` (in order), with the schema of
    /// `schema_file`, handing out `rejects` once, then ending with `failure` when given.
    pub fn open(
        id: SourceId,
        schema_file: PathBuf,
        files: Vec<PathBuf>,
        (rejects, failure): (Vec<Reject>, Option<super::map::MapFailure>),
        batch_rows: usize,
    ) -> Result<ShuffledSource> {
        let f = File::open(&schema_file).map_err(|e| Error::io(&schema_file, e))?;
        let schema = ParquetRecordBatchReaderBuilder::try_new(f)
            .map_err(pq)?
            .schema()
            .clone();
        Ok(ShuffledSource {
            id,
            schema,
            files: files.into_iter(),
            reader: None,
            seq: 0,
            rejects,
            batch_rows: batch_rows.max(1),
            failure,
            failed_lines: None,
        })
    }

    fn next_batch(&mut self) -> Result<Option<arrow_array::RecordBatch>> {
        loop {
            if let Some(r) = &mut self.reader {
                match r.next() {
                    Some(b) => return Ok(Some(b?)),
                    None => self.reader = None,
                }
            }
            let Some(path) = self.files.next() else {
                return Ok(None);
            };
            let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
            self.reader = Some(
                ParquetRecordBatchReaderBuilder::try_new(f)
                    .map_err(pq)?
                    .with_batch_size(self.batch_rows)
                    .build()
                    .map_err(pq)?,
            );
        }
    }
}

impl Iterator for ShuffledSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        match self.next_batch() {
            Ok(Some(batch)) => {
                let seq = self.seq;
                self.seq += 1;
                Some(Chunk::new(batch, self.id, seq))
            }
            Ok(None) => {
                let f = self.failure.as_ref()?;
                if !self.rejects.is_empty() {
                    // The rejects go out with a chunk (the engine drains them after each);
                    // an empty one when the task has no rows of the input.
                    let seq = self.seq;
                    self.seq += 1;
                    let empty = arrow_array::RecordBatch::new_empty(self.schema.clone());
                    return Some(Chunk::new(empty, self.id, seq));
                }
                let error = f.error.clone();
                self.failed_lines = f.lines;
                self.failure = None;
                Some(Err(Error::InputFailed(error)))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl Source for ShuffledSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn drain_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }

    fn lines_read(&self) -> Option<(u64, u64)> {
        self.failed_lines
    }
}
