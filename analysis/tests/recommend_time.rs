//! A hotspot's share counts each scope's entries at its median's pace, so
//! that a preempted entry does not make a scope hot; where that moves the
//! share, the finding gives the share as measured too.

#[path = "support/written.rs"]
mod written;

use pulse_analysis::format::Record;
use pulse_analysis::{recommend, Category, Profile, RecommendOptions};

/// A session of three scopes, each entered `(entries, ns)` times one after
/// another, then `parse` once more for `slow_ns` (a preempted entry); with
/// `callee_ns`, `parse`'s every entry calls `fetch`, which takes that long
/// once and 1 µs the other times.
fn session(entries: [(u64, u64); 3], slow_ns: u64) -> Profile {
    nested(entries, slow_ns, 0)
}

fn nested(entries: [(u64, u64); 3], slow_ns: u64, callee_ns: u64) -> Profile {
    let defs = written::scope_defs(&["parse", "render", "store", "fetch"]);
    let mut events = Vec::new();
    let mut ts = 1_000;
    let enter = |scope: u32, ns: u64, ts: &mut u64, events: &mut Vec<Record>| {
        events.push(Record::ScopeEnter { ts: *ts, scope });
        *ts += ns;
        events.push(Record::ScopeExit { ts: *ts, scope });
        *ts += 10;
    };
    for (scope, (n, ns)) in entries.into_iter().enumerate() {
        for i in 0..n {
            if scope == 0 && callee_ns > 0 {
                events.push(Record::ScopeEnter { ts, scope: 0 });
                ts += ns;
                enter(3, if i == 0 { callee_ns } else { 1_000 }, &mut ts, &mut events);
                events.push(Record::ScopeExit { ts, scope: 0 });
                ts += 10;
                continue;
            }
            enter(scope as u32, ns, &mut ts, &mut events);
        }
    }
    if slow_ns > 0 {
        enter(0, slow_ns, &mut ts, &mut events);
    }
    let file = written::session("/work/time/target/release/time", &defs, &events);
    Profile::read(&file[..]).unwrap()
}

fn hotspot(p: &Profile) -> String {
    let recs = recommend(p, &RecommendOptions::default());
    let hot: Vec<_> = recs
        .iter()
        .filter(|r| matches!(r.category, Category::SlowFunction | Category::HotLoop))
        .collect();
    assert_eq!(hot.len(), 1, "{recs:#?}");
    assert_eq!(hot[0].location, "parse");
    hot[0].evidence.clone()
}

#[test]
fn a_preempted_entry_is_counted_at_the_median_s_pace_and_said_so() {
    // parse: 100 entries of 300 µs and one of 60 ms; 86 % of the self time
    // as measured, 67 % with the slow entry at the median's pace.
    let slow = session([(100, 300_000), (100, 100_000), (100, 50_000)], 60_000_000);
    let evidence = hotspot(&slow);
    assert!(
        evidence.starts_with(
            "67 % of the scoped time in its own code (the scopes' slowest entries, preempted or \
             waiting, counted at each one's median pace; 86 % as measured): 90 ms over 101 \
             entries"
        ),
        "{evidence}"
    );
    // Without it, nothing was discounted, and nothing is said of it.
    let steady = session([(100, 300_000), (100, 100_000), (100, 50_000)], 0);
    let evidence = hotspot(&steady);
    assert!(evidence.starts_with("67 % of the scoped time in its own code: 30 ms"), "{evidence}");
}

#[test]
fn a_callee_that_slept_does_not_discount_its_caller() {
    // parse: 100 entries of 300 µs of its own, each calling fetch, which
    // slept 60 ms once: parse's total is inflated by its callee, not its
    // own time, which stays the hotspot at its full share.
    let p = nested([(100, 300_000), (100, 100_000), (100, 50_000)], 0, 60_000_000);
    let evidence = hotspot(&p);
    assert!(evidence.starts_with("67 % of the scoped time in its own code ("), "{evidence}");
    assert!(evidence.contains("): 30 ms over 100 entries"), "{evidence}");
}
