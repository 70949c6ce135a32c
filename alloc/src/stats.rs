//! Exact allocation totals, kept per thread and summed on demand.
//!
//! Each thread's counters live in its ring and are written only by that
//! thread, with a relaxed load and store (no read-modify-write on the hot
//! path); anyone may read them. They only ever grow, so the global totals
//! are the sum over every ring ever created. A ring reused by a new thread
//! keeps counting; the new thread's own figures are measured from a
//! baseline it takes when it claims the ring.

use std::sync::atomic::{AtomicU64, Ordering};

const ALLOCS: usize = 0;
const FREES: usize = 1;
const REALLOCS: usize = 2;
const FAILED: usize = 3;
const BYTES_ALLOCATED: usize = 4;
const BYTES_FREED: usize = 5;
const N: usize = 6;

/// One thread's counters. The ones every call writes share one cache line.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub(crate) struct ThreadCounters {
    c: [AtomicU64; N],
    /// The current owner's live bytes (two's complement: a thread that
    /// frees blocks from other threads goes below zero).
    live_bytes: AtomicU64,
    /// The current owner's highest live bytes.
    peak_bytes: AtomicU64,
    /// The blocks the current owner had live at its peak.
    peak_blocks: AtomicU64,
    /// The counters when the current owner claimed the ring.
    base: [AtomicU64; N],
}

#[inline(always)]
fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(by), Ordering::Relaxed);
}

impl ThreadCounters {
    #[inline(always)]
    pub(crate) fn alloc(&self, size: u64) {
        bump(&self.c[ALLOCS], 1);
        bump(&self.c[BYTES_ALLOCATED], size);
        self.grow(size);
    }

    #[inline(always)]
    pub(crate) fn free(&self, size: u64) {
        bump(&self.c[FREES], 1);
        bump(&self.c[BYTES_FREED], size);
        bump(&self.live_bytes, size.wrapping_neg());
    }

    #[inline(always)]
    pub(crate) fn realloc(&self, old: u64, new: u64) {
        bump(&self.c[REALLOCS], 1);
        bump(&self.c[BYTES_FREED], old);
        bump(&self.c[BYTES_ALLOCATED], new);
        self.grow(new.wrapping_sub(old));
    }

    #[inline]
    pub(crate) fn failed(&self) {
        bump(&self.c[FAILED], 1);
    }

    /// Adds `delta` (two's complement) to the live bytes and keeps the peak.
    #[inline(always)]
    fn grow(&self, delta: u64) {
        let live = self.live_bytes.load(Ordering::Relaxed).wrapping_add(delta);
        self.live_bytes.store(live, Ordering::Relaxed);
        if (live as i64) > self.peak_bytes.load(Ordering::Relaxed) as i64 {
            self.peak_bytes.store(live, Ordering::Relaxed);
            // Live blocks: allocations minus frees since the owner's baseline.
            let v = |a: &[AtomicU64; N], i: usize| a[i].load(Ordering::Relaxed);
            let blocks = v(&self.c, ALLOCS)
                .wrapping_sub(v(&self.c, FREES))
                .wrapping_sub(v(&self.base, ALLOCS).wrapping_sub(v(&self.base, FREES)));
            self.peak_blocks.store(blocks, Ordering::Relaxed);
        }
    }

    /// Called by a thread that claims the ring: its figures start here.
    pub(crate) fn rebase(&self) {
        for (b, c) in self.base.iter().zip(&self.c) {
            b.store(c.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        for c in [&self.live_bytes, &self.peak_bytes, &self.peak_blocks] {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn load(a: &[AtomicU64; N]) -> Totals {
        let v = |i: usize| a[i].load(Ordering::Relaxed);
        Totals {
            allocs: v(ALLOCS),
            frees: v(FREES),
            reallocs: v(REALLOCS),
            failed: v(FAILED),
            bytes_allocated: v(BYTES_ALLOCATED),
            bytes_freed: v(BYTES_FREED),
        }
    }

    /// Everything counted in this ring, by every owner it had.
    fn all(&self) -> Totals {
        Self::load(&self.c)
    }

    /// What the current owner counted.
    pub(crate) fn own(&self) -> Totals {
        Self::load(&self.c).since(Self::load(&self.base))
    }

    pub(crate) fn peak(&self) -> (u64, u64) {
        (self.peak_bytes.load(Ordering::Relaxed), self.peak_blocks.load(Ordering::Relaxed))
    }
}

/// Allocation totals (pulse's own allocations excluded).
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

    fn add(&mut self, o: Totals) {
        self.allocs = self.allocs.wrapping_add(o.allocs);
        self.frees = self.frees.wrapping_add(o.frees);
        self.reallocs = self.reallocs.wrapping_add(o.reallocs);
        self.failed = self.failed.wrapping_add(o.failed);
        self.bytes_allocated = self.bytes_allocated.wrapping_add(o.bytes_allocated);
        self.bytes_freed = self.bytes_freed.wrapping_add(o.bytes_freed);
    }

    /// Bytes allocated minus bytes freed. Negative on a thread that freed
    /// more than it allocated (blocks handed over from other threads).
    pub fn live_bytes(&self) -> i64 {
        self.bytes_allocated.wrapping_sub(self.bytes_freed) as i64
    }

    /// Blocks allocated minus blocks freed; may be negative like `live_bytes`.
    pub fn live_blocks(&self) -> i64 {
        self.allocs.wrapping_sub(self.frees) as i64
    }
}

/// One thread's figures, counted while a session recorded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ThreadStats {
    /// pulse's id for the thread.
    pub thread: u64,
    /// Its totals.
    pub totals: Totals,
    /// The most bytes live at once, counting what this thread allocated
    /// minus what it freed.
    pub peak_bytes: u64,
    /// Blocks live at that moment.
    pub peak_blocks: u64,
}

/// The program's heap, as counted so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeapStats {
    /// Every thread together, exact.
    pub totals: Totals,
    /// Threads that are running now.
    pub threads: Vec<ThreadStats>,
}

/// Counts of threads that allocate during their own teardown, after their
/// ring was retired, go here.
pub(crate) static ORPHAN_COUNTERS: OrphanCounters = OrphanCounters::new();

/// Counters updatable from any thread (read-modify-write atomics), for the
/// rare path that has no ring.
#[derive(Debug)]
pub(crate) struct OrphanCounters {
    c: [AtomicU64; N],
}

impl OrphanCounters {
    const fn new() -> Self {
        OrphanCounters { c: [const { AtomicU64::new(0) }; N] }
    }

    pub(crate) fn add(&self, t: Totals) {
        let v = [t.allocs, t.frees, t.reallocs, t.failed, t.bytes_allocated, t.bytes_freed];
        for (c, v) in self.c.iter().zip(v) {
            if v != 0 {
                c.fetch_add(v, Ordering::Relaxed);
            }
        }
    }
}

/// The program's totals so far, across every thread, counted while a
/// session was recording.
pub fn totals() -> Totals {
    let mut t = ThreadCounters::load(&ORPHAN_COUNTERS.c);
    crate::ring::for_each_ring(|_, c, _| t.add(c.all()));
    t
}

/// The program's heap now: global totals and each running thread's figures.
/// Allocates the result; pulse's own allocation is not counted.
pub fn heap_stats() -> HeapStats {
    crate::thread::untracked(|| {
        let mut s = HeapStats { totals: totals(), threads: Vec::new() };
        crate::ring::for_each_ring(|tid, c, active| {
            if active {
                let (peak_bytes, peak_blocks) = c.peak();
                s.threads.push(ThreadStats {
                    thread: tid,
                    totals: c.own(),
                    peak_bytes,
                    peak_blocks,
                });
            }
        });
        s.threads.sort_by_key(|t| t.thread);
        s
    })
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
