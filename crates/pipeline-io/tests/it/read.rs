//! Integration tests: read (real datasets, compression, encodings, damage, invariance).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, TimestampNanosecondArray};
use arrow_cast::pretty::pretty_format_batches;
use pipeline_core::{Chunk, Error, Reject, Source};
use pipeline_io::{InputFile, ReadOptions, open_source};

fn real_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/real");
    if d.is_dir() {
        return Some(d);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "real data missing at {}",
        d.display()
    );
    eprintln!("skipping: real data not found at {}", d.display());
    None
}

/// Reads a whole source: chunks, rejects, and the first error (if any).
fn read(src: &mut dyn Source) -> (Vec<Chunk>, Vec<Reject>, Option<Error>) {
    let mut chunks = Vec::new();
    let mut rejects = Vec::new();
    let mut err = None;
    while let Some(c) = src.next() {
        rejects.extend(src.drain_rejects());
        match c {
            Ok(c) => chunks.push(c),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    rejects.extend(src.drain_rejects());
    (chunks, rejects, err)
}

fn read_path(p: &Path, opts: &ReadOptions) -> (Vec<Chunk>, Vec<Reject>, Option<Error>) {
    let mut src = open_source(&InputFile::new(p), 0, opts).unwrap();
    read(src.as_mut())
}

fn rows(chunks: &[Chunk]) -> usize {
    chunks.iter().map(Chunk::num_rows).sum()
}

/// Pretty-printed rows; timestamps as integers (printing the `UTC` zone needs arrow's
/// chrono-tz feature, which the workspace leaves off).
fn table(chunks: &[Chunk]) -> String {
    let batches: Vec<RecordBatch> = chunks
        .iter()
        .map(|c| {
            let b = c.batch();
            let cols = b
                .columns()
                .iter()
                .map(|a| match a.data_type() {
                    arrow_schema::DataType::Timestamp(..) => {
                        arrow_cast::cast(a, &arrow_schema::DataType::Int64).unwrap()
                    }
                    _ => a.clone(),
                })
                .collect::<Vec<_>>();
            let fields = b
                .schema()
                .fields()
                .iter()
                .zip(&cols)
                .map(|(f, a)| arrow_schema::Field::new(f.name(), a.data_type().clone(), true))
                .collect::<Vec<_>>();
            RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), cols).unwrap()
        })
        .collect();
    pretty_format_batches(&batches).unwrap().to_string()
}

fn first_ts(c: &Chunk) -> i64 {
    c.column_by_name("ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .unwrap()
        .value(0)
}

fn ns(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

fn small_opts(chunk_rows: usize, threads: usize) -> ReadOptions {
    ReadOptions {
        chunk_rows,
        threads,
        ..ReadOptions::default()
    }
}

#[test]
fn real_datasets_load_with_types_and_counts() {
    let Some(d) = real_dir() else { return };
    let cases: [(&str, usize, Option<&str>, &str); 5] = [
        (
            "lobster-aapl-l1/AAPL_2012-06-21_34200000_57600000_message_1.csv",
            118_497,
            Some("2012-06-21T13:30:00.004241176Z"),
            "AAPL",
        ),
        (
            "lobster-goog-l10/GOOG_2012-06-21_34200000_57600000_message_10.csv",
            147_916,
            Some("2012-06-21T13:30:00.015105074Z"),
            "GOOG",
        ),
        (
            "tardis-binance-futures-btcusdt-trades/tardis_trades.csv",
            9_999,
            Some("2020-02-22T00:00:02.111Z"),
            "BTCUSDT",
        ),
        (
            "histdata-eurusd-ticks/quote_tick_data.csv",
            9_500,
            Some("2020-01-01T22:00:00.065Z"),
            "quote_tick_data",
        ),
        (
            "lean-oanda-eurusd-ticks/20140508_eurusd_tick_quote.csv",
            87_833,
            Some("2014-05-08T00:00:08.715Z"),
            "EURUSD",
        ),
    ];
    for (path, n, ts, sym) in cases {
        let (chunks, rejects, err) = read_path(&d.join(path), &small_opts(16_384, 2));
        assert!(err.is_none(), "{path}: {err:?}");
        assert!(rejects.is_empty(), "{path}: {:?}", &rejects[..1]);
        assert_eq!(rows(&chunks), n, "{path}");
        let c = &chunks[0];
        assert_eq!(c.line(0), 1 + u64::from(path.contains("tardis")), "{path}");
        assert_eq!(
            c.line(c.num_rows() - 1) as usize,
            c.num_rows() + usize::from(path.contains("tardis"))
        );
        if let Some(ts) = ts {
            assert_eq!(first_ts(c), ns(ts), "{path}");
        }
        let symbol =
            arrow_cast::display::array_value_to_string(c.column_by_name("symbol").unwrap(), 0)
                .unwrap();
        assert_eq!(symbol, sym, "{path}");
        let last = chunks.last().unwrap();
        assert_eq!(
            last.line(last.num_rows() - 1) as usize,
            n + usize::from(path.contains("tardis"))
        );
    }

    // LOBSTER: prices in dollars, side and type as Int8, order id Int64.
    let (chunks, _, _) = read_path(&d.join(cases[0].0), &ReadOptions::default());
    let s = table(&[chunks[0].slice(0, 2)]);
    assert!(s.contains("585.33"), "{s}");
    let schema = chunks[0].schema();
    for (name, ty) in [
        ("event_type", "Int8"),
        ("side", "Int8"),
        ("order_id", "Int64"),
        ("price", "Float64"),
        ("size", "Float64"),
    ] {
        assert_eq!(
            format!("{:?}", schema.field_with_name(name).unwrap().data_type()),
            ty,
            "{name}"
        );
    }
    // Tardis: a header; the exchange and side columns are recognised, ids pass through.
    let (chunks, _, _) = read_path(&d.join(cases[2].0), &ReadOptions::default());
    let s = table(&[chunks[0].slice(0, 1)]);
    assert!(
        s.contains("binance-futures") && s.contains("9682.0") && s.contains("0.132"),
        "{s}"
    );
    assert!(
        chunks[0]
            .schema()
            .field_with_name("local_timestamp")
            .is_ok()
    );
    // HistData and LEAN: quotes.
    let (chunks, _, _) = read_path(&d.join(cases[3].0), &ReadOptions::default());
    assert!(table(&[chunks[0].slice(0, 1)]).contains("1.12172"));
    let (chunks, _, _) = read_path(&d.join(cases[4].0), &ReadOptions::default());
    let last = chunks.last().unwrap();
    let t = last
        .column_by_name("ts")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .unwrap();
    assert_eq!(t.value(t.len() - 1), ns("2014-05-08T23:59:49.008Z"));
}

#[test]
fn lobster_orderbooks_map_level_one_and_pass_deeper_levels() {
    let Some(d) = real_dir() else { return };
    for (path, n, levels) in [
        (
            "lobster-aapl-l1/AAPL_2012-06-21_34200000_57600000_orderbook_1.csv",
            118_497,
            1,
        ),
        (
            "lobster-goog-l10/GOOG_2012-06-21_34200000_57600000_orderbook_10.csv",
            147_916,
            10,
        ),
    ] {
        // The order book alone has no timestamps: it is read through its message file.
        let e = open_source(&InputFile::new(d.join(path)), 0, &ReadOptions::default())
            .err()
            .expect("an order-book file alone must not open");
        assert!(e.to_string().contains("_message_"), "{e}");
        let message = d.join(path.replace("_orderbook_", "_message_"));
        let (chunks, rejects, err) = read_path(&message, &ReadOptions::default());
        assert!(err.is_none() && rejects.is_empty(), "{path}");
        assert_eq!(rows(&chunks), n);
        let schema = chunks[0].schema();
        // ts symbol price size bid ask bid_size ask_size event_type order_id side direction,
        // 4 columns per deeper level, _line.
        assert_eq!(
            schema.fields().len(),
            12 + 4 * (levels - 1) + 1,
            "{schema:?}"
        );
        assert!(schema.field_with_name("ask_price_1").is_err());
        if levels == 10 {
            assert!(schema.field_with_name("ask_price_10").is_ok());
            assert!(schema.field_with_name("bid_size_10").is_ok());
        }
        // Row 1: the book after the first message (AAPL: ask 585.94, bid 585.33).
        let s = table(&[chunks[0].slice(0, 1)]);
        assert!(s.contains("585.94") || s.contains("580.23"), "{s}");
        let nulls: usize = chunks
            .iter()
            .map(|c| c.column_by_name("bid").unwrap().null_count())
            .sum();
        assert_eq!(nulls, 0, "{path}: every message has its book");
    }
}

/// TAQ-style text with quoting, CRLF, blank lines and a last line without newline.
fn taq_text(n: usize, seed: u64) -> String {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut s = String::from("ts,symbol,price,size,bid,ask,exchange,conditions\n");
    for i in 0..n {
        let r = next();
        let sym = ["AAPL", "MSFT", "\"BRK,B\"", "GOOG"][(r % 4) as usize];
        let cond = match r % 7 {
            0 => "\"multi\nline\"",
            1 => "\"say \"\"hi\"\"\"",
            2 => "",
            _ => "@",
        };
        let px = if r % 11 == 0 {
            String::new()
        } else {
            format!("{}.{:02}", 100 + r % 50, r % 100)
        };
        let eol = if r % 5 == 0 { "\r\n" } else { "\n" };
        s.push_str(&format!(
            "2021-01-04T14:30:{:02}.{:09}Z,{sym},{px},{},{}.5,{}.75,Q,{cond}{eol}",
            i % 60,
            r % 1_000_000_000,
            r % 1000,
            99 + r % 50,
            100 + r % 50
        ));
        if i % 97 == 0 {
            s.push('\n');
        }
    }
    s.truncate(s.trim_end().len());
    s
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn chunk_size_threads_and_pushes_do_not_change_the_result() {
    let dir = tempfile::tempdir().unwrap();
    // Big enough for the mmap path (beyond the 256 KiB sample) and many blocks.
    let text = taq_text(8000, 7);
    let p = write_tmp(dir.path(), "t.csv", text.as_bytes());
    let (want, rej, err) = read_path(&p, &small_opts(1_000_000, 1));
    assert!(err.is_none() && rej.is_empty(), "{err:?} {rej:?}");
    assert_eq!(rows(&want), 8000);
    let want_t = table(&want);
    for (chunk, threads) in [(16, 1), (16, 3), (100, 3), (1000, 2), (4096, 3)] {
        let (got, rej, err) = read_path(&p, &small_opts(chunk, threads));
        assert!(err.is_none() && rej.is_empty());
        assert_eq!(table(&got), want_t, "chunk {chunk} threads {threads}");
        let seqs: Vec<u64> = got.iter().map(Chunk::seq).collect();
        assert_eq!(seqs, (0..got.len() as u64).collect::<Vec<_>>());
    }
    // The push decoder, fed in pieces of every size, decodes the same.
    let src = open_source(&InputFile::new(&p), 0, &ReadOptions::default()).unwrap();
    let plan = Arc::new(
        pipeline_io::CsvPlan::build(text.as_bytes(), true, "t.csv", &ReadOptions::default())
            .unwrap(),
    );
    assert_eq!(plan.schema(), src.schema());
    for piece in [1usize, 7, 64, 1000, 1 << 20] {
        for batch_rows in [16usize, 333, 100_000] {
            let mut dec = pipeline_io::CsvDecoder::new(plan.clone(), 0, batch_rows, 1, true);
            let mut out = Vec::new();
            for part in text.as_bytes().chunks(piece) {
                let mut off = 0;
                while off < part.len() {
                    off += dec.decode(&part[off..]).unwrap();
                    if dec.is_full() {
                        out.extend(dec.flush().unwrap());
                    }
                }
            }
            dec.finish().unwrap();
            out.extend(dec.flush().unwrap());
            assert!(out.iter().all(|c| c.num_rows() <= batch_rows + 1));
            assert_eq!(table(&out), want_t, "piece {piece} batch {batch_rows}");
        }
    }
}

#[test]
fn every_compression_reads_like_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let text = taq_text(3000, 11);
    let plain = write_tmp(dir.path(), "p.csv", text.as_bytes());
    let want = table(&read_path(&plain, &small_opts(500, 2)).0);
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let mut multi = gz(&text.as_bytes()[..text.len() / 2]);
    multi.extend(gz(&text.as_bytes()[text.len() / 2..]));
    let bz = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let zs = zstd::encode_all(text.as_bytes(), 1).unwrap();
    for (name, bytes) in [
        ("a.gz", gz(text.as_bytes())),
        ("m.gz", multi),
        ("b.bz2", bz),
        ("c.xz", xz),
        ("d.zst", zs),
    ] {
        // Names without the usual extension: detection is by magic bytes.
        let p = write_tmp(dir.path(), &format!("{name}.data"), &bytes);
        let (got, rej, err) = read_path(&p, &small_opts(500, 2));
        assert!(err.is_none() && rej.is_empty(), "{name}: {err:?}");
        assert_eq!(table(&got), want, "{name}");
    }
}

#[test]
fn truncated_gzip_keeps_rows_before_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let text = taq_text(20_000, 3);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    let gz = e.finish().unwrap();
    let p = write_tmp(dir.path(), "cut.csv.gz", &gz[..gz.len() * 2 / 3]);
    let (chunks, _, err) = read_path(&p, &small_opts(256, 2));
    match err {
        Some(Error::Corrupt {
            codec,
            decompressed_bytes,
            file,
            ..
        }) => {
            assert_eq!(codec, "gzip");
            assert!(decompressed_bytes > 0 && file.ends_with("cut.csv.gz"));
        }
        other => panic!("expected a corrupt-stream error, got {other:?}"),
    }
    let n = rows(&chunks);
    assert!(n > 5_000 && n < 20_000, "{n}");
    // Rows before the damage are exactly the file's first rows.
    let full = write_tmp(dir.path(), "full.csv", text.as_bytes());
    let all = read_path(&full, &small_opts(256, 2)).0;
    let all = Chunk::concat(&all).unwrap();
    let got = Chunk::concat(&chunks).unwrap();
    assert_eq!(table(&[all.slice(0, n)]), table(&[got]));
}

#[test]
fn damage_inside_the_first_block_is_still_an_error() {
    // A stream cut within the sniffing sample (and the first block): the header is consumed
    // first, and the read error must survive that step.
    let dir = tempfile::tempdir().unwrap();
    let text = taq_text(5_000, 2);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    let gz = e.finish().unwrap();
    let p = write_tmp(
        dir.path(),
        "tiny-cut.csv.gz",
        &gz[..3_000.min(gz.len() / 2)],
    );
    let (chunks, _, err) = read_path(&p, &ReadOptions::default());
    assert!(
        matches!(err, Some(Error::Corrupt { .. })),
        "expected a corrupt-stream error, got {err:?}"
    );
    assert!(rows(&chunks) > 0);
}

#[test]
fn encodings_are_detected_and_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let text = "ts,symbol,price,venue\n2021-01-04T14:30:00Z,SOCGEN,1.5,Société Générale\n2021-01-04T14:30:01Z,CAFE,2.5,Café\n";
    let want = table(
        &read_path(
            &write_tmp(dir.path(), "u.csv", text.as_bytes()),
            &ReadOptions::default(),
        )
        .0,
    );
    assert!(want.contains("Société Générale"), "{want}");
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(text.as_bytes());
    let mut le = vec![0xff, 0xfe];
    let mut be = vec![0xfe, 0xff];
    for u in text.encode_utf16() {
        le.extend(u.to_le_bytes());
        be.extend(u.to_be_bytes());
    }
    let (latin, _, _) = encoding_rs::WINDOWS_1252.encode(text);
    for (name, bytes) in [
        ("bom", bom),
        ("le", le),
        ("be", be),
        ("latin1", latin.into_owned()),
    ] {
        let (got, rej, err) = read_path(
            &write_tmp(dir.path(), name, &bytes),
            &ReadOptions::default(),
        );
        assert!(err.is_none() && rej.is_empty(), "{name}: {err:?} {rej:?}");
        assert_eq!(table(&got), want, "{name}");
    }
}

#[test]
fn malformed_rows_are_quarantined_or_fatal_in_strict_mode() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"ts,symbol,price,size\n2021-01-04T14:30:00Z,A,1.5,10\n2021-01-04T14:30:01Z,A,x1,10\n2021-01-04T14:30:02Z,A,1.5\nnot-a-time,A,1.5,10\n2021-01-04T14:30:03Z,A\xff,1.5,10\n2021-01-04T14:30:04Z,A,,\n";
    let p = write_tmp(dir.path(), "bad.csv", text);
    // Declared UTF-8, so the \xff byte is invalid (undeclared, the file would be Windows-1252).
    let mut o = ReadOptions::default();
    o.input.encoding = Some("utf-8".into());
    let (chunks, rejects, err) = read_path(&p, &o);
    assert!(err.is_none());
    assert_eq!(rows(&chunks), 2, "the good row and the row of nulls");
    assert_eq!(chunks[0].lines().values().to_vec(), vec![2, 7]);
    let got: Vec<(u64, &str)> = rejects
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "bad_number"),
            (4, "wrong_field_count"),
            (5, "bad_timestamp"),
            (6, "bad_encoding")
        ]
    );
    assert_eq!(
        rejects[0].raw.as_deref(),
        Some("2021-01-04T14:30:01Z,A,x1,10")
    );
    assert!(rejects[0].detail.contains("price"), "{}", rejects[0].detail);
    let strict = ReadOptions { strict: true, ..o };
    let (_, _, err) = read_path(&p, &strict);
    match err {
        Some(Error::Parse {
            line,
            column,
            found,
            ..
        }) => assert_eq!((line, column.as_str(), found.as_str()), (3, "price", "x1")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_header_only_and_binary_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (c, r, e) = read_path(
        &write_tmp(dir.path(), "empty.csv", b""),
        &ReadOptions::default(),
    );
    assert!(c.is_empty() && r.is_empty() && e.is_none());
    let (c, r, e) = read_path(
        &write_tmp(dir.path(), "h.csv", b"ts,price\n"),
        &ReadOptions::default(),
    );
    assert!(c.is_empty() && r.is_empty() && e.is_none());
    let mut rng = pipeline_core::SplitMix64::new(1);
    let garbage: Vec<u8> = (0..100_000).map(|_| rng.next_u64() as u8).collect();
    let p = write_tmp(dir.path(), "g.bin", &garbage);
    let err = open_source(&InputFile::new(&p), 0, &ReadOptions::default())
        .err()
        .expect("garbage must not open");
    assert!(
        matches!(err, Error::Format { .. } | Error::Schema(_)),
        "{err}"
    );
    assert!(err.to_string().contains("g.bin"), "{err}");
}

#[test]
fn projection_and_mapping_options() {
    let dir = tempfile::tempdir().unwrap();
    let text = "When;Px;Qty;note\n2021-01-04 09:30:00;1,5;10;x\n";
    let mut o = ReadOptions::default();
    o.input.columns.insert("ts".into(), "When".into());
    o.input.columns.insert("price".into(), "Px".into());
    o.input.timezone = "America/New_York".into();
    o.input.symbol = Some("ZZ".into());
    let (c, r, _) = read_path(&write_tmp(dir.path(), "m.csv", text.as_bytes()), &o);
    // A `;`-separated file with `1,5` has decimal commas (it used to quarantine the row).
    assert!(r.is_empty(), "1,5 is 1.5: {r:?}");
    assert!(table(&c).contains("| 1.5 "), "{}", table(&c));
    let text = "When;Px;Qty;note\n2021-01-04 09:30:00;1.5;10;x\n";
    let (c, _, _) = read_path(&write_tmp(dir.path(), "m2.csv", text.as_bytes()), &o);
    assert_eq!(first_ts(&c[0]), ns("2021-01-04T14:30:00Z"));
    let names: Vec<String> = c[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["ts", "symbol", "price", "size", "note", "_line"]);
    o.columns = Some(vec!["price".into()]);
    let (c, _, _) = read_path(&write_tmp(dir.path(), "m3.csv", text.as_bytes()), &o);
    assert_eq!(c[0].schema().fields().len(), 2);
}

#[test]
fn taq_date_and_time_columns() {
    let dir = tempfile::tempdir().unwrap();
    let text = "DATE,TIME_M,SYM_ROOT,PRICE,SIZE\n20210104,9:30:00.000123456,AAPL,1,2\n20210104,09:30:00.5,AAPL,1,2\n20210104,9:3:00,AAPL,1,2\n";
    let mut o = ReadOptions::default();
    o.input.timezone = "America/New_York".into();
    let (c, r, _) = read_path(&write_tmp(dir.path(), "taq.csv", text.as_bytes()), &o);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].line, r[0].reason.as_str()), (4, "bad_timestamp"));
    assert_eq!(first_ts(&c[0]), ns("2021-01-04T14:30:00.000123456Z"));
    assert_eq!(c[0].line(1), 3);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    // Any text but NUL, whose rows are quarantined as `bad_encoding` (issue #13 case 7).
    fn csv_round_trip(rows in proptest::collection::vec((r"[^\x00]{0,12}", -1e9f64..1e9, proptest::option::of(0i64..1_000_000)), 1..40)) {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut text = String::from("name,price,size\n");
        for (s, p, n) in &rows {
            text.push_str(&format!("{},{},{}\n", q(s), p, n.map(|v| v.to_string()).unwrap_or_default()));
        }
        let mut input = pipeline_core::InputConfig { has_header: Some(true), ..Default::default() };
        input.columns.insert("symbol".into(), "name".into());
        // Quoting is under test here, not timestamps: the file has none.
        let opts = ReadOptions { input, require_timestamp: false, ..ReadOptions::default() };
        let plan = Arc::new(pipeline_io::CsvPlan::build(text.as_bytes(), true, "p.csv", &opts).unwrap());
        let mut dec = pipeline_io::CsvDecoder::new(plan, 0, 1 << 20, 1, true);
        let used = dec.decode(text.as_bytes()).unwrap();
        proptest::prop_assert_eq!(used, text.len());
        dec.finish().unwrap();
        let c = dec.flush().unwrap().unwrap();
        proptest::prop_assert!(dec.drain_rejects().is_empty());
        let name = c.column_by_name("symbol").unwrap();
        let price = c.column_by_name("price").unwrap().as_any().downcast_ref::<arrow_array::Float64Array>().unwrap();
        let size = c.column_by_name("size").unwrap().as_any().downcast_ref::<arrow_array::Float64Array>().unwrap();
        proptest::prop_assert_eq!(c.num_rows(), rows.len());
        for (i, (s, p, n)) in rows.iter().enumerate() {
            let got = arrow_cast::display::array_value_to_string(name, i).unwrap();
            if s.is_empty() { proptest::prop_assert!(name.is_null(i)); } else { proptest::prop_assert_eq!(&got, s); }
            proptest::prop_assert_eq!(price.value(i), *p);
            proptest::prop_assert_eq!(size.is_valid(i).then(|| size.value(i) as i64), *n);
        }
    }
}

#[test]
fn inspect_reports_format_schema_span_and_symbols() {
    let Some(d) = real_dir() else { return };
    let r = pipeline_io::inspect(
        &InputFile::new(d.join("tardis-binance-futures-btcusdt-trades/tardis_trades.csv")),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(r.rows, 9_999);
    assert_eq!(r.delimiter.as_deref(), Some(","));
    assert_eq!(r.has_header, Some(true));
    assert_eq!(r.symbols, ["BTCUSDT"]);
    assert_eq!(r.ts_min.as_deref(), Some("2020-02-22T00:00:02.111Z"));
    assert_eq!(r.dataset_kind, Some(pipeline_core::DatasetKind::Trades));
    assert!(
        r.schema
            .iter()
            .any(|c| c.name == "price" && c.data_type == "Float64")
    );
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"compression\":\"none\""), "{json}");
    let dir = tempfile::tempdir().unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b"ts,sym,bid,ask\n2021-01-04T14:30:00Z,A,1,2\n2021-01-04T14:31:00Z,B,1,2\n")
        .unwrap();
    let p = write_tmp(dir.path(), "q.gz", &e.finish().unwrap());
    let r = pipeline_io::inspect(&InputFile::new(&p), &ReadOptions::default()).unwrap();
    assert_eq!((r.rows, r.symbols.len()), (2, 2));
    assert_eq!(r.compression, pipeline_io::InputCompression::Gzip);
    assert_eq!(r.dataset_kind, Some(pipeline_core::DatasetKind::Quotes));
    assert_eq!(r.ts_max.as_deref(), Some("2021-01-04T14:31:00Z"));
}

#[test]
fn metadata_cache_gives_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_tmp(dir.path(), "big.csv", taq_text(8000, 5).as_bytes());
    let opts = ReadOptions {
        meta_cache: Some(pipeline_core::MetaCache::memory()),
        ..small_opts(500, 2)
    };
    let want = table(&read_path(&p, &small_opts(500, 2)).0);
    let first = table(&read_path(&p, &opts).0);
    // The second read splits at the cached block boundaries.
    let second = table(&read_path(&p, &opts).0);
    assert_eq!(first, want);
    assert_eq!(second, want);
    let r1 = pipeline_io::inspect(&InputFile::new(&p), &opts).unwrap();
    let r2 = pipeline_io::inspect(&InputFile::new(&p), &opts).unwrap();
    assert_eq!(r1, r2);
    assert_eq!(r1.rows, 8000);
}

#[test]
fn parquet_and_ipc_inputs_map_to_canonical_columns() {
    use arrow_array::{Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new(
            "Time",
            arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, None),
            true,
        ),
        arrow_schema::Field::new("Ticker", arrow_schema::DataType::Utf8, true),
        arrow_schema::Field::new("Px", arrow_schema::DataType::Int64, true),
        arrow_schema::Field::new("Qty", arrow_schema::DataType::Float64, true),
        arrow_schema::Field::new("Side", arrow_schema::DataType::Utf8, true),
        arrow_schema::Field::new("Note", arrow_schema::DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(TimestampMillisecondArray::from(vec![
                1_609_770_600_000,
                1_609_770_600_001,
                1_609_770_600_002,
            ])),
            Arc::new(StringArray::from(vec!["AAPL", "MSFT", "AAPL"])),
            Arc::new(Int64Array::from(vec![Some(130), None, Some(131)])),
            Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])),
            Arc::new(StringArray::from(vec!["buy", "sell", "b"])),
            Arc::new(StringArray::from(vec!["x", "y", "z"])),
        ],
    )
    .unwrap();
    let pq = dir.path().join("t.parquet");
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&pq).unwrap(),
        schema.clone(),
        None,
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let ipc = dir.path().join("t.arrow");
    let mut w =
        arrow_ipc::writer::FileWriter::try_new(std::fs::File::create(&ipc).unwrap(), &schema)
            .unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    let mut o = ReadOptions::default();
    o.input.columns.insert("price".into(), "Px".into());
    for p in [pq, ipc] {
        let (c, r, e) = read_path(&p, &o);
        assert!(e.is_none() && r.is_empty(), "{p:?}: {e:?}");
        let c = &c[0];
        let names: Vec<String> = c
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            ["ts", "symbol", "price", "size", "side", "note", "_line"],
            "{p:?}"
        );
        assert_eq!(c.schema().field(0).data_type(), &pipeline_core::ts_type());
        assert_eq!(c.schema().field(1).data_type(), &pipeline_core::dict_type());
        assert_eq!(first_ts(c), ns("2021-01-04T14:30:00Z"));
        assert_eq!(c.lines().values().to_vec(), vec![1, 2, 3]);
        let s = table(std::slice::from_ref(c));
        assert!(s.contains("| 130.0 ") && s.contains("| -1 "), "{s}");
    }
    let r = pipeline_io::inspect(&InputFile::new(dir.path().join("t.arrow")), &o).unwrap();
    assert_eq!((r.format, r.rows), (pipeline_io::FileFormat::ArrowIpc, 3));
    assert_eq!(r.symbols, ["AAPL", "MSFT"]);
    // Naive timestamps are local times in the configured zone.
    o.input.timezone = "America/New_York".into();
    let (c, _, _) = read_path(&dir.path().join("t.parquet"), &o);
    assert_eq!(first_ts(&c[0]), ns("2021-01-04T19:30:00Z"));
}

#[test]
fn unterminated_quotes_headerless_names_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = ReadOptions::default();
    o.input.names = vec!["ts".into(), "price".into()];
    o.input.has_header = Some(false);
    let p = write_tmp(
        dir.path(),
        "n.csv",
        b"2021-01-04T14:30:00Z,1\n2021-01-04T14:30:01Z,\"2\n",
    );
    let mut src = open_source(&InputFile::new(&p), 3, &o).unwrap();
    let (c, r, e) = read(src.as_mut());
    assert!(e.is_none());
    assert_eq!((rows(&c), c[0].source()), (1, 3));
    assert_eq!((r[0].line, r[0].reason.as_str()), (2, "unterminated_quote"));
    let prog = src.progress();
    assert_eq!(prog.rows_read, 2);
    assert_eq!(prog.bytes_total, Some(47));
}

/// Runs in a child process (see `stdin_is_read_like_a_file`): reads stdin and prints the
/// row count, the first line number and the reject count.
#[test]
fn stdin_child() {
    if std::env::var("TICKPIPE_STDIN_CHILD").is_err() {
        return;
    }
    let mut src = open_source(&InputFile::stdin(), 0, &small_opts(100, 2)).unwrap();
    let (c, r, e) = read(src.as_mut());
    assert!(e.is_none(), "{e:?}");
    println!(
        "STDIN rows={} first_line={} rejects={}",
        rows(&c),
        c[0].line(0),
        r.len()
    );
}

#[test]
fn stdin_is_read_like_a_file() {
    use std::process::{Command, Stdio};
    let text = taq_text(2000, 9);
    let dir = tempfile::tempdir().unwrap();
    let want = rows(
        &read_path(
            &write_tmp(dir.path(), "s.csv", text.as_bytes()),
            &ReadOptions::default(),
        )
        .0,
    );
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    let gz = e.finish().unwrap();
    for input in [text.as_bytes().to_vec(), gz] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "read::stdin_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TICKPIPE_STDIN_CHILD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let out = child.wait_with_output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{s}");
        assert!(
            s.contains(&format!("STDIN rows={want} first_line=2 rejects=0")),
            "{s}"
        );
    }
}

#[test]
fn every_truncated_codec_is_a_corrupt_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = taq_text(6000, 13);
    let bz = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let zs = zstd::encode_all(text.as_bytes(), 1).unwrap();
    for (codec, bytes) in [("bzip2", bz), ("xz", xz), ("zstd", zs)] {
        let p = write_tmp(dir.path(), codec, &bytes[..bytes.len() * 3 / 4]);
        let (chunks, _, err) = read_path(&p, &small_opts(200, 2));
        match err {
            Some(Error::Corrupt {
                codec: c,
                decompressed_bytes,
                ..
            }) => {
                assert_eq!(c, codec);
                // The damage is inside the sniffing sample here: rows before it still come.
                assert!(
                    decompressed_bytes > 0 && rows(&chunks) > 100,
                    "{codec}: {} rows",
                    rows(&chunks)
                );
                assert_eq!(chunks[0].line(0), 2);
            }
            other => panic!(
                "{codec}: expected a corrupt-stream error, got {other:?} after {} rows",
                rows(&chunks)
            ),
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// Arbitrary bytes never panic the sniffer or the decoder, whatever the split.
    #[test]
    fn garbage_never_panics(
        body in proptest::collection::vec(proptest::sample::select(vec![b'a', b'1', b'.', b',', b'"', b'\n', b'\r', b';', b'-', b':', b'T', b'Z', 0xc3, 0xff, b' ']), 0..400),
        piece in 1usize..50,
        header: bool,
    ) {
        let mut text = if header { b"ts,symbol,price\n".to_vec() } else { Vec::new() };
        text.extend(body);
        let opts = ReadOptions::default();
        if let Ok(plan) = pipeline_io::CsvPlan::build(&text, true, "g.csv", &opts) {
            let mut dec = pipeline_io::CsvDecoder::new(Arc::new(plan), 0, 7, 1, header);
            for part in text.chunks(piece) {
                let mut off = 0;
                while off < part.len() {
                    off += dec.decode(&part[off..]).unwrap();
                    if dec.is_full() {
                        dec.flush().unwrap();
                    }
                }
            }
            dec.finish().unwrap();
            dec.flush().unwrap();
        }
    }
}

/// Runs in a child process (see `follow_stdin_flushes_on_the_interval`): follows stdin and
/// prints each chunk's row count as it arrives.
#[test]
fn follow_stdin_child() {
    if std::env::var("TICKPIPE_FOLLOW_CHILD").is_err() {
        return;
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opts = small_opts(1000, 1);
    let src = pipeline_io::open_follow(
        Path::new("-"),
        0,
        &opts,
        std::time::Duration::from_millis(30),
        stop,
        None,
    )
    .unwrap();
    for c in src {
        println!("CHUNK {}", c.unwrap().num_rows());
    }
}

#[test]
fn follow_stdin_flushes_on_the_interval() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "read::follow_stdin_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TICKPIPE_FOLLOW_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    stdin
        .write_all(b"ts,price\n2021-01-04T14:30:00Z,1\n2021-01-04T14:30:01Z,2\n")
        .unwrap();
    stdin.flush().unwrap();
    // The first partial chunk arrives while stdin is still open (a 1000-row chunk is not full).
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
        // libtest may print the test's name on the same line first.
        if line.contains("CHUNK ") {
            break;
        }
    }
    assert!(line.trim_end().ends_with("CHUNK 2"), "{line}");
    stdin
        .write_all(b"2021-01-04T14:30:02Z,3\n2021-01-04T14:30:03Z,4")
        .unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let counts: usize = rest
        .lines()
        .filter_map(|l| l.split("CHUNK ").nth(1))
        .map(|n| n.trim().parse::<usize>().unwrap())
        .sum();
    assert_eq!(counts, 2, "{rest}");
}
