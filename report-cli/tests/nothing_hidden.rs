//! What the command line leaves out or cannot know, it says: call-tree
//! nodes under the cut are counted under their parent, a filter that
//! matches nothing is an error naming what would match, and what a session
//! cut short never recorded reads as unknown rather than zero.

mod common;

use std::ffi::OsStr;

use common::{pulse, scratch, write};

use pulse_format::{AllocMode, ChunkEncoder, ClockInfo, Metadata, Record, Trailer, Writer};

const SERVE: u32 = 1;
const TINY: u32 = 2;
const DUST: u32 = 3;
const WORK: u32 = 4;
const BLIP: u32 = 5;

fn scope_def(scope: u32, name: &str, category: &str) -> Record {
    Record::ScopeDef {
        scope,
        name: name.into(),
        category: category.into(),
        description: String::new(),
        priority: 0,
    }
}

fn enter(ts: u64, scope: u32) -> Record {
    Record::ScopeEnter { ts, scope }
}

fn exit(ts: u64, scope: u32) -> Record {
    Record::ScopeExit { ts, scope }
}

/// Two threads serve for the whole 100 µs of the session, at once, so
/// their outermost scopes add up to 200 µs. Under `net::serve`: `work`
/// (30 µs), `tiny` (1.5 µs: 1.5 % of the session, 0.75 % of the scoped
/// time) and `dust` (300 ns); a third thread's `blip` (200 ns) is an
/// outermost scope of its own. The session started at
/// 1 700 000 000.123456789 s after the epoch (2023-11-14 22:13:20.123 UTC).
fn session() -> Vec<u8> {
    let meta = Metadata {
        writer: "pulse-cli tests".into(),
        program: "/usr/local/bin/server".into(),
        args: Vec::new(),
        pid: 7,
        host: "testhost".into(),
        start_unix_ns: 1_700_000_000_123_456_789,
        clock: ClockInfo::monotonic(),
        alloc_mode: AllocMode::Full,
        counters: Vec::new(),
        extra: vec![("cost.event_ns".into(), "10".into()), ("cost.stack_ns".into(), "20".into())],
    };
    let mut w = Writer::new(Vec::new(), &meta).expect("header");
    let mut enc = ChunkEncoder::new();
    let chunks = [
        (
            0,
            vec![
                scope_def(SERVE, "serve", "net"),
                scope_def(TINY, "tiny", "calc"),
                scope_def(DUST, "dust", "calc"),
                scope_def(WORK, "work", "calc"),
                scope_def(BLIP, "blip", "calc"),
            ],
        ),
        (
            1,
            vec![
                Record::ThreadStart { ts: 0, name: "main".into() },
                enter(0, SERVE),
                enter(10_000, TINY),
                Record::Alloc { ts: 10_100, addr: 0x1000, size: 64, align: 8, site: 0, weight: 1 },
                exit(11_500, TINY),
                enter(20_000, DUST),
                exit(20_300, DUST),
                exit(100_000, SERVE),
            ],
        ),
        (
            2,
            vec![
                Record::ThreadStart { ts: 0, name: "worker".into() },
                enter(0, SERVE),
                enter(30_000, WORK),
                exit(60_000, WORK),
                exit(100_000, SERVE),
            ],
        ),
        (
            3,
            vec![
                Record::ThreadStart { ts: 50_000, name: "blipper".into() },
                enter(50_000, BLIP),
                exit(50_200, BLIP),
            ],
        ),
    ];
    for (thread, records) in chunks {
        enc.begin(thread, 0);
        for r in &records {
            enc.push(r);
        }
        w.write_chunk(&enc).expect("chunk");
    }
    let extra = [
        ("collector_cpu_ns", 5_000),
        ("pulse_allocs", 3),
        ("pulse_bytes", 300),
        ("pulse_ring_bytes", 4096),
    ];
    w.finish(Trailer {
        end_ts: 100_000,
        end_unix_ns: 1_700_000_000_123_556_789,
        ticks_per_ns: 1.0,
        extra: extra.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        ..Trailer::default()
    })
    .expect("trailer")
}

/// The session without its trailer (its last frame), as a killed program
/// leaves it.
fn without_trailer(bytes: &[u8]) -> &[u8] {
    let meta_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut at = 20 + meta_len;
    let mut last = at;
    while at < bytes.len() {
        last = at;
        let stored = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 16 + stored;
    }
    &bytes[..last]
}

fn run(args: &[&OsStr]) -> common::Run {
    pulse(args)
}

#[test]
fn call_tree_counts_what_it_leaves_out_under_each_parent() {
    let dir = scratch("tree-cut");
    let path = write(&dir, "run.pulse", &session());
    let r = run(&[OsStr::new("report"), path.as_os_str()]);
    r.succeeds();
    let tree = r.stdout.split("Call tree\n").nth(1).unwrap().split("\n\n").next().unwrap();
    // 1.5 µs is 1.5 % of the session: shown, though the two threads'
    // outermost scopes add up to twice the session.
    r.has_line("calc::tiny 1 1.5 µs 1.5 µs");
    // Under the cut, counted under its parent, after the parent's rows.
    r.has_line("… 1 more (300 ns)");
    // And among the outermost scopes, last.
    r.has_line("… 1 more (200 ns)");
    assert!(!tree.contains("dust") && !tree.contains("blip"), "{tree}");
    let rows: Vec<&str> = tree.lines().map(str::trim).collect();
    assert_eq!(rows.len(), 6, "{tree}");
    assert!(rows[1].starts_with("net::serve"), "{tree}");
    assert!(rows[4].starts_with("… 1 more (300 ns)"), "{tree}");
    assert!(rows[5].starts_with("… 1 more (200 ns)"), "{tree}");

    let j = run(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--json")]);
    j.succeeds();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let tree = v["tree"].as_array().unwrap();
    assert_eq!(tree.len(), 3, "{tree:#?}");
    assert_eq!(tree[0]["name"], "net::serve");
    assert_eq!(tree[0]["omitted"], serde_json::json!({ "count": 1, "total_ns": 300 }));
    assert!(tree[1]["omitted"].is_null() && tree[2]["omitted"].is_null(), "{tree:#?}");
    assert_eq!(v["tree_omitted"], serde_json::json!({ "count": 1, "total_ns": 200 }));

    // The whole tree leaves nothing out.
    let h = run(&[OsStr::new("hotspots"), path.as_os_str(), OsStr::new("--tree")]);
    h.succeeds();
    h.has_line("calc::dust 1 300 ns 300 ns");
    h.has_line("calc::blip 1 200 ns 200 ns");
    assert!(!h.stdout.contains("more ("), "{}", h.stdout);
}

#[test]
fn an_unknown_category_is_an_error_naming_the_sessions_categories() {
    let dir = scratch("category");
    let path = write(&dir, "run.pulse", &session());
    run(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--category"), OsStr::new("nope")])
        .fails(1, &["run.pulse", "no category matches nope", "its categories are calc, net"]);
    let r = run(&[
        OsStr::new("report"),
        path.as_os_str(),
        OsStr::new("--category"),
        OsStr::new("calc"),
        OsStr::new("--json"),
    ]);
    r.succeeds();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> =
        v["scopes"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["work", "tiny", "dust", "blip"]);
    // As an unknown thread is.
    run(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--thread"), OsStr::new("nope")])
        .fails(1, &["run.pulse", "no thread matches nope", "its threads are #1 main"]);
}

#[test]
fn info_shows_the_start_as_a_utc_date_and_json_keeps_the_nanoseconds() {
    let dir = scratch("info-start");
    let path = write(&dir, "run.pulse", &session());
    let r = run(&[OsStr::new("info"), path.as_os_str()]);
    r.succeeds();
    r.has_line("started 2023-11-14 22:13:20.123 UTC");
    assert!(!r.stdout.contains("1700000000123456789"), "{}", r.stdout);
    let j = run(&[OsStr::new("info"), path.as_os_str(), OsStr::new("--json")]);
    j.succeeds();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["meta"]["start_unix_ns"], 1_700_000_000_123_456_789u64);
}

#[test]
fn what_only_the_trailer_knows_is_unknown_when_it_is_missing() {
    let dir = scratch("no-trailer");
    let whole = session();
    let path = write(&dir, "run.pulse", &whole);
    let r = run(&[OsStr::new("report"), path.as_os_str()]);
    r.succeeds();
    r.has_line("collector 5 µs of CPU; 3 allocations (300 B) and 4 KiB of rings of its own");

    let cut = write(&dir, "cut.pulse", without_trailer(&whole));
    let r = run(&[OsStr::new("report"), cut.as_os_str(), OsStr::new("--wide")]);
    r.fails(3, &["warning: ", "truncated"]);
    r.has_line(
        "collector's CPU and pulse's own memory: unknown (the session has no trailer: it did not finish)",
    );
    assert!(!r.stdout.contains("collector 0 ns"), "{}", r.stdout);
    let j = run(&[OsStr::new("report"), cut.as_os_str(), OsStr::new("--json")]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    for k in ["collector_ns", "own_allocs", "own_bytes", "ring_bytes"] {
        assert!(v["overhead"][k].is_null(), "{k}: {}", v["overhead"]);
    }
    let i = run(&[OsStr::new("info"), cut.as_os_str()]);
    i.has_line("trailer missing: the session did not finish");
    i.has_line("started 2023-11-14 22:13:20.123 UTC");
}
