//! 128-bit row hashes over chosen columns, for de-duplication.
//!
//! Each value updates two independent 64-bit lanes with `lane = rotl((lane ^ x) · K, r)`
//! (different `K`, `r` and a rotated `x` per lane). Every step is a bijection of the lane
//! for a fixed value, so two rows that differ in exactly one fixed-width (numeric, time)
//! column never share a hash; other differences (several columns, strings, dictionary
//! values, which enter as their own 64-bit digests) would need a collision in both lanes at
//! once, which for market data (no adversary) is far below any other error rate of the
//! pipeline. Duplicates
//! are therefore found from hashes alone, without keeping the rows themselves. One
//! multiply per lane per value: the de-duplication stage ran at 15–20 M rows/s over ten
//! columns (release, `clean_bench`, two loaded cores) against 13–17 M rows/s with a
//! splitmix64 finaliser per value and lane. Hashing only the rows that share a symbol and
//! timestamp with another row ([`RowHasher`]) then took the stage from 26–34 M to
//! 120 M rows/s (`clean_bench`, 5M rows, 20 symbols, one thread).

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use pipeline_core::{Error, Result};

#[inline]
fn mix(h: &mut u128, x: u64) {
    let a = ((*h as u64) ^ x)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29);
    let b = (((*h >> 64) as u64) ^ x.rotate_left(32) ^ 0x5851_f42d_4c95_7f2d)
        .wrapping_mul(0xc4ce_b9fe_1a85_ec53)
        .rotate_left(31);
    *h = (u128::from(b) << 64) | u128::from(a);
}

fn mix_bytes(h: &mut u128, bytes: &[u8]) {
    mix(h, bytes.len() as u64);
    for w in bytes.chunks(8) {
        let mut buf = [0u8; 8];
        buf[..w.len()].copy_from_slice(w);
        mix(h, u64::from_le_bytes(buf));
    }
}

const NULL: u64 = 0x6e75_6c6c_6e75_6c6c;

/// One column as [`RowHasher`] reads it.
enum Col<'a> {
    Utf8(&'a arrow_array::StringArray),
    Bool(&'a arrow_array::BooleanArray),
    /// Dictionary keys and the folded 64-bit digest of each dictionary value.
    Dict(&'a [i32], Vec<u64>),
    /// Fixed-width little-endian values: the buffer, the array's offset (in values) and
    /// the width in bytes.
    Prim(arrow_buffer::Buffer, usize, usize),
}

/// Hashes single rows of a batch over chosen columns, on demand.
///
/// De-duplication only compares rows that share a symbol and a timestamp, which on tick data
/// is a fraction of a percent of rows, so it hashes those rows only: hashing every row
/// column by column was over half of the stage's time in a profile of `clean_bench`.
pub(crate) struct RowHasher<'a> {
    cols: Vec<(Col<'a>, Option<&'a arrow_buffer::NullBuffer>)>,
}

impl<'a> RowHasher<'a> {
    /// A hasher over the columns `cols` (indices) of `batch`.
    ///
    /// Supported types: fixed-width primitives (numbers, timestamps, dates), booleans, UTF-8
    /// strings and dictionaries of strings; any other type is a schema error.
    pub(crate) fn new(batch: &'a RecordBatch, cols: &[usize]) -> Result<Self> {
        let schema = batch.schema();
        let mut out = Vec::with_capacity(cols.len());
        for &ci in cols {
            let a = batch.column(ci);
            let nulls = a.nulls().filter(|x| x.null_count() > 0);
            let col = match a.data_type() {
                DataType::Utf8 => Col::Utf8(a.as_string::<i32>()),
                DataType::Boolean => Col::Bool(a.as_boolean()),
                DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                    let d = a.as_dictionary::<Int32Type>();
                    let vals = d.values().as_string::<i32>();
                    let vh = (0..vals.len())
                        .map(|j| {
                            let mut x = 0u128;
                            if vals.is_null(j) {
                                mix(&mut x, NULL);
                            } else {
                                mix_bytes(&mut x, vals.value(j).as_bytes());
                            }
                            (x as u64) ^ ((x >> 64) as u64)
                        })
                        .collect();
                    Col::Dict(d.keys().values(), vh)
                }
                dt if dt.primitive_width().is_some_and(|w| w <= 8) => {
                    let w = dt.primitive_width().unwrap_or(8);
                    let data = a.to_data();
                    let Some(buf) = data.buffers().first().cloned() else {
                        return Err(Error::Internal(format!(
                            "column `{}` has no value buffer",
                            schema.field(ci).name()
                        )));
                    };
                    Col::Prim(buf, data.offset(), w)
                }
                other => {
                    return Err(Error::Schema(format!(
                        "de-duplication cannot compare column `{}` of type {other}",
                        schema.field(ci).name()
                    )));
                }
            };
            out.push((col, nulls));
        }
        Ok(RowHasher { cols: out })
    }

    /// The 128-bit hash of row `i`.
    pub(crate) fn hash(&self, i: usize) -> u128 {
        let mut h = 0u128;
        for (col, nulls) in &self.cols {
            if nulls.is_some_and(|x| x.is_null(i)) {
                mix(&mut h, NULL);
                continue;
            }
            match col {
                Col::Utf8(s) => mix_bytes(&mut h, s.value(i).as_bytes()),
                Col::Bool(b) => mix(&mut h, u64::from(b.value(i))),
                Col::Dict(keys, vh) => {
                    let x = usize::try_from(keys[i])
                        .ok()
                        .and_then(|k| vh.get(k))
                        .copied()
                        .unwrap_or(NULL);
                    mix(&mut h, x);
                }
                Col::Prim(buf, off, w) => {
                    let at = (off + i) * w;
                    let mut b = [0u8; 8];
                    b[..*w].copy_from_slice(&buf.as_slice()[at..at + w]);
                    mix(&mut h, u64::from_le_bytes(b));
                }
            }
        }
        h
    }
}

/// Hashes each row of `batch` over the columns `cols` (indices); see [`RowHasher::new`] for
/// the supported types.
#[cfg(test)]
pub(crate) fn row_hashes(batch: &RecordBatch, cols: &[usize]) -> Result<Vec<u128>> {
    let h = RowHasher::new(batch, cols)?;
    Ok((0..batch.num_rows()).map(|i| h.hash(i)).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::StringDictionaryBuilder;
    use arrow_array::{ArrayRef, Float64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn batch(sym: &[&str], dict_order: &[&str], px: &[Option<f64>], cond: &[&str]) -> RecordBatch {
        let mut d = StringDictionaryBuilder::<Int32Type>::new();
        // Seed the dictionary in `dict_order` so equal strings get different keys.
        for s in dict_order {
            d.append_value(s);
        }
        for s in sym {
            d.append_value(s);
        }
        let d = d.finish().slice(dict_order.len(), sym.len());
        let schema = Arc::new(Schema::new(vec![
            Field::new("symbol", d.data_type().clone(), true),
            Field::new("price", DataType::Float64, true),
            Field::new("conditions", DataType::Utf8, true),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(d),
            Arc::new(Float64Array::from(px.to_vec())),
            Arc::new(StringArray::from(cond.to_vec())),
        ];
        RecordBatch::try_new(schema, cols).unwrap()
    }

    #[test]
    fn equal_rows_hash_equal_whatever_the_dictionary_keys() {
        let a = batch(
            &["A", "B"],
            &["A", "B"],
            &[Some(1.0), Some(2.0)],
            &["@", "F"],
        );
        let b = batch(
            &["A", "B"],
            &["B", "A"],
            &[Some(1.0), Some(2.0)],
            &["@", "F"],
        );
        let cols = [0, 1, 2];
        assert_eq!(
            row_hashes(&a, &cols).unwrap(),
            row_hashes(&b, &cols).unwrap()
        );
    }

    #[test]
    fn any_differing_value_or_null_changes_the_hash() {
        let base = batch(&["A"], &[], &[Some(1.0)], &["@"]);
        let h = row_hashes(&base, &[0, 1, 2]).unwrap()[0];
        for other in [
            batch(&["B"], &[], &[Some(1.0)], &["@"]),
            batch(&["A"], &[], &[Some(1.5)], &["@"]),
            batch(&["A"], &[], &[None], &["@"]),
            batch(&["A"], &[], &[Some(1.0)], &["@F"]),
        ] {
            assert_ne!(row_hashes(&other, &[0, 1, 2]).unwrap()[0], h);
        }
        // Only the key columns count.
        let other = batch(&["A"], &[], &[Some(1.0)], &["F"]);
        assert_eq!(
            row_hashes(&other, &[0, 1]).unwrap(),
            row_hashes(&base, &[0, 1]).unwrap()
        );
    }
}
