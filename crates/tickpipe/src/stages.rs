//! Config → stages: which stages a run has, in pipeline order
//! (reorder → cleaning → features → bars → scale).

#[cfg(any(feature = "prep", feature = "stream"))]
use std::sync::Arc;

use pipeline_core::{Error, PreprocessingConfig, Result, StageFactory};

/// Which of the standard stages a run has, in pipeline order.
///
/// `StageSet::default()` is the full pipeline; `StageSet::none()` loads and writes only
/// (`tickpipe convert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageSet {
    /// The reorder buffer ahead of the ordered stages (DESIGN.md: small disorder is
    /// repaired, rows later than `allowed_lateness_ms` are quarantined as `late`); skipped
    /// when that setting is 0, and in live (follow) runs, where it would hold rows for the
    /// allowed lateness, longer than the flush interval promises. Default true.
    pub reorder: bool,
    /// The cleaning stages. Default true.
    pub clean: bool,
    /// The feature stage. Default true.
    pub features: bool,
}

impl Default for StageSet {
    fn default() -> Self {
        StageSet {
            reorder: true,
            clean: true,
            features: true,
        }
    }
}

impl StageSet {
    /// No stages: load and write only.
    pub fn none() -> Self {
        StageSet {
            reorder: false,
            clean: false,
            features: false,
        }
    }

    /// The full pipeline without features (what `tickpipe bars` runs before its bar stage).
    pub fn cleaning() -> Self {
        StageSet {
            features: false,
            ..StageSet::default()
        }
    }
}

/// Builds the standard stages of `set` from `cfg`, in pipeline order. Bad specs (an unknown
/// rolling statistic, a zero window…) fail here, before any input is read.
pub fn standard_stages(cfg: &PreprocessingConfig, set: StageSet) -> Result<Vec<StageFactory>> {
    let mut stages: Vec<StageFactory> = Vec::new();
    if set.reorder && cfg.allowed_lateness_ms > 0 {
        stages.push(reorder_stage(
            cfg.allowed_lateness_ms,
            cfg.max_late_fraction,
        )?);
    }
    if set.clean {
        stages.extend(cleaning_stages(cfg)?);
    }
    if set.features {
        stages.extend(feature_stages(cfg)?);
    }
    Ok(stages)
}

/// The reorder buffer; past `max_late` of a symbol's rows arriving late it stops the run,
/// naming `--sort` (`[preprocessing] max_late_fraction`).
#[cfg(feature = "stream")]
fn reorder_stage(ms: u64, max_late: f64) -> Result<StageFactory> {
    Ok(Arc::new(move || {
        Ok(Box::new(
            pipeline_stream::ReorderStage::new(
                "symbol",
                "ts",
                std::time::Duration::from_millis(ms),
            )
            .max_late_fraction(max_late),
        ) as Box<dyn pipeline_core::Stage>)
    }))
}

#[cfg(not(feature = "stream"))]
fn reorder_stage(_ms: u64, _max_late: f64) -> Result<StageFactory> {
    Err(missing_feature(
        "stream",
        "the reorder buffer (set preprocessing.allowed_lateness_ms = 0 to run without it)",
    ))
}

#[cfg(feature = "prep")]
fn cleaning_stages(cfg: &PreprocessingConfig) -> Result<Vec<StageFactory>> {
    pipeline_prep::cleaning_stages(cfg)
}

#[cfg(not(feature = "prep"))]
fn cleaning_stages(_cfg: &PreprocessingConfig) -> Result<Vec<StageFactory>> {
    Err(missing_feature("prep", "cleaning"))
}

#[cfg(feature = "prep")]
fn feature_stages(cfg: &PreprocessingConfig) -> Result<Vec<StageFactory>> {
    pipeline_prep::feature_stages(cfg)
}

#[cfg(not(feature = "prep"))]
fn feature_stages(_cfg: &PreprocessingConfig) -> Result<Vec<StageFactory>> {
    Err(missing_feature("prep", "features"))
}

/// The bar stage for a spec such as `time:1m`, `tick:1000`, `volume:1e4`, `dollar:1e6`, on
/// `price_column` (`[preprocessing] price_column`: `mid` builds every symbol's bars on the
/// mid; default: trades' prices, and the mid for quotes-only symbols).
#[cfg(feature = "prep")]
pub fn bar_stage(spec: &str, price_column: Option<&str>) -> Result<StageFactory> {
    session_bar_stage(spec, price_column, None)
}

/// [`bar_stage`], with a `time:` spec's bins on a session calendar when `session` is given
/// (checked here, before a row is read).
#[cfg(feature = "prep")]
pub fn session_bar_stage(
    spec: &str,
    price_column: Option<&str>,
    session: Option<&pipeline_prep::BarSession>,
) -> Result<StageFactory> {
    let spec = pipeline_prep::parse_bar_spec(spec)?;
    let column = price_column.unwrap_or("price").to_string();
    let session = session.cloned();
    let make = move || -> Result<pipeline_prep::BarStage> {
        let stage = pipeline_prep::BarStage::new(spec.clone()).price_column(&column);
        match &session {
            Some(s) => stage.session(s.clone()),
            None => Ok(stage),
        }
    };
    make()?;
    Ok(Arc::new(move || {
        Ok(Box::new(make()?) as Box<dyn pipeline_core::Stage>)
    }))
}

/// The bar stage for a spec (needs the `prep` feature).
#[cfg(not(feature = "prep"))]
pub fn bar_stage(_spec: &str, _price_column: Option<&str>) -> Result<StageFactory> {
    Err(missing_feature("prep", "bars"))
}

/// The error for a capability this build of the library leaves out.
#[cfg_attr(all(feature = "prep", feature = "stream"), allow(dead_code))]
pub(crate) fn missing_feature(feature: &str, what: &str) -> Error {
    Error::Usage(format!(
        "{what} needs the `{feature}` feature of the tickpipe library, which this build leaves out"
    ))
}

#[cfg(all(test, feature = "prep", feature = "stream"))]
mod tests {
    use super::*;

    fn names(stages: &[StageFactory]) -> Vec<String> {
        stages
            .iter()
            .map(|f| f().unwrap().name().to_string())
            .collect()
    }

    #[test]
    fn stage_sets_build_in_pipeline_order() {
        let cfg = PreprocessingConfig::default();
        let full = names(&standard_stages(&cfg, StageSet::default()).unwrap());
        assert_eq!(full.first().map(String::as_str), Some("reorder"));
        assert_eq!(full.last().map(String::as_str), Some("features"));
        assert!(standard_stages(&cfg, StageSet::none()).unwrap().is_empty());
        let clean = names(&standard_stages(&cfg, StageSet::cleaning()).unwrap());
        assert!(!clean.contains(&"features".to_string()));
        let mut no_late = cfg.clone();
        no_late.allowed_lateness_ms = 0;
        let s = names(&standard_stages(&no_late, StageSet::default()).unwrap());
        assert!(!s.contains(&"reorder".to_string()));
    }

    #[test]
    fn bad_bar_specs_fail_before_the_run() {
        assert!(bar_stage("time:1m", None).is_ok());
        assert!(bar_stage("time:1m", Some("mid")).is_ok());
        assert!(bar_stage("fortnight:3", None).is_err());
    }
}
