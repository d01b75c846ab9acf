//! Splitting a batch by Hive partition key (`symbol=…/date=…`) and escaping key values for
//! the file system the way Hive does.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Datelike};
use pipeline_core::{Error, Result};

use super::options::PartitionKey;

/// The value Hive (and pyarrow, DuckDB, Spark) use for a null or empty partition value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Escapes a partition value for a path segment as Hive's `FileUtils.escapePathName` does:
/// control characters and `"#%'*/:=?\\{[]^` become `%XX` (upper-case hex); everything else,
/// spaces and non-ASCII letters included, is kept. Null or empty values become
/// [`HIVE_DEFAULT_PARTITION`].
///
/// ```
/// use pipeline_io::escape_partition_value;
/// assert_eq!(escape_partition_value(Some("EUR/USD")), "EUR%2FUSD");
/// assert_eq!(escape_partition_value(Some("BRK B")), "BRK B");
/// assert_eq!(escape_partition_value(None), "__HIVE_DEFAULT_PARTITION__");
/// ```
pub fn escape_partition_value(value: Option<&str>) -> String {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return HIVE_DEFAULT_PARTITION.to_string();
    };
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        let escape = matches!(
            c,
            '\u{01}'
                ..='\u{1F}'
                    | '\u{7F}'
                    | '"'
                    | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '{'
                    | '['
                    | ']'
                    | '^'
        ) || c == '\0';
        if escape {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Per-row partition ids of one key plus the escaped value of each id.
struct KeyColumn {
    ids: Vec<u32>,
    values: Vec<String>,
}

/// Splits `batch` by `keys` into `(relative directory, rows)` groups, in order of first
/// appearance; rows keep their order within a group. With no keys the whole batch is one
/// group under `""`.
pub fn split_by_partition(
    batch: &RecordBatch,
    keys: &[PartitionKey],
) -> Result<Vec<(String, RecordBatch)>> {
    split_with(batch, keys, DENSE_GROUPS)
}

/// Combined key counts up to this many are grouped through a table indexed by the combined
/// id instead of a hash map: the map's SipHash of every row's `u128` was 2% of a
/// `tickpipe convert` (`perf`, 5M rows, 20 symbols).
const DENSE_GROUPS: u128 = 1 << 16;

/// [`split_by_partition`], with the table used up to `dense` combined ids.
fn split_with(
    batch: &RecordBatch,
    keys: &[PartitionKey],
    dense: u128,
) -> Result<Vec<(String, RecordBatch)>> {
    if keys.is_empty() || batch.num_rows() == 0 {
        return Ok(vec![(String::new(), batch.clone())]);
    }
    let columns = keys
        .iter()
        .map(|k| key_column(batch, *k))
        .collect::<Result<Vec<_>>>()?;
    let dir_of = |row: usize| -> String {
        keys.iter()
            .zip(&columns)
            .map(|(k, c)| format!("{}={}", k.name(), c.values[c.ids[row] as usize]))
            .collect::<Vec<_>>()
            .join("/")
    };
    // The common case after routing by symbol: one partition for the whole chunk, no copy.
    if columns
        .iter()
        .all(|c| c.ids.iter().all(|&id| id == c.ids[0]))
    {
        return Ok(vec![(dir_of(0), batch.clone())]);
    }
    // Mixed-radix combination of the per-key ids; each id is below the row count, so three
    // keys fit in a u128 for any batch length.
    let radix: u128 = columns.iter().map(|c| c.values.len() as u128).product();
    let mut table: Vec<u32> = Vec::new();
    let mut group_of: HashMap<u128, usize> = HashMap::new();
    if radix <= dense {
        table = vec![u32::MAX; radix as usize];
    }
    let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
    for row in 0..batch.num_rows() {
        let mut combined: u128 = 0;
        for c in &columns {
            combined = combined * (c.values.len() as u128) + u128::from(c.ids[row]);
        }
        let g = if let Some(slot) = table.get_mut(combined as usize) {
            if *slot == u32::MAX {
                groups.push((row, Vec::new()));
                *slot = (groups.len() - 1) as u32;
            }
            *slot as usize
        } else {
            *group_of.entry(combined).or_insert_with(|| {
                groups.push((row, Vec::new()));
                groups.len() - 1
            })
        };
        groups[g].1.push(row as u32);
    }
    groups
        .into_iter()
        .map(|(first, rows)| {
            let idx = UInt32Array::from(rows);
            let part = arrow_select::take::take_record_batch(batch, &idx)?;
            Ok((dir_of(first), part))
        })
        .collect()
}

fn key_column(batch: &RecordBatch, key: PartitionKey) -> Result<KeyColumn> {
    let name = match key {
        PartitionKey::Symbol => "symbol",
        PartitionKey::Date | PartitionKey::Month => "ts",
    };
    let col = batch.column_by_name(name).ok_or_else(|| {
        Error::Schema(format!(
            "cannot partition by `{}`: the output has no `{name}` column",
            key.name()
        ))
    })?;
    match key {
        PartitionKey::Symbol => symbol_ids(col),
        PartitionKey::Date | PartitionKey::Month => time_ids(col, key),
    }
}

fn symbol_ids(col: &ArrayRef) -> Result<KeyColumn> {
    match col.data_type() {
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
            let dict = col.as_dictionary::<Int32Type>();
            let dvalues = dict.values().as_string::<i32>();
            // Escape each dictionary value once; ids index dictionary slots, with the null
            // partition last. Two slots holding the same text are merged below.
            let mut values: Vec<String> = Vec::with_capacity(dvalues.len() + 1);
            let mut slot_id: Vec<u32> = Vec::with_capacity(dvalues.len());
            let mut by_text: HashMap<String, u32> = HashMap::new();
            for i in 0..dvalues.len() {
                let text = escape_partition_value(dvalues.is_valid(i).then(|| dvalues.value(i)));
                let id = *by_text.entry(text.clone()).or_insert_with(|| {
                    values.push(text);
                    (values.len() - 1) as u32
                });
                slot_id.push(id);
            }
            let null_id = *by_text
                .entry(HIVE_DEFAULT_PARTITION.to_string())
                .or_insert_with(|| {
                    values.push(HIVE_DEFAULT_PARTITION.to_string());
                    (values.len() - 1) as u32
                });
            let keys = dict.keys();
            let ids = (0..keys.len())
                .map(|i| {
                    if keys.is_valid(i) {
                        slot_id
                            .get(keys.value(i) as usize)
                            .copied()
                            .unwrap_or(null_id)
                    } else {
                        null_id
                    }
                })
                .collect();
            Ok(KeyColumn { ids, values })
        }
        DataType::Utf8 => Ok(intern(col.as_string::<i32>().iter())),
        DataType::LargeUtf8 => Ok(intern(col.as_string::<i64>().iter())),
        DataType::Utf8View => Ok(intern(col.as_string_view().iter())),
        other => Err(Error::Schema(format!(
            "cannot partition by `symbol` of type {other}; expected a string column"
        ))),
    }
}

fn intern<'a>(it: impl Iterator<Item = Option<&'a str>>) -> KeyColumn {
    let mut by_text: HashMap<Option<&'a str>, u32> = HashMap::new();
    let mut values = Vec::new();
    let ids = it
        .map(|v| {
            *by_text.entry(v).or_insert_with(|| {
                values.push(escape_partition_value(v));
                (values.len() - 1) as u32
            })
        })
        .collect();
    KeyColumn { ids, values }
}

fn time_ids(col: &ArrayRef, key: PartitionKey) -> Result<KeyColumn> {
    let per_day: i64 = match col.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => 86_400,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 86_400_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 86_400_000_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 86_400_000_000_000,
        other => {
            return Err(Error::Schema(format!(
                "cannot partition by `{}`: `ts` has type {other}, expected a timestamp",
                key.name()
            )));
        }
    };
    // All timestamp units share the i64 physical layout.
    let data = col.to_data();
    let raw =
        arrow_array::Int64Array::from(data.into_builder().data_type(DataType::Int64).build()?);
    let mut by_day: HashMap<Option<i64>, u32> = HashMap::new();
    let mut values = Vec::new();
    let ids = raw
        .iter()
        .map(|v| {
            let day = v.map(|v| v.div_euclid(per_day));
            if let Some(&id) = by_day.get(&day) {
                return id;
            }
            let text = match day.and_then(|d| d.checked_mul(86_400)) {
                Some(secs) => match DateTime::from_timestamp(secs, 0) {
                    Some(t) => match key {
                        PartitionKey::Month => format!("{:04}-{:02}", t.year(), t.month()),
                        _ => t.format("%Y-%m-%d").to_string(),
                    },
                    None => HIVE_DEFAULT_PARTITION.to_string(),
                },
                None => HIVE_DEFAULT_PARTITION.to_string(),
            };
            // Days of one month map to one id through the text.
            let id = match values.iter().position(|t| *t == text) {
                Some(i) => i as u32,
                None => {
                    values.push(text);
                    (values.len() - 1) as u32
                }
            };
            by_day.insert(day, id);
            id
        })
        .collect();
    Ok(KeyColumn { ids, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{DictionaryArray, Int64Array, StringArray, TimestampNanosecondArray};
    use arrow_schema::{Field, Schema};

    fn batch() -> RecordBatch {
        const DAY: i64 = 86_400_000_000_000;
        let t0 = 1_609_770_600_000_000_000; // 2021-01-04T14:30:00Z
        let ts = TimestampNanosecondArray::from(vec![
            Some(t0),
            Some(t0 + 1),
            Some(t0 + DAY),
            None,
            Some(t0 + 31 * DAY),
        ])
        .with_timezone("UTC");
        let sym: DictionaryArray<Int32Type> = vec![
            Some("AAPL"),
            Some("EUR/USD"),
            Some("AAPL"),
            None,
            Some("AAPL"),
        ]
        .into_iter()
        .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", ts.data_type().clone(), true),
            Field::new("symbol", sym.data_type().clone(), true),
            Field::new("x", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(ts),
                Arc::new(sym),
                Arc::new(Int64Array::from(vec![0, 1, 2, 3, 4])),
            ],
        )
        .unwrap()
    }

    fn rows_of(parts: &[(String, RecordBatch)]) -> Vec<(String, Vec<i64>)> {
        parts
            .iter()
            .map(|(d, b)| {
                let x = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
                (d.clone(), x.values().to_vec())
            })
            .collect()
    }

    #[test]
    fn splits_by_symbol_and_date_in_first_appearance_order() {
        let parts =
            split_by_partition(&batch(), &[PartitionKey::Symbol, PartitionKey::Date]).unwrap();
        assert_eq!(
            rows_of(&parts),
            vec![
                ("symbol=AAPL/date=2021-01-04".into(), vec![0]),
                ("symbol=EUR%2FUSD/date=2021-01-04".into(), vec![1]),
                ("symbol=AAPL/date=2021-01-05".into(), vec![2]),
                (
                    format!("symbol={HIVE_DEFAULT_PARTITION}/date={HIVE_DEFAULT_PARTITION}"),
                    vec![3]
                ),
                ("symbol=AAPL/date=2021-02-04".into(), vec![4]),
            ]
        );
    }

    #[test]
    fn months_merge_days() {
        let parts = split_by_partition(&batch(), &[PartitionKey::Month]).unwrap();
        assert_eq!(
            rows_of(&parts),
            vec![
                ("month=2021-01".into(), vec![0, 1, 2]),
                (format!("month={HIVE_DEFAULT_PARTITION}"), vec![3]),
                ("month=2021-02".into(), vec![4]),
            ]
        );
    }

    #[test]
    fn plain_string_symbols_and_single_partition() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "symbol",
            DataType::Utf8,
            true,
        )]));
        let b = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec!["A B", "A B"]))],
        )
        .unwrap();
        let parts = split_by_partition(&b, &[PartitionKey::Symbol]).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, "symbol=A B");
        assert!(split_by_partition(&b, &[PartitionKey::Date]).is_err());
    }

    proptest::proptest! {
        /// The table and the hash map group rows alike: same directories, same rows, in
        /// first-appearance order.
        #[test]
        fn the_table_and_the_map_make_the_same_groups(
            rows in proptest::collection::vec((0..5usize, 0..40i64), 1..200),
        ) {
            const DAY: i64 = 86_400_000_000_000;
            let t0 = 1_609_770_600_000_000_000;
            let names = ["AAPL", "MSFT", "EUR/USD", "", "X"];
            let sym: DictionaryArray<Int32Type> = rows
                .iter()
                .map(|(s, _)| (*s != 3).then_some(names[*s]))
                .collect();
            let ts = TimestampNanosecondArray::from(
                rows.iter().map(|(_, d)| t0 + d * DAY).collect::<Vec<_>>(),
            )
            .with_timezone("UTC");
            let schema = Arc::new(Schema::new(vec![
                Field::new("ts", ts.data_type().clone(), true),
                Field::new("symbol", sym.data_type().clone(), true),
                Field::new("x", DataType::Int64, false),
            ]));
            let b = RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(ts),
                    Arc::new(sym),
                    Arc::new(Int64Array::from((0..rows.len() as i64).collect::<Vec<_>>())),
                ],
            )
            .unwrap();
            for keys in [
                &[PartitionKey::Symbol][..],
                &[PartitionKey::Symbol, PartitionKey::Date],
                &[PartitionKey::Month, PartitionKey::Symbol],
            ] {
                let table = rows_of(&split_with(&b, keys, u128::MAX).unwrap());
                let map = rows_of(&split_with(&b, keys, 0).unwrap());
                proptest::prop_assert_eq!(&table, &map);
                let total: usize = table.iter().map(|(_, r)| r.len()).sum();
                proptest::prop_assert_eq!(total, rows.len());
            }
        }
    }

    #[test]
    fn escaping_follows_hive() {
        assert_eq!(escape_partition_value(Some("a=b:c%")), "a%3Db%3Ac%25");
        assert_eq!(escape_partition_value(Some("")), HIVE_DEFAULT_PARTITION);
        assert_eq!(escape_partition_value(Some("ÄB\n")), "ÄB%0A");
    }
}
