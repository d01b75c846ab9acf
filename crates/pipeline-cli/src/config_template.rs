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
# Size limit of the disk cache (sniffed file metadata; see [cache]).
cache_max_size = "1GiB"
# Chunks buffered between two stages; 0 derives it from memory_limit.
channel_capacity = 0
# Make the first malformed row a fatal error instead of quarantining it.
strict = false
# Attempts per file after an I/O error or a panic in a stage (other errors are not retried).
retries = 2
# A run that quarantines more than this share of its rows fails (exit 1), output complete.
max_quarantine_fraction = 0.5

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
# Trades and quotes as separate inputs (see [taq]): trades files (files, folders, globs)...
trades = []
# ...and the quotes files they are matched against.
quotes = []
# Longest line read; longer ones are quarantined as `line_too_long` without being held.
# "0" means a 64th of memory_limit.
max_line_bytes = "0"

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
# Rows a partition gathers before its file is opened, so sparse symbols make one file each.
min_rows_per_file = 10000
# Keep the end-of-input flush (reorder tail, open bars) in a segment of its own so a later
# run can append new inputs (one more small file per partition); false: appends refused.
appendable = true
# Timestamp unit in the files: ns (lossless), us (what Spark reads as timestamps) or ms.
timestamp_unit = "ns"

[preprocessing]
# Put rows up to this many ms out of order back in time order per symbol; older rows are
# quarantined as `late`. 0 turns the reorder buffer off.
allowed_lateness_ms = 2000
# Stop the run (naming --sort) once more than this share of a symbol's rows came late.
max_late_fraction = 0.1
# Price features and bars: price (trades; the mid for quotes-only symbols), mid, or a column.
# price_column = "price"
# Zone of time features; unset: each layout's exchange zone (UTC for crypto and FX).
# time_zone = "America/New_York"
# Restart per-symbol state (returns, windows, lags) each `day` or `session`; unset: never.
# reset_state = "day"
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
[taq]
# A trade gets the last NBBO strictly before its time minus this delay ("5s": Lee-Ready
# for second-stamped data).
delay = "0s"
# Quotes older than this at the trade are stale (quote columns null); empty: no limit.
tolerance = ""
# Horizons of the realized spread and price impact.
horizons = ["5m"]
# How trades and quotes are sorted: time (across symbols) or symbol (then time, as Daily TAQ).
order = "time"
# Zone of the calendar days of the per-symbol-day measures.
day_timezone = "America/New_York"

[validation]
# Validate inline in `tickpipe run` (after cleaning, on the rows that are written).
enabled = true
# Rule preset: financial (schema, range and market-data rules) or none (only rules_file).
preset = "financial"
# TOML rules file: custom rules, bounds, allowed values, severities; empty means none.
rules_file = ""
# Run the per-symbol-day statistical checks.
enable_statistical_validation = true
# Largest tolerated share of nulls per column.
null_threshold = 0.1
# Largest tolerated share of duplicates.
duplicate_threshold = 0.05
# Largest tolerated share of outliers (price jumps, spread outliers).
outlier_threshold = 0.01
# Largest share of rows failing one error rule before the verdict is `fail`.
error_threshold = 0.01
# Largest share of rows failing one warning rule before the verdict is `warn`.
warning_threshold = 0.01
# Which verdict makes `tickpipe validate` exit 1: fail, or warn (warn or fail).
fail_on = "fail"
# A spread above this multiple of the symbol-day's median spread is a finding; 0: off.
spread_k = 50.0
# A price further than this multiple of the rolling volatility is a jump; 0: off.
jump_k = 10.0
# Longest gap between two rows of a symbol inside a session; "0": off.
max_gap = "30m"
# Price grid for prices of $1 and above (SEC Rule 612); 0: off.
tick_size = 0.01
# Trading calendar: nyse, weekdays or none.
calendar = "nyse"
# More closed dates (YYYY-MM-DD) on top of the calendar.
holidays = []
# Failing rows kept as examples per rule, with file:line.
examples_per_rule = 20
# Keep per-symbol-day metrics in quality_history.jsonl and check days against history.
history = true
# Days of a symbol's history each day is compared with.
history_window = 20
# Fewest earlier days before a symbol's days are checked against history.
history_min_days = 5
# A symbol-day with fewer rows than this share of the symbol's median is a finding.
rows_min_ratio = 0.25
# A symbol-day with more rows than this multiple of the symbol's median is a finding.
rows_max_ratio = 4.0
# Validate partitions in parallel (false: one worker).
enable_parallel_validation = true

# Severity by rule name: error, warning, info or off, e.g. locked_quote = "error".
[validation.severity]

[cache]
# Use the cache (--no-cache turns it off).
enabled = true
# Directory of the disk tier; empty: <output>/_cache. Its size limit is [pipeline] cache_max_size.
dir = ""
# Memory tier: bound on what it holds in RAM; "0" turns the tier off.
memory_size = "64MiB"
# Memory-tier eviction: tinylfu or lru.
memory_policy = "tinylfu"
# Memory-tier time to live and time to idle, in seconds; 0 means none.
memory_ttl_secs = 0
memory_tti_secs = 0
# Disk-tier eviction: lru, lfu or ttl (oldest first).
disk_policy = "lru"
# Disk-tier time to live in seconds, from creation; 0 means none.
disk_ttl_secs = 0

[monitor]
# Run the performance monitor (report.html, metrics.prom, metrics.jsonl); --no-monitor: off.
enable = true
# Sampling interval in milliseconds.
interval_ms = 1000
# Samples kept in memory for the live view and alerts (all go to metrics.jsonl).
history_len = 3600
# Alert when resident memory passes this percentage of [pipeline] memory_limit.
memory_alert_pct = 90.0
# Alert when rows/s stay this many percent below their moving average...
throughput_drop_pct = 50.0
# ...taken over this many seconds...
throughput_window_s = 60.0
# ...for at least this many seconds.
throughput_drop_s = 10.0
# Alert when a worker's input queue stays full (readers blocked on it) this many seconds.
queue_saturation_s = 60.0
# Alert when more than this share of the rows read is quarantined.
quarantine_rate = 0.05
# Alert when a worker stays idle this many seconds while the others are busy.
idle_worker_s = 10.0
# Serve /metrics (Prometheus) during the run: PORT (loopback) or HOST:PORT; empty: off.
http_addr = ""
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
