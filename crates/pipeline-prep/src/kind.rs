//! Row kinds in a dataset that may mix trades, quotes and order-book messages.
//!
//! One dataset schema across files means a trade row has null `bid`/`ask`, a quote row null
//! `price`/`size`, and only order-book messages have an `event_type`. Stages read a row's
//! kind from what it fills:
//! * an **order-book message** has a non-null `event_type` (LOBSTER's message types); it is a
//!   trade only when it is an execution ([`pipeline_core::is_execution_event`]: types 4, 5
//!   and 6), and its `price`/`size` are otherwise the order's, not a trade's;
//! * any other row with a `price` is a **trade** (or a TAQ row: a trade with its quote);
//! * a row with `bid`/`ask` and no `price` is a **quote**.
//!
//! Columns a row's kind does not have are absent, not missing (see
//! [`crate::MissingConfig`]).

use arrow_array::cast::AsArray;
use arrow_array::types::{Int8Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use pipeline_core::{Chunk, Error, HALT_EVENT_TYPE, Result, is_execution_event};

/// The `event_type` column of a chunk, if any, as `i8` message types.
pub(crate) struct Events {
    types: Option<Vec<Option<i8>>>,
}

impl Events {
    /// Reads `event_type` (any integer type); absent or all-null gives a chunk of trades and
    /// quotes only.
    pub(crate) fn of(chunk: &Chunk) -> Result<Events> {
        let Some(a) = chunk.column_by_name("event_type") else {
            return Ok(Events { types: None });
        };
        if a.null_count() == a.len() {
            return Ok(Events { types: None });
        }
        Ok(Events {
            types: Some(read_i8(a)?),
        })
    }

    /// A chunk without order-book messages.
    pub(crate) fn none() -> Events {
        Events { types: None }
    }

    /// True when some row is an order-book message.
    pub(crate) fn any(&self) -> bool {
        self.types.is_some()
    }

    /// The message type of row `i` (`None`: not an order-book message).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<i8> {
        self.types.as_ref().and_then(|t| t[i])
    }

    /// True when row `i` is an order-book message.
    #[inline]
    pub(crate) fn message(&self, i: usize) -> bool {
        self.get(i).is_some()
    }

    /// True when row `i` can carry a trade: not a message, or an execution message.
    #[inline]
    pub(crate) fn trade(&self, i: usize) -> bool {
        self.get(i).is_none_or(is_execution_event)
    }

    /// True when row `i` is a trading-halt message (its price is a flag, its size 0).
    #[inline]
    pub(crate) fn halt(&self, i: usize) -> bool {
        self.get(i) == Some(HALT_EVENT_TYPE)
    }
}

fn read_i8(a: &ArrayRef) -> Result<Vec<Option<i8>>> {
    let narrow = |v: i64| i8::try_from(v).unwrap_or(i8::MAX);
    Ok(match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().iter().collect(),
        DataType::Int16 => a
            .as_primitive::<Int16Type>()
            .iter()
            .map(|v| v.map(|v| narrow(i64::from(v))))
            .collect(),
        DataType::Int32 => a
            .as_primitive::<Int32Type>()
            .iter()
            .map(|v| v.map(|v| narrow(i64::from(v))))
            .collect(),
        DataType::Int64 => a
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(narrow))
            .collect(),
        other => {
            return Err(Error::Schema(format!(
                "column `event_type` must be an integer message type, found {other}"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int8Array, RecordBatch};

    use super::*;

    #[test]
    fn kinds_by_row() {
        let b = RecordBatch::try_from_iter([
            (
                "event_type",
                Arc::new(Int8Array::from(vec![
                    Some(1),
                    Some(4),
                    None,
                    Some(7),
                    Some(5),
                ])) as ArrayRef,
            ),
            (
                "price",
                Arc::new(Float64Array::from(vec![1.0; 5])) as ArrayRef,
            ),
        ])
        .unwrap();
        let e = Events::of(&Chunk::with_first_line(b, 0, 0, 1).unwrap()).unwrap();
        assert!(e.any());
        let trade: Vec<bool> = (0..5).map(|i| e.trade(i)).collect();
        assert_eq!(trade, [false, true, true, false, true]);
        assert!(e.message(0) && !e.message(2) && e.halt(3));
    }
}
