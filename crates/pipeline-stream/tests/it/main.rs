//! Integration tests of the streaming executor and its stages (one test binary).

mod executor;
mod support;
mod windows;
