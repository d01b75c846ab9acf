//! Isolation Forest (Liu, Ting & Zhou 2008, "Isolation Forest", ICDM), implemented here:
//! linfa (the workspace's ML stack) has none, no maintained crate fits (the project's survey
//! found none; we did not add one with its own `rand` stack), and the algorithm is ~150
//! lines with a seeded SplitMix64.

use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use super::OutlierAction;
use super::windowed::{NF, WindowDetector, Windowed};

/// SplitMix64: the seeded generator behind the forest.
#[derive(Debug, Clone)]
struct SplitMix(pipeline_core::SplitMix64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[derive(Debug, Clone)]
enum Node {
    Leaf {
        size: usize,
    },
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

/// Average path length of an unsuccessful search in a binary search tree of `n` points,
/// `c(n) = 2 H(n − 1) − 2 (n − 1) / n` (the paper's normaliser).
fn c(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

/// A fitted Isolation Forest.
///
/// ```
/// use pipeline_prep::IsolationForest;
/// let mut data: Vec<Vec<f64>> = (0..200).map(|i| vec![(i % 10) as f64 * 0.1, (i % 7) as f64 * 0.1]).collect();
/// data.push(vec![50.0, -50.0]);
/// let f = IsolationForest::fit(&data, 100, 128, 7);
/// assert!(f.score(&[50.0, -50.0]) > 0.7);
/// assert!(f.score(&[0.5, 0.3]) < 0.6);
/// ```
#[derive(Debug, Clone)]
pub struct IsolationForest {
    trees: Vec<Vec<Node>>,
    psi: usize,
}

impl IsolationForest {
    /// Fits `trees` trees, each on a sub-sample of `sample` rows drawn without replacement
    /// (the paper's defaults are 100 trees of 256), with height limit `ceil(log2 sample)`.
    pub fn fit<R: AsRef<[f64]>>(data: &[R], trees: usize, sample: usize, seed: u64) -> Self {
        let mut rng = SplitMix(pipeline_core::SplitMix64::new(seed));
        let psi = sample.min(data.len()).max(1);
        let limit = (psi as f64).log2().ceil() as usize;
        let dims = data.first().map_or(0, |r| r.as_ref().len());
        let mut forest = Vec::with_capacity(trees);
        let mut idx: Vec<usize> = (0..data.len()).collect();
        for _ in 0..trees {
            // Partial Fisher-Yates: the first `psi` indices are the sub-sample.
            for i in 0..psi {
                let j = i + rng.below(idx.len() - i);
                idx.swap(i, j);
            }
            let mut nodes = Vec::new();
            let mut sub = idx[..psi].to_vec();
            build(data, &mut sub, 0, limit, dims, &mut rng, &mut nodes);
            forest.push(nodes);
        }
        IsolationForest { trees: forest, psi }
    }

    /// The anomaly score `s(x) = 2^(−E[h(x)] / c(ψ))`: near 1 for anomalies, at most about
    /// 0.5 for ordinary points.
    pub fn score(&self, x: &[f64]) -> f64 {
        if self.trees.is_empty() {
            return 0.5;
        }
        let mut total = 0.0;
        for t in &self.trees {
            let mut n = 0;
            let mut depth = 0.0;
            loop {
                match &t[n] {
                    Node::Leaf { size } => {
                        total += depth + c(*size);
                        break;
                    }
                    Node::Split {
                        feature,
                        threshold,
                        left,
                        right,
                    } => {
                        depth += 1.0;
                        n = if x.get(*feature).copied().unwrap_or(0.0) < *threshold {
                            *left
                        } else {
                            *right
                        };
                    }
                }
            }
        }
        let mean = total / self.trees.len() as f64;
        let cn = c(self.psi);
        if cn == 0.0 {
            0.5
        } else {
            2f64.powf(-mean / cn)
        }
    }
}

fn build<R: AsRef<[f64]>>(
    data: &[R],
    rows: &mut [usize],
    depth: usize,
    limit: usize,
    dims: usize,
    rng: &mut SplitMix,
    nodes: &mut Vec<Node>,
) -> usize {
    let me = nodes.len();
    nodes.push(Node::Leaf { size: rows.len() });
    if depth >= limit || rows.len() <= 1 || dims == 0 {
        return me;
    }
    // A random feature with a non-zero range among this node's rows (try each at most once).
    let start = rng.below(dims);
    for k in 0..dims {
        let f = (start + k) % dims;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &r in rows.iter() {
            let v = data[r].as_ref()[f];
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let t = lo + (hi - lo) * rng.unit();
        let t = if t <= lo { (lo + hi) / 2.0 } else { t };
        let mut split = 0;
        for i in 0..rows.len() {
            if data[rows[i]].as_ref()[f] < t {
                rows.swap(i, split);
                split += 1;
            }
        }
        let (l, r) = rows.split_at_mut(split);
        let left = build(data, l, depth + 1, limit, dims, rng, nodes);
        let right = build(data, r, depth + 1, limit, dims, rng, nodes);
        nodes[me] = Node::Split {
            feature: f,
            threshold: t,
            left,
            right,
        };
        return me;
    }
    me
}

/// Configuration of [`IsolationForestOutliers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IsolationForestConfig {
    /// Trees. Default 100 (Liu et al. 2008: path lengths converge well before 100).
    pub trees: usize,
    /// Sub-sample per tree. Default 256 (the paper's ψ).
    pub sample: usize,
    /// Score at or above which a row is an outlier. Default 0.7: the paper reads scores
    /// "very close to 1" as anomalies and ≤ 0.5 as normal; 0.7 kept the separable test
    /// data's normal points (scores 0.35–0.55) clear.
    pub threshold: f64,
    /// Rows per symbol window the forest is fitted and applied on. Default 2048.
    pub window: usize,
    /// Seed (mixed with the symbol and the window index). Default 42.
    pub seed: u64,
    /// Value column for the return feature (`auto` = price, else mid). Default `auto`.
    pub column: String,
    /// `flag` or `drop` (winsorize has no bound and is refused). Default `flag`.
    pub action: OutlierAction,
}

impl Default for IsolationForestConfig {
    fn default() -> Self {
        IsolationForestConfig {
            trees: 100,
            sample: 256,
            threshold: 0.7,
            window: 2048,
            seed: 42,
            column: "auto".into(),
            action: OutlierAction::Flag,
        }
    }
}

struct IfDetector {
    cfg: IsolationForestConfig,
}

impl WindowDetector for IfDetector {
    fn detect(&self, x: &[[f64; NF]], seed: u64) -> Result<Vec<bool>> {
        let f = IsolationForest::fit(x, self.cfg.trees, self.cfg.sample, seed ^ self.cfg.seed);
        Ok(x.iter().map(|r| f.score(r) >= self.cfg.threshold).collect())
    }
}

/// Isolation Forest on engineered features (log return, relative spread, log size), fitted
/// per symbol on fixed windows of `window` rows (see the `windowed` module: results depend on
/// the window, not on chunk size). Rule/flag `outlier_isolation_forest`. Cost per window:
/// O(trees · ψ log ψ) to fit and O(window · trees · log ψ) to score.
pub struct IsolationForestOutliers {
    cfg: IsolationForestConfig,
    inner: Windowed<IfDetector>,
}

impl IsolationForestOutliers {
    /// A stage with `cfg`.
    pub fn new(cfg: IsolationForestConfig) -> Result<Self> {
        if cfg.trees == 0 || cfg.sample < 2 {
            return Err(Error::config(
                "isolation_forest",
                "need trees ≥ 1 and sample ≥ 2",
            ));
        }
        let inner = Windowed::new(
            IfDetector { cfg: cfg.clone() },
            cfg.window,
            cfg.column.clone(),
            cfg.action,
            "outlier_isolation_forest".into(),
        )?;
        Ok(IsolationForestOutliers { cfg, inner })
    }
}

impl Stage for IsolationForestOutliers {
    fn name(&self) -> &str {
        "outliers_isolation_forest"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_points_score_high_and_the_cluster_low() {
        let mut rng = SplitMix(pipeline_core::SplitMix64::new(1));
        let mut data: Vec<[f64; 2]> = (0..500).map(|_| [rng.unit(), rng.unit()]).collect();
        data.extend([[8.0, 8.0], [-7.0, 0.5], [0.5, 9.0]]);
        let f = IsolationForest::fit(&data, 100, 256, 3);
        let scores: Vec<f64> = data.iter().map(|r| f.score(r)).collect();
        assert!(
            scores[500..].iter().all(|s| *s > 0.7),
            "{:?}",
            &scores[500..]
        );
        let normal_max = scores[..500].iter().cloned().fold(0.0, f64::max);
        assert!(normal_max < 0.7, "{normal_max}");
        // Same seed, same forest.
        let g = IsolationForest::fit(&data, 100, 256, 3);
        assert_eq!(g.score(&[8.0, 8.0]), f.score(&[8.0, 8.0]));
    }
}
