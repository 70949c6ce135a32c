//! The `GlobalAlloc` implementation.

use std::alloc::{GlobalAlloc, Layout, System};

use crate::thread;

/// The pulse global allocator: wraps an inner allocator (`System` by
/// default) and records every allocation, free and reallocation while a
/// session is recording.
///
/// ```
/// #[global_allocator]
/// static ALLOC: pulse_alloc::Alloc = pulse_alloc::Alloc::system();
/// # fn main() {}
/// ```
///
/// With no session recording, each call costs one relaxed atomic load on top
/// of the inner allocator.
#[derive(Debug, Default, Clone, Copy)]
pub struct Alloc<A = System> {
    inner: A,
}

impl Alloc<System> {
    /// Wraps the system allocator.
    pub const fn system() -> Self {
        Alloc { inner: System }
    }
}

impl<A> Alloc<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        Alloc { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: every method forwards to the inner allocator with the caller's
// arguments unchanged and returns its result unchanged; recording only reads
// the pointers and layouts, never the memory behind them.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Alloc<A> {
    // Each method reads the allocation mode once. Counting (or nothing)
    // stays inline. Recording events is a call in tail position to a
    // function that calls the inner allocator itself (see `thread.rs`).

    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mode = thread::alloc_mode();
        if mode >= thread::EVENTS {
            if mode & crate::budget::BUDGETED != 0 {
                // SAFETY: our caller's arguments, under the same contract.
                return unsafe { thread::alloc_budgeted(&self.inner, layout, false, mode) };
            }
            // SAFETY: our caller's layout, under the same contract.
            return unsafe { thread::alloc_recorded(&self.inner, layout, false, mode) };
        }
        if mode == thread::COUNT {
            // A terminating signal waits for the call to return (`deferred`).
            let _held = crate::Holding::new();
            // SAFETY: as below.
            let p = unsafe { self.inner.alloc(layout) };
            return thread::counted_alloc(mode, p, layout);
        }
        // SAFETY: `layout` comes from our caller under GlobalAlloc's contract
        // (non-zero size, valid alignment); we pass it on unchanged.
        unsafe { self.inner.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let mode = thread::alloc_mode();
        if mode >= thread::EVENTS {
            if mode & crate::budget::BUDGETED != 0 {
                // SAFETY: our caller's arguments, under the same contract.
                return unsafe { thread::alloc_budgeted(&self.inner, layout, true, mode) };
            }
            // SAFETY: as for `alloc`.
            return unsafe { thread::alloc_recorded(&self.inner, layout, true, mode) };
        }
        if mode == thread::COUNT {
            let _held = crate::Holding::new();
            // SAFETY: as for `alloc`.
            let p = unsafe { self.inner.alloc_zeroed(layout) };
            return thread::counted_alloc(mode, p, layout);
        }
        // SAFETY: as for `alloc`.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let mode = thread::alloc_mode();
        if mode >= thread::EVENTS {
            if mode & crate::budget::BUDGETED != 0 {
                // SAFETY: our caller's arguments, under the same contract.
                return unsafe { thread::dealloc_budgeted(&self.inner, ptr, layout, mode) };
            }
            // The free is recorded before the block is released: once it
            // is, another thread may be handed the same address, and its
            // allocation must carry the later timestamp.
            // SAFETY: our caller's block, under the same contract.
            return unsafe { thread::dealloc_recorded(&self.inner, ptr, layout) };
        }
        if mode == thread::COUNT {
            let _held = crate::Holding::new();
            thread::counted_free(mode, layout);
            // SAFETY: as below.
            return unsafe { self.inner.dealloc(ptr, layout) };
        }
        // SAFETY: `ptr` was allocated by this allocator (hence by `inner`) with
        // `layout`, as our caller guarantees.
        unsafe { self.inner.dealloc(ptr, layout) };
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let mode = thread::alloc_mode();
        if mode >= thread::EVENTS {
            if mode & crate::budget::BUDGETED != 0 {
                // SAFETY: our caller's arguments, under the same contract.
                return unsafe {
                    thread::realloc_budgeted(&self.inner, ptr, layout, new_size, mode)
                };
            }
            // The clock is read before the inner call for the same reason
            // as in `dealloc`, and again after it, as in `alloc`.
            // SAFETY: our caller's arguments, under the same contract.
            return unsafe { thread::realloc_recorded(&self.inner, ptr, layout, new_size, mode) };
        }
        if mode == thread::COUNT {
            let _held = crate::Holding::new();
            // SAFETY: as below.
            let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
            return thread::counted_realloc(mode, layout, p, new_size);
        }
        // SAFETY: `ptr`, `layout` and `new_size` satisfy `realloc`'s contract, as our caller guarantees.
        unsafe { self.inner.realloc(ptr, layout, new_size) }
    }
}
