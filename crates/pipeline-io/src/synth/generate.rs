//! The generation driver: plans rows over (day, symbol), merges each day's symbol streams in
//! time order, formats rows, and writes data files plus the `anomalies.jsonl` manifest.
//!
//! Memory is constant: one pending row per symbol, one line buffer, and the writers' buffers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use pipeline_core::{Error, Result};

use super::calendar::{local_to_utc_ns, trading_days};
use super::config::{AnomalyKind, ColumnOrder, GenConfig, GenSummary, Layout};
use super::format::{TsFormatter, push_i64, push_ticks, push_u64};
use super::market::{KindTable, Row, SymbolGen};
use super::output::{Counting, Encoder, file_name};
use super::rng::Rng;

/// The CSV header every generated file starts with under [`ColumnOrder::Canonical`].
pub const TAQ_HEADER: &str = "ts,symbol,price,size,bid,ask,bid_size,ask_size,exchange,conditions";

/// The CSV header under [`ColumnOrder::Vendor`]: the symbol before the time, and vendor names,
/// each a header alias tickpipe's reader maps to the canonical column (`date_time` → `ts`,
/// `volume` → `size` outside bar files, `bid_price` → `bid`, `sale_condition` →
/// `conditions`, …). The fields are those of [`TAQ_HEADER`], in that order after the first two.
pub const VENDOR_TAQ_HEADER: &str =
    "symbol,date_time,price,volume,bid_price,ask_price,bid_size,ask_size,exchange,sale_condition";

/// The manifest's file name inside an output directory.
pub const MANIFEST_FILE: &str = "anomalies.jsonl";

/// Write-buffer size in front of each encoder: 256 KiB keeps compressor calls few and large
/// (per-line `write` calls into flate2 were several times slower when measured).
const BUF_BYTES: usize = 256 * 1024;

/// Generates the data set `cfg` describes into directory `dir` (created if needed), with the
/// ground-truth manifest in `dir/anomalies.jsonl`, whose entries come in writing order (day by
/// day; within a file by line). Existing files of the same names are overwritten; other files
/// in `dir` are left alone.
///
/// ```
/// use pipeline_io::{generate_to_dir, GenConfig, Layout};
/// let dir = tempfile::tempdir()?;
/// let cfg = GenConfig { rows: 2_000, days: Some(2), layout: Layout::PerDay, ..GenConfig::default() };
/// let summary = generate_to_dir(&cfg, dir.path())?;
/// assert_eq!(summary.rows, 2_000);
/// assert_eq!(summary.files, 2);
/// assert!(dir.path().join("taq_2019-01-02.csv").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate_to_dir(cfg: &GenConfig, dir: &Path) -> Result<GenSummary> {
    cfg.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if cfg.layout == Layout::TaqSplit {
        return super::taq_split::generate(cfg, dir);
    }
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = File::create(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
    let mut manifest = BufWriter::new(manifest);
    let open = |name: &str| -> Result<File> {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        File::create(&path).map_err(|e| Error::io(&path, e))
    };
    let summary = Driver::new(cfg, open, &mut manifest)?.run()?;
    manifest.flush().map_err(|e| Error::io(&manifest_path, e))?;
    Ok(summary)
}

/// Generates `cfg` as one stream into `out` (stdout, a pipe), constant memory, compressed as
/// `cfg.compression` says. The layout must be [`Layout::Single`]. Manifest lines (with file
/// `-`) go to `manifest` when given.
pub fn generate_to_writer<W: Write>(
    cfg: &GenConfig,
    out: W,
    manifest: Option<&mut dyn Write>,
) -> Result<GenSummary> {
    cfg.validate()?;
    if cfg.layout != Layout::Single {
        return Err(Error::Usage(format!(
            "streaming output needs layout single, not {:?}",
            cfg.layout
        )));
    }
    let mut out = Some(out);
    let open = |_: &str| -> Result<W> {
        out.take()
            .ok_or_else(|| Error::Internal("stream output opened twice".into()))
    };
    let mut sink = std::io::sink();
    let manifest: &mut dyn Write = match manifest {
        Some(m) => m,
        None => &mut sink,
    };
    let mut manifest = BufWriter::new(manifest);
    let summary = Driver::new(cfg, open, &mut manifest)?.streaming().run()?;
    manifest.flush().map_err(|e| Error::io("-", e))?;
    Ok(summary)
}

/// Splits `total` over `weights` proportionally, exactly (floor of cumulative shares).
fn apportion(total: u64, weights: &[u64], out: &mut Vec<u64>) {
    out.clear();
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum::<u128>().max(1);
    let mut cum: u128 = 0;
    let mut prev: u64 = 0;
    for &w in weights {
        cum += u128::from(w);
        let cur = (u128::from(total) * cum / sum) as u64;
        out.push(cur - prev);
        prev = cur;
    }
}

/// Scale of the symbol weights for a skew other than the default: large enough that a steep
/// skew over thousands of symbols keeps distinct, non-zero weights.
const WEIGHT_SCALE: f64 = 1e12;

/// The per-symbol weights of `cfg.symbol_skew`: symbol `i` weighs `1/(i+1)^S`, scaled to
/// integers for [`apportion`].
pub(super) fn symbol_weights(cfg: &GenConfig) -> Vec<u64> {
    (0..cfg.symbols)
        .map(|i| {
            let rank = (i + 1) as f64;
            if cfg.symbol_skew == GenConfig::DEFAULT_SYMBOL_SKEW {
                // The weights from before the skew was configurable, bit for bit (`sqrt` is
                // correctly rounded everywhere; `powf(0.5)` need not be): default output stays.
                (1_000_000.0 / rank.sqrt()) as u64
            } else {
                (WEIGHT_SCALE / rank.powf(cfg.symbol_skew)) as u64
            }
        })
        .collect()
}

/// Splits one day's `total` rows over the symbols with `split`, then, when some symbol got
/// none although there are at least as many rows as symbols, splits again giving each symbol
/// one row first and the rest by weight: a steep skew must not make a symbol vanish. A split
/// that leaves no symbol empty is kept as it is (so default output does not change).
pub(super) fn split_over_symbols(
    total: u64,
    weights: &[u64],
    out: &mut Vec<u64>,
    split: impl Fn(u64, &[u64], &mut Vec<u64>),
) {
    split(total, weights, out);
    let n = weights.len() as u64;
    if total >= n && out.contains(&0) {
        split(total - n, weights, out);
        out.iter_mut().for_each(|c| *c += 1);
    }
}

/// An open output file.
struct OutFile<W: Write> {
    name: String,
    writer: BufWriter<Encoder<Counting<W>>>,
    line: u64,
}

/// The state of one run.
struct Driver<'m, W: Write, F: FnMut(&str) -> Result<W>> {
    cfg: &'m GenConfig,
    open: F,
    manifest: &'m mut dyn Write,
    stream: bool,
    table: KindTable,
    symbols: Vec<SymbolGen>,
    ts: TsFormatter,
    line: Vec<u8>,
    json: Vec<u8>,
    summary: GenSummary,
}

impl<'m, W: Write, F: FnMut(&str) -> Result<W>> Driver<'m, W, F> {
    fn new(cfg: &'m GenConfig, open: F, manifest: &'m mut dyn Write) -> Result<Self> {
        Ok(Driver {
            cfg,
            open,
            manifest,
            stream: false,
            table: KindTable::new(&cfg.anomalies),
            symbols: (0..cfg.symbols)
                .map(|i| SymbolGen::new(cfg.seed, i))
                .collect(),
            ts: TsFormatter::new(cfg.ts_format),
            line: Vec::with_capacity(256),
            json: Vec::with_capacity(256),
            summary: GenSummary {
                rows: 0,
                bytes: 0,
                files: 0,
                anomalies_by_kind: AnomalyKind::ALL.into_iter().map(|k| (k, 0)).collect(),
            },
        })
    }

    /// Marks the run as writing one stream: manifest entries name file `-`.
    fn streaming(mut self) -> Self {
        self.stream = true;
        self
    }

    /// An I/O error on the current output.
    fn io_err(&self, file: &str, e: std::io::Error) -> Error {
        Error::io(if self.stream { "-" } else { file }, e)
    }

    fn run(mut self) -> Result<GenSummary> {
        let cfg = self.cfg;
        let days = trading_days(cfg)?;
        if days.is_empty() {
            return Err(Error::Config {
                key: "years".into(),
                message: "the configured range holds no trading days".into(),
            });
        }
        // Day activity varies ±30% around its mean, uniformly; symbols follow a Zipf share
        // (1/√rank by default), so the first symbol is the most active as in real TAQ files.
        let mut day_rng = Rng::new(cfg.seed, 1);
        let day_weights: Vec<u64> = days.iter().map(|_| 700 + day_rng.below(601)).collect();
        let sym_weights = symbol_weights(cfg);
        let mut day_counts = Vec::with_capacity(days.len());
        apportion(cfg.rows, &day_weights, &mut day_counts);
        let mut sym_counts = Vec::with_capacity(cfg.symbols);
        let mut single = match cfg.layout {
            Layout::Single => {
                Some(self.open_file(file_name(cfg.layout, cfg.compression, days[0], ""))?)
            }
            _ => None,
        };
        let all: Vec<usize> = (0..cfg.symbols).collect();
        for (&date, &n_day) in days.iter().zip(&day_counts) {
            let open = local_to_utc_ns(cfg.timezone, date, cfg.session_open)?;
            let close = local_to_utc_ns(cfg.timezone, date, cfg.session_close)?;
            split_over_symbols(n_day, &sym_weights, &mut sym_counts, apportion);
            for (sym, &n) in self.symbols.iter_mut().zip(&sym_counts) {
                sym.start_day(n, open, close, &self.table);
            }
            match cfg.layout {
                Layout::Single => {
                    if let Some(file) = single.as_mut() {
                        self.merge(file, &all)?;
                    }
                }
                Layout::PerDay => {
                    if n_day > 0 {
                        let mut file =
                            self.open_file(file_name(cfg.layout, cfg.compression, date, ""))?;
                        self.merge(&mut file, &all)?;
                        self.close_file(file)?;
                    }
                }
                Layout::TaqSplit => {
                    return Err(Error::Internal(
                        "the taq-split layout is written by its own generator".into(),
                    ));
                }
                Layout::PerSymbolDay => {
                    for (s, &n) in sym_counts.iter().enumerate() {
                        if n > 0 {
                            let name =
                                file_name(cfg.layout, cfg.compression, date, &self.symbols[s].name);
                            let mut file = self.open_file(name)?;
                            self.merge(&mut file, &[s])?;
                            self.close_file(file)?;
                        }
                    }
                }
            }
        }
        if let Some(file) = single {
            self.close_file(file)?;
        }
        Ok(self.summary)
    }

    fn open_file(&mut self, name: String) -> Result<OutFile<W>> {
        let inner = (self.open)(&name)?;
        let level = self
            .cfg
            .level
            .unwrap_or_else(|| self.cfg.compression.default_level());
        let encoder = Encoder::new(self.cfg.compression, level, Counting::new(inner))
            .map_err(|e| self.io_err(&name, e))?;
        let mut writer = BufWriter::with_capacity(BUF_BYTES, encoder);
        writer
            .write_all(self.cfg.column_order.header().as_bytes())
            .and_then(|()| writer.write_all(b"\n"))
            .map_err(|e| self.io_err(&name, e))?;
        Ok(OutFile {
            name,
            writer,
            line: 1,
        })
    }

    fn close_file(&mut self, file: OutFile<W>) -> Result<()> {
        let OutFile { name, writer, .. } = file;
        let encoder = writer
            .into_inner()
            .map_err(|e| self.io_err(&name, e.into_error()))?;
        let counting = encoder.finish().map_err(|e| self.io_err(&name, e))?;
        let (_, bytes) = counting.into_inner().map_err(|e| self.io_err(&name, e))?;
        self.summary.bytes += bytes;
        self.summary.files += 1;
        Ok(())
    }

    /// Writes the current day of symbols `which` into `file`, merged by time.
    fn merge(&mut self, file: &mut OutFile<W>, which: &[usize]) -> Result<()> {
        if let [s] = which {
            while let Some(row) = self.symbols[*s].next_row(&self.table) {
                self.write_row(file, *s, &row)?;
            }
            return Ok(());
        }
        let mut pending: Vec<Option<Row>> = vec![None; self.symbols.len()];
        let mut heap = BinaryHeap::with_capacity(which.len());
        for &s in which {
            if let Some(row) = self.symbols[s].next_row(&self.table) {
                heap.push(Reverse((row.key, s)));
                pending[s] = Some(row);
            }
        }
        while let Some(mut top) = heap.peek_mut() {
            let Reverse((_, s)) = *top;
            if let Some(row) = pending[s].take() {
                self.write_row(file, s, &row)?;
            }
            match self.symbols[s].next_row(&self.table) {
                Some(next) => {
                    *top = Reverse((next.key, s));
                    pending[s] = Some(next);
                }
                None => {
                    std::collections::binary_heap::PeekMut::pop(top);
                }
            }
        }
        Ok(())
    }

    /// Formats and writes `row` (and its labelled copy), recording anomalies in the manifest.
    #[inline]
    fn write_row(&mut self, file: &mut OutFile<W>, s: usize, row: &Row) -> Result<()> {
        format_row(
            &mut self.line,
            &mut self.ts,
            self.cfg.column_order,
            &self.symbols[s].name,
            row,
        );
        let copies = if row.dup { 2 } else { 1 };
        for copy in 0..copies {
            file.writer
                .write_all(&self.line)
                .map_err(|e| Error::io(if self.stream { "-" } else { &file.name }, e))?;
            file.line += 1;
            self.summary.rows += 1;
            let kind = if copy == 1 {
                Some(AnomalyKind::Duplicate)
            } else {
                row.kind
            };
            if let Some(kind) = kind {
                self.record(file, kind)?;
            }
        }
        Ok(())
    }

    /// Appends one manifest line for the current line of `file`.
    fn record(&mut self, file: &OutFile<W>, kind: AnomalyKind) -> Result<()> {
        *self.summary.anomalies_by_kind.entry(kind).or_insert(0) += 1;
        let j = &mut self.json;
        j.clear();
        j.extend_from_slice(b"{\"file\":\"");
        j.extend_from_slice(if self.stream {
            b"-"
        } else {
            file.name.as_bytes()
        });
        j.extend_from_slice(b"\",\"line\":");
        push_u64(j, file.line);
        j.extend_from_slice(b",\"kind\":\"");
        j.extend_from_slice(kind.name().as_bytes());
        j.extend_from_slice(b"\"}\n");
        self.manifest
            .write_all(&self.json)
            .map_err(|e| Error::io(MANIFEST_FILE, e))
    }
}

/// Letters appended to a number for `malformed_number`.
const JUNK: [u8; 3] = [b'x', b'O', b'a'];

/// Formats `row` of `symbol` as one CSV line (with `\n`) into `line`, its fields in `order`.
#[inline]
fn format_row(
    line: &mut Vec<u8>,
    ts: &mut TsFormatter,
    order: ColumnOrder,
    symbol: &str,
    row: &Row,
) {
    let kind = row.kind;
    let missing = |field: u8| kind == Some(AnomalyKind::MissingField) && row.variant == field;
    let junk = |field: u8| -> Option<u8> {
        if kind != Some(AnomalyKind::MalformedNumber) {
            return None;
        }
        let (target, letter) = (row.variant / 3, JUNK[(row.variant % 3) as usize]);
        (target == field).then_some(letter)
    };
    line.clear();
    match order {
        ColumnOrder::Canonical => {
            ts.push(line, row.ts);
            line.push(b',');
            line.extend_from_slice(symbol.as_bytes());
        }
        ColumnOrder::Vendor => {
            line.extend_from_slice(symbol.as_bytes());
            line.push(b',');
            ts.push(line, row.ts);
        }
    }
    line.push(b',');
    if !missing(0) {
        push_ticks(line, row.price);
        line.extend(junk(0));
    }
    line.push(b',');
    if !missing(1) {
        push_i64(line, row.size);
        line.extend(junk(1));
    }
    line.push(b',');
    if !missing(2) {
        push_ticks(line, row.bid);
    }
    line.push(b',');
    if !missing(3) {
        push_ticks(line, row.ask);
    }
    line.push(b',');
    push_i64(line, row.bid_size);
    line.push(b',');
    push_i64(line, row.ask_size);
    line.push(b',');
    line.push(row.exchange);
    let field_count = kind == Some(AnomalyKind::MalformedFieldCount);
    if !(field_count && row.variant == 0) {
        line.push(b',');
        line.push(row.cond);
    }
    if field_count && row.variant == 1 {
        line.extend_from_slice(b",X");
    }
    line.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TimestampFormat;

    #[test]
    fn apportion_is_exact() {
        let mut out = Vec::new();
        for total in [0u64, 1, 7, 1000, 999_983] {
            apportion(total, &[3, 1, 4, 1, 5, 9, 2, 6], &mut out);
            assert_eq!(out.iter().sum::<u64>(), total);
            assert_eq!(out.len(), 8);
        }
        apportion(900, &[1, 2], &mut out);
        assert_eq!(out, vec![300, 600]);
    }

    fn weights(symbols: usize, symbol_skew: f64) -> Vec<u64> {
        symbol_weights(&GenConfig {
            symbols,
            symbol_skew,
            ..GenConfig::default()
        })
    }

    #[test]
    fn symbol_weights_follow_zipf() {
        // The default is the historic 1/√rank split.
        assert_eq!(weights(4, 0.5), vec![1_000_000, 707_106, 577_350, 500_000]);
        assert!(weights(7, 0.0).iter().all(|&w| w == 1_000_000_000_000));
        let mut out = Vec::new();
        apportion(1_000_000, &weights(20, 1.0), &mut out);
        // 1/H(20) = 27.8% for the first symbol, 1/(20·H(20)) = 1.39% for the last.
        assert!((277_000..279_000).contains(&out[0]), "{out:?}");
        assert!((13_800..14_000).contains(&out[19]), "{out:?}");
        // Steep skews over many symbols keep every weight non-zero.
        assert!(weights(GenConfig::MAX_SYMBOLS, 2.0).iter().all(|&w| w > 0));
    }

    #[test]
    fn no_symbol_vanishes_when_there_are_rows_enough() {
        let mut out = Vec::new();
        let w = weights(20, 3.0);
        apportion(100, &w, &mut out);
        assert!(
            out.contains(&0),
            "the plain split starves the tail: {out:?}"
        );
        split_over_symbols(100, &w, &mut out, apportion);
        assert_eq!(out.iter().sum::<u64>(), 100);
        assert!(out.iter().all(|&c| c >= 1), "{out:?}");
        assert!(out[0] > 50, "{out:?}");
        // Fewer rows than symbols: some must go without.
        split_over_symbols(7, &w, &mut out, apportion);
        assert_eq!(out.iter().sum::<u64>(), 7);
        // A split without empty symbols is kept unchanged.
        let w = weights(5, 0.5);
        let mut plain = Vec::new();
        apportion(795, &w, &mut plain);
        split_over_symbols(795, &w, &mut out, apportion);
        assert_eq!(out, plain);
    }

    fn row() -> Row {
        Row {
            key: 0,
            ts: 1_609_770_600_000_123_456,
            price: 13245,
            size: 100,
            bid: 13244,
            ask: 13246,
            bid_size: 300,
            ask_size: 500,
            exchange: b'Q',
            cond: b'@',
            kind: None,
            variant: 0,
            dup: false,
        }
    }

    fn fmt(r: &Row) -> String {
        let mut line = Vec::new();
        format_row(
            &mut line,
            &mut TsFormatter::new(TimestampFormat::Iso),
            ColumnOrder::Canonical,
            "AAPL",
            r,
        );
        String::from_utf8(line).unwrap()
    }

    #[test]
    fn formats_the_brief_example() {
        assert_eq!(
            fmt(&row()),
            "2021-01-04T14:30:00.000123456Z,AAPL,132.45,100,132.44,132.46,300,500,Q,@\n"
        );
    }

    #[test]
    fn vendor_order_puts_the_symbol_first() {
        let mut line = Vec::new();
        let mut ts = TsFormatter::new(TimestampFormat::EpochMs);
        format_row(&mut line, &mut ts, ColumnOrder::Vendor, "AAPL", &row());
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "AAPL,1609770600000,132.45,100,132.44,132.46,300,500,Q,@\n"
        );
        assert_eq!(
            VENDOR_TAQ_HEADER.split(',').count(),
            TAQ_HEADER.split(',').count()
        );
    }

    #[test]
    fn formats_anomalies() {
        let mut r = row();
        r.kind = Some(AnomalyKind::MissingField);
        r.variant = 2;
        assert!(fmt(&r).contains(",100,,132.46,"));
        r.kind = Some(AnomalyKind::MalformedNumber);
        r.variant = 0;
        assert!(fmt(&r).contains(",132.45x,"));
        r.variant = 4;
        assert!(fmt(&r).contains(",100O,"));
        r.kind = Some(AnomalyKind::MalformedFieldCount);
        r.variant = 0;
        assert!(fmt(&r).ends_with(",Q\n"));
        assert_eq!(fmt(&r).split(',').count(), 9);
        r.variant = 1;
        assert_eq!(fmt(&r).split(',').count(), 11);
    }
}
