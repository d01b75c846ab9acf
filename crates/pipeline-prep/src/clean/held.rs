//! Row holding for look-ahead stages (interpolation, same-timestamp aggregation, centred
//! windows): chunks are kept while any of their rows is undecided, and decided rows are
//! released in the order the stage decides them, with optional value overrides.
//!
//! Within one symbol, rows are released in input order; rows of different symbols may
//! interleave differently for different chunkings (as they do for different worker counts),
//! so invariance is stated per symbol.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field};
use pipeline_core::{Chunk, Emitter, Error, Result, SourceId};
use serde::{Deserialize, Serialize};

/// A row held by a look-ahead stage: the held chunk's id and the row within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RowRef {
    /// Held chunk id.
    pub(crate) chunk: u64,
    /// Row index in that chunk.
    pub(crate) row: u32,
}

#[derive(Debug, Clone)]
struct HeldChunk {
    chunk: Chunk,
    pending: usize,
}

/// Holds chunks until all their rows are released or removed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Held {
    chunks: HashMap<u64, HeldChunk>,
    next_id: u64,
    out: Vec<RowRef>,
    overrides: Vec<(usize, String, f64)>,
    flag_col: Option<String>,
    flags: Vec<bool>,
}

/// What [`Held`] writes into a checkpoint.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HeldState {
    next_id: u64,
    chunks: Vec<(u64, SourceId, u64, usize, Hex)>,
}

/// Bytes serialised as a hex string: half the size of serde_json's array of numbers.
#[derive(Debug)]
pub(crate) struct Hex(Vec<u8>);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut t = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            t.push(char::from(DIGITS[usize::from(b >> 4)]));
            t.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        s.serialize_str(&t)
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        let nib = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(serde::de::Error::custom("bad hex digit in checkpoint")),
        };
        let b = t.as_bytes();
        if b.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length in checkpoint"));
        }
        b.chunks(2)
            .map(|p| Ok((nib(p[0])? << 4) | nib(p[1])?))
            .collect::<std::result::Result<Vec<u8>, D::Error>>()
            .map(Hex)
    }
}

impl Held {
    /// Holds `chunk` (all its rows pending) and returns its id.
    pub(crate) fn add(&mut self, chunk: Chunk) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let pending = chunk.num_rows();
        if pending > 0 {
            self.chunks.insert(id, HeldChunk { chunk, pending });
        }
        id
    }

    /// The held chunk `id`.
    pub(crate) fn chunk(&self, id: u64) -> Result<&Chunk> {
        self.chunks
            .get(&id)
            .map(|h| &h.chunk)
            .ok_or_else(|| Error::Internal(format!("held chunk {id} is gone")))
    }

    /// Releases `r` unchanged.
    pub(crate) fn keep(&mut self, r: RowRef) {
        self.out.push(r);
        self.flags.push(false);
    }

    /// Makes every flushed chunk carry a boolean column `name` (see [`Held::keep_flagged`]).
    pub(crate) fn set_flag_column(&mut self, name: String) {
        self.flag_col = Some(name);
    }

    /// Releases `r` with its flag set to `flag`.
    pub(crate) fn keep_flagged(&mut self, r: RowRef, flag: bool) {
        self.out.push(r);
        self.flags.push(flag);
    }

    /// Releases `r` with `column` set to `value` (ignored where the column is absent).
    pub(crate) fn keep_with(&mut self, r: RowRef, set: &[(String, f64)]) {
        let i = self.out.len();
        self.out.push(r);
        self.flags.push(false);
        for (c, v) in set {
            self.overrides.push((i, c.clone(), *v));
        }
    }

    /// Removes `r`, recording it under `rule` (with the row rendered as its raw text).
    pub(crate) fn remove(&mut self, r: RowRef, rule: &str, out: &mut Emitter) -> Result<()> {
        self.remove_with(r, rule, String::new(), out)
    }

    /// Removes `r` under `rule` with `detail` (the rule's numbers) in its reject.
    pub(crate) fn remove_with(
        &mut self,
        r: RowRef,
        rule: &str,
        detail: String,
        out: &mut Emitter,
    ) -> Result<()> {
        let h = self
            .chunks
            .get(&r.chunk)
            .ok_or_else(|| Error::Internal(format!("held chunk {} is gone", r.chunk)))?;
        out.remove_row(rule, &h.chunk, r.row as usize, detail);
        self.release(r.chunk);
        Ok(())
    }

    /// Drops `r` silently: the caller accounts for it (e.g. with [`Emitter::aggregate`]).
    pub(crate) fn absorb(&mut self, r: RowRef) {
        self.release(r.chunk);
    }

    fn release(&mut self, id: u64) {
        if let Some(h) = self.chunks.get_mut(&id) {
            h.pending = h.pending.saturating_sub(1);
            if h.pending == 0 {
                self.chunks.remove(&id);
            }
        }
    }

    /// Emits the released rows as chunks (one per run of equal source and schema).
    pub(crate) fn flush(&mut self, out: &mut Emitter) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.out);
        let overrides = std::mem::take(&mut self.overrides);
        let flags = std::mem::take(&mut self.flags);
        let mut start = 0;
        let mut ov = 0;
        while start < rows.len() {
            let first = self.chunk(rows[start].chunk)?;
            let (source, schema, seq) = (first.source(), first.schema(), first.seq());
            let mut end = start + 1;
            while end < rows.len() {
                let c = self.chunk(rows[end].chunk)?;
                if c.source() != source || c.schema() != schema {
                    break;
                }
                end += 1;
            }
            let run = &rows[start..end];
            let mut ids: Vec<u64> = run.iter().map(|r| r.chunk).collect();
            ids.sort_unstable();
            ids.dedup();
            let batches: Vec<&RecordBatch> = ids
                .iter()
                .map(|id| self.chunk(*id).map(|c| c.batch()))
                .collect::<Result<_>>()?;
            let idx: Vec<(usize, usize)> = run
                .iter()
                .map(|r| (ids.binary_search(&r.chunk).unwrap_or(0), r.row as usize))
                .collect();
            let mut batch = arrow_select::interleave::interleave_record_batch(&batches, &idx)?;
            let ov_end = overrides[ov..]
                .iter()
                .position(|o| o.0 >= end)
                .map_or(overrides.len(), |p| ov + p);
            if ov < ov_end {
                batch = apply_overrides(batch, &overrides[ov..ov_end], start)?;
            }
            ov = ov_end;
            let mut chunk = Chunk::new(batch, source, seq)?;
            if let Some(name) = &self.flag_col {
                let f: arrow_array::BooleanArray =
                    flags[start..end].iter().map(|b| Some(*b)).collect();
                chunk = chunk.with_columns(vec![(
                    Field::new(name, DataType::Boolean, false),
                    Arc::new(f) as ArrayRef,
                )])?;
            }
            out.emit(chunk);
            start = end;
        }
        for r in rows {
            self.release(r.chunk);
        }
        Ok(())
    }

    /// Serialises the held chunks (call after [`Held::flush`]).
    pub(crate) fn state(&self) -> Result<HeldState> {
        let mut chunks: Vec<_> = self
            .chunks
            .iter()
            .map(|(id, h)| {
                let mut buf = Vec::new();
                {
                    let mut w =
                        arrow_ipc::writer::StreamWriter::try_new(&mut buf, &h.chunk.schema())?;
                    w.write(h.chunk.batch())?;
                    w.finish()?;
                }
                Ok((*id, h.chunk.source(), h.chunk.seq(), h.pending, Hex(buf)))
            })
            .collect::<Result<_>>()?;
        chunks.sort_by_key(|c| c.0);
        Ok(HeldState {
            next_id: self.next_id,
            chunks,
        })
    }

    /// Rebuilds from [`Held::state`], keeping the flag column setting.
    pub(crate) fn restore(&mut self, s: HeldState) -> Result<()> {
        let flag_col = self.flag_col.take();
        *self = Held::from_state(s)?;
        self.flag_col = flag_col;
        Ok(())
    }

    /// Rebuilds from [`Held::state`].
    pub(crate) fn from_state(s: HeldState) -> Result<Self> {
        let mut chunks = HashMap::new();
        for (id, source, seq, pending, buf) in s.chunks {
            let mut r =
                arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(buf.0), None)?;
            let batch = r
                .next()
                .ok_or_else(|| Error::Internal("empty held chunk in checkpoint".into()))??;
            chunks.insert(
                id,
                HeldChunk {
                    chunk: Chunk::new(batch, source, seq)?,
                    pending,
                },
            );
        }
        Ok(Held {
            chunks,
            next_id: s.next_id,
            ..Held::default()
        })
    }
}

fn apply_overrides(
    batch: RecordBatch,
    ov: &[(usize, String, f64)],
    base: usize,
) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    let mut names: Vec<&str> = ov.iter().map(|o| o.1.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let Some((ci, _)) = schema.column_with_name(name) else {
            continue;
        };
        let mut vals: Vec<Option<f64>> = match columns[ci].data_type() {
            DataType::Float64 => columns[ci]
                .as_any()
                .downcast_ref::<Float64Array>()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            _ => {
                let a = super::cols::to_f64_array(&columns[ci], name)?;
                a.iter().collect()
            }
        };
        for (row, c, v) in ov {
            let (row, v) = (*row, *v);
            if c == name
                && let Some(slot) = vals.get_mut(row - base)
            {
                *slot = Some(v);
            }
        }
        columns[ci] = Arc::new(Float64Array::from(vals));
        fields[ci] = Arc::new(Field::new(name, DataType::Float64, true));
    }
    let schema = Arc::new(arrow_schema::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ));
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use arrow_array::Float64Array;
    use arrow_schema::Schema;

    use super::*;

    fn chunk(source: SourceId, first_line: u64, px: &[f64]) -> Chunk {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "price",
            DataType::Float64,
            true,
        )]));
        let b =
            RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(px.to_vec()))]).unwrap();
        Chunk::with_first_line(b, source, 0, first_line).unwrap()
    }

    #[test]
    fn releases_in_decision_order_with_overrides_and_frees_chunks() {
        let mut h = Held::default();
        let a = h.add(chunk(0, 10, &[1.0, 2.0]));
        let b = h.add(chunk(0, 20, &[3.0]));
        let mut out = Emitter::default();
        h.keep(RowRef { chunk: b, row: 0 });
        h.keep_with(RowRef { chunk: a, row: 1 }, &[("price".into(), 9.0)]);
        h.remove(RowRef { chunk: a, row: 0 }, "rule", &mut out)
            .unwrap();
        h.flush(&mut out).unwrap();
        let c = &out.chunks()[0];
        assert_eq!(c.lines().values().to_vec(), vec![20, 11]);
        let p = c.column_by_name("price").unwrap();
        let p = p.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(p.values().to_vec(), vec![3.0, 9.0]);
        assert_eq!(out.rejects()[0].line, 10);
        assert!(h.chunks.is_empty(), "every row decided: nothing held");
    }

    #[test]
    fn sources_are_never_mixed_in_one_chunk_and_state_round_trips() {
        let mut h = Held::default();
        let a = h.add(chunk(0, 1, &[1.0]));
        let b = h.add(chunk(1, 1, &[2.0, 4.0]));
        h.keep(RowRef { chunk: a, row: 0 });
        h.keep(RowRef { chunk: b, row: 0 });
        let mut out = Emitter::default();
        h.flush(&mut out).unwrap();
        let sources: Vec<SourceId> = out.chunks().iter().map(|c| c.source()).collect();
        assert_eq!(sources, vec![0, 1]);
        // Row 1 of `b` is still held; a restored copy can release it.
        let mut r = Held::from_state(h.state().unwrap()).unwrap();
        r.keep(RowRef { chunk: b, row: 1 });
        let mut out = Emitter::default();
        r.flush(&mut out).unwrap();
        assert_eq!(out.chunks()[0].line(0), 2);
        assert_eq!(out.chunks()[0].source(), 1);
    }
}
