//! The source a reduce task reads in place of an input: that input's rows of the task's
//! buckets (from the map output), bucket after bucket, each in source order, then the
//! reader's rejects of the input when this task owns them.

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
}

impl ShuffledSource {
    /// A source with id `id` over the bucket `files` (in order), with the schema of
    /// `schema_file`, handing out `rejects` once.
    pub fn open(
        id: SourceId,
        schema_file: PathBuf,
        files: Vec<PathBuf>,
        rejects: Vec<Reject>,
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
            Ok(None) => None,
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
}
