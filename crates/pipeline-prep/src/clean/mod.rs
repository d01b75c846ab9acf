//! Cleaning stages: invalid rows, missing values, de-duplication, the Barndorff-Nielsen,
//! Hansen, Lunde & Shephard (2009) trade and quote rules, and outlier detectors, plus
//! [`cleaning_stages`], which maps the `[preprocessing]` config onto them.
//!
//! | stage | rules (ledger names) | order | state / look-ahead |
//! |---|---|---|---|
//! | [`InvalidRows`] | `nonpositive_price`, `nonpositive_size`, `crossed_quote` | row-local | none |
//! | [`MissingValues`] | `missing_value`; repairs `ffill`, `interpolate`, `constant` | per symbol for ffill/interpolate | last value; interpolation holds ≤ `max_gap` rows per column |
//! | [`Dedupe`] | `dedupe_exact`, `dedupe_key` | per symbol | hashes of the current timestamp's rows |
//! | [`BnhlsRowRules`] | `P1`, `P2`, `P3`, `T1`, `T2`, `Q2`, `T4` | row-local | none |
//! | [`SameTimestamp`] | `T3`, `Q1` (aggregated) | per symbol | the current timestamp's rows |
//! | [`DayExchange`] | `P3` (most active exchange) | per symbol | one symbol-day of rows |
//! | [`DaySpread`] | `Q3` | per symbol | one symbol-day of rows (exact median) |
//! | [`MidQuoteDeviation`] | `Q4` | per symbol | 25 rows ahead |
//! | [`RollingOutliers`] | `outlier_zscore`, `outlier_mad`, `outlier_iqr` | per symbol | trailing window |
//! | [`BrownleesGallo`] | `outlier_brownlees_gallo` | per symbol | k/2 rows ahead |
//! | [`GlobalIqr`] | `outlier_iqr_global` | row-local after a fit pass | fitted fences |
//! | [`IsolationForestOutliers`] | `outlier_isolation_forest` | per symbol | a fixed row window |
//! | [`DbscanOutliers`] | `outlier_dbscan` | per symbol | a fixed row window |
//!
//! Conventions shared by every stage:
//!
//! * Columns are read by canonical name; a rule whose columns are absent is a no-op, never an
//!   error (a non-numeric column where a number is needed is a schema error). Nulls break no
//!   validity rule: they are the missing-value stage's business.
//! * Rows leave only through [`pipeline_core::Emitter`]: removals with their rule name and
//!   `_line`, merges with `aggregate`, repairs with `repaired`.
//! * Per-symbol state carries across chunks and files, and stages that look ahead hold rows
//!   (keeping whole chunks alive until their last held row is decided) and flush them in
//!   `finish`, so each symbol's output rows, the rejects and the ledger do not depend on the
//!   chunk size. Rows of different symbols may interleave differently for different
//!   chunkings in look-ahead stages (as they do for different worker counts).
//! * Stateful stages implement `checkpoint`/`restore` (serde_json; held rows as Arrow IPC),
//!   and a restored stage continues exactly.
//! * Memory: held rows keep their whole input chunk alive until the chunk's last held row is
//!   decided. For the day-buffer rules (P3, Q3) that is about a day of input; for the short
//!   look-ahead rules it is a few chunks, except for a rare symbol interleaved with busy
//!   ones, whose look-ahead can span (and hold) many chunks: compacting held rows into
//!   fresh batches is not implemented.
//!
//! Speed: the default chain (invalid → missing → dedupe → z-score) ran at 17.7–18.7 M rows/s
//! on one thread (`cargo run --release -p pipeline-prep --example clean_bench`, 5M rows,
//! 65,536-row chunks, 20 symbols, load average 2–4), up from 10.2 M: [`InvalidRows`] marks
//! all three rules on the raw value slices and filters once (37 → 58–70 M rows/s),
//! [`MissingValues`]' drop ANDs the validity bitmaps (95 → 190 M), and [`Dedupe`] hashes a
//! row only when another row of its symbol shares its timestamp (26 → 100–120 M). Each stage
//! that removes rows still copies the chunk once (the stage contract hands on materialised
//! chunks), which is most of the rest along with the z-score's logarithm per row.
//!
//! Not implemented: a global, spilling de-duplication mode for unordered input (duplicates
//! are only found within a symbol's current timestamp).
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Float64Array, RecordBatch};
//! use arrow_schema::{DataType, Field, Schema};
//! use pipeline_core::{run_stage, Chunk, PreprocessingConfig};
//! use pipeline_prep::cleaning_stages;
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("price", DataType::Float64, true),
//!     Field::new("size", DataType::Float64, true),
//! ]));
//! let price = Float64Array::from(vec![Some(10.0), Some(-1.0), Some(10.0), None]);
//! let size = Float64Array::from(vec![100.0; 4]);
//! let batch = RecordBatch::try_new(schema, vec![Arc::new(price), Arc::new(size)])?;
//! let mut chunks = vec![Chunk::with_first_line(batch, 0, 0, 2)?]; // lines 2..=5
//! let mut removed = Vec::new();
//! for make in cleaning_stages(&PreprocessingConfig::default())? {
//!     let (out, em) = run_stage(make()?.as_mut(), chunks)?;
//!     removed.extend(em.rejects().iter().map(|r| (r.line, r.reason.clone())));
//!     chunks = out;
//! }
//! // Without `ts` a row is compared with its symbol's previous row: line 4 repeats line 2.
//! assert_eq!(removed, [(3, "nonpositive_price".into()), (5, "missing_value".into()), (4, "dedupe_exact".into())]);
//! assert_eq!(chunks[0].num_rows(), 1);
//! # Ok::<(), pipeline_core::Error>(())
//! ```

mod bnhls;
mod builder;
mod cols;
mod dedupe;
mod held;
mod invalid;
mod key;
mod missing;
mod outlier;
mod rowhash;
mod session;

pub use bnhls::{
    BNHLS_RULES, BnhlsConfig, BnhlsRowRules, DayExchange, DaySpread, MidQuoteDeviation,
    SameTimestamp,
};
pub use builder::cleaning_stages;
pub use dedupe::{Dedupe, DedupeConfig};
pub use invalid::{InvalidConfig, InvalidRows};
pub use missing::{MissingConfig, MissingMethod, MissingValues};
pub use outlier::{
    Basis, BrownleesGallo, BrownleesGalloConfig, DbscanConfig, DbscanOutliers, GlobalIqr,
    GlobalIqrConfig, IsolationForest, IsolationForestConfig, IsolationForestOutliers,
    OutlierAction, OutlierConfig, RollingMethod, RollingOutliers,
};
