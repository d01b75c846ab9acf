//! TA-Lib-exact technical indicators, streaming: each kernel takes one row at a time and
//! returns `None` inside TA-Lib's lookback, then the value TA-Lib's batch function returns
//! for that row (default compatibility, unstable period 0).
//!
//! The specs, columns, formulas and lookbacks are listed on [`IndicatorSpec`].

mod average;
mod momentum;
mod range;

pub use average::{Bbands, Dema, Ema, Macd, Sma, Tema, Wma};
pub use momentum::{Cci, Mom, Obv, Roc, Rsi};
pub use range::{Adx, Atr, Stoch, Willr};

use pipeline_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// One row of input for an indicator. On tick data `open = high = low = close = price` and
/// `volume = size`; on bars, the bar's columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ohlcv {
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close (the price indicators on one series use).
    pub close: f64,
    /// Volume.
    pub volume: f64,
}

/// A parsed indicator specification, e.g. `rsi_14` or `macd_12_26_9`.
///
/// | spec | columns | formula (see each kernel) | lookback |
/// |---|---|---|---|
/// | `sma_N` | `sma_N` | mean of the last N closes | N−1 |
/// | `ema_N` | `ema_N` | `k = 2/(N+1)`, seeded with SMA of the first N | N−1 |
/// | `wma_N` | `wma_N` | weights 1..N, newest heaviest | N−1 |
/// | `dema_N` | `dema_N` | `2·E1 − E2` | 2(N−1) |
/// | `tema_N` | `tema_N` | `3·E1 − 3·E2 + E3` | 3(N−1) |
/// | `rsi_N` | `rsi_N` | Wilder `100·G/(G+L)` | N |
/// | `macd_F_S_G` | `macd_F_S_G`, `macd_signal_F_S_G`, `macd_hist_F_S_G` | `EMA_F − EMA_S`, `EMA_G` of it, difference | S−1+G−1 |
/// | `bb_N_K` | `bb_upper_N_K`, `bb_middle_N_K`, `bb_lower_N_K` | `SMA_N ± K·σ_N` (population σ) | N−1 |
/// | `atr_N` | `atr_N` | Wilder mean of true range | N |
/// | `stoch_K_SK_SD` | `stoch_k_K_SK_SD`, `stoch_d_K_SK_SD` | slow %K = SMA of fast %K, %D = SMA of slow %K | K−1+SK−1+SD−1 |
/// | `obv` | `obv` | ± volume on up/down closes | 0 |
/// | `adx_N` | `adx_N` | Wilder ADX | 2N−1 |
/// | `cci_N` | `cci_N` | `(tp − mean)/(0.015·mean dev)` | N−1 |
/// | `roc_N` | `roc_N` | `100·(c/c₋N − 1)` | N |
/// | `mom_N` | `mom_N` | `c − c₋N` | N |
/// | `willr_N` | `willr_N` | `−100·(HH − c)/(HH − LL)` | N−1 |
///
/// The reference is TA-Lib 0.8.1 (Python `ta-lib` 0.8.2), whose flat-window tests in CCI,
/// STOCH and WILLR are relative to the prices (`|x| ≤ 1e-14·scale`); fixtures and the script
/// that made them are in `tests/data/talib/` and `scripts/talib_fixtures.py`.
/// `stoch` alone means `stoch_14_3_3`, `macd` means `macd_12_26_9`, `bb` means `bb_20_2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IndicatorSpec {
    /// Simple moving average.
    Sma(usize),
    /// Exponential moving average.
    Ema(usize),
    /// Weighted moving average.
    Wma(usize),
    /// Double EMA.
    Dema(usize),
    /// Triple EMA.
    Tema(usize),
    /// Relative strength index.
    Rsi(usize),
    /// MACD (fast, slow, signal).
    Macd(usize, usize, usize),
    /// Bollinger Bands (period, deviations).
    Bb(usize, f64),
    /// Average true range.
    Atr(usize),
    /// Slow stochastic (fast %K, slow %K, slow %D).
    Stoch(usize, usize, usize),
    /// On-balance volume.
    Obv,
    /// Average directional index.
    Adx(usize),
    /// Commodity channel index.
    Cci(usize),
    /// Rate of change (percent).
    Roc(usize),
    /// Momentum.
    Mom(usize),
    /// Williams %R.
    Willr(usize),
}

fn num(v: f64) -> String {
    format!("{v}")
}

impl IndicatorSpec {
    /// Parses `name_p1_p2…` (lower or upper case).
    pub fn parse(spec: &str) -> Result<IndicatorSpec> {
        let lower = spec.trim().to_ascii_lowercase();
        let mut parts = lower.split('_');
        let name = parts.next().unwrap_or_default();
        let params: Vec<&str> = parts.collect();
        let bad = |m: &str| Error::config("preprocessing.indicators", format!("`{spec}`: {m}"));
        let ints = |defaults: &[usize]| -> Result<Vec<usize>> {
            if params.is_empty() {
                return Ok(defaults.to_vec());
            }
            if params.len() != defaults.len() {
                return Err(bad(&format!("expects {} parameter(s)", defaults.len())));
            }
            params
                .iter()
                .map(|p| match p.parse::<usize>() {
                    Ok(v) if v >= 1 => Ok(v),
                    _ => Err(bad("parameters must be integers ≥ 1")),
                })
                .collect()
        };
        let one = |d: usize| -> Result<usize> { Ok(ints(&[d])?[0]) };
        Ok(match name {
            "sma" => IndicatorSpec::Sma(one(20)?),
            "ema" => IndicatorSpec::Ema(one(20)?),
            "wma" => IndicatorSpec::Wma(one(20)?),
            "dema" => IndicatorSpec::Dema(one(20)?),
            "tema" => IndicatorSpec::Tema(one(20)?),
            "rsi" => IndicatorSpec::Rsi(one(14)?),
            "macd" => {
                let v = ints(&[12, 26, 9])?;
                IndicatorSpec::Macd(v[0], v[1], v[2])
            }
            "bb" | "bbands" => {
                let (n, k) = match params.as_slice() {
                    [] => (20, 2.0),
                    [n] => (n.parse().map_err(|_| bad("bad period"))?, 2.0),
                    [n, k] => (
                        n.parse().map_err(|_| bad("bad period"))?,
                        k.parse::<f64>().map_err(|_| bad("bad deviation"))?,
                    ),
                    _ => return Err(bad("expects bb_N_K")),
                };
                if n < 1 || !(k.is_finite() && k > 0.0) {
                    return Err(bad("period ≥ 1 and deviation > 0 required"));
                }
                IndicatorSpec::Bb(n, k)
            }
            "atr" => IndicatorSpec::Atr(one(14)?),
            "stoch" => {
                let v = ints(&[14, 3, 3])?;
                IndicatorSpec::Stoch(v[0], v[1], v[2])
            }
            "obv" if params.is_empty() => IndicatorSpec::Obv,
            "adx" => IndicatorSpec::Adx(one(14)?),
            "cci" => IndicatorSpec::Cci(one(14)?),
            "roc" => IndicatorSpec::Roc(one(10)?),
            "mom" => IndicatorSpec::Mom(one(10)?),
            "willr" => IndicatorSpec::Willr(one(14)?),
            _ => {
                return Err(bad(
                    "unknown indicator; known: sma, ema, wma, dema, tema, rsi, macd, bb, atr, \
                     stoch, obv, adx, cci, roc, mom, willr",
                ));
            }
        })
    }

    /// The output column names, in output order.
    pub fn columns(&self) -> Vec<String> {
        use IndicatorSpec::*;
        match self {
            Sma(n) => vec![format!("sma_{n}")],
            Ema(n) => vec![format!("ema_{n}")],
            Wma(n) => vec![format!("wma_{n}")],
            Dema(n) => vec![format!("dema_{n}")],
            Tema(n) => vec![format!("tema_{n}")],
            Rsi(n) => vec![format!("rsi_{n}")],
            Macd(f, s, g) => vec![
                format!("macd_{f}_{s}_{g}"),
                format!("macd_signal_{f}_{s}_{g}"),
                format!("macd_hist_{f}_{s}_{g}"),
            ],
            Bb(n, k) => {
                let k = num(*k);
                vec![
                    format!("bb_upper_{n}_{k}"),
                    format!("bb_middle_{n}_{k}"),
                    format!("bb_lower_{n}_{k}"),
                ]
            }
            Atr(n) => vec![format!("atr_{n}")],
            Stoch(k, sk, sd) => vec![
                format!("stoch_k_{k}_{sk}_{sd}"),
                format!("stoch_d_{k}_{sk}_{sd}"),
            ],
            Obv => vec!["obv".into()],
            Adx(n) => vec![format!("adx_{n}")],
            Cci(n) => vec![format!("cci_{n}")],
            Roc(n) => vec![format!("roc_{n}")],
            Mom(n) => vec![format!("mom_{n}")],
            Willr(n) => vec![format!("willr_{n}")],
        }
    }

    /// TA-Lib's lookback: the number of leading rows whose output is null.
    pub fn lookback(&self) -> usize {
        use IndicatorSpec::*;
        match *self {
            Sma(n) | Ema(n) | Wma(n) | Bb(n, _) | Cci(n) | Willr(n) => n - 1,
            Dema(n) => 2 * (n - 1),
            Tema(n) => 3 * (n - 1),
            Rsi(n) | Atr(n) | Roc(n) | Mom(n) => n,
            Macd(f, s, g) => f.max(s) - 1 + g - 1,
            Stoch(k, sk, sd) => k - 1 + sk - 1 + sd - 1,
            Obv => 0,
            Adx(n) => 2 * n - 1,
        }
    }

    /// A fresh streaming kernel for this indicator.
    pub fn build(&self) -> Indicator {
        use IndicatorSpec::*;
        match *self {
            Sma(n) => Indicator::Sma(average::Sma::new(n)),
            Ema(n) => Indicator::Ema(average::Ema::new(n)),
            Wma(n) => Indicator::Wma(average::Wma::new(n)),
            Dema(n) => Indicator::Dema(average::Dema::new(n)),
            Tema(n) => Indicator::Tema(average::Tema::new(n)),
            Rsi(n) => Indicator::Rsi(momentum::Rsi::new(n)),
            Macd(f, s, g) => Indicator::Macd(average::Macd::new(f, s, g)),
            Bb(n, k) => Indicator::Bb(average::Bbands::new(n, k, k)),
            Atr(n) => Indicator::Atr(range::Atr::new(n)),
            Stoch(k, sk, sd) => Indicator::Stoch(range::Stoch::new(k, sk, sd)),
            Obv => Indicator::Obv(momentum::Obv::new()),
            Adx(n) => Indicator::Adx(range::Adx::new(n)),
            Cci(n) => Indicator::Cci(momentum::Cci::new(n)),
            Roc(n) => Indicator::Roc(momentum::Roc::new(n)),
            Mom(n) => Indicator::Mom(momentum::Mom::new(n)),
            Willr(n) => Indicator::Willr(range::Willr::new(n)),
        }
    }
}

/// A streaming indicator kernel of any kind (serialisable, for checkpoints).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)] // Each variant is the kernel of the same name.
pub enum Indicator {
    Sma(Sma),
    Ema(Ema),
    Wma(Wma),
    Dema(Dema),
    Tema(Tema),
    Rsi(Rsi),
    Macd(Macd),
    Bb(Bbands),
    Atr(Atr),
    Stoch(Stoch),
    Obv(Obv),
    Adx(Adx),
    Cci(Cci),
    Roc(Roc),
    Mom(Mom),
    Willr(Willr),
}

impl Indicator {
    /// Adds one row and writes the outputs (as many as the spec's `columns()`) to `out`;
    /// `None` inside the lookback.
    pub fn update(&mut self, b: &Ohlcv, out: &mut [Option<f64>]) {
        fn put<const N: usize>(v: Option<[f64; N]>, out: &mut [Option<f64>]) {
            for (i, o) in out.iter_mut().enumerate().take(N) {
                *o = v.map(|v| v[i]);
            }
        }
        let c = b.close;
        let one = match self {
            Indicator::Sma(k) => k.update(c),
            Indicator::Ema(k) => k.update(c),
            Indicator::Wma(k) => k.update(c),
            Indicator::Dema(k) => k.update(c),
            Indicator::Tema(k) => k.update(c),
            Indicator::Rsi(k) => k.update(c),
            Indicator::Atr(k) => k.update(b.high, b.low, c),
            Indicator::Obv(k) => k.update(c, b.volume),
            Indicator::Adx(k) => k.update(b.high, b.low, c),
            Indicator::Cci(k) => k.update(b.high, b.low, c),
            Indicator::Roc(k) => k.update(c),
            Indicator::Mom(k) => k.update(c),
            Indicator::Willr(k) => k.update(b.high, b.low, c),
            Indicator::Macd(k) => return put(k.update(c), out),
            Indicator::Bb(k) => return put(k.update(c), out),
            Indicator::Stoch(k) => return put(k.update(b.high, b.low, c), out),
        };
        if let Some(o) = out.first_mut() {
            *o = one;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_name_their_columns() {
        let cases = [
            ("sma_20", vec!["sma_20"]),
            (
                "MACD_12_26_9",
                vec!["macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9"],
            ),
            (
                "bb_20_2",
                vec!["bb_upper_20_2", "bb_middle_20_2", "bb_lower_20_2"],
            ),
            (
                "bb_20_2.5",
                vec!["bb_upper_20_2.5", "bb_middle_20_2.5", "bb_lower_20_2.5"],
            ),
            ("stoch", vec!["stoch_k_14_3_3", "stoch_d_14_3_3"]),
            ("obv", vec!["obv"]),
            ("willr_14", vec!["willr_14"]),
        ];
        for (s, cols) in cases {
            assert_eq!(IndicatorSpec::parse(s).unwrap().columns(), cols, "{s}");
        }
        for bad in ["foo_3", "sma_0", "sma_x", "macd_1_2", "obv_3", "bb_20_-1"] {
            assert!(IndicatorSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lookbacks_match_talib() {
        let lb = |s: &str| IndicatorSpec::parse(s).unwrap().lookback();
        assert_eq!(lb("rsi_14"), 14);
        assert_eq!(lb("macd_12_26_9"), 33);
        assert_eq!(lb("stoch_14_3_3"), 17);
        assert_eq!(lb("adx_14"), 27);
        assert_eq!(lb("tema_20"), 57);
    }
}
