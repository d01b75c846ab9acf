//! The read side: input expansion, sniffing, decompression, the fast CSV decoder, timestamp
//! parsing, vendor layouts, Parquet/IPC inputs and sources.
//!
//! * [`expand_inputs`] turns files, directories, globs and `-` into sorted [`InputFile`]s.
//! * [`open_source`] sniffs an input (format and compression by magic bytes, encoding,
//!   delimiter, header, vendor layout: [`CsvPlan`]) and returns a `Source` of canonical chunks.
//!   Text is cut into byte blocks at record boundaries (quote parity, so quoted newlines never
//!   split a row); worker threads decode blocks with the push decoder [`CsvDecoder`] and the
//!   source yields them in order, one chunk per block, with exact `_line` numbers carried from
//!   each block's newline count. Block cuts depend only on the bytes and `chunk_rows`, never on
//!   the thread count, so output is identical for any `threads`.
//! * [`describe_dataset`] / [`dataset_schema`] sniff all of a run's inputs and unite their
//!   schemas; with [`ReadOptions::target_schema`] set to it, every source's chunks are cast
//!   and padded to it, so a folder of mixed vendor files is one dataset.
//! * LOBSTER message files are joined row by row with their order-book files (level 1 in the
//!   canonical `bid`/`ask`/sizes, deeper levels as `bid_price_k`…); `side` is the
//!   aggressor's for every vendor (see [`pipeline_core::Canonical::Side`]).
//! * [`open_follow`] tails a growing file or stdin; [`inspect`] describes an input; with
//!   `ReadOptions::meta_cache` both use a metadata cache keyed by file fingerprint.
//!
//! Measured on the gen-data TAQ layout (20 M rows, 1.45 GB, release build, this shared
//! 2-core machine): one decode thread reads 6.6 M rows/s (≈ 520 MB per CPU-second); gzip
//! input decompresses (zlib-rs) at ≈ 560 MB/s of text on the producer thread while others
//! parse. `examples/read_bench.rs` prints these figures.

mod blocks;
mod cache;
mod canonical;
mod columnar;
mod decoder;
mod expand;
mod fingerprint;
mod follow;
mod inspect;
mod inspect_report;
mod lobster;
mod number;
mod options;
mod plan;
mod plan_memo;
mod record;
mod sniff;
mod source;
mod timestamp;
mod transcode;
mod unify;

pub use canonical::canonical_path;
pub use decoder::CsvDecoder;
pub use expand::{InputFile, expand_inputs, is_data_file};
pub use fingerprint::{Fingerprint, StatStamp};
pub use follow::{check_position, open_follow};
pub use inspect::inspect;
pub use inspect_report::{ColumnInfo, DatasetTotals, INSPECT_MAX_SYMBOLS, InspectReport};
pub use number::{parse_f64, parse_i64};
pub use options::{CHUNKS_IN_MEMORY, ROW_BYTES_ESTIMATE, ReadOptions};
pub use plan::{CsvPlan, VendorLayout};
pub use plan_memo::PlanMemo;
pub use sniff::{FileFormat, InputCompression, TextEncoding};
pub use source::{Sniffed, open_source, read_all_count};
pub use timestamp::{
    EpochUnit, TsError, TsFormat, TsParser, Zone, civil_from_days, date_from_file_name,
    days_from_civil,
};
pub use unify::{
    DatasetInfo, FileInfo, conform_batch, dataset_schema, describe_dataset,
    describe_dataset_cached, unify_schemas,
};
