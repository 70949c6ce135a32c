//! Text output fits a terminal: every line of every text command, on every
//! session under `tests/data` (the real programs' sessions, a merge of two
//! of them, and the session of `common/rich.rs` with counters, advice and
//! an asynchronous operation), is at most 100 columns wide — counted in characters as a
//! terminal shows them, after names are escaped — unless `--wide` asks for
//! whole lines. `--wide` prints what the fitted output leaves out: lines
//! longer than 100 columns on the same sessions.

mod common;

use std::path::{Path, PathBuf};

use common::rich::rich_session;
use common::{pulse, scratch, write, Run};

/// The columns output is fitted to when stdout is not a terminal.
const COLUMNS: usize = 100;

fn session(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real").join(name).display().to_string()
}

/// Every `.pulse` file under `tests/data`, and a merge of the two runs of `job`.
fn sessions() -> Vec<String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut found: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![data];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read tests/data") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "pulse") {
                found.push(path);
            }
        }
    }
    found.sort();
    assert!(found.len() >= 3, "the real sessions: {found:?}");
    let dir = scratch("width-merge");
    let merged = dir.join("both.pulse").display().to_string();
    pulse(&["merge", &session("job-slow.pulse"), &session("job-fast.pulse"), "-o", &merged])
        .succeeds();
    let mut all: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
    all.push(merged);
    let rich = write(&dir, "rich.pulse", &rich_session(pulse_format::AllocMode::Full));
    all.push(rich.display().to_string());
    all
}

/// Every text command with its variants on `f`, and `diff` of `f` against `g`.
fn commands(f: &str, g: &str) -> Vec<Vec<String>> {
    let mut c: Vec<Vec<&str>> = vec![
        vec!["report", f],
        vec!["report", f, "--sort", "total", "--top", "3"],
        vec!["report", f, "--sort", "count"],
        vec!["report", f, "--sort", "priority"],
        vec!["report", f, "--short-lived", "1ms"],
        vec!["hotspots", f],
        vec!["hotspots", f, "--tree", "--by", "time"],
        vec!["hotspots", f, "--by", "allocs"],
        vec!["hotspots", f, "--by", "bytes"],
        vec!["hotspots", f, "--by", "peak", "--tree"],
        vec!["leaks", f],
        vec!["leaks", f, "--strict"],
        vec!["info", f],
        vec!["diff", f, g],
        vec!["diff", g, f, "--top", "3"],
        vec!["diff", "--before", f, g, "--after", g, f],
    ];
    for thread in ["#1", "#2", "#3"] {
        c.push(vec!["report", f, "--thread", thread]);
    }
    c.into_iter().map(|v| v.into_iter().map(str::to_owned).collect()).collect()
}

fn widest(r: &Run) -> (usize, String) {
    r.stdout
        .lines()
        .map(|l| (l.chars().count(), l.to_owned()))
        .max_by_key(|(n, _)| *n)
        .unwrap_or_default()
}

#[test]
fn every_text_output_fits_100_columns_unless_wide() {
    let all = sessions();
    let mut wider = 0;
    let mut checked = 0;
    for (i, f) in all.iter().enumerate() {
        let g = &all[(i + 1) % all.len()];
        for args in commands(f, g) {
            let r = pulse(&args);
            r.no_panic();
            // A thread a session does not have is an error, not a report.
            if r.status == 1 && args.contains(&String::from("--thread")) {
                continue;
            }
            assert!(!r.stdout.is_empty(), "{args:?}: {r:#?}");
            let (n, line) = widest(&r);
            assert!(n <= COLUMNS, "{args:?}: a line of {n} columns:\n{line}\n\n{}", r.stdout);
            checked += 1;
            let mut wide_args = args.clone();
            wide_args.push(String::from("--wide"));
            let w = pulse(&wide_args);
            assert_eq!(w.status, r.status, "{wide_args:?}: {w:#?}");
            if widest(&w).0 > COLUMNS {
                wider += 1;
            }
        }
    }
    assert!(checked > 50, "{checked} outputs checked");
    // The fitting is not idle: whole, these sessions' reports are wider.
    assert!(wider > 10, "only {wider} outputs are wider than {COLUMNS} columns whole");
}

/// `--wide` is whole: each line of a fitted report that is not cut short
/// or wrapped is a line of the whole one, and the whole one has every
/// column of every table.
#[test]
fn wide_output_keeps_every_column_and_name() {
    let f = session("threads.pulse");
    let fitted = pulse(&["report", &f]);
    let wide = pulse(&["report", &f, "--wide"]);
    fitted.succeeds();
    wide.succeeds();
    assert!(fitted.stdout.contains("left out to fit 100 columns:"), "{}", fitted.stdout);
    assert!(fitted.stdout.contains('…'), "{}", fitted.stdout);
    assert!(!wide.stdout.contains("left out to fit") && !wide.stdout.contains('…'));
    for header in ["p99.9", "mean", "largest", "lifetime p50", "short-lived"] {
        assert!(wide.stdout.contains(header), "{header}: {}", wide.stdout);
    }
    let name = "std::sys::pal::unix::stack_overflow::thread_info::set_current_info";
    assert!(wide.stdout.contains(name), "{}", wide.stdout);
    assert!(fitted.stdout.contains("std::…::set_current_info"), "{}", fitted.stdout);
}
