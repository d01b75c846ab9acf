//! Cleaning stages: invalid rows, missing values, de-duplication, the Barndorff-Nielsen,
//! Hansen, Lunde & Shephard (2009) trade and quote rules, and outlier detectors, plus
//! [`cleaning_stages`], which maps the `[preprocessing]` config onto them.

mod cols;
mod dedupe;
mod held;
mod invalid;
mod missing;
mod rowhash;

pub use dedupe::{Dedupe, DedupeConfig};
pub use invalid::{InvalidConfig, InvalidRows};
pub use missing::{MissingConfig, MissingMethod, MissingValues};
