//! [`open_source`]: one input file (or stdin) as a [`Source`] of canonical chunks.
//!
//! Plain UTF-8 files are memory-mapped and cut into byte blocks at record boundaries that
//! worker threads decode in parallel. Compressed, transcoded and stdin inputs are read by one
//! producer thread (decompressing and transcoding) that cuts the same kind of blocks for the
//! workers, so parsing overlaps decompression. Parquet and Arrow IPC files are read by
//! [`super::columnar`].

use std::fs::File;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{Chunk, Error, LINE_COLUMN, Result, Source, SourceId};

use super::blocks::{self, BlockData, BlockSender};
use super::expand::InputFile;
use super::options::ReadOptions;
use super::plan::{CsvPlan, VendorLayout};
use super::plan_memo::{PlanUse, plan_for};
use super::record::{BoundaryFinder, Split, split_record};
use super::sniff::{FileFormat, InputCompression, TextEncoding, looks_binary};
use super::transcode::Transcoder;

/// Bytes of decompressed text sampled to sniff delimiter, header and types: enough for a
/// few thousand rows of any vendor file seen so far, small enough to read instantly.
const SAMPLE_BYTES: usize = 256 << 10;

/// Smallest block the parallel decoder cuts: below this, per-block costs (a decoder and a
/// batch) dominate; 64 KiB blocks decode in well under a millisecond.
const MIN_BLOCK_BYTES: usize = 64 << 10;

/// What sniffing found about an input (reported by `inspect`).
#[derive(Debug, Clone)]
pub struct Sniffed {
    /// Container format.
    pub format: FileFormat,
    /// InputCompression codec.
    pub compression: InputCompression,
    /// Text encoding (for delimited text).
    pub encoding: Option<TextEncoding>,
    /// The decode plan (for delimited text with at least a header).
    pub plan: Option<Arc<CsvPlan>>,
}

/// A text input opened for reading: the sniffing results and a reader that yields the whole
/// UTF-8 text again (sample included, BOM removed).
pub(crate) struct OpenedText {
    pub sniffed: Sniffed,
    pub sample: Vec<u8>,
    pub rest: Box<dyn Read + Send>,
    pub raw_bytes: Arc<AtomicU64>,
    pub mmap: Option<Arc<memmap2::Mmap>>,
    /// Offset of the text in the map (after a BOM).
    pub text_start: usize,
    /// Whether `sample` holds the whole text (the input ended within the sample).
    pub whole: bool,
}

/// Opens `input` as a source of canonical chunks: sniffs its format, compression, encoding,
/// delimiter, header and layout, then decodes it on `opts.threads` threads, in order.
///
/// ```
/// use pipeline_core::Source;
/// use pipeline_io::{InputFile, ReadOptions, open_source};
///
/// let path = std::env::temp_dir().join("tickpipe_doc_open_source.csv");
/// std::fs::write(&path, "ts,symbol,price,size\n2021-01-04T14:30:00Z,AAPL,132.45,100\n2021-01-04T14:30:01Z,AAPL,x,100\n")?;
/// let mut src = open_source(&InputFile::new(&path), 0, &ReadOptions::default())?;
/// let chunk = src.next().unwrap()?;
/// assert_eq!(chunk.num_rows(), 1);
/// assert_eq!(chunk.line(0), 2); // the row came from line 2
/// let rejects = src.drain_rejects();
/// assert_eq!((rejects[0].line, rejects[0].reason.as_str()), (3, "bad_number"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A LOBSTER message file is joined with its order-book file when that lies beside it (see
/// the `lobster` module); an order-book file on its own is an error. With
/// [`ReadOptions::target_schema`] set, every chunk is cast and padded to that dataset schema
/// (see the `unify` module).
pub fn open_source(input: &InputFile, id: SourceId, opts: &ReadOptions) -> Result<Box<dyn Source>> {
    let src = open_unconformed(input, id, opts)?;
    match &opts.target_schema {
        Some(target) => Ok(Box::new(super::unify::ConformSource::new(
            src,
            target,
            input.display_name(),
        )?)),
        None => Ok(src),
    }
}

/// [`open_source`] without the dataset schema.
fn open_unconformed(
    input: &InputFile,
    id: SourceId,
    opts: &ReadOptions,
) -> Result<Box<dyn Source>> {
    let name = input.display_name();
    let raw = open_raw(input)?;
    let opened = sniff_text(raw, input, opts, PlanUse::Take)?;
    let Some(opened) = opened else {
        return super::columnar::open_columnar(input, id, opts);
    };
    let Some(plan) = opened.sniffed.plan.clone() else {
        tracing::info!("{name}: no data (empty or blank)");
        return Ok(Box::new(EmptySource::new()));
    };
    match plan.layout() {
        VendorLayout::LobsterOrderbook => Err(super::lobster::lone_orderbook_error(&input.path)),
        VendorLayout::LobsterMessage => {
            let messages = open_text(opened, plan, input, id, opts)?;
            let book = match super::lobster::lobster_role(&input.path) {
                Some((_, book)) if book.is_file() => {
                    let book_input = InputFile::new(&book);
                    let book_opts = ReadOptions {
                        columns: None,
                        target_schema: None,
                        meta_cache: None,
                        ..opts.clone()
                    };
                    let raw = open_raw(&book_input)?;
                    let opened = sniff_text(raw, &book_input, &book_opts, PlanUse::Own)?
                        .ok_or_else(|| {
                            Error::Schema(format!(
                                "{}: not a LOBSTER order-book CSV",
                                book.display()
                            ))
                        })?;
                    match opened.sniffed.plan.clone() {
                        Some(p) if p.layout() == VendorLayout::LobsterOrderbook => Some((
                            book_input.display_name(),
                            open_text(opened, p, &book_input, id, &book_opts)?,
                        )),
                        Some(_) => {
                            return Err(Error::Schema(format!(
                                "{}: not a LOBSTER order-book file (its content does not match)",
                                book.display()
                            )));
                        }
                        None => None,
                    }
                }
                _ => None,
            };
            Ok(Box::new(super::lobster::LobsterSource::new(
                &input.path,
                messages,
                book,
                opts.columns.as_deref(),
            )))
        }
        _ => open_text(opened, plan, input, id, opts),
    }
}

/// Decodes sniffed text with `plan`: mapped files in parallel blocks, streams through a
/// producer thread.
fn open_text(
    opened: OpenedText,
    plan: Arc<CsvPlan>,
    input: &InputFile,
    id: SourceId,
    opts: &ReadOptions,
) -> Result<Box<dyn Source>> {
    let name = input.display_name();
    log_detected(&name, &opened.sniffed, &plan);
    let threads = opts.effective_threads();
    let max_line = opts.max_line_bytes.max(1);
    let block_bytes = ((opts.chunk_rows as f64 * plan.mean_row_bytes()) as usize)
        .max(MIN_BLOCK_BYTES.min(opts.chunk_rows * 16));
    let codec = opened.sniffed.compression;
    let mut header_end = 0usize;
    let mut first_line = 1u64;
    if let Some(map) = &opened.mmap {
        let text = &map[opened.text_start..];
        if plan.has_header() {
            (header_end, first_line) = header_extent(text, plan.delimiter());
        }
        let body = text.len() - header_end;
        let workers = threads.min(body.div_ceil(block_bytes.max(1))).max(1);
        let (sender, src) = blocks::start(
            plan,
            id,
            workers,
            opts.effective_in_flight(),
            first_line,
            input.size,
        );
        let map = map.clone();
        let start = opened.text_start + header_end;
        let cache = match &opts.meta_cache {
            Some(db) => super::cache::fingerprint(input).map(|k| (db.clone(), k)),
            None => None,
        };
        let cached = cache
            .as_ref()
            .and_then(|(db, k)| super::cache::get(db, k))
            .and_then(|m| m.boundaries)
            .filter(|(b, _)| *b == block_bytes as u64)
            .map(|(_, ends)| ends);
        blocks::spawn_producer(sender, move |out| {
            produce_mapped(map, start, block_bytes, out, cached, cache, max_line)
        });
        return Ok(Box::new(src));
    }
    let whole = opened.whole;
    // The whole text is in the sample: no block need be larger than it.
    let known_len = whole.then_some(opened.sample.len());
    let text = std::io::Cursor::new(opened.sample).chain(opened.rest);
    let raw_bytes = opened.raw_bytes;
    let has_header = plan.has_header();
    let delim = plan.delimiter();
    let produce = move |out: &mut BlockSender| {
        produce_stream(
            text,
            (has_header, delim),
            (block_bytes, max_line, known_len),
            out,
            raw_bytes,
            name,
            codec,
        )
    };
    let mut src = if whole {
        // The whole text is already in memory (a small or day file): decoding it here costs
        // less than starting threads for it.
        blocks::decode_inline(plan.clone(), id, 1, input.size, produce)
    } else {
        let (sender, src) = blocks::start(
            plan.clone(),
            id,
            threads,
            opts.effective_in_flight(),
            1,
            input.size,
        );
        blocks::spawn_producer(sender, produce);
        src
    };
    src.set_reopenable(!input.is_stdin());
    Ok(Box::new(src))
}

/// Logs (at info, shown with `-v`) what sniffing found about a text input and how it will be
/// decoded.
fn log_detected(name: &str, sniffed: &Sniffed, plan: &CsvPlan) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let columns: Vec<String> = plan
        .data_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    tracing::info!(
        "{name}: delimited text, compression {}, encoding {}, delimiter {:?}, {}, layout {:?}, timestamps {:?} read in {:?}, ~{:.0} bytes per row; columns: {}",
        sniffed.compression.name(),
        sniffed.encoding.map_or_else(|| "-".into(), |e| e.label()),
        plan.delimiter() as char,
        if plan.has_header() {
            "header"
        } else {
            "no header"
        },
        plan.layout(),
        plan.ts_format(),
        plan.zone,
        plan.mean_row_bytes(),
        columns.join(", ")
    );
}

/// The byte length of the header record and the line the data starts on.
fn header_extent(text: &[u8], delim: u8) -> (usize, u64) {
    let mut fields = Vec::new();
    let mut pos = 0usize;
    let mut line = 1u64;
    while pos < text.len() {
        match split_record(&text[pos..], delim, true, &mut fields) {
            Split::Record { end, newlines, .. } => {
                pos += end;
                line += u64::from(newlines);
                if !super::record::is_blank(&fields) {
                    break;
                }
            }
            Split::Incomplete => break,
        }
    }
    (pos, line)
}

/// Cuts the mapped text into blocks of about `block_bytes` ending at record boundaries, or at
/// `cached` block ends from the metadata cache; stores the ends it found in `cache`.
fn produce_mapped(
    map: Arc<memmap2::Mmap>,
    mut start: usize,
    block_bytes: usize,
    out: &mut BlockSender,
    cached: Option<Vec<u64>>,
    cache: Option<(pipeline_core::MetaCache, String)>,
    max_line: usize,
) {
    let len = map.len();
    if let Some(ends) =
        cached.filter(|e| e.last() == Some(&(len as u64)) && e.windows(2).all(|w| w[0] < w[1]))
    {
        for end in ends {
            let end = end as usize;
            if end <= start {
                continue;
            }
            if !out.send(
                BlockData::Mapped(map.clone(), start, end),
                end == len,
                end as u64,
            ) {
                return;
            }
            start = end;
        }
        return;
    }
    let mut ends = Vec::new();
    let mut skipped_any = false;
    while start < len {
        let target = start + block_bytes;
        let (end, tail_newlines) = if target >= len {
            (len, 0)
        } else {
            let mut f = BoundaryFinder::default();
            f.skip(&map[start..target]);
            next_boundary(&map, target, &mut f, max_line)
        };
        // A record longer than `max_line` around the cut is skipped (never decoded).
        if end - target.min(end) > max_line {
            let rec = start + super::record::last_boundary(&map[start..target]);
            if end - rec > max_line {
                if rec > start
                    && !out.send(
                        BlockData::Mapped(map.clone(), start, rec),
                        false,
                        rec as u64,
                    )
                {
                    return;
                }
                let head = memchr::memchr_iter(b'\n', &map[rec..target]).count() as u64;
                let skipped = BlockData::Skipped {
                    len: (end - rec) as u64,
                    newlines: head + tail_newlines,
                    prefix: map[rec..(rec + 256).min(end)].to_vec(),
                };
                blocks::drop_pages(&map, rec, end);
                if !out.send(skipped, end == len, end as u64) {
                    return;
                }
                skipped_any = true;
                start = end;
                continue;
            }
        }
        if !out.send(
            BlockData::Mapped(map.clone(), start, end),
            end == len,
            end as u64,
        ) {
            return;
        }
        ends.push(end as u64);
        start = end;
    }
    // Block ends around a skipped line would replay it as an ordinary block: do not cache.
    if let Some((db, key)) = cache.filter(|_| !skipped_any) {
        super::cache::put(
            &db,
            &key,
            super::cache::CachedMeta {
                boundaries: Some((block_bytes as u64, ends)),
                ..Default::default()
            },
        );
    }
}

/// Bytes of the map scanned at a time while looking for a block's end.
const SCAN_WINDOW: usize = 1 << 20;

/// The first record boundary at or after `from` (quote parity in `f`), or the end of the
/// map, and the `\n`s between `from` and it. The map is scanned a window at a time; once the
/// record has run more than `max_line` bytes past `from` (it will be skipped), each window's
/// pages are dropped from the process as soon as they are scanned, so a 200 MB line does not
/// become 200 MB of resident memory.
fn next_boundary(
    map: &memmap2::Mmap,
    from: usize,
    f: &mut BoundaryFinder,
    max_line: usize,
) -> (usize, u64) {
    let len = map.len();
    let (mut pos, mut newlines) = (from, 0u64);
    while pos < len {
        let w_end = (pos + SCAN_WINDOW).min(len);
        if let Some(i) = f.find(&map[pos..w_end]) {
            newlines += memchr::memchr_iter(b'\n', &map[pos..pos + i]).count() as u64;
            return (pos + i, newlines);
        }
        newlines += memchr::memchr_iter(b'\n', &map[pos..w_end]).count() as u64;
        if w_end - from > max_line {
            blocks::drop_pages(map, pos, w_end);
        }
        pos = w_end;
    }
    (len, newlines)
}

/// Reads decompressed text and cuts it into owned blocks; a read error ends the input with
/// [`Error::Corrupt`] (compressed) or [`Error::Io`] after the complete records before it. A
/// record longer than `max_line` is skipped as it streams past (sent as
/// [`BlockData::Skipped`]), so memory never holds more than about two blocks and `max_line`.
fn produce_stream(
    mut text: impl Read,
    (has_header, delim): (bool, u8),
    (block_bytes, max_line, known_len): (usize, usize, Option<usize>),
    out: &mut BlockSender,
    raw_bytes: Arc<AtomicU64>,
    name: String,
    codec: InputCompression,
) {
    // A text of known length (a small file, read whole by the sniffer) gets a buffer of its
    // size: a block-sized one (9 MB at the default chunk size) for each of thousands of day
    // files was a fresh mapping each time, its page faults and its unmapping (the TLB
    // shootdowns of that were 4% of a run over 6,291 small files).
    let cap = known_len.map_or(usize::MAX, |n| n.saturating_add(1));
    let mut pending: Vec<u8> = Vec::with_capacity((block_bytes * 2).min(cap));
    let mut decompressed: u64 = 0;
    let mut header_left = has_header;
    let mut finder = BoundaryFinder::default();
    let mut scanned = 0usize; // Bytes of `pending` already scanned by `finder`.
    let mut eof = false;
    let mut need_more = false;
    // Where the record that straddles `block_bytes` starts (computed when no boundary
    // follows `block_bytes` soon), to measure it against `max_line`.
    let mut rec_start: Option<usize> = None;
    // A read error is kept across iterations: the header branch below `continue`s, and the
    // error must still end the input after the records before it (a damaged stream whose
    // damage lies inside the first block used to end as a clean EOF here).
    let mut failed = None;
    loop {
        // Fill up to a block and a bit.
        let mut want = (block_bytes + (block_bytes / 4).max(4096)).min(cap);
        if need_more {
            want = want.max(pending.len() + (64 << 10));
            need_more = false;
        }
        // `read_to_end` on a `take` appends without zeroing the spare capacity first. The
        // loop used to `resize` the buffer to a whole block before every `read`, and inflate
        // returns ~32 KiB per call, so each 4.6 MB block zeroed hundreds of megabytes, and a
        // 10 KB file zeroed a whole block (memset was 9% of a 1,258-file demo run's profile).
        if pending.len() < want && !eof && failed.is_none() {
            let before = pending.len();
            let limit = (want - before) as u64;
            // Room for the whole fill up front: growing by doubling inside `read_to_end`
            // copied the block several times and left it with up to twice the capacity
            // (gzip load peaked at 110 MiB instead of 70).
            pending.reserve(want - before);
            let r = (&mut text).take(limit).read_to_end(&mut pending);
            let n = pending.len() - before;
            decompressed += n as u64;
            match r {
                Ok(_) if (n as u64) < limit => eof = true,
                Ok(_) => {}
                Err(e) => failed = Some(e),
            }
        }
        if header_left {
            let mut fields = Vec::new();
            match split_record(&pending, delim, eof || failed.is_some(), &mut fields) {
                Split::Record { end, .. } => {
                    header_left = super::record::is_blank(&fields);
                    // The consumer numbers lines from 1: a block of just the header's newlines
                    // advances it past the header without producing rows.
                    let nl = memchr::memchr_iter(b'\n', &pending[..end]).count();
                    pending.drain(..end);
                    if nl > 0 && !out.send(BlockData::Owned(vec![b'\n'; nl]), false, 0) {
                        return;
                    }
                    continue;
                }
                Split::Incomplete if failed.is_none() && !eof => {
                    if pending.len() > max_line {
                        out.fail(Error::Format {
                            file: name,
                            message: format!(
                                "the header line is longer than {max_line} bytes ([input] max_line_bytes): not delimited text?"
                            ),
                        });
                        return;
                    }
                    need_more = true;
                    continue;
                }
                Split::Incomplete => {}
            }
        }
        let progress = raw_bytes.load(Ordering::Relaxed);
        if let Some(e) = failed {
            // Complete records before the damage are decoded; the cut record is dropped.
            if !pending.is_empty() {
                let mut f = BoundaryFinder::default();
                let mut cut = 0;
                while let Some(i) = f.find(&pending[cut..]) {
                    cut += i;
                }
                if cut > 0 && !out.send(BlockData::Owned(pending[..cut].to_vec()), false, progress)
                {
                    return;
                }
            }
            let error = if codec == InputCompression::None {
                Error::io(&name, e)
            } else {
                Error::Corrupt {
                    file: name,
                    codec: codec.name().into(),
                    decompressed_bytes: decompressed,
                    message: e.to_string(),
                }
            };
            out.fail(error);
            return;
        }
        if eof {
            if !pending.is_empty() {
                out.send(
                    BlockData::Owned(std::mem::take(&mut pending)),
                    true,
                    progress,
                );
            }
            return;
        }
        if pending.len() <= block_bytes {
            continue;
        }
        // Find the first boundary at or after `block_bytes`.
        if scanned < block_bytes {
            finder.skip(&pending[scanned..block_bytes]);
            scanned = block_bytes;
        }
        match finder.find(&pending[scanned..]) {
            Some(i) => {
                let end = scanned + i;
                // The text after the cut starts the next block, in a reused buffer.
                let mut rest = out.spare_buffer();
                rest.reserve(want);
                rest.extend_from_slice(&pending[end..]);
                pending.truncate(end);
                let block = std::mem::replace(&mut pending, rest);
                finder = BoundaryFinder::default();
                scanned = 0;
                rec_start = None;
                if !out.send(BlockData::Owned(block), false, progress) {
                    return;
                }
            }
            None => {
                scanned = pending.len();
                let rs = *rec_start
                    .get_or_insert_with(|| super::record::last_boundary(&pending[..block_bytes]));
                if pending.len() - rs > max_line {
                    // The complete records before the long one go as a block...
                    let long = pending.split_off(rs);
                    if !pending.is_empty()
                        && !out.send(
                            BlockData::Owned(std::mem::take(&mut pending)),
                            false,
                            progress,
                        )
                    {
                        return;
                    }
                    // ...then the long record is read to its end and dropped as it goes.
                    let (skipped, rest) =
                        skip_record(&mut text, long, block_bytes, &mut decompressed);
                    match skipped.error {
                        Some(e) => failed = Some(e),
                        None => eof |= skipped.eof,
                    }
                    let progress = raw_bytes.load(Ordering::Relaxed);
                    if !out.send(skipped.block, false, progress) {
                        return;
                    }
                    pending = rest;
                    finder = BoundaryFinder::default();
                    scanned = 0;
                    rec_start = None;
                    continue;
                }
                // No boundary yet (a long quoted field): read more and keep scanning.
                // A read error ends the input at the top of the loop, like one while filling
                // (it used to be dropped here and retried for ever).
                let before = pending.len();
                pending.reserve(block_bytes);
                let r = (&mut text)
                    .take(block_bytes as u64)
                    .read_to_end(&mut pending);
                let n = pending.len() - before;
                decompressed += n as u64;
                match r {
                    Ok(_) if n < block_bytes => eof = true,
                    Ok(_) => {}
                    Err(e) => failed = Some(e),
                }
            }
        }
    }
}

/// A record skipped by [`skip_record`]: its block, and how reading ended.
struct SkippedRecord {
    block: BlockData,
    eof: bool,
    error: Option<std::io::Error>,
}

/// Reads on from `long` (the start of a record, holding no boundary) to the end of that
/// record, keeping only its first bytes; returns the skipped record and the text after it.
fn skip_record(
    text: &mut impl Read,
    long: Vec<u8>,
    block_bytes: usize,
    decompressed: &mut u64,
) -> (SkippedRecord, Vec<u8>) {
    let mut f = BoundaryFinder::default();
    let prefix = long[..long.len().min(256)].to_vec();
    let mut len = long.len() as u64;
    let mut newlines = memchr::memchr_iter(b'\n', &long).count() as u64;
    // `long` holds no boundary: scanning it only sets the quote parity.
    let _ = f.find(&long);
    let mut buf = long;
    let (mut eof, mut error, mut rest) = (false, None, Vec::new());
    loop {
        buf.clear();
        let r = text.take(block_bytes as u64).read_to_end(&mut buf);
        *decompressed += buf.len() as u64;
        match r {
            Ok(_) if buf.len() < block_bytes => eof = true,
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
        if let Some(i) = f.find(&buf) {
            len += i as u64;
            newlines += memchr::memchr_iter(b'\n', &buf[..i]).count() as u64;
            rest = buf[i..].to_vec();
            break;
        }
        len += buf.len() as u64;
        newlines += memchr::memchr_iter(b'\n', &buf).count() as u64;
        if eof || error.is_some() {
            break;
        }
    }
    let block = BlockData::Skipped {
        len,
        newlines,
        prefix,
    };
    (SkippedRecord { block, eof, error }, rest)
}

/// Opens the raw bytes of an input, counting them.
pub(crate) fn open_raw(input: &InputFile) -> Result<RawInput> {
    if input.is_stdin() {
        return Ok(RawInput::Stdin);
    }
    let f = File::open(&input.path).map_err(|e| Error::io(&input.path, e))?;
    Ok(RawInput::File(f))
}

/// The raw bytes of an input.
pub(crate) enum RawInput {
    File(File),
    Stdin,
}

/// Counts bytes read through it.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads a sample of up to `n` bytes and whether it is all of the input. A read error (a
/// damaged compressed stream) ends the sample early and is handed back, to be raised after
/// the rows before it are decoded. `expect` is the size the caller expects (see
/// [`read_up_to`]).
fn read_sample(
    r: &mut dyn Read,
    n: usize,
    expect: usize,
) -> (Vec<u8>, bool, Option<std::io::Error>) {
    let mut buf = Vec::new();
    match read_up_to(r, &mut buf, n, expect) {
        Ok(eof) => (buf, eof, None),
        Err(e) => (buf, false, Some(e)),
    }
}

/// A reader that fails once with a stored error (then reports the end).
struct Failing(Option<std::io::Error>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}

/// Reads until `buf` holds `n` bytes or the input ends; `Ok(true)` at the end.
///
/// Room for `expect` more bytes (at most `n`) is made first; the buffer grows past it if
/// the input is longer. A reader behind `dyn Read` zeroes the room it is given before each
/// read, so room far beyond the input costs a `memset` per file: 256 KiB for a 30 KB day
/// file, 4% of describing the demo layout's 1,258 files.
fn read_up_to(
    r: &mut dyn Read,
    buf: &mut Vec<u8>,
    n: usize,
    expect: usize,
) -> std::io::Result<bool> {
    let Some(limit) = n.checked_sub(buf.len()).filter(|l| *l > 0) else {
        return Ok(false);
    };
    // Appends without zeroing a whole sample first (see `produce_stream`).
    buf.reserve(limit.min(expect.max(1)));
    let k = r.take(limit as u64).read_to_end(buf)?;
    Ok(k < limit)
}

/// Sniffs an input: `None` for Parquet/IPC files; otherwise the text stream and its plan
/// (no plan when the text is empty).
pub(crate) fn sniff_text(
    raw: RawInput,
    input: &InputFile,
    opts: &ReadOptions,
    usage: PlanUse,
) -> Result<Option<OpenedText>> {
    let name = input.display_name();
    let raw_bytes = Arc::new(AtomicU64::new(0));
    let mut head = Vec::new();
    let mut reader: Box<dyn Read + Send> = match raw {
        RawInput::File(f) => Box::new(Counting {
            inner: f,
            count: raw_bytes.clone(),
        }),
        RawInput::Stdin => Box::new(Counting {
            inner: std::io::stdin(),
            count: raw_bytes.clone(),
        }),
    };
    read_up_to(&mut reader, &mut head, 4096, 4096).map_err(|e| Error::io(&input.path, e))?;
    let format = FileFormat::detect(&head);
    if format != FileFormat::Csv {
        if input.is_stdin() {
            return Err(Error::Usage(
                "Parquet and Arrow IPC input cannot be read from stdin; pass a file".into(),
            ));
        }
        return Ok(None);
    }
    let compression = InputCompression::detect(&head);
    let corrupt = |decompressed: u64, e: std::io::Error| Error::Corrupt {
        file: name.clone(),
        codec: compression.name().into(),
        decompressed_bytes: decompressed,
        message: e.to_string(),
    };
    let chained: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head).chain(reader));
    let mut decomp = compression.decoder(chained).map_err(|e| corrupt(0, e))?;
    // Decompressed text is expected to be a few times its file (tick CSV compresses 3–8×);
    // a longer one grows the sample's buffer as it is read.
    let expect = match (compression, input.size) {
        (InputCompression::None, Some(n)) => n as usize + 1,
        (_, Some(n)) => (n as usize).saturating_mul(8).max(64 << 10),
        (_, None) => SAMPLE_BYTES,
    };
    let (dsample, dall, derr) = read_sample(&mut decomp, SAMPLE_BYTES, expect);
    let decomp: Box<dyn Read + Send> = match derr {
        Some(e) => Box::new(Failing(Some(e))),
        None => decomp,
    };
    let encoding = TextEncoding::detect(&dsample, opts.input.encoding.as_deref())
        .map_err(|m| Error::config("input.encoding", m))?;
    let mut mmap = None;
    let (text_sample, text_all, rest): (Vec<u8>, bool, Box<dyn Read + Send>) = if encoding.is_utf8()
    {
        let sample = dsample[encoding.bom..].to_vec();
        if compression == InputCompression::None
            && !input.is_stdin()
            && input.size.unwrap_or(0) as usize > sample.len() + encoding.bom
        {
            let f = File::open(&input.path).map_err(|e| Error::io(&input.path, e))?;
            // SAFETY: the map is read-only. Inputs are files the user asked us to read; if
            // another process truncates one while we read it, reads of the lost pages fault
            // (SIGBUS), which is memmap2's documented caveat and the price of zero-copy input.
            #[allow(unsafe_code)]
            let m = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(&input.path, e))?;
            // Blocks are read front to back: ask for aggressive read-ahead.
            #[cfg(unix)]
            let _ = m.advise(memmap2::Advice::Sequential);
            mmap = Some(Arc::new(m));
        }
        (sample, dall, decomp)
    } else {
        // UTF-16 text transcodes to about half its bytes, Latin-1 to a little more.
        let dsample_len = dsample.len();
        let mut tr = Transcoder::new(
            encoding,
            Box::new(std::io::Cursor::new(dsample).chain(decomp)),
        );
        let (s, all, err) = read_sample(&mut tr, SAMPLE_BYTES, dsample_len.saturating_mul(2));
        let rest: Box<dyn Read + Send> = match err {
            Some(e) => Box::new(Failing(Some(e))),
            None => Box::new(tr),
        };
        (s, all, rest)
    };
    if looks_binary(&text_sample) {
        return Err(Error::Format {
            file: name,
            message: "this is binary data, not delimited text (nor a gzip/bzip2/xz/zstd, Parquet or Arrow file)".into(),
        });
    }
    let plan = if text_sample.iter().all(|c| c.is_ascii_whitespace()) {
        None
    } else {
        Some(plan_for(&text_sample, text_all, &name, opts, usage)?)
    };
    Ok(Some(OpenedText {
        sniffed: Sniffed {
            format,
            compression,
            encoding: Some(encoding),
            plan,
        },
        sample: text_sample,
        rest,
        raw_bytes,
        text_start: encoding.bom,
        mmap,
        whole: text_all,
    }))
}

/// A source with no rows (an empty input).
pub(crate) struct EmptySource {
    schema: SchemaRef,
}

impl EmptySource {
    pub(crate) fn new() -> Self {
        EmptySource {
            schema: Arc::new(Schema::new(vec![Field::new(
                LINE_COLUMN,
                DataType::UInt64,
                false,
            )])),
        }
    }
}

impl Iterator for EmptySource {
    type Item = Result<Chunk>;
    fn next(&mut self) -> Option<Result<Chunk>> {
        None
    }
}

impl Source for EmptySource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Reads a whole input and returns (rows, input bytes): what `cargo xtask bench` times.
pub fn read_all_count(input: &InputFile, opts: &ReadOptions) -> Result<(u64, u64)> {
    let mut src = open_source(input, 0, opts)?;
    let mut rows = 0u64;
    for c in src.by_ref() {
        rows += c?.num_rows() as u64;
    }
    let p = src.progress();
    Ok((rows, p.bytes_read.max(input.size.unwrap_or(0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_boundaries_are_cached_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        let mut text = String::from("ts,price\n");
        for i in 0..40_000 {
            text.push_str(&format!("2021-01-04T14:30:00.{i:09}Z,{i}.5\n"));
        }
        std::fs::write(&p, &text).unwrap();
        let db = pipeline_core::MetaCache::memory();
        let opts = ReadOptions {
            meta_cache: Some(db.clone()),
            chunk_rows: 2000,
            threads: 2,
            ..ReadOptions::default()
        };
        let input = InputFile::new(&p);
        let count = |o: &ReadOptions| {
            open_source(&input, 0, o)
                .unwrap()
                .map(|c| c.unwrap().num_rows())
                .sum::<usize>()
        };
        assert_eq!(count(&opts), 40_000);
        let key = super::super::cache::fingerprint(&InputFile::new(p.clone())).unwrap();
        // The producer stores the boundaries after its last block; give it a moment.
        let mut cached = None;
        for _ in 0..100 {
            cached = super::super::cache::get(&db, &key).and_then(|m| m.boundaries);
            if cached.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (_, ends) = cached.expect("boundaries cached");
        assert!(ends.len() > 5);
        assert_eq!(*ends.last().unwrap(), text.len() as u64);
        assert_eq!(count(&opts), 40_000);
    }
    #[test]
    fn a_small_input_decodes_inline_in_many_blocks_with_its_lines() {
        // A gzip input that fits the sniffing sample is decoded on the calling thread. With
        // tiny chunks it is cut into far more blocks than a threaded source keeps in flight:
        // none may be lost or reordered, and lines and rejects must stay exact.
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("day.csv.gz");
        let mut text = String::from("ts,symbol,price,size\n");
        for i in 0..3000u64 {
            if i == 1234 {
                text.push_str("2021-01-04T14:30:00Z,AAPL,oops,1\n");
            } else {
                text.push_str(&format!("2021-01-04T14:30:00.{i:09}Z,AAPL,{i}.5,1\n"));
            }
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        let opts = ReadOptions {
            chunk_rows: 10,
            threads: 2,
            ..ReadOptions::default()
        };
        let mut src = open_source(&InputFile::new(&p), 0, &opts).unwrap();
        let mut lines = Vec::new();
        let mut chunks = 0;
        for c in src.by_ref() {
            let c = c.unwrap();
            chunks += 1;
            lines.extend((0..c.num_rows()).map(|r| c.line(r)));
        }
        assert!(chunks > 20, "expected many blocks, got {chunks}");
        let expected: Vec<u64> = (2..=3001).filter(|l| *l != 1236).collect();
        assert_eq!(lines, expected);
        let rejects = src.drain_rejects();
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].line, 1236);
    }
}
