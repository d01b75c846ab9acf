//! tickpipe preprocessing stages.
//!
//! * `clean`: de-duplication, missing values, the Barndorff-Nielsen et al. (2009) trade and
//!   quote rules, outlier detectors.
//! * `features`: returns, lags, rolling statistics, TA-Lib-exact indicators, microstructure
//!   and time features, bars, normalisation.
//!
//! Stages read each row's kind from what it fills, so one dataset may unite trades, quotes
//! and order-book messages (one schema across files, nulls where a kind lacks a column):
//! order-book messages (`event_type` set) are never de-duplicated or judged as outliers and
//! count as trades only when they are executions; quote rows are not missing a price; a
//! quotes-only symbol gets its price features and bars on the mid; rows with an `id`
//! de-duplicate by it.

//!
//! The kernels follow TA-Lib's definitions, lookback included; e.g. an EMA seeded with the
//! SMA of its first `period` values (TA-Lib's default), then `ema = ema + k (x − ema)` with
//! `k = 2 / (period + 1)`:
//!
//! ```
//! use pipeline_prep::{Ema, Sma};
//! let (mut sma, mut ema) = (Sma::new(3), Ema::new(3));
//! let out: Vec<_> = [1.0, 2.0, 3.0, 4.0].iter().map(|&x| (sma.update(x), ema.update(x))).collect();
//! assert_eq!(out[1], (None, None)); // lookback: period - 1 values
//! assert_eq!(out[2], (Some(2.0), Some(2.0))); // the EMA's seed is the SMA
//! assert_eq!(out[3], (Some(3.0), Some(3.0))); // 2 + 0.5 × (4 − 2)
//! ```

mod clean;
mod features;
mod kind;
mod state;
mod sums;
pub mod taq;

pub use clean::{
    BNHLS_RULES, Basis, BnhlsConfig, BnhlsRowRules, BrownleesGallo, BrownleesGalloConfig,
    DayExchange, DaySpread, DbscanConfig, DbscanOutliers, Dedupe, DedupeConfig, GlobalIqr,
    GlobalIqrConfig, InvalidConfig, InvalidRows, IsolationForest, IsolationForestConfig,
    IsolationForestOutliers, MidQuoteDeviation, MissingConfig, MissingMethod, MissingValues,
    OutlierAction, OutlierConfig, RollingMethod, RollingOutliers, SameTimestamp, cleaning_stages,
};
pub use features::{
    Adx, Atr, BarEdge, BarSession, BarSpec, BarStage, Bbands, Bin, Cci, ColumnScale, Decay, Dema,
    Ema, EmptyBars, Ewm, Extreme, FeatureConfig, FeatureStage, Indicator, IndicatorSpec, Lag, Lags,
    LocalTime, LogReturn, Macd, Mom, MonoDeque, Obv, Ofi, Ohlcv, P2Quantile, RealizedVar,
    ResetEvery, Roc, Rolling, RollingStat, Rsi, SCALER_METADATA_KEY, ScaleMethod, ScaleStage,
    ScalerFit, ScalerParams, SessionClock, SessionGrid, SessionVwap, SimpleReturn, Sma, Stoch,
    Tema, TradeIntensity, TradeSign, TypeReport, Vwap, Willr, Window, Wma, dictionary_encode,
    feature_config, feature_stages, fit_scaler, microprice, mid, one_hot, optimize_types,
    parse_bar_spec, parse_duration, parse_rolling_spec, quote_imbalance,
};
pub use taq::{
    DailyWriter, DayMeasures, Nbbo, NbboBook, NbboState, OpenSource, QuoteOutcome, StreamOrder,
    TaqJoin, TaqOptions, TaqSegment, TaqStats, TickRule, TradeMeasures, effective_spread,
    price_impact, realized_spread, sign_clnv, sign_emo, sign_lee_ready,
};
