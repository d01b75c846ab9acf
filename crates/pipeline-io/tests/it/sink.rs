//! Integration tests: sink (Parquet/IPC/CSV round trips, Hive partitioning, LRU writer
//! limits, row groups by bytes, atomic files, quarantine, reader compatibility).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, TimestampNanosecondType, UInt64Type};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Float64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::basic::Compression as PqCompression;
use parquet::file::reader::{FileReader, SerializedFileReader};
use pipeline_core::{
    Chunk, LINE_COLUMN, OutputFormat, Reject, Sink, SourceTable, dict_type, ts_type,
};
use pipeline_io::{
    Compression, PartitionKey, WriteOptions, create_file_sink, create_quarantine_sink, create_sink,
    dataset_files, read_dataset,
};

const T0: i64 = 1_609_770_600_000_000_000; // 2021-01-04T14:30:00Z
const DAY: i64 = 86_400_000_000_000;

/// SplitMix64: seeded test data without a rand dependency.
struct Rng(pipeline_core::SplitMix64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
}

/// A TAQ-like batch: `n` rows cycling over `symbols`, time-ordered, spread over `days` days
/// (per symbol the time order holds), with some missing values.
fn taq(symbols: &[&str], days: i64, n: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng(pipeline_core::SplitMix64::new(seed));
    let step = (days * DAY) / n.max(1) as i64;
    let ts: TimestampNanosecondArray = (0..n)
        .map(|i| Some(T0 + i as i64 * step))
        .collect::<TimestampNanosecondArray>()
        .with_timezone("UTC");
    let sym: DictionaryArray<Int32Type> = (0..n).map(|i| symbols[i % symbols.len()]).collect();
    let price: Float64Array = (0..n)
        .map(|_| {
            let r = rng.next();
            (!r.is_multiple_of(17)).then(|| 100.0 + (r % 10_000) as f64 / 100.0)
        })
        .collect();
    let size: Float64Array = (0..n)
        .map(|_| Some((rng.next() % 900 + 1) as f64))
        .collect();
    let ex: DictionaryArray<Int32Type> = (0..n)
        .map(|_| ["Q", "N", "P"][(rng.next() % 3) as usize])
        .collect();
    let cond: StringArray = (0..n)
        .map(|_| match rng.next() % 5 {
            0 => None,
            1 => Some("@,F"),
            2 => Some("say \"hi\""),
            _ => Some("@"),
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", ts_type(), true),
        Field::new("symbol", dict_type(), true),
        Field::new("price", DataType::Float64, true),
        Field::new("size", DataType::Float64, true),
        Field::new("exchange", dict_type(), true),
        Field::new("conditions", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(ts),
            Arc::new(sym),
            Arc::new(price),
            Arc::new(size),
            Arc::new(ex),
            Arc::new(cond),
        ],
    )
    .unwrap()
}

/// Cuts `batch` into chunks of `rows` rows with consecutive line numbers from 2.
fn chunks(batch: &RecordBatch, rows: usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < batch.num_rows() {
        let len = rows.min(batch.num_rows() - off);
        out.push(
            Chunk::with_first_line(batch.slice(off, len), 0, out.len() as u64, 2 + off as u64)
                .unwrap(),
        );
        off += len;
    }
    out
}

fn write_all(sink: &mut dyn Sink, chunks: &[Chunk]) -> pipeline_core::SinkSummary {
    for c in chunks {
        sink.write(c).unwrap();
    }
    sink.finish().unwrap()
}

/// `batch` with zoned timestamps shown as UTC wall time (arrow's printer cannot resolve
/// named zones without chrono-tz).
fn naive(batch: &RecordBatch) -> RecordBatch {
    let mut fields = Vec::new();
    let mut cols = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let c = match c.data_type() {
            DataType::Timestamp(u, Some(_)) => {
                let t = DataType::Timestamp(*u, None);
                arrow_array::make_array(c.to_data().into_builder().data_type(t).build().unwrap())
            }
            _ => Arc::clone(c),
        };
        fields.push(Field::new(f.name(), c.data_type().clone(), true));
        cols.push(c);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

/// `batches` as a pretty-printed table.
fn table(batches: &[RecordBatch]) -> String {
    let b: Vec<RecordBatch> = batches.iter().map(naive).collect();
    arrow_cast::pretty::pretty_format_batches(&b)
        .unwrap()
        .to_string()
}

/// The rows of `batches` as text lines (dictionaries and plain strings print alike), sorted.
fn row_set(batches: &[RecordBatch]) -> Vec<String> {
    let text = table(batches);
    let mut rows: Vec<String> = text
        .lines()
        .skip(3)
        .filter(|l| !l.starts_with('+'))
        .map(str::to_string)
        .collect();
    rows.sort();
    rows
}

/// Every file (any name) under `dir`.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn opts(format: OutputFormat, keys: &[PartitionKey]) -> WriteOptions {
    WriteOptions {
        format,
        partition_by: keys.to_vec(),
        sort_columns: if keys.contains(&PartitionKey::Symbol) {
            vec!["symbol".into(), "ts".into()]
        } else {
            Vec::new()
        },
        // No fsync: hundreds of small files are written; one test below keeps it on.
        durable: false,
        ..WriteOptions::default()
    }
}

#[test]
fn parquet_round_trip_keeps_rows_types_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = taq(&["AAPL", "MSFT", "IBM"], 2, 3000, 1);
    let durable = WriteOptions {
        durable: true,
        ..opts(OutputFormat::Parquet, &[])
    };
    let mut sink = create_sink(dir.path(), 0, &durable).unwrap();
    let summary = write_all(sink.as_mut(), &chunks(&input, 700));
    assert_eq!(summary.rows, 3000);
    assert_eq!(
        summary.files,
        vec![dir.path().join("part-00000-000.parquet")]
    );
    assert_eq!(
        summary.bytes,
        std::fs::metadata(&summary.files[0]).unwrap().len()
    );
    let back = read_dataset(dir.path()).unwrap();
    let back = arrow_select::concat::concat_batches(&back[0].schema(), &back).unwrap();
    assert_eq!(
        back.schema(),
        input.schema(),
        "types survive, `_line` dropped"
    );
    assert_eq!(table(&[back]), table(&[input]));
}

#[test]
fn ipc_round_trip_with_changing_dictionaries() {
    let dir = tempfile::tempdir().unwrap();
    // Each chunk has its own dictionaries (different symbol sets and orders).
    let parts = [
        taq(&["MSFT", "AAPL"], 1, 500, 2),
        taq(&["AAPL"], 1, 300, 3),
        taq(&["IBM", "AAPL", "MSFT"], 1, 400, 4),
    ];
    let mut o = opts(OutputFormat::Ipc, &[PartitionKey::Symbol]);
    o.row_group_bytes = 16 << 10; // several IPC batches per file
    o.min_rows_per_file = 0; // each chunk written as it comes, with its own dictionaries
    let mut sink = create_sink(dir.path(), 3, &o).unwrap();
    let mut line = 2;
    for (i, p) in parts.iter().enumerate() {
        sink.write(&Chunk::with_first_line(p.clone(), 0, i as u64, line).unwrap())
            .unwrap();
        line += p.num_rows() as u64;
    }
    let summary = sink.finish().unwrap();
    assert_eq!(summary.rows, 1200);
    assert!(
        summary
            .files
            .iter()
            .all(|f| f.to_string_lossy().ends_with("part-00003-000.arrow"))
    );
    let back = read_dataset(dir.path()).unwrap();
    // `exchange` keeps its dictionary (re-keyed across chunks); the partition column
    // `symbol` is plain text so Hive readers can merge it with the directory value.
    assert_eq!(back[0].schema().field(4).data_type(), &dict_type());
    assert_eq!(back[0].schema().field(1).data_type(), &DataType::Utf8);
    assert!(back.len() > 3, "several IPC batches per file");
    assert_eq!(row_set(&back), row_set(&parts));
}

/// A minimal RFC 4180 reader for the CSV round trip.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

#[test]
fn csv_round_trip_parses_back_to_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let input = taq(&["AAPL", "EUR/USD"], 1, 400, 5);
    // Parquet in the options, but the extension decides.
    let mut sink = create_file_sink(&path, &WriteOptions::default()).unwrap();
    let summary = write_all(sink.as_mut(), &chunks(&input, 128));
    assert_eq!(summary.files, vec![path.clone()]);
    let rows = parse_csv(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(
        rows[0],
        ["ts", "symbol", "price", "size", "exchange", "conditions"]
    );
    assert_eq!(rows.len(), 401);
    let ts = input.column(0).as_primitive::<TimestampNanosecondType>();
    let sym = input.column(1).as_dictionary::<Int32Type>();
    let sym_values = sym.values().as_string::<i32>();
    let price = input.column(2).as_primitive::<Float64Type>();
    let cond = input.column(5).as_string::<i32>();
    for (i, r) in rows[1..].iter().enumerate() {
        let parsed = chrono::DateTime::parse_from_rfc3339(&r[0]).unwrap();
        assert!(r[0].ends_with('Z') && r[0].len() == 30, "{}", r[0]);
        assert_eq!(parsed.timestamp_nanos_opt(), Some(ts.value(i)));
        assert_eq!(r[1], sym_values.value(sym.keys().value(i) as usize));
        let p = (!r[2].is_empty()).then(|| r[2].parse::<f64>().unwrap());
        assert_eq!(p, price.is_valid(i).then(|| price.value(i)));
        let c = (!r[5].is_empty()).then(|| r[5].clone());
        assert_eq!(c.as_deref(), cond.is_valid(i).then(|| cond.value(i)));
    }
}

/// Groups the rows of every file by partition directory (relative to `dir`).
fn by_dir(dir: &Path) -> BTreeMap<String, Vec<RecordBatch>> {
    let mut out: BTreeMap<String, Vec<RecordBatch>> = BTreeMap::new();
    for f in dataset_files(dir).unwrap() {
        let rel = f
            .parent()
            .unwrap()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.entry(rel)
            .or_default()
            .extend(read_dataset(&f).unwrap());
    }
    out
}

fn strings(col: &ArrayRef) -> Vec<String> {
    let s = arrow_cast::cast(col, &DataType::Utf8).unwrap();
    s.as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("").to_string())
        .collect()
}

#[test]
fn partitions_by_symbol_and_date_put_rows_in_their_directory() {
    let dir = tempfile::tempdir().unwrap();
    let input = taq(&["AAPL", "MSFT", "BRK B", "EUR/USD"], 3, 2000, 6);
    let o = opts(
        OutputFormat::Parquet,
        &[PartitionKey::Symbol, PartitionKey::Date],
    );
    let mut sink = create_sink(dir.path(), 0, &o).unwrap();
    let summary = write_all(sink.as_mut(), &chunks(&input, 333));
    assert_eq!(summary.rows, 2000);
    let groups = by_dir(dir.path());
    // Three days from 14:30 touch four calendar dates.
    assert_eq!(groups.len(), 4 * 4);
    assert!(groups.contains_key("symbol=EUR%2FUSD/date=2021-01-04"));
    assert!(groups.contains_key("symbol=BRK B/date=2021-01-07"));
    let mut total = 0;
    for (rel, batches) in &groups {
        let (s, d) = rel.split_once('/').unwrap();
        let want_sym = s.strip_prefix("symbol=").unwrap().replace("%2F", "/");
        let want_date = d.strip_prefix("date=").unwrap();
        for b in batches {
            total += b.num_rows();
            assert!(strings(b.column(1)).iter().all(|s| *s == want_sym), "{rel}");
            let ts = b.column(0).as_primitive::<TimestampNanosecondType>();
            for t in ts.iter().flatten() {
                let day = chrono::DateTime::from_timestamp_nanos(t).format("%Y-%m-%d");
                assert_eq!(day.to_string(), want_date);
            }
        }
    }
    assert_eq!(total, 2000);
    assert_eq!(
        row_set(&groups.into_values().flatten().collect::<Vec<_>>()),
        row_set(&[input])
    );
}

#[test]
fn month_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let input = taq(&["AAPL"], 40, 400, 7);
    let o = opts(OutputFormat::Parquet, &[PartitionKey::Month]);
    let mut sink = create_sink(dir.path(), 0, &o).unwrap();
    write_all(sink.as_mut(), &chunks(&input, 100));
    let groups = by_dir(dir.path());
    assert_eq!(
        groups.keys().collect::<Vec<_>>(),
        ["month=2021-01", "month=2021-02"]
    );
}

#[test]
fn lru_closing_with_two_open_files_writes_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = taq(&["A", "B", "C", "D", "E"], 1, 600, 8);
    let mut o = opts(OutputFormat::Parquet, &[PartitionKey::Symbol]);
    o.max_open_files = 2;
    o.keep_line_column = true;
    // Files open at once (no rows gathered first), so the writers really are evicted.
    o.min_rows_per_file = 0;
    let mut sink = create_sink(dir.path(), 7, &o).unwrap();
    // Chunks of 3 rows: every chunk touches 3 symbols, so writers are evicted constantly.
    let mut some = Vec::new();
    for (i, c) in chunks(&input, 3).into_iter().enumerate() {
        sink.write(&c).unwrap();
        if i == 10 {
            // Evicted files are complete but not yet under a final name.
            some = all_files(dir.path());
        }
    }
    assert!(!some.is_empty());
    assert!(some.iter().all(|f| {
        let n = f.file_name().unwrap().to_string_lossy();
        n.starts_with('.') && n.ends_with(".tmp")
    }));
    let summary = sink.finish().unwrap();
    assert_eq!(summary.rows, 600);
    assert!(summary.files.len() > 5, "LRU closing makes more parts");
    assert!(
        summary
            .files
            .iter()
            .any(|f| f.ends_with("symbol=C/part-00007-001.parquet"))
    );
    let mut lines: Vec<u64> = read_dataset(dir.path())
        .unwrap()
        .iter()
        .flat_map(|b| {
            b.column_by_name(LINE_COLUMN)
                .unwrap()
                .as_primitive::<UInt64Type>()
                .values()
                .to_vec()
        })
        .collect();
    lines.sort_unstable();
    assert_eq!(lines, (2..602).collect::<Vec<u64>>());
}

/// For any chunk size and writer limit, each partition's files, read in part order, hold
/// exactly that partition's rows in input order.
#[test]
fn output_does_not_depend_on_chunk_size_or_open_file_limit() {
    let input = taq(&["A", "B", "C", "D"], 3, 700, 18);
    let sym = strings(input.column(1));
    let ts = input.column(0).as_primitive::<TimestampNanosecondType>();
    // Expected line sequence per partition directory, in input order.
    let mut want: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (i, s) in sym.iter().enumerate() {
        let day = chrono::DateTime::from_timestamp_nanos(ts.value(i)).format("%Y-%m-%d");
        want.entry(format!("symbol={s}/date={day}"))
            .or_default()
            .push(i as u64 + 2);
    }
    // Small chunks gathered before the split (`gather_rows`: off, a few chunks at a time,
    // the run's default) keep every partition's rows in input order too.
    let cases = [(1, 1, 0), (7, 2, 0), (64, 3, 0), (700, 64, 0), (1, 1, 100)];
    let gathered = [
        (7, 2, 100),
        (64, 3, pipeline_io::GATHER_ROWS),
        (700, 64, 1000),
    ];
    for (rows, open, gather) in cases.into_iter().chain(gathered) {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(
            OutputFormat::Parquet,
            &[PartitionKey::Symbol, PartitionKey::Date],
        );
        o.max_open_files = open;
        o.keep_line_column = true;
        o.gather_rows = gather;
        let mut sink = create_sink(dir.path(), 0, &o).unwrap();
        write_all(sink.as_mut(), &chunks(&input, rows));
        let got: BTreeMap<String, Vec<u64>> = by_dir(dir.path())
            .into_iter()
            .map(|(k, batches)| {
                let lines = batches
                    .iter()
                    .flat_map(|b| {
                        b.column_by_name(LINE_COLUMN)
                            .unwrap()
                            .as_primitive::<UInt64Type>()
                            .values()
                            .to_vec()
                    })
                    .collect();
                (k, lines)
            })
            .collect();
        assert_eq!(
            got, want,
            "chunks of {rows} rows, {open} open files, gathering {gather} rows"
        );
    }
}

fn parquet_reader(path: &Path) -> SerializedFileReader<File> {
    SerializedFileReader::new(File::open(path).unwrap()).unwrap()
}

#[test]
fn row_groups_flush_by_bytes_with_zstd_stats_and_sort_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = taq(&["AAPL"], 1, 20_000, 9);
    let mut o = opts(OutputFormat::Parquet, &[PartitionKey::Symbol]);
    o.row_group_bytes = 32 << 10;
    o.compression_level = 7;
    let mut sink = create_sink(dir.path(), 0, &o).unwrap();
    let summary = write_all(sink.as_mut(), &chunks(&input, 1000));
    // A partition's file rolls after 16 row groups (`MAX_ROW_GROUPS_PER_FILE`).
    let total: i64 = summary
        .files
        .iter()
        .map(|f| parquet_reader(f).metadata().file_metadata().num_rows())
        .sum();
    assert_eq!(total, 20_000);
    let r = parquet_reader(&summary.files[0]);
    let md = r.metadata();
    assert!(
        md.num_row_groups() > 2 && md.num_row_groups() <= 16,
        "{} row groups",
        md.num_row_groups()
    );
    let rg = md.row_group(0);
    assert!(matches!(rg.column(0).compression(), PqCompression::ZSTD(_)));
    let ts_stats = rg.column(0).statistics().expect("statistics on");
    assert!(ts_stats.min_bytes_opt().is_some());
    let sort = rg.sorting_columns().expect("sort order recorded");
    assert_eq!(
        sort.iter().map(|s| s.column_idx).collect::<Vec<_>>(),
        vec![1, 0],
        "symbol then ts"
    );
}

#[test]
fn buffer_budget_flushes_the_fullest_writers_early() {
    let dir = tempfile::tempdir().unwrap();
    let symbols = ["A", "B", "C", "D", "E", "F", "G", "H"];
    let input = taq(&symbols, 1, 16_000, 16);
    let mut o = opts(OutputFormat::Parquet, &[PartitionKey::Symbol]);
    o.row_group_bytes = 1 << 30; // never reached by one writer
    o.max_buffered_bytes = 48 << 10; // reached by all of them together
    let mut sink = create_sink(dir.path(), 0, &o).unwrap();
    let summary = write_all(sink.as_mut(), &chunks(&input, 800));
    assert_eq!(summary.files.len(), symbols.len());
    let groups: usize = summary
        .files
        .iter()
        .map(|f| parquet_reader(f).metadata().num_row_groups())
        .sum();
    assert!(groups > 2 * symbols.len(), "{groups} row groups");
    assert_eq!(
        row_set(&read_dataset(dir.path()).unwrap()),
        row_set(&[input])
    );
}

#[test]
fn a_later_date_closes_the_earlier_date_of_that_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let input = taq(&["A", "B"], 2, 400, 17); // 80 rows on 2021-01-04, then 01-05 and 01-06
    let o = opts(
        OutputFormat::Parquet,
        &[PartitionKey::Symbol, PartitionKey::Date],
    );
    let mut sink = create_sink(dir.path(), 0, &o).unwrap();
    let c = chunks(&input, 100);
    for x in &c[..3] {
        sink.write(x).unwrap();
    }
    // Rows of 2021-01-05 have arrived, so 2021-01-04 is complete (still under its
    // temporary name) and readable.
    let done = dir
        .path()
        .join("symbol=A/date=2021-01-04/.part-00000-000.parquet.tmp");
    assert_eq!(
        parquet_reader(&done).metadata().file_metadata().num_rows(),
        40
    );
    // A late row for a closed date goes to that partition's next file.
    sink.write(&c[0].slice(0, 1)).unwrap();
    for x in &c[3..] {
        sink.write(x).unwrap();
    }
    let summary = sink.finish().unwrap();
    assert_eq!(summary.rows, 401);
    assert!(
        summary.files.contains(
            &dir.path()
                .join("symbol=A/date=2021-01-04/part-00000-001.parquet")
        )
    );
}

#[test]
fn broken_order_starts_a_file_without_the_claim() {
    let dir = tempfile::tempdir().unwrap();
    let input = taq(&["AAPL"], 1, 100, 10);
    let mut o = opts(OutputFormat::Parquet, &[PartitionKey::Symbol]);
    // Each chunk written as it comes (not gathered and merged first), as in a long input.
    o.min_rows_per_file = 0;
    let mut sink = create_sink(dir.path(), 0, &o).unwrap();
    // The second half first: the first half then goes back in time.
    let c = chunks(&input, 50);
    let summary = write_all(sink.as_mut(), &[c[1].clone(), c[0].clone(), c[1].clone()]);
    assert_eq!(summary.rows, 150);
    assert_eq!(summary.files.len(), 2);
    let first = parquet_reader(&summary.files[0]);
    assert!(first.metadata().row_group(0).sorting_columns().is_some());
    let second = parquet_reader(&summary.files[1]);
    assert_eq!(second.metadata().file_metadata().num_rows(), 100);
    assert!(second.metadata().row_group(0).sorting_columns().is_none());
}

#[test]
fn snappy_and_uncompressed_codecs() {
    for (codec, want) in [
        (Compression::Snappy, PqCompression::SNAPPY),
        (Compression::None, PqCompression::UNCOMPRESSED),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(OutputFormat::Parquet, &[]);
        o.compression = codec;
        let mut sink = create_sink(dir.path(), 0, &o).unwrap();
        let s = write_all(sink.as_mut(), &chunks(&taq(&["X"], 1, 50, 11), 50));
        let r = parquet_reader(&s.files[0]);
        assert_eq!(r.metadata().row_group(0).column(0).compression(), want);
    }
}

#[test]
fn abort_leaves_no_files_and_finish_leaves_no_temp_files() {
    let input = taq(&["A", "B", "C"], 2, 600, 12);
    for format in [OutputFormat::Parquet, OutputFormat::Ipc, OutputFormat::Csv] {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(format, &[PartitionKey::Symbol, PartitionKey::Date]);
        o.max_open_files = 2;
        let mut sink = create_sink(dir.path(), 0, &o).unwrap();
        for c in chunks(&input, 7) {
            sink.write(&c).unwrap();
        }
        assert!(!all_files(dir.path()).is_empty());
        sink.abort().unwrap();
        assert_eq!(all_files(dir.path()), Vec::<PathBuf>::new(), "{format:?}");

        let dir = tempfile::tempdir().unwrap();
        let mut sink = create_sink(dir.path(), 0, &o).unwrap();
        let summary = write_all(sink.as_mut(), &chunks(&input, 7));
        let files = all_files(dir.path());
        assert_eq!(files, summary.files, "{format:?}: only final names remain");
        assert!(
            files
                .iter()
                .all(|f| !f.file_name().unwrap().to_string_lossy().ends_with(".tmp"))
        );
    }
}

#[test]
fn dropping_an_unfinished_sink_removes_its_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = create_sink(dir.path(), 0, &WriteOptions::default()).unwrap();
    for c in chunks(&taq(&["A", "B"], 1, 100, 13), 10) {
        sink.write(&c).unwrap();
    }
    drop(sink);
    assert_eq!(all_files(dir.path()), Vec::<PathBuf>::new());
    // An empty run writes nothing at all.
    let mut sink = create_sink(dir.path(), 0, &WriteOptions::default()).unwrap();
    assert_eq!(sink.finish().unwrap().files.len(), 0);
}

#[test]
fn file_sink_rejects_a_second_schema_and_picks_format_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.arrow");
    let mut sink = create_file_sink(&path, &WriteOptions::default()).unwrap();
    let a = taq(&["A"], 1, 10, 14);
    sink.write(&chunks(&a, 10)[0]).unwrap();
    let narrower = a.project(&[0, 1]).unwrap();
    let err = sink.write(&chunks(&narrower, 10)[0]).unwrap_err();
    assert!(err.to_string().contains("one.arrow"), "{err}");
    let s = sink.finish().unwrap();
    assert_eq!(s.rows, 10);
    assert_eq!(read_dataset(&path).unwrap()[0].num_rows(), 10);
}

#[test]
fn quarantine_round_trip_names_source_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = SourceTable::default();
    let a = table.add("data/day1.csv.gz");
    let b = table.add("data/day2.csv");
    let path = dir.path().join("quarantine.parquet");
    let mut q = create_quarantine_sink(&path, table.clone()).unwrap();
    let mut rejects = Vec::new();
    for i in 0..10_000u64 {
        rejects.push(if i % 3 == 0 {
            Reject::removed(b, i + 2, "dedupe_exact")
        } else {
            Reject::quarantined(
                a,
                i + 2,
                "bad_number",
                "column `price`",
                Some(format!("x,{i}")),
            )
        });
    }
    for part in rejects.chunks(999) {
        q.write(part).unwrap();
    }
    assert!(!path.exists(), "not under its final name before finish");
    let s = q.finish().unwrap();
    assert_eq!((s.rows, s.files.clone()), (10_000, vec![path.clone()]));
    let back = read_dataset(&path).unwrap();
    let back = arrow_select::concat::concat_batches(&back[0].schema(), &back).unwrap();
    assert_eq!(back.num_rows(), 10_000);
    let files = strings(back.column_by_name("file").unwrap());
    let kinds = strings(back.column_by_name("kind").unwrap());
    let lines = back
        .column_by_name("line")
        .unwrap()
        .as_primitive::<UInt64Type>();
    let raw = back.column_by_name("raw").unwrap().as_string::<i32>();
    for (i, r) in rejects.iter().enumerate() {
        assert_eq!(files[i], table.name(r.source));
        assert_eq!(lines.value(i), r.line);
        assert_eq!(kinds[i], if i % 3 == 0 { "removed" } else { "quarantined" });
        assert_eq!(raw.is_valid(i), r.raw.is_some());
    }
    // No rejects: no file.
    let empty = dir.path().join("none.parquet");
    let mut q = create_quarantine_sink(&empty, table).unwrap();
    q.write(&[]).unwrap();
    assert_eq!(q.finish().unwrap(), pipeline_core::SinkSummary::default());
    assert!(!empty.exists());
}

/// Reads the output directory as one Hive dataset with pyarrow (and DuckDB, when it is
/// installed too) when pyarrow is installed.
#[test]
fn pyarrow_reads_the_partitioned_output_as_one_dataset() {
    let has_pyarrow = std::process::Command::new("python3")
        .args(["-c", "import pyarrow.dataset"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pyarrow {
        println!("skipped: python3 with pyarrow is not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = taq(&["AAPL", "EUR/USD", "BRK B"], 2, 900, 15);
    let o = opts(
        OutputFormat::Parquet,
        &[PartitionKey::Symbol, PartitionKey::Date],
    );
    let mut sink = create_sink(dir.path(), 0, &o).unwrap();
    write_all(sink.as_mut(), &chunks(&input, 100));
    let script = r#"
import sys, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table()
syms = sorted(set(t.column('symbol').to_pylist()))
print(t.num_rows, '|'.join(syms), sorted(set(t.column('date').to_pylist()))[0])
try:
    import duckdb
except ImportError:
    duckdb = None
if duckdb is not None:
    q = ("select count(*), count(distinct symbol), count(*) filter (where symbol = 'EUR/USD') "
         f"from read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning=true)")
    got = duckdb.sql(q).fetchall()
    assert got == [(t.num_rows, 3, 300)], got
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "900 AAPL|BRK B|EUR/USD 2021-01-04"
    );
}
