//! Stage keys for any serialisable configuration.

use pipeline_core::StageKey;
use serde::Serialize;

#[derive(Serialize)]
struct Body {
    config: String,
}

/// [`StageKey::of`] over the JSON form of `cfg`: `StageKey::of` serialises through TOML,
/// which cannot express tuples or enums with data at the top level (it would silently key
/// on the name only), so configurations are wrapped in a one-field table first.
pub(crate) fn stage_key<T: Serialize>(name: &str, cfg: &T) -> StageKey {
    let config = serde_json::to_string(cfg).unwrap_or_default();
    StageKey::of(name, &Body { config })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_give_distinct_keys() {
        assert_ne!(
            stage_key("x", &(true, false)),
            stage_key("x", &(false, true))
        );
        assert_eq!(stage_key("x", &(1.5, "a")), stage_key("x", &(1.5, "a")));
    }
}
