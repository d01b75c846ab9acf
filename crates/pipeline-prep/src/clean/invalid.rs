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
/// A row is charged to the first rule it breaks, in that order. Null values break no rule
/// (missing values are the missing-value stage's business) and an absent column makes the
/// rules that read it no-ops.
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

fn bad_positive(col: &Option<Float64Array>, i: usize) -> bool {
    col.as_ref().is_some_and(|c| {
        c.is_valid(i) && (c.value(i).is_nan() || c.value(i) <= 0.0 || c.value(i).is_infinite())
    })
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
        let (bid, ask) = (f64_col(&chunk, "bid")?, f64_col(&chunk, "ask")?);
        let none = None;
        let (bs, asz) = if c.check_quote_sizes {
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
        // 0 = keep, 1 = price, 2 = size, 3 = crossed.
        let mut code = vec![0u8; n];
        for (i, k) in code.iter_mut().enumerate() {
            if c.nonpositive_price
                && (bad_positive(&price, i) || bad_positive(qb, i) || bad_positive(qa, i))
            {
                *k = 1;
            } else if c.nonpositive_size
                && (bad_positive(&size, i) || bad_positive(&bs, i) || bad_positive(&asz, i))
            {
                *k = 2;
            } else if c.crossed_quote
                && let (Some(b), Some(a)) = (&bid, &ask)
                && !b.is_null(i)
                && !a.is_null(i)
                && (b.value(i) > a.value(i) || (c.drop_locked && b.value(i) == a.value(i)))
            {
                *k = 3;
            }
        }
        let mut chunk = chunk;
        let mut codes = code;
        for (k, rule) in [
            (1u8, "nonpositive_price"),
            (2, "nonpositive_size"),
            (3, "crossed_quote"),
        ] {
            if !codes.contains(&k) {
                continue;
            }
            let keep: BooleanArray = codes.iter().map(|&x| Some(x != k)).collect();
            chunk = out.remove(rule, &chunk, &keep)?;
            codes.retain(|&x| x != k);
        }
        out.emit(chunk);
        Ok(())
    }
}
