//! Sessions crafted to be expensive: counts that lie, a stack a million
//! frames deep, an address standing for a million inlined functions, a
//! million sites, a million scopes, scopes nested a million deep, a
//! counters record of a million values. Each is written through
//! pulse-format's writer (its trailer by hand where the writer would not
//! lie) and read through what every command computes. Each must read with
//! memory bounded by what the file holds, never by what it claims, and
//! without work quadratic in it. Memory is measured with a counting global
//! allocator: the largest single allocation and the peak of bytes live,
//! never with a clock.

#[path = "../../fuzz/src/commands.rs"]
mod commands;

use std::cell::Cell;
use std::io;
use std::sync::Mutex;

use pulse_analysis::format::{
    AllocMode, ChunkEncoder, ClockInfo, Error, Metadata, Reader, Record, RecordKind, Trailer,
    Writer, MAX_TREE_DEPTH, MAX_TREE_NODES,
};
use pulse_analysis::{FoldedKind, LoadOptions, Profile, ReportOptions, MAX_STACK_FRAMES};

// ---------------------------------------------------------------------------
// Memory, counted per thread: the largest single allocation and the peak of
// bytes live, both since the measurement began.

#[path = "support/counting.rs"]
mod counting;
use counting::{Counting, LARGEST, LIVE, PEAK};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `f` allocated on this thread: the largest block and the peak of
/// bytes live at once, both counted from its start.
#[derive(Debug, Clone, Copy)]
struct Usage {
    largest: usize,
    peak: usize,
}

fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    LARGEST.with(|m| m.set(0));
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let usage = Usage {
        largest: LARGEST.with(Cell::get),
        peak: (PEAK.with(Cell::get) - start).max(0) as usize,
    };
    (out, usage)
}

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// A million: the size of each scenario as CI runs it, in release (`cargo
/// test --release -p pulse-analysis --test hostile`, step "hostile
/// sessions"). The dev profile's `cargo test` runs them at a hundredth of
/// it, where the unoptimized commands would take minutes.
const N: u64 = if cfg!(debug_assertions) { 10_000 } else { 1_000_000 };

/// The big sessions are read one at a time, so that the test binary's own
/// peak stays that of one of them.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Reads `bytes` and runs on the profile what each command computes —
/// report, hotspots with the whole tree, leaks, flamegraphs and folded
/// stacks of each kind, timeline, dhat, pprof, chrome, info, diff with
/// itself — and merges it with itself, all measured together. The profile
/// is alive throughout.
fn every_command(what: &str, bytes: &[u8]) -> (Profile, Usage) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (p, usage) = measure(|| {
        // One thread: the counting, per thread, sees the profile's state.
        let p = Profile::read_with(bytes, &LoadOptions::new().jobs(1))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(p.trailer.is_some() && p.truncated.is_none(), "{what}: not whole");
        let sink = &mut io::sink();
        let mut tree = ReportOptions::default();
        tree.tree_min_share = 0.0;
        for opts in [ReportOptions::default(), tree] {
            let r = pulse_analysis::report(&p, &opts);
            r.render(sink).unwrap();
            serde_json::to_writer(io::sink(), &r).unwrap();
        }
        serde_json::to_writer(io::sink(), &pulse_analysis::leaks(&p)).unwrap();
        for kind in
            [FoldedKind::Time, FoldedKind::AllocBytes, FoldedKind::AllocCount, FoldedKind::Leaks]
        {
            // The flamegraph is drawn from the stacks the folded export
            // writes, but not from its text: both run.
            pulse_analysis::flamegraph(&p, kind, sink).unwrap();
            pulse_analysis::folded(&p, kind, sink).unwrap();
        }
        pulse_analysis::timeline_svg(&p, sink).unwrap();
        pulse_analysis::dhat(&p, sink).unwrap();
        pulse_analysis::pprof(&p, sink).unwrap();
        pulse_analysis::chrome(bytes, sink).unwrap();
        let info = pulse_analysis::info(&p);
        info.render(sink).unwrap();
        serde_json::to_writer(io::sink(), &info).unwrap();
        pulse_analysis::diff(&p, &p, &Default::default()).render(sink, 20).unwrap();
        pulse_analysis::merge_bytes(&[bytes, bytes], sink).unwrap();
        p
    });
    eprintln!(
        "{}: {} bytes in the file, {usage:?}",
        what.replace('N', &N.to_string()),
        bytes.len()
    );
    (p, usage)
}

fn meta() -> Metadata {
    Metadata {
        writer: String::from("pulse 0.1.0"),
        program: String::from("/work/hostile/target/debug/hostile"),
        clock: ClockInfo::monotonic(),
        alloc_mode: AllocMode::Full,
        ..Metadata::default()
    }
}

/// The session of the chunks `build` writes with its `write(encoder,
/// thread, round)`, which writes what the encoder holds and begins the
/// next chunk.
fn session(
    build: impl FnOnce(&mut dyn FnMut(&mut ChunkEncoder, u64, u64), &mut ChunkEncoder),
) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), &meta()).unwrap();
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    {
        let mut next = |e: &mut ChunkEncoder, thread: u64, round: u64| {
            w.write_chunk(e).unwrap();
            e.begin(thread, round);
        };
        build(&mut next, &mut enc);
    }
    w.write_chunk(&enc).unwrap();
    w.finish(Trailer::default()).unwrap()
}

fn alloc(ts: u64, addr: u64, size: u64, site: u32) -> Record {
    Record::Alloc { ts, addr, size, align: 8, site, weight: 1 }
}

fn scope_def(scope: u32, name: String) -> Record {
    Record::ScopeDef {
        scope,
        name,
        category: String::from("hostile"),
        description: String::new(),
        priority: 0,
    }
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn str(buf: &mut Vec<u8>, s: &str) {
    varint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A raw frame with a correct checksum around `payload`.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut head = [0u8; 16];
    head[0] = kind;
    head[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    head[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&head[..12]);
    h.update(payload);
    head[12..16].copy_from_slice(&h.finalize().to_le_bytes());
    [&head[..], payload].concat()
}

// ---------------------------------------------------------------------------

/// A whole session whose trailer claims four billion records of every
/// kind, in 2^64 − 1 chunks, with four billion events lost, and totals of
/// billions of allocations and bytes: reading it allocates nothing for
/// them, `info` shows the claims, and the report warns that the totals do
/// not cross-check.
#[test]
fn a_trailer_claiming_billions_of_records() {
    let honest = session(|next, enc| {
        enc.push(&Record::SiteDef { site: 1, frames: vec![0x10, 0x20] });
        next(enc, 1, 0);
        enc.push(&Record::ThreadStart { ts: 1, name: String::from("main") });
        enc.push(&alloc(2, 0x100, 64, 1));
        enc.push(&Record::Free { ts: 3, addr: 0x100, size: 64 });
    });
    // The trailer is the last frame: replace it by one that lies.
    let mut r = Reader::new(&honest[..]).unwrap();
    let mut end = r.offset() as usize;
    while let Some(f) = r.next_frame().unwrap() {
        if matches!(f, pulse_analysis::format::Frame::Chunk(_)) {
            end = r.offset() as usize;
        }
    }
    let billions = 4_000_000_000u64;
    let mut t = Vec::new();
    varint(&mut t, 10); // end_ts
    varint(&mut t, 0); // end_unix_ns
    t.extend_from_slice(&1.0f64.to_le_bytes());
    varint(&mut t, u64::MAX); // chunks
    varint(&mut t, RecordKind::ALL.len() as u64);
    for kind in RecordKind::ALL {
        t.push(kind as u8);
        varint(&mut t, billions);
    }
    varint(&mut t, billions); // lost events
    let extra = ["allocs", "frees", "reallocs", "bytes_allocated", "bytes_freed"];
    varint(&mut t, extra.len() as u64);
    for key in extra {
        str(&mut t, key);
        varint(&mut t, u64::MAX - 1);
    }
    let bytes = [&honest[..end], &frame(2, &t)].concat();

    let ((), usage) = measure(|| {
        assert!(commands::every_command(&bytes));
        assert!(commands::merge(&bytes));
    });
    eprintln!("a trailer claiming billions: {usage:?}");
    // The claims add up to tens of gigabytes; what is read is a few
    // kilobytes, plus the real session the driver diffs against.
    assert!(usage.largest < MIB, "{usage:?}");
    assert!(usage.peak < 8 * MIB, "{usage:?}");
    let p = Profile::read(&bytes[..]).unwrap();
    assert_eq!(p.count(RecordKind::Alloc), 1, "what the file holds, not what it claims");
    let info = pulse_analysis::info(&p);
    assert_eq!(info.trailer.as_ref().unwrap().count(RecordKind::Alloc), billions);
    let r = pulse_analysis::report(&p, &Default::default());
    assert!(r.warnings.iter().any(|w| w.contains("counted 18446744073709551614 allocs")), "{r:?}");
    assert!(r.warnings.iter().any(|w| w.contains("4000000000 events were lost")), "{r:?}");
}

/// Metadata whose counts claim four billion arguments, counters or extra
/// pairs: a one-line error, and nothing allocated for the claim.
#[test]
fn metadata_claiming_billions_of_entries() {
    let base = Writer::new(Vec::new(), &meta()).unwrap().finish(Trailer::default()).unwrap();
    let meta_len = u32::from_le_bytes(base[12..16].try_into().unwrap()) as usize;
    // The writer, program, then the count of arguments.
    let mut m = base[20..20 + meta_len].to_vec();
    let args_at = {
        let mut at = 0;
        for _ in 0..2 {
            let n = m[at] as usize;
            at += 1 + n;
        }
        at
    };
    assert_eq!(m[args_at], 0);
    let mut claim = Vec::new();
    varint(&mut claim, 4_000_000_000);
    m.splice(args_at..=args_at, claim);
    let mut bytes = base[..20].to_vec();
    bytes[12..16].copy_from_slice(&(m.len() as u32).to_le_bytes());
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    bytes[16..20].copy_from_slice(&pulse_format::metadata_crc(version, &m).to_le_bytes());
    bytes.extend_from_slice(&m);
    bytes.extend_from_slice(&base[20 + meta_len..]);
    let (res, usage) = measure(|| Reader::new(&bytes[..]).map(|_| ()));
    match res {
        Err(e @ Error::Corrupt { .. }) => {
            let line = e.to_string();
            assert!(line.contains("arguments: claims 4000000000 items"), "{line}");
            assert!(!line.contains('\n'));
        }
        other => panic!("{other:?}"),
    }
    assert!(usage.largest < 64 * KIB, "{usage:?}");
    assert!(!commands::every_command(&bytes));
}

/// One site whose stack holds a million frames (about 1 MB of the file's
/// payload, a few hundred bytes compressed), a thousand of them
/// symbolized, with a hundred blocks live at the end. The stack is kept to
/// its innermost 256 frames and the report says how many were left out;
/// nothing costs a million frames per site per command.
#[test]
fn a_stack_a_million_frames_deep() {
    let bytes = session(|next, enc| {
        let frames: Vec<u64> = (0..N).map(|i| 0x40_0000 + i * 16 + (i * i) % 7).collect();
        enc.push(&Record::SiteDef { site: 1, frames });
        for i in 0..1000u64 {
            enc.push(&Record::Symbol {
                addr: 0x40_0000 + i * 16 + (i * i) % 7,
                function: format!("hostile::f{i}"),
                file: String::from("/work/hostile/src/main.rs"),
                line: i as u32,
            });
        }
        next(enc, 1, 0);
        enc.push(&Record::ThreadStart { ts: 1, name: String::from("main") });
        for i in 0..100u64 {
            enc.push(&alloc(10 + i, 0x1000 + i * 64, 64, 1));
        }
    });
    let (p, usage) = every_command("a stack of N frames", &bytes);
    assert_eq!(p.memory.live_blocks_at_end, 100);
    assert_eq!(p.symbols.stack(1).len(), MAX_STACK_FRAMES);
    let r = pulse_analysis::report(&p, &Default::default());
    let dropped = format!("{} stack frames past", N as usize - MAX_STACK_FRAMES);
    assert!(r.warnings.iter().any(|w| w.starts_with(&dropped)), "{:?}", r.warnings);
    // The record itself is decoded whole (8 bytes a frame), once.
    assert!(usage.largest <= 16 * MIB, "{usage:?}");
    assert!(usage.peak < 48 * MIB, "{usage:?}");
}

/// One address given a million `Symbol` records (a million functions
/// inlined into it), and a thousand sites whose 256-frame stacks name it
/// at every frame: each stack still expands to 256 frames at most.
#[test]
fn an_address_inlining_a_million_functions() {
    let bytes = session(|next, enc| {
        for i in 1..=N {
            enc.push(&Record::Symbol {
                addr: 0x77,
                function: format!("f{i}"),
                file: String::new(),
                line: 0,
            });
            if i % (N / 10) == 0 {
                next(enc, 0, 0);
            }
        }
        for s in 1..=1000u32 {
            enc.push(&Record::SiteDef { site: s, frames: vec![0x77; MAX_STACK_FRAMES] });
        }
        next(enc, 1, 0);
        for s in 1..=1000u64 {
            enc.push(&alloc(s, 0x1000 + s * 64, 64, s as u32));
        }
    });
    let (p, usage) = every_command("an address inlining N functions", &bytes);
    assert_eq!(p.symbols.stack(1).len(), MAX_STACK_FRAMES);
    assert!(usage.peak < 256 * MIB, "{usage:?}");
}

/// A million sites, each with its own two-frame stack and one block, half
/// of them freed after 2^40 ticks (so every site's lifetime histogram has
/// a far bucket), in ten chunks over ten rounds. Memory grows with the
/// sites, within 2 KiB each for the profile and every command together.
#[test]
fn a_million_distinct_sites() {
    let bytes = session(|next, enc| {
        for s in 1..=N {
            enc.push(&Record::SiteDef { site: s as u32, frames: vec![0x40_0000 + s * 16, 0x50] });
            if s % (N / 10) == 0 {
                next(enc, 0, 0);
            }
        }
        next(enc, 1, 0);
        enc.push(&Record::ThreadStart { ts: 1, name: String::from("main") });
        for s in 1..=N {
            enc.push(&alloc(10 + s, 0x1000 + s * 64, 64, s as u32));
            if s % 2 == 0 {
                enc.push(&Record::Free { ts: 10 + s + (1 << 40), addr: 0x1000 + s * 64, size: 64 });
            }
            if s % (N / 10) == 0 {
                next(enc, 1, s / (N / 10));
            }
        }
    });
    let (p, usage) = every_command("N distinct sites", &bytes);
    assert_eq!(p.symbols.site_count() as u64, N);
    assert_eq!(p.memory.live_blocks_at_end, N / 2);
    assert!(usage.peak < N as usize * 3 * KIB, "{usage:?}");
}

/// A million scopes, defined with their names, each entered twice on one
/// thread — once for a tick and once for 2^40 ticks — in ten chunks over
/// ten rounds. Memory grows with the scopes, within 2 KiB each.
#[test]
fn a_million_scopes() {
    let bytes = session(|next, enc| {
        for s in 1..=N {
            enc.push(&scope_def(s as u32, format!("op{s}")));
            if s % (N / 10) == 0 {
                next(enc, 0, 0);
            }
        }
        next(enc, 1, 0);
        let mut ts = 0u64;
        for s in 1..=N {
            let scope = s as u32;
            enc.push(&Record::ScopeEnter { ts, scope });
            enc.push(&Record::ScopeExit { ts: ts + 1, scope });
            enc.push(&Record::ScopeEnter { ts: ts + 2, scope });
            ts += 1 << 40;
            enc.push(&Record::ScopeExit { ts, scope });
            if s % (N / 10) == 0 {
                next(enc, 1, s / (N / 10));
            }
        }
    });
    let (p, usage) = every_command("N scopes", &bytes);
    assert_eq!(p.scopes.len() as u64, N);
    assert!(p.scope_times.values().all(|t| t.count == 2));
    assert!(usage.peak < N as usize * 2 * KIB, "{usage:?}");
}

/// One thread entering a million nested scopes, then leaving a million
/// times a scope it never entered (each exit would search every open
/// entry), then leaving them all. The call tree stops at its depth; every
/// entry is still in its scope's figures; no work is quadratic.
#[test]
fn scopes_nested_a_million_deep() {
    let bytes = session(|next, enc| {
        for s in 1..=3u32 {
            enc.push(&scope_def(s, format!("level{s}")));
        }
        next(enc, 1, 0);
        let scope = |i: u64| 1 + (i % 3) as u32;
        // A chunk every N / 10 records, each in a round of its own.
        let mut round = 0;
        let mut count = 0u64;
        let mut push = |enc: &mut ChunkEncoder, r: Record| {
            enc.push(&r);
            count += 1;
            if count % (N / 10) == 0 {
                round += 1;
                next(enc, 1, round);
            }
        };
        for i in 0..N {
            push(enc, Record::ScopeEnter { ts: i, scope: scope(i) });
        }
        for i in 0..N {
            push(enc, Record::ScopeExit { ts: N + i, scope: 9 });
        }
        for i in (0..N).rev() {
            push(enc, Record::ScopeExit { ts: 3 * N - i, scope: scope(i) });
        }
    });
    let (p, usage) = every_command("scopes nested N deep", &bytes);
    assert_eq!(p.call_tree.nodes.len(), MAX_TREE_DEPTH + 1);
    assert!(p.call_tree.nodes.len() <= MAX_TREE_NODES);
    assert_eq!(p.anomalies.beyond_call_tree, N - MAX_TREE_DEPTH as u64);
    assert_eq!(p.anomalies.unmatched_exits, N);
    let entries: u64 = p.scope_times.values().map(|t| t.count).sum();
    assert_eq!(entries, N);
    assert!(usage.peak < N as usize * 512, "{usage:?}");
}

/// A `Counters` record of a million values at both ends of a scope entry,
/// where the metadata names none: the figures keep them, the report shows
/// the counters the metadata names.
#[test]
fn counters_of_a_million_values() {
    let bytes = session(|next, enc| {
        enc.push(&scope_def(1, String::from("counted")));
        next(enc, 1, 0);
        enc.push(&Record::ScopeEnter { ts: 1, scope: 1 });
        enc.push(&Record::Counters { ts: 1, scope: 1, values: vec![1; N as usize] });
        enc.push(&Record::Counters { ts: 2, scope: 1, values: vec![3; N as usize] });
        enc.push(&Record::ScopeExit { ts: 3, scope: 1 });
    });
    let (p, usage) = every_command("counters of N values", &bytes);
    assert_eq!(p.scope_times[&1].counted, 1);
    assert!(usage.peak < 96 * MIB, "{usage:?}");
}

/// A chunk of four million of the smallest records (a pause or a resume:
/// two bytes each), which zstd stores in a few hundred bytes of the file.
/// The replay holds a chunk as its bytes, decoding each record as it goes
/// out (it held them decoded, 64 bytes a record, and merge 88), so the
/// memory follows the decompressed payload — a few bytes a byte, up to 64
/// MiB of payload a frame — never the file's size, and nothing more.
#[test]
fn a_chunk_of_the_smallest_records() {
    let records = 4 * N;
    let bytes = session(|next, enc| {
        next(enc, 1, 0);
        for i in 0..records {
            let ts = i / 2;
            enc.push(&if i % 2 == 0 { Record::Pause { ts } } else { Record::Resume { ts } });
        }
    });
    let payload = 2 * records as usize;
    let (p, usage) = every_command("a chunk of 4 × N two-byte records", &bytes);
    assert_eq!(p.count(RecordKind::Pause) + p.count(RecordKind::Resume), records);
    assert!(bytes.len() < payload / 100, "{} bytes", bytes.len());
    assert!(usage.peak < payload * 8 + 16 * MIB, "{usage:?}, {payload} bytes of payload");
}

/// Ten chunks of a hundred thousand events each, on two threads, all in the
/// collector's first round: the replay holds events until two rounds have
/// passed (the writer's rounds advance every few milliseconds), so it
/// holds these whole, and its memory follows the events, nothing more.
#[test]
fn chunks_that_never_leave_their_round() {
    let bytes = session(|next, enc| {
        for c in 0..10u64 {
            next(enc, 1 + c % 2, 0);
            for i in 0..N / 10 {
                let ts = c * N + i;
                let addr = 0x1000 + (c * N + i) * 64;
                enc.push(&alloc(ts, addr, 64, 0));
                enc.push(&Record::Free { ts: ts + 1, addr, size: 64 });
            }
        }
    });
    let events = 2 * N as usize;
    let (p, usage) = every_command("N × 2 events in one round", &bytes);
    assert_eq!(p.memory.allocs, N);
    assert_eq!(p.memory.live_blocks_at_end, 0);
    assert!(usage.peak < events * 512 + 16 * MIB, "{usage:?}");
}
