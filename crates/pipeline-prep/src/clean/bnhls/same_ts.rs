//! BN-HLS T3 and Q1: rows of one symbol with the same timestamp merged into one.

use pipeline_core::{Chunk, Emitter, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use crate::clean::cols::{Slots, f64_col, ts_col};
use crate::clean::held::{Held, HeldState, RowRef};
use crate::clean::outlier::median_of;

/// Merges rows of one symbol that share a timestamp (Barndorff-Nielsen et al. 2009):
///
/// * T3: "If multiple transactions have the same time stamp, use the median price"; sizes
///   are summed.
/// * Q1: "When multiple quotes have the same time stamp, we replace all these with a single
///   entry with the median bid and median ask price"; quote sizes are those of the first.
///
/// The merged row is the group's first row (so its `_line` is the first line) with the
/// medians and the sum written in; the other `n − 1` rows are counted with
/// [`Emitter::aggregate`] under `T3` (when T3 is enabled and the group has prices) or `Q1`.
/// Nulls are left out of medians and sums. Rows with a null `ts` are never merged. The
/// current group of each symbol is held until a later timestamp arrives, so memory is one
/// timestamp's rows per symbol.
#[derive(Debug)]
pub struct SameTimestamp {
    t3: bool,
    q1: bool,
    slots: Slots,
    groups: Vec<Group>,
    held: Held,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Group {
    ts: Option<i64>,
    rows: Vec<(RowRef, [Option<f64>; 4])>,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    slots: Vec<String>,
    groups: Vec<Group>,
    held: HeldState,
}

const COLS: [&str; 4] = ["price", "size", "bid", "ask"];

impl SameTimestamp {
    /// Merges trades when `t3`, quotes when `q1`.
    pub fn new(t3: bool, q1: bool) -> Self {
        SameTimestamp {
            t3,
            q1,
            slots: Slots::default(),
            groups: Vec::new(),
            held: Held::default(),
        }
    }

    fn close(g: &mut Group, t3: bool, q1: bool, held: &mut Held, out: &mut Emitter) {
        let rows = std::mem::take(&mut g.rows);
        let Some((first, _)) = rows.first().copied() else {
            return;
        };
        if rows.len() == 1 {
            held.keep(first);
            return;
        }
        let col = |k: usize| rows.iter().filter_map(|(_, v)| v[k]).collect::<Vec<f64>>();
        let mut set = Vec::new();
        let prices = col(0);
        let trades = t3 && !prices.is_empty();
        if trades {
            if let Some(m) = median_of(prices) {
                set.push(("price".to_string(), m));
            }
            let sizes = col(1);
            if !sizes.is_empty() {
                set.push(("size".to_string(), sizes.iter().sum()));
            }
        }
        if q1 {
            for (k, name) in [(2, "bid"), (3, "ask")] {
                if let Some(m) = median_of(col(k)) {
                    set.push((name.to_string(), m));
                }
            }
        }
        held.keep_with(first, &set);
        for (r, _) in &rows[1..] {
            held.absorb(*r);
        }
        out.aggregate(if trades { "T3" } else { "Q1" }, rows.len() as u64 - 1);
    }
}

impl Stage for SameTimestamp {
    fn name(&self) -> &str {
        "bnhls_same_timestamp"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        crate::clean::key::stage_key(self.name(), &(self.t3, self.q1))
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let ts = ts_col(&chunk)?;
        let Some(ts) = ts else {
            out.emit(chunk);
            return Ok(());
        };
        let vals = COLS
            .iter()
            .map(|c| f64_col(&chunk, c))
            .collect::<Result<Vec<_>>>()?;
        let slots = self.slots.rows(&chunk)?;
        let id = self.held.add(chunk);
        for (i, t) in ts.iter().enumerate() {
            let s = slots[i];
            if self.groups.len() <= s {
                self.groups.resize(s + 1, Group::default());
            }
            let g = &mut self.groups[s];
            if t.is_none() || *t != g.ts {
                Self::close(g, self.t3, self.q1, &mut self.held, out);
            }
            g.ts = *t;
            let mut v = [None; 4];
            for (k, a) in vals.iter().enumerate() {
                v[k] = a
                    .as_ref()
                    .and_then(|a| arrow_array::Array::is_valid(a, i).then(|| a.value(i)));
            }
            g.rows.push((
                RowRef {
                    chunk: id,
                    row: i as u32,
                },
                v,
            ));
            if t.is_none() {
                Self::close(g, self.t3, self.q1, &mut self.held, out);
            }
        }
        self.held.flush(out)
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        for g in &mut self.groups {
            Self::close(g, self.t3, self.q1, &mut self.held, out);
        }
        self.held.flush(out)
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let cp = Checkpoint {
            slots: self.slots.names().to_vec(),
            groups: self.groups.clone(),
            held: self.held.state()?,
        };
        crate::state::save("same-timestamp", &cp)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = crate::state::load("same-timestamp", state)?;
        self.slots = Slots::from_names(cp.slots);
        self.groups = cp.groups;
        self.held = Held::from_state(cp.held)?;
        Ok(())
    }
}
