//! Precision and recall of validation findings against gen-data's labelled anomalies
//! (`anomalies.jsonl`), per rule and the anomaly kinds it is meant to catch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;
use std::path::Path;

use pipeline_core::{Error, Result};
use serde::Deserialize;

use crate::validator::Finding;

/// Which labelled kinds each rule is meant to catch. Kinds the reader quarantines
/// (`malformed_field_count`, `malformed_number`) never reach validation.
pub const LABELLED_RULES: [(&str, &[&str]); 10] = [
    ("crossed_quote", &["crossed_quote"]),
    ("locked_quote", &["locked_quote"]),
    ("nonpositive_price", &["zero_price", "negative_price"]),
    ("nonpositive_size", &["zero_size", "negative_size"]),
    ("duplicate_row", &["duplicate"]),
    ("ts_order", &["out_of_order"]),
    ("outside_session", &["outside_session"]),
    ("price_jump", &["price_spike"]),
    ("trade_outside_quote", &["price_spike"]),
    ("null_value", &["missing_field"]),
];

/// One labelled row of `anomalies.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Label {
    /// File name relative to the generated folder.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// Anomaly kind.
    pub kind: String,
}

/// Reads gen-data's `anomalies.jsonl`.
pub fn read_labels(path: &Path) -> Result<Vec<Label>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Malformed {
                file: path.display().to_string(),
                line: i as u64 + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Precision and recall of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleScore {
    /// Rule name.
    pub rule: String,
    /// Labelled kinds it is scored against.
    pub kinds: Vec<String>,
    /// Labelled rows of those kinds.
    pub labelled: u64,
    /// Rows the rule flagged.
    pub flagged: u64,
    /// Flagged rows that carry one of the kinds.
    pub true_positives: u64,
    /// `true_positives / flagged` (1 when nothing was flagged).
    pub precision: f64,
    /// `true_positives / labelled` (1 when nothing was labelled).
    pub recall: f64,
}

/// Scores `findings` (file names as given to the validator, matched to labels by path
/// suffix) against `labels`, for every rule of [`LABELLED_RULES`].
pub fn score(findings: &[(Finding, String)], labels: &[Label]) -> Vec<RuleScore> {
    let label_files: HashSet<&str> = labels.iter().map(|l| l.file.as_str()).collect();
    let mut resolve: HashMap<&str, Option<&str>> = HashMap::new();
    let mut flagged: BTreeMap<&str, HashSet<(&str, u64)>> = BTreeMap::new();
    for (f, file) in findings {
        let key = *resolve.entry(file.as_str()).or_insert_with(|| {
            label_files
                .iter()
                .filter(|l| file == *l || file.ends_with(&format!("/{l}")))
                .max_by_key(|l| l.len())
                .copied()
        });
        let key = key.unwrap_or(file.as_str());
        flagged
            .entry(f.rule.as_str())
            .or_default()
            .insert((key, f.line));
    }
    LABELLED_RULES
        .iter()
        .map(|(rule, kinds)| {
            let truth: HashSet<(&str, u64)> = labels
                .iter()
                .filter(|l| kinds.contains(&l.kind.as_str()))
                .map(|l| (l.file.as_str(), l.line))
                .collect();
            let got = flagged.get(rule).cloned().unwrap_or_default();
            let tp = got.iter().filter(|x| truth.contains(x)).count() as u64;
            let (f, l) = (got.len() as u64, truth.len() as u64);
            RuleScore {
                rule: rule.to_string(),
                kinds: kinds.iter().map(|k| k.to_string()).collect(),
                labelled: l,
                flagged: f,
                true_positives: tp,
                precision: if f == 0 { 1.0 } else { tp as f64 / f as f64 },
                recall: if l == 0 { 1.0 } else { tp as f64 / l as f64 },
            }
        })
        .collect()
}

/// The scores as a Markdown table.
pub fn scores_table(scores: &[RuleScore]) -> String {
    let mut o = String::from(
        "| rule | labelled kinds | labelled | flagged | precision | recall |\n|---|---|---:|---:|---:|---:|\n",
    );
    for s in scores {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {:.4} | {:.4} |",
            s.rule,
            s.kinds.join(", "),
            s.labelled,
            s.flagged,
            s.precision,
            s.recall
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Severity;

    #[test]
    fn suffix_matching_and_counts() {
        let labels = vec![
            Label {
                file: "taq.csv".into(),
                line: 5,
                kind: "crossed_quote".into(),
            },
            Label {
                file: "taq.csv".into(),
                line: 9,
                kind: "crossed_quote".into(),
            },
        ];
        let f = |line| {
            (
                Finding {
                    rule: "crossed_quote".into(),
                    severity: Severity::Error,
                    source: 0,
                    line,
                },
                "/tmp/x/taq.csv".to_string(),
            )
        };
        let s = score(&[f(5), f(7)], &labels);
        let c = s.iter().find(|s| s.rule == "crossed_quote").unwrap();
        assert_eq!((c.flagged, c.true_positives, c.labelled), (2, 1, 2));
        assert_eq!((c.precision, c.recall), (0.5, 0.5));
        assert!(scores_table(&s).contains("| crossed_quote |"));
    }
}
