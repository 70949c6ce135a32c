//! End-to-end tests of the `pulse` binary: a session written with
//! `pulse-format`'s writer, read back by the real command line, and every kind
//! of bad input it must refuse in one line with the documented exit status.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use common::{golden, pulse, scratch, write, Run};

use pulse_format::{AllocMode, ChunkEncoder, ClockInfo, Metadata, Record, Trailer, Writer, MAGIC};

// ---------------------------------------------------------------------------
// The session under test
// ---------------------------------------------------------------------------
//
// Timestamps are on the monotonic clock, so ticks are nanoseconds. In global
// timestamp order the live set goes:
//
//   ts    event (thread)                       live bytes  blocks
//   1100  alloc A 128 (1)                            128      1
//   1200  alloc B 256 (1)                            384      2
//   1250  realloc B 256 -> 512 called, B released    128      1
//   1300  realloc returns, moved (1)                 640      2
//   1400  free A (1)                                 512      1
//   1600  alloc E 32 (2)                             544      2
//   1700  free E (2)                                 512      1
//   1900  alloc F 32 (2)                             544      2
//   2100  alloc C 1024 (1)                          1568      3   <- peak
//   2500  free C (1)                                 544      2
//   2700  alloc D 64 (1)                             608      3   <- end
//
// allocs 6, frees 3, reallocs 1; bytes allocated 128+256+512+1024+64+32+32
// = 2048 (2 KiB), freed 128+256+1024+32 = 1440 (1.41 KiB); peak 1568 B
// (1.53 KiB) with 3 blocks, 1100 ns after the first event; 608 B in 3 blocks
// live at the end.
//
// Scopes: parse 1000..2000 on thread 1 (self 1000); build::index 2000..3000
// on thread 1 with serve::query 2600..2900 inside it (self 700); serve::query
// also 1500..1850 on thread 2 (count 2, total 650, mean 325, min 300, max 350).

const SCOPE_PARSE: u32 = 1;
const SCOPE_INDEX: u32 = 2;
const SCOPE_QUERY: u32 = 3;

fn alloc(ts: u64, addr: u64, size: u64) -> Record {
    Record::Alloc { ts, addr, size, align: 8, site: 0, weight: 1 }
}

fn free(ts: u64, addr: u64, size: u64) -> Record {
    Record::Free { ts, addr, size }
}

fn enter(ts: u64, scope: u32) -> Record {
    Record::ScopeEnter { ts, scope }
}

fn exit(ts: u64, scope: u32) -> Record {
    Record::ScopeExit { ts, scope }
}

fn scope_def(scope: u32, name: &str, category: &str) -> Record {
    Record::ScopeDef {
        scope,
        name: name.into(),
        category: category.into(),
        description: String::new(),
        priority: 0,
    }
}

/// The chunks of the session, in the order the collector writes them:
/// `(thread, round, records)`.
fn chunks() -> Vec<(u64, u64, Vec<Record>)> {
    const HEAP: u64 = 0x5555_0000_0000;
    vec![
        (
            0,
            0,
            vec![
                scope_def(SCOPE_PARSE, "parse", ""),
                scope_def(SCOPE_INDEX, "index", "build"),
                scope_def(SCOPE_QUERY, "query", "serve"),
            ],
        ),
        (
            1,
            0,
            vec![
                Record::ThreadStart { ts: 1000, name: "main".into() },
                enter(1000, SCOPE_PARSE),
                alloc(1100, HEAP + 0x1000, 128),
                alloc(1200, HEAP + 0x2000, 256),
                Record::Realloc {
                    ts: 1300,
                    start_ts: 1250,
                    old_addr: HEAP + 0x2000,
                    old_size: 256,
                    new_addr: HEAP + 0x3000,
                    new_size: 512,
                    align: 8,
                    site: 0,
                },
                free(1400, HEAP + 0x1000, 128),
                exit(2000, SCOPE_PARSE),
            ],
        ),
        (
            1,
            1,
            vec![
                enter(2000, SCOPE_INDEX),
                alloc(2100, HEAP + 0x4000, 1024),
                free(2500, HEAP + 0x4000, 1024),
                enter(2600, SCOPE_QUERY),
                alloc(2700, HEAP + 0x5000, 64),
                exit(2900, SCOPE_QUERY),
                exit(3000, SCOPE_INDEX),
            ],
        ),
        (
            2,
            1,
            vec![
                Record::ThreadStart { ts: 1500, name: "worker".into() },
                enter(1500, SCOPE_QUERY),
                alloc(1600, HEAP + 0x9000, 32),
                free(1700, HEAP + 0x9000, 32),
                exit(1850, SCOPE_QUERY),
                alloc(1900, HEAP + 0xa000, 32),
                Record::ThreadEnd { ts: 1950 },
            ],
        ),
    ]
}

fn metadata() -> Metadata {
    Metadata {
        writer: "pulse-cli tests".into(),
        program: "/usr/local/bin/orderbook".into(),
        args: vec!["--depth".into(), "3".into()],
        pid: 4242,
        host: "testhost".into(),
        start_unix_ns: 1_700_000_000_000_000_000,
        clock: ClockInfo::monotonic(),
        alloc_mode: AllocMode::Full,
        counters: Vec::new(),
        extra: Vec::new(),
    }
}

/// The trailer, with the allocator's own totals matching the records.
fn trailer(extra: &[(&str, u64)]) -> Trailer {
    Trailer {
        end_ts: 4000,
        end_unix_ns: 1_700_000_000_000_003_000,
        ticks_per_ns: 1.0,
        extra: extra.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        ..Trailer::default()
    }
}

const TOTALS: [(&str, u64); 4] =
    [("allocs", 6), ("frees", 3), ("reallocs", 1), ("bytes_allocated", 2048)];

fn session_bytes_with(trailer: Trailer) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), &metadata()).expect("header");
    let mut enc = ChunkEncoder::new();
    for (thread, round, records) in chunks() {
        enc.begin(thread, round);
        for r in &records {
            enc.push(r);
        }
        w.write_chunk(&enc).expect("chunk");
    }
    w.finish(trailer).expect("trailer")
}

fn session_bytes() -> Vec<u8> {
    session_bytes_with(trailer(&TOTALS))
}

/// Where each frame of a session file starts and ends, from its layout:
/// a 20-byte header plus metadata, then frames of a 16-byte head and payload.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let meta_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut at = 20 + meta_len;
    let mut out = Vec::new();
    while at < bytes.len() {
        let stored = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at, at + 16 + stored));
        at += 16 + stored;
    }
    assert_eq!(at, bytes.len(), "frames must tile the file");
    out
}

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

fn report(path: &Path) -> Run {
    pulse(&[OsStr::new("report"), path.as_os_str()])
}

fn info(path: &Path) -> Run {
    pulse(&[OsStr::new("info"), path.as_os_str()])
}

// ---------------------------------------------------------------------------
// Good input
// ---------------------------------------------------------------------------

#[test]
fn report_prints_exact_totals_peak_live_and_scopes() {
    let dir = scratch("report");
    let path = write(&dir, "run.pulse", &session_bytes());
    let r = report(&path);
    r.succeeds();
    r.has_line("pulse report: /usr/local/bin/orderbook --depth 3");
    r.has_line("duration 3 µs, 2 threads");
    r.has_line("blocks bytes");
    r.has_line("allocated 6 2 KiB");
    r.has_line("freed 3 1.41 KiB");
    r.has_line("reallocated 1");
    r.has_line("peak live (at 1.1 µs) 3 1.53 KiB");
    r.has_line("live at end 3 608 B");
    // count, self, total, mean, p50, p99, p99.9, max, allocations inside,
    // their peak and what is left of them: every column, with --wide.
    let wide = pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--wide")]);
    wide.succeeds();
    wide.has_line("parse 1 1 µs 1 µs 1 µs 1 µs 1 µs 1 µs 1 µs 2 640 B 512 B");
    wide.has_line("build::index 1 700 ns 1 µs 1 µs 1 µs 1 µs 1 µs 1 µs 1 1 KiB 0 B");
    wide.has_line("serve::query 2 650 ns 650 ns 325 ns 300 ns 350 ns 350 ns 350 ns 2 64 B 64 B");
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
    golden("report.txt", &r.stdout);
    // Longest self time first.
    let order: Vec<usize> = ["parse 1", "build::index 1", "serve::query 2"]
        .iter()
        .map(|s| r.lines().iter().position(|l| l.starts_with(s)).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", r.stdout);
}

#[test]
fn report_for_one_thread_keeps_its_scopes_and_the_blocks_it_allocated() {
    let dir = scratch("thread");
    let path = write(&dir, "run.pulse", &session_bytes());
    let r = pulse(&[
        OsStr::new("report"),
        path.as_os_str(),
        OsStr::new("--thread"),
        OsStr::new("worker"),
    ]);
    r.succeeds();
    r.has_line(
        "only #2 worker (1 of 2 threads): its scopes, and the blocks it allocated, wherever freed",
    );
    r.has_line("allocated 2 64 B");
    r.has_line("live at end 1 32 B");
    let wide = pulse(&[
        OsStr::new("report"),
        path.as_os_str(),
        OsStr::new("--thread"),
        OsStr::new("worker"),
        OsStr::new("--wide"),
    ]);
    wide.has_line("serve::query 1 350 ns 350 ns 350 ns 350 ns 350 ns 350 ns 350 ns 1 32 B 0 B");
    assert!(!r.stdout.contains("parse"), "{}", r.stdout);
    golden("report-thread.txt", &r.stdout);
    // By id, as the report lists threads, is the same view.
    let by_id =
        pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--thread"), OsStr::new("#2")]);
    assert_eq!(by_id.stdout, r.stdout);
    pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--thread"), OsStr::new("7")])
        .fails(1, &["run.pulse", "no thread matches 7", "#1 main, #2 worker"]);
    pulse(&[
        OsStr::new("export"),
        path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("chrome"),
        OsStr::new("--thread"),
        OsStr::new("worker"),
        OsStr::new("-o"),
        OsStr::new("-"),
    ])
    .fails(2, &["--thread", "chrome"]);
}

#[test]
fn report_top_limits_the_scope_table() {
    let dir = scratch("top");
    let path = write(&dir, "run.pulse", &session_bytes());
    let r = pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--top"), OsStr::new("1")]);
    r.succeeds();
    assert!(r.lines().iter().any(|l| l.starts_with("parse 1 ")), "{}", r.stdout);
    r.has_line("… 2 more (--top)");
    let table = r.stdout.split("Scopes by self time").nth(1).unwrap().split("\n\n").next().unwrap();
    assert!(!table.contains("serve::query"), "{}", r.stdout);
}

#[test]
fn info_prints_metadata_record_counts_and_trailer() {
    let dir = scratch("info");
    let path = write(&dir, "run.pulse", &session_bytes());
    let r = info(&path);
    r.succeeds();
    for line in [
        "format v3 (pulse-cli tests)",
        "program /usr/local/bin/orderbook",
        "arguments --depth 3",
        "pid 4242",
        "host testhost",
        "duration 3 µs",
        "clock CLOCK_MONOTONIC (nanoseconds)",
        "allocations full mode",
        "threads 2",
        "chunks 4",
        "thread-start 2",
        "thread-end 1",
        "alloc 6",
        "alloc-failed 0",
        "free 3",
        "realloc 1",
        "scope-enter 4",
        "scope-exit 4",
        "scope-def 3",
        "trailer present: the session finished",
        "allocs 6",
        "frees 3",
        "reallocs 1",
        "bytes_allocated 2 KiB",
    ] {
        r.has_line(line);
    }
    assert!(!r.stdout.contains("warning"), "{}", r.stdout);
    golden("info.txt", &r.stdout);
}

#[test]
fn a_path_with_spaces_works() {
    let dir = scratch("spaces").join("my sessions");
    std::fs::create_dir_all(&dir).unwrap();
    let path = write(&dir, "run 1 of 2.pulse", &session_bytes());
    let r = report(&path);
    r.succeeds();
    r.has_line("allocated 6 2 KiB");
    info(&path).succeeds();
}

#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    let dir = scratch("pipe");
    let path = write(&dir, "run.pulse", &session_bytes());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulse"))
        .arg("report")
        .arg(&path)
        .env("PULSE_CACHE_DIR", common::cache_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pulse");
    // Close the reading end before pulse gets to write (like `| head -0`).
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for pulse");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn totals_that_do_not_cross_check_are_a_warning_not_an_error() {
    let dir = scratch("lost");
    let mut totals = TOTALS;
    totals[0].1 = 9;
    let path = write(&dir, "lost.pulse", &session_bytes_with(trailer(&totals)));
    let r = report(&path);
    r.succeeds();
    assert!(
        r.stdout.contains("warning: the allocator counted 9 allocs but the file holds 6"),
        "{}",
        r.stdout
    );
}

#[test]
fn absurd_but_well_formed_values_do_not_panic() {
    // Checksums and framing are right; the values are not what any program
    // produces: sizes and weights at the top of u64, a clock that runs
    // backwards, exits without entries, frees of unknown blocks, a live
    // address allocated again.
    let big = u64::MAX / 2 + 1;
    let records = vec![
        Record::ThreadStart { ts: u64::MAX - 10, name: String::new() },
        Record::Alloc {
            ts: u64::MAX - 5,
            addr: 0x10,
            size: big,
            align: 8,
            site: 7,
            weight: u64::MAX,
        },
        Record::Alloc { ts: 3, addr: 0x20, size: big, align: 8, site: 0, weight: u64::MAX },
        Record::Alloc { ts: 4, addr: 0x10, size: big, align: 8, site: 0, weight: 1 },
        Record::Realloc {
            ts: 2,
            start_ts: u64::MAX,
            old_addr: 0x20,
            old_size: big,
            new_addr: 0x30,
            new_size: u64::MAX,
            align: 1,
            site: 0,
        },
        Record::Free { ts: 1, addr: 0x999, size: u64::MAX },
        Record::ScopeExit { ts: 0, scope: 42 },
        Record::ScopeEnter { ts: u64::MAX, scope: 42 },
        Record::ScopeEnter { ts: 0, scope: 43 },
        Record::ScopeExit { ts: u64::MAX, scope: 42 },
        Record::Pause { ts: u64::MAX },
        Record::Resume { ts: 0 },
        Record::AllocFailed { ts: 9, size: u64::MAX, align: 1 << 40 },
        Record::Counters { ts: 9, scope: 5, values: vec![u64::MAX] },
    ];
    let mut w = Writer::new(Vec::new(), &metadata()).unwrap();
    let mut enc = ChunkEncoder::new();
    for round in [0, 0, u64::MAX] {
        enc.begin(u64::MAX, round);
        for r in &records {
            enc.push(r);
        }
        w.write_chunk(&enc).unwrap();
    }
    let t = Trailer { end_ts: 0, ticks_per_ns: f64::MIN_POSITIVE, ..trailer(&[("allocs", 1)]) };
    let bytes = w.finish(t).unwrap();
    let dir = scratch("absurd");
    let path = write(&dir, "absurd.pulse", &bytes);
    for r in [report(&path), info(&path)] {
        r.no_panic();
        assert_eq!(r.status, 0, "{r:#?}");
    }
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[test]
fn an_empty_file_is_refused() {
    let dir = scratch("empty");
    let path = write(&dir, "empty.pulse", b"");
    report(&path).fails(1, &["empty.pulse", "empty"]);
    info(&path).fails(1, &["empty.pulse", "empty"]);
}

#[test]
fn random_bytes_are_refused() {
    let dir = scratch("random");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    bytes[0] = 0x17; // whatever the generator says, not the magic's first byte
    let path = write(&dir, "random.bin", &bytes);
    report(&path).fails(1, &["random.bin", "not a pulse session"]);
    info(&path).fails(1, &["random.bin", "not a pulse session"]);

    // The magic followed by garbage: past the magic, still refused in one line.
    bytes[..8].copy_from_slice(&MAGIC);
    bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
    let path = write(&dir, "magic-then-random.pulse", &bytes);
    report(&path).fails(1, &["magic-then-random.pulse"]);
}

#[test]
fn files_of_other_kinds_are_refused() {
    let dir = scratch("foreign");
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let path = write(&dir, "picture.png", png);
    report(&path).fails(1, &["picture.png", "not a pulse session"]);
    info(&path).fails(1, &["picture.png", "not a pulse session"]);

    let path = write(&dir, "notes.txt", b"these are my notes\nabout a run\n");
    report(&path).fails(1, &["notes.txt", "not a pulse session"]);
}

#[test]
fn a_file_cut_inside_the_header_is_an_error() {
    let dir = scratch("cut-header");
    let bytes = session_bytes();
    for cut in [4, 8, 19, 30] {
        let path = write(&dir, &format!("cut-{cut}.pulse"), &bytes[..cut]);
        report(&path).fails(1, &["truncated"]);
    }
}

#[test]
fn a_truncated_session_reports_its_whole_chunks_and_exits_3() {
    let dir = scratch("truncated");
    let bytes = session_bytes();
    let f = frames(&bytes);
    assert_eq!(f.len(), 5, "4 chunks and a trailer");
    let mid = |(a, b): (usize, usize)| a + 16 + (b - a - 16) / 2;
    // (where to cut, allocations in the whole chunks before it)
    let cuts = [
        (f[0].0, 0),      // right after the header: no chunk at all
        (f[0].0 + 7, 0),  // inside the first frame's head
        (f[1].0 + 16, 0), // after the head of thread 1's first chunk, no payload
        (mid(f[1]), 0),   // in the middle of thread 1's first chunk
        (f[2].0, 2),      // between chunks: A and B
        (mid(f[2]), 2),   // in the middle of a chunk
        (f[2].1 - 1, 2),  // one byte short of a chunk's end
        (mid(f[3]), 4),   // in the middle of the last chunk
        (f[4].0, 6),      // everything but the trailer
        (mid(f[4]), 6),   // in the middle of the trailer
        (bytes.len() - 1, 6),
    ];
    for (cut, allocs) in cuts {
        let path = write(&dir, &format!("cut-{cut}.pulse"), &bytes[..cut]);
        let r = report(&path);
        r.fails(3, &["warning: ", "truncated"]);
        assert!(r.stderr.starts_with("pulse: warning: "), "cut at {cut}: {}", r.stderr);
        assert!(
            r.stdout.starts_with("pulse report: /usr/local/bin/orderbook"),
            "cut at {cut}: the report is still printed:\n{}",
            r.stdout
        );
        assert!(
            r.stdout.contains("warning: the session is truncated"),
            "cut at {cut}: the report itself warns:\n{}",
            r.stdout
        );
        let allocated =
            r.lines().into_iter().find(|l| l.starts_with("allocated ")).unwrap_or_default();
        assert!(
            allocated.starts_with(&format!("allocated {allocs} ")),
            "cut at {cut}: expected {allocs} allocations, got {allocated:?}\n{}",
            r.stdout
        );

        let i = info(&path);
        i.fails(3, &["warning: ", "truncated"]);
        i.has_line("trailer missing: the session did not finish");
        i.has_line(&format!("alloc {allocs}"));
    }
}

#[test]
fn every_cut_and_every_flipped_bit_ends_in_one_line() {
    let dir = scratch("every-byte");
    let bytes = session_bytes();
    let f = frames(&bytes);
    for cut in 0..bytes.len() {
        let path = write(&dir, "cut.pulse", &bytes[..cut]);
        let r = report(&path);
        r.no_panic();
        let want = if cut < f[0].0 { 1 } else { 3 };
        assert_eq!(r.status, want, "cut at {cut}: {r:#?}");
        assert_eq!(r.stderr.lines().count(), 1, "cut at {cut}: {r:#?}");
    }
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 1 << (at % 8);
        let path = write(&dir, "flipped.pulse", &b);
        let r = report(&path);
        r.no_panic();
        // Header flags (bytes 10 and 11) are not checked; a flip in a frame's
        // stored length can make it run past the end, which reads as a cut.
        assert!(matches!(r.status, 0 | 1 | 3), "bit flipped at {at}: {r:#?}");
        assert!(r.stderr.lines().count() <= 1, "bit flipped at {at}: {r:#?}");
        if r.status == 1 {
            assert!(r.stderr.starts_with("pulse: "), "{r:#?}");
        }
        let in_payload = f.iter().any(|&(a, e)| at >= a + 16 && at < e);
        if in_payload {
            r.fails(1, &["flipped.pulse", "checksum mismatch", "corrupt"]);
        }
    }
}

#[test]
fn a_flipped_bit_in_a_chunk_is_corruption() {
    let dir = scratch("flipped");
    let bytes = session_bytes();
    let f = frames(&bytes);
    for frame in [f[1], f[2], f[3]] {
        let mut b = bytes.clone();
        let at = frame.0 + 16 + (frame.1 - frame.0 - 16) / 2;
        b[at] ^= 0x10;
        let path = write(&dir, &format!("flip-{at}.pulse"), &b);
        report(&path).fails(1, &["checksum mismatch", &format!("byte {}", frame.0)]);
        info(&path).fails(1, &["checksum mismatch"]);
    }
    // The kind byte of a frame's head is checksummed too.
    let mut b = bytes.clone();
    b[f[2].0] ^= 0x01;
    let path = write(&dir, "flip-kind.pulse", &b);
    report(&path).fails(1, &["checksum mismatch"]);
    // So is the metadata.
    let mut b = bytes;
    b[24] ^= 0x04;
    let path = write(&dir, "flip-meta.pulse", &b);
    report(&path).fails(1, &["checksum mismatch"]);
}

#[test]
fn data_after_the_trailer_is_corruption() {
    let dir = scratch("after-trailer");
    let mut bytes = session_bytes();
    bytes.extend_from_slice(b"junk");
    let path = write(&dir, "extra.pulse", &bytes);
    report(&path).fails(1, &["data after the trailer"]);
}

#[test]
fn a_newer_format_version_asks_for_an_upgrade() {
    let dir = scratch("v4");
    let mut bytes = session_bytes();
    bytes[8..10].copy_from_slice(&4u16.to_le_bytes());
    let path = write(&dir, "v4.pulse", &bytes);
    report(&path).fails(1, &["v4.pulse", "format v4", "upgrade pulse"]);
    info(&path).fails(1, &["format v4", "upgrade pulse"]);
}

#[test]
fn a_missing_path_is_an_error() {
    let dir = scratch("missing");
    let path = dir.join("no-such-session.pulse");
    let r = report(&path);
    r.fails(1, &["no-such-session.pulse", "No such file"]);
    // The io error is not repeated after the message that already holds it.
    assert_eq!(r.stderr.matches("No such file").count(), 1, "{}", r.stderr);
    info(&path).fails(1, &["no-such-session.pulse", "No such file"]);
}

#[test]
fn a_directory_is_an_error() {
    let dir = scratch("directory");
    report(&dir).fails(1, &["is a directory"]);
    info(&dir).fails(1, &["is a directory"]);
}

#[test]
fn usage_errors_exit_2_in_one_line() {
    let dir = scratch("usage");
    let path = write(&dir, "run.pulse", &session_bytes());
    let p = path.to_str().unwrap();
    pulse(&["report", p, "--bogus"]).fails(2, &["--bogus"]);
    pulse(&["info", "--bogus", p]).fails(2, &["--bogus"]);
    pulse(&["report", p, "--top", "many"]).fails(2, &["--top", "many"]);
    pulse(&["report"]).fails(2, &["FILE"]);
    pulse(&["frobnicate", p]).fails(2, &["frobnicate"]);
}

#[test]
fn help_and_version_succeed_on_stdout() {
    let r = pulse(&["--help"]);
    r.succeeds();
    assert!(r.stdout.contains("report") && r.stdout.contains("info"));
    assert!(r.stdout.contains("Exit status"));
    let r = pulse(&["report", "--help"]);
    r.succeeds();
    assert!(r.stdout.contains("--top"));
    let r = pulse(&["--version"]);
    r.succeeds();
    assert!(r.stdout.starts_with("pulse "), "{}", r.stdout);
}

/// A session whose site 1 leaks a block every 10 ms for two seconds, and
/// whose site 2 fills a 20-block cache in the first tenth and then holds.
fn leaky_session() -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), &metadata()).expect("header");
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    enc.push(&Record::SiteDef { site: 1, frames: vec![0x1000] });
    enc.push(&Record::SiteDef { site: 2, frames: vec![0x2000] });
    enc.push(&Record::Symbol {
        addr: 0x1000,
        function: "app::remember".into(),
        file: "/src/app.rs".into(),
        line: 7,
    });
    enc.push(&Record::Symbol {
        addr: 0x2000,
        function: "app::cache".into(),
        file: "/src/app.rs".into(),
        line: 9,
    });
    w.write_chunk(&enc).expect("defs");
    enc.begin(1, 0);
    enc.push(&Record::ThreadStart { ts: 0, name: "main".into() });
    for i in 0..200u64 {
        let ts = i * 10_000_000;
        enc.push(&Record::Alloc {
            ts,
            addr: 0x10_0000 + i * 64,
            size: 64,
            align: 8,
            site: 1,
            weight: 1,
        });
        if i < 20 {
            enc.push(&Record::Alloc {
                ts: ts + 1,
                addr: 0x20_0000 + i * 32,
                size: 32,
                align: 8,
                site: 2,
                weight: 1,
            });
        }
    }
    w.write_chunk(&enc).expect("chunk");
    w.finish(Trailer::default()).expect("trailer")
}

#[test]
fn leaks_exits_5_when_a_site_is_still_growing_and_prints_json() {
    let dir = scratch("leaks");
    let path = write(&dir, "leaky.pulse", &leaky_session());
    let r = pulse(&[OsStr::new("leaks"), path.as_os_str()]);
    assert_eq!(r.status, 5, "{}", r.stderr);
    r.has_line("200 blocks, 12.5 KiB live at end — LEAK: still growing when the session ended");
    r.has_line("app::remember (/src/app.rs:7)");
    r.has_line(
        "20 blocks, 640 B live at end — long-lived: flat since it filled (a cache or pool?)",
    );
    let j = pulse(&[OsStr::new("leaks"), path.as_os_str(), OsStr::new("--json")]);
    assert_eq!(j.status, 5);
    assert!(
        j.stdout.contains("\"trend\": \"growing\"") && j.stdout.contains("\"trend\": \"flat\""),
        "{}",
        j.stdout
    );
    golden("leaks.json", &j.stdout);
    // The good session has nothing growing: exit 0.
    let good = write(&dir, "good.pulse", &session_bytes());
    let r = pulse(&[OsStr::new("leaks"), good.as_os_str(), OsStr::new("--wide")]);
    assert_eq!(r.status, 0);
    // Its blocks live at the end were allocated only near the end: it says
    // it cannot tell, and --strict makes that fail a CI job.
    r.has_line("1 site's blocks were live only near the end of the run: too short to tell a leak from a cache; run it longer, or pass --strict to count them as leaks");
    let strict = pulse(&[OsStr::new("leaks"), good.as_os_str(), OsStr::new("--strict")]);
    assert_eq!(strict.status, 5, "{}", strict.stdout);
}

#[test]
fn report_and_info_print_json_with_every_figure() {
    let dir = scratch("json");
    let path = write(&dir, "run.pulse", &session_bytes());
    let r = pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--json")]);
    r.succeeds();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("report JSON parses");
    assert_eq!(v["memory"]["allocs"], 6);
    assert_eq!(v["memory"]["live_bytes_at_end"], 608);
    assert_eq!(v["scopes"][0]["name"], "parse");
    assert_eq!(v["scopes"][0]["time"]["count"], 1);
    golden("report.json", &r.stdout);
    let i = pulse(&[OsStr::new("info"), path.as_os_str(), OsStr::new("--json")]);
    i.succeeds();
    let v: serde_json::Value = serde_json::from_str(&i.stdout).expect("info JSON parses");
    assert_eq!(v["version"], 3);
    assert_eq!(v["meta"]["pid"], 4242);
    golden("info.json", &i.stdout);
}

/// A session with 200 entries of scope `work`, each `ns` long.
fn work_session(ns: u64) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), &metadata()).expect("header");
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    enc.push(&Record::ScopeDef {
        scope: 1,
        name: "work".into(),
        category: String::new(),
        description: String::new(),
        priority: 0,
    });
    w.write_chunk(&enc).expect("defs");
    enc.begin(1, 0);
    for i in 0..200u64 {
        let t = i * 10 * ns;
        enc.push(&Record::ScopeEnter { ts: t, scope: 1 });
        enc.push(&Record::ScopeExit { ts: t + ns + i % 7, scope: 1 });
    }
    w.write_chunk(&enc).expect("chunk");
    w.finish(Trailer::default()).expect("trailer")
}

#[test]
fn diff_classifies_and_gates_regressions() {
    let dir = scratch("diff");
    let fast = write(&dir, "fast.pulse", &work_session(1_000));
    // Three times as slow: beyond what reruns of one binary move (2×).
    let slow = write(&dir, "slow.pulse", &work_session(3_000));
    let r = pulse(&[
        OsStr::new("diff"),
        slow.as_os_str(),
        fast.as_os_str(),
        OsStr::new("--fail-on-regression"),
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    r.has_line("0 regressions, 1 improvement");
    let r = pulse(&[
        OsStr::new("diff"),
        fast.as_os_str(),
        slow.as_os_str(),
        OsStr::new("--fail-on-regression"),
    ]);
    assert_eq!(r.status, 4, "{}", r.stderr);
    assert!(r.stdout.contains("REGRESSION"), "{}", r.stdout);
    golden("diff.txt", &r.stdout);
    // Several sessions a side: their spread is the noise (none here), so a
    // 1.5× slowdown, within one-a-side noise, is caught.
    let middling = write(&dir, "middling.pulse", &work_session(1_500));
    let one = pulse(&[OsStr::new("diff"), fast.as_os_str(), middling.as_os_str()]);
    one.has_line("0 regressions, 0 improvements");
    let r = pulse(&[
        OsStr::new("diff"),
        OsStr::new("--before"),
        fast.as_os_str(),
        fast.as_os_str(),
        OsStr::new("--after"),
        middling.as_os_str(),
        middling.as_os_str(),
        OsStr::new("--fail-on-regression"),
    ]);
    assert_eq!(r.status, 4, "{}", r.stdout);
    r.has_line("2 runs before, 2 after: each figure is the middle run's");
    r.has_line("1 regression, 0 improvements");
    // Without the gate a regression is reported, not an error.
    let r = pulse(&[OsStr::new("diff"), fast.as_os_str(), slow.as_os_str()]);
    assert_eq!(r.status, 0);
    // A 250 % threshold makes the tripling noise.
    let r = pulse(&[
        OsStr::new("diff"),
        fast.as_os_str(),
        slow.as_os_str(),
        OsStr::new("--threshold"),
        OsStr::new("250%"),
        OsStr::new("--fail-on-regression"),
    ]);
    assert_eq!(r.status, 0, "{}", r.stdout);
    let r = pulse(&[
        OsStr::new("diff"),
        fast.as_os_str(),
        slow.as_os_str(),
        OsStr::new("--threshold"),
        OsStr::new("lots"),
    ]);
    assert_eq!(r.status, 2);
}

#[test]
fn export_writes_folded_stacks_and_a_chrome_trace() {
    let dir = scratch("export");
    let path = write(&dir, "run.pulse", &session_bytes());
    let r = pulse(&[
        OsStr::new("export"),
        path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("folded"),
        OsStr::new("-o"),
        OsStr::new("-"),
    ]);
    r.succeeds();
    // Every line is `frames weight`, frames separated by `;`.
    for line in r.lines() {
        let (stack, weight) = line.rsplit_once(' ').expect("stack and weight");
        assert!(!stack.is_empty() && weight.parse::<u64>().is_ok(), "{line}");
    }
    golden("folded-time.txt", &r.stdout);
    let trace = dir.join("trace.json");
    let r = pulse(&[
        OsStr::new("export"),
        path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("chrome"),
        OsStr::new("-o"),
        trace.as_os_str(),
    ]);
    r.succeeds();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).expect("trace parses");
    let events = v["traceEvents"].as_array().expect("events");
    let complete: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), 4, "one complete event per scope entry: {events:#?}");
    assert!(events.iter().any(|e| e["ph"] == "C" && e["name"] == "live heap"));
    assert!(events.iter().any(|e| e["ph"] == "M" && e["args"]["name"] == "main"));
    // An unwritable output is one line and status 1.
    let r = pulse(&[
        OsStr::new("export"),
        path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("chrome"),
        OsStr::new("-o"),
        OsStr::new("/nonexistent/dir/trace.json"),
    ]);
    r.fails(1, &["cannot write /nonexistent/dir/trace.json"]);
    let r = pulse(&[
        OsStr::new("export"),
        path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("pdf"),
        OsStr::new("-o"),
        OsStr::new("-"),
    ]);
    assert_eq!(r.status, 2);
}

#[test]
fn hotspots_shows_scopes_the_tree_and_sites_in_the_chosen_order() {
    let dir = scratch("hotspots");
    let path = write(&dir, "run.pulse", &session_bytes());
    let r = pulse(&[
        OsStr::new("hotspots"),
        path.as_os_str(),
        OsStr::new("--by"),
        OsStr::new("time"),
        OsStr::new("--tree"),
    ]);
    r.succeeds();
    assert!(
        r.stdout.contains("Scopes by total time") && r.stdout.contains("Call tree"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Recommendations") && !r.stdout.contains("Memory"), "{}", r.stdout);
    golden("hotspots.txt", &r.stdout);
    let r = pulse(&[
        OsStr::new("hotspots"),
        path.as_os_str(),
        OsStr::new("--by"),
        OsStr::new("allocs"),
    ]);
    r.succeeds();
    assert!(
        r.stdout.contains("Allocation sites by allocations") && !r.stdout.contains("Call tree"),
        "{}",
        r.stdout
    );
    let r =
        pulse(&[OsStr::new("hotspots"), path.as_os_str(), OsStr::new("--by"), OsStr::new("peak")]);
    r.succeeds();
    assert!(
        r.stdout.contains("Allocation sites by their own peak of live bytes")
            && r.stdout.contains("own peak"),
        "{}",
        r.stdout
    );
}

#[test]
fn export_json_is_the_report_json() {
    let dir = scratch("export-json");
    let path = write(&dir, "run.pulse", &session_bytes());
    let out = dir.join("report.json");
    let r = pulse(&[
        OsStr::new("export"),
        path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    r.succeeds();
    let exported = std::fs::read_to_string(&out).unwrap();
    let r = pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--json")]);
    r.succeeds();
    assert_eq!(exported, r.stdout);
}

#[test]
fn colour_only_when_asked_or_on_a_terminal_and_completions_for_shells() {
    let dir = scratch("colour");
    let path = write(&dir, "leaky.pulse", &leaky_session());
    // Piped output is plain by default.
    let r = pulse(&[OsStr::new("report"), path.as_os_str()]);
    assert!(!r.stdout.contains('\x1b'), "{}", r.stdout);
    let r = pulse(&[
        OsStr::new("--color"),
        OsStr::new("always"),
        OsStr::new("report"),
        path.as_os_str(),
    ]);
    assert!(r.stdout.contains("\x1b[1;31mLEAK\x1b[0m"), "{}", r.stdout);
    let r = pulse(&[
        OsStr::new("report"),
        path.as_os_str(),
        OsStr::new("--color"),
        OsStr::new("never"),
    ]);
    assert!(!r.stdout.contains('\x1b'));
    let r = pulse(&[OsStr::new("completions"), OsStr::new("bash")]);
    r.succeeds();
    assert!(r.stdout.contains("_pulse()") && r.stdout.contains("hotspots"), "{}", r.stdout);
    assert_eq!(pulse(&[OsStr::new("completions"), OsStr::new("tcsh")]).status, 2);
}

#[test]
fn flamegraph_writes_a_deterministic_svg() {
    let dir = scratch("flamegraph");
    let path = write(&dir, "run.pulse", &session_bytes());
    let svg = dir.join("time.svg");
    let r = pulse(&[OsStr::new("flamegraph"), path.as_os_str(), OsStr::new("-o"), svg.as_os_str()]);
    r.succeeds();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{text}");
    // The root, parse, build::index and its serve::query child, serve::query.
    assert_eq!(text.matches("<g class=\"f\"").count(), 5, "{text}");
    assert!(text.contains("<title>build::index: 1 µs (42.6 %)</title>"), "{text}");
    golden("flamegraph-time.svg", &text);
    // Run twice, the same bytes.
    let again = dir.join("again.svg");
    pulse(&[OsStr::new("flamegraph"), path.as_os_str(), OsStr::new("-o"), again.as_os_str()])
        .succeeds();
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);
    let r = pulse(&[
        OsStr::new("flamegraph"),
        path.as_os_str(),
        OsStr::new("--kind"),
        OsStr::new("alloc-bytes"),
        OsStr::new("-o"),
        OsStr::new("-"),
    ]);
    r.succeeds();
    assert!(r.stdout.contains("Allocated bytes"), "{}", r.stdout);
}

/// A scope path 40 deep with a nanosecond in it, beside one of a
/// millisecond: too narrow to draw, it adds no empty rows above the ones
/// drawn. The picture is as tall as its two rows (the root and `wide`), its
/// deepest frame at the top margin.
#[test]
fn flamegraph_is_as_tall_as_the_frames_it_draws() {
    let mut records = vec![scope_def(1, "wide", ""), scope_def(2, "narrow", "")];
    records.extend([enter(1000, 1), exit(1_001_000, 1)]);
    records.extend((0..40).map(|i| enter(2_000_000 + i, 2)));
    records.extend((0..40).map(|i| exit(2_000_041 + i, 2)));
    let mut w = Writer::new(Vec::new(), &metadata()).expect("header");
    let mut enc = ChunkEncoder::new();
    enc.begin(1, 0);
    for r in &records {
        enc.push(r);
    }
    w.write_chunk(&enc).expect("chunk");
    let bytes = w.finish(trailer(&[])).expect("trailer");
    let dir = scratch("flamegraph-height");
    let path = write(&dir, "deep.pulse", &bytes);
    let r = pulse(&[OsStr::new("flamegraph"), path.as_os_str(), OsStr::new("-o"), OsStr::new("-")]);
    r.succeeds();
    assert_eq!(r.stdout.matches("<g class=\"f\"").count(), 2, "{}", r.stdout);
    // 30 px for the title, two rows of 17, 10 below.
    assert!(r.stdout.starts_with("<svg") && r.stdout.contains(r#"height="74""#), "{}", r.stdout);
    assert!(r.stdout.contains(r#"y="30.00""#), "the top row is at the margin: {}", r.stdout);
}

/// `pulse report --html`: one page, nothing on stdout, the same bytes
/// each time (so a golden file); the report's figures in its tables; the
/// rows it would print with `--top 1` cut and counted.
#[test]
fn report_html_writes_one_self_contained_page() {
    let dir = scratch("report-html");
    let path = write(&dir, "run.pulse", &session_bytes());
    let html = dir.join("report.html");
    let r =
        pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--html"), html.as_os_str()]);
    r.succeeds();
    assert_eq!(r.stdout, "");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>") && text.trim_end().ends_with("</html>"));
    // Offline: no resource named outside the page.
    for external in ["src=", "http://", "https://", "@import", "url("] {
        let outside = text.replace("http://www.w3.org/2000/svg", "");
        assert!(!outside.contains(external), "{external} in the page");
    }
    for holds in [
        r#"<code class="cmd">/usr/local/bin/orderbook --depth 3</code>"#,
        r#"<td class="n" data-v="1568">1.53 KiB</td>"#,
        r#"<td>serve::<wbr>query</td><td class="n" data-v="2">2</td>"#,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="flamegraph""#,
        "pulse: live heap over 3 µs",
    ] {
        assert!(text.contains(holds), "no {holds} in the page");
    }
    golden("report.html", &text);
    let again = dir.join("again.html");
    pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--html"), again.as_os_str()])
        .succeeds();
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);
    // `-` is standard output; --top cuts the tables, and the page says so.
    let r = pulse(&[
        OsStr::new("report"),
        path.as_os_str(),
        OsStr::new("--top"),
        OsStr::new("1"),
        OsStr::new("--html"),
        OsStr::new("-"),
    ]);
    r.succeeds();
    assert!(r.stdout.starts_with("<!DOCTYPE html>"), "{}", r.stdout);
    assert!(
        r.stdout.contains("… 2 more rows not shown; see <code>pulse report --json --top 3</code>"),
        "{}",
        r.stdout
    );
}

/// An HTML report that cannot be written is one line and exit status 1;
/// a session that cannot be read leaves no page behind; `--html` and
/// `--json` are one or the other.
#[test]
fn report_html_refuses_in_one_line() {
    let dir = scratch("report-html-errors");
    let path = write(&dir, "run.pulse", &session_bytes());
    let nowhere = dir.join("no-such-dir").join("report.html");
    let r =
        pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--html"), nowhere.as_os_str()]);
    r.fails(1, &["cannot write", "no-such-dir/report.html", "No such file or directory"]);
    let r = pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--html"), dir.as_os_str()]);
    r.fails(1, &["cannot write"]);
    let bad = write(&dir, "bad.pulse", b"not a session");
    let html = dir.join("bad.html");
    let r = pulse(&[OsStr::new("report"), bad.as_os_str(), OsStr::new("--html"), html.as_os_str()]);
    r.fails(1, &["bad.pulse", "not a pulse session file"]);
    assert!(!html.exists(), "a page for a session that could not be read");
    let r = pulse(&[
        OsStr::new("report"),
        path.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("--html"),
        html.as_os_str(),
    ]);
    r.fails(2, &["--json", "--html"]);
}

#[test]
fn timeline_charts_the_live_heap_with_the_peak_marked() {
    let dir = scratch("timeline");
    let path = write(&dir, "run.pulse", &session_bytes());
    let r = pulse(&[OsStr::new("timeline"), path.as_os_str(), OsStr::new("-o"), OsStr::new("-")]);
    r.succeeds();
    assert!(r.stdout.starts_with("<svg") && r.stdout.contains("<polyline"), "{}", r.stdout);
    assert!(r.stdout.contains("peak 1.53 KiB at 1.1 µs"), "{}", r.stdout);
    golden("timeline.svg", &r.stdout);
}

#[test]
fn export_dhat_json_adds_up_to_the_report() {
    let dir = scratch("dhat");
    let path = write(&dir, "run.pulse", &session_bytes());
    let r = pulse(&[
        OsStr::new("export"),
        path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("dhat"),
        OsStr::new("-o"),
        OsStr::new("-"),
    ]);
    r.succeeds();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("dhat JSON parses");
    assert_eq!(v["dhatFileVersion"], 2);
    assert_eq!(v["mode"], "rust-heap");
    assert_eq!(v["ftbl"][0], "[root]");
    let sum =
        |k: &str| v["pps"].as_array().unwrap().iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
    let report: serde_json::Value = serde_json::from_str(
        &pulse(&[OsStr::new("report"), path.as_os_str(), OsStr::new("--json")]).stdout,
    )
    .unwrap();
    let m = &report["memory"];
    assert_eq!(sum("tb"), m["bytes_allocated"].as_u64().unwrap());
    assert_eq!(sum("tbk"), m["allocs"].as_u64().unwrap() + m["reallocs"].as_u64().unwrap());
    assert_eq!(sum("gb"), m["peak_bytes"].as_u64().unwrap());
    assert_eq!(sum("eb"), m["live_bytes_at_end"].as_u64().unwrap());
    golden("dhat-heap.json", &r.stdout);
}

#[test]
fn export_pprof_decodes_as_profile_proto() {
    use std::io::Read;
    let dir = scratch("pprof");
    let path = write(&dir, "run.pulse", &session_bytes());
    let out = dir.join("run.pb.gz");
    pulse(&[
        OsStr::new("export"),
        path.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("pprof"),
        OsStr::new("-o"),
        out.as_os_str(),
    ])
    .succeeds();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&out).unwrap())
        .read_to_end(&mut raw)
        .expect("gzip");
    let p: pulse_analysis::pprof_proto::Profile =
        prost::Message::decode(&raw[..]).expect("profile.proto decodes");
    let s = |i: i64| p.string_table[i as usize].as_str();
    let types: Vec<(&str, &str)> = p.sample_type.iter().map(|t| (s(t.r#type), s(t.unit))).collect();
    assert_eq!(
        types,
        [
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes"),
            ("time", "nanoseconds")
        ]
    );
    let pt = p.period_type.as_ref().expect("period_type");
    assert_eq!((s(pt.r#type), s(pt.unit), p.period), ("space", "bytes", 1));
    let sum = |i: usize| p.sample.iter().map(|x| x.value[i]).sum::<i64>();
    // The fixture: 6 allocations and 1 reallocation, 2 KiB, 3 blocks (608 B) live at the end, 2.35 µs of self time.
    assert_eq!((sum(0), sum(1), sum(2), sum(3), sum(4)), (7, 2048, 3, 608, 2350));
    let ids: std::collections::BTreeSet<u64> = p.location.iter().map(|l| l.id).collect();
    assert!(
        p.sample.iter().all(|x| x.location_id.iter().all(|id| ids.contains(id))),
        "every location is defined"
    );
}

#[test]
fn a_file_that_cannot_be_read_is_an_error() {
    // Opens, but reading its first byte fails (EIO).
    for cmd in ["report", "info", "leaks"] {
        pulse(&[cmd, "/proc/self/mem"]).fails(1, &["/proc/self/mem", "Input/output error"]);
    }
}

#[test]
fn an_empty_session_reads_as_one_with_nothing_in_it() {
    let dir = scratch("empty-session");
    let w = Writer::new(Vec::new(), &metadata()).expect("header");
    let path = write(&dir, "nothing.pulse", &w.finish(trailer(&[])).expect("trailer"));
    let r = report(&path);
    r.no_panic();
    assert_eq!(r.status, 0);
    assert_eq!(
        r.stderr,
        format!("pulse: warning: {}: the session holds no events\n", path.display())
    );
    assert!(r.stdout.contains("warning: the session holds no events"), "{}", r.stdout);
    r.has_line("allocated 0 0 B");
    r.has_line("none: nothing in this session stands out");
    r.has_line("(no allocations recorded)");
    let leaks = pulse(&[OsStr::new("leaks"), path.as_os_str()]);
    assert_eq!(leaks.status, 0);
    assert_eq!(leaks.stdout.trim(), "no block was live at the end of the session");
    for kind in ["time", "alloc-bytes", "leaks"] {
        let svg = pulse(&[
            OsStr::new("flamegraph"),
            path.as_os_str(),
            OsStr::new("--kind"),
            OsStr::new(kind),
            OsStr::new("-o"),
            OsStr::new("-"),
        ]);
        assert_eq!(svg.status, 0);
        assert!(svg.stdout.starts_with("<svg") && svg.stdout.trim_end().ends_with("</svg>"));
    }
    let d = pulse(&[OsStr::new("diff"), path.as_os_str(), path.as_os_str()]);
    assert_eq!(d.status, 0);
    assert_eq!(d.stderr.lines().count(), 2, "{}", d.stderr);
}

#[test]
fn a_second_command_reads_the_cache_and_says_the_same() {
    let dir = scratch("cache");
    let cache = dir.join("cache");
    let path = write(&dir, "run.pulse", &session_bytes());
    let run = |args: &[&str], cache_env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pulse"));
        c.args(args).arg(&path).env("PULSE_CACHE_DIR", &cache).env_remove("PULSE_CACHE");
        if let Some(v) = cache_env {
            c.env("PULSE_CACHE", v);
        }
        let out = c.output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let entries = || std::fs::read_dir(&cache).map_or(0, |d| d.count());
    // Nothing kept when asked not to.
    let replayed = run(&["report", "--no-cache"], None);
    assert_eq!(run(&["info"], Some("off")).0, Some(0));
    assert_eq!(entries(), 0);
    // The first command keeps the profile; every later one reads it and
    // prints what a replay prints.
    assert_eq!(run(&["report"], None), replayed);
    assert_eq!(entries(), 1);
    for args in [["report"], ["leaks"], ["info"], ["hotspots"]] {
        let replay = run(&[args[0], "--no-cache"], None);
        assert_eq!(run(&args, None), replay, "{args:?}");
    }
    assert_eq!(entries(), 1);
}

#[test]
fn an_output_is_never_the_session_read_and_is_written_whole_or_not_at_all() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("outputs");
    let bytes = session_bytes();
    let path = write(&dir, "s.pulse", &bytes);
    let other = write(&dir, "t.pulse", &bytes);
    let link = dir.join("link.pulse");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let hard = dir.join("hard.pulse");
    std::fs::hard_link(&path, &hard).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let (path_s, other_s, link_s, hard_s) = (s(&path), s(&other), s(&link), s(&hard));
    let dotted = format!("{}/./s.pulse", dir.display());
    // Every command that writes a file, its output the session read, by
    // each of its names.
    let attempts: Vec<Vec<&str>> = vec![
        vec!["merge", &path_s, &other_s, "-o", &path_s],
        vec!["merge", &other_s, &link_s, "-o", &hard_s],
        vec!["flamegraph", &path_s, "-o", &dotted],
        vec!["timeline", &link_s, "-o", &path_s],
        vec!["export", &path_s, "--format", "pprof", "-o", &link_s],
        vec!["report", &hard_s, "--html", &path_s],
    ];
    for args in attempts {
        let r = pulse(&args);
        assert_eq!(r.status, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains("being read; give "), "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{args:?} changed the session");
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    // A merge that fails on its second input leaves the file there as it was.
    let out = write(&dir, "out.pulse", b"the previous output");
    let junk = write(&dir, "junk.pulse", b"not a session");
    let r = pulse(&["merge", &path_s, junk.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(r.status, 1, "{r:?}");
    assert_eq!(std::fs::read(&out).unwrap(), b"the previous output");
    // A new merged session is its owner's alone; a file replaced keeps its
    // mode; nothing temporary is left.
    let merged = dir.join("merged.pulse");
    let r = pulse(&["merge", &path_s, &other_s, "-o", merged.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(std::fs::metadata(&merged).unwrap().permissions().mode() & 0o777, 0o600);
    let before = std::fs::metadata(&out).unwrap().permissions().mode();
    let r = pulse(&["merge", &path_s, &other_s, "-o", out.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode(), before);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".pulse-tmp")), "{names:?}");
    assert_eq!(pulse(&["info", out.to_str().unwrap()]).status, 0);
    // An output through a link is written where the link points, which
    // stays a link; /dev/null is written as it is.
    let svg = write(&dir, "f.svg", b"");
    let svg_link = dir.join("f-link.svg");
    std::os::unix::fs::symlink(&svg, &svg_link).unwrap();
    let r = pulse(&["flamegraph", &path_s, "-o", svg_link.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    assert!(std::fs::symlink_metadata(&svg_link).unwrap().file_type().is_symlink());
    assert_eq!(pulse(&["flamegraph", &path_s, "-o", "/dev/null"]).status, 0);
}

#[test]
fn an_output_is_written_where_and_as_the_user_means() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("outputs-as-meant");
    let path = write(&dir, "s.pulse", &session_bytes());
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let path_s = s(&path);
    // A pipe: written as it is, read by whoever reads it (opening it to
    // compare it with the input would wait for a writer for ever).
    let fifo = dir.join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader =
        Command::new("cat").arg(&fifo).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let r = pulse(&["flamegraph", &path_s, "-o", &s(&fifo)]);
    assert_eq!(r.status, 0, "{r:?}");
    let read = reader.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&read.stdout).starts_with("<svg"));
    // A file replaced keeps its mode; one that cannot be written is refused.
    let kept = write(&dir, "kept.svg", b"old");
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(pulse(&["flamegraph", &path_s, "-o", &s(&kept)]).status, 0);
    assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o640);
    assert!(std::fs::read_to_string(&kept).unwrap().starts_with("<svg"));
    // A link to a file not there yet: the file is made, the link stays.
    let dangling = dir.join("latest.svg");
    std::os::unix::fs::symlink("made.svg", &dangling).unwrap();
    assert_eq!(pulse(&["flamegraph", &path_s, "-o", &s(&dangling)]).status, 0);
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(dir.join("made.svg")).unwrap().starts_with("<svg"));
    // /dev/stdout is the open descriptor, not the file behind it.
    let r = pulse(&["flamegraph", &path_s, "-o", "/dev/stdout"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(r.stdout.starts_with("<svg"), "{r:?}");
    // --html is named as what to change.
    let r = pulse(&["report", &path_s, "--html", &path_s]);
    assert!(r.stderr.contains("give --html another path"), "{r:?}");
}

/// The temporary files in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pulse-tmp"))
        .collect()
}

/// Waits, a minute at most, for a temporary file to appear in `dir`.
fn wait_for_temporary(dir: &Path) {
    let waited = std::time::Instant::now();
    while temporaries(dir).is_empty() {
        assert!(waited.elapsed().as_secs() < 60, "no temporary file appeared");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn an_interrupted_command_leaves_no_temporary_file() {
    use std::os::unix::process::ExitStatusExt;
    let dir = scratch("interrupted");
    let path = write(&dir, "s.pulse", &session_bytes());
    let out = dir.join("merged.pulse");
    // A merge whose second input is a pipe nobody writes: it has made its
    // temporary file and waits on the pipe when the signal comes.
    for signal in ["INT", "TERM", "HUP"] {
        let mut merging = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args([OsStr::new("merge"), path.as_os_str(), OsStr::new("-"), OsStr::new("-o")])
            .arg(&out)
            .env("PULSE_CACHE_DIR", common::cache_dir())
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_temporary(&dir);
        // Open until the command is gone: waiting closes it, and an end of
        // its input would race the signal.
        let input = merging.stdin.take();
        let pid = merging.id().to_string();
        assert!(Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap()
            .success());
        let done = merging.wait_with_output().unwrap();
        let (status, stderr) = (done.status, String::from_utf8_lossy(&done.stderr));
        drop(input);
        let number = match signal {
            "INT" => 2,
            "TERM" => 15,
            _ => 1,
        };
        assert_eq!(status.signal(), Some(number), "SIG{signal}: {status:?} {stderr}");
        assert_eq!(temporaries(&dir), Vec::<String>::new(), "after SIG{signal}");
        assert!(!out.exists(), "SIG{signal} left a merged session");
    }
    // Started ignoring SIGHUP (as under nohup), it goes on ignoring it.
    let mut merging = Command::new("sh")
        .args(["-c", "trap '' HUP; exec \"$0\" merge \"$1\" - -o \"$2\""])
        .args([env!("CARGO_BIN_EXE_pulse").as_ref(), path.as_os_str(), out.as_os_str()])
        .env("PULSE_CACHE_DIR", common::cache_dir())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_temporary(&dir);
    let pid = merging.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(merging.try_wait().unwrap(), None, "SIGHUP ended a command that ignores it");
    drop(merging.stdin.take());
    let status = merging.wait().unwrap();
    assert_eq!(status.code(), Some(1), "its input ends empty: an error, not the signal");
    assert_eq!(temporaries(&dir), Vec::<String>::new());
    // One killed outright leaves its file; the next command to write the
    // same output removes it, and leaves a running process's alone.
    let dead = dir.join(".f.svg.4294967295-0-0.pulse-tmp");
    let live = dir.join(format!(".f.svg.{}-0-0.pulse-tmp", std::process::id()));
    let other = dir.join(".g.svg.4294967295-0-0.pulse-tmp");
    let fresh = dir.join(".f.svg.4294967294-0-0.pulse-tmp");
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for f in [&dead, &live, &other, &fresh] {
        std::fs::write(f, "half an SVG").unwrap();
        if f != &fresh {
            let file = std::fs::File::options().write(true).open(f).unwrap();
            file.set_modified(long_ago).unwrap();
        }
    }
    let svg = dir.join("f.svg");
    let r = pulse(&[OsStr::new("flamegraph"), path.as_os_str(), OsStr::new("-o"), svg.as_os_str()]);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(!dead.exists(), "a dead command's temporary file stayed");
    assert!(live.exists() && other.exists(), "a running command's, or another output's, went");
    assert!(fresh.exists(), "one written a moment ago may be a live writer's of another namespace");
}

#[test]
fn a_session_on_standard_input_and_a_top_of_nothing() {
    let dir = scratch("stdin");
    let path = write(&dir, "s.pulse", &session_bytes());
    let piped = Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(["report", "-"])
        .env("PULSE_CACHE_DIR", common::cache_dir())
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(piped.status.success(), "{piped:?}");
    assert_eq!(String::from_utf8_lossy(&piped.stdout), report(&path).stdout);
    for command in ["report", "hotspots", "leaks"] {
        pulse(&[command, path.to_str().unwrap(), "--top", "0"])
            .fails(2, &["0 rows would show nothing"]);
    }
    // Fewer rows than there are say how many more there are.
    let leaks = write(&dir, "leaky.pulse", &leaky_session());
    let r = pulse(&["leaks", leaks.to_str().unwrap(), "--top", "1"]);
    assert!(r.stdout.contains("… 1 more location with blocks live at the end"), "{r:?}");
    let r = pulse(&["report", leaks.to_str().unwrap(), "--top", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["live_at_end"].as_array().unwrap().len(), 1);
    assert_eq!(
        (v["live_at_end_omitted"].as_u64(), v["at_peak_omitted"].as_u64()),
        (Some(1), Some(1))
    );
    let r = pulse(&["report", leaks.to_str().unwrap(), "--top", "1"]);
    assert_eq!(r.stdout.matches("… 1 more (--top)").count(), 3, "{}", r.stdout);
}

/// A session whose allocations are a dependency's, called from the
/// program's own line: 20 000 blocks freed at once, and a line 0 (code the
/// compiler made) among the frames.
fn dependency_session() -> Vec<u8> {
    const DEP: &str =
        "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/parser-1.2.3/src/lexer.rs";
    let mut w = Writer::new(Vec::new(), &metadata()).expect("header");
    let mut enc = ChunkEncoder::new();
    enc.begin(0, 0);
    enc.push(&Record::SiteDef { site: 1, frames: vec![0x1000, 0x2000, 0x3000] });
    let sym = |addr, function: &str, file: &str, line| Record::Symbol {
        addr,
        function: function.into(),
        file: file.into(),
        line,
    };
    enc.push(&sym(0x1000, "parser::lexer::Lexer::next_token_with_a_long_name", DEP, 412));
    enc.push(&sym(0x2000, "app::tokenize_every_line_of_the_input", "/src/app.rs", 27));
    enc.push(&sym(0x3000, "app::main", "/src/app.rs", 0));
    w.write_chunk(&enc).expect("defs");
    enc.begin(1, 0);
    enc.push(&Record::ThreadStart { ts: 0, name: "main".into() });
    for i in 0..20_000u64 {
        let ts = 1_000 + i * 1_000;
        enc.push(&Record::Alloc { ts, addr: 0x10_0000, size: 48, align: 8, site: 1, weight: 1 });
        enc.push(&Record::Free { ts: ts + 100, addr: 0x10_0000, size: 48 });
    }
    enc.push(&Record::Alloc {
        ts: 30_000_000,
        addr: 0x20_0000,
        size: 8,
        align: 8,
        site: 1,
        weight: 1,
    });
    w.write_chunk(&enc).expect("chunk");
    w.finish(Trailer::default()).expect("trailer")
}

#[test]
fn a_dependency_s_line_is_advised_as_one_and_shown_whole() {
    let dir = scratch("dependency");
    let path = write(&dir, "dep.pulse", &dependency_session());
    let r = report(&path);
    r.succeeds();
    let lines = r.lines();
    let at = lines
        .iter()
        .position(|l| {
            l.contains("[") && l.contains("parser::lexer::Lexer::next_token_with_a_long_name")
        })
        .unwrap_or_else(|| panic!("{}", r.stdout));
    // The dependency's function and its place on the heading, whole; the
    // program's line that calls it on the next, whole too.
    assert!(lines[at].ends_with("(parser-1.2.3/src/lexer.rs:412)"), "{}", lines[at]);
    assert_eq!(
        lines[at + 1].trim_start(),
        "called from app::tokenize_every_line_of_the_input (/src/app.rs:27)",
        "{}",
        r.stdout
    );
    let advice = lines[at + 2..at + 6].join(" ");
    assert!(advice.contains("inside a dependency, not on your line"), "{advice}");
    assert!(!advice.contains("outside the loop"), "{advice}");
    // Line 0 is no line: the file alone.
    let leaks = pulse(&["leaks", path.to_str().unwrap()]);
    leaks.has_line("app::main (/src/app.rs)");
}

#[test]
fn a_session_still_being_written_is_read_as_far_as_it_went_and_said_so() {
    let dir = scratch("live");
    let bytes = session_bytes();
    let f = frames(&bytes);
    // Everything but the trailer, locked as a running session's file is.
    let path = write(&dir, "live.pulse", &bytes[..f[4].0]);
    let mut writer = Command::new("flock")
        .args(["-x", "-o", path.to_str().unwrap(), "sleep", "30"])
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !pulse_analysis::being_written(&path) {
        assert!(t.elapsed().as_secs() < 30, "flock never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let r = report(&path);
    r.fails(3, &["the session is still being written by its running program"]);
    assert!(r.stdout.contains("still being written"), "the report itself says so");
    // The reader let go of its own lock at once: a writer can take the file.
    let _ = writer.kill();
    let _ = writer.wait();
    let lock = Command::new("flock").args(["-x", "-n", path.to_str().unwrap(), "true"]).status();
    assert!(
        lock.unwrap().success(),
        "the file is left locked: {}",
        std::fs::read_to_string("/proc/locks").unwrap_or_default()
    );
    // Not locked, the same file is only cut short.
    let r = report(&path);
    r.fails(3, &["truncated"]);
    assert!(!r.stderr.contains("still being written"), "{}", r.stderr);
}
