//! One dataset schema across files: [`describe_dataset`] sniffs every input (header and a
//! sample, never the whole file) and unifies the column sets; [`ConformSource`] casts and pads
//! each source's chunks to that schema, so every output file of a run has the same columns
//! and types and a folder of mixed vendor files reads as one dataset in Polars, DuckDB and
//! pyarrow.
//!
//! Unification rules ([`unify_schemas`]):
//! * columns are united by name: canonical columns first, in canonical order (`ts`,
//!   `symbol`, `price`, `size`, `bid`, `ask`, …), then the others in the order first seen
//!   (inputs are sorted by path); a file without a column gets nulls in it;
//! * types widen: integers of any width and sign → Int64 (a UInt64 value above `i64::MAX`
//!   fails its source with a cast error rather than turning null); integers with floats →
//!   Float64; any timestamps → `Timestamp(ns, "UTC")`; dictionary-encoded and plain text →
//!   dictionary-encoded text; text with anything else → Utf8 (the values as text); `Null`
//!   (an all-null column) takes the other type;
//! * every column is nullable.
//!
//! The dataset's kinds ([`DatasetInfo::files`]) and the zones vendor layouts give their
//! symbols ([`DatasetInfo::zones`]) come from the same pass.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::{Array, ArrayRef, RecordBatch, new_null_array};
use arrow_cast::cast::{CastOptions, cast_with_options};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use pipeline_core::{
    Canonical, Chunk, DatasetKind, Error, LINE_COLUMN, Progress, Reject, Result, Source, dict_type,
    ts_type,
};

use super::expand::InputFile;
use super::options::ReadOptions;
use super::plan::VendorLayout;
use super::plan_memo::PlanUse;
use super::source::{open_raw, sniff_text};

/// What sniffing found about one input file.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// The file's name, as in the run's source table.
    pub file: String,
    /// Its vendor layout (`None` for Parquet and Arrow IPC inputs).
    pub layout: Option<VendorLayout>,
    /// The kind of records, from its canonical columns.
    pub kind: Option<DatasetKind>,
    /// The data columns its source yields (no `_line`), before unification.
    pub schema: SchemaRef,
    /// The symbols of its sample (see [`super::plan::CsvPlan::symbols`]).
    pub symbols: Vec<String>,
    /// The zone its layout names for time features ([`VendorLayout::exchange_zone`]).
    pub zone: Option<String>,
}

/// The inputs of a run described as one dataset (see the module docs).
#[derive(Debug)]
pub struct DatasetInfo {
    /// The unified data schema (no `_line`): set it as [`ReadOptions::target_schema`].
    pub schema: SchemaRef,
    /// Each input that could be sniffed, in input order (stdin and empty files are left
    /// out: they have no columns to contribute).
    pub files: Vec<FileInfo>,
    /// Inputs that could not be sniffed, with the error: report them before the run (their
    /// sources fail with the same error when opened).
    pub failed: Vec<(String, Error)>,
    /// Time zone per symbol, from the layouts that name one (LOBSTER: America/New_York;
    /// HistData, LEAN, Tardis: UTC); the first file naming a symbol wins. Feed it to
    /// `[preprocessing] symbol_time_zones` for symbols the user did not set.
    pub zones: BTreeMap<String, String>,
    /// Files at the front of the list taken as one from the cache
    /// ([`describe_dataset_cached`]) and not in [`DatasetInfo::files`]; 0 from
    /// [`describe_dataset`].
    pub reused: usize,
}

impl DatasetInfo {
    /// The distinct dataset kinds of the files, in first-seen order.
    pub fn kinds(&self) -> Vec<DatasetKind> {
        let mut v: Vec<DatasetKind> = Vec::new();
        for k in self.files.iter().filter_map(|f| f.kind) {
            if !v.contains(&k) {
                v.push(k);
            }
        }
        v
    }
}

/// Sniffs every input (format, layout, header and a 256 KiB sample; Parquet and IPC: their
/// schema) on up to `opts.threads` threads and unifies their schemas. Files that cannot be
/// sniffed are listed in [`DatasetInfo::failed`]; the error is only for columns whose types
/// cannot be combined.
///
/// ```
/// use pipeline_io::{InputFile, ReadOptions, describe_dataset};
///
/// let dir = std::env::temp_dir().join("tickpipe_doc_describe_dataset");
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("t.csv"), "ts,symbol,price,size\n2021-01-04T14:30:00Z,AAPL,1.5,100\n")?;
/// std::fs::write(dir.join("q.csv"), "ts,symbol,bid,ask\n2021-01-04T14:30:00Z,EURUSD,1.1,1.2\n")?;
/// let files = [InputFile::new(dir.join("q.csv")), InputFile::new(dir.join("t.csv"))];
/// let info = describe_dataset(&files, &ReadOptions::default())?;
/// let names: Vec<&str> = info.schema.fields().iter().map(|f| f.name().as_str()).collect();
/// assert_eq!(names, ["ts", "symbol", "price", "size", "bid", "ask"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn describe_dataset(files: &[InputFile], opts: &ReadOptions) -> Result<DatasetInfo> {
    describe(files, opts, false)
}

/// [`describe_dataset`] for a run that may continue an earlier one: with a metadata cache
/// ([`ReadOptions::meta_cache`]) the description of the whole list is kept as one entry
/// (the unified schema and the zones, under a hash of every file's fingerprint in order),
/// and a later list that begins with the same files in the same state (an append: the
/// recorded inputs, then new ones) takes that entry for them and describes only the others.
/// [`DatasetInfo::files`] then lists only the others and [`DatasetInfo::reused`] counts the
/// files taken as one. The schema and zones are the ones [`describe_dataset`] gives: the
/// schemas are united in input order either way, and the kept schema is what uniting the
/// first files gives. Lists with a file that could not be described, and LOBSTER message
/// files (described from the order-book file beside them), are not kept.
///
/// On an append of one day to 1,257 recorded day files this replaces 1,257 cache reads (a
/// redb read, zstd and JSON per file) by one.
pub fn describe_dataset_cached(files: &[InputFile], opts: &ReadOptions) -> Result<DatasetInfo> {
    describe(files, opts, true)
}

/// Prefix of the whole-list entries of [`describe_dataset_cached`] (one per read options:
/// the last list described), with the entry format's version.
const LIST_KEY_PREFIX: &str = "pipeline-io/dataset-described/v1|";

/// A described list as kept: its length, the hash chained over its files' cache keys, and
/// what the list's files give together.
#[derive(serde::Serialize, serde::Deserialize)]
struct DescribedList {
    files: usize,
    chain: u64,
    schema: Schema,
    zones: BTreeMap<String, String>,
}

/// The hash chained over the cache keys of a list: `chain(prev, key)` after each file.
fn chain(prev: u64, key: &str) -> u64 {
    pipeline_core::stable_hash(format!("{prev:016x}|{key}").as_bytes())
}

/// Runs `f` on every index below `n` on up to `threads` threads; the results in order.
fn par_map<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Result<Vec<T>> {
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.min(n).max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = f(i);
                    if let Ok(mut v) = results.lock() {
                        v[i] = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .map_err(|_| Error::Internal("a sniffing thread panicked".into()))?
        .into_iter()
        .map(|r| r.ok_or_else(|| Error::Internal("a file was not sniffed".into())))
        .collect()
}

fn describe(files: &[InputFile], opts: &ReadOptions, reuse: bool) -> Result<DatasetInfo> {
    let opts = ReadOptions {
        target_schema: None,
        ..opts.clone()
    };
    let threads = opts.effective_threads();
    // The cache keys of the files and the chained hash after each (only with a cache and
    // files that are not streams: both are needed to keep or take a whole-list entry).
    let list = match &opts.meta_cache {
        Some(db) if reuse && !files.is_empty() && !files.iter().any(InputFile::is_stream) => {
            let keys = par_map(files.len(), threads, |i| {
                super::cache::fingerprint(&files[i])
            })?;
            keys.into_iter()
                .collect::<Option<Vec<String>>>()
                .map(|keys| {
                    let list_key = format!(
                        "{LIST_KEY_PREFIX}{:016x}",
                        super::cache::describe_options_hash(&opts)
                    );
                    let mut chains = Vec::with_capacity(keys.len());
                    let mut h = 0u64;
                    for k in &keys {
                        h = chain(h, k);
                        chains.push(h);
                    }
                    (db.clone(), list_key, keys, chains)
                })
        }
        _ => None,
    };
    let kept: Option<DescribedList> = list.as_ref().and_then(|(db, key, _, chains)| {
        let d: DescribedList = serde_json::from_slice(&db.get(key)?).ok()?;
        (d.files >= 1 && chains.get(d.files - 1) == Some(&d.chain)).then_some(d)
    });
    let reused = kept.as_ref().map_or(0, |d| d.files);
    let rest = &files[reused..];
    // Each new file's cache key, computed above with the list's, is not computed again.
    let key_of = |i: usize| {
        list.as_ref()
            .map(|(_, _, keys, _)| keys[reused + i].as_str())
    };
    let results = par_map(rest.len(), threads, |i| {
        describe_file(&rest[i], &opts, key_of(i))
    })?;
    let mut infos = Vec::new();
    let mut failed = Vec::new();
    for (f, r) in rest.iter().zip(results) {
        match r {
            Ok(Some(info)) => infos.push(info),
            Ok(None) => {}
            Err(e) => failed.push((f.display_name(), e)),
        }
    }
    let schema = unify_schemas(
        kept.iter()
            .map(|d| &d.schema)
            .chain(infos.iter().map(|i| i.schema.as_ref())),
    )?;
    let mut zones = kept.map(|d| d.zones).unwrap_or_default();
    for info in &infos {
        if let Some(z) = &info.zone {
            for s in &info.symbols {
                zones.entry(s.clone()).or_insert_with(|| z.clone());
            }
        }
    }
    if let Some((db, key, _, chains)) = list
        && failed.is_empty()
        && !infos
            .iter()
            .any(|i| i.layout == Some(VendorLayout::LobsterMessage))
        && let Some(&last) = chains.last()
        && reused < files.len()
    {
        let d = DescribedList {
            files: files.len(),
            chain: last,
            schema: schema.as_ref().clone(),
            zones: zones.clone(),
        };
        match serde_json::to_vec(&d) {
            Ok(bytes) => db.put(&key, &bytes),
            Err(e) => tracing::debug!("metadata cache: {e}"),
        }
    }
    Ok(DatasetInfo {
        schema,
        files: infos,
        failed,
        zones,
        reused,
    })
}

/// The unified schema of `files` ([`describe_dataset`]), failing on the first file that
/// cannot be sniffed: use it to refuse a run before any row is read.
pub fn dataset_schema(files: &[InputFile], opts: &ReadOptions) -> Result<SchemaRef> {
    let mut info = describe_dataset(files, opts)?;
    if !info.failed.is_empty() {
        let (file, e) = info.failed.swap_remove(0);
        return Err(match e {
            e @ (Error::Schema(_) | Error::Io { .. } | Error::Malformed { .. }) => e,
            other => Error::Schema(format!("{file}: {other}")),
        });
    }
    Ok(info.schema)
}

/// Sniffs one input; `None` for stdin and empty files. With a metadata cache
/// ([`ReadOptions::meta_cache`]) a file already described under the same read options is
/// answered from it (by fingerprint: size, mtime and the hashes of both ends), and a new
/// description is kept; LOBSTER message files are always sniffed (their schema depends on
/// the order-book file beside them).
fn describe_file(
    input: &InputFile,
    opts: &ReadOptions,
    key: Option<&str>,
) -> Result<Option<FileInfo>> {
    if input.is_stdin() {
        return Ok(None);
    }
    let cache = match &opts.meta_cache {
        Some(db) if !input.is_stream() => key
            .map(str::to_string)
            .or_else(|| super::cache::fingerprint(input))
            .map(|k| (db, k)),
        _ => None,
    };
    let Some((db, key)) = cache else {
        return sniff_file(input, opts);
    };
    let wanted = super::cache::describe_options_hash(opts);
    if let Some((_, c)) = super::cache::get(db, &key)
        .and_then(|m| m.described)
        .filter(|(h, _)| *h == wanted)
    {
        return Ok(Some(FileInfo {
            file: input.display_name(),
            layout: c.layout,
            kind: c.kind,
            schema: Arc::new(c.schema),
            symbols: c.symbols,
            zone: c.zone,
        }));
    }
    let info = sniff_file(input, opts)?;
    if let Some(i) = info
        .as_ref()
        .filter(|i| i.layout != Some(VendorLayout::LobsterMessage))
    {
        let c = super::cache::CachedInfo {
            layout: i.layout,
            kind: i.kind,
            schema: i.schema.as_ref().clone(),
            symbols: i.symbols.clone(),
            zone: i.zone.clone(),
        };
        super::cache::put(
            db,
            &key,
            super::cache::CachedMeta {
                described: Some((wanted, c)),
                ..Default::default()
            },
        );
    }
    Ok(info)
}

/// Sniffs one input file (not stdin).
fn sniff_file(input: &InputFile, opts: &ReadOptions) -> Result<Option<FileInfo>> {
    let file = input.display_name();
    let raw = open_raw(input)?;
    let Some(opened) = sniff_text(raw, input, opts, PlanUse::Keep)? else {
        let src = super::columnar::open_columnar(input, 0, opts)?;
        let schema = data_schema(&src.schema());
        let canon: Vec<Canonical> = schema
            .fields()
            .iter()
            .filter_map(|f| Canonical::from_name(f.name()))
            .collect();
        return Ok(Some(FileInfo {
            file,
            layout: None,
            kind: DatasetKind::detect(&canon),
            schema,
            symbols: Vec::new(),
            zone: None,
        }));
    };
    let Some(plan) = opened.sniffed.plan.clone() else {
        return Ok(None);
    };
    let schema = match plan.layout() {
        VendorLayout::LobsterOrderbook => {
            return Err(super::lobster::lone_orderbook_error(&input.path));
        }
        VendorLayout::LobsterMessage => {
            let levels = match super::lobster::lobster_role(&input.path) {
                Some((_, book)) if book.is_file() => {
                    let book = InputFile::new(book);
                    let book_opts = ReadOptions {
                        columns: None,
                        ..opts.clone()
                    };
                    sniff_text(open_raw(&book)?, &book, &book_opts, PlanUse::Own)?
                        .and_then(|o| o.sniffed.plan)
                        .map(|p| super::lobster::levels_of(&p.data_schema()))
                }
                _ => None,
            };
            super::lobster::joined_schema(&plan.data_schema(), levels, opts.columns.as_deref())
        }
        _ => plan.data_schema(),
    };
    Ok(Some(FileInfo {
        file,
        layout: Some(plan.layout()),
        kind: plan.dataset_kind(),
        schema,
        symbols: plan.symbols().to_vec(),
        zone: plan.layout().exchange_zone().map(String::from),
    }))
}

/// A schema without the `_line` column.
fn data_schema(s: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        s.fields()
            .iter()
            .filter(|f| f.name() != LINE_COLUMN)
            .cloned()
            .collect::<Vec<_>>(),
    ))
}

/// Unites schemas by column name with widened types (rules in the module docs); `_line`
/// columns are left out.
///
/// ```
/// use arrow_schema::{DataType, Field, Schema};
/// let a = Schema::new(vec![Field::new("ts", pipeline_core::ts_type(), true), Field::new("n", DataType::UInt64, true)]);
/// let b = Schema::new(vec![Field::new("n", DataType::Int64, true), Field::new("bid", DataType::Float64, true)]);
/// let u = pipeline_io::unify_schemas([&a, &b])?;
/// assert_eq!(u.field_with_name("n")?.data_type(), &DataType::Int64);
/// assert_eq!(u.fields().len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn unify_schemas<'a>(schemas: impl IntoIterator<Item = &'a Schema>) -> Result<SchemaRef> {
    let mut fields: Vec<(String, DataType)> = Vec::new();
    for s in schemas {
        for f in s.fields().iter().filter(|f| f.name() != LINE_COLUMN) {
            match fields.iter_mut().find(|(n, _)| n == f.name()) {
                Some((n, t)) => *t = unify_type(n, t, f.data_type())?,
                None => fields.push((f.name().clone(), f.data_type().clone())),
            }
        }
    }
    let rank = |n: &str| Canonical::from_name(n).map_or(Canonical::ALL.len(), |c| c as usize);
    fields.sort_by_key(|(n, _)| rank(n));
    Ok(Arc::new(Schema::new(
        fields
            .into_iter()
            .map(|(n, t)| Field::new(n, t, true))
            .collect::<Vec<_>>(),
    )))
}

fn is_int(t: &DataType) -> bool {
    t.is_integer()
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_dict_text(t: &DataType) -> bool {
    matches!(t, DataType::Dictionary(_, v) if is_text(v))
}

/// The type both `a` and `b` widen to (see the module docs).
fn unify_type(name: &str, a: &DataType, b: &DataType) -> Result<DataType> {
    use DataType::*;
    if a == b {
        return Ok(a.clone());
    }
    Ok(match (a, b) {
        (Null, x) | (x, Null) => x.clone(),
        (Timestamp(..), Timestamp(..)) => ts_type(),
        (x, y) if is_int(x) && is_int(y) => Int64,
        (x, y) if x.is_numeric() && y.is_numeric() => Float64,
        (x, y) if (is_dict_text(x) || is_text(x)) && (is_dict_text(y) || is_text(y)) => {
            if is_dict_text(x) || is_dict_text(y) {
                dict_type()
            } else {
                Utf8
            }
        }
        (x, y) if arrow_cast::can_cast_types(x, &Utf8) && arrow_cast::can_cast_types(y, &Utf8) => {
            Utf8
        }
        _ => {
            return Err(Error::Schema(format!(
                "column `{name}` is {a} in one input and {b} in another, and they have no common type"
            )));
        }
    })
}

/// Casts and pads `batch` to `target` (data columns): columns by name, cast where the type
/// differs, all-null where absent; a `_line` column is kept, last. A column of `batch` that
/// `target` lacks is an error.
pub fn conform_batch(batch: &RecordBatch, target: &Schema) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let schema = batch.schema();
    if let Some(extra) = schema
        .fields()
        .iter()
        .find(|f| f.name() != LINE_COLUMN && target.column_with_name(f.name()).is_none())
    {
        return Err(Error::Schema(format!(
            "column `{}` is not in the dataset schema",
            extra.name()
        )));
    }
    let opts = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let mut fields: Vec<Field> = Vec::with_capacity(target.fields().len() + 1);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(target.fields().len() + 1);
    for f in target.fields().iter().filter(|f| f.name() != LINE_COLUMN) {
        let a = match batch.column_by_name(f.name()) {
            Some(a) if a.data_type() == f.data_type() => a.clone(),
            Some(a) => cast_with_options(a, f.data_type(), &opts).map_err(|e| {
                Error::Schema(format!(
                    "column `{}`: cannot cast {} to the dataset's {}: {e}",
                    f.name(),
                    a.data_type(),
                    f.data_type()
                ))
            })?,
            None => new_null_array(f.data_type(), n),
        };
        fields.push(Field::new(f.name(), f.data_type().clone(), true));
        arrays.push(a);
    }
    if let Some(lines) = batch.column_by_name(LINE_COLUMN) {
        fields.push(Field::new(LINE_COLUMN, DataType::UInt64, false));
        arrays.push(lines.clone());
    }
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}

/// A source whose chunks are cast and padded to a dataset schema (see [`conform_batch`]).
pub(crate) struct ConformSource {
    inner: Box<dyn Source>,
    target: SchemaRef,
    name: String,
}

impl ConformSource {
    /// Wraps `inner` (of file `name`); fails before any row is read when the file has a
    /// column the dataset schema lacks.
    pub(crate) fn new(inner: Box<dyn Source>, target: &SchemaRef, name: String) -> Result<Self> {
        let have = inner.schema();
        if let Some(extra) = have
            .fields()
            .iter()
            .find(|f| f.name() != LINE_COLUMN && target.column_with_name(f.name()).is_none())
        {
            return Err(Error::Schema(format!(
                "{name}: column `{}` is not in the dataset schema computed before the run (was the file changed, or read from stdin?)",
                extra.name()
            )));
        }
        let mut fields: Vec<Field> = target
            .fields()
            .iter()
            .filter(|f| f.name() != LINE_COLUMN)
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        fields.push(Field::new(LINE_COLUMN, DataType::UInt64, false));
        Ok(ConformSource {
            inner,
            target: Arc::new(Schema::new(fields)),
            name,
        })
    }
}

impl Iterator for ConformSource {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        let chunk = match self.inner.next()? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        if chunk.schema().fields() == self.target.fields() {
            return Some(Ok(chunk));
        }
        Some(
            conform_batch(chunk.batch(), &self.target)
                .map_err(|e| match e {
                    Error::Schema(m) => Error::Schema(format!("{}: {m}", self.name)),
                    other => other,
                })
                .and_then(|b| Chunk::new(b, chunk.source(), chunk.seq())),
        )
    }
}

impl Source for ConformSource {
    fn schema(&self) -> SchemaRef {
        self.target.clone()
    }

    fn progress(&self) -> Progress {
        self.inner.progress()
    }

    fn drain_rejects(&mut self) -> Vec<Reject> {
        self.inner.drain_rejects()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray, UInt64Array};

    #[test]
    fn types_widen() {
        use DataType::*;
        let u = |a: DataType, b: DataType| unify_type("c", &a, &b).unwrap();
        assert_eq!(u(UInt64, Int64), Int64);
        assert_eq!(u(Int8, Int64), Int64);
        assert_eq!(u(Int64, Float64), Float64);
        assert_eq!(u(Null, Int8), Int8);
        assert_eq!(u(dict_type(), Utf8), dict_type());
        assert_eq!(u(Utf8, Int64), Utf8);
        assert_eq!(
            u(
                Timestamp(arrow_schema::TimeUnit::Microsecond, None),
                ts_type()
            ),
            ts_type()
        );
        assert!(
            unify_type(
                "c",
                &List(Arc::new(Field::new("x", Int8, true))),
                &Struct(Default::default())
            )
            .is_err()
        );
    }

    #[test]
    fn batches_are_padded_and_cast() {
        let target = Schema::new(vec![
            Field::new("symbol", dict_type(), true),
            Field::new("id", DataType::Utf8, true),
            Field::new("bid", DataType::Float64, true),
        ]);
        let b = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![7, 8])) as ArrayRef),
            (
                "symbol",
                Arc::new(StringArray::from(vec!["A", "B"])) as ArrayRef,
            ),
            (
                LINE_COLUMN,
                Arc::new(UInt64Array::from(vec![2, 3])) as ArrayRef,
            ),
        ])
        .unwrap();
        let c = conform_batch(&b, &target).unwrap();
        let schema = c.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["symbol", "id", "bid", LINE_COLUMN]);
        assert_eq!(c.column(0).data_type(), &dict_type());
        assert_eq!(c.column(2).null_count(), 2);
        let extra = Schema::new(vec![Field::new("id", DataType::Utf8, true)]);
        let e = conform_batch(&b, &extra).unwrap_err().to_string();
        assert!(e.contains("`symbol` is not in the dataset schema"), "{e}");
    }

    #[test]
    fn descriptions_are_cached_per_fingerprint_and_read_options() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "ts,symbol,price,size\n2021-01-04T14:30:00Z,AAPL,1.5,100\n",
        )
        .unwrap();
        let db = pipeline_core::MetaCache::memory();
        let opts = ReadOptions {
            meta_cache: Some(db.clone()),
            ..ReadOptions::default()
        };
        let files = [InputFile::new(p.clone())];
        let first = describe_dataset(&files, &opts).unwrap();
        let key = super::super::cache::fingerprint(&files[0]).unwrap();
        let (hash, mut stored) = super::super::cache::get(&db, &key)
            .and_then(|m| m.described)
            .expect("the description is kept");
        assert_eq!(&stored.schema, first.schema.as_ref());
        // A second describe answers from the cache: plant a marker column to see it.
        stored.schema = Schema::new(vec![Field::new("planted", DataType::Int64, true)]);
        super::super::cache::put(
            &db,
            &key,
            super::super::cache::CachedMeta {
                described: Some((hash, stored)),
                ..Default::default()
            },
        );
        let names = |i: &DatasetInfo| -> Vec<String> {
            i.schema.fields().iter().map(|f| f.name().clone()).collect()
        };
        assert_eq!(
            names(&describe_dataset(&files, &opts).unwrap()),
            ["planted"]
        );
        // Other read options sniff again.
        let mut other = opts.clone();
        other.input.delimiter = Some(",".into());
        assert_eq!(
            names(&describe_dataset(&files, &other).unwrap()),
            names(&first)
        );
        // So does a changed file.
        std::fs::write(
            &p,
            "ts,symbol,price,size,bid\n2021-01-04T14:30:00Z,AAPL,1.5,100,1\n",
        )
        .unwrap();
        assert!(names(&describe_dataset(&files, &opts).unwrap()).contains(&"bid".to_string()));
    }

    #[test]
    fn a_list_that_continues_a_described_one_describes_only_the_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            InputFile::new(p)
        };
        let a = write(
            "a.csv",
            "ts,symbol,price,size,venue\n2021-01-04T14:30:00Z,AAPL,1.5,100,X\n",
        );
        let b = write(
            "b.csv",
            "ts,symbol,bid,ask,n\n2021-01-05T14:30:00Z,AAPL,1,2,3\n",
        );
        let c = write(
            "c.csv",
            "ts,symbol,price,n,extra\n2021-01-06T14:30:00Z,AAPL,1.5,2.5,z\n",
        );
        let db = pipeline_core::MetaCache::memory();
        let opts = ReadOptions {
            meta_cache: Some(db.clone()),
            ..ReadOptions::default()
        };
        let first = describe_dataset_cached(&[a.clone(), b.clone()], &opts).unwrap();
        assert_eq!((first.reused, first.files.len()), (0, 2));
        // The recorded two, then a new one: the two are taken as one, and the result is
        // what describing all three gives (columns in the same order, `n` widened).
        let all = [a.clone(), b.clone(), c.clone()];
        let next = describe_dataset_cached(&all, &opts).unwrap();
        assert_eq!((next.reused, next.files.len()), (2, 1));
        let fresh = describe_dataset(&all, &ReadOptions::default()).unwrap();
        assert_eq!(next.schema, fresh.schema);
        assert_eq!(next.zones, fresh.zones);
        assert_eq!(
            next.schema.field_with_name("n").unwrap().data_type(),
            &DataType::Float64
        );
        // The same list again: all taken as one.
        assert_eq!(describe_dataset_cached(&all, &opts).unwrap().reused, 3);
        // A changed file in the middle: described again from the start.
        std::fs::write(
            &b.path,
            "ts,symbol,bid,ask,n,more\n2021-01-05T14:30:00Z,AAPL,1,2,3,4\n",
        )
        .unwrap();
        let changed = describe_dataset_cached(&all, &opts).unwrap();
        assert_eq!((changed.reused, changed.files.len()), (0, 3));
        assert!(changed.schema.field_with_name("more").is_ok());
        // A shorter list does not take a longer list's entry.
        let short = describe_dataset_cached(std::slice::from_ref(&a), &opts).unwrap();
        assert_eq!((short.reused, short.files.len()), (0, 1));
        // Without a cache nothing is taken.
        assert_eq!(
            describe_dataset_cached(&all, &ReadOptions::default())
                .unwrap()
                .reused,
            0
        );
    }
}
