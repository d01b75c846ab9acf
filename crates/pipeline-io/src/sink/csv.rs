//! CSV encoding for the CSV sink: a header, RFC 4180 quoting, timestamps as RFC 3339 with
//! nanoseconds, nulls as empty fields.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, make_array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Schema};
use pipeline_core::{Error, Result};

/// Timestamps with a zone are written in UTC with a `Z`, the form gen-data and most vendors
/// use; zone-less timestamps without one.
const TS_TZ_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.9fZ";
const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.9f";

/// Writes the header line.
pub fn write_header(out: &mut impl Write, schema: &Schema) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_field(&mut line, f.name());
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// Writes the rows of `batch`; I/O errors name `path`.
pub fn write_rows(out: &mut impl Write, batch: &RecordBatch, path: &Path) -> Result<()> {
    let zoned = FormatOptions::new()
        .with_null("")
        .with_timestamp_format(Some(TS_TZ_FORMAT));
    let naive = FormatOptions::new()
        .with_null("")
        .with_timestamp_format(Some(TS_FORMAT));
    // Zoned timestamps hold UTC instants; printing them without the zone gives UTC wall time
    // (and needs no time-zone database), to which the format appends `Z`.
    let columns: Vec<(ArrayRef, bool)> = batch
        .columns()
        .iter()
        .map(without_zone)
        .collect::<Result<_>>()?;
    let formatters = columns
        .iter()
        .map(|(c, was_zoned)| {
            ArrayFormatter::try_new(c.as_ref(), if *was_zoned { &zoned } else { &naive })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut line = String::new();
    let mut cell = String::new();
    for row in 0..batch.num_rows() {
        line.clear();
        for (i, f) in formatters.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            cell.clear();
            std::fmt::Write::write_fmt(&mut cell, format_args!("{}", f.value(row)))
                .map_err(|_| Error::Internal("formatting a CSV cell failed".into()))?;
            push_field(&mut line, &cell);
        }
        line.push('\n');
        out.write_all(line.as_bytes())
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Appends one field, quoted when it holds a comma, quote or line break.
fn push_field(line: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&text.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(text);
    }
}

/// Drops the zone of a timestamp column (same stored values); true when it had one.
fn without_zone(col: &ArrayRef) -> Result<(ArrayRef, bool)> {
    match col.data_type() {
        DataType::Timestamp(unit, Some(_)) => {
            let data = col
                .to_data()
                .into_builder()
                .data_type(DataType::Timestamp(*unit, None))
                .build()?;
            Ok((make_array(data), true))
        }
        _ => Ok((Arc::clone(col), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Float64Array, StringArray, TimestampNanosecondArray};
    use arrow_schema::Field;

    #[test]
    fn quotes_and_formats_timestamps() {
        let ts = TimestampNanosecondArray::from(vec![Some(1_609_770_600_000_123_456), None])
            .with_timezone("America/New_York");
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", ts.data_type().clone(), true),
            Field::new("c", DataType::Utf8, true),
            Field::new("p", DataType::Float64, true),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(ts),
                Arc::new(StringArray::from(vec![Some("a,\"b\""), None])),
                Arc::new(Float64Array::from(vec![Some(132.45), Some(1.0)])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        write_header(&mut out, &schema).unwrap();
        write_rows(&mut out, &b, Path::new("t.csv")).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ts,c,p\n2021-01-04T14:30:00.000123456Z,\"a,\"\"b\"\"\",132.45\n,,1.0\n"
        );
    }
}
