//! Input expansion: turns the user's input arguments (files, directories, glob patterns and
//! `-` for stdin) into a sorted list of [`InputFile`]s, taking only data files from folders
//! and reading each LOBSTER order-book file together with its message file.

use std::io::Read;
use std::path::{Path, PathBuf};

use pipeline_core::{Error, Result};

use super::lobster::{LobsterRole, lobster_role};
use super::sniff::{FileFormat, InputCompression};

/// One input to read: a file path, or `-` for standard input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InputFile {
    /// The file, or `-` for stdin.
    pub path: PathBuf,
    /// The file size in bytes, when known (not for stdin).
    pub size: Option<u64>,
    /// Stdin, a FIFO or a character device ([`InputFile::is_stream`]), from the one `stat`
    /// made when the input was listed (a run asks once per input per step; on 1,258 inputs
    /// that was 2,500 `stat` calls).
    stream: bool,
    /// The `stat` of that listing, for a regular file: its fingerprint is taken under it
    /// ([`Fingerprint::of_input`](super::Fingerprint::of_input)), so a file changed after
    /// it was listed is seen as changed by the next run.
    stamp: Option<super::StatStamp>,
}

impl InputFile {
    /// An input for `path`, with its size read from the file system when it exists.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        if path.as_os_str() == "-" {
            return InputFile::stdin();
        }
        let meta = std::fs::metadata(&path).ok();
        Self::with_metadata(path, meta.as_ref())
    }

    /// An input for `path` whose `stat` (following links) is `meta`.
    fn with_metadata(path: PathBuf, meta: Option<&std::fs::Metadata>) -> Self {
        let stream = meta.is_some_and(is_stream);
        InputFile {
            size: meta.filter(|_| !stream).map(|m| m.len()),
            stamp: meta
                .filter(|m| m.file_type().is_file())
                .map(super::StatStamp::of),
            path,
            stream,
        }
    }

    /// The file's `stat` when it was listed (regular files only).
    pub fn stamp(&self) -> Option<&super::StatStamp> {
        self.stamp.as_ref()
    }

    /// True for inputs that can be read only once, front to back: stdin, FIFOs (named pipes,
    /// process substitutions such as `<(zcat x.gz)`) and character devices. They are never
    /// re-read: a retry would find them at their end.
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// Standard input.
    pub fn stdin() -> Self {
        InputFile {
            path: PathBuf::from("-"),
            size: None,
            stream: true,
            stamp: None,
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
/// * a directory is walked recursively, taking the data files (see [`is_data_file`]) whose
///   *name* matches `pattern` (a glob such as `*.csv.gz`; `*` takes every data file),
///   skipping hidden files and directories (names starting with `.`) and `*.tmp` files;
///   other files (`README.md`, gen-data's `anomalies.jsonl`, LOBSTER's `ReadMe.txt`) are
///   skipped with an info line, never failed;
/// * anything else containing `*`, `?` or `[` is a glob pattern over paths, whose matches
///   are filtered like a directory's files;
/// * `-` is standard input.
///
/// A LOBSTER order-book file (`<SYM>_<date>_<start>_<end>_orderbook_<N>.csv`) whose message
/// file is in the list too is dropped from it: the message file's source reads both and joins
/// them row by row (row k of the order book is the book after message k).
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
        } else if path.is_file() || std::fs::metadata(path).is_ok_and(|m| is_stream(&m)) {
            out.push(InputFile::new(path));
        } else if input.contains(['*', '?', '[']) {
            let paths = glob::glob(input)
                .map_err(|e| Error::Usage(format!("bad glob pattern `{input}`: {e}")))?;
            for p in paths {
                let p = p.map_err(|e| Error::io(e.path().to_path_buf(), e.into()))?;
                if p.is_file() && !is_skipped(&p) {
                    if is_data_file(&p) {
                        out.push(InputFile::new(p));
                    }
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
    pair_lobster_files(&mut out);
    if out.is_empty() {
        return Err(Error::Usage(format!(
            "no input files match {} (file pattern `{pattern}`)",
            inputs.join(" ")
        )));
    }
    Ok(out)
}

/// True for a FIFO or character device (what `<(cmd)` and `/dev/stdin` are).
fn is_stream(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        t.is_fifo() || t.is_char_device()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
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
    // A regular file's canonical path is its directory's and its name: resolved once here
    // instead of once per file (a `realpath` walk each) when the run names its inputs.
    let canon_dir = super::canonical::canonical_path(dir).ok();
    // In name order, so the caller's sort of the whole list finds it sorted (comparing
    // paths component by component is the slow part of sorting 1,000s of inputs).
    let mut entries = entries
        .map(|e| e.map_err(|e| Error::io(dir, e)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort_by_cached_key(|e| e.file_name());
    // The folder's regular data files, `stat`ed together below, and where each goes.
    let mut files: Vec<(usize, PathBuf, std::fs::DirEntry)> = Vec::new();
    let mut found: Vec<Option<InputFile>> = Vec::new();
    for entry in entries {
        let p = entry.path();
        if is_skipped(&p) {
            continue;
        }
        let ft = entry.file_type().map_err(|e| Error::io(&p, e))?;
        if ft.is_dir() {
            let mut sub = Vec::new();
            walk(&p, pattern, &mut sub)?;
            found.extend(sub.into_iter().map(Some));
        } else if ft.is_file() || (ft.is_symlink() && p.is_file()) {
            let name = entry.file_name();
            if pattern.matches(&name.to_string_lossy()) && is_data_file(&p) {
                if ft.is_file() {
                    if let Some(d) = &canon_dir {
                        super::canonical::remember(p.clone(), d.join(&name));
                    }
                    files.push((found.len(), p, entry));
                    found.push(None);
                } else {
                    found.push(Some(InputFile::new(p)));
                }
            }
        }
    }
    for (at, file) in stat_all(files)? {
        found[at] = Some(file);
    }
    out.extend(found.into_iter().flatten());
    Ok(())
}

/// Folders with at least this many data files have them `stat`ed on several threads.
const PARALLEL_STAT: usize = 256;

/// Each file with its `stat` (relative to its open folder: no path walk per file), on up
/// to four threads for a large folder: a `stat` costs 4–6 µs on an overlay filesystem, and
/// listing a folder of 1,258 day files was the longest step before an append's first read
/// (8 ms of its main thread).
fn stat_all(files: Vec<(usize, PathBuf, std::fs::DirEntry)>) -> Result<Vec<(usize, InputFile)>> {
    let stat = |part: &[(usize, PathBuf, std::fs::DirEntry)]| -> Vec<_> {
        part.iter().map(|(_, _, e)| e.metadata().ok()).collect()
    };
    let threads = pipeline_core::cores().min(4);
    let metas: Vec<Option<std::fs::Metadata>> = if files.len() < PARALLEL_STAT || threads < 2 {
        stat(&files)
    } else {
        std::thread::scope(|scope| {
            let parts: Vec<_> = files
                .chunks(files.len().div_ceil(threads))
                .map(|part| scope.spawn(move || stat(part)))
                .collect();
            parts
                .into_iter()
                .map(|h| h.join())
                .collect::<std::thread::Result<Vec<_>>>()
                .map(|v| v.concat())
                .map_err(|_| Error::Internal("listing the inputs panicked".into()))
        })?
    };
    Ok(files
        .into_iter()
        .zip(metas)
        .map(|((at, p, _), meta)| (at, InputFile::with_metadata(p, meta.as_ref())))
        .collect())
}

/// Extensions of files that are data by their name: delimited text, compressed text (whose
/// inner name is checked too), Parquet and Arrow IPC.
const DATA_EXTENSIONS: [&str; 15] = [
    "csv", "tsv", "psv", "gz", "gzip", "bz2", "xz", "lzma", "zst", "zstd", "parquet", "pq",
    "arrow", "ipc", "feather",
];

/// Extensions whose files are data only if their content says so: `.txt` and `.dat` hold
/// vendor ticks as often as documentation (LOBSTER ships a `ReadMe.txt` beside its CSVs).
const SNIFFED_EXTENSIONS: [&str; 4] = ["txt", "dat", "asc", "prn"];

/// Extensions that are never tick data, also inside a compressed name (`x.jsonl.gz`).
const NON_DATA_EXTENSIONS: [&str; 18] = [
    "json", "jsonl", "ndjson", "md", "markdown", "rst", "html", "htm", "xml", "yaml", "yml",
    "toml", "pdf", "log", "py", "sh", "tar", "zip",
];

/// Whether a file found in a folder or by a glob is an input: a data extension, or a
/// `.txt`/`.dat`/extension-less file whose first 8 KiB are compressed, Parquet or Arrow, or
/// delimited records (see `looks_delimited`). Other files are skipped with an info line.
pub fn is_data_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mut parts = name.rsplitn(3, '.');
    let ext = parts.next().filter(|_| name.contains('.')).unwrap_or("");
    let inner = parts.next().filter(|_| name.matches('.').count() >= 2);
    let verdict = if DATA_EXTENSIONS.contains(&ext) {
        !inner.is_some_and(|i| NON_DATA_EXTENSIONS.contains(&i))
    } else if ext.is_empty() || SNIFFED_EXTENSIONS.contains(&ext) {
        sniff_is_data(path)
    } else {
        false
    };
    if !verdict {
        tracing::info!(
            "skipping {}: not a data file (name or content); name it on the command line to read it",
            path.display()
        );
    }
    verdict
}

/// Reads the head of `path` and decides whether it holds data (see [`is_data_file`]).
fn sniff_is_data(path: &Path) -> bool {
    let mut head = Vec::with_capacity(8192);
    let read = std::fs::File::open(path).and_then(|f| f.take(8192).read_to_end(&mut head));
    if read.is_err() {
        // Unreadable: let the reader report the error on the file itself.
        return true;
    }
    FileFormat::detect(&head) != FileFormat::Csv
        || InputCompression::detect(&head) != InputCompression::None
        || looks_delimited(&head)
}

/// True when the text looks like delimited records: of its first 20 non-blank lines (the
/// last one dropped when the sample cut it), every line after the first splits into the same
/// number (≥ 2) of fields on one of `,` `;` tab `|`, the first line (a header or a record)
/// too, and at least half of the records after the first have a field that starts like a
/// number. Prose fails the count (commas come and go); a one-column list fails the width.
pub(crate) fn looks_delimited(text: &[u8]) -> bool {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let mut lines: Vec<&[u8]> = text
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .take(21)
        .collect();
    if text.len() >= 8192 && lines.len() > 1 {
        lines.pop();
    }
    lines.truncate(20);
    if lines.is_empty() {
        return false;
    }
    [b',', b';', b'\t', b'|'].into_iter().any(|d| {
        let width = |l: &[u8]| l.iter().filter(|&&c| c == d).count() + 1;
        let w = width(lines[0]);
        let numeric = |l: &[u8]| {
            l.split(|&c| c == d).any(|f| {
                let f = f.trim_ascii().strip_prefix(b"\"").unwrap_or(f.trim_ascii());
                let f = f.strip_prefix(b"-").unwrap_or(f);
                f.first().is_some_and(u8::is_ascii_digit)
            })
        };
        let rest = &lines[1..];
        w >= 2
            && lines.iter().all(|l| width(l) == w)
            && (rest.is_empty() && numeric(lines[0])
                || rest.iter().filter(|l| numeric(l)).count() * 2 >= rest.len().max(1))
    })
}

/// Drops each LOBSTER order-book file whose message file is also listed (see
/// [`expand_inputs`]); an order-book file without its message file stays, and fails when
/// opened with a message that names the missing file.
fn pair_lobster_files(files: &mut Vec<InputFile>) {
    let messages: std::collections::HashSet<PathBuf> = files
        .iter()
        .filter(|f| matches!(lobster_role(&f.path), Some((LobsterRole::Message, _))))
        .map(|f| f.path.clone())
        .collect();
    files.retain(|f| match lobster_role(&f.path) {
        Some((LobsterRole::Orderbook, message)) if messages.contains(&message) => {
            tracing::info!(
                "{} is read with its message file {} (joined row by row)",
                f.display_name(),
                message.display()
            );
            false
        }
        _ => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder large enough to be `stat`ed on several threads lists every file once, in
    /// name order, each with its own size.
    #[test]
    fn a_large_folder_lists_every_file_in_order_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let n = PARALLEL_STAT + 45;
        for i in 0..n {
            std::fs::write(dir.path().join(format!("d{i:04}.csv")), "x\n".repeat(i + 1)).unwrap();
        }
        let files = expand_inputs(&[dir.path().display().to_string()], "*").unwrap();
        assert_eq!(files.len(), n);
        for (i, f) in files.iter().enumerate() {
            assert!(
                f.path.ends_with(format!("d{i:04}.csv")),
                "{}",
                f.path.display()
            );
            assert_eq!(f.size, Some(2 * (i as u64 + 1)));
        }
    }

    #[test]
    fn folders_yield_data_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let prose = "LOBSTER | academic data.\n\nOutput Structure:\n---------------\nLOBSTER generates a 'message' and an 'orderbook' file, for each active\ntrading day of a selected ticker.\n";
        let files: [(&str, &[u8]); 11] = [
            ("taq.csv", b"ts,price\n2021-01-04T14:30:00Z,1.5\n"),
            ("README.md", b"# data\n\nts,price\n1,2\n"),
            ("anomalies.jsonl", b"{\"file\":\"taq.csv\",\"line\":2}\n"),
            ("notes.txt", prose.as_bytes()),
            ("ticks.txt", b"20200101 170000065,1.121200,1.121720,0\n20200101 170000177,1.121220,1.121720,0\n"),
            ("ticks", b"34200.004241176,1,16113575,18,5853300,1\n34200.00426064,1,16120456,18,5859100,-1\n"),
            ("blob.bin", b"\x00\x01\x02"),
            ("day.csv.gz", &[0x1f, 0x8b, 8, 0]),
            ("log.jsonl.gz", &[0x1f, 0x8b, 8, 0]),
            ("x.parquet", b"PAR1...."),
            ("list.txt", b"AAPL\nMSFT\nGOOG\n"),
        ];
        for (f, body) in files {
            std::fs::write(d.join(f), body).unwrap();
        }
        let got = expand_inputs(&[d.display().to_string()], "*").unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["day.csv.gz", "taq.csv", "ticks", "ticks.txt", "x.parquet"]
        );
        // A glob over paths is filtered the same way; a file named on its own is read.
        let g = expand_inputs(&[format!("{}/*", d.display())], "*").unwrap();
        assert_eq!(g.len(), 5);
        let one = expand_inputs(&[d.join("README.md").display().to_string()], "*").unwrap();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn lobster_order_books_go_with_their_message_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let row = b"34200.004241176,1,16113575,18,5853300,1\n";
        let book = b"5859400,200,5853300,18\n";
        for (f, body) in [
            ("AAPL_2012-06-21_34200000_57600000_message_1.csv", &row[..]),
            (
                "AAPL_2012-06-21_34200000_57600000_orderbook_1.csv",
                &book[..],
            ),
            (
                "MSFT_2012-06-21_34200000_57600000_orderbook_1.csv",
                &book[..],
            ),
        ] {
            std::fs::write(d.join(f), body).unwrap();
        }
        let got = expand_inputs(&[d.display().to_string()], "*").unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // The lone MSFT book stays, to fail with a message naming its missing message file.
        assert_eq!(
            names,
            [
                "AAPL_2012-06-21_34200000_57600000_message_1.csv",
                "MSFT_2012-06-21_34200000_57600000_orderbook_1.csv"
            ]
        );
    }

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
