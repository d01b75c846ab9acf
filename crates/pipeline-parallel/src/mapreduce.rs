//! [`map_reduce`]: deterministic aggregations over many sources.

use pipeline_core::{Chunk, Error, Result};
use rayon::prelude::*;

use crate::runtime::Runtime;
use crate::spec::SourceSpec;

/// Maps every chunk of every source and combines the results in a fixed order: chunks of one
/// source left to right, then sources in the given order. Sources are processed in parallel
/// on an owned pool of `workers` threads (largest first, so one big file does not start
/// last), but the combination order never changes, so the result is identical for any worker
/// count even when `combine` is not associative (floating-point sums).
///
/// Returns `None` when there are no chunks. A source error fails the whole call.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch};
/// use arrow_schema::{DataType, Field, Schema};
/// use pipeline_core::{Chunk, Source, VecSource};
/// use pipeline_parallel::{SourceSpec, map_reduce};
///
/// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
/// let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
/// let chunk = Chunk::with_first_line(batch, 0, 0, 2)?;
/// let spec = |name: &str| SourceSpec {
///     name: name.into(),
///     size_bytes: 1,
///     open: { let c = chunk.clone(); Arc::new(move || Ok(Box::new(VecSource::new(c.schema(), vec![c.clone()])) as Box<dyn Source>)) },
/// };
/// let rows = map_reduce(&[spec("a"), spec("b")], 2, |c: &Chunk| Ok(c.num_rows()), |a, b| a + b)?;
/// assert_eq!(rows, Some(6));
/// # Ok::<(), pipeline_core::Error>(())
/// ```
pub fn map_reduce<M, F, C>(
    sources: &[SourceSpec],
    workers: usize,
    map: F,
    combine: C,
) -> Result<Option<M>>
where
    M: Send,
    F: Fn(&Chunk) -> Result<M> + Sync,
    C: Fn(M, M) -> M + Sync,
{
    map_reduce_on(&Runtime::new(workers)?, sources, map, combine)
}

/// [`map_reduce`] on a given [`Runtime`]'s pool (its thread count is the parallelism).
pub fn map_reduce_on<M, F, C>(
    runtime: &Runtime,
    sources: &[SourceSpec],
    map: F,
    combine: C,
) -> Result<Option<M>>
where
    M: Send,
    F: Fn(&Chunk) -> Result<M> + Sync,
    C: Fn(M, M) -> M + Sync,
{
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(sources[*i].size_bytes));
    let mut per_source: Vec<(usize, Result<Option<M>>)> = runtime.install(|| {
        order
            .par_iter()
            .with_max_len(1)
            .map(|&i| (i, fold_source(&sources[i], &map, &combine)))
            .collect()
    })?;
    per_source.sort_by_key(|(i, _)| *i);
    let mut acc: Option<M> = None;
    for (i, r) in per_source {
        let m = r.map_err(|e| match e {
            Error::Internal(m) => Error::Internal(format!("{}: {m}", sources[i].name)),
            other => other,
        })?;
        acc = match (acc, m) {
            (Some(a), Some(b)) => Some(combine(a, b)),
            (a, b) => a.or(b),
        };
    }
    Ok(acc)
}

fn fold_source<M, F, C>(spec: &SourceSpec, map: &F, combine: &C) -> Result<Option<M>>
where
    F: Fn(&Chunk) -> Result<M>,
    C: Fn(M, M) -> M,
{
    let mut src = (spec.open)()?;
    let mut acc: Option<M> = None;
    for item in src.by_ref() {
        let m = map(&item?)?;
        acc = Some(match acc {
            Some(a) => combine(a, m),
            None => m,
        });
    }
    Ok(acc)
}
