//! Every command on sessions written by real programs — `thread_view` (two
//! named threads, a hand-over of buffers, a leak) and `job slow` / `job
//! fast` (the same work done badly and well) from `pulse-tests` — compared
//! with expected files. The sessions and the expected files are checked in;
//! `bash report-cli/tests/data/real/regenerate` writes both anew. Text is
//! compared as it is printed by default, fitted to 100 columns, and for
//! some commands as `--wide` prints it, whole (the `-wide` files).

mod common;

use std::path::{Path, PathBuf};

use common::{pulse, scratch, Run};

fn session(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real").join(name)
}

fn golden(name: &str, actual: &str) {
    common::golden(&format!("real/{name}"), actual);
}

/// `pulse ARGS…` with `{threads}`, `{slow}` and `{fast}` standing for the sessions.
fn run(args: &[&str]) -> Run {
    let args: Vec<String> = args
        .iter()
        .map(|a| match *a {
            "{threads}" => session("threads.pulse").display().to_string(),
            "{slow}" => session("job-slow.pulse").display().to_string(),
            "{fast}" => session("job-fast.pulse").display().to_string(),
            a => a.to_owned(),
        })
        .collect();
    pulse(&args)
}

#[test]
fn report_hotspots_and_info_match_their_expected_output() {
    for (file, args) in [
        ("report.txt", &["report", "{threads}"][..]),
        ("report-wide.txt", &["report", "{threads}", "--wide"]),
        ("report.json", &["report", "{threads}", "--json"]),
        ("report-maker.txt", &["report", "{threads}", "--thread", "maker"]),
        ("report-slow.txt", &["report", "{slow}", "--sort", "total", "--top", "5"]),
        ("hotspots.txt", &["hotspots", "{slow}", "--tree", "--by", "allocs"]),
        ("hotspots-peak.txt", &["hotspots", "{threads}", "--by", "peak"]),
        ("hotspots-peak-wide.txt", &["hotspots", "{threads}", "--by", "peak", "--wide"]),
        ("info.txt", &["info", "{threads}"]),
        ("info-wide.txt", &["info", "{threads}", "--wide"]),
        ("info.json", &["info", "{slow}", "--json"]),
    ] {
        let r = run(args);
        r.succeeds();
        golden(file, &r.stdout);
    }
}

#[test]
fn leaks_names_the_leak_with_its_stack_and_says_so_in_its_status() {
    let r = run(&["leaks", "{threads}"]);
    r.no_panic();
    golden("leaks.txt", &r.stdout);
    assert!(r.stdout.contains("thread_view::make"), "{}", r.stdout);
    // Status 5 when a site was still growing at the end, 0 when all flat.
    let growing = r.stdout.contains("LEAK");
    assert_eq!(r.status, if growing { 5 } else { 0 }, "{r:#?}");
    let wide = run(&["leaks", "{threads}", "--wide"]);
    assert_eq!(wide.status, r.status);
    golden("leaks-wide.txt", &wide.stdout);
    let j = run(&["leaks", "{threads}", "--json"]);
    assert_eq!(j.status, r.status);
    golden("leaks.json", &j.stdout);
}

#[test]
fn pictures_and_exports_match_their_expected_output() {
    for (file, args) in [
        ("flamegraph-time.svg", &["flamegraph", "{slow}", "-o", "-"][..]),
        (
            "flamegraph-alloc-bytes.svg",
            &["flamegraph", "{threads}", "--kind", "alloc-bytes", "-o", "-"],
        ),
        (
            "flamegraph-alloc-count.svg",
            &["flamegraph", "{slow}", "--kind", "alloc-count", "-o", "-"],
        ),
        ("flamegraph-leaks.svg", &["flamegraph", "{threads}", "--kind", "leaks", "-o", "-"]),
        ("timeline.svg", &["timeline", "{threads}", "-o", "-"]),
        ("folded-time.txt", &["export", "{slow}", "--format", "folded", "-o", "-"]),
        (
            "folded-alloc-bytes.txt",
            &["export", "{threads}", "--format", "folded", "--kind", "alloc-bytes", "-o", "-"],
        ),
        ("chrome.json", &["export", "{threads}", "--format", "chrome", "-o", "-"]),
        ("dhat-heap.json", &["export", "{threads}", "--format", "dhat", "-o", "-"]),
    ] {
        let r = run(args);
        r.succeeds();
        golden(file, &r.stdout);
    }
}

#[test]
fn diff_shows_the_speedup_and_gates_regressions_one_way_only() {
    let better = run(&["diff", "{slow}", "{fast}", "--fail-on-regression"]);
    better.succeeds();
    golden("diff.txt", &better.stdout);
    assert!(better.stdout.contains("faster"), "{}", better.stdout);
    let worse = run(&["diff", "{fast}", "{slow}", "--fail-on-regression"]);
    worse.no_panic();
    assert_eq!(worse.status, 4, "{worse:#?}");
    golden("diff-back.txt", &worse.stdout);
}

#[test]
fn merged_sessions_read_as_one() {
    let dir = scratch("real-merge");
    let out = dir.join("both.pulse");
    let out_s = out.display().to_string();
    let m = run(&["merge", "{slow}", "{fast}", "-o", &out_s]);
    m.succeeds();
    let r = run(&["info", &out_s]);
    r.succeeds();
    // The merged file's own path is in nothing `info` prints but the header line.
    let text = r.stdout.replace(&out_s, "both.pulse");
    golden("merge-info.txt", &text);
}

#[test]
fn sessions_of_two_programs_are_compared_with_a_warning() {
    let r = run(&["diff", "{threads}", "{slow}"]);
    assert_eq!(r.status, 0, "{r:#?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].starts_with("pulse: warning: the sessions are of different programs"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("thread_view") && r.stdout.contains("job"), "{}", r.stdout);
}
