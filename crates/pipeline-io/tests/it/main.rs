//! Integration tests for pipeline-io (one binary to keep link times down).

mod hostile;
mod read;
mod sink;
mod synth;
mod synth_variants;
mod vendor;
