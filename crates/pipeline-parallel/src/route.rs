//! Routing rows to workers: by key (every row of a symbol to one worker) or, when no stage
//! needs keys, whole chunks round-robin.

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, UInt64Array};
use arrow_schema::DataType;
use pipeline_core::{Chunk, Error, Result, partition_of};

/// How deliveries are spread over workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Rows go to `partition_of(key, workers)`; null keys go to worker 0.
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
                .map(|i| partition_of(values.value(i).as_bytes(), workers))
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
                        partition_of(s.value(i).as_bytes(), workers)
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
                        partition_of(s.value(i).as_bytes(), 3)
                    };
                    assert_eq!(want, w);
                }
            }
        }
    }
}
