//! Recommendations: rules that turn the figures into advice a developer can
//! act on, each with the evidence, the place, and what to change.
//!
//! A rule fires only where the numbers support it: every threshold below is
//! a field of [`RecommendOptions`], and a program with no problem gets no
//! advice. What is at stake — the share of the session's scoped time, or of
//! its allocated bytes or allocations — sets the severity and the order.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use crate::model::history::Trend;
use crate::model::profile::Profile;
use crate::model::sites::{project_root, short_path};
use crate::write::units::{Bytes, Nanos};

/// Between a dependency's line and the program's own line that calls it in
/// a [`Recommendation::location`].
pub(crate) const CALLED_FROM: &str = ", called from ";

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Under 5 % at stake.
    Low,
    /// 5 % or more.
    Medium,
    /// 20 % or more.
    High,
    /// 50 % or more, or a leak that grows to the end.
    Critical,
}

impl Severity {
    fn of(share: f64) -> Severity {
        match share {
            s if s >= 0.5 => Severity::Critical,
            s if s >= 0.2 => Severity::High,
            s if s >= 0.05 => Severity::Medium,
            _ => Severity::Low,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// One scope takes much of the time in few, long entries.
    SlowFunction,
    /// A scope entered very often takes much of the time.
    HotLoop,
    /// Many small allocations freed almost at once.
    ShortLivedAllocation,
    /// A vector or string grown step by step.
    ReallocChurn,
    /// Memory never given back, still growing at the end.
    Leak,
    /// Single allocations large enough to matter on their own.
    LargeAllocation,
    /// A scope allocates on almost every entry.
    FrequentAllocation,
    /// Few instructions per cycle where counters were read.
    LowIpc,
    /// Few instructions per cycle, most cache references missed: the
    /// processor waits on memory.
    CacheMissHeavy,
    /// Scopes nested very deep on one path: deep recursion.
    DeepCallStack,
}

impl Category {
    /// Lower-case name, as the JSON writes it (`slow-function`).
    pub fn name(self) -> &'static str {
        match self {
            Category::SlowFunction => "slow-function",
            Category::HotLoop => "hot-loop",
            Category::ShortLivedAllocation => "short-lived-allocation",
            Category::ReallocChurn => "realloc-churn",
            Category::Leak => "leak",
            Category::LargeAllocation => "large-allocation",
            Category::FrequentAllocation => "frequent-allocation",
            Category::LowIpc => "low-ipc",
            Category::CacheMissHeavy => "cache-miss-heavy",
            Category::DeepCallStack => "deep-call-stack",
        }
    }
}

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Recommendation {
    /// How much it matters.
    pub severity: Severity,
    /// What kind of problem it is.
    pub category: Category,
    /// Where: a scope, or a function with its `file:line`.
    pub location: String,
    /// The figures that support it.
    pub evidence: String,
    /// What to change.
    pub fix: String,
    /// The share of time, bytes or allocations at stake (0..1).
    pub stake: f64,
}

/// Thresholds; every rule reads its own.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecommendOptions {
    /// A scope is a hotspot from this share of all the scoped self time:
    /// the majority, by default — among several scopes one always leads,
    /// and leading is not yet a problem.
    pub hotspot_share: f64,
    /// …and spends at least this many nanoseconds in its own code: a few
    /// milliseconds are not worth a developer's time, whatever their share.
    pub hotspot_min_ns: u64,
    /// A hotspot is a hot loop from this many entries.
    pub hot_loop_count: u64,
    /// An allocation is short-lived when freed within this many nanoseconds.
    pub short_lived_ns: u64,
    /// A site is flagged from this many short-lived allocations…
    pub short_lived_min: u64,
    /// …making up at least this share of its allocations.
    pub short_lived_share: f64,
    /// A site churns reallocations from this many…
    pub realloc_min: u64,
    /// …or from a few (8) when its buffer ends this large: amortized growth
    /// of a big vector copies about twice its final size.
    pub realloc_large_bytes: u64,
    /// Time rules compare scopes: they need at least this many.
    pub min_scopes: usize,
    /// An allocation is large from this many bytes.
    pub large_bytes: u64,
    /// A scope allocates frequently from this many allocations per entry…
    pub frequent_per_entry: f64,
    /// …over at least this many entries.
    pub frequent_min_entries: u64,
    /// Instructions per cycle below this are low.
    pub low_ipc: f64,
    /// A scope is cache-miss heavy from this many cache misses per thousand
    /// instructions, while it retires fewer than one instruction a cycle…
    pub cache_misses_per_k: f64,
    /// …or, with a low IPC, from this share of its cache references missed.
    pub cache_miss_rate: f64,
    /// Counter findings need at least this share of the scoped time, the
    /// scope's callees included (counters are read at its boundaries).
    pub counter_min_share: f64,
    /// Scopes nested this deep on one path are a deep call stack.
    pub deep_nesting: usize,
}

impl Default for RecommendOptions {
    fn default() -> Self {
        RecommendOptions {
            hotspot_share: 0.5,
            hotspot_min_ns: 10_000_000,
            hot_loop_count: 1000,
            short_lived_ns: 10_000,
            short_lived_min: 10_000,
            short_lived_share: 0.5,
            realloc_min: 1_000,
            realloc_large_bytes: 1 << 20,
            min_scopes: 3,
            large_bytes: 64 << 20,
            frequent_per_entry: 1.0,
            frequent_min_entries: 1_000,
            low_ipc: 0.5,
            cache_misses_per_k: 20.0,
            cache_miss_rate: 0.3,
            counter_min_share: 0.05,
            deep_nesting: 64,
        }
    }
}

/// The recommendations for `profile`, most at stake first.
pub fn recommend(p: &Profile, o: &RecommendOptions) -> Vec<Recommendation> {
    let located = p.symbols.located(p.sites.keys());
    recommend_given(p, o, &located, &crate::model::leaks::leaks_with_stacks(p, 0, Some(&located)))
}

/// [`recommend`], with `p`'s sites located and its blocks live at the end
/// found already (its [`crate::leaks`], stacks or none): a report finds
/// them once for its own rows and the recommendations.
pub(crate) fn recommend_given(
    p: &Profile,
    o: &RecommendOptions,
    located: &crate::model::sites::Located,
    leaks: &[crate::model::leaks::Leak],
) -> Vec<Recommendation> {
    let mut out = Vec::new();
    time_rules(p, o, &mut out);
    counter_rules(p, o, &mut out);
    nesting_rules(p, o, &mut out);
    memory_rules(p, o, located, leaks, &mut out);
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.stake.total_cmp(&a.stake))
            .then_with(|| a.location.cmp(&b.location))
    });
    out
}

/// `n thing` or `n things` (`entry`, `entries`).
fn n(count: u64, thing: &str) -> String {
    match thing.strip_suffix('y') {
        _ if count == 1 => format!("1 {thing}"),
        Some(stem) => format!("{count} {stem}ies"),
        None => format!("{count} {thing}s"),
    }
}

/// What discounting the scopes' slow entries did to this one's share, where
/// it moved it by five points or more: said so that the share and the time
/// beside it add up.
fn discounted(share: f64, self_ns: u64, raw_total: u64) -> String {
    let measured = self_ns as f64 / raw_total.max(1) as f64;
    if (measured - share).abs() < 0.05 {
        return String::new();
    }
    format!(
        " (the scopes' slowest entries, preempted or waiting, counted at each one's median \
         pace; {} as measured)",
        pct(measured)
    )
}

fn pct(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

fn time_rules(p: &Profile, o: &RecommendOptions, out: &mut Vec<Recommendation>) {
    // Self time discounted for outliers: an entry that was preempted for
    // milliseconds inflates a scope's total but not its median, so the
    // total beyond the median's pace (median × entries) comes off the self
    // time, as far as the scopes it called cannot hold it: a callee that
    // slept inflates its caller's total too, and is discounted itself.
    let robust = |t: &pulse_format::ScopeTime| -> u64 {
        let typical = t.p50_ns.saturating_mul(t.count).min(t.total_ns);
        let beyond = t.total_ns - typical;
        let callees = t.total_ns.saturating_sub(t.self_ns);
        t.self_ns.saturating_sub(beyond.saturating_sub(callees))
    };
    let scoped: u64 = p.scope_times.values().fold(0u64, |a, t| a.saturating_add(robust(t)));
    let raw: u64 = p.scope_times.values().fold(0u64, |a, t| a.saturating_add(t.self_ns));
    // One scope, or two, always take most of the scoped time: that is no
    // finding. A hotspot stands out among several.
    if scoped == 0 || p.scope_times.len() < o.min_scopes {
        return;
    }
    for (id, t) in &p.scope_times {
        let share = robust(t) as f64 / scoped as f64;
        let name = p.display_name(*id);
        if share >= o.hotspot_share && robust(t) >= o.hotspot_min_ns {
            let hot_loop = t.count >= o.hot_loop_count;
            out.push(Recommendation {
                severity: Severity::of(share),
                category: if hot_loop { Category::HotLoop } else { Category::SlowFunction },
                location: name.clone(),
                evidence: format!(
                    "{} of the scoped time in its own code{}: {} over {}, {} each (p99 {})",
                    pct(share),
                    discounted(share, t.self_ns, raw),
                    Nanos(t.self_ns),
                    n(t.count, "entry"),
                    Nanos(t.mean_ns),
                    Nanos(t.p99_ns)
                ),
                fix: if hot_loop {
                    String::from("it runs very often: hoist work that does not change out of the loop, cache results, or batch the calls")
                } else {
                    String::from("look at the algorithm: a better data structure or fewer passes over the data")
                },
                stake: share,
            });
        }
        if t.count >= o.frequent_min_entries
            && t.allocs as f64 / t.count as f64 >= o.frequent_per_entry
        {
            let total_allocs = p.memory.allocs.max(1);
            let share = t.allocs as f64 / total_allocs as f64;
            out.push(Recommendation {
                severity: Severity::of(share),
                category: Category::FrequentAllocation,
                location: name.clone(),
                evidence: format!(
                    "{:.1} allocations per entry over {} entries ({} of all allocations)",
                    t.allocs as f64 / t.count as f64,
                    t.count,
                    pct(share)
                ),
                fix: String::from("reuse a buffer across entries (clear it instead of building a new one), or write into the caller's"),
                stake: share,
            });
        }
    }
}

/// The figures a scope's counters were read for, summed over its entries
/// (`None` where that counter was not opened).
fn reading(p: &Profile, scope: u32, name: &str) -> Option<f64> {
    let t = p.scope_times.get(&scope)?;
    let i = p
        .meta
        .counters
        .iter()
        .filter(|c| c.available)
        .take(crate::model::report::MAX_COUNTERS)
        .position(|c| c.name == name)?;
    t.counters.get(i).map(|v| *v as f64)
}

/// Low IPC and memory-bound scopes, where the hardware counters were read.
/// Readings are taken at a scope's boundaries, so they cover its callees:
/// what is at stake is its total time, not its self time.
fn counter_rules(p: &Profile, o: &RecommendOptions, out: &mut Vec<Recommendation>) {
    let scoped: u64 = p.scope_times.values().fold(0u64, |a, t| a.saturating_add(t.self_ns));
    if scoped == 0 {
        return;
    }
    for (id, t) in &p.scope_times {
        if t.counted == 0 {
            continue;
        }
        let (Some(instr), Some(cycles)) =
            (reading(p, *id, "instructions"), reading(p, *id, "cycles"))
        else {
            continue;
        };
        if cycles <= 0.0 || instr <= 0.0 {
            continue;
        }
        let share = (t.total_ns as f64 / scoped as f64).min(1.0);
        if share < o.counter_min_share {
            continue;
        }
        let ipc = instr / cycles;
        let misses = reading(p, *id, "cache-misses");
        let refs = reading(p, *id, "cache-references");
        let mpki = misses.map(|m| 1000.0 * m / instr);
        let miss_rate = match (misses, refs) {
            (Some(m), Some(r)) if r > 0.0 => Some(m / r),
            _ => None,
        };
        // Memory-bound: many misses for the work done, or, where the
        // instructions are few, most references missing.
        let memory_bound = ipc < 1.0 && mpki.is_some_and(|k| k >= o.cache_misses_per_k)
            || ipc < o.low_ipc && miss_rate.is_some_and(|r| r >= o.cache_miss_rate);
        if ipc >= o.low_ipc && !memory_bound {
            continue;
        }
        let mut evidence = format!("{ipc:.2} instructions per cycle");
        if let (Some(r), Some(k)) = (miss_rate, mpki) {
            evidence += &format!(
                ", {:.0} % of cache references missed ({k:.0} misses per 1k instructions)",
                100.0 * r
            );
        }
        let branch = reading(p, *id, "branch-misses").map(|b| 1000.0 * b / instr);
        if let Some(b) = branch.filter(|_| !memory_bound) {
            evidence += &format!(", {b:.1} branch misses per 1k instructions");
        }
        evidence += &format!(
            ", over {} of the scoped time (callees included, {} read)",
            pct(share),
            n(t.counted, "entry")
        );
        let (category, fix) = if memory_bound {
            (
                Category::CacheMissHeavy,
                "the processor mostly waits on memory here: keep the data it touches together (a Vec of values rather than of boxes, struct-of-arrays for hot fields), visit it in order, and shrink it (smaller types, fewer pointers to chase)",
            )
        } else {
            (
                Category::LowIpc,
                "the processor stalls here without cache misses to blame: look for a long dependency chain (each step waiting on the last), divisions, or unpredictable branches (sort or partition the data, or make the branch arithmetic)",
            )
        };
        out.push(Recommendation {
            severity: Severity::of(share).min(Severity::High),
            category,
            location: p.display_name(*id),
            evidence,
            fix: String::from(fix),
            stake: share,
        });
    }
}

/// Scopes nested `deep_nesting` deep or more on one path of the call tree:
/// recursion that deep pays a frame and a scope entry per level, and can
/// overflow the thread's stack. One finding per scope at that depth.
fn nesting_rules(p: &Profile, o: &RecommendOptions, out: &mut Vec<Recommendation>) {
    let nodes = &p.call_tree.nodes;
    if nodes.len() <= o.deep_nesting {
        return;
    }
    let scoped: u64 = p.scope_times.values().fold(0u64, |a, t| a.saturating_add(t.self_ns));
    // A node's parent comes before it, so one pass gives every depth.
    let mut depth = vec![0usize; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        if let Some(parent) = n.parent.filter(|&q| q < i) {
            depth[i] = depth[parent] + 1;
        }
    }
    // By scope: the deepest level reached, and the time below the threshold
    // (nodes at exactly the threshold depth are disjoint subtrees).
    let mut deep: BTreeMap<u32, (usize, u64, u64)> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if depth[i] < o.deep_nesting {
            continue;
        }
        let e = deep.entry(n.scope).or_default();
        e.0 = e.0.max(depth[i]);
        if depth[i] == o.deep_nesting {
            e.1 = e.1.saturating_add(n.total_ns);
            e.2 = e.2.saturating_add(n.count);
        }
    }
    for (scope, (max_depth, below_ns, entries)) in deep {
        let share = if scoped == 0 { 0.0 } else { (below_ns as f64 / scoped as f64).min(1.0) };
        out.push(Recommendation {
            severity: Severity::of(share).min(Severity::Medium),
            category: Category::DeepCallStack,
            location: p.display_name(scope),
            evidence: format!(
                "scopes nested {max_depth} deep on one path; {} of the scoped time below depth {} ({} there)",
                pct(share),
                o.deep_nesting,
                n(entries, "entry")
            ),
            fix: String::from("recursion this deep pays a frame and a scope entry per level and can overflow the stack: turn it into a loop over an explicit stack (a Vec), or memoize repeated calls"),
            stake: share,
        });
    }
}

fn memory_rules(
    p: &Profile,
    o: &RecommendOptions,
    located: &crate::model::sites::Located,
    leaks: &[crate::model::leaks::Leak],
    out: &mut Vec<Recommendation>,
) {
    let m = &p.memory;
    if m.counted_only || m.allocs == 0 {
        return;
    }
    let root = project_root(&p.meta.program);
    let sampled = p.sample_interval().is_some();
    // Sites grouped by the user's line: advice is about a line of code.
    #[derive(Default)]
    struct Line {
        /// The line alone, without the program's line that calls it.
        shown: String,
        allocs: u64,
        bytes: u64,
        reallocs: u64,
        /// Those of `reallocs` that made their block smaller.
        shrinks: u64,
        max_size: u64,
        short: u64,
        temporary: u64,
        /// Blocks whose last allocation or resize was here, freed or live
        /// at the end: for a line that only resizes, the blocks it resized.
        ended: u64,
        /// In a sampled session, the sampled events of its sites, which
        /// `short`, `temporary` and `ended` are estimated from.
        sampled: u64,
        /// The program's line that calls it, when it is a dependency's (part
        /// of its name: every site of the line shares it).
        caller: String,
        /// Its sites that reallocate on the program's own line (not a
        /// dependency's), with their reallocations.
        growing: Vec<(u32, u64)>,
        /// Whether the line is a dependency's or the standard library's.
        dependency: bool,
    }
    let mut lines: BTreeMap<String, Line> = BTreeMap::new();
    let keys = LineKeys::new(p, located, &root);
    for (id, s) in &p.sites {
        let Some(site) = located.get(id) else { continue };
        let Some(named) = keys.named.get(id) else { continue };
        let l = lines.entry(named.key.clone()).or_default();
        if l.shown.is_empty() {
            l.shown = named.shown.clone();
        }
        if let (true, Some(c)) = (l.caller.is_empty(), &named.caller) {
            l.caller = c.clone();
        }
        use crate::model::sites::FrameKind;
        l.dependency |= matches!(
            site.kind,
            FrameKind::Dependency | FrameKind::Std | FrameKind::Plumbing | FrameKind::Pulse
        );
        l.allocs = l.allocs.saturating_add(s.allocs);
        l.bytes = l.bytes.saturating_add(s.bytes);
        l.reallocs = l.reallocs.saturating_add(s.reallocs);
        l.shrinks = l.shrinks.saturating_add(s.shrinks.min(s.reallocs));
        let grown = s.reallocs - s.shrinks.min(s.reallocs);
        if grown > 0 && site.kind == FrameKind::Own {
            l.growing.push((*id, grown));
        }
        l.max_size = l.max_size.max(s.max_size);
        // In a sampled session the frees and the blocks live at the end
        // are estimates (each sampled block counted as the blocks it
        // stands for).
        let live = s.estimated_live_blocks_at_end;
        l.short = l.short.saturating_add(s.freed_within(o.short_lived_ns, p.ticks_per_ns));
        l.temporary = l.temporary.saturating_add(s.temporary);
        l.ended = l.ended.saturating_add(s.lifetimes.count()).saturating_add(live);
        l.sampled = l.sampled.saturating_add(s.sampled_events);
    }
    let total_allocs = m.allocs.saturating_add(m.reallocs).max(1) as f64;
    let total_bytes = m.bytes_allocated.max(1) as f64;
    // Buffers made on one line and grown on others: one finding where they
    // are made, in place of one on each line that grew them; what the lines
    // grew besides is left to their own findings.
    let (spread, rest) = spread_growth(p, located, &keys, |allocs, grown, max_size| {
        let many = grown >= o.realloc_min && grown >= allocs;
        let big = grown >= 8 && max_size >= o.realloc_large_bytes;
        many || big
    });
    for b in &spread {
        let allocs = b.allocs;
        let share = (b.grown as f64 / total_allocs).max(b.bytes as f64 / total_bytes / 2.0);
        let here = match (&b.first, b.direct) {
            (Some(first), false) => format!("inside {first}, called here"),
            (Some(first), true) => format!("here or inside {first}, called here"),
            (None, _) => String::from("here"),
        };
        let made = match allocs {
            0 | 1 => format!("first allocated {here}"),
            n => format!("{n} blocks first allocated {here}"),
        };
        let grown_to = if allocs > 1 { "the largest to" } else { "to" };
        // Shrunk, then grown again: the capacity it was made with was
        // given back, not missing.
        let regrown = b.regrown.saturating_mul(2) >= b.grown && !b.shrunk_at.is_empty();
        let (then, fix) = if regrown {
            (
                format!(", shrunk ({}), then", b.shrunk_at),
                "it is shrunk (shrink_to_fit, shrink_to) and grown again: keep its capacity, and shrink it only once it has stopped growing",
            )
        } else {
            (String::from(","), "give the buffer its capacity where it is made: String::with_capacity / Vec::with_capacity when it is created, or reserve(n) right after, for what the other lines add")
        };
        out.push(Recommendation {
            severity: Severity::of(share),
            category: Category::ReallocChurn,
            location: b.place.clone(),
            evidence: format!(
                "{made}{then} grown {} afterwards on {}, {grown_to} {} ({} allocated, copies included)",
                times(b.grown),
                b.lines,
                Bytes(b.max_size),
                Bytes(b.bytes)
            ),
            fix: String::from(fix),
            stake: share,
        });
    }
    // Where the blocks a line reallocates were first allocated, by the
    // program's other lines: a line that only reallocates frees nothing of
    // its own making, and its short-lived finding names the line that
    // makes them. Each origin's reallocations here, growing and shrinking.
    let mut made_at: HashMap<&str, BTreeMap<&str, Resized>> = HashMap::default();
    for g in &p.growth {
        let (Some(site), Some(origin)) = (keys.named.get(&g.site), keys.named.get(&g.origin))
        else {
            continue;
        };
        let own =
            located.get(&g.origin).is_some_and(|o| o.kind == crate::model::sites::FrameKind::Own);
        if own && origin.key != site.key {
            let n = made_at.entry(site.key.as_str()).or_default();
            let n = n.entry(origin.shown.as_str()).or_default();
            n.grown = n.grown.saturating_add(g.reallocs);
            n.shrunk = n.shrunk.saturating_add(g.shrinks);
        }
    }
    // Findings on dependencies' lines, gathered by the program's line that
    // calls them (see `merge_inside`).
    let mut inside: Vec<Inside> = Vec::new();
    for (site, l) in &lines {
        // A line of a dependency or the standard library, reached from the
        // program's own code or not (a thread the dependency started).
        let in_dependency = l.dependency || !l.caller.is_empty();
        let place = site.clone();
        // A line that only allocates is weighed on its allocations. One
        // that resizes blocks (made elsewhere, or its own) is weighed on the
        // blocks whose last allocation or resize was there, freed or live
        // at the end: those are the ones its short-lived count is of (a
        // block may be resized several times). In a sampled session all
        // are estimates, said so, from enough sampled stacks to tell a
        // share.
        let resizes = l.reallocs > 0;
        let blocks = match (resizes, l.allocs) {
            (false, _) => l.allocs,
            // Each was resized here once at least (estimates apart).
            (true, 0) => l.ended.min(l.reallocs),
            (true, _) => l.ended,
        };
        // Sampled, the shares of the blocks that ended here are what the
        // sample tells; the blocks are the line's estimated ones.
        let of_blocks = |count: u64| match sampled {
            false => count,
            true => (count as f64 / l.ended.max(1) as f64 * blocks as f64).round() as u64,
        };
        let short = of_blocks(l.short).min(blocks);
        let enough = !sampled || l.sampled >= MIN_SAMPLED_STACKS;
        if enough
            && short >= o.short_lived_min
            && short as f64 >= o.short_lived_share * blocks as f64
        {
            let share = short as f64 / total_allocs;
            // The line whose blocks nine in ten of this one's reallocations
            // resize, where the program's own line only reallocates them.
            let made_on = made_at
                .get(site.as_str())
                .and_then(|m| m.iter().max_by_key(|(_, n)| n.all()))
                .filter(|(_, n)| {
                    l.allocs == 0
                        && !in_dependency
                        && l.reallocs > 0
                        && n.all() >= l.reallocs - l.reallocs / 10
                });
            // Its blocks, then its reallocations (a block may be resized
            // more than once), and where nine in ten of those were made.
            let what = "block";
            let of = match made_on {
                // As many blocks ended here as it made: its own.
                _ if !resizes || blocks == l.allocs => {
                    format!("of its {}", n(l.allocs, "allocation"))
                }
                _ if l.allocs > 0 => format!(
                    "of the {} it allocated or resized last ({}, {})",
                    n(blocks, what),
                    n(l.allocs, "allocation"),
                    n(l.reallocs, "reallocation")
                ),
                Some((line, k)) => format!(
                    "of the {} it resized ({}, {} of them on blocks made at {line})",
                    n(blocks, what),
                    n(l.reallocs, "reallocation"),
                    k.all().min(l.reallocs)
                ),
                None => format!(
                    "of the {} it resized ({})",
                    n(blocks, what),
                    n(l.reallocs, "reallocation")
                ),
            };
            // Not a part of the above: a block freed before the thread's
            // next allocation may have lived longer than the window.
            let temporary = of_blocks(l.temporary).min(blocks);
            let temporary = if temporary > 0 {
                format!("; {temporary} freed before the thread allocated anything else")
            } else {
                String::new()
            };
            let (about, from) = match sampled {
                true => ("about ", format!(" (estimated from {})", n(l.sampled, "sampled stack"))),
                false => ("", String::new()),
            };
            if in_dependency && !l.caller.is_empty() {
                inside.push(Inside {
                    at: out.len(),
                    caller: l.caller.clone(),
                    site: l.shown.clone(),
                    count: short,
                    of: blocks,
                    bytes: 0,
                    covered: 0,
                    sampled: l.sampled,
                });
            }
            out.push(Recommendation {
                severity: Severity::of(share),
                category: Category::ShortLivedAllocation,
                location: place.clone(),
                evidence: format!(
                    "{about}{short} {of} freed within {}{temporary}{from}",
                    Nanos(o.short_lived_ns),
                ),
                fix: match made_on {
                    Some((line, k)) => format!(
                        "the buffer is made at {line} and dropped soon after this line {} it: make it once outside the loop and reuse it (clear() keeps the capacity), or avoid the temporary: borrow, or write into an existing buffer",
                        k.verb()
                    ),
                    None if in_dependency => String::from(
                        "made inside a dependency, not on your line: call into it less often (reuse what it returns, batch the work), or use an API of the crate that fills a buffer you keep",
                    ),
                    None => String::from(
                        "allocate once outside the loop and reuse it (clear() keeps the capacity), or avoid the temporary: borrow, or write into an existing buffer",
                    ),
                },
                stake: share,
            });
        }
        // Growth step by step: the reallocations that made blocks larger. A
        // line that shrinks blocks (`shrink_to_fit`, a `Vec` collected in
        // place into a smaller element type) is no case for reserving.
        // Less the growth of buffers advised where they were made.
        let none = Rest::default();
        let r = rest.get(site).unwrap_or(&none);
        let grown = (l.reallocs - l.shrinks).saturating_sub(r.covered.0);
        let bytes = l.bytes.saturating_sub(r.covered.1);
        let max_size = if r.covered.0 > 0 { r.max_size } else { l.max_size };
        let many = grown >= o.realloc_min && grown >= l.allocs;
        let big = grown >= 8 && max_size >= o.realloc_large_bytes;
        if many || big {
            let share = (grown as f64 / total_allocs).max(bytes as f64 / total_bytes / 2.0);
            // Grown inside a `format!` of the program's own line: its own
            // string, not the caller's. (One in a dependency's line is
            // nothing the program's author can rewrite.)
            let in_format: u64 = l
                .growing
                .iter()
                .filter(|(id, _)| p.symbols.in_format(*id))
                .map(|(_, reallocs)| reallocs)
                .sum();
            let (inside_text, fix) = if in_format.saturating_mul(2) >= grown {
                let mut inside_text =
                    format!("; {in_format} of them inside format!, growing the string it builds");
                let mut fix = String::from("format! builds each string in a buffer of its own and grows it as it writes: write into the destination instead (write!(buf, ...) with std::fmt::Write, onto a buffer kept across the loop)");
                // The line also grows what it pushes the strings onto.
                let others = grown - in_format.min(grown);
                if others >= o.realloc_min {
                    inside_text.push_str(&format!(
                        ", the other {others} outside it, growing what the line pushes onto"
                    ));
                    fix.push_str("; and reserve the capacity of what it pushes onto (Vec::with_capacity, or reserve(n) before the loop)");
                }
                (inside_text, fix)
            } else if r.regrown.saturating_mul(2) >= grown && !r.shrunk_at.is_empty() {
                let shrunk: Vec<(String, u32)> = r.shrunk_at.iter().cloned().collect();
                let inside_text = format!(
                    "; {} of them growing blocks shrunk before ({})",
                    r.regrown,
                    places(&shrunk, &root)
                );
                (inside_text, String::from("they are shrunk (shrink_to_fit, shrink_to) and grown again: keep their capacity, and shrink them only once they have stopped growing"))
            } else if in_dependency {
                (String::new(), String::from("grown inside a dependency, not on your line: where the crate takes a capacity or a buffer to fill, hand it one sized up front; else call into it less often"))
            } else {
                (String::new(), String::from("reserve the capacity up front: Vec::with_capacity / String::with_capacity, or reserve(n) before the loop"))
            };
            if in_dependency && !l.caller.is_empty() && inside_text.is_empty() {
                inside.push(Inside {
                    at: out.len(),
                    caller: l.caller.clone(),
                    site: l.shown.clone(),
                    count: grown,
                    of: l.allocs,
                    bytes,
                    covered: r.covered.0,
                    sampled: l.sampled,
                });
            }
            out.push(Recommendation {
                severity: Severity::of(share),
                category: Category::ReallocChurn,
                location: place.clone(),
                evidence: if l.allocs == 0 {
                    // Blocks allocated elsewhere, grown here.
                    format!(
                        "{} of blocks allocated elsewhere, {} {} ({} allocated, copies included)",
                        n(grown, "reallocation"),
                        if grown > 1 { "grown step by step, the largest to" } else { "grown to" },
                        Bytes(max_size),
                        Bytes(bytes)
                    )
                } else {
                    format!(
                        "{} for {}: {} {} ({} allocated, copies included)",
                        n(grown, "reallocation"),
                        n(l.allocs, "allocation"),
                        // A site's blocks may be many small buffers and one
                        // large one (strings pushed onto a growing string).
                        if l.allocs > 1 {
                            "buffers grown step by step, the largest to"
                        } else {
                            "a buffer grown step by step to"
                        },
                        Bytes(max_size),
                        Bytes(bytes)
                    )
                } + &inside_text
                    + &besides(r.covered.0),
                fix,
                stake: share,
            });
        }
        if l.max_size >= o.large_bytes {
            let share = l.bytes as f64 / total_bytes;
            out.push(Recommendation {
                severity: Severity::of(share).min(Severity::Medium),
                category: Category::LargeAllocation,
                location: place.clone(),
                evidence: format!("a single allocation of {}", Bytes(l.max_size)),
                fix: String::from(
                    "stream or process in chunks rather than holding it whole, or reuse one buffer",
                ),
                stake: share,
            });
        }
    }
    merge_inside(out, inside, o, sampled, (total_allocs, total_bytes));
    // One finding per location, its stacks' blocks added up (a merge's
    // runs cut before they ended apart from the others).
    let mut growing: Vec<crate::model::leaks::Leak> = Vec::new();
    let mut at: std::collections::HashMap<(String, String, bool), usize> = Default::default();
    for leak in leaks.iter().filter(|l| l.trend == Trend::Growing) {
        let key = (leak.function.clone(), leak.place.clone(), leak.at_cut);
        match at.get(&key) {
            Some(&i) => {
                let g = &mut growing[i];
                g.blocks += leak.blocks;
                g.bytes = g.bytes.saturating_add(leak.bytes);
            }
            None => {
                at.insert(key, growing.len());
                growing.push(leak.clone());
            }
        }
    }
    // A file cut before its session ended (the program killed) ends where
    // the program may have been in the middle of its work.
    for leak in growing {
        // Sampled, the blocks whose stack was not sampled are every line's:
        // a leak among them shows at its own line's sampled blocks too.
        if sampled && leak.site == pulse_format::NO_SITE {
            continue;
        }
        let cut = leak.at_cut;
        let share = leak.bytes as f64 / m.peak_bytes.max(1) as f64;
        let severity = Severity::Critical.min(Severity::of(share).max(Severity::High));
        let fix = "something keeps these alive for good (Box::leak, a collection that only grows, an Rc cycle): free them, bound the collection, or break the cycle with Weak";
        let (severity, evidence, fix) = match cut {
            false => (
                severity,
                format!("{}, {} live at the end and still growing", n(leak.blocks, "block"), Bytes(leak.bytes)),
                String::from(fix),
            ),
            true => (
                severity.min(Severity::High),
                format!("{}, {} live when the file was cut, before the session ended, and still growing there: a leak, or work the program was in the middle of", n(leak.blocks, "block"), Bytes(leak.bytes)),
                format!("if it also grows to the end of a run that finishes, {fix}"),
            ),
        };
        out.push(Recommendation {
            severity,
            category: Category::Leak,
            location: match leak.place.is_empty() {
                true => leak.function.clone(),
                false => format!("{} ({})", leak.function, leak.place),
            },
            evidence,
            fix,
            stake: share,
        });
    }
}

/// The blocks one line of the program's own code allocated first, grown on
/// other lines too.
#[derive(Debug, Default)]
struct Spread {
    /// The line, as the per-line findings name it.
    place: String,
    /// The line that allocated the blocks first, where it is a helper's
    /// that `place` calls.
    first: Option<String>,
    /// Whether `place` allocated some of them itself, beside `first`.
    direct: bool,
    /// The allocations of the sites that allocated them first.
    allocs: u64,
    grown: u64,
    bytes: u64,
    max_size: u64,
    /// Those of `grown` that grew a block shrunk before.
    regrown: u64,
    /// Where they were grown, for reading: "this line and 2 others (a.rs:
    /// 12, 14)".
    lines: String,
    /// Where they were shrunk, for reading: "a.rs: 18".
    shrunk_at: String,
    /// Their growth (reallocations, bytes, the largest block) by the
    /// per-line findings' name of each line that grew them, this one
    /// included.
    covers: BTreeMap<String, (u64, u64, u64)>,
}

/// What is left of a line's growth for a finding of its own, once the
/// growth of buffers advised where they were made ([`Spread`]) is taken out.
#[derive(Debug, Default)]
struct Rest {
    /// Reallocations and bytes taken out.
    covered: (u64, u64),
    /// The largest block the rest grew to.
    max_size: u64,
    /// Those of the rest that grew a block shrunk before, and where those
    /// blocks were shrunk.
    regrown: u64,
    shrunk_at: std::collections::BTreeSet<(String, u32)>,
}

/// Lines beyond which the lines that grew a buffer are counted, not listed.
const SPREAD_LINES_SHOWN: usize = 8;

/// The functions that first allocated a buffer for the line that calls
/// them, the most allocations first: "a", "a and b", "a, b and 2 others".
fn first_made(first: &BTreeMap<String, u64>) -> Option<String> {
    let mut by: Vec<(&String, u64)> = first.iter().map(|(f, &n)| (f, n)).collect();
    by.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    match by.as_slice() {
        [] => None,
        [(a, _)] => Some((*a).clone()),
        [(a, _), (b, _)] => Some(format!("{a} and {b}")),
        [(a, _), (b, _), rest @ ..] => {
            Some(format!("{a}, {b} and {}", n(rest.len() as u64, "other")))
        }
    }
}

/// Where the program's buffers were grown and shrunk, by the line that made
/// them: those grown on other lines than it, each a [`Spread`] where its
/// growth is worth a finding (`worth`, given the growth and the largest
/// block), and for every line that grew blocks, what is left for a finding
/// of its own, by its per-line name.
fn spread_growth(
    p: &Profile,
    located: &crate::model::sites::Located,
    keys: &LineKeys,
    worth: impl Fn(u64, u64, u64) -> bool,
) -> (Vec<Spread>, HashMap<String, Rest>) {
    let root = keys.root.as_str();
    use crate::model::sites::FrameKind;
    /// The growth of the blocks one origin made.
    #[derive(Default)]
    struct Made<'a> {
        /// Where they were made, as the lines that grew them see it, and
        /// the line that allocated them first where that is another (a
        /// helper of the function that fills them).
        frame: Option<crate::model::sites::Frame>,
        /// The functions that allocated them first, where another, and
        /// their allocations (several helpers a line calls can make them).
        first: BTreeMap<String, u64>,
        /// The allocations of those the line made itself.
        direct: u64,
        /// The sites that allocated them first, and their allocations.
        origins: std::collections::BTreeSet<u32>,
        allocs: u64,
        own: bool,
        grown: u64,
        bytes: u64,
        max_size: u64,
        regrown: u64,
        /// The program's line that grew them (its file and line) → growth.
        by: BTreeMap<(&'a str, u32), u64>,
        /// The program's line that shrank them.
        shrunk_by: BTreeMap<(&'a str, u32), u64>,
        covers: BTreeMap<String, (u64, u64, u64)>,
    }
    // A dependency's line grows or shrinks for the program's line that
    // called it.
    fn at(site: &crate::model::sites::Site) -> &crate::model::sites::Frame {
        match &site.called_from {
            Some(caller) if site.kind != FrameKind::Own => caller,
            _ => &site.frame,
        }
    }
    // A buffer a helper allocated first for the function that fills it
    // (`let mut s = String::new(); header(&mut s); s.push_str(…)`) is made,
    // as that function sees it, on its line that calls the helper: the
    // innermost frame of the first allocation's stack in a function that
    // every stack that grew or shrank the blocks passes through (their
    // common caller, where the buffer lives), unless that is the first
    // allocation's own function.
    let mut growers: HashMap<u32, Vec<u32>> = HashMap::default();
    for g in &p.growth {
        let own = located.get(&g.origin).is_some_and(|o| o.kind == FrameKind::Own);
        if own && located.contains_key(&g.site) {
            growers.entry(g.origin).or_default().push(g.site);
        }
    }
    let mut stacks: HashMap<u32, Vec<crate::model::sites::Frame>> = HashMap::default();
    let mut placed: HashMap<u32, crate::model::sites::Frame> = HashMap::default();
    for (origin, sites) in growers {
        let o = &located[&origin];
        // Grown only in the function that allocated it first, or below it.
        let functions = |id: u32, stacks: &mut HashMap<u32, Vec<crate::model::sites::Frame>>| {
            let stack = stacks.entry(id).or_insert_with(|| p.symbols.user_stack(id));
            stack.iter().map(|f| f.function.clone()).collect::<Vec<String>>()
        };
        let grown_by: Vec<Vec<String>> = sites.iter().map(|&s| functions(s, &mut stacks)).collect();
        if grown_by.iter().all(|fs| fs.contains(&o.frame.function)) {
            continue;
        }
        let stack = stacks.entry(origin).or_insert_with(|| p.symbols.user_stack(origin));
        if let Some(f) =
            stack.iter().skip(1).find(|f| grown_by.iter().all(|fs| fs.contains(&f.function)))
        {
            placed.insert(origin, f.clone());
        }
    }
    let mut made: BTreeMap<String, Made> = BTreeMap::new();
    for g in &p.growth {
        let (Some(origin), Some(site)) = (located.get(&g.origin), located.get(&g.site)) else {
            continue;
        };
        let at = at(site);
        let own = origin.kind == FrameKind::Own;
        let placed = placed.get(&g.origin);
        let (frame, name) = match placed {
            Some(f) => (f.clone(), f.display(root)),
            None => (origin.frame.clone(), keys.shown(g.origin, origin)),
        };
        let m = made.entry(name).or_default();
        if m.origins.insert(g.origin) {
            let allocs = p.sites.get(&g.origin).map_or(0, |s| s.allocs);
            m.allocs = m.allocs.saturating_add(allocs);
            if placed.is_some() {
                let n = m.first.entry(origin.frame.display(root)).or_default();
                *n = n.saturating_add(allocs);
            } else {
                m.direct = m.direct.saturating_add(allocs);
            }
        }
        m.own = own;
        m.frame = Some(frame);
        let at = (at.file.as_str(), at.line);
        if g.shrinks > 0 {
            *m.shrunk_by.entry(at).or_default() += g.shrinks;
        }
        if g.reallocs == 0 {
            continue;
        }
        m.grown = m.grown.saturating_add(g.reallocs);
        m.bytes = m.bytes.saturating_add(g.bytes);
        m.max_size = m.max_size.max(g.max_size);
        m.regrown = m.regrown.saturating_add(g.regrown);
        *m.by.entry(at).or_default() += g.reallocs;
        let c = m.covers.entry(keys.key(g.site, site)).or_default();
        c.0 += g.reallocs;
        c.1 = c.1.saturating_add(g.bytes);
        c.2 = c.2.max(g.max_size);
    }
    let mut spreads = Vec::new();
    let mut rest: HashMap<String, Rest> = HashMap::default();
    for (place, m) in made {
        let Some(origin) = &m.frame else { continue };
        let here = (origin.file.as_str(), origin.line);
        let first = first_made(&m.first);
        let others: Vec<(&str, u32)> = m.by.keys().copied().filter(|&k| k != here).collect();
        let elsewhere: u64 = others.iter().map(|k| m.by[k]).sum();
        // Grown elsewhere for a tenth of its growth at least: one stray
        // growth elsewhere does not make a loop's buffer one of several lines.
        let spread = m.own
            && !others.is_empty()
            && elsewhere.saturating_mul(10) >= m.grown
            && worth(m.allocs, m.grown, m.max_size);
        if spread {
            let lines = match (m.by.contains_key(&here), others.len()) {
                (true, 1) => format!("this line and one other ({})", places(&others, root)),
                (true, k) => format!("this line and {k} others ({})", places(&others, root)),
                (false, 1) => format!("one other line ({})", places(&others, root)),
                (false, k) => format!("{k} other lines ({})", places(&others, root)),
            };
            let shrunk: Vec<(&str, u32)> = m.shrunk_by.keys().copied().collect();
            spreads.push(Spread {
                place,
                first,
                direct: m.direct > 0,
                allocs: m.allocs,
                grown: m.grown,
                bytes: m.bytes,
                max_size: m.max_size,
                regrown: m.regrown,
                lines,
                shrunk_at: places(&shrunk, root),
                covers: m.covers,
            });
            continue;
        }
        for (key, (reallocs, _, max_size)) in m.covers {
            let r = rest.entry(key).or_default();
            r.max_size = r.max_size.max(max_size);
            if m.regrown > 0 {
                // The origin's regrowth, in proportion, on this line.
                r.regrown += (m.regrown as u128 * reallocs as u128 / m.grown.max(1) as u128) as u64;
                r.shrunk_at.extend(m.shrunk_by.keys().map(|&(f, l)| (f.to_owned(), l)));
            }
        }
    }
    for s in &spreads {
        for (key, &(reallocs, bytes, _)) in &s.covers {
            let r = rest.entry(key.clone()).or_default();
            r.covered.0 += reallocs;
            r.covered.1 = r.covered.1.saturating_add(bytes);
        }
    }
    (spreads, rest)
}

/// Places for reading, a file named once for its lines: "a.rs: 12, 14;
/// b.rs: 3", the first [`SPREAD_LINES_SHOWN`] of them.
fn places<F: AsRef<str>>(lines: &[(F, u32)], root: &str) -> String {
    let mut listed = String::new();
    let mut file: Option<&str> = None;
    for (f, line) in lines.iter().take(SPREAD_LINES_SHOWN) {
        let f = f.as_ref();
        if file != Some(f) {
            if file.is_some() {
                listed.push_str("; ");
            }
            listed.push_str(short_path(f, root));
            listed.push_str(": ");
            file = Some(f);
        } else {
            listed.push_str(", ");
        }
        listed.push_str(&line.to_string());
    }
    if lines.len() > SPREAD_LINES_SHOWN {
        listed.push_str(&format!(" and {} more", lines.len() - SPREAD_LINES_SHOWN));
    }
    listed
}

/// The names the per-line findings know sites' lines by: the line, and for
/// a dependency's line the program's line that calls it, each of those
/// apart (what each can change is its own). Made once for every site: a
/// name is a string formatted from a frame, and a report on a later
/// command is mostly such work.
struct LineKeys {
    named: HashMap<u32, Named>,
    root: String,
}

/// A site's line: shown alone, as the per-line findings name it, and the
/// program's line that calls it when it is a dependency's.
struct Named {
    shown: String,
    key: String,
    caller: Option<String>,
}

impl LineKeys {
    fn new(p: &Profile, located: &crate::model::sites::Located, root: &str) -> LineKeys {
        use crate::model::sites::FrameKind;
        let mut named: HashMap<u32, Named> = HashMap::default();
        // A dependency's line whose stack was cut before the program's code
        // (deep recursion past the capture depth) is taken for its busiest
        // caller's.
        let mut busiest: HashMap<String, (u64, String)> = HashMap::default();
        // Many sites share a caller: each is formatted once.
        let mut callers: HashMap<(&str, &str, u32), String> = HashMap::default();
        for (id, s) in &p.sites {
            let Some(site) = located.get(id) else { continue };
            let shown = site.frame.display(root);
            let caller = site.called_from.as_ref().map(|c| {
                callers
                    .entry((c.function.as_str(), c.file.as_str(), c.line))
                    .or_insert_with(|| c.display(root))
                    .clone()
            });
            if let Some(c) = &caller {
                let events = s.allocs.saturating_add(s.reallocs);
                match busiest.get_mut(&shown) {
                    Some(b) if events <= b.0 => {}
                    Some(b) => *b = (events, c.clone()),
                    None => {
                        busiest.insert(shown.clone(), (events, c.clone()));
                    }
                }
            }
            named.insert(*id, Named { key: String::new(), shown, caller });
        }
        for (id, n) in &mut named {
            if n.caller.is_none() && located[id].kind == FrameKind::Dependency {
                n.caller = busiest.get(&n.shown).map(|b| b.1.clone());
            }
            n.key = match &n.caller {
                Some(c) => format!("{}{CALLED_FROM}{c}", n.shown),
                None => n.shown.clone(),
            };
        }
        LineKeys { named, root: root.to_owned() }
    }

    /// The per-line findings' name of site `id`'s line.
    fn key(&self, id: u32, site: &crate::model::sites::Site) -> String {
        match self.named.get(&id) {
            Some(n) => n.key.clone(),
            None => site.frame.display(&self.root),
        }
    }

    /// Site `id`'s line, shown alone.
    fn shown(&self, id: u32, site: &crate::model::sites::Site) -> String {
        match self.named.get(&id) {
            Some(n) => n.shown.clone(),
            None => site.frame.display(&self.root),
        }
    }
}

/// A finding on a dependency's line that a line of the program calls.
struct Inside {
    /// Its index among the findings.
    at: usize,
    /// The program's line, and the dependency's.
    caller: String,
    site: String,
    /// The blocks it is about (freed young, or reallocations that grew
    /// them), out of how many, and the bytes the growth allocated.
    count: u64,
    of: u64,
    bytes: u64,
    /// Growth left to the finding where its buffers were made.
    covered: u64,
    /// In a sampled session, the sampled stacks its figures are
    /// estimated from.
    sampled: u64,
}

/// The fewest sampled stacks a line's short-lived share is told from, in a
/// sampled session: a share of 30 has a standard error under a tenth.
const MIN_SAMPLED_STACKS: u64 = 30;

/// Dependencies' lines shown beside a finding that gathers them.
const INSIDE_SHOWN: usize = 3;

/// The findings of one kind on several lines of dependencies that one line
/// of the program calls become one finding at that line: what it can
/// change is the same for all of them (jaq's interpreter, called on one
/// line, made sixteen findings there with one fix). The lines with the
/// most are named.
fn merge_inside(
    out: &mut Vec<Recommendation>,
    inside: Vec<Inside>,
    o: &RecommendOptions,
    sampled: bool,
    (total_allocs, total_bytes): (f64, f64),
) {
    let mut groups: BTreeMap<(&str, &str), Vec<&Inside>> = BTreeMap::new();
    for f in &inside {
        groups.entry((out[f.at].category.name(), f.caller.as_str())).or_default().push(f);
    }
    let mut gone = vec![false; out.len()];
    let mut merged = Vec::new();
    for ((_, caller), mut members) in groups {
        if members.len() < 2 {
            continue;
        }
        members.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.site.cmp(&b.site)));
        let category = out[members[0].at].category;
        let count: u64 = members.iter().map(|f| f.count).sum();
        let of: u64 = members.iter().map(|f| f.of).sum();
        let bytes: u64 = members.iter().fold(0u64, |a, f| a.saturating_add(f.bytes));
        let covered: u64 = members.iter().map(|f| f.covered).sum();
        let stacks: u64 = members.iter().fold(0, |a, f| a.saturating_add(f.sampled));
        // At stake, as each part's is measured, over the figures added up.
        let stake = match category {
            Category::ShortLivedAllocation => count as f64 / total_allocs,
            _ => (count as f64 / total_allocs).max(bytes as f64 / total_bytes / 2.0),
        }
        .min(1.0);
        let mut most: Vec<String> = members
            .iter()
            .take(INSIDE_SHOWN)
            .map(|f| format!("{}, {}", without_generics(&f.site), f.count))
            .collect();
        match members.len().saturating_sub(INSIDE_SHOWN) {
            0 => {}
            1 => most.push(String::from("and one other line")),
            k => most.push(format!("and {k} other lines")),
        }
        let lines = members.len();
        let evidence = match category {
            Category::ShortLivedAllocation => format!(
                "{about}{count} of the {of} blocks made inside the dependencies it calls, on {lines} of their lines, freed within {}; the most at {}{from}",
                Nanos(o.short_lived_ns),
                most.join("; "),
                about = if sampled { "about " } else { "" },
                from = if sampled {
                    format!(" (estimated from {})", n(stacks, "sampled stack"))
                } else {
                    String::new()
                },
            ),
            _ => format!(
                "{} inside the dependencies it calls, on {lines} of their lines, growing their buffers step by step ({} allocated, copies included); the most at {}{}",
                n(count, "reallocation"),
                Bytes(bytes),
                most.join("; "),
                besides(covered)
            ),
        };
        for f in &members {
            gone[f.at] = true;
        }
        merged.push(Recommendation {
            severity: Severity::of(stake),
            category,
            location: caller.to_owned(),
            evidence,
            fix: out[members[0].at].fix.clone(),
            stake,
        });
    }
    let mut i = 0;
    out.retain(|_| {
        i += 1;
        !gone.get(i - 1).copied().unwrap_or(false)
    });
    out.extend(merged);
}

/// A function's name without its generic arguments, for prose:
/// `end_object<serde_json::…, …>` is `end_object`; a qualified path
/// (`<Val as Clone>::clone`) keeps its angle brackets.
fn without_generics(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    let mut prev = ' ';
    for c in name.chars() {
        match c {
            '<' if depth > 0 || prev.is_alphanumeric() || prev == '_' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            c => out.push(c),
        }
        prev = c;
    }
    out
}

/// What a line's growth finding leaves to the finding where its buffers
/// were made.
fn besides(covered: u64) -> String {
    match covered {
        0 => String::new(),
        k => format!(
            "; besides {}, of buffers first allocated on another line, advised there",
            n(k, "reallocation")
        ),
    }
}

/// "once", "twice", "N times".
fn times(k: u64) -> String {
    match k {
        1 => String::from("once"),
        2 => String::from("twice"),
        k => format!("{k} times"),
    }
}

/// The reallocations a line made of the blocks one other line allocated.
#[derive(Debug, Default, Clone, Copy)]
struct Resized {
    /// Those that made a block larger.
    grown: u64,
    /// Those that made it smaller.
    shrunk: u64,
}

impl Resized {
    fn all(self) -> u64 {
        self.grown.saturating_add(self.shrunk)
    }

    /// What the line does to those blocks.
    fn verb(self) -> &'static str {
        match (self.grown, self.shrunk) {
            (_, 0) => "grows",
            (0, _) => "shrinks",
            _ => "resizes",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_arguments_are_left_out_of_prose() {
        for (name, short) in [
            (
                "end_object<serde_json::ser::CompactFormatter, &mut Vec<u8>> (ser.rs:1879)",
                "end_object (ser.rs:1879)",
            ),
            (
                "jaq_core::path::Path<T>::map_ref (path.rs:189)",
                "jaq_core::path::Path::map_ref (path.rs:189)",
            ),
            (
                "<jaq_json::Val as core::clone::Clone>::clone (lib.rs:62)",
                "<jaq_json::Val as core::clone::Clone>::clone (lib.rs:62)",
            ),
            ("<Vec<T> as Clone>::clone", "<Vec as Clone>::clone"),
        ] {
            assert_eq!(without_generics(name), short);
        }
    }

    #[test]
    fn category_names_are_the_jsons() {
        let all = [
            Category::SlowFunction,
            Category::HotLoop,
            Category::ShortLivedAllocation,
            Category::ReallocChurn,
            Category::Leak,
            Category::LargeAllocation,
            Category::FrequentAllocation,
            Category::LowIpc,
            Category::CacheMissHeavy,
            Category::DeepCallStack,
        ];
        for c in all {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{}\"", c.name()));
        }
    }
}
