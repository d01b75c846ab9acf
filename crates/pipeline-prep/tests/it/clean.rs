//! Integration tests: clean. Each rule on a small hand-made series (asserting the removed
//! rows by `_line`), chunk-size invariance and checkpoint/restore for every stateful stage,
//! ledger accounting, and the default chain's precision and recall on generated TAQ data.

#[path = "taqgen.rs"]
mod taqgen;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, TimestampNanosecondArray,
};
use pipeline_core::{Chunk, Emitter, Ledger, PreprocessingConfig, Reject, Stage, run_stage};
use pipeline_prep::*;
use proptest::prelude::*;

use taqgen::{Gen, Kind, Rates};

const T0: i64 = 1_609_770_600_000_000_000; // 2021-01-04 14:30:00 UTC = 09:30 New York.
const SEC: i64 = 1_000_000_000;

/// One hand-made row; `r(..)` gives size 100, exchange `Q`, condition `@`.
#[derive(Clone)]
struct R {
    ts: i64,
    sym: &'static str,
    p: Option<f64>,
    sz: Option<f64>,
    b: Option<f64>,
    a: Option<f64>,
    ex: &'static str,
    cond: &'static str,
}

fn r(secs: i64, sym: &'static str, p: f64, b: f64, a: f64) -> R {
    R {
        ts: T0 + secs * SEC,
        sym,
        p: Some(p),
        sz: Some(100.0),
        b: Some(b),
        a: Some(a),
        ex: "Q",
        cond: "@",
    }
}

impl R {
    fn size(mut self, s: Option<f64>) -> R {
        self.sz = s;
        self
    }
    fn price(mut self, p: Option<f64>) -> R {
        self.p = p;
        self
    }
    fn quote(mut self, b: Option<f64>, a: Option<f64>) -> R {
        self.b = b;
        self.a = a;
        self
    }
    fn ex(mut self, e: &'static str) -> R {
        self.ex = e;
        self
    }
    fn cond(mut self, c: &'static str) -> R {
        self.cond = c;
        self
    }
    fn at_ns(mut self, ts: i64) -> R {
        self.ts = ts;
        self
    }
}

fn batch(rows: &[R]) -> RecordBatch {
    let ts = TimestampNanosecondArray::from(rows.iter().map(|r| r.ts).collect::<Vec<_>>())
        .with_timezone("UTC");
    let mut sym = StringDictionaryBuilder::<Int32Type>::new();
    let mut ex = StringDictionaryBuilder::<Int32Type>::new();
    let mut cond = StringBuilder::new();
    let mut f: Vec<Float64Builder> = (0..6).map(|_| Float64Builder::new()).collect();
    for r in rows {
        sym.append_value(r.sym);
        ex.append_value(r.ex);
        cond.append_value(r.cond);
        for (b, v) in f
            .iter_mut()
            .zip([r.p, r.sz, r.b, r.a, Some(500.0), Some(500.0)])
        {
            b.append_option(v);
        }
    }
    let mut cols: Vec<ArrayRef> = vec![Arc::new(ts), Arc::new(sym.finish())];
    for mut b in f {
        cols.push(Arc::new(b.finish()));
    }
    cols.push(Arc::new(ex.finish()));
    cols.push(Arc::new(cond.finish()));
    RecordBatch::try_new(taqgen::schema(), cols).unwrap()
}

/// Splits `b` into chunks of `size` rows; line numbers start at 2 (after a header).
fn chunks(b: &RecordBatch, size: usize) -> Vec<Chunk> {
    let size = size.max(1);
    (0..b.num_rows())
        .step_by(size)
        .enumerate()
        .map(|(seq, off)| {
            let len = size.min(b.num_rows() - off);
            Chunk::with_first_line(b.slice(off, len), 0, seq as u64, 2 + off as u64).unwrap()
        })
        .collect()
}

fn run(stage: &mut dyn Stage, b: &RecordBatch, size: usize) -> (Vec<Chunk>, Emitter) {
    run_stage(stage, chunks(b, size)).unwrap()
}

fn out_lines(cs: &[Chunk]) -> Vec<u64> {
    cs.iter()
        .flat_map(|c| c.lines().values().to_vec())
        .collect()
}

fn removed(e: &Emitter, rule: &str) -> Vec<u64> {
    let mut v: Vec<u64> = e
        .rejects()
        .iter()
        .filter(|r| r.reason == rule)
        .map(|r| r.line)
        .collect();
    v.sort_unstable();
    v
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

fn flags(cs: &[Chunk], name: &str) -> Vec<bool> {
    cs.iter()
        .flat_map(|c| {
            let a = c.column_by_name(name).unwrap();
            let a = a.as_any().downcast_ref::<BooleanArray>().unwrap();
            a.iter().map(|v| v.unwrap()).collect::<Vec<_>>()
        })
        .collect()
}

/// One value of any column, as text (dictionaries resolved to their strings).
fn cell(a: &ArrayRef, i: usize) -> String {
    if let Some(d) = a
        .as_any()
        .downcast_ref::<arrow_array::DictionaryArray<Int32Type>>()
    {
        let v = d
            .values()
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        return if d.is_null(i) {
            "null".into()
        } else {
            v.value(d.keys().value(i) as usize).to_string()
        };
    }
    format!("{:?}", a.slice(i, 1)).replace('\n', "")
}

type Canon = (BTreeMap<String, Vec<String>>, Vec<(u64, String)>, String);

/// A canonical view of a run for comparisons: rows per symbol in order (every value,
/// `_line` included), the sorted rejects, and the ledger.
fn canon(cs: &[Chunk], e: &Emitter) -> Canon {
    let mut per: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in cs {
        let b = c.batch();
        let schema = b.schema();
        let si = schema.index_of("symbol").unwrap();
        for i in 0..b.num_rows() {
            let row: Vec<String> = b
                .columns()
                .iter()
                .enumerate()
                .map(|(j, a)| format!("{}={}", schema.field(j).name(), cell(a, i)))
                .collect();
            per.entry(cell(b.column(si), i))
                .or_default()
                .push(row.join(" "));
        }
    }
    let mut rej: Vec<(u64, String)> = e
        .rejects()
        .iter()
        .map(|r| (r.line, r.reason.clone()))
        .collect();
    rej.sort();
    (per, rej, format!("{:?}", e.ledger()))
}

/// Asserts two canonical views are equal, printing only the first difference.
fn same(a: &Canon, b: &Canon, what: &str) -> Result<(), String> {
    if a.2 != b.2 {
        return Err(format!("{what}: ledgers differ: {} vs {}", a.2, b.2));
    }
    if a.1 != b.1 {
        return Err(format!("{what}: rejects differ: {:?} vs {:?}", a.1, b.1));
    }
    for (k, rows) in &a.0 {
        let other = b.0.get(k).cloned().unwrap_or_default();
        if rows.len() != other.len() {
            return Err(format!(
                "{what}: symbol {k}: {} vs {} rows",
                rows.len(),
                other.len()
            ));
        }
        for (x, y) in rows.iter().zip(&other) {
            if x != y {
                return Err(format!("{what}: symbol {k}:\n  {x}\n  {y}"));
            }
        }
    }
    if a.0.len() != b.0.len() {
        return Err(format!("{what}: symbol sets differ"));
    }
    Ok(())
}

fn gen_batch(seed: u64, n: usize, symbols: usize, rates: Rates) -> (RecordBatch, Vec<(u64, Kind)>) {
    let mut g = Gen::new(seed, symbols, rates);
    let c = g.chunk(n);
    (c.data_batch(), g.truth)
}

// ---------------------------------------------------------------- invalid rows

#[test]
fn invalid_rows_removes_nonpositive_and_crossed() {
    let rows = [
        r(0, "A", 10.0, 9.99, 10.01),                 // line 2: fine
        r(1, "A", 0.0, 9.99, 10.01),                  // line 3: zero price
        r(2, "A", -10.0, 9.99, 10.01),                // line 4: negative price
        r(3, "A", 10.0, 9.99, 10.01).size(Some(0.0)), // line 5: zero size
        r(4, "A", 10.0, 10.02, 10.01),                // line 6: crossed
        r(5, "A", 10.0, 10.01, 10.01),                // line 7: locked, kept
        r(6, "A", 10.0, 9.99, 10.01).size(None),      // line 8: null size is not invalid
        r(7, "A", 10.0, 0.0, 10.01),                  // line 9: zero bid
    ];
    let (out, e) = run(&mut InvalidRows::default(), &batch(&rows), 3);
    assert_eq!(out_lines(&out), vec![2, 7, 8]);
    assert_eq!(removed(&e, "nonpositive_price"), vec![3, 4, 9]);
    assert_eq!(removed(&e, "nonpositive_size"), vec![5]);
    assert_eq!(removed(&e, "crossed_quote"), vec![6]);
    let cfg = InvalidConfig {
        drop_locked: true,
        nonpositive_price: false,
        ..InvalidConfig::default()
    };
    let (out, e) = run(&mut InvalidRows::new(cfg), &batch(&rows), 100);
    assert_eq!(removed(&e, "crossed_quote"), vec![6, 7]);
    assert_eq!(out_lines(&out), vec![2, 3, 4, 8, 9]);
}

#[test]
fn invalid_rows_without_quote_columns_is_a_no_op_for_quote_rules() {
    let b = batch(&[r(0, "A", 10.0, 11.0, 10.0), r(1, "A", 0.0, 1.0, 2.0)]);
    let b = b.project(&[0, 1, 2, 3]).unwrap(); // ts, symbol, price, size
    let (out, e) = run(&mut InvalidRows::default(), &b, 10);
    assert_eq!(out_lines(&out), vec![2]);
    assert_eq!(removed(&e, "nonpositive_price"), vec![3]);
}

// ---------------------------------------------------------------- missing values

fn gappy() -> Vec<R> {
    vec![
        r(0, "A", 10.0, 9.99, 10.01),             // 2
        r(1, "A", 10.0, 9.99, 10.01).price(None), // 3: gap of 1
        r(3, "A", 12.0, 9.99, 10.01),             // 4
        r(4, "B", 50.0, 49.0, 51.0).price(None),  // 5: B has no earlier price
        r(5, "A", 12.0, 9.99, 10.01).price(None), // 6: gap of 3 (6, 7, 8)
        r(6, "A", 12.0, 9.99, 10.01).price(None), // 7
        r(7, "A", 12.0, 9.99, 10.01).price(None), // 8
        r(8, "A", 14.0, 9.99, 10.01),             // 9
        r(9, "A", 14.0, 9.99, 10.01).price(None), // 10: open at the end
    ]
}

#[test]
fn missing_drop_removes_rows_with_nulls() {
    let (out, e) = run(
        &mut MissingValues::new(MissingConfig::default()),
        &batch(&gappy()),
        4,
    );
    assert_eq!(out_lines(&out), vec![2, 4, 9]);
    assert_eq!(removed(&e, "missing_value"), vec![3, 5, 6, 7, 8, 10]);
}

#[test]
fn missing_ffill_respects_max_gap() {
    let cfg = MissingConfig {
        method: MissingMethod::Ffill,
        max_gap: 2,
        ..MissingConfig::default()
    };
    let (out, e) = run(&mut MissingValues::new(cfg), &batch(&gappy()), 2);
    // Line 5: no earlier B price; line 8: third null in a row, beyond max_gap = 2.
    assert_eq!(removed(&e, "missing_value"), vec![5, 8]);
    assert_eq!(out_lines(&out), vec![2, 3, 4, 6, 7, 9, 10]);
    assert_eq!(
        col(&out, "price"),
        [10.0, 10.0, 12.0, 12.0, 12.0, 14.0, 14.0]
            .map(Some)
            .to_vec()
    );
    assert_eq!(e.ledger().repaired["ffill"], 4);
}

#[test]
fn missing_interpolate_is_time_weighted() {
    let cfg = MissingConfig {
        method: MissingMethod::Interpolate,
        max_gap: 3,
        ..MissingConfig::default()
    };
    let (out, e) = run(&mut MissingValues::new(cfg), &batch(&gappy()), 1);
    // 5: leading null; 10: no later value.
    assert_eq!(removed(&e, "missing_value"), vec![5, 10]);
    assert_eq!(out_lines(&out), vec![2, 3, 4, 6, 7, 8, 9]);
    // Line 3 at t=1 between 10 (t=0) and 12 (t=3): 10 + 2/3; lines 6-8 at t=5,6,7 between
    // 12 (t=3) and 14 (t=8): 12.8, 13.2, 13.6.
    let p: Vec<f64> = col(&out, "price").into_iter().map(|v| v.unwrap()).collect();
    let want = [10.0, 10.0 + 2.0 / 3.0, 12.0, 12.8, 13.2, 13.6, 14.0];
    for (g, w) in p.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{p:?}");
    }
    assert_eq!(e.ledger().repaired["interpolate"], 4);
    let cfg = MissingConfig {
        method: MissingMethod::Interpolate,
        max_gap: 2,
        ..MissingConfig::default()
    };
    let (_, e) = run(&mut MissingValues::new(cfg), &batch(&gappy()), 100);
    assert_eq!(removed(&e, "missing_value"), vec![5, 6, 7, 8, 10]);
}

#[test]
fn missing_constant_fills_numbers() {
    let cfg = MissingConfig {
        method: MissingMethod::Constant,
        fill_value: -1.0,
        ..MissingConfig::default()
    };
    let (out, e) = run(&mut MissingValues::new(cfg), &batch(&gappy()[..3]), 2);
    assert_eq!(col(&out, "price"), vec![Some(10.0), Some(-1.0), Some(12.0)]);
    assert_eq!(e.ledger().repaired["constant"], 1);
}

// ---------------------------------------------------------------- de-duplication

#[test]
fn dedupe_exact_and_by_key() {
    let rows = [
        r(0, "A", 10.0, 9.99, 10.01),         // 2
        r(0, "A", 10.0, 9.99, 10.01),         // 3: exact copy of 2
        r(0, "B", 10.0, 9.99, 10.01),         // 4: other symbol
        r(0, "A", 10.0, 9.98, 10.01),         // 5: other bid
        r(1, "A", 10.0, 9.99, 10.01),         // 6: later timestamp
        r(1, "A", 10.0, 9.99, 10.01).ex("N"), // 7: same as 6 but exchange
        r(0, "A", 10.0, 9.99, 10.01),         // 8: same values as 2, but ts went back
    ];
    let (out, e) = run(&mut Dedupe::default(), &batch(&rows), 2);
    assert_eq!(removed(&e, "dedupe_exact"), vec![3]);
    assert_eq!(out_lines(&out), vec![2, 4, 5, 6, 7, 8]);
    let key = DedupeConfig {
        key: ["ts", "price", "size"].map(String::from).to_vec(),
    };
    let (_, e) = run(&mut Dedupe::new(key), &batch(&rows), 3);
    // Under the key, 5 (other bid) and 7 (other exchange) repeat 2 and 6; 8 is not found
    // because duplicates are only looked for within the symbol's current timestamp.
    assert_eq!(removed(&e, "dedupe_key"), vec![3, 5, 7]);
}

// ---------------------------------------------------------------- outliers

fn walk(n: usize, sym: &'static str, spikes: &[(usize, f64)]) -> Vec<R> {
    // A deterministic zig-zag around 100 (±2 ticks) with multiplicative spikes.
    (0..n)
        .map(|i| {
            let mut p = 100.0 + [0.0, 0.01, 0.02, 0.01, 0.0, -0.01][i % 6];
            if let Some((_, f)) = spikes.iter().find(|(j, _)| *j == i) {
                p *= f;
            }
            r(i as i64, sym, p, 99.98, 100.02)
        })
        .collect()
}

#[test]
fn rolling_zscore_mad_iqr_drop_the_spikes() {
    let rows = walk(200, "A", &[(50, 1.1), (120, 1.0 / 1.2), (121, 1.3)]);
    let b = batch(&rows);
    for (method, basis) in [
        RollingMethod::Zscore,
        RollingMethod::Mad,
        RollingMethod::Iqr,
    ]
    .into_iter()
    .flat_map(|m| [(m, Basis::Return), (m, Basis::Level)])
    {
        let cfg = OutlierConfig {
            method,
            basis,
            ..OutlierConfig::default()
        };
        let (out, e) = run(&mut RollingOutliers::new(cfg).unwrap(), &b, 7);
        let name = format!("outlier_{}", ["zscore", "mad", "iqr"][method as usize]);
        // Row i is line i + 2.
        assert_eq!(
            removed(&e, &name),
            vec![52, 122, 123],
            "{method:?} {basis:?}"
        );
        assert_eq!(out.iter().map(|c| c.num_rows()).sum::<usize>(), 197);
    }
}

#[test]
fn rolling_flag_and_winsorize() {
    let b = batch(&walk(60, "A", &[(40, 1.5)]));
    let cfg = OutlierConfig {
        action: OutlierAction::Flag,
        ..OutlierConfig::default()
    };
    let (out, _) = run(&mut RollingOutliers::new(cfg).unwrap(), &b, 9);
    let f = flags(&out, "outlier_zscore");
    assert_eq!(f.iter().filter(|x| **x).count(), 1);
    assert!(f[40]);
    let cfg = OutlierConfig {
        action: OutlierAction::Winsorize,
        ..OutlierConfig::default()
    };
    let (out, e) = run(&mut RollingOutliers::new(cfg).unwrap(), &b, 9);
    let p = col(&out, "price");
    // Clipped to the last good price (row 39: 100.00) times exp(mean + 10 × the 0.5 % floor).
    assert!(
        p[40].unwrap() > 105.0 && p[40].unwrap() < 105.2,
        "{:?}",
        p[40]
    );
    assert_eq!(e.ledger().repaired["outlier_zscore"], 1);
}

#[test]
fn rolling_recovers_from_a_level_shift() {
    // From row 50 on the price is 20 % higher for good: at most `reset_after` rows go.
    let mut rows = walk(150, "A", &[]);
    for row in rows.iter_mut().skip(50) {
        row.p = row.p.map(|p| p * 1.2);
    }
    let (out, e) = run(
        &mut RollingOutliers::new(OutlierConfig::default()).unwrap(),
        &batch(&rows),
        10,
    );
    assert_eq!(removed(&e, "outlier_zscore"), vec![52, 53, 54, 55, 56]);
    assert_eq!(out.iter().map(|c| c.num_rows()).sum::<usize>(), 145);
}

#[test]
fn brownlees_gallo_removes_isolated_jumps() {
    let rows = walk(100, "A", &[(3, 1.2), (50, 0.9), (98, 1.1)]);
    let (out, e) = run(
        &mut BrownleesGallo::new(BrownleesGalloConfig::default()).unwrap(),
        &batch(&rows),
        4,
    );
    // Spikes at the very start and end are judged on one-sided neighbourhoods.
    assert_eq!(removed(&e, "outlier_brownlees_gallo"), vec![5, 52, 100]);
    assert_eq!(out_lines(&out).len(), 97);
    // A 1-tick move is below γ = 0.02 + 3 s: nothing else goes.
}

fn separable() -> RecordBatch {
    // A quiet zig-zag; rows 100 and 200 (lines 102, 202) trade a million shares on a spread
    // fifty times the usual: far from every other row in the size and spread features.
    let rows: Vec<R> = walk(300, "A", &[])
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            if i == 100 || i == 200 {
                r.size(Some(1e6)).quote(Some(99.0), Some(101.0))
            } else {
                r
            }
        })
        .collect();
    batch(&rows)
}

#[test]
fn isolation_forest_flags_the_separable_rows() {
    let b = separable();
    let cfg = IsolationForestConfig {
        window: 300,
        ..IsolationForestConfig::default()
    };
    let (out, _) = run(
        &mut IsolationForestOutliers::new(cfg.clone()).unwrap(),
        &b,
        13,
    );
    let lines = out_lines(&out);
    let f = flags(&out, "outlier_isolation_forest");
    let flagged: Vec<u64> = lines
        .iter()
        .zip(&f)
        .filter(|(_, f)| **f)
        .map(|(l, _)| *l)
        .collect();
    assert_eq!(flagged, vec![102, 202]);
    let (_, e) = run(
        &mut IsolationForestOutliers::new(IsolationForestConfig {
            action: OutlierAction::Drop,
            ..cfg
        })
        .unwrap(),
        &b,
        300,
    );
    assert_eq!(removed(&e, "outlier_isolation_forest"), vec![102, 202]);
    let bad = IsolationForestConfig {
        action: OutlierAction::Winsorize,
        ..IsolationForestConfig::default()
    };
    assert!(IsolationForestOutliers::new(bad).is_err());
}

#[test]
fn dbscan_drops_noise_points() {
    let cfg = DbscanConfig {
        action: OutlierAction::Drop,
        ..DbscanConfig::default()
    };
    let (out, e) = run(&mut DbscanOutliers::new(cfg).unwrap(), &separable(), 17);
    assert_eq!(removed(&e, "outlier_dbscan"), vec![102, 202]);
    assert_eq!(out_lines(&out).len(), 298);
}

#[test]
fn global_iqr_fits_then_applies_fences() {
    let b = batch(&walk(200, "A", &[(20, 1.05), (150, 0.97)]));
    let fit = GlobalIqr::fit(
        GlobalIqrConfig::default(),
        chunks(&b, 30).into_iter().map(Ok),
    )
    .unwrap();
    let (lo, hi) = fit.fences()["A"];
    // Quartiles of the zig-zag are about 100.00 and 100.01: fences near 99.985 and 100.025.
    assert!(lo > 99.9 && hi < 100.1, "{lo} {hi}");
    let (out, e) = run(&mut fit.clone(), &b, 30);
    assert_eq!(removed(&e, "outlier_iqr_global"), vec![22, 152]);
    assert_eq!(out_lines(&out).len(), 198);
}

// ---------------------------------------------------------------- BN-HLS

fn bn(rules: &[&str]) -> BnhlsConfig {
    BnhlsConfig {
        rules: rules.iter().map(|s| s.to_string()).collect(),
        ..BnhlsConfig::default()
    }
}

#[test]
fn bnhls_p1_p2_p3() {
    let rows = [
        r(0, "A", 10.0, 9.99, 10.01),               // 2: 09:30:00, in
        r(-1, "A", 10.0, 9.99, 10.01),              // 3: 09:29:59, out (P1)
        r(6 * 3600 + 1800, "A", 10.0, 9.99, 10.01), // 4: 16:00:00, out (P1)
        r(10, "A", 10.0, 0.0, 10.01),               // 5: zero bid (P2)
        r(11, "A", 10.0, 9.99, 10.01).ex("N"),      // 6: exchange N (P3)
    ];
    let mut cfg = bn(&["P1", "P2", "P3"]);
    assert!(
        BnhlsRowRules::new(cfg.clone()).is_err(),
        "P3 needs exchanges"
    );
    cfg.exchanges = vec!["Q".into()];
    let (out, e) = run(&mut BnhlsRowRules::new(cfg).unwrap(), &batch(&rows), 2);
    assert_eq!(out_lines(&out), vec![2]);
    assert_eq!(removed(&e, "P1"), vec![3, 4]);
    assert_eq!(removed(&e, "P2"), vec![5]);
    assert_eq!(removed(&e, "P3"), vec![6]);
}

#[test]
fn bnhls_t1_t2_q2_t4() {
    let rows = [
        r(0, "A", 10.0, 9.99, 10.01),                       // 2: fine
        r(1, "A", 10.0, 9.99, 10.01).cond("I"),             // 3: odd lot (T2)
        r(2, "A", 10.0, 9.99, 10.01).cond("F"),             // 4: allowed
        r(3, "A", 10.0, 9.99, 10.01).cond("G"),             // 5: corrected code (T1)
        r(4, "A", 10.0, 10.02, 10.01),                      // 6: ask < bid (Q2)
        r(5, "A", 10.04, 9.99, 10.01),                      // 7: > ask + spread = 10.03 (T4)
        r(6, "A", 10.03, 9.99, 10.01),                      // 8: = ask + spread: kept
        r(7, "A", 9.96, 9.99, 10.01),                       // 9: < bid − spread = 9.97 (T4)
        r(8, "A", 10.0, 9.99, 10.01).cond(""),              // 10: empty condition: allowed
        r(9, "A", 10.0, 9.99, 10.01).cond("I").price(None), // 11: a quote: T2 does not apply
    ];
    let mut cfg = bn(&["T1", "T2", "Q2", "T4"]);
    cfg.corrected_conditions = vec!["G".into()];
    let (out, e) = run(&mut BnhlsRowRules::new(cfg).unwrap(), &batch(&rows), 3);
    assert_eq!(removed(&e, "T1"), vec![5]);
    assert_eq!(removed(&e, "T2"), vec![3]);
    assert_eq!(removed(&e, "Q2"), vec![6]);
    assert_eq!(removed(&e, "T4"), vec![7, 9]);
    assert_eq!(out_lines(&out), vec![2, 4, 8, 10, 11]);
}

#[test]
fn bnhls_t3_q1_merge_same_timestamps() {
    let rows = [
        r(0, "A", 10.0, 9.99, 10.01).size(Some(100.0)), // 2
        r(0, "A", 10.2, 9.97, 10.05).size(Some(200.0)), // 3: same ts
        r(0, "B", 50.0, 49.0, 51.0),                    // 4: other symbol
        r(0, "A", 10.1, 9.98, 10.03).size(Some(300.0)), // 5: same ts
        r(1, "A", 11.0, 10.99, 11.01),                  // 6
    ];
    let (out, e) = run(&mut SameTimestamp::new(true, true), &batch(&rows), 2);
    let mut got: Vec<(u64, f64, f64, f64, f64)> = Vec::new();
    let lines = out_lines(&out);
    let (p, s, b, a) = (
        col(&out, "price"),
        col(&out, "size"),
        col(&out, "bid"),
        col(&out, "ask"),
    );
    for i in 0..lines.len() {
        got.push((
            lines[i],
            p[i].unwrap(),
            s[i].unwrap(),
            b[i].unwrap(),
            a[i].unwrap(),
        ));
    }
    got.sort_by_key(|g| g.0);
    assert_eq!(got[0], (2, 10.1, 600.0, 9.98, 10.03));
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![2, 4, 6]);
    assert_eq!(e.ledger().removed["T3"], 2);
    let (_, e) = run(&mut SameTimestamp::new(false, true), &batch(&rows), 100);
    assert_eq!(e.ledger().removed["Q1"], 2);
}

#[test]
fn bnhls_q3_day_median_spread() {
    let day2 = T0 + 86_400 * SEC;
    let mut rows: Vec<R> = (0..10).map(|i| r(i, "A", 10.0, 9.99, 10.01)).collect(); // 2..=11
    rows.push(r(10, "A", 10.0, 9.0, 10.01)); // 12: spread 1.01 > 50 × 0.02
    rows.push(r(11, "A", 10.0, 9.5, 10.01)); // 13: spread 0.51 ≤ 1.0: kept
    rows.push(r(0, "A", 10.0, 9.0, 10.01).at_ns(day2)); // 14: next day, alone: median is itself
    let cfg = bn(&["Q3"]);
    let (out, e) = run(&mut DaySpread::new(&cfg).unwrap(), &batch(&rows), 3);
    assert_eq!(removed(&e, "Q3"), vec![12]);
    assert_eq!(out_lines(&out).len(), 12);
}

#[test]
fn bnhls_q4_mid_quote_deviation() {
    // Mids alternate 10.00 / 10.02 (mean absolute deviation 0.01 around a median of ~10.01);
    // row 30 jumps by 0.2 = 20 deviations.
    let rows: Vec<R> = (0..60)
        .map(|i| {
            let m = if i == 30 {
                10.21
            } else if i % 2 == 0 {
                10.0
            } else {
                10.02
            };
            r(i, "A", m, m - 0.01, m + 0.01)
        })
        .collect();
    let (out, e) = run(&mut MidQuoteDeviation::new(&bn(&["Q4"])), &batch(&rows), 5);
    assert_eq!(removed(&e, "Q4"), vec![32]);
    assert_eq!(out_lines(&out).len(), 59);
}

// ---------------------------------------------------------------- builder and defaults

#[test]
fn builder_maps_the_config() {
    let cfg = PreprocessingConfig::default();
    let names: Vec<String> = cleaning_stages(&cfg)
        .unwrap()
        .iter()
        .map(|f| f().unwrap().name().to_string())
        .collect();
    assert_eq!(
        names,
        vec![
            "invalid_rows",
            "missing_values",
            "dedupe",
            "outliers_rolling"
        ]
    );
    let cfg = PreprocessingConfig {
        bnhls_rules: ["P1", "T3", "Q3", "Q4", "T4"].map(String::from).to_vec(),
        outlier_method: "brownlees_gallo".into(),
        ..PreprocessingConfig::default()
    };
    let names: Vec<String> = cleaning_stages(&cfg)
        .unwrap()
        .iter()
        .map(|f| f().unwrap().name().to_string())
        .collect();
    assert_eq!(
        names,
        vec![
            "invalid_rows",
            "missing_values",
            "dedupe",
            "bnhls_rows",
            "bnhls_same_timestamp",
            "bnhls_q3",
            "bnhls_q4",
            "bnhls_rows",
            "outliers_brownlees_gallo"
        ]
    );
    let p3 = PreprocessingConfig {
        bnhls_rules: vec!["P3".into()],
        outlier_detection: false,
        ..PreprocessingConfig::default()
    };
    let last = cleaning_stages(&p3).unwrap().pop().unwrap()().unwrap();
    assert_eq!(last.name(), "bnhls_p3_day");
    let bad = PreprocessingConfig {
        bnhls_rules: vec!["P1".into()],
        session_timezone: "Mars/Olympus".into(),
        ..PreprocessingConfig::default()
    };
    assert!(cleaning_stages(&bad).is_err());
    let bad = PreprocessingConfig {
        handle_missing_values: "guess".into(),
        ..PreprocessingConfig::default()
    };
    assert!(cleaning_stages(&bad).is_err());
}

#[test]
fn bnhls_p3_keeps_the_days_most_active_exchange() {
    let day2 = T0 + 86_400 * SEC;
    let rows = [
        r(0, "A", 10.0, 9.99, 10.01).ex("N"), // 2: N is day 1's busiest for A
        r(1, "A", 10.0, 9.99, 10.01).ex("Q"), // 3: removed
        r(2, "A", 10.0, 9.99, 10.01).ex("N"), // 4
        r(3, "B", 10.0, 9.99, 10.01).ex("Q"), // 5: B's only exchange
        r(0, "A", 10.0, 9.99, 10.01).ex("Q").at_ns(day2), // 6: day 2: Q and P tie, P wins
        r(1, "A", 10.0, 9.99, 10.01).ex("P").at_ns(day2 + SEC), // 7
    ];
    let (out, e) = run(
        &mut DayExchange::new(&bn(&["P3"])).unwrap(),
        &batch(&rows),
        2,
    );
    assert_eq!(removed(&e, "P3"), vec![3, 6]);
    let mut lines = out_lines(&out);
    lines.sort_unstable();
    assert_eq!(lines, vec![2, 4, 5, 7]);
}

/// Runs a stage chain over chunks (a plain loop, no engine): output, rejects, merged ledger.
fn run_chain(
    stages: &mut [Box<dyn Stage>],
    input: Vec<Chunk>,
) -> (Vec<Chunk>, Vec<Reject>, Ledger) {
    let (mut rejects, mut ledger) = (Vec::new(), Ledger::default());
    let mut cur = input;
    for s in stages.iter_mut() {
        let (out, mut e) = run_stage(s.as_mut(), cur).unwrap();
        rejects.extend(e.take_rejects());
        ledger.merge(&e.take_ledger());
        cur = out;
    }
    (cur, rejects, ledger)
}

#[test]
fn default_chain_accounts_for_every_row() {
    let (b, _) = gen_batch(7, 20_000, 4, Rates::default());
    let mut stages: Vec<Box<dyn Stage>> = cleaning_stages(&PreprocessingConfig::default())
        .unwrap()
        .iter()
        .map(|f| f().unwrap())
        .collect();
    let (out, rejects, ledger) = run_chain(&mut stages, chunks(&b, 777));
    let written: usize = out.iter().map(|c| c.num_rows()).sum();
    assert_eq!(written as u64 + ledger.removed_total(), 20_000);
    // No aggregating stage in the default chain: every removal has its own reject.
    assert_eq!(rejects.len() as u64, ledger.removed_total());
    assert!(ledger.removed_total() > 200);
}

/// Precision and recall of the default chain per anomaly kind on generated data.
fn score(n: usize, seed: u64, cfg: &PreprocessingConfig) -> BTreeMap<String, (f64, f64, usize)> {
    let mut g = Gen::new(seed, 5, Rates::default());
    let input: Vec<Chunk> = (0..n / 10_000).map(|_| g.chunk(10_000)).collect();
    let mut stages: Vec<Box<dyn Stage>> = cleaning_stages(cfg)
        .unwrap()
        .iter()
        .map(|f| f().unwrap())
        .collect();
    let (_, rejects, _) = run_chain(&mut stages, input);
    let spike_rule = format!("outlier_{}", cfg.outlier_method);
    let truth: HashMap<u64, Kind> = g.truth.iter().copied().collect();
    let mut res = BTreeMap::new();
    for (kind, rule) in [
        (Kind::Duplicate, "dedupe_exact"),
        (Kind::Spike, spike_rule.as_str()),
        (Kind::Crossed, "crossed_quote"),
        (Kind::BadSize, "nonpositive_size"),
        (Kind::BadPrice, "nonpositive_price"),
        (Kind::Missing, "missing_value"),
    ] {
        let got: Vec<u64> = rejects
            .iter()
            .filter(|r| r.reason == rule)
            .map(|r| r.line)
            .collect();
        let tp = got.iter().filter(|l| truth.get(l) == Some(&kind)).count();
        let labelled = g.truth.iter().filter(|t| t.1 == kind).count();
        let p = tp as f64 / got.len().max(1) as f64;
        let r = tp as f64 / labelled.max(1) as f64;
        res.insert(rule.to_string(), (p, r, labelled));
    }
    res
}

#[test]
fn default_chain_precision_and_recall_on_generated_data() {
    let res = score(100_000, 42, &PreprocessingConfig::default());
    for (rule, (p, r, n)) in &res {
        println!("{rule:18} precision {p:.4} recall {r:.4} ({n} labelled)");
        assert!(*n > 50, "{rule}: too few labelled rows to score");
        assert!(
            *p >= 0.95 && *r >= 0.95,
            "{rule}: precision {p}, recall {r}"
        );
    }
}

/// The evidence behind the default outlier method: spike precision and recall of each
/// method at its config default (threshold 10, window 100) on the same generated data.
/// (`clean_bench --csv` runs the same comparison on gen-data's own output.)
#[test]
fn outlier_methods_compared_on_generated_spikes() {
    for method in ["zscore", "mad", "iqr", "brownlees_gallo"] {
        let cfg = PreprocessingConfig {
            outlier_method: method.into(),
            ..PreprocessingConfig::default()
        };
        let res = score(50_000, 9, &cfg);
        let (p, r, n) = res[&format!("outlier_{method}")];
        println!("{method:16} spikes: precision {p:.4} recall {r:.4} ({n} labelled)");
        if method == "zscore" {
            assert!(p >= 0.95 && r >= 0.95);
        }
    }
}

// ---------------------------------------------------------------- invariance and resume

type MakeStage = Box<dyn Fn() -> Box<dyn Stage>>;

/// Every stateful stage, fresh.
fn stateful() -> Vec<(&'static str, MakeStage)> {
    vec![
        ("dedupe", Box::new(|| Box::new(Dedupe::default()))),
        (
            "ffill",
            Box::new(|| {
                Box::new(MissingValues::new(MissingConfig {
                    method: MissingMethod::Ffill,
                    max_gap: 2,
                    ..MissingConfig::default()
                }))
            }),
        ),
        (
            "interpolate",
            Box::new(|| {
                Box::new(MissingValues::new(MissingConfig {
                    method: MissingMethod::Interpolate,
                    max_gap: 2,
                    ..MissingConfig::default()
                }))
            }),
        ),
        (
            "zscore",
            Box::new(|| {
                Box::new(
                    RollingOutliers::new(OutlierConfig {
                        min_periods: 5,
                        window: 10,
                        threshold: 3.0,
                        ..OutlierConfig::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "mad_winsorize",
            Box::new(|| {
                Box::new(
                    RollingOutliers::new(OutlierConfig {
                        method: RollingMethod::Mad,
                        min_periods: 5,
                        window: 10,
                        threshold: 3.0,
                        action: OutlierAction::Winsorize,
                        ..OutlierConfig::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "iqr_flag",
            Box::new(|| {
                Box::new(
                    RollingOutliers::new(OutlierConfig {
                        method: RollingMethod::Iqr,
                        min_periods: 5,
                        window: 10,
                        threshold: 1.5,
                        action: OutlierAction::Flag,
                        ..OutlierConfig::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "bg",
            Box::new(|| {
                Box::new(
                    BrownleesGallo::new(BrownleesGalloConfig {
                        k: 6,
                        gamma: 0.0,
                        ..BrownleesGalloConfig::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "bg_flag",
            Box::new(|| {
                Box::new(
                    BrownleesGallo::new(BrownleesGalloConfig {
                        k: 6,
                        gamma: 0.0,
                        action: OutlierAction::Flag,
                        ..BrownleesGalloConfig::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "iforest",
            Box::new(|| {
                Box::new(
                    IsolationForestOutliers::new(IsolationForestConfig {
                        window: 16,
                        trees: 10,
                        sample: 8,
                        threshold: 0.6,
                        ..IsolationForestConfig::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "dbscan",
            Box::new(|| {
                Box::new(
                    DbscanOutliers::new(DbscanConfig {
                        window: 16,
                        min_points: 3,
                        action: OutlierAction::Drop,
                        ..DbscanConfig::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "t3q1",
            Box::new(|| Box::new(SameTimestamp::new(true, true))),
        ),
        (
            "q3",
            Box::new(|| {
                Box::new(
                    DaySpread::new(&BnhlsConfig {
                        q3_multiple: 1.2,
                        ..BnhlsConfig::default()
                    })
                    .unwrap(),
                )
            }),
        ),
        (
            "p3_day",
            Box::new(|| Box::new(DayExchange::new(&BnhlsConfig::default()).unwrap())),
        ),
        (
            "q4",
            Box::new(|| {
                Box::new(MidQuoteDeviation::new(&BnhlsConfig {
                    q4_window: 6,
                    q4_multiple: 1.5,
                    ..BnhlsConfig::default()
                }))
            }),
        ),
    ]
}

/// Small generated input with many anomalies, repeated timestamps and a day boundary.
fn small_input(seed: u64) -> RecordBatch {
    let rates = Rates {
        duplicate: 0.05,
        spike: 0.05,
        crossed: 0.02,
        bad_price: 0.02,
        bad_size: 0.02,
        missing: 0.08,
    };
    let (b, _) = gen_batch(seed, 120, 3, rates);
    // Shift the second half by a day so Q3 sees two days.
    let ts = b
        .column(0)
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .unwrap();
    let shifted: TimestampNanosecondArray = ts
        .iter()
        .enumerate()
        .map(|(i, t)| t.map(|t| if i >= 60 { t + 86_400 * SEC } else { t }))
        .collect::<TimestampNanosecondArray>()
        .with_timezone("UTC");
    let mut cols = b.columns().to_vec();
    cols[0] = Arc::new(shifted);
    RecordBatch::try_new(b.schema(), cols).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn stateful_stages_do_not_depend_on_chunk_size(seed in 0u64..1000, size in 1usize..=50) {
        let b = small_input(seed);
        for (name, make) in stateful() {
            let (o1, e1) = run(make().as_mut(), &b, b.num_rows());
            let (o2, e2) = run(make().as_mut(), &b, size);
            let r = same(&canon(&o1, &e1), &canon(&o2, &e2), &format!("stage {name} chunk {size}"));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            let written: usize = o2.iter().map(|c| c.num_rows()).sum();
            prop_assert_eq!(written as u64 + e2.ledger().removed_total(), b.num_rows() as u64, "stage {}", name);
        }
    }
}

#[test]
fn every_chunk_size_from_1_to_50_gives_the_same_result() {
    let b = small_input(3);
    for (name, make) in stateful() {
        let want = {
            let (o, e) = run(make().as_mut(), &b, b.num_rows());
            canon(&o, &e)
        };
        for size in 1..=50 {
            let (o, e) = run(make().as_mut(), &b, size);
            same(
                &want,
                &canon(&o, &e),
                &format!("stage {name} chunk size {size}"),
            )
            .unwrap();
        }
    }
}

/// Feeds `cs` to `stage`, collecting what it emits into `out`.
fn feed(stage: &mut dyn Stage, cs: &[Chunk], e: &mut Emitter, out: &mut Vec<Chunk>) {
    for c in cs.iter().cloned() {
        stage.process(c, e).unwrap();
        out.extend(e.take_chunks());
    }
}

#[test]
fn checkpoint_and_restore_mid_stream_equals_uninterrupted() {
    let b = small_input(11);
    for (name, make) in stateful() {
        let (o1, e1) = run(make().as_mut(), &b, 7);
        let cs = chunks(&b, 7);
        let mut first = make();
        let mut e = Emitter::default();
        let mut out = Vec::new();
        feed(first.as_mut(), &cs[..8], &mut e, &mut out);
        let state = first.checkpoint().unwrap().expect("stateful stage");
        drop(first);
        let mut second = make();
        second.restore(&state).unwrap();
        feed(second.as_mut(), &cs[8..], &mut e, &mut out);
        second.finish(&mut e).unwrap();
        out.extend(e.take_chunks());
        same(&canon(&o1, &e1), &canon(&out, &e), &format!("stage {name}")).unwrap();
    }
}

#[test]
fn a_replay_point_takes_each_stage_back_to_an_input_start() {
    let b = small_input(11);
    for (name, make) in stateful() {
        let (o1, e1) = run(make().as_mut(), &b, 7);
        let cs = chunks(&b, 7);
        let mut stage = make();
        let mut e = Emitter::default();
        let mut out = Vec::new();
        feed(stage.as_mut(), &cs[..4], &mut e, &mut out);
        // An input starts, gets four chunks in, fails; its output is discarded and it is
        // replayed in the same stage (the engine's retry).
        let point = stage.replay_point().unwrap().expect("stateful stage");
        let mut failed = Emitter::default();
        feed(stage.as_mut(), &cs[4..8], &mut failed, &mut Vec::new());
        stage.restore(&point).unwrap();
        feed(stage.as_mut(), &cs[4..], &mut e, &mut out);
        stage.finish(&mut e).unwrap();
        out.extend(e.take_chunks());
        same(&canon(&o1, &e1), &canon(&out, &e), &format!("stage {name}")).unwrap();
        // A point kept in memory belongs to this instance (the others' points are their
        // checkpoints, which any instance restores).
        if pipeline_core::Replay::<()>::is_token(&point) {
            assert!(make().restore(&point).is_err(), "stage {name}");
        }
    }
}

// ---------------------------------------------------------------- real data

/// The shared real datasets, or `None` (with a message) when they are absent outside CI.
fn real_data() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/real");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "real data missing at {}",
        dir.display()
    );
    println!("skipping: real data not found at {}", dir.display());
    None
}

/// Runs the default chain and returns (rows written, removed by rule).
fn default_chain_on(b: &RecordBatch) -> (usize, BTreeMap<String, u64>) {
    let mut stages: Vec<Box<dyn Stage>> = cleaning_stages(&PreprocessingConfig::default())
        .unwrap()
        .iter()
        .map(|f| f().unwrap())
        .collect();
    let (out, _, ledger) = run_chain(&mut stages, chunks(b, 4096));
    let written = out.iter().map(|c| c.num_rows()).sum::<usize>();
    assert_eq!(written as u64 + ledger.removed_total(), b.num_rows() as u64);
    (written, ledger.removed)
}

#[test]
fn default_chain_on_real_binance_trades_removes_nothing() {
    let Some(dir) = real_data() else { return };
    let text = std::fs::read_to_string(
        dir.join("tardis-binance-futures-btcusdt-trades/tardis_trades.csv"),
    )
    .unwrap();
    let (mut ts, mut id, mut px, mut sz) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        ts.push(f[2].parse::<i64>().unwrap() * 1_000);
        id.push(f[4].parse::<i64>().unwrap());
        px.push(f[6].parse::<f64>().unwrap());
        sz.push(f[7].parse::<f64>().unwrap());
    }
    let n = ts.len();
    let mut sym = StringDictionaryBuilder::<Int32Type>::new();
    for _ in 0..n {
        sym.append_value("BTCUSDT");
    }
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        taqgen::schema().field(0).clone(),
        taqgen::schema().field(1).clone(),
        arrow_schema::Field::new("id", arrow_schema::DataType::Int64, true),
        arrow_schema::Field::new("price", arrow_schema::DataType::Float64, true),
        arrow_schema::Field::new("size", arrow_schema::DataType::Float64, true),
    ]));
    let b = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC")),
            Arc::new(sym.finish()),
            Arc::new(arrow_array::Int64Array::from(id)),
            Arc::new(Float64Array::from(px)),
            Arc::new(Float64Array::from(sz)),
        ],
    )
    .unwrap();
    let (written, removed) = default_chain_on(&b);
    println!("binance trades: {n} in, {written} out, removed {removed:?}");
    // Trade ids are unique and the two hours hold no bad prints: nothing may go.
    assert_eq!(written, n, "{removed:?}");
}

#[test]
fn default_chain_on_real_oanda_quotes_judges_the_mid() {
    let Some(dir) = real_data() else { return };
    let text =
        std::fs::read_to_string(dir.join("lean-oanda-eurusd-ticks/20140508_eurusd_tick_quote.csv"))
            .unwrap();
    let day = 1_399_507_200_000_000_000i64; // 2014-05-08T00:00:00Z
    let (mut ts, mut bid, mut ask) = (Vec::new(), Vec::new(), Vec::new());
    for l in text.lines() {
        let f: Vec<&str> = l.split(',').collect();
        ts.push(day + f[0].parse::<i64>().unwrap() * 1_000_000);
        bid.push(f[1].parse::<f64>().unwrap());
        ask.push(f[2].parse::<f64>().unwrap());
    }
    let n = ts.len();
    let mut sym = StringDictionaryBuilder::<Int32Type>::new();
    for _ in 0..n {
        sym.append_value("EURUSD");
    }
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        taqgen::schema().field(0).clone(),
        taqgen::schema().field(1).clone(),
        arrow_schema::Field::new("bid", arrow_schema::DataType::Float64, true),
        arrow_schema::Field::new("ask", arrow_schema::DataType::Float64, true),
    ]));
    let b = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC")),
            Arc::new(sym.finish()),
            Arc::new(Float64Array::from(bid)),
            Arc::new(Float64Array::from(ask)),
        ],
    )
    .unwrap();
    let (written, removed) = default_chain_on(&b);
    println!("oanda quotes: {n} in, {written} out, removed {removed:?}");
    // A full FX day moves well under 5 % and OANDA's feed has no crossed quotes; repeated
    // identical quotes within one millisecond are the only removals we accept.
    let others: u64 = removed
        .iter()
        .filter(|(k, _)| *k != "dedupe_exact")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(others, 0, "{removed:?}");
    assert!(written as f64 > 0.99 * n as f64);
}
