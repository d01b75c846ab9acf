//! The seeded PRNG of unit tests: core's [`pipeline_core::SplitMix64`].

pub(crate) use pipeline_core::SplitMix64 as SplitMix;
