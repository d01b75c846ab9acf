//! Cluster jobs through the binary and the shipped launchers (`deploy/`): the shared task
//! entrypoint run with the index variables Kubernetes and Slurm set, a reduce task killed
//! with `kill -9` and run again, and the manifests checked to call that entrypoint. Each job
//! is compared with `tickpipe run` on one machine: the same rows and the same quarantine,
//! also when an input is corrupt (it fails in its map task and is reported as one run does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::tempdir;

use crate::incremental::rows;
use crate::integrity::quarantine_rows;
use crate::util::*;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Runs `deploy/task.sh PHASE JOB` with `var=index`, the way a scheduler starts a task.
fn task(phase: &str, job: &Path, var: &str, index: usize) -> std::process::Child {
    Command::new("bash")
        .arg(deploy().join("task.sh"))
        .args([phase, job.to_str().unwrap()])
        .env("TICKPIPE", env!("CARGO_BIN_EXE_tickpipe"))
        .env_remove("TICKPIPE_TASK_INDEX")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env(var, index.to_string())
        .spawn()
        .expect("start task.sh")
}

fn run_task(phase: &str, job: &Path, var: &str, index: usize) {
    let status = task(phase, job, var, index).wait().unwrap();
    assert!(status.success(), "{phase} task {index} ({var}) failed");
}

/// `tickpipe run` of `input` on one machine into `tmp/one` (summary in `tmp/one.json`),
/// expecting exit `code`: its data and quarantine rows.
fn one_machine(tmp: &Path, input: &Path, code: i32) -> (Vec<String>, Vec<String>) {
    let one = tmp.join("one");
    tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            one.to_str().unwrap(),
            "-q",
        ])
        .arg("--summary-json")
        .arg(tmp.join("one.json"))
        .assert()
        .code(code);
    (rows(&one, false), quarantine_rows(&one))
}

/// The job's data, quarantine and ledger are [`one_machine`]'s.
fn assert_same_as_one_machine(tmp: &Path, job: &Path, want: &(Vec<String>, Vec<String>)) {
    let got = (rows(job, false), quarantine_rows(job));
    assert_eq!(got.0.len(), want.0.len(), "data row count");
    assert!(got.0 == want.0, "data rows differ from one machine's run");
    assert_eq!(got.1, want.1, "quarantine rows");
    let ledger: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(job.join("_ledger.json")).unwrap()).unwrap();
    let one = summary(&tmp.join("one.json"));
    assert_eq!(ledger["read"], one["rows_read"], "{ledger}");
    assert_eq!(ledger["written"], one["rows_written"], "{ledger}");
    // The job's quality report is the one run's (the last reduce task merges every task's).
    let quality = |dir: &Path| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join("quality.json")).expect("quality.json");
        serde_json::from_str(&text).unwrap()
    };
    let (q_job, q_one) = (quality(job), quality(&tmp.join("one")));
    for key in [
        "verdict",
        "rows_checked",
        "total_findings",
        "rules",
        "symbol_days",
        "files",
    ] {
        assert_eq!(q_job[key], q_one[key], "quality.json: {key}");
    }
}

/// What `tickpipe inspect JOB` says.
fn inspect(job: &Path) -> String {
    let out = tickpipe()
        .args(["inspect", job.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `tickpipe plan input --out job` with 3 map and 2 reduce tasks.
fn plan_job(input: &Path, job: &Path) {
    tickpipe()
        .args([
            "plan",
            input.to_str().unwrap(),
            "--out",
            job.to_str().unwrap(),
        ])
        .args(["--map-tasks", "3", "--reduce-tasks", "2"])
        .assert()
        .success();
}

#[test]
fn launcher_tasks_write_what_one_machine_writes_and_survive_kill_9() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 30_000, 6);
    let want = one_machine(tmp.path(), &input, 0);
    assert!(!want.1.is_empty(), "the sample quarantines rows");

    let job = tmp.path().join("job");
    plan_job(&input, &job);
    // Kubernetes Indexed Job: JOB_COMPLETION_INDEX; map task 1 retried.
    for i in [0, 1, 2, 1] {
        run_task("map", &job, "JOB_COMPLETION_INDEX", i);
    }
    // Slurm array: SLURM_ARRAY_TASK_ID. Reduce task 0 is killed midway first.
    let mut child = task("reduce", &job, "SLURM_ARRAY_TASK_ID", 0);
    let staging = job.join("_shuffle").join("reduce-t00000");
    let start = Instant::now();
    while !staging.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    // task.sh execs the binary, so the child is tickpipe itself.
    let _ = child.kill();
    let _ = child.wait();
    assert!(!job.join("_SUCCESS").exists());
    for j in [0, 1] {
        run_task("reduce", &job, "SLURM_ARRAY_TASK_ID", j);
    }
    assert!(
        job.join("_SUCCESS").exists(),
        "the last reduce task completes the job"
    );
    assert_same_as_one_machine(tmp.path(), &job, &want);
}

#[test]
fn a_corrupt_input_fails_in_the_job_as_in_one_run() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 30_000, 6);
    // Day 3 is cut in the middle of its gzip stream.
    let mut days: Vec<PathBuf> = std::fs::read_dir(&input)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    days.sort();
    let bytes = std::fs::read(&days[2]).unwrap();
    std::fs::write(&days[2], &bytes[..bytes.len() / 2]).unwrap();
    let name = days[2].file_name().unwrap().to_string_lossy().to_string();

    // One run exits 1: the file failed.
    let want = one_machine(tmp.path(), &input, 1);
    assert!(
        want.1
            .iter()
            .any(|r| r.contains("failed_file") && r.contains("corrupt")),
        "one run records the failed file: {:?}",
        want.1
    );

    let job = tmp.path().join("job");
    plan_job(&input, &job);
    assert!(inspect(&job).contains("planned: no map task done yet"));
    // Every map task finishes; the failed input's output says why.
    for i in 0..3 {
        if i == 1 {
            let said = inspect(&job);
            assert!(said.contains("mapping: 1 of 3 map tasks done"), "{said}");
        }
        tickpipe()
            .args([
                "map",
                "--plan",
                job.to_str().unwrap(),
                "--task",
                &i.to_string(),
                "-q",
            ])
            .assert()
            .success();
    }
    let said = inspect(&job);
    assert!(
        said.contains("reducing: every map task done, 0 of 2 reduce tasks done"),
        "{said}"
    );
    assert!(
        said.lines()
            .any(|l| l.contains("failed") && l.contains(&name) && l.contains("corrupt")),
        "{said}"
    );
    // The reduce task that owns the input's rejects reports it failed (exit 1, as one run).
    let mut failed = 0;
    for j in 0..2 {
        let a = tickpipe()
            .args([
                "reduce",
                "--plan",
                job.to_str().unwrap(),
                "--task",
                &j.to_string(),
            ])
            .assert();
        let out = a.get_output();
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                failed += 1;
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains(&name) && err.contains("corrupt"), "{err}");
            }
            other => panic!("reduce task {j}: exit {other:?}"),
        }
    }
    assert_eq!(failed, 1, "one reduce task reports the failed input");
    assert!(job.join("_SUCCESS").exists());
    assert_same_as_one_machine(tmp.path(), &job, &want);
    // `inspect` on the finished job: its state, tasks, ledger and verdict (also as JSON).
    let said = inspect(&job);
    for want in [
        "complete: a finished cluster job",
        "map tasks    3 of 3 done",
        "reduce tasks 2 of 2 done",
        "ledger       read ",
        "quality      ",
    ] {
        assert!(said.contains(want), "{want:?} in {said}");
    }
    let out = tickpipe()
        .args(["inspect", job.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let j = &v["outputs"][0]["job"];
    assert_eq!(j["state"], "complete");
    assert_eq!(j["reduces_done"], serde_json::json!([0, 1]));
    assert_eq!(j["inputs_failed"].as_array().map(Vec::len), Some(1));
    let ledger: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(job.join("_ledger.json")).unwrap()).unwrap();
    assert_eq!(j["ledger"], ledger);
}

#[test]
fn the_entrypoint_needs_a_phase_and_an_index() {
    let out = Command::new("bash")
        .arg(deploy().join("task.sh"))
        .args(["map", "job"])
        .env_remove("TICKPIPE_TASK_INDEX")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no task index"));
    let out = Command::new("bash")
        .arg(deploy().join("task.sh"))
        .args(["shuffle", "job"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn manifests_and_scripts_call_the_entrypoint_in_order() {
    let read = |p: &str| std::fs::read_to_string(deploy().join(p)).expect(p);
    for (file, phase) in [
        ("kubernetes/map-job.yaml", "map"),
        ("kubernetes/reduce-job.yaml", "reduce"),
    ] {
        let y = read(file);
        assert!(y.contains("completionMode: Indexed"), "{file}");
        assert!(
            y.contains(&format!(
                "command: [\"/deploy/task.sh\", \"{phase}\", \"/data/job\"]"
            )),
            "{file} runs the entrypoint's {phase} phase"
        );
    }
    let plan = read("kubernetes/plan-job.yaml");
    assert!(plan.contains("\"plan\"") && plan.contains("--map-tasks"));
    let order = read("kubernetes/run.sh");
    let pos = |s: &str| order.find(s).unwrap_or_else(|| panic!("run.sh lacks {s}"));
    assert!(pos("plan-job.yaml") < pos("map-job.yaml"));
    assert!(pos("job/tickpipe-map") < pos("reduce-job.yaml"));
    let sbatch = read("slurm/tickpipe.sbatch");
    assert!(sbatch.contains("task.sh\" \"$1\" \"$2\""));
    let submit = read("slurm/submit.sh");
    assert!(submit.contains("--array=0-$((maps - 1))"));
    assert!(submit.contains("--dependency=afterok:\"$map_id\""));
    assert!(submit.find("plan").unwrap() < submit.find("sbatch").unwrap());
}

/// An input rewritten after planning is refused by the map task that reads it, naming the
/// file; the other map tasks go on (the plan's fingerprints are taken as they are only for
/// files whose `stat` is unchanged).
#[test]
fn an_input_changed_after_planning_is_refused_by_its_map_task() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 6_000, 3);
    let job = tmp.path().join("job");
    plan_job(&input, &job);
    let mut days: Vec<PathBuf> = std::fs::read_dir(&input)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".csv.gz"))
        .collect();
    days.sort();
    let changed = &days[1];
    let bytes = std::fs::read(changed).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(changed, &bytes[..bytes.len() / 2]).unwrap();
    let mut refused = Vec::new();
    for i in 0..3 {
        let out = tickpipe()
            .args(["map", "--plan", job.to_str().unwrap(), "--task"])
            .arg(i.to_string())
            .arg("-q")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() {
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(err.contains("changed since it was planned"), "{err}");
            let name = changed.file_name().unwrap().to_string_lossy().to_string();
            assert!(err.contains(&name), "{err}");
            refused.push(i);
        }
    }
    assert_eq!(
        refused.len(),
        1,
        "exactly the task reading the file refuses"
    );
}

/// `--shuffle-compression` is kept in the plan (none by default) and a job shuffled with
/// LZ4 writes the rows the uncompressed one writes; an unknown codec is a usage error.
#[test]
fn the_shuffle_compression_is_planned_and_changes_no_row() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 4_000, 2);
    let mut outputs = Vec::new();
    for codec in [None, Some("lz4")] {
        let job = tmp
            .path()
            .join(format!("job-{}", codec.unwrap_or("default")));
        let mut plan = tickpipe();
        plan.args([
            "plan",
            input.to_str().unwrap(),
            "--out",
            job.to_str().unwrap(),
        ])
        .args(["--map-tasks", "2", "--reduce-tasks", "2"]);
        if let Some(c) = codec {
            plan.args(["--shuffle-compression", c]);
        }
        plan.assert().success();
        let planned: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(job.join("_plan.json")).unwrap())
                .unwrap();
        assert_eq!(planned["shuffle_compression"], codec.unwrap_or("none"));
        for phase in ["map", "reduce"] {
            for i in 0..2 {
                run_task(phase, &job, "TICKPIPE_TASK_INDEX", i);
            }
        }
        outputs.push(rows(&job, false));
    }
    assert!(!outputs[0].is_empty());
    assert_eq!(outputs[0], outputs[1]);
    tickpipe()
        .args(["plan", input.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("bad"))
        .args(["--shuffle-compression", "gzip"])
        .assert()
        .code(2);
}
