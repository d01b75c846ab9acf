//! tickpipe ingest and output.
//!
//! * `read`: sniffing (compression by magic bytes, encoding, delimiter, header), decompression,
//!   the fast parallel CSV decoder, timestamp parsing, vendor layouts, Parquet/IPC inputs,
//!   `inspect`, and the metadata cache.
//! * `sink`: Parquet / Arrow IPC / CSV sinks with Hive partitioning and atomic writes, and the
//!   quarantine writer.
//! * `synth`: the deterministic synthetic TAQ generator behind `cargo xtask gen-data`.
//!
//! Generate a sample, read it back as Arrow chunks (malformed rows become rejects with
//! their line), and write it as one Parquet file:
//!
//! ```
//! use pipeline_core::{Sink, Source};
//! use pipeline_io::{GenConfig, InputFile, ReadOptions, WriteOptions, create_file_sink, open_source};
//! let dir = std::env::temp_dir().join(format!("tickpipe-io-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let csv = dir.join("ticks.csv");
//! let sample = GenConfig { rows: 1_000, ..GenConfig::default() };
//! pipeline_io::generate_to_writer(&sample, std::fs::File::create(&csv)?, None)?;
//! let mut source = open_source(&InputFile::new(&csv), 0, &ReadOptions::default())?;
//! let mut sink = create_file_sink(&dir.join("ticks.parquet"), &WriteOptions::default())?;
//! let (mut rows, mut rejected) = (0, 0);
//! while let Some(chunk) = source.next() {
//!     let chunk = chunk?;
//!     rows += chunk.num_rows();
//!     sink.write(&chunk)?;
//!     rejected += source.drain_rejects().len();
//! }
//! sink.finish()?;
//! assert_eq!(rows + rejected, 1_000);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod read;
mod sink;
mod synth;

pub use read::{
    CHUNKS_IN_MEMORY, ColumnInfo, CsvDecoder, CsvPlan, DatasetInfo, DatasetTotals, EpochUnit,
    FileFormat, FileInfo, Fingerprint, INSPECT_MAX_SYMBOLS, InputCompression, InputFile,
    InspectReport, PlanMemo, ROW_BYTES_ESTIMATE, ReadOptions, Sniffed, StatStamp, TextEncoding,
    TsError, TsFormat, TsParser, VendorLayout, Zone, canonical_path, check_position,
    civil_from_days, conform_batch, dataset_schema, date_from_file_name, days_from_civil,
    describe_dataset, describe_dataset_cached, expand_inputs, inspect, is_data_file, open_follow,
    open_source, parse_f64, parse_i64, read_all_count, unify_schemas,
};
pub use sink::{
    Compression, GATHER_ROWS, HIVE_DEFAULT_PARTITION, PartitionKey, Rewritten, WriteOptions,
    create_file_sink, create_quarantine_sink, create_sink, dataset_files, escape_partition_value,
    file_batches, file_metadata_value, file_schema, format_from_extension, quarantine_schema,
    read_dataset, rewrite_columns, rewrite_file, rewrite_tail, split_by_partition, temp_path,
};
pub use synth::{
    AnomalyKind, AnomalyRates, Codec, ColumnOrder, EXCHANGES, GenConfig, GenSummary, Holidays,
    Layout, MANIFEST_FILE, NO_QUOTE_SHARE, POST_MARKET_HOURS, QUOTES_HEADER, QUOTES_PER_TRADE,
    SPARSE_SHARE, TAQ_HEADER, TRADES_HEADER, TimestampFormat, VENDOR_TAQ_HEADER, generate_to_dir,
    generate_to_writer, nyse_holidays, symbol_name, trading_days,
};
