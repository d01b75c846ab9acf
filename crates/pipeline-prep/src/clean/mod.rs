//! Cleaning stages: invalid rows, missing values, de-duplication, the Barndorff-Nielsen,
//! Hansen, Lunde & Shephard (2009) trade and quote rules, and outlier detectors, plus
//! [`cleaning_stages`], which maps the `[preprocessing]` config onto them.

mod bnhls;
mod builder;
mod cols;
mod dedupe;
mod held;
mod invalid;
mod missing;
mod outlier;
mod rowhash;
mod session;

pub use bnhls::{
    BNHLS_RULES, BnhlsConfig, BnhlsRowRules, DaySpread, MidQuoteDeviation, SameTimestamp,
};
pub use builder::cleaning_stages;
pub use dedupe::{Dedupe, DedupeConfig};
pub use invalid::{InvalidConfig, InvalidRows};
pub use missing::{MissingConfig, MissingMethod, MissingValues};
pub use outlier::{
    BrownleesGallo, BrownleesGalloConfig, DbscanConfig, DbscanOutliers, GlobalIqr, GlobalIqrConfig,
    IsolationForest, IsolationForestConfig, IsolationForestOutliers, OutlierAction, OutlierConfig,
    RollingMethod, RollingOutliers,
};
