//! Each rule with rows that pass and rows that fail.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use pipeline_core::{Chunk, Config};
use pipeline_validate::{
    CustomRule, RulesFile, Severity, Status, Validator, Verdict, financial_rules,
};

use crate::util::{OPEN, Row, SEC, clean, taq};

/// Findings by rule: the lines flagged, plus the quarantine reasons by line.
fn run(
    v: &mut Validator,
    chunks: Vec<Chunk>,
) -> (BTreeMap<String, Vec<u64>>, BTreeMap<u64, String>) {
    let mut by_rule: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut rejects = BTreeMap::new();
    for c in chunks {
        let out = v.validate_chunk(c).unwrap();
        for f in out.findings {
            by_rule.entry(f.rule).or_default().push(f.line);
        }
        for r in out.rejects {
            assert!(
                r.detail.starts_with(&format!("{} (error)", r.reason)),
                "{}",
                r.detail
            );
            rejects.insert(r.line, r.reason);
        }
    }
    v.generate_report().unwrap();
    for f in v.drain_findings() {
        by_rule.entry(f.rule).or_default().push(f.line);
    }
    for l in by_rule.values_mut() {
        l.sort_unstable();
    }
    (by_rule, rejects)
}

fn lines(m: &BTreeMap<String, Vec<u64>>, rule: &str) -> Vec<u64> {
    m.get(rule).cloned().unwrap_or_default()
}

#[test]
fn row_rules_flag_bad_rows_and_pass_good_ones() {
    let rows: Vec<Row> = vec![
        clean(0, "A", 10.00), // 2 ok
        (
            OPEN + SEC,
            "A",
            Some(0.0),
            Some(100.0),
            Some(9.99),
            Some(10.01),
        ), // 3 price 0
        (
            OPEN + 2 * SEC,
            "A",
            Some(10.0),
            Some(-5.0),
            Some(9.99),
            Some(10.01),
        ), // 4 size < 0
        (
            OPEN + 3 * SEC,
            "A",
            Some(10.0),
            Some(100.0),
            Some(10.02),
            Some(10.01),
        ), // 5 crossed
        (
            OPEN + 4 * SEC,
            "A",
            Some(10.0),
            Some(100.0),
            Some(10.0),
            Some(10.0),
        ), // 6 locked
        (
            OPEN + 5 * SEC,
            "A",
            Some(10.005),
            Some(100.0),
            Some(9.99),
            Some(10.01),
        ), // 7 off grid
        (
            OPEN + 6 * SEC,
            "A",
            Some(10.10),
            Some(100.0),
            Some(9.99),
            Some(10.01),
        ), // 8 T4
        (
            OPEN + 7 * SEC,
            "A",
            None,
            Some(100.0),
            Some(9.99),
            Some(10.01),
        ), // 9 null price
        clean(8, "A", 10.00), // 10 ok
        (
            OPEN + 9 * SEC,
            "A",
            Some(-1.0),
            Some(0.0),
            Some(10.02),
            Some(10.01),
        ), // 11 price first
        clean(10, "A", 0.5),  // 12 sub-dollar ok
    ];
    let mut v = Validator::financial().unwrap();
    let (f, rejects) = run(&mut v, vec![taq(&rows, 2)]);
    assert_eq!(
        rejects.get(&3).map(String::as_str),
        Some("nonpositive_price")
    );
    assert_eq!(
        rejects.get(&4).map(String::as_str),
        Some("nonpositive_size")
    );
    assert_eq!(rejects.get(&5).map(String::as_str), Some("crossed_quote"));
    assert_eq!(
        rejects.get(&11).map(String::as_str),
        Some("nonpositive_price")
    );
    assert_eq!(rejects.len(), 4);
    assert_eq!(lines(&f, "locked_quote"), [6]);
    assert_eq!(lines(&f, "tick_grid"), [7]);
    assert_eq!(lines(&f, "trade_outside_quote"), [8]);
    assert_eq!(lines(&f, "null_value"), [9]);
    let r = v.generate_report().unwrap();
    assert_eq!(r.rows_quarantined, 4);
    assert_eq!(r.verdict, Verdict::Fail);
    let ex = &r.rule("crossed_quote").unwrap().examples[0];
    assert_eq!(
        (
            ex.line,
            ex.values["bid"].as_str(),
            ex.values["ask"].as_str()
        ),
        (5, "10.02", "10.01")
    );
    assert_eq!(r.rule("bar_ohlc").unwrap().status, Status::NotApplicable);
    assert_eq!(r.rule("bounds").unwrap().status, Status::Off);
}

#[test]
fn stateful_rules_order_duplicates_session_gaps() {
    let min = 60 * SEC;
    let rows: Vec<Row> = vec![
        (
            OPEN - 3600 * SEC,
            "A",
            Some(10.0),
            Some(1.0),
            Some(9.99),
            Some(10.01),
        ), // 2 pre-open
        clean(0, "A", 10.0), // 3
        clean(1, "A", 10.0), // 4
        clean(1, "A", 10.0), // 5 duplicate of 4
        clean(1, "B", 10.0), // 6 other symbol: no dup
        (
            OPEN + SEC / 2,
            "A",
            Some(10.0),
            Some(100.0),
            Some(9.99),
            Some(10.01),
        ), // 7 out of order
        clean(2, "A", 10.0), // 8 ok
        (
            OPEN + 2 * SEC + 45 * min,
            "A",
            Some(10.0),
            Some(100.0),
            Some(9.99),
            Some(10.01),
        ), // 9 gap 45m
        (
            OPEN + 7 * 3600 * SEC,
            "A",
            Some(10.0),
            Some(100.0),
            Some(9.99),
            Some(10.01),
        ), // 10 after close
        (
            OPEN - 2 * 86_400 * SEC + 3600 * SEC,
            "C",
            Some(10.0),
            Some(1.0),
            Some(9.99),
            Some(10.01),
        ), // 11 Saturday
    ];
    let mut v = Validator::financial().unwrap();
    // One row per chunk: state must carry across chunks.
    let chunks: Vec<Chunk> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| taq(&[*r], i as u64 + 2))
        .collect();
    let (f, rejects) = run(&mut v, chunks);
    assert_eq!(rejects.get(&7).map(String::as_str), Some("ts_order"));
    assert_eq!(rejects.len(), 1);
    assert_eq!(lines(&f, "duplicate_row"), [5]);
    assert_eq!(lines(&f, "outside_session"), [2, 10]);
    assert_eq!(lines(&f, "non_trading_day"), [11]);
    assert_eq!(lines(&f, "session_gap"), [9]);
}

#[test]
fn price_jumps_are_judged_against_neighbours_across_chunks() {
    // A slow walk with one 10% spike (line 30) and one level shift that stays (line 60).
    let mut rows: Vec<Row> = Vec::new();
    for i in 0..80i64 {
        let base = if i >= 58 { 12.0 } else { 10.0 };
        let mut px = base + 0.01 * ((i * 7) % 5) as f64;
        if i == 28 {
            px *= 1.1;
        }
        rows.push((OPEN + i * SEC, "A", Some(px), Some(100.0), None, None));
    }
    for size in [1, 3, 80] {
        let mut v = Validator::financial().unwrap();
        let chunks: Vec<Chunk> = rows
            .chunks(size)
            .enumerate()
            .map(|(k, c)| taq(c, 2 + (k * size) as u64))
            .collect();
        let (f, _) = run(&mut v, chunks);
        assert_eq!(lines(&f, "price_jump"), [30, 60], "chunks of {size}");
    }
}

#[test]
fn spread_outliers_use_the_days_median() {
    let mut rows: Vec<Row> = (0..40).map(|i| clean(i, "A", 10.0)).collect();
    rows[17].4 = Some(9.0); // spread 1.01 = 50.5 × the median 0.02
    rows[18].4 = Some(9.5); // spread 0.51: 25.5 ×, fine
    let mut v = Validator::financial().unwrap();
    let (f, _) = run(&mut v, vec![taq(&rows, 2)]);
    assert_eq!(lines(&f, "spread_outlier"), [19]);
    let r = v.generate_report().unwrap();
    assert_eq!(r.symbol_days[0].median_spread, Some(0.02));
    assert_eq!(r.spreads_bps.outliers.iter().sum::<u64>(), 1);
}

#[test]
fn bars_and_custom_rules() {
    let t = |i: i64| OPEN + i * 60 * SEC;
    let f = |v: Vec<f64>| Arc::new(Float64Array::from(v)) as ArrayRef;
    let batch = RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(
                TimestampNanosecondArray::from(vec![t(0), t(1), t(2), t(3)]).with_timezone("UTC"),
            ) as ArrayRef,
        ),
        (
            "symbol",
            Arc::new(StringArray::from(vec!["A"; 4])) as ArrayRef,
        ),
        ("open", f(vec![10.0, 10.0, 10.0, 10.0])),
        ("high", f(vec![10.5, 9.9, 10.5, 10.5])),
        ("low", f(vec![9.5, 9.5, 10.2, 9.5])),
        ("close", f(vec![10.2, 9.8, 10.3, 10.2])),
        ("volume", f(vec![100.0, 100.0, 100.0, -1.0])),
    ])
    .unwrap();
    let mut v = Validator::financial().unwrap();
    v.add_rule(CustomRule::expr("range_cap", Severity::Warning, "high - low < 0.8").unwrap())
        .unwrap();
    v.add_rule(
        CustomRule::new(
            "even_minutes",
            Severity::Info,
            Arc::new(|c: &Chunk| {
                Ok(BooleanArray::from(
                    (0..c.num_rows())
                        .map(|i| c.line(i).is_multiple_of(2))
                        .collect::<Vec<_>>(),
                ))
            }),
        )
        .description("odd lines"),
    )
    .unwrap();
    let (found, rejects) = run(
        &mut v,
        vec![Chunk::with_first_line(batch, 0, 0, 2).unwrap()],
    );
    assert_eq!(rejects.keys().copied().collect::<Vec<_>>(), [3, 4, 5]);
    assert!(rejects.values().all(|r| r == "bar_ohlc"));
    assert_eq!(lines(&found, "range_cap"), [2]);
    assert_eq!(
        lines(&found, "even_minutes"),
        Vec::<u64>::new(),
        "line 2 is even; 3-5 were quarantined"
    );
    let r = v.generate_report().unwrap();
    assert_eq!(
        r.rule("range_cap").unwrap().examples[0].values["high"],
        "10.5"
    );
    assert_eq!(
        r.rule("even_minutes").unwrap().severity,
        Some(Severity::Info)
    );
}

#[test]
fn rules_file_bounds_allowed_values_severities_and_thresholds() {
    let file = RulesFile::parse(
        r#"
[columns.price]
min = 5.0
max = 20.0
[columns.exchange]
allowed = ["Q", "N"]
[severity]
locked_quote = "error"
[thresholds]
locked_quote = 0.5
[[rule]]
name = "no_big_size"
expr = "size <= 1000"
severity = "error"
"#,
    )
    .unwrap();
    let mut rows: Vec<Row> = (0..6).map(|i| clean(i, "A", 10.0)).collect();
    rows[1].2 = Some(25.0); // line 3: above max
    rows[2].4 = rows[2].5; // line 4: locked, now an error
    rows[3].3 = Some(5000.0); // line 5: custom error rule
    let mut batch = taq(&rows, 2).batch().clone();
    batch.remove_column(batch.num_columns() - 1);
    let ex = Arc::new(StringArray::from(vec!["Q", "N", "Q", "Q", "X", "Q"])) as ArrayRef;
    let mut cols = batch.columns().to_vec();
    cols.push(ex);
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(arrow_schema::Field::new(
        "exchange",
        arrow_schema::DataType::Utf8,
        true,
    )));
    let batch = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols).unwrap();
    let mut v = Validator::financial().unwrap();
    v.set_rules_file(file).unwrap();
    let (found, rejects) = run(
        &mut v,
        vec![Chunk::with_first_line(batch, 0, 0, 2).unwrap()],
    );
    assert_eq!(rejects.get(&3).map(String::as_str), Some("bounds"));
    assert_eq!(rejects.get(&4).map(String::as_str), Some("locked_quote"));
    assert_eq!(rejects.get(&5).map(String::as_str), Some("no_big_size"));
    assert_eq!(lines(&found, "allowed_values"), [6]);
    let r = v.generate_report().unwrap();
    // One locked quote in six rows is under its 50% threshold; bounds (1/6 > 1%) fails.
    assert_eq!(r.rule("locked_quote").unwrap().status, Status::Pass);
    assert_eq!(r.rule("bounds").unwrap().status, Status::Fail);
}

#[test]
fn seed_style_add_rules_and_config_errors() {
    let mut v = Validator::empty().unwrap();
    let mut preset = financial_rules();
    preset.retain(|r| r.name == "crossed_quote");
    v.add_rules(preset).unwrap();
    let rows = vec![
        (OPEN, "A", Some(0.0), Some(100.0), Some(10.02), Some(10.01)),
        clean(1, "A", 10.0),
    ];
    let (_, rejects) = run(&mut v, vec![taq(&rows, 2)]);
    // Only crossed_quote runs: the zero price is not a finding.
    assert_eq!(rejects.get(&2).map(String::as_str), Some("crossed_quote"));
    assert!(
        v.add_rule(CustomRule::expr("late", Severity::Info, "price > 0").unwrap())
            .is_err()
    );
    let mut cfg = Config::default();
    cfg.validation
        .severity
        .insert("crossed_quotes".into(), "off".into());
    let mut bad = Validator::new(&cfg).unwrap();
    let e = bad.validate_chunk(taq(&rows, 2)).unwrap_err().to_string();
    assert!(e.contains("crossed_quotes"), "{e}");
}

#[test]
fn schema_rules_name_missing_columns_and_wrong_types() {
    let batch = RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(arrow_array::TimestampMillisecondArray::from(vec![
                OPEN / 1_000_000,
            ])) as ArrayRef,
        ),
        (
            "price",
            Arc::new(Float64Array::from(vec![10.0])) as ArrayRef,
        ),
        ("size", Arc::new(StringArray::from(vec!["100"])) as ArrayRef),
    ])
    .unwrap();
    let mut v = Validator::financial().unwrap();
    v.validate_file("bad.csv", [Chunk::with_first_line(batch, 0, 0, 2)])
        .unwrap();
    let r = v.generate_report().unwrap();
    let cols = r.rule("schema_columns").unwrap();
    assert_eq!(cols.status, Status::Fail);
    assert!(
        cols.examples[0].note.contains("`symbol`"),
        "{:?}",
        cols.examples
    );
    let types = r.rule("schema_types").unwrap();
    let notes: Vec<&str> = types.examples.iter().map(|e| e.note.as_str()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("`ts`") && n.contains("precision")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("`size`")), "{notes:?}");
    assert_eq!(types.examples[0].file, "bad.csv");
    assert_eq!(r.verdict, Verdict::Fail);
}
