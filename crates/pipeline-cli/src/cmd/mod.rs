//! One module per subcommand.

pub mod bars;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod convert;
pub mod demo;
pub mod inspect;
pub mod run;
pub mod validate;
