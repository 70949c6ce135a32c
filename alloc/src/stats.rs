//! Exact allocation totals, kept per thread and summed on demand.

use std::sync::atomic::{AtomicU64, Ordering};

/// One thread's totals. Only the owning thread writes them, with a relaxed
/// load and store (no read-modify-write on the hot path); anyone may read.
#[derive(Debug, Default)]
pub(crate) struct ThreadCounters {
    allocs: AtomicU64,
    frees: AtomicU64,
    reallocs: AtomicU64,
    failed: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_freed: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(by), Ordering::Relaxed);
}

impl ThreadCounters {
    #[inline]
    pub(crate) fn alloc(&self, size: u64) {
        bump(&self.allocs, 1);
        bump(&self.bytes_allocated, size);
    }

    #[inline]
    pub(crate) fn free(&self, size: u64) {
        bump(&self.frees, 1);
        bump(&self.bytes_freed, size);
    }

    #[inline]
    pub(crate) fn realloc(&self, old: u64, new: u64) {
        bump(&self.reallocs, 1);
        bump(&self.bytes_freed, old);
        bump(&self.bytes_allocated, new);
    }

    #[inline]
    pub(crate) fn failed(&self) {
        bump(&self.failed, 1);
    }

    fn add_to(&self, t: &mut Totals) {
        t.allocs = t.allocs.wrapping_add(self.allocs.load(Ordering::Relaxed));
        t.frees = t.frees.wrapping_add(self.frees.load(Ordering::Relaxed));
        t.reallocs = t.reallocs.wrapping_add(self.reallocs.load(Ordering::Relaxed));
        t.failed = t.failed.wrapping_add(self.failed.load(Ordering::Relaxed));
        t.bytes_allocated =
            t.bytes_allocated.wrapping_add(self.bytes_allocated.load(Ordering::Relaxed));
        t.bytes_freed = t.bytes_freed.wrapping_add(self.bytes_freed.load(Ordering::Relaxed));
    }
}

/// Allocation totals of the program (pulse's own allocations excluded).
///
/// A `realloc` counts once in `reallocs` and moves its old size to
/// `bytes_freed` and its new size to `bytes_allocated`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Successful `alloc` and `alloc_zeroed` calls.
    pub allocs: u64,
    /// `dealloc` calls.
    pub frees: u64,
    /// Successful `realloc` calls.
    pub reallocs: u64,
    /// Calls the inner allocator answered with null.
    pub failed: u64,
    /// Bytes handed out.
    pub bytes_allocated: u64,
    /// Bytes given back.
    pub bytes_freed: u64,
}

impl Totals {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Totals) -> Totals {
        Totals {
            allocs: self.allocs.wrapping_sub(earlier.allocs),
            frees: self.frees.wrapping_sub(earlier.frees),
            reallocs: self.reallocs.wrapping_sub(earlier.reallocs),
            failed: self.failed.wrapping_sub(earlier.failed),
            bytes_allocated: self.bytes_allocated.wrapping_sub(earlier.bytes_allocated),
            bytes_freed: self.bytes_freed.wrapping_sub(earlier.bytes_freed),
        }
    }
}

/// Counts of threads that exited before they could own a ring, or that
/// allocate during their own teardown, go here.
pub(crate) static ORPHAN_COUNTERS: ThreadCountersStatic = ThreadCountersStatic::new();

/// A `ThreadCounters` usable from any thread (read-modify-write atomics),
/// for the rare paths that have no ring.
#[derive(Debug)]
pub(crate) struct ThreadCountersStatic {
    inner: [AtomicU64; 6],
}

impl ThreadCountersStatic {
    const fn new() -> Self {
        ThreadCountersStatic { inner: [const { AtomicU64::new(0) }; 6] }
    }

    pub(crate) fn add(
        &self,
        allocs: u64,
        frees: u64,
        reallocs: u64,
        failed: u64,
        alloc_b: u64,
        free_b: u64,
    ) {
        for (c, v) in self.inner.iter().zip([allocs, frees, reallocs, failed, alloc_b, free_b]) {
            if v != 0 {
                c.fetch_add(v, Ordering::Relaxed);
            }
        }
    }

    fn add_to(&self, t: &mut Totals) {
        let [a, f, r, x, ab, fb] = &self.inner;
        t.allocs = t.allocs.wrapping_add(a.load(Ordering::Relaxed));
        t.frees = t.frees.wrapping_add(f.load(Ordering::Relaxed));
        t.reallocs = t.reallocs.wrapping_add(r.load(Ordering::Relaxed));
        t.failed = t.failed.wrapping_add(x.load(Ordering::Relaxed));
        t.bytes_allocated = t.bytes_allocated.wrapping_add(ab.load(Ordering::Relaxed));
        t.bytes_freed = t.bytes_freed.wrapping_add(fb.load(Ordering::Relaxed));
    }
}

/// The program's totals so far, across every thread, counted while a
/// session was recording.
pub fn totals() -> Totals {
    let mut t = Totals::default();
    crate::ring::for_each_counters(|c| c.add_to(&mut t));
    ORPHAN_COUNTERS.add_to(&mut t);
    t
}

/// Allocations pulse made for itself (its buffers, the collector's work),
/// kept apart from the program's.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Overhead {
    /// Allocation calls made by pulse's own code.
    pub allocs: u64,
    /// Bytes those calls asked for.
    pub bytes: u64,
    /// Bytes of per-thread ring buffers.
    pub ring_bytes: u64,
}

pub(crate) static OWN_ALLOCS: AtomicU64 = AtomicU64::new(0);
pub(crate) static OWN_BYTES: AtomicU64 = AtomicU64::new(0);

/// What pulse itself has allocated so far.
pub fn overhead() -> Overhead {
    Overhead {
        allocs: OWN_ALLOCS.load(Ordering::Relaxed),
        bytes: OWN_BYTES.load(Ordering::Relaxed),
        ring_bytes: crate::ring::ring_bytes() as u64,
    }
}
