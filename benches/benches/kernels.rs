//! Criterion microbenches for tickpipe's hot kernels.
//!
//! Groups: `csv_decode` (a gen-data TAQ file through `open_source`), `timestamp_parse`
//! (RFC 3339 with nanoseconds, UTC and America/New_York), `indicators` (SMA/EMA/RSI/MACD
//! streaming updates). Run with:
//!
//! ```sh
//! cargo bench -p tickpipe-benches --bench kernels
//! ```
//!
//! Inputs are generated with fixed seeds, so runs are comparable.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipeline_core::Config;
use pipeline_io::{
    GenConfig, InputFile, ReadOptions, TsFormat, TsParser, Zone, generate_to_writer,
};
use pipeline_prep::{Ema, Macd, Rsi, Sma};

const ROWS: u64 = 200_000;

fn csv_decode(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("taq.csv");
    let file = std::fs::File::create(&path).expect("create");
    let cfg = GenConfig {
        rows: ROWS,
        days: Some(5),
        ..GenConfig::default()
    };
    generate_to_writer(&cfg, std::io::BufWriter::new(file), None).expect("gen");
    let bytes = std::fs::metadata(&path).expect("size").len();
    let input = InputFile::new(&path);
    let mut group = c.benchmark_group("csv_decode");
    group.throughput(Throughput::Bytes(bytes));
    for threads in [1usize, 2] {
        let mut opts = ReadOptions::from_config(&Config::default()).expect("options");
        opts.threads = threads;
        group.bench_function(format!("taq_{threads}_threads"), |b| {
            b.iter(|| {
                let src = pipeline_io::open_source(&input, 0, &opts).expect("open");
                let rows: usize = src.map(|c| c.map(|c| c.num_rows()).unwrap_or(0)).sum();
                black_box(rows)
            })
        });
    }
    group.finish();
}

fn timestamp_parse(c: &mut Criterion) {
    let stamps: Vec<String> = (0..10_000u64)
        .map(|i| {
            format!(
                "2021-03-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                10 + i % 10,
                14 + i % 6,
                i % 60,
                (i * 7) % 60,
                i * 123_457 % 1_000_000_000
            )
        })
        .collect();
    let naive: Vec<String> = stamps
        .iter()
        .map(|s| s.trim_end_matches('Z').replace('T', " "))
        .collect();
    let mut group = c.benchmark_group("timestamp_parse");
    group.throughput(Throughput::Elements(stamps.len() as u64));
    group.bench_function("rfc3339_utc", |b| {
        let mut p = TsParser::new(TsFormat::Iso, Zone::Utc);
        b.iter(|| {
            let mut acc = 0i64;
            for s in &stamps {
                acc = acc.wrapping_add(p.parse(s.as_bytes()).unwrap_or(0));
            }
            black_box(acc)
        })
    });
    group.bench_function("naive_new_york", |b| {
        let mut p = TsParser::new(TsFormat::Iso, Zone::Named(chrono_tz_new_york()));
        b.iter(|| {
            let mut acc = 0i64;
            for s in &naive {
                acc = acc.wrapping_add(p.parse(s.as_bytes()).unwrap_or(0));
            }
            black_box(acc)
        })
    });
    group.finish();
}

fn chrono_tz_new_york() -> chrono_tz::Tz {
    chrono_tz::America::New_York
}

fn indicators(c: &mut Criterion) {
    // A seeded random walk.
    let mut rng = pipeline_core::SplitMix64::new(7);
    let mut p = 100.0f64;
    let prices: Vec<f64> = (0..100_000)
        .map(|_| {
            p *= 1.0 + (rng.next_f64() - 0.5) * 0.002;
            p
        })
        .collect();
    let mut group = c.benchmark_group("indicators");
    group.throughput(Throughput::Elements(prices.len() as u64));
    group.bench_function("sma_20", |b| {
        b.iter(|| {
            let mut k = Sma::new(20);
            prices.iter().filter_map(|&v| k.update(v)).sum::<f64>()
        })
    });
    group.bench_function("ema_20", |b| {
        b.iter(|| {
            let mut k = Ema::new(20);
            prices.iter().filter_map(|&v| k.update(v)).sum::<f64>()
        })
    });
    group.bench_function("rsi_14", |b| {
        b.iter(|| {
            let mut k = Rsi::new(14);
            prices.iter().filter_map(|&v| k.update(v)).sum::<f64>()
        })
    });
    group.bench_function("macd_12_26_9", |b| {
        b.iter(|| {
            let mut k = Macd::new(12, 26, 9);
            prices
                .iter()
                .filter_map(|&v| k.update(v).map(|m| m[0]))
                .sum::<f64>()
        })
    });
    group.finish();
}

// The macro generates an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = csv_decode, timestamp_parse, indicators
    }
}
criterion_main!(group::benches);
