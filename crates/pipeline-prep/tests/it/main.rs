//! Integration tests for pipeline-prep (one binary to keep link times down).

mod clean;
mod features;
mod hostile;
mod session_bars;
mod vendor;
