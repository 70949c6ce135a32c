//! Recommendations point at the planted problem, at its own line, with the
//! right advice, and a clean program gets none.

use std::process::Command;

use pulse_analysis::{recommend, Category, Profile, RecommendOptions, Recommendation};
use pulse_tests::temp_session;

fn session(bin: &str, arg: &str) -> Profile {
    let path = temp_session(&format!("planted-{arg}"));
    let out = Command::new(bin).arg(arg).env("PULSE_OUT", &path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Profile::load(&path).unwrap()
}

/// Planted program `mode`'s profile and its `n` realloc-churn findings.
fn churn_findings(mode: &str, n: usize) -> (Profile, Vec<Recommendation>) {
    let p = session(env!("CARGO_BIN_EXE_planted"), mode);
    let recs = recommend(&p, &RecommendOptions::default());
    let churn: Vec<_> =
        recs.iter().filter(|r| r.category == Category::ReallocChurn).cloned().collect();
    assert_eq!(churn.len(), n, "{recs:#?}");
    (p, churn)
}

/// Planted program `mode`'s first short-lived finding whose location
/// contains `at`.
fn short_lived(mode: &str, at: &str) -> Recommendation {
    let p = session(env!("CARGO_BIN_EXE_planted"), mode);
    let recs = recommend(&p, &RecommendOptions::default());
    recs.iter()
        .find(|r| r.category == Category::ShortLivedAllocation && r.location.contains(at))
        .cloned()
        .unwrap_or_else(|| panic!("{recs:#?}"))
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
fn a_temporary_grown_on_the_line_after_it_is_made_is_told_where_it_is_made() {
    let r = short_lived("temp", "");
    // `push_str` grows the string `String::with_capacity(8)` made on the
    // line above; the string is dropped at once.
    let made = "planted::temp (tests/src/bin/planted.rs:183)";
    assert!(r.location.starts_with("planted::temp (tests/src/bin/planted.rs:184)"), "{r:#?}");
    assert!(r.evidence.contains(&format!("of them on blocks made at {made}")), "{r:#?}");
    assert!(r.fix.contains(&format!("made at {made}")), "{r:#?}");
}

#[test]
fn a_temporary_resized_on_one_line_is_told_where_most_of_them_are_made() {
    let r = short_lived("refit", "fit");
    // Most of `fit`'s reallocations shrink blocks `made_large` made; the
    // few that grow `made_small`'s do not decide the name.
    assert!(r.location.starts_with("planted::fit (tests/src/bin/planted.rs:"), "{r:#?}");
    assert!(
        r.evidence
            .contains("of them on blocks made at planted::made_large (tests/src/bin/planted.rs:"),
        "{r:#?}"
    );
    assert!(r.fix.contains("dropped soon after this line shrinks it"), "{r:#?}");
}

#[test]
fn a_buffer_grown_on_several_lines_is_advised_once_where_it_is_made() {
    let (p, churn) = churn_findings("spread", 1);
    let r = &churn[0];
    // `write!(doc, "record {i}:")` makes each string; three lines grow it.
    assert!(
        r.location.starts_with("planted::spread (tests/src/bin/planted.rs:25)"),
        "{}",
        r.location
    );
    assert!(r.evidence.starts_with("300 blocks first allocated here, grown "), "{}", r.evidence);
    assert!(
        r.evidence.contains("on this line and 3 others (tests/src/bin/planted.rs: 27, 28, 29)"),
        "{}",
        r.evidence
    );
    assert!(r.fix.contains("with_capacity"), "{}", r.fix);
    // Every growing reallocation is one of a block the line made.
    let grown: u64 = p.growth.iter().map(|g| g.reallocs).sum();
    let reallocs: u64 = p.sites.values().map(|s| s.reallocs - s.shrinks).sum();
    assert_eq!(grown, reallocs);
}

#[test]
fn a_helper_s_growth_is_advised_once_split_by_where_each_buffer_was_made() {
    let (_, churn) = churn_findings("shared", 2);
    // The vectors main made with a capacity of one: 1 → 4 → … → 64.
    let made = churn
        .iter()
        .find(|r| r.location.starts_with("planted::shared (tests/src/bin/planted.rs:49)"))
        .unwrap_or_else(|| panic!("{churn:#?}"));
    assert!(
        made.evidence.starts_with(
            "2000 blocks first allocated here, grown 10000 times afterwards on one other line \
             (tests/src/bin/planted.rs: 39)"
        ),
        "{}",
        made.evidence
    );
    // The helper's own: each vector's first push allocates 4, then 4 → … → 64.
    let own = churn
        .iter()
        .find(|r| r.location.starts_with("planted::put (tests/src/bin/planted.rs:39)"))
        .unwrap_or_else(|| panic!("{churn:#?}"));
    assert!(
        own.evidence.starts_with("8000 reallocations for 2000 allocations")
            && own.evidence.contains("besides 10000 reallocations, of buffers first allocated"),
        "{}",
        own.evidence
    );
}

#[test]
fn a_vector_shrunk_then_grown_again_is_told_to_keep_its_capacity() {
    let (p, churn) = churn_findings("regrow", 1);
    let r = &churn[0];
    assert!(
        r.location.starts_with("planted::regrow (tests/src/bin/planted.rs:70)"),
        "{}",
        r.location
    );
    assert!(
        r.evidence.contains("shrunk (tests/src/bin/planted.rs: 73), then grown 8000 times"),
        "{}",
        r.evidence
    );
    assert!(r.fix.contains("shrink it only once it has stopped growing"), "{}", r.fix);
    let regrown: u64 = p.growth.iter().map(|g| g.regrown).sum();
    let shrinks: u64 = p.growth.iter().map(|g| g.shrinks).sum();
    assert_eq!((regrown, shrinks), (8000, 2000));
}

#[test]
fn a_string_a_helper_allocates_first_is_advised_where_its_caller_fills_it() {
    let (_, churn) = churn_findings("headed", 1);
    let r = &churn[0];
    // `heading(&mut s, i)`: the helper's first push allocates; its second,
    // and the three pushes after the call, grow.
    assert!(
        r.location.starts_with("planted::headed (tests/src/bin/planted.rs:95)"),
        "{}",
        r.location
    );
    assert!(
        r.evidence.starts_with(
            "2000 blocks first allocated inside planted::heading (tests/src/bin/planted.rs:85), \
             called here, grown 8000 times afterwards on 4 other lines \
             (tests/src/bin/planted.rs: 86, 96, 97, 98)"
        ),
        "{}",
        r.evidence
    );
}

#[test]
fn buffers_two_helpers_make_on_one_line_name_both_helpers() {
    let (_, churn) = churn_findings("twomade", 1);
    let r = &churn[0];
    assert!(r.location.starts_with("planted::twomade (tests/src/bin/planted.rs:"), "{r:#?}");
    // 1 500 from `made_large`, 500 from `made_small`: the most first.
    let large = "planted::made_large (tests/src/bin/planted.rs:";
    let small = "planted::made_small (tests/src/bin/planted.rs:";
    let (l, s) = (r.evidence.find(large), r.evidence.find(small));
    assert!(
        r.evidence.starts_with("2000 blocks first allocated inside planted::made_large")
            && l.is_some_and(|l| s.is_some_and(|s| l < s))
            && r.evidence.contains("called here"),
        "{r:#?}"
    );
}

#[test]
fn buffers_a_line_makes_itself_and_through_a_helper_say_both() {
    let (_, churn) = churn_findings("mixmade", 1);
    let r = &churn[0];
    assert!(r.location.starts_with("planted::mixmade (tests/src/bin/planted.rs:"), "{r:#?}");
    assert!(
        r.evidence.starts_with(
            "3000 blocks first allocated here or inside planted::made_small (tests/src/bin/planted.rs:"
        ) && r.evidence.contains("called here"),
        "{r:#?}"
    );
}

#[test]
fn a_temporary_grown_twice_on_one_line_is_short_lived_there() {
    let r = short_lived("twice", "");
    // 20 000 blocks, each grown twice on the loop's line: its blocks are
    // counted, not its reallocations.
    assert!(r.location.starts_with("planted::twice (tests/src/bin/planted.rs:"), "{r:#?}");
    assert!(r.evidence.contains("of the 20000 blocks it resized (40000 reallocations"), "{r:#?}");
}

#[test]
fn a_line_that_allocates_and_grows_is_weighed_on_the_blocks_that_end_there() {
    let r = short_lived("keptgrown", "");
    // Its 10 000 allocations live to the end; the 20 000 temporaries it
    // grows are the short-lived ones.
    assert!(r.location.starts_with("planted::push_one (tests/src/bin/planted.rs:"), "{r:#?}");
    assert!(
        r.evidence.contains(
            "of the 30000 blocks it allocated or resized last (10000 allocations, 20000 reallocations)"
        ),
        "{r:#?}"
    );
}

#[test]
fn strings_format_grows_pushed_onto_a_vector_the_line_grows_get_both_fixes() {
    let (_, churn) = churn_findings("pushed", 1);
    let r = &churn[0];
    assert!(
        r.location.starts_with("planted::pushed (tests/src/bin/planted.rs:113)"),
        "{}",
        r.location
    );
    // Each vector of 8 strings: allocated for 4, grown once to 8.
    assert!(
        r.evidence
            .contains("inside format!, growing the string it builds, the other 2000 outside it"),
        "{}",
        r.evidence
    );
    assert!(
        r.fix.contains("write!(buf")
            && r.fix.contains("reserve the capacity of what it pushes onto"),
        "{}",
        r.fix
    );
}

#[test]
fn vectors_shrunk_to_fit_are_not_taken_for_growth() {
    let p = session(env!("CARGO_BIN_EXE_planted"), "shrink");
    let shrunk: u64 = p.sites.values().map(|s| s.shrinks).sum();
    assert!(shrunk >= 20_000, "{shrunk} shrinking reallocations recorded");
    let recs = recommend(&p, &RecommendOptions::default());
    assert!(!recs.iter().any(|r| r.category == Category::ReallocChurn), "{recs:#?}");
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

#[test]
fn recursion_a_hundred_deep_is_a_deep_call_stack_folded_in_the_tree() {
    let p = session(env!("CARGO_BIN_EXE_planted"), "deep");
    let recs = recommend(&p, &RecommendOptions::default());
    let deep: Vec<_> = recs.iter().filter(|r| r.category == Category::DeepCallStack).collect();
    assert!(deep.len() == 1 && deep[0].location == "planted::descend", "{recs:#?}");
    assert!(deep[0].evidence.contains("nested 101 deep"), "{}", deep[0].evidence);
    // Recursion is counted once in the scope's total: 20 walks, each
    // inside the session, so the total cannot exceed the session.
    let (id, _) = p.scopes.iter().find(|(_, s)| s.name == "planted::descend").unwrap();
    let t = &p.scope_times[id];
    assert_eq!(t.count, 20 * 101);
    assert!(t.total_ns <= p.duration_ns, "total {} in a {} ns session", t.total_ns, p.duration_ns);
    assert_eq!(t.self_ns, t.total_ns, "the scope alone: its self time is its total");
    let report = pulse_analysis::report(&p, &Default::default());
    assert!(
        report.tree.len() == 1 && report.tree[0].recursion == 101 && report.tree[0].count == 20,
        "{:#?}",
        report.tree
    );
}

#[test]
fn a_pointer_chase_is_memory_bound_where_counters_exist_and_arithmetic_is_not() {
    let p = session(env!("CARGO_BIN_EXE_planted"), "memory");
    let recs = recommend(&p, &RecommendOptions::default());
    let counter_findings: Vec<_> = recs
        .iter()
        .filter(|r| matches!(r.category, Category::LowIpc | Category::CacheMissHeavy))
        .collect();
    let hardware = p.meta.counters.iter().any(|c| c.name == "cycles" && c.available);
    if !hardware {
        // No PMU here: software counters give no ground for such advice.
        assert!(counter_findings.is_empty(), "{recs:#?}");
        return;
    }
    assert!(
        counter_findings.len() == 1
            && counter_findings[0].category == Category::CacheMissHeavy
            && counter_findings[0].location == "chase",
        "{recs:#?}"
    );
    assert!(counter_findings[0].fix.contains("memory"), "{}", counter_findings[0].fix);
}
