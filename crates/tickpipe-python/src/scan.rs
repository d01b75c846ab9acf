//! `scan`: a streamed run as an Arrow C stream. The facade's [`RunStream`] runs the pipeline
//! in the background and hands batches through a bounded channel; [`Stream`] exports it with
//! arrow-rs's FFI (`FFI_ArrowArrayStream` in a capsule named `arrow_array_stream`), so the
//! consumer pulls batches one at a time, without a copy and without anything collected here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, RecordBatch, RecordBatchReader, StructArray};
use arrow_schema::{ArrowError, Schema, SchemaRef};
use pipeline_core::Error;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use tickpipe::{Pipeline, RunStream};

use crate::errors::to_py;

/// The run shared by the Python object and any exported C stream.
type Shared = Arc<Mutex<Option<RunStream>>>;

fn poisoned() -> Error {
    Error::Internal("the stream's lock is poisoned (a consumer panicked)".into())
}

/// The next batch of the shared run; `None` at the end (or once finished).
fn next(shared: &Shared) -> Option<Result<RecordBatch, Error>> {
    match shared.lock() {
        Ok(mut g) => g.as_mut()?.next(),
        Err(_) => Some(Err(poisoned())),
    }
}

/// A streamed run (`tickpipe.scan`): iterate it with [`Stream::next_batch`], or hand it to
/// any Arrow consumer through `__arrow_c_stream__`; then [`Stream::finish`] for the report.
#[pyclass(module = "tickpipe._native", name = "Stream")]
pub(crate) struct Stream {
    shared: Shared,
    stop: Arc<AtomicBool>,
}

/// One output batch, for `pyarrow.record_batch` (the Arrow PyCapsule interface).
#[pyclass(module = "tickpipe._native", name = "Batch")]
pub(crate) struct Batch {
    batch: RecordBatch,
}

/// The C stream's reader: pulls from the shared run, projected and cast to the consumer's
/// requested schema when it asked for one that can be served.
struct Reader {
    shared: Shared,
    schema: SchemaRef,
    /// For each requested field, the index of our column it is made from.
    project: Option<Vec<usize>>,
}

impl Iterator for Reader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match next(&self.shared)? {
            Ok(b) => b,
            Err(e) => return Some(Err(ArrowError::ExternalError(Box::new(e)))),
        };
        match &self.project {
            Some(project) => Some(project_cast(&batch, &self.schema, project)),
            None => Some(Ok(batch)),
        }
    }
}

/// `batch`'s columns `project`, cast to the types of `schema` (see [`requested`]).
fn project_cast(
    batch: &RecordBatch,
    schema: &SchemaRef,
    project: &[usize],
) -> Result<RecordBatch, ArrowError> {
    let cols = project
        .iter()
        .zip(schema.fields())
        .map(|(&i, f)| arrow_cast::cast(batch.column(i), f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), cols)
}

/// The schema a consumer requested (the PyCapsule protocol's `requested_schema`, a capsule
/// named `arrow_schema`), when `ours` can serve it: every requested field is one of ours by
/// name and our type casts to the requested one. Then the stream yields those columns, in
/// that order, cast (a requested non-nullable field stays nullable where ours is). Otherwise
/// `None`, and the stream keeps its own schema, as the protocol allows; the consumer decides.
fn requested(
    requested_schema: Option<Bound<'_, PyAny>>,
    ours: &Schema,
) -> PyResult<Option<(SchemaRef, Vec<usize>)>> {
    let Some(obj) = requested_schema else {
        return Ok(None);
    };
    if obj.is_none() || ours.fields().is_empty() {
        return Ok(None);
    }
    let capsule = obj.cast::<PyCapsule>()?;
    let ptr = capsule.pointer_checked(Some(c"arrow_schema"))?;
    // SAFETY: the protocol defines a capsule named `arrow_schema` to hold an
    // `ArrowSchema` (the Arrow C data interface), which `FFI_ArrowSchema` is laid out as;
    // the name was checked above, the capsule outlives this borrow, and the schema is only
    // read (converted to an owned `Schema`), never released here.
    #[allow(unsafe_code)]
    let ffi = unsafe { ptr.cast::<FFI_ArrowSchema>().as_ref() };
    let Ok(want) = Schema::try_from(ffi) else {
        return Ok(None);
    };
    let mut fields = Vec::with_capacity(want.fields().len());
    let mut project = Vec::with_capacity(want.fields().len());
    for f in want.fields() {
        let Some((i, _)) = ours.column_with_name(f.name()) else {
            return Ok(None);
        };
        let mine = ours.field(i);
        if !arrow_cast::can_cast_types(mine.data_type(), f.data_type()) {
            return Ok(None);
        }
        fields.push(
            f.as_ref()
                .clone()
                .with_nullable(f.is_nullable() || mine.is_nullable()),
        );
        project.push(i);
    }
    Ok(Some((
        Arc::new(Schema::new_with_metadata(fields, want.metadata().clone())),
        project,
    )))
}

impl RecordBatchReader for Reader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[pymethods]
impl Stream {
    /// The next batch, or `None` at the end; a failed run raises its error.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<Batch>> {
        let shared = self.shared.clone();
        match py.detach(move || next(&shared)) {
            Some(Ok(batch)) => Ok(Some(Batch { batch })),
            Some(Err(e)) => Err(to_py(py, e)),
            None => Ok(None),
        }
    }

    /// The Arrow C stream of the remaining batches, in a capsule named
    /// `arrow_array_stream`. Waits for the first batch to know the schema (an empty run has
    /// an empty schema). A `requested_schema` whose fields are ours by name, with types ours
    /// cast to, is served: those columns, in that order, cast; any other leaves our schema
    /// (the protocol lets the consumer decide what to do then).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let shared = self.shared.clone();
        let schema = py
            .detach(move || -> Result<Option<SchemaRef>, Error> {
                let mut g = shared.lock().map_err(|_| poisoned())?;
                match g.as_mut() {
                    Some(s) => s.schema(),
                    None => Err(Error::Usage("the stream is already finished".into())),
                }
            })
            .map_err(|e| to_py(py, e))?
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        let (schema, project) = match requested(requested_schema, &schema)? {
            Some((want, project)) => (want, Some(project)),
            None => (schema, None),
        };
        let reader = Reader {
            shared: self.shared.clone(),
            schema,
            project,
        };
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new(py, stream, Some(c"arrow_array_stream".to_owned()))
    }

    /// Stops the run early; `finish` then raises `CancelledError`.
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for the run to end (batches not taken are dropped) and returns its report as
    /// JSON.
    fn finish(&self, py: Python<'_>) -> PyResult<String> {
        let shared = self.shared.clone();
        py.detach(move || {
            let stream = shared.lock().map_err(|_| poisoned())?.take();
            match stream {
                Some(s) => s.finish(),
                None => Err(Error::Usage("the stream was already finished".into())),
            }
        })
        .and_then(|r| r.to_json())
        .map_err(|e| to_py(py, e))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Dropping the RunStream stops and joins the run; say stop first so a consumer
        // still holding the C stream sees the end soon.
        if Arc::strong_count(&self.shared) == 1 {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

#[pymethods]
impl Batch {
    /// Rows in the batch.
    #[getter]
    fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The batch as an Arrow C schema and C array (a struct array), each in its capsule.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        let batch = match requested(requested_schema, self.batch.schema().as_ref())? {
            Some((want, project)) => project_cast(&self.batch, &want, &project)
                .map_err(|e| to_py(py, Error::Arrow(e)))?,
            None => self.batch.clone(),
        };
        let schema = FFI_ArrowSchema::try_from(batch.schema().as_ref())
            .map_err(|e| to_py(py, Error::Arrow(e)))?;
        let data = StructArray::from(batch).into_data();
        let array = FFI_ArrowArray::new(&data);
        Ok((
            PyCapsule::new(py, schema, Some(c"arrow_schema".to_owned()))?,
            PyCapsule::new(py, array, Some(c"arrow_array".to_owned()))?,
        ))
    }

    /// The batch's Arrow C schema in a capsule named `arrow_schema`.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.batch.schema().as_ref())
            .map_err(|e| to_py(py, Error::Arrow(e)))?;
        PyCapsule::new(py, schema, Some(c"arrow_schema".to_owned()))
    }
}

/// Starts a streamed run (see `tickpipe.scan` in Python). `out`, when given, is a folder
/// that receives the quarantine file; the dataset itself is never written.
#[pyfunction]
#[pyo3(signature = (inputs, config = None, *, out = None, bars = None))]
pub(crate) fn scan(
    py: Python<'_>,
    inputs: Vec<String>,
    config: Option<&str>,
    out: Option<PathBuf>,
    bars: Option<String>,
) -> PyResult<Stream> {
    let cfg = crate::config::from_json_or_default(config).map_err(|e| to_py(py, e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut b = Pipeline::builder()
        .inputs(inputs)
        .config(cfg)
        .output(crate::run::output_for(out))
        .cancel(stop.clone())
        .label("scan");
    if let Some(spec) = bars {
        b = b.bars(spec);
    }
    let stream = py
        .detach(move || b.build().and_then(Pipeline::stream))
        .map_err(|e| to_py(py, e))?;
    Ok(Stream {
        shared: Arc::new(Mutex::new(Some(stream))),
        stop,
    })
}
