//! [`Chunk`]: a record batch that remembers where each of its rows came from.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};

/// Name of the internal provenance column: the 1-based input line of each row's first line.
///
/// It travels inside the batch, so filters, partitioning and sorting carry it for free; sinks
/// drop it unless the user asks to keep it.
pub const LINE_COLUMN: &str = "_line";

/// The column the trades-and-quotes join adds to each trade: what quote it got (`matched`,
/// `locked`, `crossed`, `one_sided`, `stale_quote`, `no_quote`).
pub const QUOTE_MATCH_COLUMN: &str = "quote_match";

/// Identifies an input file within a run (an index into the run's source table).
pub type SourceId = u32;

/// Where one row came from: the input file and the line its text started on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Provenance {
    /// The input file.
    pub source: SourceId,
    /// 1-based line number in that file.
    pub line: u64,
}

/// An Arrow [`RecordBatch`] plus provenance: the source it was read from, its sequence number
/// within that source, and a `_line` column with each row's input line.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Float64Array, RecordBatch};
/// use arrow_schema::{DataType, Field, Schema};
/// use pipeline_core::Chunk;
///
/// let schema = Arc::new(Schema::new(vec![Field::new("price", DataType::Float64, true)]));
/// let batch = RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(vec![1.0, 2.0]))])?;
/// // Rows 0 and 1 were read from lines 10 and 11 of source 3; this is its chunk number 0.
/// let chunk = Chunk::with_first_line(batch, 3, 0, 10)?;
/// assert_eq!(chunk.line(1), 11);
/// assert_eq!(chunk.provenance(0).source, 3);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Chunk {
    batch: RecordBatch,
    line_idx: usize,
    source: SourceId,
    seq: u64,
}

impl Chunk {
    /// Wraps a batch that already has a non-null `UInt64` [`LINE_COLUMN`].
    pub fn new(batch: RecordBatch, source: SourceId, seq: u64) -> Result<Self> {
        let line_idx = batch
            .schema()
            .index_of(LINE_COLUMN)
            .map_err(|_| Error::Internal(format!("chunk has no `{LINE_COLUMN}` column")))?;
        let col = batch.column(line_idx);
        if col.data_type() != &DataType::UInt64 || col.null_count() != 0 {
            return Err(Error::Internal(format!(
                "`{LINE_COLUMN}` must be non-null UInt64, got {}",
                col.data_type()
            )));
        }
        Ok(Chunk {
            batch,
            line_idx,
            source,
            seq,
        })
    }

    /// Wraps a batch whose rows came from consecutive lines starting at `first_line`,
    /// appending the [`LINE_COLUMN`].
    pub fn with_first_line(
        batch: RecordBatch,
        source: SourceId,
        seq: u64,
        first_line: u64,
    ) -> Result<Self> {
        let n = batch.num_rows() as u64;
        let lines = UInt64Array::from_iter_values(first_line..first_line + n);
        Self::with_lines(batch, source, seq, lines)
    }

    /// Wraps a batch and appends `lines` as its [`LINE_COLUMN`].
    pub fn with_lines(
        batch: RecordBatch,
        source: SourceId,
        seq: u64,
        lines: UInt64Array,
    ) -> Result<Self> {
        if lines.len() != batch.num_rows() {
            return Err(Error::Internal(format!(
                "{} line numbers for {} rows",
                lines.len(),
                batch.num_rows()
            )));
        }
        let schema = batch.schema();
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(LINE_COLUMN, DataType::UInt64, false)));
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.push(Arc::new(lines));
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        let batch = RecordBatch::try_new(schema, columns)?;
        Self::new(batch, source, seq)
    }

    /// The batch, including the [`LINE_COLUMN`].
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The batch's schema, including the [`LINE_COLUMN`].
    pub fn schema(&self) -> SchemaRef {
        self.batch.schema()
    }

    /// The source (input file) these rows were read from.
    pub fn source(&self) -> SourceId {
        self.source
    }

    /// The chunk's sequence number within its source; chunks re-sequenced by `(source, seq)`
    /// are in input order.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// True when the chunk has no rows.
    pub fn is_empty(&self) -> bool {
        self.batch.num_rows() == 0
    }

    /// The line-number column.
    pub fn lines(&self) -> &UInt64Array {
        // `new` checked the type, so this downcast cannot fail.
        self.batch
            .column(self.line_idx)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("line column type checked in Chunk::new")
    }

    /// The input line of row `row`.
    pub fn line(&self, row: usize) -> u64 {
        self.lines().value(row)
    }

    /// Where row `row` came from.
    pub fn provenance(&self, row: usize) -> Provenance {
        Provenance {
            source: self.source,
            line: self.line(row),
        }
    }

    /// A column by name.
    pub fn column_by_name(&self, name: &str) -> Option<&ArrayRef> {
        self.batch.column_by_name(name)
    }

    /// Whether the rows are trades from the trades-and-quotes join (they have the
    /// [`QUOTE_MATCH_COLUMN`]): their `bid`/`ask` columns are the market's NBBO at the trade,
    /// not quotes of their own, so the quote rules and missing-value repairs leave them alone.
    pub fn is_joined_trades(&self) -> bool {
        self.batch.column_by_name(QUOTE_MATCH_COLUMN).is_some()
    }

    /// Memory held by the chunk's arrays, in bytes.
    pub fn memory_size(&self) -> usize {
        self.batch.get_array_memory_size()
    }

    /// Keeps the rows where `keep` is true (nulls count as false); provenance follows.
    pub fn filter(&self, keep: &BooleanArray) -> Result<Chunk> {
        let batch = arrow_select::filter::filter_record_batch(&self.batch, keep)?;
        Ok(Chunk {
            batch,
            ..self.clone()
        })
    }

    /// Takes rows at `indices`, in that order; provenance follows.
    pub fn take(&self, indices: &UInt64Array) -> Result<Chunk> {
        let batch = arrow_select::take::take_record_batch(&self.batch, indices)?;
        Ok(Chunk {
            batch,
            ..self.clone()
        })
    }

    /// A zero-copy slice of `len` rows from `offset`.
    pub fn slice(&self, offset: usize, len: usize) -> Chunk {
        Chunk {
            batch: self.batch.slice(offset, len),
            ..self.clone()
        }
    }

    /// Replaces the data with `batch` (which must carry the [`LINE_COLUMN`]), keeping
    /// source and sequence number. Stages that add columns use this.
    pub fn replace_batch(&self, batch: RecordBatch) -> Result<Chunk> {
        Chunk::new(batch, self.source, self.seq)
    }

    /// Returns a copy with the columns `extra` appended.
    pub fn with_columns(&self, extra: Vec<(Field, ArrayRef)>) -> Result<Chunk> {
        let schema = self.batch.schema();
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        let mut columns = self.batch.columns().to_vec();
        for (f, a) in extra {
            if let Some((i, _)) = schema.column_with_name(f.name()) {
                fields[i] = Arc::new(f);
                columns[i] = a;
            } else {
                fields.push(Arc::new(f));
                columns.push(a);
            }
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        self.replace_batch(RecordBatch::try_new(schema, columns)?)
    }

    /// Concatenates chunks of one source with equal schemas into one; provenance follows.
    /// The result takes the first chunk's sequence number.
    pub fn concat(chunks: &[Chunk]) -> Result<Chunk> {
        let first = chunks
            .first()
            .ok_or_else(|| Error::Internal("concat of zero chunks".into()))?;
        let batches: Vec<&RecordBatch> = chunks.iter().map(|c| &c.batch).collect();
        let batch = arrow_select::concat::concat_batches(&first.batch.schema(), batches)?;
        Chunk::new(batch, first.source, first.seq)
    }

    /// The batch without the [`LINE_COLUMN`]: what sinks write by default.
    pub fn data_batch(&self) -> RecordBatch {
        let mut b = self.batch.clone();
        b.remove_column(self.line_idx);
        b
    }

    /// Consumes the chunk and returns its batch (with the [`LINE_COLUMN`]).
    pub fn into_batch(self) -> RecordBatch {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array};

    fn sample() -> Chunk {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![10, 20, 30, 40]))],
        )
        .unwrap();
        Chunk::with_first_line(batch, 7, 3, 100).unwrap()
    }

    #[test]
    fn lines_follow_filter_take_and_slice() {
        let c = sample();
        let f = c
            .filter(&BooleanArray::from(vec![false, true, false, true]))
            .unwrap();
        assert_eq!(f.lines().values().to_vec(), vec![101, 103]);
        assert_eq!((f.source(), f.seq()), (7, 3));
        let t = c.take(&UInt64Array::from(vec![3, 0])).unwrap();
        assert_eq!(t.lines().values().to_vec(), vec![103, 100]);
        assert_eq!(c.slice(2, 2).line(0), 102);
    }

    #[test]
    fn new_rejects_batches_without_line_column() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        assert!(Chunk::new(batch, 0, 0).is_err());
    }

    #[test]
    fn with_columns_appends_and_replaces() {
        let c = sample();
        let c2 = c
            .with_columns(vec![(
                Field::new("y", DataType::Float64, true),
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])) as ArrayRef,
            )])
            .unwrap();
        assert_eq!(c2.batch().num_columns(), 3);
        assert_eq!(c2.line(3), 103);
        let c3 = c2
            .with_columns(vec![(
                Field::new("y", DataType::Float64, true),
                Arc::new(Float64Array::from(vec![0.0; 4])) as ArrayRef,
            )])
            .unwrap();
        assert_eq!(c3.batch().num_columns(), 3);
        assert_eq!(c3.data_batch().num_columns(), 2);
    }

    #[test]
    fn concat_keeps_lines() {
        let c = sample();
        let both = Chunk::concat(&[c.slice(0, 1), c.slice(3, 1)]).unwrap();
        assert_eq!(both.lines().values().to_vec(), vec![100, 103]);
        assert!(Chunk::concat(&[]).is_err());
    }
}
