//! Every command's cost on small crafted sessions, bounded per byte of the
//! session as decoded.
//!
//! A session can come from anyone, and a file made of many small frames —
//! or of a few frames that zstd stores in a few kilobytes — must not make
//! any command cost more than a constant per byte of what the file holds.
//! The bound is stated per *decoded* byte: the file with each frame's
//! payload decompressed (its header, metadata, frame headers and raw
//! payloads; see `docs/RELIABILITY.md`, "Cost per byte"). The corpus below
//! is the shapes that once multiplied across frames — pause floods, symbol
//! floods, stacks fanning out to one huge set of inlined frames, site
//! definitions repeated, call-tree paths of long names, counters in their
//! thousands, scopes nested deep, merged runs, threads by the thousand —
//! with the older hostile shapes of `hostile.rs` at a small size.
//!
//! Each case is read once, then every command runs on the profile as the
//! `pulse` binary runs it: report (as text, JSON and HTML), hotspots (and
//! `--tree`), leaks, flamegraph of each kind, timeline, export in every
//! format (folded of each kind, chrome, dhat, pprof, json), info, diff
//! against itself, merge with itself, and a `--thread` view. For each command this checks, with
//! a counting global allocator and a counting output and never a clock:
//!
//! - its peak of live bytes (the profile's own included) is at most
//!   [`PEAK_PER_BYTE`] × decoded bytes + [`PEAK_BASE`];
//! - its allocations, a deterministic proxy for its work, are at most
//!   [`ALLOCS_PER_BYTE`] × decoded bytes + [`ALLOCS_BASE`];
//! - what it writes is at most [`OUTPUT_PER_BYTE`] × decoded bytes +
//!   [`OUTPUT_BASE`].
//!
//! Work that allocates nothing (a loop over a thread's open scopes at each
//! resume, say) is caught by a watchdog instead: each case must finish
//! within [`WATCHDOG`], which its linear cost takes well under a second
//! and the quadratic costs these cases were made to show took minutes.
//!
//! `PULSE_COST_SCALE=k` multiplies every case's size by `k` and
//! `PULSE_COST_TABLE=1` prints each command's figures (and its wall time,
//! for the record only): how `docs/RELIABILITY.md`'s table was measured,
//! in release, at a scale where each file is tens of kilobytes.

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pulse_analysis::format::{
    AllocMode, ChunkEncoder, ClockInfo, CounterInfo, Metadata, Record, RecordKind, Trailer, Writer,
};
use pulse_analysis::{FoldedKind, LoadOptions, Profile, ReportOptions, Sections, Width};

// ---------------------------------------------------------------------------
// The bounds (docs/RELIABILITY.md, "Cost per byte").

/// Peak live bytes of one command, the profile included, per decoded byte.
const PEAK_PER_BYTE: usize = 512;
/// ... plus this much.
const PEAK_BASE: usize = 64 << 20;
/// The peak of one command on a session whose records leave no state
/// behind (a stream of pauses, say), per decoded byte: what the replay
/// holds a chunk as, its bytes.
const STREAM_PER_BYTE: usize = 16;
/// ... plus this much.
const STREAM_BASE: usize = 16 << 20;
/// Allocations of one command per decoded byte.
const ALLOCS_PER_BYTE: usize = 8;
/// ... plus this many.
const ALLOCS_BASE: usize = 200_000;
/// Bytes one command writes per decoded byte.
const OUTPUT_PER_BYTE: usize = 1024;
/// ... plus this many.
const OUTPUT_BASE: usize = 64 << 20;
/// How long one case may take, every command together: a hang detector,
/// never a measurement.
const WATCHDOG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Memory and allocations, counted per thread.

#[path = "support/counting.rs"]
mod counting;
use counting::{Counting, ALLOCS, LIVE, PEAK, PROCESS};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `f` cost on this thread: its peak of live bytes above what was
/// live when it began, the bytes it left live, and its allocations.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    peak: usize,
    kept: usize,
    allocs: usize,
}

/// What `f` cost the whole process, measured as [`measure`] measures a
/// thread: for work on several threads. Each case holds [`ALONE`] while it
/// measures, so that no other case's work is counted with it.
fn measure_all<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    use std::sync::atomic::Ordering::Relaxed;
    let start = PROCESS.live.load(Relaxed);
    PROCESS.peak.store(start, Relaxed);
    let allocs = PROCESS.allocs.load(Relaxed);
    let out = f();
    let usage = Usage {
        peak: (PROCESS.peak.load(Relaxed) - start).max(0) as usize,
        kept: (PROCESS.live.load(Relaxed) - start).max(0) as usize,
        allocs: PROCESS.allocs.load(Relaxed) - allocs,
    };
    (out, usage)
}

/// Held by each case while it measures.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let allocs = ALLOCS.with(Cell::get);
    let out = f();
    let usage = Usage {
        peak: (PEAK.with(Cell::get) - start).max(0) as usize,
        kept: (LIVE.with(Cell::get) - start).max(0) as usize,
        allocs: ALLOCS.with(Cell::get) - allocs,
    };
    (out, usage)
}

/// An output that counts what is written to it.
#[derive(Default)]
struct Out(usize);

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The commands.

/// The session's bytes as decoded: its header and metadata, and each frame
/// with its payload at its raw (decompressed) length.
fn decoded_len(bytes: &[u8]) -> usize {
    let meta = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut at = 20 + meta;
    let mut n = at;
    while at + 16 <= bytes.len() {
        let stored = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        n += 16 + u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + stored;
    }
    n
}

type Command<'a> = (&'static str, Box<dyn Fn(&mut Out) + 'a>);

/// Every command, as `report-cli/src/main.rs` runs it on a loaded profile.
fn commands<'a>(p: &'a Profile, bytes: &'a [u8]) -> Vec<Command<'a>> {
    let json = |v: &dyn erased::Json, out: &mut Out| v.write(out);
    let mut hotspots = ReportOptions::default();
    hotspots.sections = Sections {
        recommendations: false,
        memory: false,
        scopes: true,
        tree: false,
        counters: false,
        threads: false,
        live_at_end: false,
        sites: true,
    };
    let mut tree = hotspots.clone();
    tree.sections.tree = true;
    tree.tree_min_share = 0.0;
    let kinds = [
        ("alloc-bytes", FoldedKind::AllocBytes),
        ("alloc-count", FoldedKind::AllocCount),
        ("leaks", FoldedKind::Leaks),
        ("time", FoldedKind::Time),
    ];
    let mut v: Vec<Command<'a>> = vec![
        (
            "report",
            Box::new(move |out| {
                pulse_analysis::report(p, &Default::default()).render(out).unwrap();
            }),
        ),
        (
            "report (fitted)",
            Box::new(move |out| {
                let r = pulse_analysis::report(p, &Default::default());
                r.render_width(out, Width::Fit(100)).unwrap();
            }),
        ),
        (
            "report --json",
            Box::new(move |out| json(&pulse_analysis::report(p, &Default::default()), out)),
        ),
        (
            "report --html",
            Box::new(move |out| {
                let mut o = ReportOptions::default();
                o.top = pulse_analysis::HTML_ROWS;
                pulse_analysis::html(p, &pulse_analysis::report(p, &o), out).unwrap();
            }),
        ),
        (
            "hotspots",
            Box::new(move |out| pulse_analysis::report(p, &hotspots).render(out).unwrap()),
        ),
        (
            "hotspots --tree",
            Box::new(move |out| {
                let r = pulse_analysis::report(p, &tree);
                r.render(out).unwrap();
                r.render_width(out, Width::Fit(100)).unwrap();
            }),
        ),
        (
            "leaks",
            Box::new(move |out| {
                for l in pulse_analysis::leaks(p).iter().take(pulse_analysis::DEFAULT_TOP) {
                    writeln!(out, "{} {} {}", l.blocks, l.bytes, l.place).unwrap();
                    for frame in &l.stack {
                        writeln!(out, "    {}", pulse_analysis::printable(frame)).unwrap();
                    }
                }
            }),
        ),
        ("leaks --json", Box::new(move |out| json(&pulse_analysis::leaks(p), out))),
        ("timeline", Box::new(move |out| pulse_analysis::timeline_svg(p, out).unwrap())),
        ("export chrome", Box::new(move |out| pulse_analysis::chrome(bytes, out).unwrap())),
        ("export dhat", Box::new(move |out| pulse_analysis::dhat(p, out).unwrap())),
        ("export pprof", Box::new(move |out| pulse_analysis::pprof(p, out).unwrap())),
        (
            "info",
            Box::new(move |out| {
                let info = pulse_analysis::info(p);
                info.render(out).unwrap();
                info.render_width(out, Width::Fit(100)).unwrap();
                json(&info, out);
            }),
        ),
        (
            "diff itself",
            Box::new(move |out| {
                let d = pulse_analysis::diff(p, p, &Default::default());
                d.render(out, pulse_analysis::DEFAULT_TOP).unwrap();
                d.render_width(out, pulse_analysis::DEFAULT_TOP, Width::Fit(100)).unwrap();
                json(&d, out);
            }),
        ),
        (
            "merge itself",
            Box::new(move |out| {
                pulse_analysis::merge_bytes(&[bytes, bytes], out).unwrap();
            }),
        ),
        (
            "report --thread",
            Box::new(move |out| {
                let Some(id) = p.threads.keys().next() else { return };
                let opts = LoadOptions::new().jobs(1).threads([format!("#{id}")]);
                let view = Profile::read_with(bytes, &opts).unwrap();
                pulse_analysis::report(&view, &Default::default()).render(out).unwrap();
            }),
        ),
    ];
    for (name, kind) in kinds {
        let flame: &'static str = Box::leak(format!("flamegraph {name}").into_boxed_str());
        let folded: &'static str = Box::leak(format!("export folded {name}").into_boxed_str());
        v.push((flame, Box::new(move |out| pulse_analysis::flamegraph(p, kind, out).unwrap())));
        v.push((folded, Box::new(move |out| pulse_analysis::folded(p, kind, out).unwrap())));
    }
    v
}

/// JSON through a trait object, so the commands' closures can share it.
mod erased {
    pub(crate) trait Json {
        fn write(&self, out: &mut super::Out);
    }
    impl<T: serde::Serialize> Json for T {
        fn write(&self, out: &mut super::Out) {
            serde_json::to_writer_pretty(out, self).unwrap();
        }
    }
}

/// One command's figures.
#[derive(Debug)]
struct Cost {
    command: &'static str,
    /// Its peak, the profile it runs on included.
    peak: usize,
    allocs: usize,
    output: usize,
    /// For the record only.
    wall: Duration,
}

/// Reads `bytes` and runs every command on it, within the watchdog.
fn costs(name: &'static str, bytes: Vec<u8>) -> (usize, Vec<Cost>) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            // One case at a time: the read on two threads is measured over
            // the whole process.
            let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
            let decoded = decoded_len(&bytes);
            let t = Instant::now();
            // On one thread, measured on it alone; then on two, measured
            // over the whole process with no other case measuring.
            let one = LoadOptions::new().jobs(1);
            let (p, read) = measure(|| Profile::read_with(&bytes[..], &one));
            let read_wall = t.elapsed();
            let p = p.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(p.trailer.is_some() && p.truncated.is_none(), "{name}: not whole");
            let t = Instant::now();
            let (two, both) =
                measure_all(|| Profile::read_with(&bytes[..], &LoadOptions::new().jobs(2)));
            // The same profile as on one thread, every field of it.
            let two = two.unwrap_or_else(|e| panic!("{name}, two threads: {e}"));
            let json = |p: &Profile| serde_json::to_value(p).unwrap();
            assert!(json(&two) == json(&p), "{name}: two threads read another profile");
            drop(two);
            let mut out = vec![
                Cost {
                    command: "read",
                    peak: read.peak,
                    allocs: read.allocs,
                    output: 0,
                    wall: read_wall,
                },
                Cost {
                    command: "read on two threads",
                    peak: both.peak,
                    allocs: both.allocs,
                    output: 0,
                    wall: t.elapsed(),
                },
            ];
            for (command, run) in commands(&p, &bytes) {
                let mut sink = Out::default();
                let t = Instant::now();
                let ((), u) = measure(|| run(&mut sink));
                out.push(Cost {
                    command,
                    // What the `pulse` binary holds: the profile it read
                    // (its reading's peak, if higher), and the command's own.
                    peak: read.peak.max(read.kept + u.peak),
                    allocs: read.allocs + u.allocs,
                    output: sink.0,
                    wall: t.elapsed(),
                });
            }
            let _ = tx.send((decoded, out));
        })
        .unwrap();
    let watchdog = std::env::var("PULSE_COST_WATCHDOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(WATCHDOG, Duration::from_secs);
    match rx.recv_timeout(watchdog) {
        Ok(r) => {
            worker.join().unwrap();
            r
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: every command together took over {watchdog:?}: a hang")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The worker panicked: its message is already on stderr.
            let _ = worker.join();
            panic!("{name}: a command failed")
        }
    }
}

/// Runs every command on the case and checks each against the bounds.
fn check(name: &'static str, build: fn(Scale) -> Vec<u8>) {
    let bytes = build(Scale(scale(), 1));
    let file = bytes.len();
    let (decoded, costs) = costs(name, bytes);
    let table = std::env::var_os("PULSE_COST_TABLE").is_some();
    let worst = costs.iter().max_by_key(|c| c.peak).unwrap();
    let busiest = costs.iter().max_by_key(|c| c.allocs).unwrap();
    let loudest = costs.iter().max_by_key(|c| c.output).unwrap();
    let wall: Duration = costs.iter().map(|c| c.wall).sum();
    let per = |n: usize| n as f64 / decoded as f64;
    eprintln!(
        "{name}: {file} B file, {decoded} B decoded; peak {} B ({:.1}/B, {}), {} allocations ({:.2}/B, {}), output {} B ({:.1}/B, {}), {wall:.2?} in all",
        worst.peak,
        per(worst.peak),
        worst.command,
        busiest.allocs,
        per(busiest.allocs),
        busiest.command,
        loudest.output,
        per(loudest.output),
        loudest.command,
    );
    for c in costs.iter().filter(|_| table) {
        eprintln!(
            "    {:<26} peak {:>12} B  allocs {:>10}  output {:>12} B  {:>9.3?}",
            c.command, c.peak, c.allocs, c.output, c.wall
        );
    }
    // Records that leave no state behind (pauses, a chunk of allocations
    // freed again, definitions replaced, counter readings) cost the bytes
    // the replay holds them as, and a chunk's encoding in merge.
    let streams = [
        "pause_flood",
        "one_round",
        "site_redefined",
        "site_redefined_empty",
        "counter_values",
        "deep_stack",
    ];
    let (per_byte, base) = if streams.contains(&name) {
        (STREAM_PER_BYTE, STREAM_BASE)
    } else {
        (PEAK_PER_BYTE, PEAK_BASE)
    };
    for c in &costs {
        let what = format!("{name}, {}: {c:?}, {decoded} decoded bytes", c.command);
        assert!(c.peak <= per_byte * decoded + base, "peak: {what}");
        assert!(c.allocs <= ALLOCS_PER_BYTE * decoded + ALLOCS_BASE, "allocations: {what}");
        assert!(c.output <= OUTPUT_PER_BYTE * decoded + OUTPUT_BASE, "output: {what}");
    }
}

/// A case's size: `n` items at scale `Scale(1, 1)` are `n × a / b`.
#[derive(Debug, Clone, Copy)]
struct Scale(u64, u64);

impl Scale {
    fn of(self, n: u64) -> u64 {
        (n * self.0 / self.1).max(1)
    }
}

fn scale() -> u64 {
    std::env::var("PULSE_COST_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

// ---------------------------------------------------------------------------
// Writing sessions.

fn meta() -> Metadata {
    Metadata {
        writer: String::from("pulse 0.1.0"),
        program: String::from("/work/hostile/target/debug/hostile"),
        clock: ClockInfo::monotonic(),
        alloc_mode: AllocMode::Full,
        ..Metadata::default()
    }
}

/// A session being written: `chunk` ends the chunk being filled (if it
/// holds anything) and begins one for `thread` in `round`.
struct Session {
    w: Writer<Vec<u8>>,
    enc: ChunkEncoder,
    open: bool,
    current: (u64, u64),
}

impl Session {
    fn new(meta: &Metadata) -> Session {
        Session {
            w: Writer::new(Vec::new(), meta).unwrap(),
            enc: ChunkEncoder::new(),
            open: false,
            current: (0, 0),
        }
    }

    fn chunk(&mut self, thread: u64, round: u64) -> &mut Self {
        self.flush();
        self.enc.begin(thread, round);
        self.open = true;
        self.current = (thread, round);
        self
    }

    fn push(&mut self, r: Record) -> &mut Self {
        // Chunks stay within the format's 64 MiB a frame.
        if self.enc.encoded_len() > 48 << 20 {
            let (thread, round) = self.current;
            self.chunk(thread, round);
        }
        self.enc.push(&r);
        self
    }

    fn flush(&mut self) {
        if self.open && self.enc.records() > 0 {
            self.w.write_chunk(&self.enc).unwrap();
        }
        self.open = false;
    }

    fn finish(mut self, trailer: Trailer) -> Vec<u8> {
        self.flush();
        self.w.finish(trailer).unwrap()
    }
}

fn alloc(ts: u64, addr: u64, site: u32) -> Record {
    Record::Alloc { ts, addr, size: 64, align: 8, site, weight: 1 }
}

fn scope_def(scope: u32, name: String, category: String) -> Record {
    Record::ScopeDef { scope, name, category, description: String::new(), priority: 0 }
}

fn symbol(addr: u64, function: String, file: String, line: u32) -> Record {
    Record::Symbol { addr, function, file, line }
}

fn enter(ts: u64, scope: u32) -> Record {
    Record::ScopeEnter { ts, scope }
}

fn exit(ts: u64, scope: u32) -> Record {
    Record::ScopeExit { ts, scope }
}

// ---------------------------------------------------------------------------
// The corpus. Each builder takes the scale (1 in `cargo test`).

/// One chunk of pauses and resumes, the smallest records (two bytes each):
/// zstd stores 400 kB of them in a few hundred bytes. The replay held
/// each of a chunk's events decoded (64 bytes for 2 of payload) until two
/// rounds had passed, and merge a `Record` per record (88 bytes).
fn pause_flood(k: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    s.chunk(1, 0);
    for i in 0..k.of(100_000) {
        s.push(Record::Pause { ts: i }).push(Record::Resume { ts: i });
    }
    s.finish(Trailer::default())
}

/// Scopes nested 150 000 deep, then 150 000 pauses and resumes: each
/// resume walked every open entry to take the pause out of it.
fn pause_deep(k: Scale) -> Vec<u8> {
    let n = k.of(150_000);
    let mut s = Session::new(&meta());
    s.chunk(0, 0).push(scope_def(1, "deep".into(), String::new()));
    s.chunk(1, 0);
    for i in 0..n {
        s.push(enter(i, 1));
    }
    for i in 0..n {
        s.push(Record::Pause { ts: n + 2 * i }).push(Record::Resume { ts: n + 2 * i + 1 });
    }
    s.finish(Trailer::default())
}

/// A pause and a resume on each of 2 000 threads, a chunk each, all in the
/// collector's first round: each chunk's thread was looked up in the list
/// of the threads holding events, which held them all.
fn pause_threads(k: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    for t in 1..=k.of(2_000) {
        s.chunk(t, 0).push(Record::Pause { ts: t }).push(Record::Resume { ts: t + 1 });
    }
    s.finish(Trailer::default())
}

/// 100 addresses with 8 inlined frames each, and 50 sites whose
/// 256-frame stacks run through them, an allocation at each: every
/// command expanded every stack, frame by frame, several times over.
fn symbol_flood(k: Scale) -> Vec<u8> {
    let (addrs, sites) = (k.of(100), k.of(50));
    let mut s = Session::new(&meta());
    s.chunk(0, 0);
    for a in 0..addrs {
        for i in 0..8 {
            let function = format!("flood::module{}::function{a}::inlined{i}", a % 7);
            s.push(symbol(0x1000 + a, function, format!("/src/flood/m{}.rs", a % 7), i as u32));
        }
    }
    for site in 1..=sites {
        let frames = (0..256).map(|j| 0x1000 + (site * 31 + j) % addrs).collect();
        s.push(Record::SiteDef { site: site as u32, frames });
    }
    s.chunk(1, 0);
    for site in 1..=sites {
        s.push(alloc(site, site * 64, site as u32));
    }
    s.finish(Trailer::default())
}

/// One address standing for 64 inlined functions of 4 KiB names, and
/// 200 sites of 256 frames at that address: each stack expands to 256
/// frames of 8 KiB, 2 MiB of names per site from 260 bytes of definition.
fn site_fanout(k: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    s.chunk(0, 0);
    for i in 0..64u32 {
        let long = format!("fanout::{}{i}", "x".repeat(k.of(4096) as usize));
        s.push(symbol(0x77, long.clone(), format!("/src/{long}.rs"), i));
    }
    let sites = k.of(200);
    for site in 1..=sites {
        // Each stack its own: another innermost address, then the set.
        let mut frames = vec![0x1000 + site];
        frames.extend([0x77; 255]);
        s.push(Record::SiteDef { site: site as u32, frames });
    }
    s.chunk(1, 0);
    for site in 1..=sites {
        s.push(alloc(site, site * 64, site as u32));
    }
    s.finish(Trailer::default())
}

/// One site defined 5 000 times over, each time with the same 256 frames
/// of the address of 64 long inlined names.
fn site_redefined(k: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    s.chunk(0, 0);
    for i in 0..64u32 {
        s.push(symbol(
            0x77,
            format!("again::{}{i}", "y".repeat(k.of(1024) as usize)),
            String::new(),
            i,
        ));
    }
    for _ in 0..k.of(5_000) {
        s.push(Record::SiteDef { site: 1, frames: vec![0x77; 256] });
    }
    s.chunk(1, 0).push(alloc(1, 0x100, 1));
    s.finish(Trailer::default())
}

/// Half a million definitions of one site with no frames, a few bytes
/// each in the file: the replay applies them as it reads them, rather than
/// gathering a chunk's (88 bytes a record) before it applies them.
fn site_redefined_empty(k: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    s.chunk(0, 0);
    for _ in 0..k.of(500_000) {
        s.push(Record::SiteDef { site: 1, frames: Vec::new() });
    }
    s.chunk(1, 0).push(alloc(1, 0x100, 1));
    s.finish(Trailer::default())
}

/// A scope of a 1 KiB name and 1 KiB category entered 127 levels deep,
/// then 1 000 scopes entered and left at the bottom: every path of the
/// call tree repeats the long name 127 times, 250 KiB of names a path.
fn time_paths(k: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    let long = "z".repeat(1024);
    s.chunk(0, 0).push(scope_def(1, long.clone(), long));
    s.chunk(1, 0);
    for i in 0..127 {
        s.push(enter(i, 1));
    }
    for leaf in 0..k.of(1_000) {
        let scope = 2 + leaf as u32;
        s.push(enter(200 + 2 * leaf, scope)).push(exit(201 + 2 * leaf, scope));
    }
    s.finish(Trailer::default())
}

/// A scope with a 64 KiB name and a 64 KiB category entered and left
/// 5 000 times, then 10 000 times nested in another scope whose exit
/// closes them all at once: the Chrome trace names every entry.
fn chrome_names(k: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    let long = "n".repeat(k.of(64 << 10) as usize);
    s.chunk(0, 0).push(scope_def(1, long.clone(), long)).push(scope_def(
        2,
        "outer".into(),
        String::new(),
    ));
    s.chunk(1, 0);
    let n = k.of(5_000);
    for i in 0..n {
        s.push(enter(2 * i, 1)).push(exit(2 * i + 1, 1));
    }
    s.push(enter(2 * n, 2));
    for i in 0..2 * n {
        s.push(enter(2 * n + i, 1));
    }
    s.push(exit(4 * n, 2));
    s.finish(Trailer::default())
}

/// Metadata naming 20 000 available counters, and 2 000 scopes whose
/// counters were read (with no values): the report's table had a column
/// per counter and a row per scope, 40 million cells.
fn counter_columns(k: Scale) -> Vec<u8> {
    let mut m = meta();
    m.counters = (0..k.of(20_000))
        .map(|i| CounterInfo { name: format!("c{i}"), available: true, reason: String::new() })
        .collect();
    let mut s = Session::new(&m);
    s.chunk(1, 0);
    for i in 1..=k.of(2_000) {
        let scope = i as u32;
        s.push(enter(4 * i, scope))
            .push(Record::Counters { ts: 4 * i, scope, values: Vec::new() })
            .push(Record::Counters { ts: 4 * i + 1, scope, values: Vec::new() })
            .push(exit(4 * i + 2, scope));
    }
    s.finish(Trailer::default())
}

/// `Counters` records of 10 000 values at both ends of an entry, and
/// 1 000 entries each reading a thousand.
fn counter_values(k: Scale) -> Vec<u8> {
    let mut m = meta();
    m.counters =
        vec![CounterInfo { name: String::from("cycles"), available: true, reason: String::new() }];
    let mut s = Session::new(&m);
    s.chunk(0, 0).push(scope_def(1, "counted".into(), String::new()));
    s.chunk(1, 0)
        .push(enter(1, 1))
        .push(Record::Counters { ts: 1, scope: 1, values: vec![1; k.of(10_000) as usize] })
        .push(Record::Counters { ts: 2, scope: 1, values: vec![3; k.of(10_000) as usize] })
        .push(exit(3, 1));
    for i in 0..k.of(1_000) {
        let ts = 10 + 4 * i;
        s.push(enter(ts, 1))
            .push(Record::Counters { ts, scope: 1, values: vec![i; 1_000] })
            .push(Record::Counters { ts: ts + 1, scope: 1, values: vec![2 * i; 1_000] })
            .push(exit(ts + 2, 1));
    }
    s.finish(Trailer::default())
}

/// 20 000 nested entries, 20 000 exits of a scope never entered, then the
/// exits of them all (`hostile.rs`'s shape, smaller).
fn deep_nesting(k: Scale) -> Vec<u8> {
    let n = k.of(20_000);
    let mut s = Session::new(&meta());
    s.chunk(0, 0);
    for scope in 1..=3 {
        s.push(scope_def(scope, format!("level{scope}"), String::new()));
    }
    s.chunk(1, 0);
    let scope = |i: u64| 1 + (i % 3) as u32;
    for i in 0..n {
        s.push(enter(i, scope(i)));
    }
    for i in 0..n {
        s.push(exit(n + i, 9));
    }
    for i in (0..n).rev() {
        s.push(exit(3 * n - i, scope(i)));
    }
    s.finish(Trailer::default())
}

/// Metadata saying the session is a merge of 64 runs, the first holding
/// 3 000 sites, each later run sampling the sites' history: each run's
/// history kept every site, 64 times over.
fn merged_runs(k: Scale) -> Vec<u8> {
    let mut m = meta();
    let runs: Vec<String> = (0..64u64)
        .map(|r| format!("{}:{}:{}", 10_000_000 + r, r * 1_000_000, r * 1_000_000 + 999_999))
        .collect();
    m.extra.push((String::from("merged_runs"), runs.join(",")));
    let mut s = Session::new(&m);
    s.chunk(1, 0);
    for site in 1..=k.of(3_000) {
        s.push(alloc(site, site * 64, site as u32));
    }
    for r in 1..64u64 {
        for i in 0..64 {
            s.push(Record::Pause { ts: r * 1_000_000 + i * 15_000 });
        }
    }
    s.finish(Trailer::default())
}

/// 1 000 sites with a block each, then 3 000 moments, each just past the
/// next sample of the sites' history (which doubles its interval as it
/// fills): each sample visits every site.
fn history_moments(k: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    s.chunk(1, 0);
    let sites = k.of(1_000);
    for site in 1..=sites {
        s.push(alloc(site, site * 64, site as u32));
    }
    let (mut ts, mut step) = (sites, 4096u64);
    for i in 0..3_000u64 {
        ts = ts.saturating_add(step);
        if i % 32 == 31 {
            step = step.saturating_mul(2);
        }
        s.push(Record::Pause { ts });
    }
    s.finish(Trailer::default())
}

/// 2 000 threads, a chunk each, each allocating one block another frees.
fn thread_blocks(k: Scale) -> Vec<u8> {
    let n = k.of(2_000);
    let mut s = Session::new(&meta());
    for t in 1..=n {
        s.chunk(t, 0)
            .push(Record::ThreadStart { ts: 2 * t, name: format!("worker-{t}") })
            .push(alloc(2 * t, t * 64, 0));
        if t > 1 {
            s.push(Record::Free { ts: 2 * t + 1, addr: (t - 1) * 64, size: 64 });
        }
    }
    s.finish(Trailer::default())
}

/// Metadata naming 50 000 directories as pulse's sources, and 5 000
/// symbols with a file: each frame's file was compared with every one.
fn source_dirs(k: Scale) -> Vec<u8> {
    let mut m = meta();
    let dirs: Vec<String> = (0..k.of(50_000)).map(|i| format!("/pulse/src{i}")).collect();
    m.extra.push((String::from(pulse_analysis::PULSE_SOURCES_KEY), dirs.join("\n")));
    let mut s = Session::new(&m);
    s.chunk(0, 0);
    let addrs = k.of(5_000);
    for a in 0..addrs {
        s.push(symbol(0x1000 + a, format!("app::f{a}"), format!("/app/src/m{}.rs", a % 9), 1));
    }
    for site in 1..=k.of(100) {
        let frames = (0..64).map(|j| 0x1000 + (site * 64 + j) % addrs).collect();
        s.push(Record::SiteDef { site: site as u32, frames });
    }
    s.chunk(1, 0);
    for site in 1..=k.of(100) {
        s.push(alloc(site, site * 64, site as u32));
    }
    s.finish(Trailer::default())
}

/// A stack 100 000 frames deep, a thousand of them named (`hostile.rs`).
fn deep_stack(k: Scale) -> Vec<u8> {
    let n = k.of(100_000);
    let mut s = Session::new(&meta());
    s.chunk(0, 0);
    let frames: Vec<u64> = (0..n).map(|i| 0x40_0000 + i * 16 + (i * i) % 7).collect();
    for &addr in frames.iter().take(1_000) {
        s.push(symbol(addr, format!("deep::f{addr}"), "/src/deep.rs".into(), 1));
    }
    s.push(Record::SiteDef { site: 1, frames });
    s.chunk(1, 0);
    for i in 0..100 {
        s.push(alloc(10 + i, 0x1000 + i * 64, 1));
    }
    s.finish(Trailer::default())
}

/// An address given 10 000 `Symbol` records, and 300 sites naming it
/// at each of 256 frames (`hostile.rs`).
fn inlined_flood(k: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    s.chunk(0, 0);
    for i in 0..k.of(10_000) {
        s.push(symbol(0x77, format!("f{i}"), String::new(), 0));
    }
    for site in 1..=300u32 {
        s.push(Record::SiteDef { site, frames: vec![0x77; 256] });
    }
    s.chunk(1, 0);
    for site in 1..=300u64 {
        s.push(alloc(site, 0x1000 + site * 64, site as u32));
    }
    s.finish(Trailer::default())
}

/// 2 000 sites of their own, half of their blocks freed after 2^40 ticks
/// (`hostile.rs`).
fn distinct_sites(k: Scale) -> Vec<u8> {
    let n = k.of(2_000);
    let mut s = Session::new(&meta());
    s.chunk(0, 0);
    for site in 1..=n {
        s.push(Record::SiteDef { site: site as u32, frames: vec![0x40_0000 + site * 16, 0x50] });
    }
    s.chunk(1, 0);
    for site in 1..=n {
        s.push(alloc(10 + site, 0x1000 + site * 64, site as u32));
        if site % 2 == 0 {
            s.push(Record::Free { ts: 10 + site + (1 << 40), addr: 0x1000 + site * 64, size: 64 });
        }
    }
    s.finish(Trailer::default())
}

/// 5 000 scopes, each entered for a tick and once for 2^40 (`hostile.rs`).
fn distinct_scopes(k: Scale) -> Vec<u8> {
    let n = k.of(5_000);
    let mut s = Session::new(&meta());
    s.chunk(0, 0);
    for scope in 1..=n {
        s.push(scope_def(scope as u32, format!("op{scope}"), "hostile".into()));
    }
    s.chunk(1, 0);
    let mut ts = 0u64;
    for scope in 1..=n {
        let scope = scope as u32;
        s.push(enter(ts, scope)).push(exit(ts + 1, scope)).push(enter(ts + 2, scope));
        ts += 1 << 40;
        s.push(exit(ts, scope));
    }
    s.finish(Trailer::default())
}

/// Ten chunks of allocations and frees, all in the collector's first
/// round: the replay holds them whole (`hostile.rs`).
fn one_round(k: Scale) -> Vec<u8> {
    let n = k.of(5_000);
    let mut s = Session::new(&meta());
    for c in 0..10u64 {
        s.chunk(1 + c % 2, 0);
        for i in 0..n {
            let (ts, addr) = (c * n + i, 0x1000 + (c * n + i) * 64);
            s.push(alloc(ts, addr, 0)).push(Record::Free { ts: ts + 1, addr, size: 64 });
        }
    }
    s.finish(Trailer::default())
}

/// A whole session whose trailer claims billions of every record kind.
fn lying_trailer(_: Scale) -> Vec<u8> {
    let mut s = Session::new(&meta());
    s.chunk(0, 0).push(Record::SiteDef { site: 1, frames: vec![0x10, 0x20] });
    s.chunk(1, 0).push(alloc(2, 0x100, 1)).push(Record::Free { ts: 3, addr: 0x100, size: 64 });
    s.finish(Trailer {
        end_ts: 10,
        chunks: u64::MAX,
        record_counts: RecordKind::ALL.iter().map(|k| (*k, 4_000_000_000)).collect(),
        lost_events: 4_000_000_000,
        extra: vec![(String::from("allocs"), u64::MAX - 1)],
        ..Trailer::default()
    })
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// One test a case, so that they run side by side.
        mod each {
            $(
                #[test]
                fn $name() {
                    super::check(stringify!($name), super::$name);
                }
            )*
        }

        /// Every case, by name.
        const ALL: &[(&str, fn(Scale) -> Vec<u8>)] = &[$((stringify!($name), $name)),*];
    };
}

cases!(
    pause_flood,
    pause_deep,
    pause_threads,
    symbol_flood,
    site_fanout,
    site_redefined,
    site_redefined_empty,
    time_paths,
    chrome_names,
    counter_columns,
    counter_values,
    deep_nesting,
    merged_runs,
    history_moments,
    thread_blocks,
    source_dirs,
    deep_stack,
    inlined_flood,
    distinct_sites,
    distinct_scopes,
    one_round,
    lying_trailer,
);

/// Writes each case, small, as a seed of the fuzz targets' corpora
/// (`fuzz/corpus/commands/valid-cost-*`, and two pairs for merge):
/// `bash fuzz/corpus/regenerate` runs it. A seed is the case at the
/// largest of 1/10, 1/20, … of its size whose file stays under 24 KiB and
/// whose decoded bytes under 256 KiB, so that replaying the corpus stays
/// quick.
#[test]
#[ignore = "writes the seed corpora into the source tree"]
fn write_the_fuzz_seeds() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut seeds = Vec::new();
    for &(name, build) in ALL {
        let bytes = [10, 20, 50, 100, 200, 500, 1000]
            .into_iter()
            .map(|d| build(Scale(1, d)))
            .find(|b| b.len() <= 24 << 10 && decoded_len(b) <= 256 << 10)
            .unwrap_or_else(|| panic!("{name}: no size fits a seed"));
        let seed = format!("valid-cost-{}", name.replace('_', "-"));
        std::fs::write(corpus.join("commands").join(&seed), &bytes).unwrap();
        seeds.push((name, bytes));
    }
    let seed = |name: &str| &seeds.iter().find(|(n, _)| *n == name).unwrap().1;
    for (a, b) in [("site_fanout", "pause_flood"), ("time_paths", "merged_runs")] {
        let pair = [seed(a).as_slice(), seed(b)].concat();
        assert!(pair.len() <= 32 << 10, "{a}+{b}: {} bytes", pair.len());
        let name = format!("valid-cost-{}+{}", a.replace('_', "-"), b.replace('_', "-"));
        std::fs::write(corpus.join("merge").join(name), pair).unwrap();
    }
}
