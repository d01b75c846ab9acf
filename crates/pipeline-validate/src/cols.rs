//! Column access by canonical name (absent columns are `None`, never an error), the symbol →
//! state-slot map, and the per-row fingerprint hash.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, Float64Array};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use arrow_schema::{DataType, TimeUnit};
use pipeline_core::{Chunk, Error, LINE_COLUMN, Result, stable_hash};

/// A numeric column as `Float64` (other numeric types are cast by value).
pub(crate) fn to_f64(a: &ArrayRef, name: &str) -> Result<Float64Array> {
    Ok(match a.data_type() {
        DataType::Float64 => a.as_primitive::<Float64Type>().clone(),
        DataType::Float32 => a.as_primitive::<Float32Type>().unary(f64::from),
        DataType::Int64 => a.as_primitive::<Int64Type>().unary(|v| v as f64),
        DataType::Int32 => a.as_primitive::<Int32Type>().unary(f64::from),
        DataType::Int8 => a.as_primitive::<Int8Type>().unary(f64::from),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().unary(|v| v as f64),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().unary(f64::from),
        other => {
            return Err(Error::Schema(format!(
                "column `{name}` must be numeric for validation, found {other}"
            )));
        }
    })
}

/// A `Float64` column with fast validity checks.
pub(crate) struct F64 {
    pub arr: Float64Array,
    nulls: Option<NullBuffer>,
}

impl F64 {
    /// The column `name` of `chunk`, or `None` when absent or not numeric.
    pub(crate) fn of(chunk: &Chunk, name: &str) -> Result<Option<F64>> {
        let Some(a) = chunk.column_by_name(name) else {
            return Ok(None);
        };
        // A non-numeric column of a numeric name is the schema rule's finding; the value
        // rules skip it.
        if !a.data_type().is_numeric() {
            return Ok(None);
        }
        let arr = to_f64(a, name)?;
        let nulls = arr.nulls().filter(|n| n.null_count() > 0).cloned();
        Ok(Some(F64 { arr, nulls }))
    }

    /// The raw values (arbitrary where null).
    #[inline]
    pub(crate) fn v(&self) -> &[f64] {
        self.arr.values()
    }

    /// Whether row `i` is not null.
    #[inline]
    pub(crate) fn ok(&self, i: usize) -> bool {
        self.nulls.as_ref().is_none_or(|n| n.is_valid(i))
    }

    /// The column's nulls, when it has any.
    #[inline]
    pub(crate) fn nulls(&self) -> Option<&NullBuffer> {
        self.nulls.as_ref()
    }

    /// Row `i`, `None` when null.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<f64> {
        self.ok(i).then(|| self.arr.value(i))
    }
}

/// The `ts` column as nanoseconds since the epoch (UTC).
pub(crate) struct Ts {
    /// Nanoseconds: the column's own buffer when it is in nanoseconds (no copy).
    values: ScalarBuffer<i64>,
    nulls: Option<NullBuffer>,
}

impl Ts {
    /// The `ts` column of `chunk`, or `None` when absent (or not a timestamp/integer column,
    /// which the schema rule reports).
    pub(crate) fn of(chunk: &Chunk) -> Option<Ts> {
        let a = chunk.column_by_name("ts")?;
        let nulls = a.logical_nulls().filter(|n| n.null_count() > 0);
        let values: ScalarBuffer<i64> = match a.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                a.as_primitive::<TimestampNanosecondType>().values().clone()
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => a
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .iter()
                .map(|v| v.saturating_mul(1_000))
                .collect(),
            DataType::Timestamp(TimeUnit::Millisecond, _) => a
                .as_primitive::<TimestampMillisecondType>()
                .values()
                .iter()
                .map(|v| v.saturating_mul(1_000_000))
                .collect(),
            DataType::Timestamp(TimeUnit::Second, _) => a
                .as_primitive::<TimestampSecondType>()
                .values()
                .iter()
                .map(|v| v.saturating_mul(1_000_000_000))
                .collect(),
            DataType::Int64 => a.as_primitive::<Int64Type>().values().clone(),
            _ => return None,
        };
        Some(Ts { values, nulls })
    }

    /// Row `i` of the `ts` column of `chunk` in nanoseconds, without reading the column.
    pub(crate) fn of_row(chunk: &Chunk, i: usize) -> Option<i64> {
        let a = chunk.column_by_name("ts")?;
        if a.is_null(i) {
            return None;
        }
        Some(match a.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                a.as_primitive::<TimestampNanosecondType>().value(i)
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => a
                .as_primitive::<TimestampMicrosecondType>()
                .value(i)
                .saturating_mul(1_000),
            DataType::Timestamp(TimeUnit::Millisecond, _) => a
                .as_primitive::<TimestampMillisecondType>()
                .value(i)
                .saturating_mul(1_000_000),
            DataType::Timestamp(TimeUnit::Second, _) => a
                .as_primitive::<TimestampSecondType>()
                .value(i)
                .saturating_mul(1_000_000_000),
            DataType::Int64 => a.as_primitive::<Int64Type>().value(i),
            _ => return None,
        })
    }

    /// Row `i`, `None` when null.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<i64> {
        match &self.nulls {
            Some(n) if n.is_null(i) => None,
            _ => Some(self.values[i]),
        }
    }

    /// Whether row `i` is null.
    #[inline]
    pub(crate) fn is_null(&self, i: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n.is_null(i))
    }
}

/// A string-valued column (`Utf8` or a dictionary of strings) read row by row.
pub(crate) enum StrCol<'a> {
    Plain(&'a arrow_array::StringArray),
    Dict(
        &'a arrow_array::DictionaryArray<Int32Type>,
        &'a arrow_array::StringArray,
    ),
}

impl StrCol<'_> {
    /// The value at `i` (`None` when null).
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        match self {
            StrCol::Plain(a) => (!a.is_null(i)).then(|| a.value(i)),
            StrCol::Dict(d, v) => {
                if d.is_null(i) {
                    return None;
                }
                let k = d.keys().value(i) as usize;
                (k < v.len() && !v.is_null(k)).then(|| v.value(k))
            }
        }
    }
}

/// A string column by name; `None` when absent or not a string column.
pub(crate) fn str_col<'a>(chunk: &'a Chunk, name: &str) -> Option<StrCol<'a>> {
    let a = chunk.column_by_name(name)?;
    match a.data_type() {
        DataType::Utf8 => Some(StrCol::Plain(a.as_string::<i32>())),
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = a.as_dictionary::<Int32Type>();
            Some(StrCol::Dict(d, d.values().as_string_opt::<i32>()?))
        }
        _ => None,
    }
}

/// Maps symbols to dense state slots, stable across chunks (slot order = first appearance).
#[derive(Debug, Default, Clone)]
pub(crate) struct Slots {
    index: HashMap<String, usize>,
    names: Vec<String>,
}

impl Slots {
    /// The slot of `name`, creating it when new.
    pub(crate) fn slot(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len();
        self.index.insert(name.to_string(), i);
        self.names.push(name.to_string());
        i
    }

    /// Slot names in slot order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Rebuilds slots from names in slot order.
    pub(crate) fn from_names(names: Vec<String>) -> Self {
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Slots { index, names }
    }

    /// The slot of every row: dictionary values are looked up once per chunk. Rows without a
    /// symbol (or a chunk without the column) share the slot of `""`.
    pub(crate) fn rows(&mut self, chunk: &Chunk) -> Vec<u32> {
        let n = chunk.num_rows();
        let Some(a) = chunk.column_by_name("symbol") else {
            let s = self.slot("") as u32;
            return vec![s; n];
        };
        if let DataType::Dictionary(k, _) = a.data_type()
            && **k == DataType::Int32
            && let Some(vals) = a
                .as_dictionary::<Int32Type>()
                .values()
                .as_string_opt::<i32>()
        {
            let d = a.as_dictionary::<Int32Type>();
            let map: Vec<u32> = (0..vals.len())
                .map(|i| self.slot(if vals.is_null(i) { "" } else { vals.value(i) }) as u32)
                .collect();
            let null = self.slot("") as u32;
            let keys = d.keys().values();
            return (0..n)
                .map(|i| {
                    if d.is_null(i) {
                        null
                    } else {
                        map.get(keys[i] as usize).copied().unwrap_or(null)
                    }
                })
                .collect();
        }
        match str_col(chunk, "symbol") {
            Some(col) => (0..n)
                .map(|i| self.slot(col.get(i).unwrap_or("")) as u32)
                .collect(),
            None => {
                let s = self.slot("") as u32;
                vec![s; n]
            }
        }
    }
}

/// Mixes one 64-bit value into a running hash (one multiply; the finaliser is applied once
/// per row by [`row_hashes`]).
#[inline]
fn mix_in(h: u64, v: u64) -> u64 {
    (h.rotate_left(26) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A 64-bit hash of every row over all columns but `_line`: values, not dictionary keys
/// (which differ between chunks), nulls distinct from every value. Used to find duplicate
/// rows (same symbol and timestamp, equal hash) and to fingerprint files (the sum of their
/// rows' hashes, which does not depend on how rows are split among workers).
pub(crate) fn row_hashes(chunk: &Chunk) -> Vec<u64> {
    let n = chunk.num_rows();
    let batch = chunk.batch();
    let schema = batch.schema();
    let mut h = vec![0x243F_6A88_85A3_08D3u64; n];
    const NULL: u64 = 0x5bd1_e995_5bd1_e995;
    for (f, a) in schema.fields().iter().zip(batch.columns()) {
        if f.name() == LINE_COLUMN {
            continue;
        }
        let salt = stable_hash(f.name().as_bytes());
        // The column name salts each value in the same pass.
        match a.data_type() {
            DataType::Float64 => {
                let v = a.as_primitive::<Float64Type>().values();
                for (x, y) in h.iter_mut().zip(v.iter()) {
                    *x = mix_in(mix_in(*x, salt), y.to_bits());
                }
            }
            DataType::Int64 | DataType::Timestamp(_, _) => {
                let v: &[i64] = match a.data_type() {
                    DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                        a.as_primitive::<TimestampNanosecondType>().values()
                    }
                    DataType::Timestamp(TimeUnit::Microsecond, _) => {
                        a.as_primitive::<TimestampMicrosecondType>().values()
                    }
                    DataType::Timestamp(TimeUnit::Millisecond, _) => {
                        a.as_primitive::<TimestampMillisecondType>().values()
                    }
                    DataType::Timestamp(TimeUnit::Second, _) => {
                        a.as_primitive::<TimestampSecondType>().values()
                    }
                    _ => a.as_primitive::<Int64Type>().values(),
                };
                for (x, y) in h.iter_mut().zip(v.iter()) {
                    *x = mix_in(mix_in(*x, salt), *y as u64);
                }
            }
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                let d = a.as_dictionary::<Int32Type>();
                let vals = d.values().as_string::<i32>();
                let per: Vec<u64> = (0..vals.len())
                    .map(|i| {
                        if vals.is_null(i) {
                            NULL
                        } else {
                            stable_hash(vals.value(i).as_bytes())
                        }
                    })
                    .collect();
                let keys = d.keys().values();
                for (x, k) in h.iter_mut().zip(keys.iter()) {
                    *x = mix_in(
                        mix_in(*x, salt),
                        per.get(*k as usize).copied().unwrap_or(NULL),
                    );
                }
            }
            DataType::Utf8 => {
                let s = a.as_string::<i32>();
                for (i, x) in h.iter_mut().enumerate() {
                    *x = mix_in(mix_in(*x, salt), stable_hash(s.value(i).as_bytes()));
                }
            }
            _ => {
                // Other types (rare pass-through columns): hash their debug form.
                for (i, x) in h.iter_mut().enumerate() {
                    let text = format!("{:?}", a.slice(i, 1));
                    *x = mix_in(mix_in(*x, salt), stable_hash(text.as_bytes()));
                }
            }
        }
        if let Some(nulls) = a.logical_nulls().filter(|n| n.null_count() > 0) {
            for (i, x) in h.iter_mut().enumerate() {
                if nulls.is_null(i) {
                    *x = mix_in(*x, NULL);
                }
            }
        }
    }
    for x in h.iter_mut() {
        *x = pipeline_core::mix64(*x);
    }
    h
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{RecordBatch, StringArray};

    use super::*;

    #[test]
    fn equal_rows_hash_equal_whatever_their_dictionary_keys() {
        let dict = |v: Vec<&str>| -> ArrayRef {
            Arc::new(
                v.into_iter()
                    .collect::<arrow_array::DictionaryArray<Int32Type>>(),
            )
        };
        let a = RecordBatch::try_from_iter([
            ("symbol", dict(vec!["A", "B", "A"])),
            (
                "price",
                Arc::new(Float64Array::from(vec![Some(1.0), Some(1.0), Some(1.0)])) as ArrayRef,
            ),
            (
                "conditions",
                Arc::new(StringArray::from(vec!["@", "@", "@"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let b = RecordBatch::try_from_iter([
            ("symbol", dict(vec!["B", "A"])),
            (
                "price",
                Arc::new(Float64Array::from(vec![Some(1.0), None])) as ArrayRef,
            ),
            (
                "conditions",
                Arc::new(StringArray::from(vec!["@", "@"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let ha = row_hashes(&Chunk::with_first_line(a, 0, 0, 1).unwrap());
        let hb = row_hashes(&Chunk::with_first_line(b, 0, 0, 9).unwrap());
        assert_eq!(ha[0], ha[2]);
        assert_ne!(ha[0], ha[1]);
        assert_eq!(ha[1], hb[0]);
        assert_ne!(ha[0], hb[1]);
    }
}
