//! [`map_reduce`] determinism: per-symbol statistics identical for any worker count.

use std::collections::BTreeMap;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use pipeline_core::Chunk;
use pipeline_parallel::map_reduce;

use crate::support::*;

type Stats = BTreeMap<String, (u64, f64, f64)>;

fn map(c: &Chunk) -> pipeline_core::Result<Stats> {
    let sym = c.column_by_name("symbol").unwrap().as_string::<i32>();
    let px = c
        .column_by_name("price")
        .unwrap()
        .as_primitive::<Float64Type>();
    let mut m = Stats::new();
    for i in 0..c.num_rows() {
        let k = if sym.is_null(i) { "" } else { sym.value(i) };
        let e = m.entry(k.to_string()).or_insert((0, 0.0, f64::MIN));
        e.0 += 1;
        e.1 += px.value(i) * 1.000_000_1;
        e.2 = e.2.max(px.value(i));
    }
    Ok(m)
}

fn combine(mut a: Stats, b: Stats) -> Stats {
    for (k, v) in b {
        let e = a.entry(k).or_insert((0, 0.0, f64::MIN));
        e.0 += v.0;
        e.1 += v.1;
        e.2 = e.2.max(v.2);
    }
    a
}

#[test]
fn per_symbol_stats_are_bitwise_identical_for_any_worker_count() {
    let files = gen_files(21, 9, 700);
    let first = map_reduce(&specs(&files, 33), 1, map, combine)
        .unwrap()
        .unwrap();
    let rows: u64 = first.values().map(|v| v.0).sum();
    assert_eq!(rows, 9 * 700);
    for workers in [2, 3, 4] {
        let got = map_reduce(&specs(&files, 33), workers, map, combine)
            .unwrap()
            .unwrap();
        let bits = |s: &Stats| {
            s.iter()
                .map(|(k, v)| (k.clone(), v.0, v.1.to_bits(), v.2.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&got), bits(&first), "workers {workers}");
    }
    assert!(map_reduce(&[], 2, map, combine).unwrap().is_none());
}
