//! Precision and recall of the financial preset on gen-data's labelled anomalies.

use pipeline_validate::{Finding, Validator, read_labels, score, scores_table};

use crate::util::{gen_data, read};

/// Runs the standalone preset over a generated per-day dataset (every anomaly kind at 0.4%
/// of rows, so each rule is scored on about a hundred labelled rows) and checks precision
/// and recall of every rule against `anomalies.jsonl`.
#[test]
fn financial_preset_finds_labelled_anomalies() {
    let dir = tempfile::tempdir().unwrap();
    let (files, labels) = gen_data(dir.path(), 40_000, 8, 4, 0.004);
    let labels = read_labels(&labels).unwrap();
    let mut v = Validator::financial().unwrap();
    let mut found: Vec<(Finding, String)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let name = f.display().to_string();
        let res = v
            .validate_file(name.clone(), read(f, i as u32, 4096).into_iter().map(Ok))
            .unwrap();
        found.extend(res.findings.into_iter().map(|x| (x, name.clone())));
    }
    // Findings decided at the end (the last rows' price jumps) come with the report.
    let report = v.generate_report().unwrap().clone();
    let last = files.last().unwrap().display().to_string();
    found.extend(v.drain_findings().into_iter().map(|x| {
        let name = if (x.source as usize) < files.len() {
            files[x.source as usize].display().to_string()
        } else {
            last.clone()
        };
        (x, name)
    }));
    let scores = score(&found, &labels);
    println!("{}", scores_table(&scores));
    for s in &scores {
        assert!(
            s.labelled >= 50,
            "{}: only {} labelled rows",
            s.rule,
            s.labelled
        );
        assert!(
            s.precision >= 0.95 && s.recall >= 0.95,
            "{}: precision {:.3}, recall {:.3} ({} flagged, {} labelled)",
            s.rule,
            s.precision,
            s.recall,
            s.flagged,
            s.labelled
        );
    }
    assert!(report.rows_checked > 39_000);
}
