//! Missing values: drop, forward-fill, time-weighted linear interpolation, or a constant.

use std::collections::VecDeque;

use arrow_array::{Array, BooleanArray, Float64Array};
use arrow_buffer::BooleanBuffer;
use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use super::cols::{Slots, f64_col, ts_col, with_f64};
use super::held::{Held, HeldState, RowRef};

/// Canonical columns a row has all or none of (see [`MissingConfig::columns`]).
const GROUPS: [&[&str]; 3] = [
    &["price", "size"],
    &["bid", "ask"],
    &["bid_size", "ask_size"],
];

/// The order-book columns, never missing on an order-book message.
const BOOK: [&str; 4] = ["bid", "ask", "bid_size", "ask_size"];

/// How missing values are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingMethod {
    /// Leave nulls alone.
    None,
    /// Remove rows with a null in a checked column (rule `missing_value`).
    Drop,
    /// Carry the symbol's last valid value forward over at most `max_gap` rows (repairs under
    /// `ffill`); nulls with no earlier value or beyond the gap are removed (`missing_value`).
    Ffill,
    /// Time-weighted linear interpolation between the symbol's previous and next valid values,
    /// for runs of at most `max_gap` rows (repairs under `interpolate`); longer runs, leading
    /// runs and runs still open at the end of input are removed (`missing_value`).
    Interpolate,
    /// Replace nulls in numeric columns with `fill_value` (repairs under `constant`).
    Constant,
}

impl MissingMethod {
    /// Parses the config spelling (`none`, `drop`, `ffill`, `interpolate`, `constant`).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => MissingMethod::None,
            "drop" => MissingMethod::Drop,
            "ffill" => MissingMethod::Ffill,
            "interpolate" => MissingMethod::Interpolate,
            "constant" => MissingMethod::Constant,
            other => {
                return Err(Error::config(
                    "preprocessing.handle_missing_values",
                    format!("unknown value `{other}`"),
                ));
            }
        })
    }
}

/// Configuration of [`MissingValues`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MissingConfig {
    /// The method. Default `drop`.
    pub method: MissingMethod,
    /// Columns checked; absent ones are skipped. `ts` and `symbol` can only be dropped (a
    /// null there is removed under every method but `none`). Default: `ts`, `symbol`,
    /// `price`, `size`, `bid`, `ask`, `bid_size`, `ask_size` (not `exchange` or
    /// `conditions`, where empty is a legitimate value).
    ///
    /// In a dataset that unites trades, quotes and order-book messages, the canonical
    /// columns come in groups a row has all or none of: (`price`, `size`), (`bid`, `ask`),
    /// (`bid_size`, `ask_size`). A group a row leaves entirely empty is *absent* (a quote row
    /// has no trade, a trade row of a trades file no quote), not missing: only a half-filled
    /// group (a price without a size, a bid without an ask) is a missing value. The book
    /// columns of an order-book message (`event_type` set) are never missing: an empty book
    /// side is legitimate. This is wrong for a TAQ file in which a row lost both its bid and
    /// its ask (or its price and its size): that row passes as a trade without a quote (or
    /// a quote without a trade), where a per-file check would have removed it.
    pub columns: Vec<String>,
    /// The constant for `constant`. Default 0.
    pub fill_value: f64,
    /// Longest run of consecutive nulls (rows of one symbol, per column) that `ffill` and
    /// `interpolate` bridge. Default 10.
    pub max_gap: usize,
}

impl Default for MissingConfig {
    fn default() -> Self {
        MissingConfig {
            method: MissingMethod::Drop,
            columns: [
                "ts", "symbol", "price", "size", "bid", "ask", "bid_size", "ask_size",
            ]
            .map(String::from)
            .to_vec(),
            fill_value: 0.0,
            max_gap: 10,
        }
    }
}

/// Handles missing values (see [`MissingMethod`] for each method's definition).
///
/// `drop` and `constant` are row-local; `ffill` keeps, per symbol and column, the last valid
/// value and the current gap length; `interpolate` holds rows of a symbol until the next valid
/// value arrives or the gap exceeds `max_gap` (at most `max_gap` held rows per symbol and
/// column), so results do not depend on chunk size.
#[derive(Debug)]
pub struct MissingValues {
    cfg: MissingConfig,
    slots: Slots,
    ffill: Vec<Vec<FillState>>,
    interp: Vec<Interp>,
    held: Held,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct FillState {
    last: Option<f64>,
    run: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pend {
    r: RowRef,
    ts: Option<i64>,
    unresolved: u32,
    drop: bool,
    set: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ColInterp {
    /// Last valid value: (ts, value, absolute row index).
    last: Option<(Option<i64>, f64, u64)>,
    run: Vec<u64>,
    overflow: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Interp {
    queue: VecDeque<Pend>,
    base: u64,
    cols: Vec<ColInterp>,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    slots: Vec<String>,
    ffill: Vec<Vec<FillState>>,
    interp: Vec<Interp>,
    held: HeldState,
}

impl MissingValues {
    /// A stage with `cfg`.
    pub fn new(cfg: MissingConfig) -> Self {
        MissingValues {
            cfg,
            slots: Slots::default(),
            ffill: Vec::new(),
            interp: Vec::new(),
            held: Held::default(),
        }
    }

    /// The checked value columns of `chunk`. Trades from the trades-and-quotes join
    /// (`quote_match` set) carry the NBBO the join matched, null where there was none (a
    /// counted `quote_match`): their quote columns are never filled or judged here.
    fn value_columns(&self, chunk: &Chunk) -> Vec<String> {
        let joined = chunk.is_joined_trades();
        self.cfg
            .columns
            .iter()
            .filter(|c| c.as_str() != "ts" && c.as_str() != "symbol")
            .filter(|c| !(joined && BOOK.contains(&c.as_str())))
            .cloned()
            .collect()
    }

    /// Per checked value column, the rows where it is absent rather than missing (see
    /// [`MissingConfig::columns`]); `None` for a column without nulls or outside the groups.
    fn absent_rows(&self, chunk: &Chunk, cols: &[String]) -> Result<Vec<Option<BooleanBuffer>>> {
        let events = crate::kind::Events::of(chunk)?;
        let n = chunk.num_rows();
        let messages = events
            .any()
            .then(|| BooleanBuffer::collect_bool(n, |i| events.message(i)));
        Ok(cols
            .iter()
            .map(|c| {
                let a = chunk.column_by_name(c)?;
                if a.null_count() == 0 {
                    return None;
                }
                let group = GROUPS.iter().find(|g| g.contains(&c.as_str()))?;
                // Absent: no member of the group has a value in the row.
                let mut any = BooleanBuffer::new_unset(n);
                for m in group.iter() {
                    if let Some(a) = chunk.column_by_name(m) {
                        match a.nulls() {
                            Some(v) => any = &any | v.inner(),
                            None => {
                                any = BooleanBuffer::new_set(n);
                                break;
                            }
                        }
                    }
                }
                let mut absent = !&any;
                if let Some(m) = &messages
                    && BOOK.contains(&c.as_str())
                {
                    absent = &absent | m;
                }
                Some(absent)
            })
            .collect())
    }

    /// Rows whose `ts` or `symbol` (when checked) are null.
    fn key_nulls(&self, chunk: &Chunk) -> Vec<bool> {
        let mut bad = vec![false; chunk.num_rows()];
        for c in ["ts", "symbol"] {
            if self.cfg.columns.iter().any(|x| x == c)
                && let Some(a) = chunk.column_by_name(c)
                && a.null_count() > 0
            {
                for (i, b) in bad.iter_mut().enumerate() {
                    *b |= a.is_null(i);
                }
            }
        }
        bad
    }

    fn drop_rows(&self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        // The rows to keep are the AND of the checked columns' validity bitmaps (each ORed
        // with the rows where its group is absent), 64 rows per step (a per-row `is_null`
        // was 3 % of `clean_bench`'s profile).
        let joined = chunk.is_joined_trades();
        let cols: Vec<String> = if joined {
            self.cfg
                .columns
                .iter()
                .filter(|c| !BOOK.contains(&c.as_str()))
                .cloned()
                .collect()
        } else {
            self.cfg.columns.clone()
        };
        let has_nulls = cols
            .iter()
            .any(|c| chunk.column_by_name(c).is_some_and(|a| a.null_count() > 0));
        if !has_nulls {
            out.emit(chunk);
            return Ok(());
        }
        let absent = self.absent_rows(&chunk, &cols)?;
        let mut valid: Option<arrow_buffer::NullBuffer> = None;
        for (c, absent) in cols.iter().zip(&absent) {
            if let Some(a) = chunk.column_by_name(c)
                && let Some(nulls) = a.nulls().filter(|n| n.null_count() > 0)
            {
                let ok = match absent {
                    Some(ab) => arrow_buffer::NullBuffer::new(nulls.inner() | ab),
                    None => nulls.clone(),
                };
                valid = arrow_buffer::NullBuffer::union(valid.as_ref(), Some(&ok));
            }
        }
        let Some(valid) = valid else {
            out.emit(chunk);
            return Ok(());
        };
        let keep = BooleanArray::new(valid.inner().clone(), None);
        let kept = out.remove("missing_value", &chunk, &keep)?;
        out.emit(kept);
        Ok(())
    }

    fn fill_rows(&mut self, chunk: Chunk, out: &mut Emitter, ffill: bool) -> Result<()> {
        let mut bad = self.key_nulls(&chunk);
        let slots = if ffill {
            self.slots.rows(&chunk)?
        } else {
            Vec::new()
        };
        let cols = self.value_columns(&chunk);
        let absent = self.absent_rows(&chunk, &cols)?;
        let mut chunk = chunk;
        for (ci, name) in cols.iter().enumerate() {
            let Some(a) = f64_col(&chunk, name)? else {
                continue;
            };
            let mut vals: Vec<Option<f64>> = a.iter().collect();
            let mut repaired = 0u64;
            for (i, v) in vals.iter_mut().enumerate() {
                if absent[ci].as_ref().is_some_and(|ab| ab.value(i)) {
                    continue;
                }
                if !ffill {
                    if v.is_none() {
                        *v = Some(self.cfg.fill_value);
                        repaired += 1;
                    }
                    continue;
                }
                let s = slots[i];
                if self.ffill.len() <= s {
                    self.ffill.resize(s + 1, Vec::new());
                }
                let st = &mut self.ffill[s];
                if st.len() < cols.len() {
                    st.resize(cols.len(), FillState::default());
                }
                let st = &mut st[ci];
                match *v {
                    Some(x) => {
                        st.last = Some(x);
                        st.run = 0;
                    }
                    None => {
                        st.run += 1;
                        match st.last {
                            Some(x) if st.run <= self.cfg.max_gap => {
                                *v = Some(x);
                                repaired += 1;
                            }
                            _ => bad[i] = true,
                        }
                    }
                }
            }
            if repaired > 0 {
                out.repaired(if ffill { "ffill" } else { "constant" }, repaired);
                chunk = with_f64(&chunk, name, Float64Array::from(vals))?;
            }
        }
        if bad.iter().any(|b| *b) {
            let keep: BooleanArray = bad.iter().map(|b| Some(!b)).collect();
            chunk = out.remove("missing_value", &chunk, &keep)?;
        }
        out.emit(chunk);
        Ok(())
    }

    fn interpolate(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let keybad = self.key_nulls(&chunk);
        let slots = self.slots.rows(&chunk)?;
        let ts = ts_col(&chunk)?;
        let cols = self.value_columns(&chunk);
        let vals: Vec<Option<Float64Array>> = cols
            .iter()
            .map(|c| f64_col(&chunk, c))
            .collect::<Result<_>>()?;
        let absent = self.absent_rows(&chunk, &cols)?;
        let id = self.held.add(chunk);
        let max_gap = self.cfg.max_gap;
        for (i, &s) in slots.iter().enumerate() {
            if self.interp.len() <= s {
                self.interp.resize(s + 1, Interp::default());
            }
            let st = &mut self.interp[s];
            if st.cols.len() < cols.len() {
                st.cols.resize(cols.len(), ColInterp::default());
            }
            let t = ts.as_ref().and_then(|t| t[i]);
            let abs = st.base + st.queue.len() as u64;
            st.queue.push_back(Pend {
                r: RowRef {
                    chunk: id,
                    row: i as u32,
                },
                ts: t,
                unresolved: 0,
                drop: keybad[i],
                set: Vec::new(),
            });
            for (ci, col) in vals.iter().enumerate() {
                let Some(col) = col else { continue };
                if absent[ci].as_ref().is_some_and(|ab| ab.value(i)) {
                    continue;
                }
                let c = &mut st.cols[ci];
                if col.is_valid(i) {
                    let v1 = col.value(i);
                    if let Some((t0, v0, i0)) = c.last {
                        for &k in &c.run {
                            let p = &mut st.queue[(k - st.base) as usize];
                            let w = match (t0, p.ts, t) {
                                (Some(t0), Some(tk), Some(t1)) if t1 > t0 => {
                                    (tk - t0) as f64 / (t1 - t0) as f64
                                }
                                _ => (k - i0) as f64 / (abs - i0) as f64,
                            };
                            p.set.push((cols[ci].clone(), v0 + (v1 - v0) * w));
                            p.unresolved -= 1;
                        }
                    }
                    c.run.clear();
                    c.overflow = false;
                    c.last = Some((t, v1, abs));
                } else if c.last.is_none() || c.overflow {
                    if let Some(p) = st.queue.back_mut() {
                        p.drop = true;
                    }
                } else {
                    c.run.push(abs);
                    if let Some(p) = st.queue.back_mut() {
                        p.unresolved += 1;
                    }
                    if c.run.len() > max_gap {
                        c.overflow = true;
                        for &k in &c.run {
                            let p = &mut st.queue[(k - st.base) as usize];
                            p.drop = true;
                            p.unresolved -= 1;
                        }
                        c.run.clear();
                    }
                }
            }
            Self::release(st, &mut self.held, out, false)?;
        }
        self.held.flush(out)
    }

    fn release(st: &mut Interp, held: &mut Held, out: &mut Emitter, all: bool) -> Result<()> {
        while let Some(p) = st.queue.front() {
            if p.unresolved > 0 && !all {
                break;
            }
            let Some(p) = st.queue.pop_front() else { break };
            st.base += 1;
            if p.drop || p.unresolved > 0 {
                held.remove(p.r, "missing_value", out)?;
            } else {
                if !p.set.is_empty() {
                    out.repaired("interpolate", p.set.len() as u64);
                }
                held.keep_with(p.r, &p.set);
            }
        }
        Ok(())
    }
}

impl Stage for MissingValues {
    fn name(&self) -> &str {
        "missing_values"
    }

    fn order(&self) -> StageOrder {
        match self.cfg.method {
            MissingMethod::Ffill | MissingMethod::Interpolate => StageOrder::PerKey {
                key: "symbol".into(),
            },
            _ => StageOrder::RowLocal,
        }
    }

    fn key(&self) -> StageKey {
        crate::clean::key::stage_key(self.name(), &self.cfg)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        match self.cfg.method {
            MissingMethod::None => {
                out.emit(chunk);
                Ok(())
            }
            MissingMethod::Drop => self.drop_rows(chunk, out),
            MissingMethod::Constant => self.fill_rows(chunk, out, false),
            MissingMethod::Ffill => self.fill_rows(chunk, out, true),
            MissingMethod::Interpolate => self.interpolate(chunk, out),
        }
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        for st in &mut self.interp {
            for c in &mut st.cols {
                c.run.clear();
            }
            Self::release(st, &mut self.held, out, true)?;
        }
        self.held.flush(out)
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let cp = Checkpoint {
            slots: self.slots.names().to_vec(),
            ffill: self.ffill.clone(),
            interp: self.interp.clone(),
            held: self.held.state()?,
        };
        crate::state::save("missing_values", &cp)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = crate::state::load("missing_values", state)?;
        self.slots = Slots::from_names(cp.slots);
        self.ffill = cp.ffill;
        self.interp = cp.interp;
        self.held = Held::from_state(cp.held)?;
        Ok(())
    }
}
