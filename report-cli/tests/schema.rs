//! The `--json` of `report`, `hotspots`, `leaks`, `info` and `diff` is what
//! `docs/schema/*.schema.json` (JSON Schema draft 2020-12) and the JSON
//! section of `docs/CLI.md` document: the real binary's output on every
//! session under `tests/data` — and on a session made here that has what
//! those lack (counters read by a scope, recommendations, a leak, an
//! asynchronous operation, a call-tree cut, a sampled allocation mode),
//! cut short as well as whole — validates against its schema. Every object
//! schema forbids properties it does not list and requires those it does,
//! so a field added to a report without its documentation fails here, and
//! so does one taken away.

mod common;

use std::path::{Path, PathBuf};

use common::rich::rich_session;
use common::{pulse, scratch, write};
use jsonschema::{Draft, Registry, Resource, Validator};
use pulse_format::AllocMode;
use serde_json::Value;

const COMMANDS: [&str; 5] = ["report", "hotspots", "leaks", "info", "diff"];

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema")
}

/// Each schema file by command, parsed.
fn schemas() -> Vec<(&'static str, Value)> {
    COMMANDS
        .iter()
        .map(|c| {
            let path = schema_dir().join(format!("{c}.schema.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (*c, v)
        })
        .collect()
}

/// A validator per command; the schemas refer to each other by their `$id`s.
struct Validators(Vec<(&'static str, Validator)>);

impl Validators {
    fn new() -> Self {
        let all = schemas();
        let registry = Registry::new()
            .extend(all.iter().map(|(_, v)| {
                (v["$id"].as_str().expect("$id").to_owned(), Resource::from_contents(v.clone()))
            }))
            .expect("the schemas' ids")
            .prepare()
            .expect("the schemas refer to each other");
        Validators(
            all.iter()
                .map(|(c, v)| {
                    let validator = jsonschema::options()
                        .with_draft(Draft::Draft202012)
                        .with_registry(&registry)
                        .build(v)
                        .unwrap_or_else(|e| panic!("{c}.schema.json: {e}"));
                    (*c, validator)
                })
                .collect(),
        )
    }

    /// The output's problems against `command`'s schema, one line each.
    fn problems(&self, command: &str, output: &Value) -> Vec<String> {
        let (_, v) = self.0.iter().find(|(c, _)| *c == command).expect("a schema");
        v.iter_errors(output).map(|e| format!("at {}: {e}", e.instance_path())).collect()
    }

    #[track_caller]
    fn check(&self, command: &str, what: &str, stdout: &str) {
        let output: Value =
            serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        let problems = self.problems(command, &output);
        assert!(
            problems.is_empty(),
            "{what}: against {command}.schema.json:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn the_schemas_are_draft_2020_12_and_closed() {
    for (c, v) in schemas() {
        assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema", "{c}");
        if let Err(e) = jsonschema::meta::validate(&v) {
            panic!("{c}.schema.json is not a valid schema: {e}");
        }
        // Every object lists its properties, allows no other, and requires
        // each (a field is there, perhaps null, in every output).
        let mut stack = vec![(String::from("#"), &v)];
        while let Some((at, node)) = stack.pop() {
            match node {
                Value::Object(m) => {
                    if m.get("type") == Some(&Value::from("object")) {
                        assert_eq!(
                            m.get("additionalProperties"),
                            Some(&Value::Bool(false)),
                            "{c}: {at}"
                        );
                        let listed: Vec<&String> =
                            m["properties"].as_object().expect("properties").keys().collect();
                        let required: Vec<&str> = m["required"]
                            .as_array()
                            .expect("required")
                            .iter()
                            .filter_map(Value::as_str)
                            .collect();
                        for p in listed {
                            assert!(required.contains(&p.as_str()), "{c}: {at}: {p} not required");
                        }
                    }
                    stack.extend(m.iter().map(|(k, v)| (format!("{at}/{k}"), v)));
                }
                Value::Array(a) => {
                    stack.extend(a.iter().enumerate().map(|(i, v)| (format!("{at}/{i}"), v)));
                }
                _ => {}
            }
        }
    }
}

/// The sessions to run every command on: those under `tests/data`, a merge
/// of two of them, the rich session whole, sampled and cut short.
fn sessions() -> Vec<String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data)
        .expect("tests/data/real")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pulse"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let dir = scratch("schema");
    let merged = dir.join("merged.pulse");
    let (slow, fast) = (data.join("job-slow.pulse"), data.join("job-fast.pulse"));
    let path = |p: &Path| p.display().to_string();
    pulse(&["merge", &path(&slow), &path(&fast), "-o", &path(&merged)]).succeeds();
    files.push(merged);
    let rich = rich_session(AllocMode::Full);
    files.push(write(&dir, "rich.pulse", &rich));
    files.push(write(&dir, "sampled.pulse", &rich_session(AllocMode::Sample { mean_bytes: 4096 })));
    files.push(write(&dir, "cut.pulse", &rich[..rich.len() * 2 / 3]));
    files.iter().map(|p| p.display().to_string()).collect()
}

#[test]
fn every_json_output_matches_its_schema() {
    let v = Validators::new();
    let all = sessions();
    let mut checked = 0;
    for (i, f) in all.iter().enumerate() {
        let g = &all[(i + 1) % all.len()];
        let runs: Vec<(&str, Vec<&str>)> = vec![
            ("report", vec!["report", f, "--json"]),
            ("report", vec!["report", f, "--json", "--sort", "priority", "--top", "1"]),
            ("report", vec!["report", f, "--json", "--thread", "main"]),
            ("report", vec!["export", f, "--format", "json", "-o", "-"]),
            ("hotspots", vec!["hotspots", f, "--json"]),
            ("hotspots", vec!["hotspots", f, "--json", "--tree", "--by", "time"]),
            ("hotspots", vec!["hotspots", f, "--json", "--by", "allocs"]),
            ("hotspots", vec!["hotspots", f, "--json", "--by", "peak"]),
            ("leaks", vec!["leaks", f, "--json"]),
            ("leaks", vec!["leaks", f, "--json", "--strict", "--top", "1"]),
            ("info", vec!["info", f, "--json"]),
            ("diff", vec!["diff", f, g, "--json"]),
            ("diff", vec!["diff", "--before", f, g, "--after", g, f, "--json"]),
        ];
        for (schema, args) in runs {
            let r = pulse(&args);
            r.no_panic();
            if r.status == 1 && args.contains(&"--thread") {
                // A session without a thread of that name.
                continue;
            }
            // Leaks found (5), a cut session (3), or a regression: JSON all the same.
            assert!(matches!(r.status, 0 | 3 | 4 | 5), "{args:?}: {r:#?}");
            v.check(schema, &args.join(" "), &r.stdout);
            checked += 1;
        }
    }
    assert!(checked >= 80, "{checked}");
}

/// The rich session has what it was made to have, so the schema is
/// checked on each of these shapes and not on empty arrays.
#[test]
fn the_rich_session_fills_what_the_others_leave_empty() {
    let dir = scratch("schema-rich");
    let f = write(&dir, "rich.pulse", &rich_session(AllocMode::Full));
    let f = f.to_str().unwrap();
    let r = pulse(&["report", f, "--json"]);
    assert_eq!(r.status, 0, "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(!v["counters"]["rows"][0]["ratios"].as_array().unwrap().is_empty(), "{v:#}");
    assert!(!v["counters"]["unavailable"].as_array().unwrap().is_empty());
    let categories: Vec<&str> = v["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["category"].as_str())
        .collect();
    for want in ["hot-loop", "cache-miss-heavy", "leak", "frequent-allocation"] {
        assert!(categories.contains(&want), "{want} in {categories:?}");
    }
    assert!(
        v["tree"].as_array().unwrap().iter().any(|t| !t["omitted"].is_null()),
        "{:#}",
        v["tree"]
    );
    assert!(v["scopes"].as_array().unwrap().iter().any(|s| s["time"]["runs"] == 1));
    assert!(!v["flows"].as_array().unwrap().is_empty());
    assert!(v["live_at_end"][0]["trend"] == "growing", "{:#}", v["live_at_end"]);
    assert!(v["overhead"]["wait_ns"].is_u64() && v["overhead"]["finish_ns"].is_u64());
    let i: Value = serde_json::from_str(&pulse(&["info", f, "--json"]).stdout).unwrap();
    assert!(!i["trailer"]["notes"].as_array().unwrap().is_empty());
}

/// A field the schema does not list fails, and so does one it requires
/// that is missing: the check is not idle.
#[test]
fn an_undocumented_or_missing_field_fails() {
    let v = Validators::new();
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real/threads.pulse");
    let f = f.to_str().unwrap();
    let report: Value = serde_json::from_str(&pulse(&["report", f, "--json"]).stdout).unwrap();
    assert!(v.problems("report", &report).is_empty());
    let mut extra = report.clone();
    extra["memory"]["undocumented"] = Value::from(1);
    assert!(!v.problems("report", &extra).is_empty());
    let mut extra = report.clone();
    extra["sites"][0]["undocumented"] = Value::from("x");
    assert!(!v.problems("report", &extra).is_empty());
    let mut missing = report.clone();
    missing.as_object_mut().unwrap().remove("at_peak");
    assert!(!v.problems("report", &missing).is_empty());
    // hotspots is the report with its own sections.
    assert!(!v.problems("hotspots", &report).is_empty(), "report's sections are not hotspots'");
    let leaks: Value = serde_json::from_str(&pulse(&["leaks", f, "--json"]).stdout).unwrap();
    let mut extra = leaks.clone();
    extra[0]["undocumented"] = Value::Null;
    assert!(!v.problems("leaks", &extra).is_empty());
    let info: Value = serde_json::from_str(&pulse(&["info", f, "--json"]).stdout).unwrap();
    let mut extra = info.clone();
    extra["meta"]["clock"]["undocumented"] = Value::Null;
    assert!(!v.problems("info", &extra).is_empty());
    let diff: Value = serde_json::from_str(&pulse(&["diff", f, f, "--json"]).stdout).unwrap();
    let mut extra = diff.clone();
    extra["undocumented"] = Value::Null;
    assert!(!v.problems("diff", &extra).is_empty());
}

/// The checked-in examples of the JSON (`tests/data/*.json`), which
/// `docs/CLI.md` points to, are valid too.
#[test]
fn the_checked_in_examples_match_their_schemas() {
    let v = Validators::new();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for dir in [data.clone(), data.join("real")] {
        for (file, schema) in
            [("report.json", "report"), ("info.json", "info"), ("leaks.json", "leaks")]
        {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            v.check(schema, &path.display().to_string(), &text);
        }
    }
}
