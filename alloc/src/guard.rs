//! The reentrancy guard.
//!
//! pulse's own bookkeeping allocates — the first event of a thread claims a
//! ring buffer, registering a thread-local destructor may allocate inside
//! std, the collector thread compresses and writes — and those allocations
//! come back through the global allocator, that is, through pulse. Recording
//! them would recurse forever (or, at best, count the profiler as the
//! program). So every entry into pulse's tracking code first takes this
//! per-thread flag; a nested entry finds it taken and passes the call
//! straight to the inner allocator, untracked, counting it only as pulse's
//! own overhead.
//!
//! The flag lives in [`ThreadState`](crate::ring::ThreadState), a
//! `const`-initialized thread-local with no destructor: touching it never
//! allocates, never registers anything, and stays valid while the thread's
//! other thread-locals are being destroyed.

use std::cell::Cell;

/// Proof that this thread is inside pulse's tracking code. Dropping it —
/// also while unwinding — lets the thread be tracked again.
#[must_use = "the guard releases the thread when dropped"]
#[derive(Debug)]
pub(crate) struct Guard<'a> {
    busy: &'a Cell<bool>,
}

impl<'a> Guard<'a> {
    /// Takes the flag, or returns `None` if this thread already holds it.
    #[inline]
    pub(crate) fn enter(busy: &'a Cell<bool>) -> Option<Self> {
        if busy.replace(true) {
            None
        } else {
            Some(Guard { busy })
        }
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.busy.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_entry_is_refused_and_the_flag_is_released_on_drop() {
        let busy = Cell::new(false);
        let outer = Guard::enter(&busy).expect("first entry");
        assert!(Guard::enter(&busy).is_none());
        drop(outer);
        assert!(!busy.get());
        assert!(Guard::enter(&busy).is_some());
    }

    #[test]
    fn the_flag_is_released_while_unwinding() {
        let busy = Cell::new(false);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _g = Guard::enter(&busy).unwrap();
            panic!("inside the guard");
        }));
        assert!(r.is_err());
        assert!(!busy.get());
    }
}
