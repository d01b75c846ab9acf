//! The `tickpipe` command-line tool lives in `main.rs`; this library target exists so the
//! README's Rust examples (the seed design's quick-start, translated) compile and run as
//! doctests with `cargo test -p pipeline-cli --doc`.

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
