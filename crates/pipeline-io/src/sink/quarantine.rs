//! The quarantine file: every rejected row with its source file, line, kind, reason, detail
//! and raw text, as Parquet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, StringDictionaryBuilder, UInt64Builder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{
    OutputFormat, Reject, RejectKind, RejectSink, Result, SinkSummary, SourceTable, dict_type,
};

use super::options::{Compression, WriteOptions};
use super::writer::FileWriter;

/// Rejects buffered before they are encoded as one batch. Rejects arrive a few at a time
/// (per chunk), so batching keeps pages large; 8192 rows of typical TAQ lines is about 1 MiB.
const BATCH_ROWS: usize = 8192;
/// Raw text buffered before a batch is cut early: a few very long damaged lines must not
/// hold much memory.
const BATCH_BYTES: usize = 4 << 20;
/// Row-group budget of the quarantine file, also its writer's whole buffer budget: small,
/// since quarantine files are read whole. A shuffled file quarantines nearly every row, and
/// Parquet holds about three times what it reports as buffered, so the former 8 MiB row
/// groups (under the default 32 MiB budget) cost a 128 MiB run tens of MiB.
const ROW_GROUP_BYTES: usize = 2 << 20;

/// The quarantine file's schema.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("file", dict_type(), false),
        Field::new("line", DataType::UInt64, false),
        Field::new("kind", dict_type(), false),
        Field::new("reason", dict_type(), false),
        Field::new("detail", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, true),
    ]))
}

struct QuarantineSink {
    path: PathBuf,
    sources: SourceTable,
    schema: SchemaRef,
    opts: WriteOptions,
    writer: Option<FileWriter>,
    file: StringDictionaryBuilder<Int32Type>,
    line: UInt64Builder,
    kind: StringDictionaryBuilder<Int32Type>,
    reason: StringDictionaryBuilder<Int32Type>,
    detail: StringBuilder,
    raw: StringBuilder,
    buffered: usize,
    buffered_bytes: usize,
    done: bool,
}

/// Creates the quarantine sink writing `path` (Parquet, zstd). File names come from
/// `sources`. Nothing is written when no reject arrives: `finish` then returns an empty
/// summary. The file is atomic like every sink output.
pub fn create_quarantine_sink(path: &Path, sources: SourceTable) -> Result<Box<dyn RejectSink>> {
    let opts = WriteOptions {
        format: OutputFormat::Parquet,
        compression: Compression::Zstd,
        row_group_bytes: ROW_GROUP_BYTES,
        max_buffered_bytes: ROW_GROUP_BYTES,
        partition_by: Vec::new(),
        sort_columns: Vec::new(),
        ..WriteOptions::default()
    };
    Ok(Box::new(QuarantineSink {
        path: path.to_path_buf(),
        sources,
        schema: quarantine_schema(),
        opts,
        writer: None,
        file: StringDictionaryBuilder::new(),
        line: UInt64Builder::new(),
        kind: StringDictionaryBuilder::new(),
        reason: StringDictionaryBuilder::new(),
        detail: StringBuilder::new(),
        raw: StringBuilder::new(),
        buffered: 0,
        buffered_bytes: 0,
        done: false,
    }))
}

impl QuarantineSink {
    fn flush(&mut self) -> Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.file.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.detail.finish()),
            Arc::new(self.raw.finish()),
        ];
        self.buffered = 0;
        self.buffered_bytes = 0;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        if self.writer.is_none() {
            self.writer = Some(FileWriter::create(
                &self.path,
                Arc::clone(&self.schema),
                &self.opts,
                OutputFormat::Parquet,
                &[],
                &[],
            )?);
        }
        match &mut self.writer {
            Some(w) => w.write(&batch),
            None => Err(pipeline_core::Error::Internal(
                "quarantine writer missing".into(),
            )),
        }
    }
}

impl RejectSink for QuarantineSink {
    fn write(&mut self, rejects: &[Reject]) -> Result<()> {
        for r in rejects {
            self.file.append_value(self.sources.name(r.source));
            self.line.append_value(r.line);
            self.kind.append_value(match r.kind {
                RejectKind::Quarantined => "quarantined",
                RejectKind::Removed => "removed",
            });
            self.reason.append_value(&r.reason);
            self.detail.append_value(&r.detail);
            self.raw.append_option(r.raw.as_deref());
            self.buffered += 1;
            self.buffered_bytes +=
                r.detail.len() + r.raw.as_ref().map_or(0, String::len) + r.reason.len() + 16;
            if self.buffered >= BATCH_ROWS || self.buffered_bytes >= BATCH_BYTES {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        self.flush()?;
        self.done = true;
        let Some(w) = self.writer.take() else {
            return Ok(SinkSummary::default());
        };
        let (path, rows, bytes) = w.close()?.publish()?;
        Ok(SinkSummary {
            rows,
            bytes,
            files: vec![path],
        })
    }

    fn abort(&mut self) -> Result<()> {
        self.done = true;
        if let Some(w) = self.writer.take() {
            w.abort();
        }
        Ok(())
    }
}

impl Drop for QuarantineSink {
    /// Removes the temporary file when `finish` never ran.
    fn drop(&mut self) {
        if !self.done
            && let Some(w) = self.writer.take()
        {
            w.abort();
        }
    }
}
