//! [`WriteOptions`]: how sinks lay out and encode their files, built from `[output]`.

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use pipeline_core::{Chunk, Error, OutputConfig, OutputFormat, Result};
use std::sync::Arc;

/// A Hive partition key. Date and month come from the UTC `ts` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionKey {
    /// `symbol=AAPL`, from the `symbol` column.
    Symbol,
    /// `date=2021-01-04`, the UTC calendar day of `ts`.
    Date,
    /// `month=2021-01`, the UTC calendar month of `ts`.
    Month,
}

impl PartitionKey {
    /// The directory key (`symbol`, `date` or `month`).
    pub fn name(self) -> &'static str {
        match self {
            PartitionKey::Symbol => "symbol",
            PartitionKey::Date => "date",
            PartitionKey::Month => "month",
        }
    }

    /// Parses a key name as written in `[output] partition_by`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "symbol" => Ok(PartitionKey::Symbol),
            "date" => Ok(PartitionKey::Date),
            "month" => Ok(PartitionKey::Month),
            other => Err(Error::config(
                "output.partition_by",
                format!("unknown key `{other}`; expected symbol, date or month"),
            )),
        }
    }
}

/// Compression codec of Parquet pages and Arrow IPC buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd at [`WriteOptions::compression_level`].
    Zstd,
    /// Snappy (Parquet only; pyarrow's default).
    Snappy,
    /// No compression.
    None,
}

impl Compression {
    /// Parses `zstd`, `snappy` or `none`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "zstd" => Ok(Compression::Zstd),
            "snappy" => Ok(Compression::Snappy),
            "none" => Ok(Compression::None),
            other => Err(Error::config(
                "output.compression",
                format!("unknown codec `{other}`; expected zstd, snappy or none"),
            )),
        }
    }
}

/// How a sink writes its files.
///
/// ```
/// use pipeline_io::{PartitionKey, WriteOptions};
/// let mut cfg = pipeline_core::OutputConfig::default();
/// cfg.partition_by = vec!["symbol".into(), "date".into()];
/// let opts = WriteOptions::from_config(&cfg)?;
/// assert_eq!(opts.partition_by, vec![PartitionKey::Symbol, PartitionKey::Date]);
/// assert_eq!(opts.sort_columns, vec!["symbol".to_string(), "ts".to_string()]);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOptions {
    /// File format. Default Parquet.
    pub format: OutputFormat,
    /// Codec. Default zstd.
    pub compression: Compression,
    /// zstd level, 1..=22. Default 3, zstd's own default level (and `[output]`'s).
    pub compression_level: i32,
    /// A Parquet row group (or a buffered Arrow IPC batch) is flushed when its buffered bytes
    /// reach this. Default 32 MiB.
    pub row_group_bytes: usize,
    /// Most bytes all open writers together may buffer, as Parquet accounts them; past it
    /// the writer holding the most is flushed early (a smaller row group). This bounds memory
    /// when many partitions are open at once. Default 32 MiB: in `sink_bench` (100 open
    /// symbol × date partitions) peak RSS was about 30 MB + 3 × this budget (122 MB at
    /// 32 MiB, 226 MB at 64 MiB, 379 MB at 128 MiB), and the default `[pipeline]
    /// memory_limit` of 256 MiB covers the whole run. Callers with another limit set it from
    /// theirs.
    pub max_buffered_bytes: usize,
    /// `fsync` every file before renaming it into place, so that a crash (power loss) never
    /// leaves an empty or torn file under a final name. Default true; scratch outputs and
    /// tests may turn it off (on a busy disk one sync can take tens of milliseconds).
    pub durable: bool,
    /// Hive partition keys, outermost first. Default `[Symbol]`.
    pub partition_by: Vec<PartitionKey>,
    /// Keep the `_line` provenance column in the files. Default false.
    pub keep_line_column: bool,
    /// Most partition writers open at once; the least recently used one is closed first.
    /// Default 64.
    pub max_open_files: usize,
    /// Rows a partition gathers in memory before its file is opened: no file of a
    /// partitioned sink has fewer rows unless it is that partition's last in the segment
    /// (or memory ran short, see [`WriteOptions::max_buffered_bytes`]). Sparse symbols then
    /// make one file each instead of one per eviction. Default 10,000 (`[output]
    /// min_rows_per_file`); 0 or 1 opens files at once as before.
    pub min_rows_per_file: usize,
    /// Columns each Parquet file of a partitioned sink declares itself sorted by
    /// (`sorting_columns` metadata). The sink checks the claim while writing and starts a
    /// new file, without the claim, when the rows break it. Default `["symbol", "ts"]` when
    /// partitioning by symbol (one symbol per file, rows in time order), else empty.
    pub sort_columns: Vec<String>,
    /// Unit of timestamp columns in the files (rows arrive in nanoseconds). Default
    /// nanoseconds; microseconds for readers such as Spark that take no others.
    pub timestamp_unit: TimeUnit,
    /// A partitioned sink gathers chunks of fewer rows than this, up to this many rows (or
    /// an eighth of [`WriteOptions::max_buffered_bytes`]), before splitting them by
    /// partition: one small chunk per small input file otherwise costs a split and a batch
    /// per partition each. 0 (the default) splits every chunk at once;
    /// [`WriteOptions::from_config`] sets [`GATHER_ROWS`].
    pub gather_rows: usize,
}

/// The rows [`WriteOptions::from_config`] gathers before a split (see
/// [`WriteOptions::gather_rows`]). Measured on the demo layout (1,258 gzip day files of
/// about 400 rows over 5 symbols): `tickpipe run` 1.39–1.83 s without, 1.21–1.59 s with,
/// five alternated pairs, every pair faster.
pub const GATHER_ROWS: usize = 16_384;

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            format: OutputFormat::Parquet,
            compression: Compression::Zstd,
            compression_level: 3,
            row_group_bytes: 32 << 20,
            max_buffered_bytes: 32 << 20,
            durable: true,
            partition_by: vec![PartitionKey::Symbol],
            keep_line_column: false,
            max_open_files: 64,
            min_rows_per_file: 10_000,
            sort_columns: vec!["symbol".into(), "ts".into()],
            timestamp_unit: TimeUnit::Nanosecond,
            gather_rows: 0,
        }
    }
}

impl WriteOptions {
    /// Builds options from the `[output]` section, validating every value.
    pub fn from_config(out: &OutputConfig) -> Result<WriteOptions> {
        let partition_by = out
            .partition_by
            .iter()
            .map(|k| PartitionKey::parse(k))
            .collect::<Result<Vec<_>>>()?;
        let sort_columns = if partition_by.contains(&PartitionKey::Symbol) {
            vec!["symbol".into(), "ts".into()]
        } else {
            Vec::new()
        };
        let opts = WriteOptions {
            format: out.format,
            compression: Compression::parse(&out.compression)?,
            compression_level: out.compression_level,
            row_group_bytes: usize::try_from(out.row_group_bytes.0).unwrap_or(usize::MAX),
            max_buffered_bytes: WriteOptions::default().max_buffered_bytes,
            durable: true,
            partition_by,
            keep_line_column: out.keep_line_column,
            max_open_files: out.max_open_files,
            min_rows_per_file: out.min_rows_per_file,
            sort_columns,
            timestamp_unit: match out.timestamp_unit.as_str() {
                "ns" => TimeUnit::Nanosecond,
                "us" => TimeUnit::Microsecond,
                "ms" => TimeUnit::Millisecond,
                other => {
                    return Err(Error::config(
                        "output.timestamp_unit",
                        format!("unknown unit `{other}`; expected ns, us or ms"),
                    ));
                }
            },
            gather_rows: GATHER_ROWS,
        };
        opts.validate()?;
        Ok(opts)
    }

    /// The batch a sink writes for `chunk`: the `_line` column dropped unless
    /// [`WriteOptions::keep_line_column`], timestamp columns in
    /// [`WriteOptions::timestamp_unit`] (finer digits truncated).
    pub fn output_batch(&self, chunk: &Chunk) -> Result<RecordBatch> {
        let batch = if self.keep_line_column {
            chunk.batch().clone()
        } else {
            chunk.data_batch()
        };
        let unit = self.timestamp_unit;
        let recast = |t: &DataType| matches!(t, DataType::Timestamp(u, _) if *u != unit);
        let schema = batch.schema();
        if !schema.fields().iter().any(|f| recast(f.data_type())) {
            return Ok(batch);
        }
        let mut fields = Vec::with_capacity(schema.fields().len());
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            match f.data_type() {
                DataType::Timestamp(u, tz) if *u != unit => {
                    let to = DataType::Timestamp(unit, tz.clone());
                    columns.push(arrow_cast::cast(c, &to)?);
                    fields.push(
                        Field::new(f.name(), to, f.is_nullable())
                            .with_metadata(f.metadata().clone()),
                    );
                }
                _ => {
                    columns.push(c.clone());
                    fields.push(f.as_ref().clone());
                }
            }
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// Checks value ranges and combinations; errors name the `[output]` key.
    pub fn validate(&self) -> Result<()> {
        if !(1..=22).contains(&self.compression_level) {
            return Err(Error::config("output.compression_level", "must be 1..=22"));
        }
        if self.max_open_files == 0 {
            return Err(Error::config("output.max_open_files", "must be at least 1"));
        }
        if self.row_group_bytes == 0 {
            return Err(Error::config("output.row_group_bytes", "must be positive"));
        }
        if self.max_buffered_bytes == 0 {
            return Err(Error::config(
                "pipeline.memory_limit",
                "the sink's buffer budget must be positive",
            ));
        }
        if self.format == OutputFormat::Ipc && self.compression == Compression::Snappy {
            return Err(Error::config(
                "output.compression",
                "Arrow IPC supports zstd or none, not snappy",
            ));
        }
        let mut seen = Vec::new();
        for k in &self.partition_by {
            if seen.contains(k) {
                return Err(Error::config(
                    "output.partition_by",
                    format!("key `{}` given twice", k.name()),
                ));
            }
            seen.push(*k);
        }
        Ok(())
    }

    /// The file extension of [`WriteOptions::format`], without the dot.
    pub fn extension(&self) -> &'static str {
        match self.format {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Ipc => "arrow",
            OutputFormat::Csv => "csv",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{TimestampMicrosecondType, TimestampNanosecondType};
    use arrow_array::{Array, Float64Array, TimestampNanosecondArray};

    fn chunk() -> Chunk {
        let ts = TimestampNanosecondArray::from(vec![1_609_770_600_000_123_456i64, -1_999])
            .with_timezone("UTC");
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", ts.data_type().clone(), true),
            Field::new("price", DataType::Float64, true),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![Arc::new(ts), Arc::new(Float64Array::from(vec![1.5, 2.5]))],
        )
        .unwrap();
        Chunk::with_first_line(b, 0, 0, 2).unwrap()
    }

    #[test]
    fn output_batch_drops_the_line_column_and_recasts_timestamps() {
        let mut o = WriteOptions::default();
        let b = o.output_batch(&chunk()).unwrap();
        assert_eq!(b.num_columns(), 2, "`_line` dropped");
        let ns = b.column(0).as_primitive::<TimestampNanosecondType>();
        assert_eq!(ns.value(0), 1_609_770_600_000_123_456);
        o.timestamp_unit = TimeUnit::Microsecond;
        o.keep_line_column = true;
        let b = o.output_batch(&chunk()).unwrap();
        assert_eq!(b.num_columns(), 3, "`_line` kept");
        assert_eq!(
            b.schema().field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let us = b.column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(us.value(0), 1_609_770_600_000_123);
        assert_eq!(us.value(1), -1, "truncated toward zero");
        assert_eq!(
            b.column(1)
                .as_primitive::<arrow_array::types::Float64Type>()
                .value(1),
            2.5
        );
    }

    #[test]
    fn from_config_maps_every_field() {
        let cfg = OutputConfig {
            format: OutputFormat::Ipc,
            compression: "none".into(),
            compression_level: 5,
            row_group_bytes: pipeline_core::ByteSize::mib(4),
            partition_by: vec!["month".into()],
            keep_line_column: true,
            max_open_files: 3,
            min_rows_per_file: 7,
            // Read by the facade (commit segments), not by the writers.
            appendable: false,
            timestamp_unit: "us".into(),
        };
        let o = WriteOptions::from_config(&cfg).unwrap();
        assert_eq!(o.min_rows_per_file, 7);
        assert_eq!(o.format, OutputFormat::Ipc);
        assert_eq!(o.compression, Compression::None);
        assert_eq!(o.compression_level, 5);
        assert_eq!(o.row_group_bytes, 4 << 20);
        assert_eq!(o.partition_by, vec![PartitionKey::Month]);
        assert!(o.keep_line_column);
        assert_eq!(o.max_open_files, 3);
        assert_eq!(o.timestamp_unit, TimeUnit::Microsecond);
        assert!(o.sort_columns.is_empty());
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut cfg = OutputConfig {
            partition_by: vec!["hour".into()],
            ..OutputConfig::default()
        };
        let e = WriteOptions::from_config(&cfg).unwrap_err().to_string();
        assert!(e.contains("output.partition_by"), "{e}");
        cfg.partition_by = vec!["symbol".into(), "symbol".into()];
        assert!(WriteOptions::from_config(&cfg).is_err());
        cfg.partition_by = vec![];
        cfg.format = OutputFormat::Ipc;
        cfg.compression = "snappy".into();
        let e = WriteOptions::from_config(&cfg).unwrap_err().to_string();
        assert!(e.contains("output.compression"), "{e}");
    }
}
