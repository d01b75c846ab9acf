//! Hostile input (issue #13): times outside the nanosecond range, invalid bytes, long lines,
//! deterministic option errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use pipeline_core::{Chunk, Error, Reject, Source};
use pipeline_io::{InputFile, ReadOptions, open_source};

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

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Case 1 of issue #13: a 1,002-row file with one row in 1600 and one in 9999. On main the
/// first became 2184-07-20 and the second a negative time; both must be quarantined as
/// `bad_timestamp`, the placeholder named as such, and every other row kept.
#[test]
fn times_outside_the_nanosecond_range_are_quarantined_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("ts,symbol,price,size\n");
    for i in 0..1000 {
        text.push_str(&format!(
            "2021-01-04T14:30:{:02}.{:06}Z,AAPL,100.{:02},100\n",
            i / 100,
            i,
            i % 100
        ));
        if i == 10 {
            text.push_str("1600-01-01T00:00:00Z,AAPL,100.5,100\n");
        }
        if i == 500 {
            text.push_str("9999-12-31T00:00:00Z,AAPL,100.5,100\n");
        }
    }
    let p = write(dir.path(), "t.csv", text.as_bytes());
    for threads in [1, 2] {
        let opts = ReadOptions {
            chunk_rows: 64,
            threads,
            ..ReadOptions::default()
        };
        let (c, r, e) = read_path(&p, &opts);
        assert!(e.is_none(), "{e:?}");
        assert_eq!(rows(&c), 1000);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|r| r.reason == "bad_timestamp"), "{r:?}");
        assert_eq!((r[0].line, r[1].line), (13, 504));
        assert!(r[0].detail.contains("1677-09-21"), "{}", r[0].detail);
        assert!(r[1].detail.contains("placeholder"), "{}", r[1].detail);
        assert_eq!(
            r[1].raw.as_deref(),
            Some("9999-12-31T00:00:00Z,AAPL,100.5,100")
        );
        // Every kept time is a 2021 time: nothing wrapped around.
        for ch in &c {
            let ts = ch
                .column_by_name("ts")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::TimestampNanosecondArray>()
                .unwrap();
            assert!(
                ts.values()
                    .iter()
                    .all(|t| (1_609_459_200_000_000_000..1_640_995_200_000_000_000).contains(t))
            );
        }
    }
    // Strict mode: the first such row is a parse error naming file, line and column.
    let strict = ReadOptions {
        strict: true,
        ..ReadOptions::default()
    };
    let (_, _, e) = read_path(&p, &strict);
    match e {
        Some(Error::Parse { line, column, .. }) => assert_eq!((line, column.as_str()), (13, "ts")),
        other => panic!("{other:?}"),
    }
}

/// The Parquet/IPC rescale (s/ms/us/days to ns) is checked too: a seconds column holding
/// year 2300 and 9999 values is quarantined row by row instead of wrapping.
#[test]
fn columnar_rescale_is_checked() {
    use arrow_array::{Date32Array, Float64Array, StringArray, TimestampSecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    let dir = tempfile::tempdir().unwrap();
    let secs_2021 = 1_609_770_600i64;
    let secs_2300 = 10_413_792_000i64;
    let secs_9999 = 253_402_214_400i64;
    let ts_schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new("symbol", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        ts_schema.clone(),
        vec![
            Arc::new(TimestampSecondArray::from(vec![
                secs_2021,
                secs_2300,
                secs_2021 + 1,
                secs_9999,
            ])),
            Arc::new(StringArray::from(vec!["A"; 4])),
            Arc::new(Float64Array::from(vec![1.0; 4])),
        ],
    )
    .unwrap();
    let pq = dir.path().join("s.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&pq).unwrap(), ts_schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let (c, r, e) = read_path(&pq, &ReadOptions::default());
    assert!(e.is_none(), "{e:?}");
    assert_eq!(rows(&c), 2);
    assert_eq!(c[0].lines().values().to_vec(), vec![1, 3]);
    let lines: Vec<(u64, &str)> = r.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert_eq!(lines, vec![(2, "bad_timestamp"), (4, "bad_timestamp")]);
    assert!(r[1].detail.contains("placeholder"), "{}", r[1].detail);

    // Date32 days far out of range.
    let d_schema = Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, true),
        Field::new("symbol", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        d_schema.clone(),
        vec![
            Arc::new(Date32Array::from(vec![18_000, 2_000_000, -2_000_000])),
            Arc::new(StringArray::from(vec!["A"; 3])),
            Arc::new(Float64Array::from(vec![1.0; 3])),
        ],
    )
    .unwrap();
    let ipc = dir.path().join("d.arrow");
    let mut w =
        arrow_ipc::writer::FileWriter::try_new(std::fs::File::create(&ipc).unwrap(), &d_schema)
            .unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    let mut o = ReadOptions::default();
    o.input.columns.insert("ts".into(), "date".into());
    let (c, r, e) = read_path(&ipc, &o);
    assert!(e.is_none(), "{e:?}");
    assert_eq!(rows(&c), 1);
    assert_eq!(r.len(), 2, "{r:?}");
}

/// Case 7: NUL bytes in 4 of 2,000 lines used to get the whole file refused as binary. Now
/// the 4 rows are quarantined (`bad_encoding`, raw line kept) and the 1,996 others read; a
/// file that is mostly binary is still refused, as [`Error::Format`].
#[test]
fn nul_bytes_quarantine_their_rows_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"ts,symbol,price,size\n".to_vec();
    for i in 0..2000 {
        let line = match i % 500 {
            3 => format!("2021-01-04T14:30:00.{i:06}Z,AA\0PL,100.5,100\n"),
            _ => format!("2021-01-04T14:30:00.{i:06}Z,AAPL,100.5,100\n"),
        };
        text.extend_from_slice(line.as_bytes());
    }
    let p = write(dir.path(), "nul.csv", &text);
    for chunk_rows in [64, 65_536] {
        let opts = ReadOptions {
            chunk_rows,
            ..ReadOptions::default()
        };
        let (c, r, e) = read_path(&p, &opts);
        assert!(e.is_none(), "{e:?}");
        assert_eq!(rows(&c), 1996);
        let lines: Vec<u64> = r.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![5, 505, 1005, 1505]);
        assert!(r.iter().all(|r| r.reason == "bad_encoding"), "{r:?}");
        assert!(r[0].raw.as_deref().unwrap().contains("AA\0PL"));
    }
    let mut bin: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
    bin.extend_from_slice(&text);
    let p = write(dir.path(), "bin.csv", &bin);
    let err = open_source(&InputFile::new(&p), 0, &ReadOptions::default())
        .err()
        .expect("mostly binary");
    assert!(matches!(err, Error::Format { .. }), "{err}");
}

/// Files and rows per file under `dir`.
fn parquet_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    use parquet::file::reader::FileReader;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let r = parquet::file::reader::SerializedFileReader::new(
                    std::fs::File::open(&p).unwrap(),
                )
                .unwrap();
                out.push((p, r.metadata().file_metadata().num_rows() as u64));
            }
        }
    }
    out.sort();
    out
}

/// Case 6: one symbol of many rows plus 1,000 symbols of 10 rows each, interleaved. With
/// 64 writers open at once the sparse symbols were evicted and reopened until most files
/// held one row (9,956 files for 3M + 10,000 rows). Now each sparse symbol makes one file
/// and no file but a partition's last is smaller than `min_rows_per_file`.
#[test]
fn sparse_symbols_do_not_explode_into_files() {
    use arrow_array::{DictionaryArray, Float64Array, TimestampNanosecondArray, types::Int32Type};
    use arrow_schema::{DataType, Field, Schema};
    use pipeline_io::{WriteOptions, create_sink};
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", pipeline_core::ts_type(), true),
        Field::new("symbol", pipeline_core::dict_type(), true),
        Field::new("price", DataType::Float64, true),
    ]));
    // 60,000 rows of BIG; after every 6th of its rows one row of a sparse symbol (10 each).
    let (big, sparse) = (60_000usize, 1000usize);
    let mut syms: Vec<String> = Vec::new();
    let mut k = 0usize;
    for i in 0..big {
        syms.push("BIG".into());
        if i % 6 == 5 && k < sparse * 10 {
            syms.push(format!("S{:04}", k % sparse));
            k += 1;
        }
    }
    let n = syms.len();
    let chunks: Vec<Chunk> = (0..n)
        .step_by(4096)
        .enumerate()
        .map(|(seq, o)| {
            let e = (o + 4096).min(n);
            let sym: DictionaryArray<Int32Type> = syms[o..e].iter().map(String::as_str).collect();
            let b = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(
                        TimestampNanosecondArray::from_iter_values((o..e).map(|i| i as i64 * 1000))
                            .with_timezone("UTC"),
                    ),
                    Arc::new(sym),
                    Arc::new(Float64Array::from(vec![1.0; e - o])),
                ],
            )
            .unwrap();
            Chunk::with_first_line(b, 0, seq as u64, 2 + o as u64).unwrap()
        })
        .collect();
    let write = |min_rows: usize| -> Vec<(PathBuf, u64)> {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriteOptions {
            min_rows_per_file: min_rows,
            durable: false,
            ..WriteOptions::default()
        };
        let mut sink = create_sink(dir.path(), 0, &opts).unwrap();
        for c in &chunks {
            sink.write(c).unwrap();
        }
        sink.finish().unwrap();
        let files = parquet_files(dir.path());
        assert_eq!(files.iter().map(|f| f.1).sum::<u64>(), n as u64);
        files
    };
    let before = write(0);
    assert!(
        before.len() > 5 * sparse,
        "without it: {} files",
        before.len()
    );
    let files = write(10_000);
    let sparse_files = files
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains("symbol=S"))
        .count();
    assert_eq!(sparse_files, sparse, "one file per sparse symbol");
    let big_files: Vec<u64> = files
        .iter()
        .filter(|(p, _)| p.to_string_lossy().contains("symbol=BIG"))
        .map(|f| f.1)
        .collect();
    // Every BIG file but its last holds at least 10,000 rows.
    assert!(
        big_files[..big_files.len() - 1]
            .iter()
            .all(|r| *r >= 10_000),
        "{big_files:?}"
    );
    assert!(files.len() <= sparse + 10, "{} files", files.len());
}

/// Case 5: a single 200 MB line peaked at 817 MiB. A line longer than `max_line_bytes` is
/// quarantined as `line_too_long` (its first bytes as raw text) and skipped as it streams
/// past, plain (mapped) or compressed, with the lines after it numbered right.
#[test]
fn a_line_longer_than_the_limit_is_quarantined_and_skipped() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("ts,symbol,price,size\n");
    for i in 0..3000 {
        text.push_str(&format!("2021-01-04T14:30:00.{i:06}Z,AAPL,100.5,100\n"));
        if i == 1000 {
            // 3 MB in one record, quoted with embedded newlines (2 of them).
            text.push_str("2021-01-04T14:30:00.001000Z,\"AA");
            text.push_str(&"X".repeat(1_500_000));
            text.push_str("\nY\n");
            text.push_str(&"Z".repeat(1_500_000));
            text.push_str("\",100.5,100\n");
        }
    }
    let plain = write(dir.path(), "long.csv", text.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let gzp = write(dir.path(), "long.csv.gz", &gz.finish().unwrap());
    for p in [plain, gzp] {
        for chunk_rows in [100, 65_536] {
            let opts = ReadOptions {
                chunk_rows,
                max_line_bytes: 1 << 20,
                ..ReadOptions::default()
            };
            let (c, r, e) = read_path(&p, &opts);
            assert!(e.is_none(), "{p:?}: {e:?}");
            assert_eq!(rows(&c), 3000, "{p:?} {chunk_rows}");
            assert_eq!(r.len(), 1, "{p:?}: {r:?}");
            assert_eq!((r[0].line, r[0].reason.as_str()), (1003, "line_too_long"));
            assert!(r[0].raw.as_ref().unwrap().len() < 300);
            assert!(r[0].detail.contains("3000"), "{}", r[0].detail);
            // The row after the long one is on line 1006 (the long record spans 3 lines).
            let lines: Vec<u64> = c.iter().flat_map(|c| c.lines().values().to_vec()).collect();
            assert_eq!(lines[1001], 1006, "{p:?} {chunk_rows}");
        }
    }
    // Strict mode: an error naming the line.
    let strict = ReadOptions {
        strict: true,
        max_line_bytes: 1 << 20,
        ..ReadOptions::default()
    };
    let (_, _, e) = read_path(&dir.path().join("long.csv.gz"), &strict);
    assert!(
        matches!(e, Some(Error::Malformed { line: 1003, .. })),
        "{e:?}"
    );
}
