//! Integration tests: features (TA-Lib fixtures, stages fed in chunks, checkpoints, bars).

use std::path::{Path, PathBuf};

use pipeline_prep::{IndicatorSpec, Ohlcv};

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
            "sma_20", "ema_20", "wma_20", "dema_20", "tema_20", "rsi_14", "macd_12_26_9",
            "bb_20_2", "atr_14", "stoch_14_3_3", "obv", "adx_14", "cci_14", "roc_10", "mom_10",
            "willr_14", "sma_5", "ema_3", "rsi_7", "macd_5_13_4",
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
