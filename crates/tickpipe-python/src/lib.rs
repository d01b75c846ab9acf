//! The native module of the `tickpipe` Python package, `tickpipe._native`: a thin pyo3 layer
//! over the `tickpipe` facade. The Python package (`python/tickpipe`) wraps it with
//! docstrings, type stubs, [`Config`](pipeline_core::Config) as a Python object and the
//! progress display; users import `tickpipe`, not this module.
//!
//! - `run` runs a pipeline on a Rust thread with the GIL released, waking every 100 ms to
//!   run Python's signal handlers (Ctrl-C cancels the run and re-raises
//!   `KeyboardInterrupt`) and to hand progress to a callback.
//! - `scan` starts a streamed run and returns a `Stream`: an Arrow C stream
//!   (`__arrow_c_stream__`, arrow-rs's FFI in a capsule named `arrow_array_stream`) and a
//!   batch iterator (each batch an `__arrow_c_array__` object), so Polars, pyarrow, DuckDB
//!   and pandas read the output without a copy while the run keeps memory bounded.
//! - Errors become the exception classes of `tickpipe.errors`, keeping file, line and column.
//!
//! ```python
//! import tickpipe
//! report = tickpipe.run(["ticks/*.csv"], "out")
//! print(report.ledger)
//! ```

mod config;
mod errors;
mod misc;
mod run;
mod scan;

use pyo3::prelude::*;

/// The `tickpipe._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(run::run, m)?)?;
    m.add_function(wrap_pyfunction!(scan::scan, m)?)?;
    m.add_class::<scan::Stream>()?;
    m.add_class::<scan::Batch>()?;
    m.add_function(wrap_pyfunction!(config::config_preset, m)?)?;
    m.add_function(wrap_pyfunction!(config::config_from_toml, m)?)?;
    m.add_function(wrap_pyfunction!(config::config_to_toml, m)?)?;
    m.add_function(wrap_pyfunction!(config::config_check, m)?)?;
    m.add_function(wrap_pyfunction!(misc::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(misc::gen_data, m)?)?;
    m.add_function(wrap_pyfunction!(misc::cache_stats, m)?)?;
    Ok(())
}
