//! The `pulse` binary on sessions crafted to be expensive (their memory
//! and each command's are measured in `analysis/tests/hostile.rs`): it
//! prints bounded output, says in its warnings what it left out, and exits
//! as it would on an ordinary session.

mod common;

use common::{pulse, scratch, write};

use pulse_format::{
    AllocMode, ChunkEncoder, ClockInfo, Metadata, Record, Trailer, Writer, MAX_TREE_DEPTH,
};

fn session(chunks: &[(u64, Vec<Record>)]) -> Vec<u8> {
    let meta = Metadata {
        writer: String::from("pulse-cli tests"),
        program: String::from("/usr/local/bin/hostile"),
        clock: ClockInfo::monotonic(),
        alloc_mode: AllocMode::Full,
        ..Metadata::default()
    };
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    for (round, (thread, records)) in chunks.iter().enumerate() {
        enc.begin(*thread, round as u64);
        for r in records {
            enc.push(r);
        }
        w.write_chunk(&enc).unwrap();
    }
    w.finish(Trailer::default()).unwrap()
}

const DEPTH: u64 = 20_000;

/// Scopes nested 20 000 deep: the call tree in `hotspots --tree`, the
/// folded stacks and the flamegraph stop at the tree's 128 levels, and the
/// report says how many entries that left out.
#[test]
fn scopes_nested_deep_print_a_bounded_tree_and_say_so() {
    let defs = vec![Record::ScopeDef {
        scope: 1,
        name: String::from("recurse"),
        category: String::new(),
        description: String::new(),
        priority: 0,
    }];
    let mut events: Vec<Record> =
        (0..DEPTH).map(|i| Record::ScopeEnter { ts: i, scope: 1 }).collect();
    events.extend((0..DEPTH).map(|i| Record::ScopeExit { ts: DEPTH + i, scope: 1 }));
    let dir = scratch("nested");
    let file = write(&dir, "nested.pulse", &session(&[(0, defs), (1, events)]));
    let file = file.to_str().unwrap();

    let tree = pulse(&["hotspots", file, "--tree"]);
    tree.succeeds();
    let rows: Vec<&str> =
        tree.stdout.lines().filter(|l| l.trim_start().starts_with("recurse")).collect();
    // The scope table's row, and the tree's one: its 128 levels of direct
    // recursion folded into it.
    assert_eq!(rows.len(), 2, "{}", tree.stdout);
    assert!(rows[1].contains("recurse (recursive, 128 levels)"), "{}", tree.stdout);

    let report = pulse(&["report", file]);
    report.succeeds();
    let beyond = format!("{} scope entries nested deeper than 128 levels", DEPTH - 128);
    assert!(report.stdout.contains(&beyond), "{}", report.stdout);
    // Every entry is in the scope's own figures; its total is that of the
    // outermost entry, which holds all the others.
    report.has_line(&format!("recurse {DEPTH} 40 µs 40 µs 20 µs 20.1 µs 39.7 µs 40 µs 40 µs 0"));

    let folded = pulse(&["export", file, "--format", "folded", "-o", "-"]);
    folded.succeeds();
    let deepest = folded.stdout.lines().map(|l| l.split(';').count()).max().unwrap();
    assert_eq!(deepest, MAX_TREE_DEPTH, "{}", folded.stdout);

    let svg = pulse(&["flamegraph", file, "-o", "-"]);
    svg.succeeds();
    assert!(svg.stdout.matches("<rect").count() <= MAX_TREE_DEPTH + 10);
}

/// A stack of a million frames: `leaks` prints the 256 innermost at most.
#[test]
fn a_stack_a_million_frames_deep_prints_its_innermost_frames() {
    let defs = vec![Record::SiteDef { site: 1, frames: (1..=1_000_000u64).collect() }];
    let events = vec![Record::Alloc { ts: 1, addr: 0x1000, size: 8, align: 8, site: 1, weight: 1 }];
    let dir = scratch("deep-stack");
    let file = write(&dir, "deep.pulse", &session(&[(0, defs), (1, events)]));
    let file = file.to_str().unwrap();
    let leaks = pulse(&["leaks", file]);
    leaks.no_panic();
    assert_eq!(leaks.status, 0, "{leaks:#?}");
    let frames = leaks.stdout.lines().filter(|l| l.starts_with("    0x")).count();
    assert_eq!(frames, pulse_analysis::MAX_STACK_FRAMES, "{}", leaks.stdout);
    let report = pulse(&["report", file]);
    report.succeeds();
    assert!(report.stdout.contains("999744 stack frames past a stack's 256"), "{}", report.stdout);
}
