//! The reorder buffer behind [`super::ReorderStage`]: per key, pending rows are kept as one
//! run sorted by `(ts, arrival)`. In-order rows are appended; a row older than its key's last
//! pending row is inserted at its place (binary search). Each chunk maps its dictionary values
//! to key slots once, and each output chunk is assembled with a single `take` or `interleave`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, RecordBatch, UInt32Array};
use arrow_schema::{DataType, TimeUnit};
use pipeline_core::{Chunk, Emitter, Error, Reject, Result, SourceId};

use super::{BAD_TIMESTAMP, Key, LATE, Snapshot, decode_checkpoint, encode_checkpoint};
use crate::columns::row_keys;

/// A pending row: its time, global arrival number, retained chunk id and row in that chunk.
#[derive(Debug, Clone, Copy)]
struct Row {
    ts: i64,
    arrival: u64,
    chunk: u64,
    row: u32,
}

/// A gathered chunk and, per held chunk used (by position in `held`), how many rows it gave.
type Gathered = (Chunk, Vec<(usize, usize)>);

/// One key's state.
#[derive(Clone)]
struct Slot {
    key: Key,
    max_ts: Option<i64>,
    /// Pending rows sorted by `(ts, arrival)`.
    pending: VecDeque<Row>,
    /// `1 +` the id of the last chunk that touched this key (0: none).
    mark: u64,
    /// Rows with a time seen for this key, and how many of them were late.
    seen: u64,
    late: u64,
}

/// A chunk some of whose rows are still pending.
#[derive(Clone)]
struct Held {
    id: u64,
    chunk: Chunk,
    remaining: usize,
}

/// Pending rows per key, each key's rows sorted by `(ts, arrival)`.
#[derive(Clone)]
pub(crate) struct SortedBuffer {
    key_col: String,
    ts_col: String,
    lateness: i64,
    index: HashMap<Key, usize>,
    slots: Vec<Slot>,
    /// Retained chunks, ids ascending.
    held: VecDeque<Held>,
    next_chunk: u64,
    arrival: u64,
    /// `(share, rows)`: stop with [`Error::Disorder`] once a key has `rows` rows and more
    /// than `share` of them were late. `None`: never stop.
    max_late: Option<(f64, u64)>,
}

impl SortedBuffer {
    pub fn new(key_col: &str, ts_col: &str, lateness: Duration) -> Self {
        SortedBuffer {
            key_col: key_col.to_string(),
            ts_col: ts_col.to_string(),
            lateness: i64::try_from(lateness.as_nanos()).unwrap_or(i64::MAX),
            index: HashMap::new(),
            slots: Vec::new(),
            held: VecDeque::new(),
            next_chunk: 0,
            arrival: 0,
            max_late: None,
        }
    }

    /// Stops the run once a key has `min_rows` rows and more than `share` of them were late.
    pub fn set_max_late(&mut self, share: f64, min_rows: u64) {
        self.max_late = (share < 1.0).then_some((share, min_rows.max(1)));
    }

    /// The error that stops a run whose key `slot` is too far out of order.
    fn disorder(&self, slot: &Slot, chunk: &Chunk, row: usize) -> Error {
        let key = slot.key.as_deref().unwrap_or("<null>");
        Error::Disorder(format!(
            "input #{} line {}: {} of the first {} rows of `{}` arrived more than the allowed lateness ({} ms) behind its latest time: the input is not in time order (shuffled, or sorted by something else). Rerun with --sort (or [input] sort = true) to sort each file by time first, or raise [preprocessing] allowed_lateness_ms or max_late_fraction",
            chunk.source(),
            chunk.line(row),
            slot.late,
            slot.seen,
            key,
            self.lateness / 1_000_000
        ))
    }

    fn slot(&mut self, key: Key) -> usize {
        if let Some(&s) = self.index.get(&key) {
            return s;
        }
        let s = self.slots.len();
        self.slots.push(Slot {
            key: key.clone(),
            max_ts: None,
            pending: VecDeque::new(),
            mark: 0,
            seen: 0,
            late: 0,
        });
        self.index.insert(key, s);
        s
    }

    /// The key slot of every row of `chunk`; dictionary values are looked up once.
    fn row_slots(&mut self, chunk: &Chunk) -> Result<Vec<u32>> {
        let col = chunk
            .column_by_name(&self.key_col)
            .ok_or_else(|| Error::Schema(format!("column `{}` is missing", self.key_col)))?;
        let mut null_slot = None;
        if let DataType::Dictionary(k, v) = col.data_type()
            && **k == DataType::Int32
            && **v == DataType::Utf8
        {
            let dict = col.as_dictionary::<Int32Type>();
            let values = dict.values().as_string::<i32>();
            let map: Vec<u32> = (0..values.len())
                .map(|i| self.slot(Some(values.value(i).to_string())) as u32)
                .collect();
            let keys = dict.keys().values();
            let mut out = Vec::with_capacity(keys.len());
            for (i, &k) in keys.iter().enumerate() {
                if dict.is_null(i) {
                    let s = *null_slot.get_or_insert_with(|| self.slot(None) as u32);
                    out.push(s);
                } else {
                    let s = usize::try_from(k).ok().and_then(|k| map.get(k));
                    out.push(*s.ok_or_else(|| {
                        Error::Internal(format!("dictionary key {k} out of range"))
                    })?);
                }
            }
            return Ok(out);
        }
        let keys = row_keys(chunk, &self.key_col)?;
        let map: Vec<u32> = keys
            .names
            .into_iter()
            .map(|n| self.slot(Some(n)) as u32)
            .collect();
        let mut out = Vec::with_capacity(keys.rows.len());
        for k in keys.rows {
            out.push(match k {
                Some(k) => map[k],
                None => *null_slot.get_or_insert_with(|| self.slot(None) as u32),
            });
        }
        Ok(out)
    }

    /// Adds a chunk's rows (quarantining late and time-less ones) and returns the rows now
    /// behind the watermark as one chunk: for the keys this chunk touched, in order of first
    /// appearance, each key's rows in `(ts, arrival)` order.
    pub fn push(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<Option<Chunk>> {
        let slots = self.row_slots(&chunk)?;
        let col = chunk
            .column_by_name(&self.ts_col)
            .ok_or_else(|| Error::Schema(format!("column `{}` is missing", self.ts_col)))?;
        let ts: &[i64] = match col.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                col.as_primitive::<TimestampNanosecondType>().values()
            }
            DataType::Int64 => col.as_primitive::<Int64Type>().values(),
            other => {
                return Err(Error::Schema(format!(
                    "time column `{}` must be Timestamp(ns) or Int64, found {other}",
                    self.ts_col
                )));
            }
        };
        let nulls = col.nulls().filter(|n| n.null_count() > 0);
        let id = self.next_chunk;
        self.next_chunk += 1;
        let mut touched: Vec<usize> = Vec::new();
        let mut pending = 0usize;
        for (row, (&s, &t)) in slots.iter().zip(ts).enumerate() {
            if nulls.is_some_and(|n| n.is_null(row)) {
                out.quarantine_one(Reject::quarantined(
                    chunk.source(),
                    chunk.line(row),
                    BAD_TIMESTAMP,
                    format!("column `{}` is empty", self.ts_col),
                    None,
                ));
                continue;
            }
            let slot = &mut self.slots[s as usize];
            slot.seen += 1;
            match slot.max_ts {
                Some(m) if t < m.saturating_sub(self.lateness) => {
                    slot.late += 1;
                    out.quarantine_one(Reject::quarantined(
                        chunk.source(),
                        chunk.line(row),
                        LATE,
                        format!(
                            "event time {t} ns is {} ns behind the latest {m} ns (allowed lateness {} ns)",
                            m - t,
                            self.lateness
                        ),
                        // No row text: a shuffled file has millions of late rows, and
                        // rendering them doubled such a run's time (7.5 s against 3.9 s on
                        // 3M rows); the quarantine's file:line finds the row.
                        None,
                    ));
                    if let Some((share, rows)) = self.max_late
                        && slot.seen >= rows
                        && slot.late as f64 > share * slot.seen as f64
                    {
                        let slot = &self.slots[s as usize];
                        return Err(self.disorder(slot, &chunk, row));
                    }
                    continue;
                }
                Some(m) if t <= m => {}
                _ => slot.max_ts = Some(t),
            }
            let r = Row {
                ts: t,
                arrival: self.arrival,
                chunk: id,
                row: row as u32,
            };
            self.arrival += 1;
            pending += 1;
            match slot.pending.back() {
                Some(last) if last.ts > t => {
                    let at = slot.pending.partition_point(|p| p.ts <= t);
                    slot.pending.insert(at, r);
                }
                _ => slot.pending.push_back(r),
            }
            if slot.mark != id + 1 {
                slot.mark = id + 1;
                touched.push(s as usize);
            }
        }
        let (source, seq) = (chunk.source(), chunk.seq());
        if pending > 0 {
            self.held.push_back(Held {
                id,
                chunk,
                remaining: pending,
            });
        }
        let mut released = Vec::new();
        for s in touched {
            let slot = &mut self.slots[s];
            let wm = slot
                .max_ts
                .map_or(i64::MIN, |m| m.saturating_sub(self.lateness));
            let n = slot.pending.partition_point(|p| p.ts <= wm);
            released.extend(slot.pending.drain(..n));
        }
        self.release(&released, source, seq)
    }

    /// Builds the chunk of `rows`, then forgets them and drops chunks with nothing pending.
    fn release(&mut self, rows: &[Row], source: SourceId, seq: u64) -> Result<Option<Chunk>> {
        let Some((chunk, counts)) = self.gather(rows, source, seq)? else {
            return Ok(None);
        };
        for (pos, n) in counts {
            self.held[pos].remaining -= n;
        }
        self.held.retain(|h| h.remaining > 0);
        Ok(Some(chunk))
    }

    /// Releases every pending row (end of input), keys in sorted order, as one chunk.
    pub fn drain(&mut self) -> Result<Option<Chunk>> {
        let mut order: Vec<usize> = (0..self.slots.len()).collect();
        order.sort_by(|&a, &b| self.slots[a].key.cmp(&self.slots[b].key));
        let mut released = Vec::new();
        for s in order {
            released.extend(self.slots[s].pending.drain(..));
        }
        let Some(first) = released.first() else {
            return Ok(None);
        };
        let (source, seq) = self
            .held
            .iter()
            .find(|h| h.id == first.chunk)
            .map_or((0, 0), |h| (h.chunk.source(), h.chunk.seq()));
        self.release(&released, source, seq)
    }

    /// Builds one chunk holding `rows` in order, with how many rows it took from each held
    /// chunk (by position in `held`).
    fn gather(&self, rows: &[Row], source: SourceId, seq: u64) -> Result<Option<Gathered>> {
        if rows.is_empty() {
            return Ok(None);
        }
        // Position in `held` of each row's chunk, then the batches actually used.
        let mut used: Vec<usize> = vec![usize::MAX; self.held.len()];
        let mut batches: Vec<&RecordBatch> = Vec::new();
        let mut counts: Vec<usize> = Vec::new();
        let mut pairs: Vec<(usize, usize)> = Vec::with_capacity(rows.len());
        let mut last = (u64::MAX, 0usize);
        for r in rows {
            let pos = if r.chunk == last.0 {
                last.1
            } else {
                let pos = self
                    .held
                    .binary_search_by_key(&r.chunk, |h| h.id)
                    .map_err(|_| {
                        Error::Internal(format!("reorder buffer lost chunk {}", r.chunk))
                    })?;
                last = (r.chunk, pos);
                pos
            };
            if used[pos] == usize::MAX {
                used[pos] = batches.len();
                batches.push(self.held[pos].chunk.batch());
                counts.push(0);
            }
            counts[used[pos]] += 1;
            pairs.push((used[pos], r.row as usize));
        }
        let batch = if let [only] = batches.as_slice() {
            if pairs.len() == only.num_rows() && pairs.iter().enumerate().all(|(i, p)| p.1 == i) {
                (*only).clone()
            } else {
                let idx = UInt32Array::from_iter_values(pairs.iter().map(|p| p.1 as u32));
                arrow_select::take::take_record_batch(only, &idx)?
            }
        } else {
            arrow_select::interleave::interleave_record_batch(&batches, &pairs)?
        };
        let chunk = Chunk::new(batch, source, seq)?;
        let taken = used
            .iter()
            .enumerate()
            .filter(|(_, u)| **u != usize::MAX)
            .map(|(pos, &u)| (pos, counts[u]))
            .collect();
        Ok(Some((chunk, taken)))
    }

    /// Serialises pending rows and watermarks (the format of [`super::Reorderer`]'s).
    pub fn checkpoint(&self) -> Result<Vec<u8>> {
        let mut order: Vec<usize> = (0..self.slots.len()).collect();
        order.sort_by(|&a, &b| self.slots[a].key.cmp(&self.slots[b].key));
        let mut snap = Snapshot {
            max_ts: Vec::new(),
            rows: Vec::new(),
            arrival: self.arrival,
            late: Vec::new(),
        };
        let mut rows = Vec::new();
        for s in order {
            let slot = &self.slots[s];
            let Some(m) = slot.max_ts else { continue };
            snap.max_ts.push((slot.key.clone(), m));
            snap.late.push((slot.key.clone(), slot.seen, slot.late));
            for r in &slot.pending {
                let h = self
                    .held
                    .binary_search_by_key(&r.chunk, |h| h.id)
                    .map(|p| &self.held[p])
                    .map_err(|_| {
                        Error::Internal(format!("reorder buffer lost chunk {}", r.chunk))
                    })?;
                snap.rows.push((
                    slot.key.clone(),
                    r.ts,
                    r.arrival,
                    h.chunk.source(),
                    h.chunk.seq(),
                ));
                rows.push(*r);
            }
        }
        let chunk = self.gather(&rows, 0, 0)?.map(|(c, _)| c);
        encode_checkpoint(&snap, chunk.as_ref())
    }

    /// Restores state written by [`SortedBuffer::checkpoint`].
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (snap, groups) = decode_checkpoint(bytes)?;
        self.index.clear();
        self.slots.clear();
        self.held.clear();
        self.arrival = snap.arrival;
        for (k, m) in snap.max_ts {
            let s = self.slot(k);
            self.slots[s].max_ts = Some(m);
        }
        for (k, seen, late) in snap.late {
            let s = self.slot(k);
            (self.slots[s].seen, self.slots[s].late) = (seen, late);
        }
        let mut place: Vec<(u64, u32)> = vec![(0, 0); snap.rows.len()];
        for (chunk, idx) in groups {
            let id = self.next_chunk;
            self.next_chunk += 1;
            for (r, &i) in idx.iter().enumerate() {
                if let Some(p) = place.get_mut(i) {
                    *p = (id, r as u32);
                }
            }
            self.held.push_back(Held {
                id,
                chunk,
                remaining: idx.len(),
            });
        }
        let mut rows: Vec<(Key, Row)> = snap
            .rows
            .into_iter()
            .zip(place)
            .map(|((k, ts, arrival, _, _), (chunk, row))| {
                (
                    k,
                    Row {
                        ts,
                        arrival,
                        chunk,
                        row,
                    },
                )
            })
            .collect();
        rows.sort_by(|a, b| (&a.0, a.1.ts, a.1.arrival).cmp(&(&b.0, b.1.ts, b.1.arrival)));
        for (k, r) in rows {
            let s = self.slot(k);
            self.slots[s].pending.push_back(r);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, DictionaryArray, Int32Array, StringArray, TimestampNanosecondArray,
    };
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::reorder::Reorderer;

    /// A seeded generator (core's SplitMix64).
    struct Rng(pipeline_core::SplitMix64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0.next_u64() % n
        }
    }

    /// Random chunks: keys A/B/C or null (as a dictionary or plain UTF-8), times mostly
    /// rising with jitter, ties and some nulls.
    fn input(rng: &mut Rng, dict: bool) -> Vec<Chunk> {
        let n = 1 + rng.below(80) as usize;
        let mut keys = Vec::new();
        let mut ts = Vec::new();
        for i in 0..n {
            keys.push(match rng.below(7) {
                0 => None,
                k => Some(["A", "B", "C"][k as usize % 3]),
            });
            ts.push(if rng.below(15) == 0 {
                None
            } else {
                Some(i as i64 * 3 - rng.below(14) as i64)
            });
        }
        let key_type = if dict {
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        } else {
            DataType::Utf8
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", key_type, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ]));
        let mut out = Vec::new();
        let mut at = 0;
        while at < n {
            let len = (1 + rng.below(12) as usize).min(n - at);
            let k = &keys[at..at + len];
            let key_col: ArrayRef = if dict {
                // Each chunk has its own dictionary, in its own order.
                let mut values: Vec<&str> = Vec::new();
                let idx: Vec<Option<i32>> = k
                    .iter()
                    .map(|k| {
                        k.map(|k| {
                            let p = values.iter().position(|v| *v == k).unwrap_or_else(|| {
                                values.push(k);
                                values.len() - 1
                            });
                            p as i32
                        })
                    })
                    .collect();
                Arc::new(
                    DictionaryArray::<Int32Type>::try_new(
                        Int32Array::from(idx),
                        Arc::new(StringArray::from(values)),
                    )
                    .unwrap(),
                )
            } else {
                Arc::new(StringArray::from(k.to_vec()))
            };
            let b = RecordBatch::try_new(
                schema.clone(),
                vec![
                    key_col,
                    Arc::new(TimestampNanosecondArray::from(ts[at..at + len].to_vec())),
                ],
            )
            .unwrap();
            out.push(Chunk::with_first_line(b, 1, out.len() as u64, at as u64 + 2).unwrap());
            at += len;
        }
        out
    }

    /// Runs the general reorder buffer the way `ReorderStage` used to.
    fn general(r: &mut Reorderer, chunk: Chunk, em: &mut Emitter) -> Option<Chunk> {
        let (source, seq) = (chunk.source(), chunk.seq());
        let rows = r.push(chunk, &[], em).unwrap();
        let c = r.gather(&rows, source, seq).unwrap();
        r.done(&rows);
        c
    }

    fn general_drain(r: &mut Reorderer) -> Option<Chunk> {
        let rows = r.drain();
        let (source, seq) = rows
            .first()
            .and_then(|x| r.retained(x.chunk))
            .map_or((0, 0), |e| (e.chunk.source(), e.chunk.seq()));
        let c = r.gather(&rows, source, seq).unwrap();
        r.done(&rows);
        c
    }

    fn same(a: &Option<Chunk>, b: &Option<Chunk>) {
        match (a, b) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                assert_eq!(a.batch(), b.batch());
                assert_eq!((a.source(), a.seq()), (b.source(), b.seq()));
            }
            _ => panic!("one released rows, the other not: {a:?} vs {b:?}"),
        }
    }

    /// Output chunks, rejects and checkpoints match the general buffer's exactly, and a
    /// buffer restored mid-stream continues exactly like the original.
    #[test]
    fn matches_the_general_buffer() {
        let mut rng = Rng(pipeline_core::SplitMix64::new(7));
        for case in 0..300 {
            let dict = case % 2 == 0;
            let lateness = Duration::from_nanos(rng.below(12));
            let chunks = input(&mut rng, dict);
            let cut = rng.below(chunks.len() as u64 + 1) as usize;
            let mut old = Reorderer::new("symbol", "ts", lateness);
            let mut new = SortedBuffer::new("symbol", "ts", lateness);
            let (mut eo, mut en) = (Emitter::default(), Emitter::default());
            let mut restored = None;
            for (i, c) in chunks.into_iter().enumerate() {
                if i == cut {
                    let state = new.checkpoint().unwrap();
                    assert_eq!(state, old.checkpoint().unwrap(), "case {case}");
                    let mut r = SortedBuffer::new("symbol", "ts", lateness);
                    r.restore(&state).unwrap();
                    restored = Some((r, Emitter::default()));
                }
                let want = general(&mut old, c.clone(), &mut eo);
                if let Some((r, e)) = restored.as_mut() {
                    same(&r.push(c.clone(), e).unwrap(), &want);
                }
                same(&new.push(c, &mut en).unwrap(), &want);
            }
            let want = general_drain(&mut old);
            same(&new.drain().unwrap(), &want);
            if let Some((mut r, _)) = restored {
                same(&r.drain().unwrap(), &want);
            }
            assert_eq!(en.rejects(), eo.rejects(), "case {case}");
            assert_eq!(en.ledger(), eo.ledger(), "case {case}");
        }
    }

    #[test]
    fn ties_keep_arrival_order_and_late_inserts_land_in_place() {
        let mut b = SortedBuffer::new("symbol", "ts", Duration::from_nanos(100));
        let mut em = Emitter::default();
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("ts", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["A"; 5])),
                Arc::new(arrow_array::Int64Array::from(vec![10, 30, 20, 20, 5])),
            ],
        )
        .unwrap();
        let c = Chunk::with_first_line(batch, 0, 0, 1).unwrap();
        assert!(b.push(c, &mut em).unwrap().is_none());
        let out = b.drain().unwrap().unwrap();
        assert_eq!(out.lines().values().to_vec(), vec![5, 1, 3, 4, 2]);
    }
}
