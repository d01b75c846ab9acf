//! The bounded reorder buffer: puts rows back in event-time order per key within an allowed
//! lateness, and quarantines rows later than that as `late`. [`ReorderStage`] exposes it alone
//! through the fast sorted-run buffer in [`sorted`]; the general heap-based [`Reorderer`] here
//! feeds `WindowStage`, which needs each released row's numeric columns. Both write the same
//! checkpoint format.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{RecordBatch, UInt64Array};
use pipeline_core::{
    Chunk, Emitter, Error, Reject, Replay, Result, SourceId, Stage, StageKey, StageOrder,
};
use serde::{Deserialize, Serialize};

use crate::columns::{event_times, row_keys};

mod sorted;

/// Quarantine reason for rows behind the watermark.
pub const LATE: &str = "late";
/// Quarantine reason for rows without an event time.
pub const BAD_TIMESTAMP: &str = "bad_timestamp";

/// A key value; `None` is the null key, which is a group of its own.
pub(crate) type Key = Option<String>;

/// A chunk held because some of its rows are still pending, plus numeric columns the owner
/// asked to have extracted.
pub(crate) struct Retained {
    pub chunk: Chunk,
    pub cols: Vec<Vec<Option<f64>>>,
    remaining: usize,
}

/// A row released in order: its key, time, and where it lives.
#[derive(Debug, Clone)]
pub(crate) struct Released {
    pub key: Arc<Key>,
    pub ts: i64,
    pub chunk: u64,
    pub row: usize,
}

#[derive(Default)]
struct KeyBuf {
    max_ts: Option<i64>,
    heap: BinaryHeap<Reverse<(i64, u64, u64, usize)>>,
    /// Rows with a time seen, and how many were late (checkpointed like the sorted buffer's).
    seen: u64,
    late: u64,
}

/// Pending rows per key, ordered by `(ts, arrival)`, released row by row (for windows).
pub(crate) struct Reorderer {
    key_col: String,
    ts_col: String,
    lateness: i64,
    keys: BTreeMap<Key, (Arc<Key>, KeyBuf)>,
    retained: HashMap<u64, Retained>,
    next_chunk: u64,
    arrival: u64,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    /// Latest event time per key.
    max_ts: Vec<(Key, i64)>,
    /// Pending rows in order per key: key, time, arrival, and the chunk's source and seq.
    rows: Vec<(Key, i64, u64, SourceId, u64)>,
    /// Arrival counter.
    arrival: u64,
    /// Rows seen and late rows per key (for the disorder stop); absent in older checkpoints.
    #[serde(default)]
    late: Vec<(Key, u64, u64)>,
}

impl Reorderer {
    pub fn new(key_col: &str, ts_col: &str, lateness: Duration) -> Self {
        Reorderer {
            key_col: key_col.to_string(),
            ts_col: ts_col.to_string(),
            lateness: i64::try_from(lateness.as_nanos()).unwrap_or(i64::MAX),
            keys: BTreeMap::new(),
            retained: HashMap::new(),
            next_chunk: 0,
            arrival: 0,
        }
    }

    /// Adds a chunk's rows (quarantining late and time-less ones) and returns the rows now
    /// behind the watermark, in order, for the keys this chunk touched (in order of first
    /// appearance). `cols` are the numeric columns to keep at hand for each row.
    pub fn push(
        &mut self,
        chunk: Chunk,
        cols: &[String],
        out: &mut Emitter,
    ) -> Result<Vec<Released>> {
        let keys = row_keys(&chunk, &self.key_col)?;
        let ts = event_times(&chunk, &self.ts_col)?;
        let id = self.next_chunk;
        self.next_chunk += 1;
        let mut touched: Vec<Key> = Vec::new();
        let mut slots: Vec<Option<Key>> = vec![None; keys.names.len() + 1];
        let mut pending = 0usize;
        for (row, (k, t)) in keys.rows.iter().zip(&ts).enumerate() {
            let Some(t) = *t else {
                out.quarantine_one(Reject::quarantined(
                    chunk.source(),
                    chunk.line(row),
                    BAD_TIMESTAMP,
                    format!("column `{}` is empty", self.ts_col),
                    None,
                ));
                continue;
            };
            let slot = k.unwrap_or(keys.names.len());
            let key = match &slots[slot] {
                Some(key) => key.clone(),
                None => {
                    let key: Key = k.map(|i| keys.names[i].clone());
                    slots[slot] = Some(key.clone());
                    key
                }
            };
            let (_, buf) = self
                .keys
                .entry(key.clone())
                .or_insert_with(|| (Arc::new(key.clone()), KeyBuf::default()));
            buf.seen += 1;
            if let Some(m) = buf.max_ts
                && t < m.saturating_sub(self.lateness)
            {
                buf.late += 1;
                out.quarantine_one(Reject::quarantined(
                    chunk.source(),
                    chunk.line(row),
                    LATE,
                    format!(
                        "event time {t} ns is {} ns behind the latest {m} ns (allowed lateness {} ns)",
                        m - t,
                        self.lateness
                    ),
                    None,
                ));
                continue;
            }
            if buf.max_ts.is_none_or(|m| t > m) {
                buf.max_ts = Some(t);
            }
            buf.heap.push(Reverse((t, self.arrival, id, row)));
            self.arrival += 1;
            pending += 1;
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        if pending > 0 {
            let cols = cols
                .iter()
                .map(|c| crate::columns::numbers(&chunk, c))
                .collect::<Result<Vec<_>>>()?;
            self.retained.insert(
                id,
                Retained {
                    chunk,
                    cols,
                    remaining: pending,
                },
            );
        }
        let mut released = Vec::new();
        for key in touched {
            self.release_key(&key, false, &mut released);
        }
        Ok(released)
    }

    fn release_key(&mut self, key: &Key, all: bool, into: &mut Vec<Released>) {
        let Some((arc, buf)) = self.keys.get_mut(key) else {
            return;
        };
        let wm = buf
            .max_ts
            .map_or(i64::MIN, |m| m.saturating_sub(self.lateness));
        while let Some(Reverse((t, _, c, r))) = buf.heap.peek().copied() {
            if !all && t > wm {
                break;
            }
            buf.heap.pop();
            into.push(Released {
                key: arc.clone(),
                ts: t,
                chunk: c,
                row: r,
            });
        }
    }

    /// Releases every pending row (end of input), keys in sorted order.
    pub fn drain(&mut self) -> Vec<Released> {
        let keys: Vec<Key> = self.keys.keys().cloned().collect();
        let mut out = Vec::new();
        for k in keys {
            self.release_key(&k, true, &mut out);
        }
        out
    }

    pub fn retained(&self, id: u64) -> Option<&Retained> {
        self.retained.get(&id)
    }

    /// Forgets released rows, dropping chunks with nothing pending.
    pub fn done(&mut self, released: &[Released]) {
        for r in released {
            if let Some(e) = self.retained.get_mut(&r.chunk) {
                e.remaining -= 1;
                if e.remaining == 0 {
                    self.retained.remove(&r.chunk);
                }
            }
        }
    }

    /// Builds one chunk holding `rows` in order (all retained chunks must share a schema).
    pub fn gather(&self, rows: &[Released], source: SourceId, seq: u64) -> Result<Option<Chunk>> {
        if rows.is_empty() {
            return Ok(None);
        }
        let mut ids: Vec<u64> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut pairs = Vec::with_capacity(rows.len());
        for r in rows {
            let i = *index.entry(r.chunk).or_insert_with(|| {
                ids.push(r.chunk);
                ids.len() - 1
            });
            pairs.push((i, r.row));
        }
        let batches: Vec<&RecordBatch> = ids
            .iter()
            .map(|id| {
                self.retained
                    .get(id)
                    .map(|e| e.chunk.batch())
                    .ok_or_else(|| Error::Internal(format!("reorder buffer lost chunk {id}")))
            })
            .collect::<Result<_>>()?;
        let batch = arrow_select::interleave::interleave_record_batch(&batches, &pairs)?;
        Ok(Some(Chunk::new(batch, source, seq)?))
    }

    /// Serialises pending rows and watermarks: a length-prefixed JSON header, then the pending
    /// rows as one Arrow IPC stream.
    pub fn checkpoint(&self) -> Result<Vec<u8>> {
        let mut released = Vec::new();
        let mut snap = Snapshot {
            max_ts: Vec::new(),
            rows: Vec::new(),
            arrival: self.arrival,
            late: Vec::new(),
        };
        for (key, (arc, buf)) in &self.keys {
            if let Some(m) = buf.max_ts {
                snap.max_ts.push((key.clone(), m));
                snap.late.push((key.clone(), buf.seen, buf.late));
            }
            let mut items: Vec<_> = buf.heap.iter().map(|Reverse(x)| *x).collect();
            items.sort_unstable();
            for (t, a, c, r) in items {
                let src = self
                    .retained
                    .get(&c)
                    .ok_or_else(|| Error::Internal(format!("reorder buffer lost chunk {c}")))?;
                snap.rows
                    .push((key.clone(), t, a, src.chunk.source(), src.chunk.seq()));
                released.push(Released {
                    key: arc.clone(),
                    ts: t,
                    chunk: c,
                    row: r,
                });
            }
        }
        let chunk = self.gather(&released, 0, 0)?;
        encode_checkpoint(&snap, chunk.as_ref())
    }

    /// Restores state written by [`Reorderer::checkpoint`]; `cols` as for [`Reorderer::push`].
    pub fn restore(&mut self, bytes: &[u8], cols: &[String]) -> Result<()> {
        let (snap, groups) = decode_checkpoint(bytes)?;
        self.keys.clear();
        self.retained.clear();
        self.arrival = snap.arrival;
        for (k, m) in snap.max_ts {
            self.keys.insert(
                k.clone(),
                (
                    Arc::new(k),
                    KeyBuf {
                        max_ts: Some(m),
                        heap: BinaryHeap::new(),
                        seen: 0,
                        late: 0,
                    },
                ),
            );
        }
        for (k, seen, late) in snap.late {
            if let Some((_, buf)) = self.keys.get_mut(&k) {
                (buf.seen, buf.late) = (seen, late);
            }
        }
        let mut place: HashMap<usize, (u64, usize)> = HashMap::new();
        for (chunk, idx) in groups {
            let id = self.next_chunk;
            self.next_chunk += 1;
            let cols = cols
                .iter()
                .map(|c| crate::columns::numbers(&chunk, c))
                .collect::<Result<Vec<_>>>()?;
            for (r, i) in idx.iter().enumerate() {
                place.insert(*i, (id, r));
            }
            self.retained.insert(
                id,
                Retained {
                    chunk,
                    cols,
                    remaining: idx.len(),
                },
            );
        }
        for (i, (k, t, a, _, _)) in snap.rows.into_iter().enumerate() {
            let (id, r) = place[&i];
            let entry = self
                .keys
                .entry(k.clone())
                .or_insert_with(|| (Arc::new(k), KeyBuf::default()));
            entry.1.heap.push(Reverse((t, a, id, r)));
        }
        Ok(())
    }
}

/// A chunk rebuilt from a checkpoint and the indices into `Snapshot::rows` of its rows.
type RestoredChunk = (Chunk, Vec<usize>);

/// Frames a checkpoint: the length-prefixed JSON header `snap`, then `rows` (the pending rows
/// in the order of `snap.rows`) as one Arrow IPC stream.
fn encode_checkpoint(snap: &Snapshot, rows: Option<&Chunk>) -> Result<Vec<u8>> {
    let header =
        serde_json::to_vec(snap).map_err(|e| Error::Internal(format!("checkpoint: {e}")))?;
    let mut buf = (header.len() as u64).to_le_bytes().to_vec();
    buf.extend_from_slice(&header);
    if let Some(chunk) = rows {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut buf, &chunk.schema())?;
        w.write(chunk.batch())?;
        w.finish()?;
    }
    Ok(buf)
}

/// Reads a checkpoint written by [`encode_checkpoint`]: the header, and the pending rows
/// regrouped as one chunk per original `(source, seq)` (so provenance survives), each with the
/// indices into `snap.rows` of its rows, in order.
fn decode_checkpoint(bytes: &[u8]) -> Result<(Snapshot, Vec<RestoredChunk>)> {
    let bad = |m: &str| Error::Internal(format!("reorder checkpoint: {m}"));
    let len = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| bad("truncated"))? as usize;
    let header = bytes
        .get(8..8 + len)
        .ok_or_else(|| bad("truncated header"))?;
    let snap: Snapshot = serde_json::from_slice(header).map_err(|e| bad(&e.to_string()))?;
    let body = &bytes[8 + len..];
    if snap.rows.is_empty() {
        return Ok((snap, Vec::new()));
    }
    let reader = arrow_ipc::reader::StreamReader::try_new(body, None)?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b?);
    }
    let batch = arrow_select::concat::concat_batches(
        &batches.first().ok_or_else(|| bad("no rows"))?.schema(),
        &batches,
    )?;
    if batch.num_rows() != snap.rows.len() {
        return Err(bad("row count mismatch"));
    }
    let mut groups: BTreeMap<(SourceId, u64), Vec<u64>> = BTreeMap::new();
    for (i, (_, _, _, s, q)) in snap.rows.iter().enumerate() {
        groups.entry((*s, *q)).or_default().push(i as u64);
    }
    let mut out = Vec::with_capacity(groups.len());
    for ((s, q), idx) in groups {
        let taken = arrow_select::take::take_record_batch(&batch, &UInt64Array::from(idx.clone()))?;
        let chunk = Chunk::new(taken, s, q)?;
        out.push((chunk, idx.into_iter().map(|i| i as usize).collect()));
    }
    Ok((snap, out))
}

/// Rows a key must have before [`ReorderStage::max_late_fraction`] judges its share of late
/// rows: enough that a burst of delayed quotes at a symbol's start cannot stop a run, few
/// enough that a shuffled file stops within its first thousand rows per symbol.
pub const MIN_ROWS_FOR_DISORDER: u64 = 1_000;

/// Configuration of a [`ReorderStage`].
#[derive(Debug, Clone, PartialEq, Serialize)]
struct ReorderConfig {
    key: String,
    ts: String,
    lateness_ns: u128,
    /// `None`: never stop for disorder.
    max_late_fraction: Option<f64>,
}

/// A per-key stage that outputs the same rows sorted by event time within each key, holding
/// rows until the watermark (latest time seen for the key − allowed lateness) passes them;
/// rows behind the watermark on arrival are quarantined as `late`, rows without a time as
/// `bad_timestamp`. With [`ReorderStage::max_late_fraction`], a key whose share of late rows
/// passes the limit (judged once it has [`MIN_ROWS_FOR_DISORDER`] rows) stops the run with
/// [`Error::Disorder`], whose message says to sort the input (`--sort`): a shuffled file
/// otherwise loses nearly all its rows to `late` and the run looks successful. The decision
/// is per key, so it does not depend on chunk size or worker count.
///
/// Within a key the output order does not depend on chunking; how keys interleave across
/// output chunks does.
///
/// ```
/// use std::time::Duration;
/// let s = pipeline_stream::ReorderStage::new("symbol", "ts", Duration::from_millis(5));
/// # use pipeline_core::Stage;
/// assert_eq!(s.name(), "reorder");
/// ```
pub struct ReorderStage {
    config: ReorderConfig,
    buf: sorted::SortedBuffer,
    /// The buffer at the last input start, for a replay (see [`Replay`]): the pending rows'
    /// chunks are shared, not copied.
    replay: Replay<sorted::SortedBuffer>,
}

impl ReorderStage {
    /// Reorders by `ts_col` within each `key_col` value, allowing `lateness`.
    pub fn new(key_col: &str, ts_col: &str, lateness: Duration) -> Self {
        ReorderStage {
            config: ReorderConfig {
                key: key_col.into(),
                ts: ts_col.into(),
                lateness_ns: lateness.as_nanos(),
                max_late_fraction: None,
            },
            buf: sorted::SortedBuffer::new(key_col, ts_col, lateness),
            replay: Replay::default(),
        }
    }

    /// Stops the run ([`Error::Disorder`]) once a key has [`MIN_ROWS_FOR_DISORDER`] rows and
    /// more than `share` of them arrived late (`[preprocessing] max_late_fraction`, default
    /// 0.1); `share >= 1` never stops. Without this call the stage never stops.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = pipeline_stream::ReorderStage::new("symbol", "ts", Duration::from_secs(2))
    ///     .max_late_fraction(0.1);
    /// # let _ = s;
    /// ```
    pub fn max_late_fraction(mut self, share: f64) -> Self {
        self.config.max_late_fraction = (share < 1.0).then_some(share);
        self.buf.set_max_late(share, MIN_ROWS_FOR_DISORDER);
        self
    }
}

impl Stage for ReorderStage {
    fn name(&self) -> &str {
        "reorder"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: self.config.key.clone(),
        }
    }

    fn key(&self) -> StageKey {
        StageKey::of("reorder", &self.config)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        if let Some(c) = self.buf.push(chunk, out)? {
            out.emit(c);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        if let Some(c) = self.buf.drain()? {
            out.emit(c);
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        self.buf.checkpoint().map(Some)
    }

    fn replay_point(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(Some(self.replay.save(self.buf.clone())))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        if Replay::<()>::is_token(state) {
            self.buf = self.replay.get(state)?.clone();
            return Ok(());
        }
        self.buf.restore(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampNanosecondType;
    use arrow_array::{StringArray, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use pipeline_core::run_stage;

    fn chunk(sym: &[&str], ts: &[i64], first_line: u64) -> Chunk {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(sym.to_vec())),
                Arc::new(TimestampNanosecondArray::from(ts.to_vec())),
            ],
        )
        .unwrap();
        Chunk::with_first_line(b, 0, first_line, first_line).unwrap()
    }

    fn times(chunks: &[Chunk]) -> Vec<i64> {
        chunks
            .iter()
            .flat_map(|c| {
                c.column_by_name("ts")
                    .unwrap()
                    .as_primitive::<TimestampNanosecondType>()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn sorts_within_lateness_and_quarantines_later_rows() {
        let mut s = ReorderStage::new("symbol", "ts", Duration::from_nanos(10));
        let input = vec![
            chunk(&["A", "A", "A"], &[100, 95, 120], 2),
            chunk(&["A", "A"], &[105, 111], 5),
        ];
        let (out, em) = run_stage(&mut s, input).unwrap();
        // 105 is behind 120 - 10 = 110, so it is late (line 5); 111 is not.
        assert_eq!(times(&out), vec![95, 100, 111, 120]);
        assert_eq!(em.ledger().quarantined[LATE], 1);
        assert_eq!(em.rejects()[0].line, 5);
    }

    /// Issue #13 case 4: a shuffled file without `--sort` lost 2,996,782 of 3,000,000 rows to
    /// `late` and exited 0. With a late-row limit the stage stops early, naming `--sort`, at
    /// the same row whatever the chunk size; an ordered input with a few late rows passes.
    #[test]
    fn a_shuffled_input_stops_early_with_a_message_naming_sort() {
        let n = 5_000usize;
        let mut ts: Vec<i64> = (0..n as i64).map(|i| i * 1_000_000_000).collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in (1..n).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ts.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let sym = vec!["A"; n];
        let mut errors = Vec::new();
        for size in [1, 7, 1000] {
            let mut s =
                ReorderStage::new("symbol", "ts", Duration::from_secs(2)).max_late_fraction(0.1);
            let input: Vec<Chunk> = (0..n)
                .step_by(size)
                .map(|o| {
                    let e = (o + size).min(n);
                    chunk(&sym[o..e], &ts[o..e], o as u64 + 2)
                })
                .collect();
            let err = run_stage(&mut s, input).expect_err("disorder stops the run");
            assert!(matches!(err, Error::Disorder(_)), "{err}");
            assert!(err.stops_run());
            errors.push(err.to_string());
        }
        assert!(errors[0].contains("--sort"), "{}", errors[0]);
        assert!(
            errors[0].contains("of the first 1000 rows of `A`"),
            "{}",
            errors[0]
        );
        assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
        // In order but for every 25th row 5 s late: 4 % late, under the limit.
        let ts: Vec<i64> = (0..n as i64)
            .map(|i| i * 1_000_000_000 - if i % 25 == 24 { 5_000_000_000 } else { 0 })
            .collect();
        let mut s =
            ReorderStage::new("symbol", "ts", Duration::from_secs(2)).max_late_fraction(0.1);
        let (_, em) = run_stage(&mut s, [chunk(&sym, &ts, 2)]).unwrap();
        assert_eq!(em.ledger().quarantined[LATE], 200);
        // Without the limit the shuffled input is quarantined, not stopped (the default).
        let mut s = ReorderStage::new("symbol", "ts", Duration::from_secs(2));
        let mut t2 = ts.clone();
        t2.reverse();
        assert!(run_stage(&mut s, [chunk(&sym, &t2, 2)]).is_ok());
    }

    #[test]
    fn checkpoint_round_trips_pending_rows() {
        let mut a = ReorderStage::new("symbol", "ts", Duration::from_nanos(50));
        let (first, _) = {
            let mut em = Emitter::default();
            a.process(chunk(&["A", "B", "A"], &[100, 7, 90], 1), &mut em)
                .unwrap();
            (em.take_chunks(), em)
        };
        let state = a.checkpoint().unwrap().unwrap();
        let mut b = ReorderStage::new("symbol", "ts", Duration::from_nanos(50));
        b.restore(&state).unwrap();
        let (rest_a, _) = run_stage(&mut a, [chunk(&["A"], &[200], 4)]).unwrap();
        let (rest_b, _) = run_stage(&mut b, [chunk(&["A"], &[200], 4)]).unwrap();
        assert!(first.is_empty());
        assert_eq!(times(&rest_a), times(&rest_b));
        assert_eq!(times(&rest_b), vec![90, 100, 200, 7]);
        let lines: Vec<u64> = rest_b
            .iter()
            .flat_map(|c| c.lines().values().to_vec())
            .collect();
        assert_eq!(lines, vec![3, 1, 4, 2]);
    }

    #[test]
    fn a_replay_point_takes_the_buffer_back() {
        let mut a = ReorderStage::new("symbol", "ts", Duration::from_nanos(50));
        let mut em = Emitter::default();
        a.process(chunk(&["A", "B", "A"], &[100, 7, 90], 1), &mut em)
            .unwrap();
        let point = a.replay_point().unwrap().unwrap();
        // A failed attempt releases rows and holds others; the restore forgets all of it.
        let mut failed = Emitter::default();
        a.process(chunk(&["A", "B"], &[400, 300], 4), &mut failed)
            .unwrap();
        assert!(!failed.take_chunks().is_empty());
        a.restore(&point).unwrap();
        let (rest, _) = run_stage(&mut a, [chunk(&["A"], &[200], 4)]).unwrap();
        assert_eq!(times(&rest), vec![90, 100, 200, 7]);
        let mut other = ReorderStage::new("symbol", "ts", Duration::from_nanos(50));
        assert!(other.restore(&point).is_err());
    }
}
