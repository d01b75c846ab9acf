//! `tickpipe config init`: the annotated default configuration.
//!
//! The template is written by hand so every key carries a one-line explanation; tests check
//! that it parses to exactly `Config::default()` and mentions every key, so it cannot drift.

/// The annotated default configuration, as TOML.
pub const TEMPLATE: &str = r#"# tickpipe configuration. Every key is shown with its default value.
# Use with: tickpipe run INPUT... --out DIR --config tickpipe.toml
# Command-line flags (--workers, --memory-limit, ...) override these values.

[pipeline]
# Rows per chunk; 0 derives it from memory_limit and the row width.
chunk_size = 0
# Worker threads; 0 means one per core.
max_workers = 0
# Memory budget for the whole run (chunks in flight, per-symbol state, writer buffers).
memory_limit = "256MiB"
# Compress outputs with [output] compression; false writes them uncompressed.
enable_compression = true
# Use more than one worker.
enable_parallel_processing = true
# Size limit of the stage-output cache. Not yet used: nothing reads it until the cache lands.
cache_max_size = "1GiB"
# Chunks buffered between two stages; 0 derives it from memory_limit.
channel_capacity = 0
# Make the first malformed row a fatal error instead of quarantining it.
strict = false
# Attempts per file after an error or panic in a stage.
retries = 2

[input]
# Zone of naive timestamps (IANA name).
timezone = "UTC"
# Date of time-of-day-only files (YYYY-MM-DD); unset: taken from the file name.
# date = "2012-06-21"
# Field delimiter; unset: sniffed.
# delimiter = ","
# Whether the first line is a header; unset: sniffed.
# has_header = true
# Text encoding (utf-8, utf-16le, windows-1252, ...); unset: detected.
# encoding = "utf-8"
# Unit of integer epoch timestamps (s, ms, us, ns); unset: from magnitude.
# epoch_unit = "us"
# Multiply prices by this (0.0001 for LOBSTER's dollars x 10,000).
price_scale = 1.0
# Symbol of files without a symbol column; unset: from the file name.
# symbol = "AAPL"
# Files taken from a directory input.
file_pattern = "*"
# Vendor layout: auto, generic, lobster, histdata, lean.
layout = "auto"
# Column names of files without a header.
names = []
# Files are not in time order: sort each by time in bounded memory, spilling to disk.
sort = false

[input.columns]
# Explicit mapping, canonical name = input header (also date and time), e.g.
# ts = "Time"
# price = "Px"

[output]
# File format: parquet, ipc or csv.
format = "parquet"
# Codec: zstd, snappy or none.
compression = "zstd"
# zstd level (1-22).
compression_level = 1
# Flush a Parquet row group when it holds this many bytes.
row_group_bytes = "32MiB"
# Hive partition keys: any of symbol, date, month.
partition_by = ["symbol"]
# Keep the _line provenance column in the output.
keep_line_column = false
# Most partition writers open at once.
max_open_files = 64
# Timestamp unit in the files: ns (lossless), us (what Spark reads as timestamps) or ms.
timestamp_unit = "ns"

[preprocessing]
# Put rows up to this many ms out of order back in time order per symbol; older rows are
# quarantined as `late`. 0 turns the reorder buffer off.
allowed_lateness_ms = 2000
# Remove exact duplicate rows.
remove_duplicates = true
# Columns that define a duplicate; empty means all columns.
dedup_key = []
# Missing values: none, drop, ffill, interpolate or constant.
handle_missing_values = "drop"
# Value used by handle_missing_values = "constant".
fill_value = 0.0
# Longest run of rows that ffill/interpolate bridges.
max_gap = 10
# Drop non-positive prices or sizes and crossed quotes.
drop_invalid = true
# Barndorff-Nielsen et al. (2009) rules to apply: P1-P3, T1-T4, Q1-Q4.
bnhls_rules = []
# Run the outlier filter.
outlier_detection = true
# Outlier method: zscore, mad, iqr or brownlees_gallo.
outlier_method = "zscore"
# Outlier threshold (z-score / MAD / IQR multiples).
outlier_threshold = 10.0
# Rolling window of the outlier filter, in rows.
outlier_window = 100
# Outlier action: drop, flag or winsorize.
outlier_action = "drop"
# Add returns, rolling and exponentially weighted statistics, indicators and VWAP.
create_technical_indicators = true
# Indicators, e.g. sma_20, ema_20, rsi_14, macd_12_26_9, bb_20_2, atr_14.
indicators = ["sma_20", "ema_20"]
# Rolling window (rows) for rolling mean/std.
rolling_window = 20
# VWAP window in trades.
vwap_window = 100
# More rolling price statistics, <stat>_<rows|duration>: stat mean/std/sum/min/max/median, e.g. "mean_1m".
rolling_features = []
# Exponentially weighted price mean and std: span_<n> or hl_<duration>, e.g. "span_50", "hl_30s".
ewm_features = []
# Add lag features.
create_lag_features = true
# Lags to add.
lag_periods = [1, 5, 10, 20]
# Input columns to lag (numeric: price, size, bid, ask, ...).
lag_columns = ["price"]
# Add time-of-day features: hour, minute, day_of_week.
create_time_features = true
# Add seconds_since_open and in_session.
create_session_features = false
# Add tod_sin, tod_cos, dow_sin, dow_cos.
create_cyclical_time_features = false
# Add mid and spread.
create_microstructure_features = true
# Add spread_bps, microprice and quote_imbalance.
create_quote_detail_features = false
# Add ofi, trade_sign (Lee-Ready), vwap_session, realized variance/volatility, trade intensity.
create_order_flow_features = false
# Sampling interval of realized-variance returns.
realized_interval = "5m"
# Window of the trade-intensity count.
intensity_window = "1m"
# Session open, local time.
session_open = "09:30"
# Session close, local time.
session_close = "16:00"
# Zone of the session hours.
session_timezone = "America/New_York"
# Scale features with parameters fitted in a first pass.
normalize_features = false
# Scaling: zscore, minmax or robust (median and inter-quartile range).
normalize_method = "zscore"
# Columns to scale; empty means every Float64 column the feature stage adds.
normalize_columns = []
# Scaler-params JSON from a previous run to re-apply; empty means fit on this run.
normalize_params = ""
# Run the per-symbol stages on more than one worker; false runs them on one.
enable_parallel_processing = true

# Not yet used: nothing reads this section until pipeline-validate lands.
[validation]
# Run statistical checks.
enable_statistical_validation = true
# Largest tolerated share of nulls per column.
null_threshold = 0.1
# Largest tolerated share of duplicates.
duplicate_threshold = 0.05
# Largest tolerated share of outliers.
outlier_threshold = 0.01
# Validate partitions in parallel.
enable_parallel_validation = true
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_core::Config;

    #[test]
    fn template_is_the_default_config() {
        let parsed = Config::from_toml_str(TEMPLATE).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn template_mentions_every_key() {
        let default = toml::Table::try_from(Config::default()).unwrap();
        for (section, value) in default {
            assert!(TEMPLATE.contains(&format!("[{section}]")), "{section}");
            if let toml::Value::Table(t) = value {
                for key in t.keys() {
                    assert!(
                        TEMPLATE.contains(&format!("\n{key} ="))
                            || TEMPLATE.contains(&format!("# {key} ="))
                            || TEMPLATE.contains(&format!("[{section}.{key}]")),
                        "[{section}] {key} is not in the template"
                    );
                }
            }
        }
    }
}
