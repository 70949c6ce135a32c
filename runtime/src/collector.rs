//! The collector thread: drains the per-thread rings into chunks and writes them.
//!
//! One round every [`ROUND`] (or sooner, when a ring passes half full and its
//! thread wakes the collector): drain every ring, encode each thread's events
//! as one chunk, write the chunks. Rounds are numbered in the chunks so the
//! analyzer can merge threads by timestamp with a window of two rounds.
//!
//! The collector marks itself as pulse's own thread, so nothing it allocates
//! (compression buffers, the file writer) is recorded.
//!
//! Each round's chunks reach the kernel when the round ends
//! ([`Output::flush`]), so a process killed outright loses at most the round
//! under way. The collector waits on nothing the program can hold while it
//! records: its messages go straight to file descriptor 2 ([`say`]), not
//! through `std::io::stderr`'s lock, and every lock it takes (the site
//! table, the scope registry, the orphan list, the in-process statistics,
//! the counter groups) is held by a program thread only inside pulse's own
//! untracked code, which never waits for ring room.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_alloc::{Event, Events as Pulled};
use pulse_format::{ChunkEncoder, Record, Trailer, Writer, NO_SCOPE};

use crate::build_check::BuildCheck;
use crate::signals;
use crate::sink::Output;
use crate::symbols::{Symbolizer, Worker, ROUND_BUDGET};

/// Set once this session's collector has said on stderr that it cannot
/// write the file, so that the session's end does not say it again.
pub(crate) static FAILURE_SAID: AtomicBool = AtomicBool::new(false);

/// How long the collector sleeps between rounds when no ring fills up.
pub(crate) const ROUND: Duration = Duration::from_millis(10);
/// Spare chunk encoders kept between rounds.
const POOL: usize = 16;

/// `Symbol` records the collector writes in one chunk at the end.
const SYMBOLS_PER_CHUNK: usize = 1024;

/// What the collector shares with the session handle.
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub(crate) stop: AtomicBool,
    /// The session gave up waiting for this collector (it made no progress):
    /// it writes nothing more, drains nothing more, and ends.
    pub(crate) abandoned: AtomicBool,
}

/// The collector's state, owned by its thread.
pub(crate) struct Collector {
    writer: Writer<Output>,
    encoders: HashMap<u64, ChunkEncoder>,
    /// Spare encoders, so a round allocates only when threads multiply.
    pool: Vec<ChunkEncoder>,
    /// Threads that produced events this round, in first-seen order.
    touched: Vec<u64>,
    round: u64,
    scopes_written: usize,
    /// Who symbolizes the sites' frame addresses.
    symbols: Symbols,
    /// Whether the build gives good sites, told once on stderr.
    build: BuildCheck,
    /// Whether the symbolizer named the frame the build check judges the
    /// line tables by without a file, once its symbols have come.
    first_unfiled: Option<bool>,
    /// The first write error; after it, nothing more is written.
    failed: Option<io::Error>,
    control: Arc<Control>,
}

/// Set by a new collector once it is the rings' consumer and pulse's own
/// thread: the session waits for it before recording starts.
pub(crate) static READY: AtomicBool = AtomicBool::new(false);

/// Totals the session hands the collector when it stops.
pub(crate) type Finish = Box<dyn FnOnce() -> Trailer + Send>;

impl Collector {
    pub(crate) fn new(writer: Writer<Output>, control: Arc<Control>) -> Self {
        Collector {
            writer,
            encoders: HashMap::new(),
            pool: Vec::new(),
            touched: Vec::new(),
            round: 0,
            scopes_written: 0,
            symbols: Symbols::Inline(Symbolizer::default()),
            build: BuildCheck::default(),
            first_unfiled: None,
            failed: None,
            control,
        }
    }

    /// Hands the frames of this round's new sites to the symbolizer, and
    /// writes the `Symbol` records it made since in this round's chunk of
    /// definitions (where it runs on the collector's thread, it resolves
    /// them here, for [`ROUND_BUDGET`] at most). The file is then
    /// self-contained: the analyzer never needs the binary.
    fn symbolize(&mut self, frames: &[u64]) {
        let mut records = Vec::new();
        match &mut self.symbols {
            Symbols::Worker(w) => w.exchange(frames, &mut records),
            Symbols::Inline(s) => {
                s.add(frames);
                let until = Instant::now() + ROUND_BUDGET;
                while s.resolve_next(&mut |r| records.push(r)) > 0 && Instant::now() < until {}
                s.release();
            }
        }
        if !records.is_empty() {
            note_first_frame(self.build.first_frame(), &records, &mut self.first_unfiled);
            let enc = self.encoder(0);
            for r in &records {
                enc.push(r);
            }
        }
    }

    /// Resolves every frame left, [`SYMBOLS_PER_CHUNK`] records a chunk:
    /// at the end.
    fn symbolize_the_rest(&mut self) {
        let symbols = std::mem::replace(&mut self.symbols, Symbols::Inline(Symbolizer::default()));
        let mut enc = self.pool.pop().unwrap_or_default();
        let first = self.build.first_frame();
        let mut unfiled = self.first_unfiled;
        let mut write = |records: &mut Vec<Record>| {
            note_first_frame(first, records, &mut unfiled);
            enc.begin(0, self.round);
            for r in records.drain(..) {
                enc.push(&r);
            }
            self.write(&enc);
        };
        match symbols {
            Symbols::Worker(w) => w.finish(SYMBOLS_PER_CHUNK, &mut write),
            Symbols::Inline(mut s) => {
                let mut records = Vec::new();
                while s.pending() > 0 {
                    while records.len() < SYMBOLS_PER_CHUNK
                        && s.resolve_next(&mut |r| records.push(r)) > 0
                    {}
                    write(&mut records);
                }
            }
        }
        self.first_unfiled = unfiled;
        self.pool.push(enc);
    }

    /// Judges the build as far as it can be by now (see [`BuildCheck`]).
    fn judge(&mut self, end: bool) {
        if !self.build.done() {
            self.build.judge(self.first_unfiled, end);
        }
    }

    /// Whether the session gave up on this collector.
    fn abandoned(&self) -> bool {
        self.control.abandoned.load(Ordering::Acquire)
    }

    fn write(&mut self, enc: &ChunkEncoder) {
        if self.failed.is_none() && !self.abandoned() {
            if let Err(e) = self.writer.write_chunk(enc) {
                self.fail(e);
            }
        }
    }

    /// Hands the round's bytes to the kernel.
    fn flush(&mut self) {
        if self.failed.is_none() && !self.abandoned() {
            if let Err(e) = self.writer.get_mut().flush() {
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, e: io::Error) {
        say(&format!(
            "pulse: cannot write the session file: {e}; the program continues unprofiled"
        ));
        FAILURE_SAID.store(true, Ordering::Release);
        self.failed = Some(e);
    }

    pub(crate) fn run(mut self, finish: Finish) -> io::Result<()> {
        // The rings' one consumer from the first, before recording starts.
        pulse_alloc::become_collector();
        signals::collector_started();
        // The symbolizer's own threads, started before recording is (and
        // after the signals are blocked, which they inherit), so that
        // nothing they allocate is recorded; where none can be started, the
        // collector symbolizes itself.
        if let Ok(w) = Worker::start() {
            self.symbols = Symbols::Worker(w);
        }
        READY.store(true, Ordering::Release);
        // Whatever way this ends, a signal handler waiting for it stops waiting.
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                signals::collector_done();
            }
        }
        let _done = Done;
        loop {
            if self.abandoned() {
                return Err(io::Error::other("the session gave up on its collector"));
            }
            let stopping = self.control.stop.load(Ordering::Acquire)
                || signals::SIGNALLED.load(Ordering::Acquire);
            if stopping {
                pulse_alloc::stop_recording();
            }
            self.round_once();
            if stopping {
                break;
            }
            std::thread::park_timeout(ROUND);
        }
        // A thread that was between its check of the recording flag and its
        // append when recording stopped may have appended since.
        self.round_once();
        // The session ends here; symbolizing is pulse's own work after it.
        let mut trailer = finish();
        if trailer.ticks_per_ns > 0.0 {
            crate::stats::with_aggregates(|a| a.set_ticks_per_ns(trailer.ticks_per_ns));
        }
        signals::SYMBOLIZING.store(true, Ordering::Release);
        self.symbolize_the_rest();
        self.judge(true);
        signals::SYMBOLIZING.store(false, Ordering::Release);
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        // The program waited for all of this: from the start of finishing
        // the session to its file being complete (the trailer's own write
        // aside).
        let began = signals::FINISH_START_NS.load(Ordering::Relaxed);
        if began > 0 {
            let ns = pulse_alloc::clock::monotonic_ns().saturating_sub(began);
            trailer.extra.push((String::from("finish_ns"), ns));
        }
        self.writer.finish(trailer)?;
        Ok(())
    }

    fn round_once(&mut self) {
        if self.abandoned() {
            return;
        }
        for def in crate::scope::definitions_since(self.scopes_written) {
            self.scopes_written += 1;
            let enc = self.encoder(0);
            enc.push(&Record::ScopeDef {
                scope: def.id,
                name: def.name.to_owned(),
                category: def.category.to_owned(),
                description: def.description.to_owned(),
                priority: def.priority,
            });
        }
        let mut sites = Vec::new();
        pulse_alloc::drain_sites(&mut |site, frames| sites.push((site, frames.to_vec())));
        let mut new_frames = Vec::new();
        for (site, frames) in sites {
            new_frames.extend_from_slice(&frames);
            self.build.saw(&frames);
            self.encoder(0).push(&Record::SiteDef { site, frames });
        }
        let mut aggregates = crate::stats::AGGREGATES.lock().unwrap_or_else(|e| e.into_inner());
        // Until the build is judged, allocations with and without a stack
        // where every one's stack is captured.
        let judging =
            self.build.counting() && pulse_alloc::stack_mode() == pulse_alloc::StackMode::Full;
        let (mut allocs, mut stackless) = (0u64, 0u64);
        let mut sink = |tid: u64, events: Pulled<'_>| {
            let enc = self.encoder(tid);
            let mut feed = aggregates.as_mut().map(|a| crate::stats::Feed::new(a, tid));
            for ev in events {
                encode(enc, &ev);
                if let Some(feed) = &mut feed {
                    feed.event(&ev);
                }
                if let (true, Event::Alloc { site, .. }) = (judging, ev) {
                    allocs += 1;
                    stackless += u64::from(site == 0);
                }
            }
        };
        // The rings, then the events of threads past their ring's end.
        pulse_alloc::drain(&mut sink);
        drop(aggregates);
        self.build.allocations(allocs, stackless);
        // Periodic counter samples of every thread that opened its group.
        let now = pulse_alloc::clock::now();
        for (tid, values, n) in crate::counters::sample_all() {
            self.encoder(tid).push(&Record::Counters {
                ts: now,
                scope: NO_SCOPE,
                values: values[..n].to_vec(),
            });
        }
        // After the rings are drained, so that their threads have room.
        self.symbolize(&new_frames);
        self.judge(false);
        for tid in std::mem::take(&mut self.touched) {
            if let Some(enc) = self.encoders.remove(&tid) {
                self.write(&enc);
                self.encoders.insert(tid, enc);
            }
        }
        self.flush();
        // Encoders go back to the pool; a few are kept for the next round.
        for (_, e) in self.encoders.drain() {
            self.pool.push(e);
        }
        self.pool.truncate(POOL);
        self.round += 1;
        crate::stats::round_done();
    }

    fn encoder(&mut self, tid: u64) -> &mut ChunkEncoder {
        let round = self.round;
        let touched = &mut self.touched;
        let pool = &mut self.pool;
        self.encoders.entry(tid).or_insert_with(|| {
            touched.push(tid);
            let mut e = pool.pop().unwrap_or_default();
            e.begin(tid, round);
            e
        })
    }
}

/// Notes in `unfiled`, if `records` hold the symbols of `first` (the frame
/// the build's line tables are judged by), whether they name it without a
/// file.
fn note_first_frame(first: Option<u64>, records: &[Record], unfiled: &mut Option<bool>) {
    let Some(first) = first else { return };
    let (mut seen, mut named, mut filed) = (false, false, false);
    for r in records {
        if let Record::Symbol { addr, function, file, .. } = r {
            if *addr == first {
                seen = true;
                named |= !function.is_empty();
                filed |= !file.is_empty();
            }
        }
    }
    if seen {
        *unfiled = Some(named && !filed);
    }
}

/// Who symbolizes the sites' frames: threads of its own, or, where none
/// could be started, the collector itself, a share of each round.
enum Symbols {
    Worker(Worker),
    Inline(Symbolizer),
}

/// Writes one line to file descriptor 2 as it is: no lock, no buffer, so
/// that a program thread holding `std::io::stderr`'s lock cannot make pulse
/// wait. Never fails (what cannot be written is dropped).
pub(crate) fn say(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid buffer of `rest.len()` bytes.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n > 0 {
            rest = &rest[n as usize..];
        } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            return;
        }
    }
}

/// Encodes one ring event as its record. The thread's name and a counter
/// reading are the records that own data; the others are written as the
/// format's [`Event`](pulse_format::Event), the type the replay reads back.
#[inline(always)]
fn encode(enc: &mut ChunkEncoder, ev: &Event) {
    use pulse_format::Event as Wire;
    let align = |log2: u8| 1u64 << (log2 & 63);
    let wire = match *ev {
        Event::Alloc { ts, addr, size, align_log2, site } => {
            Wire::Alloc { ts, addr, size, align: align(align_log2), site, weight: 1 }
        }
        Event::Free { ts, addr, size } => Wire::Free { ts, addr, size },
        Event::Realloc { ts, start, old_addr, old_size, new_addr, new_size, align_log2, site } => {
            Wire::Realloc {
                ts,
                start_ts: start.min(ts),
                old_addr,
                old_size,
                new_addr,
                new_size,
                align: align(align_log2),
                site,
            }
        }
        Event::ScopeEnter { ts, scope } => Wire::ScopeEnter { ts, scope },
        Event::ScopeExit { ts, scope } => Wire::ScopeExit { ts, scope },
        Event::AllocFailed { ts, size, align_log2 } => {
            Wire::AllocFailed { ts, size, align: align(align_log2) }
        }
        Event::ThreadEnd { ts } => Wire::ThreadEnd { ts },
        Event::Pause { ts } => Wire::Pause { ts },
        Event::Resume { ts } => Wire::Resume { ts },
        Event::Span { ts, start, scope } => Wire::Span { ts, start_ts: start.min(ts), scope },
        Event::ThreadStart { ts, name } => {
            let len = name.iter().position(|&b| b == 0).unwrap_or(16);
            let name = String::from_utf8_lossy(&name[..len]).into_owned();
            return enc.push(&Record::ThreadStart { ts, name });
        }
        Event::Counters { ts, scope, len, values } => {
            let values = values[..usize::from(len)].to_vec();
            return enc.push(&Record::Counters { ts, scope, values });
        }
    };
    enc.event(&wire);
}
