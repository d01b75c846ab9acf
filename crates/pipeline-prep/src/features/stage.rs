//! [`FeatureStage`]: every per-row feature in one fused per-symbol pass.
//!
//! One stage computes returns, lags, rolling and exponentially weighted statistics,
//! TA-Lib indicators, VWAP, microstructure and time features, reading each input column once
//! and materialising each output column once per chunk. A chain of one stage per feature
//! group does the same work but rebuilds the chunk's schema and re-reads the inputs in every
//! stage; `examples/features_bench.rs` measures both (the fused stage was faster; figures in
//! the `features` module docs).
//!
//! Per-symbol state (windows, EMAs, previous quotes) lives in a map keyed by symbol and is
//! carried across chunks and files, so results do not depend on chunk size; `checkpoint`
//! serialises it so a resumed run continues exactly.

use std::collections::{BTreeMap, HashMap};
use std::f64::consts::TAU;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int8Array};
use arrow_buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};
use pipeline_core::{Chunk, Emitter, Error, Replay, Result, Stage, StageKey, StageOrder};
use serde::{Deserialize, Serialize};

use super::columns::{F64Col, f64_col, key_slots, ts_col};
use super::micro::{
    Ofi, RealizedVar, SessionVwap, TradeIntensity, TradeSign, Vwap, microprice, mid,
    quote_imbalance,
};
use super::rolling::{Rolling, RollingStat, Window, parse_duration};
use super::series::{Decay, Ewm, Lags, LogReturn, SimpleReturn};
use super::talib::{Indicator, IndicatorSpec, Ohlcv};
use super::time::SessionClock;
use crate::kind::Events;

/// When per-symbol feature state starts afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetEvery {
    /// At local midnight in the symbol's time-feature zone.
    Day,
    /// At the first row at or after `session_open` (in `session_timezone`) of a later day.
    Session,
}

impl ResetEvery {
    /// Parses the config spelling `day` or `session`.
    pub fn parse(s: &str) -> Result<ResetEvery> {
        match s {
            "day" => Ok(ResetEvery::Day),
            "session" => Ok(ResetEvery::Session),
            other => Err(Error::config(
                "preprocessing.reset_state",
                format!("unknown value `{other}`; expected day or session"),
            )),
        }
    }
}

/// What [`FeatureStage`] computes. Every field has a default; see [`FeatureConfig::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// The price the price features (returns, lags of it, rolling and exponentially weighted
    /// statistics, indicators, VWAP) read. Default `price`, which means: the trade price; for
    /// order-book messages only executions' prices ([`pipeline_core::EXECUTION_EVENT_TYPES`];
    /// other messages get null price features and leave the kernels untouched); for a symbol
    /// whose first priced row is a quote (bid and ask, no price: FX quote files) the mid
    /// `(bid + ask) / 2` on every quote (the choice is kept per symbol, so one series never
    /// mixes trade prices and mids); and `close` on bar data. `mid` uses the mid of every row
    /// with a quote; any other name reads that column as is. Lags of the price column count
    /// rows of that series (a trade with a missing price is a gap in it; a non-execution
    /// message is not in it and gets null lags). Trades and quotes of one symbol in separate
    /// files (split TAQ) are not joined: quote rows of a symbol with trades get null price
    /// features and count as gaps in its price lags.
    pub price_column: String,
    /// Add `return` and `log_return`. Default true.
    pub returns: bool,
    /// Columns to lag. Default `["price"]`.
    pub lag_columns: Vec<String>,
    /// Lags in rows; columns `<col>_lag_<k>`. Default 1, 5, 10, 20.
    pub lag_periods: Vec<usize>,
    /// Rolling statistics of the price as `<stat>_<window>`, window in rows (`std_20`) or
    /// time (`mean_1m`); columns `rolling_<stat>_<window>`. Default `["std_20"]`.
    pub rolling: Vec<String>,
    /// Exponentially weighted mean and std of the price, `span_<n>` or `hl_<duration>`;
    /// columns `ewma_<spec>` and `ewstd_<spec>`. Default empty.
    pub ewm: Vec<String>,
    /// TA-Lib indicators (see the `talib` table). Default `sma_20`, `ema_20`.
    pub indicators: Vec<String>,
    /// VWAP over this many trades (`vwap_<n>`); 0 disables. Default 100.
    pub vwap_window: usize,
    /// Add `mid` and `spread`. Default true.
    pub microstructure: bool,
    /// Add `spread_bps`, `microprice` and `quote_imbalance` (after `mid`, `spread` when
    /// `microstructure` is on too). Default false: the reference job does not ask for them.
    pub quote_detail: bool,
    /// Add `ofi`, `trade_sign`, `vwap_session`, `realized_var_<iv>`, `realized_vol_<iv>`,
    /// `trade_intensity_<w>`. Default false.
    pub order_flow: bool,
    /// Interval of realized-variance returns. Default `5m`.
    pub realized_interval: String,
    /// Window of trade intensity. Default `1m`.
    pub intensity_window: String,
    /// Add `hour`, `minute`, `day_of_week` (Int8, session-local). Default true.
    pub time_features: bool,
    /// Add `seconds_since_open` (Float64) and `in_session` (Boolean). Default false.
    pub session_features: bool,
    /// Add `tod_sin`, `tod_cos`, `dow_sin`, `dow_cos`. Default false.
    pub cyclical_time: bool,
    /// Session open, local `HH:MM`. Default 09:30.
    pub session_open: String,
    /// Session close, local `HH:MM`. Default 16:00.
    pub session_close: String,
    /// Session zone (IANA). Default America/New_York.
    pub session_timezone: String,
    /// Zone (IANA) of the time features (`hour`, `minute`, `day_of_week`, cyclical) for
    /// every symbol. Default `None`: each symbol's zone from `symbol_time_zones`, else
    /// `session_timezone`.
    pub time_zone: Option<String>,
    /// Zone (IANA) of the time features per symbol (the exchange's: a run fills it from the
    /// vendor layouts, e.g. LOBSTER America/New_York, FX and crypto UTC). Default empty.
    pub symbol_time_zones: BTreeMap<String, String>,
    /// Start each symbol's state afresh at every day or session (see [`ResetEvery`]); the
    /// price basis (trade or mid) is kept. Default `None`: state runs on across days.
    pub reset: Option<ResetEvery>,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            price_column: "price".into(),
            returns: true,
            lag_columns: vec!["price".into()],
            lag_periods: vec![1, 5, 10, 20],
            rolling: vec!["std_20".into()],
            ewm: Vec::new(),
            indicators: vec!["sma_20".into(), "ema_20".into()],
            vwap_window: 100,
            microstructure: true,
            quote_detail: false,
            order_flow: false,
            realized_interval: "5m".into(),
            intensity_window: "1m".into(),
            time_features: true,
            session_features: false,
            cyclical_time: false,
            session_open: "09:30".into(),
            session_close: "16:00".into(),
            session_timezone: "America/New_York".into(),
            time_zone: None,
            symbol_time_zones: BTreeMap::new(),
            reset: None,
        }
    }
}

impl FeatureConfig {
    /// A configuration that computes nothing (a base to switch single groups on).
    pub fn none() -> Self {
        FeatureConfig {
            returns: false,
            lag_columns: Vec::new(),
            lag_periods: Vec::new(),
            rolling: Vec::new(),
            indicators: Vec::new(),
            vwap_window: 0,
            microstructure: false,
            quote_detail: false,
            order_flow: false,
            time_features: false,
            session_features: false,
            cyclical_time: false,
            ..FeatureConfig::default()
        }
    }
}

/// Parses a rolling spec `<stat>_<rows>` or `<stat>_<duration>`.
pub fn parse_rolling_spec(spec: &str) -> Result<(RollingStat, Window)> {
    let (stat, w) = spec.split_once('_').ok_or_else(|| {
        Error::config(
            "rolling",
            format!("`{spec}`: expected <stat>_<window>, e.g. std_20"),
        )
    })?;
    let stat = RollingStat::parse(stat)?;
    let window = match w.parse::<usize>() {
        Ok(n) if n >= 1 => Window::Rows(n),
        Ok(_) => {
            return Err(Error::config(
                "rolling",
                format!("`{spec}`: window must be ≥ 1"),
            ));
        }
        Err(_) => Window::Time(parse_duration(w)?),
    };
    Ok((stat, window))
}

fn parse_ewm_spec(spec: &str) -> Result<Decay> {
    let bad = || {
        Error::config(
            "ewm",
            format!("`{spec}`: expected span_<n> or hl_<duration>"),
        )
    };
    match spec.split_once('_') {
        Some(("span", n)) => match n.parse::<f64>() {
            Ok(s) if s >= 1.0 => Ok(Decay::Span(s)),
            _ => Err(bad()),
        },
        Some(("hl", d)) => Ok(Decay::HalfLife(parse_duration(d)?)),
        _ => Err(bad()),
    }
}

/// Carried state of one symbol.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SymbolState {
    simple: SimpleReturn,
    log: LogReturn,
    lags: Vec<Lags>,
    rolling: Vec<Rolling>,
    ewm: Vec<Ewm>,
    indicators: Vec<Indicator>,
    vwap: Option<Vwap>,
    ofi: Ofi,
    sign: TradeSign,
    last_mid: Option<f64>,
    session_vwap: SessionVwap,
    realized: RealizedVar,
    intensity: TradeIntensity,
    /// What the price series of this symbol is, decided by its first priced row.
    basis: Option<Basis>,
    /// The day or session of the last row, when state is reset per day or session.
    period: Option<i64>,
}

/// The price series of a symbol (see [`FeatureConfig::price_column`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Basis {
    /// Trade prices (executions of order-book messages).
    Trade,
    /// Mids of quotes: the symbol has quotes only.
    Mid,
}

/// What a checkpoint holds.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    key: u64,
    states: BTreeMap<String, SymbolState>,
}

/// Column positions of each feature group in the output.
#[derive(Debug, Clone, Default)]
struct Layout {
    names: Vec<String>,
    returns: usize,
    lags: usize,
    rolling: usize,
    ewm: usize,
    /// (first column, width) of each indicator.
    indicators: Vec<(usize, usize)>,
    vwap: usize,
    micro: usize,
    quote_detail: usize,
    flow: usize,
    time: usize,
    session: usize,
    cyclical: usize,
    /// The Arrow type of each column (Float64 unless `column_type` says otherwise).
    types: Vec<DataType>,
}

/// The Arrow type of output column `name`: the integral time features are Int8 and the
/// session flag Boolean (smaller Parquet and faster writes than Float64); all else Float64.
fn column_type(name: &str) -> DataType {
    match name {
        "hour" | "minute" | "day_of_week" => DataType::Int8,
        "in_session" => DataType::Boolean,
        _ => DataType::Float64,
    }
}

impl Layout {
    fn push(&mut self, names: impl IntoIterator<Item = String>) -> usize {
        let at = self.names.len();
        self.names.extend(names);
        at
    }
}

/// The fused feature stage (per symbol; see the module docs).
///
/// Inputs: `ts`, `symbol`, the price column (or `close`; on bars also `open`, `high`, `low`,
/// `volume`), `size`, `bid`, `ask`, `bid_size`, `ask_size` and any lagged column; a missing
/// input makes the features that need it null. A null input leaves the kernels that need it
/// untouched for that row, and its features are null. On tick data the indicators that need
/// high/low/close use the price for all three (high = low = close) and `size` as volume.
pub struct FeatureStage {
    cfg: FeatureConfig,
    layout: Layout,
    rolling_specs: Vec<(RollingStat, Window)>,
    template: SymbolState,
    indicator_width: usize,
    realized_ns: i64,
    /// The session clock (`session_timezone`) at index 0, then one per other time-feature
    /// zone.
    clocks: Vec<SessionClock>,
    /// The zone names of `clocks`.
    zone_names: Vec<String>,
    /// Index into `clocks` of each state slot's time-feature zone.
    slot_zone: Vec<usize>,
    /// Reading rows as trades, with the mid of quotes-only symbols (`price_column = price`).
    auto_price: bool,
    /// Every row's mid is its price (`price_column = mid`).
    mid_price: bool,
    /// Nanoseconds after local midnight the session opens (for `ResetEvery::Session`).
    open_ns: i64,
    /// `sin_cos` of the time-of-day angle, cached per second.
    tod: TodAngle,
    /// `sin_cos(2π·weekday/7)` for each weekday, computed once.
    weekday_angles: [(f64, f64); 7],
    slots: HashMap<String, usize>,
    states: Vec<SymbolState>,
    keys: Vec<String>,
    /// The keys and states at the last input start, for a replay.
    replay: Replay<(Vec<String>, Vec<SymbolState>)>,
}

impl FeatureStage {
    /// Validates `cfg` and builds the stage.
    pub fn new(cfg: FeatureConfig) -> Result<Self> {
        let clock =
            SessionClock::new(&cfg.session_open, &cfg.session_close, &cfg.session_timezone)?;
        let mut clocks = vec![clock];
        let mut zone_names = vec![cfg.session_timezone.clone()];
        let zones = cfg
            .time_zone
            .iter()
            .map(|z| ("preprocessing.time_zone".to_string(), z))
            .chain(
                cfg.symbol_time_zones
                    .iter()
                    .map(|(s, z)| (format!("preprocessing.symbol_time_zones.{s}"), z)),
            );
        for (key, z) in zones {
            if !zone_names.contains(z) {
                let c =
                    SessionClock::new(&cfg.session_open, &cfg.session_close, z).map_err(|_| {
                        Error::config(
                            key,
                            format!("`{z}` is not an IANA time zone (e.g. America/New_York, UTC)"),
                        )
                    })?;
                clocks.push(c);
                zone_names.push(z.clone());
            }
        }
        let open_ns = i64::from(
            pipeline_core::parse_hhmm(&cfg.session_open)
                .map_err(|m| Error::config("preprocessing.session_open", m))?,
        ) * 60_000_000_000;
        let specs: Vec<IndicatorSpec> = cfg
            .indicators
            .iter()
            .map(|s| IndicatorSpec::parse(s))
            .collect::<Result<_>>()?;
        let rolling_specs: Vec<(RollingStat, Window)> = cfg
            .rolling
            .iter()
            .map(|s| parse_rolling_spec(s))
            .collect::<Result<_>>()?;
        let decays: Vec<Decay> = cfg
            .ewm
            .iter()
            .map(|s| parse_ewm_spec(s))
            .collect::<Result<_>>()?;
        if cfg.lag_periods.contains(&0) {
            return Err(Error::config(
                "preprocessing.lag_periods",
                "lags must be ≥ 1",
            ));
        }
        let realized_ns = parse_duration(&cfg.realized_interval)?;
        let intensity_ns = parse_duration(&cfg.intensity_window)?;

        let mut l = Layout::default();
        l.returns = l.push(
            cfg.returns
                .then(|| ["return".to_string(), "log_return".to_string()])
                .into_iter()
                .flatten(),
        );
        l.lags = l.push(
            cfg.lag_columns
                .iter()
                .flat_map(|c| cfg.lag_periods.iter().map(move |k| format!("{c}_lag_{k}"))),
        );
        l.rolling = l.push(cfg.rolling.iter().map(|s| format!("rolling_{s}")));
        l.ewm = l.push(
            cfg.ewm
                .iter()
                .flat_map(|s| [format!("ewma_{s}"), format!("ewstd_{s}")]),
        );
        for spec in &specs {
            let cols = spec.columns();
            let width = cols.len();
            let at = l.push(cols);
            l.indicators.push((at, width));
        }
        l.vwap = l.push((cfg.vwap_window > 0).then(|| format!("vwap_{}", cfg.vwap_window)));
        l.micro = l.push(
            ["mid", "spread"]
                .into_iter()
                .filter(|_| cfg.microstructure)
                .map(String::from),
        );
        l.quote_detail = l.push(
            ["spread_bps", "microprice", "quote_imbalance"]
                .into_iter()
                .filter(|_| cfg.quote_detail)
                .map(String::from),
        );
        let iv = &cfg.realized_interval;
        let w = &cfg.intensity_window;
        l.flow = l.push(
            [
                "ofi".to_string(),
                "trade_sign".into(),
                "vwap_session".into(),
                format!("realized_var_{iv}"),
                format!("realized_vol_{iv}"),
                format!("trade_intensity_{w}"),
            ]
            .into_iter()
            .filter(|_| cfg.order_flow),
        );
        l.time = l.push(
            ["hour", "minute", "day_of_week"]
                .into_iter()
                .filter(|_| cfg.time_features)
                .map(String::from),
        );
        l.session = l.push(
            ["seconds_since_open", "in_session"]
                .into_iter()
                .filter(|_| cfg.session_features)
                .map(String::from),
        );
        l.cyclical = l.push(
            ["tod_sin", "tod_cos", "dow_sin", "dow_cos"]
                .into_iter()
                .filter(|_| cfg.cyclical_time)
                .map(String::from),
        );
        l.types = l.names.iter().map(|n| column_type(n)).collect();
        let mut seen = std::collections::HashSet::new();
        for n in &l.names {
            if !seen.insert(n) {
                return Err(Error::config(
                    "preprocessing",
                    format!("feature `{n}` is asked for twice"),
                ));
            }
        }
        let max_lag = cfg.lag_periods.iter().copied().max().unwrap_or(0);
        let template = SymbolState {
            simple: SimpleReturn::default(),
            log: LogReturn::default(),
            lags: cfg.lag_columns.iter().map(|_| Lags::new(max_lag)).collect(),
            rolling: rolling_specs
                .iter()
                .map(|&(s, w)| Rolling::new(s, w))
                .collect(),
            ewm: decays.iter().map(|&d| Ewm::new(d)).collect(),
            indicators: specs.iter().map(|s| s.build()).collect(),
            vwap: (cfg.vwap_window > 0).then(|| Vwap::new(cfg.vwap_window)),
            ofi: Ofi::default(),
            sign: TradeSign::default(),
            last_mid: None,
            session_vwap: SessionVwap::default(),
            realized: RealizedVar::default(),
            intensity: TradeIntensity::new(intensity_ns),
            basis: None,
            period: None,
        };
        let indicator_width = specs.iter().map(|s| s.columns().len()).max().unwrap_or(0);
        let (auto_price, mid_price) = (cfg.price_column == "price", cfg.price_column == "mid");
        Ok(FeatureStage {
            cfg,
            layout: l,
            rolling_specs,
            template,
            indicator_width,
            realized_ns,
            auto_price,
            mid_price,
            clocks,
            zone_names,
            slot_zone: Vec::new(),
            open_ns,
            tod: TodAngle::default(),
            weekday_angles: std::array::from_fn(|d| (TAU * d as f64 / 7.0).sin_cos()),
            slots: HashMap::new(),
            states: Vec::new(),
            keys: Vec::new(),
            replay: Replay::default(),
        })
    }

    /// Replaces every symbol's state.
    fn set_states(&mut self, states: impl IntoIterator<Item = (String, SymbolState)>) {
        self.slots.clear();
        self.keys.clear();
        self.states.clear();
        self.slot_zone.clear();
        for (k, s) in states {
            self.slots.insert(k.clone(), self.states.len());
            self.slot_zone.push(self.zone_index(&k));
            self.keys.push(k);
            self.states.push(s);
        }
    }

    /// The names of the columns this stage adds, in order.
    pub fn output_columns(&self) -> &[String] {
        &self.layout.names
    }

    /// The columns this stage adds, as the fields it appends (nullable; the types
    /// [`FeatureStage::process`] gives them), in order.
    pub fn output_fields(&self) -> Vec<Field> {
        self.layout
            .names
            .iter()
            .zip(&self.layout.types)
            .map(|(name, dt)| Field::new(name, dt.clone(), true))
            .collect()
    }

    fn slot(&mut self, key: &str) -> usize {
        if let Some(&s) = self.slots.get(key) {
            return s;
        }
        let s = self.states.len();
        self.states.push(self.template.clone());
        self.keys.push(key.to_string());
        self.slots.insert(key.to_string(), s);
        self.slot_zone.push(self.zone_index(key));
        s
    }

    /// The index into `clocks` of `symbol`'s time-feature zone.
    fn zone_index(&self, symbol: &str) -> usize {
        let zone = self
            .cfg
            .time_zone
            .as_ref()
            .or_else(|| self.cfg.symbol_time_zones.get(symbol));
        zone.and_then(|z| self.zone_names.iter().position(|n| n == z))
            .unwrap_or(0)
    }

    fn compute(&mut self, chunk: &Chunk) -> Result<Vec<Vec<f64>>> {
        let n = chunk.num_rows();
        let slots = {
            let mut reg = |k: &str| self.slot(k);
            key_slots(chunk, "symbol", &mut reg)?
        };
        let events = Events::of(chunk)?;
        let price_name = if self.mid_price {
            "price"
        } else {
            self.cfg.price_column.as_str()
        };
        let mut price = f64_col(chunk, price_name)?;
        // Bar data: no price (absent, or all null in a dataset that also holds ticks), and a
        // `close`.
        let bars = !price.present_non_null(n)
            && chunk
                .column_by_name("close")
                .is_some_and(|c| c.null_count() < c.len());
        if bars {
            price = f64_col(chunk, "close")?;
        }
        let (open, high, low, volume) = if bars {
            (
                f64_col(chunk, "open")?,
                f64_col(chunk, "high")?,
                f64_col(chunk, "low")?,
                f64_col(chunk, "volume")?,
            )
        } else {
            (
                F64Col::absent(),
                F64Col::absent(),
                F64Col::absent(),
                f64_col(chunk, "size")?,
            )
        };
        let ts = ts_col(chunk, "ts")?;
        let [bid, ask, bid_size, ask_size] =
            ["bid", "ask", "bid_size", "ask_size"].map(|c| f64_col(chunk, c));
        let (bid, ask, bid_size, ask_size) = (bid?, ask?, bid_size?, ask_size?);
        // The price column's own lags follow the price series (trades, or mids); other
        // columns are lagged row by row.
        let lag_of_price: Vec<bool> = self
            .cfg
            .lag_columns
            .iter()
            .map(|c| c == &self.cfg.price_column)
            .collect();
        let lag_cols: Vec<F64Col> = self
            .cfg
            .lag_columns
            .iter()
            .zip(&lag_of_price)
            .map(|(c, &own)| {
                if own {
                    Ok(F64Col::absent())
                } else {
                    f64_col(chunk, c)
                }
            })
            .collect::<Result<_>>()?;

        let l = &self.layout;
        let cfg = &self.cfg;
        // Every cell is written exactly once below (NaN = null), so the columns start as
        // zeroed allocations rather than being filled with NaN first: that fill was a whole
        // extra pass over the output. Each column is its own zeroed allocation (`vec![v; k]`
        // would clone `v`, copying n zeros into k − 1 of them).
        let mut out: Vec<Vec<f64>> = (0..l.names.len()).map(|_| vec![0.0; n]).collect();
        let mut scratch = vec![None; self.indicator_width];
        let nan = f64::NAN;
        let time_rows = !self
            .rolling_specs
            .iter()
            .all(|s| matches!(s.1, Window::Rows(_)));
        let needs_local =
            cfg.order_flow || cfg.time_features || cfg.session_features || cfg.cyclical_time;
        for i in 0..n {
            let slot = slots[i];
            let zone = self.slot_zone[slot];
            let t = ts.get(i);
            let quote = match (bid.get(i), ask.get(i)) {
                (Some(b), Some(a)) => Some((b, a)),
                _ => None,
            };
            let message = events.message(i);
            // The trade price of this row: none on order-book messages that are not
            // executions.
            let trade_px = if bars || events.trade(i) {
                price.get(i)
            } else {
                None
            };
            // Local times: the symbol's zone (time features, day resets) and the session
            // zone (session features, order flow), computed once when they are the same.
            let local = if needs_local || cfg.reset.is_some() {
                t.map(|t| {
                    let sym = self.clocks[zone].local(t);
                    let sess = if zone == 0 {
                        sym
                    } else {
                        self.clocks[0].local(t)
                    };
                    (t, sym, sess)
                })
            } else {
                None
            };
            let st = &mut self.states[slot];
            if let (Some(every), Some((_, sym, sess))) = (cfg.reset, &local) {
                let period = match every {
                    ResetEvery::Day => sym.day,
                    ResetEvery::Session => sess.day - i64::from(sess.ns_of_day < self.open_ns),
                };
                if st.period.is_some_and(|p| p != period) {
                    let basis = st.basis;
                    *st = self.template.clone();
                    st.basis = basis;
                }
                st.period = Some(period);
            }
            if st.basis.is_none() {
                if trade_px.is_some() {
                    st.basis = Some(Basis::Trade);
                } else if !message && quote.is_some() && price.get(i).is_none() {
                    st.basis = Some(Basis::Mid);
                }
            }
            // The series price `p`, and whether it is a trade (with a size for VWAP).
            let (p, traded) = if self.mid_price {
                (quote.map(|(b, a)| mid(b, a)), false)
            } else if self.auto_price && st.basis == Some(Basis::Mid) && !bars {
                (quote.map(|(b, a)| mid(b, a)), false)
            } else {
                (trade_px, trade_px.is_some())
            };
            let size = if traded { volume.get(i) } else { None };
            // Rows of the price series: every row but non-execution messages on trades (a
            // trade with a missing price counts, as a gap), every non-message row on mids.
            let member = if self.mid_price || (self.auto_price && st.basis == Some(Basis::Mid)) {
                !message
            } else {
                bars || events.trade(i)
            };
            if cfg.returns {
                let (r, lr) = match p {
                    Some(p) => (
                        st.simple.update(p).unwrap_or(nan),
                        st.log.update(p).unwrap_or(nan),
                    ),
                    None => (nan, nan),
                };
                out[l.returns][i] = r;
                out[l.returns + 1][i] = lr;
            }
            let mut c = l.lags;
            for ((lags, col), &own) in st.lags.iter_mut().zip(&lag_cols).zip(&lag_of_price) {
                if own {
                    for &k in &cfg.lag_periods {
                        out[c][i] = if member {
                            lags.get(k).unwrap_or(nan)
                        } else {
                            nan
                        };
                        c += 1;
                    }
                    if member {
                        lags.push(p);
                    }
                } else {
                    for &k in &cfg.lag_periods {
                        out[c][i] = lags.get(k).unwrap_or(nan);
                        c += 1;
                    }
                    lags.push(col.get(i));
                }
            }
            for (j, r) in st.rolling.iter_mut().enumerate() {
                let pos = match (time_rows, t) {
                    (false, _) => Some(0),
                    (true, Some(t)) => Some(t),
                    (true, None) => match self.rolling_specs[j].1 {
                        Window::Time(_) => None,
                        Window::Rows(_) => Some(0),
                    },
                };
                out[l.rolling + j][i] = match (pos, p) {
                    (Some(pos), Some(p)) => r.update(pos, p).unwrap_or(nan),
                    _ => nan,
                };
            }
            for (j, e) in st.ewm.iter_mut().enumerate() {
                let (m, s) = match p {
                    Some(p) if t.is_some() || !e.needs_time() => e.update(t.unwrap_or(0), p),
                    _ => (nan, nan),
                };
                out[l.ewm + 2 * j][i] = m;
                out[l.ewm + 2 * j + 1][i] = s;
            }
            if !st.indicators.is_empty() {
                let bar = p.map(|p| {
                    if bars {
                        Ohlcv {
                            open: open.get(i).unwrap_or(p),
                            high: high.get(i).unwrap_or(p),
                            low: low.get(i).unwrap_or(p),
                            close: p,
                            volume: volume.get(i).unwrap_or(0.0),
                        }
                    } else {
                        Ohlcv {
                            open: p,
                            high: p,
                            low: p,
                            close: p,
                            volume: size.unwrap_or(0.0),
                        }
                    }
                });
                for (ind, &(at, width)) in st.indicators.iter_mut().zip(&l.indicators) {
                    match &bar {
                        Some(b) => ind.update(b, &mut scratch[..width]),
                        None => scratch[..width].fill(None),
                    }
                    for (j, v) in scratch[..width].iter().enumerate() {
                        out[at + j][i] = v.unwrap_or(nan);
                    }
                }
            }
            if let Some(v) = &mut st.vwap {
                let size = if bars { volume.get(i) } else { size };
                out[l.vwap][i] = match (p, size) {
                    (Some(p), Some(size)) => v.update(p, size).unwrap_or(nan),
                    _ => nan,
                };
            }
            if let Some((b, a)) = quote {
                st.last_mid = Some(mid(b, a));
            }
            if cfg.microstructure {
                let c = l.micro;
                let (m, sp) = match quote {
                    Some((b, a)) => (mid(b, a), a - b),
                    None => (nan, nan),
                };
                out[c][i] = m;
                out[c + 1][i] = sp;
            }
            if cfg.quote_detail {
                let c = l.quote_detail;
                let (mut bps, mut micro, mut imb) = (nan, nan, nan);
                if let Some((b, a)) = quote {
                    bps = (a - b) / mid(b, a) * 1e4;
                    if let (Some(bs), Some(as_)) = (bid_size.get(i), ask_size.get(i))
                        && bs + as_ != 0.0
                    {
                        micro = microprice(b, a, bs, as_);
                        imb = quote_imbalance(bs, as_);
                    }
                }
                out[c][i] = bps;
                out[c + 1][i] = micro;
                out[c + 2][i] = imb;
            }
            if cfg.order_flow {
                let f = l.flow;
                let mut v = [nan; 6];
                if let (Some((b, a)), Some(bs), Some(as_)) =
                    (quote, bid_size.get(i), ask_size.get(i))
                {
                    v[0] = st.ofi.update(b, bs, a, as_).unwrap_or(nan);
                }
                if let Some(p) = p {
                    if traded {
                        v[1] = st.sign.update(p, st.last_mid).unwrap_or(nan);
                    }
                    if let Some((t, _, lt)) = local {
                        if let Some(size) = size {
                            v[2] = st.session_vwap.update(lt.day, p, size).unwrap_or(nan);
                        }
                        let slot = lt.ns_of_day.div_euclid(self.realized_ns);
                        let rv = st.realized.update(lt.day, slot, p);
                        v[3] = rv;
                        v[4] = rv.sqrt();
                        if traded {
                            v[5] = st.intensity.update(t);
                        }
                    }
                }
                for (k, x) in v.into_iter().enumerate() {
                    out[f + k][i] = x;
                }
            }
            // Integral and boolean columns are computed as f64 here (NaN = null) and
            // narrowed to their Arrow type in `to_array`.
            if cfg.time_features {
                let c = l.time;
                let mut v = [nan; 3];
                if let Some((_, lt, _)) = local {
                    v[0] = f64::from(lt.hour());
                    v[1] = f64::from(lt.minute());
                    v[2] = f64::from(lt.weekday);
                }
                for (k, x) in v.into_iter().enumerate() {
                    out[c + k][i] = x;
                }
            }
            if cfg.session_features {
                let c = l.session;
                let mut v = [nan; 2];
                if let Some((_, _, lt)) = local {
                    v[0] = self.clocks[0].since_open(&lt);
                    v[1] = if self.clocks[0].in_session(&lt) {
                        1.0
                    } else {
                        0.0
                    };
                }
                out[c][i] = v[0];
                out[c + 1][i] = v[1];
            }
            if cfg.cyclical_time {
                let c = l.cyclical;
                let mut v = [nan; 4];
                if let Some((_, lt, _)) = local {
                    (v[0], v[1]) = self.tod.angle(lt.ns_of_day);
                    (v[2], v[3]) = self.weekday_angles[lt.weekday as usize % 7];
                }
                for (k, x) in v.into_iter().enumerate() {
                    out[c + k][i] = x;
                }
            }
        }
        Ok(out)
    }
}

/// `sin_cos(2π·t/day)` for nanoseconds of day `t`: `sin_cos` of the whole second, cached
/// (ticks arrive many per second), rotated by the sub-second rest `δ < 7.3e-5 rad` with
/// Taylor terms whose remainder (δ⁵/120 < 2e-23) is far below an ulp. The libm call
/// was 10% of the default feature set's time in a profile of `features_bench`.
#[derive(Debug, Clone, Copy)]
struct TodAngle {
    second: i64,
    sin: f64,
    cos: f64,
}

impl Default for TodAngle {
    fn default() -> Self {
        TodAngle {
            second: 0,
            sin: 0.0,
            cos: 1.0,
        }
    }
}

impl TodAngle {
    const NS: i64 = 1_000_000_000;

    #[inline]
    fn angle(&mut self, ns_of_day: i64) -> (f64, f64) {
        let second = ns_of_day.div_euclid(Self::NS);
        if second != self.second {
            let (s, c) = (TAU * second as f64 / 86_400.0).sin_cos();
            *self = TodAngle {
                second,
                sin: s,
                cos: c,
            };
        }
        let d = (ns_of_day - second * Self::NS) as f64 * (TAU / 86_400e9);
        let d2 = d * d;
        let sd = d - d * d2 / 6.0;
        let cd = 1.0 - d2 / 2.0 + d2 * d2 / 24.0;
        (self.sin * cd + self.cos * sd, self.cos * cd - self.sin * sd)
    }
}

/// Wraps computed values as a nullable column of type `dt` (NaN marks null): Float64, Int8
/// (values are small integers: hour, minute, weekday) or Boolean (non-zero is true).
pub(crate) fn to_array(values: Vec<f64>, dt: &DataType) -> ArrayRef {
    let n = values.len();
    let valid = BooleanBuffer::collect_bool(n, |i| !values[i].is_nan());
    let nulls = (valid.count_set_bits() < n).then(|| NullBuffer::new(valid));
    match dt {
        DataType::Int8 => {
            let v: Vec<i8> = values
                .iter()
                .map(|&x| if x.is_nan() { 0 } else { x as i8 })
                .collect();
            Arc::new(Int8Array::new(ScalarBuffer::from(v), nulls))
        }
        DataType::Boolean => {
            let v = BooleanBuffer::collect_bool(n, |i| values[i] != 0.0 && !values[i].is_nan());
            Arc::new(BooleanArray::new(v, nulls))
        }
        _ => Arc::new(Float64Array::new(ScalarBuffer::from(values), nulls)),
    }
}

impl Stage for FeatureStage {
    fn name(&self) -> &str {
        "features"
    }

    fn order(&self) -> StageOrder {
        StageOrder::PerKey {
            key: "symbol".into(),
        }
    }

    fn key(&self) -> StageKey {
        StageKey::of("features", &self.cfg)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let cols = self.compute(&chunk)?;
        let extra = self
            .output_fields()
            .into_iter()
            .zip(cols)
            .map(|(f, v)| {
                let a = to_array(v, f.data_type());
                (f, a)
            })
            .collect();
        out.emit(chunk.with_columns(extra)?);
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let states = self
            .keys
            .iter()
            .cloned()
            .zip(self.states.iter().cloned())
            .collect();
        let cp = Checkpoint {
            key: self.key().0,
            states,
        };
        crate::state::save("features", &cp)
    }

    /// A clone kept in memory (see [`Replay`]): encoding every rolling window as JSON at
    /// each input start cost 5% of a run over many small files.
    fn replay_point(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(Some(
            self.replay.save((self.keys.clone(), self.states.clone())),
        ))
    }

    fn restore(&mut self, state: &[u8]) -> Result<()> {
        if Replay::<()>::is_token(state) {
            let (keys, states) = self.replay.get(state)?.clone();
            self.set_states(keys.into_iter().zip(states));
            return Ok(());
        }
        let cp: Checkpoint = crate::state::load("features", state)?;
        if cp.key != self.key().0 {
            return Err(Error::Usage(
                "the features checkpoint was written with a different configuration".into(),
            ));
        }
        self.set_states(cp.states);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::testutil::SplitMix;

    #[test]
    fn stage_keys_follow_the_configuration() {
        let key = |c: FeatureConfig| FeatureStage::new(c).unwrap().key();
        let d = FeatureConfig::default();
        assert_eq!(key(d.clone()), key(d.clone()));
        let other = FeatureConfig {
            indicators: vec!["sma_21".into()],
            ..d.clone()
        };
        assert_ne!(key(d.clone()), key(other));
        assert_ne!(key(d), key(FeatureConfig::none()));
    }

    #[test]
    fn bad_specs_and_duplicate_columns_are_config_errors() {
        for cfg in [
            FeatureConfig {
                rolling: vec!["avg_20".into()],
                ..FeatureConfig::none()
            },
            FeatureConfig {
                ewm: vec!["span_x".into()],
                ..FeatureConfig::none()
            },
            FeatureConfig {
                indicators: vec!["sma_20".into(), "SMA_20".into()],
                ..FeatureConfig::none()
            },
            FeatureConfig {
                lag_columns: vec!["price".into()],
                lag_periods: vec![0],
                ..FeatureConfig::none()
            },
            FeatureConfig {
                session_timezone: "Nowhere/Land".into(),
                ..FeatureConfig::none()
            },
        ] {
            assert!(FeatureStage::new(cfg).is_err());
        }
        assert_eq!(
            parse_rolling_spec("median_5m").unwrap(),
            (RollingStat::Median, Window::Time(300_000_000_000))
        );
    }

    #[test]
    fn cached_time_of_day_angle_matches_sin_cos() {
        let mut rng = SplitMix::new(17);
        let mut a = TodAngle::default();
        for _ in 0..100_000 {
            let t = (rng.next_f64() * 86_400e9) as i64;
            let (s, c) = a.angle(t);
            let (ws, wc) = (TAU * t as f64 / 86_400e9).sin_cos();
            assert!((s - ws).abs() < 2e-15 && (c - wc).abs() < 2e-15, "{t}");
        }
    }
}
