//! tickpipe errors as Python exceptions: each [`Error`] variant becomes its class in
//! `tickpipe.errors` (a `TickpipeError` hierarchy), with the error's fields (file, line,
//! column, key, path, ...) as attributes.

use pipeline_core::Error;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The Python exception for `e`.
pub(crate) fn to_py(py: Python<'_>, e: Error) -> PyErr {
    build(py, &e).unwrap_or_else(|failed| failed)
}

/// `e` as a `tickpipe.errors` exception; `Err` carries the error met while building it.
fn build(py: Python<'_>, e: &Error) -> Result<PyErr, PyErr> {
    let fields = PyDict::new(py);
    let class = match e {
        Error::Io { path, source } => {
            fields.set_item("path", path.display().to_string())?;
            fields.set_item("file", path.display().to_string())?;
            fields.set_item("kind", format!("{:?}", source.kind()))?;
            "TickpipeIOError"
        }
        Error::Parse {
            file,
            line,
            column,
            expected,
            found,
        } => {
            fields.set_item("file", file)?;
            fields.set_item("line", line)?;
            fields.set_item("column", column)?;
            fields.set_item("expected", expected)?;
            fields.set_item("found", found)?;
            "ParseError"
        }
        Error::Malformed { file, line, .. } => {
            fields.set_item("file", file)?;
            fields.set_item("line", line)?;
            "MalformedError"
        }
        Error::Corrupt { file, codec, .. } => {
            fields.set_item("file", file)?;
            fields.set_item("codec", codec)?;
            "CorruptInputError"
        }
        Error::Format { file, .. } => {
            fields.set_item("file", file)?;
            "FormatError"
        }
        Error::Config { key, .. } => {
            fields.set_item("key", key)?;
            "ConfigError"
        }
        Error::Schema(_) => "SchemaError",
        Error::Disorder(_) => "DisorderError",
        Error::TooManyQuarantined {
            quarantined, read, ..
        } => {
            fields.set_item("quarantined", quarantined)?;
            fields.set_item("read", read)?;
            "QuarantineLimitError"
        }
        Error::Usage(_) => "UsageError",
        Error::Arrow(_) => "ArrowError",
        Error::Cancelled => "CancelledError",
        Error::Busy(_) => "BusyError",
        Error::Internal(_) => "InternalError",
        _ => "TickpipeError",
    };
    let module = py.import("tickpipe.errors")?;
    let value = module
        .getattr(class)?
        .call((e.to_string(),), Some(&fields))?;
    Ok(PyErr::from_value(value))
}
