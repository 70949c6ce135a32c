//! A global allocator for tests that measure what the analyzer allocates:
//! it forwards to `System` and keeps, per thread, the bytes live now, their
//! peak, the largest block and the number of allocations. A test reads and
//! resets them around the work it measures. It keeps the same for the
//! whole process too (`PROCESS`), for work spread over threads, which a test
//! must measure with nothing else running.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};

/// The whole process's live bytes, their peak, and its allocations.
pub(crate) struct All {
    pub(crate) live: AtomicIsize,
    pub(crate) peak: AtomicIsize,
    pub(crate) allocs: AtomicUsize,
}

pub(crate) static PROCESS: All =
    All { live: AtomicIsize::new(0), peak: AtomicIsize::new(0), allocs: AtomicUsize::new(0) };

pub(crate) struct Counting;

thread_local! {
    pub(crate) static LARGEST: Cell<usize> = const { Cell::new(0) };
    pub(crate) static LIVE: Cell<isize> = const { Cell::new(0) };
    pub(crate) static PEAK: Cell<isize> = const { Cell::new(0) };
    pub(crate) static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn grew(size: usize) {
    let live = PROCESS.live.fetch_add(size as isize, Relaxed) + size as isize;
    PROCESS.peak.fetch_max(live, Relaxed);
    PROCESS.allocs.fetch_add(1, Relaxed);
    // `try_with`: never fail inside the allocator, even during thread exit.
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + size as isize);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
}

fn shrank(size: usize) {
    PROCESS.live.fetch_sub(size as isize, Relaxed);
    let _ = LIVE.try_with(|l| l.set(l.get() - size as isize));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: `ptr` came from `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrank(layout.size());
        grew(new_size);
        // SAFETY: as for `dealloc`, and the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
