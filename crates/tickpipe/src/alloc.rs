//! glibc `malloc` settings for the pipeline's allocation pattern.
//!
//! Every chunk allocates and frees column buffers of 0.1–4 MiB on several threads (decoders,
//! stage workers, writers). With glibc's defaults the mmap threshold moves with the sizes
//! freed and each arena gives its free top back to the kernel as soon as it passes twice that
//! threshold, so the same pages are unmapped and faulted in again chunk after chunk, more so
//! the more threads (arenas) run at once. On a 20M-row `tickpipe run` pinned to 2 cores
//! (`perf stat -e page-faults`, three runs each) the defaults took 154–391 K page faults,
//! 1.2–1.4 s of system time and 9.4–9.7 s; with the thresholds below 57–62 K faults,
//! 0.8–1.0 s and 8.9–9.2 s, for about 15 MiB more peak RSS.
//! A 16 MiB mmap threshold ran as fast but peaked 10–15 MiB higher in a 200M-row piped run
//! (259 against 249 MiB). Buffers of 4 MiB and more are best reused rather than freed, as the
//! CSV reader does with its decompressed blocks.
//!
//! The thresholds are the ones `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=…:glibc.malloc.
//! trim_threshold=…` would give. A user who sets either (or the older `MALLOC_*_` variables)
//! keeps theirs: [`tune`] changes nothing then.
//!
//! [`release_near_limit`] watches the resident size during a job and hands the arenas' free
//! memory back to the kernel when it nears the memory limit.

/// Allocations at least this large get their own mapping (glibc's default starts at 128 KiB
/// and drifts up to 32 MiB with the sizes freed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 4 << 20;

/// An arena keeps up to this much free memory at its top instead of returning it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 64 << 20;

/// True when the environment already tunes glibc's malloc thresholds.
fn user_tuned(var: impl Fn(&str) -> Option<String>) -> bool {
    ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
        .iter()
        .any(|v| var(v).is_some())
        || var("GLIBC_TUNABLES").is_some_and(|t| t.contains("glibc.malloc."))
}

/// Applies the thresholds, unless the user set their own; call first thing in `main`.
pub fn tune() {
    if user_tuned(|v| std::env::var(v).ok()) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(unsafe_code)]
        // SAFETY: `mallopt` takes two integers and touches only malloc's own parameters,
        // under malloc's lock; it is called before any thread of ours starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

/// Below this memory limit glibc is told to keep less free memory: the default 256 MiB and
/// more run with the thresholds of [`tune`] (measured there for speed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SMALL_LIMIT: u64 = 256 << 20;

/// For memory limits below the default: at most two malloc arenas and a trim threshold of a
/// sixteenth of the limit. At a 128 MiB limit a 3M-row file sorted by symbol peaked at
/// 139 MiB with the default thresholds (massif: about 55 MB of live heap, the rest free
/// memory glibc kept in its arenas) and at 122 MiB with these (measured for #13 with
/// `MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=8MiB`). Nothing changes when the user tuned
/// malloc, or for larger limits.
fn fit_small_limit(limit: u64) {
    if user_tuned(|v| std::env::var(v).ok()) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if limit < SMALL_LIMIT {
        let trim = i32::try_from(limit / 16).unwrap_or(i32::MAX);
        #[allow(unsafe_code)]
        // SAFETY: `mallopt` takes two integers and touches only malloc's own parameters,
        // under malloc's lock.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
            libc::mallopt(libc::M_TRIM_THRESHOLD, trim);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = limit;
}

/// Seconds between two RSS readings of [`release_near_limit`]'s thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const WATCH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Fraction of the memory limit above which free memory is handed back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const RELEASE_AT: f64 = 0.9;

/// Starts (once per process) a thread that, whenever the resident size passes 90% of
/// `limit` bytes, asks glibc to return the free memory inside its arenas (`malloc_trim`).
/// In a long piped run the live heap stays flat while fragmented free memory grows the RSS
/// (sampled with `mallinfo2` in a 50M-row pipe: 120–132 MiB in use, free memory in the
/// arenas growing from 48 to 92 MiB). In a 200M-row pipe at the default 256 MiB limit the
/// RSS rose to 256 MiB without this and stayed at 207–234 MiB (peak 244) with it, at the
/// same speed. Does nothing where glibc is not the allocator.
pub fn release_near_limit(limit: u64) {
    fit_small_limit(limit);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static STARTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        STARTED.get_or_init(|| {
            let threshold = (limit as f64 * RELEASE_AT) as u64;
            let watch = move || {
                loop {
                    std::thread::sleep(WATCH_PERIOD);
                    if pipeline_parallel::current_rss() > threshold {
                        #[allow(unsafe_code)]
                        // SAFETY: `malloc_trim` takes an integer and only walks malloc's own
                        // arenas under their locks; it is safe to call from any thread.
                        unsafe {
                            libc::malloc_trim(0);
                        }
                    }
                }
            };
            if let Err(e) = std::thread::Builder::new()
                .name("tickpipe-trim".into())
                .spawn(watch)
            {
                tracing::debug!("no memory watch thread: {e}");
            }
        });
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = limit;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn user_settings_win() {
        assert!(!user_tuned(env(&[])));
        assert!(!user_tuned(env(&[("GLIBC_TUNABLES", "glibc.rtld.nns=2")])));
        assert!(user_tuned(env(&[("MALLOC_TRIM_THRESHOLD_", "0")])));
        assert!(user_tuned(env(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=2"
        )])));
    }
}
