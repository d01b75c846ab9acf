//! [`feature_stages`]: the feature stages a `[preprocessing]` configuration asks for.

use std::sync::Arc;

use pipeline_core::{PreprocessingConfig, Result, Stage, StageFactory};

use super::stage::{FeatureConfig, FeatureStage};

/// Maps `[preprocessing]` to a [`FeatureConfig`]:
/// `create_technical_indicators` → returns, `rolling_window` (rolling std), `indicators` and
/// `vwap_window`; `create_lag_features` + `lag_periods` → price lags;
/// `create_microstructure_features` → `mid`, `spread`; `create_time_features` + `session_*`
/// → `hour`, `minute`, `day_of_week` (Int8). With the defaults that is the reference job's
/// 15 columns (see the `features` module docs). The columns nobody asked for by default
/// (`spread_bps`, `microprice`, `quote_imbalance`: [`FeatureConfig::quote_detail`];
/// `seconds_since_open`, `in_session`: [`FeatureConfig::session_features`]; `tod_sin`,
/// `tod_cos`, `dow_sin`, `dow_cos`: [`FeatureConfig::cyclical_time`]), the order-flow group
/// (OFI, trade sign, session VWAP, realized variance, trade intensity), EWM and time-window
/// statistics have no `[preprocessing]` key: switch them on in the returned
/// [`FeatureConfig`].
pub fn feature_config(cfg: &PreprocessingConfig) -> FeatureConfig {
    let ta = cfg.create_technical_indicators;
    let lags = cfg.create_lag_features && !cfg.lag_periods.is_empty();
    FeatureConfig {
        price_column: "price".into(),
        returns: ta,
        lag_columns: if lags {
            vec!["price".into()]
        } else {
            Vec::new()
        },
        lag_periods: if lags {
            cfg.lag_periods.clone()
        } else {
            Vec::new()
        },
        rolling: if ta && cfg.rolling_window > 0 {
            vec![format!("std_{}", cfg.rolling_window)]
        } else {
            Vec::new()
        },
        ewm: Vec::new(),
        indicators: if ta {
            cfg.indicators.clone()
        } else {
            Vec::new()
        },
        vwap_window: if ta { cfg.vwap_window } else { 0 },
        microstructure: cfg.create_microstructure_features,
        quote_detail: false,
        order_flow: false,
        realized_interval: "5m".into(),
        intensity_window: "1m".into(),
        time_features: cfg.create_time_features,
        session_features: false,
        cyclical_time: false,
        session_open: cfg.session_open.clone(),
        session_close: cfg.session_close.clone(),
        session_timezone: cfg.session_timezone.clone(),
    }
}

/// The feature stages for `cfg`: one fused per-symbol [`FeatureStage`] (or none when every
/// feature switch is off). The configuration is validated here, so a bad indicator name or
/// time zone fails before any data is read.
///
/// `normalize_features` is not handled here: scaling needs parameters fitted in a first pass
/// ([`crate::fit_scaler`]), after which the caller appends a [`crate::ScaleStage`].
pub fn feature_stages(cfg: &PreprocessingConfig) -> Result<Vec<StageFactory>> {
    let fc = feature_config(cfg);
    let probe = FeatureStage::new(fc.clone())?;
    if probe.output_columns().is_empty() {
        return Ok(Vec::new());
    }
    let factory: StageFactory =
        Arc::new(move || Ok(Box::new(FeatureStage::new(fc.clone())?) as Box<dyn Stage>));
    Ok(vec![factory])
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
}
