//! Sinks: Parquet / Arrow IPC / CSV output with Hive partitioning, bounded memory and
//! atomic files, the quarantine writer, and a dataset reader for checking outputs.
//!
//! * [`create_sink`]: rows split by [`PartitionKey`] into
//!   `dir/symbol=AAPL/date=2021-01-04/part-<segment>-<n>.parquet`; a row group is flushed
//!   when its buffers reach [`WriteOptions::row_group_bytes`], the fullest writer is flushed
//!   early when all buffers together pass [`WriteOptions::max_buffered_bytes`], at most
//!   [`WriteOptions::max_open_files`] writers are open (least recently used closed first),
//!   and a date or month partition is closed as soon as its symbol moves on to a later one.
//!   Memory is therefore bounded whatever the number of partitions.
//! * [`create_file_sink`]: one file, format from the extension.
//! * [`create_quarantine_sink`]: rejected rows with `file:line`, reason and raw text.
//! * [`read_dataset`]: every Parquet/IPC file under a directory, in path order.
//! * [`rewrite_file`] / [`rewrite_columns`]: a post-pass rewriting one written file through a
//!   batch transform (same writer settings and row groups, extra key-value metadata, atomic
//!   rename; `rewrite_columns` copies the untouched Parquet column chunks as they are);
//!   [`rewrite_tail`] keeps a file's first columns (copied) and computes the others anew;
//!   [`file_batches`], [`file_schema`] and [`file_metadata_value`] read a file back in
//!   bounded memory.
//!
//! Every file is written as `.<name>.tmp` in its final directory and renamed on `finish`, so
//! a name without the dot is always a complete file.
//!
//! The `symbol` partition column is also kept in the files, as plain UTF-8 (Parquet still
//! dictionary-encodes its pages): pyarrow, DuckDB and Polars then read a directory as one
//! Hive dataset with no options (checked with pyarrow 26, DuckDB 2.0 and Polars 2.1).

mod csv;
mod dataset;
mod file;
mod ipc;
mod options;
mod partition;
mod partitioned;
mod quarantine;
mod rewrite;
mod sorted;
mod writer;

pub use dataset::{dataset_files, read_dataset};
pub use file::{create_file_sink, format_from_extension};
pub use options::{Compression, GATHER_ROWS, PartitionKey, WriteOptions};
pub use partition::{HIVE_DEFAULT_PARTITION, escape_partition_value, split_by_partition};
pub use partitioned::create_sink;
pub use quarantine::{create_quarantine_sink, quarantine_schema};
pub use rewrite::{
    Rewritten, file_batches, file_metadata_value, file_schema, rewrite_columns, rewrite_file,
    rewrite_tail,
};
pub use writer::temp_path;
