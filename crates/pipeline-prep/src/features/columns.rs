//! Reading input columns as `f64`, timestamps as `i64` and symbols as per-row state slots.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampNanosecondType,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, TimeUnit};
use pipeline_core::{Chunk, Error, Result};

/// A numeric column as `f64` values with nulls as `None`, or absent.
pub(crate) struct F64Col {
    values: ScalarBuffer<f64>,
    valid: Option<NullBuffer>,
    present: bool,
}

impl F64Col {
    /// The value of row `i` (`None` when absent, null or not finite).
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<f64> {
        if !self.present {
            return None;
        }
        if let Some(v) = &self.valid
            && v.is_null(i)
        {
            return None;
        }
        let x = self.values[i];
        x.is_finite().then_some(x)
    }

    /// Whether the chunk had this column with at least one non-null value among `n` rows.
    pub(crate) fn present_non_null(&self, n: usize) -> bool {
        self.present && self.valid.as_ref().is_none_or(|v| v.null_count() < n)
    }

    /// A column that is not there.
    pub(crate) fn absent() -> Self {
        F64Col {
            values: ScalarBuffer::from(Vec::new()),
            valid: None,
            present: false,
        }
    }
}

fn validity(a: &dyn Array) -> Option<NullBuffer> {
    a.nulls().filter(|n| n.null_count() > 0).cloned()
}

/// Reads column `name` as `f64` (any integer or float type); absent when missing.
pub(crate) fn f64_col(chunk: &Chunk, name: &str) -> Result<F64Col> {
    let Some(a) = chunk.column_by_name(name) else {
        return Ok(F64Col::absent());
    };
    f64_array(a, name)
}

/// Converts a numeric array to `f64`.
pub(crate) fn f64_array(a: &ArrayRef, name: &str) -> Result<F64Col> {
    macro_rules! conv {
        ($t:ty) => {
            ScalarBuffer::from(
                a.as_primitive::<$t>()
                    .values()
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<f64>>(),
            )
        };
    }
    let values: ScalarBuffer<f64> = match a.data_type() {
        DataType::Float64 => a.as_primitive::<Float64Type>().values().clone(),
        DataType::Float32 => conv!(Float32Type),
        DataType::Int64 => conv!(Int64Type),
        DataType::Int32 => conv!(Int32Type),
        DataType::Int16 => conv!(Int16Type),
        DataType::Int8 => conv!(Int8Type),
        DataType::UInt64 => conv!(UInt64Type),
        DataType::UInt32 => conv!(UInt32Type),
        other => {
            return Err(Error::Schema(format!(
                "column `{name}` is {other}; features need a numeric column"
            )));
        }
    };
    Ok(F64Col {
        values,
        valid: validity(a.as_ref()),
        present: true,
    })
}

/// The `ts` column as UTC nanoseconds (`None` when absent or null).
pub(crate) struct TsCol {
    values: ScalarBuffer<i64>,
    valid: Option<NullBuffer>,
    present: bool,
}

impl TsCol {
    /// Row `i`'s timestamp.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<i64> {
        if !self.present {
            return None;
        }
        if let Some(v) = &self.valid
            && v.is_null(i)
        {
            return None;
        }
        Some(self.values[i])
    }
}

/// Reads `ts` (Timestamp(ns) or Int64 nanoseconds).
pub(crate) fn ts_col(chunk: &Chunk, name: &str) -> Result<TsCol> {
    let Some(a) = chunk.column_by_name(name) else {
        return Ok(TsCol {
            values: ScalarBuffer::from(Vec::new()),
            valid: None,
            present: false,
        });
    };
    let values = match a.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            a.as_primitive::<TimestampNanosecondType>().values().clone()
        }
        DataType::Int64 => a.as_primitive::<Int64Type>().values().clone(),
        other => {
            return Err(Error::Schema(format!(
                "column `{name}` is {other}; expected Timestamp(ns)"
            )));
        }
    };
    Ok(TsCol {
        values,
        valid: validity(a.as_ref()),
        present: true,
    })
}

/// Maps each row's key (the `symbol` column: dictionary or string; absent means one key)
/// to a slot index, registering new keys through `slot_of`.
pub(crate) fn key_slots(
    chunk: &Chunk,
    key: &str,
    mut slot_of: impl FnMut(&str) -> usize,
) -> Result<Vec<usize>> {
    let n = chunk.num_rows();
    let Some(a) = chunk.column_by_name(key) else {
        return Ok(vec![slot_of(""); n]);
    };
    match a.data_type() {
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary();
            let values = d.values();
            let strings: Vec<Option<&str>> = match values.data_type() {
                DataType::Utf8 => values.as_string::<i32>().iter().collect(),
                DataType::LargeUtf8 => values.as_string::<i64>().iter().collect(),
                other => {
                    return Err(Error::Schema(format!(
                        "key column `{key}` has {other} dictionary values; expected strings"
                    )));
                }
            };
            let dict_slots: Vec<Option<usize>> =
                strings.iter().map(|s| s.map(&mut slot_of)).collect();
            // Null keys (and null dictionary values) share the "" slot, registered on demand.
            let mut null_slot = None;
            let keys = if values.is_empty() {
                vec![0; n]
            } else {
                d.normalized_keys()
            };
            Ok((0..n)
                .map(|i| {
                    let slot = if a.is_null(i) {
                        None
                    } else {
                        dict_slots.get(keys[i]).copied().flatten()
                    };
                    slot.unwrap_or_else(|| *null_slot.get_or_insert_with(|| slot_of("")))
                })
                .collect())
        }
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            // Keys of tick data are few (exchanges, a file's symbols): a short list compared
            // byte-wise beats hashing every row; past 16 distinct keys a map takes over.
            let mut few: Vec<(&str, usize)> = Vec::new();
            let mut many: HashMap<&str, usize> = HashMap::new();
            Ok(s.iter()
                .map(|v| {
                    let v = v.unwrap_or("");
                    if let Some(&(_, slot)) = few.iter().find(|(k, _)| *k == v) {
                        return slot;
                    }
                    if let Some(&slot) = many.get(v) {
                        return slot;
                    }
                    let slot = slot_of(v);
                    if few.len() < 16 {
                        few.push((v, slot));
                    } else {
                        many.insert(v, slot);
                    }
                    slot
                })
                .collect())
        }
        other => Err(Error::Schema(format!(
            "key column `{key}` is {other}; expected a string or dictionary column"
        ))),
    }
}
