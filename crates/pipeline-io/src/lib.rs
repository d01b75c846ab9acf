//! tickpipe ingest and output.
//!
//! * `read`: sniffing (compression by magic bytes, encoding, delimiter, header), decompression,
//!   the fast parallel CSV decoder, timestamp parsing, vendor layouts, Parquet/IPC inputs,
//!   `inspect`, and the metadata cache.
//! * `sink`: Parquet / Arrow IPC / CSV sinks with Hive partitioning and atomic writes, and the
//!   quarantine writer.
//! * `synth`: the deterministic synthetic TAQ generator behind `cargo xtask gen-data`.

mod read;
mod sink;
mod synth;

pub use read::*;
pub use sink::*;
pub use synth::*;
