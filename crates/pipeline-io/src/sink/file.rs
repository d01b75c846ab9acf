//! The single-file sink behind `tickpipe convert --out FILE`: no partitioning, atomic.

use std::path::Path;

use pipeline_core::{Chunk, Error, OutputFormat, Result, Sink, SinkSummary};

use super::options::WriteOptions;
use super::writer::FileWriter;

/// The format a file name asks for: `.parquet`/`.pq`, `.arrow`/`.ipc`/`.feather`, `.csv`.
pub fn format_from_extension(path: &Path) -> Option<OutputFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "parquet" | "pq" => Some(OutputFormat::Parquet),
        "arrow" | "ipc" | "feather" => Some(OutputFormat::Ipc),
        "csv" => Some(OutputFormat::Csv),
        _ => None,
    }
}

struct FileSink {
    path: std::path::PathBuf,
    opts: WriteOptions,
    format: OutputFormat,
    writer: Option<FileWriter>,
    done: bool,
}

/// Creates a sink writing every row to one file at `path`. The format comes from the
/// extension when it names one, otherwise from `opts.format`. Rows are written in arrival
/// order, so no sort order is declared. The file appears under `path` only on
/// [`Sink::finish`]; a run that writes no rows still produces a file with the schema of
/// the first (empty) chunk if one was seen, and none otherwise.
pub fn create_file_sink(path: &Path, opts: &WriteOptions) -> Result<Box<dyn Sink>> {
    let format = format_from_extension(path).unwrap_or(opts.format);
    let mut opts = opts.clone();
    opts.format = format;
    opts.validate()?;
    Ok(Box::new(FileSink {
        path: path.to_path_buf(),
        opts,
        format,
        writer: None,
        done: false,
    }))
}

impl Sink for FileSink {
    fn write(&mut self, chunk: &Chunk) -> Result<()> {
        let batch = self.opts.output_batch(chunk)?;
        if self.writer.is_none() {
            self.writer = Some(FileWriter::create(
                &self.path,
                batch.schema(),
                &self.opts,
                self.format,
                &[],
                &[],
            )?);
        }
        let Some(w) = &mut self.writer else {
            return Err(Error::Internal("file writer missing".into()));
        };
        if w.schema().as_ref() != batch.schema().as_ref() {
            return Err(Error::Schema(format!(
                "{}: a chunk's columns differ from the first chunk's; one file holds one schema \
                 (first: {:?}, now: {:?})",
                self.path.display(),
                w.schema()
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>(),
                batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>(),
            )));
        }
        w.write(&batch)
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        self.done = true;
        let Some(w) = self.writer.take() else {
            return Ok(SinkSummary::default());
        };
        let (path, rows, bytes) = w.close()?.publish()?;
        Ok(SinkSummary {
            rows,
            bytes,
            files: vec![path],
        })
    }

    fn abort(&mut self) -> Result<()> {
        self.done = true;
        if let Some(w) = self.writer.take() {
            w.abort();
        }
        Ok(())
    }
}

impl Drop for FileSink {
    /// Removes the temporary file when neither `finish` nor `abort` ran.
    fn drop(&mut self) {
        if !self.done
            && let Some(w) = self.writer.take()
        {
            w.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_picks_the_format() {
        assert_eq!(
            format_from_extension(Path::new("a/b.PARQUET")),
            Some(OutputFormat::Parquet)
        );
        assert_eq!(
            format_from_extension(Path::new("x.feather")),
            Some(OutputFormat::Ipc)
        );
        assert_eq!(
            format_from_extension(Path::new("x.csv")),
            Some(OutputFormat::Csv)
        );
        assert_eq!(format_from_extension(Path::new("x.out")), None);
    }
}
