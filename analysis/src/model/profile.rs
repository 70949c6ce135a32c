//! A replayed session as data: its metadata and every aggregate the
//! reports draw on. `load/` builds it; the model's other values (report,
//! diff, leaks, info) and the writers read it.

use std::collections::BTreeMap;
use std::path::Path;

use pulse_format::{CallTree, Histogram, Metadata, RecordKind, ScopeTime, Trailer};

use crate::error::Error;
use crate::model::sites::Symbols;
use crate::model::timeline::Timeline;

use rustc_hash::FxHashMap as HashMap;

/// A scope or typed operation as the session defined it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Which threads a profile was read for (see [`LoadOptions::threads`](crate::LoadOptions::threads)).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    /// What was asked for: thread ids (`3` or `#3`) or names.
    pub wanted: Vec<String>,
    /// The threads that matched, by id.
    pub kept: Vec<u64>,
    /// Every thread of the session: id and name.
    pub all: Vec<(u64, String)>,
}

/// Blocks allocated on one thread and freed on another.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// The frames their stacks had on average (allocations and
    /// reallocations of the kept threads, by site), 0 without stacks.
    pub mean_stack_frames: f64,
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
    /// Where blocks were grown and shrunk, by the site that first
    /// allocated them: a buffer made on one line and grown on others.
    /// Sorted by origin, then site.
    pub growth: Vec<Growth>,
}

/// The reallocations at one site of the blocks another (or the same) site
/// first allocated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Growth {
    /// The site that first allocated the blocks.
    pub origin: u32,
    /// The site of the reallocations.
    pub site: u32,
    /// Reallocations that made a block larger (an estimate in a sampled
    /// session, as [`SiteStats::reallocs`]).
    pub reallocs: u64,
    /// Their new sizes, added up.
    pub bytes: u64,
    /// The largest new size.
    pub max_size: u64,
    /// Those of `reallocs` that grew a block a reallocation had shrunk
    /// before (`shrink_to_fit`, then growth again).
    pub regrown: u64,
    /// Reallocations that made a block smaller.
    pub shrinks: u64,
}

/// The blocks allocated while a scope was the innermost one on their thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScopeMemory {
    /// The most bytes of them live at once.
    pub peak_live_bytes: u64,
    /// Bytes of them still live at the end.
    pub live_bytes_at_end: u64,
    /// Blocks of them still live at the end.
    pub live_blocks_at_end: u64,
}

impl Profile {
    /// A sampled session's sampling interval, the mean bytes between
    /// sampled stacks; `None` where every allocation was recorded (or
    /// none).
    pub fn sample_interval(&self) -> Option<u64> {
        match self.meta.alloc_mode {
            pulse_format::AllocMode::Sample { mean_bytes } => Some(mean_bytes),
            _ => None,
        }
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

/// Allocations made at one site (one distinct stack).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// Those of them that made their block smaller (`shrink_to_fit`, a
    /// `Vec` collected in place into a smaller element type).
    pub shrinks: u64,
    /// The largest single request.
    pub max_size: u64,
    /// Blocks from here still live at the end.
    pub live_blocks_at_end: u64,
    /// Bytes from here still live at the end.
    pub live_bytes_at_end: u64,
    /// Lifetimes of the blocks from here that were freed, in clock ticks, in
    /// coarse buckets (percentiles within 12.5 %)
    /// (see [`Profile::ticks_per_ns`]; [`SiteStats::freed_within`] converts).
    /// In a sampled session, an estimate: each sampled block counted as
    /// the blocks it stands for (the inverse of its chance of being
    /// sampled, by the size it was sampled at), scaled as `allocs` and
    /// `reallocs` are; none for site 0, the unsampled remainder.
    pub lifetimes: Histogram,
    /// Blocks freed by their thread before it allocated anything else
    /// (heaptrack's "temporary" allocations); estimated as `lifetimes` is.
    pub temporary: u64,
    /// The most bytes from here live at once.
    pub peak_live_bytes: u64,
    /// Blocks from here live at that moment.
    pub peak_live_blocks: u64,
    /// Bytes from here live at the moment of the session's peak.
    pub bytes_at_peak: u64,
    /// Blocks from here live at that moment.
    pub blocks_at_peak: u64,
    /// The blocks `live_blocks_at_end` stand for: in a sampled session an
    /// estimate, each sampled block weighed as a freed one is in
    /// `lifetimes`; the same number in other sessions.
    pub estimated_live_blocks_at_end: u64,
    /// The bytes `live_bytes_at_end` stand for: in a sampled session an
    /// estimate, each sampled block weighed by its size as its allocation
    /// was (not scaled to the totals: the blocks without a sampled stack
    /// keep their own figures at the end); the same number in other
    /// sessions.
    pub estimated_live_bytes_at_end: u64,
    /// In a sampled session, the allocations and reallocations here whose
    /// stack was sampled, unweighted: the blocks that `lifetimes` and
    /// `temporary` are estimated from, and that the live figures count.
    /// 0 in other sessions.
    pub sampled_events: u64,
    /// In a sampled session, one standard error of `bytes`, an estimate:
    /// its blocks much smaller than the interval make it about
    /// `bytes / √sampled_events`, and blocks much larger none. 0 in other
    /// sessions.
    pub bytes_error: u64,
}

impl SiteStats {
    /// Blocks from here freed within `ns` nanoseconds of their allocation.
    pub fn freed_within(&self, ns: u64, ticks_per_ns: f64) -> u64 {
        self.lifetimes.count_at_most((ns as f64 * ticks_per_ns) as u64)
    }
}
