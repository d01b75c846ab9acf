//! Settings derived from the configuration.

use pipeline_core::Config;

/// Worker count: the configured one, or one per core; 1 when parallel processing is off
/// (`[pipeline]` or `[preprocessing] enable_parallel_processing = false`).
pub fn workers(cfg: &Config) -> usize {
    if !cfg.pipeline.enable_parallel_processing || !cfg.preprocessing.enable_parallel_processing {
        return 1;
    }
    match cfg.pipeline.max_workers {
        0 => pipeline_core::cores(),
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_default_and_serial() {
        let mut c = Config::default();
        c.pipeline.max_workers = 3;
        assert_eq!(workers(&c), 3);
        c.pipeline.max_workers = 0;
        assert!(workers(&c) >= 1);
        c.pipeline.enable_parallel_processing = false;
        assert_eq!(workers(&c), 1);
        c.pipeline.enable_parallel_processing = true;
        c.preprocessing.enable_parallel_processing = false;
        assert_eq!(workers(&c), 1);
    }
}
