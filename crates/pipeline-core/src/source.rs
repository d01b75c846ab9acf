//! The [`Source`] trait and the run's table of input files.

use arrow_schema::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::chunk::{Chunk, SourceId};
use crate::error::Result;
use crate::reject::Reject;

/// How far a source has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Input bytes consumed so far (compressed bytes for compressed files).
    pub bytes_read: u64,
    /// Total input bytes, when known (not for stdin).
    pub bytes_total: Option<u64>,
    /// Data rows produced so far, quarantined rows included.
    pub rows_read: u64,
}

/// Where a source that can be continued stopped (a followed file stopped by Ctrl-C): the
/// next unread byte, the line it starts, and hashes of what was read, so a later run can
/// continue exactly there, and can tell when the part already read was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// The next unread byte of the file (after the last complete line).
    pub offset: u64,
    /// The line number that byte starts (1-based, header included).
    pub line: u64,
    /// `stable_hash` of the first 64 KiB of the file (or all of it before `offset`).
    pub head_hash: u64,
    /// `stable_hash` of the 64 KiB before `offset` (or all of it).
    pub tail_hash: u64,
}

/// Something that yields chunks: a file reader, stdin, a generator, a test vector.
///
/// A source is an iterator of `Result<Chunk>` plus its schema. Rows it cannot read are not
/// errors of the iterator: it keeps them as quarantine [`Reject`]s, which the engine drains
/// after every chunk with [`Source::drain_rejects`]. An `Err` item means the whole source
/// cannot go on (I/O error, corrupt compressed stream, or a bad row in strict mode); chunks
/// yielded before it stay valid.
pub trait Source: Iterator<Item = Result<Chunk>> + Send {
    /// The schema of every chunk (including the provenance column).
    fn schema(&self) -> SchemaRef;

    /// Progress in bytes and rows, for progress bars.
    fn progress(&self) -> Progress {
        Progress::default()
    }

    /// Takes the rows quarantined since the last call.
    fn drain_rejects(&mut self) -> Vec<Reject> {
        Vec::new()
    }

    /// Whether opening the input again yields the same rows, so that a failed read may be
    /// retried. True for files; false for stdin and pipes, whose bytes are gone once read.
    fn reopenable(&self) -> bool {
        true
    }

    /// Where the source stopped, once it has ended, when a later run can continue it from
    /// there (see [`SourcePosition`]); `None` (the default) for sources read to their end.
    fn stopped_at(&self) -> Option<SourcePosition> {
        None
    }

    /// The first and last input line read before an error, when the source knows them
    /// better than the rows it yielded (a source replaying part of another step's reading,
    /// as a cluster reduce task does): the engine names these lines in the `failed_file`
    /// record of an input that fails. `None` (the default): the lines of the rows yielded.
    fn lines_read(&self) -> Option<(u64, u64)> {
        None
    }
}

/// The run's input files, indexed by [`SourceId`].
///
/// ```
/// let mut t = pipeline_core::SourceTable::default();
/// let id = t.add("data/day1.csv.gz");
/// assert_eq!(t.name(id), "data/day1.csv.gz");
/// assert_eq!(t.name(99), "<unknown source 99>");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceTable {
    names: Vec<String>,
}

impl SourceTable {
    /// Registers an input and returns its id.
    pub fn add(&mut self, name: impl Into<String>) -> SourceId {
        self.names.push(name.into());
        (self.names.len() - 1) as SourceId
    }

    /// The name (path) of source `id`.
    pub fn name(&self, id: SourceId) -> String {
        self.names
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| format!("<unknown source {id}>"))
    }

    /// Number of sources.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no source is registered.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All names, in id order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// A source over chunks already in memory; handy for tests and for users embedding tickpipe.
pub struct VecSource {
    schema: SchemaRef,
    chunks: std::vec::IntoIter<Chunk>,
}

impl VecSource {
    /// A source yielding `chunks` in order; all must have `schema`.
    pub fn new(schema: SchemaRef, chunks: Vec<Chunk>) -> Self {
        VecSource {
            schema,
            chunks: chunks.into_iter(),
        }
    }
}

impl Iterator for VecSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        self.chunks.next().map(Ok)
    }
}

impl Source for VecSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
