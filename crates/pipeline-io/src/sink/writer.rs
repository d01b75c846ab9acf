//! [`FileWriter`]: one output file in any format, written under a hidden temporary name
//! (`.<name>.tmp` in its final directory) and renamed into place only when published.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use arrow_schema::SchemaRef;
use crossbeam_channel::{Receiver, Sender};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression as PqCompression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use pipeline_core::{Error, LINE_COLUMN, OutputFormat, Result};

use super::csv;
use super::ipc::IpcFile;
use super::options::{Compression, WriteOptions};
use super::sorted::SortCheck;

/// Buffer between the encoders and the file. Parquet and IPC hand over whole pages or
/// batches; for CSV, 256 KiB means a few thousand write calls per GB. Not tuned further:
/// writes did not show in the `sink_bench` profile.
const FILE_BUFFER: usize = 256 << 10;

/// Wraps a Parquet error with the file it concerns.
pub(crate) fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    // An I/O error inside the writer (a full disk) stays an I/O error, so callers can tell
    // the environment from bad data.
    if let parquet::errors::ParquetError::External(inner) = &e
        && let Some(io) = inner.downcast_ref::<std::io::Error>()
    {
        return Error::io(path, std::io::Error::new(io.kind(), io.to_string()));
    }
    Error::Arrow(arrow_schema::ArrowError::ParquetError(format!(
        "{}: {e}",
        path.display()
    )))
}

/// The temporary name of `final_path`: `.<name>.tmp` beside it, hidden from dataset readers
/// (pyarrow, DuckDB and Spark skip names starting with `.`).
pub fn temp_path(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".{name}.tmp"))
}

enum Encoder {
    Parquet(Box<ArrowWriter<BufWriter<File>>>),
    Ipc(Box<IpcFile>),
    Csv(BufWriter<File>),
}

/// One file being written.
pub struct FileWriter {
    encoder: Encoder,
    schema: SchemaRef,
    tmp: PathBuf,
    final_path: PathBuf,
    rows: u64,
    row_group_bytes: usize,
    durable: bool,
    sort: Option<SortCheck>,
    /// Small batches gathered before they reach the Parquet encoder.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pending_bytes: usize,
}

/// Rows gathered before a Parquet write. A partitioned sink hands each writer a slice of
/// every chunk (a few thousand rows); the encoder's fixed cost per call made those small
/// writes the slower path in `sink_bench`.
const COALESCE_ROWS: usize = 65_536;

/// A complete file still under its temporary name.
#[derive(Debug)]
pub struct ClosedFile {
    tmp: PathBuf,
    final_path: PathBuf,
    rows: u64,
    /// The outcome of a durable file's `fsync`, which runs on the fsync threads; awaited
    /// before the rename.
    sync: Option<Receiver<std::io::Result<()>>>,
}

impl ClosedFile {
    /// Waits for the file's data to be on disk (durable files), then renames it into place;
    /// returns its final path, rows and bytes.
    pub fn publish(mut self) -> Result<(PathBuf, u64, u64)> {
        if let Some(sync) = self.sync.take() {
            sync.recv()
                .map_err(|_| Error::Internal(format!("fsync of {} was lost", self.tmp.display())))?
                .map_err(|e| Error::io(&self.tmp, e))?;
        }
        fs::rename(&self.tmp, &self.final_path).map_err(|e| Error::io(&self.final_path, e))?;
        let bytes = fs::metadata(&self.final_path)
            .map_err(|e| Error::io(&self.final_path, e))?
            .len();
        Ok((self.final_path, self.rows, bytes))
    }

    /// Deletes the temporary file.
    pub fn discard(self) {
        // Best effort: the file may already be gone; nothing else can be done about it here.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Threads that `fsync` closed files for every writer of the process.
const SYNC_THREADS: usize = 4;

/// A file to `fsync`, and where to say how it went.
struct SyncJob {
    file: File,
    done: Sender<std::io::Result<()>>,
}

/// The process's fsync threads, started on first use; `None` if none could be started.
fn sync_pool() -> Option<&'static Sender<SyncJob>> {
    static POOL: OnceLock<Option<Sender<SyncJob>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<SyncJob>();
        let started = (0..SYNC_THREADS)
            .filter(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("tickpipe-fsync-{i}"))
                    .spawn(move || {
                        for job in rx {
                            let _ = job.done.send(job.file.sync_data());
                        }
                    })
                    .is_ok()
            })
            .count();
        (started > 0).then_some(tx)
    })
    .as_ref()
}

/// Hands `file`'s `fsync` to the fsync threads; the receiver gets its outcome. Runs it here
/// when no thread is available. A worker that waited for it inline sat idle meanwhile: on a
/// 20M-row `tickpipe run` on 2 cores the 134 files' `fdatasync` calls blocked their workers
/// for 0.83 s in all (`strace -T`), about 4% of the run's CPU time. (A thread per file, tried
/// first, kept every finished thread's stack until `publish` joined it: +27 MiB after 200M
/// piped rows.)
fn sync_in_background(file: File, tmp: &Path) -> Result<Option<Receiver<std::io::Result<()>>>> {
    let (done, outcome) = crossbeam_channel::bounded(1);
    let job = SyncJob { file, done };
    let job = match sync_pool() {
        Some(pool) => match pool.send(job) {
            Ok(()) => return Ok(Some(outcome)),
            Err(e) => e.into_inner(),
        },
        None => job,
    };
    job.file.sync_data().map_err(|e| Error::io(tmp, e))?;
    Ok(None)
}

impl FileWriter {
    /// Creates `final_path`'s temporary file for batches of `schema`. `sort` names the columns
    /// a Parquet file declares itself sorted by; the rows are checked against it, except for
    /// the `constant` (partition) columns.
    pub fn create(
        final_path: &Path,
        schema: SchemaRef,
        opts: &WriteOptions,
        format: OutputFormat,
        sort: &[String],
        constant: &[&str],
    ) -> Result<FileWriter> {
        if let Some(dir) = final_path.parent()
            && !dir.as_os_str().is_empty()
        {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = temp_path(final_path);
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let out = BufWriter::with_capacity(FILE_BUFFER, file);
        let mut sort_check = None;
        let encoder = match format {
            OutputFormat::Parquet => {
                sort_check = SortCheck::new(&schema, sort, constant);
                let props = parquet_properties(&schema, opts, sort_check.as_ref(), &tmp)?;
                let w = ArrowWriter::try_new(out, Arc::clone(&schema), Some(props))
                    .map_err(|e| parquet_error(&tmp, e))?;
                Encoder::Parquet(Box::new(w))
            }
            OutputFormat::Ipc => Encoder::Ipc(Box::new(IpcFile::try_new(
                out,
                Arc::clone(&schema),
                opts.compression,
                opts.row_group_bytes,
            )?)),
            OutputFormat::Csv => {
                let mut out = out;
                csv::write_header(&mut out, &schema).map_err(|e| Error::io(&tmp, e))?;
                Encoder::Csv(out)
            }
        };
        Ok(FileWriter {
            encoder,
            schema,
            tmp,
            final_path: final_path.to_path_buf(),
            rows: 0,
            row_group_bytes: opts.row_group_bytes,
            durable: opts.durable,
            sort: sort_check,
            pending: Vec::new(),
            pending_rows: 0,
            pending_bytes: 0,
        })
    }

    /// The schema this file was opened with.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// True when `batch` keeps the file's declared order (always true without one).
    pub fn keeps_order(&mut self, batch: &RecordBatch) -> Result<bool> {
        match &mut self.sort {
            Some(s) => s.accept(batch),
            None => Ok(true),
        }
    }

    /// Appends rows; a Parquet row group is flushed once its buffers reach the byte budget.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match &mut self.encoder {
            Encoder::Parquet(_) => {
                self.pending_rows += batch.num_rows();
                self.pending_bytes += batch.get_array_memory_size();
                self.pending.push(batch.clone());
                if self.pending_rows >= COALESCE_ROWS || self.pending_bytes >= self.row_group_bytes
                {
                    self.write_pending()?;
                }
            }
            Encoder::Ipc(w) => w.write(batch)?,
            Encoder::Csv(w) => csv::write_rows(w, batch, &self.tmp)?,
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Hands the gathered batches to the Parquet encoder as one batch, ending the row group
    /// when its buffers reach the byte budget.
    fn write_pending(&mut self) -> Result<()> {
        let Encoder::Parquet(w) = &mut self.encoder else {
            return Ok(());
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = if self.pending.len() == 1 {
            self.pending.swap_remove(0)
        } else {
            arrow_select::concat::concat_batches(&self.schema, &self.pending)?
        };
        self.pending.clear();
        self.pending_rows = 0;
        self.pending_bytes = 0;
        w.write(&batch).map_err(|e| parquet_error(&self.tmp, e))?;
        if w.memory_size().max(w.in_progress_size()) >= self.row_group_bytes {
            w.flush().map_err(|e| parquet_error(&self.tmp, e))?;
        }
        Ok(())
    }

    /// Row groups already written to this file (Parquet; 0 for other formats). The writer
    /// keeps every row group's metadata in memory until the footer is written.
    pub fn row_groups(&self) -> usize {
        match &self.encoder {
            Encoder::Parquet(w) => w.flushed_row_groups().len(),
            _ => 0,
        }
    }

    /// Bytes this file holds in memory (Parquet row group buffers, pending IPC batches, the
    /// CSV write buffer).
    pub fn buffered_bytes(&self) -> usize {
        match &self.encoder {
            Encoder::Parquet(w) => w.memory_size() + self.pending_bytes,
            Encoder::Ipc(w) => w.buffered_bytes(),
            Encoder::Csv(w) => w.buffer().len(),
        }
    }

    /// Writes out what is buffered (ends the Parquet row group early).
    pub fn flush_buffers(&mut self) -> Result<()> {
        match &mut self.encoder {
            Encoder::Parquet(_) => {
                self.write_pending()?;
                match &mut self.encoder {
                    Encoder::Parquet(w) => w.flush().map_err(|e| parquet_error(&self.tmp, e)),
                    _ => Ok(()),
                }
            }
            Encoder::Ipc(w) => w.flush(),
            Encoder::Csv(w) => w.flush().map_err(|e| Error::io(&self.tmp, e)),
        }
    }

    /// Completes the file (footer, flush, fsync) under its temporary name.
    pub fn close(mut self) -> Result<ClosedFile> {
        self.write_pending()?;
        let tmp = self.tmp;
        let out = match self.encoder {
            Encoder::Parquet(w) => w.into_inner().map_err(|e| parquet_error(&tmp, e))?,
            Encoder::Ipc(w) => w.finish()?,
            Encoder::Csv(w) => w,
        };
        let mut out = out;
        out.flush().map_err(|e| Error::io(&tmp, e))?;
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        // The data must be on disk before the rename makes the name final; `publish` waits.
        let sync = if self.durable {
            sync_in_background(file, &tmp)?
        } else {
            None
        };
        Ok(ClosedFile {
            tmp,
            final_path: self.final_path,
            rows: self.rows,
            sync,
        })
    }

    /// Drops the file without completing it.
    pub fn abort(self) {
        let tmp = self.tmp.clone();
        drop(self.encoder);
        // Best effort: a missing temp file is already the goal.
        let _ = fs::remove_file(&tmp);
    }
}

/// A Float32/Float64 column that is neither a canonical input column nor a lag of one (prices
/// and sizes sit on a tick grid, so a dictionary pays off there: measured 3× smaller than
/// byte-stream-split for `price_lag_1` on gen-data).
fn is_derived_float(f: &arrow_schema::Field) -> bool {
    let name = f.name();
    let base = name.split_once("_lag_").map_or(name.as_str(), |(b, _)| b);
    matches!(f.data_type(), DataType::Float64 | DataType::Float32)
        && pipeline_core::Canonical::from_name(base).is_none()
}

pub(crate) fn parquet_properties(
    schema: &SchemaRef,
    opts: &WriteOptions,
    sort: Option<&SortCheck>,
    path: &Path,
) -> Result<WriterProperties> {
    let codec = match opts.compression {
        Compression::Zstd => PqCompression::ZSTD(
            ZstdLevel::try_new(opts.compression_level).map_err(|e| parquet_error(path, e))?,
        ),
        Compression::Snappy => PqCompression::SNAPPY,
        Compression::None => PqCompression::UNCOMPRESSED,
    };
    let mut b = WriterProperties::builder()
        .set_compression(codec)
        .set_statistics_enabled(EnabledStatistics::Page)
        // Splits one large write across row groups by estimated encoded size; the writer
        // also ends a row group when its memory reaches the budget (`FileWriter::write`).
        .set_max_row_group_bytes(Some(opts.row_group_bytes.max(1)))
        .set_created_by(format!("tickpipe {}", env!("CARGO_PKG_VERSION")));
    // Timestamps and line numbers are (nearly) unique per row, so a dictionary only costs
    // time until it overflows and falls back; with many partition writers each paid that
    // hashing for its first 128k values (the largest cost in a `sink_bench` profile).
    // Delta encoding suits these increasing integers: smaller and faster than plain + zstd.
    for f in schema.fields() {
        if matches!(f.data_type(), DataType::Timestamp(..)) || f.name() == LINE_COLUMN {
            let col = ColumnPath::from(f.name().as_str());
            b = b
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
        } else if is_derived_float(f) {
            // Derived features (returns, moving averages, deviations…) are nearly unique per
            // row: a dictionary only costs hashing until it overflows. Byte-stream-split puts
            // the bytes of equal significance together, which zstd compresses far better
            // than plain doubles; pyarrow, Polars and DuckDB all read it.
            let col = ColumnPath::from(f.name().as_str());
            b = b
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_encoding(col, Encoding::BYTE_STREAM_SPLIT);
        }
    }
    if let Some(sort) = sort {
        // Sorting columns name leaf columns of the Parquet schema, which differ from Arrow
        // field indices once a nested column comes first.
        let descr = ArrowSchemaConverter::new()
            .convert(schema)
            .map_err(|e| parquet_error(path, e))?;
        let leaves = sort
            .columns()
            .iter()
            .map(|&i| {
                let name = schema.field(i).name();
                descr
                    .columns()
                    .iter()
                    .position(|c| c.path().string() == *name)
                    .map(|idx| SortingColumn {
                        column_idx: idx as i32,
                        descending: false,
                        nulls_first: false,
                    })
            })
            .collect::<Option<Vec<_>>>();
        b = b.set_sorting_columns(leaves);
    }
    Ok(b.build())
}
