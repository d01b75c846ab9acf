//! Stage-output cache for tickpipe (planned): a memory tier (moka) and a disk tier (redb),
//! keyed by each stage's [`StageKey`](https://docs.rs/pipeline-core) and its input's
//! fingerprint, so unchanged work is skipped on incremental re-runs.
//!
//! This crate holds no code yet; the design it plugs into is in `pipeline-core`: every stage
//! exposes a stable configuration hash (`Stage::key`), and every chunk carries its source and
//! sequence number, which together address a stage output.
