//! [`inspect`]: what an input is (format, compression, encoding, delimiter, schema) and what
//! it holds (rows, time span, symbols), as a serialisable report.

use std::collections::BTreeSet;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, TimestampNanosecondArray};
use pipeline_core::{DatasetKind, Result};

use super::expand::InputFile;
use super::inspect_report::{ColumnInfo, INSPECT_MAX_SYMBOLS, InspectReport};
use super::options::ReadOptions;
use super::sniff::{FileFormat, InputCompression};
use super::source::{open_raw, open_source, sniff_text};

/// Sniffs and reads `input` to describe it (see [`InspectReport`]). Only `ts` and `symbol`
/// are decoded while counting.
pub fn inspect(input: &InputFile, opts: &ReadOptions) -> Result<InspectReport> {
    let cache_key = match &opts.meta_cache {
        Some(db) if !input.is_stdin() => super::cache::fingerprint(input).map(|k| (db.clone(), k)),
        _ => None,
    };
    if let Some((db, key)) = &cache_key
        && let Some(report) = super::cache::get(db, key).and_then(|m| m.report)
    {
        return Ok(report);
    }
    let report = inspect_uncached(input, opts)?;
    if let Some((db, key)) = &cache_key {
        super::cache::put(
            db,
            key,
            super::cache::CachedMeta {
                report: Some(report.clone()),
                ..Default::default()
            },
        );
    }
    Ok(report)
}

fn inspect_uncached(input: &InputFile, opts: &ReadOptions) -> Result<InspectReport> {
    let sniffed = sniff_text(
        open_raw(input)?,
        input,
        opts,
        super::plan_memo::PlanUse::Own,
    )?
    .map(|o| o.sniffed);
    let full = open_source(input, 0, opts)?;
    let schema = full.schema();
    drop(full);
    let mut scan_opts = opts.clone();
    scan_opts.columns = Some(vec!["ts".into(), "symbol".into()]);
    let mut src = open_source(input, 0, &scan_opts)?;
    let mut rows = 0u64;
    let mut quarantined = 0u64;
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let mut symbols = BTreeSet::new();
    let mut truncated = false;
    while let Some(c) = src.next() {
        let c = c?;
        quarantined += src.drain_rejects().len() as u64;
        rows += c.num_rows() as u64;
        if let Some(ts) = c
            .column_by_name("ts")
            .and_then(|a| a.as_any().downcast_ref::<TimestampNanosecondArray>())
        {
            for v in ts.iter().flatten() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if let Some(sym) = c
            .column_by_name("symbol")
            .and_then(|a| a.as_dictionary_opt::<Int32Type>())
        {
            let values = sym.values().as_string::<i32>();
            for k in sym.keys().iter().flatten() {
                let s = values.value(k as usize);
                if !symbols.contains(s) {
                    if symbols.len() >= INSPECT_MAX_SYMBOLS {
                        truncated = true;
                    } else {
                        symbols.insert(s.to_string());
                    }
                }
            }
        }
    }
    quarantined += src.drain_rejects().len() as u64;
    let fmt_ts = |v: i64| {
        chrono::DateTime::from_timestamp_nanos(v)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    };
    let plan = sniffed.as_ref().and_then(|s| s.plan.clone());
    let kind = plan.as_ref().and_then(|p| p.dataset_kind()).or_else(|| {
        let cols: Vec<_> = schema
            .fields()
            .iter()
            .filter_map(|f| pipeline_core::Canonical::from_name(f.name()))
            .collect();
        DatasetKind::detect(&cols)
    });
    Ok(InspectReport {
        path: input.display_name(),
        format: match &sniffed {
            Some(s) => s.format,
            None => columnar_format(input),
        },
        compression: sniffed
            .as_ref()
            .map_or(InputCompression::None, |s| s.compression),
        encoding: sniffed.as_ref().and_then(|s| s.encoding.map(|e| e.label())),
        delimiter: plan.as_ref().map(|p| (p.delimiter() as char).to_string()),
        has_header: plan.as_ref().map(|p| p.has_header()),
        layout: plan.as_ref().map(|p| p.layout()),
        schema: schema
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
            })
            .collect(),
        rows: rows + quarantined,
        quarantined,
        bytes: input.size.unwrap_or_else(|| src.progress().bytes_read),
        ts_min: (lo <= hi).then(|| fmt_ts(lo)),
        ts_max: (lo <= hi).then(|| fmt_ts(hi)),
        symbols: symbols.into_iter().collect(),
        symbols_truncated: truncated,
        dataset_kind: kind,
    })
}

/// Parquet or Arrow IPC, from the file's first bytes.
fn columnar_format(input: &InputFile) -> FileFormat {
    let mut head = [0u8; 6];
    let ok = std::fs::File::open(&input.path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok();
    if ok {
        FileFormat::detect(&head)
    } else {
        FileFormat::Parquet
    }
}
