//! tickpipe preprocessing stages.
//!
//! * `clean`: de-duplication, missing values, the Barndorff-Nielsen et al. (2009) trade and
//!   quote rules, outlier detectors.
//! * `features`: returns, lags, rolling statistics, TA-Lib-exact indicators, microstructure
//!   and time features, bars, normalisation.
//!
//! Stages read each row's kind from what it fills, so one dataset may unite trades, quotes
//! and order-book messages (one schema across files, nulls where a kind lacks a column):
//! order-book messages (`event_type` set) are never de-duplicated or judged as outliers and
//! count as trades only when they are executions; quote rows are not missing a price; a
//! quotes-only symbol gets its price features and bars on the mid; rows with an `id`
//! de-duplicate by it.

mod clean;
mod features;
mod kind;
mod state;
mod sums;

pub use clean::*;
pub use features::*;
