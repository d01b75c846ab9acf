//! Integration tests for pipeline-prep (one binary to keep link times down).

mod clean;
mod features;
mod hostile;
mod vendor;
