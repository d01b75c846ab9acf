//! Real vendor data read right (issue 12), end to end.
//!
//! The `tickpipe` binary (folders of data and non-data files, LOBSTER joined with its order
//! book, bars of executions, quotes-only bars, the three header layouts, the whole real
//! folder as one dataset, time features in each exchange's zone) and the same through the
//! `tickpipe` library ([`facade_run`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int8Type, TimestampNanosecondType};
use pipeline_core::Config;
use tempfile::tempdir;

use crate::util::*;

const AAPL: &str = "lobster-aapl-l1/AAPL_2012-06-21_34200000_57600000_message_1.csv";
const LEAN: &str = "lean-oanda-eurusd-ticks/20140508_eurusd_tick_quote.csv";
const HISTDATA: &str = "histdata-eurusd-ticks/quote_tick_data.csv";
const TARDIS: &str = "tardis-binance-futures-btcusdt-trades/tardis_trades.csv";

/// Shares of AAPL executed in the sample: the sizes of its type 4 and 5 messages.
const AAPL_EXECUTED: f64 = 2_850_140.0;

/// The README's datasets: symbol, rows read, rows written by the default run (LEAN's 4
/// byte-identical rows are removed by exact de-duplication: it has no id), first and last
/// timestamp (UTC).
const DATASETS: [(&str, u64, u64, &str, &str); 5] = [
    (
        "AAPL",
        118_497,
        118_497,
        "2012-06-21T13:30:00.004241176Z",
        "2012-06-21T19:59:59.913117637Z",
    ),
    (
        "GOOG",
        147_916,
        147_916,
        "2012-06-21T13:30:00.015105074Z",
        "2012-06-21T19:59:59.871751084Z",
    ),
    (
        "BTCUSDT",
        9_999,
        9_999,
        "2020-02-22T00:00:02.111Z",
        "2020-02-22T02:05:47.728Z",
    ),
    (
        "EURUSD",
        87_833,
        87_829,
        "2014-05-08T00:00:08.715Z",
        "2014-05-08T23:59:49.008Z",
    ),
    (
        "quote_tick_data",
        9_500,
        9_500,
        "2020-01-01T22:00:00.065Z",
        "2020-01-02T04:00:52.125Z",
    ),
];

fn ns(rfc3339: &str) -> i64 {
    let t = chrono_free_parse(rfc3339);
    t.unwrap_or_else(|| panic!("bad timestamp {rfc3339}"))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f]Z` into ns since the epoch (the CLI tests have no chrono).
fn chrono_free_parse(s: &str) -> Option<i64> {
    let b = s.strip_suffix('Z')?;
    let (date, time) = b.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let days = pipeline_io::days_from_civil(y, m as u32, dd as u32)?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let secs = t.next()?? * 3600 + t.next()?? * 60 + t.next()??;
    let frac_ns = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")[..9].parse::<i64>().ok()?
    };
    Some((days * 86_400 + secs) * 1_000_000_000 + frac_ns)
}

/// The rows of one symbol's partition under `data`.
fn partition(data: &Path, symbol: &str) -> Vec<RecordBatch> {
    pipeline_io::read_dataset(&data.join(format!("symbol={symbol}"))).unwrap()
}

fn rows(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

fn f64s(batches: &[RecordBatch], name: &str) -> Vec<Option<f64>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .unwrap_or_else(|| panic!("no column {name}"))
                .as_primitive::<Float64Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

fn i8s(batches: &[RecordBatch], name: &str) -> Vec<Option<i8>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<Int8Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

fn ts_span(batches: &[RecordBatch]) -> (i64, i64) {
    let all: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("ts")
                .unwrap()
                .as_primitive::<TimestampNanosecondType>()
                .values()
                .to_vec()
        })
        .collect();
    (*all.iter().min().unwrap(), *all.iter().max().unwrap())
}

fn run_bin(args: &[&str], out: &Path) -> serde_json::Value {
    let sj = out.join("summary.json");
    tickpipe()
        .args(args)
        .args(["--out", out.to_str().unwrap(), "-q", "--summary-json"])
        .arg(&sj)
        .assert()
        .success();
    summary(&sj)
}

#[test]
fn a_sample_folder_with_its_anomaly_list_and_a_readme_runs_clean() {
    // The README's first usage example: gen-data writes anomalies.jsonl beside the data.
    let tmp = tempdir().unwrap();
    let sample = tmp.path().join("sample");
    let cfg = pipeline_io::GenConfig {
        rows: 3_000,
        symbols: 2,
        days: Some(2),
        ..pipeline_io::GenConfig::default()
    };
    pipeline_io::generate_to_dir(&cfg, &sample).unwrap();
    std::fs::write(sample.join("README.md"), "# sample\n\nts,price\n1,2\n").unwrap();
    assert!(sample.join(pipeline_io::MANIFEST_FILE).exists());
    let s = run_bin(&["run", sample.to_str().unwrap()], &tmp.path().join("out"));
    assert_balanced(&s);
    assert_eq!(s["files_failed"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(s["files_ok"], 1, "{s}");
}

#[test]
fn lobster_messages_run_joined_with_their_book_and_all_kept() {
    let Some(real) = real_data() else { return };
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("o");
    // The folder: message, order book and LOBSTER's ReadMe.txt: one input, nothing fails.
    let s = run_bin(
        &["run", real.join("lobster-aapl-l1").to_str().unwrap()],
        &out,
    );
    assert_balanced(&s);
    assert_eq!(s["files_ok"], 1, "{s}");
    assert_eq!(s["files_failed"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(s["rows_read"], 118_497, "{s}");
    assert_eq!(s["rows_written"], 118_497, "every message kept: {s}");
    let b = partition(&out.join("data"), "AAPL");
    let bid = f64s(&b, "bid");
    let with_book = bid.iter().filter(|x| x.is_some()).count();
    assert!(
        with_book * 100 >= bid.len() * 99,
        "{with_book} of {}",
        bid.len()
    );
    let mid = f64s(&b, "mid");
    assert!(mid.iter().filter(|x| x.is_some()).count() * 100 >= mid.len() * 99);
    // Side is the aggressor's: executions against resting sells were buyer-initiated.
    let side = i8s(&b, "side");
    let dir = i8s(&b, "direction");
    for (s, d) in side.iter().zip(&dir) {
        if let (Some(s), Some(d)) = (s, d) {
            assert_eq!(*s, -*d);
        }
    }
    assert!(side.iter().filter(|s| s.is_some()).count() >= 34_990);
    // Returns are of executions: the add/cancel/delete rows have none.
    let ret = f64s(&b, "return");
    assert!(ret.iter().filter(|r| r.is_some()).count() <= 23_658 + 11_332);
}

#[test]
fn bars_of_lobster_messages_sum_executed_shares() {
    let Some(real) = real_data() else { return };
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("o");
    let s = run_bin(
        &[
            "bars",
            real.join(AAPL).to_str().unwrap(),
            "--kind",
            "time:1m",
        ],
        &out,
    );
    assert_balanced(&s);
    let b = pipeline_io::read_dataset(&out.join("data")).unwrap();
    let volume: f64 = f64s(&b, "volume").iter().flatten().sum();
    assert_eq!(volume, AAPL_EXECUTED, "{s}");
    assert_eq!(
        s["rows_removed"]["bar_non_trade"],
        118_497 - 23_658 - 11_332,
        "{s}"
    );
}

#[test]
fn quotes_only_files_get_bars_and_price_features_on_the_mid() {
    let Some(real) = real_data() else { return };
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("bars");
    let s = run_bin(
        &[
            "bars",
            real.join(LEAN).to_str().unwrap(),
            "--kind",
            "time:5m",
        ],
        &out,
    );
    assert_balanced(&s);
    assert!(s["rows_removed"].get("bar_missing_input").is_none(), "{s}");
    let b = pipeline_io::read_dataset(&out.join("data")).unwrap();
    // 24 hours of 5-minute bars, less the empty intervals.
    assert!(rows(&b) > 250 && rows(&b) <= 288, "{} bars", rows(&b));
    let out = tmp.path().join("run");
    run_bin(&["run", real.join(HISTDATA).to_str().unwrap()], &out);
    let b = partition(&out.join("data"), "quote_tick_data");
    for c in [
        "return",
        "price_lag_1",
        "sma_20",
        "ema_20",
        "rolling_std_20",
    ] {
        let n = f64s(&b, c).iter().filter(|x| x.is_some()).count();
        assert!(
            n as u64 * 10 >= rows(&b) * 9,
            "{c}: {n} of {} set",
            rows(&b)
        );
    }
}

#[test]
fn three_header_layouts_run() {
    let tmp = tempdir().unwrap();
    let d = tmp.path();
    let files = [
        (
            "AAPL_2024-03-08.csv",
            "time,price,size\n09:30:00.123,185.1,100\n09:30:01.5,185.2,200\n09:31:00,185.0,50\n",
        ),
        (
            "epoch.csv",
            "epoch,Sym,Px,Qty\n1709908200123,AAPL,185.1,100\n1709908201500,AAPL,185.2,200\n1709908202500,AAPL,185.3,200\n",
        ),
        (
            "comma.csv",
            "ts;symbol;price;size\n2024-03-08T14:30:00Z;AAPL;510,12;100\n2024-03-08T14:30:01Z;AAPL;510,15;200\n2024-03-08T14:30:02Z;AAPL;510,16;200\n",
        ),
    ];
    for (name, text) in files {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        let s = run_bin(&["run", p.to_str().unwrap()], &d.join(format!("o-{name}")));
        assert_eq!(s["rows_read"], 3, "{name}: {s}");
        assert_eq!(s["rows_quarantined"], 0, "{name}: {s}");
        assert_eq!(s["rows_written"], 3, "{name}: {s}");
    }
    // No time column at all: refused before any row, naming the headers and the fix.
    let p = d.join("nots.csv");
    std::fs::write(&p, "Sym,Px,Qty\nAAPL,1,2\n").unwrap();
    // A schema error stops the run up front (exit 2, #13), said once.
    let a = tickpipe()
        .args(["run", p.to_str().unwrap(), "--out"])
        .arg(d.join("o-nots"))
        .arg("-q")
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("`Sym`, `Px`, `Qty`") && err.contains("--columns ts="),
        "{err}"
    );
    assert_eq!(err.matches("Sym").count(), 1, "said once: {err}");
    assert!(!d.join("o-nots").join("data").exists(), "nothing written");
}

/// The run through the `tickpipe` library: the facade describes the dataset once, sets its
/// schema as every source's target and the layouts' zones as `symbol_time_zones`, then runs
/// reorder → cleaning → features (or bars). Returns the report; the dataset is under
/// `out/data`.
fn facade_run(inputs: &[PathBuf], out: &Path, bars: Option<&str>) -> tickpipe::RunReport {
    let mut config = Config::default();
    config.pipeline.max_workers = 2;
    let mut b = tickpipe::Pipeline::builder()
        .inputs(inputs.iter().map(|p| p.display().to_string()))
        .config(config)
        .output(tickpipe::Output::dataset(out));
    if let Some(spec) = bars {
        b = b.stages(tickpipe::StageSet::cleaning()).bars(spec);
    }
    b.build().unwrap().run().unwrap()
}

#[test]
fn the_whole_real_folder_as_one_dataset_through_the_library() {
    let Some(real) = real_data() else { return };
    let tmp = tempdir().unwrap();
    let out = tmp.path();
    let report = facade_run(std::slice::from_ref(&real), out, None);
    assert!(report.files_failed.is_empty(), "{:?}", report.files_failed);
    assert_eq!(report.files_ok, 5);
    let read: u64 = DATASETS.iter().map(|d| d.1).sum();
    assert_eq!(report.rows_read, read);
    assert_eq!(
        report.rows_removed,
        BTreeMap::from([("dedupe_exact".to_string(), 4)]),
        "only LEAN's 4 id-less byte-identical rows go"
    );
    let data = out.join("data");
    for (symbol, _, written, first, last) in DATASETS {
        let b = partition(&data, symbol);
        assert_eq!(rows(&b), written, "{symbol}");
        assert_eq!(ts_span(&b), (ns(first), ns(last)), "{symbol}");
    }
    for symbol in ["AAPL", "GOOG"] {
        let b = partition(&data, symbol);
        let bid = f64s(&b, "bid");
        let n = bid.iter().filter(|x| x.is_some()).count() as u64;
        assert!(n * 100 >= rows(&b) * 99, "{symbol}: {n} rows with a bid");
    }
    // Time features in each exchange's zone: BTC's first trade is Saturday 00:00:02 UTC.
    let btc = partition(&data, "BTCUSDT");
    assert_eq!(i8s(&btc, "hour")[0], Some(0));
    assert_eq!(i8s(&btc, "day_of_week")[0], Some(5));
    let aapl = partition(&data, "AAPL");
    assert_eq!(i8s(&aapl, "hour")[0], Some(9));
    // Quotes-only data has its price features.
    let eur = partition(&data, "EURUSD");
    let n = f64s(&eur, "return").iter().filter(|x| x.is_some()).count();
    assert!(n as u64 * 10 >= rows(&eur) * 9, "{n} EURUSD returns");
    python_reads_as_one_dataset(&data, read - 4);

    // Bars of the same folder: AAPL's volume is its executed shares.
    let bars = out.join("bars");
    let report = facade_run(std::slice::from_ref(&real), &bars, Some("time:1m"));
    assert!(report.files_failed.is_empty(), "{:?}", report.files_failed);
    let b = partition(&bars.join("data"), "AAPL");
    let volume: f64 = f64s(&b, "volume").iter().flatten().sum();
    assert_eq!(volume, AAPL_EXECUTED);
    let lean = partition(&bars.join("data"), "EURUSD");
    assert!(rows(&lean) > 250, "{} EURUSD bars", rows(&lean));
}

/// Reads `dir` with Polars, DuckDB and pyarrow, each with no options but Hive partitioning,
/// and checks the row count and that EURUSD kept its bid (pyarrow and DuckDB used to drop it
/// when the first file they looked at had no `bid`). Python is `TICKPIPE_TEST_PYTHON`
/// (default `python3`); without polars, duckdb and pyarrow the check is skipped, except
/// under `CI=true`, where it fails.
fn python_reads_as_one_dataset(dir: &Path, rows: u64) {
    let python = std::env::var("TICKPIPE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import polars, duckdb, pyarrow.dataset"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true needs {python} with polars, duckdb and pyarrow"
        );
        eprintln!("skipped the Python readers: {python} lacks polars, duckdb or pyarrow");
        return;
    }
    let script = r#"
import json, sys
d = sys.argv[1]
import polars as pl, duckdb, pyarrow.dataset as ds
p = pl.scan_parquet(d + "/**/*.parquet", hive_partitioning=True).collect()
q = duckdb.sql(f"select count(*), count(bid) from read_parquet('{d}/**/*.parquet', hive_partitioning=true) where symbol = 'EURUSD'").fetchall()[0]
n = duckdb.sql(f"select count(*) from read_parquet('{d}/**/*.parquet', hive_partitioning=true)").fetchall()[0][0]
t = ds.dataset(d, partitioning="hive").to_table()
e = t.filter(ds.field("symbol") == "EURUSD")
print(json.dumps({
  "polars": p.height, "polars_eurusd_bid": int(p.filter(pl.col("symbol") == "EURUSD")["bid"].is_not_null().sum()),
  "duckdb": n, "duckdb_eurusd_bid": q[1],
  "pyarrow": t.num_rows, "pyarrow_eurusd_bid": e.num_rows - e.column("bid").null_count,
}))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in ["polars", "duckdb", "pyarrow"] {
        assert_eq!(v[k].as_u64(), Some(rows), "{k}: {v}");
        assert!(
            v[format!("{k}_eurusd_bid")].as_u64() > Some(80_000),
            "{k}: {v}"
        );
    }
}

#[test]
fn tickpipe_runs_the_whole_real_folder() {
    let Some(real) = real_data() else { return };
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("o");
    let s = run_bin(&["run", real.to_str().unwrap()], &out);
    assert_balanced(&s);
    assert_eq!(s["files_failed"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(s["files_ok"], 5, "{s}");
    assert_eq!(s["rows_read"], DATASETS.iter().map(|d| d.1).sum::<u64>());
    let data = out.join("data");
    for (symbol, _, written, first, last) in DATASETS {
        let b = partition(&data, symbol);
        assert_eq!(rows(&b), written, "{symbol}");
        assert_eq!(ts_span(&b), (ns(first), ns(last)), "{symbol}");
    }
    let btc = partition(&data, "BTCUSDT");
    assert_eq!(i8s(&btc, "hour")[0], Some(0), "BTC in UTC");
    python_reads_as_one_dataset(&data, s["rows_written"].as_u64().unwrap());
}

#[test]
fn crypto_time_features_are_in_utc() {
    let Some(real) = real_data() else { return };
    let tmp = tempdir().unwrap();
    let out = tmp.path().join("o");
    run_bin(&["run", real.join(TARDIS).to_str().unwrap()], &out);
    let b = partition(&out.join("data"), "BTCUSDT");
    // Saturday 2020-02-22 00:00:02 UTC, not Friday 19:00 in New York.
    assert_eq!(i8s(&b, "hour")[0], Some(0));
    assert_eq!(i8s(&b, "day_of_week")[0], Some(5));
}
