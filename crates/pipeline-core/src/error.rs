//! The one error type every tickpipe crate returns.

use std::path::PathBuf;

use arrow_schema::ArrowError;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a pipeline run.
///
/// Data errors ([`Error::Parse`], [`Error::Corrupt`]) carry enough context to find the
/// offending bytes: the file, the 1-based line and the column. Environment errors
/// ([`Error::Io`]), user errors ([`Error::Config`], [`Error::Usage`]) and bugs
/// ([`Error::Internal`]) are kept apart so callers can pick exit codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a path failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A field could not be parsed as the type its column needs.
    #[error("{file}:{line}: column `{column}`: expected {expected}, found {found:?}")]
    Parse {
        /// The input file (or `-` for stdin).
        file: String,
        /// 1-based line number of the row's first line.
        line: u64,
        /// The column name (or 1-based index when the file has no header).
        column: String,
        /// What the parser wanted, e.g. "a decimal number".
        expected: String,
        /// The text it got (truncated to 80 bytes).
        found: String,
    },
    /// A row is structurally malformed (wrong field count, bad encoding, unterminated quote).
    #[error("{file}:{line}: {message}")]
    Malformed {
        /// The input file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A compressed stream is truncated or corrupt.
    #[error(
        "{file}: corrupt or truncated {codec} stream after {decompressed_bytes} decompressed bytes: {message}"
    )]
    Corrupt {
        /// The input file.
        file: String,
        /// The compression codec.
        codec: String,
        /// How far decompression got.
        decompressed_bytes: u64,
        /// The decoder's message.
        message: String,
    },
    /// A configuration key has an invalid value, or is unknown.
    #[error("config key `{key}`: {message}")]
    Config {
        /// Dotted key path, e.g. `pipeline.chunk_size`.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// The input's columns do not fit what the run needs.
    #[error("schema: {0}")]
    Schema(String),
    /// The input is not in a format tickpipe reads (e.g. binary data where delimited text was
    /// expected); unlike [`Error::Malformed`] this is about the whole file, not one row.
    #[error("{file}: {message}")]
    Format {
        /// The input file.
        file: String,
        /// What it looks like instead.
        message: String,
    },
    /// The input is too far out of time order to process as configured: more rows arrived
    /// behind the watermark than the configured share allows. The message names the remedy
    /// (`--sort`).
    #[error("{0}")]
    Disorder(String),
    /// An input that failed in an earlier step of a job (a cluster map task), with that
    /// step's message: a later step reports the input as failed, as one run would have.
    #[error("{0}")]
    InputFailed(String),
    /// The run quarantined a larger share of its rows than `[pipeline]
    /// max_quarantine_fraction` allows (see [`crate::Ledger::check_quarantine_limit`]).
    #[error(
        "{quarantined} of {read} rows ({:.1}%) were quarantined, more than the {:.1}% allowed by pipeline.max_quarantine_fraction; the quarantine file says why (by reason: {reasons})",
        100.0 * *quarantined as f64 / (*read).max(1) as f64,
        100.0 * max_fraction
    )]
    TooManyQuarantined {
        /// Rows quarantined.
        quarantined: u64,
        /// Rows read.
        read: u64,
        /// The configured limit, as a fraction of the rows read.
        max_fraction: f64,
        /// The largest quarantine reasons with their counts, e.g. `late 2996782`.
        reasons: String,
    },
    /// The user asked for something that cannot be done (no input files, bad flag combination).
    #[error("{0}")]
    Usage(String),
    /// An Arrow or Parquet library error.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// The run was cancelled (Ctrl-C) before it finished.
    #[error("cancelled")]
    Cancelled,
    /// A resource the run needs is held by someone else (another run writes the same output
    /// folder).
    #[error("{0}")]
    Busy(String),
    /// A bug: an invariant inside tickpipe does not hold.
    #[error("internal error (please report): {0}")]
    Internal(String),
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Config`].
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// True for errors caused by the data of one row, which quarantine rather than abort.
    pub fn is_row_error(&self) -> bool {
        matches!(self, Error::Parse { .. } | Error::Malformed { .. })
    }

    /// True for errors of the environment rather than of the input or the request: a full
    /// disk, a missing permission, a read-only file system, an output folder in use. Front
    /// ends give them their own exit code (the `tickpipe` CLI: 4).
    pub fn is_environment(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            Error::Busy(_) => true,
            Error::Io { source, .. } => matches!(
                source.kind(),
                K::StorageFull
                    | K::PermissionDenied
                    | K::ReadOnlyFilesystem
                    | K::QuotaExceeded
                    | K::FileTooLarge
                    | K::ResourceBusy
                    | K::OutOfMemory
            ),
            _ => false,
        }
    }

    /// True for errors that trying again may cure: I/O errors (a flaky disk or network
    /// mount). Everything else is deterministic: a bad config, schema or format, a corrupt
    /// stream, a bug give the same error on every attempt, so the engine does not retry them.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Io { .. })
    }

    /// True for errors that must stop the whole run rather than fail one input: the user's
    /// settings or data contradict each other the same way for every file (config, usage and
    /// schema errors), a row error reached the engine (only strict mode raises row errors
    /// instead of quarantining them, and there the first one is fatal), the input is too far
    /// out of order ([`Error::Disorder`]), or the run was cancelled.
    pub fn stops_run(&self) -> bool {
        matches!(
            self,
            Error::Config { .. }
                | Error::Usage(_)
                | Error::Schema(_)
                | Error::Parse { .. }
                | Error::Malformed { .. }
                | Error::Disorder(_)
                | Error::Cancelled
        )
    }
}

/// Truncates `text` for error messages: at most 80 bytes, on a char boundary.
pub fn truncate_for_error(text: &str) -> String {
    const MAX: usize = 80;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl From<Error> for ArrowError {
    fn from(e: Error) -> Self {
        match e {
            Error::Arrow(a) => a,
            other => ArrowError::ExternalError(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_file_line_and_column() {
        let e = Error::Parse {
            file: "day1.csv".into(),
            line: 17,
            column: "price".into(),
            expected: "a decimal number".into(),
            found: "12,x".into(),
        };
        assert_eq!(
            e.to_string(),
            "day1.csv:17: column `price`: expected a decimal number, found \"12,x\""
        );
        assert!(e.is_row_error());
    }

    #[test]
    fn arrow_round_trip_keeps_arrow_errors() {
        let a: ArrowError = Error::Arrow(ArrowError::ComputeError("x".into())).into();
        assert!(matches!(a, ArrowError::ComputeError(_)));
        let b: ArrowError = Error::Usage("no input".into()).into();
        assert!(matches!(b, ArrowError::ExternalError(_)));
    }

    #[test]
    fn environment_errors_are_told_from_input_errors() {
        let io = |k| Error::io("out/x.parquet", std::io::Error::from(k));
        assert!(io(std::io::ErrorKind::StorageFull).is_environment());
        assert!(io(std::io::ErrorKind::PermissionDenied).is_environment());
        assert!(!io(std::io::ErrorKind::NotFound).is_environment());
        assert!(Error::Busy("out is in use".into()).is_environment());
        assert!(!Error::Usage("no input".into()).is_environment());
    }

    #[test]
    fn errors_are_classified_for_retries_and_run_stops() {
        let io = Error::io("x.csv", std::io::Error::other("flaky"));
        assert!(io.is_retryable() && !io.stops_run());
        let cfg = Error::config("input.timezone", "unknown time zone");
        assert!(!cfg.is_retryable() && cfg.stops_run());
        let strict = Error::Parse {
            file: "a.csv".into(),
            line: 3,
            column: "price".into(),
            expected: "a decimal number".into(),
            found: "x".into(),
        };
        assert!(!strict.is_retryable() && strict.stops_run());
        for e in [
            Error::Schema("no ts".into()),
            Error::Disorder("use --sort".into()),
            Error::Usage("no input".into()),
        ] {
            assert!(!e.is_retryable() && e.stops_run(), "{e}");
        }
        for e in [
            Error::Format {
                file: "b.bin".into(),
                message: "binary".into(),
            },
            Error::Corrupt {
                file: "c.gz".into(),
                codec: "gzip".into(),
                decompressed_bytes: 10,
                message: "eof".into(),
            },
            Error::Internal("bug".into()),
        ] {
            assert!(!e.is_retryable() && !e.stops_run(), "{e}");
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(100);
        let t = truncate_for_error(&s);
        assert!(t.len() <= 80 + '…'.len_utf8());
        assert!(t.ends_with('…'));
    }
}
