//! Fixtures: tick chunks from `(symbol, ts, price)` rows, and readers of output columns.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, TimestampNanosecondType, UInt64Type};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Float64Array, RecordBatch, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema};
use pipeline_core::{Chunk, dict_type, ts_type};

pub fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("symbol", dict_type(), true),
        Field::new("ts", ts_type(), true),
        Field::new("price", DataType::Float64, true),
    ]))
}

/// Rows `(symbol, ts, price)` as chunks of `size` rows, lines starting at 2.
pub fn chunks(rows: &[(&str, i64, f64)], size: usize) -> Vec<Chunk> {
    rows.chunks(size.max(1))
        .enumerate()
        .map(|(seq, part)| {
            let sym: DictionaryArray<Int32Type> = part.iter().map(|r| Some(r.0)).collect();
            let ts = TimestampNanosecondArray::from(part.iter().map(|r| r.1).collect::<Vec<_>>())
                .with_timezone("UTC");
            let px = Float64Array::from(part.iter().map(|r| r.2).collect::<Vec<_>>());
            let b = RecordBatch::try_new(
                schema(),
                vec![Arc::new(sym) as ArrayRef, Arc::new(ts), Arc::new(px)],
            )
            .unwrap();
            Chunk::with_first_line(b, 0, seq as u64, 2 + (seq * size.max(1)) as u64).unwrap()
        })
        .collect()
}

/// A window output row: key, start, end, rows, aggregate values, line.
pub type WinRow = (String, i64, i64, u64, Vec<Option<f64>>, u64);

pub fn window_rows(out: &[Chunk], aggs: &[&str]) -> Vec<WinRow> {
    let mut v = Vec::new();
    for c in out {
        let k = c
            .column_by_name("symbol")
            .unwrap()
            .as_dictionary::<Int32Type>();
        let vals = k.values().as_string::<i32>();
        let s = c
            .column_by_name("window_start")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>();
        let e = c
            .column_by_name("window_end")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>();
        let n = c
            .column_by_name("rows")
            .unwrap()
            .as_primitive::<UInt64Type>();
        for i in 0..c.num_rows() {
            let key = if k.is_null(i) {
                String::new()
            } else {
                vals.value(k.keys().value(i) as usize).to_string()
            };
            let a = aggs
                .iter()
                .map(|name| {
                    let col = c
                        .column_by_name(name)
                        .unwrap()
                        .as_primitive::<Float64Type>();
                    (!col.is_null(i)).then(|| col.value(i))
                })
                .collect();
            v.push((key, s.value(i), e.value(i), n.value(i), a, c.line(i)));
        }
    }
    v
}

pub fn per_key(rows: Vec<WinRow>) -> BTreeMap<String, Vec<WinRow>> {
    let mut m: BTreeMap<String, Vec<WinRow>> = BTreeMap::new();
    for r in rows {
        m.entry(r.0.clone()).or_default().push(r);
    }
    m
}

/// `(symbol, ts, line)` of every row of `out`.
pub fn tick_rows(out: &[Chunk]) -> Vec<(String, i64, u64)> {
    let mut v = Vec::new();
    for c in out {
        let k = c
            .column_by_name("symbol")
            .unwrap()
            .as_dictionary::<Int32Type>();
        let vals = k.values().as_string::<i32>();
        let t = c
            .column_by_name("ts")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>();
        for i in 0..c.num_rows() {
            v.push((
                vals.value(k.keys().value(i) as usize).to_string(),
                t.value(i),
                c.line(i),
            ));
        }
    }
    v
}
