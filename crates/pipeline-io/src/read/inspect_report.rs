//! What [`inspect`](super::inspect::inspect) finds, as serialisable types: one file's
//! [`InspectReport`] and a folder's [`DatasetTotals`]. Kept apart from the reading code so
//! the metadata cache, which stores reports, does not depend on the readers.

use std::collections::{BTreeMap, BTreeSet};

use pipeline_core::DatasetKind;
use serde::{Deserialize, Serialize};

use super::plan::VendorLayout;
use super::sniff::{FileFormat, InputCompression};

/// Most distinct symbols listed by [`inspect`](crate::inspect).
pub const INSPECT_MAX_SYMBOLS: usize = 1000;

/// One column of an [`InspectReport`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Output column name.
    pub name: String,
    /// Arrow type, e.g. `Float64` or `Timestamp(ns, "UTC")`.
    pub data_type: String,
}

/// What [`inspect`](crate::inspect) found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectReport {
    /// The input path (`-` for stdin).
    pub path: String,
    /// Container format.
    pub format: FileFormat,
    /// Compression codec.
    pub compression: InputCompression,
    /// Text encoding (delimited text only), e.g. `utf-8` or `utf-16le-bom`.
    pub encoding: Option<String>,
    /// Field delimiter (delimited text only).
    pub delimiter: Option<String>,
    /// Whether the first line is a header (delimited text only).
    pub has_header: Option<bool>,
    /// Vendor layout (delimited text only).
    pub layout: Option<VendorLayout>,
    /// Output columns and types, `_line` included.
    pub schema: Vec<ColumnInfo>,
    /// Data rows read (quarantined rows included).
    pub rows: u64,
    /// Rows that would be quarantined.
    pub quarantined: u64,
    /// Input bytes (compressed size for compressed files).
    pub bytes: u64,
    /// Earliest timestamp (RFC 3339, UTC).
    pub ts_min: Option<String>,
    /// Latest timestamp (RFC 3339, UTC).
    pub ts_max: Option<String>,
    /// Distinct symbols, sorted, at most [`INSPECT_MAX_SYMBOLS`].
    pub symbols: Vec<String>,
    /// True when there were more distinct symbols than listed.
    pub symbols_truncated: bool,
    /// The kind of records.
    pub dataset_kind: Option<DatasetKind>,
}

/// What a folder of inputs holds altogether: the last lines of `tickpipe inspect` on many
/// files, and the `totals` of its JSON. Built with [`DatasetTotals::from_reports`].
///
/// ```
/// use pipeline_io::{DatasetTotals, InputFile, ReadOptions, inspect};
/// let dir = std::env::temp_dir().join(format!("tickpipe-doc-totals-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let mut reports = Vec::new();
/// for (name, sym) in [("a.csv", "AAPL"), ("b.csv", "MSFT")] {
///     let p = dir.join(name);
///     std::fs::write(&p, format!("ts,symbol,price\n2021-01-04T14:30:00Z,{sym},1.5\n"))?;
///     reports.push(inspect(&InputFile::new(&p), &ReadOptions::default())?);
/// }
/// let t = DatasetTotals::from_reports(&reports, 1);
/// assert_eq!((t.files, t.files_failed, t.rows, t.symbols), (2, 1, 2, 2));
/// assert!(t.render().contains("2 files"));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetTotals {
    /// Files described.
    pub files: u64,
    /// Files that could not be inspected.
    pub files_failed: u64,
    /// Data rows, quarantined ones included.
    pub rows: u64,
    /// Rows that would be quarantined.
    pub quarantined: u64,
    /// Input bytes.
    pub bytes: u64,
    /// Earliest timestamp over all files (RFC 3339, UTC).
    pub ts_min: Option<String>,
    /// Latest timestamp over all files.
    pub ts_max: Option<String>,
    /// Distinct symbols over all files (of those each report lists).
    pub symbols: u64,
    /// True when some file listed only its first [`INSPECT_MAX_SYMBOLS`] symbols, so
    /// `symbols` is a lower bound.
    pub symbols_truncated: bool,
    /// Files per format, compression, layout and record kind (`"csv"`, `"gzip"`, …).
    pub by_format: BTreeMap<String, u64>,
    /// Files per compression codec.
    pub by_compression: BTreeMap<String, u64>,
    /// Files per vendor layout (delimited text).
    pub by_layout: BTreeMap<String, u64>,
    /// Files per kind of records (trades, quotes, …).
    pub by_kind: BTreeMap<String, u64>,
    /// Distinct schemas (column names and types) among the files.
    pub schemas: u64,
}

impl DatasetTotals {
    /// Sums `reports`; `failed` is the number of inputs that could not be inspected.
    pub fn from_reports(reports: &[InspectReport], failed: usize) -> DatasetTotals {
        let mut t = DatasetTotals {
            files: reports.len() as u64,
            files_failed: failed as u64,
            ..DatasetTotals::default()
        };
        let mut symbols = BTreeSet::new();
        let mut schemas = BTreeSet::new();
        let name = |v: serde_json::Value| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        for r in reports {
            t.rows += r.rows;
            t.quarantined += r.quarantined;
            t.bytes += r.bytes;
            // RFC 3339 UTC strings of one format order like their times.
            if let Some(lo) = &r.ts_min
                && t.ts_min.as_ref().is_none_or(|m| lo < m)
            {
                t.ts_min = Some(lo.clone());
            }
            if let Some(hi) = &r.ts_max
                && t.ts_max.as_ref().is_none_or(|m| hi > m)
            {
                t.ts_max = Some(hi.clone());
            }
            symbols.extend(r.symbols.iter().map(String::as_str));
            t.symbols_truncated |= r.symbols_truncated;
            schemas.insert(&r.schema);
            let count = |m: &mut BTreeMap<String, u64>, k: String| *m.entry(k).or_default() += 1;
            count(
                &mut t.by_format,
                name(serde_json::to_value(r.format).unwrap_or_default()),
            );
            count(
                &mut t.by_compression,
                name(serde_json::to_value(r.compression).unwrap_or_default()),
            );
            if let Some(l) = r.layout {
                count(
                    &mut t.by_layout,
                    name(serde_json::to_value(l).unwrap_or_default()),
                );
            }
            if let Some(k) = r.dataset_kind {
                count(
                    &mut t.by_kind,
                    name(serde_json::to_value(k).unwrap_or_default()),
                );
            }
        }
        t.symbols = symbols.len() as u64;
        t.schemas = schemas.len() as u64;
        t
    }

    /// The totals as the lines `tickpipe inspect` prints after the files.
    pub fn render(&self) -> String {
        let list = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "dataset: {} files{}\n",
            self.files,
            if self.files_failed > 0 {
                format!(" ({} could not be read)", self.files_failed)
            } else {
                String::new()
            }
        );
        let more = if self.symbols_truncated { "+" } else { "" };
        for (label, value) in [
            ("rows", self.rows.to_string()),
            ("quarantined", self.quarantined.to_string()),
            ("bytes", self.bytes.to_string()),
            (
                "first ts",
                self.ts_min.clone().unwrap_or_else(|| "-".into()),
            ),
            ("last ts", self.ts_max.clone().unwrap_or_else(|| "-".into())),
            ("symbols", format!("{}{more}", self.symbols)),
            ("schemas", self.schemas.to_string()),
            ("formats", list(&self.by_format)),
            ("compression", list(&self.by_compression)),
            ("layouts", list(&self.by_layout)),
            ("kinds", list(&self.by_kind)),
        ] {
            out.push_str(&format!("  {label:<12} {value}\n"));
        }
        out
    }
}
