//! `tickpipe.Config` on the Rust side: the Python object holds the configuration as a dict
//! (the serde form of [`Config`]); these functions make it from presets and TOML, turn it
//! back into TOML and check it, so every rule and error message is the Rust one.

use pipeline_core::{Config, Error, Result};
use pyo3::prelude::*;

use crate::errors::to_py;

/// A JSON value without its nulls (TOML has none: an absent key is the unset option).
fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// The configuration a JSON text (the Python `Config`'s dict) describes, parsed by the same
/// code as a config file so errors name the dotted key.
pub(crate) fn from_json(text: &str) -> Result<Config> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::Usage(format!("the configuration is not valid JSON: {e}")))?;
    let table = toml::Table::try_from(strip_nulls(value))
        .map_err(|e| Error::config("config", format!("not a configuration table: {e}")))?;
    let toml_text = toml::to_string(&table)
        .map_err(|e| Error::config("config", format!("cannot be written as TOML: {e}")))?;
    Config::from_toml_str(&toml_text)
}

/// An optional JSON config, or the default.
pub(crate) fn from_json_or_default(text: Option<&str>) -> Result<Config> {
    text.map_or_else(|| Ok(Config::default()), from_json)
}

fn to_json(cfg: &Config) -> Result<String> {
    serde_json::to_string(cfg).map_err(|e| Error::Internal(format!("config serialisation: {e}")))
}

/// A preset (`default`, `production`, `development`) as JSON.
#[pyfunction]
pub(crate) fn config_preset(py: Python<'_>, name: &str) -> PyResult<String> {
    Config::preset(name)
        .and_then(|c| to_json(&c))
        .map_err(|e| to_py(py, e))
}

/// TOML text over a preset, as JSON.
#[pyfunction]
#[pyo3(signature = (text, base = "default"))]
pub(crate) fn config_from_toml(py: Python<'_>, text: &str, base: &str) -> PyResult<String> {
    Config::preset(base)
        .and_then(|b| Config::from_toml_str_over(text, b))
        .and_then(|c| to_json(&c))
        .map_err(|e| to_py(py, e))
}

/// The JSON configuration as TOML (checked first).
#[pyfunction]
pub(crate) fn config_to_toml(py: Python<'_>, json: &str) -> PyResult<String> {
    from_json(json)
        .and_then(|c| c.to_toml_string())
        .map_err(|e| to_py(py, e))
}

/// Checks the JSON configuration the way a run would (`tickpipe config check`).
#[pyfunction]
pub(crate) fn config_check(py: Python<'_>, json: &str) -> PyResult<()> {
    from_json(json)
        .and_then(|c| tickpipe::check_config(&c))
        .map_err(|e| to_py(py, e))
}
