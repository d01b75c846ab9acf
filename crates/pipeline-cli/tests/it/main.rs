//! Integration tests of the `tickpipe` binary (assert_cmd): every subcommand, exit codes, the
//! summary JSON's ledger equation, resume after a crash, bad input, and the real datasets.

mod bad_input;
mod cluster;
mod commands;
mod hostile;
mod incremental;
mod integrity;
mod normalize;
mod real_data;
mod resume;
mod sort;
mod taq;
mod util;
mod vendor;
