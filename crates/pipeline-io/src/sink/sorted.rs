//! [`SortCheck`]: verifies, while a file is written, that its rows really are in the order
//! its `sorting_columns` metadata will claim.

use std::cmp::Ordering;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use pipeline_core::Result;

/// The comparable form of one key column.
enum Key {
    Int(Int64Array),
    Float(Float64Array),
    Str(StringArray),
}

impl Key {
    fn of(col: &ArrayRef) -> Result<Option<Key>> {
        let t = col.data_type();
        let temporal = matches!(
            t,
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
        );
        Ok(Some(if t.is_integer() || temporal {
            Key::Int(
                arrow_cast::cast(col, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            )
        } else if t.is_floating() {
            Key::Float(
                arrow_cast::cast(col, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            )
        } else if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            || matches!(t, DataType::Dictionary(_, v) if **v == DataType::Utf8)
        {
            Key::Str(
                arrow_cast::cast(col, &DataType::Utf8)?
                    .as_string::<i32>()
                    .clone(),
            )
        } else {
            return Ok(None);
        }))
    }

    fn array(&self) -> &dyn Array {
        match self {
            Key::Int(a) => a,
            Key::Float(a) => a,
            Key::Str(a) => a,
        }
    }

    /// Compares row `i` of `self` with row `j` of `other` (same kind), nulls last.
    fn cmp(&self, i: usize, other: &Key, j: usize) -> Ordering {
        match (self.array().is_valid(i), other.array().is_valid(j)) {
            (false, false) => return Ordering::Equal,
            (false, true) => return Ordering::Greater,
            (true, false) => return Ordering::Less,
            (true, true) => {}
        }
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => a.value(i).cmp(&b.value(j)),
            (Key::Float(a), Key::Float(b)) => a.value(i).total_cmp(&b.value(j)),
            (Key::Str(a), Key::Str(b)) => a.value(i).cmp(b.value(j)),
            _ => Ordering::Equal,
        }
    }

    /// A compact copy of row `i` (a view would pin the whole batch's buffers).
    fn row(&self, i: usize) -> Key {
        match self {
            Key::Int(a) => Key::Int(a.slice(i, 1).iter().collect()),
            Key::Float(a) => Key::Float(a.slice(i, 1).iter().collect()),
            Key::Str(a) => Key::Str(a.slice(i, 1).iter().collect()),
        }
    }
}

/// Tracks the last row written under a lexicographic sort key.
pub struct SortCheck {
    columns: Vec<usize>,
    checked: Vec<usize>,
    last: Option<Vec<Key>>,
}

impl SortCheck {
    /// A check on the named columns of batches with `schema`; `None` when a column is missing
    /// or of a type that cannot be compared (then no order is claimed).
    ///
    /// Columns named in `constant` hold one value per file by construction (the partition
    /// columns), so they are claimed but not compared: a string comparison per row was the
    /// largest cost of the check.
    pub fn new(
        schema: &arrow_schema::Schema,
        names: &[String],
        constant: &[&str],
    ) -> Option<SortCheck> {
        if names.is_empty() {
            return None;
        }
        let columns = names
            .iter()
            .map(|n| schema.column_with_name(n).map(|(i, _)| i))
            .collect::<Option<Vec<_>>>()?;
        let checked = names
            .iter()
            .zip(&columns)
            .filter(|(n, _)| !constant.contains(&n.as_str()))
            .map(|(_, &i)| i)
            .collect();
        Some(SortCheck {
            columns,
            checked,
            last: None,
        })
    }

    /// The checked column indices.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// True when `batch` continues the order (within itself and after the last row so far).
    /// When it does, its last row becomes the new reference.
    pub fn accept(&mut self, batch: &RecordBatch) -> Result<bool> {
        if batch.num_rows() == 0 {
            return Ok(true);
        }
        let mut keys = Vec::with_capacity(self.checked.len());
        for &c in &self.checked {
            match Key::of(batch.column(c))? {
                Some(k) => keys.push(k),
                None => return Ok(false),
            }
        }
        let lex = |a: &[Key], i: usize, b: &[Key], j: usize| -> Ordering {
            a.iter()
                .zip(b)
                .map(|(x, y)| x.cmp(i, y, j))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        };
        if let Some(last) = &self.last
            && lex(last, 0, &keys, 0) == Ordering::Greater
        {
            return Ok(false);
        }
        for r in 1..batch.num_rows() {
            if lex(&keys, r - 1, &keys, r) == Ordering::Greater {
                return Ok(false);
            }
        }
        let n = batch.num_rows();
        let last = keys.iter().map(|k| k.row(n - 1)).collect();
        self.last = Some(last);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    fn b(sym: Vec<&str>, ts: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("ts", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(sym)),
                Arc::new(Int64Array::from(ts)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn accepts_sorted_runs_and_rejects_breaks() {
        let names = vec!["symbol".to_string(), "ts".to_string()];
        let mut c = SortCheck::new(&b(vec![], vec![]).schema(), &names, &[]).unwrap();
        assert!(c.accept(&b(vec!["A", "A", "B"], vec![1, 2, 0])).unwrap());
        assert!(c.accept(&b(vec!["B"], vec![0])).unwrap());
        assert!(!c.accept(&b(vec!["A"], vec![5])).unwrap());
        assert!(!c.accept(&b(vec!["B", "B"], vec![3, 2])).unwrap());
        assert!(SortCheck::new(&b(vec![], vec![]).schema(), &["nope".to_string()], &[]).is_none());
        // A constant (partition) column is claimed but not compared.
        let mut c = SortCheck::new(&b(vec![], vec![]).schema(), &names, &["symbol"]).unwrap();
        assert_eq!(c.columns(), &[0, 1]);
        assert!(c.accept(&b(vec!["B", "A"], vec![1, 2])).unwrap());
        assert!(!c.accept(&b(vec!["A"], vec![1])).unwrap());
    }
}
