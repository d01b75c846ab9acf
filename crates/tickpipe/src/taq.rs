//! Trades and quotes as separate inputs: the engine reads one source, the as-of join
//! ([`pipeline_prep::TaqJoin`]) over the trades files and the quotes files, and everything
//! after it (cleaning, validation, features, sinks, quarantine) sees trade rows that carry
//! their quote and measure columns.
//!
//! * Files are read with the same readers as any run (every layout and compression); the
//!   trades files are described together (one schema), and so are the quotes files.
//! * `[taq] order = "time"`: one segment, all trades files then all quotes files in name
//!   order (so a day's post-market quotes that cross midnight are read before the next
//!   day's trades). `"symbol"`: trades and quotes files are paired by the date in their
//!   names, one segment per date, quote state carried from one to the next.
//! * The per-symbol-day measures go to `taq_daily.parquet` in the output folder (written
//!   under a temporary name and renamed when the join ends).
//! * The ledger covers quote rows too: each is read, and either folded into the trades
//!   (`quote_joined`), ignored as crossed on its own exchange (`quote_crossed_exchange`),
//!   or quarantined with its file and line.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use pipeline_core::{Config, Error, LINE_COLUMN, Ledger, Result, Source, SourceTable};
use pipeline_io::{InputFile, ReadOptions};
use pipeline_parallel::SourceSpec;
use pipeline_prep::{
    DailyWriter, OpenSource, StreamOrder, TaqJoin, TaqOptions, TaqSegment, TaqStats,
};

use crate::input::Inputs;

/// The per-symbol-day file in a dataset output folder.
pub const TAQ_DAILY_FILE: &str = "taq_daily.parquet";

/// A planned join: the quotes inputs, how they are read, and the join's settings.
#[derive(Clone)]
pub(crate) struct TaqPlan {
    quotes: Inputs,
    quote_read: ReadOptions,
    opts: TaqOptions,
    /// The join's figures, current while it runs.
    stats: Arc<Mutex<TaqStats>>,
    daily: Option<PathBuf>,
}

/// The join's settings from `[taq]`.
pub(crate) fn options(cfg: &Config) -> Result<TaqOptions> {
    let t = &cfg.taq;
    let dur = |key: &str, v: &str| {
        pipeline_prep::parse_duration(v)
            .map_err(|e| Error::config(format!("taq.{key}"), format!("`{v}`: {e}")))
    };
    let zero = |v: &str| {
        v.trim()
            .trim_start_matches('0')
            .chars()
            .all(|c| c.is_ascii_alphabetic())
    };
    let delay_ns = if zero(&t.delay) {
        0
    } else {
        dur("delay", &t.delay)?
    };
    let tolerance_ns = match t.tolerance.trim() {
        "" => None,
        v => Some(dur("tolerance", v)?),
    };
    let mut horizons = Vec::new();
    for h in &t.horizons {
        let ns = dur("horizons", h)?;
        let label: String = h
            .trim()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if horizons.iter().any(|(l, _): &(String, i64)| *l == label) {
            return Err(Error::config(
                "taq.horizons",
                format!("`{h}` is given twice"),
            ));
        }
        horizons.push((label, ns));
    }
    let order = match t.order.as_str() {
        "symbol" => StreamOrder::Symbol,
        _ => StreamOrder::Time,
    };
    let day_zone = t.day_timezone.parse().map_err(|_| {
        Error::config(
            "taq.day_timezone",
            format!("`{}` is not an IANA time zone", t.day_timezone),
        )
    })?;
    Ok(TaqOptions {
        delay_ns,
        tolerance_ns,
        horizons,
        order,
        day_zone,
    })
}

/// Plans the join: expands and describes the quotes with the run's reading options (less
/// the trades' dataset schema); `out` is the dataset folder, if any.
pub(crate) fn plan(
    quotes: &[String],
    cfg: &Config,
    read: &ReadOptions,
    out: Option<&Path>,
) -> Result<TaqPlan> {
    let opts = options(cfg)?;
    let inputs = Inputs::expand(quotes, cfg)?;
    if inputs.files.is_empty() {
        return Err(Error::Usage("--quotes: no quotes file found".into()));
    }
    if inputs.files.iter().any(InputFile::is_stream) {
        return Err(Error::Usage(
            "--quotes: quotes must be files (stdin cannot be joined)".into(),
        ));
    }
    let mut quote_read = read.clone();
    quote_read.target_schema = None;
    let mut qcfg = cfg.clone();
    crate::input::describe(&inputs, &mut quote_read, &mut qcfg)?;
    Ok(TaqPlan {
        quotes: inputs,
        quote_read,
        opts,
        stats: Arc::new(Mutex::new(TaqStats::default())),
        daily: out.map(|d| d.join(TAQ_DAILY_FILE)),
    })
}

fn opener(input: &InputFile, id: u32, read: &ReadOptions) -> OpenSource {
    let (input, read) = (input.clone(), read.clone());
    Arc::new(move || pipeline_io::open_source(&input, id, &read))
}

fn file_date(f: &InputFile) -> Result<i64> {
    let name = f
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    pipeline_io::date_from_file_name(&name).ok_or_else(|| {
        Error::Usage(format!(
            "{}: [taq] order = \"symbol\" pairs trades and quotes files by the date in their \
             names, and this name has none",
            f.display_name()
        ))
    })
}

impl TaqPlan {
    /// The engine's one source: registers every trades and quotes file in `table` (trades
    /// first, so the quarantine names each row's own file).
    pub(crate) fn source_spec(
        &self,
        trades: &Inputs,
        read: &ReadOptions,
        table: &mut SourceTable,
    ) -> Result<SourceSpec> {
        if trades.files.iter().any(InputFile::is_stream) {
            return Err(Error::Usage(
                "--trades: trades must be files (stdin cannot be joined)".into(),
            ));
        }
        let schema = read
            .target_schema
            .clone()
            .ok_or_else(|| Error::Usage("--trades: no trades file could be read".into()))?;
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(
            LINE_COLUMN,
            arrow_schema::DataType::UInt64,
            false,
        ));
        let trades_schema: SchemaRef = Arc::new(Schema::new(fields));
        // Fails here, before any row is read, when the trades already carry quote columns.
        TaqJoin::output_schema(&trades_schema, &self.opts.horizons)?;
        let t: Vec<(i64, OpenSource)> = trades
            .files
            .iter()
            .map(|f| {
                let id = table.add(f.display_name());
                Ok((self.date_key(f)?, opener(f, id, read)))
            })
            .collect::<Result<_>>()?;
        let q: Vec<(i64, OpenSource)> = self
            .quotes
            .files
            .iter()
            .map(|f| {
                let id = table.add(f.display_name());
                Ok((self.date_key(f)?, opener(f, id, &self.quote_read)))
            })
            .collect::<Result<_>>()?;
        let mut by_date: BTreeMap<i64, TaqSegment> = BTreeMap::new();
        for (d, o) in t {
            by_date.entry(d).or_default().trades.push(o);
        }
        for (d, o) in q {
            by_date.entry(d).or_default().quotes.push(o);
        }
        let segments: Vec<TaqSegment> = by_date.into_values().collect();
        let size: u64 = trades
            .files
            .iter()
            .chain(&self.quotes.files)
            .map(|f| f.size.unwrap_or(0))
            .sum();
        let (opts, stats, daily) = (self.opts.clone(), self.stats.clone(), self.daily.clone());
        let name = format!(
            "{} + {} quotes files",
            trades
                .files
                .first()
                .map(|f| f.display_name())
                .unwrap_or_default(),
            self.quotes.files.len()
        );
        Ok(SourceSpec {
            name,
            size_bytes: size,
            open: Arc::new(move || {
                let writer =
                    match &daily {
                        Some(p) => Some(Box::new(DailyParquet::create(p, &opts.horizons)?)
                            as Box<dyn DailyWriter>),
                        None => None,
                    };
                let join = TaqJoin::new(
                    &trades_schema,
                    segments.clone(),
                    opts.clone(),
                    writer,
                    stats.clone(),
                    size,
                )?;
                Ok(Box::new(join) as Box<dyn Source>)
            }),
        })
    }

    /// One segment for time order; the file's date for symbol order.
    fn date_key(&self, f: &InputFile) -> Result<i64> {
        match self.opts.order {
            StreamOrder::Time => Ok(0),
            StreamOrder::Symbol => file_date(f),
        }
    }

    /// The quotes files, in order.
    pub(crate) fn quote_files(&self) -> &[InputFile] {
        &self.quotes.files
    }

    /// The join's figures.
    pub(crate) fn stats(&self) -> TaqStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Adds the quote rows the join consumed to the engine's ledger (which saw the trade
    /// rows and every quarantined row): read, and removed as `quote_joined` or
    /// `quote_crossed_exchange`.
    pub(crate) fn extend_ledger(&self, ledger: &mut Ledger) {
        let s = self.stats();
        ledger.add_read(s.quotes_applied + s.quotes_crossed_exchange);
        ledger.add_removed("quote_joined", s.quotes_applied);
        ledger.add_removed("quote_crossed_exchange", s.quotes_crossed_exchange);
    }
}

/// Writes the per-symbol-day rows to a Parquet file, renamed into place at the end.
struct DailyParquet {
    tmp: PathBuf,
    path: PathBuf,
    writer: Option<ArrowWriter<File>>,
}

impl DailyParquet {
    fn create(path: &Path, horizons: &[(String, i64)]) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = path.with_extension("parquet.tmp");
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let writer = ArrowWriter::try_new(file, TaqJoin::daily_schema(horizons), None)
            .map_err(|e| Error::Internal(format!("{}: {e}", tmp.display())))?;
        Ok(DailyParquet {
            tmp,
            path: path.to_path_buf(),
            writer: Some(writer),
        })
    }
}

impl DailyWriter for DailyParquet {
    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if let Some(w) = self.writer.as_mut() {
            w.write(&batch)
                .map_err(|e| Error::Internal(format!("{}: {e}", self.tmp.display())))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.close()
                .map_err(|e| Error::Internal(format!("{}: {e}", self.tmp.display())))?;
            std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

impl Drop for DailyParquet {
    fn drop(&mut self) {
        if self.writer.is_some() {
            // The join did not finish (an error, a retry): leave no partial file.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
