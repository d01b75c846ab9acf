//! [`read_dataset`]: reads back what the sinks wrote, for tests and for users comparing
//! outputs.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::reader::FileReader;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pipeline_core::{Error, Result};

use super::writer::parquet_error;

/// Every Parquet (`.parquet`) and Arrow IPC (`.arrow`) file under `dir` (or `dir` itself
/// when it is a file), read in sorted path order. Hidden and `_`-prefixed names (temporary
/// files, metadata) are skipped, as dataset readers do. Partition values are not added as
/// columns: they are already in the files.
pub fn read_dataset(dir: &Path) -> Result<Vec<RecordBatch>> {
    let mut files = Vec::new();
    if dir.is_file() {
        files.push(dir.to_path_buf());
    } else {
        collect(dir, &mut files)?;
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        read_file(&f, &mut out)?;
    }
    Ok(out)
}

/// The data files under `dir`, recursively, sorted.
pub fn dataset_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            collect(&path, files)?;
        } else if name.ends_with(".parquet") || name.ends_with(".arrow") {
            files.push(path);
        }
    }
    Ok(())
}

fn read_file(path: &Path, out: &mut Vec<RecordBatch>) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_some_and(|e| e == "parquet") {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| parquet_error(path, e))?
            .build()
            .map_err(|e| parquet_error(path, e))?;
        for b in reader {
            out.push(b?);
        }
    } else {
        for b in FileReader::try_new(file, None)? {
            out.push(b?);
        }
    }
    Ok(())
}
