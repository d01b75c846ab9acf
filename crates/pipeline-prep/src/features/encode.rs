//! Categorical encoding (dictionary, one-hot) and lossless type optimisation.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, RecordBatch,
};
use arrow_schema::{DataType, Field, Schema};
use pipeline_core::{Error, Result};

/// Dictionary-encodes a Utf8 array (`Dictionary(Int32, Utf8)`); nulls stay null.
pub fn dictionary_encode(a: &dyn Array) -> Result<ArrayRef> {
    let s = a.as_string_opt::<i32>().ok_or_else(|| {
        Error::Schema(format!(
            "dictionary encoding needs Utf8, got {}",
            a.data_type()
        ))
    })?;
    let mut b = StringDictionaryBuilder::<Int32Type>::new();
    for v in s.iter() {
        match v {
            Some(v) => {
                b.append(v)?;
            }
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

/// The distinct non-null strings of a Utf8 or `Dictionary(_, Utf8)` array, sorted.
fn categories(a: &dyn Array) -> Result<Vec<Option<String>>> {
    let strings: Vec<Option<String>> = match a.data_type() {
        DataType::Utf8 => a
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(String::from))
            .collect(),
        DataType::Dictionary(_, v) if **v == DataType::Utf8 => {
            let d = a.as_any_dictionary();
            let values = d.values().as_string::<i32>();
            if values.is_empty() {
                vec![None; a.len()]
            } else {
                let keys = d.normalized_keys();
                (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| values.value(keys[i]).to_string()))
                    .collect()
            }
        }
        other => {
            return Err(Error::Schema(format!(
                "one-hot encoding needs a string column, got {other}"
            )));
        }
    };
    Ok(strings)
}

/// One-hot encodes a string (or dictionary) column `name` into Float64 columns
/// `<name>_<value>` (1 or 0; all 0 for null), in sorted value order. Fails when the column
/// has more than `max_categories` distinct values (one-hot is for low cardinality).
pub fn one_hot(name: &str, a: &dyn Array, max_categories: usize) -> Result<Vec<(Field, ArrayRef)>> {
    let rows = categories(a)?;
    let distinct: BTreeSet<&str> = rows.iter().flatten().map(String::as_str).collect();
    if distinct.len() > max_categories {
        return Err(Error::Schema(format!(
            "column `{name}` has {} distinct values, more than the one-hot limit {max_categories}",
            distinct.len()
        )));
    }
    Ok(distinct
        .iter()
        .map(|cat| {
            let col: Float64Array = rows
                .iter()
                .map(|r| Some(if r.as_deref() == Some(*cat) { 1.0 } else { 0.0 }))
                .collect();
            (
                Field::new(format!("{name}_{cat}"), DataType::Float64, false),
                Arc::new(col) as ArrayRef,
            )
        })
        .collect())
}

/// What [`optimize_types`] changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeReport {
    /// `(column, from, to)` for each changed column.
    pub changed: Vec<(String, DataType, DataType)>,
    /// Bytes of array data before (buffers as sliced, without spare capacity).
    pub bytes_before: usize,
    /// Bytes of array data after.
    pub bytes_after: usize,
}

impl TypeReport {
    /// Bytes saved (0 if none).
    pub fn saved(&self) -> usize {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// Downcasts columns losslessly where every value allows it: Int64 to Int8/Int16/Int32 by
/// range, Float64 to Float32 when every value converts back exactly (NaN counts as exact),
/// and Utf8 to `Dictionary(Int32, Utf8)` when that is smaller. Nulls are kept; the `_line`
/// column and other types are left alone. Returns the new batch and what changed.
pub fn optimize_types(batch: &RecordBatch) -> Result<(RecordBatch, TypeReport)> {
    let mut report = TypeReport {
        bytes_before: batch_bytes(batch),
        ..TypeReport::default()
    };
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut cols = Vec::new();
    for (f, a) in schema.fields().iter().zip(batch.columns()) {
        let new = if f.name() == pipeline_core::LINE_COLUMN {
            None
        } else {
            downcast(a)?
        };
        match new {
            Some(n) => {
                report.changed.push((
                    f.name().clone(),
                    a.data_type().clone(),
                    n.data_type().clone(),
                ));
                fields.push(Field::new(f.name(), n.data_type().clone(), f.is_nullable()));
                cols.push(n);
            }
            None => {
                fields.push(f.as_ref().clone());
                cols.push(a.clone());
            }
        }
    }
    let out = RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        cols,
    )?;
    report.bytes_after = batch_bytes(&out);
    Ok((out, report))
}

/// Bytes the array's data needs (without spare capacity).
fn data_bytes(a: &ArrayRef) -> usize {
    a.to_data()
        .get_slice_memory_size()
        .unwrap_or_else(|_| a.get_array_memory_size())
}

fn batch_bytes(b: &RecordBatch) -> usize {
    b.columns().iter().map(data_bytes).sum()
}

fn downcast(a: &ArrayRef) -> Result<Option<ArrayRef>> {
    let nulls = a.nulls().cloned();
    Ok(match a.data_type() {
        DataType::Int64 => {
            let v = a.as_primitive::<Int64Type>();
            let valid = |i: usize| !v.is_null(i);
            let (mut lo, mut hi) = (0i64, 0i64);
            for i in (0..v.len()).filter(|&i| valid(i)) {
                lo = lo.min(v.value(i));
                hi = hi.max(v.value(i));
            }
            let vals = v.values();
            if lo >= i64::from(i8::MIN) && hi <= i64::from(i8::MAX) {
                let x: Vec<i8> = vals.iter().map(|&x| x as i8).collect();
                Some(Arc::new(Int8Array::new(x.into(), nulls)) as ArrayRef)
            } else if lo >= i64::from(i16::MIN) && hi <= i64::from(i16::MAX) {
                let x: Vec<i16> = vals.iter().map(|&x| x as i16).collect();
                Some(Arc::new(Int16Array::new(x.into(), nulls)) as ArrayRef)
            } else if lo >= i64::from(i32::MIN) && hi <= i64::from(i32::MAX) {
                let x: Vec<i32> = vals.iter().map(|&x| x as i32).collect();
                Some(Arc::new(Int32Array::new(x.into(), nulls)) as ArrayRef)
            } else {
                None
            }
        }
        DataType::Float64 => {
            let v = a.as_primitive::<Float64Type>();
            let exact = (0..v.len()).filter(|&i| !v.is_null(i)).all(|i| {
                let x = v.value(i);
                x.is_nan() || f64::from(x as f32) == x
            });
            exact.then(|| {
                let x: Vec<f32> = v.values().iter().map(|&x| x as f32).collect();
                Arc::new(Float32Array::new(x.into(), nulls)) as ArrayRef
            })
        }
        DataType::Utf8 => {
            let d = dictionary_encode(a.as_ref())?;
            (data_bytes(&d) < data_bytes(a)).then_some(d)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};

    #[test]
    fn downcasts_only_where_lossless() {
        let n = 1000;
        let batch = RecordBatch::try_from_iter(vec![
            (
                "small",
                Arc::new(Int64Array::from_iter((0..n).map(|i| Some(i % 100)))) as ArrayRef,
            ),
            (
                "mid",
                Arc::new(Int64Array::from_iter((0..n).map(|i| Some(i * 40)))) as ArrayRef,
            ),
            (
                "big",
                Arc::new(Int64Array::from(vec![i64::MAX; n as usize])) as ArrayRef,
            ),
            (
                "half",
                Arc::new(Float64Array::from_iter(
                    (0..n).map(|i| Some(i as f64 * 0.5)),
                )),
            ),
            (
                "tenth",
                Arc::new(Float64Array::from_iter(
                    (0..n).map(|i| Some(i as f64 * 0.1)),
                )),
            ),
            (
                "sym",
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| Some(["AAPL", "MSFT"][i as usize % 2])),
                )),
            ),
        ])
        .unwrap();
        let (out, report) = optimize_types(&batch).unwrap();
        let types: Vec<DataType> = out
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(types[0], DataType::Int8);
        assert_eq!(types[1], DataType::Int32);
        assert_eq!(types[2], DataType::Int64);
        assert_eq!(types[3], DataType::Float32);
        assert_eq!(types[4], DataType::Float64);
        assert!(matches!(types[5], DataType::Dictionary(_, _)));
        assert!(report.saved() > 0);
        assert_eq!(report.changed.len(), 4);
        let mid = out.column(1).as_primitive::<Int32Type>();
        assert_eq!(mid.value(999), 39_960);
    }

    #[test]
    fn one_hot_for_low_cardinality_only() {
        let a = StringArray::from(vec![Some("b"), None, Some("a"), Some("b")]);
        let cols = one_hot("ex", &a, 4).unwrap();
        let names: Vec<&str> = cols.iter().map(|c| c.0.name().as_str()).collect();
        assert_eq!(names, vec!["ex_a", "ex_b"]);
        let b = cols[1].1.as_primitive::<Float64Type>();
        assert_eq!(b.values().to_vec(), vec![1.0, 0.0, 0.0, 1.0]);
        assert!(one_hot("ex", &a, 1).is_err());
        let d = dictionary_encode(&a).unwrap();
        assert_eq!(d.null_count(), 1);
    }
}
