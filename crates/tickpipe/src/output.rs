//! Output policy: where a run's rows and rejected rows go, how files are named, and what a
//! fresh run clears.

use std::path::{Path, PathBuf};

use pipeline_core::{Chunk, Error, Result, Sink, SinkSummary};

/// Name of the dataset directory inside a dataset output folder.
pub const DATA_DIR: &str = "data";
/// The run manifest (resume) inside a dataset output folder.
pub const MANIFEST: &str = "_manifest.redb";
/// The quarantine file of a dataset output folder.
pub const QUARANTINE: &str = "quarantine.parquet";

/// Where a run's rows go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A Hive-partitioned dataset under `<dir>/data`, the quarantine and the run manifest
    /// beside it (`tickpipe run --out DIR`).
    Dataset(PathBuf),
    /// One file, format from the extension (`convert --out x.parquet`); quarantine beside it
    /// as `x.quarantine.parquet`. One file means one writer: the run uses one worker.
    File(PathBuf),
    /// Count rows and drop them (benchmarks; `--discard`). Rejected rows are counted only.
    Discard,
}

impl Output {
    /// A dataset folder.
    pub fn dataset(dir: impl Into<PathBuf>) -> Self {
        Output::Dataset(dir.into())
    }

    /// One output file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Output::File(path.into())
    }

    /// No output.
    pub fn discard() -> Self {
        Output::Discard
    }

    /// `dir` as a file when its extension names a format (`.parquet`, `.arrow`, `.ipc`,
    /// `.csv`), else as a dataset folder: what `tickpipe convert --out` means.
    pub fn file_or_dataset(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        if pipeline_io::format_from_extension(&path).is_some() {
            Output::File(path)
        } else {
            Output::Dataset(path)
        }
    }

    /// The dataset directory (`<dir>/data`) of a dataset output.
    pub fn data_dir(&self) -> Option<PathBuf> {
        match self {
            Output::Dataset(dir) => Some(dir.join(DATA_DIR)),
            _ => None,
        }
    }

    /// The (first) quarantine file this output writes rejected rows to (`None` for
    /// `Discard`); a run of several segments writes one per segment beside it.
    pub(crate) fn quarantine_path(&self) -> Option<PathBuf> {
        match self {
            Output::Dataset(dir) => Some(dir.join(QUARANTINE)),
            Output::File(path) => Some(sibling(path, QUARANTINE)),
            Output::Discard => None,
        }
    }

    /// Where `--sort` spills: inside the output folder (on the disk the user chose for the
    /// output, rather than a possibly small `/tmp`), or the system temp directory when the
    /// output is discarded.
    pub(crate) fn spill_dir(&self) -> PathBuf {
        match self {
            Output::Dataset(dir) => dir.clone(),
            Output::File(path) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            Output::Discard => std::env::temp_dir(),
        }
    }
}

/// Removes a previous run's outputs from a dataset folder (only tickpipe's own entries).
pub(crate) fn clear_previous(out: &Path) -> Result<()> {
    let data = out.join(DATA_DIR);
    if data.exists() {
        std::fs::remove_dir_all(&data).map_err(|e| Error::io(&data, e))?;
    }
    for name in [MANIFEST, QUARANTINE] {
        let p = out.join(name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    if let Ok(entries) = std::fs::read_dir(out) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            let n = n.trim_start_matches('.').trim_end_matches(".tmp");
            if n.starts_with("quarantine") && n.ends_with(".parquet") {
                let p = e.path();
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
    }
    Ok(())
}

/// `dir/stem.name` for `dir/stem.ext`.
pub(crate) fn sibling(path: &Path, name: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.{name}"))
}

/// Writes `text` to `path` through a temporary file and a rename.
/// Removes the file `p`; one that is already gone is fine.
pub(crate) fn remove_if_exists(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}

pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let tmp = pipeline_io::temp_path(path);
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A sink that counts rows and drops them (benchmarks: measure everything but the write).
#[derive(Debug, Default)]
pub struct NullSink {
    rows: u64,
}

impl Sink for NullSink {
    fn write(&mut self, chunk: &Chunk) -> Result<()> {
        self.rows += chunk.num_rows() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkSummary> {
        Ok(SinkSummary {
            rows: self.rows,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_each_output_kind() {
        let d = Output::dataset("out/run");
        assert_eq!(d.data_dir(), Some(PathBuf::from("out/run/data")));
        assert_eq!(
            d.quarantine_path(),
            Some(PathBuf::from("out/run/quarantine.parquet"))
        );
        let f = Output::file_or_dataset("out/x.parquet");
        assert_eq!(f, Output::File("out/x.parquet".into()));
        assert_eq!(
            f.quarantine_path(),
            Some(PathBuf::from("out/x.quarantine.parquet"))
        );
        assert_eq!(f.spill_dir(), PathBuf::from("out"));
        assert_eq!(
            Output::file_or_dataset("out/dir"),
            Output::Dataset("out/dir".into())
        );
        assert_eq!(Output::discard().quarantine_path(), None);
    }

    #[test]
    fn clearing_removes_only_tickpipes_entries() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("data/symbol=A")).unwrap();
        for f in [
            "quarantine.parquet",
            "quarantine-00001.parquet",
            ".quarantine-00002.parquet.tmp",
            "notes.txt",
        ] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        clear_previous(d).unwrap();
        let left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(left, vec!["notes.txt".to_string()]);
    }
}
