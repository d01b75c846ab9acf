//! Process memory readings and the sizing rules derived from the memory limit.

/// Reads `/proc/self/status` (empty when unavailable).
fn status_text() -> String {
    std::fs::read_to_string("/proc/self/status").unwrap_or_default()
}

/// A `kB` field of a `/proc/self/status` text in bytes (0 when absent).
fn status_field(text: &str, field: &str) -> u64 {
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
    status_field(&status_text(), "VmRSS:")
}

/// Peak resident memory, 0 where unknown: `VmHWM`, or `VmRSS` when that is higher. The
/// kernel folds per-thread RSS counters into `VmHWM` lazily, so in a multi-threaded
/// process `VmHWM` can briefly read below the current `VmRSS`.
pub fn peak_rss() -> u64 {
    let text = status_text();
    status_field(&text, "VmHWM:").max(status_field(&text, "VmRSS:"))
}

/// Fraction of the memory limit above which no new source is opened. Leaves headroom for
/// the sources already open to finish their chunks in flight; a guess pending measurements
/// with `cargo xtask bench` at several limits.
pub(crate) const RSS_GATE: f64 = 0.85;

/// Assumed chunk size before any chunk was seen: the ingest readers' default chunk of
/// ~64 K tick rows is about 1 MiB in Arrow memory.
pub(crate) const DEFAULT_CHUNK_BYTES: u64 = 1 << 20;

/// Most chunks buffered per (source, worker) channel when derived from the limit. Deeper
/// queues bought no speed and cost memory: on a 5M-row gen-data run (`tickpipe run`, 2
/// workers) a capacity of 1 ran in 2.49 s at 177 MiB peak against 2.50 s at 236 MiB with the
/// old derivation (half the limit for channels); with a 1 GB limit the old rule's 16 chunks
/// per channel made the run slower (4.62 s against 2.88 s at capacity 1) from cache and page
/// faults. Two leaves one chunk queued while the worker holds the other.
const MAX_DERIVED_CAPACITY: usize = 2;

/// Share of the memory limit that chunks queued between readers and workers may take (1/16);
/// the rest is for the readers' blocks, stage state and the writers (see DESIGN.md's memory
/// model and `pipeline-cli`'s writer budget).
const CHANNEL_SHARE: u64 = 16;

/// Channel capacity for one (source, worker) channel: [`CHANNEL_SHARE`] of the limit spread
/// over every channel that can be open at once, in chunks of the observed size, between 1 and
/// [`MAX_DERIVED_CAPACITY`].
pub(crate) fn derive_capacity(limit: u64, chunk_bytes: u64, open: usize, workers: usize) -> usize {
    let per_channel =
        (limit / CHANNEL_SHARE) / (chunk_bytes.max(1) * (open.max(1) * workers.max(1)) as u64);
    (per_channel as usize).clamp(1, MAX_DERIVED_CAPACITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_shrinks_with_limit_and_fan_out() {
        assert_eq!(derive_capacity(512 << 20, 1 << 20, 2, 2), 2);
        assert_eq!(derive_capacity(64 << 20, 4 << 20, 2, 2), 1);
        assert_eq!(derive_capacity(1 << 20, 1 << 20, 8, 8), 1);
    }

    #[test]
    fn rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(current_rss() > 0);
            assert!(peak_rss() > 0);
        }
    }

    #[test]
    fn status_fields_are_parsed_in_bytes() {
        let text = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_field(text, "VmHWM:"), 2 << 20);
        assert_eq!(status_field(text, "VmRSS:"), 1 << 20);
        assert_eq!(status_field(text, "VmSwap:"), 0);
    }
}
