//! Run configuration: TOML sections `[pipeline]`, `[input]`, `[output]`, `[preprocessing]`,
//! `[validation]`, with presets and validation that names the offending key.
//!
//! Field names follow the seed design's `DataPipelineConfig`, `PreprocessingConfig` and
//! `ValidationConfig` so users of the Python prototype find what they know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bytesize::ByteSize;
use crate::error::{Error, Result};

/// The whole configuration of a run.
///
/// ```
/// use pipeline_core::Config;
/// let cfg = Config::from_toml_str("[pipeline]\nmax_workers = 4\nmemory_limit = \"1GiB\"\n")?;
/// assert_eq!(cfg.pipeline.max_workers, 4);
/// let err = Config::from_toml_str("[pipeline]\nchunk_sise = 10\n").unwrap_err();
/// assert!(err.to_string().contains("pipeline.chunk_sise"));
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Execution: chunking, workers, memory.
    pub pipeline: PipelineConfig,
    /// How inputs are read.
    pub input: InputConfig,
    /// How outputs are written.
    pub output: OutputConfig,
    /// Cleaning and features.
    pub preprocessing: PreprocessingConfig,
    /// Validation thresholds.
    pub validation: ValidationConfig,
}

/// The smallest `[pipeline] memory_limit` accepted. Below it a run cannot hold its limit: the
/// process itself (code, threads, allocator arenas, compression contexts) and the smallest
/// useful chunks, blocks and writer buffers take most of it. Measured with `tickpipe run`
/// (release, 2 workers) on 3M-row gen-data files in time order, sorted by symbol and
/// shuffled, and on a file with one 200 MB line: at 128 MiB the peaks were 102, 122, 94 and
/// 44 MiB with the allocator tuned to the limit (see `pipeline-cli`'s `alloc`), while a
/// 64 MiB limit peaked at 96–117 MiB and a 16 MiB one at 56 MiB on the smallest input.
pub const MIN_MEMORY_LIMIT: ByteSize = ByteSize(128 << 20);

/// `[pipeline]`: execution settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Rows per chunk; 0 derives it from `memory_limit` and the row width. Default 0.
    pub chunk_size: usize,
    /// Worker threads; 0 means one per core. Default 0.
    pub max_workers: usize,
    /// Memory budget for the whole run (chunks in flight, per-symbol state, writer buffers).
    /// Default 256MiB; at least 128MiB ([`MIN_MEMORY_LIMIT`]), below which a run cannot
    /// hold its limit and the value is refused.
    pub memory_limit: ByteSize,
    /// Compress outputs (see `[output] compression`). Default true.
    pub enable_compression: bool,
    /// Use more than one worker. Default true.
    pub enable_parallel_processing: bool,
    /// Size limit of the stage-output cache. Default 1GiB.
    pub cache_max_size: ByteSize,
    /// Chunks buffered between two stages; 0 derives it from `memory_limit`. Default 0.
    pub channel_capacity: usize,
    /// Make the first malformed row a fatal error instead of quarantining it. Default false.
    pub strict: bool,
    /// Attempts per file after an error or panic in a stage. Default 2. Only errors that a
    /// retry can cure (I/O errors, stage panics) are retried, and never for stdin.
    pub retries: u32,
    /// Largest share of the rows read that a run may quarantine and still succeed; above it
    /// the run reports [`crate::Error::TooManyQuarantined`] (see
    /// [`crate::Ledger::check_quarantine_limit`]) and exits non-zero. 1 turns the check off.
    /// Default 0.5: a run that loses most of its input (a shuffled file without `--sort`, a
    /// wrong layout or time zone) must not look like a success, while ordinary vendor data
    /// quarantines a few percent at most (gen-data's anomaly mix: about 0.3 %).
    pub max_quarantine_fraction: f64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            chunk_size: 0,
            max_workers: 0,
            memory_limit: ByteSize::mib(256),
            enable_compression: true,
            enable_parallel_processing: true,
            cache_max_size: ByteSize::gib(1),
            channel_capacity: 0,
            strict: false,
            retries: 2,
            max_quarantine_fraction: 0.5,
        }
    }
}

/// `[input]`: how files are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Zone of naive timestamps (IANA name, e.g. `America/New_York`). Default `UTC`.
    pub timezone: String,
    /// Date for time-of-day-only files (`YYYY-MM-DD`); otherwise taken from the file name.
    pub date: Option<String>,
    /// Field delimiter (one character); sniffed when unset.
    pub delimiter: Option<String>,
    /// Whether the first line is a header; sniffed when unset.
    pub has_header: Option<bool>,
    /// Text encoding (`utf-8`, `utf-16le`, `windows-1252`, …); detected when unset.
    pub encoding: Option<String>,
    /// Unit of integer epoch timestamps (`s`, `ms`, `us`, `ns`); from magnitude when unset.
    pub epoch_unit: Option<String>,
    /// Multiply prices by this (e.g. 0.0001 for LOBSTER's dollars × 10,000). Default 1.
    pub price_scale: f64,
    /// Symbol for files without a symbol column; default: from the file name.
    pub symbol: Option<String>,
    /// Explicit column mapping, canonical name → input header (also `date`, `time`).
    pub columns: BTreeMap<String, String>,
    /// Pattern of files taken from a directory input. Default `*`.
    pub file_pattern: String,
    /// Vendor layout: `auto` (detect from file name and content), `generic`, `lobster`,
    /// `histdata`, `lean`. Default `auto`.
    pub layout: String,
    /// Column names for files without a header (overrides the layout's names).
    pub names: Vec<String>,
    /// Input files are not in time order: sort each file by time (ties keep file order) in
    /// bounded memory, spilling to disk, before processing. Default false.
    pub sort: bool,
    /// Longest line (record) read; a longer one is quarantined as `line_too_long` without
    /// ever being held in memory whole. `0B` derives it from `[pipeline] memory_limit`
    /// (1/64 of it: 4 MiB at the default 256 MiB). Default `0B`.
    pub max_line_bytes: ByteSize,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            timezone: "UTC".into(),
            date: None,
            delimiter: None,
            has_header: None,
            encoding: None,
            epoch_unit: None,
            price_scale: 1.0,
            symbol: None,
            columns: BTreeMap::new(),
            file_pattern: "*".into(),
            layout: "auto".into(),
            names: Vec::new(),
            sort: false,
            max_line_bytes: ByteSize(0),
        }
    }
}

/// Output file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC file.
    Ipc,
    /// CSV with a header.
    Csv,
}

/// `[output]`: how results are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// File format. Default parquet.
    pub format: OutputFormat,
    /// Parquet/IPC codec: `zstd`, `snappy` or `none`. Default zstd.
    pub compression: String,
    /// zstd level (1–22). Default 1: as small as level 3 on tick data (derived float columns
    /// barely compress at any level) and 6% faster end to end (measured on a 5M-row run).
    pub compression_level: i32,
    /// Flush a Parquet row group when it holds this many bytes. Default 32MiB.
    pub row_group_bytes: ByteSize,
    /// Hive partition keys, any of `symbol`, `date`, `month`. Default `["symbol"]`.
    pub partition_by: Vec<String>,
    /// Keep the `_line` provenance column in the output. Default false.
    pub keep_line_column: bool,
    /// Most partition writers open at once; older ones are closed first. Default 64.
    pub max_open_files: usize,
    /// Rows a partition gathers before its file is opened, so that no file holds fewer
    /// unless it is the partition's last (sparse symbols make one file each, not one per
    /// eviction). Held rows share the writers' memory budget; when it runs short the
    /// partition holding the most is written early. Default 10000; 0 turns it off.
    pub min_rows_per_file: usize,
    /// Unit of timestamp columns in the files: `ns`, `us` or `ms`. Default `ns` (no loss).
    /// Spark reads only `us`/`ms` Parquet timestamps as timestamps (`ns` needs its
    /// `spark.sql.legacy.parquet.nanosAsLong` and arrives as a number); `us` truncates the
    /// sub-microsecond digits.
    pub timestamp_unit: String,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            format: OutputFormat::Parquet,
            compression: "zstd".into(),
            compression_level: 1,
            row_group_bytes: ByteSize::mib(32),
            partition_by: vec!["symbol".into()],
            keep_line_column: false,
            max_open_files: 64,
            min_rows_per_file: 10_000,
            timestamp_unit: "ns".into(),
        }
    }
}

/// `[preprocessing]`: cleaning and feature engineering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreprocessingConfig {
    /// Rows of a symbol up to this many milliseconds older than its newest row are put back in
    /// time order (a reorder buffer); older rows are quarantined as `late`. 0 turns the
    /// buffer off. Default 2000.
    pub allowed_lateness_ms: u64,
    /// Largest share of a symbol's rows that may arrive late (behind the watermark) before
    /// the run stops with a message to sort the input (`--sort`): the share is checked once
    /// the symbol has 1,000 rows, so a shuffled or symbol-sorted file stops early instead of
    /// quarantining nearly everything. 1 turns the check off. Default 0.1.
    pub max_late_fraction: f64,
    /// Remove exact duplicate rows (neighbours in time order). Default true.
    pub remove_duplicates: bool,
    /// Columns that define a duplicate; empty means all columns. Default empty.
    pub dedup_key: Vec<String>,
    /// Missing values: `none`, `drop`, `ffill`, `interpolate` or `constant`. Default `drop`.
    pub handle_missing_values: String,
    /// Value used by `handle_missing_values = "constant"`. Default 0.
    pub fill_value: f64,
    /// Longest run of rows forward-fill/interpolation bridges. Default 10.
    pub max_gap: usize,
    /// Drop rows with non-positive prices or sizes and crossed quotes. Default true.
    pub drop_invalid: bool,
    /// Barndorff-Nielsen et al. (2009) rules to apply, by name (`P1`…`P3`, `T1`…`T4`,
    /// `Q1`…`Q4`). Default empty.
    pub bnhls_rules: Vec<String>,
    /// Run the outlier filter. Default true.
    pub outlier_detection: bool,
    /// Outlier method: `zscore`, `mad`, `iqr` or `brownlees_gallo`. Default `zscore`.
    pub outlier_method: String,
    /// Threshold (z-score / MAD multiples / IQR multiples). Default 10.
    pub outlier_threshold: f64,
    /// Rolling window of the outlier filter, in rows. Default 100.
    pub outlier_window: usize,
    /// `drop`, `flag` or `winsorize`. Default `drop`.
    pub outlier_action: String,
    /// Add returns, rolling statistics, exponentially weighted statistics and indicators
    /// (switches `rolling_window`, `rolling_features`, `ewm_features`, `indicators` and
    /// `vwap_window` on and off together). Default true.
    pub create_technical_indicators: bool,
    /// Indicators to compute, e.g. `sma_20`, `ema_20`, `rsi_14`. Default sma_20, ema_20.
    pub indicators: Vec<String>,
    /// Rolling window (rows) for rolling mean/std. Default 20.
    pub rolling_window: usize,
    /// VWAP window in trades. Default 100.
    pub vwap_window: usize,
    /// More rolling statistics of the price, as `<stat>_<window>` with stat `mean`, `std`,
    /// `sum`, `min`, `max` or `median` and the window in rows (`mean_50`) or time (`mean_1m`,
    /// `max_30s`); columns `rolling_<spec>`. Default empty (only `rolling_window`'s std).
    pub rolling_features: Vec<String>,
    /// Exponentially weighted mean and std of the price, as `span_<n>` (α = 2/(n+1)) or
    /// `hl_<duration>` (half-life in time, e.g. `hl_30s`); columns `ewma_<spec>` and
    /// `ewstd_<spec>`. Default empty.
    pub ewm_features: Vec<String>,
    /// Add lag features. Default true.
    pub create_lag_features: bool,
    /// Lags to add. Default 1, 5, 10, 20.
    pub lag_periods: Vec<usize>,
    /// Input columns to lag (numeric, e.g. `price`, `size`, `bid`, `ask`); columns
    /// `<col>_lag_<k>`. Default `["price"]`.
    pub lag_columns: Vec<String>,
    /// Add time-of-day features (`hour`, `minute`, `day_of_week`). Default true.
    pub create_time_features: bool,
    /// Add `seconds_since_open` and `in_session` (session hours from `session_*`). Default
    /// false.
    pub create_session_features: bool,
    /// Add cyclical time encodings `tod_sin`, `tod_cos`, `dow_sin`, `dow_cos`. Default false.
    pub create_cyclical_time_features: bool,
    /// Add mid and spread. Default true.
    pub create_microstructure_features: bool,
    /// Add `spread_bps`, `microprice` and `quote_imbalance`. Default false.
    pub create_quote_detail_features: bool,
    /// Add order-flow features: `ofi` (order-flow imbalance), `trade_sign` (Lee–Ready),
    /// `vwap_session`, `realized_var_<realized_interval>`, `realized_vol_<realized_interval>`
    /// and `trade_intensity_<intensity_window>`. Default false.
    pub create_order_flow_features: bool,
    /// Sampling interval of the realized-variance returns (`5m`, `30s`, …). Default `5m`.
    pub realized_interval: String,
    /// Window of the trade-intensity count (`1m`, `10s`, …). Default `1m`.
    pub intensity_window: String,
    /// Session open, local time `HH:MM`. Default 09:30.
    pub session_open: String,
    /// Session close, local time `HH:MM`. Default 16:00.
    pub session_close: String,
    /// Zone of the session hours. Default America/New_York.
    pub session_timezone: String,
    /// Scale features with parameters fitted in a first pass. Default false.
    pub normalize_features: bool,
    /// Scaling used by `normalize_features`: `zscore`, `minmax` or `robust` (median and
    /// inter-quartile range). Default `zscore`.
    pub normalize_method: String,
    /// Columns to scale; empty means every Float64 column the feature stage adds. Default
    /// empty.
    pub normalize_columns: Vec<String>,
    /// Path of a scaler-params JSON file written by a previous run, re-applied instead of
    /// fitting; empty means fit on this run. Default empty.
    pub normalize_params: String,
    /// Use more than one worker for preprocessing. Default true.
    pub enable_parallel_processing: bool,
}

impl Default for PreprocessingConfig {
    fn default() -> Self {
        PreprocessingConfig {
            allowed_lateness_ms: 2000,
            max_late_fraction: 0.1,
            remove_duplicates: true,
            dedup_key: Vec::new(),
            handle_missing_values: "drop".into(),
            fill_value: 0.0,
            max_gap: 10,
            drop_invalid: true,
            bnhls_rules: Vec::new(),
            outlier_detection: true,
            outlier_method: "zscore".into(),
            outlier_threshold: 10.0,
            outlier_window: 100,
            outlier_action: "drop".into(),
            create_technical_indicators: true,
            indicators: vec!["sma_20".into(), "ema_20".into()],
            rolling_window: 20,
            vwap_window: 100,
            rolling_features: Vec::new(),
            ewm_features: Vec::new(),
            create_lag_features: true,
            lag_periods: vec![1, 5, 10, 20],
            lag_columns: vec!["price".into()],
            create_time_features: true,
            create_session_features: false,
            create_cyclical_time_features: false,
            create_microstructure_features: true,
            create_quote_detail_features: false,
            create_order_flow_features: false,
            realized_interval: "5m".into(),
            intensity_window: "1m".into(),
            session_open: "09:30".into(),
            session_close: "16:00".into(),
            session_timezone: "America/New_York".into(),
            normalize_features: false,
            normalize_method: "zscore".into(),
            normalize_columns: Vec::new(),
            normalize_params: String::new(),
            enable_parallel_processing: true,
        }
    }
}

/// `[validation]`: thresholds for dataset-level checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Run statistical checks. Default true.
    pub enable_statistical_validation: bool,
    /// Largest tolerated share of nulls per column. Default 0.1.
    pub null_threshold: f64,
    /// Largest tolerated share of duplicates. Default 0.05.
    pub duplicate_threshold: f64,
    /// Largest tolerated share of outliers. Default 0.01.
    pub outlier_threshold: f64,
    /// Validate partitions in parallel. Default true.
    pub enable_parallel_validation: bool,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            enable_statistical_validation: true,
            null_threshold: 0.1,
            duplicate_threshold: 0.05,
            outlier_threshold: 0.01,
            enable_parallel_validation: true,
        }
    }
}

impl Config {
    /// Settings for a large machine: all cores, 8 GiB budget, 50 GB cache.
    pub fn production() -> Self {
        let mut c = Config::default();
        c.pipeline.memory_limit = ByteSize::gib(8);
        c.pipeline.cache_max_size = ByteSize::gib(50);
        c.pipeline.retries = 3;
        c.output.row_group_bytes = ByteSize::mib(64);
        c.output.max_open_files = 256;
        c
    }

    /// Settings for a laptop: two workers, small chunks, 512 MiB budget, strict parsing.
    pub fn development() -> Self {
        let mut c = Config::default();
        c.pipeline.max_workers = 2;
        c.pipeline.chunk_size = 8_192;
        c.pipeline.memory_limit = ByteSize::mib(512);
        c.pipeline.cache_max_size = ByteSize::mib(512);
        c.pipeline.retries = 0;
        c
    }

    /// A preset by name: `default`, `production` or `development`.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "default" => Ok(Config::default()),
            "production" => Ok(Config::production()),
            "development" => Ok(Config::development()),
            other => Err(Error::config(
                "profile",
                format!("unknown profile `{other}`; expected default, production or development"),
            )),
        }
    }

    /// Parses and validates TOML. Unknown keys and bad values give [`Error::Config`] naming
    /// the dotted key.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_toml_str_over(text, Config::default())
    }

    /// Parses TOML on top of `base`: keys present in `text` replace `base`'s values.
    pub fn from_toml_str_over(text: &str, base: Config) -> Result<Self> {
        // Deserialising the user's text on its own gives errors with spans (so with the key
        // and line); the merge below then applies it on top of `base`.
        if let Err(e) = toml::from_str::<Config>(text) {
            return Err(toml_error(text, &e));
        }
        let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        let mut merged = toml::Table::try_from(&base)
            .map_err(|e| Error::Internal(format!("config serialisation: {e}")))?;
        merge_tables(&mut merged, table);
        let cfg: Config = merged
            .try_into()
            .map_err(|e: toml::de::Error| unknown_key_error(text, &e))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Serialises to TOML.
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Internal(format!("config serialisation: {e}")))
    }

    /// Checks value ranges; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let p = &self.pipeline;
        if p.memory_limit.0 < MIN_MEMORY_LIMIT.0 {
            return Err(Error::config(
                "pipeline.memory_limit",
                format!(
                    "{} is too small: a run needs at least {MIN_MEMORY_LIMIT} to stay within its limit",
                    p.memory_limit
                ),
            ));
        }
        if p.max_workers > 4096 {
            return Err(Error::config(
                "pipeline.max_workers",
                "must be at most 4096",
            ));
        }
        for (key, x) in [
            (
                "pipeline.max_quarantine_fraction",
                p.max_quarantine_fraction,
            ),
            (
                "preprocessing.max_late_fraction",
                self.preprocessing.max_late_fraction,
            ),
        ] {
            if !(x > 0.0 && x <= 1.0) {
                return Err(Error::config(
                    key,
                    "must be a fraction in (0, 1]; 1 turns the check off",
                ));
            }
        }
        if p.chunk_size > 0 && p.chunk_size < 16 {
            return Err(Error::config(
                "pipeline.chunk_size",
                "must be 0 (auto) or at least 16 rows",
            ));
        }
        let i = &self.input;
        if let Some(d) = &i.delimiter
            && d.chars().count() != 1
        {
            return Err(Error::config("input.delimiter", "must be one character"));
        }
        if let Some(u) = &i.epoch_unit
            && !matches!(u.as_str(), "s" | "ms" | "us" | "ns")
        {
            return Err(Error::config("input.epoch_unit", "must be s, ms, us or ns"));
        }
        one_of(
            "input.layout",
            &i.layout,
            &["auto", "generic", "lobster", "histdata", "lean"],
        )?;
        if !(i.price_scale.is_finite() && i.price_scale > 0.0) {
            return Err(Error::config(
                "input.price_scale",
                "must be a positive number",
            ));
        }
        if let Some(d) = &i.date {
            check_date(d).map_err(|m| Error::config("input.date", m))?;
        }
        let o = &self.output;
        if !matches!(o.compression.as_str(), "zstd" | "snappy" | "none") {
            return Err(Error::config(
                "output.compression",
                format!(
                    "unknown codec `{}`; expected zstd, snappy or none",
                    o.compression
                ),
            ));
        }
        if !(1..=22).contains(&o.compression_level) {
            return Err(Error::config("output.compression_level", "must be 1..=22"));
        }
        for k in &o.partition_by {
            if !matches!(k.as_str(), "symbol" | "date" | "month") {
                return Err(Error::config(
                    "output.partition_by",
                    format!("unknown key `{k}`; expected symbol, date or month"),
                ));
            }
        }
        if o.max_open_files == 0 {
            return Err(Error::config("output.max_open_files", "must be at least 1"));
        }
        one_of(
            "output.timestamp_unit",
            &o.timestamp_unit,
            &["ns", "us", "ms"],
        )?;
        let pr = &self.preprocessing;
        one_of(
            "preprocessing.handle_missing_values",
            &pr.handle_missing_values,
            &["none", "drop", "ffill", "interpolate", "constant"],
        )?;
        one_of(
            "preprocessing.outlier_method",
            &pr.outlier_method,
            &["zscore", "mad", "iqr", "brownlees_gallo"],
        )?;
        one_of(
            "preprocessing.outlier_action",
            &pr.outlier_action,
            &["drop", "flag", "winsorize"],
        )?;
        one_of(
            "preprocessing.normalize_method",
            &pr.normalize_method,
            &["zscore", "minmax", "robust"],
        )?;
        if !(pr.outlier_threshold.is_finite() && pr.outlier_threshold > 0.0) {
            return Err(Error::config(
                "preprocessing.outlier_threshold",
                "must be a positive number",
            ));
        }
        for (key, w) in [
            ("preprocessing.outlier_window", pr.outlier_window),
            ("preprocessing.rolling_window", pr.rolling_window),
            ("preprocessing.vwap_window", pr.vwap_window),
        ] {
            if w < 2 {
                return Err(Error::config(key, "must be at least 2 rows"));
            }
        }
        if pr.lag_periods.contains(&0) {
            return Err(Error::config(
                "preprocessing.lag_periods",
                "lags must be >= 1",
            ));
        }
        for r in &pr.bnhls_rules {
            const RULES: [&str; 11] = [
                "P1", "P2", "P3", "T1", "T2", "T3", "T4", "Q1", "Q2", "Q3", "Q4",
            ];
            if !RULES.contains(&r.as_str()) {
                return Err(Error::config(
                    "preprocessing.bnhls_rules",
                    format!("unknown rule `{r}`; expected one of {}", RULES.join(", ")),
                ));
            }
        }
        for (key, t) in [
            ("preprocessing.session_open", &pr.session_open),
            ("preprocessing.session_close", &pr.session_close),
        ] {
            parse_hhmm(t).map_err(|m| Error::config(key, m))?;
        }
        let v = &self.validation;
        for (key, x) in [
            ("validation.null_threshold", v.null_threshold),
            ("validation.duplicate_threshold", v.duplicate_threshold),
            ("validation.outlier_threshold", v.outlier_threshold),
        ] {
            if !(0.0..=1.0).contains(&x) {
                return Err(Error::config(key, "must be between 0 and 1"));
            }
        }
        Ok(())
    }
}

fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::config(
            key,
            format!(
                "unknown value `{value}`; expected one of {}",
                allowed.join(", ")
            ),
        ))
    }
}

/// Parses `HH:MM` into minutes after midnight.
pub fn parse_hhmm(t: &str) -> std::result::Result<u32, String> {
    let bad = || format!("`{t}` is not a time of day; write HH:MM, e.g. 09:30");
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 24 || m > 59 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn check_date(d: &str) -> std::result::Result<(), String> {
    let b = d.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("`{d}` is not a date; write YYYY-MM-DD"))
    }
}

fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) if k != "columns" => {
                merge_tables(b, o)
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Turns a TOML error into [`Error::Config`] naming the key (and line).
fn toml_error(text: &str, e: &toml::de::Error) -> Error {
    let msg = e.message().trim().to_string();
    if msg.starts_with("unknown field") {
        return unknown_key_error(text, e);
    }
    let key = e
        .span()
        .map(|s| key_at(text, s.start))
        .unwrap_or_else(|| "<syntax>".into());
    Error::config(key, msg)
}

/// Turns a deserialisation error (unknown field, wrong type) into [`Error::Config`] naming the
/// dotted key. The merged table has no spans, so the key is found by name in the user's text.
fn unknown_key_error(text: &str, e: &toml::de::Error) -> Error {
    let msg = e.message().trim().to_string();
    // serde's messages quote the field: "unknown field `chunk_sise`, expected …".
    let field = msg
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_default();
    let key = if field.is_empty() {
        "<config>".to_string()
    } else {
        find_key_path(text, &field).unwrap_or(field)
    };
    Error::config(key, msg)
}

/// Finds `field` in the TOML text and returns `section.field`.
fn find_key_path(text: &str, field: &str) -> Option<String> {
    let mut section = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if section == field || section.ends_with(&format!(".{field}")) {
                return Some(section);
            }
            continue;
        }
        if let Some((k, _)) = t.split_once('=')
            && k.trim().trim_matches('"') == field
        {
            return Some(if section.is_empty() {
                field.to_string()
            } else {
                format!("{section}.{field}")
            });
        }
    }
    None
}

fn key_at(text: &str, offset: usize) -> String {
    let upto = &text[..offset.min(text.len())];
    let line_no = upto.matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    let section = upto
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').to_string());
    let key = line.split('=').next().unwrap_or("").trim();
    match section {
        Some(s) if !key.is_empty() && !line.starts_with('[') => {
            format!("{s}.{key} (line {line_no})")
        }
        _ => format!("line {line_no}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        for c in [
            Config::default(),
            Config::production(),
            Config::development(),
        ] {
            let text = c.to_toml_string().unwrap();
            let back = Config::from_toml_str(&text).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn partial_files_keep_other_defaults() {
        let c = Config::from_toml_str("[output]\nformat = \"ipc\"\n").unwrap();
        assert_eq!(c.output.format, OutputFormat::Ipc);
        assert_eq!(c.pipeline, PipelineConfig::default());
        let dev =
            Config::from_toml_str_over("[pipeline]\nretries = 5\n", Config::development()).unwrap();
        assert_eq!(dev.pipeline.retries, 5);
        assert_eq!(dev.pipeline.max_workers, 2);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_toml_str("[pipeline]\nmax_workers = 2\nchunk_sise = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipeline.chunk_sise"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
        let e = Config::from_toml_str("[pipline]\nx = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipline"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (
                "[pipeline]\nmemory_limit = \"1MB\"\n",
                "pipeline.memory_limit",
            ),
            ("[pipeline]\nmemory_limit = \"64MiB\"\n", "at least 128MiB"),
            ("[pipeline]\nmemory_limit = \"lots\"\n", "memory_limit"),
            ("[output]\ncompression = \"lzo\"\n", "output.compression"),
            (
                "[output]\npartition_by = [\"hour\"]\n",
                "output.partition_by",
            ),
            ("[input]\nepoch_unit = \"h\"\n", "input.epoch_unit"),
            ("[input]\ndate = \"2024/01/02\"\n", "input.date"),
            (
                "[preprocessing]\noutlier_method = \"magic\"\n",
                "preprocessing.outlier_method",
            ),
            (
                "[preprocessing]\nnormalize_method = \"l2\"\n",
                "preprocessing.normalize_method",
            ),
            (
                "[preprocessing]\nbnhls_rules = [\"T9\"]\n",
                "preprocessing.bnhls_rules",
            ),
            (
                "[preprocessing]\nsession_open = \"9h30\"\n",
                "preprocessing.session_open",
            ),
            (
                "[validation]\nnull_threshold = 2.0\n",
                "validation.null_threshold",
            ),
            ("[pipeline]\nmax_workers = \"two\"\n", "max_workers"),
            (
                "[pipeline]\nmax_quarantine_fraction = 0.0\n",
                "pipeline.max_quarantine_fraction",
            ),
            (
                "[preprocessing]\nmax_late_fraction = 1.5\n",
                "preprocessing.max_late_fraction",
            ),
        ];
        for (text, key) in cases {
            let e = Config::from_toml_str(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text:?} gave {e}");
        }
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let e = Config::from_toml_str("[pipeline]\nmax_workers = = 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn presets_by_name() {
        assert_eq!(Config::preset("production").unwrap(), Config::production());
        assert!(Config::preset("fast").is_err());
        assert_eq!(parse_hhmm("16:00"), Ok(960));
    }
}
