//! Integration tests of the parallel engine (one test binary).

mod engine;
mod mapreduce;
mod resume;
mod support;
