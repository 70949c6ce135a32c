//! Recommendations point at the planted problem, at its own line, with the
//! right advice, and a clean program gets none.

use std::process::Command;

use pulse_analysis::{recommend, Category, Profile, RecommendOptions};
use pulse_tests::temp_session;

fn session(bin: &str, arg: &str) -> Profile {
    let path = temp_session(&format!("planted-{arg}"));
    let out = Command::new(bin).arg(arg).env("PULSE_OUT", &path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Profile::load(&path).unwrap()
}

#[test]
fn a_vector_grown_in_a_loop_gets_the_reserve_advice_at_its_line() {
    let p = session(env!("CARGO_BIN_EXE_planted"), "grow");
    let recs = recommend(&p, &RecommendOptions::default());
    let r = recs
        .iter()
        .find(|r| r.category == Category::ReallocChurn)
        .unwrap_or_else(|| panic!("{recs:#?}"));
    assert!(
        r.location.starts_with("planted::grow (tests/src/bin/planted.rs:12)"),
        "{}",
        r.location
    );
    assert!(r.fix.contains("with_capacity"), "{}", r.fix);
}

#[test]
fn a_steady_leak_is_a_critical_finding() {
    let p = session(env!("CARGO_BIN_EXE_leaky"), "");
    let recs = recommend(&p, &RecommendOptions::default());
    let r =
        recs.iter().find(|r| r.category == Category::Leak).unwrap_or_else(|| panic!("{recs:#?}"));
    assert!(r.location.starts_with("leaky::remember"), "{}", r.location);
    assert!(recs.iter().filter(|r| r.category == Category::Leak).count() == 1, "{recs:#?}");
}

#[test]
fn a_clean_program_gets_no_advice() {
    let p = session(env!("CARGO_BIN_EXE_planted"), "clean");
    let recs = recommend(&p, &RecommendOptions::default());
    assert!(recs.is_empty(), "{recs:#?}");
}
