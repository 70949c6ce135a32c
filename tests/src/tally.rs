//! A reference count of what the program allocates, kept beside pulse.
//!
//! [`Tally`] wraps the system allocator *inside* pulse's
//! (`pulse::Alloc<Tally>`) and counts, with atomics, every request that
//! reaches it from the program while its window is open. pulse's own
//! bookkeeping also reaches it (pulse forwards its own allocations to the
//! inner allocator with its reentrancy guard held); those are told apart
//! with `pulse_alloc::in_pulse` and left out, as pulse leaves them out of the
//! program's figures. The counts are then an independent account of exactly
//! what pulse should have recorded.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pulse::Totals;

/// The system allocator, counting the program's requests while open.
#[derive(Debug)]
pub struct Tally {
    open: AtomicBool,
    allocs: AtomicU64,
    frees: AtomicU64,
    reallocs: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_freed: AtomicU64,
}

impl Tally {
    /// A closed tally with every count at zero.
    pub const fn new() -> Self {
        Tally {
            open: AtomicBool::new(false),
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            reallocs: AtomicU64::new(0),
            bytes_allocated: AtomicU64::new(0),
            bytes_freed: AtomicU64::new(0),
        }
    }

    /// Zeroes the counts and starts counting.
    pub fn open(&self) {
        for c in
            [&self.allocs, &self.frees, &self.reallocs, &self.bytes_allocated, &self.bytes_freed]
        {
            c.store(0, Ordering::SeqCst);
        }
        self.open.store(true, Ordering::SeqCst);
    }

    /// Stops counting; returns the counts (`failed` is always 0).
    pub fn close(&self) -> Totals {
        self.open.store(false, Ordering::SeqCst);
        Totals {
            allocs: self.allocs.load(Ordering::SeqCst),
            frees: self.frees.load(Ordering::SeqCst),
            reallocs: self.reallocs.load(Ordering::SeqCst),
            failed: 0,
            bytes_allocated: self.bytes_allocated.load(Ordering::SeqCst),
            bytes_freed: self.bytes_freed.load(Ordering::SeqCst),
        }
    }

    /// Whether this request is the program's and falls in the window.
    #[inline]
    fn counting(&self) -> bool {
        self.open.load(Ordering::Relaxed) && !pulse_alloc::in_pulse()
    }
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

// SAFETY: every method forwards to `System` with its arguments unchanged and
// returns its result unchanged; the counting touches only atomics.
unsafe impl GlobalAlloc for Tally {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && self.counting() {
            self.allocs.fetch_add(1, Ordering::Relaxed);
            self.bytes_allocated.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && self.counting() {
            self.allocs.fetch_add(1, Ordering::Relaxed);
            self.bytes_allocated.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.counting() {
            self.frees.fetch_add(1, Ordering::Relaxed);
            self.bytes_freed.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `System` with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract, forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && self.counting() {
            self.reallocs.fetch_add(1, Ordering::Relaxed);
            self.bytes_allocated.fetch_add(new_size as u64, Ordering::Relaxed);
            self.bytes_freed.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }
}
