//! Routing rows to workers: by key (every row of a symbol to one worker) or, when no stage
//! needs keys, whole chunks round-robin.

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, UInt64Array};
use arrow_schema::DataType;
use pipeline_core::{Chunk, Error, Result, stable_hash};

/// Which of `n` partitions `key` belongs to: [`pipeline_core::stable_hash`] (FNV-1a) followed
/// by the murmur3 64-bit finaliser, modulo `n`. Stable across machines and runs.
///
/// The finaliser matters: FNV-1a's low bit is the parity of the key's bytes' low bits, so
/// `pipeline_core::partition(key, 2)` puts 12 of 16 common tickers on one worker; mixed,
/// every bit of the hash depends on every input bit. Used for routing keys to workers and for
/// sharding.
///
/// ```
/// let p = pipeline_parallel::partition(b"AAPL", 4);
/// assert!(p < 4);
/// assert_eq!(p, pipeline_parallel::partition(b"AAPL", 4));
/// ```
pub fn partition(key: &[u8], n: usize) -> usize {
    let mut z = stable_hash(key);
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^= z >> 33;
    (z % n.max(1) as u64) as usize
}

/// How deliveries are spread over workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Rows go to `partition(key, workers)`; null keys go to worker 0.
    ByKey(String),
    /// Delivery `d` goes whole to worker `d % workers`.
    RoundRobin,
}

/// Splits `chunk` (delivery number `d`) into one part per worker (`None` = no rows).
pub(crate) fn split(
    chunk: Chunk,
    d: u64,
    route: &Route,
    workers: usize,
) -> Result<Vec<Option<Chunk>>> {
    let mut parts: Vec<Option<Chunk>> = vec![None; workers];
    if workers == 1 {
        parts[0] = Some(chunk);
        return Ok(parts);
    }
    let key = match route {
        Route::RoundRobin => {
            parts[(d % workers as u64) as usize] = Some(chunk);
            return Ok(parts);
        }
        Route::ByKey(k) => k,
    };
    let dest = destinations(&chunk, key, workers)?;
    let mut idx: Vec<Vec<u64>> = vec![Vec::new(); workers];
    for (row, w) in dest.iter().enumerate() {
        idx[*w].push(row as u64);
    }
    let n = chunk.num_rows();
    for (w, rows) in idx.into_iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        parts[w] = Some(if rows.len() == n {
            chunk.clone()
        } else {
            chunk.take(&UInt64Array::from(rows))?
        });
    }
    Ok(parts)
}

/// The worker of each row; dictionary values are hashed once per chunk.
fn destinations(chunk: &Chunk, key: &str, workers: usize) -> Result<Vec<usize>> {
    let col = chunk
        .column_by_name(key)
        .ok_or_else(|| Error::Schema(format!("key column `{key}` is missing")))?;
    match col.data_type() {
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let dict = col.as_dictionary::<Int32Type>();
            let values = dict.values().as_string::<i32>();
            let of_value: Vec<usize> = (0..values.len())
                .map(|i| partition(values.value(i).as_bytes(), workers))
                .collect();
            Ok((0..dict.len())
                .map(|i| {
                    if dict.is_null(i) {
                        0
                    } else {
                        of_value
                            .get(dict.keys().value(i) as usize)
                            .copied()
                            .unwrap_or(0)
                    }
                })
                .collect())
        }
        DataType::Utf8 => {
            let s = col.as_string::<i32>();
            Ok((0..s.len())
                .map(|i| {
                    if s.is_null(i) {
                        0
                    } else {
                        partition(s.value(i).as_bytes(), workers)
                    }
                })
                .collect())
        }
        other => Err(Error::Schema(format!(
            "key column `{key}` must be Dictionary(Int32, Utf8) or Utf8, found {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{RecordBatch, StringArray};
    use arrow_schema::{Field, Schema};

    #[test]
    fn every_row_goes_to_its_keys_worker() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "symbol",
            DataType::Utf8,
            true,
        )]));
        let syms = vec![Some("AAPL"), Some("MSFT"), None, Some("AAPL"), Some("IBM")];
        let b =
            RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(syms.clone()))]).unwrap();
        let c = Chunk::with_first_line(b, 0, 0, 1).unwrap();
        let parts = split(c, 0, &Route::ByKey("symbol".into()), 3).unwrap();
        let total: usize = parts.iter().flatten().map(|p| p.num_rows()).sum();
        assert_eq!(total, 5);
        for (w, p) in parts.iter().enumerate() {
            if let Some(c) = p {
                let s = c.column_by_name("symbol").unwrap().as_string::<i32>();
                for i in 0..s.len() {
                    let want = if s.is_null(i) {
                        0
                    } else {
                        partition(s.value(i).as_bytes(), 3)
                    };
                    assert_eq!(want, w);
                }
            }
        }
    }
}
