//! [`open_follow`]: a live source over a growing file (or stdin) that yields partial chunks
//! at least every `flush_every` while rows are pending, until told to stop.
//!
//! A reader thread polls the file for appended bytes (or reads stdin) and sends them to the
//! source, which feeds the push decoder. Text is taken as UTF-8 (a file being appended to is
//! not compressed).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use pipeline_core::{Chunk, Error, Progress, Reject, Result, Source, SourceId, SourcePosition};

use super::decoder::CsvDecoder;
use super::options::ReadOptions;
use super::plan::CsvPlan;
use super::source::EmptySource;

/// How often the reader looks for appended bytes at the end of a followed file: well below
/// any useful `flush_every`, and cheap (one `read` returning 0).
const POLL: Duration = Duration::from_millis(20);

/// Pieces of appended text buffered between the reader and the source (64 KiB each at most).
const PIECES_IN_FLIGHT: usize = 64;

/// Bytes from the start of the file a continued run plans its columns from.
const PLAN_BYTES: u64 = 256 << 10;

/// Bytes hashed at the start of the file and before the position, to tell whether what an
/// earlier run read is still there.
const CHECK_BYTES: u64 = 64 << 10;

/// Follows `path` (`-` for stdin); see the module docs. It returns once the first record
/// (and the header, if any) has arrived, or when `stop` is set before that.
///
/// With `from` (a [`SourcePosition`] an earlier live run of the same file stopped at, see
/// [`Source::stopped_at`]), reading starts at that byte and line: the header and the plan
/// come from the start of the file, which must still be what that run read
/// ([`check_position`] says whether it is).
pub fn open_follow(
    path: &Path,
    id: SourceId,
    opts: &ReadOptions,
    flush_every: Duration,
    stop: Arc<AtomicBool>,
    from: Option<SourcePosition>,
) -> Result<Box<dyn Source>> {
    let name = path.display().to_string();
    let (tx, rx) = crossbeam_channel::bounded::<std::io::Result<Vec<u8>>>(PIECES_IN_FLIGHT);
    let stdin = path.as_os_str() == "-";
    if stdin && from.is_some() {
        return Err(Error::Usage(
            "stdin cannot be continued from a position: it is not a file".into(),
        ));
    }
    // The text before the start, for the plan only (its header and first rows).
    let mut before: Vec<u8> = Vec::new();
    let mut reader: Box<dyn Read + Send> = if stdin {
        Box::new(std::io::stdin())
    } else {
        let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
        if let Some(p) = from {
            (&mut f)
                .take(p.offset.min(PLAN_BYTES))
                .read_to_end(&mut before)
                .map_err(|e| Error::io(path, e))?;
            f.seek(SeekFrom::Start(p.offset))
                .map_err(|e| Error::io(path, e))?;
        }
        Box::new(f)
    };
    let stop_r = stop.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) if stdin => return,
                Ok(0) => {
                    if stop_r.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(POLL);
                }
                Ok(n) => {
                    if tx.send(Ok(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    // Wait for enough text to build the plan: two complete lines (a header and a row), or
    // one line and the end of the input.
    let mut head: Vec<u8> = Vec::new();
    let mut closed = false;
    let lines = |b: &[u8]| memchr::memchr_iter(b'\n', b).count();
    while lines(&before) + lines(&head) < 2 {
        match rx.recv_timeout(POLL) {
            Ok(Ok(b)) => head.extend(b),
            Ok(Err(e)) => return Err(Error::io(path, e)),
            Err(RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                closed = true;
                break;
            }
        }
    }
    let mut plan_text = before;
    plan_text.extend_from_slice(&head);
    let text = plan_text
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(&plan_text);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Box::new(EmptySource::new()));
    }
    let plan = Arc::new(CsvPlan::build(text, closed, &name, opts)?);
    let (first_line, skip_header) = match from {
        Some(p) => (p.line, false),
        None => (1, plan.has_header()),
    };
    let decoder = CsvDecoder::new(plan.clone(), id, opts.chunk_rows, first_line, skip_header);
    // Bytes before the first pushed one: the start position, or a byte-order mark.
    let (start, first) = match from {
        Some(p) => (p.offset, head),
        None => {
            let bom = plan_text.len() - text.len();
            (bom as u64, plan_text[bom..].to_vec())
        }
    };
    let mut src = FollowSource {
        schema: plan.schema(),
        decoder,
        rx,
        pending: Vec::new(),
        flush_every,
        last_flush: Instant::now(),
        stop,
        path: (!stdin).then(|| path.to_path_buf()),
        done: false,
        bytes: start,
        rows: 0,
        rejects: Vec::new(),
    };
    src.push(first)?;
    Ok(Box::new(src))
}

/// Whether `path` still starts with what an earlier run read up to `pos`: `None` when it
/// does, otherwise what changed, in words.
pub fn check_position(path: &Path, pos: &SourcePosition) -> Result<Option<String>> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if size < pos.offset {
        return Ok(Some(format!(
            "it is {size} bytes, shorter than the {} bytes already read: it was truncated or \
             replaced",
            pos.offset
        )));
    }
    let (head, tail) = position_hashes(path, pos.offset).map_err(|e| Error::io(path, e))?;
    if head != pos.head_hash || tail != pos.tail_hash {
        return Ok(Some(format!(
            "its first {} bytes (read by the earlier run) are not the same any more: it was \
             rewritten or replaced",
            pos.offset
        )));
    }
    Ok(None)
}

/// `stable_hash` of the first [`CHECK_BYTES`] of `path` and of the [`CHECK_BYTES`] before
/// `offset` (each limited to the first `offset` bytes).
fn position_hashes(path: &Path, offset: u64) -> std::io::Result<(u64, u64)> {
    let mut f = File::open(path)?;
    let mut head = Vec::new();
    (&mut f)
        .take(offset.min(CHECK_BYTES))
        .read_to_end(&mut head)?;
    let from = offset.saturating_sub(CHECK_BYTES);
    f.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    f.take(offset - from).read_to_end(&mut tail)?;
    if (head.len() as u64) < offset.min(CHECK_BYTES) || (tail.len() as u64) < offset - from {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file is shorter than the position",
        ));
    }
    Ok((
        pipeline_core::stable_hash(&head),
        pipeline_core::stable_hash(&tail),
    ))
}

struct FollowSource {
    schema: SchemaRef,
    decoder: CsvDecoder,
    rx: Receiver<std::io::Result<Vec<u8>>>,
    /// Text not yet taken by the decoder (it stops when a batch is full).
    pending: Vec<u8>,
    flush_every: Duration,
    last_flush: Instant,
    stop: Arc<AtomicBool>,
    /// The followed file; `None` for stdin.
    path: Option<PathBuf>,
    done: bool,
    /// The file offset after the last byte received.
    bytes: u64,
    rows: u64,
    rejects: Vec<Reject>,
}

impl FollowSource {
    /// Feeds text until it is used up or a batch is full.
    fn push(&mut self, text: Vec<u8>) -> Result<()> {
        self.bytes += text.len() as u64;
        if self.pending.is_empty() {
            self.pending = text;
        } else {
            self.pending.extend(text);
        }
        let used = self.decoder.decode(&self.pending)?;
        self.pending.drain(..used);
        Ok(())
    }

    fn take(&mut self) -> Option<Result<Chunk>> {
        self.last_flush = Instant::now();
        self.rejects.extend(self.decoder.drain_rejects());
        match self.decoder.flush() {
            Ok(Some(c)) => {
                self.rows += c.num_rows() as u64;
                Some(Ok(c))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl Iterator for FollowSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        while !self.done {
            if self.decoder.is_full() {
                let c = self.take();
                if !self.pending.is_empty() {
                    let rest = std::mem::take(&mut self.pending);
                    self.bytes -= rest.len() as u64;
                    if let Err(e) = self.push(rest) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                if c.is_some() {
                    return c;
                }
                continue;
            }
            // With rows pending, wake up when they are due; otherwise just poll (a zero
            // timeout here would spin).
            let wait = if self.decoder.buffered_rows() > 0 {
                self.flush_every
                    .saturating_sub(self.last_flush.elapsed())
                    .min(POLL * 5)
            } else {
                POLL * 5
            };
            match self.rx.recv_timeout(wait) {
                Ok(Ok(b)) => {
                    if let Err(e) = self.push(b) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Some(Err(Error::io("-", e)));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.stop.load(Ordering::Relaxed) {
                        // Take what has already arrived, then end (an incomplete last line of
                        // a file still being written is left out, and a continued run starts
                        // with it). More than a batch may have arrived: the full ones are
                        // handed on first.
                        while let Ok(Ok(b)) = self.rx.try_recv() {
                            if let Err(e) = self.push(b) {
                                self.done = true;
                                return Some(Err(e));
                            }
                        }
                        if self.decoder.is_full() {
                            continue;
                        }
                        self.done = true;
                        return self.take();
                    }
                    if self.last_flush.elapsed() >= self.flush_every
                        && self.decoder.buffered_rows() > 0
                    {
                        return self.take();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.done = true;
                    if self.path.is_none()
                        && let Err(e) = self.decoder.finish()
                    {
                        return Some(Err(e));
                    }
                    return self.take();
                }
            }
        }
        None
    }
}

impl Source for FollowSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn progress(&self) -> Progress {
        Progress {
            bytes_read: self.bytes,
            bytes_total: None,
            rows_read: self.rows,
        }
    }

    fn drain_rejects(&mut self) -> Vec<Reject> {
        self.rejects.extend(self.decoder.drain_rejects());
        std::mem::take(&mut self.rejects)
    }

    fn reopenable(&self) -> bool {
        self.path.is_some()
    }

    fn stopped_at(&self) -> Option<SourcePosition> {
        let path = self.path.as_ref()?;
        if !self.done {
            return None;
        }
        // Received, less what the decoder has not taken and the incomplete last line it
        // holds: the next unread byte starts the next record.
        let offset = self
            .bytes
            .saturating_sub(self.pending.len() as u64)
            .saturating_sub(self.decoder.partial_len() as u64);
        match position_hashes(path, offset) {
            Ok((head_hash, tail_hash)) => Some(SourcePosition {
                offset,
                line: self.decoder.next_line(),
                head_hash,
                tail_hash,
            }),
            Err(e) => {
                tracing::warn!(
                    "{}: cannot record where the live run stopped ({e}); it cannot be continued",
                    path.display()
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_a_growing_file_and_flushes_partial_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("live.csv");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"ts,price\n2021-01-04T14:30:00Z,1\n").unwrap();
        f.flush().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let opts = ReadOptions {
            chunk_rows: 1000,
            ..ReadOptions::default()
        };
        let mut src =
            open_follow(&p, 0, &opts, Duration::from_millis(50), stop.clone(), None).unwrap();
        let c = src.next().unwrap().unwrap();
        assert_eq!((c.num_rows(), c.line(0)), (1, 2));
        f.write_all(b"2021-01-04T14:30:01Z,2\n2021-01-04T14:30:02Z,x\n2021-01-04T14:30:0")
            .unwrap();
        f.flush().unwrap();
        let c = src.next().unwrap().unwrap();
        assert_eq!((c.num_rows(), c.line(0)), (1, 3));
        assert_eq!(src.drain_rejects()[0].line, 4);
        f.write_all(b"3Z,3\n").unwrap();
        f.flush().unwrap();
        let c = src.next().unwrap().unwrap();
        assert_eq!(c.line(0), 5);
        stop.store(true, Ordering::Relaxed);
        assert!(src.next().is_none());
    }

    /// Drains `src` until it ends; returns its rows' lines and its rejects' lines.
    fn drain(src: &mut Box<dyn Source>) -> (Vec<u64>, Vec<u64>) {
        let mut lines = Vec::new();
        let mut rejects = Vec::new();
        while let Some(c) = src.next() {
            let c = c.unwrap();
            lines.extend((0..c.num_rows()).map(|i| c.line(i)));
            rejects.extend(src.drain_rejects().iter().map(|r| r.line));
        }
        rejects.extend(src.drain_rejects().iter().map(|r| r.line));
        (lines, rejects)
    }

    #[test]
    fn a_stopped_file_continues_where_it_stopped_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("live.csv");
        let row = |i: u64| format!("2021-01-04T14:30:{:02}Z,{i}\n", i % 60);
        let mut text = String::from("ts,price\n");
        for i in 0..50 {
            text += &row(i);
        }
        text += "2021-01-04T14:31:00Z,x\n2021-01-04T14:31:0"; // a bad row, a cut one
        std::fs::write(&p, &text).unwrap();
        let opts = ReadOptions {
            chunk_rows: 7,
            ..ReadOptions::default()
        };
        let stop = Arc::new(AtomicBool::new(true));
        let flush = Duration::from_millis(5);
        let mut src = open_follow(&p, 0, &opts, flush, stop.clone(), None).unwrap();
        assert_eq!(src.stopped_at(), None, "not ended yet");
        let (lines, rejects) = drain(&mut src);
        // Every complete row, in batches of 7 however much had arrived at the stop.
        assert_eq!(lines, (2..=51).collect::<Vec<_>>());
        assert_eq!(rejects, vec![52]);
        let pos = src.stopped_at().unwrap();
        let cut = text.rfind('\n').unwrap() as u64 + 1;
        assert_eq!((pos.offset, pos.line), (cut, 53));
        assert_eq!(check_position(&p, &pos).unwrap(), None);

        // The cut row is completed and more rows arrive: a continuation reads from there.
        let mut more = String::from("1Z,51\n");
        for i in 52..60 {
            more += &row(i);
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(more.as_bytes()).unwrap();
        drop(f);
        assert_eq!(
            check_position(&p, &pos).unwrap(),
            None,
            "an append is no change"
        );
        let mut src = open_follow(&p, 0, &opts, flush, stop.clone(), Some(pos)).unwrap();
        let (lines, rejects) = drain(&mut src);
        assert_eq!(lines, (53..=61).collect::<Vec<_>>());
        assert!(rejects.is_empty());
        let end = src.stopped_at().unwrap();
        assert_eq!(
            (end.offset, end.line),
            (std::fs::metadata(&p).unwrap().len(), 62)
        );

        // A rewritten start, or a shorter file, is a change.
        let mut changed = std::fs::read(&p).unwrap();
        changed[12] = b'9';
        std::fs::write(&p, &changed).unwrap();
        assert!(
            check_position(&p, &pos)
                .unwrap()
                .unwrap()
                .contains("rewritten")
        );
        std::fs::write(&p, &changed[..100]).unwrap();
        assert!(
            check_position(&p, &pos)
                .unwrap()
                .unwrap()
                .contains("shorter")
        );
    }
}
