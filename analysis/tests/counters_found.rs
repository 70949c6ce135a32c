//! A session opens its counters at its first counted scope and lists them
//! in its trailer: the profile's metadata has them from there, or, where
//! the session was cut before its trailer, names its readings by how many
//! values they hold. `pulse info` tells a session whose scopes read none
//! from one that asked for none.

use pulse_analysis::{info, merge_bytes, Profile};
use pulse_format::{
    ChunkEncoder, ClockInfo, CounterInfo, Metadata, Record, Trailer, Writer, COUNTERS_AT_FIRST_USE,
    HARDWARE_COUNTERS, NO_SCOPE, SOFTWARE_COUNTERS,
};

/// How a session ends.
enum End {
    /// With a trailer listing these counters.
    Trailer(Vec<CounterInfo>),
    /// Cut before its trailer.
    Cut,
}

/// A session of three entries of one scope, each read at both ends with
/// `width` values (none where 0): 7 more of each at the exit.
fn session(width: usize, at_first_use: bool, end: End) -> Profile {
    session_of(width, at_first_use, end, true)
}

/// [`session`]; with `finished` false, the scope's one entry is still open
/// at the cut, read at its entry and by the collector's periodic samples.
fn session_of(width: usize, at_first_use: bool, end: End, finished: bool) -> Profile {
    Profile::read(&bytes_of(width, at_first_use, end, finished)[..]).unwrap()
}

/// The file of [`session_of`].
fn bytes_of(width: usize, at_first_use: bool, end: End, finished: bool) -> Vec<u8> {
    let mut meta = Metadata {
        writer: "test".into(),
        program: "/work/app/target/release/app".into(),
        clock: ClockInfo::monotonic(),
        ..Metadata::default()
    };
    if at_first_use {
        meta.extra.push((
            COUNTERS_AT_FIRST_USE.into(),
            "hardware, else software, opened at the first scope that reads them".into(),
        ));
    }
    let mut w = Writer::new(Vec::new(), &meta).unwrap();
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    enc.push(&Record::ScopeDef {
        scope: 1,
        name: "work".into(),
        category: String::new(),
        description: String::new(),
        priority: 0,
    });
    w.write_chunk(&enc).unwrap();
    enc.begin(1, 1);
    enc.push(&Record::ThreadStart { ts: 1, name: "main".into() });
    if !finished {
        enc.push(&Record::ScopeEnter { ts: 100, scope: 1 });
        enc.push(&Record::Counters { ts: 100, scope: 1, values: vec![1; width] });
        for k in 2..5 {
            enc.push(&Record::Counters { ts: k * 100, scope: NO_SCOPE, values: vec![k; width] });
        }
    }
    for k in (0..3u64).filter(|_| finished) {
        let ts = 100 + k * 100;
        enc.push(&Record::ScopeEnter { ts, scope: 1 });
        if width > 0 {
            enc.push(&Record::Counters { ts, scope: 1, values: vec![k * 10; width] });
            enc.push(&Record::Counters { ts: ts + 50, scope: 1, values: vec![k * 10 + 7; width] });
        }
        enc.push(&Record::ScopeExit { ts: ts + 50, scope: 1 });
    }
    w.write_chunk(&enc).unwrap();
    let bytes = match end {
        End::Trailer(counters) => {
            w.finish(Trailer { end_ts: 1_000, counters, ..Trailer::default() }).unwrap()
        }
        End::Cut => std::mem::take(w.get_mut()),
    };
    bytes
}

fn counter(name: &str, available: bool, reason: &str) -> CounterInfo {
    CounterInfo { name: name.into(), available, reason: reason.into() }
}

fn names(p: &Profile) -> Vec<&str> {
    p.meta.counters.iter().filter(|c| c.available).map(|c| c.name.as_str()).collect()
}

fn info_text(p: &Profile) -> String {
    let mut out = Vec::new();
    info(p).render(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_trailers_counters_name_the_readings() {
    let mut listed: Vec<CounterInfo> =
        HARDWARE_COUNTERS.iter().map(|n| counter(n, false, "no PMU here")).collect();
    listed.extend(SOFTWARE_COUNTERS.iter().map(|n| counter(n, true, "software counter")));
    let p = session(4, true, End::Trailer(listed.clone()));
    assert_eq!(p.meta.counters, listed);
    let t = &p.scope_times[&1];
    assert_eq!((t.counted, t.counters.clone()), (3, vec![21; 4]));
    let text = info_text(&p);
    assert!(text.contains("counter      cycles: unavailable (no PMU here)"), "{text}");
    assert!(text.contains("counter      task-clock: opened (software counter)"), "{text}");
}

#[test]
fn a_session_cut_before_its_trailer_names_its_readings_by_their_number() {
    for (width, want) in [(5, &HARDWARE_COUNTERS[..]), (4, &SOFTWARE_COUNTERS[..])] {
        let p = session(width, true, End::Cut);
        assert!(p.trailer.is_none());
        assert_eq!(names(&p), want);
        assert!(p.meta.counters[0].reason.contains("named by the number of values"));
        assert_eq!(p.scope_times[&1].counters, vec![21; width]);
    }
    // A scope open at the cut (a whole run's, killed): its entry's reading
    // and the periodic samples are readings too.
    let p = session_of(4, true, End::Cut, false);
    assert_eq!(names(&p), SOFTWARE_COUNTERS);
    // Readings of another width are not guessed at.
    let p = session(3, true, End::Cut);
    assert!(p.meta.counters.is_empty(), "{:?}", p.meta.counters);
}

#[test]
fn a_session_whose_scopes_read_none_says_so() {
    let p = session(0, true, End::Trailer(Vec::new()));
    assert!(p.meta.counters.is_empty());
    let text = info_text(&p);
    assert!(text.contains("counters     none opened: no scope read them"), "{text}");
    let p = session(0, false, End::Trailer(Vec::new()));
    assert!(info_text(&p).contains("counters     none requested"));
}

/// A merge names its readings as its sessions do: from the first list in
/// a metadata or a trailer, else (sessions cut before their trailers) by
/// their number.
#[test]
fn a_merge_names_its_readings_as_its_sessions_do() {
    let merged = |inputs: &[&[u8]]| {
        let mut out = Vec::new();
        merge_bytes(inputs, &mut out).unwrap();
        Profile::read(&out[..]).unwrap()
    };
    let cut = bytes_of(4, true, End::Cut, true);
    let p = merged(&[&cut, &cut]);
    assert_eq!(names(&p), SOFTWARE_COUNTERS);
    assert_eq!(p.scope_times[&1].counters, vec![42; 4]);
    let listed: Vec<CounterInfo> =
        SOFTWARE_COUNTERS.iter().map(|n| counter(n, true, "software counter")).collect();
    let finished = bytes_of(4, true, End::Trailer(listed.clone()), true);
    let none = bytes_of(0, true, End::Trailer(Vec::new()), true);
    assert_eq!(merged(&[&none, &finished]).meta.counters, listed);
    assert_eq!(merged(&[&cut, &finished]).meta.counters, listed);
    let p = merged(&[&none, &none]);
    assert!(p.meta.counters.is_empty());
    assert!(info_text(&p).contains("counters     none opened: no scope read them"));
}
