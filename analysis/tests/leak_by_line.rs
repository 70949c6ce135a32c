//! A line reached by two call paths is judged as one location: a bounded
//! cache whose blocks shift from one path's stack to the other's is not a
//! leak, and a line that leaks through both paths is one finding with both
//! paths' blocks.

use pulse_analysis::{leaks, recommend, Category, Profile, RecommendOptions, Trend};
use pulse_format::{ChunkEncoder, ClockInfo, Metadata, Record, Trailer, Writer};

const LINE: u64 = 0x1000;
const VIA_A: u64 = 0x2000;
const VIA_B: u64 = 0x3000;
const MAIN: u64 = 0x4000;

fn definitions() -> Vec<Record> {
    let sym = |addr, function: &str, line| Record::Symbol {
        addr,
        function: function.into(),
        file: "/work/app/src/cache.rs".into(),
        line,
    };
    vec![
        Record::SiteDef { site: 1, frames: vec![LINE, VIA_A, MAIN] },
        Record::SiteDef { site: 2, frames: vec![LINE, VIA_B, MAIN] },
        Record::SiteDef { site: 3, frames: vec![MAIN] },
        sym(LINE, "app::Cache::insert", 10),
        sym(VIA_A, "app::warm", 20),
        sym(VIA_B, "app::refresh", 30),
        sym(MAIN, "app::main", 40),
    ]
}

/// `steps` events a millisecond apart on one thread: each step allocates
/// at `site(step)` and, once `keep(step)` says the cache is full, frees the
/// oldest block. A steady stream at site 3 keeps the clock moving.
fn session(steps: u64, site: impl Fn(u64) -> u32, keep: impl Fn(u64) -> usize) -> Profile {
    let meta = Metadata {
        writer: "test".into(),
        program: "/work/app/target/release/app".into(),
        clock: ClockInfo::monotonic(),
        ..Metadata::default()
    };
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    for r in definitions() {
        enc.push(&r);
    }
    w.write_chunk(&enc).unwrap();
    let mut live: std::collections::VecDeque<u64> = Default::default();
    let ms = 1_000_000;
    let mut round = 1;
    enc.begin(1, round);
    enc.push(&Record::ThreadStart { ts: 1, name: "main".into() });
    for step in 0..steps {
        let ts = (step + 1) * ms;
        let addr = 0x10_0000 + step * 64;
        enc.push(&Record::Alloc { ts, addr, size: 48, align: 8, site: site(step), weight: 1 });
        live.push_back(addr);
        while live.len() > keep(step) {
            let old = live.pop_front().unwrap();
            enc.push(&Record::Free { ts: ts + 10, addr: old, size: 48 });
        }
        let tick = 0x90_0000 + step * 64;
        enc.push(&Record::Alloc { ts: ts + 20, addr: tick, size: 8, align: 8, site: 3, weight: 1 });
        enc.push(&Record::Free { ts: ts + 30, addr: tick, size: 8 });
        if step % 50 == 49 {
            w.write_chunk(&enc).unwrap();
            round += 1;
            enc.begin(1, round);
        }
    }
    w.write_chunk(&enc).unwrap();
    let bytes = w.finish(Trailer { end_ts: (steps + 2) * ms, ..Trailer::default() }).unwrap();
    Profile::read(&bytes[..]).unwrap()
}

#[test]
fn a_bounded_cache_filled_by_two_paths_is_not_a_leak() {
    // 64 entries, inserted through `refresh` more and more often as the run
    // goes on: `refresh`'s stack climbs to the end while the line's total
    // holds at 64.
    // A smooth rise: step s goes through `refresh` when s²/2000 steps up,
    // about s/1000 of the time.
    let via_refresh = |s: u64| s * s / 2000 > s.saturating_sub(1) * s.saturating_sub(1) / 2000;
    let p = session(1000, |s| if via_refresh(s) { 2 } else { 1 }, |_| 64);
    let found = leaks(&p);
    // One line, one row: both stacks' blocks, the line's 64, flat.
    let line = found.iter().find(|l| l.site == 1 || l.site == 2).expect("the line's blocks");
    assert_eq!((line.blocks, line.other_stacks), (64, 1), "{found:#?}");
    assert_eq!(found.iter().filter(|l| l.site == 1 || l.site == 2).count(), 1);
    assert_eq!(line.trend, Trend::Flat, "{:?}", line.history);
    // What its own stack alone shows: a climb to the end.
    assert_eq!(pulse_analysis::trend(&p.site_history[&2]), Trend::Growing);
    let recs = recommend(&p, &RecommendOptions::default());
    assert!(recs.iter().all(|r| r.category != Category::Leak), "{recs:#?}");
}

#[test]
fn a_line_leaking_through_two_paths_is_one_finding_with_all_its_blocks() {
    // Nothing is ever freed: both paths' blocks pile up.
    let p = session(1000, |s| if s % 2 == 0 { 1 } else { 2 }, |_| usize::MAX);
    let recs = recommend(&p, &RecommendOptions::default());
    let leaks: Vec<_> = recs.iter().filter(|r| r.category == Category::Leak).collect();
    assert_eq!(leaks.len(), 1, "{recs:#?}");
    assert!(
        leaks[0].location.starts_with("app::Cache::insert (src/cache.rs:10)"),
        "{:?}",
        leaks[0]
    );
    assert!(leaks[0].evidence.starts_with("1000 blocks, "), "{}", leaks[0].evidence);
}
