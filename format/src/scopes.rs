//! The meaning of a thread's scope records: which entries they complete,
//! and how long each took, children and pauses accounted for.
//!
//! Both the runtime (for in-process statistics) and the analyzer (for the
//! report) interpret scope records with this one machine, so the two always
//! print the same numbers.
//!
//! Rules, per thread:
//! - an exit closes the innermost open entry of the same scope; entries
//!   above it that were never closed are closed at the same moment and
//!   counted as unmatched;
//! - an exit with no open entry of its scope is ignored and counted;
//! - time between `Pause` and `Resume` is excluded from every entry open
//!   across it (it is neither silently counted nor silently dropped: the
//!   entry's total is its active time);
//! - an entry's self time is its total minus its children's totals.

use rustc_hash::FxHashMap as HashMap;

use crate::record::NO_SCOPE;

/// Open entries above which an exit looks its scope up in a count of the
/// open entries by scope, rather than searching them: else exits of a
/// scope that is not open, on a thread nested a million deep, would each
/// search a million entries.
pub(crate) const INDEXED_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Open {
    scope: u32,
    enter: u64,
    children: u64,
    /// The thread's paused time ([`ThreadScopes::paused`]) when it began:
    /// its own is what the thread's grew by while it was open.
    paused_before: u128,
    /// No other entry of the same scope was open when it began.
    outermost: bool,
}

/// One finished scope entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// The scope.
    pub scope: u32,
    /// Its enclosing scope on the thread, or [`NO_SCOPE`].
    pub parent: u32,
    /// Active time in ticks, children included, pauses excluded.
    pub total: u64,
    /// `total` minus the children's totals.
    pub self_time: u64,
    /// Closed by an exit of another scope, or by the end of the session.
    pub forced: bool,
    /// No other entry of the same scope was open on the thread when this
    /// one began (a recursive entry's time is inside the outer one's).
    pub outermost: bool,
}

/// One thread's open scopes.
#[derive(Debug, Clone, Default)]
pub struct ThreadScopes {
    stack: Vec<Open>,
    paused_at: Option<u64>,
    /// Every pause of the thread so far, added up: each open entry takes
    /// its own pauses out of this at its exit, so that a resume costs the
    /// same however many entries are open (a `u128`: the sum of every
    /// pause a file can hold, each up to 2^64 ticks, does not overflow).
    paused: u128,
    /// Open entries by scope, kept while the stack is deeper than
    /// [`INDEXED_DEPTH`] / 2 once it has been deeper than [`INDEXED_DEPTH`].
    open: Option<HashMap<u32, u32>>,
}

impl ThreadScopes {
    /// No open scope.
    pub fn new() -> Self {
        ThreadScopes::default()
    }

    /// The innermost open scope, or [`NO_SCOPE`].
    pub fn current(&self) -> u32 {
        self.stack.last().map_or(NO_SCOPE, |o| o.scope)
    }

    /// The open scopes, outermost first.
    pub fn path(&self) -> impl Iterator<Item = u32> + '_ {
        self.stack.iter().map(|o| o.scope)
    }

    /// Open scopes.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// An entry of `scope` at `ts`; whether it is its scope's outermost
    /// open entry comes back in its [`Completed`].
    #[inline]
    pub fn enter(&mut self, scope: u32, ts: u64) {
        let outermost = if self.stack.len() < INDEXED_DEPTH && self.open.is_none() {
            !self.stack.iter().any(|o| o.scope == scope)
        } else {
            let open = self.index();
            let n = open.entry(scope).or_default();
            *n += 1;
            *n == 1
        };
        let paused_before = self.paused;
        self.stack.push(Open { scope, enter: ts, children: 0, paused_before, outermost });
    }

    /// The open entries by scope, built from the stack when first needed
    /// (the stack has grown past [`INDEXED_DEPTH`]).
    #[cold]
    fn index(&mut self) -> &mut HashMap<u32, u32> {
        let stack = &self.stack;
        self.open.get_or_insert_with(|| {
            let mut open = HashMap::default();
            for o in stack {
                *open.entry(o.scope).or_default() += 1;
            }
            open
        })
    }

    /// An exit of `scope` at `ts`; calls `done` for every entry it closes.
    /// Returns false if no entry of `scope` was open (the exit is ignored).
    #[inline]
    pub fn exit(&mut self, scope: u32, ts: u64, mut done: impl FnMut(Completed)) -> bool {
        if self.stack.last().is_some_and(|o| o.scope == scope) {
            self.close(ts, false, &mut done);
            return true;
        }
        if self.stack.len() > INDEXED_DEPTH && self.index().get(&scope).is_none_or(|n| *n == 0) {
            return false;
        }
        let Some(pos) = self.stack.iter().rposition(|o| o.scope == scope) else {
            return false;
        };
        while self.stack.len() > pos + 1 {
            self.close(ts, true, &mut done);
        }
        self.close(ts, false, &mut done);
        true
    }

    /// Recording paused at `ts`.
    pub fn pause(&mut self, ts: u64) {
        self.paused_at.get_or_insert(ts);
    }

    /// Recording resumed at `ts`: the pause is excluded from every open entry.
    pub fn resume(&mut self, ts: u64) {
        if let Some(at) = self.paused_at.take() {
            self.paused += u128::from(ts.saturating_sub(at));
        }
    }

    /// Closes every open entry at `ts` (the end of the session); returns how many.
    pub fn close_all(&mut self, ts: u64, mut done: impl FnMut(Completed)) -> usize {
        if self.paused_at.is_some() {
            self.resume(ts);
        }
        let n = self.stack.len();
        while !self.stack.is_empty() {
            self.close(ts, true, &mut done);
        }
        n
    }

    #[inline]
    fn close(&mut self, ts: u64, forced: bool, done: &mut impl FnMut(Completed)) {
        let Some(o) = self.stack.pop() else { return };
        if let Some(open) = &mut self.open {
            if self.stack.len() < INDEXED_DEPTH / 2 {
                self.open = None;
            } else if let Some(n) = open.get_mut(&o.scope) {
                *n -= 1;
            }
        }
        let paused = u64::try_from(self.paused - o.paused_before).unwrap_or(u64::MAX);
        let total = ts.saturating_sub(o.enter).saturating_sub(paused);
        let parent = self.stack.last_mut();
        let parent_scope = parent.as_ref().map_or(NO_SCOPE, |p| p.scope);
        if let Some(p) = parent {
            p.children = p.children.saturating_add(total);
        }
        done(Completed {
            scope: o.scope,
            parent: parent_scope,
            total,
            self_time: total.saturating_sub(o.children),
            forced,
            outermost: o.outermost,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[(char, u32, u64)]) -> Vec<Completed> {
        let mut t = ThreadScopes::new();
        let mut out = Vec::new();
        for &(kind, scope, ts) in events {
            match kind {
                'e' => t.enter(scope, ts),
                'x' => {
                    t.exit(scope, ts, |c| out.push(c));
                }
                'p' => t.pause(ts),
                'r' => t.resume(ts),
                _ => unreachable!(),
            }
        }
        t.close_all(1000, |c| out.push(c));
        out
    }

    #[test]
    fn self_time_excludes_children_and_total_excludes_pauses() {
        let out = run(&[
            ('e', 1, 0),
            ('e', 2, 10),
            ('p', 0, 20),
            ('r', 0, 50),
            ('x', 2, 60),
            ('x', 1, 100),
        ]);
        assert_eq!(
            out[0],
            Completed {
                scope: 2,
                parent: 1,
                total: 20,
                self_time: 20,
                forced: false,
                outermost: true
            }
        );
        assert_eq!(
            out[1],
            Completed {
                scope: 1,
                parent: 0,
                total: 70,
                self_time: 50,
                forced: false,
                outermost: true
            }
        );
    }

    #[test]
    fn a_missing_exit_is_closed_by_its_parents_and_at_the_end() {
        let out = run(&[('e', 1, 0), ('e', 2, 10), ('x', 1, 30), ('e', 3, 40), ('x', 9, 45)]);
        assert_eq!(
            out[0],
            Completed {
                scope: 2,
                parent: 1,
                total: 20,
                self_time: 20,
                forced: true,
                outermost: true
            }
        );
        assert_eq!(out[1].scope, 1);
        assert!(!out[1].forced);
        assert_eq!(
            out[2],
            Completed {
                scope: 3,
                parent: 0,
                total: 960,
                self_time: 960,
                forced: true,
                outermost: true
            }
        );
    }

    #[test]
    fn exits_on_a_deep_stack_match_as_on_a_shallow_one() {
        let mut deep = ThreadScopes::new();
        let mut out = Vec::new();
        let n = INDEXED_DEPTH as u32 * 4;
        for i in 0..n {
            deep.enter(i % 7 + 1, u64::from(i));
        }
        // Not open: ignored, on the index's word.
        assert!(!deep.exit(99, 1000, |c| out.push(c)));
        // Open further down: closes everything above it.
        assert!(deep.exit(3, 1001, |c| out.push(c)));
        let left = deep.depth();
        assert_eq!(out.len(), n as usize - left);
        assert!(out.last().is_some_and(|c| c.scope == 3 && !c.forced));
        // Down to a shallow stack, where the index is dropped, and back.
        while deep.depth() > 2 {
            let top = deep.stack.last().unwrap().scope;
            assert!(deep.exit(top, 2000, |_| {}));
        }
        assert!(deep.open.is_none());
        for i in 0..n {
            deep.enter(50 + i, 3000);
        }
        assert!(!deep.exit(9999, 4000, |_| {}));
        assert!(deep.exit(50, 4001, |_| {}));
        assert_eq!(deep.depth(), 2);
        let scopes: Vec<u32> = deep.path().collect();
        assert_eq!(scopes, [1, 2]);
    }

    #[test]
    fn a_resume_costs_the_same_at_any_depth_and_excludes_the_pause_from_each_entry() {
        let out = run(&[
            ('e', 1, 0),
            ('p', 0, 10),
            ('e', 2, 15), // entered while paused: the whole pause is out of it too
            ('r', 0, 20),
            ('e', 3, 30),
            ('p', 0, 40),
            ('r', 0, 45),
            ('x', 3, 50),
            ('x', 2, 60),
            ('x', 1, 100),
        ]);
        assert_eq!((out[0].scope, out[0].total), (3, 15));
        assert_eq!((out[1].scope, out[1].total), (2, 30));
        assert_eq!((out[2].scope, out[2].total), (1, 85));
        // Pauses that add up past 2^64 ticks (a clock that jumps back and
        // forth) saturate as a sum of each entry's own would.
        let mut t = ThreadScopes::new();
        t.enter(1, 0);
        for _ in 0..4 {
            t.pause(0);
            t.resume(u64::MAX);
        }
        t.enter(2, 5);
        t.pause(0);
        t.resume(3);
        let mut out = Vec::new();
        t.close_all(u64::MAX, |c| out.push(c));
        assert_eq!((out[0].scope, out[0].total), (2, u64::MAX - 8));
        assert_eq!((out[1].scope, out[1].total), (1, 0));
    }

    #[test]
    fn recursion_closes_the_innermost_entry() {
        let out = run(&[('e', 1, 0), ('e', 1, 10), ('x', 1, 20), ('x', 1, 40)]);
        assert_eq!((out[0].total, out[0].parent, out[0].outermost), (10, 1, false));
        assert_eq!((out[1].total, out[1].self_time, out[1].outermost), (40, 30, true));
    }
}
