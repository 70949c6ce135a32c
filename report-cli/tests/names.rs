//! The `pulse` binary on a session whose every name carries control
//! characters, terminal escapes, markup and `;` (the session of
//! `analysis/tests/support/names.rs`): nothing it prints, on stdout or
//! stderr, as text or as JSON, holds a raw control character, and every
//! command prints the lines it prints for the same session with plain
//! names (whole, with `--wide`), with the same exit status. Fitted to 100
//! columns, as by default, every line is within them: names are escaped
//! before they are measured and shortened.

mod common;

#[path = "../../analysis/tests/support/names.rs"]
mod names;

use std::path::PathBuf;

use common::{pulse, scratch, write, Run};
use names::{assert_terminal_safe, hostile, plain, session, shown, PAYLOAD};

/// The session with names made by `name`, and its slower run, as files.
fn files(dir: &str, name: fn(&str) -> String) -> (PathBuf, PathBuf) {
    let dir = scratch(dir);
    (write(&dir, "run.pulse", &session(name, 0)), write(&dir, "later.pulse", &session(name, 1)))
}

/// `pulse ARGS`, `{f}` and `{later}` standing for the two files.
fn run(args: &[&str], (f, later): &(PathBuf, PathBuf)) -> Run {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{f}", f.to_str().unwrap()).replace("{later}", later.to_str().unwrap()))
        .collect();
    pulse(&args)
}

const TEXT: &[&[&str]] = &[
    &["report", "{f}", "--wide"],
    &["report", "{f}", "--thread", "1", "--wide"],
    &["hotspots", "{f}", "--tree", "--wide"],
    &["hotspots", "{f}", "--by", "peak", "--wide"],
    &["leaks", "{f}", "--wide"],
    &["info", "{f}", "--wide"],
    &["diff", "{f}", "{f}", "--wide"],
    &["diff", "{f}", "{later}", "--wide"],
    &["export", "{f}", "--format", "folded", "-o", "-"],
    &["export", "{f}", "--format", "folded", "--kind", "alloc-count", "-o", "-"],
];

#[test]
fn fitted_text_escapes_names_before_it_measures_them() {
    let hostile_files = files("names-fitted", hostile);
    for args in TEXT.iter().filter(|a| a.last() == Some(&"--wide")) {
        let args = &args[..args.len() - 1];
        let got = run(args, &hostile_files);
        let what = args.join(" ");
        got.no_panic();
        assert_terminal_safe(&format!("{what}: stdout"), &got.stdout);
        for line in got.stdout.lines() {
            let n = line.chars().count();
            assert!(n <= 100, "{what}: a line of {n} columns:\n{line}\n\n{}", got.stdout);
        }
        // A cut never falls inside an escape: each one that starts is whole.
        for line in got.stdout.lines() {
            for (i, _) in line.match_indices("\\u{") {
                let digits = &line[i + 3..];
                let whole = digits.find('}').is_some_and(|end| {
                    (1..=6).contains(&end) && digits[..end].chars().all(|c| c.is_ascii_hexdigit())
                });
                assert!(whole, "{what}: a cut escape in {line:?}");
            }
        }
    }
}

#[test]
fn text_output_escapes_names_and_keeps_its_lines() {
    let plain_files = files("names-plain", plain);
    let hostile_files = files("names-hostile", hostile);
    for args in TEXT {
        let want = run(args, &plain_files);
        let got = run(args, &hostile_files);
        let what = args.join(" ");
        got.no_panic();
        assert_eq!(got.status, want.status, "{what}: {got:#?}");
        assert_terminal_safe(&format!("{what}: stdout"), &got.stdout);
        assert_terminal_safe(&format!("{what}: stderr"), &got.stderr);
        assert_eq!(
            got.stdout.lines().count(),
            want.stdout.lines().count(),
            "{what}: stdout's lines differ from the plain session's:\n{}\n---\n{}",
            got.stdout,
            want.stdout
        );
        assert_eq!(got.stderr.lines().count(), want.stderr.lines().count(), "{what}: {got:#?}");
    }
    // The names are there, escaped.
    let report = run(&["report", "{f}", "--wide"], &hostile_files);
    assert!(report.stdout.contains(&shown(&hostile("prog"))), "{}", report.stdout);
    let leaks = run(&["leaks", "{f}", "--wide"], &hostile_files);
    assert_eq!(leaks.status, 5, "a leak is found: {leaks:#?}");
    assert!(leaks.stdout.contains(&format!("    {}", shown(&hostile(names::GRID)))));
    let info = run(&["info", "{f}", "--wide"], &hostile_files);
    assert!(info.stdout.contains(&format!("host         {}", shown(&hostile("host")))));
    // diff says on stderr too that the programs differ.
    let diff = run(&["diff", "{f}", "{later}", "--wide"], &hostile_files);
    assert!(diff.stderr.contains(&shown(PAYLOAD)), "{diff:#?}");
}

/// `--json` holds the names exactly, and no control character as itself:
/// serde_json escapes C0, pulse DEL and C1 as well.
#[test]
fn json_output_holds_the_names_exactly_and_no_control_character() {
    let f = files("names-json", hostile);
    let program = names::program(hostile);
    for args in [
        &["report", "{f}", "--json"][..],
        &["hotspots", "{f}", "--json"],
        &["leaks", "{f}", "--json"],
        &["info", "{f}", "--json"],
        &["diff", "{f}", "{f}", "--json"],
        &["export", "{f}", "--format", "json", "-o", "-"],
    ] {
        let r = run(args, &f);
        let what = args.join(" ");
        r.no_panic();
        assert_terminal_safe(&what, &r.stdout);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{what}: {e}"));
        match args[0] {
            "report" | "hotspots" | "export" => assert_eq!(v["program"], program, "{what}"),
            "info" => assert_eq!(v["meta"]["program"], program, "{what}"),
            "leaks" => assert_eq!(v[0]["function"], hostile(names::GRID), "{what}"),
            _ => assert_eq!(v["programs"][0], program, "{what}"),
        }
    }
}

/// An error that quotes the session (no thread matches: here are its
/// threads) is one line, its names escaped.
#[test]
fn an_error_naming_the_sessions_threads_is_one_safe_line() {
    let r = run(&["report", "{f}", "--thread", "nope"], &files("names-thread", hostile));
    r.fails(1, &["no thread matches nope", &shown(&hostile("worker"))]);
    assert_terminal_safe("--thread nope", &r.stderr);
}
