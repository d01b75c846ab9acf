//! The read side: input expansion, sniffing, decompression, the fast CSV decoder, timestamp
//! parsing, vendor layouts, Parquet/IPC inputs and sources.

mod blocks;
mod cache;
mod columnar;
mod decoder;
mod expand;
mod follow;
mod inspect;
mod number;
mod options;
mod plan;
mod record;
mod sniff;
mod source;
mod timestamp;

pub use decoder::CsvDecoder;
pub use expand::{InputFile, expand_inputs};
pub use follow::open_follow;
pub use inspect::{ColumnInfo, INSPECT_MAX_SYMBOLS, InspectReport, inspect};
pub use number::{parse_f64, parse_i64};
pub use options::{CHUNKS_IN_MEMORY, ROW_BYTES_ESTIMATE, ReadOptions};
pub use plan::{CsvPlan, VendorLayout};
pub use sniff::{FileFormat, InputCompression, TextEncoding};
pub use source::{Sniffed, open_source, read_all_count};
pub use timestamp::{EpochUnit, TsFormat, TsParser, Zone, date_from_file_name, days_from_civil};
