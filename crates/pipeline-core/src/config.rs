//! Run configuration: TOML sections `[pipeline]`, `[input]`, `[output]`, `[preprocessing]`,
//! `[validation]`, `[cache]`, `[monitor]`, with presets and validation that names the offending key.
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
    /// The stage-output cache (its disk bound is `[pipeline] cache_max_size`).
    pub cache: CacheConfig,
    /// Performance monitoring: sampling, alerts, exports.
    pub monitor: MonitorConfig,
    /// Trades and quotes as separate inputs: the as-of join and its measures.
    pub taq: TaqConfig,
}

/// `[taq]`: how trades are matched to quotes when they come as separate inputs
/// (`[input] trades` / `quotes`, or `tickpipe run --trades … --quotes …`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaqConfig {
    /// A trade gets the last NBBO strictly before its time minus this delay (Lee & Ready's
    /// `5s` for second-stamped data; `0s` for ms/ns data). Default `0s`.
    pub delay: String,
    /// A quote older than this at the trade is stale: the trade's quote columns are null and
    /// it counts as `stale_quote`. Empty: no limit. Default empty.
    pub tolerance: String,
    /// Horizons of the realized spread and price impact, e.g. `["5m"]`. Default `["5m"]`.
    pub horizons: Vec<String>,
    /// How both inputs are sorted: `time` (across symbols; files read one after the other)
    /// or `symbol` (by symbol then time, as NYSE Daily TAQ; trades and quotes files paired
    /// by the date in their names). Default `time`.
    pub order: String,
    /// Zone whose calendar days the per-symbol-day measures use. Default
    /// `America/New_York`.
    pub day_timezone: String,
}

impl Default for TaqConfig {
    fn default() -> Self {
        TaqConfig {
            delay: "0s".into(),
            tolerance: String::new(),
            horizons: vec!["5m".into()],
            order: "time".into(),
            day_timezone: "America/New_York".into(),
        }
    }
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
    /// Pattern of file names taken from a directory input (a glob such as `*.csv.gz`).
    /// Whatever the pattern, a directory walk takes only data files: names with a data
    /// extension (`.csv`, `.tsv`, `.psv`, compressed `.gz`/`.bz2`/`.xz`/`.zst`, `.parquet`,
    /// `.arrow`/`.ipc`/`.feather`), and `.txt`/`.dat`/extension-less files whose content looks
    /// like delimited records; other files (`README.md`, `anomalies.jsonl`, a vendor's
    /// `ReadMe.txt`) are skipped with an info line. Files named on the command line are
    /// always read. Default `*`.
    pub file_pattern: String,
    /// Vendor layout: `auto` (detect from file name and content), `generic`, `lobster`,
    /// `histdata`, `lean`. Default `auto`.
    pub layout: String,
    /// Column names for files without a header (overrides the layout's names).
    pub names: Vec<String>,
    /// Input files are not in time order: sort each file by time (ties keep file order) in
    /// bounded memory, spilling to disk, before processing. Default false.
    pub sort: bool,
    /// Trades files (files, folders, globs) to match against `quotes` (see `[taq]`);
    /// with these set, the run's inputs are the trades. Default none.
    pub trades: Vec<String>,
    /// Quotes files for `trades`. Default none.
    pub quotes: Vec<String>,
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
            trades: Vec::new(),
            quotes: Vec::new(),
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
    /// Keep the rows stages hold back until the input ends (the reorder buffer's tail,
    /// open bars) in a commit segment of their own, with every stage's state from before
    /// them, so a later run can append new inputs (incremental runs). Costs one more small
    /// file per partition. `false`: no extra files, and a later run with more inputs is
    /// refused. Default true.
    pub appendable: bool,
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
            appendable: true,
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
    /// Column the price features (returns, lags, rolling statistics, indicators) and bars
    /// read. Unset: `price` (for order-book messages, the price of executions only), and for
    /// a symbol with quotes only (no trade price, e.g. FX quote files) the mid
    /// `(bid + ask) / 2`. Set it to `mid` to use the mid everywhere, or to any numeric input
    /// column.
    pub price_column: Option<String>,
    /// Zone of the time features (`hour`, `minute`, `day_of_week`, cyclical encodings) and of
    /// `reset_state = "day"`. Unset: the exchange's zone of each symbol when its layout
    /// names one (LOBSTER: America/New_York; LEAN and HistData FX quotes and Tardis crypto
    /// trades: UTC; see `symbol_time_zones`), else `session_timezone`.
    pub time_zone: Option<String>,
    /// Zone per symbol (IANA name), e.g. `{ BTCUSDT = "UTC" }`; a run adds the zones its
    /// vendor layouts name for symbols not listed here. Default empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub symbol_time_zones: BTreeMap<String, String>,
    /// Start each symbol's feature state (returns, lags, windows, indicators) afresh at
    /// every `day` (local midnight in the symbol's time zone) or `session` (the first row at
    /// or after `session_open` in `session_timezone` on a later day). Unset: state runs on
    /// across days, overnight gaps included.
    pub reset_state: Option<String>,
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
            price_column: None,
            time_zone: None,
            symbol_time_zones: BTreeMap::new(),
            reset_state: None,
        }
    }
}

/// `[validation]`: data-quality rules (pipeline-validate): which rules run, their thresholds,
/// and the verdict. Session hours come from `[preprocessing]` (`session_open`,
/// `session_close`, `session_timezone`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Validate inline in `tickpipe run` (after cleaning, on the rows that are written).
    /// Default true.
    pub enabled: bool,
    /// Rule preset: `financial` (schema, range and market-data rules) or `none` (only the
    /// rules file). Default `financial`.
    pub preset: String,
    /// TOML rules file adding custom rules, bounds, allowed values and severities; empty
    /// means none. Default empty.
    pub rules_file: String,
    /// Run statistical checks (null, duplicate and outlier shares per symbol-day). Default
    /// true.
    pub enable_statistical_validation: bool,
    /// Largest tolerated share of nulls per column. Default 0.1.
    pub null_threshold: f64,
    /// Largest tolerated share of duplicates. Default 0.05.
    pub duplicate_threshold: f64,
    /// Largest tolerated share of outliers. Default 0.01.
    pub outlier_threshold: f64,
    /// Largest share of rows failing one error-severity rule before the verdict is `fail`.
    /// Default 0.01.
    pub error_threshold: f64,
    /// Largest share of rows failing one warning-severity rule before the verdict is `warn`.
    /// Default 0.01.
    pub warning_threshold: f64,
    /// Which verdict makes `tickpipe validate` exit 1: `fail`, or `warn` (warn or fail).
    /// Default `fail`.
    pub fail_on: String,
    /// Spread rule: a quote's spread above this multiple of its symbol-day's median spread is
    /// a finding (Barndorff-Nielsen et al. 2009, Q3). 0 turns the rule off. Default 50.
    pub spread_k: f64,
    /// Price-jump rule: a price further than this multiple of the rolling volatility from its
    /// neighbours is a finding. 0 turns the rule off. Default 10.
    pub jump_k: f64,
    /// Longest gap between two rows of a symbol inside a session (`30m`, `90s`); `0` turns
    /// the rule off. Default `30m`.
    pub max_gap: String,
    /// Price grid for prices of $1 and above (below $1 it is 0.0001, SEC Rule 612). 0 turns
    /// the grid rule off. Default 0.01.
    pub tick_size: f64,
    /// Trading calendar: `nyse` (weekends and NYSE holidays by rule), `weekdays`, or `none`
    /// (no session or trading-day rules). Default `nyse`.
    pub calendar: String,
    /// More closed dates (`YYYY-MM-DD`) on top of the calendar. Default empty.
    pub holidays: Vec<String>,
    /// Failing rows kept as examples per rule (with `file:line`). Default 20.
    pub examples_per_rule: usize,
    /// Keep per-symbol-day metrics in a history file and check each day against the
    /// symbol's history. Default true.
    pub history: bool,
    /// Days of a symbol's history each day is compared with. Default 20.
    pub history_window: usize,
    /// Fewest earlier days a symbol needs before its days are checked against history.
    /// Default 5.
    pub history_min_days: usize,
    /// A symbol-day with fewer rows than this share of the symbol's median is a finding.
    /// Default 0.25.
    pub rows_min_ratio: f64,
    /// A symbol-day with more rows than this multiple of the symbol's median is a finding.
    /// Default 4.
    pub rows_max_ratio: f64,
    /// Severity by rule name: `error`, `warning`, `info` or `off`. Default empty (each
    /// rule's own).
    pub severity: BTreeMap<String, String>,
    /// Validate partitions in parallel: `tickpipe validate` uses one worker when false
    /// (inline validation runs on the run's workers). Default true.
    pub enable_parallel_validation: bool,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            enabled: true,
            preset: "financial".into(),
            rules_file: String::new(),
            enable_statistical_validation: true,
            null_threshold: 0.1,
            duplicate_threshold: 0.05,
            outlier_threshold: 0.01,
            error_threshold: 0.01,
            warning_threshold: 0.01,
            fail_on: "fail".into(),
            spread_k: 50.0,
            jump_k: 10.0,
            max_gap: "30m".into(),
            tick_size: 0.01,
            calendar: "nyse".into(),
            holidays: Vec::new(),
            examples_per_rule: 20,
            history: true,
            history_window: 20,
            history_min_days: 5,
            rows_min_ratio: 0.25,
            rows_max_ratio: 4.0,
            severity: BTreeMap::new(),
            enable_parallel_validation: true,
        }
    }
}

/// `[cache]`: the two-tier stage-output cache (pipeline-cache). Its disk tier is bounded by
/// `[pipeline] cache_max_size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Use the cache (`--no-cache` turns it off). Default true.
    pub enabled: bool,
    /// Directory of the disk tier; empty means `<output>/_cache` (readers of the dataset skip
    /// `_`-prefixed folders). Default empty.
    pub dir: String,
    /// Bound of the memory tier (Arrow buffers and blobs held in RAM); 0 turns it off.
    /// Default 64MiB.
    pub memory_size: ByteSize,
    /// Memory-tier eviction: `tinylfu` or `lru`. Default `tinylfu`.
    pub memory_policy: String,
    /// Memory-tier time to live in seconds; 0 means none. Default 0.
    pub memory_ttl_secs: u64,
    /// Memory-tier time to idle in seconds; 0 means none. Default 0.
    pub memory_tti_secs: u64,
    /// Disk-tier eviction: `lru`, `lfu` or `ttl` (oldest first). Default `lru`.
    pub disk_policy: String,
    /// Disk-tier time to live in seconds (from creation); 0 means none. Default 0.
    pub disk_ttl_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            dir: String::new(),
            memory_size: ByteSize::mib(64),
            memory_policy: "tinylfu".into(),
            memory_ttl_secs: 0,
            memory_tti_secs: 0,
            disk_policy: "lru".into(),
            disk_ttl_secs: 0,
        }
    }
}

/// `[monitor]`: the performance monitor (resource sampling, live stage metrics, alerts,
/// `metrics.jsonl`, `metrics.prom`, `report.html`).
///
/// ```
/// use pipeline_core::Config;
/// let cfg = Config::from_toml_str("[monitor]\ninterval_ms = 500\nhttp_addr = \"9898\"\n")?;
/// assert_eq!(cfg.monitor.interval_ms, 500);
/// assert_eq!(cfg.monitor.http_socket_addr()?.unwrap().to_string(), "127.0.0.1:9898");
/// # Ok::<(), pipeline_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Run the monitor (`--no-monitor` turns it off). Default true.
    pub enable: bool,
    /// Sampling interval in milliseconds. Default 1000.
    pub interval_ms: u64,
    /// Samples kept in memory for the live view and alerts (a ring buffer); every sample is
    /// also appended to `metrics.jsonl`. Default 3600 (an hour at the default interval).
    pub history_len: usize,
    /// Alert when resident memory passes this percentage of `pipeline.memory_limit`.
    /// Default 90: the engine stops opening sources at 85% and the CLI starts returning free
    /// heap to the system at 90%, so past this the run is at its limit.
    pub memory_alert_pct: f64,
    /// Alert when rows/s stay this many percent below their moving average. Default 50.
    pub throughput_drop_pct: f64,
    /// Window of that moving average, in seconds. Default 60.
    pub throughput_window_s: f64,
    /// How long the drop must last before it is an alert, in seconds. Default 10 (a segment
    /// commit or a file switch dips for a second or two).
    pub throughput_drop_s: f64,
    /// Alert when a worker's input queue stays saturated (readers blocked on it) this long,
    /// in seconds. Default 60.
    pub queue_saturation_s: f64,
    /// Alert when more than this share of the rows read is quarantined (0..=1). Default 0.05
    /// (gen-data's default anomalies are about 1.3% of rows, most of them removed, not
    /// quarantined).
    pub quarantine_rate: f64,
    /// Alert when a worker stays idle this long while the others are busy, in seconds.
    /// Default 10.
    pub idle_worker_s: f64,
    /// Serve `/metrics` (Prometheus text) over HTTP during the run at this address: `PORT`
    /// (loopback, `127.0.0.1:PORT`) or `HOST:PORT`. Empty: no server. Default empty.
    pub http_addr: String,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            enable: true,
            interval_ms: 1000,
            history_len: 3600,
            memory_alert_pct: 90.0,
            throughput_drop_pct: 50.0,
            throughput_window_s: 60.0,
            throughput_drop_s: 10.0,
            queue_saturation_s: 60.0,
            quarantine_rate: 0.05,
            idle_worker_s: 10.0,
            http_addr: String::new(),
        }
    }
}

impl MonitorConfig {
    /// The HTTP address: `None` when `http_addr` is empty; a bare port means loopback.
    pub fn http_socket_addr(&self) -> Result<Option<std::net::SocketAddr>> {
        let a = self.http_addr.trim();
        if a.is_empty() {
            return Ok(None);
        }
        if let Ok(port) = a.parse::<u16>() {
            return Ok(Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))));
        }
        a.parse().map(Some).map_err(|_| {
            Error::config(
                "monitor.http_addr",
                format!("`{a}` is not PORT or HOST:PORT (e.g. 127.0.0.1:9898)"),
            )
        })
    }

    /// Checks value ranges; the error names the key.
    pub fn validate(&self) -> Result<()> {
        if !(10..=600_000).contains(&self.interval_ms) {
            return Err(Error::config(
                "monitor.interval_ms",
                "must be between 10 and 600000",
            ));
        }
        if self.history_len == 0 {
            return Err(Error::config("monitor.history_len", "must be at least 1"));
        }
        for (key, x) in [
            ("monitor.memory_alert_pct", self.memory_alert_pct),
            ("monitor.throughput_drop_pct", self.throughput_drop_pct),
        ] {
            if !(x > 0.0 && x <= 100.0) {
                return Err(Error::config(key, "must be a percentage in (0, 100]"));
            }
        }
        if !(0.0..=1.0).contains(&self.quarantine_rate) {
            return Err(Error::config(
                "monitor.quarantine_rate",
                "must be between 0 and 1",
            ));
        }
        for (key, x) in [
            ("monitor.throughput_window_s", self.throughput_window_s),
            ("monitor.throughput_drop_s", self.throughput_drop_s),
            ("monitor.queue_saturation_s", self.queue_saturation_s),
            ("monitor.idle_worker_s", self.idle_worker_s),
        ] {
            if !(x.is_finite() && x >= 0.0) {
                return Err(Error::config(key, "must be a number of seconds >= 0"));
            }
        }
        self.http_socket_addr()?;
        Ok(())
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
        if !["time", "symbol"].contains(&self.taq.order.as_str()) {
            return Err(Error::config("taq.order", "must be `time` or `symbol`"));
        }
        if self.input.trades.is_empty() != self.input.quotes.is_empty() {
            return Err(Error::config(
                "input.trades",
                "trades and quotes come together: set both `trades` and `quotes`, or neither",
            ));
        }
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
        one_of(
            "cache.memory_policy",
            &self.cache.memory_policy,
            &["tinylfu", "lru"],
        )?;
        one_of(
            "cache.disk_policy",
            &self.cache.disk_policy,
            &["lru", "lfu", "ttl"],
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
        if let Some(r) = &pr.reset_state {
            one_of("preprocessing.reset_state", r, &["day", "session"])?;
        }
        if pr
            .price_column
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(Error::config(
                "preprocessing.price_column",
                "must name a column (e.g. price or mid)",
            ));
        }
        for (key, t) in [
            ("preprocessing.session_open", &pr.session_open),
            ("preprocessing.session_close", &pr.session_close),
        ] {
            parse_hhmm(t).map_err(|m| Error::config(key, m))?;
        }
        self.monitor.validate()?;
        self.validation.validate()
    }
}

impl ValidationConfig {
    /// Checks value ranges of the `[validation]` keys; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let v = self;
        for (key, x) in [
            ("validation.null_threshold", v.null_threshold),
            ("validation.duplicate_threshold", v.duplicate_threshold),
            ("validation.outlier_threshold", v.outlier_threshold),
            ("validation.error_threshold", v.error_threshold),
            ("validation.warning_threshold", v.warning_threshold),
        ] {
            if !(0.0..=1.0).contains(&x) {
                return Err(Error::config(key, "must be between 0 and 1"));
            }
        }
        one_of("validation.preset", &v.preset, &["financial", "none"])?;
        one_of("validation.fail_on", &v.fail_on, &["fail", "warn"])?;
        one_of(
            "validation.calendar",
            &v.calendar,
            &["nyse", "weekdays", "none"],
        )?;
        for (key, x) in [
            ("validation.spread_k", v.spread_k),
            ("validation.jump_k", v.jump_k),
            ("validation.tick_size", v.tick_size),
        ] {
            if !(x.is_finite() && x >= 0.0) {
                return Err(Error::config(key, "must be 0 (off) or a positive number"));
            }
        }
        if !(v.rows_min_ratio.is_finite() && (0.0..1.0).contains(&v.rows_min_ratio)) {
            return Err(Error::config(
                "validation.rows_min_ratio",
                "must be at least 0 and below 1",
            ));
        }
        if !(v.rows_max_ratio.is_finite() && v.rows_max_ratio > 1.0) {
            return Err(Error::config(
                "validation.rows_max_ratio",
                "must be a number above 1",
            ));
        }
        if v.history_window < 2 {
            return Err(Error::config(
                "validation.history_window",
                "must be at least 2 days",
            ));
        }
        parse_gap(&v.max_gap).map_err(|m| Error::config("validation.max_gap", m))?;
        for d in &v.holidays {
            check_date(d).map_err(|m| Error::config("validation.holidays", m))?;
        }
        for (rule, sev) in &v.severity {
            one_of(
                &format!("validation.severity.{rule}"),
                sev,
                &["error", "warning", "info", "off"],
            )?;
        }
        Ok(())
    }

    /// `max_gap` in nanoseconds; `None` when the gap rule is off (`0` or empty).
    ///
    /// ```
    /// let mut v = pipeline_core::ValidationConfig::default();
    /// assert_eq!(v.max_gap_ns()?, Some(30 * 60 * 1_000_000_000));
    /// v.max_gap = "0".into();
    /// assert_eq!(v.max_gap_ns()?, None);
    /// # Ok::<(), pipeline_core::Error>(())
    /// ```
    pub fn max_gap_ns(&self) -> Result<Option<i64>> {
        parse_gap(&self.max_gap).map_err(|m| Error::config("validation.max_gap", m))
    }
}

/// Parses a gap such as `90s`, `30m`, `2h` (units `ms`, `s`, `m`, `h`); `0` or empty is off.
fn parse_gap(text: &str) -> std::result::Result<Option<i64>, String> {
    let t = text.trim();
    if t.is_empty() || t == "0" {
        return Ok(None);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("`{text}` is not a duration; write e.g. 90s, 30m or 2h (0 is off)");
    let n: i64 = num.parse().map_err(|_| bad())?;
    let per: i64 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(bad()),
    };
    match n.checked_mul(per) {
        Some(0) => Ok(None),
        Some(v) => Ok(Some(v)),
        None => Err(bad()),
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
            ("[cache]\ndisk_policy = \"fifo\"\n", "cache.disk_policy"),
            ("[cache]\nmemory_policy = \"arc\"\n", "cache.memory_policy"),
            ("[validation]\npreset = \"gx\"\n", "validation.preset"),
            (
                "[validation]\nmax_gap = \"5 minutes\"\n",
                "validation.max_gap",
            ),
            ("[validation]\nfail_on = \"info\"\n", "validation.fail_on"),
            ("[validation]\ncalendar = \"lse\"\n", "validation.calendar"),
            (
                "[validation]\nholidays = [\"2024-13\"]\n",
                "validation.holidays",
            ),
            ("[validation]\njump_k = -1.0\n", "validation.jump_k"),
            (
                "[validation.severity]\nlocked_quote = \"fatal\"\n",
                "validation.severity.locked_quote",
            ),
            ("[monitor]\ninterval_ms = 0\n", "monitor.interval_ms"),
            (
                "[monitor]\nmemory_alert_pct = 150\n",
                "monitor.memory_alert_pct",
            ),
            (
                "[monitor]\nquarantine_rate = 2\n",
                "monitor.quarantine_rate",
            ),
            ("[monitor]\nidle_worker_s = -1\n", "monitor.idle_worker_s"),
            (
                "[monitor]\nhttp_addr = \"localhost\"\n",
                "monitor.http_addr",
            ),
            ("[monitor]\nhistory_len = 0\n", "monitor.history_len"),
            (
                "[preprocessing]\nreset_state = \"week\"\n",
                "preprocessing.reset_state",
            ),
            (
                "[preprocessing]\nprice_column = \"\"\n",
                "preprocessing.price_column",
            ),
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
    fn validation_keys_parse_and_round_trip() {
        let c = Config::from_toml_str(
            "[validation]\nmax_gap = \"90s\"\nholidays = [\"2024-12-24\"]\n\
             [validation.severity]\nlocked_quote = \"error\"\ntick_grid = \"off\"\n",
        )
        .unwrap();
        assert_eq!(c.validation.max_gap_ns().unwrap(), Some(90_000_000_000));
        assert_eq!(c.validation.severity["tick_grid"], "off");
        let back = Config::from_toml_str(&c.to_toml_string().unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let e = Config::from_toml_str("[pipeline]\nmax_workers = = 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn vendor_keys_parse_and_unset_ones_stay_out_of_the_file() {
        let c = Config::from_toml_str(
            "[preprocessing]\nprice_column = \"mid\"\ntime_zone = \"UTC\"\nreset_state = \"day\"\n\n[preprocessing.symbol_time_zones]\nBTCUSDT = \"UTC\"\n",
        )
        .unwrap();
        assert_eq!(c.preprocessing.price_column.as_deref(), Some("mid"));
        assert_eq!(c.preprocessing.reset_state.as_deref(), Some("day"));
        assert_eq!(c.preprocessing.symbol_time_zones["BTCUSDT"], "UTC");
        // Unset options are not written, so `config init`'s template lists only set keys.
        let text = Config::default().to_toml_string().unwrap();
        for key in [
            "price_column",
            "time_zone",
            "symbol_time_zones",
            "reset_state",
        ] {
            assert!(!text.contains(key), "{key} in {text}");
        }
    }

    #[test]
    fn presets_by_name() {
        assert_eq!(Config::preset("production").unwrap(), Config::production());
        assert!(Config::preset("fast").is_err());
        assert_eq!(parse_hhmm("16:00"), Ok(960));
    }
}
