//! A whole run at another pace: with one session a side, every scope moved
//! by one factor on the same work is judged at that pace, while a scope
//! that moved on its own, a run that did other work, a move beyond
//! [`PACE_LIMIT`] and several sessions a side are judged as before.

use pulse_analysis::format::{
    AllocMode, ChunkEncoder, ClockInfo, Metadata, Record, Trailer, Writer,
};
use pulse_analysis::{diff, diff_runs, DiffOptions, Profile, Verdict, PACE_LIMIT};

const SCOPES: [&str; 4] = ["parse", "render", "store", "send"];

/// A session of 200 rounds, each entering every scope once for `ns[j]`
/// nanoseconds (give or take a few), with `allocs` allocations before the
/// first round.
fn session(ns: [u64; 4], allocs: u64) -> Profile {
    let meta = Metadata {
        program: String::from("/work/pace/target/release/pace"),
        clock: ClockInfo::monotonic(),
        alloc_mode: AllocMode::Full,
        ..Metadata::default()
    };
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    for (j, name) in SCOPES.iter().enumerate() {
        enc.push(&Record::ScopeDef {
            scope: j as u32 + 1,
            name: String::from(*name),
            category: String::new(),
            description: String::new(),
            priority: 0,
        });
    }
    enc.push(&Record::SiteDef { site: 1, frames: vec![0x1000] });
    w.write_chunk(&enc).unwrap();
    enc.begin(1, 0);
    let mut t = 0;
    for i in 0..allocs {
        enc.push(&Record::Alloc {
            ts: t,
            addr: 0x10_0000 + i * 64,
            size: 48,
            align: 8,
            site: 1,
            weight: 1,
        });
        t += 10;
    }
    for i in 0..200u64 {
        for (j, &ns) in ns.iter().enumerate() {
            let scope = j as u32 + 1;
            enc.push(&Record::ScopeEnter { ts: t, scope });
            t += ns + i % 7;
            enc.push(&Record::ScopeExit { ts: t, scope });
            t += 100;
        }
    }
    w.write_chunk(&enc).unwrap();
    Profile::read(&w.finish(Trailer::default()).unwrap()[..]).unwrap()
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

/// How many scopes regressed.
fn slower(d: &pulse_analysis::Diff) -> usize {
    d.scopes.iter().filter(|s| s.verdict == Verdict::Regression).count()
}

fn verdicts(d: &pulse_analysis::Diff) -> Vec<(String, Verdict)> {
    let mut v: Vec<_> = d.scopes.iter().map(|s| (s.name.clone(), s.verdict)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn every_scope_alike_on_the_same_work_is_a_pace_not_a_regression() {
    let before = session(BEFORE, 100);
    // Six of ten reruns on a CI machine: every scope 2.05–2.25× slower.
    let after = session(times([2.09, 2.25, 2.05, 2.08]), 100);
    let d = diff(&before, &after, &DiffOptions::default());
    assert_eq!((d.regressions, d.improvements), (0, 0), "{:#?}", verdicts(&d));
    let k = d.pace.expect("a pace");
    assert!((2.0..2.2).contains(&k), "{k}");
    assert!(d.warnings.iter().any(|w| w.contains("2.09× slower alike")), "{:?}", d.warnings);
    // The figures shown are the sessions' own.
    let render = d.scopes.iter().find(|s| s.name == "render").unwrap();
    assert!(render.change.unwrap() > 1.2, "{render:?}");
    // And the other way: a faster run is no improvement either.
    let back = diff(&after, &before, &DiffOptions::default());
    assert_eq!((back.regressions, back.improvements), (0, 0), "{:#?}", verdicts(&back));
    assert!(back.pace.unwrap() < 0.5);
    assert!(back.warnings.iter().any(|w| w.contains("faster alike")), "{:?}", back.warnings);
    // Alike within the threshold is no pace to speak of.
    let near = diff(&before, &session(times([1.03, 1.0, 1.02, 1.04]), 100), &Default::default());
    assert_eq!(near.pace, None);
    assert!(near.warnings.is_empty(), "{:?}", near.warnings);
}

#[test]
fn a_scope_that_moved_on_its_own_is_still_a_regression() {
    let before = session(BEFORE, 100);
    let after = session(times([1.0, 2.5, 1.0, 1.0]), 100);
    let d = diff(&before, &after, &DiffOptions::default());
    assert_eq!(d.pace, None);
    let regressed: Vec<_> =
        d.scopes.iter().filter(|s| s.verdict == Verdict::Regression).map(|s| &s.name).collect();
    assert_eq!(regressed, ["render"]);
    // One scope apart from the others' common factor: no pace is read, and
    // every scope beyond the one-a-side noise counts.
    let mixed = diff(&before, &session(times([2.2, 5.5, 2.2, 2.2]), 100), &Default::default());
    assert_eq!(mixed.pace, None);
    assert_eq!(mixed.regressions, 4, "{:#?}", verdicts(&mixed));
}

#[test]
fn other_work_or_a_move_beyond_the_limit_is_judged_as_it_is() {
    let before = session(BEFORE, 100);
    // The same times, but a tenth more allocations: not the same work.
    let other = diff(&before, &session(times([2.2; 4]), 110), &DiffOptions::default());
    assert_eq!(other.pace, None);
    assert_eq!(slower(&other), 4, "{:#?}", verdicts(&other));
    // Alike and on the same work, but further than a machine's pace goes.
    let far = times([PACE_LIMIT * 1.2; 4]);
    let d = diff(&before, &session(far, 100), &DiffOptions::default());
    assert_eq!(d.pace, None);
    assert_eq!(d.regressions, 4, "{:#?}", verdicts(&d));
}

#[test]
fn several_sessions_a_side_measure_the_noise_instead() {
    let before = [session(BEFORE, 100), session(BEFORE, 100)];
    let after = [session(times([2.2; 4]), 100), session(times([2.2; 4]), 100)];
    let d = diff_runs(&before, &after, &DiffOptions::default());
    assert_eq!(d.pace, None);
    assert_eq!(d.regressions, 4, "{:#?}", verdicts(&d));
    // One session on a side: the noise is assumed, and the pace is read.
    let d = diff_runs(&before[..1], &after, &DiffOptions::default());
    assert!(d.pace.is_some());
    assert_eq!(d.regressions, 0, "{:#?}", verdicts(&d));
}
