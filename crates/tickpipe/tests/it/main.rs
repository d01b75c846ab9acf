//! Integration tests of the facade: what the CLI's tests cover, through the library API.

mod cluster;
mod follow;
mod normalize;
mod resume;
mod run;
mod stream;
mod support;
mod taq;
