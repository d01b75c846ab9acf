//! Arrow IPC file output: batches are gathered up to the byte budget, and dictionary columns
//! are re-keyed against one growing dictionary per column.
//!
//! An IPC file holds one dictionary per field: a later batch may only append to it (a
//! delta). Chunks arrive with their own dictionaries (`["AAPL", "MSFT"]`, then `["MSFT"]`),
//! so each `Dictionary(Int32, Utf8)` column is mapped onto a per-file dictionary that only
//! grows, and the writer emits the new values as deltas.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow_ipc::CompressionType;
use arrow_ipc::writer::{DictionaryHandling, FileWriter, IpcWriteOptions};
use arrow_schema::{DataType, SchemaRef};
use pipeline_core::Result;

use super::options::Compression;

/// One growing dictionary.
#[derive(Default)]
struct GrowingDict {
    index: HashMap<String, i32>,
    values: Vec<String>,
}

impl GrowingDict {
    /// Re-keys `col` (a `Dictionary(Int32, Utf8)`) onto this dictionary.
    fn remap(&mut self, col: &ArrayRef) -> Result<ArrayRef> {
        let dict = col.as_dictionary::<Int32Type>();
        let dvalues = dict.values().as_string::<i32>();
        let slot: Vec<Option<i32>> = (0..dvalues.len())
            .map(|i| {
                dvalues.is_valid(i).then(|| {
                    let v = dvalues.value(i);
                    match self.index.get(v) {
                        Some(&k) => k,
                        None => {
                            let k = self.values.len() as i32;
                            self.values.push(v.to_string());
                            self.index.insert(v.to_string(), k);
                            k
                        }
                    }
                })
            })
            .collect();
        let keys: Int32Array = dict
            .keys()
            .iter()
            .map(|k| k.and_then(|k| slot.get(k as usize).copied().flatten()))
            .collect();
        let values = Arc::new(StringArray::from_iter_values(self.values.iter()));
        Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
            keys, values,
        )?))
    }
}

/// An Arrow IPC file being written.
pub struct IpcFile {
    writer: FileWriter<BufWriter<File>>,
    schema: SchemaRef,
    dicts: HashMap<usize, GrowingDict>,
    pending: Vec<RecordBatch>,
    pending_bytes: usize,
    flush_bytes: usize,
}

impl IpcFile {
    /// Starts a file; batches are written once `flush_bytes` of them are buffered.
    pub fn try_new(
        out: BufWriter<File>,
        schema: SchemaRef,
        compression: Compression,
        flush_bytes: usize,
    ) -> Result<Self> {
        let codec = match compression {
            Compression::Zstd => Some(CompressionType::ZSTD),
            _ => None,
        };
        let options = IpcWriteOptions::default()
            .try_with_compression(codec)?
            .with_dictionary_handling(DictionaryHandling::Delta);
        let writer = FileWriter::try_new_with_options(out, &schema, options)?;
        Ok(IpcFile {
            writer,
            schema,
            dicts: HashMap::new(),
            pending: Vec::new(),
            pending_bytes: 0,
            flush_bytes,
        })
    }

    /// Buffers a batch, writing when the buffer is full.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.pending_bytes += batch.get_array_memory_size();
        self.pending.push(batch.clone());
        if self.pending_bytes >= self.flush_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Bytes buffered and not yet written.
    pub fn buffered_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Writes the buffered batches as one record batch.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = arrow_select::concat::concat_batches(&self.schema, &self.pending)?;
        self.pending.clear();
        self.pending_bytes = 0;
        let mut columns = batch.columns().to_vec();
        for (i, col) in columns.iter_mut().enumerate() {
            if let DataType::Dictionary(k, v) = col.data_type()
                && **k == DataType::Int32
                && **v == DataType::Utf8
            {
                *col = self.dicts.entry(i).or_default().remap(col)?;
            }
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        self.writer.write(&batch)?;
        Ok(())
    }

    /// Flushes, writes the footer and returns the file.
    pub fn finish(mut self) -> Result<BufWriter<File>> {
        self.flush()?;
        self.writer.finish()?;
        Ok(self.writer.into_inner()?)
    }
}
