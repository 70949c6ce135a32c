//! A replayed session: its metadata and every aggregate the reports draw on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use pulse_format::{
    AllocMode, CallTree, DenseIds, Event, Histogram, Metadata, Reader, Record, RecordKind,
    ScopeTime, Timing, Trailer, NO_SITE,
};

use crate::error::Error;
use crate::history::History;
use crate::replay::{self, Thread, Visitor};
use crate::sites::{Frame, Symbols};
use crate::timeline::{Timeline, TimelineBuilder};

use rustc_hash::FxHashMap as HashMap;

/// A reader that reports how far it got.
struct Counting<'a, R> {
    inner: R,
    read: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.progress)(self.read, self.total);
        Ok(n)
    }
}

/// A scope or typed operation as the session defined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeInfo {
    /// Its id in the session.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its category, or empty.
    pub category: String,
    /// The category's description, or empty.
    pub description: String,
    /// Its priority (higher first), 0 when none was given.
    pub priority: i64,
}

/// Allocation totals and the live set over the whole session, exact.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
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
    /// Set for a session in `count` mode: the totals are the allocator's
    /// counters, and there is no peak (it needs the events).
    pub counted_only: bool,
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
    /// Scope entries without a call-tree node of their own (nested deeper
    /// than [`pulse_format::MAX_TREE_DEPTH`], or along a path past
    /// [`pulse_format::MAX_TREE_NODES`]): their time is the self time of
    /// their enclosing node; their scopes' figures count them.
    pub beyond_call_tree: u64,
    /// Events whose timestamp is earlier than the one before it on the same
    /// thread: the clock stepped back (a clock that is not monotonic, or a
    /// damaged file). Durations across such a step count as zero.
    pub clock_steps_back: u64,
    /// Distinct stack addresses that no `Symbol` record names: the session
    /// ended before its symbols were written (it was killed), or they were
    /// lost. Such frames show as bare addresses.
    pub unsymbolized_addresses: u64,
    /// Site ids that allocations name but no `SiteDef` defines: their
    /// stacks are unknown.
    pub undefined_sites: u64,
    /// Scope names and categories longer than [`MAX_SCOPE_NAME`], cut.
    pub long_scope_names: u64,
}

/// The longest scope name, and category, a profile keeps, in bytes: a
/// name is repeated in every call-tree node of its scope (16 384 of them at
/// most) and in a Chrome trace's every entry, so that one long name would
/// cost as much as the file many times over. Longer ones are cut at a
/// character's boundary, `…` where they were cut, and the report says so.
pub const MAX_SCOPE_NAME: usize = 1024;

/// `name` cut to [`MAX_SCOPE_NAME`] bytes, and whether it was.
pub(crate) fn cut_scope_name(mut name: String) -> (String, bool) {
    if name.len() <= MAX_SCOPE_NAME {
        return (name, false);
    }
    let mut cut = MAX_SCOPE_NAME;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    name.truncate(cut);
    name.push('…');
    name.shrink_to_fit();
    (name, true)
}

/// A thread the session saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ThreadInfo {
    /// pulse's id for it.
    pub id: u64,
    /// Its name, or empty.
    pub name: String,
    /// Timed events it produced.
    pub events: u64,
    /// Bytes it allocated (reallocations' new sizes included).
    pub bytes_allocated: u64,
    /// The most bytes live at once among blocks it allocated, wherever freed.
    pub peak_live_bytes: u64,
    /// Bytes it allocated still live at the end.
    pub live_bytes_at_end: u64,
    /// Blocks it allocated still live at the end.
    pub live_blocks_at_end: u64,
    /// Time inside its outermost scopes, pauses excluded: how long it ran
    /// instrumented code.
    pub scoped_ns: u64,
}

/// Which threads a profile was read for (see [`LoadOptions::threads`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Selection {
    /// What was asked for: thread ids (`3` or `#3`) or names.
    pub wanted: Vec<String>,
    /// The threads that matched, by id.
    pub kept: Vec<u64>,
    /// Every thread of the session: id and name.
    pub all: Vec<(u64, String)>,
}

/// How a session is read.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Only these threads, by id (`3` or `#3`) or name (`worker-0`; every
    /// thread of that name). Empty: all of them. The profile then holds
    /// their scopes and the blocks they allocated, wherever those were
    /// freed; a block of theirs reallocated on another thread leaves their
    /// view there, as if freed.
    pub threads: Vec<String>,
}

impl LoadOptions {
    /// Every thread.
    pub fn new() -> Self {
        LoadOptions::default()
    }

    /// Only the threads `wanted` names (ids or names).
    pub fn threads(mut self, wanted: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.threads = wanted.into_iter().map(Into::into).collect();
        self
    }
}

/// Blocks allocated on one thread and freed on another.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ThreadFlow {
    /// The allocating thread.
    pub from: u64,
    /// The freeing thread.
    pub to: u64,
    /// Blocks.
    pub blocks: u64,
    /// Bytes.
    pub bytes: u64,
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
    /// The session's bytes as decoded: its header and metadata, and each
    /// frame with its payload decompressed (see
    /// [`pulse_format::Reader::decoded_len`]). What reading and reporting
    /// it may cost is bounded per byte of this (`docs/RELIABILITY.md`).
    pub decoded_bytes: u64,
    /// Records read, by kind, in [`RecordKind::ALL`] order.
    pub record_counts: [u64; RecordKind::ALL.len()],
    /// Allocation totals and the live set.
    pub memory: MemoryTotals,
    /// Time per scope, by scope id.
    pub scope_times: BTreeMap<u32, ScopeTime>,
    /// The call tree, every thread merged.
    pub call_tree: CallTree,
    /// Allocations per site, by site id (0: no stack captured).
    pub sites: BTreeMap<u32, SiteStats>,
    /// Site stacks and their symbols.
    pub symbols: Symbols,
    /// Scope definitions, by id.
    pub scopes: BTreeMap<u32, ScopeInfo>,
    /// Threads, by id.
    pub threads: BTreeMap<u64, ThreadInfo>,
    /// Bytes allocated on one thread and freed on another, by pair of threads.
    pub flows: Vec<ThreadFlow>,
    /// What was odd in the stream.
    pub anomalies: Anomalies,
    /// The session's length in nanoseconds.
    pub duration_ns: u64,
    /// Ticks per nanosecond used for every conversion.
    pub ticks_per_ns: f64,
    /// Allocations and reallocations recorded with a stack, every thread's.
    pub stacked_events: u64,
    /// Each site's live blocks at evenly spaced moments, the end last (in
    /// a merged session, moments of the site's own run).
    pub site_history: HashMap<u32, Vec<u32>>,
    /// The live heap over time, globally and per allocating thread.
    pub timeline: Timeline,
    /// Set when the profile was read for some threads only.
    pub selection: Option<Selection>,
    /// The heap by the scope that was innermost when each block was
    /// allocated, by scope id (0: outside every scope).
    pub scope_memory: BTreeMap<u32, ScopeMemory>,
}

/// The blocks allocated while a scope was the innermost one on their thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScopeMemory {
    /// The most bytes of them live at once.
    pub peak_live_bytes: u64,
    /// Bytes of them still live at the end.
    pub live_bytes_at_end: u64,
    /// Blocks of them still live at the end.
    pub live_blocks_at_end: u64,
}

impl Profile {
    /// Reads and replays the session file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, Error> {
        Profile::load_with_progress(path, &mut |_, _| {})
    }

    /// [`Profile::load`], calling `progress(bytes read, file size)` as it
    /// reads (for a progress bar; the library prints nothing).
    pub fn load_with_progress(
        path: impl AsRef<Path>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Profile, Error> {
        Profile::load_with(path, &LoadOptions::default(), progress)
    }

    /// [`Profile::load_with_progress`] with [`LoadOptions`]. Asking for
    /// threads the session does not have is an error that lists those it has.
    pub fn load_with(
        path: impl AsRef<Path>,
        opts: &LoadOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Profile, Error> {
        let path = path.as_ref();
        if path.is_dir() {
            return Err(Error::IsDirectory(path.to_path_buf()));
        }
        let file =
            File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let total = file.metadata().map_or(0, |m| m.len());
        let counting = Counting { inner: file, read: 0, total, progress };
        let profile = Profile::read_with(BufReader::with_capacity(1 << 20, counting), opts)
            .map_err(|source| match source {
                pulse_format::Error::Io(source) => Error::Io { path: path.to_path_buf(), source },
                source => Error::Format { path: path.to_path_buf(), source },
            })?;
        match &profile.selection {
            Some(s) if s.kept.is_empty() => Err(Error::NoSuchThread {
                path: path.to_path_buf(),
                wanted: s.wanted.join(", "),
                threads: s.all.iter().map(|(id, name)| format!("#{id} {name}")).collect(),
            }),
            _ => Ok(profile),
        }
    }

    /// Reads and replays a session from any reader.
    pub fn read(input: impl Read) -> Result<Profile, pulse_format::Error> {
        Profile::read_with(input, &LoadOptions::default())
    }

    /// [`Profile::read`] with [`LoadOptions`]. Threads asked for that the
    /// session does not have are not an error here: the profile's
    /// [`Selection`] says which matched.
    pub fn read_with(input: impl Read, opts: &LoadOptions) -> Result<Profile, pulse_format::Error> {
        let mut reader = Reader::new(input)?;
        let mut state = State::default();
        if !opts.threads.is_empty() {
            state.filter =
                Some(ThreadFilter { wanted: opts.threads.clone(), ..Default::default() });
        }
        // A merge of runs keeps each run's live history apart: a run's
        // sites are judged over its own stretch of the clock, with its own
        // samples, as when it was read alone.
        state.runs = crate::merge::merged_runs(reader.metadata());
        if state.runs.len() > MAX_RUN_HISTORIES {
            state.runs.clear();
        }
        state.run_histories = vec![History::default(); state.runs.len()];
        state.run_sites = vec![Vec::new(); state.runs.len()];
        if let AllocMode::Sample { mean_bytes } = reader.metadata().alloc_mode {
            state.sample_bytes = Some(mean_bytes.max(1) as f64);
        }
        let ending = replay::replay(&mut reader, &mut state)?;
        Ok(state.finish(reader.metadata().clone(), reader.version(), ending))
    }

    /// Records read of `kind`.
    pub fn count(&self, kind: RecordKind) -> u64 {
        self.record_counts[kind.index()]
    }

    /// `category::name` of scope `id`, or its name alone when it has no category.
    pub fn display_name(&self, id: u32) -> String {
        match self.scopes.get(&id) {
            Some(s) if !s.category.is_empty() => format!("{}::{}", s.category, s.name),
            _ => self.scope_name(id),
        }
    }

    /// The name of scope `id`, or `scope #id` if the session never defined it.
    pub fn scope_name(&self, id: u32) -> String {
        self.scopes.get(&id).map_or_else(|| format!("scope #{id}"), |s| s.name.clone())
    }

    /// The categories of the session's scopes, sorted, each once.
    pub fn categories(&self) -> Vec<String> {
        let all: std::collections::BTreeSet<&str> =
            self.scopes.values().map(|s| s.category.as_str()).filter(|c| !c.is_empty()).collect();
        all.into_iter().map(str::to_owned).collect()
    }

    /// Whether a filter on `category` (`pulse report --category`) matches
    /// a scope of this session, read from `path`: if not, the error names
    /// the categories it has, as one for a thread it does not have does.
    pub fn check_category(&self, path: impl AsRef<Path>, category: &str) -> Result<(), Error> {
        if self.scopes.values().any(|s| s.category == category) {
            return Ok(());
        }
        Err(Error::NoSuchCategory {
            path: path.as_ref().to_path_buf(),
            wanted: category.to_owned(),
            categories: self.categories(),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Block {
    size: u64,
    /// When it was allocated.
    ts: u64,
    /// Its site's index in the replay's site table.
    site: u32,
    /// The innermost scope open on its thread when it was allocated.
    scope: u32,
    /// The replay's index of the thread that allocated it: the block
    /// counts in that thread's live set whichever thread frees it.
    thread: u32,
}

/// Allocations made at one site (one distinct stack).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteStats {
    /// Blocks allocated here. In a sampled session, an estimate: the
    /// sampled allocations weighted by the inverse of their chance, scaled
    /// so that the sites add up to the exact total; site 0 (allocations
    /// whose stack was not sampled) then has none, only its live blocks.
    pub allocs: u64,
    /// Bytes allocated here, reallocations' new sizes included.
    pub bytes: u64,
    /// Reallocations made here.
    pub reallocs: u64,
    /// The largest single request.
    pub max_size: u64,
    /// Blocks from here still live at the end.
    pub live_blocks_at_end: u64,
    /// Bytes from here still live at the end.
    pub live_bytes_at_end: u64,
    /// Lifetimes of the blocks from here that were freed, in clock ticks, in
    /// coarse buckets (percentiles within 12.5 %)
    /// (see [`Profile::ticks_per_ns`]; [`SiteStats::freed_within`] converts).
    pub lifetimes: Histogram,
    /// Blocks freed by their thread before it allocated anything else
    /// (heaptrack's "temporary" allocations).
    pub temporary: u64,
    /// The most bytes from here live at once.
    pub peak_live_bytes: u64,
    /// Blocks from here live at that moment.
    pub peak_live_blocks: u64,
    /// Bytes from here live at the moment of the session's peak.
    pub bytes_at_peak: u64,
    /// Blocks from here live at that moment.
    pub blocks_at_peak: u64,
}

impl SiteStats {
    /// Blocks from here freed within `ns` nanoseconds of their allocation.
    pub fn freed_within(&self, ns: u64, ticks_per_ns: f64) -> u64 {
        self.lifetimes.count_at_most((ns as f64 * ticks_per_ns) as u64)
    }
}

/// Hashes a block address so that nearby addresses land in nearby buckets
/// (the low bits are the address's own, above its 8-byte granularity, with
/// the higher bits folded in), while the top bits — which the table uses to
/// tell keys of one bucket group apart — come from a multiplicative mix.
/// Blocks allocated and freed close together in time are close in memory
/// in real allocators, so the live set's table is touched in few cache
/// lines rather than one line at random per event.
#[derive(Debug, Default, Clone, Copy)]
struct BuildAddrHasher;

impl std::hash::BuildHasher for BuildAddrHasher {
    type Hasher = AddrHasher;
    fn build_hasher(&self) -> AddrHasher {
        AddrHasher(0)
    }
}

#[derive(Debug)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    #[inline]
    fn write_u64(&mut self, addr: u64) {
        // Shifted copies of the higher bits folded into the lower ones: a
        // bijection, so no two addresses share a hash, and a page's blocks
        // (or a slab's) keep their order in the table.
        let x = addr >> 3;
        let low = x ^ (x >> 9) ^ (x >> 17) ^ (x >> 25) ^ (x >> 37);
        let mix = addr.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = (low & (u64::MAX >> 7)) | (mix & !(u64::MAX >> 7));
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Factors for a site's allocations, reallocations and bytes (see
/// `State::sample_scale`): for the sites with a stack, and for site 0.
#[derive(Debug, Clone, Copy)]
struct SampleScale {
    sampled: (f64, f64, f64),
    unsampled: (f64, f64, f64),
}

/// Merged runs beyond which a merge's live history is kept as one (each
/// run's history costs as much as the whole session's).
const MAX_RUN_HISTORIES: usize = 64;

/// Running per-site sums; weights are fractional in a sampled session.
///
/// Laid out in declaration order, cache line by cache line: the first
/// holds what every allocation and free at the site changes, the rest what
/// only one of them does, so that a site costs few lines to touch.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct SiteSums {
    epoch: u64,
    live_bytes: u64,
    live_blocks: u64,
    peak_live_bytes: u64,
    peak_live_blocks: u64,
    /// Bytes and blocks live when the global peak of epoch `epoch` happened.
    at_peak: (u64, u64),
    allocs: f64,
    bytes: f64,
    max_size: u64,
    temporary: u64,
    reallocs: f64,
    lifetimes: Histogram,
}

impl Default for SiteSums {
    fn default() -> Self {
        // One per site: coarse buckets keep thousands of them in cache.
        SiteSums {
            allocs: 0.0,
            bytes: 0.0,
            reallocs: 0.0,
            max_size: 0,
            lifetimes: Histogram::coarse(),
            temporary: 0,
            live_bytes: 0,
            live_blocks: 0,
            peak_live_bytes: 0,
            peak_live_blocks: 0,
            at_peak: (0, 0),
            epoch: 0,
        }
    }
}

/// The replay's running state, in ticks.
///
/// Per-thread and per-site figures live in dense tables indexed by the
/// replay's own small indices (the merger's thread index, [`DenseIds`] for
/// sites), so an event costs one hash lookup — the live block's — and no
/// other: ids are small in practice but not by contract, and a damaged
/// file's huge id costs a hash entry, not a huge table.
#[derive(Debug, Default)]
struct State {
    memory: MemoryTotals,
    peak_ts: u64,
    live: std::collections::HashMap<u64, Block, BuildAddrHasher>,
    live_bytes: u64,
    time: Timing,
    scopes: BTreeMap<u32, ScopeInfo>,
    /// Site ids → indices into `site_sums`.
    site_ids: DenseIds,
    site_sums: Vec<SiteSums>,
    symbols: Symbols,
    /// The mean sampling interval in bytes of a sampled session.
    sample_bytes: Option<f64>,
    stacked_events: u64,
    history: History,
    /// A merged session's runs, and a history of each (see `read_with`).
    runs: Vec<crate::merge::Run>,
    run_histories: Vec<History>,
    /// The sites each run's history follows (site indices): its own,
    /// rather than every site of the session in each of up to 64 runs.
    run_sites: Vec<Vec<usize>>,
    /// The run the replay is in.
    run_ix: usize,
    timeline: TimelineBuilder,
    /// By the merger's thread index.
    threads: Vec<ThreadState>,
    /// (allocating, freeing) thread index → (blocks, bytes) freed across threads.
    flows: HashMap<(u32, u32), (u64, u64)>,
    /// Incremented at every new global peak: a site whose live bytes change
    /// in a later epoch first saves what it had at the peak (see `site_live`).
    peak_epoch: u64,
    anomalies: Anomalies,
    first_ts: Option<u64>,
    last_ts: u64,
    /// Set when only some threads are replayed.
    filter: Option<ThreadFilter>,
    /// Per scope id (dense, small): live bytes, live blocks, peak bytes.
    scope_live: Vec<(u64, u64, u64)>,
}

/// One thread's part of the replay.
#[derive(Debug, Default)]
struct ThreadState {
    id: u64,
    /// Its figures, from its first event in this view on.
    info: Option<ThreadInfo>,
    /// Whether a partial view keeps it, once decided.
    kept: Option<bool>,
    /// The innermost scope open on it (what `Timing::current` says), kept
    /// here so that an allocation does not look it up.
    scope: u32,
    /// Blocks it allocated: bytes and blocks live now, and the peak bytes;
    /// `counted` once a block of its was.
    live_bytes: u64,
    live_blocks: u64,
    peak_bytes: u64,
    counted: bool,
    /// Its last allocation, until it allocates again or frees it.
    last_alloc: Option<u64>,
    /// The timestamp of its last event (of its own: not a counter sample).
    last_ts: u64,
    /// The old block of a moving realloc, released ahead of its record,
    /// with its birth.
    released: Option<(u64, u64)>,
}

/// The threads a replay keeps, decided at each thread's first event (its
/// `ThreadStart`, which carries its name).
#[derive(Debug, Default)]
struct ThreadFilter {
    wanted: Vec<String>,
    /// Every thread seen: kept or not, and its name.
    seen: BTreeMap<u64, (bool, String)>,
}

impl ThreadFilter {
    fn keeps(&mut self, thread: u64, name: &str) -> bool {
        if let Some((keep, _)) = self.seen.get(&thread) {
            return *keep;
        }
        let id = thread.to_string();
        let keep = self.wanted.iter().any(|w| {
            *w == id || w.strip_prefix('#') == Some(id.as_str()) || (!name.is_empty() && *w == name)
        });
        self.seen.insert(thread, (keep, name.to_owned()));
        keep
    }
}

impl Visitor for State {
    fn definition(&mut self, r: Record) {
        match r {
            Record::ScopeDef { scope, name, category, description, priority } => {
                let (name, long_name) = cut_scope_name(name);
                let (category, long_category) = cut_scope_name(category);
                self.anomalies.long_scope_names += u64::from(long_name) + u64::from(long_category);
                self.scopes
                    .insert(scope, ScopeInfo { id: scope, name, category, description, priority });
            }
            Record::Span { ts, start_ts, scope } => self.time.span(scope, start_ts, ts),
            Record::SiteDef { site, frames } => self.symbols.add_site(site, frames),
            Record::Symbol { addr, function, file, line } => {
                self.symbols.add_symbol(addr, Frame { function, file, line });
            }
            _ => {}
        }
    }

    #[inline(always)]
    fn event(&mut self, thread: Thread, e: Event) {
        let ts = e.ts();
        self.arrive(thread, ts);
        if self.filter.is_some() && !self.kept(thread, "") {
            self.foreign(thread, e);
            return;
        }
        let t = &mut self.threads[thread.ix];
        // Only the thread's own events: a periodic counter sample carries
        // the collector's clock, not the thread's.
        self.anomalies.clock_steps_back += u64::from(ts < t.last_ts);
        t.last_ts = ts;
        t.info
            .get_or_insert_with(|| ThreadInfo { id: thread.id, ..ThreadInfo::default() })
            .events += 1;
        match e {
            Event::Alloc { ts, addr, size, weight, site, .. } => {
                let scope = t.scope;
                t.last_alloc = Some(addr);
                self.memory.allocs = self.memory.allocs.saturating_add(weight);
                self.memory.bytes_allocated = self.memory.bytes_allocated.saturating_add(size);
                self.time.alloc_in(scope, size);
                self.stacked_events += u64::from(site != NO_SITE);
                let w = self.site_weight(site, size) * weight as f64;
                let s = self.site(site);
                let sums = &mut self.site_sums[s];
                sums.allocs += w;
                sums.bytes += w * size as f64;
                sums.max_size = sums.max_size.max(size);
                self.insert(thread, addr, size, s, ts, ts);
            }
            Event::AllocFailed { .. } => self.memory.failed += 1,
            Event::Free { addr, .. } if self.filter.is_some() && !self.live.contains_key(&addr) => {
                // Another thread's block, outside this view.
            }
            Event::Free { ts, addr, size } => {
                self.memory.frees += 1;
                self.memory.bytes_freed = self.memory.bytes_freed.saturating_add(size);
                self.remove(thread, addr, ts, true);
            }
            Event::Realloc { ts, old_addr, old_size, new_addr, new_size, site, .. } => {
                let released = t.released.take();
                t.last_alloc = None;
                self.stacked_events += u64::from(site != NO_SITE);
                // Sampled by the bytes it counts (its new size), as the
                // allocator's sampler does: a shrink is sampled too.
                let w = self.site_weight(site, new_size.max(1));
                let s = self.site(site);
                let sums = &mut self.site_sums[s];
                sums.reallocs += w;
                sums.bytes += w * new_size as f64;
                sums.max_size = sums.max_size.max(new_size);
                self.memory.reallocs += 1;
                self.memory.bytes_allocated = self.memory.bytes_allocated.saturating_add(new_size);
                // The block lives on at its new address: it keeps its birth.
                let birth = match released {
                    Some((addr, birth)) if addr == old_addr => Some(birth),
                    // Another thread's block, outside this view: it enters it here.
                    _ if self.filter.is_some() && !self.live.contains_key(&old_addr) => None,
                    _ => Some(self.remove(thread, old_addr, ts, false).map_or(ts, |b| b.ts)),
                };
                if birth.is_some() {
                    self.memory.bytes_freed = self.memory.bytes_freed.saturating_add(old_size);
                }
                let birth = birth.unwrap_or(ts);
                self.insert(thread, new_addr, new_size, s, ts, birth);
            }
            Event::ScopeEnter { ts, scope } => {
                self.time.enter(thread.id, scope, ts);
                self.threads[thread.ix].scope = self.time.current(thread.id);
            }
            Event::ScopeExit { ts, scope } => {
                self.time.exit(thread.id, scope, ts);
                self.threads[thread.ix].scope = self.time.current(thread.id);
            }
            Event::Pause { ts } => self.time.pause(thread.id, ts),
            Event::Resume { ts } => self.time.resume(thread.id, ts),
            Event::Span { ts, start_ts, scope } => self.time.span(scope, start_ts, ts),
            Event::ThreadEnd { .. } => {}
        }
    }

    fn record(&mut self, thread: Thread, r: Record) {
        let Some(ts) = r.ts() else { return self.definition(r) };
        self.arrive(thread, ts);
        let name = match &r {
            Record::ThreadStart { name, .. } => name.as_str(),
            _ => "",
        };
        if self.filter.is_some() && !self.kept(thread, name) {
            // Neither a name nor a counter reading touches the kept threads' blocks.
            return;
        }
        let info = self.threads[thread.ix]
            .info
            .get_or_insert_with(|| ThreadInfo { id: thread.id, ..ThreadInfo::default() });
        match r {
            Record::ThreadStart { name, .. } => {
                info.events += 1;
                info.name = name;
            }
            Record::Counters { scope, values, .. } => {
                info.events += 1;
                self.time.counters(thread.id, scope, &values);
            }
            // The merger sends only those two here.
            _ => {}
        }
    }

    fn realloc_release(&mut self, thread: Thread, ts: u64, addr: u64) {
        self.thread(thread);
        self.timeline.advance(ts);
        if self.kept(thread, "") {
            self.release_for_realloc(thread, addr, ts);
        } else if let Some(b) = self.live.get(&addr) {
            // A kept thread's block, moved by another thread: it leaves the view.
            let size = b.size;
            self.leave_view(thread, addr, size, ts);
        }
    }
}

impl State {
    /// The clock reached `ts` with an event of `thread`.
    #[inline]
    fn arrive(&mut self, thread: Thread, ts: u64) {
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
            self.timeline.start(ts);
        }
        self.timeline.advance(ts);
        self.last_ts = self.last_ts.max(ts);
        if self.runs.is_empty() {
            if self.history.due(ts) {
                self.sample_history(ts);
            }
        } else {
            self.arrive_in_run(ts);
        }
        self.thread(thread);
    }

    /// `arrive`'s sampling in a merged session: into the history of the
    /// run `ts` falls in (a merge's clock is in nanoseconds).
    #[cold]
    fn arrive_in_run(&mut self, ts: u64) {
        while self.run_ix + 1 < self.runs.len() && ts > self.runs[self.run_ix].end_ns {
            self.run_ix += 1;
        }
        if self.run_histories[self.run_ix].due(ts) {
            let sums = &self.site_sums;
            let live: Vec<u64> =
                self.run_sites[self.run_ix].iter().map(|&i| sums[i].live_blocks).collect();
            self.run_histories[self.run_ix].catch_up(ts, &live);
        }
    }

    #[cold]
    fn sample_history(&mut self, ts: u64) {
        let live: Vec<u64> = self.site_sums.iter().map(|s| s.live_blocks).collect();
        self.history.catch_up(ts, &live);
    }

    /// Makes sure `thread` has its state.
    #[inline]
    fn thread(&mut self, thread: Thread) {
        if thread.ix >= self.threads.len() {
            self.threads.resize_with(thread.ix + 1, ThreadState::default);
        }
        self.threads[thread.ix].id = thread.id;
    }

    /// Whether the view keeps `thread` (decided at its first event, with
    /// the name its `ThreadStart` carries).
    #[inline]
    fn kept(&mut self, thread: Thread, name: &str) -> bool {
        let Some(f) = &mut self.filter else { return true };
        let t = &mut self.threads[thread.ix];
        *t.kept.get_or_insert_with(|| f.keeps(thread.id, name))
    }

    /// The index of `site` in `site_sums`.
    #[inline]
    fn site(&mut self, site: u32) -> usize {
        let (i, new) = self.site_ids.index(site);
        if new {
            self.site_sums.push(SiteSums::default());
            if !self.runs.is_empty() {
                self.join_run(site, i);
            }
        }
        i
    }

    /// A merged session's site `id`, at index `i`, joins the history of
    /// its run: the last whose range of site ids holds it (a merge's own
    /// ranges follow each other), run 0 for site 0.
    #[cold]
    fn join_run(&mut self, id: u32, i: usize) {
        let runs = &self.runs;
        let holds = |k: usize| {
            let lo = if k == 0 { 0 } else { runs[k - 1].last_site };
            id > lo && id <= runs[k].last_site || k == 0 && id == 0
        };
        if let Some(k) = (0..runs.len()).rev().find(|&k| holds(k)) {
            self.run_sites[k].push(i);
        }
    }

    /// An event of a thread left out of the replay: only what it does to
    /// the kept threads' blocks counts.
    fn foreign(&mut self, thread: Thread, e: Event) {
        // pulse's own cost is the session's, whatever the view.
        if let Event::Alloc { site, .. } | Event::Realloc { site, .. } = e {
            self.stacked_events += u64::from(site != NO_SITE);
        }
        match e {
            Event::Free { ts, addr, size, .. } if self.live.contains_key(&addr) => {
                self.leave_view(thread, addr, size, ts);
            }
            Event::Realloc { ts, old_addr, old_size, .. } if self.live.contains_key(&old_addr) => {
                self.leave_view(thread, old_addr, old_size, ts);
            }
            _ => {}
        }
    }

    /// A kept thread's block at `addr` is freed, or moved, by a thread left out.
    fn leave_view(&mut self, thread: Thread, addr: u64, size: u64, ts: u64) {
        self.memory.frees += 1;
        self.memory.bytes_freed = self.memory.bytes_freed.saturating_add(size);
        self.remove(thread, addr, ts, true);
    }

    fn release_for_realloc(&mut self, thread: Thread, addr: u64, ts: u64) {
        if self.filter.is_some() && !self.live.contains_key(&addr) {
            // Another thread's block, outside this view.
            return;
        }
        let Some(b) = self.remove(thread, addr, ts, false) else {
            self.threads[thread.ix].released = Some((addr, self.last_ts));
            return;
        };
        // The block is out of the heap until its new address is in, which
        // may be a while: the timeline sees the heap without it.
        let own = self.threads[b.thread as usize].live_bytes;
        self.timeline.record(self.live_bytes, b.thread as usize, own);
        self.threads[thread.ix].released = Some((addr, b.ts));
    }

    /// The factors that make a sampled session's per-site estimates add up
    /// to its exact totals: the sampled sites' weighted sums are unbiased
    /// estimates of the whole, so they are scaled to it (a ratio estimate),
    /// and the unsampled remainder (site 0) counts for nothing; it keeps
    /// only its live blocks. 1 for every other session.
    fn sample_scale(&self, site_ids: &[u32]) -> SampleScale {
        let one = (1.0, 1.0, 1.0);
        if self.sample_bytes.is_none() {
            return SampleScale { sampled: one, unsampled: one };
        }
        let (mut allocs, mut reallocs, mut bytes) = (0.0, 0.0, 0.0);
        for (id, t) in site_ids.iter().zip(&self.site_sums) {
            if *id != NO_SITE {
                (allocs, reallocs, bytes) =
                    (allocs + t.allocs, reallocs + t.reallocs, bytes + t.bytes);
            }
        }
        let ratio = |exact: u64, sum: f64| if sum > 0.0 { exact as f64 / sum } else { 0.0 };
        SampleScale {
            sampled: (
                ratio(self.memory.allocs, allocs),
                ratio(self.memory.reallocs, reallocs),
                ratio(self.memory.bytes_allocated, bytes),
            ),
            unsampled: (0.0, 0.0, 0.0),
        }
    }

    /// How many allocations one at `site` of `size` bytes stands for: 1, or
    /// in a sampled session the inverse of its chance of being sampled
    /// (a byte-rate Poisson sample: `1 - exp(-size / interval)`), which makes
    /// the per-site sums unbiased.
    #[inline]
    fn site_weight(&self, site: u32, size: u64) -> f64 {
        match self.sample_bytes {
            Some(interval) if site != NO_SITE => {
                1.0 / (1.0 - (-(size as f64) / interval).exp()).max(f64::MIN_POSITIVE)
            }
            _ => 1.0,
        }
    }

    /// `thread` has the block at `addr` from `ts` on (born at `birth`, earlier
    /// for a reallocated block), from the site at index `site`.
    #[inline(always)]
    fn insert(&mut self, thread: Thread, addr: u64, size: u64, site: usize, ts: u64, birth: u64) {
        let t = &mut self.threads[thread.ix];
        let scope = t.scope;
        if let Some(info) = &mut t.info {
            info.bytes_allocated = info.bytes_allocated.saturating_add(size);
        }
        let block = Block { size, ts: birth, site: site as u32, scope, thread: thread.ix as u32 };
        if let Some(old) = self.live.insert(addr, block) {
            self.drop_reused(old);
        }
        self.site_live(site, size, true);
        self.scope_live(scope, size, true);
        let t = &mut self.threads[thread.ix];
        t.counted = true;
        t.live_bytes = t.live_bytes.saturating_add(size);
        t.live_blocks += 1;
        t.peak_bytes = t.peak_bytes.max(t.live_bytes);
        let own = t.live_bytes;
        self.live_bytes = self.live_bytes.saturating_add(size);
        // `>=`: of several equal peaks, the latest is reported (as dhat does).
        if self.live_bytes >= self.memory.peak_bytes {
            self.memory.peak_bytes = self.live_bytes;
            self.memory.peak_blocks = self.live.len() as u64;
            self.peak_ts = ts;
            self.peak_epoch += 1;
        }
        self.timeline.record(self.live_bytes, thread.ix, own);
    }

    /// A block dropped from the live set by a new one at its address.
    #[cold]
    fn drop_reused(&mut self, old: Block) {
        self.scope_live(old.scope, old.size, false);
        self.anomalies.reused_live_addresses += 1;
        self.live_bytes = self.live_bytes.saturating_sub(old.size);
        self.site_live(old.site as usize, old.size, false);
        // The old block is gone from every live count, its site's
        // history included (it samples the site's live blocks): else the
        // history climbs where the live set does not, and a cache reads
        // as a leak.
        let t = &mut self.threads[old.thread as usize];
        t.counted = true;
        t.live_bytes = t.live_bytes.saturating_sub(old.size);
        t.live_blocks = t.live_blocks.saturating_sub(1);
    }

    /// A block of `size` bytes allocated in `scope` becomes live (`add`) or not.
    #[inline]
    fn scope_live(&mut self, scope: u32, size: u64, add: bool) {
        // Scope ids are small and dense; a damaged file's huge id is not
        // worth a huge table.
        let Some(i) = usize::try_from(scope).ok().filter(|i| *i < 1 << 20) else { return };
        if i >= self.scope_live.len() {
            if !add {
                return;
            }
            self.scope_live.resize(i + 1, (0, 0, 0));
        }
        let s = &mut self.scope_live[i];
        if add {
            s.0 = s.0.saturating_add(size);
            s.1 += 1;
            s.2 = s.2.max(s.0);
        } else {
            s.0 = s.0.saturating_sub(size);
            s.1 = s.1.saturating_sub(1);
        }
    }

    /// A block of `size` bytes from the site at index `site` becomes live
    /// (`add`) or not. The heap at the peak, exactly and in constant time:
    /// the first change to a site after a new global peak saves the site's
    /// figures as they were at that peak; a site unchanged since the last
    /// peak still has them.
    #[inline]
    fn site_live(&mut self, site: usize, size: u64, add: bool) {
        let s = &mut self.site_sums[site];
        if s.epoch < self.peak_epoch {
            s.at_peak = (s.live_bytes, s.live_blocks);
            s.epoch = self.peak_epoch;
        }
        if add {
            s.live_bytes = s.live_bytes.saturating_add(size);
            s.live_blocks += 1;
            if s.live_bytes >= s.peak_live_bytes {
                s.peak_live_bytes = s.live_bytes;
                s.peak_live_blocks = s.live_blocks;
            }
        } else {
            s.live_bytes = s.live_bytes.saturating_sub(size);
            s.live_blocks = s.live_blocks.saturating_sub(1);
        }
        self.timeline.site(site, s.live_bytes);
    }

    /// `thread` gives up the block at `addr` at `ts`: `freed`, or moved by a
    /// reallocation, which does not end its life.
    #[inline(always)]
    fn remove(&mut self, thread: Thread, addr: u64, ts: u64, freed: bool) -> Option<Block> {
        let Some(b) = self.live.remove(&addr) else {
            self.anomalies.unknown_frees += 1;
            return None;
        };
        let site = b.site as usize;
        if freed {
            let temporary = self.threads[thread.ix].last_alloc.take() == Some(addr);
            let sums = &mut self.site_sums[site];
            sums.lifetimes.record(ts.saturating_sub(b.ts));
            sums.temporary += u64::from(temporary);
        }
        self.live_bytes = self.live_bytes.saturating_sub(b.size);
        self.site_live(site, b.size, false);
        self.scope_live(b.scope, b.size, false);
        let owner = &mut self.threads[b.thread as usize];
        owner.counted = true;
        owner.live_bytes = owner.live_bytes.saturating_sub(b.size);
        owner.live_blocks = owner.live_blocks.saturating_sub(1);
        if freed {
            let own = owner.live_bytes;
            self.timeline.record(self.live_bytes, b.thread as usize, own);
        }
        if b.thread as usize != thread.ix {
            let f = self.flows.entry((b.thread, thread.ix as u32)).or_default();
            f.0 += 1;
            f.1 = f.1.saturating_add(b.size);
        }
        Some(b)
    }

    fn finish(mut self, meta: Metadata, version: u16, end: replay::Ending) -> Profile {
        let end_ts = end.trailer.as_ref().map_or(self.last_ts, |t| t.end_ts.max(self.last_ts));
        self.time.close_all(end_ts);
        self.anomalies.open_at_end = self.time.open_at_end;
        self.anomalies.unmatched_exits = self.time.unmatched_exits;
        self.anomalies.beyond_call_tree = self.time.beyond_tree;
        self.anomalies.unsymbolized_addresses = self.symbols.unsymbolized_addresses();
        self.anomalies.undefined_sites = self
            .site_ids
            .ids()
            .iter()
            .filter(|&&id| id != NO_SITE && !self.symbols.defines(id))
            .count() as u64;
        let tpn = end
            .trailer
            .as_ref()
            .map(|t| t.ticks_per_ns)
            .filter(|t| pulse_format::ClockInfo::plausible(*t))
            .unwrap_or(meta.clock.ticks_per_ns);
        let ns = |ticks: u64| (ticks as f64 / tpn).round() as u64;
        let first = self.first_ts.unwrap_or(end_ts);
        self.memory.peak_at_ns = ns(self.peak_ts.saturating_sub(first));
        let site_ids = self.site_ids.ids();
        let site_live: Vec<u64> = self.site_sums.iter().map(|s| s.live_blocks).collect();
        let scale = self.sample_scale(site_ids);
        let mut sites: BTreeMap<u32, SiteStats> = site_ids
            .iter()
            .zip(&self.site_sums)
            .map(|(id, t)| {
                let f = if *id == NO_SITE { scale.unsampled } else { scale.sampled };
                let stats = SiteStats {
                    allocs: (t.allocs * f.0).round() as u64,
                    bytes: (t.bytes * f.2).round() as u64,
                    reallocs: (t.reallocs * f.1).round() as u64,
                    max_size: t.max_size,
                    lifetimes: t.lifetimes.clone(),
                    temporary: t.temporary,
                    peak_live_bytes: t.peak_live_bytes,
                    peak_live_blocks: t.peak_live_blocks,
                    bytes_at_peak: if t.epoch == self.peak_epoch {
                        t.at_peak.0
                    } else {
                        t.live_bytes
                    },
                    blocks_at_peak: if t.epoch == self.peak_epoch {
                        t.at_peak.1
                    } else {
                        t.live_blocks
                    },
                    ..SiteStats::default()
                };
                (*id, stats)
            })
            .collect();
        for b in self.live.values() {
            let s = sites.entry(site_ids[b.site as usize]).or_default();
            s.live_blocks_at_end += 1;
            s.live_bytes_at_end = s.live_bytes_at_end.saturating_add(b.size);
        }
        self.memory.live_bytes_at_end = self.live_bytes;
        let mut threads: BTreeMap<u64, ThreadInfo> = BTreeMap::new();
        for t in &mut self.threads {
            if let Some(info) = t.info.take() {
                threads.insert(t.id, info);
            }
        }
        for t in self.threads.iter().filter(|t| t.counted) {
            let info = threads
                .entry(t.id)
                .or_insert_with(|| ThreadInfo { id: t.id, ..ThreadInfo::default() });
            info.live_bytes_at_end = t.live_bytes;
            info.live_blocks_at_end = t.live_blocks;
            info.peak_live_bytes = t.peak_bytes;
        }
        let ids: Vec<u64> = self.threads.iter().map(|t| t.id).collect();
        let mut flows: Vec<ThreadFlow> = self
            .flows
            .iter()
            .map(|(&(from, to), &(blocks, bytes))| ThreadFlow {
                from: ids[from as usize],
                to: ids[to as usize],
                blocks,
                bytes,
            })
            .collect();
        flows.sort_by_key(|f| (f.from, f.to));
        self.memory.live_blocks_at_end = self.live.len() as u64;
        if meta.alloc_mode == AllocMode::Count {
            self.memory = counted_totals(end.trailer.as_ref());
        }
        let (scope_times, call_tree) = self.time.snapshot(ns);
        for (tid, scoped) in self.time.thread_scoped(ns) {
            if let Some(info) = threads.get_mut(&tid) {
                info.scoped_ns = scoped;
            }
        }
        let scope_memory = self
            .scope_live
            .iter()
            .enumerate()
            .filter(|(_, s)| s.2 > 0)
            .map(|(id, s)| {
                let m = ScopeMemory {
                    peak_live_bytes: s.2,
                    live_bytes_at_end: s.0,
                    live_blocks_at_end: s.1,
                };
                (id as u32, m)
            })
            .collect();
        let selection = self.filter.map(|f| Selection {
            wanted: f.wanted,
            kept: f.seen.iter().filter(|(_, (keep, _))| *keep).map(|(id, _)| *id).collect(),
            all: f.seen.into_iter().map(|(id, (_, name))| (id, name)).collect(),
        });
        let mut symbols = self.symbols;
        let dirs = meta.extra.iter().find(|(k, _)| k == crate::sites::PULSE_SOURCES_KEY);
        symbols.set_pulse_dirs(dirs.map(|(_, v)| v.as_str()));
        symbols.budget(crate::sites::text_budget(end.decoded_len), sites.keys().copied());
        let timeline = {
            let root = crate::sites::project_root(&meta.program);
            let key = |site: usize| symbols.row_key(site_ids[site], &root);
            let live = if meta.alloc_mode == AllocMode::Count { 0 } else { self.live_bytes };
            std::mem::take(&mut self.timeline).finish(tpn, &ids, live, key)
        };
        Profile {
            meta,
            version,
            trailer: end.trailer,
            truncated: end.truncated.map(|e| e.to_string()),
            chunks: end.chunks,
            decoded_bytes: end.decoded_len,
            record_counts: end.record_counts,
            memory: self.memory,
            scope_times,
            call_tree,
            sites,
            symbols,
            scopes: self.scopes,
            threads,
            flows,
            anomalies: self.anomalies,
            duration_ns: ns(end_ts.saturating_sub(first)),
            ticks_per_ns: tpn,
            stacked_events: self.stacked_events,
            site_history: if self.runs.is_empty() {
                self.history.finish(&site_live, site_ids)
            } else {
                // Each site's samples from its own run's history.
                let histories = std::mem::take(&mut self.run_histories);
                let mut all = HashMap::default();
                for (h, sites) in histories.into_iter().zip(&self.run_sites) {
                    let live: Vec<u64> = sites.iter().map(|&i| site_live[i]).collect();
                    let ids: Vec<u32> = sites.iter().map(|&i| site_ids[i]).collect();
                    all.extend(h.finish(&live, &ids));
                }
                all
            },
            timeline,
            selection,
            scope_memory,
        }
    }
}

/// The totals of a `count`-mode session: the allocator's own counters, from
/// the trailer (all zero if the file was cut before it).
fn counted_totals(t: Option<&Trailer>) -> MemoryTotals {
    let get = |k: &str| t.and_then(|t| t.extra(k)).unwrap_or(0);
    let m = MemoryTotals {
        allocs: get("allocs"),
        frees: get("frees"),
        reallocs: get("reallocs"),
        failed: get("alloc_failed"),
        bytes_allocated: get("bytes_allocated"),
        bytes_freed: get("bytes_freed"),
        counted_only: true,
        ..MemoryTotals::default()
    };
    MemoryTotals {
        live_bytes_at_end: m.bytes_allocated.saturating_sub(m.bytes_freed),
        live_blocks_at_end: m.allocs.saturating_sub(m.frees),
        ..m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(ts: u64, addr: u64, site: u32) -> Event {
        Event::Alloc { ts, addr, size: 16, align: 8, site, weight: 1 }
    }

    #[test]
    fn a_dense_heap_fills_the_live_tables_buckets_one_to_one() {
        use std::hash::{BuildHasher, Hasher};
        let hash = |addr: u64| {
            let mut h = BuildAddrHasher.build_hasher();
            h.write_u64(addr);
            h.finish()
        };
        // 2^16 blocks of 8 bytes from an aligned base: as many buckets.
        let base = 0x7f3a_1234_0000_0000u64;
        let mut seen = vec![false; 1 << 16];
        for i in 0..1u64 << 16 {
            let b = (hash(base + 8 * i) & 0xffff) as usize;
            assert!(!seen[b], "block {i} shares a bucket");
            seen[b] = true;
        }
        // The bits that tell a bucket's keys apart are mixed.
        let tags: std::collections::BTreeSet<u64> =
            (0..4096u64).map(|i| hash(base + 64 * i) >> 57).collect();
        assert!(tags.len() > 100, "{} tags", tags.len());
    }

    #[test]
    fn a_block_dropped_at_a_reused_address_leaves_its_sites_history() {
        let mut s = State::default();
        s.event(Thread { id: 1, ix: 0 }, alloc(10, 0x100, 7));
        // Another thread's allocation at the same address, replayed before
        // the free that released it: the old block is dropped.
        s.event(Thread { id: 2, ix: 1 }, alloc(20, 0x100, 7));
        assert_eq!(s.anomalies.reused_live_addresses, 1);
        let (site, _) = s.site_ids.index(7);
        assert_eq!(s.site_sums[site].live_blocks, 1);
        let live: Vec<u64> = s.site_sums.iter().map(|s| s.live_blocks).collect();
        let history = s.history.finish(&live, s.site_ids.ids());
        assert_eq!(history[&7].last(), Some(&1), "{:?}", history[&7]);
    }
}
