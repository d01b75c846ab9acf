//! [`WriteOptions`]: how sinks lay out and encode their files, built from `[output]`.

use pipeline_core::{Error, OutputConfig, OutputFormat, Result};

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
    /// Columns each Parquet file of a partitioned sink declares itself sorted by
    /// (`sorting_columns` metadata). The sink checks the claim while writing and starts a
    /// new file, without the claim, when the rows break it. Default `["symbol", "ts"]` when
    /// partitioning by symbol (one symbol per file, rows in time order), else empty.
    pub sort_columns: Vec<String>,
}

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
            sort_columns: vec!["symbol".into(), "ts".into()],
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
            sort_columns,
        };
        opts.validate()?;
        Ok(opts)
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
        };
        let o = WriteOptions::from_config(&cfg).unwrap();
        assert_eq!(o.format, OutputFormat::Ipc);
        assert_eq!(o.compression, Compression::None);
        assert_eq!(o.compression_level, 5);
        assert_eq!(o.row_group_bytes, 4 << 20);
        assert_eq!(o.partition_by, vec![PartitionKey::Month]);
        assert!(o.keep_line_column);
        assert_eq!(o.max_open_files, 3);
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
