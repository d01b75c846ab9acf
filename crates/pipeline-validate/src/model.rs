//! Data shared by the stage, the collector and the report: failing examples, per-symbol-day
//! metrics (also the history file's records) and mergeable histograms.

use std::collections::BTreeMap;

use pipeline_core::SourceId;
use serde::{Deserialize, Serialize};

/// One failing row (or symbol-day, or file) kept as an example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The input file.
    pub file: String,
    /// 1-based line of the row in that file (for symbol-day findings, the day's first row;
    /// 0 when there is no row, e.g. a missing day).
    pub line: u64,
    /// The symbol ("" when none).
    pub symbol: String,
    /// The row's timestamp (RFC 3339, UTC), or the date of a symbol-day finding.
    pub ts: Option<String>,
    /// The values the rule looked at, by column (or measure) name.
    pub values: BTreeMap<String, String>,
    /// A one-line explanation.
    pub note: String,
}

/// An example as the stage keeps it: a source id instead of a file name (resolved when the
/// report is built).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ex {
    pub source: SourceId,
    pub line: u64,
    pub symbol: String,
    pub ts: Option<i64>,
    pub date: Option<String>,
    pub values: Vec<(String, String)>,
    pub note: String,
}

/// Metrics of one symbol on one trading day: what the history file stores, one JSON object
/// per line, and what history checks read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolDay {
    /// The symbol.
    pub symbol: String,
    /// The local trading date, `YYYY-MM-DD`.
    pub date: String,
    /// Rows seen (quarantined ones included).
    pub rows: u64,
    /// Rows quarantined by error-severity rules.
    pub errors: u64,
    /// Warning and info findings on rows.
    pub warnings: u64,
    /// Rows with a null in a value column (price, size, bid, ask, or a `not_null` column).
    pub nulls: u64,
    /// Duplicate rows.
    pub duplicates: u64,
    /// Price jumps and spread outliers.
    pub outliers: u64,
    /// Lowest trade price (or mid when there are no trades).
    pub min_price: Option<f64>,
    /// Highest trade price (or mid).
    pub max_price: Option<f64>,
    /// Mean trade price (or mid).
    pub mean_price: Option<f64>,
    /// Median quoted spread (lower median; see the crate docs on its precision).
    pub median_spread: Option<f64>,
    /// Sum of trade sizes.
    pub volume: f64,
    /// The file of the symbol-day's first row (this run's days; absent in history records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line of the symbol-day's first row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The source id of the first row, until the report names the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<u32>,
}

impl SymbolDay {
    /// A metric by name (the names [`AnomalySpec`](crate::AnomalySpec) accepts).
    pub fn metric(&self, name: &str) -> Option<f64> {
        Some(match name {
            "rows" => self.rows as f64,
            "volume" => self.volume,
            "mean_price" => self.mean_price?,
            "min_price" => self.min_price?,
            "max_price" => self.max_price?,
            "median_spread" => self.median_spread?,
            "nulls" => self.nulls as f64,
            "duplicates" => self.duplicates as f64,
            "outliers" => self.outliers as f64,
            "errors" => self.errors as f64,
            "warnings" => self.warnings as f64,
            _ => return None,
        })
    }

    /// Merges another part of the same symbol-day (a day split by out-of-order rows): counts
    /// add, extremes combine, means weigh by rows, and the median spread is the larger part's.
    pub(crate) fn merge(&mut self, o: &SymbolDay) {
        let (a, b) = (self.rows as f64, o.rows as f64);
        self.mean_price = match (self.mean_price, o.mean_price) {
            (Some(x), Some(y)) if a + b > 0.0 => Some((x * a + y * b) / (a + b)),
            (x, y) => x.or(y),
        };
        if o.rows > self.rows {
            self.median_spread = o.median_spread.or(self.median_spread);
        }
        if o.line.is_some()
            && (self.line.is_none() || (o.source, o.line) < (self.source, self.line))
        {
            self.source = o.source;
            self.line = o.line;
            self.file = o.file.clone();
        }
        self.min_price = opt(self.min_price, o.min_price, f64::min);
        self.max_price = opt(self.max_price, o.max_price, f64::max);
        self.rows += o.rows;
        self.errors += o.errors;
        self.warnings += o.warnings;
        self.nulls += o.nulls;
        self.duplicates += o.duplicates;
        self.outliers += o.outliers;
        self.volume += o.volume;
    }
}

fn opt(a: Option<f64>, b: Option<f64>, f: impl Fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, y) => x.or(y),
    }
}

/// A histogram over fixed bin edges, with a second series for the values a rule flagged.
///
/// Bin `i` holds values in `[edges[i-1], edges[i])`; the first bin is everything below
/// `edges[0]` and the last everything from the last edge up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Inner bin edges (one fewer than bins).
    pub edges: Vec<f64>,
    /// Values per bin.
    pub counts: Vec<u64>,
    /// Flagged values per bin.
    pub outliers: Vec<u64>,
}

/// Return bins in basis points: symmetric, roughly 1-2-5 spaced, a central bin around 0.
pub(crate) const RETURN_EDGES: [f64; 24] = [
    -2000.0, -1000.0, -500.0, -200.0, -100.0, -50.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, 0.5,
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
];

/// Spread bins in basis points of the mid, 1-2-5 spaced.
pub(crate) const SPREAD_EDGES: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

impl Histogram {
    /// An empty histogram over `edges`.
    pub(crate) fn new(edges: &[f64]) -> Self {
        Histogram {
            edges: edges.to_vec(),
            counts: vec![0; edges.len() + 1],
            outliers: vec![0; edges.len() + 1],
        }
    }

    /// The bin of `x` (NaN goes to the first bin).
    #[inline]
    pub(crate) fn bin(&self, x: f64) -> usize {
        // The number of edges at or below `x` (the edges are sorted), counted without
        // branches: a binary search mispredicts on almost every value here.
        self.edges.iter().map(|e| usize::from(*e <= x)).sum()
    }

    /// Counts every value of `xs`, as [`Histogram::add`] of each would (NaN to the first
    /// bin). Callers collect a chunk's values and count them here once: out of the row loop,
    /// the bins of consecutive values are found side by side.
    pub(crate) fn add_all(&mut self, xs: &[f64]) {
        for x in xs {
            let b = self.bin(*x);
            self.counts[b] += 1;
        }
    }

    /// Counts `x` (the stage counts batches with [`Histogram::add_all`]).
    #[cfg(test)]
    pub(crate) fn add(&mut self, x: f64, n: u64) {
        let b = self.bin(x);
        self.counts[b] += n;
    }

    /// Counts a flagged `x`.
    pub(crate) fn add_outlier(&mut self, x: f64, n: u64) {
        let b = self.bin(x);
        self.outliers[b] += n;
    }

    /// Adds another histogram over the same edges.
    pub(crate) fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        for (a, b) in self.outliers.iter_mut().zip(&o.outliers) {
            *a += b;
        }
    }

    /// A label for bin `i`.
    pub(crate) fn label(&self, i: usize) -> String {
        let f = |x: f64| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x}")
            }
        };
        match i {
            0 => format!("<{}", f(self.edges[0])),
            i if i == self.edges.len() => format!("≥{}", f(self.edges[i - 1])),
            i => format!("{}…{}", f(self.edges[i - 1]), f(self.edges[i])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_merge() {
        let mut h = Histogram::new(&SPREAD_EDGES);
        h.add(0.5, 1);
        h.add(1.0, 2);
        h.add(9999.0, 1);
        h.add_outlier(9999.0, 1);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[1], 2);
        assert_eq!(h.counts[12], 1);
        let mut g = Histogram::new(&SPREAD_EDGES);
        g.merge(&h);
        g.merge(&h);
        assert_eq!(g.outliers[12], 2);
        assert_eq!(h.label(0), "<1");
        assert_eq!(h.label(12), "≥5000");
        let r = Histogram::new(&RETURN_EDGES);
        assert_eq!(r.bin(0.0), 12);
        assert_eq!(r.label(12), "-0.5…0.5");
    }

    proptest::proptest! {
        /// The branch-free bin count is the binary search it replaced, edges and NaN included.
        #[test]
        fn bin_is_the_partition_point(x in proptest::prop_oneof![
            proptest::num::f64::ANY,
            proptest::sample::select(RETURN_EDGES.to_vec()),
        ]) {
            let h = Histogram::new(&RETURN_EDGES);
            proptest::prop_assert_eq!(h.bin(x), RETURN_EDGES.partition_point(|e| *e <= x));
        }

        /// Counting a batch edge by edge gives the counts of adding each value.
        #[test]
        fn add_all_counts_as_add_does(xs in proptest::collection::vec(proptest::prop_oneof![
            proptest::num::f64::ANY,
            proptest::sample::select(RETURN_EDGES.to_vec()),
            -3000.0..3000.0f64,
        ], 0..700)) {
            let mut one = Histogram::new(&RETURN_EDGES);
            let mut all = Histogram::new(&RETURN_EDGES);
            for x in &xs {
                one.add(*x, 1);
            }
            all.add_all(&xs);
            proptest::prop_assert_eq!(one, all);
        }
    }

    #[test]
    fn symbol_day_parts_merge() {
        let mut a = SymbolDay {
            symbol: "A".into(),
            date: "2021-01-04".into(),
            rows: 3,
            errors: 1,
            warnings: 0,
            nulls: 0,
            duplicates: 0,
            outliers: 0,
            min_price: Some(10.0),
            max_price: Some(12.0),
            mean_price: Some(11.0),
            median_spread: Some(0.01),
            volume: 300.0,
            file: None,
            line: None,
            source: None,
        };
        let b = SymbolDay {
            rows: 1,
            min_price: Some(9.0),
            mean_price: Some(15.0),
            median_spread: Some(0.05),
            ..a.clone()
        };
        a.merge(&b);
        assert_eq!(a.rows, 4);
        assert_eq!(a.min_price, Some(9.0));
        assert_eq!(a.mean_price, Some(12.0));
        assert_eq!(a.median_spread, Some(0.01));
        assert_eq!(a.metric("volume"), Some(600.0));
        assert_eq!(a.metric("vwap"), None);
    }
}
