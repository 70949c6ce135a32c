//! A steady leak is reported as a leak at its own function and line, with
//! the exact number of blocks and bytes; a bounded cache that lives to the
//! end is told apart; `pulse leaks` exits with status 5.

use std::process::Command;

use pulse_analysis::{leaks, Profile, Trend};
use pulse_tests::temp_session;

#[test]
fn a_leak_is_told_apart_from_a_cache() {
    let path = temp_session("leaky");
    let status =
        Command::new(env!("CARGO_BIN_EXE_leaky")).env("PULSE_OUT", &path).status().unwrap();
    assert!(status.success());
    let p = Profile::load(&path).unwrap();
    let found = leaks(&p);
    let leak = found.iter().find(|l| l.function == "leaky::remember").expect("the leak's site");
    assert_eq!((leak.blocks, leak.bytes), (50, 50 * 64));
    assert_eq!(leak.trend, Trend::Growing, "{:?}", leak.history);
    assert!(leak.place.ends_with("leaky.rs:13"), "{}", leak.place);
    let cache = found
        .iter()
        .find(|l| l.function == "leaky::main" && l.blocks == 50)
        .expect("the cache's entries");
    assert_eq!(cache.trend, Trend::Flat, "{:?}", cache.history);
    assert!(
        found.iter().filter(|l| l.trend == Trend::Growing).all(|l| l.function == "leaky::remember"),
        "{found:#?}"
    );
}
