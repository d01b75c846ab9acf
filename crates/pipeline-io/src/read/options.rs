//! [`ReadOptions`]: how inputs are read, derived from the run [`Config`].

use arrow_schema::SchemaRef;
use pipeline_core::{ColumnMapping, Config, Error, InputConfig, MetaCache, Result};

use super::PlanMemo;

/// Assumed bytes one row costs while it is read: its text (≈ 70 B for a TAQ row) plus its
/// Arrow columns (≈ 10 × 8 B plus dictionary keys and offsets), rounded up to leave room for
/// the wider rows of other vendors. Measured on the gen-data TAQ layout: 70 B of text and
/// 118 B of Arrow data per row.
pub const ROW_BYTES_ESTIMATE: u64 = 256;

/// Chunks the whole run may hold at once, per the memory model in DESIGN.md: blocks in flight
/// in the reader, chunks queued between stages, and the sink's buffers. Chunk rows are
/// `memory_limit / (CHUNKS_IN_MEMORY × ROW_BYTES_ESTIMATE)`, so with the default 256 MiB a
/// chunk holds 65,536 rows (≈ 4.6 MB of TAQ text).
pub const CHUNKS_IN_MEMORY: u64 = 16;

/// Most rows a chunk derived from the memory limit holds: 65,536, the default limit's
/// chunk. Larger chunks were slower, not faster, on the gen-data run (a 1 GB limit gave
/// 262,144-row chunks and 3.67 s against 2.50 s for a 5M-row `tickpipe run`): a chunk's
/// columns stop fitting in cache between stages. A larger limit buys headroom, not bigger
/// chunks; `pipeline.chunk_size` still sets any size.
pub const MAX_DERIVED_CHUNK_ROWS: u64 = 65_536;

/// How inputs are read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOptions {
    /// The `[input]` section: time zone, date, delimiter, header, encoding, epoch unit,
    /// price scale, symbol, column mapping, file pattern, layout, names.
    pub input: InputConfig,
    /// Output columns to produce (canonical or pass-through names); `None` means all. Other
    /// columns are not parsed at all.
    pub columns: Option<Vec<String>>,
    /// Make the first malformed row an error instead of a quarantined reject. Default false.
    pub strict: bool,
    /// Target rows per chunk. Default 65,536 (see [`ReadOptions::from_config`]). A text
    /// chunk holds the rows of one byte block of `chunk_rows × sampled mean row width`
    /// bytes, so row counts vary a little around the target; the push decoder, follow
    /// sources and Parquet inputs give exactly `chunk_rows`; Arrow IPC inputs keep the
    /// file's own batches.
    pub chunk_rows: usize,
    /// Decode threads per source (0: one per core). Default 0.
    pub threads: usize,
    /// Blocks a source may hold at once (queued, being decoded, or waiting to be yielded in
    /// order); bounds its memory to about `blocks_in_flight × chunk bytes`. Default
    /// `threads + 1`: one block per decode thread and one ready for the consumer. On a
    /// 20M-row `tickpipe run` on 2 cores that was as fast as the old `2 × threads + 2`
    /// (8.7–9.0 s against 8.9–9.2 s) at 20 MiB less peak RSS.
    pub blocks_in_flight: usize,
    /// Where sniffed metadata is cached per file fingerprint (the run passes the tickpipe
    /// cache's `meta` namespace); `None` disables it.
    pub meta_cache: Option<MetaCache>,
    /// The dataset schema every source's chunks are cast and padded to (data columns, no
    /// `_line`), usually [`crate::DatasetInfo::schema`] of all the run's inputs, so every
    /// output file of a run has the same schema; `None` (the default) keeps each file's own.
    pub target_schema: Option<SchemaRef>,
    /// Refuse a delimited file in which no column can be read as the timestamp (by header
    /// name or by content), naming its headers and the `--columns ts=<header>` fix, before
    /// any row is read. Every stage after the reader needs `ts`. Default true; a plain
    /// conversion of time-less CSV can turn it off.
    pub require_timestamp: bool,
    /// Longest record read; longer ones are quarantined as `line_too_long` and skipped
    /// without being held whole (see [`ReadOptions::from_config`]). Default 4 MiB.
    pub max_line_bytes: usize,
    /// Where plans built while describing the inputs are kept for the sources that open
    /// them (see [`PlanMemo`]); `None` (the default) builds each plan where it is needed.
    pub plans: Option<PlanMemo>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            input: InputConfig::default(),
            columns: None,
            strict: false,
            chunk_rows: 65_536,
            threads: 0,
            blocks_in_flight: 0,
            meta_cache: None,
            plans: None,
            target_schema: None,
            require_timestamp: true,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// The longest record read when the limit is not derived from a memory limit: 4 MiB, the
/// derived value at the default 256 MiB (`memory_limit / 64`). Tick rows are under 1 KB; a
/// longer line is damage (a missing newline, a binary blob).
pub const DEFAULT_MAX_LINE_BYTES: usize = 4 << 20;

impl ReadOptions {
    /// Options from a run configuration.
    ///
    /// `max_line_bytes` is `[input] max_line_bytes`, or `memory_limit / 64` when that is 0.
    /// Chunk rows are `pipeline.chunk_size` when set; when 0 they are
    /// `memory_limit / (CHUNKS_IN_MEMORY × ROW_BYTES_ESTIMATE)`, clamped to
    /// 1,024–`MAX_DERIVED_CHUNK_ROWS`.
    /// Threads are `pipeline.max_workers` (0: one per core; 1 when parallel processing is
    /// off).
    ///
    /// The `[input]` values that are the same for every file (time zone, date, column
    /// mapping, encoding, delimiter, epoch unit) are checked here, so a typo fails once, before
    /// any file is opened, with [`Error::Config`] naming the key (see
    /// [`ReadOptions::validate_input`]).
    pub fn from_config(cfg: &Config) -> Result<ReadOptions> {
        cfg.validate()?;
        Self::validate_input(&cfg.input)?;
        let p = &cfg.pipeline;
        let chunk_rows = if p.chunk_size > 0 {
            p.chunk_size
        } else {
            (p.memory_limit.0 / (CHUNKS_IN_MEMORY * ROW_BYTES_ESTIMATE))
                .clamp(1024, MAX_DERIVED_CHUNK_ROWS) as usize
        };
        Ok(ReadOptions {
            input: cfg.input.clone(),
            columns: None,
            strict: p.strict,
            chunk_rows,
            threads: if p.enable_parallel_processing {
                p.max_workers
            } else {
                1
            },
            blocks_in_flight: 0,
            meta_cache: None,
            plans: None,
            target_schema: None,
            require_timestamp: true,
            max_line_bytes: match cfg.input.max_line_bytes.0 {
                0 => usize::try_from(p.memory_limit.0 / 64)
                    .unwrap_or(usize::MAX)
                    .max(64 << 10),
                n => usize::try_from(n).unwrap_or(usize::MAX),
            },
        })
    }

    /// Checks the `[input]` settings that do not depend on a file: `timezone` (an IANA name
    /// or an offset), `date` (a real calendar date), `columns` (canonical names), `encoding`
    /// (a known label), `delimiter` (one ASCII character) and `epoch_unit`. Every error is an
    /// [`Error::Config`] naming the key; without this check each file of a folder failed on
    /// its own with the same message.
    pub fn validate_input(input: &InputConfig) -> Result<()> {
        super::timestamp::Zone::parse(&input.timezone)?;
        if let Some(d) = &input.date
            && super::timestamp::parse_date(d.trim().as_bytes()).is_none()
        {
            return Err(Error::config(
                "input.date",
                format!("`{d}` is not a calendar date; write YYYY-MM-DD, e.g. 2024-03-15"),
            ));
        }
        ColumnMapping::from_pairs(input.columns.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        if let Some(label) = &input.encoding {
            super::sniff::TextEncoding::detect(&[], Some(label))
                .map_err(|m| Error::config("input.encoding", m))?;
        }
        if let Some(d) = &input.delimiter
            && !(d.len() == 1 && d.is_ascii())
        {
            return Err(Error::config(
                "input.delimiter",
                format!("`{d}` must be one ASCII character"),
            ));
        }
        if let Some(u) = &input.epoch_unit
            && super::timestamp::EpochUnit::parse(u).is_none()
        {
            return Err(Error::config("input.epoch_unit", "must be s, ms, us or ns"));
        }
        Ok(())
    }

    /// Decode threads to use: `threads`, or the number of cores when 0.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            pipeline_core::cores()
        }
    }

    /// Blocks in flight per source: `blocks_in_flight`, or `threads + 1` (at least 2) when 0.
    pub fn effective_in_flight(&self) -> usize {
        if self.blocks_in_flight > 0 {
            self.blocks_in_flight
        } else {
            (self.effective_threads() + 1).max(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_rows_from_memory_limit() {
        let cfg = Config::default();
        let o = ReadOptions::from_config(&cfg).unwrap();
        assert_eq!(o.chunk_rows, 65_536);
        let mut dev = Config::development();
        dev.pipeline.strict = true;
        let o = ReadOptions::from_config(&dev).unwrap();
        assert_eq!((o.chunk_rows, o.threads, o.strict), (8_192, 2, true));
        let mut big = Config::production();
        big.pipeline.memory_limit = pipeline_core::ByteSize::gib(64);
        assert_eq!(ReadOptions::from_config(&big).unwrap().chunk_rows, 65_536);
        big.pipeline.chunk_size = 1 << 20;
        assert_eq!(ReadOptions::from_config(&big).unwrap().chunk_rows, 1 << 20);
    }

    /// Issue #13 case 3: typos in per-run input settings fail once, up front, naming the key.
    #[test]
    fn input_typos_are_config_errors_before_any_file_is_read() {
        type Edit = fn(&mut InputConfig);
        let cases: [(&str, Edit); 6] = [
            ("input.timezone", |i| i.timezone = "America/NewYork".into()),
            ("input.date", |i| i.date = Some("2024-02-30".into())),
            ("input.columns.tss", |i| {
                i.columns.insert("tss".into(), "Time".into());
            }),
            ("input.encoding", |i| i.encoding = Some("klingon".into())),
            ("input.delimiter", |i| i.delimiter = Some("é".into())),
            ("input.timezone", |i| i.timezone = "+25:00".into()),
        ];
        for (key, set) in cases {
            let mut cfg = Config::default();
            set(&mut cfg.input);
            let e = ReadOptions::from_config(&cfg).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{key}: {e}");
            assert!(e.to_string().contains(key), "{key}: {e}");
            assert!(e.stops_run() && !e.is_retryable());
        }
        let mut ok = Config::default();
        ok.input.timezone = "America/New_York".into();
        ok.input.date = Some("2024-02-29".into());
        ok.input.columns.insert("ts".into(), "Time".into());
        ok.input.encoding = Some("latin1".into());
        assert!(ReadOptions::from_config(&ok).is_ok());
    }
}
