//! `pulse diff` on the same job written slow and fast: the fast one is
//! faster with fewer allocations, and the regression gate passes one way and
//! fails the other.

use std::process::Command;

use pulse_analysis::{diff, DiffOptions, Profile, Verdict};
use pulse_tests::temp_session;

fn session(mode: &str) -> Profile {
    let path = temp_session(&format!("job-{mode}"));
    let out =
        Command::new(env!("CARGO_BIN_EXE_job")).arg(mode).env("PULSE_OUT", &path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Profile::load(&path).unwrap()
}

#[test]
fn the_lean_version_is_faster_and_the_gate_works_both_ways() {
    let (slow, fast) = (session("slow"), session("fast"));
    let d = diff(&slow, &fast, &DiffOptions::default());
    assert!(d.speedup > 1.5, "speedup {}", d.speedup);
    assert!(d.allocs.1 < d.allocs.0, "allocations {:?}", d.allocs);
    let sort = d.scopes.iter().find(|s| s.name == "sort").expect("sort");
    assert_eq!(sort.verdict, Verdict::Improvement, "{sort:?}");
    assert_eq!(d.regressions, 0, "{:#?}", d.scopes);

    let back = diff(&fast, &slow, &DiffOptions::default());
    assert!(back.regressions > 0, "{:#?}", back.scopes);
    let sort = back.scopes.iter().find(|s| s.name == "sort").expect("sort");
    assert_eq!(sort.verdict, Verdict::Regression);
    let mut text = Vec::new();
    back.render(&mut text, 10).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("REGRESSION") && text.contains("slower"), "{text}");
}
