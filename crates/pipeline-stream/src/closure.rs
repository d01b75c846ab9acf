//! Stages built from closures: [`map_stage`] and [`filter_stage`].

use arrow_array::BooleanArray;
use pipeline_core::{Chunk, Emitter, Error, Result, Stage, StageKey};

type MapFn = Box<dyn FnMut(Chunk) -> Result<Chunk> + Send>;
type FilterFn = Box<dyn FnMut(&Chunk) -> Result<BooleanArray> + Send>;

/// A row-local stage that transforms each chunk with a closure.
struct MapStage {
    name: String,
    f: MapFn,
}

impl Stage for MapStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn key(&self) -> StageKey {
        // A closure has no inspectable configuration; its name stands for it.
        StageKey::of(&self.name, &())
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let n = chunk.num_rows();
        let c = (self.f)(chunk)?;
        if c.num_rows() != n {
            return Err(Error::Internal(format!(
                "map stage `{}` changed the row count from {n} to {} (use filter_stage to drop rows)",
                self.name,
                c.num_rows()
            )));
        }
        out.emit(c);
        Ok(())
    }
}

/// A row-local stage from a closure that maps a chunk to a chunk with the same rows (adding or
/// replacing columns). A closure that changes the row count is an error, since the rows it
/// dropped could not be accounted for; use [`filter_stage`] for that.
///
/// ```
/// use pipeline_core::run_stage;
/// let mut s = pipeline_stream::map_stage("noop", Ok);
/// assert_eq!(s.name(), "noop");
/// ```
pub fn map_stage(
    name: impl Into<String>,
    f: impl FnMut(Chunk) -> Result<Chunk> + Send + 'static,
) -> Box<dyn Stage> {
    Box::new(MapStage {
        name: name.into(),
        f: Box::new(f),
    })
}

/// A row-local stage that keeps the rows where a closure's mask is true.
struct FilterStage {
    name: String,
    rule: String,
    f: FilterFn,
}

impl Stage for FilterStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn key(&self) -> StageKey {
        StageKey::of(&self.name, &self.rule)
    }

    fn process(&mut self, chunk: Chunk, out: &mut Emitter) -> Result<()> {
        let keep = (self.f)(&chunk)?;
        if keep.len() != chunk.num_rows() {
            return Err(Error::Internal(format!(
                "filter stage `{}` returned a mask of {} rows for a chunk of {}",
                self.name,
                keep.len(),
                chunk.num_rows()
            )));
        }
        let kept = out.remove(&self.rule, &chunk, &keep)?;
        out.emit(kept);
        Ok(())
    }
}

/// A row-local stage keeping the rows where the closure's mask is true; the others (false or
/// null) are recorded as removed under `rule` in the ledger, with their lines.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{cast::AsArray, types::Int64Type, BooleanArray, Int64Array, RecordBatch};
/// use arrow_schema::{DataType, Field, Schema};
/// use pipeline_core::{run_stage, Chunk};
///
/// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
/// let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, -1, 2]))])?;
/// let mut s = pipeline_stream::filter_stage("positive", "nonpositive_x", |c: &Chunk| {
///     let x = c.column_by_name("x").unwrap().as_primitive::<Int64Type>();
///     Ok(x.iter().map(|v| Some(v.is_some_and(|v| v > 0))).collect::<BooleanArray>())
/// });
/// let (out, em) = run_stage(s.as_mut(), [Chunk::with_first_line(batch, 0, 0, 2)?])?;
/// assert_eq!(out[0].num_rows(), 2);
/// assert_eq!(em.ledger().removed["nonpositive_x"], 1);
/// # Ok::<(), pipeline_core::Error>(())
/// ```
pub fn filter_stage(
    name: impl Into<String>,
    rule: impl Into<String>,
    f: impl FnMut(&Chunk) -> Result<BooleanArray> + Send + 'static,
) -> Box<dyn Stage> {
    Box::new(FilterStage {
        name: name.into(),
        rule: rule.into(),
        f: Box::new(f),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use pipeline_core::run_stage;

    fn chunk() -> Chunk {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let b =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        Chunk::with_first_line(b, 0, 0, 1).unwrap()
    }

    #[test]
    fn map_that_drops_rows_is_an_error() {
        let mut s = map_stage("bad", |c: Chunk| Ok(c.slice(0, 1)));
        assert!(run_stage(s.as_mut(), [chunk()]).is_err());
    }

    #[test]
    fn filter_mask_of_wrong_length_is_an_error() {
        let mut s = filter_stage("bad", "r", |_c: &Chunk| Ok(BooleanArray::from(vec![true])));
        assert!(run_stage(s.as_mut(), [chunk()]).is_err());
    }
}
