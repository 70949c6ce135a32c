//! `pulse merge` keeps what tells pulse's frames from the program's: the
//! source directories each session recorded (so that a session recorded
//! from a pulse built elsewhere still places its sites on the program's
//! lines once merged), and the stack depth where every session has the
//! same.

use pulse_analysis::{merge_bytes, Frame, FrameKind, Profile, PULSE_SOURCES_KEY, STACK_DEPTH_KEY};
use pulse_format::{ChunkEncoder, ClockInfo, Metadata, Record, Trailer, Writer};

/// A session of a program whose pulse was built under `pulse`: one
/// allocation, at a site of two frames, pulse's then the program's.
fn session(pulse: &str, depth: &str) -> Vec<u8> {
    session_with(&format!("{pulse}/alloc\n{pulse}/runtime"), pulse, Some(depth))
}

/// [`session`] with the metadata's `dirs` and `depth` as given.
fn session_with(dirs: &str, pulse: &str, depth: Option<&str>) -> Vec<u8> {
    let mut meta = Metadata {
        writer: "test".into(),
        program: "/home/me/app/target/release/app".into(),
        clock: ClockInfo::monotonic(),
        extra: vec![(PULSE_SOURCES_KEY.into(), dirs.into())],
        ..Metadata::default()
    };
    if let Some(depth) = depth {
        meta.extra.push((STACK_DEPTH_KEY.into(), depth.into()));
    }
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    enc.push(&Record::SiteDef { site: 1, frames: vec![0x1000, 0x2000] });
    enc.push(&Record::Symbol {
        addr: 0x1000,
        function: "instruction_pointer".into(),
        file: format!("{pulse}/alloc/src/site.rs"),
        line: 268,
    });
    enc.push(&Record::Symbol {
        addr: 0x2000,
        function: "app::main".into(),
        file: "/home/me/app/src/main.rs".into(),
        line: 58,
    });
    w.write_chunk(&enc).unwrap();
    enc.begin(1, 1);
    enc.push(&Record::ThreadStart { ts: 1, name: "main".into() });
    enc.push(&Record::Alloc { ts: 10, addr: 0x5000, size: 64, align: 8, site: 1, weight: 1 });
    w.write_chunk(&enc).unwrap();
    w.finish(Trailer { end_ts: 100, ..Trailer::default() }).unwrap()
}

fn merged(inputs: &[&[u8]]) -> Profile {
    let mut out = Vec::new();
    merge_bytes(inputs, &mut out).unwrap();
    Profile::read(&out[..]).unwrap()
}

fn extra<'a>(p: &'a Profile, key: &str) -> Option<&'a str> {
    p.meta.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn pulse_frame(pulse: &str) -> Frame {
    Frame {
        function: "instruction_pointer".into(),
        file: format!("{pulse}/alloc/src/site.rs"),
        line: 268,
    }
}

#[test]
fn a_merge_keeps_the_sessions_source_directories() {
    let a = session("/build/a/pulse", "32");
    let alone = Profile::read(&a[..]).unwrap();
    let p = merged(&[&a, &a]);
    for p in [&alone, &p] {
        assert_eq!(p.symbols.kind(&pulse_frame("/build/a/pulse")), FrameKind::Pulse);
    }
    // The site is the program's line, as in the session alone, not pulse's.
    let site = p.symbols.site(1).expect("a site");
    assert_eq!(site.frame.file, "/home/me/app/src/main.rs", "{site:?}");
    assert_eq!(extra(&p, STACK_DEPTH_KEY), Some("32"));

    // Two sessions of pulses built in two places: both are pulse's.
    let b = session("/build/b/pulse", "16");
    let p = merged(&[&a, &b]);
    for dir in ["/build/a/pulse", "/build/b/pulse"] {
        assert_eq!(p.symbols.kind(&pulse_frame(dir)), FrameKind::Pulse, "{dir}");
    }
    assert_eq!(
        extra(&p, PULSE_SOURCES_KEY),
        Some("/build/a/pulse/alloc\n/build/a/pulse/runtime\n/build/b/pulse/alloc\n/build/b/pulse/runtime")
    );
    // Depths that differ: none is the merge's.
    assert_eq!(extra(&p, STACK_DEPTH_KEY), None);
}

/// Lines a reader would not take (relative, empty, padded) do not crowd out
/// the directories it takes; a session without a depth leaves the merge
/// without one.
#[test]
fn a_merge_keeps_the_directories_a_reader_takes() {
    let junk: Vec<String> = (0..70).map(|k| format!("rel/dir{k}")).collect();
    let dirs = format!("{}\n\n  /build/a/pulse/alloc  \n/build/a/pulse/runtime", junk.join("\n"));
    let a = session_with(&dirs, "/build/a/pulse", Some("32"));
    let p = merged(&[&a, &a]);
    assert_eq!(p.symbols.kind(&pulse_frame("/build/a/pulse")), FrameKind::Pulse);
    assert_eq!(extra(&p, PULSE_SOURCES_KEY), Some("/build/a/pulse/alloc\n/build/a/pulse/runtime"));
    let without = session_with("/build/a/pulse/alloc", "/build/a/pulse", None);
    assert_eq!(extra(&merged(&[&without, &a]), STACK_DEPTH_KEY), None);
    assert_eq!(extra(&merged(&[&a, &without]), STACK_DEPTH_KEY), None);
}

#[test]
fn sessions_of_different_allocation_modes_do_not_merge() {
    // Sessions of one program in two modes: a sampled one's sites would be
    // weighed by an interval the full one's must not be.
    let meta = Profile::read(&session("/src/pulse", "32")[..]).unwrap().meta;
    let of_mode = |alloc_mode| {
        let w = Writer::new(Vec::new(), &Metadata { alloc_mode, ..meta.clone() }).unwrap();
        w.finish(Trailer { end_ts: 100, ..Trailer::default() }).unwrap()
    };
    let full = of_mode(pulse_format::AllocMode::Full);
    let sampled = of_mode(pulse_format::AllocMode::Sample { mean_bytes: 4096 });
    let mut out = Vec::new();
    let e = merge_bytes(&[&full, &sampled], &mut out).unwrap_err().to_string();
    assert_eq!(
        e,
        "session 2: recorded in sample mode (one stack per 4096 B on average), an earlier session in full mode: sessions of different allocation modes do not merge (a sampled session's sites are estimates weighed by its interval, a counting one's totals only in its trailer)"
    );
    // Two sampled at one interval do, and with a session that recorded no
    // allocations, the merge is sampled whichever comes first.
    let off = of_mode(pulse_format::AllocMode::Off);
    let both = merged(&[&off, &sampled, &sampled]);
    assert_eq!(both.meta.alloc_mode, pulse_format::AllocMode::Sample { mean_bytes: 4096 });
}
