//! Integration tests of the parallel engine (one test binary).

mod engine;
mod errors;
mod live;
mod mapreduce;
mod resume;
mod support;
