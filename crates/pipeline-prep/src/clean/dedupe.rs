//! De-duplication within a symbol's current timestamp.

use arrow_array::BooleanArray;
use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey, StageOrder};
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
/// (`dedupe_exact`: all columns but `_line`; `dedupe_key`: the configured key). Input is time
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
        let cols: Vec<usize> = if self.cfg.key.is_empty() {
            data_columns(batch)
        } else {
            let schema = batch.schema();
            self.cfg
                .key
                .iter()
                .filter_map(|k| schema.index_of(k).ok())
                .collect()
        };
        if cols.is_empty() {
            out.emit(chunk);
            return Ok(());
        }
        let hasher = RowHasher::new(batch, &cols)?;
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
                g.seen.push(hasher.hash(j));
            }
        };
        // Duplicates are rare: their row indices are collected, and a mask is built only
        // when there are any.
        let mut dups: Vec<usize> = Vec::new();
        for (i, &s) in slots.iter().enumerate() {
            let g = &mut self.state[s];
            let p = &mut pending[s];
            let t = ts.as_ref().and_then(|t| t.get(i));
            let dup = if t.is_none() {
                settle(g, p);
                let h = hasher.hash(i);
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
                let h = hasher.hash(i);
                let d = g.seen.contains(&h);
                if !d {
                    g.seen.push(h);
                }
                d
            };
            g.ts = t;
            if dup {
                dups.push(i);
            }
        }
        for (g, p) in self.state.iter_mut().zip(pending.iter_mut()) {
            settle(g, p);
        }
        if dups.is_empty() {
            out.emit(chunk);
        } else {
            let mut keep = vec![true; chunk.num_rows()];
            for &i in &dups {
                keep[i] = false;
            }
            let kept = out.remove(self.rule(), &chunk, &BooleanArray::from(keep))?;
            out.emit(kept);
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let cp = Checkpoint {
            slots: self.slots.names().to_vec(),
            state: self.state.clone(),
        };
        serde_json::to_vec(&cp)
            .map(Some)
            .map_err(|e| Error::Internal(format!("dedupe checkpoint: {e}")))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = serde_json::from_slice(state)
            .map_err(|e| Error::Internal(format!("dedupe restore: {e}")))?;
        self.slots = Slots::from_names(cp.slots);
        self.state = cp.state;
        Ok(())
    }
}
