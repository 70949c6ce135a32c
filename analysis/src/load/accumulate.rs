//! The replay's accumulation: what each event of a session adds to the
//! aggregates a [`Profile`] holds, and the profile it becomes.

use std::collections::BTreeMap;

use pulse_format::{
    AllocMode, CounterInfo, DenseIds, Event, Metadata, Record, Timing, Trailer, NO_SITE,
};

use crate::load::deaths::{Away, Deaths};
use crate::load::live::{Block, LiveSet};
use crate::load::replay::{self, Thread, Visitor};
use crate::load::LoadOptions;
use crate::model::history::History;
use crate::model::profile::{
    cut_scope_name, Anomalies, Growth, MemoryTotals, Profile, ScopeInfo, ScopeMemory, Selection,
    SiteStats, ThreadFlow, ThreadInfo,
};
use crate::model::sites::{Frame, Symbols};
use crate::model::timeline::{Sites, TimelineBuilder, Track};

use rustc_hash::FxHashMap as HashMap;

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
/// Laid out in declaration order, in two cache lines that the processor
/// fetches as a pair (128 bytes, aligned): the first holds what every
/// allocation and free at the site reads and changes, the timeline's track
/// of the site included, the second what only an allocation, a
/// reallocation, or the site's first change after a new global peak does.
/// The frees' lifetimes are counted apart ([`Deaths`]).
#[derive(Debug, Clone, Default)]
#[repr(C, align(128))]
struct SiteSums {
    epoch: u64,
    live_bytes: u64,
    live_blocks: u64,
    peak_live_bytes: u64,
    track: Track,
    allocs: f64,
    bytes: f64,
    max_size: u64,
    peak_live_blocks: u64,
    /// Bytes and blocks live when the global peak of epoch `epoch` happened.
    at_peak: (u64, u64),
    reallocs: f64,
    /// Reallocations here that made their block smaller.
    shrinks: f64,
}

// Two cache lines: a site's figures are one miss an event, its neighbour's
// the next.
const _: () = assert!(std::mem::size_of::<SiteSums>() == 128);

impl Sites for Vec<SiteSums> {
    fn count(&self) -> usize {
        self.len()
    }

    fn track(&mut self, site: usize) -> (&mut Track, u64) {
        let s = &mut self[site];
        (&mut s.track, s.live_bytes)
    }
}

/// In a sampled session, the blocks and bytes a site's sampled live blocks
/// stand for: each block the inverse of its chance of being sampled, by its
/// size, as its allocation was weighed. Whole numbers, the blocks in
/// [`ESTIMATE_UNIT`]ths, so that a block's death takes off exactly what its
/// birth added, however many come and go.
#[derive(Debug, Default, Clone, Copy)]
struct Estimate {
    bytes: u64,
    blocks: u64,
    /// Bytes and blocks when the global peak of epoch `epoch` happened.
    at_peak: (u64, u64),
    epoch: u64,
}

/// The sampled blocks that must be live at the peak for the heap there to
/// be estimated by site (see `State::estimated_at_peak`).
const MIN_SAMPLED_AT_PEAK: u64 = 30;

/// The fraction of a block [`Estimate`] counts in.
const ESTIMATE_UNIT: f64 = 1024.0;

/// The replay's running state, in ticks.
///
/// Per-thread and per-site figures live in dense tables indexed by the
/// replay's own small indices (the merger's thread index, [`DenseIds`] for
/// sites), so an event costs one hash lookup — the live block's — and no
/// other: ids are small in practice but not by contract, and a damaged
/// file's huge id costs a hash entry, not a huge table.
#[derive(Debug, Default)]
pub(crate) struct State {
    memory: MemoryTotals,
    peak_ts: u64,
    live: LiveSet,
    live_bytes: u64,
    time: Timing,
    scopes: BTreeMap<u32, ScopeInfo>,
    /// Site ids → indices into `site_sums`.
    site_ids: DenseIds,
    site_sums: Vec<SiteSums>,
    /// By the same indices: the sites' frees.
    deaths: Deaths,
    symbols: Symbols,
    /// The mean sampling interval in bytes of a sampled session.
    sample_bytes: Option<f64>,
    /// In a sampled session, by site index: the allocations and
    /// reallocations whose stack was sampled, unweighted (what a site's
    /// lifetimes and live blocks are counts of). Empty in other sessions.
    sampled: Vec<u64>,
    /// By the same indices: the variance of each site's bytes estimate,
    /// bytes squared (see `count_sampled_at`).
    bytes_variance: Vec<f64>,
    /// In a sampled session, by site index: the fraction of a block its
    /// freed blocks' weights have left over, carried to the next, so that
    /// whole weights add up to the fractional ones.
    carried: Vec<f64>,
    /// In a sampled session, by site index: what the site's sampled live
    /// blocks stand for (see [`Estimate`]). Empty in other sessions.
    estimates: Vec<Estimate>,
    stacked_events: u64,
    history: History,
    /// A merged session's runs, and a history of each (see `read_with`).
    runs: Vec<crate::load::merge::Run>,
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
    /// The most values a `Counters` record held: what names the readings
    /// of a session cut before its trailer said which counters it opened.
    counter_width: usize,
    /// Set when only some threads are replayed.
    filter: Option<ThreadFilter>,
    /// Per scope id (dense, small): live bytes, live blocks, peak bytes.
    scope_live: Vec<(u64, u64, u64)>,
    /// (the site index that made a block, the site index that grew it) →
    /// the reallocations there that made it larger.
    growth: HashMap<(u32, u32), Growing>,
}

/// A block's origin not known: the replay did not hold it.
const NO_ORIGIN: u32 = u32::MAX >> 1;

/// The bit of a block's `origin` that says a reallocation has shrunk it.
const SHRUNK: u32 = 1 << 31;

/// The reallocations at one site of the blocks one site made.
#[derive(Debug, Default, Clone, Copy)]
struct Growing {
    /// Those that made the block larger, their new sizes and the largest.
    reallocs: f64,
    bytes: f64,
    max_size: u64,
    /// Those of `reallocs` of a block a reallocation had shrunk before.
    regrown: f64,
    /// Those that made the block smaller.
    shrinks: f64,
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
    /// The old block of a moving realloc, released ahead of its record:
    /// its address, birth and origin ([`NO_ORIGIN`] if it was not live).
    released: Option<(u64, u64, u32)>,
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
                self.count_sampled(s, w, size);
                let sums = &mut self.site_sums[s];
                sums.allocs += w;
                sums.bytes += w * size as f64;
                sums.max_size = sums.max_size.max(size);
                self.insert(thread, addr, size, s, ts, ts, s as u32);
            }
            Event::AllocFailed { .. } => self.memory.failed += 1,
            Event::Free { addr, .. } if self.filter.is_some() && !self.live.contains(addr) => {
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
                self.count_sampled(s, w, new_size);
                let sums = &mut self.site_sums[s];
                sums.reallocs += w;
                if new_size < old_size {
                    sums.shrinks += w;
                }
                sums.bytes += w * new_size as f64;
                sums.max_size = sums.max_size.max(new_size);
                self.memory.reallocs += 1;
                self.memory.bytes_allocated = self.memory.bytes_allocated.saturating_add(new_size);
                // The block lives on at its new address: it keeps its birth
                // and the site that made it.
                let kept = match released {
                    Some((addr, birth, origin)) if addr == old_addr => Some((birth, origin)),
                    // Another thread's block, outside this view: it enters it here.
                    _ if self.filter.is_some() && !self.live.contains(old_addr) => None,
                    _ => Some(
                        self.remove(thread, old_addr, ts, false)
                            .map_or((ts, NO_ORIGIN), |b| (b.ts, b.origin)),
                    ),
                };
                if kept.is_some() {
                    self.memory.bytes_freed = self.memory.bytes_freed.saturating_add(old_size);
                }
                let (birth, origin) = kept.unwrap_or((ts, NO_ORIGIN));
                let mut shrunk = origin & SHRUNK;
                let origin = match origin & !SHRUNK {
                    NO_ORIGIN => s as u32,
                    o => o,
                };
                if new_size != old_size {
                    let g = self.growth.entry((origin, s as u32)).or_default();
                    if new_size > old_size {
                        g.reallocs += w;
                        g.bytes += w * new_size as f64;
                        g.max_size = g.max_size.max(new_size);
                        if shrunk != 0 {
                            g.regrown += w;
                        }
                    } else {
                        g.shrinks += w;
                        shrunk = SHRUNK;
                    }
                }
                self.insert(thread, new_addr, new_size, s, ts, birth, origin | shrunk);
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
                self.counter_width = self.counter_width.max(values.len());
                self.time.counters(thread.id, scope, &values);
            }
            // The merger sends only those two here.
            _ => {}
        }
    }

    fn aside(&mut self) -> Option<Away> {
        Some(self.deaths.away())
    }

    fn aside_done(&mut self, away: Away) {
        self.deaths.back(away);
    }

    fn realloc_release(&mut self, thread: Thread, ts: u64, addr: u64) {
        self.thread(thread);
        self.timeline.advance(ts, &mut self.site_sums);
        if self.kept(thread, "") {
            self.release_for_realloc(thread, addr, ts);
        } else if let Some(b) = self.live.get(addr) {
            // A kept thread's block, moved by another thread: it leaves the view.
            let size = b.size;
            self.leave_view(thread, addr, size, ts);
        }
    }
}

impl State {
    /// The state a replay of a session with this metadata starts from,
    /// keeping the threads `opts` asks for.
    pub(crate) fn new(meta: &Metadata, opts: &LoadOptions) -> State {
        let mut s = State::default();
        if !opts.threads.is_empty() {
            s.filter = Some(ThreadFilter { wanted: opts.threads.clone(), ..Default::default() });
        }
        // A merge of runs keeps each run's live history apart: a run's
        // sites are judged over its own stretch of the clock, with its own
        // samples, as when it was read alone.
        s.runs = crate::load::merge::merged_runs(meta);
        if s.runs.len() > MAX_RUN_HISTORIES {
            s.runs.clear();
        }
        s.run_histories = vec![History::default(); s.runs.len()];
        s.run_sites = vec![Vec::new(); s.runs.len()];
        if let AllocMode::Sample { mean_bytes } = meta.alloc_mode {
            s.sample_bytes = Some(mean_bytes.max(1) as f64);
        }
        s
    }

    /// The clock reached `ts` with an event of `thread`.
    #[inline]
    fn arrive(&mut self, thread: Thread, ts: u64) {
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
            self.timeline.start(ts);
        }
        self.timeline.advance(ts, &mut self.site_sums);
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

    /// How many blocks a sampled block of `size` bytes at site index `site`
    /// stands for, freed: the inverse of its chance of being sampled, by
    /// the size of the event that put it at that site (its size since),
    /// as its allocation's weight is. 1 for an unsampled one (site 0).
    fn death_weight(&mut self, site: usize, size: u64) -> u32 {
        let id = self.site_ids.ids()[site];
        let w = self.site_weight(id, size.max(1));
        if self.carried.len() <= site {
            self.carried.resize(site + 1, 0.0);
        }
        // At least 1 (a weight is), the fraction left carried on.
        let total = self.carried[site] + w;
        let whole = total.floor().clamp(1.0, f64::from(crate::load::deaths::MAX_WEIGHT));
        self.carried[site] = (total - whole).max(0.0);
        whole as u32
    }

    /// One more sampled event at site index `s`, in a sampled session, of
    /// `size` bytes weighed `w`.
    #[inline(always)]
    fn count_sampled(&mut self, s: usize, w: f64, size: u64) {
        if self.sample_bytes.is_some() {
            self.count_sampled_at(s, w, size);
        }
    }

    #[cold]
    fn count_sampled_at(&mut self, s: usize, w: f64, size: u64) {
        if self.sampled.len() <= s {
            self.sampled.resize(s + 1, 0);
            self.bytes_variance.resize(s + 1, 0.0);
        }
        self.sampled[s] += 1;
        // The bytes estimate's variance (Horvitz–Thompson): a block sampled
        // with chance p = 1/w adds (w × size)² (1 − p); one sure to be
        // sampled adds nothing.
        let bytes = w * size as f64;
        self.bytes_variance[s] += bytes * bytes * (1.0 - 1.0 / w.max(1.0));
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
            Event::Free { ts, addr, size, .. } if self.live.contains(addr) => {
                self.leave_view(thread, addr, size, ts);
            }
            Event::Realloc { ts, old_addr, old_size, .. } if self.live.contains(old_addr) => {
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
        if self.filter.is_some() && !self.live.contains(addr) {
            // Another thread's block, outside this view.
            return;
        }
        let Some(b) = self.remove(thread, addr, ts, false) else {
            self.threads[thread.ix].released = Some((addr, self.last_ts, NO_ORIGIN));
            return;
        };
        // The block is out of the heap until its new address is in, which
        // may be a while: the timeline sees the heap without it.
        let own = self.threads[b.thread as usize].live_bytes;
        self.timeline.record(self.live_bytes, b.thread as usize, own);
        self.threads[thread.ix].released = Some((addr, b.ts, b.origin));
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
    /// for a reallocated block), from the site at index `site`; first
    /// allocated at the site at index `origin` (with [`SHRUNK`] set once a
    /// reallocation has made it smaller).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        thread: Thread,
        addr: u64,
        size: u64,
        site: usize,
        ts: u64,
        birth: u64,
        origin: u32,
    ) {
        let t = &mut self.threads[thread.ix];
        let scope = t.scope;
        if let Some(info) = &mut t.info {
            info.bytes_allocated = info.bytes_allocated.saturating_add(size);
        }
        let block =
            Block { size, ts: birth, site: site as u32, origin, scope, thread: thread.ix as u32 };
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
    #[inline(always)]
    fn site_live(&mut self, site: usize, size: u64, add: bool) {
        let s = &mut self.site_sums[site];
        if s.epoch < self.peak_epoch {
            s.at_peak = (s.live_bytes, s.live_blocks);
            s.epoch = self.peak_epoch;
        }
        self.timeline.site(site, &mut s.track, s.live_bytes);
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
        if self.sample_bytes.is_some() {
            self.estimate_live(site, size, add);
        }
    }

    /// [`State::site_live`]'s estimate in a sampled session: what a sampled
    /// block of `size` bytes stands for comes (`add`) or goes at the site
    /// at index `site`. The first change since a new global peak saves
    /// what the site had at it first.
    #[inline(never)]
    fn estimate_live(&mut self, site: usize, size: u64, add: bool) {
        let id = self.site_ids.ids().get(site).copied().unwrap_or(NO_SITE);
        if site >= self.estimates.len() {
            self.estimates.resize(site + 1, Estimate::default());
        }
        let e = &mut self.estimates[site];
        if e.epoch < self.peak_epoch {
            e.at_peak = (e.bytes, e.blocks);
            e.epoch = self.peak_epoch;
        }
        if id == NO_SITE {
            // The unsampled remainder stands for nothing more than itself,
            // and is left out: the sampled blocks' estimates stand for it.
            return;
        }
        let w = self.site_weight(id, size.max(1));
        let bytes = (w * size as f64).round() as u64;
        let blocks = (w * ESTIMATE_UNIT).round() as u64;
        let e = &mut self.estimates[site];
        if add {
            e.bytes = e.bytes.saturating_add(bytes);
            e.blocks = e.blocks.saturating_add(blocks);
        } else {
            e.bytes = e.bytes.saturating_sub(bytes);
            e.blocks = e.blocks.saturating_sub(blocks);
        }
    }

    /// In a sampled session, each site's bytes and blocks at the global
    /// peak: what its sampled blocks live there stand for, at most what
    /// the site is estimated to have made, and the rest of the exact peak
    /// to the unsampled remainder (were the estimates more than the peak,
    /// they share it out, by largest remainders). `None` where the
    /// session is not sampled, or fewer than [`MIN_SAMPLED_AT_PEAK`]
    /// sampled blocks were live at the peak: from a handful, one block
    /// standing for thousands, the table would be the sample's chance.
    fn estimated_at_peak(&self, site_ids: &[u32], scale: &SampleScale) -> Option<Vec<(u64, u64)>> {
        self.sample_bytes?;
        let sampled_at_peak: u64 = (0..self.site_sums.len())
            .filter(|&i| site_ids.get(i) != Some(&NO_SITE))
            .map(|i| {
                let t = &self.site_sums[i];
                if t.epoch == self.peak_epoch {
                    t.at_peak.1
                } else {
                    t.live_blocks
                }
            })
            .sum();
        if sampled_at_peak < MIN_SAMPLED_AT_PEAK {
            return None;
        }
        let f = scale.sampled;
        let mut at: Vec<(u64, u64)> = (0..self.site_sums.len())
            .map(|i| {
                if site_ids.get(i) == Some(&NO_SITE) {
                    return (0, 0);
                }
                let e = self.estimates.get(i).copied().unwrap_or_default();
                let (bytes, units) = match e.epoch == self.peak_epoch {
                    true => e.at_peak,
                    false => (e.bytes, e.blocks),
                };
                let t = &self.site_sums[i];
                let made = (
                    (t.bytes * f.2).round() as u64,
                    (t.allocs * f.0 + t.reallocs * f.1).round() as u64,
                );
                let blocks = (units as f64 / ESTIMATE_UNIT).round() as u64;
                (bytes.min(made.0), blocks.min(made.1))
            })
            .collect();
        let rest = site_ids.iter().position(|&id| id == NO_SITE);
        let (bytes, blocks): (u64, u64) =
            at.iter().fold((0, 0), |a, e| (a.0.saturating_add(e.0), a.1.saturating_add(e.1)));
        let (peak_bytes, peak_blocks) = (self.memory.peak_bytes, self.memory.peak_blocks);
        match rest {
            Some(r) if bytes <= peak_bytes && blocks <= peak_blocks => {
                at[r] = (peak_bytes - bytes, peak_blocks - blocks);
                Some(at)
            }
            _ => {
                let b = share_out(peak_bytes, at.iter().map(|a| a.0))?;
                let n = share_out(peak_blocks, at.iter().map(|a| a.1))?;
                Some(b.into_iter().zip(n).collect())
            }
        }
    }

    /// `thread` gives up the block at `addr` at `ts`: `freed`, or moved by a
    /// reallocation, which does not end its life.
    #[inline(always)]
    fn remove(&mut self, thread: Thread, addr: u64, ts: u64, freed: bool) -> Option<Block> {
        let Some(b) = self.live.remove(addr) else {
            self.anomalies.unknown_frees += 1;
            return None;
        };
        let site = b.site as usize;
        if freed {
            let temporary = self.threads[thread.ix].last_alloc.take() == Some(addr);
            let lifetime = ts.saturating_sub(b.ts);
            let weight = match self.sample_bytes {
                None => 1,
                Some(_) => self.death_weight(site, b.size),
            };
            self.deaths.push(b.site, temporary, lifetime, weight);
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

    pub(crate) fn finish(mut self, meta: Metadata, version: u16, end: replay::Ending) -> Profile {
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
        let deaths = std::mem::take(&mut self.deaths).counted(self.site_sums.len());
        let site_ids = self.site_ids.ids();
        let site_live: Vec<u64> = self.site_sums.iter().map(|s| s.live_blocks).collect();
        let scale = self.sample_scale(site_ids);
        let sampled = self.sample_bytes.is_some();
        // Sampled, what scales a site's estimated blocks to the exact
        // totals, as its allocations and reallocations are scaled (0 for
        // the unsampled remainder, which counts for nothing).
        let block_scale: Vec<f64> = site_ids
            .iter()
            .zip(&self.site_sums)
            .map(|(id, t)| {
                let f = if *id == NO_SITE { scale.unsampled } else { scale.sampled };
                match t.allocs + t.reallocs {
                    w if w > 0.0 => (t.allocs * f.0 + t.reallocs * f.1) / w,
                    _ => f.0,
                }
            })
            .collect();
        let at_peak = self.estimated_at_peak(site_ids, &scale);
        let mut sites: BTreeMap<u32, SiteStats> = site_ids
            .iter()
            .zip(self.site_sums.iter().zip(&deaths))
            .enumerate()
            .map(|(i, (id, (t, d)))| {
                let f = if *id == NO_SITE { scale.unsampled } else { scale.sampled };
                let stats = SiteStats {
                    sampled_events: if *id == NO_SITE {
                        0
                    } else {
                        self.sampled.get(i).copied().unwrap_or(0)
                    },
                    bytes_error: match *id {
                        NO_SITE => 0,
                        _ => {
                            let v = self.bytes_variance.get(i).copied().unwrap_or(0.0);
                            (v.sqrt() * f.2).round() as u64
                        }
                    },
                    allocs: (t.allocs * f.0).round() as u64,
                    bytes: (t.bytes * f.2).round() as u64,
                    reallocs: (t.reallocs * f.1).round() as u64,
                    shrinks: (t.shrinks * f.1).round() as u64,
                    max_size: t.max_size,
                    lifetimes: match sampled {
                        false => d.lifetimes.clone(),
                        true => d.lifetimes.scaled(block_scale[i]),
                    },
                    temporary: match sampled {
                        false => d.temporary,
                        true => (d.temporary as f64 * block_scale[i]).round() as u64,
                    },
                    // Estimated at the peak, a site had at least that much
                    // live at its own.
                    peak_live_bytes: match &at_peak {
                        Some(est) => t.peak_live_bytes.max(est[i].0),
                        _ => t.peak_live_bytes,
                    },
                    peak_live_blocks: match &at_peak {
                        Some(est) => t.peak_live_blocks.max(est[i].1),
                        _ => t.peak_live_blocks,
                    },
                    bytes_at_peak: match (&at_peak, t.epoch == self.peak_epoch) {
                        (Some(est), _) => est[i].0,
                        (None, true) => t.at_peak.0,
                        (None, false) => t.live_bytes,
                    },
                    blocks_at_peak: match (&at_peak, t.epoch == self.peak_epoch) {
                        (Some(est), _) => est[i].1,
                        (None, true) => t.at_peak.1,
                        (None, false) => t.live_blocks,
                    },
                    ..SiteStats::default()
                };
                (*id, stats)
            })
            .collect();
        let mut growth: Vec<Growth> = self
            .growth
            .iter()
            .map(|(&(origin, site), g)| Growth {
                origin: site_ids[origin as usize],
                site: site_ids[site as usize],
                reallocs: (g.reallocs * scale.sampled.1).round() as u64,
                bytes: (g.bytes * scale.sampled.2).round() as u64,
                max_size: g.max_size,
                regrown: (g.regrown * scale.sampled.1).round() as u64,
                shrinks: (g.shrinks * scale.sampled.1).round() as u64,
            })
            .filter(|g| g.origin != NO_SITE && g.site != NO_SITE && g.reallocs + g.shrinks > 0)
            .collect();
        growth.sort_unstable_by_key(|g| (g.origin, g.site));
        // Sampled, a live block stands for blocks as a freed one does.
        let mut weighed: Vec<(f64, f64)> =
            vec![(0.0, 0.0); if sampled { site_ids.len() } else { 0 }];
        for b in self.live.blocks() {
            let id = site_ids[b.site as usize];
            let s = sites.entry(id).or_default();
            s.live_blocks_at_end += 1;
            s.live_bytes_at_end = s.live_bytes_at_end.saturating_add(b.size);
            if let Some(w) = weighed.get_mut(b.site as usize) {
                let weight = self.site_weight(id, b.size.max(1));
                w.0 += weight * block_scale[b.site as usize];
                w.1 += weight * b.size as f64;
            }
        }
        for (i, id) in site_ids.iter().enumerate() {
            if let Some(s) = sites.get_mut(id) {
                (s.estimated_live_blocks_at_end, s.estimated_live_bytes_at_end) =
                    match weighed.get(i) {
                        Some(w) => (w.0.round() as u64, w.1.round() as u64),
                        None => (s.live_blocks_at_end, s.live_bytes_at_end),
                    };
            }
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
        let mean_stack_frames = mean_frames(&sites, &symbols);
        let dirs = meta.extra.iter().find(|(k, _)| k == crate::model::sites::PULSE_SOURCES_KEY);
        symbols.set_pulse_dirs(dirs.map(|(_, v)| v.as_str()));
        symbols.budget(crate::model::sites::text_budget(end.decoded_len), sites.keys().copied());
        let timeline = {
            let root = crate::model::sites::project_root(&meta.program);
            let key = |site: usize| symbols.row_key(site_ids[site], &root);
            let live = if meta.alloc_mode == AllocMode::Count { 0 } else { self.live_bytes };
            std::mem::take(&mut self.timeline).finish(&mut self.site_sums, tpn, &ids, live, key)
        };
        let meta = with_counters_found(meta, end.trailer.as_ref(), self.counter_width);
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
            mean_stack_frames,
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
            growth,
        }
    }
}

/// `meta` with the counters its session opened at first use
/// ([`Metadata::counters_at_first_use`]) in its list, from the trailer.
/// A session cut before its trailer read them too: they are named by how
/// many values its readings hold, `width` at the most (the runtime's two
/// sets differ in size).
fn with_counters_found(mut meta: Metadata, trailer: Option<&Trailer>, width: usize) -> Metadata {
    if !meta.counters.is_empty() || !meta.counters_at_first_use() {
        return meta;
    }
    if let Some(t) = trailer.filter(|t| !t.counters.is_empty()) {
        meta.counters = t.counters.clone();
        return meta;
    }
    let names: &[&str] = match width {
        5 => &pulse_format::HARDWARE_COUNTERS,
        4 => &pulse_format::SOFTWARE_COUNTERS,
        _ => &[],
    };
    meta.counters = names
        .iter()
        .map(|name| CounterInfo {
            name: String::from(*name),
            available: true,
            reason: String::from(
                "read; named by the number of values read, for the session ended \
                 before it could say which counters it opened",
            ),
        })
        .collect();
    meta
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

/// The frames captured per allocation on average, each site's weighted by
/// its allocations and reallocations; 0 without stacks.
fn mean_frames(sites: &BTreeMap<u32, SiteStats>, symbols: &Symbols) -> f64 {
    let (mut events, mut frames) = (0f64, 0f64);
    for (&site, s) in sites.iter().filter(|(&site, _)| site != NO_SITE) {
        let n = s.allocs.saturating_add(s.reallocs) as f64;
        events += n;
        frames += n * symbols.captured_depth(site) as f64;
    }
    if events > 0.0 {
        frames / events
    } else {
        0.0
    }
}

/// `total` shared out in proportion to `weights`, in whole units that add
/// up to it exactly: each share rounded down, the rest one apiece to the
/// largest remainders (the first among equals). `None` where the weights
/// add up to nothing.
fn share_out(total: u64, weights: impl Iterator<Item = u64>) -> Option<Vec<u64>> {
    let weights: Vec<u64> = weights.collect();
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 {
        return None;
    }
    let exact: Vec<(u64, u128)> = weights
        .iter()
        .map(|&w| {
            let x = u128::from(total) * u128::from(w);
            ((x / sum) as u64, x % sum)
        })
        .collect();
    let mut out: Vec<u64> = exact.iter().map(|e| e.0).collect();
    let left = total - out.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for &i in order.iter().take(left as usize) {
        out[i] += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_total_is_shared_out_whole_in_proportion() {
        assert_eq!(super::share_out(10, [1u64, 1, 1].into_iter()), Some(vec![4, 3, 3]));
        assert_eq!(super::share_out(7, [0u64, 5, 0].into_iter()), Some(vec![0, 7, 0]));
        assert_eq!(super::share_out(5, [0u64, 0].into_iter()), None);
        let big = super::share_out(u64::MAX, [u64::MAX, 1, u64::MAX].into_iter()).unwrap();
        assert_eq!(big.iter().map(|&x| u128::from(x)).sum::<u128>(), u128::from(u64::MAX));
    }

    use super::*;

    fn alloc(ts: u64, addr: u64, site: u32) -> Event {
        Event::Alloc { ts, addr, size: 16, align: 8, site, weight: 1 }
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
