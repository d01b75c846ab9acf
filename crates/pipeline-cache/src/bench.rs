//! [`run_bench`]: the cache's speed and hit-rate figures, for `examples/cache_bench.rs` and
//! `cargo xtask bench`.
//!
//! Four measurements, each on tick-like Arrow data (ts, symbol, price, size, bid, ask; a
//! random walk, so zstd finds what it finds in real ticks):
//! 1. memory-tier hits: `get` of values held in memory, in MB/s of Arrow buffers returned;
//! 2. disk-tier hits: `get` with the memory tier off, so every read is a redb read,
//!    checksum, zstd decompression and IPC decode; MB/s of Arrow buffers decoded;
//! 3. writes and large values: `put` and disk `get` of one value of 1, 16 and 128 MiB;
//! 4. hit rate: Zipf-distributed reads (s = 1) over a working set four times the memory
//!    tier, computing and putting a value on each miss, as a cached stage would.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::key::{CacheKey, Namespace};
use crate::manager::CacheManager;
use crate::options::CacheBuilder;

/// What to measure and how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// A scratch directory for the disk tier (emptied first, left behind).
    pub dir: PathBuf,
    /// Rows per value in the throughput runs. Default 65,536 (one default chunk, ≈ 3.4 MB
    /// of Arrow buffers).
    pub rows: usize,
    /// Values read round-robin in the throughput runs. Default 24.
    pub values: usize,
    /// Least time spent reading in each throughput run. Default 1 s.
    pub min_time: Duration,
    /// Large-value sizes, in MiB of Arrow buffers. Default 1, 16, 128.
    pub large_mib: Vec<u64>,
    /// Distinct keys of the hit-rate run. Default 400.
    pub zipf_keys: usize,
    /// Reads of the hit-rate run. Default 20,000.
    pub zipf_reads: usize,
    /// Rows per value of the hit-rate run. Default 4,096 (≈ 210 KB; the working set is
    /// ≈ 84 MB against a 21 MB memory tier).
    pub zipf_rows: usize,
}

impl BenchConfig {
    /// The default sizes, scratch files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> BenchConfig {
        BenchConfig {
            dir: dir.into(),
            rows: 65_536,
            values: 24,
            min_time: Duration::from_secs(1),
            large_mib: vec![1, 16, 128],
            zipf_keys: 400,
            zipf_reads: 20_000,
            zipf_rows: 4_096,
        }
    }

    /// A run of a few hundred milliseconds, for tests.
    pub fn quick(dir: impl Into<PathBuf>) -> BenchConfig {
        BenchConfig {
            rows: 4_096,
            values: 4,
            min_time: Duration::from_millis(20),
            large_mib: vec![1],
            zipf_keys: 50,
            zipf_reads: 1_000,
            zipf_rows: 256,
            ..BenchConfig::new(dir)
        }
    }
}

/// Throughput of one kind of read or write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Operations timed.
    pub ops: u64,
    /// Arrow bytes moved by them.
    pub bytes: u64,
    /// Seconds they took.
    pub secs: f64,
    /// `bytes / secs / 10^6`.
    pub mb_per_s: f64,
}

impl Throughput {
    fn new(ops: u64, bytes: u64, d: Duration) -> Throughput {
        let secs = d.as_secs_f64().max(1e-9);
        Throughput {
            ops,
            bytes,
            secs,
            mb_per_s: bytes as f64 / secs / 1e6,
        }
    }
}

/// One large value written and read back from disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LargeValue {
    /// Arrow bytes of the value.
    pub arrow_bytes: u64,
    /// Bytes stored on disk (compressed).
    pub stored_bytes: u64,
    /// The durable put.
    pub put: Throughput,
    /// The disk read.
    pub get: Throughput,
}

/// The figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Arrow bytes of one throughput-run value.
    pub value_bytes: u64,
    /// Stored bytes of one throughput-run value (compression ratio = value / stored).
    pub stored_bytes: u64,
    /// Memory-tier hits.
    pub memory_get: Throughput,
    /// Disk-tier hits (memory tier off).
    pub disk_get: Throughput,
    /// Durable single-value writes (one fsync each).
    pub put_durable: Throughput,
    /// Non-durable single-value writes (`put`'s default).
    pub put: Throughput,
    /// Large values.
    pub large: Vec<LargeValue>,
    /// Hit rate of the Zipf run, both tiers together.
    pub zipf_hit_rate: f64,
    /// Share of the Zipf run's reads answered by the memory tier.
    pub zipf_memory_hit_rate: f64,
    /// Share of the Zipf run's reads that went to disk and were found there.
    pub zipf_disk_hit_rate: f64,
    /// Working set of the Zipf run over its memory tier.
    pub zipf_working_set_bytes: u64,
    /// The Zipf run's memory tier.
    pub zipf_memory_bytes: u64,
}

/// Runs the measurements (see the module docs) in `cfg.dir`.
pub fn run_bench(cfg: &BenchConfig) -> Result<BenchReport> {
    let _ = std::fs::remove_dir_all(&cfg.dir);
    let values: Vec<RecordBatch> = (0..cfg.values as u64).map(|i| ticks(i, cfg.rows)).collect();
    let value_bytes = values[0].get_array_memory_size() as u64;
    let keys: Vec<CacheKey> = (0..values.len() as u64)
        .map(|i| CacheKey::of([i.to_le_bytes()]))
        .collect();

    // 1. Memory hits.
    let mem = CacheBuilder::new()
        .memory_bytes(value_bytes * (values.len() as u64 + 4) * 2)
        .build()?;
    for (k, v) in keys.iter().zip(&values) {
        mem.put(*k, v)?;
    }
    let memory_get = read_loop(&mem, &keys, cfg.min_time)?;

    // 2 and 3. Disk: writes, then reads with the memory tier off.
    let disk_dir = cfg.dir.join("throughput");
    let disk = CacheBuilder::new()
        .dir(&disk_dir)
        .memory_bytes(0)
        .disk_bytes(8 << 30)
        .build()?;
    let t = Instant::now();
    for (k, v) in keys.iter().zip(&values) {
        let mut w = crate::WriteBatch::new();
        w.put_batches(&Namespace::USER, *k, std::slice::from_ref(v));
        disk.write(w)?;
    }
    let put_durable = Throughput::new(
        keys.len() as u64,
        value_bytes * keys.len() as u64,
        t.elapsed(),
    );
    let t = Instant::now();
    for (k, v) in keys.iter().zip(&values) {
        disk.put(*k, v)?;
    }
    let put = Throughput::new(
        keys.len() as u64,
        value_bytes * keys.len() as u64,
        t.elapsed(),
    );
    disk.flush()?;
    let stored_bytes = disk
        .ns(Namespace::USER)
        .entries()?
        .first()
        .map_or(0, |e| e.stored_bytes);
    let disk_get = read_loop(&disk, &keys, cfg.min_time)?;
    drop(disk);

    let mut large = Vec::new();
    for (i, mib) in cfg.large_mib.iter().enumerate() {
        let dir = cfg.dir.join(format!("large-{mib}"));
        let c = CacheBuilder::new()
            .dir(&dir)
            .memory_bytes(0)
            .disk_bytes(8 << 30)
            .build()?;
        let rows = ((mib << 20) / BYTES_PER_ROW) as usize;
        let v = ticks(1000 + i as u64, rows);
        let bytes = v.get_array_memory_size() as u64;
        let k = CacheKey::of([b"large".as_slice(), &mib.to_le_bytes()]);
        let t = Instant::now();
        let mut w = crate::WriteBatch::new();
        w.put_batches(&Namespace::USER, k, std::slice::from_ref(&v));
        c.write(w)?;
        let put = Throughput::new(1, bytes, t.elapsed());
        let t = Instant::now();
        let back = c.ns(Namespace::USER).get_batches(k)?;
        let get = Throughput::new(1, bytes, t.elapsed());
        if back.as_deref() != Some(std::slice::from_ref(&v)) {
            return Err(crate::CacheError::Invalid(format!(
                "bench: the {mib} MiB value came back different"
            )));
        }
        let stored = c
            .ns(Namespace::USER)
            .entries()?
            .first()
            .map_or(0, |e| e.stored_bytes);
        large.push(LargeValue {
            arrow_bytes: bytes,
            stored_bytes: stored,
            put,
            get,
        });
    }

    // 4. Zipf hit rate.
    let zipf_value = ticks(0, cfg.zipf_rows).get_array_memory_size() as u64;
    let working_set = zipf_value * cfg.zipf_keys as u64;
    let zipf_memory_bytes = working_set / 4;
    let z = CacheBuilder::new()
        .dir(cfg.dir.join("zipf"))
        .memory_bytes(zipf_memory_bytes)
        .disk_bytes((working_set * 2).max(1 << 20))
        .build()?;
    let ns = z.ns(Namespace::STAGE_OUTPUT);
    let zipf = Zipf::new(cfg.zipf_keys, 1.0);
    let mut rng = SplitMix64(0x5eed);
    for _ in 0..cfg.zipf_reads {
        let i = zipf.sample(rng.next_f64()) as u64;
        let k = CacheKey::of([i.to_le_bytes()]);
        if ns.get_batches(k)?.is_none() {
            ns.put(k, &ticks(i, cfg.zipf_rows))?;
        }
    }
    let s = z.get_stats()?;
    let reads = s.lookups.max(1) as f64;
    let mem_hits = s.memory.as_ref().map_or(0, |m| m.hits);
    let disk_hits = s.disk.as_ref().map_or(0, |d| d.tier.hits);
    Ok(BenchReport {
        value_bytes,
        stored_bytes,
        memory_get,
        disk_get,
        put_durable,
        put,
        large,
        zipf_hit_rate: s.hit_rate,
        zipf_memory_hit_rate: mem_hits as f64 / reads,
        zipf_disk_hit_rate: disk_hits as f64 / reads,
        zipf_working_set_bytes: working_set,
        zipf_memory_bytes,
    })
}

/// Reads `keys` round-robin until `min_time` has passed (whole rounds).
fn read_loop(c: &CacheManager, keys: &[CacheKey], min_time: Duration) -> Result<Throughput> {
    let ns = c.ns(Namespace::USER);
    let (mut ops, mut bytes) = (0u64, 0u64);
    let t = Instant::now();
    while t.elapsed() < min_time {
        for k in keys {
            let b = ns.get_batches(*k)?.ok_or_else(|| {
                crate::CacheError::Invalid(format!("bench: {k} missing from the cache"))
            })?;
            bytes += b
                .iter()
                .map(|b| b.get_array_memory_size() as u64)
                .sum::<u64>();
            ops += 1;
        }
    }
    Ok(Throughput::new(ops, bytes, t.elapsed()))
}

/// Arrow bytes per row of [`ticks`]: 4 × 8-byte columns, a 4-byte string offset and the
/// 4-byte symbol, 8 for `size`, measured with `get_array_memory_size` (≈ 52).
const BYTES_PER_ROW: u64 = 52;

/// Tick-like rows: a price random walk with a spread around it, sizes, three symbols.
fn ticks(seed: u64, rows: usize) -> RecordBatch {
    let mut rng = SplitMix64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xC0FFEE);
    let mut px = 100.0 + (seed % 100) as f64;
    let mut ts = Vec::with_capacity(rows);
    let mut sym = Vec::with_capacity(rows);
    let mut price = Vec::with_capacity(rows);
    let mut size = Vec::with_capacity(rows);
    let mut bid = Vec::with_capacity(rows);
    let mut ask = Vec::with_capacity(rows);
    let mut t = 1_700_000_000_000_000_000i64 + seed as i64 * 1_000_000_000;
    for _ in 0..rows {
        let r = rng.next();
        t += (r % 5_000_000) as i64;
        px += ((r >> 20) % 5) as f64 * 0.01 - 0.02;
        ts.push(t);
        sym.push(["AAPL", "MSFT", "SPY"][(r >> 40) as usize % 3]);
        price.push((px * 100.0).round() / 100.0);
        size.push(((r >> 44) % 50 * 100 + 100) as i64);
        bid.push(((px - 0.01) * 100.0).round() / 100.0);
        ask.push(((px + 0.01) * 100.0).round() / 100.0);
    }
    RecordBatch::try_from_iter([
        ("ts", Arc::new(Int64Array::from(ts)) as _),
        ("symbol", Arc::new(StringArray::from(sym)) as _),
        ("price", Arc::new(Float64Array::from(price)) as _),
        ("size", Arc::new(Int64Array::from(size)) as _),
        ("bid", Arc::new(Float64Array::from(bid)) as _),
        ("ask", Arc::new(Float64Array::from(ask)) as _),
    ])
    .unwrap_or_else(|_| RecordBatch::new_empty(Arc::new(arrow_schema::Schema::empty())))
}

/// SplitMix64 (Steele et al. 2014): a seeded generator in five lines. Written here rather
/// than taken from `rand` so the library (which exposes this bench to xtask) gains no
/// dependency for it.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf over ranks `0..n` by inverse transform of the cumulative weights `1/(k+1)^s`
/// (written here for the same reason as [`SplitMix64`]).
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (0..n.max(1))
            .map(|k| {
                acc += 1.0 / ((k + 1) as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    /// The rank for a uniform `u` in `[0, 1)`.
    fn sample(&self, u: f64) -> usize {
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        writeln!(
            f,
            "value: {:.2} MB of Arrow buffers, {:.2} MB stored ({:.1}x)",
            mb(self.value_bytes),
            mb(self.stored_bytes),
            self.value_bytes as f64 / self.stored_bytes.max(1) as f64
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, t: &Throughput| {
            writeln!(
                f,
                "{name:<28} {:>10.0} MB/s  {:>9.1} µs/op  ({} ops, {:.1} MB in {:.3} s)",
                t.mb_per_s,
                t.secs * 1e6 / t.ops.max(1) as f64,
                t.ops,
                mb(t.bytes),
                t.secs
            )
        };
        row(f, "memory-tier get", &self.memory_get)?;
        row(f, "disk-tier get", &self.disk_get)?;
        row(f, "put, durable (fsync)", &self.put_durable)?;
        row(f, "put, non-durable", &self.put)?;
        for l in &self.large {
            let name = format!("large {:.0} MB put", mb(l.arrow_bytes));
            row(f, &name, &l.put)?;
            let name = format!("large {:.0} MB disk get", mb(l.arrow_bytes));
            row(f, &name, &l.get)?;
        }
        writeln!(
            f,
            "zipf(s=1) hit rate: {:.1}% overall ({:.1}% memory, {:.1}% disk); working set {:.0} MB over a {:.0} MB memory tier",
            self.zipf_hit_rate * 100.0,
            self.zipf_memory_hit_rate * 100.0,
            self.zipf_disk_hit_rate * 100.0,
            mb(self.zipf_working_set_bytes),
            mb(self.zipf_memory_bytes)
        )
    }
}

/// The default bench directory under `target`: `<target>/cache-bench`.
pub fn default_bench_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("cache-bench")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_follows_its_weights() {
        let z = Zipf::new(4, 1.0);
        // Weights 1, 1/2, 1/3, 1/4 over 25/12.
        let mut counts = [0usize; 4];
        let mut rng = SplitMix64(1);
        for _ in 0..100_000 {
            counts[z.sample(rng.next_f64())] += 1;
        }
        let expected = [0.48, 0.24, 0.16, 0.12];
        for (c, e) in counts.iter().zip(expected) {
            let share = *c as f64 / 100_000.0;
            assert!((share - e).abs() < 0.01, "{counts:?}");
        }
        assert_eq!(z.sample(0.0), 0);
        assert_eq!(z.sample(0.999_999_9), 3);
    }

    #[test]
    fn row_size_constant_matches_the_data() {
        let per_row = ticks(0, 10_000).get_array_memory_size() as u64 / 10_000;
        assert!(per_row.abs_diff(BYTES_PER_ROW) <= 4, "{per_row}");
    }

    #[test]
    fn quick_bench_runs_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let r = run_bench(&BenchConfig::quick(dir.path().join("b"))).unwrap();
        assert!(r.memory_get.ops > 0 && r.disk_get.ops > 0);
        assert!(r.stored_bytes > 0 && r.stored_bytes < r.value_bytes);
        assert!(r.zipf_hit_rate > 0.5, "{r}");
        assert_eq!(r.large.len(), 1);
        assert!(r.to_string().contains("zipf"));
    }
}
