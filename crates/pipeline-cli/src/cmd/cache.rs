//! `tickpipe cache stats|clear|prune`: the cache of a run's output folder (OUT/_cache) or a
//! cache folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Outcome;
use crate::args::{CacheArgs, CacheCommand};

/// The cache folder `dir` names: its `_cache` when it is a run's output folder.
fn cache_dir(dir: &Path) -> PathBuf {
    let inner = dir.join(tickpipe::CACHE_DIR);
    if inner.is_dir() {
        inner
    } else {
        dir.to_path_buf()
    }
}

fn open(args: &CacheArgs) -> anyhow::Result<pipeline_cache::CacheManager> {
    let dir = cache_dir(&args.dir);
    if !dir.join("cache.redb").exists() {
        return Err(pipeline_core::Error::Usage(format!(
            "{} holds no tickpipe cache",
            args.dir.display()
        ))
        .into());
    }
    let cfg = pipeline_core::Config::default();
    Ok(pipeline_cache::CacheManager::builder()
        .dir(&dir)
        .disk_bytes(cfg.pipeline.cache_max_size.0)
        .build()
        .map_err(pipeline_core::Error::from)?)
}

/// Runs the command.
pub fn run(cmd: CacheCommand) -> anyhow::Result<Outcome> {
    match cmd {
        CacheCommand::Stats(a) => {
            let c = open(&a)?;
            let stats = c.get_stats().map_err(pipeline_core::Error::from)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                println!("{}", c.dir().unwrap_or(&a.dir).display());
                if let Some(d) = &stats.disk {
                    let t = &d.tier;
                    println!(
                        "  disk    {} entries, {:.1} MiB of {:.1} MiB ({}), file {:.1} MiB, {} pinned",
                        t.entries,
                        t.bytes as f64 / 1048576.0,
                        t.capacity_bytes as f64 / 1048576.0,
                        t.policy,
                        d.file_bytes as f64 / 1048576.0,
                        d.pinned_entries
                    );
                    let l = &d.lifetime;
                    println!(
                        "  lifetime {} hits, {} misses (hit rate {:.1}%), {} evictions, {} damaged entries dropped",
                        l.hits,
                        l.misses,
                        100.0 * l.hit_rate,
                        l.evictions,
                        l.corrupt
                    );
                }
            }
        }
        CacheCommand::Clear(a) => {
            let mut c = open(&a)?;
            let r = c.clear().map_err(pipeline_core::Error::from)?;
            c.compact().map_err(pipeline_core::Error::from)?;
            report(&a, &r)?;
        }
        CacheCommand::Prune {
            cache,
            max_size,
            unused_for_days,
        } => {
            let mut c = open(&cache)?;
            let max_bytes = max_size
                .as_deref()
                .map(|s| s.parse::<pipeline_core::ByteSize>().map(|b| b.0))
                .transpose()?;
            let r = c
                .prune(&pipeline_cache::Prune {
                    max_bytes,
                    unused_for: unused_for_days.map(|d| Duration::from_secs(d * 86_400)),
                })
                .map_err(pipeline_core::Error::from)?;
            c.compact().map_err(pipeline_core::Error::from)?;
            report(&cache, &r)?;
        }
    }
    Ok(Outcome::Ok)
}

fn report(a: &CacheArgs, r: &pipeline_cache::MaintenanceReport) -> anyhow::Result<()> {
    if a.json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!(
            "removed {} entries ({:.1} MiB); {} entries ({:.1} MiB) left",
            r.removed,
            r.freed_bytes as f64 / 1048576.0,
            r.entries_after,
            r.bytes_after as f64 / 1048576.0
        );
    }
    Ok(())
}
