//! The row-local BN-HLS rules: P1, P2, P3, T1, T2, T4, Q2.

use arrow_array::{Array, BooleanArray};
use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey};

use super::BnhlsConfig;
use crate::clean::cols::{f64_col, str_col, ts_col};
use crate::clean::session::Session;

/// The row-local rules of Barndorff-Nielsen et al. (2009) (see the module table), each
/// applied when listed in `rules`, in the order P1, P2, P3, T1, T2, Q2, T4; a row is charged
/// to the first rule it breaks.
///
/// * P1 (`ts`): local time outside `[session_open, session_close)`; null `ts` is kept.
/// * P2 (`price`, `bid`, `ask`): any of them exactly zero.
/// * P3 (`exchange`): exchange not in `exchanges` (null exchange is removed too).
/// * T1 (trades; `correction_column`, `conditions`): correction indicator non-zero, or a
///   condition code listed in `corrected_conditions`.
/// * T2 (trades; `conditions`): a condition code not in `allowed_conditions`.
/// * Q2 (quotes): `ask < bid`.
/// * T4 (trades that also carry a quote): `price > ask + (ask − bid)` or
///   `price < bid − (ask − bid)`, with the quote on the row as the prevailing quote.
#[derive(Debug, Clone)]
pub struct BnhlsRowRules {
    cfg: BnhlsConfig,
    session: Session,
}

const ORDER: [&str; 7] = ["P1", "P2", "P3", "T1", "T2", "Q2", "T4"];

impl BnhlsRowRules {
    /// A stage applying the row-local rules enabled in `cfg` (others are ignored here).
    /// P3 here needs `exchanges`; without a list use [`super::DayExchange`].
    pub fn new(cfg: BnhlsConfig) -> Result<Self> {
        if cfg.has("P3") && cfg.exchanges.is_empty() {
            return Err(Error::config(
                "preprocessing.bnhls_rules",
                "row-local P3 needs a list of exchanges to keep; use DayExchange for the day's most active one",
            ));
        }
        let session = Session::new(&cfg.session_open, &cfg.session_close, &cfg.timezone)?;
        Ok(BnhlsRowRules { cfg, session })
    }

    fn codes(c: &str) -> impl Iterator<Item = &str> {
        c.split([' ', ',']).filter(|s| !s.is_empty())
    }
}

impl Stage for BnhlsRowRules {
    fn name(&self) -> &str {
        "bnhls_rows"
    }

    fn key(&self) -> StageKey {
        crate::clean::key::stage_key(self.name(), &self.cfg)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let n = chunk.num_rows();
        let c = &self.cfg;
        let price = f64_col(&chunk, "price")?;
        let bid = f64_col(&chunk, "bid")?;
        let ask = f64_col(&chunk, "ask")?;
        let ts = if c.has("P1") { ts_col(&chunk)? } else { None };
        let corr = f64_col(&chunk, &c.correction_column).ok().flatten();
        let batch = chunk.batch().clone();
        let exch = str_col(&batch, "exchange")?;
        let cond = str_col(&batch, "conditions")?;
        let get = |a: &Option<arrow_array::Float64Array>, i: usize| {
            a.as_ref().and_then(|a| a.is_valid(i).then(|| a.value(i)))
        };
        let mut code: Vec<u8> = vec![0; n];
        for (i, k) in code.iter_mut().enumerate() {
            let (p, b, a) = (get(&price, i), get(&bid, i), get(&ask, i));
            for (ri, rule) in ORDER.iter().enumerate() {
                if !c.has(rule) {
                    continue;
                }
                let hit = match *rule {
                    "P1" => ts
                        .as_ref()
                        .and_then(|t| t[i])
                        .is_some_and(|t| !self.session.in_session(t)),
                    "P2" => [p, b, a].contains(&Some(0.0)),
                    "P3" => exch.as_ref().is_some_and(|e| {
                        !e.get(i).is_some_and(|x| c.exchanges.iter().any(|k| k == x))
                    }),
                    "T1" => {
                        p.is_some()
                            && (get(&corr, i).is_some_and(|v| v != 0.0)
                                || cond.as_ref().and_then(|x| x.get(i)).is_some_and(|x| {
                                    Self::codes(x)
                                        .any(|k| c.corrected_conditions.iter().any(|a| a == k))
                                }))
                    }
                    "T2" => {
                        p.is_some()
                            && cond.as_ref().and_then(|x| x.get(i)).is_some_and(|x| {
                                Self::codes(x).any(|k| !c.allowed_conditions.iter().any(|a| a == k))
                            })
                    }
                    "Q2" => matches!((b, a), (Some(b), Some(a)) if a < b),
                    "T4" => match (p, b, a) {
                        (Some(p), Some(b), Some(a)) => {
                            let s = a - b;
                            p > a + s || p < b - s
                        }
                        _ => false,
                    },
                    _ => false,
                };
                if hit {
                    *k = ri as u8 + 1;
                    break;
                }
            }
        }
        let mut chunk = chunk;
        for (ri, rule) in ORDER.iter().enumerate() {
            let k = ri as u8 + 1;
            if !code.contains(&k) {
                continue;
            }
            let keep: BooleanArray = code.iter().map(|&x| Some(x != k)).collect();
            chunk = out.remove(rule, &chunk, &keep)?;
            code.retain(|&x| x != k);
        }
        out.emit(chunk);
        Ok(())
    }
}
