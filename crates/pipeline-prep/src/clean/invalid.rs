//! Invalid rows: non-positive prices and sizes, crossed quotes.

use arrow_array::{Array, BooleanArray, Float64Array};
use pipeline_core::{Chunk, Emitter, Result, Stage, StageKey};
use serde::{Deserialize, Serialize};

use super::cols::f64_col;

/// Which invalid-row rules [`InvalidRows`] applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvalidConfig {
    /// Rule `nonpositive_price`: drop rows whose `price` (and, with `check_quote_prices`,
    /// `bid` or `ask`) is ≤ 0 or not finite. Default true.
    pub nonpositive_price: bool,
    /// Also apply `nonpositive_price` to `bid` and `ask`. Default true: a zero quote is a
    /// missing quote in every TAQ feed we know.
    pub check_quote_prices: bool,
    /// Rule `nonpositive_size`: drop rows whose `size` is ≤ 0 or not finite. Default true.
    pub nonpositive_size: bool,
    /// Also apply `nonpositive_size` to `bid_size` and `ask_size`. Default false: an empty
    /// book side legitimately shows size 0 in some feeds.
    pub check_quote_sizes: bool,
    /// Rule `crossed_quote`: drop rows with `bid > ask`. Default true.
    pub crossed_quote: bool,
    /// Also drop locked quotes (`bid == ask`) under `crossed_quote`. Default false.
    pub drop_locked: bool,
}

impl Default for InvalidConfig {
    fn default() -> Self {
        InvalidConfig {
            nonpositive_price: true,
            check_quote_prices: true,
            nonpositive_size: true,
            check_quote_sizes: false,
            crossed_quote: true,
            drop_locked: false,
        }
    }
}

/// Drops invalid rows, row by row (no state).
///
/// * `nonpositive_price`: `price ≤ 0` (and `bid ≤ 0` or `ask ≤ 0` when `check_quote_prices`).
/// * `nonpositive_size`: `size ≤ 0` (and quote sizes when `check_quote_sizes`).
/// * `crossed_quote`: `bid > ask` (and `bid == ask` when `drop_locked`).
///
/// Rows of trades joined to quotes (a `quote_match` column) are judged on their price and
/// size only: their `bid`/`ask` are the NBBO the join matched.
///
/// A row is charged to the first rule it breaks, in that order. Null values break no rule
/// (missing values are the missing-value stage's business) and an absent column makes the
/// rules that read it no-ops. An order-book trading-halt message (LOBSTER type 7, whose
/// price is a flag: -1 halt, 0 quote, 1 resume, and whose size is 0) breaks no price or
/// size rule.
#[derive(Debug, Clone, Default)]
pub struct InvalidRows {
    cfg: InvalidConfig,
}

impl InvalidRows {
    /// A stage with `cfg`.
    pub fn new(cfg: InvalidConfig) -> Self {
        InvalidRows { cfg }
    }
}

/// Marks `code[i] = k` on the rows where `col` is valid and not a finite positive number.
fn mark_nonpositive(code: &mut [u8], col: &Option<Float64Array>, k: u8) {
    let Some(c) = col else { return };
    let v = c.values();
    let bad = |x: f64| x.is_nan() || x <= 0.0 || x.is_infinite();
    match c.nulls().filter(|n| n.null_count() > 0) {
        None => {
            // A select rather than a branch, so the loop vectorises.
            for (k0, &x) in code.iter_mut().zip(v.iter()) {
                *k0 = if bad(x) { k } else { *k0 };
            }
        }
        Some(nulls) => {
            for (i, (k0, &x)) in code.iter_mut().zip(v.iter()).enumerate() {
                if nulls.is_valid(i) && bad(x) {
                    *k0 = k;
                }
            }
        }
    }
}

/// Marks `code[i] = 3` on the rows where both quotes are valid and `bid > ask` (or
/// `bid == ask` with `locked`).
fn mark_crossed(code: &mut [u8], bid: &Float64Array, ask: &Float64Array, locked: bool) {
    let nulls = arrow_buffer::NullBuffer::union(bid.nulls(), ask.nulls());
    let (b, a) = (bid.values(), ask.values());
    for (i, k) in code.iter_mut().enumerate() {
        let crossed = b[i] > a[i] || (locked && b[i] == a[i]);
        if crossed && nulls.as_ref().is_none_or(|n| n.is_valid(i)) {
            *k = 3;
        }
    }
}

impl Stage for InvalidRows {
    fn name(&self) -> &str {
        "invalid_rows"
    }

    fn key(&self) -> StageKey {
        crate::clean::key::stage_key(self.name(), &self.cfg)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let c = &self.cfg;
        let price = f64_col(&chunk, "price")?;
        let size = f64_col(&chunk, "size")?;
        // Trades from the as-of join (`quote_match` set, see `crate::taq`) carry the market's
        // NBBO at the trade, not a quote of their own: a crossed market is a fact about the
        // market (counted as `quote_match = crossed`), not a bad trade, and no quote rule
        // removes the trade.
        let joined = chunk.is_joined_trades();
        let (bid, ask) = if joined {
            (None, None)
        } else {
            (f64_col(&chunk, "bid")?, f64_col(&chunk, "ask")?)
        };
        let none = None;
        let (bs, asz) = if c.check_quote_sizes && !joined {
            (f64_col(&chunk, "bid_size")?, f64_col(&chunk, "ask_size")?)
        } else {
            (None, None)
        };
        let (qb, qa) = if c.check_quote_prices {
            (&bid, &ask)
        } else {
            (&none, &none)
        };
        let n = chunk.num_rows();
        // 0 = keep, 1 = price, 2 = size, 3 = crossed. A row is charged to the first rule it
        // breaks, so the rules are marked in reverse order and earlier ones overwrite.
        let mut code = vec![0u8; n];
        if c.crossed_quote
            && let (Some(b), Some(a)) = (&bid, &ask)
        {
            mark_crossed(&mut code, b, a, c.drop_locked);
        }
        if c.nonpositive_size {
            for col in [&size, &bs, &asz] {
                mark_nonpositive(&mut code, col, 2);
            }
        }
        if c.nonpositive_price {
            for col in [&price, qb, qa] {
                mark_nonpositive(&mut code, col, 1);
            }
        }
        let events = crate::kind::Events::of(&chunk)?;
        if events.any() {
            for (i, k) in code.iter_mut().enumerate() {
                if events.halt(i) && (*k == 1 || *k == 2) {
                    // The price rules overwrote a crossed mark, if any: look again.
                    let crossed = match (&bid, &ask) {
                        (Some(b), Some(a)) if c.crossed_quote && b.is_valid(i) && a.is_valid(i) => {
                            b.value(i) > a.value(i) || (c.drop_locked && b.value(i) == a.value(i))
                        }
                        _ => false,
                    };
                    *k = if crossed { 3 } else { 0 };
                }
            }
        }
        let mut counts = [0usize; 4];
        for &k in &code {
            counts[usize::from(k)] += 1;
        }
        if counts[0] == n {
            out.emit(chunk);
            return Ok(());
        }
        // Rejects are recorded rule by rule (in rule order, rows in input order, as removing
        // one rule at a time did), then the chunk is filtered once.
        let lines = chunk.lines();
        for (k, rule) in [
            (1u8, "nonpositive_price"),
            (2, "nonpositive_size"),
            (3, "crossed_quote"),
        ] {
            if counts[usize::from(k)] == 0 {
                continue;
            }
            for (i, _) in code.iter().enumerate().filter(|(_, x)| **x == k) {
                out.remove_one(rule, chunk.source(), lines.value(i));
            }
        }
        let keep = BooleanArray::from(arrow_buffer::BooleanBuffer::collect_bool(n, |i| {
            code[i] == 0
        }));
        let chunk = chunk.filter(&keep)?;
        out.emit(chunk);
        Ok(())
    }
}
