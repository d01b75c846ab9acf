//! `tickpipe reduce --task j`: the buckets of task `j` (assigned by size once the maps are
//! done) through the one-machine engine and stages, published into the job folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipeline_core::{Error, Ledger, Result, SourceId};
use pipeline_parallel::SourceSpec;

use super::map::{Done, MapFile, bucket_of};
use super::plan::{Plan, longest_first};
use super::shuffled::ShuffledSource;
use crate::output::{DATA_DIR, Output};
use crate::report::RunReport;

/// The job's ledger (the sum over reduce tasks), written by the last task to finish.
pub const JOB_LEDGER: &str = "_ledger.json";
/// Folder of the reduce tasks' ledgers.
const TASK_LEDGERS: &str = "_ledgers";
/// Folder of what each reduce task's validation collected, merged into the job's
/// `quality.json` by the last task to finish.
const TASK_QUALITY: &str = "_quality";

/// Runs reduce task `task` of the job in `dir` (every map task must be done). Its data
/// files go to `DIR/data/…/t<task>-<name>`, its quarantine to `DIR/quarantine-t<task>-….parquet`
/// its ledger to `DIR/_ledgers/` and its validation results to `DIR/_quality/`; running it
/// again (after a crash) replaces exactly what it wrote. When all reduce tasks are done,
/// `DIR/_ledger.json` (checked to balance), the job's quality report (`quality.json`,
/// `quality.html` and the metrics history `quality_history.jsonl`, over every task's
/// symbols, as `tickpipe run` writes them) and `DIR/_SUCCESS` are written.
pub fn reduce_task(dir: &Path, task: usize) -> Result<RunReport> {
    let plan = Plan::load(dir)?;
    if task >= plan.reduce_tasks {
        return Err(Error::Usage(format!(
            "reduce task {task}: the plan has {} reduce tasks (0..{})",
            plan.reduce_tasks, plan.reduce_tasks
        )));
    }
    let dones = map_outputs(&plan, dir)?;
    let mine = buckets_of_task(&plan, &dones, task);
    let tag = format!("t{task:05}");
    let ledger_file = task_ledger(dir, task);
    let quality_file = task_quality(dir, task);
    crate::output::remove_if_exists(&ledger_file)?;
    crate::output::remove_if_exists(&quality_file)?;
    crate::output::remove_if_exists(&dir.join(crate::run::SUCCESS))?;
    crate::output::remove_if_exists(&dir.join(JOB_LEDGER))?;
    for f in [crate::quality::QUALITY_JSON, crate::quality::QUALITY_HTML] {
        crate::output::remove_if_exists(&dir.join(f))?;
    }

    // The staging folder is this task's alone: whatever an earlier attempt killed midway
    // (kill -9, a lost node) left there is discarded and the task starts afresh.
    let stage = dir.join("_shuffle").join(format!("reduce-{tag}"));
    match std::fs::remove_dir_all(&stage) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&stage, e)),
    }
    let mut pipeline = plan.pipeline(Output::dataset(&stage))?;
    if let Some(q) = pipeline.quality.as_mut() {
        q.keep_state(quality_file);
    }
    let batch_rows = pipeline.s.config.pipeline.chunk_size;
    let batch_rows = if batch_rows == 0 { 65_536 } else { batch_rows };
    let outputs: Vec<PathBuf> = (0..plan.inputs.len())
        .map(|i| plan.map_output(dir, i))
        .collect();
    let sizes: Vec<u64> = dones
        .iter()
        .map(|d| {
            d.buckets
                .iter()
                .filter(|(b, _)| mine.contains(b))
                .map(|(_, bucket)| bucket.bytes)
                .sum()
        })
        .collect();
    // The rows each of this task's symbols brings over the whole job: its workers get the
    // symbols by these (the first chunk, one day, is a poor sample of a year).
    let mut weights: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for d in &dones {
        for (sym, n) in &d.symbols {
            if mine.contains(&bucket_of(sym, plan.buckets)) {
                *weights.entry(sym.clone()).or_default() += n;
            }
        }
    }
    pipeline.key_weights = weights.into_iter().collect();
    let reduce_tasks = plan.reduce_tasks;
    let dones = Arc::new(dones);
    pipeline.reopen = Some(Arc::new(move |specs: Vec<SourceSpec>| {
        Ok(specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let out = outputs[i].clone();
                let segments: Vec<(u64, u64)> = dones[i]
                    .buckets
                    .iter()
                    .filter(|(b, _)| mine.contains(b))
                    .flat_map(|(_, bucket)| bucket.segments.iter().copied())
                    .collect();
                // The reader's rejects have no bucket (a malformed line may have no
                // symbol): input i's belong to task i mod M, so each is counted once.
                let owns_rejects = i % reduce_tasks == task;
                let failure = dones[i].failed.clone();
                let rejects_at = dones[i].rejects_at;
                SourceSpec {
                    name: spec.name,
                    size_bytes: sizes[i],
                    open: Arc::new(move || {
                        // The task that owns the rejects also reports a failed input.
                        let (rejects, failure) = if owns_rejects {
                            (MapFile::rejects(&out, rejects_at)?, failure.clone())
                        } else {
                            (Vec::new(), None)
                        };
                        let src = ShuffledSource::open(
                            i as SourceId,
                            out.clone(),
                            segments.clone(),
                            (rejects, failure),
                            batch_rows,
                        )?;
                        Ok(Box::new(src) as Box<dyn pipeline_core::Source>)
                    }),
                }
            })
            .collect())
    }));
    let report = pipeline.run()?;
    publish(&stage, dir, &tag)?;
    let ledger = ledger_of(&report);
    let text = serde_json::to_string_pretty(&ledger)
        .map_err(|e| Error::Internal(format!("ledger as JSON: {e}")))?;
    std::fs::create_dir_all(dir.join(TASK_LEDGERS))
        .map_err(|e| Error::io(dir.join(TASK_LEDGERS), e))?;
    crate::output::write_atomic(&ledger_file, &(text + "\n"))?;
    finish(&plan, dir)?;
    Ok(report)
}

/// Where reduce task `task` of the job in `dir` writes its ledger (last, once its output
/// is published).
pub(crate) fn task_ledger(dir: &Path, task: usize) -> PathBuf {
    dir.join(TASK_LEDGERS).join(format!("t{task:05}.json"))
}

/// Where reduce task `task` of the job in `dir` keeps what its validation stage collected.
fn task_quality(dir: &Path, task: usize) -> PathBuf {
    dir.join(TASK_QUALITY).join(format!("t{task:05}.json"))
}

/// The finished map output of every input, or an error naming how many are missing.
fn map_outputs(plan: &Plan, dir: &Path) -> Result<Vec<Done>> {
    let mut dones = Vec::new();
    let mut missing = 0;
    for i in 0..plan.inputs.len() {
        match MapFile::read(&plan.map_output(dir, i))? {
            Some(done) => dones.push(done),
            None => missing += 1,
        }
    }
    if missing > 0 {
        return Err(Error::Usage(format!(
            "{missing} of {} inputs have no map output yet; run every map task first",
            plan.inputs.len()
        )));
    }
    Ok(dones)
}

/// The buckets of reduce task `task`: buckets by total bytes, largest first to the least
/// loaded task; the same answer on every task.
fn buckets_of_task(plan: &Plan, dones: &[Done], task: usize) -> std::collections::BTreeSet<u32> {
    let mut bytes = vec![0u64; plan.buckets as usize];
    for d in dones {
        for (b, bucket) in &d.buckets {
            if let Some(slot) = bytes.get_mut(*b as usize) {
                *slot += bucket.bytes;
            }
        }
    }
    // Empty buckets weigh nothing, so they cannot unbalance the tasks.
    let groups = longest_first(&bytes, plan.reduce_tasks);
    groups
        .get(task)
        .map(|g| {
            g.iter()
                .map(|&b| b as u32)
                .filter(|b| bytes[*b as usize] > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// The ledger of a run report.
fn ledger_of(r: &RunReport) -> Ledger {
    Ledger {
        read: r.rows_read,
        written: r.rows_written,
        quarantined: r.quarantined_by_reason.clone(),
        removed: r.rows_removed.clone(),
        repaired: r.values_repaired.clone(),
        added: r.rows_added.clone(),
    }
}

/// Moves the staged output of task `tag` into the job folder, after removing whatever an
/// earlier attempt of the same task published there.
fn publish(stage: &Path, dir: &Path, tag: &str) -> Result<()> {
    let data = dir.join(DATA_DIR);
    let prefix = format!("{tag}-");
    for f in files_under(&data)? {
        if f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        {
            std::fs::remove_file(&f).map_err(|e| Error::io(&f, e))?;
        }
    }
    let q_prefix = format!("quarantine-{tag}-");
    for f in read_dir(dir)? {
        if f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&q_prefix))
        {
            std::fs::remove_file(&f).map_err(|e| Error::io(&f, e))?;
        }
    }
    let staged = stage.join(DATA_DIR);
    for f in files_under(&staged)? {
        let Some(name) = f.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let rel = f
            .parent()
            .and_then(|p| p.strip_prefix(&staged).ok())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let target_dir = data.join(rel);
        std::fs::create_dir_all(&target_dir).map_err(|e| Error::io(&target_dir, e))?;
        let target = target_dir.join(format!("{prefix}{name}"));
        std::fs::rename(&f, &target).map_err(|e| Error::io(&target, e))?;
    }
    for f in read_dir(stage)? {
        let Some(name) = f.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if name.starts_with("quarantine") && name.ends_with(".parquet") {
            let target = dir.join(format!("{q_prefix}{name}"));
            std::fs::rename(&f, &target).map_err(|e| Error::io(&target, e))?;
        }
    }
    Ok(())
}

/// When every reduce task has published its ledger: the job's ledger, checked to balance,
/// and `_SUCCESS`.
fn finish(plan: &Plan, dir: &Path) -> Result<()> {
    let mut total = Ledger::default();
    for t in 0..plan.reduce_tasks {
        let path = task_ledger(dir, t);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let l: Ledger = serde_json::from_str(&text)
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
        total.merge(&l);
    }
    let removed: u64 = total.removed.values().sum();
    let quarantined: u64 = total.quarantined.values().sum();
    if total.read != total.written + quarantined + removed {
        return Err(Error::Internal(format!(
            "the job's ledger does not balance: {total:?}"
        )));
    }
    quality(plan, dir, &total)?;
    let text = serde_json::to_string_pretty(&total)
        .map_err(|e| Error::Internal(format!("ledger as JSON: {e}")))?;
    crate::output::write_atomic(&dir.join(JOB_LEDGER), &(text.clone() + "\n"))?;
    crate::output::write_atomic(&dir.join(crate::run::SUCCESS), &(text + "\n"))
}

/// The job's quality report from every reduce task's validation results, with the job's
/// ledger, into `dir` (nothing when validation is off). Its symbols are the tasks' symbols,
/// each checked whole by one task, so the report is the one `tickpipe run` writes; the
/// history checks are idempotent (they skip earlier records of the days being checked), so
/// two tasks finishing at once write the same report.
fn quality(plan: &Plan, dir: &Path, ledger: &Ledger) -> Result<()> {
    let p = plan.pipeline(Output::Discard)?;
    let Some(q) = &p.quality else {
        return Ok(());
    };
    for t in 0..plan.reduce_tasks {
        q.absorb(&task_quality(dir, t))?;
    }
    let mut table = pipeline_core::SourceTable::default();
    for f in &p.inputs.files {
        table.add(f.display_name());
    }
    q.finish(&table, ledger, Some(dir))?;
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Every file below `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for p in read_dir(&d)? {
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
