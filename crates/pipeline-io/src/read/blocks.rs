//! Parallel, ordered block decoding shared by the mmap and stream sources.
//!
//! A producer cuts the text into blocks at record boundaries (same cuts whatever the thread
//! count, so output never depends on it), worker threads decode blocks with their own
//! [`CsvDecoder`], and the consumer restores block order by sequence number, turns each
//! block's relative line numbers into absolute ones (each block reports how many `\n` it
//! held, so no pre-pass is needed) and yields one chunk per block. A fixed number of tokens
//! bounds the blocks in flight, so memory stays flat whatever the file size.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arrow_array::{RecordBatch, UInt64Array};
use arrow_schema::SchemaRef;
use crossbeam_channel::{Receiver, Sender};
use pipeline_core::{Chunk, Error, Progress, Reject, Result, Source, SourceId};

use super::decoder::CsvDecoder;
use super::plan::CsvPlan;

/// Bytes of a block: a range of a shared map, or an owned buffer; or a record longer than
/// `max_line_bytes` that the producer skipped without holding it.
pub(crate) enum BlockData {
    Mapped(Arc<memmap2::Mmap>, usize, usize),
    Owned(Vec<u8>),
    /// A skipped record: its length, the `\n`s it held (its own included) and its start.
    Skipped {
        len: u64,
        newlines: u64,
        prefix: Vec<u8>,
    },
}

impl BlockData {
    fn bytes(&self) -> &[u8] {
        match self {
            BlockData::Mapped(m, a, b) => &m[*a..*b],
            BlockData::Owned(v) => v,
            BlockData::Skipped { .. } => &[],
        }
    }

    /// Done with a decoded block. An owned buffer goes back to the producer through `spare`
    /// (when there is room) to hold a later block: blocks are ~4.5 MB, and allocating one
    /// per block made glibc map and fault in fresh pages every time (see
    /// [`BlockSender::spare_buffer`]). A mapped block's pages are dropped from the process:
    /// file pages touched through the map count as resident memory, so without this a 10 GB
    /// file would end with a 10 GB RSS.
    fn release(self, spare: &Sender<Vec<u8>>) {
        if let BlockData::Owned(v) = self {
            let _ = spare.try_send(v);
            return;
        }
        if let BlockData::Mapped(m, a, b) = &self {
            drop_pages(m, *a, *b);
        }
    }
}

/// Drops the pages of `m[a..b]` from the process (see [`BlockData::release`]).
pub(crate) fn drop_pages(m: &memmap2::Mmap, a: usize, b: usize) {
    #[cfg(unix)]
    {
        // SAFETY: the map is a read-only shared mapping of a file; MADV_DONTNEED only
        // drops the pages from this process, and a later access (by a worker decoding
        // the neighbouring block that shares an edge page) faults them back in from the
        // page cache with the same contents. No reference into the range is kept: the
        // decoded batch owns copies of its data.
        #[allow(unsafe_code)]
        let _ = unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, b - a) };
    }
    #[cfg(not(unix))]
    let _ = (m, a, b);
}

/// What the producer sends.
pub(crate) enum Block {
    /// Text ending at a record boundary; `last` for the end of the input (its final record
    /// may lack a newline). `progress` is the input bytes consumed once this block is done.
    Data {
        seq: u64,
        data: BlockData,
        last: bool,
        progress: u64,
    },
    /// The input failed after the previous blocks.
    Fail { seq: u64, error: Error },
}

struct Decoded {
    batch: Option<(RecordBatch, Vec<u64>)>,
    rejects: Vec<Reject>,
    newlines: u64,
    records: u64,
    progress: u64,
    error: Option<Error>,
}

impl Decoded {
    /// A block that yields nothing but `error`.
    fn failed(progress: u64, error: Error) -> Decoded {
        Decoded {
            batch: None,
            rejects: Vec::new(),
            newlines: 0,
            records: 0,
            progress,
            error: Some(error),
        }
    }
}

/// Producer-side handle: sends blocks, waiting for a free token first.
pub(crate) struct BlockSender {
    tx: Sender<Block>,
    /// `None` when decoding inline: every block is cut before any is decoded.
    tokens: Option<Receiver<()>>,
    seq: u64,
    /// Buffers of decoded owned blocks, handed back for reuse.
    spare: Receiver<Vec<u8>>,
}

impl BlockSender {
    /// An empty buffer for the next owned block: one a decoded block gave back (keeping its
    /// capacity), or a new one when none is free. Under `tickpipe`'s 4 MiB malloc mmap
    /// threshold a fresh buffer per block was mapped and faulted in every time: a 20M-row
    /// gzip load took 3.0–3.2 s that way and 2.45–2.65 s reusing them.
    pub fn spare_buffer(&self) -> Vec<u8> {
        let mut v = self.spare.try_recv().unwrap_or_default();
        v.clear();
        v
    }

    /// Sends a block; `false` when the consumer has gone.
    pub fn send(&mut self, data: BlockData, last: bool, progress: u64) -> bool {
        if let Some(tokens) = &self.tokens
            && tokens.recv().is_err()
        {
            return false;
        }
        let seq = self.seq;
        self.seq += 1;
        self.tx
            .send(Block::Data {
                seq,
                data,
                last,
                progress,
            })
            .is_ok()
    }

    /// Sends the input's failure (ends the source after the blocks before it).
    pub fn fail(&mut self, error: Error) {
        let seq = self.seq;
        self.seq += 1;
        let _ = self.tx.send(Block::Fail { seq, error });
    }
}

/// Runs a producer on its own thread; if it panics (a bug), the source ends with
/// [`Error::Internal`] instead of silently losing the rest of the input.
pub(crate) fn spawn_producer(
    out: BlockSender,
    produce: impl FnOnce(&mut BlockSender) + Send + 'static,
) {
    std::thread::spawn(move || {
        let mut out = out;
        run_producer(&mut out, produce);
    });
}

/// Runs a producer; if it panics (a bug), the source ends with [`Error::Internal`] after
/// the blocks it sent.
fn run_producer(out: &mut BlockSender, produce: impl FnOnce(&mut BlockSender)) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| produce(out)));
    if r.is_err() {
        out.fail(Error::Internal("block producer panicked".into()));
    }
}

/// The consumer: an ordered [`Source`] over decoded blocks.
pub(crate) struct BlockSource {
    plan: Arc<CsvPlan>,
    source: SourceId,
    results: Receiver<(u64, Decoded)>,
    tokens: Sender<()>,
    pending: BTreeMap<u64, Decoded>,
    next_seq: u64,
    next_line: u64,
    chunk_seq: u64,
    rejects: Vec<Reject>,
    done: bool,
    bytes_read: u64,
    bytes_total: Option<u64>,
    rows_read: u64,
    cancel: Arc<AtomicBool>,
    _raw_bytes: Option<Arc<AtomicU64>>,
    /// False for stdin: see [`Source::reopenable`].
    reopenable: bool,
}

/// Starts `threads` decode workers (at least one); returns the producer handle and the
/// source. `first_line` is the line the first block starts on (after a header).
pub(crate) fn start(
    plan: Arc<CsvPlan>,
    source: SourceId,
    threads: usize,
    in_flight: usize,
    first_line: u64,
    bytes_total: Option<u64>,
) -> (BlockSender, BlockSource) {
    let (sender, src, _) = channels(
        plan,
        source,
        Some((threads.max(1), in_flight)),
        first_line,
        bytes_total,
    );
    (sender, src)
}

/// Cuts and decodes a small input on the calling thread: `produce` cuts every block first,
/// then they are decoded here, and the source yields the results. No thread is started: for
/// a day file of a few hundred rows, [`start`]'s producer and decoder threads cost more than
/// the decoding (1,258 such files: 4 thread starts and a hand-off per block each).
/// Memory is bounded by the input, which the caller has already read whole.
pub(crate) fn decode_inline(
    plan: Arc<CsvPlan>,
    source: SourceId,
    first_line: u64,
    bytes_total: Option<u64>,
    produce: impl FnOnce(&mut BlockSender),
) -> BlockSource {
    let (mut sender, src, inline) = channels(plan.clone(), source, None, first_line, bytes_total);
    run_producer(&mut sender, produce);
    drop(sender);
    if let Some(i) = inline {
        decode_blocks(&i.blocks, &i.spare, &i.results, &plan, source, &src.cancel);
    }
    src
}

/// The channels between producer, decoders and consumer. `workers` is `(threads, blocks in
/// flight)`, or `None` to decode inline: then no thread starts, the block channel is
/// unbounded, and the returned [`Inline`] holds what the caller decodes with.
fn channels(
    plan: Arc<CsvPlan>,
    source: SourceId,
    workers: Option<(usize, usize)>,
    first_line: u64,
    bytes_total: Option<u64>,
) -> (BlockSender, BlockSource, Option<Inline>) {
    let in_flight = workers.map_or(2, |(_, n)| n.max(2));
    let (tok_tx, tok_rx) = crossbeam_channel::bounded(in_flight);
    for _ in 0..in_flight {
        let _ = tok_tx.send(());
    }
    let (blk_tx, blk_rx) = match workers {
        Some(_) => crossbeam_channel::bounded::<Block>(in_flight),
        None => crossbeam_channel::unbounded::<Block>(),
    };
    let (res_tx, res_rx) = crossbeam_channel::unbounded();
    // Two spare buffers: the producer fills one block at a time, so a second only covers
    // decoders finishing out of turn; more would sit idle in memory.
    let (spare_tx, spare_rx) = crossbeam_channel::bounded::<Vec<u8>>(2);
    let cancel = Arc::new(AtomicBool::new(false));
    let threads = workers.map_or(0, |(t, _)| t);
    for _ in 0..threads {
        let rx = blk_rx.clone();
        let spare = spare_tx.clone();
        let tx = res_tx.clone();
        let plan = plan.clone();
        let cancel = cancel.clone();
        std::thread::spawn(move || decode_blocks(&rx, &spare, &tx, &plan, source, &cancel));
    }
    let inline = workers.is_none().then(|| Inline {
        blocks: blk_rx,
        spare: spare_tx,
        results: res_tx,
    });
    let sender = BlockSender {
        tx: blk_tx,
        tokens: workers.is_some().then_some(tok_rx),
        seq: 0,
        spare: spare_rx,
    };
    let src = BlockSource {
        plan,
        source,
        results: res_rx,
        tokens: tok_tx,
        pending: BTreeMap::new(),
        next_seq: 0,
        next_line: first_line,
        chunk_seq: 0,
        rejects: Vec::new(),
        done: false,
        bytes_read: 0,
        bytes_total,
        rows_read: 0,
        cancel,
        _raw_bytes: None,
        reopenable: true,
    };
    (sender, src, inline)
}

/// What [`decode_inline`] needs to decode on the calling thread once the producer is done.
struct Inline {
    blocks: Receiver<Block>,
    spare: Sender<Vec<u8>>,
    results: Sender<(u64, Decoded)>,
}

/// A decode worker: decodes blocks from `rx` until the producer is done, the consumer has
/// gone or the source is cancelled.
fn decode_blocks(
    rx: &Receiver<Block>,
    spare: &Sender<Vec<u8>>,
    tx: &Sender<(u64, Decoded)>,
    plan: &Arc<CsvPlan>,
    source: SourceId,
    cancel: &AtomicBool,
) {
    for b in rx {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let (seq, d) = match b {
            Block::Data {
                seq,
                data,
                last,
                progress,
            } => {
                // A bug must end the source with an error, not silently drop a block.
                let d = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &data {
                    BlockData::Skipped {
                        len,
                        newlines,
                        prefix,
                    } => skipped_block(plan, source, *len, *newlines, prefix, progress),
                    _ => decode_block(plan, source, data.bytes(), last, progress),
                }))
                .unwrap_or_else(|_| {
                    Decoded::failed(
                        progress,
                        Error::Internal(format!("decoder thread panicked on block {seq}")),
                    )
                });
                data.release(spare);
                (seq, d)
            }
            Block::Fail { seq, error } => (seq, Decoded::failed(0, error)),
        };
        if tx.send((seq, d)).is_err() {
            break;
        }
    }
}

/// The result of a record the producer skipped for its length: one `line_too_long` reject
/// (an error in strict mode) at relative line 0.
fn skipped_block(
    plan: &CsvPlan,
    source: SourceId,
    len: u64,
    newlines: u64,
    prefix: &[u8],
    progress: u64,
) -> Decoded {
    let mut d = Decoded {
        batch: None,
        rejects: Vec::new(),
        newlines,
        records: 1,
        progress,
        error: None,
    };
    if plan.strict {
        d.error = Some(Error::Malformed {
            file: plan.file.clone(),
            line: 0,
            message: super::decoder::long_line_detail(len, plan.max_line_bytes),
        });
    } else {
        d.rejects.push(super::decoder::long_line_reject(
            source,
            0,
            len,
            plan.max_line_bytes,
            prefix,
        ));
    }
    d
}

fn decode_block(
    plan: &Arc<CsvPlan>,
    source: SourceId,
    bytes: &[u8],
    last: bool,
    progress: u64,
) -> Decoded {
    let mut dec = CsvDecoder::new(plan.clone(), source, usize::MAX, 0, false);
    // Sized from the sampled row width (plus 1/8 for rows narrower than the sample's), so
    // buffers grow at most once per block; re-growing showed up as copies and page faults.
    let rows = (bytes.len() as f64 / plan.mean_row_bytes().max(1.0) * 1.125) as usize + 16;
    dec.reserve(rows, bytes.len() / 8);
    let mut error = dec.decode(bytes).err();
    if error.is_none() && last {
        error = dec.finish().err();
    }
    let batch = match dec.take_batch() {
        Ok(b) => b,
        Err(e) => {
            error.get_or_insert(e);
            None
        }
    };
    Decoded {
        batch,
        rejects: dec.drain_rejects(),
        newlines: dec.next_line(),
        records: dec.records_seen(),
        progress,
        error,
    }
}

/// Shifts a row error's relative line by `base`.
fn shift_line(e: Error, base: u64) -> Error {
    match e {
        Error::Parse {
            file,
            line,
            column,
            expected,
            found,
        } => Error::Parse {
            file,
            line: line + base,
            column,
            expected,
            found,
        },
        Error::Malformed {
            file,
            line,
            message,
        } => Error::Malformed {
            file,
            line: line + base,
            message,
        },
        other => other,
    }
}

impl BlockSource {
    fn finish_block(&mut self, d: Decoded) -> Option<Result<Chunk>> {
        let base = self.next_line;
        self.next_line += d.newlines;
        self.rows_read += d.records;
        self.bytes_read = self.bytes_read.max(d.progress);
        self.rejects.extend(d.rejects.into_iter().map(|mut r| {
            r.line += base;
            r
        }));
        let _ = self.tokens.send(());
        if let Some(e) = d.error {
            self.done = true;
            self.cancel.store(true, Ordering::Relaxed);
            return Some(Err(shift_line(e, base)));
        }
        let (batch, lines) = d.batch?;
        let lines = UInt64Array::from_iter_values(lines.into_iter().map(|l| l + base));
        let seq = self.chunk_seq;
        self.chunk_seq += 1;
        Some(Chunk::with_lines(batch, self.source, seq, lines))
    }
}

impl Iterator for BlockSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        while !self.done {
            if let Some(d) = self.pending.remove(&self.next_seq) {
                self.next_seq += 1;
                if let Some(item) = self.finish_block(d) {
                    return Some(item);
                }
                continue;
            }
            match self.results.recv() {
                Ok((seq, d)) => {
                    self.pending.insert(seq, d);
                }
                Err(_) => {
                    self.done = true;
                    if !self.pending.is_empty() {
                        return Some(Err(Error::Internal(format!(
                            "{}: decoded block {} never arrived",
                            self.plan.file, self.next_seq
                        ))));
                    }
                }
            }
        }
        None
    }
}

impl Source for BlockSource {
    fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    fn progress(&self) -> Progress {
        Progress {
            bytes_read: self.bytes_read,
            bytes_total: self.bytes_total,
            rows_read: self.rows_read,
        }
    }

    fn drain_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }

    fn reopenable(&self) -> bool {
        self.reopenable
    }
}

impl BlockSource {
    /// Marks the source as one that cannot be read twice (stdin).
    pub(crate) fn set_reopenable(&mut self, yes: bool) {
        self.reopenable = yes;
    }
}

impl Drop for BlockSource {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}
