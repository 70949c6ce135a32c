//! A replayed session: its metadata and every aggregate the reports draw on.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use pulse_format::{Metadata, Reader, Record, RecordKind, Trailer, NO_SCOPE};

use crate::error::Error;
use crate::replay::{self, Visitor};

/// A scope or typed operation as the session defined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeInfo {
    /// Its id in the session.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its category, or empty.
    pub category: String,
}

/// Allocation totals and the live set over the whole session, exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTotals {
    /// Blocks allocated (`alloc`, `alloc_zeroed`), weights applied.
    pub allocs: u64,
    /// Blocks freed.
    pub frees: u64,
    /// Reallocations.
    pub reallocs: u64,
    /// Allocation calls the inner allocator refused.
    pub failed: u64,
    /// Bytes allocated, reallocations' new sizes included.
    pub bytes_allocated: u64,
    /// Bytes freed, reallocations' old sizes included.
    pub bytes_freed: u64,
    /// The most bytes live at once.
    pub peak_bytes: u64,
    /// Blocks live at that moment.
    pub peak_blocks: u64,
    /// When the peak was reached, in nanoseconds from the session's start.
    pub peak_at_ns: u64,
    /// Bytes still live when the session ended.
    pub live_bytes_at_end: u64,
    /// Blocks still live when the session ended.
    pub live_blocks_at_end: u64,
}

/// Time spent in one scope, all threads together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeTime {
    /// Completed entries.
    pub count: u64,
    /// Time inside the scope, children included, pauses excluded.
    pub total_ns: u64,
    /// Time inside the scope minus its children.
    pub self_ns: u64,
    /// The shortest entry.
    pub min_ns: u64,
    /// The longest entry.
    pub max_ns: u64,
}

/// Things in the event stream that should not happen in a well-formed
/// session; each is counted, the replay carries on as soundly as it can.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Anomalies {
    /// Frees of blocks the session never saw allocated (allocated before it began).
    pub unknown_frees: u64,
    /// Scope exits with no matching entry on their thread.
    pub unmatched_exits: u64,
    /// Scopes still open when the session ended (closed at its end).
    pub open_at_end: u64,
    /// Allocations at an address that was still live (the old block is dropped).
    pub reused_live_addresses: u64,
}

/// A thread the session saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadInfo {
    /// pulse's id for it.
    pub id: u64,
    /// Its name, or empty.
    pub name: String,
    /// Timed events it produced.
    pub events: u64,
}

/// A session replayed from its file.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The session's metadata.
    pub meta: Metadata,
    /// The file's format version.
    pub version: u16,
    /// The trailer, absent when the file was cut short.
    pub trailer: Option<Trailer>,
    /// Set when the file was cut short: what the reader said.
    pub truncated: Option<String>,
    /// Frames of records read.
    pub chunks: u64,
    /// Records read, by kind, in [`RecordKind::ALL`] order.
    pub record_counts: [u64; RecordKind::ALL.len()],
    /// Allocation totals and the live set.
    pub memory: MemoryTotals,
    /// Time per scope, by scope id.
    pub scope_times: BTreeMap<u32, ScopeTime>,
    /// Scope definitions, by id.
    pub scopes: BTreeMap<u32, ScopeInfo>,
    /// Threads, by id.
    pub threads: BTreeMap<u64, ThreadInfo>,
    /// What was odd in the stream.
    pub anomalies: Anomalies,
    /// The session's length in nanoseconds.
    pub duration_ns: u64,
    /// Ticks per nanosecond used for every conversion.
    pub ticks_per_ns: f64,
}

impl Profile {
    /// Reads and replays the session file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, Error> {
        let path = path.as_ref();
        if path.is_dir() {
            return Err(Error::IsDirectory(path.to_path_buf()));
        }
        let file =
            File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Profile::read(BufReader::with_capacity(1 << 20, file)).map_err(|source| match source {
            pulse_format::Error::Io(source) => Error::Io { path: path.to_path_buf(), source },
            source => Error::Format { path: path.to_path_buf(), source },
        })
    }

    /// Reads and replays a session from any reader.
    pub fn read(input: impl Read) -> Result<Profile, pulse_format::Error> {
        let mut reader = Reader::new(input)?;
        let mut state = State::default();
        let ending = replay::replay(&mut reader, &mut state)?;
        Ok(state.finish(reader.metadata().clone(), reader.version(), ending))
    }

    /// Records read of `kind`.
    pub fn count(&self, kind: RecordKind) -> u64 {
        self.record_counts[kind.index()]
    }

    /// The name of scope `id`, or `scope #id` if the session never defined it.
    pub fn scope_name(&self, id: u32) -> String {
        self.scopes.get(&id).map_or_else(|| format!("scope #{id}"), |s| s.name.clone())
    }
}

#[derive(Debug, Clone, Copy)]
struct Block {
    size: u64,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    scope: u32,
    enter: u64,
    /// Ticks spent in completed children.
    children: u64,
    /// Ticks spent paused while this scope was open.
    paused: u64,
}

#[derive(Debug, Default)]
struct ThreadState {
    stack: Vec<Open>,
    paused_at: Option<u64>,
    /// The old block of a moving realloc, released ahead of its record.
    released: Option<u64>,
}

/// The replay's running state, in ticks.
#[derive(Debug, Default)]
struct State {
    memory: MemoryTotals,
    peak_ts: u64,
    live: HashMap<u64, Block>,
    live_bytes: u64,
    scope_ticks: BTreeMap<u32, ScopeTime>,
    scopes: BTreeMap<u32, ScopeInfo>,
    threads: BTreeMap<u64, ThreadInfo>,
    thread_states: HashMap<u64, ThreadState>,
    anomalies: Anomalies,
    first_ts: Option<u64>,
    last_ts: u64,
}

impl Visitor for State {
    fn definition(&mut self, r: Record) {
        if let Record::ScopeDef { scope, name, category, .. } = r {
            self.scopes.insert(scope, ScopeInfo { id: scope, name, category });
        }
    }

    fn event(&mut self, thread: u64, r: Record) {
        let ts = r.ts().unwrap_or(self.last_ts);
        self.first_ts.get_or_insert(ts);
        self.last_ts = self.last_ts.max(ts);
        let info = self
            .threads
            .entry(thread)
            .or_insert_with(|| ThreadInfo { id: thread, ..ThreadInfo::default() });
        info.events += 1;
        match r {
            Record::ThreadStart { name, .. } => info.name = name,
            Record::Alloc { ts, addr, size, weight, .. } => {
                self.memory.allocs += weight;
                self.memory.bytes_allocated += size;
                self.insert(addr, size, ts);
            }
            Record::AllocFailed { .. } => self.memory.failed += 1,
            Record::Free { addr, size, .. } => {
                self.memory.frees += 1;
                self.memory.bytes_freed += size;
                self.remove(addr);
            }
            Record::Realloc { ts, old_addr, old_size, new_addr, new_size, .. } => {
                self.memory.reallocs += 1;
                self.memory.bytes_freed += old_size;
                self.memory.bytes_allocated += new_size;
                let released = self.thread_states.entry(thread).or_default().released.take();
                if released != Some(old_addr) {
                    self.remove(old_addr);
                }
                self.insert(new_addr, new_size, ts);
            }
            Record::ScopeEnter { ts, scope } => {
                let st = self.thread_states.entry(thread).or_default();
                st.stack.push(Open { scope, enter: ts, children: 0, paused: 0 });
            }
            Record::ScopeExit { ts, scope } => self.exit(thread, scope, ts),
            Record::Pause { ts } => {
                self.thread_states.entry(thread).or_default().paused_at.get_or_insert(ts);
            }
            Record::Resume { ts } => {
                let st = self.thread_states.entry(thread).or_default();
                if let Some(at) = st.paused_at.take() {
                    let d = ts.saturating_sub(at);
                    for o in &mut st.stack {
                        o.paused += d;
                    }
                }
            }
            Record::ThreadEnd { .. } | Record::Counters { .. } => {}
            Record::SiteDef { .. } | Record::ScopeDef { .. } | Record::Symbol { .. } => {
                self.definition(r)
            }
        }
    }

    fn realloc_release(&mut self, thread: u64, _ts: u64, addr: u64) {
        self.release_for_realloc(thread, addr);
    }
}
impl State {
    fn release_for_realloc(&mut self, thread: u64, addr: u64) {
        self.remove(addr);
        self.thread_states.entry(thread).or_default().released = Some(addr);
    }

    fn insert(&mut self, addr: u64, size: u64, ts: u64) {
        if let Some(old) = self.live.insert(addr, Block { size }) {
            self.anomalies.reused_live_addresses += 1;
            self.live_bytes -= old.size;
        }
        self.live_bytes += size;
        if self.live_bytes > self.memory.peak_bytes {
            self.memory.peak_bytes = self.live_bytes;
            self.memory.peak_blocks = self.live.len() as u64;
            self.peak_ts = ts;
        }
    }

    fn remove(&mut self, addr: u64) {
        match self.live.remove(&addr) {
            Some(b) => self.live_bytes -= b.size,
            None => self.anomalies.unknown_frees += 1,
        }
    }

    fn exit(&mut self, thread: u64, scope: u32, ts: u64) {
        let st = self.thread_states.entry(thread).or_default();
        let Some(pos) = st.stack.iter().rposition(|o| o.scope == scope) else {
            self.anomalies.unmatched_exits += 1;
            return;
        };
        // Scopes above the one being left were never closed: close them here.
        while st.stack.len() > pos + 1 {
            let inner = st.stack.pop().unwrap_or(Open {
                scope: NO_SCOPE,
                enter: ts,
                children: 0,
                paused: 0,
            });
            self.anomalies.unmatched_exits += 1;
            let d = close(&mut self.scope_ticks, inner, ts);
            if let Some(parent) = st.stack.last_mut() {
                parent.children += d;
            }
        }
        if let Some(o) = st.stack.pop() {
            let d = close(&mut self.scope_ticks, o, ts);
            if let Some(parent) = st.stack.last_mut() {
                parent.children += d;
            }
        }
    }

    fn finish(mut self, meta: Metadata, version: u16, end: replay::Ending) -> Profile {
        let end_ts = end.trailer.as_ref().map_or(self.last_ts, |t| t.end_ts.max(self.last_ts));
        for st in self.thread_states.values_mut() {
            while let Some(o) = st.stack.pop() {
                self.anomalies.open_at_end += 1;
                let d = close(&mut self.scope_ticks, o, end_ts);
                if let Some(parent) = st.stack.last_mut() {
                    parent.children += d;
                }
            }
        }
        let tpn = end
            .trailer
            .as_ref()
            .map(|t| t.ticks_per_ns)
            .filter(|t| t.is_finite() && *t > 0.0)
            .unwrap_or(meta.clock.ticks_per_ns);
        let ns = |ticks: u64| (ticks as f64 / tpn).round() as u64;
        let first = self.first_ts.unwrap_or(end_ts);
        self.memory.peak_at_ns = ns(self.peak_ts.saturating_sub(first));
        self.memory.live_bytes_at_end = self.live_bytes;
        self.memory.live_blocks_at_end = self.live.len() as u64;
        let scope_times = self
            .scope_ticks
            .into_iter()
            .map(|(id, t)| {
                let t = ScopeTime {
                    count: t.count,
                    total_ns: ns(t.total_ns),
                    self_ns: ns(t.self_ns),
                    min_ns: ns(t.min_ns),
                    max_ns: ns(t.max_ns),
                };
                (id, t)
            })
            .collect();
        Profile {
            meta,
            version,
            trailer: end.trailer,
            truncated: end.truncated.map(|e| e.to_string()),
            chunks: end.chunks,
            record_counts: end.record_counts,
            memory: self.memory,
            scope_times,
            scopes: self.scopes,
            threads: self.threads,
            anomalies: self.anomalies,
            duration_ns: ns(end_ts.saturating_sub(first)),
            ticks_per_ns: tpn,
        }
    }
}

/// Adds a finished entry of `o` (in ticks) and returns its active duration.
fn close(times: &mut BTreeMap<u32, ScopeTime>, o: Open, ts: u64) -> u64 {
    let d = ts.saturating_sub(o.enter).saturating_sub(o.paused);
    let t = times.entry(o.scope).or_insert(ScopeTime { min_ns: u64::MAX, ..ScopeTime::default() });
    t.count += 1;
    t.total_ns += d;
    t.self_ns += d.saturating_sub(o.children);
    t.min_ns = t.min_ns.min(d);
    t.max_ns = t.max_ns.max(d);
    d
}
