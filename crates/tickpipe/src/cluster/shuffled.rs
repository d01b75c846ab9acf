//! The source a reduce task reads in place of an input: that input's rows of the task's
//! buckets (segments of the input's map output file), bucket after bucket, each in source
//! order, then the reader's rejects of the input when this task owns them; and when the
//! input failed in its map task, the task that owns its rejects ends it with the map task's
//! error, so the input is reported failed with the lines it read, as one run reports it.

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_ipc::reader::{StreamDecoder, StreamReader};
use arrow_schema::SchemaRef;
use pipeline_core::{Chunk, Error, Reject, Result, Source, SourceId};

/// Reads shuffled runs as the chunks of one input.
pub(crate) struct ShuffledSource {
    id: SourceId,
    schema: SchemaRef,
    file: File,
    path: PathBuf,
    segments: std::vec::IntoIter<(u64, u64)>,
    /// Rows of the segment being read, at most `batch_rows` per chunk.
    pending: VecDeque<RecordBatch>,
    batch_rows: usize,
    seq: u64,
    rejects: Vec<Reject>,
    /// The map task's failure of this input, still to be reported (owner task only).
    failure: Option<super::map::MapFailure>,
    /// The lines the failed input had read, once the failure is reported.
    failed_lines: Option<(u64, u64)>,
}

impl ShuffledSource {
    /// A source with id `id` over `segments` (in that order) of `rows_file`, with that
    /// file's schema, handing out `rejects` once, then ending with `failure` when given.
    pub fn open(
        id: SourceId,
        rows_file: PathBuf,
        segments: Vec<(u64, u64)>,
        (rejects, failure): (Vec<Reject>, Option<super::map::MapFailure>),
        batch_rows: usize,
    ) -> Result<ShuffledSource> {
        let mut file = File::open(&rows_file).map_err(|e| Error::io(&rows_file, e))?;
        // The file starts with a stream holding only the schema.
        let schema = StreamReader::try_new(std::io::BufReader::new(&mut file), None)?.schema();
        Ok(ShuffledSource {
            id,
            schema,
            file,
            path: rows_file,
            segments: segments.into_iter(),
            pending: VecDeque::new(),
            batch_rows: batch_rows.max(1),
            seq: 0,
            rejects,
            failure,
            failed_lines: None,
        })
    }

    /// The next chunk's rows: up to `batch_rows` rows, taken from as many segments as it
    /// takes. Chunks therefore hold several buckets' rows, as a run's chunks hold many
    /// symbols: the engine spreads the symbols over its workers by their rows in the first
    /// chunk, and a chunk of one bucket left the others to hashing (one reduce task's
    /// workers were busy 1.24 s and 0.57 s).
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let mut parts: Vec<RecordBatch> = Vec::new();
        let mut rows = 0;
        while rows < self.batch_rows {
            let Some(b) = self.pending.pop_front() else {
                if !self.read_segment()? {
                    break;
                }
                continue;
            };
            let take = (self.batch_rows - rows).min(b.num_rows());
            if take < b.num_rows() {
                self.pending.push_front(b.slice(take, b.num_rows() - take));
            }
            rows += take;
            parts.push(b.slice(0, take));
        }
        match parts.len() {
            0 => Ok(None),
            1 => Ok(parts.pop()),
            _ => Ok(Some(arrow_select::concat::concat_batches(
                &self.schema,
                &parts,
            )?)),
        }
    }

    /// Reads the next segment's batches into `pending`; false when there is none.
    fn read_segment(&mut self) -> Result<bool> {
        let Some((at, len)) = self.segments.next() else {
            return Ok(false);
        };
        let bytes = super::map::read_at(&mut self.file, &self.path, (at, len))?;
        // Decoded in place: the batches' buffers are slices of the bytes read (an IPC reader
        // over a cursor copied every body out again).
        let mut buf = arrow_buffer::Buffer::from_vec(bytes);
        let mut decoder = StreamDecoder::new();
        while !buf.is_empty() {
            if let Some(b) = decoder.decode(&mut buf)? {
                self.pending.push_back(b);
            }
        }
        decoder.finish()?;
        Ok(true)
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
                    let empty = RecordBatch::new_empty(self.schema.clone());
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
