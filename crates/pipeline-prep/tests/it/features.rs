//! Integration tests: features (TA-Lib fixtures, stages fed in chunks, checkpoints, bars).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int8Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::DataType;
use pipeline_core::{Chunk, PreprocessingConfig, Stage, run_stage};
use pipeline_prep::{
    BarSpec, BarStage, FeatureConfig, FeatureStage, IndicatorSpec, Ohlcv, ScaleMethod, ScaleStage,
    ScalerParams, feature_stages, fit_scaler, parse_bar_spec,
};
use proptest::prelude::*;

/// A TA-Lib fixture: its header and rows (`None` = TA-Lib's NaN).
struct Fixture {
    names: Vec<String>,
    rows: Vec<Vec<Option<f64>>>,
}

impl Fixture {
    fn load(name: &str) -> Fixture {
        let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/talib")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let names = lines.next().unwrap().split(',').map(String::from).collect();
        let rows = lines
            .map(|l| {
                l.split(',')
                    .map(|f| (!f.is_empty()).then(|| f.parse::<f64>().unwrap()))
                    .collect()
            })
            .collect();
        Fixture { names, rows }
    }

    fn col(&self, name: &str) -> Vec<Option<f64>> {
        let i = self.names.iter().position(|n| n == name).unwrap();
        self.rows.iter().map(|r| r[i]).collect()
    }

    fn bars(&self) -> Vec<Ohlcv> {
        let [o, h, l, c, v] = ["open", "high", "low", "close", "volume"].map(|n| self.col(n));
        (0..self.rows.len())
            .map(|i| Ohlcv {
                open: o[i].unwrap(),
                high: h[i].unwrap(),
                low: l[i].unwrap(),
                close: c[i].unwrap(),
                volume: v[i].unwrap(),
            })
            .collect()
    }

    /// Indicator specs whose columns this fixture holds.
    fn specs(&self) -> Vec<IndicatorSpec> {
        [
            "sma_20",
            "ema_20",
            "wma_20",
            "dema_20",
            "tema_20",
            "rsi_14",
            "macd_12_26_9",
            "bb_20_2",
            "atr_14",
            "stoch_14_3_3",
            "obv",
            "adx_14",
            "cci_14",
            "roc_10",
            "mom_10",
            "willr_14",
            "sma_5",
            "ema_3",
            "rsi_7",
            "macd_5_13_4",
        ]
        .iter()
        .map(|s| IndicatorSpec::parse(s).unwrap())
        .collect()
    }
}

const FIXTURES: [&str; 3] = ["ohlcv.csv", "flat.csv", "tick.csv"];

/// Asserts `got` equals TA-Lib's `want` to 1e-9 relative, with nulls exactly where TA-Lib
/// has NaN.
fn assert_close(what: &str, got: &[Option<f64>], want: &[Option<f64>]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        match (g, w) {
            (None, None) => {}
            (Some(g), Some(w)) => {
                let tol = 1e-9 * w.abs().max(1.0);
                assert!((g - w).abs() <= tol, "{what} row {i}: got {g}, TA-Lib {w}");
            }
            _ => panic!("{what} row {i}: got {g:?}, TA-Lib {w:?}"),
        }
    }
}

#[test]
fn indicator_kernels_match_talib_fixtures() {
    for file in FIXTURES {
        let fx = Fixture::load(file);
        let bars = fx.bars();
        for spec in fx.specs() {
            let cols = spec.columns();
            let mut k = spec.build();
            let mut got = vec![Vec::new(); cols.len()];
            let mut out = vec![None; cols.len()];
            for b in &bars {
                k.update(b, &mut out);
                for (g, o) in got.iter_mut().zip(&out) {
                    g.push(*o);
                }
            }
            for (name, g) in cols.iter().zip(&got) {
                assert_close(&format!("{file}:{name}"), g, &fx.col(name));
                let nulls = g.iter().take_while(|v| v.is_none()).count();
                assert_eq!(nulls, spec.lookback(), "{file}:{name} lookback");
            }
        }
    }
}

/// SplitMix64, for seeded test data.
struct Rng(pipeline_core::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const T0: i64 = 1_609_770_600_000_000_000; // 2021-01-04 14:30:00 UTC = 09:30 New York.
const SEC: i64 = 1_000_000_000;

fn ts_array(v: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter(v).with_timezone("UTC"))
}

fn sym_array<'a>(v: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    let mut b = StringDictionaryBuilder::<Int32Type>::new();
    for s in v {
        b.append_value(s);
    }
    Arc::new(b.finish())
}

fn f64_array(v: Vec<Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

/// A batch of named columns as one chunk whose lines start at 2.
fn chunk_of(cols: Vec<(&str, ArrayRef)>) -> Chunk {
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    Chunk::with_first_line(batch, 0, 0, 2).unwrap()
}

/// Splits `whole` into chunks of the given sizes (cycled), with increasing seq numbers.
fn split(whole: &Chunk, sizes: &[usize]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let (mut at, mut k) = (0, 0);
    while at < whole.num_rows() {
        let n = sizes[k % sizes.len()].min(whole.num_rows() - at);
        let c = whole.slice(at, n);
        out.push(Chunk::new(c.batch().clone(), 0, k as u64).unwrap());
        at += n;
        k += 1;
    }
    out
}

fn random_sizes(seed: u64, max: u64) -> Vec<usize> {
    let mut r = Rng(pipeline_core::SplitMix64::new(seed));
    (0..64).map(|_| 1 + r.below(max) as usize).collect()
}

/// Runs `stage` over `chunks` and concatenates the output batches.
fn run_all(stage: &mut dyn Stage, chunks: Vec<Chunk>) -> RecordBatch {
    let (out, _) = run_stage(stage, chunks).unwrap();
    let batches: Vec<RecordBatch> = out.iter().map(|c| c.batch().clone()).collect();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn column(b: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let a = b
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    a.as_primitive::<Float64Type>().iter().collect()
}

/// Two fixture series interleaved as two symbols, as bar columns (or tick columns).
fn fixture_chunk(a: &Fixture, b: &Fixture, bars: bool, seed: u64) -> (Chunk, Vec<bool>) {
    let mut r = Rng(pipeline_core::SplitMix64::new(seed));
    let (mut ia, mut ib) = (0, 0);
    let mut rows = Vec::new();
    while ia < a.rows.len() || ib < b.rows.len() {
        let take_a = ib == b.rows.len() || (ia < a.rows.len() && r.below(2) == 0);
        if take_a {
            rows.push((true, a.bars()[ia]));
            ia += 1;
        } else {
            rows.push((false, b.bars()[ib]));
            ib += 1;
        }
    }
    let n = rows.len();
    let get = |f: fn(&Ohlcv) -> f64| f64_array(rows.iter().map(|r| Some(f(&r.1))).collect());
    let mut cols = vec![
        ("ts", ts_array((0..n as i64).map(|i| Some(T0 + i * SEC)))),
        (
            "symbol",
            sym_array(rows.iter().map(|r| if r.0 { "A" } else { "B" })),
        ),
    ];
    if bars {
        cols.push(("open", get(|b| b.open)));
        cols.push(("high", get(|b| b.high)));
        cols.push(("low", get(|b| b.low)));
        cols.push(("close", get(|b| b.close)));
        cols.push(("volume", get(|b| b.volume)));
    } else {
        cols.push(("price", get(|b| b.close)));
        cols.push(("size", get(|b| b.volume)));
    }
    (chunk_of(cols), rows.iter().map(|r| r.0).collect())
}

fn pick(v: &[Option<f64>], mask: &[bool], want: bool) -> Vec<Option<f64>> {
    v.iter()
        .zip(mask)
        .filter(|(_, m)| **m == want)
        .map(|(v, _)| *v)
        .collect()
}

#[test]
fn feature_stage_matches_talib_fixtures_in_random_chunks() {
    let specs: Vec<String> = Fixture::load("ohlcv.csv")
        .specs()
        .iter()
        .map(|s| {
            // Re-spell each spec in the config syntax (`bb_20_2`, `stoch_14_3_3`).
            let c = &s.columns()[0];
            match s {
                IndicatorSpec::Macd(..) | IndicatorSpec::Obv => c.clone(),
                IndicatorSpec::Bb(n, k) => format!("bb_{n}_{k}"),
                IndicatorSpec::Stoch(k, sk, sd) => format!("stoch_{k}_{sk}_{sd}"),
                _ => c.clone(),
            }
        })
        .collect();
    let cfg = FeatureConfig {
        indicators: specs,
        ..FeatureConfig::none()
    };
    // Tick mode uses high = low = close, so only the tick fixture applies there (twice, as two
    // symbols interleaved at random).
    for (fa, fb, bars) in [
        ("ohlcv.csv", "flat.csv", true),
        ("tick.csv", "tick.csv", false),
    ] {
        let (a, b) = (Fixture::load(fa), Fixture::load(fb));
        let (whole, mask) = fixture_chunk(&a, &b, bars, 5);
        for seed in [1, 2] {
            let mut stage = FeatureStage::new(cfg.clone()).unwrap();
            let out = run_all(&mut stage, split(&whole, &random_sizes(seed, 40)));
            for spec in a.specs() {
                for name in spec.columns() {
                    let got = column(&out, &name);
                    assert_close(
                        &format!("{fa}:{name}"),
                        &pick(&got, &mask, true),
                        &a.col(&name),
                    );
                    assert_close(
                        &format!("{fb}:{name}"),
                        &pick(&got, &mask, false),
                        &b.col(&name),
                    );
                }
            }
        }
    }
}

/// Seeded multi-symbol TAQ-like ticks with some missing fields.
fn taq(n: usize, seed: u64) -> Chunk {
    let mut r = Rng(pipeline_core::SplitMix64::new(seed));
    let syms = ["AAPL", "MSFT", "IBM"];
    let mut px = [130.0, 220.0, 125.0];
    let mut t = T0 - 600 * SEC; // starts before the open
    let (mut ts, mut sym, mut price, mut size, mut bid, mut ask, mut bs, mut as_) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    for _ in 0..n {
        t += (r.f64() * 3.0 * SEC as f64) as i64;
        let s = r.below(3) as usize;
        px[s] = ((px[s] + (r.f64() - 0.5) * 0.1) * 100.0).round() / 100.0;
        let spread = 0.01 * (1 + r.below(3)) as f64;
        let miss = |r: &mut Rng, x: f64| (r.below(50) != 0).then_some(x);
        ts.push((r.below(200) != 0).then_some(t));
        sym.push(syms[s]);
        price.push(miss(&mut r, px[s]));
        let sz = (1 + r.below(10)) as f64 * 100.0;
        size.push(miss(&mut r, sz));
        bid.push(miss(&mut r, px[s] - spread / 2.0));
        ask.push(miss(&mut r, px[s] + spread / 2.0));
        let (qb, qa) = (
            (1 + r.below(9)) as f64 * 100.0,
            (1 + r.below(9)) as f64 * 100.0,
        );
        bs.push(miss(&mut r, qb));
        as_.push(miss(&mut r, qa));
    }
    chunk_of(vec![
        ("ts", ts_array(ts)),
        ("symbol", sym_array(sym)),
        ("price", f64_array(price)),
        ("size", f64_array(size)),
        ("bid", f64_array(bid)),
        ("ask", f64_array(ask)),
        ("bid_size", f64_array(bs)),
        ("ask_size", f64_array(as_)),
    ])
}

/// Every feature group switched on, including time windows, EWM and order flow.
fn full_config() -> FeatureConfig {
    FeatureConfig {
        rolling: vec![
            "std_20".into(),
            "median_9".into(),
            "max_5".into(),
            "mean_1m".into(),
            "min_30s".into(),
            "sum_10".into(),
        ],
        ewm: vec!["span_10".into(), "hl_30s".into()],
        indicators: vec![
            "sma_20".into(),
            "ema_20".into(),
            "rsi_14".into(),
            "macd".into(),
            "bb_20_2".into(),
            "obv".into(),
            "cci_14".into(),
        ],
        order_flow: true,
        quote_detail: true,
        session_features: true,
        cyclical_time: true,
        ..FeatureConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn feature_stage_output_does_not_depend_on_chunk_size(size in 1usize..=64) {
        let whole = taq(700, 3);
        let want = run_all(&mut FeatureStage::new(full_config()).unwrap(), vec![whole.clone()]);
        let got = run_all(&mut FeatureStage::new(full_config()).unwrap(), split(&whole, &[size]));
        prop_assert_eq!(got, want);
    }

    #[test]
    fn bar_stage_output_does_not_depend_on_chunk_size(size in 1usize..=64) {
        let whole = taq(700, 4);
        for spec in ["time:1m", "tick:7", "volume:2000", "dollar:250000"] {
            let spec = parse_bar_spec(spec).unwrap();
            let want = run_all(&mut BarStage::new(spec.clone()), vec![whole.clone()]);
            let got = run_all(&mut BarStage::new(spec), split(&whole, &[size]));
            prop_assert_eq!(got, want);
        }
    }
}

/// How [`interrupted`] stops after its first chunks.
#[derive(Clone, Copy)]
enum Stop {
    /// Checkpoint, and restore into a fresh stage (a resumed run).
    Resume,
    /// Take a replay point, run a failed attempt at the next chunks (output discarded) and
    /// restore the point in the same stage (a retried input).
    Replay,
}

/// Runs the first `cut` chunks, stops as `how` says, and runs the rest.
fn interrupted(
    make: &dyn Fn() -> Box<dyn Stage>,
    chunks: Vec<Chunk>,
    cut: usize,
    how: Stop,
) -> RecordBatch {
    let mut stage = make();
    let mut out = pipeline_core::Emitter::default();
    let mut all = Vec::new();
    for c in chunks[..cut].iter().cloned() {
        stage.process(c, &mut out).unwrap();
    }
    all.extend(out.take_chunks());
    let mut stage = match how {
        Stop::Resume => {
            let state = stage.checkpoint().unwrap().unwrap();
            let mut second = make();
            second.restore(&state).unwrap();
            second
        }
        Stop::Replay => {
            let point = stage.replay_point().unwrap().unwrap();
            let mut failed = pipeline_core::Emitter::default();
            for c in chunks[cut..].iter().take(3).cloned() {
                stage.process(c, &mut failed).unwrap();
            }
            stage.restore(&point).unwrap();
            stage
        }
    };
    let (rest, _) = run_stage(stage.as_mut(), chunks[cut..].iter().cloned()).unwrap();
    all.extend(rest);
    let batches: Vec<RecordBatch> = all.iter().map(|c| c.batch().clone()).collect();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[test]
fn a_replay_point_takes_the_stage_back_exactly() {
    let whole = taq(900, 8);
    let chunks = split(&whole, &random_sizes(9, 50));
    let features = || Box::new(FeatureStage::new(full_config()).unwrap()) as Box<dyn Stage>;
    let want = run_all(features().as_mut(), chunks.clone());
    for cut in [1, 5, chunks.len() / 2, chunks.len() - 2] {
        assert_eq!(
            interrupted(&features, chunks.clone(), cut, Stop::Replay),
            want,
            "features, cut {cut}"
        );
    }
    let mut a = features();
    let point = a.replay_point().unwrap().unwrap();
    assert!(
        features().restore(&point).is_err(),
        "another instance's point"
    );
}

#[test]
fn checkpoint_and_restore_continue_exactly() {
    let whole = taq(900, 8);
    let chunks = split(&whole, &random_sizes(9, 50));
    let features = || Box::new(FeatureStage::new(full_config()).unwrap()) as Box<dyn Stage>;
    let want = run_all(features().as_mut(), chunks.clone());
    for cut in [1, 5, chunks.len() / 2, chunks.len() - 1] {
        assert_eq!(
            interrupted(&features, chunks.clone(), cut, Stop::Resume),
            want,
            "features, cut {cut}"
        );
    }
    for spec in ["time:1m", "volume:3000"] {
        let spec = parse_bar_spec(spec).unwrap();
        let bars = || Box::new(BarStage::new(spec.clone())) as Box<dyn Stage>;
        let want = run_all(bars().as_mut(), chunks.clone());
        for cut in [1, chunks.len() / 2] {
            assert_eq!(
                interrupted(&bars, chunks.clone(), cut, Stop::Resume),
                want,
                "bars, cut {cut}"
            );
        }
    }
    // A checkpoint from another configuration is refused.
    let state = features().checkpoint().unwrap().unwrap();
    let mut other = FeatureStage::new(FeatureConfig::default()).unwrap();
    assert!(other.restore(&state).is_err());
}

/// Trades as (seconds after T0, symbol, price, size).
fn trades(rows: &[(i64, &str, f64, f64)]) -> Chunk {
    chunk_of(vec![
        ("ts", ts_array(rows.iter().map(|r| Some(T0 + r.0 * SEC)))),
        ("symbol", sym_array(rows.iter().map(|r| r.1))),
        ("price", f64_array(rows.iter().map(|r| Some(r.2)).collect())),
        ("size", f64_array(rows.iter().map(|r| Some(r.3)).collect())),
    ])
}

/// Bars as rows of (ts seconds after T0, symbol, o, h, l, c, v, trades, first line).
fn bar_rows(b: &RecordBatch) -> Vec<(i64, String, [f64; 5], i64, u64)> {
    let ts = b
        .column_by_name("ts")
        .unwrap()
        .as_primitive::<arrow_array::types::TimestampNanosecondType>();
    let sym = b.column_by_name("symbol").unwrap().as_any_dictionary();
    let keys = sym.normalized_keys();
    let names = sym.values().as_string::<i32>();
    let f = |n: &str| column(b, n);
    let (o, h, l, c, v) = (f("open"), f("high"), f("low"), f("close"), f("volume"));
    let trades = b
        .column_by_name("trades")
        .unwrap()
        .as_primitive::<Int64Type>();
    let lines = b
        .column_by_name("_line")
        .unwrap()
        .as_primitive::<arrow_array::types::UInt64Type>();
    (0..b.num_rows())
        .map(|i| {
            (
                (ts.value(i) - T0) / SEC,
                names.value(keys[i]).to_string(),
                [
                    o[i].unwrap(),
                    h[i].unwrap(),
                    l[i].unwrap(),
                    c[i].unwrap(),
                    v[i].unwrap(),
                ],
                trades.value(i),
                lines.value(i),
            )
        })
        .collect()
}

#[test]
fn bars_on_a_hand_made_series() {
    // Lines 2..=9.
    let input = trades(&[
        (0, "X", 10.0, 100.0),
        (10, "X", 12.0, 50.0),
        (20, "Y", 50.0, 10.0),
        (59, "X", 9.0, 100.0),
        (60, "X", 11.0, 200.0),
        (150, "X", 11.5, 100.0),
        (170, "X", 11.0, 300.0),
        (175, "Y", 51.0, 20.0),
    ]);
    let s = |x: &str| x.to_string();
    let mut time = BarStage::new(parse_bar_spec("time:1m").unwrap());
    let (out, em) = run_stage(&mut time, split(&input, &[3])).unwrap();
    let b = arrow_select::concat::concat_batches(
        &out[0].batch().schema(),
        &out.iter().map(|c| c.batch().clone()).collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(
        bar_rows(&b),
        vec![
            (0, s("X"), [10.0, 12.0, 9.0, 9.0, 250.0], 3, 2),
            (60, s("X"), [11.0, 11.0, 11.0, 11.0, 200.0], 1, 6),
            (0, s("Y"), [50.0, 50.0, 50.0, 50.0, 10.0], 1, 4),
            (120, s("X"), [11.5, 11.5, 11.0, 11.0, 400.0], 2, 7),
            (120, s("Y"), [51.0, 51.0, 51.0, 51.0, 20.0], 1, 9),
        ]
    );
    let vwap = column(&b, "vwap");
    assert_eq!(vwap[0], Some((1000.0 + 600.0 + 900.0) / 250.0));
    // 8 rows in, 5 bars out: 3 rows merged into bars.
    assert_eq!(em.ledger().removed["bars"], 3);

    let mut vol = BarStage::new(BarSpec::Volume(250.0));
    let b = run_all(&mut vol, vec![input.clone()]);
    assert_eq!(
        bar_rows(&b),
        vec![
            (0, s("X"), [10.0, 12.0, 9.0, 9.0, 250.0], 3, 2),
            (60, s("X"), [11.0, 11.5, 11.0, 11.5, 300.0], 2, 6),
            (170, s("X"), [11.0, 11.0, 11.0, 11.0, 300.0], 1, 8),
            (20, s("Y"), [50.0, 51.0, 50.0, 51.0, 30.0], 2, 4),
        ]
    );
    let mut ticks = BarStage::new(parse_bar_spec("tick:2").unwrap());
    let b = run_all(&mut ticks, vec![input.clone()]);
    assert_eq!(
        bar_rows(&b).iter().map(|r| r.3).collect::<Vec<_>>(),
        vec![2, 2, 2, 2]
    );
    let mut dollars = BarStage::new(parse_bar_spec("dollar:2000").unwrap());
    let b = run_all(&mut dollars, vec![input]);
    assert_eq!(
        bar_rows(&b).iter().map(|r| (r.0, r.3)).collect::<Vec<_>>(),
        vec![(0, 3), (60, 1), (150, 2), (20, 2)]
    );
}

#[test]
fn time_features_across_a_dst_change() {
    // Friday 2021-03-12 09:30 EST = 14:30 UTC; Monday 2021-03-15 09:30 EDT = 13:30 UTC.
    let fri = 1_615_559_400 * SEC;
    let mon = 1_615_815_000 * SEC;
    let input = chunk_of(vec![
        (
            "ts",
            ts_array([Some(fri), Some(fri + 3600 * SEC), Some(mon), Some(mon - 1)]),
        ),
        ("symbol", sym_array(["A"; 4])),
        ("price", f64_array(vec![Some(1.0); 4])),
    ]);
    let cfg = FeatureConfig {
        time_features: true,
        session_features: true,
        cyclical_time: true,
        ..FeatureConfig::none()
    };
    let out = run_all(&mut FeatureStage::new(cfg).unwrap(), vec![input]);
    let col = |n: &str| {
        column(&out, n)
            .into_iter()
            .map(Option::unwrap)
            .collect::<Vec<f64>>()
    };
    let int8 = |n: &str| {
        let a = out.column_by_name(n).unwrap();
        assert_eq!(a.data_type(), &DataType::Int8, "{n}");
        a.as_primitive::<Int8Type>()
            .iter()
            .map(Option::unwrap)
            .collect::<Vec<i8>>()
    };
    assert_eq!(int8("hour"), vec![9, 10, 9, 9]);
    assert_eq!(int8("minute"), vec![30, 30, 30, 29]);
    assert_eq!(int8("day_of_week"), vec![4, 4, 0, 0]);
    assert_eq!(col("seconds_since_open"), vec![0.0, 3600.0, 0.0, -1e-9]);
    let flag: Vec<Option<bool>> = out
        .column_by_name("in_session")
        .unwrap()
        .as_boolean()
        .iter()
        .collect();
    assert_eq!(flag, vec![Some(true), Some(true), Some(true), Some(false)]);
    let (s, c) = (col("tod_sin"), col("tod_cos"));
    let angle = std::f64::consts::TAU * (9.5 * 3600.0) / 86_400.0;
    assert!((s[0] - angle.sin()).abs() < 1e-12 && (c[2] - angle.cos()).abs() < 1e-12);
}

#[test]
fn default_builder_adds_the_default_columns_and_scaling_round_trips() {
    let factories = feature_stages(&PreprocessingConfig::default()).unwrap();
    assert_eq!(factories.len(), 1);
    let mut stage = factories[0]().unwrap();
    let whole = taq(400, 12);
    let out = run_all(stage.as_mut(), split(&whole, &[37]));
    for c in [
        "return",
        "log_return",
        "sma_20",
        "ema_20",
        "rolling_std_20",
        "vwap_100",
        "mid",
        "spread",
        "hour",
        "price_lag_1",
        "price_lag_20",
        "minute",
        "day_of_week",
    ] {
        assert!(out.column_by_name(c).is_some(), "{c}");
    }
    // Columns nobody asked for by default stay off.
    for c in [
        "spread_bps",
        "microprice",
        "quote_imbalance",
        "in_session",
        "tod_sin",
        "dow_cos",
    ] {
        assert!(out.column_by_name(c).is_none(), "{c}");
    }
    assert_eq!(
        out.column_by_name("hour").unwrap().data_type(),
        &DataType::Int8
    );
    // Lags: row i's `price_lag_1` is the same symbol's previous row's price.
    let chunk = Chunk::new(out.clone(), 0, 0).unwrap();
    let cols = vec!["return".to_string(), "spread".to_string()];
    for method in [
        ScaleMethod::ZScore,
        ScaleMethod::MinMax,
        ScaleMethod::Robust,
    ] {
        let params = fit_scaler([&chunk], &cols, method).unwrap();
        let params = ScalerParams::from_json(&params.to_json()).unwrap();
        let scaled = run_all(&mut ScaleStage::new(params.clone()), vec![chunk.clone()]);
        let v: Vec<f64> = column(&scaled, "spread").into_iter().flatten().collect();
        match method {
            ScaleMethod::ZScore => {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
                assert!(m.abs() < 1e-9 && (sd - 1.0).abs() < 1e-9, "{m} {sd}");
            }
            ScaleMethod::MinMax => {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                assert!(lo.abs() < 1e-12 && (hi - 1.0).abs() < 1e-12);
            }
            ScaleMethod::Robust => assert!(params.columns[1].scale > 0.0),
        }
        // Nulls stay null.
        assert_eq!(
            scaled.column_by_name("return").unwrap().null_count(),
            out.column_by_name("return").unwrap().null_count()
        );
    }
}

#[test]
fn real_trades_run_through_features_and_bars() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/real");
    let file = dir.join("tardis-binance-futures-btcusdt-trades/tardis_trades.csv");
    if !file.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "real data missing on CI"
        );
        eprintln!("skipping: {} not found", file.display());
        return;
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let (mut ts, mut price, mut size) = (vec![], vec![], vec![]);
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        ts.push(Some(f[2].parse::<i64>().unwrap() * 1000));
        price.push(Some(f[6].parse::<f64>().unwrap()));
        size.push(Some(f[7].parse::<f64>().unwrap()));
    }
    let n = ts.len();
    let whole = chunk_of(vec![
        ("ts", ts_array(ts)),
        ("symbol", sym_array(vec!["BTCUSDT"; n])),
        ("price", f64_array(price.clone())),
        ("size", f64_array(size)),
    ]);
    let cfg = FeatureConfig {
        session_timezone: "UTC".into(),
        session_open: "00:00".into(),
        session_close: "24:00".into(),
        ..full_config()
    };
    let want = run_all(
        &mut FeatureStage::new(cfg.clone()).unwrap(),
        vec![whole.clone()],
    );
    let got = run_all(
        &mut FeatureStage::new(cfg).unwrap(),
        split(&whole, &random_sizes(4, 2000)),
    );
    assert_eq!(got, want);
    let (lo, hi) = price
        .iter()
        .flatten()
        .fold((f64::MAX, f64::MIN), |(l, h), &p| (l.min(p), h.max(p)));
    for v in column(&want, "vwap_100").into_iter().flatten() {
        assert!(v >= lo && v <= hi);
    }
    let flags = want.column_by_name("in_session").unwrap().as_boolean();
    assert_eq!(flags.iter().flatten().count(), n);
    let mut bars = BarStage::new(parse_bar_spec("time:1m").unwrap());
    let (out, em) = run_stage(&mut bars, vec![whole]).unwrap();
    let rows: usize = out.iter().map(|c| c.num_rows()).sum();
    // 2 hours and 6 minutes of trades: about 126 one-minute bars, every row accounted for.
    assert!((120..=127).contains(&rows), "{rows} bars");
    assert_eq!(rows as u64 + em.ledger().removed["bars"], n as u64);
}

#[test]
fn per_symbol_state_skips_null_prices_and_lags_count_rows() {
    let whole = taq(1500, 21);
    let cfg = FeatureConfig::default();
    let out = run_all(&mut FeatureStage::new(cfg).unwrap(), split(&whole, &[61]));
    let sym = out.column_by_name("symbol").unwrap().as_any_dictionary();
    let keys = sym.normalized_keys();
    let names = sym.values().as_string::<i32>();
    let price = column(&out, "price");
    let (sma, lag5, ret, mid) = (
        column(&out, "sma_20"),
        column(&out, "price_lag_5"),
        column(&out, "return"),
        column(&out, "mid"),
    );
    let (bid, ask) = (column(&out, "bid"), column(&out, "ask"));
    for s in ["AAPL", "MSFT", "IBM"] {
        let rows: Vec<usize> = (0..out.num_rows())
            .filter(|&i| names.value(keys[i]) == s)
            .collect();
        let mut seen: Vec<f64> = Vec::new();
        for (k, &i) in rows.iter().enumerate() {
            // Lags count rows of the symbol, nulls included.
            let want_lag = k.checked_sub(5).and_then(|j| price[rows[j]]);
            assert_eq!(lag5[i], want_lag, "{s} row {k} lag");
            match price[i] {
                None => {
                    assert_eq!(sma[i], None);
                    assert_eq!(ret[i], None);
                }
                Some(p) => {
                    if let Some(&prev) = seen.last() {
                        assert!((ret[i].unwrap() - (p / prev - 1.0)).abs() < 1e-15);
                    }
                    seen.push(p);
                    let want = (seen.len() >= 20)
                        .then(|| seen[seen.len() - 20..].iter().sum::<f64>() / 20.0);
                    match (sma[i], want) {
                        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{s} row {k}"),
                        (g, w) => assert_eq!(g, w, "{s} row {k} sma"),
                    }
                }
            }
            match (bid[i], ask[i]) {
                (Some(b), Some(a)) => assert_eq!(mid[i], Some((b + a) / 2.0)),
                _ => assert_eq!(mid[i], None),
            }
        }
    }
}
