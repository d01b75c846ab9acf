//! [`feature_stages`]: the feature stages a `[preprocessing]` configuration asks for.

use std::collections::HashSet;
use std::sync::Arc;

use pipeline_core::{Canonical, Error, PreprocessingConfig, Result, Stage, StageFactory};

use super::rolling::parse_duration;
use super::stage::{FeatureConfig, FeatureStage, ResetEvery, parse_rolling_spec};

/// Maps `[preprocessing]` to a [`FeatureConfig`]:
/// * `create_technical_indicators` → `return`, `log_return`, `rolling_std_<rolling_window>`,
///   the `rolling_features` specs (`rolling_<spec>`), the `ewm_features` specs
///   (`ewma_<spec>`, `ewstd_<spec>`), `indicators` and `vwap_<vwap_window>`;
/// * `create_lag_features` → `<col>_lag_<k>` for each of `lag_columns` (default `price`) and
///   `lag_periods`;
/// * `create_microstructure_features` → `mid`, `spread`;
///   `create_quote_detail_features` → `spread_bps`, `microprice`, `quote_imbalance`
///   ([`FeatureConfig::quote_detail`]);
///   `create_order_flow_features` → `ofi`, `trade_sign`, `vwap_session`,
///   `realized_var_<realized_interval>`, `realized_vol_<realized_interval>`,
///   `trade_intensity_<intensity_window>` ([`FeatureConfig::order_flow`]);
/// * `create_time_features` → `hour`, `minute`, `day_of_week` (Int8);
///   `create_session_features` → `seconds_since_open`, `in_session`
///   ([`FeatureConfig::session_features`]); `create_cyclical_time_features` → `tod_sin`,
///   `tod_cos`, `dow_sin`, `dow_cos` ([`FeatureConfig::cyclical_time`]); all in the
///   `session_*` hours and zone.
///
/// * `price_column` → [`FeatureConfig::price_column`] (unset: `price`, which reads executions
///   of order-book messages and the mid of quotes-only symbols); `time_zone`,
///   `symbol_time_zones` → the zone of the time features; `reset_state` →
///   [`FeatureConfig::reset`].
///
/// With the defaults that is the reference job's 15 columns (see the `features` module docs);
/// every key added beyond those defaults to off or empty.
pub fn feature_config(cfg: &PreprocessingConfig) -> FeatureConfig {
    let ta = cfg.create_technical_indicators;
    let lags =
        cfg.create_lag_features && !cfg.lag_periods.is_empty() && !cfg.lag_columns.is_empty();
    let mut rolling = Vec::new();
    if ta {
        if cfg.rolling_window > 0 {
            rolling.push(format!("std_{}", cfg.rolling_window));
        }
        rolling.extend(cfg.rolling_features.iter().cloned());
    }
    FeatureConfig {
        price_column: cfg.price_column.clone().unwrap_or_else(|| "price".into()),
        returns: ta,
        lag_columns: if lags {
            cfg.lag_columns.clone()
        } else {
            Vec::new()
        },
        lag_periods: if lags {
            cfg.lag_periods.clone()
        } else {
            Vec::new()
        },
        rolling,
        ewm: if ta {
            cfg.ewm_features.clone()
        } else {
            Vec::new()
        },
        indicators: if ta {
            cfg.indicators.clone()
        } else {
            Vec::new()
        },
        vwap_window: if ta { cfg.vwap_window } else { 0 },
        microstructure: cfg.create_microstructure_features,
        quote_detail: cfg.create_quote_detail_features,
        order_flow: cfg.create_order_flow_features,
        realized_interval: cfg.realized_interval.clone(),
        intensity_window: cfg.intensity_window.clone(),
        time_features: cfg.create_time_features,
        session_features: cfg.create_session_features,
        cyclical_time: cfg.create_cyclical_time_features,
        session_open: cfg.session_open.clone(),
        session_close: cfg.session_close.clone(),
        session_timezone: cfg.session_timezone.clone(),
        time_zone: cfg.time_zone.clone(),
        symbol_time_zones: cfg.symbol_time_zones.clone(),
        // Validated by `Config::validate` and again in `feature_stages`.
        reset: cfg
            .reset_state
            .as_deref()
            .and_then(|r| ResetEvery::parse(r).ok()),
    }
}

/// The feature stages for `cfg`: one fused per-symbol [`FeatureStage`] (or none when every
/// feature switch is off). The configuration is validated here, so a bad indicator name,
/// rolling or EWM spec, duration, lag column or time zone fails before any data is read;
/// errors about the keys that hold specs name the key (`preprocessing.rolling_features`…).
/// Specs are checked even when the switch that uses them is off, so a typo never waits for
/// the day the switch is turned on.
///
/// `normalize_features` is not handled here: scaling needs parameters fitted over the whole
/// output first. `tickpipe run` does it as a post-pass over the files it wrote: a
/// [`crate::ScalerFit`] pass over the scaled columns (or `normalize_params` loaded), then each
/// file rewritten through [`crate::ScalerParams::apply`], the kernel of [`crate::ScaleStage`].
pub fn feature_stages(cfg: &PreprocessingConfig) -> Result<Vec<StageFactory>> {
    check_specs(cfg)?;
    if let Some(r) = &cfg.reset_state {
        ResetEvery::parse(r)?;
    }
    check_lag_columns(cfg)?;
    let fc = feature_config(cfg);
    let probe = FeatureStage::new(fc.clone())?;
    if let Some(c) = cfg
        .lag_columns
        .iter()
        .find(|c| probe.output_columns().contains(c))
    {
        return Err(Error::config(
            LAG_COLUMNS,
            format!("`{c}` is a column the feature stage adds; lags read input columns"),
        ));
    }
    if probe.output_columns().is_empty() {
        return Ok(Vec::new());
    }
    let factory: StageFactory =
        Arc::new(move || Ok(Box::new(FeatureStage::new(fc.clone())?) as Box<dyn Stage>));
    Ok(vec![factory])
}

/// Gives a configuration error the dotted key the user wrote.
fn rekey(key: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Config { message, .. } => Error::config(key, message),
        other => other,
    }
}

/// Fails on the first duplicate in `specs`, naming `key`.
fn no_duplicates<'a>(key: &'static str, specs: impl IntoIterator<Item = &'a String>) -> Result<()> {
    let mut seen = HashSet::new();
    for s in specs {
        if !seen.insert(s.as_str()) {
            return Err(Error::config(key, format!("`{s}` is listed twice")));
        }
    }
    Ok(())
}

/// Parses every spec-holding key on its own, so an error names the key that holds the bad
/// spec rather than the [`FeatureConfig`] field it lands in.
fn check_specs(cfg: &PreprocessingConfig) -> Result<()> {
    const ROLLING: &str = "preprocessing.rolling_features";
    const EWM: &str = "preprocessing.ewm_features";
    for spec in &cfg.rolling_features {
        parse_rolling_spec(spec).map_err(rekey(ROLLING))?;
    }
    let base = format!("std_{}", cfg.rolling_window);
    if cfg.rolling_features.contains(&base) {
        return Err(Error::config(
            ROLLING,
            format!(
                "`{base}` is already added by rolling_window = {}",
                cfg.rolling_window
            ),
        ));
    }
    no_duplicates(ROLLING, &cfg.rolling_features)?;
    for spec in &cfg.ewm_features {
        // The EWM spec parser is the stage's own; a stage with only this spec runs it.
        FeatureStage::new(FeatureConfig {
            ewm: vec![spec.clone()],
            ..FeatureConfig::none()
        })
        .map_err(rekey(EWM))?;
    }
    no_duplicates(EWM, &cfg.ewm_features)?;
    parse_duration(&cfg.realized_interval).map_err(rekey("preprocessing.realized_interval"))?;
    parse_duration(&cfg.intensity_window).map_err(rekey("preprocessing.intensity_window"))?;
    Ok(())
}

/// The key of the lag columns.
const LAG_COLUMNS: &str = "preprocessing.lag_columns";

/// Lags read input columns, so each lag column must be a name, listed once, and not a
/// canonical column that is not a number (`ts`, `symbol`, `exchange`, `conditions`).
/// [`feature_stages`] also rejects a column the feature stage itself adds (its lag would
/// always be null).
fn check_lag_columns(cfg: &PreprocessingConfig) -> Result<()> {
    const KEY: &str = LAG_COLUMNS;
    no_duplicates(KEY, &cfg.lag_columns)?;
    for c in &cfg.lag_columns {
        if c.trim().is_empty() {
            return Err(Error::config(KEY, "a column name is empty"));
        }
        if let Some(k) = Canonical::from_name(c)
            && !k.data_type().is_numeric()
        {
            return Err(Error::config(
                KEY,
                format!(
                    "`{c}` is not numeric ({}); lags need a number column",
                    k.data_type()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default feature columns, in order (the list in the `features` module docs).
    const DEFAULT_COLUMNS: [&str; 15] = [
        "return",
        "log_return",
        "price_lag_1",
        "price_lag_5",
        "price_lag_10",
        "price_lag_20",
        "rolling_std_20",
        "sma_20",
        "ema_20",
        "vwap_100",
        "mid",
        "spread",
        "hour",
        "minute",
        "day_of_week",
    ];

    #[test]
    fn default_config_gives_one_fused_stage_with_the_default_columns() {
        let stages = feature_stages(&PreprocessingConfig::default()).unwrap();
        assert_eq!(stages.len(), 1);
        let fc = feature_config(&PreprocessingConfig::default());
        let s = FeatureStage::new(fc).unwrap();
        for c in [
            "return",
            "sma_20",
            "ema_20",
            "rolling_std_20",
            "vwap_100",
            "mid",
            "spread",
            "hour",
            "price_lag_20",
        ] {
            assert!(s.output_columns().iter().any(|n| n == c), "{c}");
        }
        assert_eq!(s.output_columns(), DEFAULT_COLUMNS);
    }

    #[test]
    fn everything_off_gives_no_stage_and_bad_specs_fail_early() {
        let cfg = PreprocessingConfig {
            create_technical_indicators: false,
            create_lag_features: false,
            create_time_features: false,
            create_microstructure_features: false,
            ..PreprocessingConfig::default()
        };
        assert!(feature_stages(&cfg).unwrap().is_empty());
        let cfg = PreprocessingConfig {
            indicators: vec!["nope_3".into()],
            ..PreprocessingConfig::default()
        };
        assert!(feature_stages(&cfg).is_err());
    }

    /// The columns `cfg` gives, after checking that `feature_stages` accepts it.
    fn columns(cfg: &PreprocessingConfig) -> Vec<String> {
        feature_stages(cfg).unwrap();
        FeatureStage::new(feature_config(cfg))
            .unwrap()
            .output_columns()
            .to_vec()
    }

    /// The default columns with `extra` inserted right after `after`.
    fn default_plus(after: &str, extra: &[&str]) -> Vec<String> {
        let at = DEFAULT_COLUMNS.iter().position(|c| *c == after).unwrap() + 1;
        let mut v: Vec<String> = DEFAULT_COLUMNS.iter().map(|c| c.to_string()).collect();
        v.splice(at..at, extra.iter().map(|c| c.to_string()));
        v
    }

    #[test]
    fn default_keys_map_to_the_default_feature_config() {
        let d = PreprocessingConfig::default();
        assert_eq!(feature_config(&d), FeatureConfig::default());
        assert!(d.rolling_features.is_empty() && d.ewm_features.is_empty());
        assert_eq!(d.lag_columns, ["price"]);
        assert_eq!(
            (d.realized_interval.as_str(), d.intensity_window.as_str()),
            ("5m", "1m")
        );
    }

    #[test]
    fn each_key_adds_exactly_the_columns_it_names() {
        let d = PreprocessingConfig::default;
        let cases: Vec<(PreprocessingConfig, Vec<String>)> = vec![
            (
                PreprocessingConfig {
                    rolling_features: vec!["mean_1m".into(), "max_50".into(), "median_30s".into()],
                    ..d()
                },
                default_plus(
                    "rolling_std_20",
                    &["rolling_mean_1m", "rolling_max_50", "rolling_median_30s"],
                ),
            ),
            (
                PreprocessingConfig {
                    ewm_features: vec!["span_10".into(), "hl_30s".into()],
                    ..d()
                },
                default_plus(
                    "rolling_std_20",
                    &[
                        "ewma_span_10",
                        "ewstd_span_10",
                        "ewma_hl_30s",
                        "ewstd_hl_30s",
                    ],
                ),
            ),
            (
                PreprocessingConfig {
                    lag_columns: vec!["price".into(), "bid".into()],
                    ..d()
                },
                default_plus(
                    "price_lag_20",
                    &["bid_lag_1", "bid_lag_5", "bid_lag_10", "bid_lag_20"],
                ),
            ),
            (
                PreprocessingConfig {
                    create_quote_detail_features: true,
                    ..d()
                },
                default_plus("spread", &["spread_bps", "microprice", "quote_imbalance"]),
            ),
            (
                PreprocessingConfig {
                    create_order_flow_features: true,
                    ..d()
                },
                default_plus(
                    "spread",
                    &[
                        "ofi",
                        "trade_sign",
                        "vwap_session",
                        "realized_var_5m",
                        "realized_vol_5m",
                        "trade_intensity_1m",
                    ],
                ),
            ),
            (
                PreprocessingConfig {
                    create_order_flow_features: true,
                    realized_interval: "30s".into(),
                    intensity_window: "10s".into(),
                    ..d()
                },
                default_plus(
                    "spread",
                    &[
                        "ofi",
                        "trade_sign",
                        "vwap_session",
                        "realized_var_30s",
                        "realized_vol_30s",
                        "trade_intensity_10s",
                    ],
                ),
            ),
            (
                PreprocessingConfig {
                    create_session_features: true,
                    ..d()
                },
                default_plus("day_of_week", &["seconds_since_open", "in_session"]),
            ),
            (
                PreprocessingConfig {
                    create_cyclical_time_features: true,
                    ..d()
                },
                default_plus("day_of_week", &["tod_sin", "tod_cos", "dow_sin", "dow_cos"]),
            ),
            // Interval keys name columns only through the order-flow switch.
            (
                PreprocessingConfig {
                    realized_interval: "1h".into(),
                    intensity_window: "5s".into(),
                    ..d()
                },
                default_plus("day_of_week", &[]),
            ),
        ];
        for (cfg, want) in cases {
            assert_eq!(columns(&cfg), want, "{cfg:?}");
        }
    }

    #[test]
    fn switches_gate_the_spec_lists() {
        let cfg = PreprocessingConfig {
            lag_columns: vec!["size".into()],
            ..PreprocessingConfig::default()
        };
        let mut want: Vec<String> = DEFAULT_COLUMNS.iter().map(|c| c.to_string()).collect();
        for k in [1, 5, 10, 20] {
            let i = want
                .iter()
                .position(|c| *c == format!("price_lag_{k}"))
                .unwrap();
            want[i] = format!("size_lag_{k}");
        }
        assert_eq!(columns(&cfg), want);
        let no_lags = PreprocessingConfig {
            lag_columns: Vec::new(),
            ..PreprocessingConfig::default()
        };
        assert!(!columns(&no_lags).iter().any(|c| c.contains("_lag_")));
        // Rolling and EWM specs belong to the technical-indicator group.
        let off = PreprocessingConfig {
            create_technical_indicators: false,
            rolling_features: vec!["mean_1m".into()],
            ewm_features: vec!["span_10".into()],
            ..PreprocessingConfig::default()
        };
        let cols = columns(&off);
        assert!(
            !cols
                .iter()
                .any(|c| c.starts_with("rolling_") || c.starts_with("ew")),
            "{cols:?}"
        );
        let only_flow = PreprocessingConfig {
            create_technical_indicators: false,
            create_lag_features: false,
            create_time_features: false,
            create_microstructure_features: false,
            create_order_flow_features: true,
            ..PreprocessingConfig::default()
        };
        assert_eq!(
            columns(&only_flow),
            [
                "ofi",
                "trade_sign",
                "vwap_session",
                "realized_var_5m",
                "realized_vol_5m",
                "trade_intensity_1m"
            ]
        );
    }

    #[test]
    fn bad_feature_keys_fail_in_feature_stages_naming_the_key() {
        let d = PreprocessingConfig::default;
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cases: Vec<(PreprocessingConfig, &str)> = vec![
            (
                PreprocessingConfig {
                    rolling_features: s(&["avg_20"]),
                    ..d()
                },
                "preprocessing.rolling_features",
            ),
            (
                PreprocessingConfig {
                    rolling_features: s(&["mean_0"]),
                    ..d()
                },
                "preprocessing.rolling_features",
            ),
            (
                PreprocessingConfig {
                    rolling_features: s(&["mean_5q"]),
                    ..d()
                },
                "preprocessing.rolling_features",
            ),
            (
                PreprocessingConfig {
                    rolling_features: s(&["std_20"]),
                    ..d()
                },
                "preprocessing.rolling_features",
            ),
            (
                PreprocessingConfig {
                    rolling_features: s(&["mean_5", "mean_5"]),
                    ..d()
                },
                "preprocessing.rolling_features",
            ),
            (
                PreprocessingConfig {
                    ewm_features: s(&["span_0"]),
                    ..d()
                },
                "preprocessing.ewm_features",
            ),
            (
                PreprocessingConfig {
                    ewm_features: s(&["alpha_3"]),
                    ..d()
                },
                "preprocessing.ewm_features",
            ),
            (
                PreprocessingConfig {
                    ewm_features: s(&["hl_5q"]),
                    ..d()
                },
                "preprocessing.ewm_features",
            ),
            (
                PreprocessingConfig {
                    ewm_features: s(&["span_9", "span_9"]),
                    ..d()
                },
                "preprocessing.ewm_features",
            ),
            // Checked with the order-flow switch off, too.
            (
                PreprocessingConfig {
                    realized_interval: "5 minutes".into(),
                    ..d()
                },
                "preprocessing.realized_interval",
            ),
            (
                PreprocessingConfig {
                    intensity_window: "0s".into(),
                    ..d()
                },
                "preprocessing.intensity_window",
            ),
            (
                PreprocessingConfig {
                    lag_columns: s(&["symbol"]),
                    ..d()
                },
                "preprocessing.lag_columns",
            ),
            (
                PreprocessingConfig {
                    lag_columns: s(&["ts"]),
                    ..d()
                },
                "preprocessing.lag_columns",
            ),
            (
                PreprocessingConfig {
                    lag_columns: s(&["mid"]),
                    ..d()
                },
                "preprocessing.lag_columns",
            ),
            (
                PreprocessingConfig {
                    lag_columns: s(&["price", "price"]),
                    ..d()
                },
                "preprocessing.lag_columns",
            ),
            (
                PreprocessingConfig {
                    lag_columns: s(&[""]),
                    ..d()
                },
                "preprocessing.lag_columns",
            ),
        ];
        for (cfg, key) in cases {
            match feature_stages(&cfg) {
                Err(Error::Config { key: k, message }) => {
                    assert_eq!(k, key, "{message}");
                }
                Err(e) => panic!("{cfg:?}: not a config error: {e}"),
                Ok(_) => panic!("{cfg:?} was accepted"),
            }
        }
    }

    #[test]
    fn lag_columns_lag_the_named_input_column() {
        use arrow_array::builder::StringDictionaryBuilder;
        use arrow_array::cast::AsArray;
        use arrow_array::types::{Float64Type, Int32Type};
        use arrow_array::{ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray};
        use pipeline_core::{Chunk, run_stage};

        let cfg = PreprocessingConfig {
            create_technical_indicators: false,
            create_time_features: false,
            create_microstructure_features: false,
            lag_columns: vec!["bid".into()],
            lag_periods: vec![1, 2],
            ..PreprocessingConfig::default()
        };
        let mut syms = StringDictionaryBuilder::<Int32Type>::new();
        for s in ["A", "B", "A", "A", "B"] {
            syms.append_value(s);
        }
        let t0 = 1_700_000_000_000_000_000i64;
        let cols: Vec<(&str, ArrayRef)> = vec![
            (
                "ts",
                Arc::new(
                    TimestampNanosecondArray::from_iter_values((0..5).map(|i| t0 + i))
                        .with_timezone("UTC"),
                ),
            ),
            ("symbol", Arc::new(syms.finish())),
            (
                "bid",
                Arc::new(Float64Array::from(vec![1.0, 10.0, 2.0, 3.0, 20.0])),
            ),
        ];
        let chunk =
            Chunk::with_first_line(RecordBatch::try_from_iter(cols).unwrap(), 0, 0, 2).unwrap();
        let factories = feature_stages(&cfg).unwrap();
        let mut stage = factories[0]().unwrap();
        let (out, _) = run_stage(stage.as_mut(), [chunk.slice(0, 2), chunk.slice(2, 3)]).unwrap();
        let col = |name: &str| -> Vec<Option<f64>> {
            out.iter()
                .flat_map(|c| {
                    c.batch()
                        .column_by_name(name)
                        .unwrap()
                        .as_primitive::<Float64Type>()
                        .iter()
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        // Per symbol: A has 1, 2, 3 and B has 10, 20, in rows A B A A B.
        assert_eq!(
            col("bid_lag_1"),
            [None, None, Some(1.0), Some(2.0), Some(10.0)]
        );
        assert_eq!(col("bid_lag_2"), [None, None, None, Some(1.0), None]);
    }
}
