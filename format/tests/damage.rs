//! Damaged files: cut short at every byte, bits flipped, other formats,
//! newer versions, lying lengths. The reader must never panic, must give back
//! every whole frame before the damage unchanged, and must say what is wrong.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read};

use pulse_format::{
    AllocMode, ChunkEncoder, ClockInfo, ClockSource, CounterInfo, Error, Frame, Metadata, Reader,
    Record, Trailer, Writer, MAX_FRAME_LEN, MAX_META_LEN, VERSION,
};

// ---------------------------------------------------------------------------
// The largest single allocation made by the current thread, so that a test
// can show that a lying length does not make the reader allocate it.

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: never fail inside the allocator, even during thread exit.
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as for `dealloc`, and the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` and returns its result with the largest allocation it made.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|m| m.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

// ---------------------------------------------------------------------------
// A realistic session

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn metadata() -> Metadata {
    Metadata {
        writer: String::from("pulse 0.1.0"),
        program: String::from("/usr/local/bin/sérvice"),
        args: vec![String::from("--threads"), String::from("4")],
        pid: 4242,
        host: String::from("build-host"),
        start_unix_ns: 1_700_000_000_000_000_000,
        clock: ClockInfo {
            source: ClockSource::Tsc,
            ticks_per_ns: 2.9,
            calibration: String::from("2 ms busy wait"),
        },
        alloc_mode: AllocMode::Sample { mean_bytes: 4096 },
        counters: vec![
            CounterInfo {
                name: String::from("cycles"),
                available: true,
                reason: String::from("perf"),
            },
            CounterInfo {
                name: String::from("instructions"),
                available: false,
                reason: String::from("paranoid"),
            },
        ],
        extra: vec![(String::from("kernel"), String::from("6.1"))],
    }
}

/// A session of `rounds` collector rounds over four threads plus the
/// definitions chunk: allocations, frees, reallocs, scopes, counters, sites,
/// symbols. Chunks vary in size, so some are stored raw and some compressed.
fn session(rounds: u64, per_chunk: u64) -> Vec<u8> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut w = Writer::new(Vec::new(), &metadata()).unwrap();
    let mut enc = ChunkEncoder::new();
    let mut ts = 1_000_000u64;
    for round in 0..rounds {
        // Definitions on thread 0.
        enc.begin(0, round);
        enc.push(&Record::ScopeDef {
            scope: round as u32 + 1,
            name: format!("scope-{round}"),
            category: String::from("io"),
            description: String::new(),
            priority: -(round as i64),
        });
        let site = round as u32 + 1;
        let frames: Vec<u64> =
            (0..8 + rng.below(24)).map(|_| 0x5555_0000 + rng.below(1 << 20)).collect();
        enc.push(&Record::Symbol {
            addr: frames[0],
            function: format!("app::work_{round}"),
            // A long, repetitive path: this chunk compresses, the others not.
            file: "src/work/".repeat(8) + "mod.rs",
            line: 10 + round as u32,
        });
        enc.push(&Record::SiteDef { site, frames });
        w.write_chunk(&enc).unwrap();

        for thread in 1..=4u64 {
            enc.begin(thread, round);
            if round == 0 {
                enc.push(&Record::ThreadStart { ts, name: format!("worker-{thread}") });
            }
            enc.push(&Record::ScopeEnter { ts, scope: site });
            let mut live = Vec::new();
            for _ in 0..(per_chunk * thread / 2 + rng.below(4)) {
                ts += rng.below(500);
                match rng.below(6) {
                    0..=2 => {
                        let addr = 0x7f00_0000_0000 + rng.below(1 << 24) * 16;
                        let size = 1 << rng.below(12);
                        let weight = if rng.below(4) == 0 { 3 } else { 1 };
                        enc.push(&Record::Alloc { ts, addr, size, align: 8, site, weight });
                        live.push((addr, size));
                    }
                    3 if !live.is_empty() => {
                        let (addr, size) = live.swap_remove(rng.below(live.len() as u64) as usize);
                        enc.push(&Record::Free { ts, addr, size });
                    }
                    4 if !live.is_empty() => {
                        let i = rng.below(live.len() as u64) as usize;
                        let (old_addr, old_size) = live[i];
                        let new_addr = 0x7f00_0000_0000 + rng.below(1 << 24) * 16;
                        let new_size = old_size * 2;
                        enc.push(&Record::Realloc {
                            ts: ts + 3,
                            start_ts: ts,
                            old_addr,
                            old_size,
                            new_addr,
                            new_size,
                            align: 8,
                            site,
                        });
                        live[i] = (new_addr, new_size);
                    }
                    _ => enc.push(&Record::Counters {
                        ts,
                        scope: 0,
                        values: vec![rng.below(1 << 30)],
                    }),
                }
            }
            enc.push(&Record::ScopeExit { ts, scope: site });
            if round + 1 == rounds && thread == 4 {
                enc.push(&Record::AllocFailed { ts, size: u64::MAX, align: 4096 });
                enc.push(&Record::Pause { ts });
                enc.push(&Record::Resume { ts: ts + 1 });
                enc.push(&Record::ThreadEnd { ts: ts + 2 });
            }
            w.write_chunk(&enc).unwrap();
        }
    }
    let t = Trailer {
        end_ts: ts,
        end_unix_ns: 1_700_000_001_000_000_000,
        ticks_per_ns: 2.91,
        lost_events: 0,
        extra: vec![(String::from("profiler-bytes"), 65_536)],
        ..Trailer::default()
    };
    w.finish(t).unwrap()
}

/// The realistic file the exhaustive tests use: small enough that reading
/// every prefix stays fast in a debug build, large enough for a dozen frames
/// of both codecs.
fn medium() -> Vec<u8> {
    session(3, 12)
}

/// A small file whose every bit can be flipped.
fn small() -> Vec<u8> {
    session(1, 2)
}

// ---------------------------------------------------------------------------
// Reading

/// Everything a read gives: the frames, then how it ended.
struct Outcome {
    frames: Vec<Frame>,
    end: Result<(), Error>,
}

fn read_all(r: impl Read) -> Result<(Metadata, Outcome), Error> {
    let mut reader = Reader::new(r)?;
    let meta = reader.metadata().clone();
    let mut frames = Vec::new();
    let end = loop {
        match reader.next_frame() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
        assert!(frames.len() < 10_000, "the reader does not stop");
    };
    Ok((meta, Outcome { frames, end }))
}

/// The frames of an intact file and the offset each one ends at.
fn intact(bytes: &[u8]) -> (Metadata, Vec<Frame>, Vec<usize>) {
    let (meta, out) = read_all(bytes).expect("the intact file reads");
    out.end.expect("the intact file reads to the end");
    assert!(matches!(out.frames.last(), Some(Frame::Trailer(_))));
    // Where each frame starts: chunks know; the trailer starts where the
    // reader stood after the last chunk.
    let mut r = Reader::new(bytes).unwrap();
    let mut starts = Vec::new();
    loop {
        let at = r.offset() as usize;
        match r.next_frame().unwrap() {
            Some(Frame::Chunk(c)) => assert_eq!(c.offset as usize, at),
            Some(Frame::Trailer(_)) => {}
            None => break,
        }
        starts.push(at);
    }
    let mut ends = starts[1..].to_vec();
    ends.push(bytes.len());
    assert_eq!(ends.len(), out.frames.len());
    (meta, out.frames, ends)
}

fn header_len(bytes: &[u8]) -> usize {
    20 + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize
}

// ---------------------------------------------------------------------------
// (a) Truncation at every byte

#[test]
fn the_medium_file_is_realistic() {
    let bytes = medium();
    let (_, frames, _) = intact(&bytes);
    let chunks = frames.iter().filter(|f| matches!(f, Frame::Chunk(_))).count();
    assert!(chunks >= 10, "{chunks} chunks");
    // Both codecs appear: byte 1 of each frame header.
    let mut codecs = std::collections::BTreeSet::new();
    let mut at = header_len(&bytes);
    while at < bytes.len() {
        codecs.insert(bytes[at + 1]);
        at += 16 + u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    assert_eq!(at, bytes.len());
    assert_eq!(codecs.into_iter().collect::<Vec<_>>(), vec![0, 1], "raw and zstd frames");
    assert!(bytes.len() < 8_192, "{} bytes: keep the exhaustive tests fast", bytes.len());
}

#[test]
fn a_cut_at_every_byte_keeps_every_whole_frame_and_reports_truncation() {
    let bytes = medium();
    let (meta, frames, ends) = intact(&bytes);
    let head = header_len(&bytes);
    assert!(matches!(Reader::new(&bytes[..0]), Err(Error::Empty)));
    for cut in 1..bytes.len() {
        let part = &bytes[..cut];
        let (got_meta, out) = match read_all(part) {
            Ok(x) => x,
            Err(e) => {
                assert!(cut < head, "cut {cut}: the header is whole but: {e}");
                assert!(e.is_truncation(), "cut {cut}: {e:?}");
                continue;
            }
        };
        assert!(cut >= head, "cut {cut}: a cut header read");
        assert_eq!(got_meta, meta);
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(out.frames.len(), whole, "cut {cut}: whole frames before the cut");
        assert_eq!(&out.frames[..], &frames[..whole], "cut {cut}");
        let err = out.end.expect_err("a cut file cannot end cleanly");
        assert!(err.is_truncation(), "cut {cut}: {err:?}");
        let Error::Truncated { offset, .. } = err else { unreachable!() };
        let frame_start = if whole == 0 { head } else { ends[whole - 1] };
        assert_eq!(offset as usize, frame_start, "cut {cut}: the offset is the cut frame's");
        assert!(err.to_string().contains("truncated"));
    }
}

/// Reads one byte per `read` call, with an `Interrupted` error every so often.
struct Trickle<'a> {
    bytes: &'a [u8],
    calls: u64,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % 7 == 0 {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = buf.len().min(1).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_and_interruptions_are_transparent() {
    let bytes = medium();
    let (meta, frames, _) = intact(&bytes);
    let (m, out) = read_all(Trickle { bytes: &bytes, calls: 0 }).unwrap();
    out.end.unwrap();
    assert_eq!(m, meta);
    assert_eq!(out.frames, frames);
    // And a cut one still reports a truncation, not an I/O error.
    let (_, out) = read_all(Trickle { bytes: &bytes[..bytes.len() - 5], calls: 0 }).unwrap();
    assert!(out.end.unwrap_err().is_truncation());
}

/// Fails with a real I/O error after `left` bytes.
struct Failing<'a> {
    bytes: &'a [u8],
    left: usize,
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.left).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn io_errors_are_reported_as_io_errors_not_truncation() {
    let bytes = medium();
    for left in [0, 5, 20, header_len(&bytes) + 3, bytes.len() / 2] {
        let err = match read_all(Failing { bytes: &bytes, left }) {
            Err(e) => e,
            Ok((_, out)) => out.end.unwrap_err(),
        };
        assert!(matches!(err, Error::Io(_)), "{left}: {err:?}");
        assert!(!err.is_truncation());
        assert!(std::error::Error::source(&err).is_some());
        assert!(err.to_string().contains("disk on fire"));
    }
}

// ---------------------------------------------------------------------------
// (b) Flipped bits

/// Flips bit `bit` of byte `at` and checks the outcome against the intact
/// read: no panic; frames before the damage come back unchanged; either an
/// error or (only for the ignored flag bytes) the identical session.
fn check_flip(bytes: &[u8], intact: &(Metadata, Vec<Frame>, Vec<usize>), at: usize, bit: u8) {
    let (meta, frames, ends) = intact;
    let mut damaged = bytes.to_vec();
    damaged[at] ^= 1 << bit;
    match read_all(&damaged[..]) {
        Err(e) => {
            assert!(at < header_len(bytes), "byte {at} bit {bit}: {e:?} from Reader::new");
            assert!(!e.to_string().is_empty());
        }
        Ok((m, out)) => {
            if (10..12).contains(&at) {
                // The flags are reserved and not checked: nothing changes.
                assert_eq!(&m, meta);
                assert_eq!(&out.frames, frames);
                assert!(out.end.is_ok());
                return;
            }
            assert!(at >= 20, "byte {at} bit {bit}: a damaged header read");
            assert_eq!(&m, meta, "byte {at} bit {bit}");
            let err = out.end.expect_err("every flip outside the flags is detected");
            assert!(!err.to_string().is_empty());
            // Frames wholly before the damaged byte are unchanged.
            let before = ends.iter().filter(|&&e| e <= at).count();
            assert!(out.frames.len() >= before, "byte {at} bit {bit}: lost whole frames");
            assert_eq!(&out.frames[..], &frames[..out.frames.len()], "byte {at} bit {bit}");
            assert!(out.frames.len() <= before, "byte {at} bit {bit}: a damaged frame read");
        }
    }
}

#[test]
fn every_bit_flip_in_a_small_file_is_detected() {
    let bytes = small();
    assert!(bytes.len() < 1_024, "{} bytes", bytes.len());
    let expect = intact(&bytes);
    for at in 0..bytes.len() {
        for bit in 0..8 {
            check_flip(&bytes, &expect, at, bit);
        }
    }
}

#[test]
fn every_bit_flip_in_a_medium_file_is_detected() {
    let bytes = medium();
    let expect = intact(&bytes);
    for at in 0..bytes.len() {
        for bit in 0..8 {
            check_flip(&bytes, &expect, at, bit);
        }
    }
}

#[test]
fn overwritten_runs_of_bytes_never_panic() {
    let bytes = medium();
    let expect = intact(&bytes);
    let mut rng = Rng(42);
    for _ in 0..300 {
        let mut damaged = bytes.clone();
        let at = rng.below(bytes.len() as u64) as usize;
        let len = (1 + rng.below(64) as usize).min(bytes.len() - at);
        for b in &mut damaged[at..at + len] {
            *b = rng.next() as u8;
        }
        if damaged == bytes {
            continue;
        }
        let Ok((_, out)) = read_all(&damaged[..]) else { continue };
        // Frames wholly before the damage come back unchanged, then the
        // damage is reported (unless only the unchecked flags changed).
        let before = expect.2.iter().filter(|&&e| e <= at).count();
        assert!(out.frames.len() >= before, "damage at {at}+{len}: lost whole frames");
        assert_eq!(&out.frames[..before], &expect.1[..before], "damage at {at}+{len}");
        if at + len > 12 {
            assert!(out.end.is_err(), "damage at {at}+{len} went unnoticed");
            assert_eq!(out.frames.len(), before, "damage at {at}+{len}: a damaged frame read");
        }
    }
}

// ---------------------------------------------------------------------------
// (c) Versions

#[test]
fn a_newer_version_says_to_upgrade() {
    let bytes = small();
    for version in [VERSION + 1, VERSION + 2, 0x100, u16::MAX] {
        let mut v = bytes.clone();
        v[8..10].copy_from_slice(&version.to_le_bytes());
        let err = Reader::new(&v[..]).unwrap_err();
        assert!(
            matches!(err, Error::NewerVersion { found, supported: VERSION } if found == version),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("upgrade"), "{msg}");
        assert!(msg.contains(&format!("v{version}")), "{msg}");
        assert!(!err.is_truncation());
    }
    // The version is checked before anything after it, even a cut.
    let mut v = bytes[..20].to_vec();
    v[8] = VERSION as u8 + 1;
    assert!(
        matches!(Reader::new(&v[..]), Err(Error::NewerVersion { found, .. }) if found == VERSION + 1)
    );
}

#[test]
fn version_zero_is_corrupt() {
    let mut v = small();
    v[8..10].copy_from_slice(&0u16.to_le_bytes());
    assert!(matches!(Reader::new(&v[..]), Err(Error::Corrupt { offset: 8, .. })));
}

// ---------------------------------------------------------------------------
// (d) Other files

#[test]
fn other_files_are_not_sessions() {
    let png: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let text: &[u8] = b"# pulse session\nthis is a text file, not a session\n";
    let elf: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0";
    let gzip: &[u8] = b"\x1f\x8b\x08\0\0\0\0\0\0\x03";
    let zstd_frame = zstd::bulk::compress(b"hello hello hello", 1).unwrap();
    let cases: Vec<&[u8]> =
        vec![png, text, elf, gzip, &zstd_frame, b"x", b"\x89", b"\x89PULSX\r\n", b"PULSE\r\n\0\0"];
    for (i, bytes) in cases.into_iter().enumerate() {
        if bytes == b"\x89" {
            // A one-byte prefix of the magic: can only be a cut session.
            assert!(Reader::new(bytes).unwrap_err().is_truncation());
            continue;
        }
        let err = Reader::new(bytes).unwrap_err();
        assert!(matches!(err, Error::NotASession), "case {i}: {err:?}");
        assert!(err.to_string().contains("not a pulse session"));
    }
}

#[test]
fn random_bytes_are_not_sessions() {
    let mut rng = Rng(7);
    for len in (1..64).chain([100, 1_000, 4_096, 65_536]) {
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if bytes[0] == 0x89 {
            bytes[0] = 0;
        }
        assert!(matches!(Reader::new(&bytes[..]), Err(Error::NotASession)), "{len} bytes");
    }
}

#[test]
fn the_magic_followed_by_garbage_never_panics() {
    let mut rng = Rng(99);
    for len in (8..200).chain([1_000, 10_000]) {
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        bytes[..8].copy_from_slice(b"\x89PULSE\r\n");
        if len > 9 {
            bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
        }
        let ((), largest) = largest_allocation(|| {
            let _ = read_all(&bytes[..]).map(|(_, o)| o.end);
        });
        // Whatever the lengths claim, memory follows the bytes present.
        assert!(largest < 256 << 10, "{len} bytes: allocated {largest}");
    }
    // A valid header followed by garbage frames.
    let head = header_len(&small());
    let good = small()[..head].to_vec();
    for len in [1usize, 15, 16, 17, 100, 1_000] {
        for _ in 0..20 {
            let mut bytes = good.clone();
            bytes.extend((0..len).map(|_| rng.next() as u8));
            let (_, out) = read_all(&bytes[..]).unwrap();
            assert!(out.frames.is_empty());
            assert!(out.end.is_err());
        }
    }
}

// ---------------------------------------------------------------------------
// (e) Lying lengths

/// The header and metadata of a valid session, then a frame header.
fn with_frame_header(kind: u8, codec: u8, stored: u32, raw: u32) -> Vec<u8> {
    let base = small();
    let mut bytes = base[..header_len(&base)].to_vec();
    let mut head = [0u8; 16];
    head[0] = kind;
    head[1] = codec;
    head[4..8].copy_from_slice(&stored.to_le_bytes());
    head[8..12].copy_from_slice(&raw.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&head[..12]);
    head[12..16].copy_from_slice(&h.finalize().to_le_bytes());
    bytes.extend_from_slice(&head);
    bytes.extend_from_slice(&[0u8; 64]);
    bytes
}

#[test]
fn a_frame_claiming_4_gib_is_corrupt_without_allocating_it() {
    for (stored, raw) in [
        (u32::MAX, u32::MAX),
        (u32::MAX, 10),
        (10, u32::MAX),
        (MAX_FRAME_LEN + 1, 10),
        (10, MAX_FRAME_LEN + 1),
        (0x8000_0000, 0x8000_0000),
    ] {
        let bytes = with_frame_header(1, 1, stored, raw);
        let mut r = Reader::new(&bytes[..]).unwrap();
        let (res, largest) = largest_allocation(|| r.next_frame());
        let err = res.unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { what, .. } if what.contains("claims")),
            "{stored}/{raw}: {err:?}"
        );
        assert!(!err.is_truncation());
        assert!(largest < 1 << 20, "{stored}/{raw}: allocated {largest} bytes");
    }
}

#[test]
fn a_frame_at_the_limit_in_a_short_file_is_a_truncation_without_allocating_it() {
    // The limit itself is allowed, but a file that ends long before the
    // claimed length must not cost the claimed length in memory.
    for stored in [MAX_FRAME_LEN, MAX_FRAME_LEN / 2, 1 << 20] {
        let bytes = with_frame_header(1, 0, stored, stored);
        let mut r = Reader::new(&bytes[..]).unwrap();
        let (res, largest) = largest_allocation(|| r.next_frame());
        assert!(res.unwrap_err().is_truncation());
        assert!(largest < 64 << 10, "{stored}: allocated {largest} bytes");
    }
}

#[test]
fn a_compressed_frame_claiming_more_than_it_holds_costs_one_frame_at_most() {
    // Its checksum is right, so the claim is believed as far as the
    // format's limit allows: the raw buffer is reserved, never more, and
    // the frame is corrupt when it decompresses to less.
    let base = small();
    for raw in [MAX_FRAME_LEN, 1 << 20, 6] {
        let payload = zstd::bulk::compress(b"hello", 1).unwrap();
        let mut bytes = base[..header_len(&base)].to_vec();
        let mut head = [0u8; 16];
        head[0] = 1;
        head[1] = 1;
        head[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[8..12].copy_from_slice(&raw.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&head[..12]);
        h.update(&payload);
        head[12..16].copy_from_slice(&h.finalize().to_le_bytes());
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(&payload);
        let mut r = Reader::new(&bytes[..]).unwrap();
        let (res, largest) = largest_allocation(|| r.next_frame());
        let err = res.unwrap_err();
        assert!(matches!(&err, Error::Corrupt { .. }), "{raw}: {err:?}");
        assert!(!err.to_string().contains('\n'));
        assert!(largest <= raw as usize + (1 << 20), "{raw}: allocated {largest} bytes");
    }
}

#[test]
fn metadata_claiming_4_gib_is_corrupt_without_allocating_it() {
    let mut bytes = small();
    for len in [u32::MAX, MAX_META_LEN + 1] {
        bytes[12..16].copy_from_slice(&len.to_le_bytes());
        let (res, largest) = largest_allocation(|| Reader::new(&bytes[..]).map(|_| ()));
        assert!(matches!(res, Err(Error::Corrupt { offset: 12, .. })), "{res:?}");
        assert!(largest < 1 << 20, "allocated {largest} bytes");
    }
}

#[test]
fn unknown_frame_kinds_and_codecs_are_corrupt() {
    for (kind, codec) in [(0u8, 0u8), (3, 0), (0xff, 0), (1, 2), (1, 0xff)] {
        let base = small();
        let mut bytes = base[..header_len(&base)].to_vec();
        let payload = [1u8, 0];
        let mut head = [0u8; 16];
        head[0] = kind;
        head[1] = codec;
        head[4..8].copy_from_slice(&2u32.to_le_bytes());
        head[8..12].copy_from_slice(&2u32.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&head[..12]);
        h.update(&payload);
        head[12..16].copy_from_slice(&h.finalize().to_le_bytes());
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(&payload);
        let err = Reader::new(&bytes[..]).unwrap().next_frame().unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{kind}/{codec}: {err:?}");
    }
}

#[test]
fn data_after_the_trailer_is_corrupt() {
    let mut bytes = small();
    let (_, frames, _) = intact(&bytes);
    bytes.push(0);
    let (_, out) = read_all(&bytes[..]).unwrap();
    assert_eq!(out.frames.len(), frames.len() - 1);
    assert!(matches!(out.end, Err(Error::Corrupt { .. })));
}

#[test]
fn every_error_displays_one_line() {
    let errors = [
        Error::Io(io::Error::other("x")),
        Error::Empty,
        Error::NotASession,
        Error::NewerVersion { found: 2, supported: 1 },
        Error::Truncated { offset: 3, what: "inside a frame" },
        Error::Checksum { offset: 4 },
        Error::Corrupt { offset: 5, what: String::from("bad") },
    ];
    for e in errors {
        let s = e.to_string();
        assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
        assert_eq!(e.is_truncation(), matches!(e, Error::Truncated { .. }));
    }
}

#[test]
fn the_allocation_tracker_sees_allocations() {
    let (v, largest) = largest_allocation(|| vec![1u8; 5 << 20]);
    assert_eq!(v.len(), 5 << 20);
    assert!(largest >= 5 << 20);
}
