//! The collector thread: drains the per-thread rings into chunks and writes them.
//!
//! One round every [`ROUND`] (or sooner, when a ring passes half full and its
//! thread wakes the collector): drain every ring, encode each thread's events
//! as one chunk, write the chunks. Rounds are numbered in the chunks so the
//! analyzer can merge threads by timestamp with a window of two rounds.
//!
//! The collector marks itself as pulse's own thread, so nothing it allocates
//! (compression buffers, the file writer) is recorded.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pulse_alloc::{Event, EventKind, Events as Pulled};
use pulse_format::{ChunkEncoder, Record, RecordKind, Trailer, Writer, NO_SCOPE};

/// How long the collector sleeps between rounds when no ring fills up.
pub(crate) const ROUND: Duration = Duration::from_millis(10);
/// Spare chunk encoders kept between rounds.
const POOL: usize = 16;

/// What the collector shares with the session handle.
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub(crate) stop: AtomicBool,
}

/// The collector's state, owned by its thread.
pub(crate) struct Collector {
    writer: Writer<BufWriter<File>>,
    encoders: HashMap<u64, ChunkEncoder>,
    /// Spare encoders, so a round allocates only when threads multiply.
    pool: Vec<ChunkEncoder>,
    /// Threads that produced events this round, in first-seen order.
    touched: Vec<u64>,
    round: u64,
    scopes_written: usize,
    /// Every frame address of every site, for symbolization at the end.
    addresses: HashSet<u64>,
    /// The first write error; after it, nothing more is written.
    failed: Option<io::Error>,
}

/// Totals the session hands the collector when it stops.
pub(crate) type Finish = Box<dyn FnOnce() -> Trailer + Send>;

impl Collector {
    pub(crate) fn new(writer: Writer<BufWriter<File>>) -> Self {
        Collector {
            writer,
            encoders: HashMap::new(),
            pool: Vec::new(),
            touched: Vec::new(),
            round: 0,
            scopes_written: 0,
            addresses: HashSet::new(),
            failed: None,
        }
    }

    /// Runs rounds until `control.stop`, then a last round and the trailer.
    /// Writes every site's frames' symbols: each unique address is resolved
    /// once, into one record per inlined frame, innermost first. The file is
    /// then self-contained: the analyzer never needs the binary.
    fn write_symbols(&mut self) {
        let mut addrs: Vec<u64> = self.addresses.iter().copied().collect();
        addrs.sort_unstable();
        let mut enc = self.pool.pop().unwrap_or_default();
        enc.begin(0, self.round);
        for addr in addrs {
            let mut any = false;
            // The return address points after the call; the call is one byte before.
            backtrace::resolve(addr.saturating_sub(1) as usize as *mut std::ffi::c_void, |sym| {
                any = true;
                enc.push(&Record::Symbol {
                    addr,
                    function: sym.name().map(|n| format!("{n:#}")).unwrap_or_default(),
                    file: sym.filename().map(|f| f.display().to_string()).unwrap_or_default(),
                    line: sym.lineno().unwrap_or(0),
                });
            });
            if !any {
                enc.push(&Record::Symbol {
                    addr,
                    function: String::new(),
                    file: String::new(),
                    line: 0,
                });
            }
            if enc.encoded_len() > 1 << 20 {
                self.write(&enc);
                enc.begin(0, self.round);
            }
        }
        self.write(&enc);
    }

    fn write(&mut self, enc: &ChunkEncoder) {
        if self.failed.is_none() {
            if let Err(e) = self.writer.write_chunk(enc) {
                eprintln!(
                    "pulse: cannot write the session file: {e}; the program continues unprofiled"
                );
                self.failed = Some(e);
            }
        }
    }

    pub(crate) fn run(
        mut self,
        control: Arc<Control>,
        finish: Finish,
        ready: std::sync::mpsc::SyncSender<()>,
    ) -> io::Result<()> {
        // The rings' one consumer from the first, before recording starts.
        pulse_alloc::become_collector();
        let _ = ready.send(());
        loop {
            let stopping = control.stop.load(Ordering::Acquire);
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
        let trailer = finish();
        if trailer.ticks_per_ns > 0.0 {
            crate::stats::with_aggregates(|a| a.set_ticks_per_ns(trailer.ticks_per_ns));
        }
        self.write_symbols();
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.writer.finish(trailer)?;
        Ok(())
    }

    fn round_once(&mut self) {
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
        for (site, frames) in sites {
            self.addresses.extend(frames.iter().copied());
            self.encoder(0).push(&Record::SiteDef { site, frames });
        }
        let mut aggregates = crate::stats::AGGREGATES.lock().unwrap_or_else(|e| e.into_inner());
        let mut sink = |tid: u64, events: Pulled<'_>| {
            let enc = self.encoder(tid);
            match aggregates.as_mut() {
                Some(a) => {
                    let mut feed = crate::stats::Feed::new(a, tid);
                    for ev in events {
                        encode(enc, &ev);
                        feed.event(&ev);
                    }
                }
                None => events.for_each(|ev| encode(enc, &ev)),
            }
        };
        // The rings, then the events of threads past their ring's end.
        pulse_alloc::drain(&mut sink);
        drop(aggregates);
        // Periodic counter samples of every thread that opened its group.
        let now = pulse_alloc::clock::now();
        for (tid, values, n) in crate::counters::sample_all() {
            self.encoder(tid).push(&Record::Counters {
                ts: now,
                scope: NO_SCOPE,
                values: values[..n].to_vec(),
            });
        }
        for tid in std::mem::take(&mut self.touched) {
            if let Some(enc) = self.encoders.remove(&tid) {
                self.write(&enc);
                self.encoders.insert(tid, enc);
            }
        }
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

/// Encodes one ring event as its record. The thread's name is the one
/// record that owns data; the others are written field by field.
#[inline(always)]
fn encode(enc: &mut ChunkEncoder, ev: &Event) {
    let align = 1u64 << (ev.align_log2 & 63);
    match ev.kind {
        EventKind::Alloc => enc.alloc(ev.ts, ev.a, ev.b, align, ev.site, 1),
        EventKind::Free => enc.free(ev.ts, ev.a, ev.b),
        EventKind::Realloc => {
            enc.realloc((ev.ts, ev.start.min(ev.ts)), (ev.c, ev.d), (ev.a, ev.b), align, ev.site)
        }
        EventKind::ScopeEnter => enc.scope(true, ev.ts, ev.a as u32),
        EventKind::ScopeExit => enc.scope(false, ev.ts, ev.a as u32),
        EventKind::AllocFailed => enc.alloc_failed(ev.ts, ev.b, align),
        EventKind::ThreadEnd => enc.marker(RecordKind::ThreadEnd, ev.ts),
        EventKind::Pause => enc.marker(RecordKind::Pause, ev.ts),
        EventKind::Resume => enc.marker(RecordKind::Resume, ev.ts),
        EventKind::Span => enc.span(ev.ts, ev.start.min(ev.ts), ev.a as u32),
        EventKind::ThreadStart => {
            let mut name = [0u8; 16];
            name[..8].copy_from_slice(&ev.a.to_le_bytes());
            name[8..].copy_from_slice(&ev.b.to_le_bytes());
            let len = name.iter().position(|&b| b == 0).unwrap_or(16);
            enc.push(&Record::ThreadStart {
                ts: ev.ts,
                name: String::from_utf8_lossy(&name[..len]).into_owned(),
            });
        }
        EventKind::Counters => {
            let all = [ev.a, ev.b, ev.c, ev.d, ev.start];
            enc.push(&Record::Counters {
                ts: ev.ts,
                scope: ev.site,
                values: all[..usize::from(ev.align_log2).min(5)].to_vec(),
            });
        }
    }
}
