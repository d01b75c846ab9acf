//! BN-HLS Q4: mid-quotes far from a centred rolling median.

use pipeline_core::{Chunk, Emitter, Result, Stage, StageKey, StageOrder};

use super::BnhlsConfig;
use crate::clean::outlier::{Centred, CentredRule, OutlierAction};

/// Q4 of Barndorff-Nielsen et al. (2009): "Delete entries for which the mid-quote deviated
/// by more than 10 mean absolute deviations from a rolling centred median (excluding the
/// observation under consideration) of 50 observations (25 observations before and 25
/// after)". The window and multiple are `q4_window` and `q4_multiple`; the mean absolute
/// deviation is taken around the neighbours' median. Applies to rows with `bid` and `ask`
/// (others pass untouched). Rows are held per symbol until 25 later quotes arrive; the last
/// ones are judged in `finish` on the neighbours available. O(w log w) per row.
#[derive(Debug)]
pub struct MidQuoteDeviation {
    inner: Centred,
}

impl MidQuoteDeviation {
    /// A Q4 stage from the BN-HLS config.
    pub fn new(cfg: &BnhlsConfig) -> Self {
        MidQuoteDeviation {
            inner: Centred::new(
                "bnhls_q4",
                "Q4".into(),
                CentredRule::MedianMeanAbsDev {
                    window: cfg.q4_window,
                    mult: cfg.q4_multiple,
                },
                "mid".into(),
                OutlierAction::Drop,
            ),
        }
    }
}

impl Stage for MidQuoteDeviation {
    fn name(&self) -> &str {
        "bnhls_q4"
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
