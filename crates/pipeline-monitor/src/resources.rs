//! Process and system resource readings through `sysinfo`.

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate};

use crate::sample::ResourceSample;

/// Reads this process's CPU, memory, disk I/O and open files, and the system's CPU and
/// memory. One refresh reads a handful of small `/proc` files (stat, statm, io, the fd
/// directory, /proc/stat, /proc/meminfo): tens of microseconds, nothing at a 1 s interval.
pub(crate) struct ResourceSampler {
    sys: sysinfo::System,
    pid: Option<Pid>,
}

impl ResourceSampler {
    /// A sampler primed with a first reading, so the next one has CPU deltas to work from.
    pub fn new() -> Self {
        let mut s = ResourceSampler {
            sys: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
        };
        s.refresh();
        s
    }

    fn refresh(&mut self) {
        if let Some(pid) = self.pid {
            // `without_tasks`: do not list the process's threads (one /proc read each).
            self.sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                ProcessRefreshKind::nothing()
                    .with_cpu()
                    .with_memory()
                    .with_disk_usage()
                    .without_tasks(),
            );
        }
        self.sys
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
    }

    /// Reads everything now (CPU figures are averages since the previous call).
    pub fn sample(&mut self) -> ResourceSample {
        self.refresh();
        let mut r = ResourceSample {
            system_cpu_pct: f64::from(self.sys.global_cpu_usage()),
            system_memory_used_bytes: self.sys.used_memory(),
            system_memory_total_bytes: self.sys.total_memory(),
            ..Default::default()
        };
        if let Some(p) = self.pid.and_then(|pid| self.sys.process(pid)) {
            let disk = p.disk_usage();
            r.cpu_pct = f64::from(p.cpu_usage());
            r.rss_bytes = p.memory();
            r.virtual_bytes = p.virtual_memory();
            r.disk_read_bytes = disk.total_read_bytes;
            r.disk_written_bytes = disk.total_written_bytes;
            r.open_files = p.open_files().map_or_else(count_fds, |n| n as u64);
        }
        r
    }
}

/// Peak resident memory (`VmHWM`, or `VmRSS` when higher: the kernel folds per-thread
/// counters into `VmHWM` lazily), 0 where unknown. The same reading as the engine's
/// `pipeline_parallel::peak_rss`, repeated here because the monitor depends on core only.
pub(crate) fn peak_rss() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    };
    field("VmHWM:").max(field("VmRSS:"))
}

/// Open descriptors from `/proc/self/fd` where sysinfo has no figure (0 elsewhere).
fn count_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_on_linux_are_plausible() {
        let mut s = ResourceSampler::new();
        // Burn a little CPU so the next reading has something to show.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let file = tempfile::tempfile().unwrap();
        let r = s.sample();
        if cfg!(target_os = "linux") {
            assert!(r.rss_bytes > 1 << 20, "{r:?}");
            assert!(r.virtual_bytes >= r.rss_bytes, "{r:?}");
            assert!(r.open_files >= 4, "stdin/out/err and the temp file: {r:?}");
            assert!(r.system_memory_total_bytes >= r.system_memory_used_bytes);
            assert!(r.system_memory_used_bytes > 0);
            assert!((0.0..=100.0).contains(&r.system_cpu_pct), "{r:?}");
            assert!(r.cpu_pct >= 0.0, "{r:?}");
            assert!(count_fds() >= 4);
            assert!(peak_rss() >= r.rss_bytes / 2, "{r:?}");
        }
        drop(file);
    }
}
