//! `tickpipe plan`: the inputs (in processing order, fingerprinted), the configuration and
//! the map groups of a cluster job, in `DIR/_plan.json`.

use std::path::{Path, PathBuf};

use pipeline_core::{Config, Error, Result};
use pipeline_io::{Fingerprint, StatStamp};
use serde::{Deserialize, Serialize};

use crate::builder::Pipeline;
use crate::output::Output;

/// The plan's file name inside the job folder.
pub const PLAN_FILE: &str = "_plan.json";

/// Virtual symbol buckets. Many more than reduce tasks, so that assigning buckets by size
/// balances the tasks; few enough that a map task's open writers stay cheap (only buckets
/// that hold rows get a file).
pub const BUCKETS: u32 = 256;

/// 2: the plan keeps the inputs' description and stats; a map output is one file of Arrow
/// IPC segments with a footer (`map::MapFile`).
const VERSION: u32 = 2;

/// One input of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInput {
    /// The canonical path.
    pub path: String,
    /// Its fingerprint when planned; tasks refuse to run if it changed.
    pub fingerprint: Fingerprint,
    /// The file's `stat` when fingerprinted: a task whose file still has it takes the
    /// fingerprint as planned instead of reading the file's ends again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<StatStamp>,
}

/// A cluster job: what `tickpipe plan` writes and every task reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Format version.
    pub version: u32,
    /// The inputs, in the order `tickpipe run` processes them.
    pub inputs: Vec<PlanInput>,
    /// The configuration, as JSON.
    pub config: serde_json::Value,
    /// Input indices per map task.
    pub map_groups: Vec<Vec<usize>>,
    /// Number of reduce tasks.
    pub reduce_tasks: usize,
    /// Number of virtual symbol buckets.
    pub buckets: u32,
    /// How map tasks compress the rows they shuffle. Plans written before it was a choice
    /// used LZ4.
    #[serde(default = "ShuffleCompression::lz4")]
    pub shuffle_compression: ShuffleCompression,
    /// What describing the inputs found (schema, zones): tasks take it instead of sniffing
    /// every input again.
    pub(crate) described: crate::input::Described,
}

/// How map tasks compress the rows they shuffle (Arrow IPC body compression; reduce tasks
/// read any of them). Measured on 252 gzip day files (54 MB, 3M rows; `plan`, 3 map tasks
/// and 2 reduce tasks one after another on one 2-core machine, the shuffle on local disk;
/// medians of 7 rounds alternated with `tickpipe run`):
///
/// | choice | shuffle | job time, `run` = 100% |
/// |---|---|---|
/// | `none` (default) | 239 MB | 123% |
/// | `lz4` | 113 MB | 133% |
/// | `zstd` (level 1) | 68 MB | 149% |
///
/// The shuffle is written once and read once, soon after: uncompressed is fastest wherever
/// the filesystem moves bytes faster than LZ4 compresses them (about 1 GB/s per core here:
/// 15% of a map task's CPU for its 80 MB). Choose `lz4` or `zstd` when the shared filesystem
/// is the bottleneck or short of space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShuffleCompression {
    /// No compression.
    #[default]
    None,
    /// LZ4 frames.
    Lz4,
    /// Zstandard, level 1.
    Zstd,
}

impl ShuffleCompression {
    /// LZ4: what plans from before the choice existed used.
    fn lz4() -> ShuffleCompression {
        ShuffleCompression::Lz4
    }
}

impl std::str::FromStr for ShuffleCompression {
    type Err = Error;

    fn from_str(s: &str) -> Result<ShuffleCompression> {
        match s {
            "none" => Ok(ShuffleCompression::None),
            "lz4" => Ok(ShuffleCompression::Lz4),
            "zstd" => Ok(ShuffleCompression::Zstd),
            other => Err(Error::Usage(format!(
                "shuffle compression `{other}`: expected none, lz4 or zstd"
            ))),
        }
    }
}

/// Plans a job over `inputs` with `config` into `dir` (created if needed): `map_tasks` groups
/// of inputs dealt by size (largest first to the lightest group), `reduce_tasks` reduce
/// tasks, and the map outputs compressed with `shuffle`. Planning the same job again is
/// allowed; a different plan in `dir` is refused.
pub fn plan(
    inputs: &[String],
    config: &Config,
    dir: &Path,
    (map_tasks, reduce_tasks): (usize, usize),
    shuffle: ShuffleCompression,
) -> Result<Plan> {
    if map_tasks == 0 || reduce_tasks == 0 {
        return Err(Error::Usage(
            "--map-tasks and --reduce-tasks must be at least 1".into(),
        ));
    }
    if config.preprocessing.normalize_features && config.preprocessing.normalize_params.is_empty() {
        return Err(Error::Usage(
            "normalize_features fits its parameters over the whole output, which no single \
             reduce task sees; fit them once (`[preprocessing] normalize_params`) or run on \
             one machine"
                .into(),
        ));
    }
    if !config.input.quotes.is_empty() {
        // Map tasks read files independently; the join needs each symbol's trades and quotes
        // on one reader in time order.
        return Err(Error::Usage(
            "trades and quotes ([input] quotes) run on one machine: the as-of join reads both \
             streams in order; run `tickpipe run --trades ... --quotes ...`"
                .into(),
        ));
    }
    let p = Pipeline::builder()
        .inputs(inputs.iter().cloned())
        .config(config.clone())
        .build()?;
    let mut planned = Vec::new();
    for f in &p.inputs.files {
        if f.is_stream() {
            return Err(Error::Usage(format!(
                "{}: a stream cannot be split across tasks; give files",
                f.display_name()
            )));
        }
        let fingerprint = Fingerprint::of_input(f)?;
        planned.push(PlanInput {
            path: crate::record::canonical(&f.path),
            stamp: Fingerprint::stamp_of_input(f),
            fingerprint,
        });
    }
    let sizes: Vec<u64> = planned.iter().map(|i| i.fingerprint.size).collect();
    let plan = Plan {
        version: VERSION,
        inputs: planned,
        config: serde_json::to_value(config)
            .map_err(|e| Error::Internal(format!("config as JSON: {e}")))?,
        map_groups: longest_first(&sizes, map_tasks),
        reduce_tasks,
        buckets: BUCKETS,
        shuffle_compression: shuffle,
        described: p.s.described.clone().unwrap_or_default(),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if let Some(prior) = Plan::load_opt(dir)? {
        if prior != plan {
            return Err(Error::Usage(format!(
                "{} already holds another plan; use a new folder",
                dir.display()
            )));
        }
        return Ok(prior);
    }
    let text = serde_json::to_string_pretty(&plan)
        .map_err(|e| Error::Internal(format!("plan as JSON: {e}")))?;
    crate::output::write_atomic(&dir.join(PLAN_FILE), &(text + "\n"))?;
    Ok(plan)
}

impl Plan {
    /// Reads the plan of job folder `dir`.
    pub fn load(dir: &Path) -> Result<Plan> {
        Plan::load_opt(dir)?.ok_or_else(|| {
            Error::Usage(format!(
                "{} holds no plan; run `tickpipe plan INPUT... --out {}` first",
                dir.display(),
                dir.display()
            ))
        })
    }

    fn load_opt(dir: &Path) -> Result<Option<Plan>> {
        let path = dir.join(PLAN_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let plan: Plan = serde_json::from_str(&text)
            .map_err(|e| Error::Usage(format!("{}: not a tickpipe plan ({e})", path.display())))?;
        if plan.version != VERSION {
            return Err(Error::Usage(format!(
                "{}: plan version {} (this tickpipe reads {VERSION})",
                path.display(),
                plan.version
            )));
        }
        Ok(Some(plan))
    }

    /// Number of map tasks.
    pub fn map_tasks(&self) -> usize {
        self.map_groups.len()
    }

    /// The planned configuration.
    pub fn config(&self) -> Result<Config> {
        serde_json::from_value(self.config.clone())
            .map_err(|e| Error::Usage(format!("the plan's configuration: {e}")))
    }

    /// Refuses input `index` if it changed since it was planned. Map tasks check each input
    /// they read, just before reading it; reduce tasks read map outputs, named by the
    /// fingerprints the maps checked. (Checking every input in every task cost each task
    /// about 60 ms on 252 day files, before any work.)
    pub(crate) fn check_input(&self, index: usize) -> Result<()> {
        let i = self
            .inputs
            .get(index)
            .ok_or_else(|| Error::Internal(format!("no planned input {index}")))?;
        if Fingerprint::of(Path::new(&i.path))? != i.fingerprint {
            return Err(Error::Usage(format!(
                "{} changed since it was planned; plan the job again into a new folder",
                i.path
            )));
        }
        Ok(())
    }

    /// The pipeline every task builds: the planned inputs, configuration and description.
    /// The planned fingerprints are remembered for files whose `stat` is unchanged, so the
    /// run record and input checks do not read every input's ends again (about 60-100 ms
    /// per task on 252 day files).
    pub(crate) fn pipeline(&self, output: Output) -> Result<Pipeline> {
        for i in &self.inputs {
            if let Some(stamp) = &i.stamp {
                Fingerprint::remember(Path::new(&i.path), stamp, &i.fingerprint);
            }
        }
        let p = Pipeline::builder()
            .inputs(self.inputs.iter().map(|i| i.path.clone()))
            .config(self.config()?)
            .output(output)
            .overwrite(true)
            .described(self.described.clone())
            .label("reduce")
            .build()?;
        let order: Vec<String> = p
            .inputs
            .files
            .iter()
            .map(|f| crate::record::canonical(&f.path))
            .collect();
        let planned: Vec<&String> = self.inputs.iter().map(|i| &i.path).collect();
        if order.iter().collect::<Vec<_>>() != planned {
            return Err(Error::Internal(
                "the planned inputs expand in another order than planned".into(),
            ));
        }
        Ok(p)
    }

    /// The file holding input `index`'s shuffled rows (see `map::MapFile`).
    pub(crate) fn map_output(&self, dir: &Path, index: usize) -> PathBuf {
        let i = &self.inputs[index];
        let key = format!(
            "{}|{}|{}|{}",
            i.path, i.fingerprint.size, i.fingerprint.mtime_ns, i.fingerprint.ends_hash
        );
        dir.join("_shuffle").join("map").join(format!(
            "{:016x}.tpmap",
            pipeline_core::stable_hash(key.as_bytes())
        ))
    }
}

/// Deals items of `sizes` to `n` groups: largest first, each to the group with the least so
/// far (ties to the lower group, then the lower index), each group listed in index order.
pub(crate) fn longest_first(sizes: &[u64], n: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
    let mut load = vec![0u64; n];
    let mut groups = vec![Vec::new(); n];
    for i in order {
        let g = (0..n).min_by_key(|&g| (load[g], g)).unwrap_or(0);
        load[g] = load[g].saturating_add(sizes[i].max(1));
        groups[g].push(i);
    }
    for g in &mut groups {
        g.sort_unstable();
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_balances_and_covers_everything_once() {
        // 10 → g0; 7 → g1; 3 (#3) → g1 (7 < 10); 3 (#4) → g0 (tie at 10, lower group);
        // 1 → g1 (10 < 13): loads 13 and 11.
        let g = longest_first(&[10, 1, 7, 3, 3], 2);
        assert_eq!(g, vec![vec![0, 4], vec![1, 2, 3]]);
        let g = longest_first(&[5, 5], 3);
        assert_eq!(g, vec![vec![0], vec![1], vec![]]);
    }

    /// A plan keeps its shuffle codec through JSON; a plan written before the choice existed
    /// (no such field) reads as LZ4, the codec its map outputs were written with.
    #[test]
    fn plans_keep_their_shuffle_codec_and_older_plans_read_as_lz4() {
        let plan = Plan {
            version: VERSION,
            inputs: Vec::new(),
            config: serde_json::json!({}),
            map_groups: vec![vec![]],
            reduce_tasks: 1,
            buckets: BUCKETS,
            shuffle_compression: ShuffleCompression::Zstd,
            described: Default::default(),
        };
        let mut v = serde_json::to_value(&plan).unwrap();
        assert_eq!(v["shuffle_compression"], "zstd");
        assert_eq!(serde_json::from_value::<Plan>(v.clone()).unwrap(), plan);
        v.as_object_mut().unwrap().remove("shuffle_compression");
        let older: Plan = serde_json::from_value(v).unwrap();
        assert_eq!(older.shuffle_compression, ShuffleCompression::Lz4);
        assert_eq!(ShuffleCompression::default(), ShuffleCompression::None);
        for (text, c) in [
            ("none", ShuffleCompression::None),
            ("lz4", ShuffleCompression::Lz4),
            ("zstd", ShuffleCompression::Zstd),
        ] {
            assert_eq!(text.parse::<ShuffleCompression>().unwrap(), c);
        }
        assert!("gzip".parse::<ShuffleCompression>().is_err());
    }
}
