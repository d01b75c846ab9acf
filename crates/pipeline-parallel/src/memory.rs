//! Process memory readings and the sizing rules derived from the memory limit.

/// Reads a `kB` field of `/proc/self/status` in bytes (0 when unavailable).
fn status_field(field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Current resident memory (`VmRSS`), 0 where unknown.
pub fn current_rss() -> u64 {
    status_field("VmRSS:")
}

/// Peak resident memory (`VmHWM`), 0 where unknown.
pub fn peak_rss() -> u64 {
    status_field("VmHWM:")
}

/// Fraction of the memory limit above which no new source is opened. Leaves headroom for
/// the sources already open to finish their chunks in flight; a guess pending measurements
/// with `cargo xtask bench` at several limits.
pub(crate) const RSS_GATE: f64 = 0.85;

/// Assumed chunk size before any chunk was seen: the ingest readers' default chunk of
/// ~64 K tick rows is about 1 MiB in Arrow memory.
pub(crate) const DEFAULT_CHUNK_BYTES: u64 = 1 << 20;

/// Most chunks buffered per (source, worker) channel when derived from the limit; more gives
/// no throughput in the engine bench and only holds memory.
const MAX_DERIVED_CAPACITY: usize = 16;

/// Channel capacity for one (source, worker) channel: half the limit spread over every
/// channel that can be open at once, in chunks of the observed size.
pub(crate) fn derive_capacity(limit: u64, chunk_bytes: u64, open: usize, workers: usize) -> usize {
    let per_channel = (limit / 2) / (chunk_bytes.max(1) * (open.max(1) * workers.max(1)) as u64);
    (per_channel as usize).clamp(1, MAX_DERIVED_CAPACITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_shrinks_with_limit_and_fan_out() {
        assert_eq!(derive_capacity(512 << 20, 1 << 20, 2, 2), 16);
        assert_eq!(derive_capacity(16 << 20, 1 << 20, 2, 2), 2);
        assert_eq!(derive_capacity(1 << 20, 1 << 20, 8, 8), 1);
    }

    #[test]
    fn rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(current_rss() > 0);
            assert!(peak_rss() >= current_rss());
        }
    }
}
