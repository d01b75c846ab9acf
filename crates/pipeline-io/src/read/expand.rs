//! Input expansion: turns the user's input arguments (files, directories, glob patterns and
//! `-` for stdin) into a sorted list of [`InputFile`]s.

use std::path::{Path, PathBuf};

use pipeline_core::{Error, Result};

/// One input to read: a file path, or `-` for standard input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InputFile {
    /// The file, or `-` for stdin.
    pub path: PathBuf,
    /// The file size in bytes, when known (not for stdin).
    pub size: Option<u64>,
}

impl InputFile {
    /// An input for `path`, with its size read from the file system when it exists.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let size = if path.as_os_str() == "-" || is_stream(&path) {
            None
        } else {
            std::fs::metadata(&path).ok().map(|m| m.len())
        };
        InputFile { path, size }
    }

    /// True for inputs that can be read only once, front to back: stdin, FIFOs (named pipes,
    /// process substitutions such as `<(zcat x.gz)`) and character devices. They are never
    /// re-read: a retry would find them at their end.
    pub fn is_stream(&self) -> bool {
        self.is_stdin() || is_stream(&self.path)
    }

    /// Standard input.
    pub fn stdin() -> Self {
        InputFile {
            path: PathBuf::from("-"),
            size: None,
        }
    }

    /// True for standard input.
    pub fn is_stdin(&self) -> bool {
        self.path.as_os_str() == "-"
    }

    /// The name used in error messages and the source table.
    pub fn display_name(&self) -> String {
        self.path.display().to_string()
    }
}

/// Expands `inputs` into files, sorted by path (stdin, if given, stays where it was listed
/// relative to the others' sorted order: it sorts as `-`).
///
/// * a file is taken as is;
/// * a directory is walked recursively, taking files whose *name* matches `pattern`
///   (a glob such as `*.csv.gz`; `*` takes everything), skipping hidden files and
///   directories (names starting with `.`) and `*.tmp` files;
/// * anything else containing `*`, `?` or `[` is a glob pattern over paths;
/// * `-` is standard input.
///
/// Duplicates are removed. When nothing matches, the error is [`Error::Usage`]
/// ("no input files match ...").
pub fn expand_inputs(inputs: &[String], pattern: &str) -> Result<Vec<InputFile>> {
    let name_pattern = glob::Pattern::new(if pattern.is_empty() { "*" } else { pattern })
        .map_err(|e| Error::config("input.file_pattern", format!("`{pattern}`: {e}")))?;
    let mut out: Vec<InputFile> = Vec::new();
    for input in inputs {
        if input == "-" {
            out.push(InputFile::stdin());
            continue;
        }
        let path = Path::new(input);
        if path.is_dir() {
            walk(path, &name_pattern, &mut out)?;
        } else if path.is_file() || is_stream(path) {
            out.push(InputFile::new(path));
        } else if input.contains(['*', '?', '[']) {
            let paths = glob::glob(input)
                .map_err(|e| Error::Usage(format!("bad glob pattern `{input}`: {e}")))?;
            for p in paths {
                let p = p.map_err(|e| Error::io(e.path().to_path_buf(), e.into()))?;
                if p.is_file() && !is_skipped(&p) {
                    out.push(InputFile::new(p));
                } else if p.is_dir() {
                    walk(&p, &name_pattern, &mut out)?;
                }
            }
        } else {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            ));
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.path == b.path);
    if out.is_empty() {
        return Err(Error::Usage(format!(
            "no input files match {} (file pattern `{pattern}`)",
            inputs.join(" ")
        )));
    }
    Ok(out)
}

/// True for a FIFO or character device (what `<(cmd)` and `/dev/stdin` are).
fn is_stream(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(path).is_ok_and(|m| {
            let t = m.file_type();
            t.is_fifo() || t.is_char_device()
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Hidden files and temporary files are never inputs.
fn is_skipped(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with('.') || name.ends_with(".tmp")
}

fn walk(dir: &Path, pattern: &glob::Pattern, out: &mut Vec<InputFile>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let p = entry.path();
        if is_skipped(&p) {
            continue;
        }
        let ft = entry.file_type().map_err(|e| Error::io(&p, e))?;
        if ft.is_dir() {
            walk(&p, pattern, out)?;
        } else if p.is_file() {
            let name = entry.file_name();
            if pattern.matches(&name.to_string_lossy()) {
                out.push(InputFile::new(p));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_dirs_globs_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/.hidden")).unwrap();
        for f in [
            "b.csv",
            "a.csv",
            "sub/c.csv",
            "sub/x.txt",
            "sub/.h.csv",
            "sub/d.csv.tmp",
            "sub/.hidden/e.csv",
        ] {
            std::fs::write(d.join(f), "x\n").unwrap();
        }
        let got = expand_inputs(&[d.display().to_string()], "*.csv").unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|f| f.path.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.csv", "b.csv", "sub/c.csv"]);
        assert_eq!(got[0].size, Some(2));

        let g = expand_inputs(&[format!("{}/*.csv", d.display())], "*").unwrap();
        assert_eq!(g.len(), 2);
        let s = expand_inputs(&["-".into()], "*").unwrap();
        assert!(s[0].is_stdin() && s[0].size.is_none());

        let e = expand_inputs(&[d.display().to_string()], "*.parquet").unwrap_err();
        assert!(matches!(e, Error::Usage(_)));
        assert!(e.to_string().contains("no input files match"), "{e}");
        assert!(expand_inputs(&[d.join("nope.csv").display().to_string()], "*").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn fifos_are_inputs_without_a_size() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        let got = expand_inputs(&[fifo.display().to_string()], "*").unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].is_stream() && got[0].size.is_none());
        assert!(!InputFile::new(dir.path()).is_stream());
    }
}
