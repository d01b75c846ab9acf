//! Stable hashing: the same bytes give the same key on every machine and every run.
//!
//! Used to route symbols to workers, to assign shards, and to key stage configurations for the
//! cache. `std`'s `DefaultHasher` is not stable across Rust releases, so we use FNV-1a (64-bit),
//! which is tiny, fast on the short keys we hash, and fully specified.

use serde::Serialize;

/// FNV-1a 64-bit hash of `bytes`.
///
/// ```
/// assert_eq!(pipeline_core::stable_hash(b""), 0xcbf29ce484222325);
/// assert_eq!(pipeline_core::stable_hash(b"a"), 0xaf63dc4c8601ec8c);
/// ```
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Which of `n` partitions `key` belongs to (`n` 0 is treated as 1).
///
/// FNV-1a's low bits are weak for short keys (the lowest bit is the parity of the bytes, so
/// with 2 partitions 12 of 16 common tickers landed on one), so the hash goes through the
/// murmur3 `fmix64` finaliser before the modulo.
pub fn partition_of(key: &[u8], n: usize) -> usize {
    (mix64(stable_hash(key)) % n.max(1) as u64) as usize
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator, the one every crate uses
/// for deterministic test data and benches and to seed the synthetic generator's xoshiro
/// state (its authors' recommendation). Written here rather than taken from `rand` so seeded
/// streams never change with a dependency upgrade.
///
/// ```
/// let mut a = pipeline_core::SplitMix64::new(7);
/// let mut b = pipeline_core::SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!((0.0..1.0).contains(&a.next_f64()));
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.next_f64().max(1e-300);
        let v = self.next_f64();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// FxHash (rustc's multiply-rotate hasher) for in-memory hash maps with short keys: symbol
/// dictionaries, spread counts. SipHash, `std`'s default, costs more than the rest of a row's
/// work on those paths. Not for keys an attacker chooses, nor for anything stored.
///
/// ```
/// use std::collections::HashMap;
/// let mut m: HashMap<i64, u32, pipeline_core::FxBuildHasher> = HashMap::default();
/// m.insert(10_000_000, 1);
/// assert_eq!(m.get(&10_000_000), Some(&1));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

impl FxHasher {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, w: u64) {
        self.add(w);
    }

    #[inline]
    fn write_i64(&mut self, w: i64) {
        self.add(w as u64);
    }

    #[inline]
    fn write_usize(&mut self, w: usize) {
        self.add(w as u64);
    }

    /// The multiply leaves the low bits of a key with trailing zeros (spreads in
    /// nano-dollars, multiples of 10^7) at zero, and hash tables index by the low bits: the
    /// rotation brings the well-mixed high bits down (as rustc-hash 2 does).
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// Builds [`FxHasher`]s: `HashMap<K, V, FxBuildHasher>`.
pub type FxBuildHasher = std::hash::BuildHasherDefault<FxHasher>;

/// The murmur3 64-bit finaliser: every input bit affects every output bit.
pub fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A stable key for a stage's configuration: a hash of its name and its TOML form.
///
/// Two stages with equal names and equal configurations get equal keys in any process; this
/// is what the cache will key stage outputs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StageKey(pub u64);

impl StageKey {
    /// Hashes `name` and the serialised `config`.
    pub fn of<T: Serialize>(name: &str, config: &T) -> StageKey {
        // TOML serialisation of plain config structs is deterministic (field order is
        // declaration order); a value TOML cannot express falls back to its name only.
        let body = toml::to_string(config).unwrap_or_default();
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        bytes.extend_from_slice(body.as_bytes());
        StageKey(stable_hash(&bytes))
    }
}

impl std::fmt::Display for StageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Cfg {
        window: usize,
    }

    #[test]
    fn stage_keys_depend_on_name_and_config() {
        let a = StageKey::of("sma", &Cfg { window: 20 });
        assert_eq!(a, StageKey::of("sma", &Cfg { window: 20 }));
        assert_ne!(a, StageKey::of("sma", &Cfg { window: 21 }));
        assert_ne!(a, StageKey::of("ema", &Cfg { window: 20 }));
        assert_eq!(a.to_string().len(), 16);
    }

    #[test]
    fn common_tickers_spread_over_two_partitions() {
        let tickers = [
            "AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "TSLA", "JPM", "V", "JNJ", "WMT", "PG",
            "XOM", "BAC", "KO", "PEP",
        ];
        let on_zero = tickers
            .iter()
            .filter(|t| partition_of(t.as_bytes(), 2) == 0)
            .count();
        assert!(
            (5..=11).contains(&on_zero),
            "{on_zero} of 16 on partition 0"
        );
    }

    #[test]
    fn partitions_are_in_range() {
        for s in ["AAPL", "MSFT", ""] {
            assert!(partition_of(s.as_bytes(), 3) < 3);
        }
        assert_eq!(partition_of(b"x", 0), 0);
    }
}
