//! Real vendor semantics (issue 12): order-book messages are never removed as duplicates or
//! outliers and only executions are trades; quotes-only symbols get price features and bars
//! on the mid; rows of a dataset that unites kinds are not "missing" what their kind lacks;
//! ids de-duplicate; time features in each symbol's zone; state reset per day.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int8Type, Int32Type, Int64Type};
use arrow_array::{
    ArrayRef, Float64Array, Int8Array, Int64Array, RecordBatch, TimestampNanosecondArray,
};
use pipeline_core::{Chunk, Emitter, PreprocessingConfig, Stage, run_stage};
use pipeline_prep::{
    BarSpec, BarStage, FeatureConfig, FeatureStage, ResetEvery, cleaning_stages, feature_stages,
};

const SEC: i64 = 1_000_000_000;
/// 2012-06-21 13:30:00 UTC (09:30 in New York).
const T0: i64 = 1_340_285_400 * SEC;

fn ts(v: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(v).with_timezone("UTC"))
}

fn syms<'a>(v: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    let mut b = StringDictionaryBuilder::<Int32Type>::new();
    for s in v {
        b.append_value(s);
    }
    Arc::new(b.finish())
}

fn f(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

fn chunk(cols: Vec<(&str, ArrayRef)>) -> Chunk {
    Chunk::with_first_line(RecordBatch::try_from_iter(cols).unwrap(), 0, 0, 1).unwrap()
}

/// Cuts `whole` into chunks of `size` rows, numbered in order.
fn cut(whole: &Chunk, size: usize) -> Vec<Chunk> {
    (0..whole.num_rows())
        .step_by(size)
        .enumerate()
        .map(|(k, at)| {
            let c = whole.slice(at, size.min(whole.num_rows() - at));
            Chunk::new(c.batch().clone(), 0, k as u64).unwrap()
        })
        .collect()
}

/// Runs stages in order over `chunks`, with `finish`; returns the output and the emitters'
/// ledgers merged.
fn run(stages: &mut [Box<dyn Stage>], chunks: Vec<Chunk>) -> (RecordBatch, Emitter) {
    let mut all = Emitter::default();
    let mut chunks = chunks;
    for s in stages.iter_mut() {
        let (mut out, mut em) = run_stage(s.as_mut(), chunks).unwrap();
        s.finish(&mut em).unwrap();
        out.extend(em.take_chunks());
        for r in em.take_rejects() {
            all.quarantine_one(r);
        }
        let l = em.take_ledger();
        for (rule, n) in &l.removed {
            all.aggregate(rule, *n);
        }
        chunks = out;
    }
    let batches: Vec<RecordBatch> = chunks.iter().map(|c| c.data_batch()).collect();
    let b = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    (b, all)
}

fn col(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_primitive::<Float64Type>()
        .iter()
        .collect()
}

fn i8col(b: &RecordBatch, name: &str) -> Vec<Option<i8>> {
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<Int8Type>()
        .iter()
        .collect()
}

fn one(stage: impl Stage + 'static) -> Vec<Box<dyn Stage>> {
    vec![Box::new(stage)]
}

fn default_stages() -> Vec<Box<dyn Stage>> {
    let cfg = PreprocessingConfig::default();
    cleaning_stages(&cfg)
        .unwrap()
        .into_iter()
        .chain(feature_stages(&cfg).unwrap())
        .map(|m| m().unwrap())
        .collect()
}

/// LOBSTER-like messages joined with their book (what pipeline-io's LOBSTER source yields):
/// an add, a visible execution, two identical hidden executions of one sweep, an add far
/// from the market, a delete that empties the bid, a trading halt, and an execution against
/// a resting sell.
fn lobster() -> Chunk {
    let t = [0, 1, 1, 1, 2, 3, 4, 5].map(|s| T0 + s * SEC);
    chunk(vec![
        ("ts", ts(t)),
        ("symbol", syms(["ZZZ"; 8])),
        (
            "price",
            f(vec![
                Some(100.0),
                Some(100.0),
                Some(100.005),
                Some(100.005),
                Some(1000.0),
                Some(100.0),
                Some(-0.0001),
                Some(100.01),
            ]),
        ),
        (
            "size",
            f([100.0, 40.0, 20.0, 20.0, 5.0, 60.0, 0.0, 10.0]
                .map(Some)
                .to_vec()),
        ),
        (
            "bid",
            f(vec![
                Some(100.0),
                Some(100.0),
                Some(100.0),
                Some(100.0),
                Some(100.0),
                None,
                None,
                Some(99.99),
            ]),
        ),
        ("ask", f([100.01; 8].map(Some).to_vec())),
        (
            "event_type",
            Arc::new(Int8Array::from(vec![1, 4, 5, 5, 1, 3, 7, 4])),
        ),
        (
            "side",
            Arc::new(Int8Array::from(vec![
                None,
                Some(-1),
                Some(1),
                Some(1),
                None,
                None,
                None,
                Some(1),
            ])),
        ),
    ])
}

#[test]
fn order_book_messages_are_all_kept_and_only_executions_are_trades() {
    for size in [1, 3, 8] {
        // The default stages, with a VWAP over the 4 executions there are.
        let mut stages = default_stages();
        stages.pop();
        stages.push(Box::new(
            FeatureStage::new(FeatureConfig {
                vwap_window: 4,
                ..FeatureConfig::default()
            })
            .unwrap(),
        ));
        let (b, em) = run(&mut stages, cut(&lobster(), size));
        // Nothing removed: not the identical hidden executions, not the far add, not the
        // halt's flag price, not the delete that left no bid.
        assert_eq!(b.num_rows(), 8, "chunks of {size}: {:?}", em.ledger());
        assert!(em.ledger().removed.is_empty(), "{:?}", em.ledger());
        let ret = col(&b, "return");
        let want = [
            None,
            None,
            Some(100.005 / 100.0 - 1.0),
            Some(0.0),
            None,
            None,
            None,
        ];
        for (i, w) in want.iter().enumerate() {
            match (ret[i], w) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-12, "row {i}: {g} vs {w}"),
                (g, w) => assert_eq!(g, *w, "row {i}"),
            }
        }
        assert!(ret[7].is_some());
        // VWAP of executions only: (100 × 40 + 100.005 × 40 + 100.01 × 10) / 90.
        let vwap = col(&b, "vwap_4")[7].unwrap();
        let want = (100.0 * 40.0 + 100.005 * 40.0 + 100.01 * 10.0) / 90.0;
        assert!((vwap - want).abs() < 1e-9, "{vwap} vs {want}");
        // Price lags follow executions: the last execution's lag 1 is the hidden one.
        assert_eq!(col(&b, "price_lag_1")[7], Some(100.005));
        assert_eq!(col(&b, "price_lag_1")[4], None);
        // Book features on every event with a book.
        let mid = col(&b, "mid");
        assert_eq!(mid[0], Some(100.005));
        assert_eq!(mid[4], Some(100.005));
        assert_eq!(mid[5], None);
        assert_eq!(
            i8col(&b, "side"),
            [None, Some(-1), Some(1), Some(1), None, None, None, Some(1)]
        );
    }
}

#[test]
fn bars_sum_executed_volume_only() {
    for size in [1, 8] {
        let (b, em) = run(
            &mut one(BarStage::new(BarSpec::Volume(1e9))),
            cut(&lobster(), size),
        );
        assert_eq!(b.num_rows(), 1);
        assert_eq!(col(&b, "volume"), [Some(90.0)]);
        let trades = b
            .column_by_name("trades")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(trades.value(0), 4);
        assert_eq!(col(&b, "high"), [Some(100.01)]);
        assert_eq!(em.ledger().removed["bar_non_trade"], 4);
        assert_eq!(em.ledger().removed["bars"], 3);
    }
}

/// 30 EUR/USD quotes a minute apart in a dataset that also has trades: `price` and `size`
/// are there, all null.
fn quotes(n: usize) -> Chunk {
    let bid: Vec<Option<f64>> = (0..n).map(|i| Some(1.1 + i as f64 * 1e-4)).collect();
    let ask: Vec<Option<f64>> = bid.iter().map(|b| b.map(|b| b + 2e-5)).collect();
    chunk(vec![
        ("ts", ts((0..n as i64).map(|i| T0 + i * 60 * SEC))),
        ("symbol", syms(std::iter::repeat_n("EURUSD", n))),
        ("price", f(vec![None; n])),
        ("size", f(vec![None; n])),
        ("bid", f(bid)),
        ("ask", f(ask)),
    ])
}

#[test]
fn quotes_only_symbols_get_price_features_and_bars_on_the_mid() {
    let (b, em) = run(&mut default_stages(), cut(&quotes(30), 7));
    assert_eq!(
        b.num_rows(),
        30,
        "no quote is missing a price: {:?}",
        em.ledger()
    );
    let mid = col(&b, "mid");
    let ret = col(&b, "return");
    assert_eq!(ret[0], None);
    let want = mid[1].unwrap() / mid[0].unwrap() - 1.0;
    assert!((ret[1].unwrap() - want).abs() < 1e-15);
    assert_eq!(col(&b, "price_lag_1")[5], mid[4]);
    assert!(col(&b, "sma_20")[19].is_some() && col(&b, "sma_20")[18].is_none());
    assert!(col(&b, "ema_20")[25].is_some());
    assert!(col(&b, "rolling_std_20")[25].is_some());
    assert_eq!(col(&b, "vwap_100")[25], None, "quotes have no volume");

    let (b, em) = run(
        &mut one(BarStage::new(BarSpec::Time(5 * 60 * SEC))),
        cut(&quotes(30), 4),
    );
    assert_eq!(b.num_rows(), 6);
    assert!(!em.ledger().removed.contains_key("bar_missing_input"));
    let open = col(&b, "open");
    assert!((open[1].unwrap() - (1.1 + 5e-4 + 1e-5)).abs() < 1e-12);
    assert_eq!(col(&b, "volume"), [Some(0.0); 6]);
}

#[test]
fn a_united_dataset_misses_only_half_filled_groups() {
    // A trade without a quote, a quote without a trade, a trade without its size, a quote
    // without its ask.
    let c = chunk(vec![
        ("ts", ts([T0, T0 + SEC, T0 + 2 * SEC, T0 + 3 * SEC])),
        ("symbol", syms(["BTCUSDT", "EURUSD", "BTCUSDT", "EURUSD"])),
        ("price", f(vec![Some(9682.0), None, Some(9683.0), None])),
        ("size", f(vec![Some(0.1), None, None, None])),
        ("bid", f(vec![None, Some(1.1), None, Some(1.1)])),
        ("ask", f(vec![None, Some(1.2), None, None])),
    ]);
    let cfg = PreprocessingConfig::default();
    let mut stages: Vec<Box<dyn Stage>> = cleaning_stages(&cfg)
        .unwrap()
        .into_iter()
        .map(|m| m().unwrap())
        .collect();
    let (b, em) = run(&mut stages, vec![c]);
    assert_eq!(b.num_rows(), 2);
    assert_eq!(em.ledger().removed["missing_value"], 2);
    let lines: Vec<u64> = em.rejects().iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 4]);
}

#[test]
fn ids_decide_duplicates_where_rows_have_them() {
    let c = chunk(vec![
        ("ts", ts([T0; 5])),
        ("symbol", syms(["BTCUSDT"; 5])),
        (
            "price",
            f([9682.0, 9682.0, 9682.0, 9683.0, 9682.0].map(Some).to_vec()),
        ),
        ("size", f([0.1; 5].map(Some).to_vec())),
        (
            "id",
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(2),
                Some(1),
                Some(2),
                None,
            ])),
        ),
    ]);
    let cfg = PreprocessingConfig::default();
    let mut stages: Vec<Box<dyn Stage>> = cleaning_stages(&cfg)
        .unwrap()
        .into_iter()
        .map(|m| m().unwrap())
        .collect();
    let (b, em) = run(&mut stages, vec![c]);
    // Ids 1 and 2 are kept once each (equal content with another id is no duplicate);
    // the id-less row is compared by content and kept.
    assert_eq!(b.num_rows(), 3);
    assert_eq!(em.ledger().removed["dedupe_id"], 2);
    assert!(!em.ledger().removed.contains_key("dedupe_exact"));
}

#[test]
fn time_features_use_each_symbols_zone() {
    // Saturday 2020-02-22 00:00:02 UTC: Friday 19:00 in New York.
    let t = 1_582_329_602 * SEC;
    let c = chunk(vec![
        ("ts", ts([t, t])),
        ("symbol", syms(["BTCUSDT", "AAPL"])),
        ("price", f(vec![Some(9682.0), Some(300.0)])),
    ]);
    let zones = BTreeMap::from([("BTCUSDT".to_string(), "UTC".to_string())]);
    let cfg = FeatureConfig {
        time_features: true,
        symbol_time_zones: zones.clone(),
        ..FeatureConfig::none()
    };
    let (b, _) = run(&mut one(FeatureStage::new(cfg).unwrap()), vec![c.clone()]);
    assert_eq!(i8col(&b, "hour"), [Some(0), Some(19)]);
    assert_eq!(i8col(&b, "day_of_week"), [Some(5), Some(4)]);
    let all_utc = FeatureConfig {
        time_features: true,
        time_zone: Some("UTC".into()),
        ..FeatureConfig::none()
    };
    let (b, _) = run(&mut one(FeatureStage::new(all_utc).unwrap()), vec![c]);
    assert_eq!(i8col(&b, "hour"), [Some(0), Some(0)]);
    let bad = FeatureConfig {
        symbol_time_zones: BTreeMap::from([("X".to_string(), "Mars/Olympus".to_string())]),
        ..FeatureConfig::default()
    };
    let e = FeatureStage::new(bad).err().unwrap().to_string();
    assert!(e.contains("preprocessing.symbol_time_zones.X"), "{e}");
}

#[test]
fn state_can_start_afresh_each_day_or_session() {
    // Two trades on each of two days (New York), the second day's first after the open.
    let day = 86_400 * SEC;
    let t = [T0, T0 + 60 * SEC, T0 + day, T0 + day + 60 * SEC];
    let c = chunk(vec![
        ("ts", ts(t)),
        ("symbol", syms(["AAPL"; 4])),
        ("price", f([100.0, 101.0, 110.0, 111.0].map(Some).to_vec())),
        ("size", f([1.0; 4].map(Some).to_vec())),
    ]);
    for (reset, want) in [
        (None, [None, Some(100.0), Some(101.0), Some(110.0)]),
        (
            Some(ResetEvery::Day),
            [None, Some(100.0), None, Some(110.0)],
        ),
        (
            Some(ResetEvery::Session),
            [None, Some(100.0), None, Some(110.0)],
        ),
    ] {
        let cfg = FeatureConfig {
            returns: true,
            lag_columns: vec!["price".into()],
            lag_periods: vec![1],
            reset,
            ..FeatureConfig::none()
        };
        for size in [1, 4] {
            let (b, _) = run(
                &mut one(FeatureStage::new(cfg.clone()).unwrap()),
                cut(&c, size),
            );
            assert_eq!(col(&b, "price_lag_1"), want, "{reset:?}, chunks of {size}");
            assert_eq!(col(&b, "return")[2].is_none(), reset.is_some());
        }
    }
}
