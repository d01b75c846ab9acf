//! Column helpers shared by the keyed stages: per-row key slots and event times.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use pipeline_core::{Chunk, Error, Result};

/// The distinct keys of one chunk and, per row, the index of its key (`None` for a null key).
#[derive(Debug, Default)]
pub(crate) struct RowKeys {
    /// Distinct key values, in order of first appearance in the dictionary or rows.
    pub names: Vec<String>,
    /// Per row: index into `names`, or `None` when the key is null.
    pub rows: Vec<Option<usize>>,
}

fn column<'a>(chunk: &'a Chunk, name: &str) -> Result<&'a ArrayRef> {
    chunk
        .column_by_name(name)
        .ok_or_else(|| Error::Schema(format!("column `{name}` is missing")))
}

/// Reads the key column `name` (dictionary of UTF-8 or plain UTF-8) as key slots, mapping
/// dictionary values to slots once per chunk.
pub(crate) fn row_keys(chunk: &Chunk, name: &str) -> Result<RowKeys> {
    let col = column(chunk, name)?;
    match col.data_type() {
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let dict = col.as_dictionary::<Int32Type>();
            let values = dict.values().as_string::<i32>();
            let names: Vec<String> = (0..values.len())
                .map(|i| values.value(i).to_string())
                .collect();
            let rows = (0..dict.len())
                .map(|i| {
                    if dict.is_null(i) {
                        None
                    } else {
                        Some(dict.keys().value(i) as usize)
                    }
                })
                .collect();
            Ok(RowKeys { names, rows })
        }
        DataType::Utf8 => {
            let s = col.as_string::<i32>();
            let mut names: Vec<String> = Vec::new();
            let mut index = std::collections::HashMap::<&str, usize>::new();
            let mut rows = Vec::with_capacity(s.len());
            for i in 0..s.len() {
                if s.is_null(i) {
                    rows.push(None);
                    continue;
                }
                let v = s.value(i);
                let slot = *index.entry(v).or_insert_with(|| {
                    names.push(v.to_string());
                    names.len() - 1
                });
                rows.push(Some(slot));
            }
            Ok(RowKeys { names, rows })
        }
        other => Err(Error::Schema(format!(
            "key column `{name}` must be Dictionary(Int32, Utf8) or Utf8, found {other}"
        ))),
    }
}

/// Reads the event-time column `name` as nanoseconds (`None` for nulls). Accepts
/// `Timestamp(ns)` and `Int64` (taken as nanoseconds).
pub(crate) fn event_times(chunk: &Chunk, name: &str) -> Result<Vec<Option<i64>>> {
    let col = column(chunk, name)?;
    match col.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Ok(col
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .collect()),
        DataType::Int64 => Ok(col.as_primitive::<Int64Type>().iter().collect()),
        other => Err(Error::Schema(format!(
            "time column `{name}` must be Timestamp(ns) or Int64, found {other}"
        ))),
    }
}

/// Reads a numeric column as `f64` values (`None` for nulls); integers are converted.
pub(crate) fn numbers(chunk: &Chunk, name: &str) -> Result<Vec<Option<f64>>> {
    let col = column(chunk, name)?;
    let cast = match col.data_type() {
        DataType::Float64 => {
            return Ok(col
                .as_primitive::<arrow_array::types::Float64Type>()
                .iter()
                .collect());
        }
        DataType::Int64 => col
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|v| v as f64))
            .collect(),
        DataType::Int32 => col
            .as_primitive::<Int32Type>()
            .iter()
            .map(|v| v.map(f64::from))
            .collect(),
        DataType::UInt64 => col
            .as_primitive::<arrow_array::types::UInt64Type>()
            .iter()
            .map(|v| v.map(|v| v as f64))
            .collect(),
        DataType::Float32 => col
            .as_primitive::<arrow_array::types::Float32Type>()
            .iter()
            .map(|v| v.map(f64::from))
            .collect(),
        other => {
            return Err(Error::Schema(format!(
                "column `{name}` must be numeric to aggregate, found {other}"
            )));
        }
    };
    Ok(cast)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{DictionaryArray, RecordBatch, StringArray};
    use arrow_schema::{Field, Schema};

    #[test]
    fn dictionary_and_plain_keys_give_the_same_slots() {
        let dict: DictionaryArray<Int32Type> = vec![Some("A"), None, Some("B"), Some("A")]
            .into_iter()
            .collect();
        let plain = StringArray::from(vec![Some("A"), None, Some("B"), Some("A")]);
        for col in [Arc::new(dict) as ArrayRef, Arc::new(plain) as ArrayRef] {
            let schema = Arc::new(Schema::new(vec![Field::new(
                "symbol",
                col.data_type().clone(),
                true,
            )]));
            let batch = RecordBatch::try_new(schema, vec![col]).unwrap();
            let chunk = Chunk::with_first_line(batch, 0, 0, 1).unwrap();
            let k = row_keys(&chunk, "symbol").unwrap();
            let got: Vec<Option<&str>> = k
                .rows
                .iter()
                .map(|r| r.map(|i| k.names[i].as_str()))
                .collect();
            assert_eq!(got, vec![Some("A"), None, Some("B"), Some("A")]);
        }
    }
}
