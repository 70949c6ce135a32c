//! An inner allocator that runs out of memory on schedule, and a workload
//! that survives it.
//!
//! [`EveryNth`] refuses (returns null for) every `N`th request the program
//! makes on its main thread while armed. Requests pulse makes for its own
//! bookkeeping reach the inner allocator with pulse's reentrancy guard held;
//! they are not the program's and are neither counted nor refused, so the
//! program meets the same refusals whether pulse records or not.
//!
//! [`workload`] makes a fixed sequence of raw `alloc`, `alloc_zeroed`,
//! `realloc` and `dealloc` calls and notes which ones were refused, without
//! allocating anything else while armed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Refuses every `n`th request of the program's main thread while armed.
#[derive(Debug)]
pub struct EveryNth {
    n: u64,
    armed: AtomicBool,
    calls: AtomicU64,
}

impl EveryNth {
    /// Refuses every `n`th request (`n` ≥ 1) once armed.
    pub const fn new(n: u64) -> Self {
        EveryNth { n, armed: AtomicBool::new(false), calls: AtomicU64::new(0) }
    }

    /// Whether to refuse this request.
    fn refuse(&self) -> bool {
        if !self.armed.load(Ordering::Relaxed) || pulse_alloc::in_pulse() {
            return false;
        }
        // SAFETY: getpid and gettid have no preconditions.
        let main = unsafe { libc::getpid() as libc::c_long == libc::syscall(libc::SYS_gettid) };
        main && (self.calls.fetch_add(1, Ordering::Relaxed) + 1) % self.n == 0
    }
}

// SAFETY: every method forwards to `System` unchanged, or returns null,
// which `GlobalAlloc` allows for any allocating request.
unsafe impl GlobalAlloc for EveryNth {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.refuse() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller upholds `alloc`'s contract, forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if self.refuse() {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.refuse() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller upholds `realloc`'s contract, forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Requests the workload makes.
pub const REQUESTS: usize = 3000;

/// What the program saw: the index of every refused request, and how many
/// allocations and reallocations succeeded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Indices (into the workload's requests) of the refused ones.
    pub refused: Vec<usize>,
    /// Bytes the refused requests asked for.
    pub refused_bytes: u64,
    /// Successful `alloc` and `alloc_zeroed` calls.
    pub allocs: u64,
    /// Successful `realloc` calls.
    pub reallocs: u64,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused {} ({} bytes) at {:?}; allocs {}; reallocs {}",
            self.refused.len(),
            self.refused_bytes,
            self.refused,
            self.allocs,
            self.reallocs
        )
    }
}

/// Runs the fixed sequence of requests through the global allocator, with
/// `inner` armed (the global allocator must be `inner`, or pulse wrapping it).
pub fn workload(inner: &EveryNth) -> Seen {
    // Everything the loop writes to is allocated before arming.
    let mut seen = Seen { refused: Vec::with_capacity(REQUESTS), ..Seen::default() };
    let mut live: Vec<(*mut u8, Layout)> = Vec::with_capacity(REQUESTS);
    inner.armed.store(true, Ordering::SeqCst);
    for i in 0..REQUESTS {
        let size = 16 + (i * 37) % 500;
        let layout = Layout::from_size_align(size, 8).expect("layout");
        match i % 4 {
            0 | 1 => {
                // SAFETY: `layout` has a non-zero size.
                let p = unsafe {
                    if i % 4 == 0 {
                        std::alloc::alloc(layout)
                    } else {
                        std::alloc::alloc_zeroed(layout)
                    }
                };
                if p.is_null() {
                    seen.refused.push(i);
                    seen.refused_bytes += size as u64;
                } else {
                    seen.allocs += 1;
                    live.push((p, layout));
                }
            }
            2 => match live.pop() {
                Some((p, old)) => {
                    let new_size = old.size() * 2;
                    // SAFETY: `p` is live, allocated with `old`; `new_size` is non-zero.
                    let q = unsafe { std::alloc::realloc(p, old, new_size) };
                    if q.is_null() {
                        // The old block is untouched and still ours.
                        seen.refused.push(i);
                        seen.refused_bytes += new_size as u64;
                        live.push((p, old));
                    } else {
                        seen.reallocs += 1;
                        let grown = Layout::from_size_align(new_size, 8).expect("layout");
                        live.push((q, grown));
                    }
                }
                None => continue,
            },
            _ => {
                if live.len() > 8 {
                    let (p, layout) = live.swap_remove(i % live.len());
                    // SAFETY: `p` is live and was allocated with `layout`.
                    unsafe { std::alloc::dealloc(p, layout) };
                }
            }
        }
    }
    inner.armed.store(false, Ordering::SeqCst);
    for (p, layout) in live {
        // SAFETY: each block is live and was allocated with its layout.
        unsafe { std::alloc::dealloc(p, layout) };
    }
    seen
}
