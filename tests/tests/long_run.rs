//! A long run: 100 million allocations (and as many frees) with a session
//! recording every one with its stack. pulse's own memory stays bounded —
//! the process's peak resident set grows by no more than [`GROWTH_BOUND`]
//! between the first 1 % of the run and its end, and by no more than
//! [`PULSE_BOUND`] over the program without a session — and the file stays
//! within the budget of 4 bytes per event, holding every event.
//!
//! CI runs it in release (`cargo test --release -p pulse-tests --test
//! long_run`); in the dev profile, where each event costs some ten times
//! more, it runs 1 million allocations and checks the same memory bounds
//! (and a file bound that allows for the dev profile's slower clock deltas).

use std::fs::File;
use std::hint::black_box;
use std::io::BufReader;

use pulse_format::{Frame, Reader, Record};
use pulse_tests::{check, temp_session};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

const ALLOCS: u64 = if cfg!(debug_assertions) { 1_000_000 } else { 100_000_000 };
/// Blocks the program keeps live at any moment.
const LIVE: usize = 4096;
/// The most the peak resident set may grow after the first 1 % of the run.
const GROWTH_BOUND: u64 = 8 << 20;
/// The most a session may add to the program's peak resident set.
const PULSE_BOUND: u64 = 32 << 20;
/// The session file budget, which is a release-build figure: timestamps are
/// delta-encoded, and in the dev profile, where each event costs some ten
/// times more, the deltas are ten times larger and take a byte or two more
/// each before compression (measured: 2.45 B/event in release, 4.1 in dev).
const BYTES_PER_EVENT: f64 = if cfg!(debug_assertions) { 5.0 } else { 4.0 };

/// `VmRSS` and `VmHWM` (peak) of this process, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One allocation, from one of a few sites: most are temporaries freed at
/// once (a formatted string, a scratch buffer); one in eight replaces a block
/// of the live set, which a later step frees.
#[inline(never)]
fn step(live: &mut [Option<Box<[u8]>>], i: u64) {
    let size = 8 + (i % 120) as usize;
    match i % 8 {
        0 => {
            let slot = (i as usize / 8 * 7919) % live.len();
            live[slot] = Some(vec![i as u8; size].into_boxed_slice());
        }
        1 | 5 => {
            black_box(format!("{i:>size$}"));
        }
        2 | 6 => {
            black_box(Box::new([i as u8; 24]));
        }
        _ => {
            black_box(vec![0u8; size]);
        }
    }
}

fn main() {
    let path = temp_session("long_run");
    let mut live: Vec<Option<Box<[u8]>>> = vec![None; LIVE];
    // The program alone first: its live set full, then emptied.
    for i in 0..LIVE as u64 {
        step(&mut live, i);
    }
    live.iter_mut().for_each(|b| *b = None);
    let (_, without) = rss();

    let session = pulse::Session::builder().output(&path).start().expect("start");
    let warm = ALLOCS / 100;
    for i in 0..warm {
        step(&mut live, i);
    }
    let (_, at_warm) = rss();
    for i in warm..ALLOCS {
        step(&mut live, i);
    }
    live.iter_mut().for_each(|b| *b = None);
    let (_, peak) = rss();
    session.finish().expect("finish");

    let size = std::fs::metadata(&path).expect("session file").len();
    // Read every frame back: checksums, decompression, every record.
    let mut reader = Reader::new(BufReader::new(File::open(&path).expect("open"))).expect("header");
    let (mut allocs, mut frees, mut reallocs, mut records) = (0u64, 0u64, 0u64, 0u64);
    let mut trailer = None;
    while let Some(frame) = reader.next_frame().expect("a whole, valid frame") {
        match frame {
            Frame::Chunk(c) => {
                records += c.records.len() as u64;
                for r in &c.records {
                    match r {
                        Record::Alloc { .. } => allocs += 1,
                        Record::Free { .. } => frees += 1,
                        Record::Realloc { .. } => reallocs += 1,
                        _ => {}
                    }
                }
            }
            Frame::Trailer(t) => trailer = Some(t),
        }
    }
    let _ = std::fs::remove_file(&path);
    let t = trailer.expect("trailer");
    check(t.lost_events == 0, "no event lost");
    check(allocs >= ALLOCS, format!("{allocs} allocations in the file"));
    check(
        t.extra("allocs") == Some(allocs),
        format!("allocs: counted {:?}, in the file {allocs}", t.extra("allocs")),
    );
    check(
        t.extra("frees") == Some(frees),
        format!("frees: counted {:?}, in the file {frees}", t.extra("frees")),
    );
    check(
        t.extra("reallocs") == Some(reallocs),
        format!("reallocs: counted {:?}, in the file {reallocs}", t.extra("reallocs")),
    );
    let events = allocs + frees + reallocs;
    let per_event = size as f64 / events as f64;
    check(
        per_event <= BYTES_PER_EVENT,
        format!("{size} bytes for {events} events: {per_event:.2} B/event"),
    );
    check(
        peak.saturating_sub(at_warm) <= GROWTH_BOUND,
        format!("peak RSS grew {} KiB after the first 1 %", peak.saturating_sub(at_warm) >> 10),
    );
    check(
        peak.saturating_sub(without) <= PULSE_BOUND,
        format!("a session added {} KiB to the peak RSS", peak.saturating_sub(without) >> 10),
    );
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    println!(
        "long_run: ok: {allocs} allocations, {frees} frees, {reallocs} reallocations ({records} records); file {:.1} MiB, \
         {per_event:.2} B/event; peak RSS {:.1} MiB without a session, {:.1} MiB after 1 %, {:.1} MiB at the end \
         (pulse's rings {:.1} MiB)",
        mib(size),
        mib(without),
        mib(at_warm),
        mib(peak),
        mib(t.extra("pulse_ring_bytes").unwrap_or(0)),
    );
}
