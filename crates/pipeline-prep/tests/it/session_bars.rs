//! Calendar-aware time bars: New York hours across both 2024 DST changes, a holiday, an
//! early close, the empty-bar policies, `label` and `closed`, and the ledger.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::{
    Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use pipeline_core::{Chunk, run_stage};
use pipeline_prep::{BarEdge, BarSession, BarStage, EmptyBars, parse_bar_spec};

fn ns(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

/// Trades of one symbol at `times` (UTC), price 100 + i.
fn trades(times: &[&str]) -> Chunk {
    let n = times.len();
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "ts",
            Arc::new(
                TimestampNanosecondArray::from_iter_values(times.iter().map(|t| ns(t)))
                    .with_timezone("UTC"),
            ),
        ),
        ("symbol", Arc::new(StringArray::from(vec!["SPY"; n]))),
        (
            "price",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| 100.0 + i as f64),
            )),
        ),
        ("size", Arc::new(Float64Array::from(vec![10.0; n]))),
    ];
    Chunk::with_first_line(RecordBatch::try_from_iter(cols).unwrap(), 0, 0, 2).unwrap()
}

struct Bars {
    ts: Vec<i64>,
    close: Vec<Option<f64>>,
    trades: Vec<i64>,
    ledger: pipeline_core::Ledger,
}

fn bars(times: &[&str], session: BarSession, spec: &str, chunk_size: usize) -> Bars {
    let whole = trades(times);
    let chunks: Vec<Chunk> = (0..whole.num_rows())
        .step_by(chunk_size)
        .enumerate()
        .map(|(k, at)| {
            let c = whole.slice(at, chunk_size.min(whole.num_rows() - at));
            Chunk::new(c.batch().clone(), 0, k as u64).unwrap()
        })
        .collect();
    let mut stage = BarStage::new(parse_bar_spec(spec).unwrap())
        .session(session)
        .unwrap();
    let (out, em) = run_stage(&mut stage, chunks).unwrap();
    let mut b = Bars {
        ts: Vec::new(),
        close: Vec::new(),
        trades: Vec::new(),
        ledger: em.ledger().clone(),
    };
    for c in out {
        let ts = c
            .column_by_name("ts")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>();
        let close = c
            .column_by_name("close")
            .unwrap()
            .as_primitive::<Float64Type>();
        let tr = c
            .column_by_name("trades")
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..c.num_rows() {
            b.ts.push(ts.value(i));
            b.close.push(close.is_valid(i).then(|| close.value(i)));
            b.trades.push(tr.value(i));
        }
    }
    b
}

/// Trades in + empty bars = bars out + trades merged or outside every session.
fn balanced(b: &Bars, trades: usize) {
    let l = &b.ledger;
    assert_eq!(
        trades as u64 + l.added_total(),
        b.ts.len() as u64 + l.removed_total(),
        "{l:?}"
    );
}

const TIMES: [&str; 7] = [
    "2024-03-08T14:35:00Z", // Fri 09:35 EST: bin 09:30
    "2024-03-08T16:40:00Z", // Fri 11:40 EST: bin 11:30
    "2024-03-08T21:30:00Z", // Fri 16:30 EST: after the close
    "2024-03-11T13:31:00Z", // Mon 09:31 EDT: bin 09:30 (13:30 UTC)
    "2024-07-03T16:59:00Z", // Wed 12:59 EDT: bin 12:30, the last before the 13:00 close
    "2024-07-03T17:30:00Z", // Wed 13:30 EDT: after the early close
    "2024-07-04T15:00:00Z", // Independence Day
];

#[test]
fn bins_follow_new_york_hours_holidays_and_early_closes() {
    for size in [1, 2, 7] {
        let b = bars(&TIMES, BarSession::nyse(), "time:1h", size);
        assert_eq!(
            b.ts,
            vec![
                ns("2024-03-08T14:30:00Z"),
                ns("2024-03-08T16:30:00Z"),
                ns("2024-03-11T13:30:00Z"),
                ns("2024-07-03T16:30:00Z"),
            ],
            "chunk size {size}"
        );
        assert_eq!(
            b.close,
            vec![Some(100.0), Some(101.0), Some(103.0), Some(104.0)]
        );
        assert_eq!(b.ledger.removed.get("bar_outside_session"), Some(&3));
        balanced(&b, TIMES.len());
    }
}

#[test]
fn empty_bins_carry_forward_or_are_null_and_count_as_added() {
    let times = [
        "2024-03-08T14:35:00Z",
        "2024-03-08T16:40:00Z",
        "2024-03-11T13:31:00Z",
    ];
    let mut s = BarSession::nyse();
    s.empty = EmptyBars::Carry;
    let b = bars(&times, s.clone(), "time:1h", 1);
    // Friday: 09:30 (trade), 10:30 (carry), 11:30 (trade), 12:30 … 15:30 (carry): 7 bins;
    // Monday: 09:30 (trade) then 10:30 … 15:30 (carry) at the end: 7 bins.
    assert_eq!(b.ts.len(), 14);
    assert_eq!(b.trades.iter().filter(|&&t| t > 0).count(), 3);
    assert_eq!(b.close[1], Some(100.0)); // carried
    assert_eq!(b.close[6], Some(101.0));
    assert_eq!(b.ts[6], ns("2024-03-08T20:30:00Z")); // the last bin, 15:30-16:00 EST
    assert_eq!(b.ts[13], ns("2024-03-11T19:30:00Z")); // 15:30 EDT
    assert_eq!(b.ledger.added.get("bar_empty"), Some(&11));
    balanced(&b, times.len());
    s.empty = EmptyBars::Null;
    let n = bars(&times, s, "time:1h", 2);
    assert_eq!(n.ts.len(), 14);
    assert_eq!(n.close[1], None);
    assert_eq!(n.close.iter().filter(|c| c.is_none()).count(), 11);
}

#[test]
fn label_and_closed_edges() {
    let times = ["2024-03-08T15:30:00Z", "2024-03-08T15:45:00Z"]; // 10:30 and 10:45 EST
    let mut s = BarSession::nyse();
    s.label = BarEdge::Right;
    let b = bars(&times, s.clone(), "time:1h", 1);
    // [10:30, 11:30) stamped with its end.
    assert_eq!(b.ts, vec![ns("2024-03-08T16:30:00Z")]);
    s.closed = BarEdge::Right;
    let b = bars(&times, s, "time:1h", 1);
    // (09:30, 10:30] holds 10:30; (10:30, 11:30] holds 10:45.
    assert_eq!(
        b.ts,
        vec![ns("2024-03-08T15:30:00Z"), ns("2024-03-08T16:30:00Z")]
    );
}

#[test]
fn a_session_needs_time_bars() {
    let e = BarStage::new(parse_bar_spec("tick:10").unwrap())
        .session(BarSession::nyse())
        .err()
        .unwrap();
    assert!(e.to_string().contains("time bars"), "{e}");
}
