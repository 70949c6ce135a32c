//! A whole run at another pace: every scope moved by one factor on the
//! same work is judged at that pace, with one session a side or several
//! (then as far as their runs moved among themselves); a scope that moved
//! on its own, a chain of nested scopes slowed in its innermost, a scope
//! that kept its time, a run that did other work and a move beyond
//! [`PACE_LIMIT`] are judged as before.

#[path = "support/written.rs"]
mod written;

use pulse_analysis::format::Record;
use pulse_analysis::{diff, diff_runs, Diff, DiffOptions, Profile, Verdict, PACE_LIMIT};

/// What a round of a made-up program does.
#[derive(Clone, Copy)]
enum Step {
    /// Enters the scope of this index in [`NAMES`].
    Enter(u32),
    /// Runs for this many nanoseconds (give or take a few, by round).
    Work(u64),
    /// Leaves the innermost scope.
    Exit,
}

use Step::{Enter, Exit, Work};

const NAMES: [&str; 6] = ["parse", "render", "store", "send", "update", "connect"];

/// A session of `rounds` rounds of `round`, after `allocs` allocations.
fn session(round: &[Step], rounds: u64, allocs: u64) -> Profile {
    session_after(&[], round, rounds, allocs)
}

/// [`session`], with `first` done once before the rounds.
fn session_after(first: &[Step], round: &[Step], rounds: u64, allocs: u64) -> Profile {
    let mut defs = written::scope_defs(&NAMES);
    defs.push(Record::SiteDef { site: 1, frames: vec![0x1000] });
    let mut events = Vec::new();
    let mut ts = 0;
    for i in 0..allocs {
        let addr = 0x10_0000 + i * 64;
        events.push(Record::Alloc { ts, addr, size: 48, align: 8, site: 1, weight: 1 });
        ts += 10;
    }
    let mut open = Vec::new();
    let rounds = std::iter::once((0, first)).chain((0..rounds).map(|i| (i, round)));
    for (i, round) in rounds {
        for step in round {
            match *step {
                Enter(scope) => {
                    open.push(scope);
                    events.push(Record::ScopeEnter { ts, scope });
                }
                Work(ns) => ts += ns + i % 7,
                Exit => {
                    let scope = open.pop().expect("a scope to leave");
                    events.push(Record::ScopeExit { ts, scope });
                }
            }
            ts += 20;
        }
    }
    let file = written::session("/work/pace/target/release/pace", &defs, &events);
    Profile::read(&file[..]).unwrap()
}

/// Four scopes one after another, each this long.
fn flat(ns: [u64; 4]) -> Vec<Step> {
    ns.iter().enumerate().flat_map(|(j, &ns)| [Enter(j as u32), Work(ns), Exit]).collect()
}

const BEFORE: [u64; 4] = [20_000, 50_000, 8_000, 30_000];

/// `BEFORE` with each time multiplied by its factor.
fn times(factors: [f64; 4]) -> [u64; 4] {
    let mut t = BEFORE;
    for (t, f) in t.iter_mut().zip(factors) {
        *t = (*t as f64 * f) as u64;
    }
    t
}

/// A flat session of 200 rounds, `BEFORE` times `factors`.
fn paced(factors: [f64; 4], allocs: u64) -> Profile {
    session(&flat(times(factors)), 200, allocs)
}

fn verdicts(d: &Diff) -> Vec<(String, Verdict)> {
    let mut v: Vec<_> = d.scopes.iter().map(|s| (s.name.clone(), s.verdict)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The scopes that regressed, by name.
fn regressed(d: &Diff) -> Vec<&str> {
    let mut v: Vec<&str> = d
        .scopes
        .iter()
        .filter(|s| s.verdict == Verdict::Regression)
        .map(|s| s.name.as_str())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn every_scope_alike_on_the_same_work_is_a_pace_not_a_regression() {
    let before = paced([1.0; 4], 100);
    // Six of ten reruns on a CI machine: every scope 2.05–2.25× slower.
    let after = paced([2.09, 2.25, 2.05, 2.08], 100);
    let d = diff(&before, &after, &DiffOptions::default());
    assert_eq!((d.regressions, d.improvements), (0, 0), "{:#?}", verdicts(&d));
    let k = d.pace.expect("a pace");
    assert!((2.05..2.2).contains(&k), "{k}");
    let shown = format!("{k:.2}× slower alike");
    assert!(d.warnings.iter().any(|w| w.contains(&shown)), "{shown}: {:?}", d.warnings);
    // The figures shown are the sessions' own.
    let render = d.scopes.iter().find(|s| s.name == "render").unwrap();
    assert!(render.change.unwrap() > 1.2, "{render:?}");
    // And the other way: a faster run is no improvement either, at the
    // inverse pace.
    let back = diff(&after, &before, &DiffOptions::default());
    assert_eq!((back.regressions, back.improvements), (0, 0), "{:#?}", verdicts(&back));
    assert!((back.pace.unwrap() * k - 1.0).abs() < 1e-9, "{:?} {k}", back.pace);
    assert!(back.warnings.iter().any(|w| w.contains("faster alike")), "{:?}", back.warnings);
    // Alike within the threshold is no pace to speak of.
    let near = diff(&before, &paced([1.03, 1.0, 1.02, 1.04], 100), &Default::default());
    assert_eq!(near.pace, None);
    assert!(near.warnings.is_empty(), "{:?}", near.warnings);
    // Allocations 0.5 % apart are still the same work.
    let d = diff(&paced([1.0; 4], 1000), &paced([2.2; 4], 1005), &DiffOptions::default());
    assert!(d.pace.is_some(), "{:#?}", verdicts(&d));
}

#[test]
fn a_scope_that_moved_on_its_own_is_still_a_regression() {
    let before = paced([1.0; 4], 100);
    let d = diff(&before, &paced([1.0, 2.5, 1.0, 1.0], 100), &DiffOptions::default());
    assert_eq!(d.pace, None);
    assert_eq!(regressed(&d), ["render"]);
    // One scope apart from the others' common factor: no pace is read, and
    // every scope beyond the one-a-side noise counts.
    let mixed = diff(&before, &paced([2.2, 5.5, 2.2, 2.2], 100), &Default::default());
    assert_eq!(mixed.pace, None);
    assert_eq!(regressed(&mixed), ["parse", "render", "send", "store"]);
}

#[test]
fn nested_scopes_slowed_in_their_innermost_are_one_piece_of_evidence() {
    // render ⊃ update ⊃ parse, parse most of the time, and one scope
    // beside them: parse 2.5× slower pulls the two around it along.
    let chain = |parse: u64, beside: bool| {
        let mut round =
            vec![Enter(1), Work(500), Enter(4), Work(500), Enter(0), Work(parse), Exit, Exit, Exit];
        if beside {
            round.extend([Enter(3), Work(9_000), Exit]);
        }
        round
    };
    let nested = ["parse", "render", "update"];
    // Without the scope beside them, nothing else runs its own code: no
    // pace either.
    for beside in [true, false] {
        let before = session(&chain(20_000, beside), 200, 100);
        let after = session(&chain(50_000, beside), 200, 100);
        let d = diff(&before, &after, &DiffOptions::default());
        assert_eq!(d.pace, None, "{:#?}", verdicts(&d));
        assert_eq!(regressed(&d), nested);
    }
}

#[test]
fn a_scope_that_kept_its_time_means_no_pace() {
    // A connection made once, waiting on the network the same 40 ms in
    // either run, while the scopes that compute ran 2.1× faster: no pace,
    // and no false regression of the connection.
    let connect = [Enter(5), Work(40_000_000), Exit];
    let slow = session_after(&connect, &flat(times([2.1; 4])), 200, 100);
    let fast = session_after(&connect, &flat(BEFORE), 200, 100);
    for (before, after) in [(&slow, &fast), (&fast, &slow)] {
        let d = diff(before, after, &DiffOptions::default());
        assert_eq!(d.pace, None, "{:#?}", verdicts(&d));
        let connect = d.scopes.iter().find(|s| s.name == "connect").unwrap();
        assert_eq!(connect.verdict, Verdict::Noise, "{connect:?}");
    }
}

#[test]
fn other_work_or_a_move_beyond_the_limit_is_judged_as_it_is() {
    let before = paced([1.0; 4], 100);
    let all = ["parse", "render", "send", "store"];
    // The same times, but 2 % more allocations: not the same work, at any
    // threshold.
    let other = paced([2.2; 4], 102);
    assert_eq!(diff(&before, &other, &DiffOptions::default()).pace, None);
    let mut loose = DiffOptions::default();
    loose.threshold = 0.3;
    let d = diff(&before, &other, &loose);
    assert_eq!((d.pace, regressed(&d)), (None, all.to_vec()));
    // A scope entered once more: not the same work either.
    let mut round = flat(times([2.2; 4]));
    round.extend([Enter(5), Work(10), Exit]);
    let d =
        diff(&session(&flat(BEFORE), 200, 100), &session(&round, 200, 100), &Default::default());
    assert_eq!(d.pace, None);
    assert_eq!(regressed(&d), all);
    // Alike and on the same work, but further than a machine's pace goes.
    let d = diff(&before, &paced([PACE_LIMIT * 1.2; 4], 100), &DiffOptions::default());
    assert_eq!(d.pace, None);
    assert_eq!(regressed(&d), all);
}

#[test]
fn several_sessions_a_side_read_a_pace_too() {
    // Five runs, then five more, on a machine whose pace changed between
    // them: the second five 1.65× the first, one of each five off the
    // others' pace. The spread within either five (55 %) is short of the
    // change between them.
    let before: Vec<Profile> =
        [1.0, 1.0, 1.55, 1.0, 1.0].iter().map(|&f| paced([f; 4], 100)).collect();
    let after: Vec<Profile> =
        [1.65, 1.1, 1.65, 1.65, 1.65].iter().map(|&f| paced([f; 4], 100)).collect();
    let d = diff_runs(&before, &after, &DiffOptions::default());
    assert_eq!((d.regressions, d.improvements), (0, 0), "{:#?}", d.scopes);
    let k = d.pace.expect("a pace");
    assert!((1.6..1.7).contains(&k), "{k}");
    assert!(d.scopes.iter().all(|s| s.noise > 0.5 && s.change.unwrap() > s.noise), "{d:#?}");
    // A machine that kept its pace within each side is not excused a shift
    // between them beyond twice what its runs moved by: every scope alike,
    // 1.4× slower, is four regressions.
    let steady: Vec<Profile> = (0..3).map(|_| paced([1.0; 4], 100)).collect();
    let shifted: Vec<Profile> = [1.38, 1.4, 1.42].iter().map(|&f| paced([f; 4], 100)).collect();
    let d = diff_runs(&steady, &shifted, &DiffOptions::default());
    assert_eq!(d.pace, None, "{d:#?}");
    assert_eq!(d.regressions, 4, "{:#?}", verdicts(&d));
    // Runs that moved 18 % among themselves excuse the same runs' shift
    // from their middle, 1.27×, within 1.18².
    let swaying: Vec<Profile> = [1.0, 1.2, 1.1].iter().map(|&f| paced([f; 4], 100)).collect();
    let d = diff_runs(&swaying, &shifted, &DiffOptions::default());
    assert!(d.pace.is_some(), "{:#?}", verdicts(&d));
    assert_eq!(d.regressions, 0, "{:#?}", verdicts(&d));
    // Runs 10 % apart: two scopes 1.2× slower and two unchanged are no
    // pace of 1.1×, but two regressions.
    let part = |f: f64, by: f64| paced([f * by, f * by, f, f], 100);
    let before: Vec<Profile> = [0.95, 1.0, 1.05].iter().map(|&f| part(f, 1.0)).collect();
    let after: Vec<Profile> = [0.95, 1.0, 1.05].iter().map(|&f| part(f, 1.2)).collect();
    let d = diff_runs(&before, &after, &DiffOptions::default());
    assert_eq!((d.pace, regressed(&d)), (None, vec!["parse", "render"]), "{d:#?}");
    // One run of five 1.5× the others is no excuse for 2×.
    let before: Vec<Profile> = (0..5).map(|_| paced([1.0; 4], 100)).collect();
    let after: Vec<Profile> =
        [2.0, 2.0, 3.0, 2.0, 2.0].iter().map(|&f| paced([f; 4], 100)).collect();
    let d = diff_runs(&before, &after, &DiffOptions::default());
    assert_eq!(d.pace, None, "{d:#?}");
    assert_eq!(d.regressions, 4, "{:#?}", verdicts(&d));
    // Nor is one jittery scope among steady ones: what the runs were seen
    // to do is the evidence's median noise.
    let jitter = |f: f64, send: f64| paced([f, f, f, f * send], 100);
    let before: Vec<Profile> = [1.0, 2.0, 1.5].iter().map(|&j| jitter(1.0, j)).collect();
    let after: Vec<Profile> = [1.0, 2.0, 1.5].iter().map(|&j| jitter(1.5, j)).collect();
    let d = diff_runs(&before, &after, &DiffOptions::default());
    assert_eq!((d.pace, regressed(&d)), (None, vec!["parse", "render", "store"]), "{d:#?}");
    // One run that entered a scope the others did not did other work.
    let mut round = flat(times([1.6; 4]));
    round.extend([Enter(5), Work(10), Exit]);
    let before: Vec<Profile> = [1.0, 1.3, 1.6].iter().map(|&f| paced([f; 4], 100)).collect();
    let after = [paced([1.6; 4], 100), paced([2.0; 4], 100), session(&round, 200, 100)];
    let d = diff_runs(&before, &after, &DiffOptions::default());
    assert_eq!(d.pace, None, "{d:#?}");
    let without = diff_runs(&before, &after[..2], &DiffOptions::default());
    assert!(without.pace.is_some(), "{:#?}", verdicts(&without));
    // A scope that moved on its own is still caught, now against the
    // measured noise: a third slower, well within one-a-side's 2×.
    let slower: Vec<Profile> = (0..3).map(|_| paced([1.0, 1.33, 1.0, 1.0], 100)).collect();
    let d = diff_runs(&steady, &slower, &DiffOptions::default());
    assert_eq!((d.pace, regressed(&d)), (None, vec!["render"]));
    // Other work, every scope alike: a change, not a pace.
    let other: Vec<Profile> = (0..3).map(|_| paced([1.65; 4], 102)).collect();
    let d = diff_runs(&steady, &other, &DiffOptions::default());
    assert_eq!(d.pace, None);
    assert_eq!(d.regressions, 4, "{:#?}", verdicts(&d));
}

#[test]
fn two_runs_a_side_are_judged_against_a_widened_spread() {
    // Two runs 3 % apart (a step of the clock's rounding) measure less
    // spread than the machine has: a move of 6 % between two such pairs
    // is noise.
    let before: Vec<Profile> = [1.0, 1.03].iter().map(|&f| paced([f; 4], 100)).collect();
    let after: Vec<Profile> = [1.06, 1.06].iter().map(|&f| paced([f; 4], 100)).collect();
    let d = diff_runs(&before, &after, &DiffOptions::default());
    assert_eq!((d.regressions, d.improvements), (0, 0), "{:#?}", d.scopes);
    // Five runs a side measure it as it is: 6 % against a spread of 3 %,
    // and no pace that large (store, 1.6 ms in all, moves less than the
    // session's hundredth).
    let before: Vec<Profile> =
        [1.0, 1.03, 1.0, 1.03, 1.0].iter().map(|&f| paced([f; 4], 100)).collect();
    let after: Vec<Profile> = (0..5).map(|_| paced([1.06; 4], 100)).collect();
    let d = diff_runs(&before, &after, &DiffOptions::default());
    assert_eq!((d.pace, regressed(&d)), (None, vec!["parse", "render", "send"]), "{:#?}", d.scopes);
}

/// `session`, run with these arguments.
fn with_args(mut p: Profile, args: &[&str]) -> Profile {
    p.meta.args = args.iter().map(|a| a.to_string()).collect();
    p
}

#[test]
fn runs_of_other_arguments_are_told_apart_from_a_change_of_the_code() {
    let said = |d: &Diff, what: &str| d.warnings.iter().any(|w| w.contains(what));
    let other = "the two sides ran with different arguments";
    // More input, more rounds: every scope entered three times as often.
    let small = with_args(session(&flat(BEFORE), 100, 100), &["jq", "1000"]);
    let large = with_args(session(&flat(BEFORE), 300, 300), &["jq", "3000"]);
    let d = diff(&small, &large, &DiffOptions::default());
    assert_eq!(d.arguments, (vec!["jq".into(), "1000".into()], vec!["jq".into(), "3000".into()]));
    assert!(said(&d, "the two sides ran with different arguments (jq 1000; jq 3000)"), "{d:#?}");
    // The same arguments: a change of the code, whatever it did.
    let same = with_args(session(&flat(BEFORE), 300, 300), &["jq", "1000"]);
    assert!(!said(&diff(&small, &same, &DiffOptions::default()), other));
    // Other arguments that pick an implementation, on the same work: no word.
    let slow = with_args(paced([1.0; 4], 100), &["--algo", "old way"]);
    let fast = with_args(paced([0.5; 4], 40), &["--algo", "new"]);
    let d = diff(&slow, &fast, &DiffOptions::default());
    assert!(!said(&d, other), "{:?}", d.warnings);
    // A side whose runs were not repeats of one run.
    let mixed = [slow, with_args(paced([1.0; 4], 100), &["--algo", "new"])];
    let d = diff_runs(&mixed, std::slice::from_ref(&fast), &DiffOptions::default());
    assert!(
        said(&d, "the before sessions ran with different arguments (--algo 'old way'; --algo new)"),
        "{:?}",
        d.warnings
    );
    assert!(!said(&d, "the after sessions"), "{:?}", d.warnings);
}
