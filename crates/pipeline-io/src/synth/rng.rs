//! The generator's own seeded PRNG: xoshiro256** seeded through [`SplitMix64`].
//!
//! Written here rather than taken from `rand` so the byte stream of `gen-data` can never change
//! with a dependency upgrade: same seed, same bytes, forever.

use pipeline_core::SplitMix64;

/// xoshiro256** (Blackman & Vigna): fast, 256-bit state, good statistical quality.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator for `(seed, stream)`; different streams give independent sequences.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        // splitmix64 expands the seed into xoshiro state (its authors' recommendation).
        let mut sm = SplitMix64::new(seed ^ SplitMix64::new(stream).next_u64());
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Rng { s }
    }

    /// The next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    #[inline]
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform float in `(0, 1]`, safe to raise to a negative power.
    #[inline]
    pub(crate) fn f64_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` (Lemire's multiply-high; the bias is below 2^-32 for our n).
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// An approximately standard normal draw: the Irwin–Hall sum of four uniforms, rescaled.
    /// Tails are bounded at ±3.46σ, which is what a price walk wants (spikes are injected
    /// explicitly as labelled anomalies, not left to chance).
    #[inline]
    pub(crate) fn normal(&mut self) -> f64 {
        let sum = self.f64() + self.f64() + self.f64() + self.f64();
        (sum - 2.0) * 3f64.sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42, 7);
        let mut b = Rng::new(42, 7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn streams_and_seeds_differ() {
        assert_ne!(Rng::new(42, 1).next_u64(), Rng::new(42, 2).next_u64());
        assert_ne!(Rng::new(1, 1).next_u64(), Rng::new(2, 1).next_u64());
    }

    #[test]
    fn ranges_hold() {
        let mut r = Rng::new(3, 0);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let u = r.f64();
            assert!((0.0..1.0).contains(&u));
            let v = r.f64_open();
            assert!(v > 0.0 && v <= 1.0);
            assert!(r.below(7) < 7);
            let z = r.normal();
            assert!(z.abs() < 3.47);
            sum += z;
        }
        assert!(
            (sum / 10_000.0).abs() < 0.05,
            "normal mean {}",
            sum / 10_000.0
        );
    }
}
