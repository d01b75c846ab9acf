//! Reports: HTML well-formed with every section, JSON round trip, history checks across runs,
//! suggested rules that read back.

use std::path::Path;

use pipeline_core::{Chunk, Config};
use pipeline_validate::{
    HISTORY_FILE, Mode, Profiler, RulesFile, Status, ValidationReport, Validator, Verdict,
};

use crate::util::{gen_data, read};

/// Checks that `html` is balanced markup: every tag closed in order, void elements
/// self-closed, only the five XML entities. Written here rather than with an XML crate: the
/// report emits an XHTML-compatible subset, and one test does not justify a dependency.
fn assert_well_formed(html: &str) {
    let body = html.strip_prefix("<!DOCTYPE html>\n").unwrap_or(html);
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find(['<', '&']) {
        let tail = &rest[at..];
        if tail.starts_with('&') {
            let end = tail.find(';').expect("entity ends with ;");
            let ent = &tail[..=end];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&ent),
                "entity {ent}"
            );
            rest = &tail[end + 1..];
            continue;
        }
        let end = tail.find('>').expect("tag ends with >");
        let tag = &tail[1..end];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
        } else if !tag.ends_with('/') {
            let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
            assert!(
                !["meta", "br", "hr", "img", "input", "link"].contains(&name.as_str()),
                "void <{name}> not self-closed"
            );
            if name == "style" {
                let close = tail.find("</style>").expect("style closed");
                rest = &tail[close + "</style>".len()..];
                continue;
            }
            stack.push(name);
        }
        rest = &tail[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

fn validate_dir(files: &[std::path::PathBuf], history: Option<&Path>) -> ValidationReport {
    let mut v = Validator::financial().unwrap();
    if let Some(h) = history {
        v.set_history_dir(h);
    }
    for (i, f) in files.iter().enumerate() {
        v.validate_file(
            f.display().to_string(),
            read(f, i as u32, 4096).into_iter().map(Ok),
        )
        .unwrap();
    }
    v.generate_report().unwrap().clone()
}

#[test]
fn html_is_self_contained_well_formed_and_has_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = gen_data(dir.path(), 20_000, 6, 4, 0.003);
    // Drop one day so the rows chart shows a gap.
    let kept: Vec<_> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, f)| f.clone())
        .collect();
    let r = validate_dir(&kept, None);
    let html = r.to_html();
    assert_well_formed(&html);
    for id in [
        "tpv-verdict",
        "tpv-rules",
        "tpv-charts",
        "tpv-examples",
        "tpv-symbols",
        "tpv-dataset",
        "tpv-columns",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "section {id}");
    }
    assert!(
        html.find("tpv-verdict") < html.find("tpv-rules"),
        "verdict first"
    );
    assert!(
        !html.contains("http://")
            || !html
                .replace("http://www.w3.org/2000/svg", "")
                .contains("http")
    );
    assert!(
        !html.contains("<script") && !html.contains("src="),
        "nothing fetched"
    );
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(
        r.days.iter().any(|d| d.missing),
        "the dropped day is a missing trading day"
    );
    assert_eq!(r.rule("missing_trading_day").unwrap().status, Status::Fail);
    let frag = r.html_fragment();
    assert_well_formed(&frag);
    assert!(frag.starts_with("<section class=\"tpv\""));
    // The page written to disk, for a look in a browser (TPV_REPORT_DIR=...).
    if let Ok(out) = std::env::var("TPV_REPORT_DIR") {
        r.write(&Path::new(&out).join("report.html")).unwrap();
        r.write(&Path::new(&out).join("report.json")).unwrap();
    }
}

#[test]
fn json_round_trips_and_exit_codes_follow_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = gen_data(dir.path(), 5_000, 2, 2, 0.002);
    let r = validate_dir(&files, None);
    let text = r.to_json().unwrap();
    let back = ValidationReport::from_json(&text).unwrap();
    assert_eq!(back, r);
    // A line per top-level field and per element of a top-level array, compact within.
    assert!(
        text.starts_with("{\n  \"schema_version\": 1,\n"),
        "{}",
        &text[..80]
    );
    let day_lines = text
        .lines()
        .filter(|l| l.starts_with("    {\"symbol\":") && l.contains("\"date\":"))
        .count();
    assert_eq!(day_lines, r.symbol_days.len());
    assert!(
        text.lines()
            .any(|l| l.starts_with("    {\"name\":\"null_key\","))
    );
    assert!(text.ends_with("\n}"), "{}", &text[text.len() - 40..]);
    let v: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
    for key in [
        "schema_version",
        "verdict",
        "rules",
        "symbols",
        "symbol_days",
        "days",
        "files",
        "returns_bps",
        "spreads_bps",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert_eq!(v["schema_version"], 1);
    let mut r2 = r.clone();
    r2.verdict = Verdict::Warn;
    assert_eq!(r2.exit_code(), 0);
    r2.fail_on = Verdict::Warn;
    assert_eq!(r2.exit_code(), 1);
    r2.verdict = Verdict::Pass;
    assert_eq!(r2.exit_code(), 0);
    r2.verdict = Verdict::Fail;
    assert_eq!(r2.exit_code(), 1);
    assert!(ValidationReport::from_json("{\"schema_version\": 9}").is_err());
    let err = r.write(&dir.path().join("r.txt")).unwrap_err().to_string();
    assert!(err.contains(".json or .html"), "{err}");
}

#[test]
fn history_flags_a_thin_day_and_duplicated_files_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("hist");
    let (files, _) = gen_data(&dir.path().join("a"), 24_000, 8, 2, 0.0);
    // Run 1: the first six days build the history.
    let r1 = validate_dir(&files[..6], Some(&hist));
    assert_eq!(r1.history.as_ref().unwrap().days_after, 12);
    assert_eq!(r1.rule("rows_vs_history").unwrap().failed, 0);
    // Run 2: day 7 with only its first tenth of rows, and day 8 given twice.
    let thin: Vec<Chunk> = read(&files[6], 0, 1 << 20);
    let whole = Chunk::concat(&thin).unwrap();
    let thin = whole.slice(0, whole.num_rows() / 10);
    let mut v = Validator::financial().unwrap();
    v.set_history_dir(&hist);
    v.validate_file(files[6].display().to_string(), [Ok(thin)])
        .unwrap();
    for name in ["day8.csv", "day8-copy.csv"] {
        v.validate_file(name, read(&files[7], 0, 4096).into_iter().map(Ok))
            .unwrap();
    }
    let r2 = v.generate_report().unwrap();
    let h = r2.rule("rows_vs_history").unwrap();
    assert_eq!(h.failed, 2, "both symbols' thin day: {:?}", h.examples);
    assert!(
        h.examples[0].note.contains("median"),
        "{}",
        h.examples[0].note
    );
    assert!(r2.days.iter().any(|d| d.flagged));
    let d = r2.rule("duplicated_file").unwrap();
    assert_eq!(
        (d.failed, d.examples[0].file.as_str()),
        (1, "day8-copy.csv")
    );
    assert_eq!(r2.verdict, Verdict::Fail);
    let text = std::fs::read_to_string(hist.join(HISTORY_FILE)).unwrap();
    assert_eq!(text.lines().count(), 16);
    assert!(!text.contains("\"file\""));
    // A corrupt history is an error naming the line.
    std::fs::write(hist.join(HISTORY_FILE), "{\"symbol\":1}\n").unwrap();
    let mut v = Validator::financial().unwrap();
    v.set_history_dir(&hist);
    v.validate_file("x.csv", read(&files[0], 0, 4096).into_iter().map(Ok))
        .unwrap();
    let e = v.generate_report().unwrap_err().to_string();
    assert!(e.contains("quality_history.jsonl:1"), "{e}");
}

#[test]
fn history_strategies_absolute_relative_zscore() {
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("hist");
    let (files, _) = gen_data(&dir.path().join("a"), 8_000, 7, 1, 0.0);
    validate_dir(&files[..6], Some(&hist));
    let rules = RulesFile::parse(
        r#"
[[anomaly]]
metric = "rows"
strategy = "absolute"
max_change = 1.0
[[anomaly]]
metric = "rows"
strategy = "relative"
min = 0.01
max = 100.0
[[anomaly]]
metric = "volume"
strategy = "zscore"
max_z = 1000.0
severity = "info"
"#,
    )
    .unwrap();
    let mut v = Validator::financial().unwrap();
    v.set_rules_file(rules).unwrap();
    v.set_history_dir(&hist);
    v.validate_file("d7.csv", read(&files[6], 0, 4096).into_iter().map(Ok))
        .unwrap();
    let r = v.generate_report().unwrap();
    assert_eq!(
        r.rule("history_rows_absolute").unwrap().status,
        Status::Fail
    );
    assert_eq!(
        r.rule("history_rows_relative").unwrap().status,
        Status::Pass
    );
    let z = r.rule("history_volume_zscore").unwrap();
    assert_eq!((z.status, z.checked), (Status::Pass, 1));
    assert_eq!(r.verdict, Verdict::Warn);
}

#[test]
fn suggested_rules_read_back_and_pass_their_own_sample() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = gen_data(dir.path(), 6_000, 2, 3, 0.0);
    let mut p = Profiler::default();
    for (i, f) in files.iter().enumerate() {
        for c in read(f, i as u32, 4096) {
            p.add(&c).unwrap();
        }
    }
    let suggested = p.suggest();
    assert_eq!(suggested.settings.tick_size, Some(0.01));
    assert!(
        suggested.columns["exchange"]
            .allowed
            .as_ref()
            .unwrap()
            .len()
            >= 5
    );
    assert!(suggested.required_columns.contains(&"price".to_string()));
    let text = suggested.to_toml().unwrap();
    let back = RulesFile::parse(&text).unwrap();
    assert_eq!(back, suggested);
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, &text).unwrap();
    let mut cfg = Config::default();
    cfg.validation.rules_file = path.display().to_string();
    let plan = pipeline_validate::ValidationPlan::from_config(&cfg, Mode::Standalone).unwrap();
    assert!(plan.enabled());
    let mut v = Validator::new(&cfg).unwrap();
    for (i, f) in files.iter().enumerate() {
        v.validate_file(
            f.display().to_string(),
            read(f, i as u32, 4096).into_iter().map(Ok),
        )
        .unwrap();
    }
    let r = v.generate_report().unwrap();
    for rule in ["bounds", "allowed_values", "tick_grid", "null_value"] {
        assert_eq!(r.rule(rule).unwrap().failed, 0, "{rule}");
    }
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.summary());
}
