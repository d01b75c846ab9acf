//! tickpipe preprocessing stages.
//!
//! * `clean`: de-duplication, missing values, the Barndorff-Nielsen et al. (2009) trade and
//!   quote rules, outlier detectors.
//! * `features`: returns, lags, rolling statistics, TA-Lib-exact indicators, microstructure
//!   and time features, bars, normalisation.

mod clean;
mod features;
mod state;
mod sums;

pub use clean::*;
pub use features::*;
