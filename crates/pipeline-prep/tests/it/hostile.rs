//! Hostile input (issue #13 case 2 and the outlier warm-up): one extreme value must not
//! corrupt window statistics for ever, and a symbol's first rows are judged too.

use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema};
use pipeline_core::{Chunk, Emitter, PreprocessingConfig, Stage, run_stage};
use pipeline_prep::*;

const T0: i64 = 1_609_770_600_000_000_000;

/// Trades: (symbol, price), one per 100 ms, size 100.
fn batch(rows: &[(&str, f64)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", pipeline_core::ts_type(), true),
        Field::new("symbol", pipeline_core::dict_type(), true),
        Field::new("price", DataType::Float64, true),
        Field::new("size", DataType::Float64, true),
    ]));
    let ts = TimestampNanosecondArray::from(
        (0..rows.len() as i64)
            .map(|i| T0 + i * 100_000_000)
            .collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    let mut sym = StringDictionaryBuilder::<Int32Type>::new();
    let mut px = Float64Builder::new();
    for (s, p) in rows {
        sym.append_value(s);
        px.append_value(*p);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(ts),
        Arc::new(sym.finish()),
        Arc::new(px.finish()),
        Arc::new(Float64Array::from(vec![100.0; rows.len()])),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn chunks(b: &RecordBatch, size: usize) -> Vec<Chunk> {
    (0..b.num_rows())
        .step_by(size)
        .enumerate()
        .map(|(seq, off)| {
            let len = size.min(b.num_rows() - off);
            Chunk::with_first_line(b.slice(off, len), 0, seq as u64, 2 + off as u64).unwrap()
        })
        .collect()
}

fn prices(n: usize) -> Vec<f64> {
    (0..n).map(|i| 100.0 + (i % 7) as f64 * 0.01).collect()
}

fn col(cs: &[Chunk], name: &str) -> Vec<Option<f64>> {
    cs.iter()
        .flat_map(|c| {
            let a = c.column_by_name(name).unwrap();
            let a = a.as_any().downcast_ref::<Float64Array>().unwrap();
            a.iter().collect::<Vec<_>>()
        })
        .collect()
}

fn run_chain(stages: &mut [Box<dyn Stage>], input: Vec<Chunk>) -> (Vec<Chunk>, Emitter) {
    let mut all = Emitter::default();
    let mut cur = input;
    for s in stages.iter_mut() {
        let (out, mut e) = run_stage(s.as_mut(), cur).unwrap();
        for r in e.take_rejects() {
            all.quarantine_one(r);
        }
        cur = out;
    }
    (cur, all)
}

/// Case 2, features alone (outlier filter off): a first price of 1e17 gave `sma_20` = 96.2
/// instead of 100.03 for all later rows, and a first price of 1e9 left `rolling_std_20` about
/// 100% wrong. Once the value has left the window every statistic equals a rescan.
#[test]
fn features_forget_an_extreme_first_price() {
    for first in [1e17, 1e9] {
        let mut px = prices(2000);
        px[0] = first;
        let rows: Vec<(&str, f64)> = px.iter().map(|p| ("AAPL", *p)).collect();
        let cfg = PreprocessingConfig::default();
        let mut stages: Vec<Box<dyn Stage>> = feature_stages(&cfg)
            .unwrap()
            .iter()
            .map(|f| f().unwrap())
            .collect();
        let (out, _) = run_chain(&mut stages, chunks(&batch(&rows), 64));
        let sma = col(&out, "sma_20");
        let sd = col(&out, "rolling_std_20");
        let vwap = col(&out, "vwap_100");
        for i in 120..px.len() {
            let w = &px[i - 19..=i];
            let mean = w.iter().sum::<f64>() / 20.0;
            let std = (w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 19.0).sqrt();
            let vw = px[i - 99..=i].iter().sum::<f64>() / 100.0;
            assert!(
                (sma[i].unwrap() - mean).abs() < 1e-9 * mean,
                "{first}: sma row {i}"
            );
            assert!(
                (sd[i].unwrap() - std).abs() < 1e-9 * mean,
                "{first}: std row {i}"
            );
            assert!(
                (vwap[i].unwrap() - vw).abs() < 1e-9 * vw,
                "{first}: vwap row {i}"
            );
        }
    }
}

/// The rolling outlier filter had no window for a symbol's first rows, so a first price of
/// 1e9 passed (and then inflated its window). The warm-up judges the first rows once they
/// have arrived: the 1e9 row is removed with the numbers behind the verdict, and the result
/// does not depend on the chunk size.
#[test]
fn outlier_filter_judges_a_symbols_first_rows() {
    let mut rows: Vec<(&str, f64)> = Vec::new();
    for (i, p) in prices(300).into_iter().enumerate() {
        rows.push(("AAPL", if i == 0 { 1e9 } else { p }));
        if i % 3 == 0 {
            rows.push(("MSFT", if i == 30 { 0.001 } else { 250.0 + p / 100.0 }));
        }
    }
    // A symbol with two rows: too few to judge, kept.
    rows.push(("IBM", 5e9));
    rows.push(("IBM", 130.0));
    let b = batch(&rows);
    let mut reference = None;
    for size in [1, 7, 64, 10_000] {
        let mut s = RollingOutliers::new(OutlierConfig::default()).unwrap();
        let (out, e) = run_stage(&mut s, chunks(&b, size)).unwrap();
        let removed: Vec<(u64, String)> = e
            .rejects()
            .iter()
            .map(|r| (r.line, r.reason.clone()))
            .collect();
        assert_eq!(
            removed,
            vec![(2, "outlier_zscore".into()), (43, "outlier_zscore".into())],
            "chunk size {size}"
        );
        let r = &e.rejects()[0];
        assert!(
            r.detail.contains("robust deviations from the median"),
            "{}",
            r.detail
        );
        assert!(
            r.raw.as_deref().unwrap().contains("AAPL,1000000000"),
            "{:?}",
            r.raw
        );
        let kept: usize = out.iter().map(|c| c.num_rows()).sum();
        assert_eq!(kept, rows.len() - 2);
        // Per symbol, rows come out in input order whatever the chunking.
        let mut lines: Vec<u64> = out
            .iter()
            .flat_map(|c| c.lines().values().to_vec())
            .collect();
        let sorted = {
            let mut l = lines.clone();
            l.sort_unstable();
            l
        };
        if let Some(want) = &reference {
            lines.sort_unstable();
            assert_eq!(&lines, want);
        } else {
            reference = Some(sorted);
        }
    }
}

/// A z-score verdict after the warm-up carries the z-score, the window's mean and std, and
/// the threshold in its detail; a checkpoint taken during the warm-up restores it.
#[test]
fn outlier_details_and_checkpoints_during_the_warm_up() {
    let mut px = prices(200);
    px[120] = 150.0;
    let rows: Vec<(&str, f64)> = px.iter().map(|p| ("AAPL", *p)).collect();
    let b = batch(&rows);
    let all = chunks(&b, 8);
    let mut a = RollingOutliers::new(OutlierConfig::default()).unwrap();
    let (_, e) = run_stage(&mut a, all.clone()).unwrap();
    assert_eq!(e.rejects().len(), 1);
    let d = &e.rejects()[0].detail;
    assert!(d.contains("z-score") && d.contains("threshold 10"), "{d}");
    // Stop after the second chunk (inside the 21-row warm-up), checkpoint, restore, go on.
    let mut first = RollingOutliers::new(OutlierConfig::default()).unwrap();
    let mut em = Emitter::default();
    for c in &all[..2] {
        first.process(c.clone(), &mut em).unwrap();
    }
    assert!(
        em.chunks().is_empty(),
        "the warm-up holds the first 16 rows"
    );
    let state = first.checkpoint().unwrap().unwrap();
    let mut second = RollingOutliers::new(OutlierConfig::default()).unwrap();
    second.restore(&state).unwrap();
    let (out, e2) = run_stage(&mut second, all[2..].iter().cloned()).unwrap();
    assert_eq!(e2.rejects()[0].line, e.rejects()[0].line);
    let kept: usize = out.iter().map(|c| c.num_rows()).sum();
    assert_eq!(kept, 199);
}
