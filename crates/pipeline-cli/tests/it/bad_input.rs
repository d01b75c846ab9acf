//! Bad input: clear messages and the documented exit codes, never a panic.

use std::io::Write;

use tempfile::tempdir;

use crate::util::*;

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).to_string()
}

#[test]
fn missing_file_is_a_usage_error() {
    let tmp = tempdir().unwrap();
    let a = tickpipe()
        .args([
            "run",
            "/definitely/not/here.csv",
            "--out",
            tmp.path().to_str().unwrap(),
        ])
        .assert()
        .code(2);
    let e = stderr_of(&a);
    assert!(e.contains("not/here.csv"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn empty_and_header_only_files_run_with_zero_rows() {
    let tmp = tempdir().unwrap();
    let empty = tmp.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let header = tmp.path().join("header.csv");
    std::fs::write(&header, "ts,symbol,price,size\n").unwrap();
    for f in [&empty, &header] {
        let sj = tmp.path().join("s.json");
        let a = tickpipe()
            .args([
                "run",
                f.to_str().unwrap(),
                "--out",
                tmp.path().join("o").to_str().unwrap(),
                "--overwrite",
                "--summary-json",
            ])
            .arg(&sj)
            .assert();
        let code = a.get_output().status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "{code:?}: {}",
            stderr_of(&a)
        );
        assert!(!stderr_of(&a).contains("panicked"));
        let s = summary(&sj);
        assert_eq!(s["rows_read"], 0);
    }
}

#[test]
fn corrupt_gzip_fails_that_file_and_keeps_the_others() {
    let tmp = tempdir().unwrap();
    let input = gen_data(tmp.path(), 4_000, 2);
    // Truncate one day's gzip file in the middle.
    let mut files: Vec<_> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let victim = &files[1];
    let bytes = std::fs::read(victim).unwrap();
    std::fs::write(victim, &bytes[..bytes.len() / 2]).unwrap();
    let sj = tmp.path().join("s.json");
    let a = tickpipe()
        .args([
            "run",
            input.to_str().unwrap(),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
            "--summary-json",
        ])
        .arg(&sj)
        .assert()
        .code(1);
    let e = stderr_of(&a);
    assert!(!e.contains("panicked"), "{e}");
    let s = summary(&sj);
    assert_balanced(&s);
    let failed = s["files_failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{s}");
    assert!(
        failed[0]["file"]
            .as_str()
            .unwrap()
            .ends_with(victim.file_name().unwrap().to_str().unwrap())
    );
    assert!(
        failed[0]["error"].as_str().unwrap().contains("gzip")
            || failed[0]["error"].as_str().unwrap().contains("corrupt"),
        "{s}"
    );
    assert_eq!(s["files_ok"], 1);
}

#[test]
fn garbage_bytes_give_a_clear_message() {
    let tmp = tempdir().unwrap();
    let g = tmp.path().join("garbage.csv");
    let mut f = std::fs::File::create(&g).unwrap();
    let mut x: u32 = 12345;
    let bytes: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    f.write_all(&bytes).unwrap();
    drop(f);
    let a = tickpipe()
        .args([
            "run",
            g.to_str().unwrap(),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
        ])
        .assert();
    let code = a.get_output().status.code();
    assert!(matches!(code, Some(1) | Some(2)), "{code:?}");
    let e = stderr_of(&a);
    assert!(e.contains("garbage.csv"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn strict_mode_stops_at_the_first_bad_row_with_its_line() {
    let tmp = tempdir().unwrap();
    let f = tmp.path().join("t.csv");
    std::fs::write(
        &f,
        "ts,symbol,price,size\n2021-01-04T14:30:00Z,A,1.0,1\n2021-01-04T14:30:01Z,A,x1.0,1\n",
    )
    .unwrap();
    let a = tickpipe()
        .args([
            "run",
            f.to_str().unwrap(),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
            "--strict",
        ])
        .assert();
    let code = a.get_output().status.code();
    let e = stderr_of(&a);
    assert!(matches!(code, Some(1) | Some(2)), "{code:?} {e}");
    assert!(e.contains("t.csv:3"), "{e}");
    assert!(e.contains("price"), "{e}");
}

#[test]
fn bad_flags_are_usage_errors() {
    let tmp = tempdir().unwrap();
    let o = tmp.path().to_str().unwrap();
    tickpipe()
        .args(["run", "x.csv", "--out", o, "--memory-limit", "lots"])
        .assert()
        .code(2);
    tickpipe()
        .args(["run", "x.csv", "--out", o, "--shard", "3/2"])
        .assert()
        .code(2);
    tickpipe()
        .args(["run", "x.csv", "--out", o, "--columns", "prize=Px"])
        .assert()
        .code(2);
    tickpipe()
        .args([
            "run",
            tmp.path().join("nothing_here").to_str().unwrap(),
            "--out",
            o,
        ])
        .assert()
        .code(2);
}
