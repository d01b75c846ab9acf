//! The run record (`OUT/_run.json`): what makes a dataset folder's output valid — each
//! input's path and [`Fingerprint`], the configuration, the stages and the run's own
//! settings (worker count, checkpoint interval, shard). A resume continues only when all of
//! these match and otherwise refuses, naming what changed, before anything is touched; a
//! new run into a folder that holds another run needs `overwrite`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pipeline_core::{Config, Error, Result};
use pipeline_io::{Fingerprint, InputFile, StatStamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The record's file name inside the output folder.
pub const RUN_RECORD: &str = "_run.json";

/// Record format version.
const VERSION: u32 = 1;

/// One input as recorded. Two are equal when their paths and fingerprints are: the stamp
/// only saves reading the file again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedInput {
    /// The canonical path (`-` for stdin), so the record does not depend on the directory
    /// the run was started from.
    pub path: String,
    /// The fingerprint (`None` for streams: stdin, FIFOs).
    pub fingerprint: Option<Fingerprint>,
    /// The `stat` the fingerprint was taken under, when the file had settled: a later run
    /// whose file still has this `stat` takes the fingerprint without reading it (see
    /// [`pipeline_io::Fingerprint::remember`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<StatStamp>,
}

impl PartialEq for RecordedInput {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.fingerprint == other.fingerprint
    }
}

impl Eq for RecordedInput {}

/// Hands the fingerprints recorded in `out`'s run record to this process for the `inputs`
/// that are recorded there (matched by canonical path), so describing and recording them
/// reads none of the files whose `stat` is unchanged: an append to a long history then
/// reads only the new files. Best effort: a missing or unreadable record changes nothing.
pub(crate) fn remember_fingerprints(out: &Path, inputs: &[InputFile]) {
    let Ok(Some(record)) = RunRecord::load_shared(out) else {
        return;
    };
    let recorded: std::collections::HashMap<&str, &RecordedInput> = record
        .inputs
        .iter()
        .filter(|i| i.stamp.is_some())
        .map(|i| (i.path.as_str(), i))
        .collect();
    if recorded.is_empty() {
        return;
    }
    for input in inputs {
        if let Some(r) = recorded.get(canonical(&input.path).as_str())
            && let (Some(stamp), Some(fp)) = (&r.stamp, &r.fingerprint)
        {
            Fingerprint::remember(&input.path, stamp, fp);
        }
    }
}

/// The record this process read last: its path, the `stat` it was read under (a record is
/// written to a new file and renamed over the old one, so any rewrite changes the stamp) and
/// the record.
type LoadedRecord = (
    std::path::PathBuf,
    pipeline_io::StatStamp,
    std::sync::Arc<RunRecord>,
);
static LOADED: std::sync::Mutex<Option<LoadedRecord>> = std::sync::Mutex::new(None);

/// What a dataset folder's run was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Format version.
    pub version: u32,
    /// The tickpipe version that wrote it.
    pub tickpipe_version: String,
    /// The run's label (`run`, `bars`, ...).
    pub command: String,
    /// The inputs, in processing order.
    pub inputs: Vec<RecordedInput>,
    /// The configuration, as JSON.
    pub config: Value,
    /// The stage chain: names and configuration keys, in order.
    pub stages: Vec<(String, u64)>,
    /// Worker count (stage state is kept per worker).
    pub workers: usize,
    /// Checkpoint interval in input bytes (`None`: the engine default).
    pub checkpoint_bytes: Option<u64>,
    /// `(k, n)` when the run was shard k of n.
    pub shard: Option<(usize, usize)>,
    /// The dataset's history: the first run, then each incremental run that added inputs.
    #[serde(default)]
    pub history: Vec<RecordedRun>,
}

/// One run that made or extended a dataset folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRun {
    /// When it started, in seconds since the Unix epoch.
    pub started_unix: u64,
    /// Inputs it processed (the ones added, for an incremental run).
    pub inputs: usize,
    /// Inputs of the dataset after it.
    pub total_inputs: usize,
    /// The first and last input it processed (canonical paths), when any.
    pub span: Option<(String, String)>,
    /// For a run that only changed feature parameters: the keys it changed (the feature
    /// columns were computed again from the dataset; no input was read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refeatured: Vec<String>,
    /// For a run that only changed settings of the quality report: the keys it changed (the
    /// rows were kept; the end-of-input flush ran again and the report was made anew).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report_only: Vec<String>,
    /// For a run that made the dataset again from the inputs because settings of the
    /// streaming stages changed (cleaning, outliers, the validation rules): those keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rerun: Vec<String>,
}

impl RecordedRun {
    /// The entry of a run that processes `added`, leaving `total` inputs in the dataset.
    pub fn now(added: &[RecordedInput], total: usize) -> Self {
        RecordedRun {
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            inputs: added.len(),
            total_inputs: total,
            span: added
                .first()
                .zip(added.last())
                .map(|(a, b)| (a.path.clone(), b.path.clone())),
            refeatured: Vec::new(),
            report_only: Vec::new(),
            rerun: Vec::new(),
        }
    }
}

/// Configuration keys that change how a run executes but not what it writes (the output does
/// not depend on chunk size, channel depth, memory budget, retries or the metadata cache; the
/// worker count is checked on its own).
const EXECUTION_ONLY: &[&str] = &[
    "cache.enabled",
    "cache.dir",
    "cache.memory_size",
    "cache.memory_policy",
    "cache.memory_ttl_secs",
    "cache.memory_tti_secs",
    "cache.disk_policy",
    "cache.disk_ttl_secs",
    "pipeline.chunk_size",
    "pipeline.max_workers",
    "pipeline.memory_limit",
    "pipeline.channel_capacity",
    "pipeline.retries",
    "pipeline.cache_max_size",
    "pipeline.enable_parallel_processing",
    "preprocessing.enable_parallel_processing",
];

/// Whether a configuration key only changes how a run executes or is watched, not what it
/// writes into the dataset: [`EXECUTION_ONLY`], and every `[monitor]` key (sampling,
/// alert thresholds, the HTTP endpoint: the metrics and run report describe the run that
/// wrote them, so an append with other alert thresholds writes its own).
fn execution_only(key: &str) -> bool {
    EXECUTION_ONLY.contains(&key) || key.starts_with("monitor.")
}

impl RunRecord {
    /// The record of a run about to start.
    pub fn new(
        command: &str,
        inputs: &[InputFile],
        config: &Config,
        stages: Vec<(String, u64)>,
        workers: usize,
        checkpoint_bytes: Option<u64>,
        shard: Option<(usize, usize)>,
    ) -> Result<Self> {
        let inputs: Vec<RecordedInput> = inputs.iter().map(record_input).collect::<Result<_>>()?;
        let history = vec![RecordedRun::now(&inputs, inputs.len())];
        Ok(RunRecord {
            version: VERSION,
            tickpipe_version: env!("CARGO_PKG_VERSION").to_string(),
            command: command.to_string(),
            inputs,
            config: serde_json::to_value(config)
                .map_err(|e| Error::Internal(format!("config as JSON: {e}")))?,
            stages,
            workers,
            checkpoint_bytes,
            shard,
            history,
        })
    }

    /// Reads the record of `out`, `None` when it has none.
    pub fn load(out: &Path) -> Result<Option<RunRecord>> {
        Ok(Self::load_shared(out)?.map(std::sync::Arc::unwrap_or_clone))
    }

    /// [`load`](Self::load), shared with the process's memo of it: no copy.
    pub(crate) fn load_shared(out: &Path) -> Result<Option<std::sync::Arc<RunRecord>>> {
        let path = out.join(RUN_RECORD);
        // A run reads the record up to four times (fingerprints, the incremental plan, the
        // refeature check, the new record's history): parsed once per process while the
        // file's `stat` is unchanged (the record of five years of daily files is 0.5 MB of
        // JSON), and shared rather than copied. `save` forgets it.
        let stamp = std::fs::metadata(&path)
            .ok()
            .map(|m| pipeline_io::StatStamp::of(&m));
        if let Some(st) = &stamp
            && let Ok(memo) = LOADED.lock()
            && let Some((p, s, r)) = memo.as_ref()
            && *p == path
            && s == st
        {
            return Ok(Some(r.clone()));
        }
        let r = Self::read(&path)?.map(std::sync::Arc::new);
        if let (Some(st), Some(r)) = (stamp, &r)
            && let Ok(mut memo) = LOADED.lock()
        {
            *memo = Some((path, st, r.clone()));
        }
        Ok(r)
    }

    fn read(path: &Path) -> Result<Option<RunRecord>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let r: RunRecord = serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "{} is not a run record tickpipe can read ({e}); use --overwrite or a new folder",
                path.display()
            ))
        })?;
        if r.version != VERSION {
            return Err(Error::Usage(format!(
                "{} has record version {} (this tickpipe writes {VERSION}); use --overwrite or a \
                 new folder",
                path.display(),
                r.version
            )));
        }
        Ok(Some(r))
    }

    /// Writes the record into `out` (atomically).
    pub fn save(&self, out: &Path) -> Result<()> {
        if let Ok(mut memo) = LOADED.lock() {
            *memo = None;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("run record: {e}")))?;
        crate::output::write_atomic(&out.join(RUN_RECORD), &(text + "\n"))
    }

    /// The recorded configuration.
    pub fn config(&self) -> Result<Config> {
        serde_json::from_value(self.config.clone())
            .map_err(|e| Error::Usage(format!("the run record's configuration: {e}")))
    }

    /// The configuration keys this run set to something other than the default, as
    /// `key = value` lines (execution-only keys included), for `tickpipe inspect`.
    pub fn config_summary(&self) -> Vec<String> {
        let default = match serde_json::to_value(Config::default()) {
            Ok(v) => v,
            Err(_) => return Vec::new(),
        };
        config_differences(&default, &self.config)
            .into_iter()
            .map(|(k, (_, v))| format!("{k} = {v}"))
            .collect()
    }

    /// The dataset's history in words, one line per run (first run, then appends).
    pub fn history_lines(&self) -> Vec<String> {
        self.history
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let span = h.span.as_ref().map_or(String::new(), |(a, b)| {
                    let name = |p: &str| {
                        Path::new(p)
                            .file_name()
                            .map_or(p.to_string(), |n| n.to_string_lossy().to_string())
                    };
                    if a == b {
                        format!(" ({})", name(a))
                    } else {
                        format!(" ({} … {})", name(a), name(b))
                    }
                });
                if !h.report_only.is_empty() && h.inputs == 0 {
                    return format!(
                        "quality report made again for {} (unix time {})",
                        h.report_only.join(", "),
                        h.started_unix
                    );
                }
                if !h.rerun.is_empty() {
                    return format!(
                        "made again from {} input{}{span} for {} (unix time {})",
                        h.inputs,
                        if h.inputs == 1 { "" } else { "s" },
                        h.rerun.join(", "),
                        h.started_unix
                    );
                }
                if !h.refeatured.is_empty() {
                    return format!(
                        "feature columns computed again for {} (unix time {})",
                        h.refeatured.join(", "),
                        h.started_unix
                    );
                }
                let verb = if i == 0 { "made from" } else { "added" };
                let report = if h.report_only.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", quality report settings changed ({})",
                        h.report_only.join(", ")
                    )
                };
                format!(
                    "{verb} {} input{}{span}, {} in all{report} (unix time {})",
                    h.inputs,
                    if h.inputs == 1 { "" } else { "s" },
                    h.total_inputs,
                    h.started_unix
                )
            })
            .collect()
    }

    /// What differs between this record and `now` other than the inputs: configuration,
    /// command, stages and shard ([`RunRecord::differences`] without the input items).
    pub fn setup_differences(&self, now: &RunRecord) -> Vec<String> {
        let mut out = Vec::new();
        for (key, (old, new)) in config_differences(&self.config, &now.config) {
            if !execution_only(&key) {
                out.push(format!("config key `{key}` was {old}, is now {new}"));
            }
        }
        if self.command != now.command {
            out.push(format!(
                "the command was `{}`, is now `{}`",
                self.command, now.command
            ));
        } else if self.stages != now.stages {
            let names = |s: &[(String, u64)]| {
                s.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            };
            out.push(format!(
                "the stages were {}, are now {}",
                names(&self.stages),
                names(&now.stages)
            ));
        }
        if self.shard != now.shard {
            out.push(format!(
                "the shard was {:?}, is now {:?}",
                self.shard, now.shard
            ));
        }
        out
    }

    /// Whether `now` is the same run as this one but for its inputs (an append or a changed
    /// history may continue it).
    pub fn same_setup(&self, now: &RunRecord) -> bool {
        self.setup_differences(now).is_empty()
    }

    /// The configuration keys (dotted) whose values differ between this record and `now`,
    /// other than the execution-only ones.
    pub(crate) fn changed_keys(&self, now: &RunRecord) -> Vec<String> {
        config_differences(&self.config, &now.config)
            .into_keys()
            .filter(|k| !execution_only(k))
            .collect()
    }

    /// `now` with the configuration `keys` set back to their values in this record: what
    /// is left to compare once those keys' change is taken care of.
    pub(crate) fn with_recorded(&self, now: &RunRecord, keys: &[String]) -> RunRecord {
        let mut masked = now.clone();
        for k in keys {
            copy_key(&self.config, &mut masked.config, k);
        }
        masked
    }

    /// What differs between this (earlier) record and `now`, in words, one item per
    /// difference; empty when `now` would write the same output. Input differences come
    /// first, then configuration keys, stages and settings.
    pub fn differences(&self, now: &RunRecord) -> Vec<String> {
        let mut out = input_differences(&self.inputs, &now.inputs);
        out.extend(self.setup_differences(now));
        out
    }
}

/// How `now`'s inputs differ from `earlier`'s: removed, added, reordered, changed files.
fn input_differences(earlier: &[RecordedInput], now: &[RecordedInput]) -> Vec<String> {
    let mut out = Vec::new();
    // How the input at one path changed.
    let compare = |e: &RecordedInput, n: &RecordedInput, out: &mut Vec<String>| match (
        &e.fingerprint,
        &n.fingerprint,
    ) {
        (Some(a), Some(b)) => {
            if let Some(change) = b.change_from(a) {
                out.push(format!("input {} changed: {change}", e.path));
            }
        }
        (None, None) => out.push(format!(
            "input {} is a stream (stdin or a pipe): it cannot be read again",
            e.path
        )),
        _ => out.push(format!("input {} changed kind (file or stream)", e.path)),
    };
    // An append or a re-run: the recorded paths begin this run's, which are in strictly
    // increasing order (so none repeats). Compared pair by pair; the maps below took 4% of
    // a one-day append to five years of daily files.
    if now.len() >= earlier.len()
        && earlier.iter().zip(now).all(|(e, n)| e.path == n.path)
        && now.windows(2).all(|w| w[0].path < w[1].path)
    {
        for (e, n) in earlier.iter().zip(now) {
            compare(e, n, &mut out);
        }
        for n in &now[earlier.len()..] {
            out.push(format!("input {} is new", n.path));
        }
        return out;
    }
    let now_by: BTreeMap<&str, &RecordedInput> = now.iter().map(|i| (i.path.as_str(), i)).collect();
    let was_by: BTreeMap<&str, &RecordedInput> =
        earlier.iter().map(|i| (i.path.as_str(), i)).collect();
    for e in earlier {
        match now_by.get(e.path.as_str()) {
            None => out.push(format!(
                "input {} is gone (deleted, moved or not given)",
                e.path
            )),
            Some(n) => compare(e, n, &mut out),
        }
    }
    for n in now {
        if !was_by.contains_key(n.path.as_str()) {
            out.push(format!("input {} is new", n.path));
        }
    }
    if out.is_empty()
        && earlier
            .iter()
            .map(|i| &i.path)
            .ne(now.iter().map(|i| &i.path))
    {
        out.push("the inputs are in another order".into());
    }
    out
}

/// Sets the dotted `key` of `to` to its value in `from` (nothing when `from` lacks it).
fn copy_key(from: &Value, to: &mut Value, key: &str) {
    let value = key.split('.').try_fold(from, |v, p| v.get(p)).cloned();
    if let Some(v) = value {
        set(to, key, v);
    }
}

/// Dotted keys whose values differ between two JSON configurations: `key → (old, new)`.
fn config_differences(a: &Value, b: &Value) -> BTreeMap<String, (String, String)> {
    let mut fa = BTreeMap::new();
    let mut fb = BTreeMap::new();
    flatten("", a, &mut fa);
    flatten("", b, &mut fb);
    let keys: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (fa.get(k), fb.get(k));
            (x != y).then(|| {
                let show = |v: Option<&Value>| v.map_or("unset".to_string(), Value::to_string);
                (k.clone(), (show(x), show(y)))
            })
        })
        .collect()
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The configuration a resume runs with: the recorded one, with the caller's settings on
/// top wherever the caller set something other than the default (a plain `--resume` needs
/// no flags repeated). Returns the configuration and the keys where the caller asked for a
/// value that differs from the record in a way that changes the output.
pub fn resume_config(recorded: &Config, asked: &Config) -> Result<(Config, Vec<String>)> {
    let to_json = |c: &Config| {
        serde_json::to_value(c).map_err(|e| Error::Internal(format!("config as JSON: {e}")))
    };
    let (rec, ask, def) = (
        to_json(recorded)?,
        to_json(asked)?,
        to_json(&Config::default())?,
    );
    let mut fr = BTreeMap::new();
    let mut fa = BTreeMap::new();
    let mut fd = BTreeMap::new();
    flatten("", &rec, &mut fr);
    flatten("", &ask, &mut fa);
    flatten("", &def, &mut fd);
    let mut merged = rec.clone();
    let mut conflicts = Vec::new();
    for (key, value) in &fa {
        if fd.get(key) == Some(value) || fr.get(key) == Some(value) {
            continue;
        }
        if execution_only(key) {
            set(&mut merged, key, value.clone());
        } else {
            conflicts.push(format!(
                "config key `{key}`: the interrupted run used {}, this run asks for {value}",
                fr.get(key).map_or("unset".to_string(), Value::to_string)
            ));
        }
    }
    let config = serde_json::from_value(merged)
        .map_err(|e| Error::Internal(format!("merged resume configuration: {e}")))?;
    Ok((config, conflicts))
}

fn set(v: &mut Value, dotted: &str, value: Value) {
    let mut cur = v;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            if let Value::Object(m) = cur {
                m.insert((*p).to_string(), value);
            }
            return;
        }
        match cur {
            Value::Object(m) => {
                cur = m
                    .entry((*p).to_string())
                    .or_insert(Value::Object(Default::default()));
            }
            _ => return,
        }
    }
}

fn record_input(input: &InputFile) -> Result<RecordedInput> {
    if input.is_stream() {
        return Ok(RecordedInput {
            path: canonical(&input.path),
            fingerprint: None,
            stamp: None,
        });
    }
    let fingerprint = Fingerprint::of_input(input)?;
    Ok(RecordedInput {
        path: canonical(&input.path),
        fingerprint: Some(fingerprint),
        stamp: Fingerprint::stamp_of_input(input),
    })
}

/// The canonical form of an input path (as given when it cannot be resolved, e.g. `-`).
pub fn canonical(path: &Path) -> String {
    if path.as_os_str() == "-" {
        return "-".into();
    }
    pipeline_io::canonical_path(path)
        .unwrap_or_else(|_| PathBuf::from(path))
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(dir: &Path, cfg: &Config, files: &[&str]) -> RunRecord {
        let inputs: Vec<InputFile> = files.iter().map(|f| InputFile::new(dir.join(f))).collect();
        RunRecord::new(
            "run",
            &inputs,
            cfg,
            vec![("features".into(), 7)],
            2,
            None,
            None,
        )
        .unwrap()
    }

    #[test]
    fn differences_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.csv", "b.csv"] {
            std::fs::write(dir.path().join(f), "ts,price\n1,2\n").unwrap();
        }
        let cfg = Config::default();
        let a = record(dir.path(), &cfg, &["a.csv", "b.csv"]);
        assert!(a.differences(&a).is_empty());
        // Appended rows, a changed threshold, an execution-only key.
        std::fs::write(dir.path().join("b.csv"), "ts,price\n1,2\n3,4\n").unwrap();
        let mut cfg2 = cfg.clone();
        cfg2.preprocessing.outlier_threshold = 3.0;
        cfg2.pipeline.memory_limit = "1GiB".parse().unwrap();
        cfg2.cache.enabled = false;
        // How the run is watched changes nothing in the dataset.
        cfg2.monitor.memory_alert_pct = 50.0;
        cfg2.monitor.interval_ms = 250;
        let b = record(dir.path(), &cfg2, &["a.csv", "b.csv"]);
        let d = a.differences(&b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("b.csv") && d[0].contains("grew"), "{d:?}");
        assert!(d[1].contains("preprocessing.outlier_threshold"), "{d:?}");
        // A deleted and a new file.
        let c = record(dir.path(), &cfg, &["b.csv"]);
        let d = a.differences(&c);
        assert!(
            d.iter().any(|x| x.contains("a.csv") && x.contains("gone")),
            "{d:?}"
        );
        // An appended file (the recorded inputs begin this run's, compared pair by pair)
        // and the same files in another order (through the maps).
        std::fs::write(dir.path().join("c.csv"), "ts,price\n1,2\n").unwrap();
        let d = b.differences(&record(dir.path(), &cfg2, &["a.csv", "b.csv", "c.csv"]));
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("c.csv") && d[0].ends_with("is new"), "{d:?}");
        let d = b.differences(&record(dir.path(), &cfg2, &["b.csv", "a.csv"]));
        assert_eq!(d, ["the inputs are in another order"]);
        assert_eq!(
            input_differences(&b.inputs, &b.inputs[..1]),
            [format!(
                "input {} is gone (deleted, moved or not given)",
                b.inputs[1].path
            )]
        );
        // Round trip.
        a.save(dir.path()).unwrap();
        assert_eq!(RunRecord::load(dir.path()).unwrap(), Some(a));
    }

    #[test]
    fn resume_takes_recorded_settings_unless_asked_otherwise() {
        let mut recorded = Config::default();
        recorded.preprocessing.outlier_threshold = 3.0;
        recorded.pipeline.max_workers = 3;
        // A plain resume: defaults asked, the record wins.
        let (c, conflicts) = resume_config(&recorded, &Config::default()).unwrap();
        assert!(conflicts.is_empty());
        assert_eq!(c, recorded);
        // An execution-only change is taken; an output-changing one is a conflict.
        let mut asked = Config::default();
        asked.pipeline.memory_limit = "2GiB".parse().unwrap();
        asked.preprocessing.outlier_threshold = 5.0;
        let (c, conflicts) = resume_config(&recorded, &asked).unwrap();
        assert_eq!(c.pipeline.memory_limit, asked.pipeline.memory_limit);
        assert_eq!(conflicts.len(), 1);
        assert!(conflicts[0].contains("outlier_threshold"), "{conflicts:?}");
    }
}
