//! Trailing-window outlier detectors: rolling z-score, its robust median/MAD form, rolling
//! IQR fences.

use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use super::window::{Moments, Sorted};
use super::{OutlierAction, apply, clip, values};
use crate::clean::cols::Slots;

/// The statistic of a [`RollingOutliers`] detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollingMethod {
    /// `|x − mean| > threshold · std` over the last `window` accepted values. O(1) per row.
    Zscore,
    /// `|x − median| > threshold · 1.4826 · MAD` over the last `window` accepted values
    /// (1.4826 makes the MAD a consistent estimator of σ under normality). O(N) per row.
    Mad,
    /// `x < Q1 − threshold · IQR` or `x > Q3 + threshold · IQR` over the last `window`
    /// accepted values (Tukey's fences; Tukey's own multiplier is 1.5). O(N) per row.
    Iqr,
}

impl RollingMethod {
    fn name(self) -> &'static str {
        match self {
            RollingMethod::Zscore => "zscore",
            RollingMethod::Mad => "mad",
            RollingMethod::Iqr => "iqr",
        }
    }
}

/// Configuration of [`RollingOutliers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierConfig {
    /// The statistic. Default `zscore`.
    pub method: RollingMethod,
    /// Value column: a column name, `mid`, or `auto` (price, else mid). Default `auto`.
    pub column: String,
    /// Multiple of the dispersion beyond which a value is an outlier. Default 10.
    pub threshold: f64,
    /// Trailing window, in accepted rows of one symbol. Default 100.
    pub window: usize,
    /// Rows a symbol's window needs before values are judged. Default 20: below that the
    /// standard deviation of a tick-grid random walk is too noisy (measured on the cleaning
    /// bench's generator, where 20 rows already gave no false positives).
    pub min_periods: usize,
    /// Floor on the dispersion, relative to the window's centre: `scale ≥ min_scale_rel ·
    /// |centre|`. Default 5e-4 (5 basis points). Without it a stretch of identical prices
    /// (std 0) makes the next one-tick move an "outlier"; 5 bp is a few ticks at the price
    /// levels of US equities, far below the ≥ 10 % spikes the default must catch.
    pub min_scale_rel: f64,
    /// After this many consecutive outliers the window restarts from them, so a genuine
    /// level shift (an opening gap) costs at most this many rows instead of rejecting the
    /// rest of the series. Default 5: gen-data's spikes last one row.
    pub reset_after: usize,
    /// What to do with outliers. Default `drop`.
    pub action: OutlierAction,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        OutlierConfig {
            method: RollingMethod::Zscore,
            column: "auto".into(),
            threshold: 10.0,
            window: 100,
            min_periods: 20,
            min_scale_rel: 5e-4,
            reset_after: 5,
            action: OutlierAction::Drop,
        }
    }
}

/// A per-symbol trailing-window outlier detector (see [`RollingMethod`] for the rules).
///
/// Outliers do not enter the window (winsorized values enter clipped), so a spike cannot
/// inflate the dispersion that judges the next spike; `reset_after` consecutive outliers
/// restart the window from them. The window carries across chunks and files, so results do
/// not depend on chunk size.
#[derive(Debug)]
pub struct RollingOutliers {
    cfg: OutlierConfig,
    slots: Slots,
    state: Vec<Win>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Win {
    moments: Moments,
    sorted: Sorted,
    streak: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    slots: Vec<String>,
    state: Vec<Win>,
}

impl RollingOutliers {
    /// A stage with `cfg`; the threshold must be positive and the window at least 2.
    pub fn new(cfg: OutlierConfig) -> Result<Self> {
        if cfg.threshold.is_nan() || cfg.threshold <= 0.0 || cfg.window < 2 {
            return Err(Error::config(
                "preprocessing.outlier_threshold",
                "threshold must be > 0 and window ≥ 2",
            ));
        }
        Ok(RollingOutliers {
            cfg,
            slots: Slots::default(),
            state: Vec::new(),
        })
    }

    fn new_win(&self) -> Win {
        Win {
            moments: Moments::new(self.cfg.window),
            sorted: Sorted::new(self.cfg.window),
            streak: Vec::new(),
        }
    }

    /// `(lo, hi)` bounds from the window, or `None` while it is too short.
    fn bounds(&self, w: &Win) -> Option<(f64, f64)> {
        let c = &self.cfg;
        let t = c.threshold;
        match c.method {
            RollingMethod::Zscore => {
                if w.moments.len() < c.min_periods.max(2) {
                    return None;
                }
                let (m, s) = w.moments.mean_std()?;
                let s = s.max(c.min_scale_rel * m.abs());
                Some((m - t * s, m + t * s))
            }
            RollingMethod::Mad => {
                if w.sorted.len() < c.min_periods.max(2) {
                    return None;
                }
                let (m, mad) = w.sorted.median_mad()?;
                let s = (1.4826 * mad).max(c.min_scale_rel * m.abs());
                Some((m - t * s, m + t * s))
            }
            RollingMethod::Iqr => {
                if w.sorted.len() < c.min_periods.max(2) {
                    return None;
                }
                let q1 = w.sorted.quantile(0.25)?;
                let q3 = w.sorted.quantile(0.75)?;
                let iqr = (q3 - q1).max(c.min_scale_rel * ((q1 + q3) / 2.0).abs());
                Some((q1 - t * iqr, q3 + t * iqr))
            }
        }
    }

    fn push(&self, w: &mut Win, x: f64) {
        match self.cfg.method {
            RollingMethod::Zscore => w.moments.push(x),
            _ => w.sorted.push(x),
        }
    }
}

impl Stage for RollingOutliers {
    fn name(&self) -> &str {
        "outliers_rolling"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        crate::clean::key::stage_key(self.name(), &self.cfg)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let Some((vals, src)) = values(&chunk, &self.cfg.column)? else {
            out.emit(chunk);
            return Ok(());
        };
        let slots = self.slots.rows(&chunk)?;
        let mut verdict = vec![None; vals.len()];
        let mut state = std::mem::take(&mut self.state);
        for (i, v) in vals.iter().enumerate() {
            let Some(x) = *v else { continue };
            let s = slots[i];
            while state.len() <= s {
                state.push(self.new_win());
            }
            let w = &mut state[s];
            match self.bounds(w) {
                Some((lo, hi)) if x < lo || x > hi => {
                    let b = clip(x, lo, hi);
                    verdict[i] = Some(b);
                    w.streak.push(x);
                    if w.streak.len() >= self.cfg.reset_after.max(1) {
                        w.moments.clear();
                        w.sorted.clear();
                        for y in std::mem::take(&mut w.streak) {
                            self.push(w, y);
                        }
                    } else if self.cfg.action == OutlierAction::Winsorize {
                        self.push(w, b);
                    }
                }
                _ => {
                    w.streak.clear();
                    self.push(w, x);
                }
            }
        }
        self.state = state;
        apply(
            chunk,
            out,
            self.cfg.method.name(),
            self.cfg.action,
            &src,
            &vals,
            &verdict,
        )
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let cp = Checkpoint {
            slots: self.slots.names().to_vec(),
            state: self.state.clone(),
        };
        serde_json::to_vec(&cp)
            .map(Some)
            .map_err(|e| Error::Internal(format!("outliers checkpoint: {e}")))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        let cp: Checkpoint = serde_json::from_slice(state)
            .map_err(|e| Error::Internal(format!("outliers restore: {e}")))?;
        self.slots = Slots::from_names(cp.slots);
        self.state = cp.state;
        Ok(())
    }
}
