//! The [`Sink`] trait: where chunks end up.

use std::path::PathBuf;

use serde::Serialize;

use crate::chunk::Chunk;
use crate::error::Result;
use crate::reject::Reject;

/// What a sink wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkSummary {
    /// Rows written.
    pub rows: u64,
    /// Bytes written to disk.
    pub bytes: u64,
    /// Files written (complete, renamed into place).
    pub files: Vec<PathBuf>,
}

impl SinkSummary {
    /// Adds another summary.
    pub fn merge(&mut self, other: SinkSummary) {
        self.rows += other.rows;
        self.bytes += other.bytes;
        self.files.extend(other.files);
    }
}

/// Takes chunks and persists them.
///
/// Sinks write atomically: nothing under a final name until `finish` succeeds; `abort`
/// removes partial files.
pub trait Sink: Send {
    /// Writes one chunk.
    fn write(&mut self, chunk: &Chunk) -> Result<()>;

    /// Flushes, closes and renames outputs into place.
    fn finish(&mut self) -> Result<SinkSummary>;

    /// Stops without completing: removes temporary files.
    fn abort(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Takes rejected rows (the quarantine file).
pub trait RejectSink: Send {
    /// Writes rejected rows.
    fn write(&mut self, rejects: &[Reject]) -> Result<()>;

    /// Flushes, closes and renames the file into place.
    fn finish(&mut self) -> Result<SinkSummary>;

    /// Stops without completing: removes temporary files (rejects of work that is not
    /// committed must not reach the quarantine).
    fn abort(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A sink that keeps chunks in memory (tests, embedding).
#[derive(Debug, Default)]
pub struct MemorySink {
    /// The chunks written so far.
    pub chunks: Vec<Chunk>,
}

impl Sink for MemorySink {
    fn write(&mut self, chunk: &Chunk) -> Result<()> {
        self.chunks.push(chunk.clone());
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary {
            rows: self.chunks.iter().map(|c| c.num_rows() as u64).sum(),
            ..Default::default()
        })
    }
}

/// A reject sink that keeps rejects in memory.
#[derive(Debug, Default)]
pub struct MemoryRejectSink {
    /// Every reject written.
    pub rejects: Vec<Reject>,
}

impl RejectSink for MemoryRejectSink {
    fn write(&mut self, rejects: &[Reject]) -> Result<()> {
        self.rejects.extend_from_slice(rejects);
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary {
            rows: self.rejects.len() as u64,
            ..Default::default()
        })
    }
}
