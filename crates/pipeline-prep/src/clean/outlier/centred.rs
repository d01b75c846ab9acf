//! Centred-window detectors that need look-ahead: the Brownlees & Gallo (2006) filter and
//! the engine behind the Barndorff-Nielsen et al. (2009) rule Q4.

use std::collections::VecDeque;

use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use super::{OutlierAction, ValueSource, values};
use crate::clean::cols::{Slots, f64_col};
use crate::clean::held::{Held, HeldState, RowRef};

/// The statistic judged on a centred neighbourhood.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) enum CentredRule {
    /// Brownlees & Gallo (2006): outlier when `|x − p̄| ≥ 3 s + γ`, with `p̄`, `s` the
    /// δ-trimmed mean and standard deviation of the `k` neighbours.
    BrownleesGallo {
        /// Neighbourhood size (even; `k/2` each side).
        k: usize,
        /// Trimmed share (both tails together).
        delta: f64,
        /// Granularity, in price units.
        gamma: f64,
    },
    /// BN-HLS Q4: outlier when `|x − median| > mult · mean absolute deviation` of the
    /// `window` neighbours around their median.
    MedianMeanAbsDev {
        /// Neighbourhood size (even; `window/2` each side).
        window: usize,
        /// Multiple of the mean absolute deviation.
        mult: f64,
    },
}

impl CentredRule {
    fn half(&self) -> usize {
        match *self {
            CentredRule::BrownleesGallo { k, .. } => (k / 2).max(1),
            CentredRule::MedianMeanAbsDev { window, .. } => (window / 2).max(1),
        }
    }

    /// `(lo, hi, outlier)` for `x` given its neighbours.
    fn judge(&self, x: f64, nb: &mut [f64]) -> Option<(f64, f64, bool)> {
        if nb.len() < 2 {
            return None;
        }
        nb.sort_by(f64::total_cmp);
        match *self {
            CentredRule::BrownleesGallo { delta, gamma, .. } => {
                let cut = ((nb.len() as f64) * delta / 2.0).floor() as usize;
                let t = &nb[cut..nb.len() - cut];
                if t.len() < 2 {
                    return None;
                }
                let n = t.len() as f64;
                let m = t.iter().sum::<f64>() / n;
                let s = (t.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0)).sqrt();
                let r = 3.0 * s + gamma;
                Some((m - r, m + r, (x - m).abs() >= r))
            }
            CentredRule::MedianMeanAbsDev { mult, .. } => {
                let med = super::window::quantile_sorted(nb, 0.5)?;
                let mad = nb.iter().map(|v| (v - med).abs()).sum::<f64>() / nb.len() as f64;
                let r = mult * mad;
                Some((med - r, med + r, (x - med).abs() > r))
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    r: RowRef,
    x: Option<f64>,
    /// `(bid, ask)` when the value is the mid-quote (for winsorizing).
    quote: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CState {
    past: VecDeque<f64>,
    pending: VecDeque<Entry>,
    valid_pending: usize,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    slots: Vec<String>,
    state: Vec<CState>,
    held: HeldState,
}

/// A per-symbol centred-window detector: each row is judged once `half` valid values of its
/// symbol have arrived after it (rows are held until then, and flushed in `finish` with the
/// neighbours available). Neighbours are raw values (outliers included, as in Brownlees &
/// Gallo, where trimming handles them). Cost per row: O(k log k) for the sort.
#[derive(Debug)]
pub(crate) struct Centred {
    rule: CentredRule,
    column: String,
    action: OutlierAction,
    rule_name: String,
    stage_name: &'static str,
    slots: Slots,
    state: Vec<CState>,
    held: Held,
}

impl Centred {
    pub(crate) fn new(
        stage_name: &'static str,
        rule_name: String,
        rule: CentredRule,
        column: String,
        action: OutlierAction,
    ) -> Self {
        let mut held = Held::default();
        if action == OutlierAction::Flag {
            held.set_flag_column(rule_name.clone());
        }
        Centred {
            rule,
            column,
            action,
            rule_name,
            stage_name,
            slots: Slots::default(),
            state: Vec::new(),
            held,
        }
    }

    pub(crate) fn config_key(&self) -> StageKey {
        crate::clean::key::stage_key(
            self.stage_name,
            &(&self.rule, &self.column, &self.action, &self.rule_name),
        )
    }

    fn decide(&mut self, s: usize, out: &mut Emitter, all: bool) -> Result<()> {
        let half = self.rule.half();
        let st = &mut self.state[s];
        while let Some(front) = st.pending.front() {
            let Some(x) = front.x else {
                if let Some(e) = st.pending.pop_front() {
                    self.held.keep(e.r);
                }
                continue;
            };
            let after = st.valid_pending - 1;
            if after < half && !all {
                break;
            }
            let mut nb: Vec<f64> = st.past.iter().copied().collect();
            nb.extend(st.pending.iter().skip(1).filter_map(|e| e.x).take(half));
            let verdict = self.rule.judge(x, &mut nb);
            let Some(e) = st.pending.pop_front() else {
                break;
            };
            st.valid_pending -= 1;
            st.past.push_back(x);
            if st.past.len() > half {
                st.past.pop_front();
            }
            match verdict {
                Some((lo, hi, true)) => match self.action {
                    OutlierAction::Drop => self.held.remove(e.r, &self.rule_name, out)?,
                    OutlierAction::Flag => self.held.keep_flagged(e.r, true),
                    OutlierAction::Winsorize => {
                        out.repaired(&self.rule_name, 1);
                        let b = super::clip(x, lo, hi);
                        match (e.quote, &self.column) {
                            (Some((bid, ask)), _) => self.held.keep_with(
                                e.r,
                                &[("bid".into(), bid + b - x), ("ask".into(), ask + b - x)],
                            ),
                            (None, _) => {
                                let col = value_column(&self.held, &self.column, e.r)?;
                                self.held.keep_with(e.r, &[(col, b)]);
                            }
                        }
                    }
                },
                _ => self.held.keep(e.r),
            }
        }
        Ok(())
    }

    pub(crate) fn process_chunk(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let Some((vals, src)) = values(&chunk, &self.column)? else {
            out.emit(chunk);
            return Ok(());
        };
        let quotes = if matches!(src, ValueSource::Mid | ValueSource::Mixed(_))
            && self.action == OutlierAction::Winsorize
        {
            f64_col(&chunk, "bid")?.zip(f64_col(&chunk, "ask")?)
        } else {
            None
        };
        // Rows judged on their mid (all of them for `Mid`).
        let on_mid = |i: usize| match &src {
            ValueSource::Mixed(m) => m[i],
            _ => true,
        };
        let slots = self.slots.rows(&chunk)?;
        let id = self.held.add(chunk);
        for (i, x) in vals.iter().enumerate() {
            let s = slots[i];
            if self.state.len() <= s {
                self.state.resize(s + 1, CState::default());
            }
            let quote = quotes
                .as_ref()
                .map(|(b, a)| (b.value(i), a.value(i)))
                .filter(|_| x.is_some() && on_mid(i));
            let st = &mut self.state[s];
            st.pending.push_back(Entry {
                r: RowRef {
                    chunk: id,
                    row: i as u32,
                },
                x: *x,
                quote,
            });
            st.valid_pending += usize::from(x.is_some());
            // Deciding as rows arrive keeps held rows to `half` per symbol.
            self.decide(s, out, false)?;
        }
        self.held.flush(out)
    }

    pub(crate) fn finish_all(&mut self, out: &mut Emitter) -> Result<()> {
        for s in 0..self.state.len() {
            self.decide(s, out, true)?;
        }
        self.held.flush(out)
    }

    pub(crate) fn checkpoint_state(&self) -> Result<Option<Vec<u8>>> {
        let cp = Checkpoint {
            slots: self.slots.names().to_vec(),
            state: self.state.clone(),
            held: self.held.state()?,
        };
        crate::state::save(self.stage_name, &cp)
    }

    pub(crate) fn restore_state(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = crate::state::load(self.stage_name, state)?;
        self.slots = Slots::from_names(cp.slots);
        self.state = cp.state;
        self.held.restore(cp.held)
    }
}

fn value_column(held: &Held, column: &str, r: RowRef) -> Result<String> {
    let c = held.chunk(r.chunk)?;
    Ok(match values(c, column)? {
        Some((_, ValueSource::Column(n))) => n,
        _ => "price".into(),
    })
}

/// Configuration of [`BrownleesGallo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrownleesGalloConfig {
    /// Neighbourhood size `k` (`k/2` before and `k/2` after). Default 20, the smallest of
    /// the values Brownlees & Gallo (2006) report (20, 40, 60).
    pub k: usize,
    /// Trimming `δ` (share removed from both tails together). Default 0.10, as in the paper.
    pub delta: f64,
    /// Granularity `γ` in price units, so that runs of equal prices (s = 0) do not make
    /// every one-tick move an outlier. Default 0.02 (two cents, a few ticks of a US stock).
    pub gamma: f64,
    /// Value column: a column name, `mid`, or `auto` (price, else mid). Default `auto`.
    pub column: String,
    /// What to do with outliers. Default `drop`.
    pub action: OutlierAction,
}

impl Default for BrownleesGalloConfig {
    fn default() -> Self {
        BrownleesGalloConfig {
            k: 20,
            delta: 0.10,
            gamma: 0.02,
            column: "auto".into(),
            action: OutlierAction::Drop,
        }
    }
}

/// The Brownlees & Gallo (2006) filter ("Financial econometric analysis at ultra-high
/// frequency: data handling concerns", Computational Statistics & Data Analysis 51(4)):
/// remove `p_i` when `|p_i − p̄_i(k)| ≥ 3 s_i(k) + γ`, where `p̄_i(k)` and `s_i(k)` are the
/// δ-trimmed mean and standard deviation of the `k` observations around `i` (`k/2` before,
/// `k/2` after, `i` excluded). Rule `outlier_brownlees_gallo`.
///
/// Rows are held per symbol until `k/2` later values arrive (bounded look-ahead); at the end
/// of input the last rows are judged on the neighbours available. Near the start of a series
/// the neighbourhood is one-sided in the same way. O(k log k) per row.
#[derive(Debug)]
pub struct BrownleesGallo {
    inner: Centred,
}

impl BrownleesGallo {
    /// A stage with `cfg`.
    pub fn new(cfg: BrownleesGalloConfig) -> Result<Self> {
        if cfg.k < 2 || !(0.0..1.0).contains(&cfg.delta) || cfg.gamma.is_nan() || cfg.gamma < 0.0 {
            return Err(Error::config(
                "brownlees_gallo",
                "need k ≥ 2, 0 ≤ delta < 1 and gamma ≥ 0",
            ));
        }
        Ok(BrownleesGallo {
            inner: Centred::new(
                "outliers_brownlees_gallo",
                "outlier_brownlees_gallo".into(),
                CentredRule::BrownleesGallo {
                    k: cfg.k,
                    delta: cfg.delta,
                    gamma: cfg.gamma,
                },
                cfg.column,
                cfg.action,
            ),
        })
    }
}

impl Stage for BrownleesGallo {
    fn name(&self) -> &str {
        "outliers_brownlees_gallo"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        self.inner.config_key()
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        self.inner.process_chunk(chunk, out)
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        self.inner.finish_all(out)
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        self.inner.checkpoint_state()
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        self.inner.restore_state(state)
    }
}
