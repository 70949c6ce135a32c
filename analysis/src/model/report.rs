//! The one-screen report: what the program did, where its time and memory went.

use std::collections::BTreeMap;

use pulse_format::{RecordKind, NO_SITE};

use crate::model::leaks::Leak;
use crate::model::profile::{
    MemoryTotals, Profile, ScopeMemory, Selection, ThreadFlow, ThreadInfo,
};
use crate::model::recommend::{RecommendOptions, Recommendation};
use pulse_format::ScopeTime;

/// The default number of rows per table.
pub const DEFAULT_TOP: usize = 20;

/// How the scope table is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortBy {
    /// Self time, most first (the default).
    #[default]
    SelfTime,
    /// Total time, most first.
    Total,
    /// Mean time per entry, most first.
    Mean,
    /// Entries, most first.
    Count,
    /// The operation's priority, highest first, then self time.
    Priority,
}

/// What [`report`] includes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReportOptions {
    /// Rows per table.
    pub top: usize,
    /// The order of the scope table.
    pub sort: SortBy,
    /// Only scopes of this category.
    pub category: Option<String>,
    /// Call-tree nodes below this share of the session's scoped time (or of
    /// its duration, when the outermost scopes of several threads add up to
    /// more) are left out; each parent says how many and how long.
    pub tree_min_share: f64,
    /// The recommendation rules' thresholds.
    pub recommend: RecommendOptions,
    /// Order allocation sites by allocations (else by bytes).
    pub sites_by_allocs: bool,
    /// Order allocation sites by their own peak of live bytes.
    pub sites_by_peak: bool,
    /// The sections to render.
    pub sections: Sections,
}

/// Which sections [`Report::render`] writes; all by default. `pulse
/// hotspots` keeps the scopes, the call tree and the sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[allow(clippy::struct_excessive_bools)]
pub struct Sections {
    /// What to change.
    pub recommendations: bool,
    /// Allocation totals.
    pub memory: bool,
    /// The scope table.
    pub scopes: bool,
    /// The call tree.
    pub tree: bool,
    /// Counters per scope.
    pub counters: bool,
    /// Threads' live sets.
    pub threads: bool,
    /// Leaks versus caches.
    pub live_at_end: bool,
    /// Allocation sites.
    pub sites: bool,
}

impl Sections {
    /// The command that prints these sections, for the report's first
    /// line: `pulse hotspots` keeps neither the recommendations nor the
    /// memory totals, which `pulse report` always shows.
    pub fn command(&self) -> &'static str {
        if self.recommendations || self.memory {
            "pulse report"
        } else {
            "pulse hotspots"
        }
    }
}

impl Default for Sections {
    fn default() -> Self {
        Sections {
            recommendations: true,
            memory: true,
            scopes: true,
            tree: true,
            counters: true,
            threads: true,
            live_at_end: true,
            sites: true,
        }
    }
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            top: DEFAULT_TOP,
            sort: SortBy::SelfTime,
            category: None,
            tree_min_share: 0.01,
            recommend: RecommendOptions::default(),
            sites_by_allocs: false,
            sites_by_peak: false,
            sections: Sections::default(),
        }
    }
}

impl ReportOptions {
    /// What `pulse hotspots` shows by default: the scopes, sorted by
    /// self time, and the allocation sites (the call tree with `--tree`).
    pub fn hotspots() -> Self {
        ReportOptions {
            sections: Sections {
                recommendations: false,
                memory: false,
                scopes: true,
                tree: false,
                counters: false,
                threads: false,
                live_at_end: false,
                sites: true,
            },
            ..ReportOptions::default()
        }
    }
}

/// One scope's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScopeRow {
    /// The scope's name.
    pub name: String,
    /// Its category, or empty.
    pub category: String,
    /// Its priority (higher first).
    pub priority: i64,
    /// Its figures.
    pub time: ScopeTime,
    /// The blocks allocated while it was the innermost scope: their peak
    /// and what was left of them at the end.
    pub memory: ScopeMemory,
}

/// One line of the call tree: a scope under one path of enclosing scopes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TreeRow {
    /// Nesting depth, 0 for the outermost scopes.
    pub depth: usize,
    /// The scope's name.
    pub name: String,
    /// Completed entries on this path.
    pub count: u64,
    /// Time inside, children included.
    pub total_ns: u64,
    /// Time inside, children excluded (every folded level's).
    pub self_ns: u64,
    /// Levels of direct recursion folded into this row: the scope entered
    /// inside itself, alone, `recursion - 1` times below (1: none).
    pub recursion: usize,
    /// Its children left out below the cut
    /// ([`ReportOptions::tree_min_share`]), shown as one `… N more` row
    /// under its own; `None` when none was.
    pub omitted: Option<Omitted>,
}

/// Call-tree nodes left out below the cut, under one parent (or among the
/// outermost scopes): never silently, their number and time are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Omitted {
    /// Nodes left out (each with whatever it called).
    pub count: usize,
    /// Their time, children included.
    pub total_ns: u64,
}

/// What pulse itself cost in the session, from its calibration at start
/// and its own counts at the end.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Overhead {
    /// Events recorded on the program's threads.
    pub events: u64,
    /// Of which allocations recorded with a stack.
    pub stacked_events: u64,
    /// Measured cost of one event (clock reading and append), in ns.
    pub event_ns: f64,
    /// Cost of one stack capture, in ns: measured at the session's start at
    /// the configured depth and, where the session also measured each
    /// frame's cost, brought to the frames its stacks had on average.
    pub stack_ns: f64,
    /// The frames a stack had on average, allocations weighted, where the
    /// session measured each frame's cost (`None` in sessions before that).
    pub stack_frames: Option<f64>,
    /// Estimated time pulse added on the program's threads, in ns.
    pub on_threads_ns: u64,
    /// CPU time of the collector thread, in ns. This and pulse's own
    /// memory below come from the trailer: `None` when it has none (the
    /// session did not finish, so they are unknown).
    pub collector_ns: Option<u64>,
    /// Measured time the program's threads waited for room in their rings
    /// (the collector behind), in ns; `None` in sessions that predate it.
    pub wait_ns: Option<u64>,
    /// Measured time from the start of finishing the session (its end, an
    /// exit, a signal) to its file being complete, which the program waited
    /// for, in ns; `None` where the session does not say.
    pub finish_ns: Option<u64>,
    /// pulse's own allocations, kept apart from the program's.
    pub own_allocs: Option<u64>,
    /// Their bytes.
    pub own_bytes: Option<u64>,
    /// Bytes of per-thread rings.
    pub ring_bytes: Option<u64>,
}

/// The overhead of this session, if it recorded its calibration.
pub(crate) fn overhead(p: &Profile) -> Option<Overhead> {
    let cost = |k: &str| {
        p.meta.extra.iter().find(|(key, _)| key == k).and_then(|(_, v)| v.parse::<f64>().ok())
    };
    let (event_ns, stack_ns) = (cost("cost.event_ns")?, cost("cost.stack_ns")?);
    let t = p.trailer.as_ref();
    let get = |k: &str| t.and_then(|t| t.extra(k));
    let defs = [RecordKind::SiteDef, RecordKind::ScopeDef, RecordKind::Symbol];
    let events: u64 = RecordKind::ALL
        .iter()
        .filter(|k| !defs.contains(k))
        .fold(0u64, |a, k| a.saturating_add(p.count(*k)));
    let frames = p.mean_stack_frames;
    let (stack_ns, stack_frames) = match (cost("cost.frame_ns"), cost("stack_depth")) {
        (Some(frame_ns), Some(depth))
            if frame_ns.is_finite() && frame_ns >= 0.0 && frames > 0.0 && depth >= frames =>
        {
            // The calibration walked the configured depth; the program's
            // walks ended where its stacks did.
            ((stack_ns - (depth - frames) * frame_ns).max(frame_ns), Some(frames))
        }
        _ => (stack_ns, None),
    };
    Some(Overhead {
        events,
        stacked_events: p.stacked_events,
        event_ns,
        stack_ns,
        stack_frames,
        on_threads_ns: (events as f64 * event_ns + p.stacked_events as f64 * stack_ns) as u64,
        collector_ns: get("collector_cpu_ns"),
        wait_ns: get("wait_ns"),
        finish_ns: get("finish_ns"),
        own_allocs: get("pulse_allocs"),
        own_bytes: get("pulse_bytes"),
        ring_bytes: get("pulse_ring_bytes"),
    })
}

/// Counter figures of one scope read with `scope!(…, counters)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CounterRow {
    /// `category::name` of the scope.
    pub name: String,
    /// Entries whose counters were read at both ends.
    pub entries: u64,
    /// Each counter's mean increase per entry, in [`Counters::names`] order.
    pub per_entry: Vec<f64>,
    /// Derived ratios: instructions per cycle, cache-miss rate, branch misses
    /// per thousand instructions, where their counters were read.
    pub ratios: Vec<(&'static str, f64)>,
}

/// The counters of a session: which were read, why others were not, and
/// the scopes that read them.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Counters {
    /// The counters read, in the order of each row's values.
    pub names: Vec<String>,
    /// Counters that could not be opened, with the reason.
    pub unavailable: Vec<(String, String)>,
    /// Scopes with counter readings, most entries first.
    pub rows: Vec<CounterRow>,
}

/// One allocation location's line in the report: every site (distinct
/// stack) whose innermost user frame is the same function, file and line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteRow {
    /// The user's function, or what the stack ended in.
    pub function: String,
    /// `file:line`, the file relative to the project root where it is under it.
    pub place: String,
    /// When the site is a dependency's (or the standard library's), the
    /// nearest frame of the program's own code above it, as
    /// `function (file:line)` (of the row's busiest stack); empty when the
    /// site is the program's own or no frame of its code was captured.
    pub called_from: String,
    /// Distinct stacks merged into this row.
    pub stacks: usize,
    /// Blocks allocated.
    pub allocs: u64,
    /// Bytes allocated, reallocations' new sizes included.
    pub bytes: u64,
    /// Reallocations.
    pub reallocs: u64,
    /// The largest single request.
    pub max_size: u64,
    /// Blocks still live at the end.
    pub live_blocks_at_end: u64,
    /// Bytes still live at the end.
    pub live_bytes_at_end: u64,
    /// Bytes live at the moment of the session's peak.
    pub bytes_at_peak: u64,
    /// The most bytes from here live at once. Exact for one stack
    /// ([`SiteRow::peak_live_exact`]); for several, the most that is known
    /// of their sum: the largest of a stack's own peak, the row's bytes at
    /// the session's peak and at its end. Their sum may have peaked higher,
    /// at a moment none of those records.
    pub peak_live_bytes: u64,
    /// Whether [`SiteRow::peak_live_bytes`] is the exact peak (one stack,
    /// every allocation's stack recorded), rather than the least it can be.
    pub peak_live_exact: bool,
    /// Bytes per allocation or reallocation, on average.
    pub mean_size: u64,
    /// Blocks from here that were freed.
    pub freed: u64,
    /// Their median lifetime, allocation to free (within 12.5 %).
    pub lifetime_p50_ns: u64,
    /// Their 99th-percentile lifetime.
    pub lifetime_p99_ns: u64,
    /// Blocks freed within the short-lived threshold
    /// ([`RecommendOptions::short_lived_ns`]).
    pub short_lived: u64,
    /// Blocks freed by their thread before it allocated anything else
    /// (heaptrack's "temporary" allocations).
    pub temporary: u64,
}

/// The report of one session. Every figure the CLI prints is a field here.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// The profiled program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The session's length.
    pub duration_ns: u64,
    /// Threads that produced events.
    pub threads: usize,
    /// Allocation totals and the live set.
    pub memory: MemoryTotals,
    /// Scopes by self time, longest first; at most `top`.
    pub scopes: Vec<ScopeRow>,
    /// Scopes left out by `top`.
    pub scopes_omitted: usize,
    /// The order of `scopes`.
    pub sorted_by: SortBy,
    /// `sites` are ordered by allocations rather than bytes.
    pub sites_by_allocs: bool,
    /// `sites` are ordered by their own peak of live bytes.
    pub sites_by_peak: bool,
    /// The sections `render` writes.
    pub sections: Sections,
    /// The call tree, depth first, heaviest child first.
    pub tree: Vec<TreeRow>,
    /// Outermost scopes left out of `tree` below the cut.
    pub tree_omitted: Option<Omitted>,
    /// Counters per scope, or why there are none.
    pub counters: Counters,
    /// What pulse itself cost in this run.
    pub overhead: Option<Overhead>,
    /// Sites with blocks live at the end, most bytes first; at most `top`.
    pub live_at_end: Vec<Leak>,
    /// Sites with blocks live at the end left out by `top`.
    pub live_at_end_omitted: usize,
    /// What to change, most at stake first.
    pub recommendations: Vec<Recommendation>,
    /// Threads that ran scopes or allocated, by time inside scopes, then
    /// bytes allocated: each thread's live set counts the blocks it
    /// allocated, whichever thread frees them.
    pub per_thread: Vec<ThreadInfo>,
    /// Set when the session was read for some threads only.
    pub selection: Option<Selection>,
    /// Bytes allocated on one thread and freed on another, most first.
    pub flows: Vec<ThreadFlow>,
    /// Allocation locations by bytes, most first; at most `top`.
    pub sites: Vec<SiteRow>,
    /// Locations left out by `top`.
    pub sites_omitted: usize,
    /// A block freed within this many nanoseconds is short-lived.
    pub short_lived_ns: u64,
    /// The heap at its peak: locations by bytes live at that moment, most
    /// first; at most `top`.
    pub at_peak: Vec<SiteRow>,
    /// Locations with bytes live at the peak left out by `top`.
    pub at_peak_omitted: usize,
    /// Things the reader of the report must know: a truncated file, anomalies,
    /// totals that do not cross-check.
    pub warnings: Vec<String>,
    /// Whether the file was cut before the session ended: what was "live
    /// at end" was live at the cut (in a merge whose runs were cut, each
    /// row of `live_at_end` says so of its own: [`Leak::at_cut`]).
    pub cut: bool,
}

/// Builds the report of `profile`.
pub fn report(profile: &Profile, opts: &ReportOptions) -> Report {
    let mut scopes: Vec<ScopeRow> = profile
        .scope_times
        .iter()
        .map(|(id, t)| {
            let info = profile.scopes.get(id);
            ScopeRow {
                name: profile.scope_name(*id),
                category: info.map(|s| s.category.clone()).unwrap_or_default(),
                priority: info.map_or(0, |s| s.priority),
                time: t.clone(),
                memory: profile.scope_memory.get(id).copied().unwrap_or_default(),
            }
        })
        .filter(|r| opts.category.as_ref().is_none_or(|c| *c == r.category))
        .collect();
    // The chosen key, most first; the name breaks ties so the order is stable.
    let key = |r: &ScopeRow| match opts.sort {
        SortBy::SelfTime => (0, r.time.self_ns),
        SortBy::Total => (0, r.time.total_ns),
        SortBy::Mean => (0, r.time.mean_ns),
        SortBy::Count => (0, r.time.count),
        SortBy::Priority => (r.priority, r.time.self_ns),
    };
    scopes.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
    let omitted = scopes.len().saturating_sub(opts.top);
    scopes.truncate(opts.top);
    let (tree, tree_omitted) = tree_rows(profile, opts.tree_min_share);
    // Every site's location, found once for the site rows and the
    // recommendations both.
    let located = profile.symbols.located(profile.sites.keys());
    let mut sites = site_rows(profile, &located, opts.recommend.short_lived_ns);
    if opts.sites_by_peak {
        sites.sort_by(|a, b| {
            b.peak_live_bytes.cmp(&a.peak_live_bytes).then_with(|| a.function.cmp(&b.function))
        });
    } else if opts.sites_by_allocs {
        sites.sort_by(|a, b| {
            (b.allocs + b.reallocs)
                .cmp(&(a.allocs + a.reallocs))
                .then_with(|| a.function.cmp(&b.function))
        });
    }
    let mut at_peak: Vec<SiteRow> = sites.iter().filter(|s| s.bytes_at_peak > 0).cloned().collect();
    at_peak.sort_by(|a, b| {
        b.bytes_at_peak.cmp(&a.bytes_at_peak).then_with(|| a.function.cmp(&b.function))
    });
    let at_peak_omitted = at_peak.len().saturating_sub(opts.top);
    at_peak.truncate(opts.top);
    let sites_omitted = sites.len().saturating_sub(opts.top);
    sites.truncate(opts.top);
    // Found once, for the leak rows and the recommendations both.
    let live_at_end = crate::model::leaks::leaks_with_stacks(profile, opts.top, Some(&located));
    let live_at_end_omitted = live_at_end.len().saturating_sub(opts.top);
    Report {
        program: profile.meta.program.clone(),
        args: profile.meta.args.clone(),
        duration_ns: profile.duration_ns,
        threads: profile.threads.len(),
        memory: profile.memory.clone(),
        scopes,
        scopes_omitted: omitted,
        sorted_by: opts.sort,
        sites_by_allocs: opts.sites_by_allocs,
        sites_by_peak: opts.sites_by_peak,
        sections: opts.sections,
        tree,
        tree_omitted,
        counters: counter_rows(profile),
        overhead: overhead(profile),
        recommendations: crate::model::recommend::recommend_given(
            profile,
            &opts.recommend,
            &located,
            &live_at_end,
        ),
        live_at_end: {
            let mut l = live_at_end;
            l.truncate(opts.top);
            l
        },
        live_at_end_omitted,
        per_thread: {
            // A thread that only freed what others allocated is listed too
            // when a flow below names it.
            let in_flow = |id: u64| profile.flows.iter().any(|f| f.from == id || f.to == id);
            let mut t: Vec<ThreadInfo> = profile
                .threads
                .values()
                .filter(|t| t.bytes_allocated > 0 || t.scoped_ns > 0 || in_flow(t.id))
                .cloned()
                .collect();
            t.sort_by(|a, b| {
                (b.scoped_ns, b.bytes_allocated)
                    .cmp(&(a.scoped_ns, a.bytes_allocated))
                    .then(a.id.cmp(&b.id))
            });
            t
        },
        selection: profile.selection.clone(),
        flows: {
            let mut f = profile.flows.clone();
            f.sort_by(|a, b| b.bytes.cmp(&a.bytes).then((a.from, a.to).cmp(&(b.from, b.to))));
            f
        },
        sites,
        sites_omitted,
        short_lived_ns: opts.recommend.short_lived_ns,
        at_peak,
        at_peak_omitted,
        warnings: warnings(profile),
        cut: profile.truncated.is_some(),
    }
}

/// Counters the report shows, the first the metadata names as available:
/// the runtime reads five at most, and a table of a column per counter and
/// a row per scope must not grow as the product of two parts of the file.
pub(crate) const MAX_COUNTERS: usize = 64;

/// Counter figures per scope, with the ratios a reader looks for.
pub(crate) fn counter_rows(p: &Profile) -> Counters {
    let names: Vec<String> = p
        .meta
        .counters
        .iter()
        .filter(|c| c.available)
        .take(MAX_COUNTERS)
        .map(|c| c.name.clone())
        .collect();
    let unavailable = p
        .meta
        .counters
        .iter()
        .filter(|c| !c.available)
        .map(|c| (c.name.clone(), c.reason.clone()))
        .collect();
    let idx = |n: &str| names.iter().position(|x| x == n);
    let mut rows: Vec<CounterRow> = p
        .scope_times
        .iter()
        .filter(|(_, t)| t.counted > 0)
        .map(|(id, t)| {
            let per_entry: Vec<f64> = t
                .counters
                .iter()
                .take(MAX_COUNTERS)
                .map(|v| *v as f64 / t.counted as f64)
                .collect();
            let get = |n: &str| idx(n).and_then(|i| t.counters.get(i)).map(|v| *v as f64);
            let mut ratios = Vec::new();
            if let (Some(i), Some(c)) = (get("instructions"), get("cycles")) {
                if c > 0.0 {
                    ratios.push(("IPC", i / c));
                }
            }
            if let (Some(m), Some(r)) = (get("cache-misses"), get("cache-references")) {
                if r > 0.0 {
                    ratios.push(("cache-miss %", 100.0 * m / r));
                }
            }
            if let (Some(b), Some(i)) = (get("branch-misses"), get("instructions")) {
                if i > 0.0 {
                    ratios.push(("branch-miss/1k instr", 1000.0 * b / i));
                }
            }
            CounterRow { name: p.display_name(*id), entries: t.counted, per_entry, ratios }
        })
        .collect();
    rows.sort_by(|a, b| b.entries.cmp(&a.entries).then_with(|| a.name.cmp(&b.name)));
    Counters { names, unavailable, rows }
}

/// The call tree depth first, children by total time, leaving out nodes
/// below `min_share` of the outermost scopes' total, or of the session's
/// duration where that is less (the outermost scopes of threads that ran
/// at once add up to more than the session lasted, and a node that took a
/// share of the session's time must not drop out because other threads
/// were busy too). What is left out is counted under its parent; the
/// outermost scopes left out are the second value.
pub(crate) fn tree_rows(p: &Profile, min_share: f64) -> (Vec<TreeRow>, Option<Omitted>) {
    let nodes = &p.call_tree.nodes;
    let all: u64 =
        p.call_tree.roots().iter().fold(0u64, |a, &n| a.saturating_add(nodes[n].total_ns));
    let base = if p.duration_ns > 0 { all.min(p.duration_ns) } else { all };
    let floor = (base as f64 * min_share) as u64;
    // The nodes that stay, and what each parent's cut leaves out.
    let keep = |children: &[usize]| -> (Vec<usize>, Option<Omitted>) {
        let (kept, cut): (Vec<usize>, Vec<usize>) =
            children.iter().partition(|&&c| nodes[c].total_ns >= floor);
        let omitted = (!cut.is_empty()).then(|| Omitted {
            count: cut.len(),
            total_ns: cut.iter().fold(0u64, |a, &c| a.saturating_add(nodes[c].total_ns)),
        });
        (kept, omitted)
    };
    let mut rows = Vec::new();
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let push_children = |stack: &mut Vec<(usize, usize)>, mut c: Vec<usize>, depth: usize| {
        // Heaviest last, so it is popped first.
        c.sort_by(|a, b| nodes[*a].total_ns.cmp(&nodes[*b].total_ns).then_with(|| b.cmp(a)));
        stack.extend(c.into_iter().map(|n| (n, depth)));
    };
    let (roots, roots_omitted) = keep(p.call_tree.roots());
    push_children(&mut stack, roots, 0);
    while let Some((n, depth)) = stack.pop() {
        let node = &nodes[n];
        // Direct recursion, a scope whose only callee is itself, is one row.
        let (mut last, mut levels, mut self_ns) = (n, 1, node.self_ns);
        while let [only] = nodes[last].children[..] {
            if nodes[only].scope != node.scope {
                break;
            }
            (last, levels) = (only, levels + 1);
            self_ns = self_ns.saturating_add(nodes[only].self_ns);
        }
        let (children, omitted) = keep(&nodes[last].children);
        rows.push(TreeRow {
            depth,
            name: p.display_name(node.scope),
            count: node.count,
            total_ns: node.total_ns,
            self_ns,
            recursion: levels,
            omitted,
        });
        push_children(&mut stack, children, depth + 1);
    }
    (rows, roots_omitted)
}

/// Allocation sites grouped by their user location, most bytes first.
/// `short_lived_ns` is the lifetime under which a freed block counts as short-lived.
/// `located`: the sites' locations ([`crate::model::sites::Symbols::located`]).
pub(crate) fn site_rows(
    profile: &Profile,
    located: &crate::model::sites::Located,
    short_lived_ns: u64,
) -> Vec<SiteRow> {
    let root = crate::model::sites::project_root(&profile.meta.program);
    let mut rows: BTreeMap<(String, String), SiteRow> = BTreeMap::new();
    let mut lifetimes: BTreeMap<(String, String), pulse_format::Histogram> = BTreeMap::new();
    // The caller shown for a row: its busiest stack's.
    let mut callers: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
    for (id, st) in &profile.sites {
        let site = located.get(id);
        let (function, place) = crate::model::sites::row_key(site, *id, &root);
        let events = st.allocs.saturating_add(st.reallocs);
        let caller = callers.entry((function.clone(), place.clone())).or_insert((0, String::new()));
        if let Some(c) = site.and_then(|s| s.called_from.as_ref()) {
            if caller.1.is_empty() || events > caller.0 {
                *caller = (events, c.display(&root));
            }
        }
        lifetimes
            .entry((function.clone(), place.clone()))
            .or_insert_with(pulse_format::Histogram::coarse)
            .merge(&st.lifetimes);
        let row = rows.entry((function.clone(), place.clone())).or_insert_with(|| SiteRow {
            function,
            place,
            called_from: String::new(),
            stacks: 0,
            allocs: 0,
            bytes: 0,
            reallocs: 0,
            max_size: 0,
            live_blocks_at_end: 0,
            live_bytes_at_end: 0,
            bytes_at_peak: 0,
            peak_live_bytes: 0,
            peak_live_exact: true,
            mean_size: 0,
            freed: 0,
            lifetime_p50_ns: 0,
            lifetime_p99_ns: 0,
            short_lived: 0,
            temporary: 0,
        });
        row.stacks += 1;
        row.allocs = row.allocs.saturating_add(st.allocs);
        row.bytes = row.bytes.saturating_add(st.bytes);
        row.reallocs = row.reallocs.saturating_add(st.reallocs);
        row.max_size = row.max_size.max(st.max_size);
        row.live_blocks_at_end = row.live_blocks_at_end.saturating_add(st.live_blocks_at_end);
        row.live_bytes_at_end = row.live_bytes_at_end.saturating_add(st.live_bytes_at_end);
        row.bytes_at_peak = row.bytes_at_peak.saturating_add(st.bytes_at_peak);
        row.peak_live_bytes = row.peak_live_bytes.max(st.peak_live_bytes);
        row.short_lived =
            row.short_lived.saturating_add(st.freed_within(short_lived_ns, profile.ticks_per_ns));
        row.temporary = row.temporary.saturating_add(st.temporary);
    }
    let ns = |ticks: u64| (ticks as f64 / profile.ticks_per_ns).round() as u64;
    let sampled = profile.sample_interval().is_some();
    for (key, row) in &mut rows {
        row.mean_size = row.bytes / row.allocs.saturating_add(row.reallocs).max(1);
        // The row's live bytes are its stacks' summed: at least each
        // stack's, and what the sum was at the two moments recorded for it.
        row.peak_live_bytes = row.peak_live_bytes.max(row.bytes_at_peak).max(row.live_bytes_at_end);
        // Sampled, a stack's live bytes are its sampled blocks' only.
        row.peak_live_exact = row.stacks == 1 && !sampled;
        if let Some((_, c)) = callers.remove(key) {
            row.called_from = c;
        }
        if let Some(h) = lifetimes.get(key) {
            row.freed = h.count();
            row.lifetime_p50_ns = ns(h.quantile(0.5));
            row.lifetime_p99_ns = ns(h.quantile(0.99));
        }
    }
    let mut rows: Vec<SiteRow> = rows.into_values().collect();
    rows.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.function.cmp(&b.function)));
    rows
}

/// The bytes of names a profile's stacks, or its call tree's paths, may
/// expand to (see [`crate::STACK_TEXT_PER_BYTE`]).
pub(crate) fn stack_budget(p: &Profile) -> u64 {
    crate::model::sites::text_budget(p.decoded_bytes)
}

/// The warnings a profile deserves, one line each.
pub(crate) fn warnings(p: &Profile) -> Vec<String> {
    let mut w = Vec::new();
    if p.threads.is_empty() && p.truncated.is_none() {
        w.push(String::from(
            "the session holds no events: was pulse the program's global allocator, and did a session run while it worked?",
        ));
    }
    if let Some(t) = &p.truncated {
        w.push(format!("{t}; this report covers every whole chunk before the cut"));
    }
    if let Some(mean_bytes) = p.sample_interval() {
        w.push(format!(
            "allocation sites are estimates from a byte-weighted sample of stacks (one per {} allocated on average; a site's relative error is about √(that / its bytes)), scaled to add up to the exact totals; what a site had live at the peak is estimated from its sampled blocks live there where 30 or more were, the rest of the peak under (no stack captured), else it is its sampled blocks' alone; what it had live at the end is its sampled blocks' alone, the others' under (no stack captured)",
            crate::write::units::Bytes(mean_bytes)
        ));
    }
    if !p.memory.counted_only {
        let depth = p
            .meta
            .extra
            .iter()
            .find(|(k, _)| k == crate::model::sites::STACK_DEPTH_KEY)
            .and_then(|(_, v)| v.parse().ok());
        // In sample mode most events carry no stack by design (site 0).
        let sampled = p.sample_interval().is_some();
        let weights = p
            .sites
            .iter()
            .filter(|(id, _)| !(sampled && **id == NO_SITE))
            .map(|(id, s)| (*id, s.allocs.saturating_add(s.reallocs)));
        w.extend(p.symbols.build_warnings(weights, depth));
    }
    let a = &p.anomalies;
    if a.unknown_frees > 0 {
        w.push(format!(
            "{} of blocks allocated before the session began (not counted as live)",
            if a.unknown_frees == 1 {
                String::from("1 free")
            } else {
                format!("{} frees", a.unknown_frees)
            }
        ));
    }
    if a.unmatched_exits > 0 {
        w.push(format!("{} scope exits without a matching entry", a.unmatched_exits));
    }
    if a.open_at_end > 0 {
        let (n, was) = if a.open_at_end == 1 { ("1 scope", "was") } else { ("", "were") };
        let n = if n.is_empty() { format!("{} scopes", a.open_at_end) } else { n.to_owned() };
        w.push(format!("{n} {was} still open when the session ended; timed up to its end"));
    }
    if a.beyond_call_tree > 0 {
        w.push(format!(
            "{} scope entries nested deeper than {} levels, or on paths beyond the call tree's {} nodes, are counted in the self time of their enclosing call-tree node",
            a.beyond_call_tree,
            pulse_format::MAX_TREE_DEPTH,
            pulse_format::MAX_TREE_NODES
        ));
    }
    if p.symbols.dropped_frames > 0 {
        w.push(format!(
            "{} stack frames past a stack's {} or an address's {} inlined ones were left out",
            p.symbols.dropped_frames,
            crate::model::sites::MAX_STACK_FRAMES,
            crate::model::sites::MAX_INLINED_FRAMES
        ));
    }
    if p.symbols.over_budget_frames > 0 {
        w.push(format!(
            "{} stack frames were left out: the stacks name more than {} bytes of frames ({} a byte of the session as decoded, and {} MiB), each keeping its innermost frames that fit",
            p.symbols.over_budget_frames,
            stack_budget(p),
            crate::model::sites::STACK_TEXT_PER_BYTE,
            crate::model::sites::STACK_TEXT_BASE >> 20
        ));
    }
    if let Some(n) = crate::model::stacks::paths_over_budget(p) {
        w.push(format!(
            "{n} call-tree paths were left out of the folded stacks and the flamegraph by time: their names come to more than {} bytes; their time counts in their enclosing path's",
            stack_budget(p)
        ));
    }
    if a.clock_steps_back > 0 {
        w.push(format!(
            "the clock stepped back {} times within a thread; a duration across a step counts as zero",
            a.clock_steps_back
        ));
    }
    if a.unsymbolized_addresses > 0 {
        w.push(format!(
            "{} stack addresses have no symbol (the session ended before writing its symbols?): they show as bare addresses",
            a.unsymbolized_addresses
        ));
    }
    if a.undefined_sites > 0 {
        w.push(format!(
            "{} allocation sites have no stack in the session: they show as \"site #N\"",
            a.undefined_sites
        ));
    }
    if a.long_scope_names > 0 {
        w.push(format!(
            "{} scope names or categories longer than {} bytes were cut",
            a.long_scope_names,
            crate::model::profile::MAX_SCOPE_NAME
        ));
    }
    if a.reused_live_addresses > 0 {
        w.push(format!(
            "{} allocations at an address that was still live",
            a.reused_live_addresses
        ));
    }
    if p.memory.counted_only {
        w.push(String::from(
            "allocations were counted, not recorded (count mode): no peak, no sites; run with PULSE_ALLOC=full for them",
        ));
    }
    if let Some(t) = p.trailer.as_ref().filter(|_| !p.memory.counted_only) {
        let m = &p.memory;
        let checks = [
            ("allocs", m.allocs),
            ("frees", m.frees),
            ("reallocs", m.reallocs),
            ("bytes_allocated", m.bytes_allocated),
        ];
        // The trailer's totals are the whole session's: a view of some
        // threads cannot match them.
        let whole = p.selection.is_none();
        for (key, replayed) in checks.into_iter().filter(|_| whole) {
            if let Some(counted) = t.extra(key) {
                if counted != replayed {
                    w.push(format!(
                        "the allocator counted {counted} {key} but the file holds {replayed}: events were lost"
                    ));
                }
            }
        }
        if t.lost_events > 0 {
            w.push(format!(
                "{} events were lost: the session's writer stalled while the program's rings were full",
                t.lost_events
            ));
        }
    }
    w
}
