//! BN-HLS P3 in the paper's form: keep the symbol-day's most active exchange.

use std::collections::BTreeMap;

use pipeline_core::{Chunk, Emitter, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use super::BnhlsConfig;
use crate::clean::cols::{Slots, str_col, ts_col};
use crate::clean::held::{Held, HeldState, RowRef};
use crate::clean::session::Session;

/// P3 of Barndorff-Nielsen et al. (2009) when no exchange list is configured: "retain
/// entries originating from a single exchange", the exchange with the most entries for that
/// symbol on that day (ties: the alphabetically first code).
///
/// Which exchange that is is known only at the end of the day, so each symbol's rows of the
/// current trading day (local date in `timezone`) are held and judged when a later day
/// begins or the input ends: one symbol-day of rows per symbol in memory, as for Q3. Rows
/// with a null exchange are removed; without an `exchange` column the stage passes rows
/// through.
#[derive(Debug)]
pub struct DayExchange {
    tz: String,
    session: Session,
    slots: Slots,
    days: Vec<Day>,
    held: Held,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Day {
    day: Option<i64>,
    rows: Vec<(RowRef, Option<String>)>,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    slots: Vec<String>,
    days: Vec<Day>,
    held: HeldState,
}

impl DayExchange {
    /// A P3 stage (most active exchange) from the BN-HLS config.
    pub fn new(cfg: &BnhlsConfig) -> Result<Self> {
        Ok(DayExchange {
            tz: cfg.timezone.clone(),
            session: Session::new(&cfg.session_open, &cfg.session_close, &cfg.timezone)?,
            slots: Slots::default(),
            days: Vec::new(),
            held: Held::default(),
        })
    }

    fn close(d: &mut Day, held: &mut Held, out: &mut Emitter) -> Result<()> {
        let rows = std::mem::take(&mut d.rows);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, e) in &rows {
            if let Some(e) = e {
                *counts.entry(e.as_str()).or_default() += 1;
            }
        }
        // Highest count; the BTreeMap order makes the alphabetically first code win ties.
        let best = counts
            .iter()
            .fold(None::<(&str, usize)>, |b, (k, v)| match b {
                Some((_, bv)) if bv >= *v => b,
                _ => Some((k, *v)),
            })
            .map(|(k, _)| k.to_string());
        for (r, e) in rows {
            if e.is_some() && e == best {
                held.keep(r);
            } else {
                held.remove(r, "P3", out)?;
            }
        }
        Ok(())
    }
}

impl Stage for DayExchange {
    fn name(&self) -> &str {
        "bnhls_p3_day"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        crate::clean::key::stage_key(self.name(), &self.tz)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let batch = chunk.batch().clone();
        let Some(ex) = str_col(&batch, "exchange")? else {
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
            let d = &mut self.days[s];
            if let Some(t) = ts.as_ref().and_then(|t| t[i]) {
                let day = self.session.local_day(t);
                if d.day != Some(day) {
                    Self::close(d, &mut self.held, out)?;
                    d.day = Some(day);
                }
            }
            d.rows.push((
                RowRef {
                    chunk: id,
                    row: i as u32,
                },
                ex.get(i).map(str::to_string),
            ));
        }
        self.held.flush(out)
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        for d in &mut self.days {
            Self::close(d, &mut self.held, out)?;
        }
        self.held.flush(out)
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let cp = Checkpoint {
            slots: self.slots.names().to_vec(),
            days: self.days.clone(),
            held: self.held.state()?,
        };
        crate::state::save("P3", &cp)
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = crate::state::load("P3", state)?;
        self.slots = Slots::from_names(cp.slots);
        self.days = cp.days;
        self.held = Held::from_state(cp.held)?;
        Ok(())
    }
}
