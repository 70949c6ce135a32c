//! Time per scope and the call tree, from the scope records of every thread.
//!
//! [`Timing`] is fed a session's scope records in order (per thread; the
//! threads merged by time) and keeps, per scope, a histogram of entry
//! durations, the self time, the allocations made inside and the runs of
//! asynchronous operations, plus the call tree. The runtime feeds it from
//! its collector for in-process statistics; the analyzer from the file.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use crate::dense::DenseIds;
use crate::hist::Histogram;
use crate::record::NO_SCOPE;
use crate::scopes::{Completed, ThreadScopes};

/// Time spent in one scope or operation, all threads together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScopeTime {
    /// Completed entries (for an asynchronous operation: polls).
    pub count: u64,
    /// Time inside the scope, children included, pauses excluded; an entry
    /// made while the same scope was already open on its thread (recursion)
    /// is inside the outer one's time and not added again.
    pub total_ns: u64,
    /// Time inside the scope minus its children.
    pub self_ns: u64,
    /// The mean entry, each entry's own time (recursive ones too).
    pub mean_ns: u64,
    /// The shortest entry.
    pub min_ns: u64,
    /// The longest entry.
    pub max_ns: u64,
    /// Median entry, within 0.8 % (see [`Histogram`]).
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Allocations made while this scope was the innermost one.
    pub allocs: u64,
    /// Bytes those allocations asked for.
    pub bytes: u64,
    /// Completed runs of an asynchronous operation (0 for ordinary scopes).
    pub runs: u64,
    /// Their wall time, first poll to completion, added up: the time they
    /// took, waiting included, where `total_ns` is only the time they ran.
    pub wall_ns: u64,
    /// The longest run's wall time.
    pub wall_max_ns: u64,
    /// Entries whose counters were read at both ends.
    pub counted: u64,
    /// The counters' increase over those entries, summed, in the order the
    /// session's metadata lists the available counters.
    pub counters: Vec<u64>,
}

/// One node of the call tree: a scope reached by one path of enclosing scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CallNode {
    /// The scope ([`NO_SCOPE`] for the root).
    pub scope: u32,
    /// The enclosing node (the root has none).
    pub parent: Option<usize>,
    /// Nodes entered inside this one, in first-seen order.
    pub children: Vec<usize>,
    /// Completed entries.
    pub count: u64,
    /// Time inside, children included.
    pub total_ns: u64,
    /// Time inside, children excluded.
    pub self_ns: u64,
}

/// The call tree of every thread merged: node 0 is the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CallTree {
    /// The nodes; a node's children come after it.
    pub nodes: Vec<CallNode>,
}

impl CallTree {
    /// The root's children: the outermost scopes.
    pub fn roots(&self) -> &[usize] {
        self.nodes.first().map_or(&[], |n| &n.children)
    }
}

#[derive(Debug, Default)]
struct ScopeAcc {
    entries: Histogram,
    /// Entries not made inside another entry of the same scope.
    total_ticks: u64,
    self_ticks: u64,
    allocs: u64,
    bytes: u64,
    runs: Histogram,
    counted: u64,
    counters: Vec<u64>,
}

/// Levels of the call tree below its root: an entry nested deeper has no
/// node of its own, its time counts as the self time of its enclosing
/// node at this depth. Per-scope figures ([`ScopeTime`]) count every entry
/// whatever its depth.
pub const MAX_TREE_DEPTH: usize = 128;

/// Nodes of the call tree: once it holds this many, an entry along a path
/// not yet in the tree counts as the self time of its enclosing node.
pub const MAX_TREE_NODES: usize = 1 << 14;

/// Per scope, by dense index: scope ids are small, and a lookup per
/// completed entry and per allocation is the replay's hot path.
#[derive(Debug, Default)]
struct Scopes {
    ids: DenseIds,
    accs: Vec<ScopeAcc>,
}

impl Scopes {
    #[inline]
    fn get(&mut self, scope: u32) -> &mut ScopeAcc {
        let (i, new) = self.ids.index(scope);
        if new {
            self.accs.push(ScopeAcc::default());
        }
        &mut self.accs[i]
    }
}

/// An open entry's call-tree node and its counter reading at entry.
#[derive(Debug)]
struct OpenEntry {
    node: usize,
    /// Whether `node` is the entry's own, rather than an ancestor's it is
    /// counted in (past [`MAX_TREE_DEPTH`] or [`MAX_TREE_NODES`]).
    own: bool,
    reading: Option<Vec<u64>>,
}

#[derive(Debug, Default)]
struct ThreadTime {
    id: u64,
    scopes: ThreadScopes,
    /// One per open entry, innermost last.
    open: Vec<OpenEntry>,
    /// Time in its outermost entries, in ticks: the thread's instrumented time.
    scoped: u64,
}

/// The running state, in ticks.
///
/// Events come in runs of one thread's (the collector drains a thread's
/// ring at a time; the analyzer merges threads by time, and a thread's
/// events mostly follow each other): the last thread looked up is kept,
/// and each call-tree node keeps the child it last led to, so that the
/// common case looks nothing up in a hash map.
#[derive(Debug)]
pub struct Timing {
    /// In first-seen order.
    threads: Vec<ThreadTime>,
    /// Thread id → index in `threads`.
    thread_ix: HashMap<u64, usize>,
    /// The thread last looked up, and its index (`usize::MAX`: none yet).
    last_thread: (u64, usize),
    scopes: Scopes,
    tree: Vec<CallNode>,
    /// Per node of `tree`: the child node an entry under it last went to
    /// (0, the root, when none: the root is nobody's child).
    last_child: Vec<u32>,
    children: HashMap<(usize, u32), usize>,
    /// Exits that matched no open entry, and entries closed by an exit of
    /// an enclosing scope.
    pub unmatched_exits: u64,
    /// Entries still open when [`Timing::close_all`] ran.
    pub open_at_end: u64,
    /// Entries given no call-tree node of their own (deeper than
    /// [`MAX_TREE_DEPTH`], or past [`MAX_TREE_NODES`]), counted in their
    /// enclosing node's self time.
    pub beyond_tree: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            threads: Vec::new(),
            thread_ix: HashMap::default(),
            last_thread: (0, usize::MAX),
            scopes: Scopes::default(),
            tree: vec![CallNode::default()],
            last_child: vec![0],
            children: HashMap::default(),
            unmatched_exits: 0,
            open_at_end: 0,
            beyond_tree: 0,
        }
    }
}

impl Timing {
    /// The index of `thread` in `threads`, added if new.
    #[inline]
    fn thread_index(&mut self, thread: u64) -> usize {
        let (id, ix) = self.last_thread;
        if id == thread && ix < self.threads.len() {
            return ix;
        }
        self.thread_slow(thread)
    }

    #[cold]
    fn thread_slow(&mut self, thread: u64) -> usize {
        let threads = &mut self.threads;
        let ix = *self.thread_ix.entry(thread).or_insert_with(|| {
            threads.push(ThreadTime { id: thread, ..ThreadTime::default() });
            threads.len() - 1
        });
        self.last_thread = (thread, ix);
        ix
    }

    /// The index of `thread` in `threads`, if it has any state.
    #[inline]
    fn find(&self, thread: u64) -> Option<usize> {
        match self.last_thread {
            (id, ix) if id == thread && ix < self.threads.len() => Some(ix),
            _ => self.thread_ix.get(&thread).copied(),
        }
    }

    /// The node for an entry of `scope` under `parent`, made if new and
    /// there is room; `None` past the tree's room.
    #[inline]
    fn child(&mut self, parent: usize, scope: u32) -> Option<usize> {
        let last = self.last_child[parent] as usize;
        if last != 0 && self.tree[last].scope == scope {
            return Some(last);
        }
        self.child_slow(parent, scope)
    }

    #[cold]
    fn child_slow(&mut self, parent: usize, scope: u32) -> Option<usize> {
        let next = self.tree.len();
        let node = if next >= MAX_TREE_NODES {
            self.children.get(&(parent, scope)).copied()?
        } else {
            let node = *self.children.entry((parent, scope)).or_insert(next);
            if node == next {
                self.tree.push(CallNode { scope, parent: Some(parent), ..CallNode::default() });
                self.last_child.push(0);
                self.tree[parent].children.push(node);
            }
            node
        };
        // Node indices stay below `MAX_TREE_NODES`.
        self.last_child[parent] = node as u32;
        Some(node)
    }

    /// `thread` entered `scope` at `ts`.
    #[inline]
    pub fn enter(&mut self, thread: u64, scope: u32, ts: u64) {
        let ix = self.thread_index(thread);
        let t = &self.threads[ix];
        let parent = t.open.last().map_or(0, |o| o.node);
        // Inside an entry with no node of its own, the path is not in the
        // tree either: `parent` is an ancestor's node, not this path's.
        let beyond = t.open.len() >= MAX_TREE_DEPTH || t.open.last().is_some_and(|o| !o.own);
        let node = if beyond { None } else { self.child(parent, scope) };
        self.beyond_tree += u64::from(node.is_none());
        let t = &mut self.threads[ix];
        t.open.push(OpenEntry { node: node.unwrap_or(parent), own: node.is_some(), reading: None });
        t.scopes.enter(scope, ts);
    }

    /// `thread` left `scope` at `ts`.
    #[inline]
    pub fn exit(&mut self, thread: u64, scope: u32, ts: u64) {
        let ix = self.thread_index(thread);
        let t = &mut self.threads[ix];
        let (scopes, tree, open, scoped) =
            (&mut self.scopes, &mut self.tree, &mut t.open, &mut t.scoped);
        let mut forced = 0;
        let matched = t.scopes.exit(scope, ts, |c| {
            forced += u64::from(c.forced);
            record(scopes, tree, open, scoped, c);
        });
        self.unmatched_exits += forced + u64::from(!matched);
    }

    /// `thread` paused at `ts`.
    pub fn pause(&mut self, thread: u64, ts: u64) {
        let ix = self.thread_index(thread);
        self.threads[ix].scopes.pause(ts);
    }

    /// `thread` resumed at `ts`.
    pub fn resume(&mut self, thread: u64, ts: u64) {
        let ix = self.thread_index(thread);
        self.threads[ix].scopes.resume(ts);
    }

    /// One completed run of an asynchronous operation.
    pub fn span(&mut self, scope: u32, start_ts: u64, ts: u64) {
        self.scopes.get(scope).runs.record(ts.saturating_sub(start_ts));
    }

    /// The innermost scope open on `thread`, or [`NO_SCOPE`].
    #[inline]
    pub fn current(&self, thread: u64) -> u32 {
        self.find(thread).map_or(NO_SCOPE, |ix| self.threads[ix].scopes.current())
    }

    /// An allocation on `thread`, charged to its innermost open scope.
    pub fn alloc(&mut self, thread: u64, size: u64) {
        self.allocs(thread, 1, size);
    }

    /// `count` allocations of `bytes` together on `thread` with no scope
    /// boundary between them: the same as as many [`Timing::alloc`] calls.
    pub fn allocs(&mut self, thread: u64, count: u64, bytes: u64) {
        self.allocs_in(self.current(thread), count, bytes);
    }

    /// An allocation charged to `scope`: [`Timing::alloc`] for a caller
    /// that keeps each thread's [`Timing::current`] itself.
    #[inline]
    pub fn alloc_in(&mut self, scope: u32, size: u64) {
        self.allocs_in(scope, 1, size);
    }

    #[inline]
    fn allocs_in(&mut self, scope: u32, count: u64, bytes: u64) {
        if scope != NO_SCOPE {
            let s = self.scopes.get(scope);
            s.allocs += count;
            s.bytes = s.bytes.saturating_add(bytes);
        }
    }

    /// A reading of `thread`'s counters at a boundary of `scope`: the first
    /// after the entry is its start, the next (before the exit) its end, and
    /// the increase between them is added to the scope. Periodic samples
    /// (scope [`NO_SCOPE`]) are not tied to an entry and are ignored here.
    pub fn counters(&mut self, thread: u64, scope: u32, values: &[u64]) {
        let Some(ix) = self.find(thread) else { return };
        let t = &mut self.threads[ix];
        if scope == NO_SCOPE || t.scopes.current() != scope {
            return;
        }
        let Some(top) = t.open.last_mut() else { return };
        match top.reading.take() {
            None => top.reading = Some(values.to_vec()),
            Some(start) => {
                let s = self.scopes.get(scope);
                if s.counters.len() < values.len() {
                    s.counters.resize(values.len(), 0);
                }
                for (sum, (end, start)) in s.counters.iter_mut().zip(values.iter().zip(&start)) {
                    *sum = sum.saturating_add(end.saturating_sub(*start));
                }
                s.counted += 1;
            }
        }
    }

    /// Closes what is still open at the end of the session.
    pub fn close_all(&mut self, end_ts: u64) {
        for t in &mut self.threads {
            let (scopes, tree, open) = (&mut self.scopes, &mut self.tree, &mut t.open);
            let scoped = &mut t.scoped;
            self.open_at_end +=
                t.scopes.close_all(end_ts, |c| record(scopes, tree, open, scoped, c)) as u64;
        }
    }

    /// The figures so far in nanoseconds (`ns` converts ticks), per scope,
    /// and the call tree. Entries still open are not included.
    pub fn snapshot(&self, ns: impl Fn(u64) -> u64) -> (BTreeMap<u32, ScopeTime>, CallTree) {
        let times = self
            .scopes
            .ids
            .ids()
            .iter()
            .zip(&self.scopes.accs)
            .map(|(id, a)| {
                let h = &a.entries;
                let t = ScopeTime {
                    count: h.count(),
                    total_ns: ns(a.total_ticks),
                    self_ns: ns(a.self_ticks),
                    mean_ns: ns(h.mean()),
                    min_ns: ns(h.min()),
                    max_ns: ns(h.max()),
                    p50_ns: ns(h.quantile(0.5)),
                    p90_ns: ns(h.quantile(0.9)),
                    p99_ns: ns(h.quantile(0.99)),
                    p999_ns: ns(h.quantile(0.999)),
                    allocs: a.allocs,
                    bytes: a.bytes,
                    runs: a.runs.count(),
                    wall_ns: ns(a.runs.sum()),
                    wall_max_ns: ns(a.runs.max()),
                    counted: a.counted,
                    counters: a.counters.clone(),
                };
                (*id, t)
            })
            .collect();
        let nodes = self
            .tree
            .iter()
            .map(|n| CallNode { total_ns: ns(n.total_ns), self_ns: ns(n.self_ns), ..n.clone() })
            .collect();
        (times, CallTree { nodes })
    }

    /// Per scope: its histogram of entry times in ticks (each entry's own
    /// time, recursive ones too, as [`ScopeTime::count`] and
    /// [`ScopeTime::mean_ns`] count them), and the allocations and bytes
    /// charged to it. For exporters that bucket the times their own way
    /// without the rest of a [`Timing::snapshot`].
    pub fn scope_entries(&self) -> impl Iterator<Item = (u32, &Histogram, u64, u64)> + '_ {
        self.scopes
            .ids
            .ids()
            .iter()
            .zip(&self.scopes.accs)
            .map(|(id, a)| (*id, &a.entries, a.allocs, a.bytes))
    }

    /// Each thread's time inside its outermost scopes (`ns` converts
    /// ticks): how long it ran instrumented code, pauses excluded.
    pub fn thread_scoped(&self, ns: impl Fn(u64) -> u64) -> BTreeMap<u64, u64> {
        self.threads.iter().map(|t| (t.id, ns(t.scoped))).collect()
    }
}

/// Adds a completed entry to its scope and its call-tree node (in ticks).
#[inline]
fn record(
    scopes: &mut Scopes,
    tree: &mut [CallNode],
    open: &mut Vec<OpenEntry>,
    scoped: &mut u64,
    c: Completed,
) {
    let s = scopes.get(c.scope);
    s.entries.record(c.total);
    s.self_ticks = s.self_ticks.saturating_add(c.self_time);
    if c.outermost {
        s.total_ticks = s.total_ticks.saturating_add(c.total);
    }
    if let Some(OpenEntry { node, own, .. }) = open.pop() {
        let n = &mut tree[node];
        if own {
            n.count += 1;
            n.total_ns = n.total_ns.saturating_add(c.total);
        }
        // An entry without a node of its own is time inside its ancestor's.
        n.self_ns = n.self_ns.saturating_add(c.self_time);
    }
    if open.is_empty() {
        *scoped = scoped.saturating_add(c.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::INDEXED_DEPTH;

    #[test]
    fn each_thread_is_charged_its_outermost_entries_only() {
        let mut t = Timing::default();
        t.enter(1, 7, 0);
        t.enter(1, 8, 10);
        t.exit(1, 8, 30);
        t.exit(1, 7, 100);
        t.enter(2, 7, 0);
        t.pause(2, 10);
        t.resume(2, 30);
        t.exit(2, 7, 50);
        t.enter(3, 9, 0);
        t.close_all(40);
        let scoped = t.thread_scoped(|ticks| ticks);
        assert_eq!(scoped, BTreeMap::from([(1, 100), (2, 30), (3, 40)]));
    }

    #[test]
    fn a_recursive_scope_counts_its_time_once_in_its_total() {
        let mut t = Timing::default();
        // 7 inside 7 inside 7, then 7 again at the top, and on another
        // thread at the same time.
        t.enter(1, 7, 0);
        t.enter(1, 7, 10);
        t.enter(1, 7, 20);
        t.exit(1, 7, 30);
        t.exit(1, 7, 40);
        t.exit(1, 7, 100);
        t.enter(2, 7, 50);
        t.exit(1, 7, 0);
        t.exit(2, 7, 80);
        t.enter(1, 7, 200);
        t.exit(1, 7, 210);
        let (times, tree) = t.snapshot(|ticks| ticks);
        let s = &times[&7];
        assert_eq!(s.count, 5, "every entry, the unmatched exit aside");
        assert_eq!(s.total_ns, 100 + 30 + 10, "outermost entries only");
        assert_eq!(s.self_ns, 140, "self time partitions the total");
        assert_eq!(s.max_ns, 100);
        // The call tree keeps each level's own total.
        assert_eq!(tree.nodes.len(), 4);
        assert_eq!(tree.nodes[3].total_ns, 10);
    }

    #[test]
    fn the_tree_stops_at_its_depth_and_keeps_the_time_below() {
        let mut t = Timing::default();
        let deep = MAX_TREE_DEPTH as u64 + 10;
        for i in 0..deep {
            t.enter(1, 1 + (i % 2) as u32, i);
        }
        for i in (0..deep).rev() {
            t.exit(1, 1 + (i % 2) as u32, 2 * deep - i);
        }
        let (times, tree) = t.snapshot(|ticks| ticks);
        assert_eq!(tree.nodes.len(), MAX_TREE_DEPTH + 1);
        assert_eq!(t.beyond_tree, 10);
        // Every entry is in its scope's figures, whatever its depth.
        assert_eq!(times[&1].count + times[&2].count, deep);
        // The deepest node's self time is all the time inside it.
        let last = tree.nodes.last().unwrap();
        assert_eq!(last.count, 1);
        assert_eq!(last.self_ns, last.total_ns);
        let roots: u64 = tree.roots().iter().map(|&n| tree.nodes[n].total_ns).sum();
        let selfs: u64 = tree.nodes.iter().map(|n| n.self_ns).sum();
        assert_eq!(selfs, roots);
    }

    /// The rules of `scopes.rs`, kept as plainly as they read: a stack per
    /// thread searched from the top, and the call tree as a map of paths.
    #[derive(Default)]
    struct Model {
        threads: BTreeMap<u64, ModelThread>,
        /// Scope → (count, total, self, min, max, sum of entries).
        scopes: BTreeMap<u32, (u64, u64, u64, u64, u64, u64)>,
        /// Path of scopes → (count, total, self).
        tree: BTreeMap<Vec<u32>, (u64, u64, u64)>,
        unmatched: u64,
    }

    #[derive(Default)]
    struct ModelThread {
        /// (scope, entered, children, paused before).
        stack: Vec<(u32, u64, u64, u64)>,
        paused_at: Option<u64>,
        paused: u64,
        scoped: u64,
    }

    impl Model {
        fn enter(&mut self, thread: u64, scope: u32, ts: u64) {
            let t = self.threads.entry(thread).or_default();
            t.stack.push((scope, ts, 0, t.paused));
        }

        fn exit(&mut self, thread: u64, scope: u32, ts: u64) {
            let t = self.threads.entry(thread).or_default();
            let Some(pos) = t.stack.iter().rposition(|e| e.0 == scope) else {
                self.unmatched += 1;
                return;
            };
            while self.threads[&thread].stack.len() > pos + 1 {
                self.unmatched += 1;
                self.close(thread, ts);
            }
            self.close(thread, ts);
        }

        fn close(&mut self, thread: u64, ts: u64) {
            let t = self.threads.get_mut(&thread).unwrap();
            let path: Vec<u32> = t.stack.iter().map(|e| e.0).collect();
            let (scope, entered, children, paused_before) = t.stack.pop().unwrap();
            // An entry made during a pause has the whole pause taken out.
            let total = (ts - entered).saturating_sub(t.paused - paused_before);
            let own = total.saturating_sub(children);
            if let Some(p) = t.stack.last_mut() {
                p.2 += total;
            } else {
                t.scoped += total;
            }
            let outermost = !t.stack.iter().any(|e| e.0 == scope);
            let s = self.scopes.entry(scope).or_insert((0, 0, 0, u64::MAX, 0, 0));
            s.0 += 1;
            s.1 += if outermost { total } else { 0 };
            s.2 += own;
            s.3 = s.3.min(total);
            s.4 = s.4.max(total);
            s.5 += total;
            // Deeper than the tree: self time of the deepest node above.
            let deep = path.len() > MAX_TREE_DEPTH;
            let n = self.tree.entry(path[..path.len().min(MAX_TREE_DEPTH)].to_vec()).or_default();
            if !deep {
                n.0 += 1;
                n.1 += total;
            }
            n.2 += own;
        }

        fn close_all(&mut self, ts: u64) {
            for t in self.threads.values_mut() {
                if let Some(at) = t.paused_at.take() {
                    t.paused += ts - at;
                }
            }
            let ids: Vec<u64> = self.threads.keys().copied().collect();
            for id in ids {
                while !self.threads[&id].stack.is_empty() {
                    self.close(id, ts);
                }
            }
        }
    }

    proptest::proptest! {
        /// Any interleaving of threads' entries, exits (of the innermost
        /// scope, of one further down, of one not open), pauses and runs
        /// nested past the depth where open entries are counted by scope:
        /// the same figures as the plain model.
        #[test]
        fn timing_agrees_with_a_plain_model(
            ops in proptest::collection::vec((0u64..3, 0u8..12, 1u32..6, 0u64..40), 1..400),
        ) {
            let (mut t, mut m, mut ts) = (Timing::default(), Model::default(), 0u64);
            for (thread, kind, scope, dt) in ops {
                ts += dt;
                let depth = m.threads.get(&thread).map_or(0, |t| t.stack.len());
                match kind {
                    0..=3 => {
                        t.enter(thread, scope, ts);
                        m.enter(thread, scope, ts);
                    }
                    4..=6 => {
                        // The innermost entry's own exit, the common case.
                        let top = m.threads.get(&thread).and_then(|t| t.stack.last());
                        let scope = top.map_or(scope, |e| e.0);
                        t.exit(thread, scope, ts);
                        m.exit(thread, scope, ts);
                    }
                    7..=8 => {
                        t.exit(thread, scope, ts);
                        m.exit(thread, scope, ts);
                    }
                    9 => {
                        let mt = m.threads.entry(thread).or_default();
                        mt.paused_at.get_or_insert(ts);
                        t.pause(thread, ts);
                    }
                    10 => {
                        let mt = m.threads.entry(thread).or_default();
                        if let Some(at) = mt.paused_at.take() {
                            mt.paused += ts - at;
                        }
                        t.resume(thread, ts);
                    }
                    _ if depth < 2 * INDEXED_DEPTH => {
                        // A run of nested entries, past where the scopes'
                        // stacks index their open entries by scope.
                        for i in 0..INDEXED_DEPTH + 6 {
                            let s = 1 + (scope + i as u32) % 7;
                            t.enter(thread, s, ts);
                            m.enter(thread, s, ts);
                        }
                    }
                    _ => {}
                }
                let top = m.threads.get(&thread).and_then(|t| t.stack.last()).map_or(NO_SCOPE, |e| e.0);
                proptest::prop_assert_eq!(t.current(thread), top);
            }
            ts += 1;
            t.close_all(ts);
            m.close_all(ts);
            let (times, tree) = t.snapshot(|ticks| ticks);
            let got: BTreeMap<u32, (u64, u64, u64, u64, u64, u64)> = times
                .iter()
                .map(|(&id, s)| (id, (s.count, s.total_ns, s.self_ns, s.min_ns, s.max_ns, s.mean_ns)))
                .collect();
            let want: BTreeMap<u32, (u64, u64, u64, u64, u64, u64)> = m
                .scopes
                .iter()
                .map(|(&id, &(n, total, own, min, max, sum))| (id, (n, total, own, min, max, sum / n)))
                .collect();
            proptest::prop_assert_eq!(got, want);
            let mut paths = BTreeMap::new();
            for (i, n) in tree.nodes.iter().enumerate().skip(1) {
                let mut path = vec![n.scope];
                let mut up = n.parent;
                while let Some(p) = up.filter(|&p| p != 0) {
                    path.push(tree.nodes[p].scope);
                    up = tree.nodes[p].parent;
                }
                path.reverse();
                proptest::prop_assert!(tree.nodes[n.parent.unwrap()].children.contains(&i));
                paths.insert(path, (n.count, n.total_ns, n.self_ns));
            }
            proptest::prop_assert_eq!(paths, m.tree);
            let scoped: BTreeMap<u64, u64> = m.threads.iter().map(|(&id, t)| (id, t.scoped)).collect();
            let got_scoped = t.thread_scoped(|ticks| ticks);
            for (id, n) in scoped {
                proptest::prop_assert_eq!(got_scoped.get(&id).copied().unwrap_or(0), n);
            }
            proptest::prop_assert_eq!(t.unmatched_exits, m.unmatched);
        }
    }

    #[test]
    fn inside_an_entry_without_a_node_nothing_takes_another_paths_node() {
        let mut t = Timing::default();
        t.enter(1, 1, 0);
        t.exit(1, 1, 1);
        let mut s = 2;
        while t.tree.len() < MAX_TREE_NODES {
            t.enter(1, s, 10);
            t.exit(1, s, 11);
            s += 1;
        }
        // A new path [999999, 1], once the tree is full: node [1] is
        // another path's, and keeps its one entry.
        t.enter(1, 999_999, 100);
        t.enter(1, 1, 100);
        t.exit(1, 1, 200);
        t.exit(1, 999_999, 300);
        let (_, tree) = t.snapshot(|ticks| ticks);
        let one = &tree.nodes[tree.roots()[0]];
        assert_eq!((one.scope, one.count, one.total_ns), (1, 1, 1));
        assert_eq!(t.beyond_tree, 2);
    }

    #[test]
    fn a_full_tree_keeps_its_paths_and_the_time_of_new_ones() {
        let mut t = Timing::default();
        t.enter(1, 1, 0);
        for s in 0..MAX_TREE_NODES as u32 + 100 {
            t.enter(1, 2 + s, 10);
            t.exit(1, 2 + s, 20);
        }
        t.exit(1, 1, 1_000_000);
        let (_, tree) = t.snapshot(|ticks| ticks);
        assert_eq!(tree.nodes.len(), MAX_TREE_NODES);
        assert_eq!(t.beyond_tree, 102);
        let root = &tree.nodes[tree.roots()[0]];
        assert_eq!(root.total_ns, 1_000_000);
        let selfs: u64 = tree.nodes.iter().map(|n| n.self_ns).sum();
        assert_eq!(selfs, 1_000_000);
    }
}
