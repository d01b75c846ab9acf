//! Integration tests: the generator's variety options (timestamp formats, symbol skew, vendor
//! column order) read back through `open_source` with default options, as `tickpipe run` would
//! read them without a config.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow_array::{Array, StringArray, TimestampNanosecondArray};
use arrow_schema::DataType;
use pipeline_core::Chunk;
use pipeline_io::{
    AnomalyRates, ColumnOrder, GenConfig, InputFile, MANIFEST_FILE, ReadOptions, TAQ_HEADER,
    TimestampFormat, VENDOR_TAQ_HEADER, generate_to_dir, open_source,
};

const DAY_NS: i64 = 86_400_000_000_000;

/// What the reader made of one generated file.
struct ReadBack {
    /// Every decoded row, concatenated.
    rows: Chunk,
    /// Line numbers of the rejected rows.
    rejected: BTreeSet<u64>,
}

impl ReadBack {
    fn ts(&self) -> Vec<i64> {
        let col = self.rows.column_by_name("ts").expect("a ts column");
        let ts = col
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .expect("ts is timestamp[ns]");
        assert_eq!(ts.null_count(), 0, "a timestamp did not parse");
        ts.values().to_vec()
    }

    /// Column `name` as text (dictionaries and numbers alike), nulls as `None`.
    fn text(&self, name: &str) -> Vec<Option<String>> {
        let col = self
            .rows
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"));
        let text = arrow_cast::cast(col, &DataType::Utf8).unwrap();
        let text = text.as_any().downcast_ref::<StringArray>().unwrap();
        text.iter().map(|v| v.map(str::to_string)).collect()
    }

    fn lines(&self) -> Vec<u64> {
        self.rows.lines().values().to_vec()
    }
}

/// Generates `cfg` (layout single) into a fresh directory; returns it with the data file's
/// text and the manifest's.
fn generate(cfg: &GenConfig) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate_to_dir(cfg, dir.path()).unwrap();
    assert_eq!(summary.rows, cfg.rows);
    let text = std::fs::read_to_string(dir.path().join("taq.csv")).unwrap();
    let manifest = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
    (dir, text, manifest)
}

/// Reads `dir/taq.csv` with default options.
fn read_back(dir: &Path) -> ReadBack {
    let input = InputFile::new(dir.join("taq.csv"));
    let mut src = open_source(&input, 0, &ReadOptions::default()).unwrap();
    let mut chunks = Vec::new();
    let mut rejected = BTreeSet::new();
    while let Some(chunk) = src.next() {
        chunks.push(chunk.unwrap());
        rejected.extend(src.drain_rejects().iter().map(|r| r.line));
    }
    rejected.extend(src.drain_rejects().iter().map(|r| r.line));
    ReadBack {
        rows: Chunk::concat(&chunks).unwrap(),
        rejected,
    }
}

fn clean(rows: u64) -> GenConfig {
    GenConfig {
        rows,
        symbols: 8,
        days: Some(3),
        anomalies: AnomalyRates::none(),
        ..GenConfig::default()
    }
}

/// The first field of the first data line, checked against the format's shape so a format
/// that silently fell back to another would fail here.
fn first_ts_text(text: &str, order: ColumnOrder) -> String {
    let line = text.lines().nth(1).expect("a data line");
    let field = match order {
        ColumnOrder::Canonical => 0,
        ColumnOrder::Vendor => 1,
    };
    line.split(',').nth(field).unwrap().to_string()
}

fn assert_shape(format: TimestampFormat, ts: &str) {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let ok = match format {
        TimestampFormat::Iso => ts.len() == 30 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'),
        TimestampFormat::IsoMicros => {
            ts.len() == 27 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z')
        }
        TimestampFormat::SpaceMicros => ts.len() == 26 && ts.as_bytes()[10] == b' ',
        TimestampFormat::EpochNs => ts.len() == 19 && digits(ts),
        TimestampFormat::EpochMs => ts.len() == 13 && digits(ts),
    };
    assert!(ok, "{format:?} wrote {ts:?}");
}

/// Every timestamp format, in both column orders, reads back with no rejects to the default
/// file's times truncated to the precision written, and the same symbols, prices and lines.
#[test]
fn every_ts_format_and_column_order_reads_back_to_the_written_time() {
    let base = clean(4_000);
    let (iso_dir, iso_text, _) = generate(&base);
    assert!(iso_text.starts_with(TAQ_HEADER));
    let iso = read_back(iso_dir.path());
    assert!(iso.rejected.is_empty(), "{:?}", iso.rejected);
    assert_eq!(iso.rows.num_rows(), 4_000);
    let iso_ts = iso.ts();
    for order in [ColumnOrder::Canonical, ColumnOrder::Vendor] {
        for format in TimestampFormat::ALL {
            let what = format!("{format:?} {order:?}");
            let cfg = GenConfig {
                ts_format: format,
                column_order: order,
                ..base.clone()
            };
            let (dir, text, _) = generate(&cfg);
            assert!(text.starts_with(order.header()), "{what}");
            assert_shape(format, &first_ts_text(&text, order));
            let got = read_back(dir.path());
            assert!(
                got.rejected.is_empty(),
                "{what}: rejected {:?}",
                got.rejected
            );
            assert_eq!(got.rows.num_rows(), 4_000, "{what}");
            let res = format.resolution_ns();
            let want: Vec<i64> = iso_ts.iter().map(|t| t - t.rem_euclid(res)).collect();
            let ts = got.ts();
            if let Some(i) = (0..ts.len()).find(|&i| ts[i] != want[i]) {
                panic!(
                    "{what}: row {i} read as {} ns, written from {} ns",
                    ts[i], iso_ts[i]
                );
            }
            assert_eq!(got.lines(), iso.lines(), "{what}");
            for col in ["symbol", "price", "size", "bid", "ask", "conditions"] {
                assert_eq!(got.text(col), iso.text(col), "{what}: column {col}");
            }
        }
    }
}

/// Rows per symbol of a read-back file, in symbol order of the generator.
fn shares(got: &ReadBack, symbols: usize) -> Vec<f64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for s in got.text("symbol") {
        *counts.entry(s.expect("a symbol")).or_default() += 1;
    }
    assert_eq!(counts.len(), symbols, "{counts:?}");
    let total: u64 = counts.values().sum();
    (0..symbols)
        .map(|i| counts[&pipeline_io::symbol_name(i)] as f64 / total as f64)
        .collect()
}

/// The vendor column order with a Zipf skew of 1 reads without a config, and the symbols'
/// shares follow 1/(i+1) normalised.
#[test]
fn vendor_order_with_symbol_skew_reads_with_zipf_shares() {
    let cfg = GenConfig {
        rows: 20_000,
        symbols: 20,
        days: Some(4),
        symbol_skew: 1.0,
        column_order: ColumnOrder::Vendor,
        ts_format: TimestampFormat::EpochMs,
        anomalies: AnomalyRates::none(),
        ..GenConfig::default()
    };
    let (dir, text, _) = generate(&cfg);
    assert!(text.starts_with(VENDOR_TAQ_HEADER));
    let got = read_back(dir.path());
    assert!(got.rejected.is_empty(), "{:?}", got.rejected);
    assert_eq!(got.rows.num_rows(), 20_000);
    // Every vendor name was mapped to its canonical column: none is left over.
    let names: Vec<String> = got
        .rows
        .data_batch()
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let canonical: Vec<&str> = TAQ_HEADER.split(',').collect();
    for name in &canonical {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    assert_eq!(names.len(), canonical.len(), "{names:?}");
    let h20: f64 = (1..=20).map(|k| 1.0 / k as f64).sum();
    let got_shares = shares(&got, 20);
    for (i, share) in got_shares.iter().enumerate() {
        let want = 1.0 / ((i + 1) as f64 * h20);
        assert!(
            (share - want).abs() < 0.002 + 0.02 * want,
            "symbol {i}: share {share:.4}, Zipf says {want:.4}"
        );
    }
    assert!((0.27..0.29).contains(&got_shares[0]), "{got_shares:?}");
    assert!((0.012..0.016).contains(&got_shares[19]), "{got_shares:?}");
    // The default skew is the historic 1/√rank; skew 0 is uniform.
    for skew in [0.5, 0.0] {
        let cfg = GenConfig {
            symbol_skew: skew,
            ..cfg.clone()
        };
        let (dir, _, _) = generate(&cfg);
        let s = shares(&read_back(dir.path()), 20);
        let norm: f64 = (1..=20).map(|k| (k as f64).powf(-skew)).sum();
        for (i, share) in s.iter().enumerate() {
            let want = 1.0 / ((i + 1) as f64).powf(skew) / norm;
            assert!(
                (share - want).abs() < 0.002,
                "skew {skew}: symbol {i}: share {share:.4}, want {want:.4}"
            );
        }
    }
}

/// A steep skew leaves every symbol at least one row on every day with rows enough.
#[test]
fn a_steep_skew_keeps_every_symbol_every_day() {
    let cfg = GenConfig {
        rows: 600,
        symbols: 20,
        days: Some(5),
        symbol_skew: 3.0,
        ts_format: TimestampFormat::EpochNs,
        ..clean(600)
    };
    let (dir, _, _) = generate(&cfg);
    let got = read_back(dir.path());
    assert_eq!(got.rows.num_rows(), 600);
    let mut cells: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for (ts, sym) in got.ts().into_iter().zip(got.text("symbol")) {
        *cells
            .entry((ts.div_euclid(DAY_NS), sym.unwrap()))
            .or_default() += 1;
    }
    let days: BTreeSet<i64> = cells.keys().map(|(d, _)| *d).collect();
    assert_eq!(days.len(), 5);
    assert_eq!(cells.len(), 5 * 20, "a symbol went missing on some day");
    let aapl: u64 = cells
        .iter()
        .filter(|((_, s), _)| s == "AAPL")
        .map(|(_, n)| n)
        .sum();
    assert!(aapl > 400, "AAPL has {aapl} of 600 rows at skew 3");
}

/// With anomalies, every variant writes the same manifest (rows are named by file and line),
/// and the reader rejects the same lines in each, all of them manifest lines.
#[test]
fn anomalies_are_the_same_lines_in_every_variant() {
    let base = GenConfig {
        anomalies: AnomalyRates::uniform(0.004),
        ..clean(5_000)
    };
    let (dir, _, manifest) = generate(&base);
    let labelled: BTreeSet<u64> = manifest
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["line"].as_u64().unwrap()
        })
        .collect();
    assert!(labelled.len() > 100, "{}", labelled.len());
    let iso = read_back(dir.path());
    assert!(!iso.rejected.is_empty());
    assert!(iso.rejected.is_subset(&labelled), "{:?}", iso.rejected);
    for order in [ColumnOrder::Canonical, ColumnOrder::Vendor] {
        for format in TimestampFormat::ALL {
            let cfg = GenConfig {
                ts_format: format,
                column_order: order,
                symbol_skew: 1.0,
                ..base.clone()
            };
            let (dir, _, m) = generate(&cfg);
            let unskewed = GenConfig {
                symbol_skew: base.symbol_skew,
                ..cfg
            };
            let (udir, _, um) = generate(&unskewed);
            assert_eq!(um, manifest, "{format:?} {order:?}: manifest differs");
            let got = read_back(udir.path());
            assert_eq!(got.rejected, iso.rejected, "{format:?} {order:?}");
            // The skewed file is labelled just as truly, on other lines.
            let got = read_back(dir.path());
            assert!(!m.is_empty());
            assert!(
                got.rejected
                    .iter()
                    .all(|l| m.contains(&format!("\"line\":{l},"))),
                "{format:?} {order:?}: a rejected line is not in the manifest"
            );
        }
    }
}
