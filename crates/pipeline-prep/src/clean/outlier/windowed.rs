//! Fixed row windows per symbol for the model-based detectors (Isolation Forest, DBSCAN).
//!
//! Each symbol's rows are collected into windows of exactly `window` rows (the last window
//! of the input may be shorter); when a window is full the detector runs on its engineered
//! features and every row of the window is decided and released. Results therefore depend on
//! the window size, never on the chunk size. Features per row:
//!
//! 1. log return of `price` (else mid) against the symbol's previous row (the symbol's
//!    first row has none and is kept unjudged);
//! 2. relative spread `(ask − bid) / mid` (0 without a quote);
//! 3. `ln(1 + size)` (0 without a size).
//!
//! Rows whose value is null are kept without being judged.

use pipeline_core::{Chunk, Emitter, Error, Result, StageKey, stable_hash};
use serde::{Deserialize, Serialize};

use super::{OutlierAction, values};
use crate::clean::cols::{Slots, f64_col};
use crate::clean::held::{Held, HeldState, RowRef};

/// Number of engineered features.
pub(crate) const NF: usize = 3;

/// A detector on one window: returns, per feature row, whether it is an outlier. `seed` is
/// derived from the symbol and the window's index, so runs are reproducible.
pub(crate) trait WindowDetector: Send {
    fn detect(&self, x: &[[f64; NF]], seed: u64) -> Result<Vec<bool>>;
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct WState {
    last: Option<f64>,
    rows: Vec<(RowRef, Option<[f64; NF]>)>,
    windows: u64,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    slots: Vec<String>,
    state: Vec<WState>,
    held: HeldState,
}

/// The windowing machinery shared by the model-based stages.
pub(crate) struct Windowed<D: WindowDetector> {
    pub(crate) det: D,
    window: usize,
    column: String,
    action: OutlierAction,
    rule: String,
    slots: Slots,
    state: Vec<WState>,
    held: Held,
}

impl<D: WindowDetector> Windowed<D> {
    pub(crate) fn new(
        det: D,
        window: usize,
        column: String,
        action: OutlierAction,
        rule: String,
    ) -> Result<Self> {
        if window < 2 {
            return Err(Error::config("outlier_window", "must be at least 2 rows"));
        }
        if action == OutlierAction::Winsorize {
            return Err(Error::config(
                "outlier_action",
                "model-based detectors have no bound to clip to; use flag or drop",
            ));
        }
        let mut held = Held::default();
        if action == OutlierAction::Flag {
            held.set_flag_column(rule.clone());
        }
        Ok(Windowed {
            det,
            window,
            column,
            action,
            rule,
            slots: Slots::default(),
            state: Vec::new(),
            held,
        })
    }

    pub(crate) fn key_of<C: Serialize>(&self, name: &str, cfg: &C) -> StageKey {
        crate::clean::key::stage_key(name, cfg)
    }

    fn run_window(&mut self, s: usize, out: &mut Emitter) -> Result<()> {
        let st = &mut self.state[s];
        let rows = std::mem::take(&mut st.rows);
        let seed = stable_hash(self.slots.names()[s].as_bytes())
            ^ st.windows.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        st.windows += 1;
        let x: Vec<[f64; NF]> = rows.iter().filter_map(|r| r.1).collect();
        let verdict = if x.len() >= 2 {
            self.det.detect(&x, seed)?
        } else {
            vec![false; x.len()]
        };
        let mut k = 0;
        for (r, f) in rows {
            let bad = if f.is_some() {
                k += 1;
                verdict.get(k - 1).copied().unwrap_or(false)
            } else {
                false
            };
            match (bad, self.action) {
                (true, OutlierAction::Drop) => self.held.remove(r, &self.rule, out)?,
                (b, _) => self.held.keep_flagged(r, b),
            }
        }
        Ok(())
    }

    pub(crate) fn process_chunk(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let Some((vals, _)) = values(&chunk, &self.column)? else {
            out.emit(chunk);
            return Ok(());
        };
        let (bid, ask, size) = (
            f64_col(&chunk, "bid")?,
            f64_col(&chunk, "ask")?,
            f64_col(&chunk, "size")?,
        );
        let get = |a: &Option<arrow_array::Float64Array>, i: usize| {
            a.as_ref()
                .and_then(|a| arrow_array::Array::is_valid(a, i).then(|| a.value(i)))
        };
        let slots = self.slots.rows(&chunk)?;
        let id = self.held.add(chunk);
        for (i, v) in vals.iter().enumerate() {
            let s = slots[i];
            if self.state.len() <= s {
                self.state.resize(s + 1, WState::default());
            }
            let st = &mut self.state[s];
            let f = v.filter(|p| *p > 0.0).and_then(|p| {
                // The symbol's first row has no return: it is kept without being judged.
                let ret = st.last.map(|l| (p / l).ln());
                st.last = Some(p);
                let ret = ret?;
                let spread = match (get(&bid, i), get(&ask, i)) {
                    (Some(b), Some(a)) if a + b > 0.0 => 2.0 * (a - b) / (a + b),
                    _ => 0.0,
                };
                let sz = get(&size, i)
                    .filter(|z| *z >= 0.0)
                    .map_or(0.0, |z| z.ln_1p());
                Some([ret, spread, sz])
            });
            st.rows.push((
                RowRef {
                    chunk: id,
                    row: i as u32,
                },
                f.filter(|f| f.iter().all(|x| x.is_finite())),
            ));
            if st.rows.len() >= self.window {
                self.run_window(s, out)?;
            }
        }
        self.held.flush(out)
    }

    pub(crate) fn finish_all(&mut self, out: &mut Emitter) -> Result<()> {
        for s in 0..self.state.len() {
            if !self.state[s].rows.is_empty() {
                self.run_window(s, out)?;
            }
        }
        self.held.flush(out)
    }

    pub(crate) fn checkpoint_state(&self) -> Result<Option<Vec<u8>>> {
        let cp = Checkpoint {
            slots: self.slots.names().to_vec(),
            state: self.state.clone(),
            held: self.held.state()?,
        };
        crate::state::save(&self.rule, &cp)
    }

    pub(crate) fn restore_state(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = crate::state::load(&self.rule, state)?;
        self.slots = Slots::from_names(cp.slots);
        self.state = cp.state;
        self.held.restore(cp.held)
    }
}

/// Standardises each feature to mean 0 and standard deviation 1 (constant features → 0).
pub(crate) fn standardise(x: &[[f64; NF]]) -> Vec<[f64; NF]> {
    let n = x.len().max(1) as f64;
    let mut out = x.to_vec();
    for j in 0..NF {
        let m = x.iter().map(|r| r[j]).sum::<f64>() / n;
        let sd = (x.iter().map(|r| (r[j] - m) * (r[j] - m)).sum::<f64>() / n).sqrt();
        for r in &mut out {
            r[j] = if sd > 0.0 { (r[j] - m) / sd } else { 0.0 };
        }
    }
    out
}
