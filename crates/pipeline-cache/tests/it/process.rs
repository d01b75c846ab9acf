//! What other processes see: a second opener of the same directory, and a writer killed in
//! the middle of its writes.
//!
//! The child processes are this test binary run again with `CHILD_ENV` set, filtered to
//! [`child_process_entry_point`], which does the child's part and exits.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pipeline_cache::{CacheError, CacheKey, CacheManager, Namespace, WriteBatch};

use crate::ticks;

const CHILD_ENV: &str = "PIPELINE_CACHE_TEST_CHILD";
const DIR_ENV: &str = "PIPELINE_CACHE_TEST_DIR";

fn child(role: &str, dir: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("test binary path"));
    c.args([
        "--exact",
        "process::child_process_entry_point",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, role)
    .env(DIR_ENV, dir);
    c
}

/// The child's side of the tests below; without `CHILD_ENV` (a normal test run) it does
/// nothing.
#[test]
fn child_process_entry_point() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(DIR_ENV).expect("dir"));
    match role.as_str() {
        "open" => match CacheManager::open(&dir) {
            Ok(_) => println!("CHILD opened"),
            Err(e @ CacheError::Busy { .. }) => println!("CHILD busy: {e}"),
            Err(e) => println!("CHILD other error: {e}"),
        },
        "writer" => writer(&dir),
        other => panic!("unknown child role {other}"),
    }
}

fn out_key(i: u64) -> CacheKey {
    CacheKey::of([b"out".as_slice(), &i.to_le_bytes()])
}

fn state_key(i: u64) -> CacheKey {
    CacheKey::of([b"state".as_slice(), &i.to_le_bytes()])
}

fn state_bytes(i: u64) -> Vec<u8> {
    format!("state after file {i}").repeat(50).into_bytes()
}

/// Writes, forever (until killed), one file's outputs and state per durable transaction,
/// reporting each commit on stdout, with non-durable single puts in between.
fn writer(dir: &Path) {
    let start: u64 = std::env::var("PIPELINE_CACHE_TEST_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let cache = CacheManager::builder()
        .dir(dir)
        .disk_bytes(64 << 20)
        .build()
        .expect("open cache");
    for i in start..start + 100_000 {
        let mut w = WriteBatch::new();
        w.put_batches(
            &Namespace::STAGE_OUTPUT,
            out_key(i),
            &[ticks(i, 20_000), ticks(i + 1, 5_000)],
        )
        .put_bytes(&Namespace::STATE, state_key(i), &state_bytes(i));
        cache.write(w).expect("write");
        println!("COMMITTED {i}");
        cache
            .ns(Namespace::USER)
            .put(out_key(i), &ticks(i, 3_000))
            .expect("put");
    }
}

#[test]
fn a_second_process_is_refused_with_the_holders_name() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CacheManager::open(dir.path()).unwrap();
    let out = child("open", dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CHILD busy"), "{text}");
    assert!(
        text.contains(&format!("process {}", std::process::id())),
        "holder not named: {text}"
    );
    assert!(text.contains("--no-cache"), "no way out suggested: {text}");
    // In this process too: one manager per directory.
    assert!(matches!(
        CacheManager::open(dir.path()),
        Err(CacheError::Busy { .. })
    ));
    drop(cache);
    let out = child("open", dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CHILD opened"), "{text}");
}

#[test]
fn a_writer_killed_mid_write_leaves_a_consistent_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut committed = Vec::new();
    // Three kills at different points after a commit report: right away (the child is
    // encoding or committing the next transaction), and a few milliseconds later.
    for (round, delay_ms) in [(0u64, 0u64), (1, 3), (2, 11)] {
        let start = round * 1_000_000;
        let mut c = child("writer", dir.path())
            .env("PIPELINE_CACHE_TEST_START", start.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = c.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while let Some(Ok(line)) = lines.next() {
            if let Some(i) = line.strip_prefix("COMMITTED ") {
                committed.push(i.parse::<u64>().unwrap());
                seen += 1;
                if seen == 4 {
                    break;
                }
            }
        }
        assert_eq!(seen, 4, "the child stopped early");
        std::thread::sleep(Duration::from_millis(delay_ms));
        c.kill().unwrap();
        c.wait().unwrap();

        let cache = CacheManager::open(dir.path()).unwrap();
        let report = cache.verify().unwrap();
        assert_eq!(report.corrupt, 0, "round {round}: {report:?}");
        let outs = cache.ns(Namespace::STAGE_OUTPUT);
        let states = cache.ns(Namespace::STATE);
        for &i in &committed {
            let b = outs
                .get_batches(out_key(i))
                .unwrap()
                .expect("committed output lost");
            assert_eq!(b.as_ref(), &[ticks(i, 20_000), ticks(i + 1, 5_000)]);
            let s = states
                .get_bytes(state_key(i))
                .unwrap()
                .expect("committed state lost");
            assert_eq!(&*s, state_bytes(i).as_slice());
        }
        // Atomic multi-put: no state without its outputs, nor outputs without their state.
        let mut out_keys = outs.keys().unwrap();
        let mut state_keys: Vec<CacheKey> = states.keys().unwrap();
        let n = out_keys.len();
        assert!(n >= committed.len());
        out_keys.sort();
        state_keys.sort();
        let expected_states: Vec<CacheKey> = {
            let mut all: Vec<u64> = (0..3u64)
                .flat_map(|r| (r * 1_000_000..r * 1_000_000 + 100).collect::<Vec<_>>())
                .collect();
            all.retain(|&i| out_keys.contains(&out_key(i)));
            let mut k: Vec<CacheKey> = all.into_iter().map(state_key).collect();
            k.sort();
            k
        };
        assert_eq!(
            state_keys, expected_states,
            "round {round}: outputs and states differ"
        );
        // Every entry present decodes, and the totals match the entries.
        let user = cache.ns(Namespace::USER);
        for k in user.keys().unwrap() {
            assert!(user.get(k).unwrap().is_some());
        }
        let stats = cache.get_stats().unwrap().disk.unwrap();
        let listed: u64 = [Namespace::STAGE_OUTPUT, Namespace::STATE, Namespace::USER]
            .into_iter()
            .flat_map(|ns| cache.ns(ns).entries().unwrap())
            .map(|e| e.stored_bytes)
            .sum();
        assert_eq!(stats.tier.bytes, listed, "round {round}: totals drifted");
        assert_eq!(stats.corrupt, 0);
    }
}
