//! [`ValidateStage`]: every rule of a [`RuleSet`] in one per-symbol stage.
//!
//! Per chunk: row-local rules run column-wise into a per-row error code (the first failing
//! error-severity rule) and a per-row warning bit mask; then one pass in row order carries
//! the per-symbol state (previous timestamp, rows at the current timestamp, the price-jump
//! window, the symbol-day's metrics and spreads) and decides the stateful rules; finally the
//! rows with an error code are quarantined with their rule, severity and values, and the rest
//! are emitted unchanged. Counts, examples, histograms, file fingerprints and closed
//! symbol-days accumulate in the stage and go to the plan's shared collector in `finish`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, BooleanArray};
use arrow_buffer::BooleanBuffer;
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use chrono::NaiveDate;
use pipeline_core::{
    Canonical, Chunk, DatasetKind, Emitter, Error, FxBuildHasher, LINE_COLUMN, Reject, Replay,
    Result, SourceId, Stage, StageKey, StageOrder,
};
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, Clock, day_string};
use crate::collect::Shared;
use crate::cols::{F64, Slots, Ts, row_hashes, str_col};
use crate::model::{Ex, Histogram, RETURN_EDGES, SPREAD_EDGES, SymbolDay};
use crate::rules::{Check, RuleSet, Severity, id};

/// Fewest rows a symbol-day needs before its null, duplicate and outlier shares are judged:
/// below 20 rows one row moves a share by 5% or more, the size of the thresholds themselves.
const MIN_GROUP_ROWS: u64 = 20;
/// Price-jump rule: absolute returns that set the initial volatility (their median, so one
/// spike among them does not inflate it).
const WARM: usize = 8;
/// Price-jump rule: weight of each new absolute return in the rolling volatility, a span of
/// about 128 rows (prep's outlier window is 100 rows; the exact span barely matters for
/// spikes 10 volatilities away).
const ALPHA: f64 = 1.0 / 64.0;
/// Price-jump rule: returns are clipped at this many volatilities before they update it, so
/// a missed spike cannot blow the volatility up.
const CLIP: f64 = 5.0;
/// Distinct spreads of a symbol-day kept exactly; beyond, spreads go to log-spaced bins of
/// 0.27% (enough for any tick-grid feed: 4,096 distinct spreads is $40 of one-cent ticks).
const EXACT_SPREADS: usize = 4096;
/// Example rows kept per distinct spread value, for spread-outlier examples.
const SPREAD_EXAMPLES: usize = 4;

/// A finding as the [`Validator`](crate::Validator) logs it: rule index, file, line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Hit {
    pub rule: usize,
    pub source: SourceId,
    pub line: u64,
}

/// Counts and samples of one stage instance (merged across instances by the collector).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Acc {
    pub rows: u64,
    pub failed: Vec<u64>,
    pub checked: Vec<u64>,
    /// Per rule, the examples kept. Shared until changed: a replay point (one per input)
    /// copies the accumulator, and examples change rarely once each rule has its share.
    pub examples: Vec<Arc<Vec<Ex>>>,
    pub col_nulls: Vec<(String, u64)>,
    pub col_types: Vec<(String, String)>,
    pub returns: Option<Histogram>,
    pub spreads: Option<Histogram>,
    /// Per source: rows and the wrapping sum of row hashes.
    pub files: Vec<(SourceId, u64, u64)>,
    /// Per source: (rule, problem) of schema findings.
    pub schema: Vec<(SourceId, usize, String)>,
    /// Closed symbol-days in their binary form (encoded once, when the day closes; see
    /// `day_codec`).
    #[serde(skip)]
    pub days_bin: Vec<u8>,
    /// How many `files` entries there were at the last replay point: a replay point
    /// records that length instead of the list, which grows with the run.
    #[serde(skip)]
    pub files_mark: usize,
    /// The values before their first change since the replay point of the `files` entries
    /// it recorded by length (a replay touches only the replayed input's entry, normally a
    /// new one, so this stays empty or nearly).
    #[serde(skip)]
    pub files_undo: Vec<(usize, (SourceId, u64, u64))>,
}

impl Acc {
    pub(crate) fn new(rules: usize) -> Self {
        Acc {
            failed: vec![0; rules],
            checked: vec![0; rules],
            examples: (0..rules).map(|_| Arc::new(Vec::new())).collect(),
            returns: Some(Histogram::new(&RETURN_EDGES)),
            spreads: Some(Histogram::new(&SPREAD_EDGES)),
            ..Acc::default()
        }
    }

    /// Whether an example at `(source, line)` would be kept for `rule`.
    #[inline]
    pub(crate) fn wants(&self, rule: usize, source: SourceId, line: u64, max: usize) -> bool {
        let v = &self.examples[rule];
        v.len() < max
            || v.last()
                .is_some_and(|l| (source, line) < (l.source, l.line))
    }

    /// Keeps `ex` among the `max` examples of `rule` with the smallest `(source, line)`: the
    /// same examples whatever the worker count or chunking.
    pub(crate) fn keep(&mut self, rule: usize, ex: Ex, max: usize) {
        let v = &self.examples[rule];
        let at = v.partition_point(|e| (e.source, e.line) < (ex.source, ex.line));
        if v.get(at)
            .is_some_and(|e| (e.source, e.line) == (ex.source, ex.line))
        {
            return;
        }
        let v = Arc::make_mut(&mut self.examples[rule]);
        v.insert(at, ex);
        v.truncate(max);
    }

    fn file(&mut self, source: SourceId) -> &mut (SourceId, u64, u64) {
        // The current input is normally the last entry: search from the end.
        let at = match self.files.iter().rposition(|f| f.0 == source) {
            Some(i) => i,
            None => {
                self.files.push((source, 0, 0));
                self.files.len() - 1
            }
        };
        if at < self.files_mark && !self.files_undo.iter().any(|(i, _)| *i == at) {
            self.files_undo.push((at, self.files[at]));
        }
        &mut self.files[at]
    }
}

/// Spreads of one symbol-day: exact values (to 1e-9) while there are few, log bins beyond.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Spreads {
    coarse: bool,
    entries: Vec<SpreadEntry>,
    #[serde(skip)]
    index: HashMap<i64, usize, FxBuildHasher>,
    /// Entries of recently added spreads by a hash of their key, so a repeated spread is
    /// counted without a search (a slot is a hit only when its entry has the key: slots
    /// start at entry 0, and a stale one just misses). Inline: a heap block per symbol-day
    /// cost more than it saved.
    #[serde(skip)]
    recent: [u32; RECENT],
}

/// Slots of [`Spreads::recent`] (a power of two).
const RECENT: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SpreadEntry {
    key: i64,
    value: f64,
    count: u64,
    ex: Vec<(SourceId, u64, i64)>,
}

/// Rounds to the nearest integer without a libm call (exact for |x| < 2^51).
#[inline]
fn rint(x: f64) -> f64 {
    const M: f64 = 6_755_399_441_055_744.0;
    (x + M) - M
}

impl Spreads {
    /// The entry key of spread `s`.
    #[inline]
    fn key(&self, s: f64) -> i64 {
        if self.coarse {
            if s <= 0.0 {
                i64::MIN
            } else {
                (s.log2() * 256.0).floor() as i64
            }
        } else {
            rint(s * 1e9) as i64
        }
    }

    /// The spread an entry of key `k` stands for.
    fn value(&self, k: i64) -> f64 {
        if self.coarse {
            if k == i64::MIN {
                0.0
            } else {
                ((k as f64 + 0.5) / 256.0).exp2()
            }
        } else {
            k as f64 / 1e9
        }
    }

    /// The [`Spreads::recent`] slot of key `k`.
    #[inline]
    fn slot(k: i64) -> usize {
        ((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - RECENT.trailing_zeros())) as usize
    }

    /// Counts spread `s` of the row at `src:line` (at `ts`). A spread seen lately whose
    /// entry has its examples is counted here, inline (a day's quotes cycle through a few
    /// spreads); the rest is [`Spreads::add_other`], out of line.
    #[inline]
    fn add(&mut self, s: f64, src: SourceId, line: u64, ts: i64) {
        let k = self.key(s);
        if let Some(e) = self.entries.get_mut(self.recent[Self::slot(k)] as usize)
            && e.key == k
            && e.ex.len() >= SPREAD_EXAMPLES
        {
            e.count += 1;
            return;
        }
        self.add_other(k, s, src, line, ts);
    }

    /// [`Spreads::add`] of key `k` when no recent entry with its examples complete has it.
    #[inline(never)]
    fn add_other(&mut self, k: i64, s: f64, src: SourceId, line: u64, ts: i64) {
        let slot = Self::slot(k);
        let recent = self.recent[slot] as usize;
        let at = if self.entries.get(recent).is_some_and(|e| e.key == k) {
            Some(recent)
        } else if self.entries.len() <= 16 {
            self.entries.iter().position(|e| e.key == k)
        } else {
            if self.index.len() != self.entries.len() {
                self.reindex();
            }
            self.index.get(&k).copied()
        };
        let i = match at {
            Some(i) => i,
            None => {
                self.entries.push(SpreadEntry {
                    key: k,
                    value: self.value(k),
                    count: 0,
                    ex: Vec::new(),
                });
                let i = self.entries.len() - 1;
                if self.entries.len() > 16 {
                    self.index.insert(k, i);
                }
                if self.entries.len() > EXACT_SPREADS && !self.coarse {
                    self.coarsen();
                    return self.add(s, src, line, ts);
                }
                i
            }
        };
        let e = &mut self.entries[i];
        e.count += 1;
        if e.ex.len() < SPREAD_EXAMPLES {
            e.ex.push((src, line, ts));
        }
        if let Ok(i) = u32::try_from(i) {
            self.recent[slot] = i;
        }
    }

    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key, i))
            .collect();
    }

    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.entries);
        self.coarse = true;
        self.index.clear();
        self.recent = [0; RECENT];
        let mut map: HashMap<i64, SpreadEntry> = HashMap::new();
        for e in old {
            let k = self.key(e.value);
            let t = map.entry(k).or_insert(SpreadEntry {
                key: k,
                value: self.value(k),
                count: 0,
                ex: Vec::new(),
            });
            t.count += e.count;
            for x in e.ex {
                if t.ex.len() < SPREAD_EXAMPLES {
                    t.ex.push(x);
                }
            }
        }
        let mut v: Vec<SpreadEntry> = map.into_values().collect();
        v.sort_by_key(|e| e.key);
        self.entries = v;
        self.reindex();
    }

    /// The lower median.
    fn median(&self) -> Option<f64> {
        let n: u64 = self.entries.iter().map(|e| e.count).sum();
        if n == 0 {
            return None;
        }
        let mut order: Vec<&SpreadEntry> = self.entries.iter().collect();
        order.sort_by(|a, b| a.value.total_cmp(&b.value));
        let half = n.div_ceil(2);
        let mut cum = 0;
        for e in order {
            cum += e.count;
            if cum >= half {
                return Some(e.value);
            }
        }
        None
    }
}

/// One symbol-day's running metrics.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Day {
    day: i32,
    first: (SourceId, u64),
    rows: u64,
    errors: u64,
    warnings: u64,
    nulls: u64,
    nulls_by_col: Vec<u64>,
    duplicates: u64,
    outliers: u64,
    px_min: f64,
    px_max: f64,
    px_sum: f64,
    px_n: u64,
    mid_sum: f64,
    mid_n: u64,
    volume: f64,
    spreads: Spreads,
}

/// A row waiting in the price-jump window.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct JRow {
    p: f64,
    src: SourceId,
    line: u64,
    ts: i64,
}

/// The price-jump window of one symbol: up to two accepted prices before the row being
/// judged, and the row with up to two after it. Held in place, without a heap vector or
/// queue (this runs for every accepted row); checkpoints store it as [`JumpState`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "JumpState", into = "JumpState")]
struct Jump {
    /// Accepted prices before the row being judged, oldest first: `prev[..np]`.
    prev: [f64; 2],
    np: usize,
    /// Rows waiting to be judged, oldest first: `pend[..nn]`.
    pend: [JRow; 3],
    nn: usize,
    vol: f64,
    /// Absolute returns of the warm-up, `warm[..nw]`, until there are [`WARM`].
    warm: [f64; WARM],
    nw: usize,
    last: Option<f64>,
}

/// How a [`Jump`] is stored in a checkpoint (its fields as vectors).
#[derive(Serialize, Deserialize)]
struct JumpState {
    prev: Vec<f64>,
    pend: Vec<JRow>,
    vol: f64,
    warm: Vec<f64>,
    last: Option<f64>,
}

impl From<Jump> for JumpState {
    fn from(j: Jump) -> Self {
        JumpState {
            prev: j.prev[..j.np].to_vec(),
            pend: j.pend[..j.nn].to_vec(),
            vol: j.vol,
            warm: j.warm[..j.nw].to_vec(),
            last: j.last,
        }
    }
}

impl TryFrom<JumpState> for Jump {
    type Error = String;

    fn try_from(s: JumpState) -> std::result::Result<Self, String> {
        let (np, nn, nw) = (s.prev.len(), s.pend.len(), s.warm.len());
        if np > 2 || nn > 3 || nw > WARM {
            return Err(format!(
                "price-jump window of {np} prices, {nn} rows and {nw} warm-up returns"
            ));
        }
        let mut j = Jump {
            np,
            nn,
            nw,
            vol: s.vol,
            last: s.last,
            ..Jump::default()
        };
        j.prev[..np].copy_from_slice(&s.prev);
        j.pend[..nn].copy_from_slice(&s.pend);
        j.warm[..nw].copy_from_slice(&s.warm);
        Ok(j)
    }
}

/// A price-jump finding.
struct JumpHit {
    row: JRow,
    reference: f64,
    dev: f64,
    limit: f64,
}

fn median_small(v: &mut [f64]) -> f64 {
    // The jump window's sides hold one or two prices: no sort (same result as sorting).
    match *v {
        [a] => return a,
        [a, b] => return 0.5 * (a + b),
        _ => {}
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

impl Jump {
    fn push(&mut self, r: JRow, k: f64, tick: f64, hits: &mut Vec<JumpHit>, ret: &mut Vec<f64>) {
        self.pend[self.nn] = r;
        self.nn += 1;
        if self.nn == 3 {
            self.judge(k, tick, hits, ret);
        }
    }

    /// Judges the oldest waiting row against the accepted rows before it and the waiting
    /// rows after it. A spike deviates from both sides and is left out of the window; a
    /// jump deviates from the rows before but agrees with the rows after (a level shift):
    /// it is a finding too, and the window restarts at the new level, so one shift is one
    /// finding. At the start of a day only the rows after can judge; at its end only the
    /// rows before.
    fn judge(&mut self, k: f64, tick: f64, hits: &mut Vec<JumpHit>, ret: &mut Vec<f64>) {
        if self.nn == 0 {
            return;
        }
        let r = self.pend[0];
        self.pend = [self.pend[1], self.pend[2], JRow::default()];
        self.nn -= 1;
        let (np, nn) = (self.np, self.nn);
        // The row's tick as a fraction of its price: the floor of the volatility.
        let tp = tick_of(r.p, tick) / r.p;
        if np + nn < 2 || self.nw < WARM {
            self.accept(r.p, tp, ret);
            return;
        }
        let limit = k * self.vol.max(tp);
        if np == 2 && nn == 2 {
            // The usual case, a full window on both sides, decided without the general
            // code below when neither side finds the row off (the same arithmetic).
            let mb = 0.5 * (self.prev[0] + self.prev[1]);
            let ma = 0.5 * (self.pend[0].p + self.pend[1].p);
            let off = |m: f64| (r.p - m).abs() > limit * m;
            if !off(mb) && !off(ma) {
                self.accept(r.p, tp, ret);
                return;
            }
        }
        let mut before = self.prev;
        let mut after = [self.pend[0].p, self.pend[1].p];
        let side = |v: &mut [f64]| -> Option<(f64, bool)> {
            if v.is_empty() {
                return None;
            }
            let m = median_small(v);
            // |p - m| / m > limit, without the division (m > 0: prices are positive).
            Some((m, (r.p - m).abs() > limit * m))
        };
        let b = side(&mut before[..np]);
        let a = side(&mut after[..nn]);
        let hit = |reference: f64| JumpHit {
            row: r,
            reference,
            dev: (r.p - reference) / reference,
            limit,
        };
        match (b, a) {
            (Some((m, true)), Some((_, false))) => {
                // A level shift: a finding, and the window restarts at the new level.
                hits.push(hit(m));
                self.prev[0] = r.p;
                self.np = 1;
                self.last = Some(r.p);
            }
            (Some((m, true)), _) | (None, Some((m, true))) => hits.push(hit(m)),
            _ => self.accept(r.p, tp, ret),
        }
    }

    /// Accepts price `p` into the window and the volatility; its return (in basis points)
    /// goes to `ret`, for the returns histogram. `tp` is `p`'s tick over `p`.
    fn accept(&mut self, p: f64, tp: f64, ret: &mut Vec<f64>) {
        if let Some(l) = self.last {
            let r = (p - l) / l;
            ret.push(r * 1e4);
            let a = r.abs();
            if self.nw < WARM {
                self.warm[self.nw] = a;
                self.nw += 1;
                if self.nw == WARM {
                    let mut w = self.warm;
                    self.vol = median_small(&mut w);
                }
            } else {
                let cap = CLIP * self.vol.max(tp);
                self.vol += ALPHA * (a.min(cap) - self.vol);
            }
        }
        self.last = Some(p);
        if self.np == 2 {
            self.prev = [self.prev[1], p];
        } else {
            self.prev[self.np] = p;
            self.np += 1;
        }
    }

    fn end_day(&mut self, k: f64, tick: f64, hits: &mut Vec<JumpHit>, ret: &mut Vec<f64>) {
        while self.nn > 0 {
            self.judge(k, tick, hits, ret);
        }
        self.np = 0;
        self.last = None;
    }
}

/// The price grid at `p`: `tick` at $1 and above, $0.0001 below (SEC Rule 612); one cent when
/// the grid rule is off.
#[inline]
fn tick_of(p: f64, tick: f64) -> f64 {
    if p < 1.0 {
        0.0001
    } else if tick > 0.0 {
        tick
    } else {
        0.01
    }
}

/// Histogram values of the rows seen since the last [`Binned::count`]: counted once per
/// chunk by [`Histogram::add_all`] rather than row by row (the per-row search and the
/// spread's division were a tenth of the stage's row loop).
#[derive(Debug, Default)]
struct Binned {
    /// Returns in basis points, for `returns`.
    returns: Vec<f64>,
    /// Spreads and their mids, for `spreads` (spread / mid in basis points).
    spreads: Vec<f64>,
    mids: Vec<f64>,
}

impl Binned {
    /// Counts the waiting values into `acc`'s histograms and empties itself.
    fn count(&mut self, acc: &mut Acc) {
        if !self.returns.is_empty() {
            acc.returns
                .get_or_insert_with(|| Histogram::new(&RETURN_EDGES))
                .add_all(&self.returns);
            self.returns.clear();
        }
        if !self.spreads.is_empty() {
            if let Some(h) = acc.spreads.as_mut() {
                for (s, m) in self.spreads.iter_mut().zip(&self.mids) {
                    *s = *s / m * 1e4;
                }
                h.add_all(&self.spreads);
            }
            self.spreads.clear();
            self.mids.clear();
        }
    }
}

/// Per-symbol state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Sym {
    last_ts: Option<i64>,
    dup_ts: Option<i64>,
    dup_seen: Vec<u64>,
    day: Option<Day>,
    /// Local time of day of the last in-session row of the current day.
    gap: Option<(i32, i64)>,
    jump: Jump,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    slots: Vec<String>,
    syms: Vec<Sym>,
    acc: Acc,
}

/// What a replay point keeps in memory.
struct ReplayState {
    slots: Vec<String>,
    syms: Vec<Sym>,
    /// Without the closed days and the per-file counts (recorded by length).
    acc: Acc,
    days_len: usize,
}

/// [`Checkpoint`] as written: borrowed, so taking one copies nothing but its encoding.
#[derive(Serialize)]
struct CheckpointRef<'a> {
    slots: &'a [String],
    syms: &'a [Sym],
    acc: &'a Acc,
}

/// The validation stage: all rules of a rule set, per symbol (see the module docs).
pub struct ValidateStage {
    rs: Arc<RuleSet>,
    sink: Arc<Shared>,
    key: StageKey,
    clock: Clock,
    cal: Arc<Calendar>,
    slots: Slots,
    syms: Vec<Sym>,
    pub(crate) acc: Acc,
    pub(crate) log: Option<Vec<Hit>>,
    seen_schema: Option<(SourceId, SchemaRef)>,
    null_cols: Vec<String>,
    bit_rule: Vec<usize>,
    trading: Option<(i32, bool)>,
    finished: bool,
    replay: Replay<ReplayState>,
    binned: Binned,
}

impl std::fmt::Debug for ValidateStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidateStage")
            .field("symbols", &self.syms.len())
            .field("rows", &self.acc.rows)
            .finish()
    }
}

/// Column values shown with a rule's examples and quarantine detail.
fn shown_columns(rule: usize) -> &'static [&'static str] {
    match rule {
        id::NULL_KEY => &["ts", "symbol"],
        id::NONPOSITIVE_PRICE | id::TICK_GRID => &["price", "bid", "ask"],
        id::NONPOSITIVE_SIZE => &["size", "bid_size", "ask_size"],
        id::CROSSED_QUOTE | id::LOCKED_QUOTE => &["bid", "ask"],
        id::TRADE_OUTSIDE_QUOTE => &["price", "bid", "ask"],
        id::BAR_OHLC => &["open", "high", "low", "close", "volume"],
        id::NULL_VALUE => &["price", "size", "bid", "ask"],
        id::TS_ORDER | id::OUTSIDE_SESSION | id::NON_TRADING_DAY | id::SESSION_GAP => &["ts"],
        id::DUPLICATE_ROW => &["ts", "price", "size"],
        _ => &[],
    }
}

/// A column value of row `i` as text.
fn show(chunk: &Chunk, col: &str, i: usize) -> Option<String> {
    let a = chunk.column_by_name(col)?;
    if a.is_null(i) {
        return Some("null".into());
    }
    if col == "ts" {
        // One value, not the column: `Ts::of` would copy the whole column per example.
        return Ts::of_row(chunk, i).map(fmt_ts);
    }
    if let Some(s) = str_col(chunk, col) {
        return s.get(i).map(str::to_string);
    }
    match a.data_type() {
        DataType::Float64
        | DataType::Float32
        | DataType::Int64
        | DataType::Int32
        | DataType::Int8 => crate::cols::to_f64(a, col)
            .ok()
            .map(|f| fmt_num(f.value(i))),
        DataType::Boolean => Some(
            a.as_any()
                .downcast_ref::<BooleanArray>()?
                .value(i)
                .to_string(),
        ),
        _ => None,
    }
}

/// A number as text: integers without a fraction, others with up to 10 significant digits.
pub(crate) fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.10}");
        let s = s.trim_end_matches('0');
        s.trim_end_matches('.').to_string()
    }
}

/// A UTC nanosecond timestamp as RFC 3339.
pub(crate) fn fmt_ts(t: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(t)
        .format("%Y-%m-%dT%H:%M:%S%.fZ")
        .to_string()
}

fn fmt_dur(ns: i64) -> String {
    let s = ns / 1_000_000_000;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.3}s", ns as f64 / 1e9)
    }
}

/// Row `k` of an optional column, `None` when the column is absent or null there.
#[inline(always)]
fn value_at(c: &Option<F64>, k: usize) -> Option<f64> {
    match c {
        Some(c) if c.ok(k) => c.v().get(k).copied(),
        _ => None,
    }
}

/// Marks rows where `fail` holds: the rule's code (error severity) or its warning bit.
#[inline]
fn mark(
    rs: &RuleSet,
    rule: usize,
    code: &mut [u8],
    warn: &mut [u64],
    fail: impl Fn(usize) -> bool,
) {
    let n = code.len();
    mark_each(rs, rule, code, warn, (0..n).map(fail));
}

/// [`mark`] with each row's outcome in order from `fails`.
#[inline]
fn mark_each(
    rs: &RuleSet,
    rule: usize,
    code: &mut [u8],
    warn: &mut [u64],
    fails: impl Iterator<Item = bool>,
) {
    if rs.quarantines(rule) {
        let c = (rule + 1) as u8;
        for (x, f) in code.iter_mut().zip(fails) {
            if f {
                *x = c;
            }
        }
    } else if let Some(b) = rs.warn_bit[rule] {
        let m = 1u64 << b;
        for (w, f) in warn.iter_mut().zip(fails) {
            *w |= m * u64::from(f);
        }
    }
}

/// [`mark`] for a rule on columns `cols`: a row fails when `fail` holds and none of the
/// columns is null there. The columns' nulls are combined once, and a chunk without nulls
/// (the common case) runs a loop that tests no validity bit, which the compiler vectorises.
#[inline]
fn mark_valid(
    rs: &RuleSet,
    rule: usize,
    code: &mut [u8],
    warn: &mut [u64],
    cols: &[&F64],
    fail: impl Fn(usize) -> bool,
) {
    let nulls = cols
        .iter()
        .fold(None, |acc: Option<arrow_buffer::NullBuffer>, c| {
            arrow_buffer::NullBuffer::union(acc.as_ref(), c.nulls())
        });
    match nulls {
        None => mark(rs, rule, code, warn, fail),
        Some(nb) => mark(rs, rule, code, warn, |k| fail(k) && nb.is_valid(k)),
    }
}

/// [`mark_valid`] for a rule on one column that reads only the row's value. After cleaning
/// nearly no chunk has a failing value, so a first pass only asks whether any value fails:
/// without an index, a branch or an early exit, it vectorises. Rows are marked only when one
/// does; marking every chunk's rows as [`mark_valid`] does cost the price and size rules
/// about 25 instructions a row and column (callgrind). Tests for finite
/// values are written `x <= f64::MAX`, not `x < f64::INFINITY` or `is_finite()`: LLVM turns
/// those into bit tests of the value's class, which it does not vectorise (65 million
/// instructions for these rules on 480,000 rows against 11 million).
#[inline]
fn mark_values(
    rs: &RuleSet,
    rule: usize,
    code: &mut [u8],
    warn: &mut [u64],
    col: &F64,
    fail: impl Fn(f64) -> bool,
) {
    let v = col.v();
    if !v.iter().fold(false, |any, &y| any | fail(y)) {
        return;
    }
    match col.nulls() {
        Some(nb) => mark(rs, rule, code, warn, |k| nb.is_valid(k) && fail(v[k])),
        // Values beside the codes, without an index: no bounds check per row.
        None => mark_each(rs, rule, code, warn, v.iter().map(|&y| fail(y))),
    }
}

impl ValidateStage {
    /// A stage for `rs` reporting to `sink`.
    pub(crate) fn new(rs: Arc<RuleSet>, sink: Arc<Shared>, cal: Arc<Calendar>) -> Result<Self> {
        let s = &rs.settings;
        let clock = Clock::new(&s.session_open, &s.session_close, &s.session_timezone)?;
        let key = StageKey::of("validate", &rs.key_text());
        let mut null_cols: Vec<String> = ["price", "size", "bid", "ask"].map(String::from).to_vec();
        for c in &s.not_null {
            if !null_cols.contains(c) {
                null_cols.push(c.clone());
            }
        }
        let mut bit_rule = vec![0usize; 64];
        for (r, b) in rs.warn_bit.iter().enumerate() {
            if let Some(b) = b {
                bit_rule[*b as usize] = r;
            }
        }
        let n = rs.rules.len();
        Ok(ValidateStage {
            rs,
            sink,
            key,
            clock,
            cal,
            slots: Slots::default(),
            syms: Vec::new(),
            acc: Acc::new(n),
            log: None,
            seen_schema: None,
            null_cols,
            bit_rule,
            trading: None,
            finished: false,
            replay: Replay::default(),
            binned: Binned::default(),
        })
    }

    /// Records schema findings for the chunk's source, once per source and schema.
    fn check_schema(&mut self, chunk: &Chunk) {
        let schema = chunk.schema();
        let src = chunk.source();
        if let Some((s, sch)) = &self.seen_schema
            && *s == src
            && Arc::ptr_eq(sch, &schema)
        {
            return;
        }
        self.seen_schema = Some((src, schema.clone()));
        if self.acc.schema.iter().any(|(s, _, _)| *s == src) {
            return;
        }
        let mut problems: Vec<(usize, String)> = Vec::new();
        let has = |n: &str| schema.column_with_name(n).is_some();
        let canon: Vec<Canonical> = schema
            .fields()
            .iter()
            .filter_map(|f| Canonical::from_name(f.name()))
            .collect();
        let mut required: Vec<String> = vec!["ts".into(), "symbol".into()];
        match DatasetKind::detect(&canon) {
            Some(kind) => {
                let key: &[&str] = match kind {
                    DatasetKind::Trades => &["price", "size"],
                    DatasetKind::Quotes => &["bid", "ask"],
                    DatasetKind::Taq => &["price", "size", "bid", "ask"],
                    DatasetKind::Bars => &["open", "high", "low", "close"],
                    DatasetKind::OrderBook => &["event_type", "price", "size"],
                };
                required.extend(key.iter().map(|s| s.to_string()));
            }
            None => problems.push((
                id::SCHEMA_COLUMNS,
                "no price, quote or bar columns: not a tick dataset".into(),
            )),
        }
        required.extend(self.rs.settings.required_columns.iter().cloned());
        for c in required {
            if !has(&c) && !problems.iter().any(|p| p.1.contains(&format!("`{c}`"))) {
                problems.push((id::SCHEMA_COLUMNS, format!("missing column `{c}`")));
            }
        }
        for f in schema.fields() {
            if f.name() == LINE_COLUMN {
                continue;
            }
            let t = f.data_type();
            if !self.acc.col_types.iter().any(|(n, _)| n == f.name()) {
                self.acc.col_types.push((f.name().clone(), t.to_string()));
            }
            let Some(c) = Canonical::from_name(f.name()) else {
                continue;
            };
            let ok = match c {
                Canonical::Ts => match t {
                    DataType::Timestamp(TimeUnit::Nanosecond, Some(z))
                        if z.as_ref() == "UTC" || z.as_ref() == "+00:00" =>
                    {
                        true
                    }
                    DataType::Timestamp(unit, zone) => {
                        problems.push((
                            id::SCHEMA_TYPES,
                            format!(
                                "`ts` is {t}: expected nanoseconds in UTC{}{}",
                                if *unit != TimeUnit::Nanosecond {
                                    " (precision lost)"
                                } else {
                                    ""
                                },
                                if zone.is_none() {
                                    " (no time zone)"
                                } else {
                                    ""
                                }
                            ),
                        ));
                        continue;
                    }
                    _ => false,
                },
                Canonical::Symbol | Canonical::Exchange | Canonical::Conditions => matches!(
                    t,
                    DataType::Utf8
                        | DataType::LargeUtf8
                        | DataType::Utf8View
                        | DataType::Dictionary(_, _)
                ),
                _ => t.is_numeric(),
            };
            if !ok {
                problems.push((
                    id::SCHEMA_TYPES,
                    format!("`{}` is {t}, expected {}", f.name(), c.data_type()),
                ));
            }
        }
        for (rule, p) in problems {
            if self.rs.on(rule) {
                self.acc.schema.push((src, rule, p));
            }
        }
    }

    fn ensure_slots(&mut self, n: usize) {
        if self.syms.len() < n {
            self.syms.resize(n, Sym::default());
        }
    }

    /// Counts a finding of `rule` (not quarantined) on a row, keeps an example and logs it.
    #[allow(clippy::too_many_arguments)]
    fn note(
        acc: &mut Acc,
        log: &mut Option<Vec<Hit>>,
        rs: &RuleSet,
        rule: usize,
        src: SourceId,
        line: u64,
        make: impl FnOnce() -> Ex,
    ) {
        acc.failed[rule] += 1;
        if acc.wants(rule, src, line, rs.settings.examples) {
            acc.keep(rule, make(), rs.settings.examples);
        }
        if let Some(l) = log {
            l.push(Hit {
                rule,
                source: src,
                line,
            });
        }
    }

    /// Closes the symbol-day of `slot`: judges held price-jump rows, spread outliers and the
    /// symbol-day shares, and encodes the day's record.
    fn close_day(&mut self, slot: usize) {
        let rs = self.rs.clone();
        let s = &rs.settings;
        let name = self.slots.names()[slot].clone();
        let sym = &mut self.syms[slot];
        let Some(mut day) = sym.day.take() else {
            return;
        };
        sym.gap = None;
        let date = day_string(day.day);
        if rs.on(id::PRICE_JUMP) {
            let mut hits = Vec::new();
            sym.jump
                .end_day(s.jump_k, s.tick_size, &mut hits, &mut self.binned.returns);
            for h in hits {
                day.outliers += 1;
                day.warnings += 1;
                Self::jump_hit(&mut self.acc, &mut self.log, &rs, &name, h);
            }
        }
        let median = day.spreads.median();
        if rs.on(id::SPREAD_OUTLIER)
            && let Some(med) = median.filter(|m| *m > 0.0)
        {
            let limit = s.spread_k * med;
            let mid = if day.mid_n > 0 {
                day.mid_sum / day.mid_n as f64
            } else {
                0.0
            };
            for e in &day.spreads.entries {
                if e.value <= limit {
                    continue;
                }
                day.outliers += e.count;
                day.warnings += e.count;
                self.acc.failed[id::SPREAD_OUTLIER] += e.count;
                if mid > 0.0
                    && let Some(h) = self.acc.spreads.as_mut()
                {
                    h.add_outlier(e.value / mid * 1e4, e.count);
                }
                for &(src, line, ts) in &e.ex {
                    if let Some(l) = &mut self.log {
                        l.push(Hit {
                            rule: id::SPREAD_OUTLIER,
                            source: src,
                            line,
                        });
                    }
                    if self.acc.wants(id::SPREAD_OUTLIER, src, line, s.examples) {
                        let ex = Ex {
                            source: src,
                            line,
                            symbol: name.clone(),
                            ts: Some(ts),
                            date: None,
                            values: vec![
                                ("spread".into(), fmt_num(e.value)),
                                ("median_spread".into(), fmt_num(med)),
                                ("limit".into(), fmt_num(limit)),
                            ],
                            note: format!(
                                "spread {} is {:.1} × the day's median {}",
                                fmt_num(e.value),
                                e.value / med,
                                fmt_num(med)
                            ),
                        };
                        self.acc.keep(id::SPREAD_OUTLIER, ex, s.examples);
                    }
                }
                // The log needs every row: entries keep only a few lines, so rows beyond
                // them are logged without a line (the Validator counts them, the scorer
                // cannot place them). Tick-grid spreads rarely have more.
            }
        }
        if day.rows >= MIN_GROUP_ROWS {
            let group = |acc: &mut Acc, rule: usize, share: f64, limit: f64, what: String| {
                if !rs.on(rule) {
                    return;
                }
                acc.checked[rule] += 1;
                if share > limit {
                    acc.failed[rule] += 1;
                    if acc.wants(rule, day.first.0, day.first.1, s.examples) {
                        let ex = Ex {
                            source: day.first.0,
                            line: day.first.1,
                            symbol: name.clone(),
                            ts: None,
                            date: Some(date.clone()),
                            values: vec![
                                ("share".into(), format!("{:.4}", share)),
                                ("threshold".into(), format!("{limit}")),
                                ("rows".into(), day.rows.to_string()),
                            ],
                            note: format!(
                                "{name} {date}: {what} {:.2}% > {:.2}%",
                                share * 100.0,
                                limit * 100.0
                            ),
                        };
                        acc.keep(rule, ex, s.examples);
                    }
                }
            };
            let rows = day.rows as f64;
            let (worst, col) = day
                .nulls_by_col
                .iter()
                .enumerate()
                .map(|(i, n)| (*n as f64 / rows, i))
                .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a });
            let colname = self.null_cols.get(col).cloned().unwrap_or_default();
            group(
                &mut self.acc,
                id::NULL_FRACTION,
                worst,
                s.null_threshold,
                format!("nulls in `{colname}`"),
            );
            group(
                &mut self.acc,
                id::DUPLICATE_FRACTION,
                day.duplicates as f64 / rows,
                s.duplicate_threshold,
                "duplicates".into(),
            );
            group(
                &mut self.acc,
                id::OUTLIER_FRACTION,
                day.outliers as f64 / rows,
                s.outlier_threshold,
                "outliers".into(),
            );
        }
        let rec = SymbolDay {
            symbol: name,
            date,
            rows: day.rows,
            errors: day.errors,
            warnings: day.warnings,
            nulls: day.nulls,
            duplicates: day.duplicates,
            outliers: day.outliers,
            min_price: (day.px_n > 0).then_some(day.px_min),
            max_price: (day.px_n > 0).then_some(day.px_max),
            mean_price: (day.px_n > 0).then(|| day.px_sum / day.px_n as f64),
            median_spread: median,
            volume: day.volume,
            file: None,
            line: Some(day.first.1),
            source: Some(day.first.0),
        };
        rec.encode(&mut self.acc.days_bin);
    }

    fn jump_hit(acc: &mut Acc, log: &mut Option<Vec<Hit>>, rs: &RuleSet, name: &str, h: JumpHit) {
        if let Some(sp) = acc.returns.as_mut() {
            sp.add_outlier(h.dev * 1e4, 1);
        }
        let r = h.row;
        Self::note(acc, log, rs, id::PRICE_JUMP, r.src, r.line, || Ex {
            source: r.src,
            line: r.line,
            symbol: name.to_string(),
            ts: Some(r.ts),
            date: None,
            values: vec![
                ("price".into(), fmt_num(r.p)),
                ("reference".into(), fmt_num(h.reference)),
                ("deviation_bps".into(), format!("{:.1}", h.dev * 1e4)),
                ("limit_bps".into(), format!("{:.1}", h.limit * 1e4)),
            ],
            note: format!(
                "price {} is {:.1} bp from its neighbours' median {} (limit {:.1} bp = jump_k × rolling volatility)",
                fmt_num(r.p),
                h.dev * 1e4,
                fmt_num(h.reference),
                h.limit * 1e4
            ),
        });
    }

    /// Closes every open symbol-day and hands the stage's results to the collector (once).
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        for slot in 0..self.syms.len() {
            self.close_day(slot);
        }
        self.binned.count(&mut self.acc);
        let days = crate::day_codec::decode_all(&self.acc.days_bin)
            .ok_or_else(|| Error::Internal("validate: bad symbol-day records".into()))?;
        let acc = std::mem::replace(&mut self.acc, Acc::new(self.rs.rules.len()));
        self.sink.add(acc, days)
    }

    /// The counts so far (for the Validator's summary).
    pub(crate) fn acc(&self) -> &Acc {
        &self.acc
    }
}

impl ValidateStage {
    /// [`Stage::process`] but for the histograms, whose values wait in [`Binned`].
    fn process_chunk(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        if self.finished {
            return Err(Error::Internal("validate: chunk after finish".into()));
        }
        let n = chunk.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.check_schema(&chunk);
        let rs = self.rs.clone();
        let s = &rs.settings;
        let src = chunk.source();
        let lines = chunk.lines().values().clone();
        let ts = Ts::of(&chunk);
        let f = |c: &str| F64::of(&chunk, c);
        let (price, size, mut bid, mut ask) = (f("price")?, f("size")?, f("bid")?, f("ask")?);
        // Trades from the trades-and-quotes join (`quote_match` set) carry the NBBO the join
        // matched: a crossed, locked or missing NBBO is the market's state at the trade,
        // counted by the join, not a defect of the trade row; the quote rules skip it.
        // `trade_outside_quote` still judges the trade against that NBBO.
        let joined = chunk.is_joined_trades();
        let (mut tq_bid, mut tq_ask) = (None, None);
        if joined {
            (tq_bid, tq_ask) = (bid.take(), ask.take());
        }
        let (tq_bid, tq_ask) = if joined {
            (&tq_bid, &tq_ask)
        } else {
            (&bid, &ask)
        };
        let (bsz, asz) = (f("bid_size")?, f("ask_size")?);
        let slots = self.slots.rows(&chunk);
        self.ensure_slots(self.slots.names().len());
        self.acc.rows += n as u64;
        let hashes = row_hashes(&chunk);
        {
            let sum = hashes.iter().fold(0u64, |a, h| a.wrapping_add(*h));
            let e = self.acc.file(src);
            e.1 += n as u64;
            e.2 = e.2.wrapping_add(sum);
        }
        {
            let batch = chunk.batch();
            let schema = batch.schema();
            for (fld, a) in schema.fields().iter().zip(batch.columns()) {
                if fld.name() == LINE_COLUMN {
                    continue;
                }
                let k = a.logical_null_count() as u64;
                match self.acc.col_nulls.iter_mut().find(|(c, _)| c == fld.name()) {
                    Some(e) => e.1 += k,
                    None => self.acc.col_nulls.push((fld.name().clone(), k)),
                }
            }
        }

        // 1. Row-local rules, column-wise. Error rules are marked from the last to the first,
        // so a row's code is the first error rule it breaks.
        let mut code = vec![0u8; n];
        let mut warn = vec![0u64; n];
        let sym_col = chunk.column_by_name("symbol").cloned();
        for (i, c) in rs.custom.iter().rev() {
            let fail: Vec<bool> = match c {
                Check::Expr(e, _) => e
                    .eval(&chunk)?
                    .into_iter()
                    .map(|x| x == Some(false))
                    .collect(),
                Check::Closure(f) => {
                    let b = f(&chunk)?;
                    if b.len() != n {
                        return Err(Error::Internal(format!(
                            "rule `{}` returned {} values for {n} rows",
                            rs.rules[*i].info.name,
                            b.len()
                        )));
                    }
                    (0..n).map(|k| b.is_valid(k) && !b.value(k)).collect()
                }
            };
            mark(&rs, *i, &mut code, &mut warn, |k| fail[k]);
        }
        if rs.on(id::ALLOWED_VALUES) {
            for (col, list) in &s.allowed {
                let Some(sc) = str_col(&chunk, col) else {
                    continue;
                };
                let fail: Vec<bool> = (0..n)
                    .map(|k| sc.get(k).is_some_and(|v| !list.iter().any(|a| a == v)))
                    .collect();
                mark(&rs, id::ALLOWED_VALUES, &mut code, &mut warn, |k| fail[k]);
            }
        }
        if rs.on(id::TRADE_OUTSIDE_QUOTE)
            && let (Some(p), Some(b), Some(a)) = (&price, tq_bid, tq_ask)
        {
            let (pv, bv, av) = (p.v(), b.v(), a.v());
            mark_valid(
                &rs,
                id::TRADE_OUTSIDE_QUOTE,
                &mut code,
                &mut warn,
                &[p, b, a],
                |k| {
                    let sp = av[k] - bv[k];
                    (sp > 0.0) & (pv[k] > 0.0) & ((pv[k] < bv[k] - sp) | (pv[k] > av[k] + sp))
                },
            );
        }
        if rs.on(id::TICK_GRID) {
            for col in [&price, &bid, &ask].into_iter().flatten() {
                // Prices in ticks, by multiplication (a division per value cost more than
                // the rest of the rule; the 1e-6 tolerance dwarfs the rounding difference).
                let per_tick = 1.0 / s.tick_size;
                mark_values(&rs, id::TICK_GRID, &mut code, &mut warn, col, |x| {
                    let q = x * if x < 1.0 { 10_000.0 } else { per_tick };
                    let off = (q - rint(q)).abs() > 1e-6;
                    off & (x > 0.0) & (x <= f64::MAX)
                });
            }
        }
        if rs.on(id::LOCKED_QUOTE)
            && let (Some(b), Some(a)) = (&bid, &ask)
        {
            let (bv, av) = (b.v(), a.v());
            mark_valid(&rs, id::LOCKED_QUOTE, &mut code, &mut warn, &[b, a], |k| {
                bv[k] == av[k]
            });
        }
        // Rows with a null in a value column: the `null_value` rule and the day's metrics.
        let null_arrays: Vec<Option<arrow_buffer::NullBuffer>> = self
            .null_cols
            .iter()
            .map(|c| {
                if joined && (c == "bid" || c == "ask") {
                    return None;
                }
                chunk
                    .column_by_name(c)
                    .and_then(|a| a.logical_nulls())
                    .filter(|n| n.null_count() > 0)
            })
            .collect();
        // Null where any of those columns is: their validity bits ANDed a word at a time
        // (a per-row test of each column was about 1% of a standalone `validate`).
        let has_null: Option<arrow_buffer::NullBuffer> =
            null_arrays.iter().flatten().fold(None, |acc, nb| {
                arrow_buffer::NullBuffer::union(acc.as_ref(), Some(nb))
            });
        if rs.on(id::NULL_VALUE)
            && let Some(h) = &has_null
        {
            mark(&rs, id::NULL_VALUE, &mut code, &mut warn, |k| h.is_null(k));
        }
        if rs.on(id::BOUNDS) {
            for (col, lo, hi) in &s.bounds {
                let Some(c) = F64::of(&chunk, col)? else {
                    continue;
                };
                let (lo, hi) = (lo.unwrap_or(f64::NEG_INFINITY), hi.unwrap_or(f64::INFINITY));
                mark_values(&rs, id::BOUNDS, &mut code, &mut warn, &c, |x| {
                    (x < lo) | (x > hi)
                });
            }
        }
        if rs.on(id::BAR_OHLC) {
            let (o, h, l, c, vol) = (f("open")?, f("high")?, f("low")?, f("close")?, f("volume")?);
            if let (Some(o), Some(h), Some(l), Some(c)) = (&o, &h, &l, &c) {
                let (ov, hv, lv, cv) = (o.v(), h.v(), l.v(), c.v());
                mark_valid(
                    &rs,
                    id::BAR_OHLC,
                    &mut code,
                    &mut warn,
                    &[o, h, l, c],
                    |k| (hv[k] < ov[k].max(cv[k]).max(lv[k])) | (lv[k] > ov[k].min(cv[k])),
                );
            }
            if let Some(v) = &vol {
                mark_values(&rs, id::BAR_OHLC, &mut code, &mut warn, v, |x| x < 0.0);
            }
        }
        if rs.on(id::CROSSED_QUOTE)
            && let (Some(b), Some(a)) = (&bid, &ask)
        {
            let (bv, av) = (b.v(), a.v());
            mark_valid(&rs, id::CROSSED_QUOTE, &mut code, &mut warn, &[b, a], |k| {
                bv[k] > av[k]
            });
        }
        if rs.on(id::NONPOSITIVE_SIZE) {
            if let Some(c) = &size {
                mark_values(&rs, id::NONPOSITIVE_SIZE, &mut code, &mut warn, c, |x| {
                    !((x > 0.0) & (x <= f64::MAX))
                });
            }
            for c in [&bsz, &asz].into_iter().flatten() {
                mark_values(&rs, id::NONPOSITIVE_SIZE, &mut code, &mut warn, c, |x| {
                    !(0.0..=f64::MAX).contains(&x)
                });
            }
        }
        if rs.on(id::NONPOSITIVE_PRICE) {
            for c in [&price, &bid, &ask].into_iter().flatten() {
                mark_values(&rs, id::NONPOSITIVE_PRICE, &mut code, &mut warn, c, |x| {
                    !((x > 0.0) & (x <= f64::MAX))
                });
            }
        }
        if rs.on(id::NULL_KEY) {
            let sym_nulls = sym_col
                .as_ref()
                .and_then(|a| a.logical_nulls())
                .filter(|n| n.null_count() > 0);
            let ts_nulls = ts.as_ref().is_some_and(|t| (0..n).any(|k| t.is_null(k)));
            if sym_nulls.is_some() || ts_nulls {
                mark(&rs, id::NULL_KEY, &mut code, &mut warn, |k| {
                    ts.as_ref().is_some_and(|t| t.is_null(k))
                        || sym_nulls.as_ref().is_some_and(|nb| nb.is_null(k))
                });
            }
        }

        // 2. One pass in row order: stateful rules, symbol-days, examples.
        let cal_on = self.cal.kind() != crate::calendar::CalendarKind::None;
        let (open, close) = (self.clock.open, self.clock.close);
        let gap_ns = s.max_gap_ns.filter(|_| rs.on(id::SESSION_GAP));
        let mut errors: Vec<(usize, usize)> = Vec::new();
        let mut jump_hits: Vec<JumpHit> = Vec::new();
        let ex_values = |rule: usize, k: usize| -> Vec<(String, String)> {
            shown_columns(rule)
                .iter()
                .filter_map(|c| show(&chunk, c, k).map(|v| ((*c).to_string(), v)))
                .collect()
        };
        for k in 0..n {
            let slot = slots[k] as usize;
            let line = lines[k];
            let t = ts.as_ref().and_then(|t| t.get(k));
            let dt = t.map(|t| self.clock.day_tod(t));
            let mut c = code[k] as usize;
            let sym = &mut self.syms[slot];
            let prev = sym.last_ts;
            if t.is_some() {
                sym.last_ts = t;
            }
            // Stateful checks (read-only so far).
            let tso = rs.on(id::TS_ORDER) && matches!((t, prev), (Some(t), Some(p)) if t < p);
            let dup = rs.on(id::DUPLICATE_ROW)
                && t.is_some()
                && sym.dup_ts == t
                && sym.dup_seen.contains(&hashes[k]);
            let (mut ntd, mut outside, mut gap) = (false, false, None);
            if cal_on && let Some((d, tod)) = dt {
                let trading = match self.trading {
                    Some((dd, tt)) if dd == d => tt,
                    _ => {
                        let tt = self.cal.is_trading_day(d);
                        self.trading = Some((d, tt));
                        tt
                    }
                };
                ntd = !trading;
                outside = trading && (tod < open || tod >= close);
                if trading
                    && !outside
                    && let Some(g) = gap_ns
                {
                    let since = match self.syms[slot].gap {
                        Some((gd, last)) if gd == d => tod - last,
                        _ => tod - open,
                    };
                    if since > g {
                        gap = Some(since);
                    }
                }
            }
            let sym = &mut self.syms[slot];
            // The stateful rules' findings, in rule order. Most rows break none of them:
            // that is tested once, not rule by rule.
            let stateful_hits = [
                (id::TS_ORDER, tso),
                (id::DUPLICATE_ROW, dup),
                (id::NON_TRADING_DAY, ntd),
                (id::OUTSIDE_SESSION, outside),
                (id::SESSION_GAP, gap.is_some()),
            ];
            let stateful = tso || dup || ntd || outside || gap.is_some();
            if c == 0 && stateful {
                for (rule, hit) in stateful_hits {
                    if hit && rs.quarantines(rule) {
                        c = rule + 1;
                        break;
                    }
                }
            }
            // The symbol-day: a new day opens on an in-order row of a later (or other) date.
            let open_new = match (&sym.day, dt) {
                (None, _) => true,
                (Some(d), Some((day, _))) => c == 0 && !tso && d.day != day,
                _ => false,
            };
            if open_new {
                if sym.day.is_some() {
                    self.close_day(slot);
                }
                let d = dt.map_or(0, |x| x.0);
                self.syms[slot].day = Some(Day {
                    day: d,
                    first: (src, line),
                    nulls_by_col: vec![0; self.null_cols.len()],
                    px_min: f64::INFINITY,
                    px_max: f64::NEG_INFINITY,
                    ..Day::default()
                });
            }
            let sym = &mut self.syms[slot];
            let Some(day) = sym.day.as_mut() else {
                return Err(Error::Internal("validate: no open symbol-day".into()));
            };
            day.rows += 1;
            if c != 0 {
                let rule = c - 1;
                day.errors += 1;
                code[k] = c as u8;
                errors.push((k, rule));
                continue;
            }
            // An accepted row.
            if let Some(h) = &has_null
                && h.is_null(k)
            {
                day.nulls += 1;
                for (j, nb) in null_arrays.iter().enumerate() {
                    if nb.as_ref().is_some_and(|nb| nb.is_null(k)) {
                        day.nulls_by_col[j] += 1;
                    }
                }
            }
            // Positive finite values only (`x <= f64::MAX` is false for NaN and infinity).
            let p = match value_at(&price, k) {
                Some(x) if (x > 0.0) & (x <= f64::MAX) => Some(x),
                _ => None,
            };
            let quote = match (value_at(&bid, k), value_at(&ask, k)) {
                (Some(b), Some(a)) if (b > 0.0) & (a >= b) & (a <= f64::MAX) => Some((b, a)),
                _ => None,
            };
            let series = match (p, quote) {
                (Some(x), _) => Some(x),
                (None, Some((b, a))) => Some(0.5 * (a + b)),
                _ => None,
            };
            if let Some(x) = series {
                day.px_min = day.px_min.min(x);
                day.px_max = day.px_max.max(x);
                day.px_sum += x;
                day.px_n += 1;
            }
            if let Some(v) = value_at(&size, k)
                && (v > 0.0) & (v <= f64::MAX)
            {
                day.volume += v;
            }
            if let Some((b, a)) = quote {
                let mid = 0.5 * (a + b);
                day.mid_sum += mid;
                day.mid_n += 1;
                if rs.on(id::SPREAD_OUTLIER) || rs.on(id::OUTLIER_FRACTION) {
                    day.spreads.add(a - b, src, line, t.unwrap_or(0));
                }
                self.binned.spreads.push(a - b);
                self.binned.mids.push(mid);
            }
            if dup {
                day.duplicates += 1;
            }
            let w = warn[k];
            let mut findings = w.count_ones() as u64;
            if stateful {
                for (rule, hit) in stateful_hits {
                    if hit {
                        findings += 1;
                        let names = self.slots.names();
                        Self::note(&mut self.acc, &mut self.log, &rs, rule, src, line, || Ex {
                            source: src,
                            line,
                            symbol: names[slot].clone(),
                            ts: t,
                            date: None,
                            values: ex_values(rule, k),
                            note: match rule {
                                id::TS_ORDER => format!(
                                    "earlier than the previous row of the symbol ({})",
                                    prev.map(fmt_ts).unwrap_or_default()
                                ),
                                id::DUPLICATE_ROW => {
                                    "same values as an earlier row at this timestamp".into()
                                }
                                id::NON_TRADING_DAY => "not a trading day".into(),
                                id::OUTSIDE_SESSION => "outside the session hours".into(),
                                _ => format!(
                                    "no row for {} inside the session",
                                    fmt_dur(gap.unwrap_or(0))
                                ),
                            },
                        });
                    }
                }
            }
            let mut bits = w;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let rule = self.bit_rule[b];
                let names = self.slots.names();
                let values = || match &rs.rules[rule].info.category {
                    crate::rules::Category::Custom => {
                        let mut cols = Vec::new();
                        if let Some((_, Check::Expr(e, _))) =
                            rs.custom.iter().find(|(r, _)| *r == rule)
                        {
                            e.columns(&mut cols);
                        }
                        cols.iter()
                            .filter_map(|c| show(&chunk, c, k).map(|v| (c.clone(), v)))
                            .collect()
                    }
                    _ => ex_values(rule, k),
                };
                Self::note(&mut self.acc, &mut self.log, &rs, rule, src, line, || Ex {
                    source: src,
                    line,
                    symbol: names[slot].clone(),
                    ts: t,
                    date: None,
                    values: values(),
                    note: rs.rules[rule].info.description.clone(),
                });
            }
            let sym = &mut self.syms[slot];
            let Some(day) = sym.day.as_mut() else {
                return Err(Error::Internal("validate: no open symbol-day".into()));
            };
            day.warnings += findings;
            // State updates of an accepted row.
            if let Some(t) = t {
                if sym.dup_ts == Some(t) {
                    if !dup {
                        sym.dup_seen.push(hashes[k]);
                    }
                } else {
                    sym.dup_ts = Some(t);
                    sym.dup_seen.clear();
                    sym.dup_seen.push(hashes[k]);
                }
            }
            if let Some((d, tod)) = dt
                && !ntd
                && !outside
            {
                sym.gap = Some((d, tod));
            }
            if rs.on(id::PRICE_JUMP)
                && let Some(x) = series
            {
                sym.jump.push(
                    JRow {
                        p: x,
                        src,
                        line,
                        ts: t.unwrap_or(0),
                    },
                    s.jump_k,
                    s.tick_size,
                    &mut jump_hits,
                    &mut self.binned.returns,
                );
                if !jump_hits.is_empty() {
                    let name = self.slots.names()[slot].clone();
                    for h in jump_hits.drain(..) {
                        day.outliers += 1;
                        day.warnings += 1;
                        Self::jump_hit(&mut self.acc, &mut self.log, &rs, &name, h);
                    }
                }
            }
        }

        // 3. Quarantine the error rows with rule, severity and values; emit the rest.
        if errors.is_empty() {
            out.emit(chunk);
            return Ok(());
        }
        for &(k, rule) in &errors {
            let line = lines[k];
            self.acc.failed[rule] += 1;
            let values = ex_values(rule, k);
            let sev = rs.rules[rule].severity.unwrap_or(Severity::Error);
            let name = &rs.rules[rule].info.name;
            let detail = format!(
                "{name} ({sev}): {}",
                if values.is_empty() {
                    rs.rules[rule].info.description.clone()
                } else {
                    values
                        .iter()
                        .map(|(c, v)| format!("{c}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            );
            if self.acc.wants(rule, src, line, s.examples) {
                let symbol = self.slots.names()[slots[k] as usize].clone();
                let ex = Ex {
                    source: src,
                    line,
                    symbol,
                    ts: ts.as_ref().and_then(|t| t.get(k)),
                    date: None,
                    values,
                    note: rs.rules[rule].info.description.clone(),
                };
                self.acc.keep(rule, ex, s.examples);
            }
            if let Some(l) = &mut self.log {
                l.push(Hit {
                    rule,
                    source: src,
                    line,
                });
            }
            out.quarantine_one(Reject::quarantined(src, line, name.clone(), detail, None));
        }
        if code.iter().all(|&c| c == 0) {
            // After cleaning, nearly every chunk: no copy (filtering was 2.6% of a run).
            out.emit(chunk);
        } else {
            let keep = BooleanArray::from(BooleanBuffer::collect_bool(n, |k| code[k] == 0));
            out.emit(chunk.filter(&keep)?);
        }
        Ok(())
    }
}

impl Stage for ValidateStage {
    fn name(&self) -> &str {
        "validate"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        self.key
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let r = self.process_chunk(chunk, out);
        self.binned.count(&mut self.acc);
        r
    }

    fn finish(&mut self, _out: &mut Emitter) -> Result<()> {
        self.flush()
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        // `TPV3`, the closed symbol-days (already encoded, in the order they closed), the
        // JSON of the rest of the state, then the days' length (8 bytes). The days come
        // first and their length last: the days only grow, so consecutive checkpoints share
        // their front, which the run manifest stores once (it keeps large states in pieces
        // named by their bytes). (`TPV2` was the JSON's length and the JSON, then the days;
        // `TPV1` the same with the days as JSON lines; restore reads both.)
        let cp = CheckpointRef {
            slots: self.slots.names(),
            syms: &self.syms,
            acc: &self.acc,
        };
        let days = &self.acc.days_bin;
        let mut out = Vec::with_capacity(12 + days.len() + 64 * 1024);
        out.extend_from_slice(b"TPV3");
        out.extend_from_slice(days);
        serde_json::to_writer(&mut out, &cp)
            .map_err(|e| Error::Internal(format!("validate checkpoint: {e}")))?;
        out.extend_from_slice(&(days.len() as u64).to_le_bytes());
        Ok(Some(out))
    }

    /// A clone kept in memory (see [`Replay`]), of everything but the parts that grow with
    /// the run: the closed symbol-days (append-only) and the per-file counts are recorded by
    /// length, and restoring truncates them and undoes changes to older file entries.
    /// Encoding the state as JSON at every input start cost 5% of a run over 6,291 small
    /// files, and copying the per-file counts made the n-th input's start cost O(n).
    fn replay_point(&mut self) -> Result<Option<Vec<u8>>> {
        self.acc.files_mark = self.acc.files.len();
        self.acc.files_undo.clear();
        let days = std::mem::take(&mut self.acc.days_bin);
        let files = std::mem::take(&mut self.acc.files);
        let saved = ReplayState {
            slots: self.slots.names().to_vec(),
            syms: self.syms.clone(),
            acc: self.acc.clone(),
            days_len: days.len(),
        };
        self.acc.days_bin = days;
        self.acc.files = files;
        Ok(Some(self.replay.save(saved)))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let bad = |m: &str| Error::Internal(format!("validate restore: {m}"));
        if Replay::<()>::is_token(state) {
            let saved = self.replay.get(state)?;
            let (n, f) = (saved.days_len, saved.acc.files_mark);
            if n > self.acc.days_bin.len() || f > self.acc.files.len() {
                return Err(bad(
                    "the closed days or file counts are behind the replay point",
                ));
            }
            let mut days = std::mem::take(&mut self.acc.days_bin);
            days.truncate(n);
            let mut files = std::mem::take(&mut self.acc.files);
            files.truncate(f);
            for (i, old) in self.acc.files_undo.drain(..) {
                if let Some(e) = files.get_mut(i) {
                    *e = old;
                }
            }
            self.slots = Slots::from_names(saved.slots.clone());
            self.syms = saved.syms.clone();
            // Later changes are undone relative to the same replay point (`files_mark`).
            self.acc = saved.acc.clone();
            self.acc.days_bin = days;
            self.acc.files = files;
        } else {
            if state.len() < 12 || !matches!(&state[..4], b"TPV1" | b"TPV2" | b"TPV3") {
                return Err(bad("not a validation checkpoint"));
            }
            let v3 = &state[..4] == b"TPV3";
            // The length of the days (`TPV3`, at the end) or of the JSON (at the start).
            let mut len = [0u8; 8];
            len.copy_from_slice(if v3 {
                &state[state.len() - 8..]
            } else {
                &state[4..12]
            });
            let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| bad("length"))?;
            let end = len.checked_add(4).ok_or_else(|| bad("length"))?;
            let (head, days) = if v3 {
                let days = state
                    .get(4..end)
                    .filter(|_| end <= state.len() - 8)
                    .ok_or_else(|| bad("truncated"))?;
                (&state[end..state.len() - 8], days)
            } else {
                let head = state.get(12..end + 8).ok_or_else(|| bad("truncated"))?;
                (head, &state[end + 8..])
            };
            let cp: Checkpoint = serde_json::from_slice(head).map_err(|e| bad(&e.to_string()))?;
            let days = if &state[..4] != b"TPV1" {
                if !crate::day_codec::check_all(days) {
                    return Err(bad("bad symbol-day records"));
                }
                days.to_vec()
            } else {
                let text = std::str::from_utf8(days).map_err(|e| bad(&e.to_string()))?;
                let mut bin = Vec::with_capacity(text.len() / 2);
                for line in text.lines() {
                    SymbolDay::from_json(line)
                        .map_err(|e| bad(&e.to_string()))?
                        .encode(&mut bin);
                }
                bin
            };
            self.slots = Slots::from_names(cp.slots);
            self.syms = cp.syms;
            for s in &mut self.syms {
                if let Some(d) = &mut s.day {
                    d.spreads.reindex();
                }
            }
            self.acc = cp.acc;
            self.acc.days_bin = days;
        }
        self.seen_schema = None;
        self.trading = None;
        self.finished = false;
        Ok(())
    }
}

/// Parses an extra-holidays list.
pub(crate) fn holidays(list: &[String]) -> Result<Vec<NaiveDate>> {
    list.iter()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| Error::config("validation.holidays", format!("`{d}` is not a date")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint keeps the closed days in their binary form, first (`TPV3`); ones
    /// written with them after the rest of the state (`TPV2`) or as JSON lines (`TPV1`,
    /// before 2026-12-07) restore to the same days and checkpoint as `TPV3` again; cut
    /// checkpoints are refused; a day closed later leaves the checkpoint's front as it was.
    #[test]
    fn checkpoints_of_every_day_form_restore() {
        let plan = crate::ValidationPlan::from_config(
            &pipeline_core::Config::default(),
            crate::Mode::Standalone,
        )
        .unwrap();
        let mut a = plan.stage().unwrap();
        let day = |symbol: &str, mean: f64| SymbolDay {
            symbol: symbol.into(),
            date: "2024-01-02".into(),
            rows: 7,
            errors: 1,
            warnings: 2,
            nulls: 0,
            duplicates: 0,
            outliers: 3,
            min_price: Some(9.5),
            max_price: None,
            mean_price: Some(mean),
            median_spread: Some(0.01),
            volume: 700.0,
            file: None,
            line: Some(12),
            source: Some(1),
        };
        let days = [day("A", 10.0 / 3.0), day("B", 0.1 + 0.2)];
        for d in &days {
            d.encode(&mut a.acc.days_bin);
        }
        let v3 = a.checkpoint().unwrap().unwrap();
        assert_eq!(&v3[..4], b"TPV3");
        let n = a.acc.days_bin.len();
        assert_eq!(&v3[4..4 + n], a.acc.days_bin.as_slice());
        assert_eq!(v3[v3.len() - 8..], (n as u64).to_le_bytes());
        let json = &v3[4 + n..v3.len() - 8];
        // The forms before it: the JSON's length and the JSON, then the days, in binary
        // (`TPV2`) or as JSON lines (`TPV1`).
        let mut v2 = b"TPV2".to_vec();
        v2.extend_from_slice(&(json.len() as u64).to_le_bytes());
        v2.extend_from_slice(json);
        let mut v1 = v2.clone();
        v1[..4].copy_from_slice(b"TPV1");
        v2.extend_from_slice(&a.acc.days_bin);
        for d in &days {
            v1.extend_from_slice(serde_json::to_string(d).unwrap().as_bytes());
            v1.push(b'\n');
        }
        for state in [&v3, &v2, &v1] {
            let mut b = plan.stage().unwrap();
            b.restore(state).unwrap();
            assert_eq!(b.acc.days_bin, a.acc.days_bin);
            assert_eq!(b.checkpoint().unwrap().unwrap(), v3);
        }
        for state in [&v3, &v2] {
            let mut b = plan.stage().unwrap();
            assert!(b.restore(&state[..state.len() - 3]).is_err());
            assert!(b.restore(&state[..13]).is_err());
        }
        // A day closed later leaves the front of the checkpoint as it was.
        day("C", 1.5).encode(&mut a.acc.days_bin);
        let later = a.checkpoint().unwrap().unwrap();
        assert_eq!(later[..4 + n], v3[..4 + n]);
    }

    /// The in-place window is stored as the vectors it replaced: a checkpoint written before
    /// reads back, and one read back judges the next rows as the original does.
    #[test]
    fn jump_windows_round_trip_through_their_stored_form() {
        let mut ret = Vec::new();
        let mut hits = Vec::new();
        let mut j = Jump::default();
        let prices = [
            100.0, 100.01, 100.02, 100.0, 99.99, 100.01, 100.02, 100.0, 100.01, 100.0, 100.02,
            100.01,
        ];
        for (line, p) in prices.iter().enumerate() {
            let r = JRow {
                p: *p,
                src: 0,
                line: line as u64,
                ts: 0,
            };
            j.push(r, 8.0, 0.01, &mut hits, &mut ret);
        }
        assert_eq!((j.np, j.nn, j.nw), (2, 2, WARM));
        let text = serde_json::to_string(&j).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["prev"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["pend"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["warm"].as_array().map(Vec::len), Some(WARM));
        let mut back: Jump = serde_json::from_str(&text).unwrap();
        // A spike after the restore: both windows find it, with the same reference.
        let mut found = 0;
        for (line, p) in [(12, 100.01), (13, 130.0), (14, 100.0), (15, 100.01)] {
            let r = JRow {
                p,
                src: 0,
                line,
                ts: 0,
            };
            j.push(r, 8.0, 0.01, &mut hits, &mut ret);
            let mut other = Vec::new();
            back.push(r, 8.0, 0.01, &mut other, &mut ret);
            assert_eq!(hits.len(), other.len());
            found += other.len();
            for (a, b) in hits.drain(..).zip(other) {
                assert_eq!((a.row.line, a.reference), (b.row.line, b.reference));
            }
        }
        assert_eq!(found, 1, "the spike to 130");
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            serde_json::to_string(&back).unwrap()
        );
        // The form written before this change (vectors) reads; an oversized one is refused.
        let old = r#"{"prev":[1.0],"pend":[{"p":2.0,"src":1,"line":7,"ts":5}],"vol":0.5,"warm":[],"last":1.0}"#;
        let j: Jump = serde_json::from_str(old).unwrap();
        assert_eq!((j.np, j.nn, j.nw, j.pend[0].line), (1, 1, 0, 7));
        let big = r#"{"prev":[1.0,2.0,3.0],"pend":[],"vol":0.0,"warm":[],"last":null}"#;
        assert!(serde_json::from_str::<Jump>(big).is_err());
    }

    #[test]
    fn median_small_of_one_two_and_more() {
        assert_eq!(median_small(&mut [3.0]), 3.0);
        assert_eq!(median_small(&mut [4.0, 2.0]), 3.0);
        assert_eq!(median_small(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median_small(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn spreads_count_each_value_whatever_the_order() {
        let mut s = Spreads::default();
        // Repeats (the last-entry hint), alternation, and more than 16 distinct values (the
        // index) in one stream.
        let values: Vec<f64> = (0..40)
            .flat_map(|i| [0.01, 0.01 * f64::from(i % 20 + 1), 0.01])
            .collect();
        for (line, v) in values.iter().enumerate() {
            s.add(*v, 0, line as u64, 0);
        }
        let total: u64 = s.entries.iter().map(|e| e.count).sum();
        assert_eq!(total, values.len() as u64);
        let cent = s.entries.iter().find(|e| e.key == 10_000_000).unwrap();
        assert_eq!(cent.count, 80 + 2);
        assert_eq!(cent.value, 0.01);
        assert_eq!(s.entries.len(), 20);
        assert_eq!(s.median(), Some(0.01));
    }

    #[test]
    fn coarse_spreads_keep_their_counts() {
        let mut s = Spreads::default();
        for i in 0..(EXACT_SPREADS + 10) {
            s.add(0.01 + i as f64 * 1e-6, 0, i as u64, 0);
        }
        s.add(0.0, 0, 0, 0);
        assert!(s.coarse);
        let total: u64 = s.entries.iter().map(|e| e.count).sum();
        assert_eq!(total, EXACT_SPREADS as u64 + 11);
        let zero = s.entries.iter().find(|e| e.key == i64::MIN).unwrap();
        assert_eq!((zero.count, zero.value), (1, 0.0));
    }
}
