//! The real vendor datasets in ../shared/data/real load with the right row counts.

use tempfile::tempdir;

use crate::util::*;

#[test]
fn real_datasets_run_with_expected_row_counts() {
    let Some(dir) = real_data() else { return };
    let cases = [
        (
            "tardis-binance-futures-btcusdt-trades/tardis_trades.csv",
            9_999u64,
        ),
        ("histdata-eurusd-ticks/quote_tick_data.csv", 9_500),
        (
            "lean-oanda-eurusd-ticks/20140508_eurusd_tick_quote.csv",
            87_833,
        ),
        (
            "lobster-aapl-l1/AAPL_2012-06-21_34200000_57600000_message_1.csv",
            118_497,
        ),
    ];
    for (file, rows) in cases {
        let tmp = tempdir().unwrap();
        let sj = tmp.path().join("s.json");
        let path = dir.join(file);
        tickpipe()
            .args([
                "run",
                path.to_str().unwrap(),
                "--out",
                tmp.path().join("o").to_str().unwrap(),
                "-q",
                "--summary-json",
            ])
            .arg(&sj)
            .assert()
            .success();
        let s = summary(&sj);
        assert_balanced(&s);
        assert_eq!(s["rows_read"].as_u64().unwrap(), rows, "{file}: {s}");
        assert_eq!(s["rows_quarantined"], 0, "{file}: {s}");
    }
}

#[test]
fn real_datasets_inspect() {
    let Some(dir) = real_data() else { return };
    let a = tickpipe()
        .args(["inspect", "--json"])
        .arg(dir.join("lobster-goog-l10/GOOG_2012-06-21_34200000_57600000_message_10.csv"))
        .arg(dir.join("histdata-eurusd-ticks/quote_tick_data.csv"))
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    // Inputs are reported in path order: histdata first, then lobster.
    let v = [v["files"][1].clone(), v["files"][0].clone()];
    assert_eq!(v[0]["rows"], 147_916);
    assert_eq!(v[0]["symbols"][0], "GOOG");
    // LOBSTER time is seconds after midnight New York time: 09:30 EDT = 13:30 UTC.
    assert!(
        v[0]["ts_min"]
            .as_str()
            .unwrap()
            .starts_with("2012-06-21T13:30:00"),
        "{}",
        v[0]
    );
    // HistData is fixed UTC-5: 17:00 EST = 22:00 UTC.
    assert!(
        v[1]["ts_min"]
            .as_str()
            .unwrap()
            .starts_with("2020-01-01T22:00:00"),
        "{}",
        v[1]
    );
}
