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
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `layout` comes from our caller under GlobalAlloc's contract
        // (non-zero size, valid alignment); we pass it on unchanged.
        let p = unsafe { self.inner.alloc(layout) };
        thread::on_alloc(p, layout);
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        thread::on_alloc(p, layout);
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Recorded before the block is released: once it is, another thread
        // may be handed the same address, and its allocation must carry the
        // later timestamp.
        thread::on_free(ptr, layout);
        // SAFETY: `ptr` was allocated by this allocator (hence by `inner`) with
        // `layout`, as our caller guarantees.
        unsafe { self.inner.dealloc(ptr, layout) };
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The clock is read before the call for the same reason as in `dealloc`
        // (the old block may be released inside it and reused by another
        // thread), and again after it, for the new block, as in `alloc`.
        let ts = thread::realloc_start();
        // SAFETY: `ptr`, `layout` and `new_size` satisfy `realloc`'s contract, as our caller guarantees.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        thread::on_realloc(ts, ptr, layout, p, new_size);
        p
    }
}
