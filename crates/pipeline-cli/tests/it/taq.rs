//! Trades and quotes as separate inputs (`run --trades … --quotes …`): the as-of join
//! against pandas' `merge_asof(by="symbol", allow_exact_matches=False)` on a plain NBBO
//! replay (`taq_oracle.py`), across gzip files, day files and small chunks, with quote
//! streams crossing midnight UTC and days without quotes (the gen-data `taq-split` layout);
//! the symbol-sorted order; the ledger over trades and quotes.

use std::path::{Path, PathBuf};

use pipeline_io::{Codec, GenConfig, Layout};
use serde_json::Value;
use tempfile::tempdir;

use crate::util::{assert_balanced, summary, tickpipe};

fn gen_taq(dir: &Path, codec: Codec) -> PathBuf {
    let input = dir.join("in");
    let cfg = GenConfig {
        rows: 6_000,
        symbols: 4,
        days: Some(3),
        layout: Layout::TaqSplit,
        compression: codec,
        ..GenConfig::default()
    };
    pipeline_io::generate_to_dir(&cfg, &input).expect("gen-data");
    input
}

fn files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .map(|p| p.display().to_string())
        .collect();
    v.sort();
    v
}

fn run(input: &Path, out: &Path, config: &str, extra: &[&str]) -> Value {
    let cfg = out.with_extension("toml");
    std::fs::write(&cfg, config).unwrap();
    let sj = out.with_extension("json");
    tickpipe()
        .arg("run")
        .arg("--trades")
        .args(files(input, "trades_"))
        .arg("--quotes")
        .args(files(input, "quotes_"))
        .args([
            "--out",
            out.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .args([
            "--chunk-size",
            "300",
            "-q",
            "--summary-json",
            sj.to_str().unwrap(),
        ])
        .args(extra)
        .assert()
        .success();
    summary(&sj)
}

fn data_rows(dir: &Path) -> u64 {
    let mut n = 0;
    for f in std::fs::read_dir(dir).unwrap().flatten() {
        let t = std::fs::read_to_string(f.path()).unwrap_or_default();
        n += t.lines().count().saturating_sub(1) as u64;
    }
    n
}

/// The oracle's verdict, or `None` (skipped) without pandas outside CI.
fn oracle(input: &Path, out: &Path, horizon_ns: i64, delay_ns: i64) -> Option<Value> {
    let python = std::env::var("TICKPIPE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import pandas, pyarrow"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true needs {python} with pandas and pyarrow"
        );
        eprintln!("skipped the pandas oracle: {python} lacks pandas or pyarrow");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/taq_oracle.py");
    let o = std::process::Command::new(&python)
        .arg(script)
        .arg(input.join("trades_*"))
        .arg(input.join("quotes_*"))
        .arg(out.join("data"))
        .arg(out.join(tickpipe::TAQ_DAILY_FILE))
        .arg(horizon_ns.to_string())
        .arg(delay_ns.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(serde_json::from_slice(&o.stdout).unwrap())
}

fn assert_oracle_agrees(v: &Value, trades: u64) {
    assert_eq!(v["trades"], trades, "{v}");
    assert_eq!(v["out"], trades, "{v}");
    for k in [
        "bid",
        "ask",
        "bid_size",
        "ask_size",
        "quote_ts",
        "effective_spread",
        "realized_spread",
        "daily_missing",
        "daily_trades",
        "daily_vwap",
    ] {
        assert_eq!(v[k], 0, "{k} differs from the oracle: {v}");
    }
    // Most trades have a quote; the quote-less symbol-days' trades have none (or
    // yesterday's).
    assert!(v["matched"].as_u64().unwrap() > trades / 2, "{v}");
}

#[test]
fn the_join_matches_pandas_merge_asof_across_files_and_chunks() {
    let tmp = tempdir().unwrap();
    let input = gen_taq(tmp.path(), Codec::Gzip);
    let out = tmp.path().join("o");
    let s = run(
        &input,
        &out,
        "[taq]\ndelay = \"1s\"\nhorizons = [\"30s\"]\n",
        &["--no-features"],
    );
    assert_balanced(&s);
    let t = &s["taq"];
    assert_eq!(t["trades_read"], 6_000, "{s}");
    assert_eq!(t["trades_out"], 6_000, "{s}");
    // Every quote row is accounted for: read = applied + crossed on its exchange.
    let q = t["quotes_read"].as_u64().unwrap();
    assert_eq!(
        t["quotes_applied"].as_u64().unwrap() + t["quotes_crossed_exchange"].as_u64().unwrap(),
        q
    );
    assert_eq!(
        s["rows_read"],
        6_000 + q,
        "the ledger counts quotes too: {s}"
    );
    assert_eq!(
        s["rows_removed"]["quote_joined"], t["quotes_applied"],
        "{s}"
    );
    assert_eq!(
        s["rows_written"], 6_000,
        "no trade is lost to a quote rule: {s}"
    );
    assert!(t["matches"]["no_quote"].as_u64().is_some(), "{s}");
    assert!(out.join(tickpipe::TAQ_DAILY_FILE).exists());
    if let Some(v) = oracle(&input, &out, 30_000_000_000, 1_000_000_000) {
        assert_oracle_agrees(&v, 6_000);
    }
}

/// The same data sorted by symbol then time (NYSE Daily TAQ's order), joined with
/// `order = "symbol"`, gives the same trades by quote as the time-sorted files.
#[test]
fn symbol_sorted_files_join_like_time_sorted_ones() {
    let tmp = tempdir().unwrap();
    let input = gen_taq(tmp.path(), Codec::None);
    let sorted = tmp.path().join("by_symbol");
    std::fs::create_dir_all(&sorted).unwrap();
    for f in std::fs::read_dir(&input).unwrap().flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let mut rows: Vec<&str> = lines.collect();
        // ts,symbol,... : by symbol, then time (ISO times sort as text).
        rows.sort_by_key(|l| {
            let mut p = l.splitn(3, ',');
            let ts = p.next().unwrap();
            (p.next().unwrap().to_string(), ts.to_string())
        });
        let body = std::iter::once(header)
            .chain(rows)
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(sorted.join(f.file_name()), body + "\n").unwrap();
    }
    let by_time = run(
        &input,
        &tmp.path().join("t"),
        "",
        &["--no-features", "--no-clean"],
    );
    let by_symbol = run(
        &sorted,
        &tmp.path().join("s"),
        "[taq]\norder = \"symbol\"\n",
        &["--no-features", "--no-clean"],
    );
    assert_balanced(&by_symbol);
    assert_eq!(by_symbol["taq"]["matches"], by_time["taq"]["matches"]);
    assert_eq!(by_symbol["taq"]["days"], by_time["taq"]["days"]);
    assert_eq!(by_symbol["rows_written"], 6_000);
    // Read as time-sorted, the symbol-sorted files break the order: the rows that do are
    // quarantined with the reason and a hint, and the ledger still balances.
    let wrong = run(
        &sorted,
        &tmp.path().join("w"),
        "[pipeline]\nmax_quarantine_fraction = 1.0\n",
        &["--no-features", "--no-clean"],
    );
    assert_balanced(&wrong);
    let q = &wrong["quarantined_by_reason"];
    assert!(q["taq_unsorted_trade"].as_u64() > Some(0), "{wrong}");
    assert!(q["taq_unsorted_quote"].as_u64() > Some(0), "{wrong}");
    assert_eq!(
        wrong["rows_read"].as_u64().unwrap(),
        data_rows(&sorted),
        "{wrong}"
    );
}

#[test]
fn trades_that_already_carry_quotes_are_refused_before_reading() {
    let tmp = tempdir().unwrap();
    let input = gen_taq(tmp.path(), Codec::None);
    // Quotes given as trades: they have bid and ask columns.
    let q = files(&input, "quotes_");
    let a = tickpipe()
        .args(["run", "--trades", &q[0], "--quotes", &q[1], "--out"])
        .arg(tmp.path().join("o"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("already has a `bid` column"), "{err}");
    // Trades need quotes, and a run needs some input.
    let t = files(&input, "trades_");
    tickpipe()
        .args(["run", "--trades", &t[0], "--out"])
        .arg(tmp.path().join("o2"))
        .assert()
        .code(2);
    let a = tickpipe()
        .args(["run", "--out"])
        .arg(tmp.path().join("o3"))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("--trades with --quotes"), "{err}");
}
