//! Renders one row of a chunk as a line of CSV text, for the quarantine file's `raw` column
//! of rows removed after decoding (whose original text is gone).

use std::fmt::Write;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};

use crate::chunk::{Chunk, LINE_COLUMN};

/// Most bytes a rendered row keeps (a row of text-heavy vendor data could be long).
const MAX_ROW_TEXT: usize = 1024;

impl Chunk {
    /// Row `row` as a line of CSV text (columns in schema order, the `_line` column left
    /// out; timestamps as RFC 3339 UTC; nulls empty; at most 1 KiB). This is a rendering of
    /// the decoded values, not the input's original bytes.
    pub fn row_text(&self, row: usize) -> String {
        let mut out = String::new();
        let schema = self.schema();
        let mut first = true;
        for (f, col) in schema.fields().iter().zip(self.batch().columns()) {
            if f.name() == LINE_COLUMN {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let v = value_text(col, row);
            if v.contains([',', '"', '\n', '\r']) {
                out.push('"');
                out.push_str(&v.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(&v);
            }
            if out.len() > MAX_ROW_TEXT {
                let mut end = MAX_ROW_TEXT;
                while !out.is_char_boundary(end) {
                    end -= 1;
                }
                out.truncate(end);
                out.push('…');
                break;
            }
        }
        out
    }
}

/// One value as text ("" for nulls and types without a rendering).
fn value_text(a: &ArrayRef, i: usize) -> String {
    if i >= a.len() || a.is_null(i) {
        return String::new();
    }
    match a.data_type() {
        DataType::Float64 => a
            .as_primitive::<arrow_array::types::Float64Type>()
            .value(i)
            .to_string(),
        DataType::Float32 => a
            .as_primitive::<arrow_array::types::Float32Type>()
            .value(i)
            .to_string(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).to_string(),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).to_string(),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i).to_string(),
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(i).to_string(),
        DataType::Boolean => a.as_boolean().value(i).to_string(),
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let d = a.as_dictionary::<Int32Type>();
            let key = d.keys().value(i);
            usize::try_from(key)
                .ok()
                .filter(|&k| k < d.values().len())
                .map(|k| value_text(d.values(), k))
                .unwrap_or_default()
        }
        DataType::Timestamp(unit, _) => {
            let (v, per) = match unit {
                TimeUnit::Second => (
                    a.as_primitive::<TimestampSecondType>().value(i),
                    1_000_000_000,
                ),
                TimeUnit::Millisecond => (
                    a.as_primitive::<TimestampMillisecondType>().value(i),
                    1_000_000,
                ),
                TimeUnit::Microsecond => {
                    (a.as_primitive::<TimestampMicrosecondType>().value(i), 1_000)
                }
                TimeUnit::Nanosecond => (a.as_primitive::<TimestampNanosecondType>().value(i), 1),
            };
            rfc3339(i128::from(v) * per)
        }
        _ => String::new(),
    }
}

/// `ns` nanoseconds since 1970 as `YYYY-MM-DDTHH:MM:SS.fffffffffZ`.
fn rfc3339(ns: i128) -> String {
    const DAY: i128 = 86_400_000_000_000;
    let days = ns.div_euclid(DAY) as i64;
    let rem = ns.rem_euclid(DAY) as i64;
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let secs = rem / 1_000_000_000;
    let mut s = String::with_capacity(30);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000_000
    );
    s
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        DictionaryArray, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    };
    use arrow_schema::{Field, Schema};

    use super::*;

    #[test]
    fn rows_render_as_csv_text() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", crate::ts_type(), true),
            Field::new("symbol", crate::dict_type(), true),
            Field::new("price", DataType::Float64, true),
            Field::new("note", DataType::Utf8, true),
        ]));
        let sym: DictionaryArray<Int32Type> = vec!["AAPL", "MSFT"].into_iter().collect();
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    TimestampNanosecondArray::from(vec![1_609_770_600_000_000_001, -1])
                        .with_timezone("UTC"),
                ),
                Arc::new(sym),
                Arc::new(Float64Array::from(vec![Some(1e9), None])),
                Arc::new(StringArray::from(vec!["a,b", "q\"x"])),
            ],
        )
        .unwrap();
        let c = Chunk::with_first_line(b, 0, 0, 2).unwrap();
        assert_eq!(
            c.row_text(0),
            "2021-01-04T14:30:00.000000001Z,AAPL,1000000000,\"a,b\""
        );
        assert_eq!(
            c.row_text(1),
            "1969-12-31T23:59:59.999999999Z,MSFT,,\"q\"\"x\""
        );
    }
}
