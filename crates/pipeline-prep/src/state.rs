//! Serialising stage state for `Stage::checkpoint` / `Stage::restore`: JSON (serde_json with
//! `float_roundtrip`, so floats restore bit for bit), errors naming the stage.

use pipeline_core::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes a stage's checkpoint.
pub(crate) fn save<T: Serialize>(stage: &str, state: &T) -> Result<Option<Vec<u8>>> {
    serde_json::to_vec(state)
        .map(Some)
        .map_err(|e| Error::Internal(format!("{stage} checkpoint: {e}")))
}

/// Decodes a checkpoint written by [`save`].
pub(crate) fn load<T: DeserializeOwned>(stage: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Internal(format!("{stage} restore: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_named_errors() {
        let bytes = save("x", &vec![0.1f64, 1e-300]).unwrap().unwrap();
        assert_eq!(load::<Vec<f64>>("x", &bytes).unwrap(), vec![0.1, 1e-300]);
        let e = load::<Vec<f64>>("dedupe", b"{").unwrap_err().to_string();
        assert!(e.contains("dedupe restore"), "{e}");
    }
}
