//! Post-passes over files a sink already wrote: [`file_batches`] streams a file back one batch
//! at a time (optionally only some columns), [`file_schema`] and [`file_metadata_value`] read
//! its footer, and [`rewrite_file`]
//! rewrites it through a batch transform, atomically, with the same writer settings.
//!
//! A Parquet rewrite keeps the file's layout: each input row group becomes one output row
//! group, written with the properties the sink used ([`WriteOptions`]: codec, page
//! statistics, encodings) and the original `sorting_columns` claim, so memory stays bounded
//! by one row group exactly as when the file was first written. Arrow IPC files are streamed
//! batch by batch; their metadata lives in the schema. CSV files have no metadata to carry
//! and are refused.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::reader::FileReader;
use arrow_schema::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{
    ArrowSchemaConverter, ArrowWriter, ProjectionMask, add_encoded_arrow_schema_to_metadata,
};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{KeyValue, PageIndexPolicy, ParquetMetaData};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use pipeline_core::{Error, OutputFormat, Result};

use super::ipc::IpcFile;
use super::options::WriteOptions;
use super::writer::{parquet_error, parquet_properties, temp_path};

/// Rows per batch read back. The sinks coalesce writes to 65,536 rows
/// (`writer::COALESCE_ROWS`); reading the same amount keeps a batch at a few MB for
/// tick-data widths.
const READ_BATCH_ROWS: usize = 65_536;

/// Buffer between the encoders and the rewritten file (as the sinks use).
const FILE_BUFFER: usize = 256 << 10;

/// A file's format, from its extension (`.parquet` or `.arrow`).
fn format_of(path: &Path) -> Result<OutputFormat> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => Ok(OutputFormat::Parquet),
        Some("arrow") => Ok(OutputFormat::Ipc),
        _ => Err(Error::Usage(format!(
            "{}: only Parquet (.parquet) and Arrow IPC (.arrow) files can be read back or rewritten",
            path.display()
        ))),
    }
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(path, e))
}

fn parquet_metadata(path: &Path, file: &File) -> Result<ArrowReaderMetadata> {
    ArrowReaderMetadata::load(file, ArrowReaderOptions::default())
        .map_err(|e| parquet_error(path, e))
}

/// The Arrow schema of one Parquet or Arrow IPC file (read from its footer).
pub fn file_schema(path: &Path) -> Result<SchemaRef> {
    let file = open(path)?;
    match format_of(path)? {
        OutputFormat::Parquet => Ok(Arc::clone(parquet_metadata(path, &file)?.schema())),
        _ => Ok(FileReader::try_new(file, None)?.schema()),
    }
}

/// Streams the batches of one Parquet or Arrow IPC file, at most 65,536 rows each, so a file
/// of any size is read in bounded memory. With `columns`, only those top-level columns are
/// decoded (names the file lacks are skipped), in file order.
pub fn file_batches(
    path: &Path,
    columns: Option<&[String]>,
) -> Result<Box<dyn Iterator<Item = Result<RecordBatch>> + Send>> {
    let file = open(path)?;
    let wanted = |schema: &Schema| -> Vec<usize> {
        (0..schema.fields().len())
            .filter(|&i| columns.is_none_or(|c| c.contains(schema.field(i).name())))
            .collect()
    };
    match format_of(path)? {
        OutputFormat::Parquet => {
            let p = path.to_path_buf();
            let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| parquet_error(path, e))?
                .with_batch_size(READ_BATCH_ROWS);
            if columns.is_some() {
                // Parquet root columns are the Arrow schema's top-level fields, in order.
                let roots = wanted(builder.schema());
                let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
                builder = builder.with_projection(mask);
            }
            let reader = builder.build().map_err(|e| parquet_error(path, e))?;
            Ok(Box::new(reader.map(move |b| {
                b.map_err(|e| {
                    Error::Arrow(arrow_schema::ArrowError::ExternalError(
                        format!("{}: {e}", p.display()).into(),
                    ))
                })
            })))
        }
        _ => {
            let schema = FileReader::try_new(open(path)?, None)?.schema();
            let projection = columns.map(|_| wanted(&schema));
            let reader = FileReader::try_new(file, projection)?;
            Ok(Box::new(reader.map(|b| b.map_err(Error::from))))
        }
    }
}

/// The value of `key` in a file's metadata: the Parquet footer's key-value metadata, or the
/// schema metadata of an Arrow IPC file. `None` when the key is not there.
pub fn file_metadata_value(path: &Path, key: &str) -> Result<Option<String>> {
    let file = open(path)?;
    match format_of(path)? {
        OutputFormat::Parquet => {
            let meta = parquet_metadata(path, &file)?;
            let kv = meta.metadata().file_metadata().key_value_metadata();
            Ok(kv
                .and_then(|kv| kv.iter().find(|e| e.key == key))
                .and_then(|e| e.value.clone()))
        }
        _ => {
            let reader = FileReader::try_new(file, None)?;
            Ok(reader.schema().metadata().get(key).cloned())
        }
    }
}

/// What [`rewrite_file`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Rows written (the transform may not drop or add rows, so also rows read).
    pub rows: u64,
    /// Size of the new file.
    pub bytes: u64,
}

/// Rewrites `path` in place through `transform`, adding `metadata` (key, value) pairs to the
/// file's metadata (replacing equal keys). The new file is written as `.<name>.tmp` beside
/// the old one with `opts`' settings, synced when `opts.durable`, and renamed over it, so a
/// reader sees either the old file or the new one, never a torn one.
///
/// `transform` must keep the row count of each batch and map every batch to one schema; it
/// is also called once on an empty batch to learn that schema before any row is read.
pub fn rewrite_file(
    path: &Path,
    opts: &WriteOptions,
    metadata: &[(String, String)],
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<Rewritten> {
    let format = format_of(path)?;
    let tmp = temp_path(path);
    let result = match format {
        OutputFormat::Parquet => rewrite_parquet(path, &tmp, opts, metadata, transform),
        _ => rewrite_ipc(path, &tmp, opts, metadata, transform),
    };
    publish(path, &tmp, result)
}

/// Rewrites only `columns` of `path` (those it has) through `transform`, adding `metadata`
/// as [`rewrite_file`] does. `transform` receives batches holding just those columns, in
/// file order, and returns them (their types may change; the rows may not). In a Parquet
/// file every other column chunk is copied byte for byte, with its statistics and page
/// index, so only the rewritten columns are decoded and encoded again; an Arrow IPC file is
/// rewritten whole.
pub fn rewrite_columns(
    path: &Path,
    opts: &WriteOptions,
    metadata: &[(String, String)],
    columns: &[String],
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<Rewritten> {
    let format = format_of(path)?;
    let tmp = temp_path(path);
    let result = match format {
        OutputFormat::Parquet => {
            match rewrite_parquet_columns(path, &tmp, opts, metadata, columns, transform) {
                Ok(Some(rows)) => Ok(rows),
                // Column chunks map one to one to Arrow fields only in a flat schema;
                // otherwise the whole file goes through the decoder.
                Ok(None) => rewrite_parquet(path, &tmp, opts, metadata, &mut |b| {
                    splice(b, columns, transform)
                }),
                Err(e) => Err(e),
            }
        }
        _ => rewrite_ipc(path, &tmp, opts, metadata, &mut |b| {
            splice(b, columns, transform)
        }),
    };
    publish(path, &tmp, result)
}

/// Rewrites `path` in place keeping its first `keep` columns and replacing all the others
/// with the columns `transform` computes from those first `keep` (called with batches of
/// them; it must keep the row count and map every batch to one schema, and is called once
/// on an empty batch first). In Parquet the kept column chunks are copied as they are and
/// only the computed columns are encoded, row group by row group; Arrow IPC files are
/// rewritten whole. `metadata` is added as in [`rewrite_file`]; same atomic publication.
pub fn rewrite_tail(
    path: &Path,
    opts: &WriteOptions,
    metadata: &[(String, String)],
    keep: usize,
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<Rewritten> {
    let format = format_of(path)?;
    let tmp = temp_path(path);
    let mut whole = |b: RecordBatch| -> Result<RecordBatch> {
        let head = b.project(&(0..keep.min(b.num_columns())).collect::<Vec<_>>())?;
        let tail = transform(head.clone())?;
        let mut fields = head.schema().fields().to_vec();
        fields.extend(tail.schema().fields().iter().cloned());
        let mut arrays = head.columns().to_vec();
        arrays.extend(tail.columns().iter().cloned());
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            b.schema().metadata().clone(),
        ));
        Ok(RecordBatch::try_new(schema, arrays)?)
    };
    let result = match format {
        OutputFormat::Parquet => {
            let file = open(path)?;
            match partial_metadata(path, &file)? {
                Some(meta) if keep <= meta.schema().fields().len() => {
                    let read: Vec<usize> = (0..keep).collect();
                    let probe = transform(RecordBatch::new_empty(Arc::new(
                        meta.schema().project(&read)?,
                    )))?
                    .schema();
                    let layout: Vec<Col> = (0..keep)
                        .map(Col::Copy)
                        .chain((0..probe.fields().len()).map(Col::Computed))
                        .collect();
                    rewrite_parquet_partial(
                        (path, &file, &meta),
                        &tmp,
                        (opts, metadata),
                        (&read, &layout, &probe),
                        transform,
                    )
                }
                Some(_) => Err(Error::Internal(format!(
                    "{}: fewer than {keep} columns to keep",
                    path.display()
                ))),
                None => rewrite_parquet(path, &tmp, opts, metadata, &mut whole),
            }
        }
        _ => rewrite_ipc(path, &tmp, opts, metadata, &mut whole),
    };
    publish(path, &tmp, result)
}

/// Applies `transform` to the `columns` of `batch` and puts the results back in place.
fn splice(
    batch: RecordBatch,
    columns: &[String],
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let idx: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| columns.contains(schema.field(i).name()))
        .collect();
    let out = transform(batch.project(&idx)?)?;
    if out.num_columns() != idx.len() || out.num_rows() != batch.num_rows() {
        return Err(Error::Internal(
            "the rewrite transform changed the columns or the rows of a batch".into(),
        ));
    }
    let mut fields = schema.fields().to_vec();
    let mut arrays = batch.columns().to_vec();
    for (k, &i) in idx.iter().enumerate() {
        fields[i] = Arc::clone(&out.schema().fields()[k]);
        arrays[i] = Arc::clone(out.column(k));
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// Renames a finished temporary file over `path`, or removes it after an error.
fn publish(path: &Path, tmp: &Path, result: Result<u64>) -> Result<Rewritten> {
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            // Best effort: the old file is untouched; only the partial new one goes.
            let _ = fs::remove_file(tmp);
            return Err(e);
        }
    };
    fs::rename(tmp, path).map_err(|e| Error::io(path, e))?;
    let bytes = fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    Ok(Rewritten { rows, bytes })
}

/// The transform's output schema, with `metadata`'s keys removed (they are written as file
/// metadata, and a stale copy in the schema would shadow them for some readers).
fn output_schema(
    input: &SchemaRef,
    metadata: &[(String, String)],
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<SchemaRef> {
    let probe = transform(RecordBatch::new_empty(Arc::clone(input)))?;
    let schema = probe.schema();
    let mut meta = schema.metadata().clone();
    for (k, _) in metadata {
        meta.remove(k);
    }
    Ok(Arc::new(Schema::new_with_metadata(
        schema.fields().clone(),
        meta,
    )))
}

/// Applies `transform` and checks that it kept the rows and the schema.
fn transformed(
    path: &Path,
    batch: RecordBatch,
    schema: &SchemaRef,
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let out = transform(batch)?;
    if out.num_rows() != n || out.schema().fields() != schema.fields() {
        return Err(Error::Internal(format!(
            "{}: the rewrite transform changed the rows or the schema of a batch",
            path.display()
        )));
    }
    Ok(RecordBatch::try_new(
        Arc::clone(schema),
        out.columns().to_vec(),
    )?)
}

fn create_tmp(tmp: &Path) -> Result<BufWriter<File>> {
    let file = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
    Ok(BufWriter::with_capacity(FILE_BUFFER, file))
}

fn finish_tmp(tmp: &Path, mut out: BufWriter<File>, durable: bool) -> Result<()> {
    out.flush().map_err(|e| Error::io(tmp, e))?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io(tmp, e.into_error()))?;
    // The data must be on disk before the rename makes the name final.
    if durable {
        file.sync_data().map_err(|e| Error::io(tmp, e))?;
    }
    Ok(())
}

fn rewrite_parquet(
    path: &Path,
    tmp: &Path,
    opts: &WriteOptions,
    metadata: &[(String, String)],
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<u64> {
    let file = open(path)?;
    let meta = parquet_metadata(path, &file)?;
    let schema = output_schema(meta.schema(), metadata, transform)?;
    let pq = meta.metadata();
    let props = rewrite_properties(pq, &schema, opts, metadata, tmp)?;
    let mut writer = ArrowWriter::try_new(create_tmp(tmp)?, Arc::clone(&schema), Some(props))
        .map_err(|e| parquet_error(tmp, e))?;
    let mut rows = 0u64;
    for rg in 0..pq.num_row_groups() {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            file.try_clone().map_err(|e| Error::io(path, e))?,
            meta.clone(),
        )
        .with_row_groups(vec![rg])
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|e| parquet_error(path, e))?;
        for batch in reader {
            let batch = transformed(path, batch?, &schema, transform)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(|e| parquet_error(tmp, e))?;
        }
        // One output row group per input row group: the same layout, and the same memory.
        writer.flush().map_err(|e| parquet_error(tmp, e))?;
    }
    let out = writer.into_inner().map_err(|e| parquet_error(tmp, e))?;
    finish_tmp(tmp, out, opts.durable)?;
    Ok(rows)
}

/// The sink's own writer properties for `schema`, then what the file said about itself: its
/// sort claim (the sink drops it from files whose rows broke the order) and its key-value
/// entries other than Arrow's schema (written anew), with `metadata` added.
fn rewrite_properties(
    pq: &ParquetMetaData,
    schema: &SchemaRef,
    opts: &WriteOptions,
    metadata: &[(String, String)],
    tmp: &Path,
) -> Result<WriterProperties> {
    let mut kv: Vec<KeyValue> = pq
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter(|e| {
                    e.key != parquet::arrow::ARROW_SCHEMA_META_KEY
                        && !metadata.iter().any(|(k, _)| *k == e.key)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    kv.extend(
        metadata
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    let sorting = pq
        .row_groups()
        .first()
        .and_then(|rg| rg.sorting_columns().cloned());
    Ok(parquet_properties(schema, opts, None, tmp)?
        .into_builder()
        .set_sorting_columns(sorting)
        .set_key_value_metadata(Some(kv))
        .build())
}

/// [`rewrite_columns`] for Parquet: the changed columns are decoded row group by row group
/// and encoded into column writers; every other column chunk is spliced in as it is.
/// Where each column of a partial Parquet rewrite comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    /// The input column chunk with this index, copied as it is.
    Copy(usize),
    /// Column `k` of the transform's output.
    Computed(usize),
}

/// [`rewrite_columns`] for Parquet: the changed columns computed, the rest copied.
fn rewrite_parquet_columns(
    path: &Path,
    tmp: &Path,
    opts: &WriteOptions,
    metadata: &[(String, String)],
    columns: &[String],
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<Option<u64>> {
    let file = open(path)?;
    let meta = partial_metadata(path, &file)?;
    let Some(meta) = meta else {
        return Ok(None);
    };
    let input = Arc::clone(meta.schema());
    let changed: Vec<usize> = (0..input.fields().len())
        .filter(|&i| columns.contains(input.field(i).name()))
        .collect();
    let probe = transform(RecordBatch::new_empty(Arc::new(input.project(&changed)?)))?.schema();
    let mut k = 0;
    let layout: Vec<Col> = (0..input.fields().len())
        .map(|i| {
            if changed.contains(&i) {
                k += 1;
                Col::Computed(k - 1)
            } else {
                Col::Copy(i)
            }
        })
        .collect();
    rewrite_parquet_partial(
        (path, &file, &meta),
        tmp,
        (opts, metadata),
        (&changed, &layout, &probe),
        transform,
    )
    .map(Some)
}

/// The file's metadata (with its page index, which copied chunks keep) when its columns
/// map one to one to Parquet column chunks; `None` for nested schemas, which a partial
/// rewrite cannot copy column by column.
fn partial_metadata(path: &Path, file: &File) -> Result<Option<ArrowReaderMetadata>> {
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let meta = ArrowReaderMetadata::load(file, options).map_err(|e| parquet_error(path, e))?;
    let flat = meta.metadata().file_metadata().schema_descr().num_columns()
        == meta.schema().fields().len();
    Ok(flat.then_some(meta))
}

/// Writes `tmp` from the Parquet file `path`, row group by row group: the columns `read`
/// are decoded and handed to `transform`, and the output columns follow `layout`, each
/// either an input column chunk copied as it is (with its page index) or a column of the
/// transform's output, whose schema is `probe` (the transform's answer to an empty batch),
/// encoded with `opts`' settings.
fn rewrite_parquet_partial(
    (path, file, meta): (&Path, &File, &ArrowReaderMetadata),
    tmp: &Path,
    (opts, metadata): (&WriteOptions, &[(String, String)]),
    (read, layout, probe): (&[usize], &[Col], &SchemaRef),
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<u64> {
    let input = Arc::clone(meta.schema());
    let pq = meta.metadata();
    let computed = layout
        .iter()
        .filter(|c| matches!(c, Col::Computed(_)))
        .count();
    if probe.fields().len() != computed {
        return Err(Error::Internal(format!(
            "{}: the rewrite transform returned {} columns, {computed} expected",
            path.display(),
            probe.fields().len()
        )));
    }
    let fields: Vec<arrow_schema::FieldRef> = layout
        .iter()
        .map(|c| match *c {
            Col::Copy(i) => Arc::clone(&input.fields()[i]),
            Col::Computed(k) => Arc::clone(&probe.fields()[k]),
        })
        .collect();
    let mut schema_meta = input.metadata().clone();
    for (k, _) in metadata {
        schema_meta.remove(k);
    }
    let schema: SchemaRef = Arc::new(Schema::new_with_metadata(fields, schema_meta));
    let mut props = rewrite_properties(pq, &schema, opts, metadata, tmp)?;
    add_encoded_arrow_schema_to_metadata(&schema, &mut props);
    let descr = ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(&schema)
        .map_err(|e| parquet_error(tmp, e))?;
    let mut writer =
        SerializedFileWriter::new(create_tmp(tmp)?, descr.root_schema_ptr(), Arc::new(props))
            .map_err(|e| parquet_error(tmp, e))?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, Arc::clone(&schema));
    let mut rows = 0u64;
    for rg in 0..pq.num_row_groups() {
        let group = pq.row_group(rg);
        // One writer per leaf, which in a flat schema is one per field.
        let mut encoders = factory
            .create_column_writers(rg)
            .map_err(|e| parquet_error(tmp, e))?;
        if computed > 0 {
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
                file.try_clone().map_err(|e| Error::io(path, e))?,
                meta.clone(),
            )
            .with_row_groups(vec![rg])
            .with_projection(ProjectionMask::roots(meta.parquet_schema(), read.to_vec()))
            .with_batch_size(READ_BATCH_ROWS)
            .build()
            .map_err(|e| parquet_error(path, e))?;
            let mut group_rows = 0u64;
            for batch in reader {
                let batch = batch?;
                let n = batch.num_rows();
                let out = transform(batch)?;
                if out.num_rows() != n || out.schema().fields() != probe.fields() {
                    return Err(Error::Internal(format!(
                        "{}: the rewrite transform changed the rows or the schema of a batch",
                        path.display()
                    )));
                }
                for (i, c) in layout.iter().enumerate() {
                    let Col::Computed(k) = *c else { continue };
                    for leaf in compute_leaves(schema.field(i), out.column(k))
                        .map_err(|e| parquet_error(tmp, e))?
                    {
                        encoders[i]
                            .write(&leaf)
                            .map_err(|e| parquet_error(tmp, e))?;
                    }
                }
                group_rows += n as u64;
            }
            if group_rows != group.num_rows() as u64 {
                return Err(Error::Internal(format!(
                    "{}: row group {rg} decoded to {group_rows} rows, its metadata says {}",
                    path.display(),
                    group.num_rows()
                )));
            }
        }
        let index = pq.page_index_for_row_group(rg);
        let mut out = writer.next_row_group().map_err(|e| parquet_error(tmp, e))?;
        for (encoder, c) in encoders.into_iter().zip(layout) {
            match *c {
                Col::Computed(_) => encoder
                    .close()
                    .and_then(|c| c.append_to_row_group(&mut out))
                    .map_err(|e| parquet_error(tmp, e))?,
                Col::Copy(i) => {
                    let chunk = group.column(i);
                    let copied = ColumnCloseResult {
                        bytes_written: chunk.compressed_size() as u64,
                        rows_written: group.num_rows() as u64,
                        metadata: chunk.clone(),
                        bloom_filter: None,
                        column_index: index.column_index(i).cloned(),
                        offset_index: index.offset_index(i).cloned(),
                    };
                    out.append_column(file, copied)
                        .map_err(|e| parquet_error(tmp, e))?;
                }
            }
        }
        out.close().map_err(|e| parquet_error(tmp, e))?;
        rows += group.num_rows() as u64;
    }
    let out = writer.into_inner().map_err(|e| parquet_error(tmp, e))?;
    finish_tmp(tmp, out, opts.durable)?;
    Ok(rows)
}

fn rewrite_ipc(
    path: &Path,
    tmp: &Path,
    opts: &WriteOptions,
    metadata: &[(String, String)],
    transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<u64> {
    let reader = FileReader::try_new(open(path)?, None)?;
    let schema = output_schema(&reader.schema(), metadata, transform)?;
    // IPC has no footer key-value list: file metadata is the schema's.
    let mut meta = schema.metadata().clone();
    meta.extend(metadata.iter().cloned());
    let schema = Arc::new(Schema::new_with_metadata(schema.fields().clone(), meta));
    let mut writer = IpcFile::try_new(
        create_tmp(tmp)?,
        Arc::clone(&schema),
        opts.compression,
        opts.row_group_bytes,
    )?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = transformed(path, batch?, &schema, transform)?;
        rows += batch.num_rows() as u64;
        writer.write(&batch)?;
    }
    finish_tmp(tmp, writer.finish()?, opts.durable)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::create_file_sink;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    use arrow_array::{Float64Array, UInt64Array};
    use arrow_schema::{DataType, Field};
    use pipeline_core::Chunk;

    fn chunk(start: u64, n: u64) -> Chunk {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::UInt64, false),
            Field::new("x", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt64Array::from_iter_values(start..start + n)),
                Arc::new(Float64Array::from_iter_values(
                    (start..start + n).map(|v| v as f64),
                )),
            ],
        )
        .unwrap();
        Chunk::with_first_line(batch, 0, 0, start + 1).unwrap()
    }

    fn write(path: &Path, opts: &WriteOptions, chunks: &[Chunk]) {
        let mut sink = create_file_sink(path, opts).unwrap();
        for c in chunks {
            sink.write(c).unwrap();
        }
        sink.finish().unwrap();
    }

    fn double_x(b: RecordBatch) -> Result<RecordBatch> {
        let i = b.schema().index_of("x")?;
        let x = b.column(i).as_primitive::<Float64Type>();
        let doubled: Float64Array = x.unary(|v| v * 2.0);
        let mut cols = b.columns().to_vec();
        cols[i] = Arc::new(doubled);
        Ok(RecordBatch::try_new(b.schema(), cols)?)
    }

    /// A Parquet file `dir/a.parquet` of 2,005 rows in several row groups, and its options.
    fn three_group_file(dir: &Path) -> (std::path::PathBuf, WriteOptions) {
        let path = dir.join("a.parquet");
        let opts = WriteOptions {
            durable: false,
            // Tiny row groups so the file has several.
            row_group_bytes: 1,
            ..WriteOptions::default()
        };
        write(
            &path,
            &opts,
            &[chunk(0, 1000), chunk(1000, 1000), chunk(2000, 5)],
        );
        (path, opts)
    }

    #[test]
    fn parquet_rewrite_keeps_layout_and_adds_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let (path, opts) = three_group_file(dir.path());
        let before = parquet_metadata(&path, &open(&path).unwrap()).unwrap();
        let groups: Vec<i64> = before
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert!(groups.len() > 1, "{groups:?}");
        assert_eq!(file_metadata_value(&path, "k").unwrap(), None);

        let kv = [("k".to_string(), "v1".to_string())];
        let r = rewrite_file(&path, &opts, &kv, &mut double_x).unwrap();
        assert_eq!(r.rows, 2005);
        assert_eq!(r.bytes, fs::metadata(&path).unwrap().len());
        assert!(!temp_path(&path).exists());
        let after = parquet_metadata(&path, &open(&path).unwrap()).unwrap();
        let after_groups: Vec<i64> = after
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(after_groups, groups);
        assert_eq!(
            file_metadata_value(&path, "k").unwrap().as_deref(),
            Some("v1")
        );
        let mut seen = 0u64;
        for b in file_batches(&path, None).unwrap() {
            let b = b.unwrap();
            let n = b.column(0).as_primitive::<arrow_array::types::UInt64Type>();
            let x = b.column(1).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                assert_eq!(x.value(i), 2.0 * n.value(i) as f64);
            }
            seen += b.num_rows() as u64;
        }
        assert_eq!(seen, 2005);
        // A projection decodes only the named columns (unknown names are skipped).
        let cols = ["x".to_string(), "nope".to_string()];
        let b = file_batches(&path, Some(&cols))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(b.num_columns(), 1);
        assert_eq!(b.schema().field(0).name(), "x");
        assert_eq!(file_schema(&path).unwrap().fields().len(), 2);

        // A second rewrite replaces the key rather than adding a second one.
        let kv = [("k".to_string(), "v2".to_string())];
        rewrite_file(&path, &opts, &kv, &mut |b| Ok(b)).unwrap();
        let meta = parquet_metadata(&path, &open(&path).unwrap()).unwrap();
        let keys: Vec<&str> = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .iter()
            .filter(|e| e.key == "k")
            .map(|e| e.value.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(keys, vec!["v2"]);
    }

    /// For [`rewrite_tail`]: from the kept `n`, a column `y = n + 1` (Int64, nullable).
    fn n_plus_one(b: RecordBatch) -> Result<RecordBatch> {
        assert_eq!(b.num_columns(), 1, "only the kept column is decoded");
        let n = b.column(0).as_primitive::<arrow_array::types::UInt64Type>();
        let y: arrow_array::Int64Array = n.iter().map(|v| v.map(|v| v as i64 + 1)).collect();
        let schema = Schema::new(vec![Field::new("y", DataType::Int64, true)]);
        Ok(RecordBatch::try_new(Arc::new(schema), vec![Arc::new(y)])?)
    }

    /// `(n, y)` of every row of `path`, checking the columns are exactly `n`, `y`.
    fn n_and_y(path: &Path) -> Vec<(u64, i64)> {
        let mut out = Vec::new();
        for b in file_batches(path, None).unwrap() {
            let b = b.unwrap();
            let names: Vec<String> = b
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            assert_eq!(names, ["n", "y"]);
            let n = b.column(0).as_primitive::<arrow_array::types::UInt64Type>();
            let y = b.column(1).as_primitive::<arrow_array::types::Int64Type>();
            out.extend((0..b.num_rows()).map(|i| (n.value(i), y.value(i))));
        }
        out
    }

    #[test]
    fn a_tail_rewrite_copies_the_kept_columns_and_computes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (path, opts) = three_group_file(dir.path());
        let before = parquet_metadata(&path, &open(&path).unwrap()).unwrap();
        let kv = [("k".to_string(), "tail".to_string())];
        let r = rewrite_tail(&path, &opts, &kv, 1, &mut n_plus_one).unwrap();
        assert_eq!(r.rows, 2005);
        let after = parquet_metadata(&path, &open(&path).unwrap()).unwrap();
        let (b, a) = (before.metadata(), after.metadata());
        assert_eq!(a.num_row_groups(), b.num_row_groups());
        for g in 0..a.num_row_groups() {
            // The kept column's chunk is copied byte for byte: same size, same statistics.
            let (old, new) = (b.row_group(g).column(0), a.row_group(g).column(0));
            assert_eq!(new.compressed_size(), old.compressed_size());
            assert_eq!(new.statistics(), old.statistics());
            assert_eq!(a.row_group(g).num_columns(), 2);
        }
        let rows = n_and_y(&path);
        assert_eq!(rows.len(), 2005);
        assert!(rows.iter().all(|(n, y)| *y == *n as i64 + 1));
        assert_eq!(
            file_metadata_value(&path, "k").unwrap().as_deref(),
            Some("tail")
        );

        // Arrow IPC: rewritten whole, same result.
        let ipc = dir.path().join("a.arrow");
        let opts = WriteOptions {
            durable: false,
            format: OutputFormat::Ipc,
            ..WriteOptions::default()
        };
        write(&ipc, &opts, &[chunk(0, 10), chunk(10, 10)]);
        rewrite_tail(&ipc, &opts, &kv, 1, &mut n_plus_one).unwrap();
        let rows = n_and_y(&ipc);
        assert_eq!(rows, (0..20).map(|n| (n, n as i64 + 1)).collect::<Vec<_>>());
    }

    #[test]
    fn ipc_rewrite_puts_metadata_in_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.arrow");
        let opts = WriteOptions {
            durable: false,
            format: OutputFormat::Ipc,
            ..WriteOptions::default()
        };
        write(&path, &opts, &[chunk(0, 10), chunk(10, 10)]);
        let kv = [("k".to_string(), "v".to_string())];
        let r = rewrite_file(&path, &opts, &kv, &mut double_x).unwrap();
        assert_eq!(r.rows, 20);
        assert_eq!(
            file_metadata_value(&path, "k").unwrap().as_deref(),
            Some("v")
        );
        let batches: Vec<RecordBatch> = file_batches(&path, None)
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        let x: Vec<f64> = batches
            .iter()
            .flat_map(|b| b.column(1).as_primitive::<Float64Type>().values().to_vec())
            .collect();
        assert_eq!(x, (0..20).map(|v| 2.0 * v as f64).collect::<Vec<_>>());
        let cols = ["x".to_string()];
        let b = file_batches(&path, Some(&cols))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(b.num_columns(), 1);
        assert_eq!(file_schema(&path).unwrap().metadata()["k"], "v");
    }

    #[test]
    fn a_failing_transform_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        let opts = WriteOptions {
            durable: false,
            ..WriteOptions::default()
        };
        write(&path, &opts, &[chunk(0, 10)]);
        let before = fs::read(&path).unwrap();
        let mut calls = 0;
        let e = rewrite_file(&path, &opts, &[], &mut |b| {
            calls += 1;
            if calls > 1 {
                Err(Error::Internal("boom".into()))
            } else {
                Ok(b)
            }
        });
        assert!(e.is_err());
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(!temp_path(&path).exists());
        // A transform that drops rows is refused.
        let e = rewrite_file(&path, &opts, &[], &mut |b| Ok(b.slice(0, b.num_rows() / 2)));
        assert!(e.is_err());
        assert_eq!(fs::read(&path).unwrap(), before);
        // CSV has no metadata to carry.
        let csv = dir.path().join("a.csv");
        fs::write(&csv, "x\n1\n").unwrap();
        assert!(matches!(
            rewrite_file(&csv, &opts, &[], &mut |b| Ok(b)),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn column_rewrite_copies_the_other_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let (path, opts) = three_group_file(dir.path());
        let load = |p: &Path| {
            let o = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
            ArrowReaderMetadata::load(&open(p).unwrap(), o).unwrap()
        };
        let before = load(&path);
        let kv = [("k".to_string(), "v".to_string())];
        // `n` (UInt64) becomes Float64 n + 0.5; `x` is copied as it is.
        let cols = ["n".to_string()];
        let r = rewrite_columns(&path, &opts, &kv, &cols, &mut |b| {
            assert_eq!(b.num_columns(), 1);
            let n = b.column(0).as_primitive::<arrow_array::types::UInt64Type>();
            let f: Float64Array = n.iter().map(|v| v.map(|v| v as f64 + 0.5)).collect();
            let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Float64, true)]));
            Ok(RecordBatch::try_new(schema, vec![Arc::new(f)])?)
        })
        .unwrap();
        assert_eq!(r.rows, 2005);
        let after = load(&path);
        let (b, a) = (before.metadata(), after.metadata());
        assert_eq!(a.num_row_groups(), b.num_row_groups());
        for g in 0..a.num_row_groups() {
            assert_eq!(a.row_group(g).num_rows(), b.row_group(g).num_rows());
            // The copied chunk keeps its bytes, statistics and page index.
            let (cb, ca) = (b.row_group(g).column(1), a.row_group(g).column(1));
            assert_eq!(ca.compressed_size(), cb.compressed_size());
            assert_eq!(ca.statistics(), cb.statistics());
            assert!(ca.statistics().is_some());
            let (ib, ia) = (b.page_index_for_row_group(g), a.page_index_for_row_group(g));
            assert!(ia.offset_index(1).is_some() && ia.column_index(1).is_some());
            assert_eq!(
                ia.offset_index(1).unwrap().page_locations.len(),
                ib.offset_index(1).unwrap().page_locations.len()
            );
            // The rewritten chunk has statistics and a page index of its own.
            assert!(a.row_group(g).column(0).statistics().is_some());
            assert!(ia.offset_index(0).is_some());
        }
        assert_eq!(
            file_metadata_value(&path, "k").unwrap().as_deref(),
            Some("v")
        );
        let schema = file_schema(&path).unwrap();
        assert_eq!(schema.field(0).data_type(), &DataType::Float64);
        let mut seen = 0;
        for b in file_batches(&path, None).unwrap() {
            let b = b.unwrap();
            let n = b.column(0).as_primitive::<Float64Type>();
            let x = b.column(1).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                assert_eq!(n.value(i), x.value(i) + 0.5);
            }
            seen += b.num_rows();
        }
        assert_eq!(seen, 2005);
        // Pages of the copied column can still be selected through the page index.
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(
            open(&path).unwrap(),
            ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required),
        )
        .unwrap()
        .with_row_selection(
            vec![
                parquet::arrow::arrow_reader::RowSelector::skip(1500),
                parquet::arrow::arrow_reader::RowSelector::select(3),
            ]
            .into(),
        )
        .build()
        .unwrap();
        let b: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let x = b[0].column(1).as_primitive::<Float64Type>();
        assert_eq!(x.values().to_vec(), vec![1500.0, 1501.0, 1502.0]);

        // Arrow IPC: the same contract, the whole file rewritten.
        let ipc = dir.path().join("a.arrow");
        let iopts = WriteOptions {
            format: OutputFormat::Ipc,
            ..opts.clone()
        };
        write(&ipc, &iopts, &[chunk(0, 10)]);
        rewrite_columns(&ipc, &iopts, &kv, &["x".to_string()], &mut |b| {
            assert_eq!(b.num_columns(), 1);
            double_x(b)
        })
        .unwrap();
        let b = file_batches(&ipc, None).unwrap().next().unwrap().unwrap();
        assert_eq!(b.column(1).as_primitive::<Float64Type>().value(3), 6.0);
        assert_eq!(
            b.column(0)
                .as_primitive::<arrow_array::types::UInt64Type>()
                .value(3),
            3
        );
    }
}
