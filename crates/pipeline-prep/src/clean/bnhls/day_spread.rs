//! BN-HLS Q3: spreads above a multiple of the symbol-day's median spread.

use arrow_array::Array;
use pipeline_core::{Chunk, Emitter, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use super::BnhlsConfig;
use crate::clean::cols::{Slots, f64_col, ts_col};
use crate::clean::held::{Held, HeldState, RowRef};
use crate::clean::outlier::median_of;
use crate::clean::session::Session;

/// Q3 of Barndorff-Nielsen et al. (2009): "Delete entries for which the spread is more than
/// 50 times the median spread on that day" (the multiple is `q3_multiple`).
///
/// The day's median needs the whole day, so each symbol's rows of the current trading day
/// (local date in `timezone`) are held and judged when a row of a later day arrives or the
/// input ends: exact, at a memory cost of one symbol-day of rows per symbol. A row whose `ts`
/// is null belongs to the current day. Rows without a quote are kept; a day whose median
/// spread is not positive (all quotes locked) removes nothing.
#[derive(Debug)]
pub struct DaySpread {
    mult: f64,
    tz: (String, String, String),
    session: Session,
    slots: Slots,
    days: Vec<Day>,
    held: Held,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Day {
    day: Option<i64>,
    rows: Vec<(RowRef, Option<f64>)>,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    slots: Vec<String>,
    days: Vec<Day>,
    held: HeldState,
}

impl DaySpread {
    /// A Q3 stage from the BN-HLS config.
    pub fn new(cfg: &BnhlsConfig) -> Result<Self> {
        Ok(DaySpread {
            mult: cfg.q3_multiple,
            tz: (
                cfg.session_open.clone(),
                cfg.session_close.clone(),
                cfg.timezone.clone(),
            ),
            session: Session::new(&cfg.session_open, &cfg.session_close, &cfg.timezone)?,
            slots: Slots::default(),
            days: Vec::new(),
            held: Held::default(),
        })
    }

    fn close(d: &mut Day, mult: f64, held: &mut Held, out: &mut Emitter) -> Result<()> {
        let rows = std::mem::take(&mut d.rows);
        let med = median_of(rows.iter().filter_map(|r| r.1).collect()).unwrap_or(0.0);
        for (r, s) in rows {
            if med > 0.0 && s.is_some_and(|s| s > mult * med) {
                held.remove(r, "Q3", out)?;
            } else {
                held.keep(r);
            }
        }
        Ok(())
    }
}

impl Stage for DaySpread {
    fn name(&self) -> &str {
        "bnhls_q3"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        crate::clean::key::stage_key(self.name(), &(self.mult, &self.tz))
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let (Some(b), Some(a)) = (f64_col(&chunk, "bid")?, f64_col(&chunk, "ask")?) else {
            out.emit(chunk);
            return Ok(());
        };
        let ts = ts_col(&chunk)?;
        let slots = self.slots.rows(&chunk)?;
        let id = self.held.add(chunk);
        for (i, &s) in slots.iter().enumerate() {
            if self.days.len() <= s {
                self.days.resize(s + 1, Day::default());
            }
            let t = ts.as_ref().and_then(|t| t[i]);
            let d = &mut self.days[s];
            if let Some(t) = t {
                let day = self.session.local_day(t);
                if d.day != Some(day) {
                    Self::close(d, self.mult, &mut self.held, out)?;
                    d.day = Some(day);
                }
            }
            let spread = (b.is_valid(i) && a.is_valid(i)).then(|| a.value(i) - b.value(i));
            d.rows.push((
                RowRef {
                    chunk: id,
                    row: i as u32,
                },
                spread,
            ));
        }
        self.held.flush(out)
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        for d in &mut self.days {
            Self::close(d, self.mult, &mut self.held, out)?;
        }
        self.held.flush(out)
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let cp = Checkpoint {
            slots: self.slots.names().to_vec(),
            days: self.days.clone(),
            held: self.held.state()?,
        };
        crate::state::save("Q3", &cp)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = crate::state::load("Q3", state)?;
        self.slots = Slots::from_names(cp.slots);
        self.days = cp.days;
        self.held = Held::from_state(cp.held)?;
        Ok(())
    }
}
