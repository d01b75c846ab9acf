//! [`cores`]: the number of cores this process may use, asked once.

use std::sync::OnceLock;

/// The cores this process may use (`std::thread::available_parallelism`, 1 when unknown),
/// asked of the system once per process. Each call of the standard function reads the
/// cgroup files under `/proc` and `/sys` (about ten system calls); a run over 1,258 day
/// files asked it six times per file.
///
/// ```
/// assert!(pipeline_core::cores() >= 1);
/// ```
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
