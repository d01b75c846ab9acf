//! `cargo xtask tidy`: repo-wide checks, also run as tests (so `cargo test --workspace`
//! enforces them): every crate's `lib.rs`/`main.rs` opens with a `//!` doc, and no source file
//! holds a stray `dbg!(`, `todo!(` or `unimplemented!(`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::project_root;

/// Runs every check and reports all problems at once.
pub fn run() -> Result<()> {
    let problems = check(&project_root());
    if problems.is_empty() {
        eprintln!("tidy: ok");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        bail!("{} problem(s)", problems.len())
    }
}

/// All problems found under `root`.
pub fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for krate in crate_roots(root) {
        let text = std::fs::read_to_string(&krate).unwrap_or_default();
        if !text.trim_start().starts_with("//!") {
            problems.push(format!(
                "{} does not open with a `//!` doc",
                krate.display()
            ));
        }
    }
    for file in rust_files(root) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // The needles are split so this file does not flag itself.
            for needle in [
                concat!("dbg", "!("),
                concat!("todo", "!("),
                concat!("unimplemented", "!("),
            ] {
                if code.contains(needle) {
                    problems.push(format!("{}:{}: stray {needle}", file.display(), i + 1));
                }
            }
        }
    }
    problems
}

fn crate_roots(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.push(root.join("xtask"));
    dirs.push(root.join("benches"));
    for d in dirs {
        for f in ["src/lib.rs", "src/main.rs"] {
            let p = d.join(f);
            if p.exists() {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![
        root.join("crates"),
        root.join("xtask"),
        root.join("benches"),
    ];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name();
            if p.is_dir() {
                if name != "target" {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_tidy() {
        let problems = check(&project_root());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn tidy_catches_problems() {
        let dir = std::env::temp_dir().join(format!("tickpipe-tidy-{}", std::process::id()));
        let src = dir.join("crates/x/src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("lib.rs"),
            format!("fn f() {{ {}1); }}\n", concat!("dbg", "!(")),
        )
        .unwrap();
        let p = check(&dir);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
