//! Integration tests of the streaming stages (one test binary).

mod support;
mod windows;
