//! What a cluster job folder holds so far, for `tickpipe inspect JOB`: which map and reduce
//! tasks are done, the inputs that failed, and, once the job is complete, its ledger and
//! quality verdict.

use std::path::Path;

use pipeline_core::{Ledger, Result};
use serde::Serialize;

use super::map::MapFile;
use super::plan::{PLAN_FILE, Plan};
use super::reduce::{JOB_LEDGER, task_ledger};

/// A job folder's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    /// `planned` (no map output yet), `mapping` (some map tasks done), `reducing` (every
    /// map task done, not every reduce task) or `complete` (`_SUCCESS` written).
    pub state: String,
    /// Inputs in the plan.
    pub inputs: usize,
    /// Map tasks in the plan.
    pub map_tasks: usize,
    /// Map tasks whose every input has its map output.
    pub maps_done: Vec<usize>,
    /// Inputs with a map output.
    pub inputs_mapped: usize,
    /// Inputs that failed in their map task (a corrupt or truncated file), with the error.
    pub inputs_failed: Vec<(String, String)>,
    /// Reduce tasks in the plan.
    pub reduce_tasks: usize,
    /// Reduce tasks that published their output and ledger.
    pub reduces_done: Vec<usize>,
    /// The job's ledger, once complete.
    pub ledger: Option<Ledger>,
    /// The job's quality verdict (`quality.json`), once complete with validation on.
    pub quality: Option<String>,
}

/// The state of the cluster job in `dir`; `None` when `dir` holds no plan.
pub fn status(dir: &Path) -> Result<Option<JobStatus>> {
    if !dir.join(PLAN_FILE).exists() {
        return Ok(None);
    }
    let plan = Plan::load(dir)?;
    let mut mapped = vec![false; plan.inputs.len()];
    let mut inputs_failed = Vec::new();
    for (i, input) in plan.inputs.iter().enumerate() {
        if let Some(done) = MapFile::read(&plan.map_output(dir, i))? {
            mapped[i] = true;
            if let Some(f) = done.failed {
                inputs_failed.push((input.path.clone(), f.error));
            }
        }
    }
    let maps_done: Vec<usize> = plan
        .map_groups
        .iter()
        .enumerate()
        .filter(|(_, group)| {
            group
                .iter()
                .all(|&i| mapped.get(i).copied().unwrap_or(false))
        })
        .map(|(t, _)| t)
        .collect();
    let reduces_done: Vec<usize> = (0..plan.reduce_tasks)
        .filter(|&t| task_ledger(dir, t).exists())
        .collect();
    let complete = dir.join(crate::run::SUCCESS).exists();
    let state = if complete {
        "complete"
    } else if maps_done.len() == plan.map_tasks() {
        "reducing"
    } else if mapped.iter().any(|&m| m) {
        "mapping"
    } else {
        "planned"
    };
    let (ledger, quality) = if complete {
        let ledger = std::fs::read_to_string(dir.join(JOB_LEDGER))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        (ledger, crate::quality::quality_verdict(dir))
    } else {
        (None, None)
    };
    Ok(Some(JobStatus {
        state: state.into(),
        inputs: plan.inputs.len(),
        map_tasks: plan.map_tasks(),
        maps_done,
        inputs_mapped: mapped.iter().filter(|&&m| m).count(),
        inputs_failed,
        reduce_tasks: plan.reduce_tasks,
        reduces_done,
        ledger,
        quality,
    }))
}
