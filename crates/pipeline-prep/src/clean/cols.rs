//! Column access by canonical name, tolerant of absent columns, and the per-chunk mapping of
//! symbols to state slots.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use pipeline_core::{Chunk, Error, LINE_COLUMN, Result};

/// A nullable `Float64` column of `chunk`, or `None` when it is absent.
///
/// A column of another numeric type (a pass-through `Int64`) is cast by value; a non-numeric
/// column of that name is a schema error rather than a silent no-op.
pub(crate) fn f64_col(chunk: &Chunk, name: &str) -> Result<Option<Float64Array>> {
    let Some(a) = chunk.column_by_name(name) else {
        return Ok(None);
    };
    to_f64_array(a, name).map(Some)
}

pub(crate) fn to_f64_array(a: &ArrayRef, name: &str) -> Result<Float64Array> {
    use arrow_array::types::{Float32Type, Int64Type, UInt64Type};
    Ok(match a.data_type() {
        DataType::Float64 => a.as_primitive::<arrow_array::types::Float64Type>().clone(),
        DataType::Float32 => a.as_primitive::<Float32Type>().unary(f64::from),
        DataType::Int64 => a.as_primitive::<Int64Type>().unary(|v| v as f64),
        DataType::Int32 => a.as_primitive::<Int32Type>().unary(f64::from),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().unary(|v| v as f64),
        other => {
            return Err(Error::Schema(format!(
                "column `{name}` must be numeric for cleaning, found {other}"
            )));
        }
    })
}

/// The `ts` column as nanoseconds since the epoch (UTC), or `None` when absent.
pub(crate) fn ts_col(chunk: &Chunk) -> Result<Option<Vec<Option<i64>>>> {
    let Some(a) = chunk.column_by_name("ts") else {
        return Ok(None);
    };
    use arrow_array::types::{
        Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampSecondType,
    };
    fn scaled<T>(a: &ArrayRef, mult: i64) -> Vec<Option<i64>>
    where
        T: arrow_array::ArrowPrimitiveType<Native = i64>,
    {
        a.as_primitive::<T>()
            .iter()
            .map(|v| v.map(|v| v.saturating_mul(mult)))
            .collect()
    }
    Ok(Some(match a.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            a.as_primitive::<TimestampNanosecondType>().iter().collect()
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            scaled::<TimestampMicrosecondType>(a, 1_000)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            scaled::<TimestampMillisecondType>(a, 1_000_000)
        }
        DataType::Timestamp(TimeUnit::Second, _) => scaled::<TimestampSecondType>(a, 1_000_000_000),
        DataType::Int64 => scaled::<Int64Type>(a, 1),
        other => {
            return Err(Error::Schema(format!(
                "column `ts` must be a timestamp, found {other}"
            )));
        }
    }))
}

/// The `ts` column as nanoseconds since the epoch with its validity, read without a
/// per-row `Option` (a nanosecond column is borrowed as is).
pub(crate) struct TsRaw {
    values: arrow_buffer::ScalarBuffer<i64>,
    nulls: Option<arrow_buffer::NullBuffer>,
}

impl TsRaw {
    /// Row `i`'s timestamp, `None` when null.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<i64> {
        match &self.nulls {
            Some(n) if n.is_null(i) => None,
            _ => Some(self.values[i]),
        }
    }
}

/// [`ts_col`] as a [`TsRaw`]: `None` when the chunk has no `ts`.
pub(crate) fn ts_raw(chunk: &Chunk) -> Result<Option<TsRaw>> {
    if let Some(a) = chunk.column_by_name("ts")
        && let DataType::Timestamp(TimeUnit::Nanosecond, _) = a.data_type()
    {
        let p = a.as_primitive::<TimestampNanosecondType>();
        return Ok(Some(TsRaw {
            values: p.values().clone(),
            nulls: p.nulls().filter(|n| n.null_count() > 0).cloned(),
        }));
    }
    Ok(ts_col(chunk)?.map(|v| {
        let nulls = v.iter().any(Option::is_none).then(|| {
            arrow_buffer::NullBuffer::from(v.iter().map(Option::is_some).collect::<Vec<bool>>())
        });
        TsRaw {
            values: v.iter().map(|t| t.unwrap_or(0)).collect(),
            nulls,
        }
    }))
}

/// A string-valued column (`Utf8`, `LargeUtf8` or a dictionary of strings) read row by row.
pub(crate) enum StrCol<'a> {
    /// Plain strings.
    Plain(&'a arrow_array::StringArray),
    /// Dictionary keys and values.
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
                (!v.is_null(k)).then(|| v.value(k))
            }
        }
    }
}

/// A string column by name, `None` when absent.
pub(crate) fn str_col<'a>(batch: &'a RecordBatch, name: &str) -> Result<Option<StrCol<'a>>> {
    let Some(a) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let bad = || {
        Error::Schema(format!(
            "column `{name}` must hold strings, found {}",
            a.data_type()
        ))
    };
    match a.data_type() {
        DataType::Utf8 => Ok(Some(StrCol::Plain(a.as_string::<i32>()))),
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = a.as_dictionary::<Int32Type>();
            let vals = d.values().as_string_opt::<i32>().ok_or_else(bad)?;
            Ok(Some(StrCol::Dict(d, vals)))
        }
        _ => Err(bad()),
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

    /// Slot names in slot order (what checkpoints store).
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

    /// The slot of every row of `chunk`: dictionary values are looked up once per chunk.
    /// Rows without a symbol (or a chunk without the column) share the slot of `""`.
    pub(crate) fn rows(&mut self, chunk: &Chunk) -> Result<Vec<usize>> {
        let n = chunk.num_rows();
        let batch = chunk.batch();
        let Some(a) = batch.column_by_name("symbol") else {
            let s = self.slot("");
            return Ok(vec![s; n]);
        };
        if let DataType::Dictionary(k, _) = a.data_type()
            && **k == DataType::Int32
        {
            let d = a.as_dictionary::<Int32Type>();
            let vals = d.values().as_string_opt::<i32>().ok_or_else(|| {
                Error::Schema("column `symbol` must be a dictionary of strings".into())
            })?;
            let map: Vec<usize> = (0..vals.len())
                .map(|i| self.slot(if vals.is_null(i) { "" } else { vals.value(i) }))
                .collect();
            let null = self.slot("");
            return Ok((0..n)
                .map(|i| {
                    if d.is_null(i) {
                        null
                    } else {
                        map.get(d.keys().value(i) as usize).copied().unwrap_or(null)
                    }
                })
                .collect());
        }
        let col = str_col(batch, "symbol")?
            .ok_or_else(|| Error::Schema("column `symbol` vanished".into()))?;
        Ok((0..n)
            .map(|i| self.slot(col.get(i).unwrap_or("")))
            .collect())
    }
}

/// Replaces (or appends) a `Float64` column named `name`.
pub(crate) fn with_f64(chunk: &Chunk, name: &str, values: Float64Array) -> Result<Chunk> {
    chunk.with_columns(vec![(
        arrow_schema::Field::new(name, DataType::Float64, true),
        Arc::new(values) as ArrayRef,
    )])
}

/// Indices of all columns except the provenance column.
pub(crate) fn data_columns(batch: &RecordBatch) -> Vec<usize> {
    let schema = batch.schema();
    (0..batch.num_columns())
        .filter(|&i| schema.field(i).name() != LINE_COLUMN)
        .collect()
}
