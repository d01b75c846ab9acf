//! Error helpers of the facade.

use pipeline_core::Error;

/// A copy of `e` (`Error` holds an `io::Error` and an `ArrowError`, which are not `Clone`):
/// the same variant and message, so a caller that gets the copy can still tell a bad row
/// from an I/O failure or a cancelled run.
pub(crate) fn duplicate(e: &Error) -> Error {
    match e {
        Error::Io { path, source } => Error::io(
            path.clone(),
            std::io::Error::new(source.kind(), source.to_string()),
        ),
        Error::Parse {
            file,
            line,
            column,
            expected,
            found,
        } => Error::Parse {
            file: file.clone(),
            line: *line,
            column: column.clone(),
            expected: expected.clone(),
            found: found.clone(),
        },
        Error::Malformed {
            file,
            line,
            message,
        } => Error::Malformed {
            file: file.clone(),
            line: *line,
            message: message.clone(),
        },
        Error::Corrupt {
            file,
            codec,
            decompressed_bytes,
            message,
        } => Error::Corrupt {
            file: file.clone(),
            codec: codec.clone(),
            decompressed_bytes: *decompressed_bytes,
            message: message.clone(),
        },
        Error::Config { key, message } => Error::config(key.clone(), message.clone()),
        Error::Schema(m) => Error::Schema(m.clone()),
        Error::Usage(m) => Error::Usage(m.clone()),
        Error::Arrow(a) => Error::Arrow(arrow_schema::ArrowError::ExternalError(Box::new(
            std::io::Error::other(a.to_string()),
        ))),
        Error::Cancelled => Error::Cancelled,
        Error::Busy(m) => Error::Busy(m.clone()),
        Error::Internal(m) => Error::Internal(m.clone()),
        other => Error::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_keep_variant_and_message() {
        let errors = [
            Error::io(
                "a.csv",
                std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
            ),
            Error::Parse {
                file: "a.csv".into(),
                line: 3,
                column: "price".into(),
                expected: "a number".into(),
                found: "x".into(),
            },
            Error::config("pipeline.x", "bad"),
            Error::Cancelled,
        ];
        for e in &errors {
            let d = duplicate(e);
            assert_eq!(d.to_string(), e.to_string());
            assert_eq!(std::mem::discriminant(&d), std::mem::discriminant(e));
        }
    }
}
