//! De-duplication within a symbol's current timestamp.

use arrow_array::BooleanArray;
use pipeline_core::{Chunk, Emitter, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use super::cols::{Slots, data_columns, ts_raw};
use super::rowhash::RowHasher;

/// Configuration of [`Dedupe`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupeConfig {
    /// Columns that define a duplicate. Empty (the default) means every column except
    /// `_line` (rule `dedupe_exact`); otherwise rule `dedupe_key`. Absent key columns are
    /// ignored; when none is present the stage passes rows through.
    pub key: Vec<String>,
}

/// Removes repeated rows, keeping the first occurrence.
///
/// Rows are duplicates when they have the same symbol and equal values in the key columns
/// (`dedupe_exact`: all columns but `_line`; `dedupe_key`: the configured key). Without a
/// configured key, two exceptions follow what the rows are:
/// * order-book messages (a non-null `event_type`) are never duplicates: equal messages at
///   one timestamp are distinct real events (LOBSTER's AAPL sample has 182 byte-identical
///   rows: hidden executions of one sweep, which must all count);
/// * rows with an identity (a non-null `id`: a trade id or sequence number) are duplicates
///   when their ids are equal (rule `dedupe_id`), whatever their other columns say.
///
/// Rows without either are compared on all their values. That is wrong for feeds that
/// legitimately print identical trades at one timestamp without an id (two fills of the same
/// size at the same price in the same nanosecond): de-duplication then merges real trades,
/// so turn `remove_duplicates` off for such feeds or give them an `id` column. Input is time
/// ordered per symbol, so duplicates share a timestamp: the stage keeps, per symbol, only
/// 128-bit hashes (see `rowhash`) of the rows at the symbol's current timestamp, and forgets
/// them when the timestamp moves; a row is hashed only once another row of its symbol shares
/// its timestamp or its chunk ends. Memory is O(symbols × rows per timestamp), time O(1) per
/// row. Without a `ts` column (or on a null `ts`) a row is compared with the symbol's previous
/// row only. Duplicates that are not at the same timestamp (unordered input) are not found:
/// a global spilling mode for unordered data is not implemented.
#[derive(Debug, Default)]
pub struct Dedupe {
    cfg: DedupeConfig,
    slots: Slots,
    state: Vec<Group>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Group {
    ts: Option<i64>,
    seen: Vec<u128>,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    slots: Vec<String>,
    state: Vec<Group>,
}

impl Dedupe {
    /// A stage with `cfg`.
    pub fn new(cfg: DedupeConfig) -> Self {
        Dedupe {
            cfg,
            ..Dedupe::default()
        }
    }

    fn rule(&self) -> &'static str {
        if self.cfg.key.is_empty() {
            "dedupe_exact"
        } else {
            "dedupe_key"
        }
    }
}

impl Stage for Dedupe {
    fn name(&self) -> &str {
        "dedupe"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        crate::clean::key::stage_key(self.name(), &self.cfg)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let batch = chunk.batch();
        let exact = self.cfg.key.is_empty();
        let events = if exact {
            crate::kind::Events::of(&chunk)?
        } else {
            crate::kind::Events::none()
        };
        // The identity column, when rows have one (exact mode only).
        let id = batch
            .schema()
            .column_with_name("id")
            .map(|(i, _)| i)
            .filter(|&i| exact && batch.column(i).null_count() < batch.num_rows());
        let cols: Vec<usize> = if exact {
            data_columns(batch)
        } else {
            let schema = batch.schema();
            self.cfg
                .key
                .iter()
                .filter_map(|k| schema.column_with_name(k).map(|(i, _)| i))
                .collect()
        };
        if cols.is_empty() {
            out.emit(chunk);
            return Ok(());
        }
        let full = RowHasher::new(batch, &cols)?;
        let by_id = id.map(|i| RowHasher::new(batch, &[i])).transpose()?;
        let id_valid = |j: usize| id.is_some_and(|i| batch.column(i).is_valid(j));
        // Id hashes are tagged so that they never equal a whole-row hash.
        const ID_TAG: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834;
        let hasher = |j: usize| match &by_id {
            Some(h) if id_valid(j) => h.hash(j) ^ ID_TAG,
            _ => full.hash(j),
        };
        let ts = ts_raw(&chunk)?;
        let slots = self.slots.rows(&chunk)?;
        if let Some(&max) = slots.iter().max()
            && self.state.len() <= max
        {
            self.state.resize(max + 1, Group::default());
        }
        // A row that opens a new timestamp is not hashed unless a later row of its symbol
        // shares that timestamp: `pending[slot]` holds its row index, and `seen` (empty
        // meanwhile) receives its hash when needed, at the latest at the end of the chunk.
        let mut pending: Vec<Option<usize>> = vec![None; self.state.len()];
        let settle = |g: &mut Group, p: &mut Option<usize>| {
            if let Some(j) = p.take() {
                g.seen.push(hasher(j));
            }
        };
        // Duplicates are rare: their row indices are collected, and a mask is built only
        // when there are any.
        let mut dups: Vec<(usize, bool)> = Vec::new();
        let mut by_id_dups = 0usize;
        for (i, &s) in slots.iter().enumerate() {
            if events.message(i) {
                // Never a duplicate, and no part of the comparisons of other rows.
                continue;
            }
            let g = &mut self.state[s];
            let p = &mut pending[s];
            let t = ts.as_ref().and_then(|t| t.get(i));
            let dup = if t.is_none() {
                settle(g, p);
                let h = hasher(i);
                let d = g.seen.last() == Some(&h);
                g.seen.clear();
                g.seen.push(h);
                d
            } else if t != g.ts {
                g.seen.clear();
                *p = Some(i);
                false
            } else {
                settle(g, p);
                let h = hasher(i);
                let d = g.seen.contains(&h);
                if !d {
                    g.seen.push(h);
                }
                d
            };
            g.ts = t;
            if dup {
                let of_id = id_valid(i);
                by_id_dups += usize::from(of_id);
                dups.push((i, of_id));
            }
        }
        for (g, p) in self.state.iter_mut().zip(pending.iter_mut()) {
            settle(g, p);
        }
        if dups.is_empty() {
            out.emit(chunk);
            return Ok(());
        }
        // Rows removed by id and by content are charged to their own rules.
        let n = chunk.num_rows();
        let mut chunk = chunk;
        // Rows removed so far before each row, to index the chunk after the first removal.
        let mut before = vec![0usize; n + 1];
        if by_id_dups > 0 {
            let mut keep = vec![true; n];
            for &(i, of_id) in &dups {
                if of_id {
                    keep[i] = false;
                }
            }
            for i in 0..n {
                before[i + 1] = before[i] + usize::from(!keep[i]);
            }
            chunk = out.remove("dedupe_id", &chunk, &BooleanArray::from(keep))?;
        }
        if by_id_dups < dups.len() {
            let mut keep = vec![true; chunk.num_rows()];
            for &(i, of_id) in &dups {
                if !of_id {
                    keep[i - before[i]] = false;
                }
            }
            chunk = out.remove(self.rule(), &chunk, &BooleanArray::from(keep))?;
        }
        out.emit(chunk);
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let cp = Checkpoint {
            slots: self.slots.names().to_vec(),
            state: self.state.clone(),
        };
        crate::state::save("dedupe", &cp)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = crate::state::load("dedupe", state)?;
        self.slots = Slots::from_names(cp.slots);
        self.state = cp.state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
    use pipeline_core::run_stage;

    use super::*;

    type Row = (&'static str, Option<i64>, Option<f64>);

    /// The definition, row by row on whole values: per symbol, the rows at the current
    /// timestamp (or, at a null timestamp, the previous row only).
    fn reference(rows: &[Row]) -> Vec<u64> {
        let mut seen: std::collections::HashMap<&str, (Option<i64>, Vec<Row>)> = Default::default();
        let mut dups = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let g = seen.entry(r.0).or_default();
            let dup = if r.1.is_none() {
                let d = g.1.last() == Some(r);
                g.1 = vec![*r];
                d
            } else {
                if r.1 != g.0 {
                    g.1.clear();
                }
                let d = g.1.contains(r);
                if !d {
                    g.1.push(*r);
                }
                d
            };
            g.0 = r.1;
            if dup {
                dups.push(i as u64);
            }
        }
        dups
    }

    #[test]
    fn lazy_hashing_matches_the_definition_for_every_chunk_size() {
        // Few distinct values, so duplicates, repeated timestamps and null timestamps are
        // common and straddle chunk boundaries.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut t = 0i64;
        let rows: Vec<Row> = (0..400)
            .map(|_| {
                t += i64::from(next(3) == 0);
                let sym = ["A", "B", "C"][next(3) as usize];
                let ts = (next(10) != 0).then_some(t);
                let px = (next(8) != 0).then(|| next(3) as f64);
                (sym, ts, px)
            })
            .collect();
        let want = reference(&rows);
        assert!(want.len() > 40, "{} duplicates", want.len());
        let cols: Vec<ArrayRef> = vec![
            Arc::new(TimestampNanosecondArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ];
        let batch =
            RecordBatch::try_from_iter(["ts", "symbol", "price"].into_iter().zip(cols)).unwrap();
        let whole = Chunk::with_first_line(batch, 0, 0, 0).unwrap();
        for size in [1, 2, 3, 7, 64, 400] {
            let chunks: Vec<Chunk> = (0..rows.len())
                .step_by(size)
                .map(|at| whole.slice(at, size.min(rows.len() - at)))
                .collect();
            let (_, em) = run_stage(&mut Dedupe::default(), chunks).unwrap();
            let got: Vec<u64> = em.rejects().iter().map(|r| r.line).collect();
            assert_eq!(got, want, "chunks of {size}");
        }
    }
}
