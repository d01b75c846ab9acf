//! DBSCAN noise points as outliers, via `linfa-clustering`.

use linfa::ParamGuard;
use linfa::traits::Transformer;
use linfa_clustering::Dbscan;
use ndarray::Array2;
use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use super::OutlierAction;
use super::windowed::{NF, WindowDetector, Windowed, standardise};

/// Configuration of [`DbscanOutliers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbscanConfig {
    /// Neighbourhood radius in standardised feature units. Default 1.0: one standard
    /// deviation of each feature within the window.
    pub eps: f64,
    /// Points (the point included) a neighbourhood needs to be dense. Default 5, the usual
    /// choice for low-dimensional data (Ester et al. 1996 suggest 4 for 2-d; we have 3-d).
    pub min_points: usize,
    /// Rows per symbol window. Default 512: linfa's DBSCAN is O(n²) in the worst case, so
    /// windows stay small.
    pub window: usize,
    /// Value column for the return feature (`auto` = price, else mid). Default `auto`.
    pub column: String,
    /// `flag` or `drop`. Default `flag`.
    pub action: OutlierAction,
}

impl Default for DbscanConfig {
    fn default() -> Self {
        DbscanConfig {
            eps: 1.0,
            min_points: 5,
            window: 512,
            column: "auto".into(),
            action: OutlierAction::Flag,
        }
    }
}

struct DbDetector {
    eps: f64,
    min_points: usize,
}

impl WindowDetector for DbDetector {
    fn detect(&self, x: &[[f64; NF]], _seed: u64) -> Result<Vec<bool>> {
        let z = standardise(x);
        let flat: Vec<f64> = z.iter().flat_map(|r| r.iter().copied()).collect();
        let obs = Array2::from_shape_vec((z.len(), NF), flat)
            .map_err(|e| Error::Internal(format!("dbscan features: {e}")))?;
        let params = Dbscan::params(self.min_points)
            .tolerance(self.eps)
            .check()
            .map_err(|e| Error::config("dbscan", e.to_string()))?;
        let labels = params.transform(&obs);
        Ok(labels.iter().map(|l| l.is_none()).collect())
    }
}

/// DBSCAN (Ester, Kriegel, Sander & Xu 1996) on engineered features (log return, relative
/// spread, log size; standardised per window), per symbol on fixed windows of `window` rows:
/// points that belong to no cluster (noise) are outliers. Rule/flag `outlier_dbscan`.
/// Results depend on the window, not on chunk size.
pub struct DbscanOutliers {
    cfg: DbscanConfig,
    inner: Windowed<DbDetector>,
}

impl DbscanOutliers {
    /// A stage with `cfg`.
    pub fn new(cfg: DbscanConfig) -> Result<Self> {
        if cfg.eps.is_nan() || cfg.eps <= 0.0 || cfg.min_points < 2 {
            return Err(Error::config("dbscan", "need eps > 0 and min_points ≥ 2"));
        }
        let inner = Windowed::new(
            DbDetector {
                eps: cfg.eps,
                min_points: cfg.min_points,
            },
            cfg.window,
            cfg.column.clone(),
            cfg.action,
            "outlier_dbscan".into(),
        )?;
        Ok(DbscanOutliers { cfg, inner })
    }
}

impl Stage for DbscanOutliers {
    fn name(&self) -> &str {
        "outliers_dbscan"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        self.inner.key_of(self.name(), &self.cfg)
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
