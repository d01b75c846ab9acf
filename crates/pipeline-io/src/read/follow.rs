//! [`open_follow`]: a live source over a growing file (or stdin) that yields partial chunks
//! at least every `flush_every` while rows are pending, until told to stop.
//!
//! A reader thread polls the file for appended bytes (or reads stdin) and sends them to the
//! source, which feeds the push decoder. Text is taken as UTF-8 (a file being appended to is
//! not compressed).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use pipeline_core::{Chunk, Error, Progress, Reject, Result, Source, SourceId};

use super::decoder::CsvDecoder;
use super::options::ReadOptions;
use super::plan::CsvPlan;
use super::source::EmptySource;

/// How often the reader looks for appended bytes at the end of a followed file: well below
/// any useful `flush_every`, and cheap (one `read` returning 0).
const POLL: Duration = Duration::from_millis(20);

/// Pieces of appended text buffered between the reader and the source (64 KiB each at most).
const PIECES_IN_FLIGHT: usize = 64;

/// Follows `path` (`-` for stdin); see the module docs. It returns once the first record
/// (and the header, if any) has arrived, or when `stop` is set before that.
pub fn open_follow(
    path: &Path,
    id: SourceId,
    opts: &ReadOptions,
    flush_every: Duration,
    stop: Arc<AtomicBool>,
) -> Result<Box<dyn Source>> {
    let name = path.display().to_string();
    let (tx, rx) = crossbeam_channel::bounded::<std::io::Result<Vec<u8>>>(PIECES_IN_FLIGHT);
    let stdin = path.as_os_str() == "-";
    let mut reader: Box<dyn Read + Send> = if stdin {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).map_err(|e| Error::io(path, e))?)
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
    while memchr::memchr_iter(b'\n', &head).count() < 2 {
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
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Box::new(EmptySource::new()));
    }
    let plan = Arc::new(CsvPlan::build(text, closed, &name, opts)?);
    let decoder = CsvDecoder::new(plan.clone(), id, opts.chunk_rows, 1, plan.has_header());
    let consumed = head.len() - text.len();
    let mut src = FollowSource {
        schema: plan.schema(),
        decoder,
        rx,
        pending: Vec::new(),
        flush_every,
        last_flush: Instant::now(),
        stop,
        stdin,
        done: false,
        bytes: consumed as u64,
        rows: 0,
        rejects: Vec::new(),
    };
    src.push(text.to_vec())?;
    Ok(Box::new(src))
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
    stdin: bool,
    done: bool,
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
                        // a file still being written is left out).
                        while let Ok(Ok(b)) = self.rx.try_recv() {
                            if let Err(e) = self.push(b) {
                                self.done = true;
                                return Some(Err(e));
                            }
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
                    if self.stdin
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
        !self.stdin
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
        let mut src = open_follow(&p, 0, &opts, Duration::from_millis(50), stop.clone()).unwrap();
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
}
