//! Rejected rows: what was quarantined or removed, why, and where it came from.

use serde::{Deserialize, Serialize};

use crate::chunk::SourceId;

/// Whether a rejected row was malformed (quarantined) or removed by a cleaning rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// The row could not be read or is unusable (bad field count, unparsable value, late).
    Quarantined,
    /// A cleaning rule removed a well-formed row (duplicate, outlier, outside hours…).
    Removed,
}

/// One rejected row: its origin, the rule or reason, and (for quarantined rows) its raw text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// Quarantined or removed.
    pub kind: RejectKind,
    /// The input file.
    pub source: SourceId,
    /// 1-based line of the row's first line.
    pub line: u64,
    /// Rule name (removed) or reason (quarantined), e.g. `dedupe_exact`, `wrong_field_count`.
    pub reason: String,
    /// Human detail, e.g. "column `price`: expected a number, found \"x\"".
    pub detail: String,
    /// The row's text: the raw input line for rows quarantined while reading (lossily
    /// decoded to UTF-8), the decoded values rendered as CSV ([`crate::Chunk::row_text`]) for
    /// rows rejected by a stage.
    pub raw: Option<String>,
}

impl Reject {
    /// A quarantined row.
    pub fn quarantined(
        source: SourceId,
        line: u64,
        reason: impl Into<String>,
        detail: impl Into<String>,
        raw: Option<String>,
    ) -> Self {
        Reject {
            kind: RejectKind::Quarantined,
            source,
            line,
            reason: reason.into(),
            detail: detail.into(),
            raw,
        }
    }

    /// A row removed by `rule`.
    pub fn removed(source: SourceId, line: u64, rule: impl Into<String>) -> Self {
        Reject {
            kind: RejectKind::Removed,
            source,
            line,
            reason: rule.into(),
            detail: String::new(),
            raw: None,
        }
    }
}
